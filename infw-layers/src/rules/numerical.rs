//! The numerical engine (docs/math.md §6): the four Gaussian expectations of any φ given as
//! a function, E[φ(u)φ(v)], E[φ'(u)φ'(v)], S = E[φ(u) sign φ(v)], D = E[φ'(u) sign φ'(v)],
//! for (u, v) ~ N(0, [[a, c], [c, b]]) and every finite a, b ≥ 0, c.
//!
//! ```text
//! u = √a·x,  v = β x + γ z,   x, z ~ N(0, 1) independent,  β = ρ√b,  γ = √b·√((1−ρ)(1+ρ))
//! E[f(u) g(v)]          = E_x[ f(√a x) · E_z[g(βx + γz)] ]
//! E_z[sign g(βx + γz)]  = s₀ + Σ_j (s_j − s_{j−1}) · Q((r_j − βx)/γ)     (r_j: sign changes of g)
//! ```
//! Q is the Gaussian upper tail, s_j the sign of g after r_j. Two ways to the integrals:
//!
//! - **fast path** (φ and φ' declared smooth, moderate variances, |ρ| not within ~1e-3 of 1):
//!   trapezoidal sums on fixed grids in x and v, φ evaluated once per grid point and shared by
//!   every outer node; exponentially accurate for analytic integrands, and validated by the
//!   same sums at twice the steps (see the section below);
//! - **adaptive path** (everything else, and [`pair_moments_adaptive`], the reference): each
//!   Gaussian expectation is Gauss–Hermite with 24 and 48 nodes when every feature is wide
//!   enough and the two agree to [`GH_ACCEPT`], else globally adaptive Gauss–Kronrod (21
//!   points) on [−40, 40] standard deviations, split at the Gaussian's scale and at φ's
//!   features (0 and the sign changes of φ and φ', mapped to the variable of integration,
//!   with geometric breakpoints around a feature narrower than 1), so that kinks, steep sign
//!   transitions and large variances are resolved.
//!
//! ρ = ±1 (γ = 0) needs no limit: v = βx exactly, and the sign factor is a step at r_j/β. β = 0
//! (ρ = 0 or a zero variance) factorises into two one-dimensional expectations.
//!
//! Accuracy: ≤ 1e-10 of E|integrand| by construction (tolerances below); measured ≤ 5e-13
//! against every closed form and reference value in the tests. E[φφ] and E[φ'φ'] of smooth φ
//! (NNGP, NTK) first try a per-point Hermite series (Mehler's formula, see "The per-point
//! series" below): each pair checks a Cauchy–Schwarz bound on the truncation (≤ 1e-11 of
//! √(E[φ(u)²]E[φ(v)²])) and otherwise takes the quadrature; measured ≤ 8.5e-12 of that scale
//! against the adaptive oracle (tanh, softplus, silu, sigmoid; a, b in 0 … 30, |ρ| ≤ 1 − 1e-6;
//! 5458 of 6800 grid pairs on the series). Cost (tanh): ~34 ns per pair in lanes on the
//! series (NNGP + NTK); ~20–40 µs per pair on the trapezoidal fast path, ~1 ms on the
//! adaptive one. Measured (2-core AMD EPYC VM, `cargo bench --bench gram -- activations`,
//! N = 4000, d = 64, one run): tanh ×3 0.70 s against relu ×3 0.16 s, 4.4×: not yet within
//! 3×. Exactly parallel pairs and the diagonal take one-dimensional trapezoidal sums, and the
//! Gram leaves each row's diagonal bundle to its scalar pass (it had taken the quadrature at
//! ρ ≈ 1 first: 1.53 s before).

// `!(x > tol)` is written on purpose: a NaN error estimate must stop the loop, not run on.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use crate::angle::Var;
use crate::dual::{gather_var, splat_var, DiagDual, PairDual};
use crate::pair::{Parallel, Want};
use crate::real::{sign0, F64x4, Real};
use std::sync::OnceLock;

/// Where a function changes sign (docs/math.md §6: the inner expectation of a sign factor
/// is a sum of Gaussian tails at these points).
#[derive(Clone, Copy, Debug)]
pub enum SignChanges<'a> {
    /// Every point where sign φ changes, in any order (roots, or the end of a zero half-line
    /// as for relu); may be empty. They are also used as features (quadrature breakpoints).
    Known(&'a [f64]),
    /// Not known: located per call on a grid over ±12 standard deviations of the argument
    /// (see [`locate`]), so sign changes further out than 12σ are ignored (probability < 4e-33).
    Locate,
}

/// The symmetry of φ, which decides whether exact parallelism survives the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    /// φ(−u) = −φ(u).
    Odd,
    /// φ(−u) = φ(u).
    Even,
    /// Neither odd nor even.
    Neither,
}

/// A function integrated by the engine, with what is known about its sign.
#[derive(Clone, Copy, Debug)]
pub struct Fun<'a> {
    /// The function.
    pub f: fn(f64) -> f64,
    /// Where it changes sign.
    pub changes: SignChanges<'a>,
    /// Its symmetry.
    pub parity: Parity,
    /// Analytic, varying on a unit scale (tanh, gelu, …); false for a kink or a step (relu)
    /// or when nothing is known (a user's function). Decides where Gauss–Hermite is trusted.
    pub smooth: bool,
}

/// Parallelism of (φ(u), φ(v)) given that of (u, v): with equal variances v = ±u exactly,
/// so φ(v) = φ(u) (+1), or φ(v) = ∓φ(u) by the parity of φ; otherwise nothing is known.
#[inline]
pub fn carry(parity: Parity, parallel: Parallel, equal_variances: bool) -> Parallel {
    match (parallel, equal_variances, parity) {
        (_, false, _) | (Parallel::Unknown, _, _) => Parallel::Unknown,
        (Parallel::Positive, true, _) => Parallel::Positive,
        (Parallel::Negative, true, Parity::Odd) => Parallel::Negative,
        (Parallel::Negative, true, Parity::Even) => Parallel::Positive,
        (Parallel::Negative, true, Parity::Neither) => Parallel::Unknown,
    }
}

/// Gauss–Hermite acceptance: the 48-node sum is used when it differs from the 24-node one by
/// at most this fraction of E|g| (or the caller's looser tolerance). Gauss–Hermite is tried
/// only on smooth integrands (kinks and steps in reach exclude it, below), where it converges
/// like e^{−k√n}: the 48-node error is then about this to the power √2 (≈ 2e-13; measured on
/// tanh: 5e-9 at 24 nodes, 6e-13 at 48).
pub const GH_ACCEPT: f64 = 1e-9;
/// Gauss–Hermite is tried only when every feature of the integrand within the nodes' reach
/// ([`GH_REACH`] standard deviations) is at least 1/4 wide in the variable of integration: a
/// narrower one can fall between the nodes (spacing ≈ 0.45 near 0) and go unseen by both
/// rules alike (erf(100x) is ±1 at every node; relu(x)² is integrated exactly by any
/// symmetric rule, so a slightly smoothed kink passes the test with a 1e-10 error).
const MIN_GH_WIDTH: f64 = 0.25;
/// Beyond this many standard deviations a feature cannot matter to Gauss–Hermite (ϕ(14) ≈ 1e-43).
const GH_REACH: f64 = 14.0;
/// The width of a smooth activation's features in its own argument (tanh, gelu, … vary on
/// a unit scale); a kink or a step has width 0, smoothed only by the Gaussian.
const SMOOTH_WIDTH: f64 = 1.0;

/// Relative tolerance of the outer adaptive integral (of E|integrand|). QUADPACK's error
/// estimate overstates the 21-point Kronrod error by orders of magnitude on smooth panels
/// (measured: a 1e-10 estimate for a 1e-16 error), so the results are far better than this.
const TOL_OUTER: f64 = 1e-10;
/// Relative tolerance of the inner adaptive integral, tighter so the outer one sees a smooth
/// integrand; loosened by ϕ(0)/ϕ(x) at outer nodes that weigh less (up to 1e-4).
const TOL_INNER: f64 = 1e-11;
/// Panels of one adaptive integral, at most (bounds the cost on pathological input).
const MAX_PANELS: usize = 600;
/// Integration range in standard deviations: ϕ(40) underflows, so nothing beyond can count.
const RANGE: f64 = 40.0;
/// The Gaussian's own scale, breakpoints of every adaptive integral (in standard deviations).
const GAUSS_BREAKS: [f64; 7] = [-40.0, -7.0, -3.0, 0.0, 3.0, 7.0, 40.0];

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Gaussian upper tail Q(t) = P(Z > t), accurate in both tails.
#[inline]
pub fn gauss_tail(t: f64) -> f64 {
    0.5 * libm::erfc(t * std::f64::consts::FRAC_1_SQRT_2)
}

