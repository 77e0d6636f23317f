//! [`Params`]: the weights and biases of a finite network, one entry per dense node of its
//! graph (docs/math.md §2, §8), and the same shape for gradients, tangents, optimizer state and rates.

use ndarray::{Array1, Array2, Zip};

use crate::{Error, Result};

/// One weight matrix W (n_out × n_in, n_in the width of the node it reads) and bias b
/// (n_out) per dense node, in node order; the last entry is the readout. Gradients and
/// tangents use the same struct.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Params {
    /// W per dense node, readout last.
    pub weights: Vec<Array2<f64>>,
    /// b per dense node, readout last.
    pub biases: Vec<Array1<f64>>,
}

impl Params {
    /// All-zero parameters shaped like `self`.
    pub fn zeros_like(&self) -> Params {
        Params {
            weights: self
                .weights
                .iter()
                .map(|w| Array2::zeros(w.raw_dim()))
                .collect(),
            biases: self
                .biases
                .iter()
                .map(|b| Array1::zeros(b.raw_dim()))
                .collect(),
        }
    }

    /// Number of dense nodes (hidden dense nodes + readout).
    pub fn layers(&self) -> usize {
        self.weights.len()
    }

    /// Total number of scalars.
    pub fn len(&self) -> usize {
        self.weights.iter().map(|w| w.len()).sum::<usize>()
            + self.biases.iter().map(|b| b.len()).sum::<usize>()
    }

    /// True when there are no scalars at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `other` has exactly the same tensors and shapes.
    pub fn same_shape(&self, other: &Params) -> bool {
        self.weights.len() == other.weights.len()
            && self.biases.len() == other.biases.len()
            && self
                .weights
                .iter()
                .zip(&other.weights)
                .all(|(a, b)| a.dim() == b.dim())
            && self
                .biases
                .iter()
                .zip(&other.biases)
                .all(|(a, b)| a.dim() == b.dim())
    }

    /// A typed error unless `other` is shaped like `self`.
    pub fn check_same_shape(&self, other: &Params, what: &str) -> Result<()> {
        if self.same_shape(other) {
            Ok(())
        } else {
            Err(Error::ShapeMismatch {
                what: format!("{what}: parameter tensors"),
                expected: self.len(),
                found: other.len(),
            })
        }
    }

    /// `self ← self + a·other`. Shapes must agree (see [`Params::check_same_shape`]);
    /// like ndarray's own arithmetic, a mismatch panics.
    pub fn axpy(&mut self, a: f64, other: &Params) {
        debug_assert!(self.same_shape(other));
        for (w, o) in self.weights.iter_mut().zip(&other.weights) {
            w.scaled_add(a, o);
        }
        for (b, o) in self.biases.iter_mut().zip(&other.biases) {
            b.scaled_add(a, o);
        }
    }

    /// `self ← a·self`.
    pub fn scale(&mut self, a: f64) {
        for w in &mut self.weights {
            *w *= a;
        }
        for b in &mut self.biases {
            *b *= a;
        }
    }

    /// `self ← other`, without allocating (shapes must agree, as for `axpy`).
    pub fn assign(&mut self, other: &Params) {
        debug_assert!(self.same_shape(other));
        for (w, o) in self.weights.iter_mut().zip(&other.weights) {
            w.assign(o);
        }
        for (b, o) in self.biases.iter_mut().zip(&other.biases) {
            b.assign(o);
        }
    }

    /// `self ← a − b`, without allocating (the tangent θ − θ0 of the linearized model).
    pub fn assign_difference(&mut self, a: &Params, b: &Params) {
        debug_assert!(self.same_shape(a) && self.same_shape(b));
        for ((s, x), y) in self.weights.iter_mut().zip(&a.weights).zip(&b.weights) {
            Zip::from(s).and(x).and(y).for_each(|s, &x, &y| *s = x - y);
        }
        for ((s, x), y) in self.biases.iter_mut().zip(&a.biases).zip(&b.biases) {
            Zip::from(s).and(x).and(y).for_each(|s, &x, &y| *s = x - y);
        }
    }

    /// Sets every scalar to `v`.
    pub fn fill(&mut self, v: f64) {
        for w in &mut self.weights {
            w.fill(v);
        }
        for b in &mut self.biases {
            b.fill(v);
        }
    }

