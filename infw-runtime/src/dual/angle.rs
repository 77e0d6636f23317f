//! The correlation and angle of a Gaussian pair, exact at ±1 (SPEC §3, §5).
use crate::program::Parallel;
use std::f64::consts::PI;

/// A variance with its square root and inverse square root, computed once per point and
/// layer so that the per-pair pass multiplies instead of taking roots and dividing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Var {
    pub var: f64,
    pub sqrt: f64,
    /// 1/√var, or 0 when var = 0 (then every correlation with it is taken as 0).
    pub inv_sqrt: f64,
}

impl Var {
    #[inline(always)]
    pub fn new(var: f64) -> Var {
        let sqrt = var.sqrt();
        Var {
            var,
            sqrt,
            inv_sqrt: if var > 0.0 { 1.0 / sqrt } else { 0.0 },
        }
    }
}

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
    pub fn new(a: Var, b: Var, c: f64, parallel: Parallel) -> Angle {
        let sqrt_ab = a.sqrt * b.sqrt; // not √(ab): a·b overflows at large scales
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
                let rho = (c * a.inv_sqrt * b.inv_sqrt).clamp(-1.0, 1.0);
                Angle {
                    rho,
                    theta: acos(rho),
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

/// arccos on [−1, 1] without a library call or data-dependent branches, so that it inlines
/// into the per-pair pass (and can vectorise). fdlibm's algorithm (as in musl): one
/// rational approximation of asin on z ∈ [0, 1/4], selected for |x| < 1/2 or
/// x = ±(1 − 2z); error ≤ 1 ulp of π in the tests below.
#[inline(always)]
pub fn acos(x: f64) -> f64 {
    const PIO2_HI: f64 = 1.570_796_326_794_896_558_00e+00;
    const PIO2_LO: f64 = 6.123_233_995_736_766_035_87e-17;
    const PS0: f64 = 1.666_666_666_666_666_574_15e-01;
    const PS1: f64 = -3.255_658_186_224_009_154_05e-01;
    const PS2: f64 = 2.012_125_321_348_629_258_81e-01;
    const PS3: f64 = -4.005_553_450_067_941_140_27e-02;
    const PS4: f64 = 7.915_349_942_898_145_321_76e-04;
    const PS5: f64 = 3.479_331_075_960_211_675_70e-05;
    const QS1: f64 = -2.403_394_911_734_414_218_78e+00;
    const QS2: f64 = 2.020_945_760_233_505_694_71e+00;
    const QS3: f64 = -6.882_839_716_054_532_930_30e-01;
    const QS4: f64 = 7.703_815_055_590_193_527_91e-02;
    let r = |z: f64| {
        let p = z * (PS0 + z * (PS1 + z * (PS2 + z * (PS3 + z * (PS4 + z * PS5)))));
        let q = 1.0 + z * (QS1 + z * (QS2 + z * (QS3 + z * QS4)));
        p / q
    };
    let ax = x.abs();
    let small = ax < 0.5;
    let z = if small { x * x } else { (1.0 - ax) * 0.5 };
    let rz = r(z);
    // |x| < 1/2: π/2 − (x + x·R(x²)).
    let near_zero = PIO2_HI - (x - (PIO2_LO - x * rz));
    let s = z.sqrt();
    // x ≤ −1/2: π − 2 asin(√z).
    let negative = 2.0 * (PIO2_HI - (s + (rz * s - PIO2_LO)));
    // x ≥ 1/2: 2 asin(√z), with √z split so that z − df² is exact.
    let df = f64::from_bits(s.to_bits() & 0xffff_ffff_0000_0000);
    let c = if s > 0.0 {
        (z - df * df) / (s + df)
    } else {
        0.0
    }; // x = 1: z = s = 0
    let positive = 2.0 * (df + (rz * s + c));
    if small {
        near_zero
    } else if x < 0.0 {
        negative
    } else {
        positive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acos_matches_the_library_to_an_ulp_of_pi() {
        let mut worst = 0.0f64;
        let n = 200_000;
        for i in 0..=n {
            // Uniform grid plus points crowding at ±1 and ±1/2, where the branches meet.
            let u = -1.0 + 2.0 * i as f64 / n as f64;
            for x in [
                u,
                1.0 - (i as f64 * 1e-12),
                -1.0 + (i as f64 * 1e-12),
                0.5 - i as f64 * 1e-13,
                u.clamp(-1.0, 1.0),
            ] {
                let x = x.clamp(-1.0, 1.0);
                worst = worst.max((acos(x) - x.acos()).abs());
            }
        }
        assert!(worst <= 4.5e-16, "max |acos − libm acos| = {worst:e}");
        assert_eq!(acos(1.0), 0.0);
        assert_eq!(acos(-1.0), std::f64::consts::PI);
    }
}
