//! Losses and their gradients χ = ∂ℓ/∂f, shared by the function-space trainer and the
//! finite networks (SPEC §5).

/// A per-example loss on the C outputs of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
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
    /// which rounds to exactly 0 once the margin passes ~37 and would zero sign(χ_y) (SPEC §5).
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
}

/// Index of the largest entry (the first on ties); 0 for an empty slice.
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
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

    #[test]
    fn mse_gradient_is_the_residual() {
        let mut chi = [0.0; 2];
        Loss::Mse.gradient(&[1.5, -2.0], &[1.0, 0.0], &mut chi);
        assert_eq!(chi, [0.5, -2.0]);
    }
}
