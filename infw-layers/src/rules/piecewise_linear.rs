//! Piecewise-linear activations φ(u) = p·max(u,0) + n·min(u,0): relu (1, 0),
//! leaky_relu(α) (1, α), abs (1, −1), identity (1, 1). One rule covers all four
//! (docs/math.md §3 and §4 tables); the constants fold once the generated code is inlined.
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
use crate::angle::{Angle, Var};
use crate::dual::{gather_var, splat_var, DiagDual, Dual, PairDual};
use crate::pair::{Parallel, Want};
use crate::real::{F64x4, Real};
use crate::rule::{Param, Rule};
use std::f64::consts::PI;

/// Slopes of a piecewise-linear activation on the positive and negative half-lines.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PiecewiseLinear {
    /// The slope for u > 0.
    pub pos: f64,
    /// The slope for u < 0.
    pub neg: f64,
}

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

use crate::real::sign0 as sign;

impl PiecewiseLinear {
    /// relu: slopes 1 and 0.
    pub const RELU: PiecewiseLinear = PiecewiseLinear { pos: 1.0, neg: 0.0 };
    /// abs: slopes 1 and −1.
    pub const ABS: PiecewiseLinear = PiecewiseLinear {
        pos: 1.0,
        neg: -1.0,
    };
    /// identity: slopes 1 and 1.
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
    type Point<T: Real> = Var<T>;

