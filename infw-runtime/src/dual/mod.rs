//! Closed-form dual activations (SPEC §3, §4): one file per layer rule, each holding the
//! rule's NNGP/NTK map, its Adam-limit (sign-kernel) map, its finite forward/derivative and
//! how it carries exact parallelism.
//!
//! Conventions: `a = Σ(x,x)`, `b = Σ(x',x')`, `c = Σ(x,x')` with x' the second argument
//! (the training example of R and H); (u, v) ~ N(0, [[a, c], [c, b]]).

pub mod angle;
pub mod erf;
pub mod piecewise_linear;
pub mod real;

pub use angle::{acos, asin, gather_vars, splat_vars, Angle, Var};
pub use erf::Erf;
pub use piecewise_linear::PiecewiseLinear;
pub use real::{gather_values, sign0, splat_values, F64x4, Real};

use crate::program::{Parallel, Want};

/// √(2/π), the Gaussian factor of the backward sign kernel B (SPEC §4).
pub const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

/// 1/√Π, or 0 when Π = 0 (B is 0 then: SPEC §4).
#[inline(always)]
pub fn inv_sqrt_or_zero(pi: f64) -> f64 {
    if pi > 0.0 {
        1.0 / pi.sqrt()
    } else {
        0.0
    }
}

/// The one-point moments of a layer: E[φ(u)²] and E[φ'(u)²] for u ~ N(0, a).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiagDual {
    /// E[φ(u)²]: the next layer's Σ(x,x) before its dense map.
    pub phi: f64,
    /// E[φ'(u)²]: Σ̇(x,x), used by the backward covariance Π(x,x) (SPEC §4).
    pub dphi: f64,
}

/// The two-point moments of a layer (SPEC §3 and §4 tables); unrequested ones are 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairDual<T = f64> {
    /// E[φ(u)φ(v)].
    pub phi: T,
    /// E[φ'(u)φ'(v)] = Σ̇(x,x').
    pub dphi: T,
    /// S = E[φ(u) sign φ(v)], the forward sign kernel.
    pub sign: T,
    /// D = E[φ'(u) sign φ'(v)], the backward sign kernel.
    pub dsign: T,
    /// Exact parallelism of (φ(u), φ(v)).
    pub parallel: Parallel,
}

/// A layer rule with closed-form duals.
pub trait Dual {
    /// One-point moments at variance `a`.
    fn diag(&self, a: f64) -> DiagDual;
    /// Two-point moments at variances `a` (of x), `b` (of x', the training example) and
    /// covariance `c`; `want` selects what is computed (the rest is 0).
    fn pair<T: Real>(
        &self,
        a: Var<T>,
        b: Var<T>,
        c: T,
        parallel: Parallel,
        want: Want,
    ) -> PairDual<T>;
}

impl Parallel {
    /// Parallelism after a dense map Σ ← w²Σ + β²: a bias breaks ±1 unless the two
    /// variances are equal (the same point), and always breaks −1.
    #[inline(always)]
    pub fn after_dense(self, bias_free: bool, equal_variances: bool) -> Parallel {
        match self {
            Parallel::Positive if bias_free || equal_variances => Parallel::Positive,
            Parallel::Negative if bias_free => Parallel::Negative,
            _ => Parallel::Unknown,
        }
    }
}
