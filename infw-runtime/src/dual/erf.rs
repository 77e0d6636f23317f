//! erf (SPEC §3 and §4 tables): φ(u) = erf(u).
//!   E[φφ]   = (2/π) asin(2c/√((1+2a)(1+2b)))
//!   E[φ'φ'] = (4/π)/√((1+2a)(1+2b) − 4c²)
//!   S       = (2/π) asin(√2 c/√((1+2a) b))      (0 when b = 0: sign φ(0) = 0)
//!   D       = (2/√π)/√(1+2a)                    (φ' > 0, so D = E[φ'(u)])
//! No arccos appears, so nothing is ill-conditioned at correlation ±1; exact
//! parallelism still short-cuts c = ±√(ab).
use super::{Angle, DiagDual, Dual, PairDual, Var};
use crate::program::{Parallel, Want};
use std::f64::consts::{FRAC_2_PI, FRAC_2_SQRT_PI, SQRT_2};

/// The error function (libm's).
#[inline]
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// The erf layer rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Erf;

impl Erf {
    /// φ(u).
    #[inline(always)]
    pub fn forward(&self, u: f64) -> f64 {
        erf(u)
    }

    /// φ'(u) = (2/√π) e^{−u²}.
    #[inline(always)]
    pub fn derivative(&self, u: f64) -> f64 {
        FRAC_2_SQRT_PI * (-u * u).exp()
    }
}

impl Dual for Erf {
    #[inline(always)]
    fn diag(&self, a: f64) -> DiagDual {
        let s = 1.0 + 2.0 * a;
        DiagDual {
            phi: FRAC_2_PI * (2.0 * a / s).asin(),
            dphi: 2.0 * FRAC_2_PI / (1.0 + 4.0 * a).sqrt(),
        }
    }

    #[inline(always)]
    fn pair(&self, av: Var, bv: Var, c: f64, parallel: Parallel, want: Want) -> PairDual {
        let (a, b) = (av.var, bv.var);
        // Parallel pairs keep ±1 only when the variances agree (erf is odd but not homogeneous).
        let parallel = if a == b { parallel } else { Parallel::Unknown };
        let c = if parallel == Parallel::Unknown {
            c
        } else {
            Angle::new(av, bv, c, parallel).cov()
        };
        let (sa, sb) = (1.0 + 2.0 * a, 1.0 + 2.0 * b);
        let mut out = PairDual {
            phi: FRAC_2_PI * (2.0 * c / (sa.sqrt() * sb.sqrt())).clamp(-1.0, 1.0).asin(),
            parallel,
            ..PairDual::default()
        };
        if want.ntk || want.hidden {
            let det = sa * sb - 4.0 * c * c;
            out.dphi = if det.is_finite() {
                2.0 * FRAC_2_PI / det.max(f64::MIN_POSITIVE).sqrt()
            } else {
                // Huge variances: the same determinant in scaled form, free of overflow.
                let r = (2.0 * c / (sa.sqrt() * sb.sqrt())).clamp(-1.0, 1.0);
                2.0 * FRAC_2_PI
                    / (sa.sqrt()
                        * sb.sqrt()
                        * ((1.0 - r) * (1.0 + r)).max(f64::MIN_POSITIVE).sqrt())
            };
        }
        if (want.readout || want.hidden) && b > 0.0 {
            out.sign = FRAC_2_PI
                * (SQRT_2 * c / (sa.sqrt() * b.sqrt()))
                    .clamp(-1.0, 1.0)
                    .asin();
        }
        if want.hidden {
            out.dsign = FRAC_2_SQRT_PI / sa.sqrt();
        }
        out
    }
}