    #[inline(always)]
    fn point(&self, a: f64) -> (DiagDual, Var) {
        let (p, n) = (self.pos, self.neg);
        let half_sq = 0.5 * (p * p + n * n);
        let diag = DiagDual {
            phi: half_sq * a,
            dphi: if a > 0.0 {
                half_sq
            } else {
                self.derivative(0.0).powi(2)
            },
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
        a: &Var<T>,
        b: &Var<T>,
        c: T,
        parallel: Parallel,
        want: Want,
    ) -> PairDual<T> {
        let (a, b) = (*a, *b);
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

/// The Gaussian part of the backward sign kernel B of a signal g = G0 + φ'(u)·G1 whose two
/// parts are Gaussian given the forward pass with covariances P0 and P1 (a skip connection
/// beside this activation, u its input; docs/math.md §8), without the factor √(2/π):
///
/// ```text
/// E[ (P0(x,x') + φ'(u)φ'(v) P1(x,x')) / √(P0(x',x') + φ'(v)² P1(x',x')) ]
///   = Σ_{σ,σ' = ±} p_σσ' (P0 + s_σ s_σ' P1) / √(P0' + s_σ'² P1'),
/// p₊₊ = p₋₋ = (π−θ)/(2π),  p₊₋ = p₋₊ = θ/(2π),   s₊ = pos, s₋ = neg,
/// ```
/// with (u, v) the activation's input pair at `a`, `b`, `c`. A zero variance fixes the slope
/// of that side to φ'(0); a zero denominator gives 0 (as B does, docs/math.md §4).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn mixed_backward_sign<T: Real>(
    slopes: PiecewiseLinear,
    a: &Var<T>,
    b: &Var<T>,
    c: T,
    parallel: Parallel,
    [p0, p1]: [T; 2],
    [p0_b, p1_b]: [T; 2],
) -> T {
    let ang = Angle::new(*a, *b, c, parallel);
    let p_same = (-ang.theta + PI) * (0.5 / PI);
    let p_diff = ang.theta * (0.5 / PI);
    let d0 = T::splat(slopes.derivative(0.0));
    let (pos, neg) = (T::splat(slopes.pos), T::splat(slopes.neg));
    // The slopes each side takes: φ'(0) when that side's variance is 0 (then ρ = 0 and the
    // four probabilities are ¼, which averages the other side correctly).
    let (u_pos, u_neg) = (
        T::select(a.var.gt(0.0), pos, d0),
        T::select(a.var.gt(0.0), neg, d0),
    );
    let (v_pos, v_neg) = (
        T::select(b.var.gt(0.0), pos, d0),
        T::select(b.var.gt(0.0), neg, d0),
    );
    let inv = |den: T| {
        let zero = T::splat(0.0);
        T::select(
            den.gt(0.0),
            T::splat(1.0) / den.max_f(f64::MIN_POSITIVE).sqrt(),
            zero,
        )
    };
    let v_up = (p_same * (p0 + u_pos * v_pos * p1) + p_diff * (p0 + u_neg * v_pos * p1))
        * inv(p0_b + v_pos * v_pos * p1_b);
    let v_down = (p_diff * (p0 + u_pos * v_neg * p1) + p_same * (p0 + u_neg * v_neg * p1))
        * inv(p0_b + v_neg * v_neg * p1_b);
    v_up + v_down
}

/// The four named members of the family: each a [`Rule`] whose kernels are the core's.
macro_rules! piecewise_rule {
    ($(#[$doc:meta])* $name:ident, $grammar:literal, $summary:literal, $core:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $name;

        impl Dual for $name {
            type Point<T: Real> = Var<T>;
            #[inline(always)]
            fn point(&self, a: f64) -> (DiagDual, Var) {
                $core.point(a)
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
            fn pair<T: Real>(&self, a: &Var<T>, b: &Var<T>, c: T, parallel: Parallel, want: Want) -> PairDual<T> {
                $core.pair(a, b, c, parallel, want)
            }
        }

        impl Rule for $name {
            const NAME: &'static str = $grammar;
            const SUMMARY: &'static str = $summary;
            fn from_params(_: &[f64]) -> Self {
                $name
            }
            fn slopes(_: &[f64]) -> Option<(f64, f64)> {
                Some(($core.pos, $core.neg))
            }
            #[inline(always)]
            fn forward(&self, u: f64) -> f64 {
                $core.forward(u)
            }
            #[inline(always)]
            fn derivative(&self, u: f64) -> f64 {
                $core.derivative(u)
            }
        }
    };
}

piecewise_rule!(
    /// relu: max(u, 0).
    Relu, "relu", "max(u, 0); arc-cosine closed forms", PiecewiseLinear::RELU
);
piecewise_rule!(
    /// abs: |u|.
    Abs, "abs", "|u|; arc-cosine closed forms", PiecewiseLinear::ABS
);
piecewise_rule!(
    /// identity: u (what stands between two consecutive `dense` layers).
    Identity, "identity", "u; exact", PiecewiseLinear::IDENTITY
);

/// leaky_relu(α): max(u, 0) + α·min(u, 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyRelu {
    /// α, the slope for u < 0.
    pub alpha: f64,
}

impl LeakyRelu {
    #[inline(always)]
    fn core(&self) -> PiecewiseLinear {
        PiecewiseLinear::leaky(self.alpha)
    }
}

impl Dual for LeakyRelu {
    type Point<T: Real> = Var<T>;
    #[inline(always)]
    fn point(&self, a: f64) -> (DiagDual, Var) {
        self.core().point(a)
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
        a: &Var<T>,
        b: &Var<T>,
        c: T,
        parallel: Parallel,
        want: Want,
    ) -> PairDual<T> {
        self.core().pair(a, b, c, parallel, want)
    }
}

impl Rule for LeakyRelu {
    const NAME: &'static str = "leaky_relu";
    const PARAMS: &'static [Param] = &[Param {
        name: "alpha",
        default: None,
    }];
    const SUMMARY: &'static str = "max(u, 0) + α·min(u, 0); arc-cosine closed forms";
    fn check(params: &[f64]) -> Result<(), String> {
        match params {
            [a] if a.is_finite() && a.abs() <= 1e150 => Ok(()),
            _ => Err("the slope α must be finite and at most 1e150 in size (its square enters the kernel)".into()),
        }
    }
    fn from_params(params: &[f64]) -> Self {
        LeakyRelu { alpha: params[0] }
    }
    fn params(&self) -> Vec<f64> {
        vec![self.alpha]
    }
    fn slopes(params: &[f64]) -> Option<(f64, f64)> {
        Some((1.0, params[0]))
    }
    #[inline(always)]
    fn forward(&self, u: f64) -> f64 {
        self.core().forward(u)
    }
    #[inline(always)]
    fn derivative(&self, u: f64) -> f64 {
        self.core().derivative(u)
    }
}

#[cfg(test)]
mod tests {
    //! The one piecewise-linear rule against (1) the docs/math.md §3–§4 table rows, written out
    //! independently, and (2) Monte Carlo estimates of the four expectations. The reference
    //! fixtures only cover relu (and erf) for S and D; these tests cover leaky_relu, abs
    //! and identity too.
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rand_distr::StandardNormal;

    /// A function of the Gaussian pair (u, v) whose mean is estimated.
    type Integrand<'a> = Box<dyn Fn(f64, f64) -> f64 + 'a>;

    const ALL: Want = Want {
        nngp: true,
        ntk: true,
        readout: true,
        hidden: true,
    };