/// Standard normal density.
#[inline]
fn density(x: f64) -> f64 {
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

// ---------------------------------------------------------------------------------------
// Sign patterns

/// The sign of a function on the intervals between its sign-change points:
/// `signs[j]` holds on (points[j−1], points\[j\]), with points[−1] = −∞, points\[m\] = +∞.
#[derive(Clone, Debug, PartialEq)]
pub struct SignPattern {
    /// The sign-change points, ascending.
    pub points: Vec<f64>,
    /// The sign (±1 or 0) on each of the `points.len() + 1` intervals.
    pub signs: Vec<f64>,
}

impl SignPattern {
    /// The pattern of `fun` for an argument of standard deviation `sd` (used only by
    /// [`SignChanges::Locate`]).
    pub fn new(fun: &Fun, sd: f64) -> SignPattern {
        match fun.changes {
            SignChanges::Known(points) => SignPattern::known(fun.f, points),
            SignChanges::Locate => locate(fun.f, sd),
        }
    }

    /// Sign of `f` between given change points: sampled inside each interval.
    pub fn known(f: fn(f64) -> f64, points: &[f64]) -> SignPattern {
        let mut points: Vec<f64> = points.iter().copied().filter(|p| p.is_finite()).collect();
        points.sort_by(f64::total_cmp);
        points.dedup();
        let m = points.len();
        let signs = (0..=m)
            .map(|j| {
                let lo = if j == 0 { None } else { Some(points[j - 1]) };
                let hi = points.get(j).copied();
                let probes = match (lo, hi) {
                    (Some(l), Some(h)) => [0.5, 0.25, 0.75].map(|t| l + t * (h - l)),
                    (None, Some(h)) => [1.0, 0.5, 2.0].map(|t| h - t * (1.0 + h.abs())),
                    (Some(l), None) => [1.0, 0.5, 2.0].map(|t| l + t * (1.0 + l.abs())),
                    (None, None) => [0.0, 1.0, -1.0],
                };
                probes
                    .iter()
                    .map(|&x| sign0(f(x)))
                    .find(|&s| s != 0.0)
                    .unwrap_or(0.0)
            })
            .collect();
        SignPattern { points, signs }
    }

    /// E[sign f(μ + γZ)]: a sum of Gaussian tails at the change points (γ > 0), or the sign
    /// on the interval holding μ (γ = 0).
    #[inline]
    pub fn cond(&self, mu: f64, gamma: f64) -> f64 {
        if gamma > 0.0 {
            let mut h = self.signs[0];
            for (j, &p) in self.points.iter().enumerate() {
                let step = self.signs[j + 1] - self.signs[j];
                if step != 0.0 {
                    h += step * gauss_tail((p - mu) / gamma);
                }
            }
            h
        } else {
            let j = self.points.iter().take_while(|&&p| p < mu).count();
            self.signs[j]
        }
    }
}

/// Sign changes of `f` located numerically for an argument of standard deviation `sd`:
/// sign f is sampled on 481 points over ±12·sd (and, when sd > 1, also every 0.05 over
/// ±min(12 sd, 20), where activations meant for unit-scale inputs have their features),
/// and each change between neighbours is refined by bisection to full precision. Two changes
/// closer than the grid step (a double root) can be missed; beyond ±12 sd the sign is taken
/// as constant. A zero variance gives the constant sign of f(0).
pub fn locate(f: fn(f64) -> f64, sd: f64) -> SignPattern {
    if !(sd > 0.0 && sd.is_finite()) {
        return SignPattern {
            points: Vec::new(),
            signs: vec![sign0(f(0.0))],
        };
    }
    let w = 12.0 * sd;
    let mut grid: Vec<f64> = (0..=480).map(|i| -w + w * (i as f64 / 240.0)).collect();
    if sd > 1.0 {
        let span = w.min(20.0);
        let n = (span / 0.05).ceil() as i64;
        grid.extend((-n..=n).map(|i| (i as f64 * 0.05).clamp(-span, span)));
    }
    grid.push(0.0);
    grid.sort_by(f64::total_cmp);
    grid.dedup();
    let signs_at: Vec<f64> = grid.iter().map(|&x| sign0(f(x))).collect();
    let mut points = Vec::new();
    let mut signs = vec![signs_at[0]];
    for i in 1..grid.len() {
        let (s_lo, s_hi) = (signs_at[i - 1], signs_at[i]);
        if s_lo == s_hi {
            continue;
        }
        let (mut lo, mut hi) = (grid[i - 1], grid[i]);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            if sign0(f(mid)) == s_lo {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        points.push(0.5 * (lo + hi));
        signs.push(s_hi);
    }
    SignPattern { points, signs }
}

// ---------------------------------------------------------------------------------------
// Quadrature rules

/// 21-point Gauss–Kronrod abscissae on [−1, 1] (QUADPACK qk21; positive half, descending,
/// the odd indices are the 10-point Gauss nodes).
#[allow(clippy::excessive_precision)]
const XGK: [f64; 11] = [
    0.995657163025808080735527280689003,
    0.973906528517171720077964012084452,
    0.930157491355708226001207180059508,
    0.865063366688984510732096688423493,
    0.780817726586416897063717578345042,
    0.679409568299024406234327365114874,
    0.562757134668604683339000099272694,
    0.433395394129247190799265943165784,
    0.294392862701460198131126603103866,
    0.148874338981631210884826001129720,
    0.000000000000000000000000000000000,
];
#[allow(clippy::excessive_precision)]
const WGK: [f64; 11] = [
    0.011694638867371874278064396062192,
    0.032558162307964727478818972459390,
    0.054755896574351996031381300244580,
    0.075039674810919952767043140916190,
    0.093125454583697605535065465083366,
    0.109387158802297641899210590325805,
    0.123491976262065851077958109831074,
    0.134709217311473325928054001771707,
    0.142775938577060080797094273138717,
    0.147739104901338491374841515972068,
    0.149445554002916905664936468389821,
];
#[allow(clippy::excessive_precision)]
const WG: [f64; 5] = [
    0.066671344308688137593568809893332,
    0.149451349150580593145776339657697,
    0.219086362515982043995534934228163,
    0.269266719309996355091226921569469,
    0.295524224714752870173892994651338,
];

/// One panel of an adaptive integral: the Kronrod value, an error estimate and ∫|f|.
#[derive(Clone, Copy, Debug)]
struct Panel<const N: usize> {
    lo: f64,
    hi: f64,
    value: [f64; N],
    err: [f64; N],
    abs: [f64; N],
}

/// 21-point Gauss–Kronrod on [lo, hi] with QUADPACK's error estimate.
fn gk21<const N: usize>(f: &mut impl FnMut(f64) -> [f64; N], lo: f64, hi: f64) -> Panel<N> {
    let centre = 0.5 * lo + 0.5 * hi;
    let half = 0.5 * hi - 0.5 * lo;
    let mut fv = [[0.0; N]; 21];
    fv[10] = f(centre);
    for j in 0..10 {
        let dx = half * XGK[j];
        fv[j] = f(centre - dx);
        fv[20 - j] = f(centre + dx);
    }
    let mut value = [0.0; N];
    let mut err = [0.0; N];
    let mut abs = [0.0; N];
    for k in 0..N {
        let mut resk = WGK[10] * fv[10][k];
        let mut resabs = WGK[10] * fv[10][k].abs();
        let mut resg = 0.0;
        for j in 0..10 {
            let (f1, f2) = (fv[j][k], fv[20 - j][k]);
            resk += WGK[j] * (f1 + f2);
            resabs += WGK[j] * (f1.abs() + f2.abs());
            if j % 2 == 1 {
                resg += WG[j / 2] * (f1 + f2);
            }
        }
        let mean = 0.5 * resk;
        let mut resasc = WGK[10] * (fv[10][k] - mean).abs();
        for j in 0..10 {
            resasc += WGK[j] * ((fv[j][k] - mean).abs() + (fv[20 - j][k] - mean).abs());
        }
        let h = half.abs();
        let (resasc, resabs) = (resasc * h, resabs * h);
        let mut e = ((resk - resg) * half).abs();
        if resasc != 0.0 && e != 0.0 {
            e = resasc * (200.0 * e / resasc).powf(1.5).min(1.0);
        }
        if resabs > f64::MIN_POSITIVE / (50.0 * f64::EPSILON) {
            e = e.max(50.0 * f64::EPSILON * resabs);
        }
        value[k] = resk * half;
        err[k] = if e.is_nan() { 0.0 } else { e };
        abs[k] = resabs;
    }
    Panel {
        lo,
        hi,
        value,
        err,
        abs,
    }
}

/// The plain 21-point Kronrod sum of a scalar f on [lo, hi] (for smooth f on short panels).
pub(crate) fn kronrod21(mut f: impl FnMut(f64) -> f64, lo: f64, hi: f64) -> f64 {
    gk21(&mut |x| [f(x)], lo, hi).value[0]
}

/// ∫ f over [breaks[0], breaks[last]] by globally adaptive Gauss–Kronrod: the panel with the
/// largest error (relative to each component's ∫|f|) is halved until the total error is at
/// most `tol`·∫|f| per component, or [`MAX_PANELS`] is reached.
fn adaptive<const N: usize>(
    f: &mut impl FnMut(f64) -> [f64; N],
    breaks: &[f64],
    tol: f64,
) -> [f64; N] {
    let mut panels: Vec<Panel<N>> = breaks
        .windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| gk21(f, w[0], w[1]))
        .collect();
    while panels.len() < MAX_PANELS {
        let mut abs = [0.0; N];
        let mut err = [0.0; N];
        for p in &panels {
            for k in 0..N {
                abs[k] += p.abs[k];
                err[k] += p.err[k];
            }
        }
        let scale = abs.map(|s| if s > 0.0 { 1.0 / s } else { 0.0 });
        let total: f64 = (0..N).map(|k| err[k] * scale[k]).fold(0.0, f64::max);
        if !(total > tol) {
            break;
        }
        let badness = |p: &Panel<N>| (0..N).map(|k| p.err[k] * scale[k]).fold(0.0, f64::max);
        let (worst, _) = panels
            .iter()
            .enumerate()
            .fold((0, -1.0), |(bi, bv), (i, p)| {
                let v = badness(p);
                if v > bv {
                    (i, v)
                } else {
                    (bi, bv)
                }
            });
        let p = panels[worst];
        let mid = 0.5 * p.lo + 0.5 * p.hi;
        if !(mid > p.lo && mid < p.hi) {
            // Cannot split further: accept this panel as it is.
            panels[worst].err = [0.0; N];
            continue;
        }
        panels[worst] = gk21(f, p.lo, mid);
        panels.push(gk21(f, mid, p.hi));
    }
    let mut value = [0.0; N];
    for p in &panels {
        for (v, pv) in value.iter_mut().zip(&p.value) {
            *v += pv;
        }
    }
    value
}

/// Probabilists' Gauss–Hermite rule with n nodes: nodes and weights for E[g(Z)], Z ~ N(0,1)
/// (the weights sum to 1). Newton on the orthonormal Hermite recurrence (Numerical Recipes'
/// gauher), then scaled by √2.
fn hermite(n: usize) -> Vec<(f64, f64)> {
    let pim4 = std::f64::consts::PI.powf(-0.25);
    let mut t = vec![0.0; n];
    let mut w = vec![0.0; n];
    let m = n.div_ceil(2);
    let nf = n as f64;
    let mut z = 0.0;
    for i in 0..m {
        z = match i {
            0 => (2.0 * nf + 1.0).sqrt() - 1.85575 * (2.0 * nf + 1.0).powf(-0.16667),
            1 => z - 1.14 * nf.powf(0.426) / z,
            2 => 1.86 * z - 0.86 * t[0],
            3 => 1.91 * z - 0.91 * t[1],
            _ => 2.0 * z - t[i - 2],
        };
        let mut pp = 0.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (pim4, 0.0);
            for j in 1..=n {
                let p3 = p2;
                p2 = p1;
                let jf = j as f64;
                p1 = z * (2.0 / jf).sqrt() * p2 - ((jf - 1.0) / jf).sqrt() * p3;
            }
            pp = (2.0 * nf).sqrt() * p2;
            let z1 = z;
            z = z1 - p1 / pp;
            if (z - z1).abs() <= 1e-15 * z.abs().max(1.0) {
                break;
            }
        }
        t[i] = z;
        t[n - 1 - i] = -z;
        w[i] = 2.0 / (pp * pp);
        w[n - 1 - i] = w[i];
    }
    let inv_sqrt_pi = 1.0 / std::f64::consts::PI.sqrt();
    (0..n)
        .map(|i| (t[i] * std::f64::consts::SQRT_2, w[i] * inv_sqrt_pi))
        .collect()
}

