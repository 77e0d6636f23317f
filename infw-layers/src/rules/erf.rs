//! erf (docs/math.md §3 and §4 tables): φ(u) = erf(u).
//! ```text
//! E[φφ]   = (2/π) asin(2c/√((1+2a)(1+2b)))
//! E[φ'φ'] = (4/π)/√((1+2a)(1+2b) − 4c²)
//! S       = (2/π) asin(√2 c/√((1+2a) b))      (0 when b = 0: sign φ(0) = 0)
//! D       = (2/√π)/√(1+2a)                    (φ' > 0, so D = E[φ'(u)])
//! ```
//! No arccos appears, so nothing is ill-conditioned at correlation ±1; exact
//! parallelism still short-cuts c = ±√(ab).
use crate::angle::{asin, Angle, Var};
use crate::dual::{gather_var, splat_var, DiagDual, Dual, PairDual};
use crate::pair::{Parallel, Want};
use crate::real::{F64x4, Real};
use crate::rule::Rule;
use std::f64::consts::{FRAC_2_PI, FRAC_2_SQRT_PI, SQRT_2};

/// The error function (libm's).
#[inline]
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// The erf layer rule.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Erf;

impl Rule for Erf {
    const NAME: &'static str = "erf";
    const SUMMARY: &'static str = "erf(u); closed forms";
    fn from_params(_: &[f64]) -> Self {
        Erf
    }
    /// φ(u).
    #[inline(always)]
    fn forward(&self, u: f64) -> f64 {
        erf(u)
    }
    /// φ'(u) = (2/√π) e^{−u²}.
    #[inline(always)]
    fn derivative(&self, u: f64) -> f64 {
        FRAC_2_SQRT_PI * (-u * u).exp()
    }
}

impl Dual for Erf {
    type Point<T: Real> = Var<T>;

    #[inline(always)]
    fn point(&self, a: f64) -> (DiagDual, Var) {
        let s = 1.0 + 2.0 * a;
        let diag = DiagDual {
            phi: FRAC_2_PI * (2.0 * a / s).asin(),
            dphi: 2.0 * FRAC_2_PI / (1.0 + 4.0 * a).sqrt(),
        };
        (diag, Var::new(a))
    }

    #[inline(always)]
    fn gather(points: [&Var; 4]) -> Var<F64x4> {
        gather_var(points)
    }

    #[inline(always)]
    fn splat(point: &Var) -> Var<F64x4> {
        splat_var(point)
    }

    #[inline(always)]
    fn pair<T: Real>(
        &self,
        av: &Var<T>,
        bv: &Var<T>,
        c: T,
        parallel: Parallel,
        want: Want,
    ) -> PairDual<T> {
        let (av, bv) = (*av, *bv);
        let (a, b) = (av.var, bv.var);
        let zero = T::splat(0.0);
        // Parallel pairs keep ±1 only when the variances agree (erf is odd but not homogeneous).
        let parallel = if a.all_eq(b) {
            parallel
        } else {
            Parallel::Unknown
        };
        let c = if parallel == Parallel::Unknown {
            c
        } else {
            Angle::new(av, bv, c, parallel).cov()
        };
        let (sa, sb) = (a * 2.0 + 1.0, b * 2.0 + 1.0);
        let (root_a, root_b) = (sa.sqrt(), sb.sqrt());
        let r = (c * 2.0 / (root_a * root_b)).clamp_unit();
        let mut out = PairDual {
            phi: asin(r) * FRAC_2_PI,
            dphi: zero,
            sign: zero,
            dsign: zero,
            parallel,
        };
        if want.ntk || want.hidden {
            let det = sa * sb - c * c * 4.0;
            // Huge variances overflow det: the same determinant in scaled form.
            let scaled = root_a * root_b * ((-r + 1.0) * (r + 1.0)).max_f(f64::MIN_POSITIVE).sqrt();
            let root_det = T::select(det.finite(), det.max_f(f64::MIN_POSITIVE).sqrt(), scaled);
            out.dphi = T::splat(2.0 * FRAC_2_PI) / root_det;
        }
        if want.readout || want.hidden {
            let s = asin((c * SQRT_2 / (root_a * bv.sqrt)).clamp_unit()) * FRAC_2_PI;
            out.sign = T::select(b.gt(0.0), s, zero);
        }
        if want.hidden {
            out.dsign = T::splat(FRAC_2_SQRT_PI) / root_a;
        }
        out
    }
}
