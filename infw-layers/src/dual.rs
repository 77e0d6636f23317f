//! The dual of an activation: the Gaussian expectations every limit needs (docs/math.md §3, §4).
//!
//! Conventions: `a = Σ(x,x)`, `b = Σ(x',x')`, `c = Σ(x,x')` with x' the second argument
//! (the training example of R and H); (u, v) ~ N(0, [[a, c], [c, b]]).

use crate::angle::Var;
use crate::pair::{Parallel, Want};
use crate::real::{F64x4, Real};

/// √(2/π), the Gaussian factor of the backward sign kernel B (docs/math.md §4).
pub const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

/// 1/√Π, or 0 when Π = 0 (B is 0 then: docs/math.md §4).
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
    /// E[φ'(u)²]: Σ̇(x,x), used by the backward covariance Π(x,x) (docs/math.md §4).
    pub dphi: f64,
}

/// The two-point moments of a layer (docs/math.md §3 and §4 tables); unrequested ones are 0.
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

/// The dual of an activation rule: its one-point and two-point Gaussian moments.
///
/// `Point<T>` is whatever the rule precomputes once per point from the variance of its
/// input (at least the variance with its square root, [`Var`]; a numerical rule may keep
/// series coefficients); the per-pair pass only combines two such values with the
/// covariance. `T` is `f64` for one point or [`F64x4`] for four training points in lanes.
pub trait Dual {
    /// Per-point data of the rule's input.
    type Point<T: Real>: Copy + Default + Send + Sync + std::fmt::Debug;

    /// One-point moments at variance `a`, and the per-point data the pair pass needs.
    fn point(&self, a: f64) -> (DiagDual, Self::Point<f64>);

    /// Four points' data in the lanes of one.
    fn gather(points: [&Self::Point<f64>; 4]) -> Self::Point<F64x4>;

    /// One point's data repeated in every lane.
    fn splat(point: &Self::Point<f64>) -> Self::Point<F64x4>;

    /// Two-point moments of x (`a`) and x' (`b`, the training example) at covariance `c`;
    /// `want` selects what is computed (the rest is 0): `nngp` E[φφ], `ntk` E[φ'φ'], `readout`
    /// S, `hidden` S, D and E[φ'φ']. E[φφ] is the next node's Σ, so the generated code always
    /// asks for it.
    fn pair<T: Real>(
        &self,
        a: &Self::Point<T>,
        b: &Self::Point<T>,
        c: T,
        parallel: Parallel,
        want: Want,
    ) -> PairDual<T>;
}

/// The per-point data of a closed-form rule: the variance with its square roots.
/// Closed-form rules use this in [`Dual`]'s `gather` and `splat`.
#[inline(always)]
pub fn gather_var(p: [&Var; 4]) -> Var<F64x4> {
    crate::angle::gather_vars([&[*p[0]], &[*p[1]], &[*p[2]], &[*p[3]]])[0]
}

/// One variance repeated in every lane.
#[inline(always)]
pub fn splat_var(p: &Var) -> Var<F64x4> {
    crate::angle::splat_vars(&[*p])[0]
}

impl Parallel {
    /// Parallelism of a sum or concatenation: kept when every input is parallel with the
    /// same sign and `equal_variances` (each input then has multiple exactly 1).
    #[inline(always)]
    pub fn combine(inputs: &[Parallel], equal_variances: bool) -> Parallel {
        match inputs.first() {
            Some(&first)
                if equal_variances
                    && first != Parallel::Unknown
                    && inputs.iter().all(|&p| p == first) =>
            {
                first
            }
            _ => Parallel::Unknown,
        }
    }

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