fn hermite_24() -> &'static [(f64, f64)] {
    static R: OnceLock<Vec<(f64, f64)>> = OnceLock::new();
    R.get_or_init(|| hermite(24))
}

fn hermite_48() -> &'static [(f64, f64)] {
    static R: OnceLock<Vec<(f64, f64)>> = OnceLock::new();
    R.get_or_init(|| hermite(48))
}

/// A point where an integrand changes fast, in the variable of integration, and the width
/// over which it does (0: a kink or a jump).
#[derive(Clone, Copy, Debug)]
struct Feature {
    at: f64,
    width: f64,
}

/// Features `r` of φ's argument seen in a variable that the argument is `scale` times, where
/// they are `width` wide in the argument (none when the scale is 0: the argument is constant).
/// E[φ(u)²], E[φ'(u)²] of smooth φ by trapezoidal sums on the series' nodes (x = i·h,
/// |x| ≤ [`SERIES_RANGE`], h = min(0.3, 0.27/√a): error about e^{−36}, see "The per-point
/// series"), accepted when the sums on every other node (step 2h, error about e^{−18})
/// agree to [`LINE_AGREE`]; None (the Gauss–Hermite / adaptive path) otherwise. Per point this replaces an adaptive
/// quadrature (~0.2 ms for tanh, whose 24- and 48-node Gauss–Hermite sums disagree) by
/// ~85 evaluations.
fn diag_trapezoid(phi: &Fun, dphi: &Fun, sa: f64) -> Option<DiagDual> {
    let [p, d] = line_trapezoid(phi, dphi, sa, sa)?;
    Some(DiagDual { phi: p, dphi: d })
}

/// E[φ(√a X)φ(βX)] and E[φ'(√a X)φ'(βX)], X ~ N(0, 1), of smooth φ: the exactly parallel
/// pairs (ρ = ±1, β = ±√b) and the diagonal ([`diag_trapezoid`]), by the same trapezoidal
/// sums, step min(0.3, 0.27/max(√a, |β|)), checked at twice the step; None when they
/// disagree or need too many nodes.
fn line_trapezoid(phi: &Fun, dphi: &Fun, sa: f64, beta: f64) -> Option<[f64; 2]> {
    let scale = sa.max(beta.abs());
    if !(phi.smooth && dphi.smooth && scale > 0.0 && scale.is_finite()) {
        return None;
    }
    let (h, n) = series_nodes(scale)?;
    let (mut fine, mut coarse, mut l1) = ([0.0; 2], [0.0; 2], [0.0; 2]);
    for i in -(n as i64)..=(n as i64) {
        let x = i as f64 * h;
        let w = density(x);
        let (u, v) = (sa * x, beta * x);
        let (fu, du) = ((phi.f)(u), (dphi.f)(u));
        let (fv, dv) = if v == u {
            (fu, du)
        } else {
            ((phi.f)(v), (dphi.f)(v))
        };
        let t = [w * fu * fv, w * du * dv];
        for m in 0..2 {
            fine[m] += t[m];
            l1[m] += t[m].abs();
            if i % 2 == 0 {
                coarse[m] += t[m];
            }
        }
    }
    let (fine, coarse) = (fine.map(|v| v * h), coarse.map(|v| v * 2.0 * h));
    let agree = (0..2).all(|m| (fine[m] - coarse[m]).abs() <= LINE_AGREE * l1[m] * h);
    (agree && fine.iter().all(|v| v.is_finite())).then_some(fine)
}

fn seen(points: &[f64], scale: f64, width: f64, out: &mut Vec<Feature>) {
    if scale == 0.0 || !scale.is_finite() {
        return;
    }
    out.extend(
        points
            .iter()
            .map(|&r| Feature {
                at: r / scale,
                width: width / scale.abs(),
            })
            .filter(|f| f.at.is_finite()),
    );
}

