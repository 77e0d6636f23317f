//! The correlation and angle of a Gaussian pair, exact at ±1 (docs/math.md §3, §5).
use super::real::{F64x4, Real};
use crate::pair::Parallel;
use std::f64::consts::PI;

/// A variance with its square root and inverse square root, computed once per point and
/// layer so that the per-pair pass multiplies instead of taking roots and dividing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Var<T = f64> {
    /// The variance.
    pub var: T,
    /// √var.
    pub sqrt: T,
    /// 1/√var, or 0 when var = 0 (then every correlation with it is taken as 0).
    pub inv_sqrt: T,
}

impl Var<f64> {
    /// `var` with its square root and inverse square root.
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

/// The lanes of four points' variances.
#[inline(always)]
pub fn gather_vars<const L: usize>(p: [&[Var; L]; 4]) -> [Var<F64x4>; L] {
    std::array::from_fn(|l| Var {
        var: F64x4([p[0][l].var, p[1][l].var, p[2][l].var, p[3][l].var]),
        sqrt: F64x4([p[0][l].sqrt, p[1][l].sqrt, p[2][l].sqrt, p[3][l].sqrt]),
        inv_sqrt: F64x4([
            p[0][l].inv_sqrt,
            p[1][l].inv_sqrt,
            p[2][l].inv_sqrt,
            p[3][l].inv_sqrt,
        ]),
    })
}

/// One point's variances repeated in every lane.
#[inline(always)]
pub fn splat_vars<const L: usize>(p: &[Var; L]) -> [Var<F64x4>; L] {
    p.map(|v| Var {
        var: F64x4::splat(v.var),
        sqrt: F64x4::splat(v.sqrt),
        inv_sqrt: F64x4::splat(v.inv_sqrt),
    })
}

/// ρ = c/√(ab) clipped to [−1, 1], θ = arccos ρ, sin θ = √((1−ρ)(1+ρ)), and √(ab).
/// Known parallel pairs get ρ = ±1 exactly; a zero variance gives ρ = 0 (the pair is
/// then independent, and every kernel that involves it is multiplied by 0 downstream).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Angle<T = f64> {
    /// ρ, the correlation.
    pub rho: T,
    /// θ = arccos ρ.
    pub theta: T,
    /// sin θ.
    pub sin_theta: T,
    /// √a·√b.
    pub sqrt_ab: T,
}

impl<T: Real> Angle<T> {
    /// The angle of covariance `c` between variances `a` and `b`.
    #[inline(always)]
    pub fn new(a: Var<T>, b: Var<T>, c: T, parallel: Parallel) -> Angle<T> {
        let sqrt_ab = a.sqrt * b.sqrt; // not √(ab): a·b overflows at large scales
        let (zero, one) = (T::splat(0.0), T::splat(1.0));
        match parallel {
            Parallel::Positive => Angle {
                rho: one,
                theta: zero,
                sin_theta: zero,
                sqrt_ab,
            },
            Parallel::Negative => Angle {
                rho: -one,
                theta: T::splat(PI),
                sin_theta: zero,
                sqrt_ab,
            },
            Parallel::Unknown => {
                let rho = (c * a.inv_sqrt * b.inv_sqrt).clamp_unit();
                Angle {
                    rho,
                    theta: acos(rho),
                    sin_theta: ((one - rho) * (one + rho)).sqrt(),
                    sqrt_ab,
                }
            }
        }
    }

    /// √(ab)·ρ: the covariance consistent with the (possibly exact) correlation.
    #[inline(always)]
    pub fn cov(&self) -> T {
        self.sqrt_ab * self.rho
    }
}

/// arccos on [−1, 1] without a library call or data-dependent branches, so that it inlines
/// into the per-pair pass (and can vectorise). fdlibm's algorithm (as in musl): one
/// rational approximation of asin on z ∈ [0, 1/4], selected for |x| < 1/2 or
/// x = ±(1 − 2z); error ≤ 1 ulp of π in the tests below.
#[inline(always)]
pub fn acos<T: Real>(x: T) -> T {
    let ax = x.abs();
    let small = ax.lt(0.5);
    let z = T::select(small, x * x, (-ax + 1.0) * 0.5);
    let rz = rational(z);
    // |x| < 1/2: π/2 − (x + x·R(x²)).
    let near_zero = -(x - (-(x * rz) + PIO2_LO)) + PIO2_HI;
    let s = z.sqrt();
    // x ≤ −1/2: π − 2 asin(√z).
    let negative = (-(s + (rz * s - PIO2_LO)) + PIO2_HI) * 2.0;
    // x ≥ 1/2: 2 asin(√z), with √z split so that z − df² is exact (x = 1: z = s = 0).
    let df = s.high_word();
    let c = T::select(s.gt(0.0), (z - df * df) / (s + df), T::splat(0.0));
    let positive = (df + (rz * s + c)) * 2.0;
    T::select(small, near_zero, T::select(x.lt(0.0), negative, positive))
}

/// arcsin on [−1, 1], same approximation as [`acos`] (fdlibm's asin).
#[inline(always)]
pub fn asin<T: Real>(x: T) -> T {
    let ax = x.abs();
    let small = ax.lt(0.5);
    let near_zero = x + x * rational(x * x);
    let z = (-ax + 1.0) * 0.5;
    let s = z.sqrt();
    let r = rational(z);
    let f = s.high_word();
    let c = T::select(s.gt(0.0), (z - f * f) / (s + f), T::splat(0.0));
    // asin(|x|) = π/2 − 2 asin(√z), evaluated as fdlibm does for accuracy.
    let far =
        -((s * r * 2.0 - (-(c * 2.0) + PIO2_LO)) - (-(f * 2.0) + 0.5 * PIO2_HI)) + 0.5 * PIO2_HI;
    T::select(small, near_zero, far * x.signum0())
}

/// π/2 rounded to f64 (fdlibm's pio2_hi); PIO2_LO is the rounding error.
const PIO2_HI: f64 = std::f64::consts::FRAC_PI_2;
#[allow(clippy::excessive_precision)] // fdlibm's published digits, kept verbatim
const PIO2_LO: f64 = 6.123_233_995_736_766_035_87e-17;

/// fdlibm's rational approximation R(z) of (asin(√z) − √z)/√z on [0, 1/4].
#[inline(always)]
#[allow(clippy::excessive_precision)] // fdlibm's published coefficients, kept verbatim
fn rational<T: Real>(z: T) -> T {
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
    let p = z * ((z * ((z * ((z * ((z * ((z * PS5) + PS4)) + PS3)) + PS2)) + PS1)) + PS0);
    let q = z * ((z * ((z * ((z * QS4) + QS3)) + QS2)) + QS1) + 1.0;
    p / q
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
        assert_eq!(acos(1.0f64), 0.0);
        let mut worst_asin = 0.0f64;
        for i in 0..=n {
            let u = (-1.0 + 2.0 * i as f64 / n as f64).clamp(-1.0, 1.0);
            worst_asin = worst_asin.max((asin(u) - u.asin()).abs());
            let lanes = acos(F64x4([u, -u, 0.5 * u, 1.0]));
            assert_eq!(lanes.0[0], acos(u), "lanes and scalar agree bitwise");
        }
        assert!(
            worst_asin <= 4.5e-16,
            "max |asin − libm asin| = {worst_asin:e}"
        );
        assert_eq!(acos(-1.0f64), std::f64::consts::PI);
    }
}
