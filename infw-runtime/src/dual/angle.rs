//! The correlation and angle of a Gaussian pair, exact at ±1 (SPEC §3, §5).
use crate::program::Parallel;
use std::f64::consts::PI;

/// ρ = c/√(ab) clipped to [−1, 1], θ = arccos ρ, sin θ = √((1−ρ)(1+ρ)), and √(ab).
/// Known parallel pairs get ρ = ±1 exactly; a zero variance gives ρ = 0 (the pair is
/// then independent, and every kernel that involves it is multiplied by 0 downstream).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Angle {
    pub rho: f64,
    pub theta: f64,
    pub sin_theta: f64,
    pub sqrt_ab: f64,
}

impl Angle {
    #[inline(always)]
    pub fn new(a: f64, b: f64, c: f64, parallel: Parallel) -> Angle {
        let sqrt_ab = a.sqrt() * b.sqrt(); // not √(ab): a·b overflows at large scales
        match parallel {
            Parallel::Positive => Angle {
                rho: 1.0,
                theta: 0.0,
                sin_theta: 0.0,
                sqrt_ab,
            },
            Parallel::Negative => Angle {
                rho: -1.0,
                theta: PI,
                sin_theta: 0.0,
                sqrt_ab,
            },
            Parallel::Unknown => {
                let rho = if sqrt_ab > 0.0 {
                    (c / sqrt_ab).clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                Angle {
                    rho,
                    theta: rho.acos(),
                    sin_theta: ((1.0 - rho) * (1.0 + rho)).sqrt(),
                    sqrt_ab,
                }
            }
        }
    }

    /// √(ab)·ρ: the covariance consistent with the (possibly exact) correlation.
    #[inline(always)]
    pub fn cov(&self) -> f64 {
        self.sqrt_ab * self.rho
    }
}
