//! Losses and their gradients χ = ∂ℓ/∂f, shared by the function-space trainer and the
//! finite networks (docs/math.md §5).

/// A per-example loss on the C outputs of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Loss {
    /// ½‖f − y‖², on real or one-hot targets.
    #[default]
    Mse,
    /// Softmax cross-entropy; the target row is one-hot (its arg-max is the class).
    CrossEntropy,
}

impl Loss {
    /// The loss of one example.
    pub fn value(self, f: &[f64], y: &[f64]) -> f64 {
        match self {
            Loss::Mse => 0.5 * f.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>(),
            Loss::CrossEntropy => {
                let class = argmax(y);
                let m = f.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + f.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                lse - f[class]
            }
        }
    }

    /// Writes χ = ∂ℓ/∂f into `chi`. Cross-entropy uses χ_y = −Σ_{c≠y} p_c, not p_y − 1,
    /// which rounds to exactly 0 once the margin passes ~37 and would zero sign(χ_y) (docs/math.md §5).
    pub fn gradient(self, f: &[f64], y: &[f64], chi: &mut [f64]) {
        match self {
            Loss::Mse => {
                for ((c, a), b) in chi.iter_mut().zip(f).zip(y) {
                    *c = a - b;
                }
            }
            Loss::CrossEntropy => {
                let class = argmax(y);
                let m = f.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = f.iter().map(|v| (v - m).exp()).sum();
                let mut others = 0.0;
                for (c, (ch, v)) in chi.iter_mut().zip(f).enumerate() {
                    let p = (v - m).exp() / z;
                    if c != class {
                        *ch = p;
                        others += p;
                    }
                }
                chi[class] = -others;
            }
        }
    }

    /// Writes a positive multiple of χ = ∂ℓ/∂f into `chi`, with the exact signs of χ and
    /// its direction χ/‖χ‖ to f64 resolution, for rules that use χ only through those
    /// (the Adam limit, docs/math.md §4). MSE: χ itself. Cross-entropy: the probabilities relative
    /// to the largest wrong-class one, χ̃_c = e^{f_c − max_{c'≠y} f_{c'}} for c ≠ y, floored
    /// at the smallest positive subnormal, and χ̃_y = −Σ_{c≠y} χ̃_c. The true p_c underflow to
    /// exactly 0 once f_y − f_c passes ~745, which would set sign(χ_c) = 0 and stop the
    /// readout part pushing those classes: an artefact that inflates the Adam limit's scores
    /// under cross-entropy, like the cancellation of p_y − 1 (docs/math.md §5). Mathematically
    /// sign(χ_c) = +1 for every c ≠ y, and χ̃ keeps it.
    pub fn gradient_direction(self, f: &[f64], y: &[f64], chi: &mut [f64]) {
        match self {
            Loss::Mse => self.gradient(f, y, chi),
            Loss::CrossEntropy => {
                let class = argmax(y);
                let m = f
                    .iter()
                    .enumerate()
                    .filter(|&(c, _)| c != class)
                    .map(|(_, &v)| v)
                    .fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    // C < 2 (rejected by the trainer) or all wrong logits −∞.
                    self.gradient(f, y, chi);
                    return;
                }
                let tiny = f64::from_bits(1);
                let mut others = 0.0;
                for (c, (ch, v)) in chi.iter_mut().zip(f).enumerate() {
                    if c != class {
                        *ch = (v - m).exp().max(tiny);
                        others += *ch;
                    }
                }
                chi[class] = -others;
            }
        }
    }
}

/// Index of the largest entry (the first on ties; NaN entries are never chosen over a
/// number seen before them); 0 when empty. Takes a slice, a `Vec` or an ndarray row.
///
/// ```
/// # use infw_runtime::loss::argmax;
/// assert_eq!(argmax(&[0.1, 0.7, 0.7]), 1);
/// assert_eq!(argmax(&ndarray::array![3.0, -1.0]), 0);
/// ```
pub fn argmax<'a>(values: impl IntoIterator<Item = &'a f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, &x) in values.into_iter().enumerate() {
        if i == 0 || x > best.1 {
            best = (i, x);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_gradient_keeps_its_sign_at_large_margins() {
        let f = [60.0, 0.0, -1.0];
        let y = [1.0, 0.0, 0.0];
        let mut chi = [0.0; 3];
        Loss::CrossEntropy.gradient(&f, &y, &mut chi);
        assert!(chi[0] < 0.0, "χ_y must stay negative, got {}", chi[0]);
        assert!(chi[1] > 0.0 && chi[2] > 0.0);
        assert!((chi.iter().sum::<f64>()).abs() < 1e-300);
    }

    /// At a margin of 1000 every p_c (c ≠ y) underflows to 0 in `gradient`; the direction
    /// keeps the exact signs and points where the exact χ does (all weight on the largest
    /// wrong class). At moderate margins it is a positive multiple of the gradient.
    #[test]
    fn cross_entropy_direction_keeps_signs_where_probabilities_underflow() {
        let y = [0.0, 1.0, 0.0, 0.0];
        let (mut chi, mut dir) = ([0.0; 4], [0.0; 4]);
        let f = [-1000.0, 1000.0, 0.0, -3000.0];
        Loss::CrossEntropy.gradient(&f, &y, &mut chi);
        assert_eq!(
            chi,
            [0.0, -0.0, 0.0, 0.0],
            "the underflow this method avoids"
        );
        Loss::CrossEntropy.gradient_direction(&f, &y, &mut dir);
        assert!(dir[0] > 0.0 && dir[2] == 1.0 && dir[3] > 0.0 && dir[1] < 0.0);
        assert!(dir[0] < 1e-300 && dir[3] < 1e-300 && (dir[1] + 1.0).abs() < 1e-300);

        let f = [0.3, 2.0, -1.0, 0.5];
        Loss::CrossEntropy.gradient(&f, &y, &mut chi);
        Loss::CrossEntropy.gradient_direction(&f, &y, &mut dir);
        let k = dir[0] / chi[0];
        assert!(k > 0.0);
        for c in 0..4 {
            // one exp, a sum and a division each: a few ulp
            assert!(
                (dir[c] - k * chi[c]).abs() < 1e-14 * dir[c].abs().max(1.0),
                "{c}"
            );
        }
    }

    #[test]
    fn mse_gradient_is_the_residual() {
        let mut chi = [0.0; 2];
        Loss::Mse.gradient(&[1.5, -2.0], &[1.0, 0.0], &mut chi);
        assert_eq!(chi, [0.5, -2.0]);
    }
}