/// E[g(Z)], Z ~ N(0, 1), for a vector-valued g with the given features. Gauss–Hermite (24
/// and 48 nodes) when every feature within its reach is at least [`MIN_GH_WIDTH`] wide and
/// the two rules agree; otherwise adaptive Gauss–Kronrod on [−40, 40], split at the
/// Gaussian's scale, at every feature, and around a feature of width w < 1 at distances
/// w·4ᵏ, so that each panel is smooth on its own scale (a step smoothed over 1e-8 next to
/// a jump of the other factor is then integrated, not overlooked).
fn expect<const N: usize>(
    g: &mut impl FnMut(f64) -> [f64; N],
    features: &[Feature],
    tol: f64,
) -> [f64; N] {
    let gh = features
        .iter()
        .all(|f| !(f.at.abs() <= GH_REACH) || f.width >= MIN_GH_WIDTH);
    if gh {
        let sum = |g: &mut dyn FnMut(f64) -> [f64; N], rule: &[(f64, f64)]| {
            let (mut s, mut l1) = ([0.0; N], [0.0; N]);
            for &(x, w) in rule {
                let v = g(x);
                for k in 0..N {
                    s[k] += w * v[k];
                    l1[k] += w * v[k].abs();
                }
            }
            (s, l1)
        };
        let (coarse, _) = sum(g, hermite_24());
        let (fine, l1) = sum(g, hermite_48());
        let accept = GH_ACCEPT.max(tol);
        if (0..N).all(|k| (fine[k] - coarse[k]).abs() <= accept * l1[k]) {
            return fine;
        }
    }
    let mut breaks: Vec<f64> = GAUSS_BREAKS.to_vec();
    for f in features.iter().filter(|f| f.at.abs() < RANGE) {
        breaks.push(f.at);
        if f.width > 0.0 && f.width < 1.0 {
            // Below 1e-16 the smoothing changes the integral by less than that.
            let mut d = f.width.max(1e-16);
            while d < 1.5 {
                breaks.push(f.at - d);
                breaks.push(f.at + d);
                d *= 4.0;
            }
        }
    }
    breaks.retain(|x| x.abs() <= RANGE);
    breaks.sort_by(f64::total_cmp);
    breaks.dedup();
    let mut weighted = |x: f64| {
        let w = density(x);
        if w == 0.0 {
            [0.0; N]
        } else {
            g(x).map(|v| if v == 0.0 { 0.0 } else { w * v })
        }
    };
    adaptive(&mut weighted, &breaks, tol)
}

// ---------------------------------------------------------------------------------------
// The fast path for smooth φ: trapezoidal sums

// A smooth φ (`Fun::smooth`) is analytic in the strip |Im u| < π/2 of its argument (tanh's
// poles are at ±iπ/2; sigmoid, softplus and silu have theirs at ±iπ; erf and gelu are entire).
// The trapezoidal rule on the whole line converges like e^{−2πd/h} for an integrand analytic
// in |Im| < d, and like e^{−2π²σ²/h²} on a Gaussian of standard deviation σ. So, with
// u = √a x, M(μ) = E[φ(μ + γZ)] and v = μ + γz:
//
//   E[φ(u)φ(v)] ≈ h_x Σ_i ϕ(x_i) φ(√a x_i) M(βx_i),   M(μ) ≈ h_v Σ_j φ(v_j) N(v_j; μ, γ²)
//
// on fixed grids x_i = i h_x (|x| ≤ 10), v_j = j h_v (|v − μ| ≤ 10γ), where φ(v_j) is
// computed once per pair and shared by every outer node. h_x = min(0.5, 0.3/√a, 0.3/|β|)
// and h_v = min(0.3, γ/2) make each error about e^{−33}; the same sums at twice the steps
// (error about e^{−16}, on every other node) must agree to [`TRAP_AGREE`], or the adaptive
// quadrature is used instead. The sign factor's Q((r − βx)/γ) is a step of width γ/|β|:
// h_x ≤ 0.6 γ/|β| there. Tiny γ (≤ 0.1) takes 16 Gauss–Hermite nodes for M (error < e^{−50}).

/// Agreement required between the trapezoidal sums at h and 2h (relative to E|integrand|):
/// the 2h error is then at most this, and the h error about its square.
const TRAP_AGREE: f64 = 1e-6;
/// Agreement required of the one-dimensional sums of [`line_trapezoid`] at h and 2h
/// (relative to E|integrand|). Their integrands are analytic in a strip (`Fun::smooth`), where
/// the trapezoid's error is P·e^{−2πτ/h} with τ the strip's half-width: e^{−36.5}·P at h and
/// e^{−18.3}·P at 2h for h = 0.27/√a (see "The per-point series"), P growing like h^{1−m}
/// at poles of order m. A 2h difference ≤ 1e-4 thus bounds the h sum's error by about
/// 1e-4·e^{−18.3}·2^{m−1}: ~1e-11 for the order-4 poles of tanh′², measured 8.5e-12 at
/// a = 1 (`line_trapezoid_matches_quadrature`). At 1e-6 the check refused tanh's diagonal
/// for a ≳ 0.8 (2h sums 3.5e-6 apart, the h sum good to 2e-13) and every such point and
/// diagonal pair took the quadrature.
const LINE_AGREE: f64 = 1e-4;
/// Range of the trapezoidal sums, in standard deviations (ϕ(10) ≈ 8e-23).
const TRAP_RANGE: f64 = 10.0;
/// Most outer nodes of a trapezoidal sum (beyond: the adaptive path).
const TRAP_MAX_NODES: f64 = 800.0;

fn hermite_16() -> &'static [(f64, f64)] {
    static R: OnceLock<Vec<(f64, f64)>> = OnceLock::new();
    R.get_or_init(|| hermite(16))
}

/// The outer step for √a and the step scales of the other factor, or None when too fine.
fn outer_step(sa: f64, other: f64) -> Option<f64> {
    let mut h = 0.4f64;
    if sa > 0.0 {
        h = h.min(0.2 / sa);
    }
    if other > 0.0 {
        h = h.min(other);
    }
    (2.0 * TRAP_RANGE / h <= TRAP_MAX_NODES).then_some(h)
}

/// E[φ(u)φ(v)] and E[φ'(u)φ'(v)] by trapezoidal sums, validated at twice the steps.
#[allow(clippy::too_many_arguments)]
fn fast_product(
    f: fn(f64) -> f64,
    df: fn(f64) -> f64,
    sa: f64,
    beta: f64,
    gamma: f64,
    want: [bool; 2],
) -> Option<[f64; 2]> {
    if !(gamma <= 8.0) {
        return None;
    }
    let hx = outer_step(sa, 0.2 / beta.abs())?;
    let hv = (0.4 * gamma).min(0.2);
    let tiny = gamma <= 0.1;
    let n = (TRAP_RANGE / hx).floor() as i64;
    // φ and φ' on the v grid, filled on demand (NaN: not yet computed).
    let reach = TRAP_RANGE * (n as f64 * hx * beta.abs() / TRAP_RANGE + gamma) + 2.0 * hv;
    let j0 = if tiny {
        0
    } else {
        -(reach / hv).ceil() as i64 - 2
    };
    let mut cache: Vec<[f64; 2]> = if tiny {
        Vec::new()
    } else {
        vec![[f64::NAN; 2]; (2 * -j0 + 1) as usize]
    };
    let mut inner = |mu: f64, stride: i64| -> [f64; 2] {
        if tiny {
            let mut m = [0.0; 2];
            for &(z, w) in hermite_16() {
                let v = mu + gamma * z;
                if want[0] {
                    m[0] += w * f(v);
                }
                if want[1] {
                    m[1] += w * df(v);
                }
            }
            return m;
        }
        let h = hv * stride as f64;
        let lo = ((mu - TRAP_RANGE * gamma) / h).ceil() as i64;
        let hi = ((mu + TRAP_RANGE * gamma) / h).floor() as i64;
        let delta = h / gamma;
        let t0 = (lo as f64 * h - mu) / gamma;
        let mut w = (-0.5 * t0 * t0).exp();
        let mut r = (-(t0 * delta + 0.5 * delta * delta)).exp();
        let q = (-delta * delta).exp();
        let mut m = [0.0; 2];
        for j in lo..=hi {
            let idx = (j * stride - j0) as usize;
            let cell = &mut cache[idx];
            if cell[0].is_nan() {
                let v = (j * stride) as f64 * hv;
                *cell = [
                    if want[0] { f(v) } else { 0.0 },
                    if want[1] { df(v) } else { 0.0 },
                ];
            }
            m[0] += w * cell[0];
            m[1] += w * cell[1];
            w *= r;
            r *= q;
        }
        let norm = delta * INV_SQRT_2PI;
        [m[0] * norm, m[1] * norm]
    };
    let (mut fine, mut coarse, mut l1) = ([0.0; 2], [0.0; 2], [0.0; 2]);
    for i in -n..=n {
        let x = i as f64 * hx;
        let w = hx * density(x);
        let u = sa * x;
        let fu = [
            if want[0] { f(u) } else { 0.0 },
            if want[1] { df(u) } else { 0.0 },
        ];
        let m = inner(beta * x, 1);
        for k in 0..2 {
            fine[k] += w * fu[k] * m[k];
            l1[k] += w * (fu[k] * m[k]).abs();
        }
        if i % 2 == 0 {
            let m2 = inner(beta * x, 2);
            for k in 0..2 {
                coarse[k] += 2.0 * w * fu[k] * m2[k];
            }
        }
    }
    (0..2)
        .all(|k| (fine[k] - coarse[k]).abs() <= TRAP_AGREE * l1[k] && fine[k].is_finite())
        .then_some(fine)
}