    /// Σ_p self_p · other_p over all tensors (shapes must agree, as for `axpy`).
    pub fn dot(&self, other: &Params) -> f64 {
        debug_assert!(self.same_shape(other));
        let w: f64 = self
            .weights
            .iter()
            .zip(&other.weights)
            .map(|(a, b)| (a * b).sum())
            .sum();
        let b: f64 = self
            .biases
            .iter()
            .zip(&other.biases)
            .map(|(a, b)| a.dot(b))
            .sum();
        w + b
    }

    /// Euclidean norm over all scalars.
    pub fn norm(&self) -> f64 {
        self.dot(self).sqrt()
    }

    /// True when every scalar is finite.
    pub fn is_finite(&self) -> bool {
        self.weights.iter().all(|w| w.iter().all(|v| v.is_finite()))
            && self.biases.iter().all(|b| b.iter().all(|v| v.is_finite()))
    }
}

/// One learning-rate multiplier per tensor (docs/math.md §4's table, or all ones).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TensorRates {
    /// The multiplier of each weight matrix, in [`Params::weights`] order.
    pub weights: Vec<f64>,
    /// The multiplier of each bias, in [`Params::biases`] order.
    pub biases: Vec<f64>,
}

impl TensorRates {
    /// Multiplier 1 for each of `layers` weight and bias tensors.
    pub fn uniform(layers: usize) -> TensorRates {
        TensorRates {
            weights: vec![1.0; layers],
            biases: vec![1.0; layers],
        }
    }

    /// docs/math.md §4's per-tensor rates (to be multiplied by the global η), read off the tensor
    /// shapes, per dense node wherever it sits in the graph (docs/math.md §8): W of a dense node
    /// with fan-in n_in and width n_out → 1/√(n_out n_in), its bias → 1/√n_out; readout
    /// W → 1/√n_in, readout b → 1. With no hidden dense node the readout rule applies.
    pub fn sign_limit(params: &Params) -> TensorRates {
        let layers = params.layers();
        let mut weights = Vec::with_capacity(layers);
        let mut biases = Vec::with_capacity(layers);
        for (l, w) in params.weights.iter().enumerate() {
            let (n_out, n_in) = w.dim();
            if l + 1 == layers {
                weights.push(1.0 / (n_in as f64).sqrt());
                biases.push(1.0);
            } else {
                weights.push(1.0 / ((n_out as f64) * (n_in as f64)).sqrt());
                biases.push(1.0 / (n_out as f64).sqrt());
            }
        }
        TensorRates { weights, biases }
    }

    /// A typed error unless there is one rate per tensor of `params`.
    pub(crate) fn check(&self, params: &Params) -> Result<()> {
        if self.weights.len() != params.weights.len() || self.biases.len() != params.biases.len() {
            return Err(Error::ShapeMismatch {
                what: "per-tensor learning rates vs parameter tensors".into(),
                expected: params.weights.len() + params.biases.len(),
                found: self.weights.len() + self.biases.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn small() -> Params {
        Params {
            weights: vec![array![[1.0, 2.0], [3.0, 4.0]], array![[1.0, -1.0]]],
            biases: vec![array![0.5, -0.5], array![2.0]],
        }
    }

    #[test]
    fn axpy_scale_dot_agree_with_hand_computation() {
        let mut p = small();
        let q = small();
        // ⟨p,p⟩ = 1+4+9+16 + 1+1 + 0.25+0.25 + 4 = 36.5
        assert_eq!(p.dot(&q), 36.5);
        p.axpy(2.0, &q);
        p.scale(0.5);
        // p = 1.5 q
        assert_eq!(p.dot(&q), 1.5 * 36.5);
        let mut d = q.zeros_like();
        d.assign_difference(&p, &q);
        assert_eq!(d.dot(&q), 0.5 * 36.5);
    }

    #[test]
    fn sign_limit_rates_follow_spec_table() {
        // d0 = 2, n1 = 2, C = 1.
        let r = TensorRates::sign_limit(&small());
        assert_eq!(r.weights, vec![0.5, 1.0 / 2f64.sqrt()]);
        assert_eq!(r.biases, vec![1.0 / 2f64.sqrt(), 1.0]);
    }
}
