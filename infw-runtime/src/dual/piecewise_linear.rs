//! Piecewise-linear activations φ(u) = p·max(u,0) + n·min(u,0): relu (1, 0),
//! leaky_relu(α) (1, α), abs (1, −1), identity (1, 1). One rule covers all four
//! (SPEC §3 and §4 tables); the constants fold once the generated code is inlined.
//!
//! ```text
//! J  = E[relu(u)relu(v)] = √(ab)/(2π)(sin θ + (π−θ)cos θ),  P₊₊ = (π−θ)/(2π),  P₊₋ = θ/(2π)
//! A  = E[relu(u)1[v>0]] = √a(1+ρ)/(2√(2π)),  k = E[u 1[v>0]] = √a ρ/√(2π)
//! E[φφ]   = (p−n)² J + p n c
//! E[φ'φ'] = (p²+n²) P₊₊ + 2 p n P₊₋
//! S       = s₊[pA + n(k−A)] + s₋[p(A−k) − nA],  s₊ = sign p, s₋ = −sign n
//! D       = (p·sign p + n·sign n) P₊₊ + (p·sign n + n·sign p) P₊₋
//! ```
//! These reduce to the SPEC table rows (checked against the reference values in tests).
use super::{Angle, DiagDual, Dual, PairDual, Real, Var};
use crate::program::{Parallel, Want};
use std::f64::consts::PI;

/// Slopes of a piecewise-linear activation on the positive and negative half-lines.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PiecewiseLinear {
    pub pos: f64,
    pub neg: f64,
}

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

use super::sign0 as sign;

impl PiecewiseLinear {
    pub const RELU: PiecewiseLinear = PiecewiseLinear { pos: 1.0, neg: 0.0 };
    pub const ABS: PiecewiseLinear = PiecewiseLinear {
        pos: 1.0,
        neg: -1.0,
    };
    pub const IDENTITY: PiecewiseLinear = PiecewiseLinear { pos: 1.0, neg: 1.0 };

    /// leaky_relu(α): max(u,0) + α·min(u,0).
    pub const fn leaky(alpha: f64) -> PiecewiseLinear {
        PiecewiseLinear {
            pos: 1.0,
            neg: alpha,
        }
    }

    /// φ(u).
    #[inline(always)]
    pub fn forward(&self, u: f64) -> f64 {
        if u > 0.0 {
            self.pos * u
        } else {
            self.neg * u
        }
    }

    /// φ'(u), with φ'(0) = 0 unless both slopes agree (identity).
    #[inline(always)]
    pub fn derivative(&self, u: f64) -> f64 {
        if u > 0.0 {
            self.pos
        } else if u < 0.0 || self.pos == self.neg {
            self.neg
        } else {
            0.0
        }
    }

    /// Parallelism of (φ(u), φ(v)) given that of (u, v): +1 survives every such φ;
    /// −1 survives identity, becomes +1 under abs, and is broken otherwise.
    #[inline(always)]
    fn carry(&self, parallel: Parallel) -> Parallel {
        match parallel {
            Parallel::Negative if self.pos == self.neg => Parallel::Negative,
            Parallel::Negative if self.pos == -self.neg => Parallel::Positive,
            Parallel::Negative => Parallel::Unknown,
            other => other,
        }
    }
}

impl Dual for PiecewiseLinear {
    #[inline(always)]
    fn diag(&self, a: f64) -> DiagDual {
        let (p, n) = (self.pos, self.neg);
        let half_sq = 0.5 * (p * p + n * n);
        DiagDual {
            phi: half_sq * a,
            dphi: if a > 0.0 {
                half_sq
            } else {
                self.derivative(0.0).powi(2)
            },
        }
    }

    #[inline(always)]
    fn pair<T: Real>(
        &self,
        a: Var<T>,
        b: Var<T>,
        c: T,
        parallel: Parallel,
        want: Want,
    ) -> PairDual<T> {
        let (p, n) = (self.pos, self.neg);
        let zero = T::splat(0.0);
        let ang = Angle::new(a, b, c, parallel);
        let c = if parallel == Parallel::Unknown {
            c
        } else {
            ang.cov()
        };
        let pi_minus = -ang.theta + PI;
        let j = (ang.sqrt_ab * ang.sin_theta + pi_minus * c) * (0.5 / PI);
        let mut out = PairDual {
            phi: j * ((p - n) * (p - n)) + c * (p * n),
            dphi: zero,
            sign: zero,
            dsign: zero,
            parallel: self.carry(parallel),
        };
        let p_same = pi_minus * (0.5 / PI);
        let p_diff = ang.theta * (0.5 / PI);
        if want.ntk || want.hidden {
            out.dphi = p_same * (p * p + n * n) + p_diff * (2.0 * p * n);
        }
        let has_b = b.var.gt(0.0);
        if want.readout || want.hidden {
            // s₊[pA + n(k−A)] + s₋[p(A−k) − nA] = A·(s₊+s₋)(p−n) + k·(s₊n − s₋p).
            let (s_pos, s_neg) = (sign(p), -sign(n));
            let big_a = a.sqrt * (ang.rho + 1.0) * (0.5 * INV_SQRT_2PI);
            let k = a.sqrt * ang.rho * INV_SQRT_2PI;
            let s = big_a * ((s_pos + s_neg) * (p - n)) + k * (s_pos * n - s_neg * p);
            out.sign = T::select(has_b, s, zero);
        }
        if want.hidden {
            let generic =
                p_same * (p * sign(p) + n * sign(n)) + p_diff * (p * sign(n) + n * sign(p));
            // v ≡ 0: sign φ'(v) = sign φ'(0), and E[φ'(u)] = (p+n)/2 (φ'(0) when u ≡ 0 too).
            let d0 = self.derivative(0.0);
            let degenerate = T::select(
                a.var.gt(0.0),
                T::splat(sign(d0) * 0.5 * (p + n)),
                T::splat(sign(d0) * d0),
            );
            out.dsign = T::select(has_b, generic, degenerate);
        }
        out
    }
}