/// S and D by a trapezoidal sum over x of φ(√a x)·E[sign φ(v) | x], validated at 2h.
#[allow(clippy::too_many_arguments)]
fn fast_sign(
    f: fn(f64) -> f64,
    df: fn(f64) -> f64,
    sa: f64,
    beta: f64,
    gamma: f64,
    patterns: [&SignPattern; 2],
    want: [bool; 2],
) -> Option<[f64; 2]> {
    let has_steps =
        want[0] && !patterns[0].points.is_empty() || want[1] && !patterns[1].points.is_empty();
    if has_steps && !(gamma > 0.0) {
        return None;
    }
    let hx = outer_step(
        sa,
        if has_steps {
            0.4 * gamma / beta.abs()
        } else {
            0.0
        },
    )?;
    let n = (TRAP_RANGE / hx).floor() as i64;
    let (mut fine, mut coarse, mut l1) = ([0.0; 2], [0.0; 2], [0.0; 2]);
    for i in -n..=n {
        let x = i as f64 * hx;
        let w = hx * density(x);
        let u = sa * x;
        let mu = beta * x;
        let g = [
            if want[0] {
                f(u) * patterns[0].cond(mu, gamma)
            } else {
                0.0
            },
            if want[1] {
                df(u) * patterns[1].cond(mu, gamma)
            } else {
                0.0
            },
        ];
        for k in 0..2 {
            fine[k] += w * g[k];
            l1[k] += w * g[k].abs();
            if i % 2 == 0 {
                coarse[k] += 2.0 * w * g[k];
            }
        }
    }
    (0..2)
        .all(|k| (fine[k] - coarse[k]).abs() <= TRAP_AGREE * l1[k] && fine[k].is_finite())
        .then_some(fine)
}

// ---------------------------------------------------------------------------------------
// The moments

/// Features of a function of an argument: 0 and the sign changes of φ and φ'.
fn features(p_phi: &SignPattern, p_dphi: &SignPattern) -> Vec<f64> {
    let mut f = vec![0.0];
    f.extend_from_slice(&p_phi.points);
    f.extend_from_slice(&p_dphi.points);
    f
}

/// The width of φ's features in its argument: [`SMOOTH_WIDTH`] when φ and φ' are smooth.
fn feature_width(phi: &Fun, dphi: &Fun) -> f64 {
    if phi.smooth && dphi.smooth {
        SMOOTH_WIDTH
    } else {
        0.0
    }
}

/// E[φ(u)²] and E[φ'(u)²] for u ~ N(0, a) (docs/math.md §6).
pub fn diag_moments(phi: &Fun, dphi: &Fun, a: f64) -> DiagDual {
    let a = if a > 0.0 { a } else { 0.0 };
    diag_trapezoid(phi, dphi, a.sqrt()).unwrap_or_else(|| diag_quadrature(phi, dphi, a))
}

/// [`diag_moments`] by Gauss–Hermite or adaptive quadrature only (the reference of the
/// trapezoidal sums).
pub(crate) fn diag_quadrature(phi: &Fun, dphi: &Fun, a: f64) -> DiagDual {
    let a = if a > 0.0 { a } else { 0.0 };
    let sa = a.sqrt();
    let (f, df) = (phi.f, dphi.f);
    let fu = features(&SignPattern::new(phi, sa), &SignPattern::new(dphi, sa));
    let mut xs = Vec::new();
    seen(&fu, sa, feature_width(phi, dphi), &mut xs);
    let [p, d] = expect(
        &mut |x| {
            let u = sa * x;
            let (y, dy) = (f(u), df(u));
            [y * y, dy * dy]
        },
        &xs,
        TOL_OUTER,
    );
    DiagDual { phi: p, dphi: d }
}

/// The accurate oracle: E[φ(u)φ(v)], E[φ'(u)φ'(v)], S = E[φ(u) sign φ(v)] and
/// D = E[φ'(u) sign φ'(v)] for (u, v) ~ N(0, [[a, c], [c, b]]), computed as `want` asks
/// (as every rule does: ntk or hidden → E[φ'φ'], readout or hidden → S, hidden → D);
/// `parallel` fixes ρ = ±1 exactly (docs/math.md §6). Never panics: negative or NaN
/// variances are taken as 0, a NaN covariance as 0. φ'(0) is taken literally where a
/// variance is 0 (relu'(0) = 0, as in the finite network).
pub fn pair_moments(
    phi: &Fun,
    dphi: &Fun,
    a: f64,
    b: f64,
    c: f64,
    parallel: Parallel,
    want: Want,
) -> PairDual<f64> {
    moments(phi, dphi, a, b, c, parallel, want, true)
}

/// [`pair_moments`] without the trapezoidal fast path: adaptive quadrature only (the
/// reference the fast path is tested against).
pub fn pair_moments_adaptive(
    phi: &Fun,
    dphi: &Fun,
    a: f64,
    b: f64,
    c: f64,
    parallel: Parallel,
    want: Want,
) -> PairDual<f64> {
    moments(phi, dphi, a, b, c, parallel, want, false)
}