    fn rules() -> [(&'static str, PiecewiseLinear); 5] {
        [
            ("relu", PiecewiseLinear::RELU),
            ("leaky_relu(0.1)", PiecewiseLinear::leaky(0.1)),
            ("leaky_relu(0.7)", PiecewiseLinear::leaky(0.7)),
            ("abs", PiecewiseLinear::ABS),
            ("identity", PiecewiseLinear::IDENTITY),
        ]
    }

    /// (a, b, c) with correlations of both signs and unequal variances.
    const CASES: [(f64, f64, f64); 4] = [
        (1.3, 0.7, 0.4),
        (0.5, 2.0, -0.8),
        (2.2, 2.2, 2.0),
        (0.9, 1.6, -1.1),
    ];

    #[test]
    fn general_rule_reduces_to_the_spec_table_rows() {
        for (a, b, c) in CASES {
            let pair =
                |r: PiecewiseLinear| r.pair(&Var::new(a), &Var::new(b), c, Parallel::Unknown, ALL);
            let rho = c / (a * b).sqrt();
            let theta = rho.acos();
            let tau = 2.0 * PI;
            let relu_j = (a * b).sqrt() / tau * (theta.sin() + (PI - theta) * theta.cos());
            let close = |x: f64, y: f64, what: &str| {
                // Closed forms evaluated two ways in f64: agreement to ~1e-15 expected.
                assert!(
                    (x - y).abs() <= 1e-13 * (1.0 + y.abs()),
                    "{what} at {:?}: {x} vs {y}",
                    (a, b, c)
                )
            };
            let r = pair(PiecewiseLinear::RELU);
            close(r.phi, relu_j, "relu E[φφ]");
            close(r.dphi, (PI - theta) / tau, "relu E[φ'φ']");
            close(
                r.sign,
                a.sqrt() * (1.0 + rho) / (2.0 * tau.sqrt()),
                "relu S",
            );
            close(r.dsign, (PI - theta) / tau, "relu D");
            for alpha in [0.1, 0.7] {
                let l = pair(PiecewiseLinear::leaky(alpha));
                close(
                    l.phi,
                    alpha * c + (1.0 - alpha).powi(2) * relu_j,
                    "leaky E[φφ]",
                );
                close(
                    l.dphi,
                    alpha + (1.0 - alpha).powi(2) * (PI - theta) / tau,
                    "leaky E[φ'φ']",
                );
                close(l.sign, (1.0 + alpha) * c / (tau * b).sqrt(), "leaky S");
                close(l.dsign, (1.0 + alpha) / 2.0, "leaky D");
            }
            let s = pair(PiecewiseLinear::ABS);
            close(
                s.phi,
                2.0 / PI * (a * b).sqrt() * (theta.sin() + (PI / 2.0 - theta) * theta.cos()),
                "abs E[φφ]",
            );
            close(s.dphi, 2.0 / PI * rho.asin(), "abs E[φ'φ']");
            close(s.sign, (2.0 * a / PI).sqrt(), "abs S");
            close(s.dsign, 2.0 / PI * rho.asin(), "abs D");
            let i = pair(PiecewiseLinear::IDENTITY);
            close(i.phi, c, "identity E[φφ]");
            close(i.dphi, 1.0, "identity E[φ'φ']");
            close(i.sign, crate::SQRT_2_OVER_PI * c / b.sqrt(), "identity S");
            close(i.dsign, 1.0, "identity D");
        }
    }

    #[test]
    fn expectations_match_monte_carlo() {
        // 400k seeded samples per case; each estimate is a mean of bounded-variance terms,
        // so its standard error is measured from the samples and the check is ≤ 5 SE
        // (a false alarm among the 80 checks has probability < 1e-4).
        let n = 400_000;
        let mut rng = StdRng::seed_from_u64(7);
        for (a, b, c) in CASES {
            // u = √a z1, v = (c/√a) z1 + √(b − c²/a) z2.
            let samples: Vec<(f64, f64)> = (0..n)
                .map(|_| {
                    let (z1, z2): (f64, f64) =
                        (rng.sample(StandardNormal), rng.sample(StandardNormal));
                    (
                        a.sqrt() * z1,
                        c / a.sqrt() * z1 + (b - c * c / a).sqrt() * z2,
                    )
                })
                .collect();
            for (name, r) in rules() {
                let k = r.pair(&Var::new(a), &Var::new(b), c, Parallel::Unknown, ALL);
                let sign = |x: f64| sign(x);
                let checks: [(&str, f64, Integrand); 4] = [
                    ("E[φφ]", k.phi, Box::new(|u, v| r.forward(u) * r.forward(v))),
                    (
                        "E[φ'φ']",
                        k.dphi,
                        Box::new(|u, v| r.derivative(u) * r.derivative(v)),
                    ),
                    (
                        "S",
                        k.sign,
                        Box::new(move |u, v| r.forward(u) * sign(r.forward(v))),
                    ),
                    (
                        "D",
                        k.dsign,
                        Box::new(move |u, v| r.derivative(u) * sign(r.derivative(v))),
                    ),
                ];
                for (what, exact, f) in checks {
                    let (mut sum, mut sq) = (0.0, 0.0);
                    for &(u, v) in &samples {
                        let x = f(u, v);
                        sum += x;
                        sq += x * x;
                    }
                    let mean = sum / n as f64;
                    let se = ((sq / n as f64 - mean * mean).max(0.0) / n as f64).sqrt();
                    assert!(
                        (mean - exact).abs() <= 5.0 * se + 1e-12,
                        "{name} {what} at {:?}: closed form {exact}, Monte Carlo {mean} ± {se}",
                        (a, b, c)
                    );
                }
            }
        }
    }
}