#[allow(clippy::too_many_arguments)]
fn moments(
    phi: &Fun,
    dphi: &Fun,
    a: f64,
    b: f64,
    c: f64,
    parallel: Parallel,
    want: Want,
    fast: bool,
) -> PairDual<f64> {
    let a = if a > 0.0 { a } else { 0.0 };
    let b = if b > 0.0 { b } else { 0.0 };
    let (sa, sb) = (a.sqrt(), b.sqrt());
    let rho = match parallel {
        Parallel::Positive => 1.0,
        Parallel::Negative => -1.0,
        Parallel::Unknown if sa > 0.0 && sb > 0.0 => {
            // As `Angle` does (c·a^{-1/2}·b^{-1/2}), so that near ±1 both see the same ρ.
            let r = c * (1.0 / sa) * (1.0 / sb);
            if r.is_nan() {
                0.0
            } else {
                r.clamp(-1.0, 1.0)
            }
        }
        Parallel::Unknown => 0.0,
    };
    let beta = rho * sb;
    let gamma = sb * ((1.0 - rho) * (1.0 + rho)).max(0.0).sqrt();
    let want_phi = want.nngp;
    let want_dphi = want.ntk || want.hidden;
    let want_sign = want.readout || want.hidden;
    let want_dsign = want.hidden;
    let (f, df) = (phi.f, dphi.f);
    let width = feature_width(phi, dphi);

    let pv_phi = SignPattern::new(phi, sb);
    let pv_dphi = SignPattern::new(dphi, sb);
    let (pu_phi, pu_dphi) = if matches!(phi.changes, SignChanges::Locate) && a != b {
        (SignPattern::new(phi, sa), SignPattern::new(dphi, sa))
    } else {
        (pv_phi.clone(), pv_dphi.clone())
    };
    let fu = features(&pu_phi, &pu_dphi);
    let fv = features(&pv_phi, &pv_dphi);
    let mut out = PairDual {
        parallel: carry(phi.parity, parallel, a == b),
        ..PairDual::default()
    };
    // φ(√a x)'s features, in x.
    let mut xu = Vec::new();
    seen(&fu, sa, width, &mut xu);

    if beta == 0.0 {
        // u and v independent (ρ = 0, or a zero variance): two one-dimensional expectations.
        let [mf, mdf] = expect(&mut |x| [f(sa * x), df(sa * x)], &xu, TOL_OUTER);
        if want_phi || want_dphi {
            let mut zv = Vec::new();
            seen(&fv, gamma, width, &mut zv);
            let [nf, ndf] = expect(&mut |z| [f(gamma * z), df(gamma * z)], &zv, TOL_OUTER);
            out.phi = if want_phi { mf * nf } else { 0.0 };
            out.dphi = if want_dphi { mdf * ndf } else { 0.0 };
        }
        let sign_v = |p: &SignPattern, g: fn(f64) -> f64| {
            if gamma > 0.0 {
                p.cond(0.0, gamma)
            } else {
                sign0(g(0.0))
            }
        };
        if want_sign {
            out.sign = mf * sign_v(&pv_phi, f);
        }
        if want_dsign {
            out.dsign = mdf * sign_v(&pv_dphi, df);
        }
        return out;
    }

    let fast = fast && phi.smooth && dphi.smooth;
    if fast && gamma == 0.0 && !(want_sign || want_dsign) && (want_phi || want_dphi) {
        // Exactly parallel (ρ = ±1): a one-dimensional sum, as for the diagonal.
        if let Some([p, d]) = line_trapezoid(phi, dphi, sa, beta) {
            out.phi = if want_phi { p } else { 0.0 };
            out.dphi = if want_dphi { d } else { 0.0 };
            return out;
        }
    }
    let mut sign_done = !(want_sign || want_dsign);
    if fast && !sign_done {
        if let Some([s, d]) = fast_sign(
            f,
            df,
            sa,
            beta,
            gamma,
            [&pv_phi, &pv_dphi],
            [want_sign, want_dsign],
        ) {
            (out.sign, out.dsign) = (s, d);
            sign_done = true;
        }
    }
    let mut product_done = !(want_phi || want_dphi);
    if fast && !product_done {
        if let Some([p, d]) = fast_product(f, df, sa, beta, gamma, [want_phi, want_dphi]) {
            (out.phi, out.dphi) = (p, d);
            product_done = true;
        }
    }

    if !sign_done {
        // The sign factor: a step at r/β smoothed over γ/|β|.
        let mut xs = xu.clone();
        seen(&pv_phi.points, beta, gamma, &mut xs);
        seen(&pv_dphi.points, beta, gamma, &mut xs);
        let [s, d] = expect(
            &mut |x| {
                let u = sa * x;
                let mu = beta * x;
                [
                    if want_sign {
                        f(u) * pv_phi.cond(mu, gamma)
                    } else {
                        0.0
                    },
                    if want_dsign {
                        df(u) * pv_dphi.cond(mu, gamma)
                    } else {
                        0.0
                    },
                ]
            },
            &xs,
            TOL_OUTER,
        );
        out.sign = s;
        out.dsign = d;
    }

    if !product_done {
        // M(βx) = E_z[φ(βx + γz)]: φ's features seen at r/β, smoothed over γ.
        let mut xs = xu.clone();
        seen(&fv, beta, width + gamma, &mut xs);
        let mut zs: Vec<Feature> = Vec::with_capacity(fv.len());
        let [p, d] = expect(
            &mut |x| {
                let u = sa * x;
                let mu = beta * x;
                let [m, dm] = if gamma > 0.0 {
                    // This node weighs ϕ(x)/ϕ(0) of the bulk: its inner value needs only
                    // that much less relative accuracy (up to 1e-4).
                    let tol = (TOL_INNER * (0.5 * x * x).exp()).min(1e-4);
                    zs.clear();
                    zs.extend(
                        fv.iter()
                            .map(|&r| Feature {
                                at: (r - mu) / gamma,
                                width: width / gamma,
                            })
                            .filter(|f| f.at.is_finite()),
                    );
                    expect(
                        &mut |z| {
                            let v = mu + gamma * z;
                            [
                                if want_phi { f(v) } else { 0.0 },
                                if want_dphi { df(v) } else { 0.0 },
                            ]
                        },
                        &zs,
                        tol,
                    )
                } else {
                    [f(mu), df(mu)]
                };
                [
                    if want_phi { f(u) * m } else { 0.0 },
                    if want_dphi { df(u) * dm } else { 0.0 },
                ]
            },
            &xs,
            TOL_OUTER,
        );
        out.phi = p;
        out.dphi = d;
    }
    out
}

// ---------------------------------------------------------------------------------------
// Rules built on the engine

// ---------------------------------------------------------------------------------------
// The per-point series for smooth φ (Mehler's formula, docs/math.md §6)

// With hₖ = Heₖ/√k! (orthonormal for N(0, 1)) and αₖ(a) = E[φ(√a X) hₖ(X)],
//
//   E[φ(u)φ(v)] = Σₖ αₖ(a) αₖ(b) ρᵏ        (Mehler; likewise E[φ'φ'] with φ' coefficients)
//
// The coefficients are computed once per point; the pair pass is a polynomial in ρ. The tail
// from k = K on is bounded by Cauchy–Schwarz: |Σ_{k≥K} αₖβₖρᵏ| ≤ |ρ|^K √(T_a T_b) with
// T_a = E[φ(√a X)²] − Σ_{k<K} αₖ(a)² (Parseval), so each pair checks its bound and falls back
// to the quadrature when it exceeds [`SERIES_TOL`]·√(E[φ(u)²] E[φ(v)²]). Each point keeps
// T at every length of [`SERIES_TIERS`], and a bundle of pairs sums the shortest series
// whose bound holds in all its lanes: at |ρ| ≲ 0.2 (most pairs of most data) 8 terms do.
//
// The coefficients are trapezoidal sums on x = i·h, |x| ≤ [`SERIES_RANGE`]: φ(√a x) is
// analytic for |Im x| < π/(2√a) (`Fun::smooth`), hₖϕ is entire, so the error is about
// e^{−π²/(h√a)}; h = min(0.3, 0.27/√a) makes it ≤ e^{−36}. The sum of φ² on the same nodes
// must match the accurate E[φ²] of `diag_moments` to [`SERIES_CHECK`], or the point keeps no
// series (a user's "smooth" function that is not).

/// Series terms kept: k = 0 … 2·[`SERIES_HALF`] − 1 (half even, half odd).
pub const SERIES_HALF: usize = 24;
/// The lengths (terms per parity) a pair may stop at, shortest first; the last is all.
pub const SERIES_TIERS: [usize; 4] = [4, 8, 16, SERIES_HALF];
/// Truncation tolerance of the series per pair, relative to √(E[φ(u)²] E[φ(v)²]) ≥ E|φ(u)φ(v)|.
pub const SERIES_TOL: f64 = 1e-11;
/// Agreement required between the trapezoidal E[φ²] and the one of `diag_moments` (relative;
/// the latter is Gauss–Hermite accepted at [`GH_ACCEPT`], so not tighter than that).
const SERIES_CHECK: f64 = GH_ACCEPT;
/// Range of the coefficient sums in standard deviations: |hₖ(x)|√ϕ(x) is bounded, and
/// √ϕ(12.5) ≈ e^{−39}.
const SERIES_RANGE: f64 = 12.5;
/// Most nodes per side of the coefficient sums (a ≲ 350); beyond, no series.
const SERIES_MAX_NODES: usize = 1600;

/// The trapezoidal step and nodes per side for φ(σx), x = i·h, |x| ≤ [`SERIES_RANGE`]:
/// h = min(0.3, 0.27/σ) (error about e^{−36}, above); None beyond [`SERIES_MAX_NODES`].
fn series_nodes(sigma: f64) -> Option<(f64, usize)> {
    let h = (0.27 / sigma).min(0.3);
    let n = (SERIES_RANGE / h).ceil() as usize;
    (n <= SERIES_MAX_NODES).then_some((h, n))
}

/// Hermite coefficients of one function at one variance, split by parity, with the
/// Parseval tail and the norm.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Series<T = f64> {
    /// α_{2j}.
    pub even: [T; SERIES_HALF],
    /// α_{2j+1}.
    pub odd: [T; SERIES_HALF],
    /// √T per length of [`SERIES_TIERS`]: the root of what the first 2·`SERIES_TIERS[t]`
    /// terms miss of E[φ²] (+∞: no series for this point).
    pub tails: [T; SERIES_TIERS.len()],
    /// √E[φ²].
    pub norm: T,
}

impl Series<f64> {
    /// No series: every pair with this point takes the quadrature.
    pub const NONE: Series = Series {
        even: [0.0; SERIES_HALF],
        odd: [0.0; SERIES_HALF],
        tails: [f64::INFINITY; SERIES_TIERS.len()],
        norm: 0.0,
    };
}

/// The coefficients of φ and φ' at variance `a` (smooth φ only), given the accurate
/// one-point moments; [`Series::NONE`] where they cannot be trusted.
pub fn series(phi: &Fun, dphi: &Fun, a: f64, diag: &DiagDual) -> [Series; 2] {
    if !(phi.smooth && dphi.smooth && a >= 0.0 && a.is_finite()) {
        return [Series::NONE; 2];
    }
    let sa = a.sqrt();
    if a == 0.0 {
        // φ(u) = φ(0): only α₀, and nothing is missed.
        let (f0, d0) = ((phi.f)(0.0), (dphi.f)(0.0));
        let mut s = [Series::NONE; 2];
        for (s, v) in s.iter_mut().zip([f0, d0]) {
            s.even[0] = v;
            s.tails = [0.0; SERIES_TIERS.len()];
            s.norm = v.abs();
        }
        return s;
    }
    let Some((h, n)) = series_nodes(sa) else {
        return [Series::NONE; 2];
    };
    const K: usize = 2 * SERIES_HALF;
    // hₖ₊₁ = (x hₖ − √k hₖ₋₁)/√(k+1)
    let mut sq = [0.0; K];
    let mut inv = [0.0; K];
    for k in 0..K {
        sq[k] = (k as f64).sqrt();
        inv[k] = 1.0 / ((k + 1) as f64).sqrt();
    }
    let mut coef = [[0.0; K]; 2];
    let mut power = [0.0; 2];
    let mut herm = [0.0; K];
    for i in -(n as i64)..=(n as i64) {
        let x = i as f64 * h;
        let w = h * density(x);
        let u = sa * x;
        let (f, df) = ((phi.f)(u), (dphi.f)(u));
        let fu = [f * w, df * w];
        power[0] += fu[0] * f;
        power[1] += fu[1] * df;
        herm[0] = 1.0;
        herm[1] = x;
        for k in 1..K - 1 {
            herm[k + 1] = (x * herm[k] - sq[k] * herm[k - 1]) * inv[k];
        }
        for (c, f) in coef.iter_mut().zip(fu) {
            for k in 0..K {
                c[k] += f * herm[k];
            }
        }
    }
    let exact = [diag.phi, diag.dphi];
    let mut out = [Series::NONE; 2];
    for m in 0..2 {
        let p = exact[m];
        if !((power[m] - p).abs() <= SERIES_CHECK * p) || !coef[m].iter().all(|c| c.is_finite()) {
            continue;
        }
        let s = &mut out[m];
        for (t, &half) in SERIES_TIERS.iter().enumerate() {
            let kept: f64 = coef[m][..2 * half].iter().map(|c| c * c).sum();
            // Parseval: what the kept terms miss, against the larger of the two E[φ²], plus
            // the rounding of the difference.
            let tail = (power[m].max(p) - kept).max(0.0) + 4.0 * f64::EPSILON * p;
            s.tails[t] = tail.sqrt();
        }
        for j in 0..SERIES_HALF {
            s.even[j] = coef[m][2 * j];
            s.odd[j] = coef[m][2 * j + 1];
        }
        s.norm = p.sqrt();
    }
    out
}

fn gather_series(p: [&Series; 4]) -> Series<F64x4> {
    Series {
        even: std::array::from_fn(|j| {
            F64x4([p[0].even[j], p[1].even[j], p[2].even[j], p[3].even[j]])
        }),
        odd: std::array::from_fn(|j| F64x4([p[0].odd[j], p[1].odd[j], p[2].odd[j], p[3].odd[j]])),
        tails: std::array::from_fn(|t| {
            F64x4([p[0].tails[t], p[1].tails[t], p[2].tails[t], p[3].tails[t]])
        }),
        norm: F64x4([p[0].norm, p[1].norm, p[2].norm, p[3].norm]),
    }
}

fn splat_series(p: &Series) -> Series<F64x4> {
    Series {
        even: p.even.map(F64x4::splat),
        odd: p.odd.map(F64x4::splat),
        tails: p.tails.map(F64x4::splat),
        norm: F64x4::splat(p.norm),
    }
}

/// Σ_{j<H} aⱼ bⱼ r2ʲ by Horner in r2² on two interleaved halves (a shorter dependency
/// chain); H even.
#[inline(always)]
fn horner<T: Real, const H: usize>(a: &[T; SERIES_HALF], b: &[T; SERIES_HALF], r2: T) -> T {
    let r4 = r2 * r2;
    let top = H - 2;
    let mut even = a[top] * b[top];
    let mut odd = a[top + 1] * b[top + 1];
    let mut j = top;
    while j >= 2 {
        j -= 2;
        even = even * r4 + a[j] * b[j];
        odd = odd * r4 + a[j + 1] * b[j + 1];
    }
    even + odd * r2
}

/// E[φ(u)φ(v)] by the series' first 2H terms: the even part, the odd part or both by the
/// parity of φ.
#[inline(always)]
fn series_value<T: Real, const H: usize>(
    a: &Series<T>,
    b: &Series<T>,
    rho: T,
    r2: T,
    parity: Parity,
) -> T {
    match parity {
        Parity::Odd => horner::<T, H>(&a.odd, &b.odd, r2) * rho,
        Parity::Even => horner::<T, H>(&a.even, &b.even, r2),
        Parity::Neither => {
            horner::<T, H>(&a.even, &b.even, r2) + horner::<T, H>(&a.odd, &b.odd, r2) * rho
        }
    }
}

/// How far the truncation bound |ρ|^K √(T_a T_b) of the series cut at tier `t` (K =
/// 2·`SERIES_TIERS[t]`, `rk` = |ρ|^K) is within [`SERIES_TOL`] of √(E[φ(u)²]E[φ(v)²]), per
/// lane: accepted where [`accepted`] (NaN, from ∞·0, is not).
#[inline(always)]
fn series_margin<T: Real>(a: &Series<T>, b: &Series<T>, rk: T, t: usize) -> T {
    a.norm * b.norm * SERIES_TOL - rk * a.tails[t] * b.tails[t]
}

/// Whether lane `k` of a [`series_margin`] accepts the series (tol·scale − bound ≥ 0).
#[inline(always)]
fn accepted<T: Real>(margin: T, k: usize) -> bool {
    margin.lane(k) > -f64::MIN_POSITIVE
}

/// |ρ|^K for K = 2·`SERIES_TIERS[t]`, t = 0 … 3.
#[inline(always)]
fn tier_powers<T: Real>(rho: T) -> [T; SERIES_TIERS.len()] {
    const _: () = assert!(matches!(SERIES_TIERS, [4, 8, 16, 24]));
    let r2 = rho * rho;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let r16 = r8 * r8;
    let r32 = r16 * r16;
    [r8, r16, r32, r32 * r16]
}

/// E[φφ] (when `want_phi`) and E[φ'φ'] (when `want_dphi`) by the shortest series whose bound
/// holds in every lane; None when even the longest fails in some lane.
#[inline(always)]
fn tiered_series<T: Real>(
    a: &NumPoint<T>,
    b: &NumPoint<T>,
    rho: T,
    parity: [Parity; 2],
    want: [bool; 2],
) -> Option<[T; 2]> {
    let r2 = rho * rho;
    let powers = tier_powers(rho);
    let series = [(&a.phi, &b.phi), (&a.dphi, &b.dphi)];
    let t = (0..SERIES_TIERS.len()).find(|&t| {
        (0..2).all(|m| {
            !want[m] || {
                let margin = series_margin(series[m].0, series[m].1, powers[t], t);
                (0..T::LANES).all(|k| accepted(margin, k))
            }
        })
    })?;
    let mut out = [T::splat(0.0); 2];
    for m in 0..2 {
        if want[m] {
            out[m] = tier_value(series[m].0, series[m].1, rho, r2, parity[m], t);
        }
    }
    Some(out)
}

/// [`series_value`] at tier `t` of [`SERIES_TIERS`].
#[inline(always)]
fn tier_value<T: Real>(a: &Series<T>, b: &Series<T>, rho: T, r2: T, parity: Parity, t: usize) -> T {
    match t {
        0 => series_value::<T, { SERIES_TIERS[0] }>(a, b, rho, r2, parity),
        1 => series_value::<T, { SERIES_TIERS[1] }>(a, b, rho, r2, parity),
        2 => series_value::<T, { SERIES_TIERS[2] }>(a, b, rho, r2, parity),
        _ => series_value::<T, { SERIES_TIERS[3] }>(a, b, rho, r2, parity),
    }
}

/// The per-point data of a numerical rule: the variance of its input with its roots, and
/// the Hermite coefficients of φ and φ' for the per-point series (docs/math.md §6).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NumPoint<T = f64> {
    /// The input's variance with its roots.
    pub var: Var<T>,
    /// Coefficients of φ.
    pub phi: Series<T>,
    /// Coefficients of φ'.
    pub dphi: Series<T>,
}

impl NumPoint<f64> {
    /// The per-point data of input variance `a`, without series: every pair takes the
    /// quadrature.
    pub fn new(a: f64) -> NumPoint {
        NumPoint {
            var: Var::new(a),
            phi: Series::NONE,
            dphi: Series::NONE,
        }
    }

    /// The per-point data of input variance `a` with φ's and φ''s series (for smooth φ;
    /// `diag` are the accurate one-point moments at `a`).
    pub fn with_series(phi: &Fun, dphi: &Fun, a: f64, diag: &DiagDual) -> NumPoint {
        let [p, d] = series(phi, dphi, a, diag);
        NumPoint {
            var: Var::new(a),
            phi: p,
            dphi: d,
        }
    }
}

/// Four points' data in lanes.
#[inline]
pub fn gather_points(p: [&NumPoint; 4]) -> NumPoint<F64x4> {
    NumPoint {
        var: gather_var([&p[0].var, &p[1].var, &p[2].var, &p[3].var]),
        phi: gather_series([&p[0].phi, &p[1].phi, &p[2].phi, &p[3].phi]),
        dphi: gather_series([&p[0].dphi, &p[1].dphi, &p[2].dphi, &p[3].dphi]),
    }
}

/// One point's data in every lane.
#[inline]
pub fn splat_point(p: &NumPoint) -> NumPoint<F64x4> {
    NumPoint {
        var: splat_var(&p.var),
        phi: splat_series(&p.phi),
        dphi: splat_series(&p.dphi),
    }
}

/// Runs a scalar pair kernel once per lane and puts the results back in lanes; the
/// parallelism of the output is the caller's (it is one value for all lanes).
#[inline]
pub fn per_lane<T: Real>(
    a: &Var<T>,
    b: &Var<T>,
    c: T,
    parallel: Parallel,
    mut kernel: impl FnMut(f64, f64, f64) -> PairDual<f64>,
) -> PairDual<T> {
    let mut lanes = [PairDual::<f64>::default(); 4];
    for (k, lane) in lanes.iter_mut().enumerate().take(T::LANES) {
        *lane = kernel(a.var.lane(k), b.var.lane(k), c.lane(k));
    }
    PairDual {
        phi: T::from_lanes(|k| lanes[k].phi),
        dphi: T::from_lanes(|k| lanes[k].dphi),
        sign: T::from_lanes(|k| lanes[k].sign),
        dsign: T::from_lanes(|k| lanes[k].dsign),
        parallel,
    }
}

/// The whole [`Dual`](crate::dual::Dual) pair pass of a numerical rule: E[φφ] and E[φ'φ']
/// by the per-point series where its truncation bound allows (docs/math.md §6), the oracle
/// per lane for the other lanes, for known parallel pairs and for the sign kernels.
#[inline]
pub fn numerical_pair<T: Real>(
    phi: &Fun,
    dphi: &Fun,
    a: &NumPoint<T>,
    b: &NumPoint<T>,
    c: T,
    parallel: Parallel,
    want: Want,
) -> PairDual<T> {
    let out_parallel = carry(phi.parity, parallel, a.var.var.all_eq(b.var.var));
    let oracle = |a: f64, b: f64, c: f64| pair_moments(phi, dphi, a, b, c, parallel, want);
    if want.readout || want.hidden || parallel != Parallel::Unknown {
        return per_lane(&a.var, &b.var, c, out_parallel, oracle);
    }
    // As the oracle does: ρ = c·a^{-1/2}·b^{-1/2}, 0 when a variance is 0.
    let rho = (c * a.var.inv_sqrt * b.var.inv_sqrt).clamp_unit();
    // φ' of an odd φ is even and of an even φ odd.
    let dparity = match phi.parity {
        Parity::Odd => Parity::Even,
        Parity::Even => Parity::Odd,
        Parity::Neither => Parity::Neither,
    };
    let parity = [phi.parity, dparity];
    let wanted = [want.nngp, want.ntk];
    let zero = T::splat(0.0);
    let finite =
        |v: &[T; 2]| (0..T::LANES).all(|k| v[0].lane(k).is_finite() && v[1].lane(k).is_finite());
    if let Some(v) = tiered_series(a, b, rho, parity, wanted).filter(finite) {
        return PairDual {
            phi: v[0],
            dphi: v[1],
            sign: zero,
            dsign: zero,
            parallel: out_parallel,
        };
    }
    // Some lanes declined (or gave a NaN): those take the oracle, the others the full series.
    let full = SERIES_TIERS.len() - 1;
    let r2 = rho * rho;
    let rk = tier_powers(rho)[full];
    let series = [(&a.phi, &b.phi), (&a.dphi, &b.dphi)];
    let value = [0, 1].map(|m| {
        let (p, q) = series[m];
        series_value::<T, SERIES_HALF>(p, q, rho, r2, parity[m])
    });
    let margin = series.map(|(p, q)| series_margin(p, q, rk, full));
    let good = |k: usize| {
        (0..2).all(|m| !wanted[m] || accepted(margin[m], k) && value[m].lane(k).is_finite())
    };
    let mut slow = [PairDual::<f64>::default(); 4];
    for (k, lane) in slow.iter_mut().enumerate().take(T::LANES) {
        if !good(k) {
            *lane = oracle(a.var.var.lane(k), b.var.var.lane(k), c.lane(k));
        }
    }
    let pick = |m: usize, get: fn(&PairDual<f64>) -> f64| {
        T::from_lanes(|k| {
            if !wanted[m] {
                0.0
            } else if good(k) {
                value[m].lane(k)
            } else {
                get(&slow[k])
            }
        })
    };
    PairDual {
        phi: pick(0, |p| p.phi),
        dphi: pick(1, |p| p.dphi),
        sign: zero,
        dsign: zero,
        parallel: out_parallel,
    }
}

/// Implements [`Dual`](crate::dual::Dual) for a rule type whose kernels are all numerical,
/// given expressions for its φ and φ' as [`Fun`]s (and optionally one generic parameter).
macro_rules! numerical_dual {
    ($ty:ty, $phi:expr, $dphi:expr $(; $g:ident : $bound:path)?) => {
        impl<$($g: $bound)?> $crate::dual::Dual for $ty {
            type Point<T: $crate::real::Real> = $crate::rules::numerical::NumPoint<T>;
            fn point(
                &self,
                a: f64,
            ) -> ($crate::dual::DiagDual, $crate::rules::numerical::NumPoint) {
                let diag = $crate::rules::numerical::diag_moments(&$phi, &$dphi, a);
                let point =
                    $crate::rules::numerical::NumPoint::with_series(&$phi, &$dphi, a, &diag);
                (diag, point)
            }
            fn gather(
                points: [&$crate::rules::numerical::NumPoint; 4],
            ) -> $crate::rules::numerical::NumPoint<$crate::real::F64x4> {
                $crate::rules::numerical::gather_points(points)
            }
            fn splat(
                point: &$crate::rules::numerical::NumPoint,
            ) -> $crate::rules::numerical::NumPoint<$crate::real::F64x4> {
                $crate::rules::numerical::splat_point(point)
            }
            fn pair<T: $crate::real::Real>(
                &self,
                a: &$crate::rules::numerical::NumPoint<T>,
                b: &$crate::rules::numerical::NumPoint<T>,
                c: T,
                parallel: $crate::pair::Parallel,
                want: $crate::pair::Want,
            ) -> $crate::dual::PairDual<T> {
                $crate::rules::numerical::numerical_pair(&$phi, &$dphi, a, b, c, parallel, want)
            }
        }
    };
}
pub(crate) use numerical_dual;

#[cfg(test)]
// mpmath reference values keep all their digits; lanes are compared index by index.
#[allow(clippy::excessive_precision, clippy::needless_range_loop)]
pub(crate) mod tests;
