//! sin and cos (docs/math.md §8): closed-form NNGP/NTK, and sign kernels by an exact series.
//!
//! ```text
//! E[sin u sin v] = e^{−(a+b)/2} sinh c        E[cos u cos v] = e^{−(a+b)/2} cosh c
//! ```
//! (neural-tangents' `stax.Sin`; for cos, φ' = −sin and the two swap), computed as
//! ½ e^{−Var(u − σv)/2}(1 ∓ e^{−2|c|}) with σ = sign c and Var(u − σv) = (√a − √b)² +
//! 2(√(ab) − |c|), which neither overflows nor cancels.
//!
//! The sign kernels. sin changes sign at every kπ, so instead of a sum of Gaussian tails
//! over infinitely many roots (docs/math.md §6) we use the square waves' Fourier series,
//! sign sin v = (4/π) Σ_{k odd} sin(kv)/k and sign cos v = (4/π) Σ_{k odd} (−1)^{(k−1)/2}
//! cos(kv)/k, and the Gaussian expectations E[sin u sin kv], E[cos u cos kv]:
//! ```text
//! Sₛ = E[sin u sign sin v] = (2/π) Σ_{k odd} (1/k) (e^{−E₋(k)/2} − e^{−E₊(k)/2})
//! Dₛ = E[cos u sign cos v] = (2/π) Σ_{k odd} (−1)^{(k−1)/2} (1/k) (e^{−E₋(k)/2} + e^{−E₊(k)/2})
//! E∓(k) = Var(u ∓ kv) = (k√b ∓ ρ√a)² + a(1−ρ²)
//! ```
//! The terms decay like e^{−b(k − k*)²/2} around k* = |ρ|√(a/b); the sum runs over
//! |k√b − |ρ|√a| ≤ 10 (neglected terms < e^{−50}), at most 10/√b + 1 of them. For
//! b ≤ (π/80)² that is too many, but then |v| < π/2 within 40 standard deviations, so
//! sign sin v = sign v and sign cos v = 1 up to < 1e-300, and exactly
//! ```text
//! Sₛ = e^{−a(1−ρ²)/2} (2/√π) F(ρ√(a/2)),    Dₛ = E[cos u] = e^{−a/2}     (F: Dawson's integral)
//! ```
//! For cos: S = E[cos u sign cos v] = Dₛ and D = E[(−sin u) sign(−sin v)] = Sₛ.
use crate::angle::Var;
use crate::dual::{gather_var, splat_var, DiagDual, Dual, PairDual};
use crate::pair::{Parallel, Want};
use crate::real::{F64x4, Real};
use crate::rule::Rule;
use crate::rules::numerical::{carry, kronrod21, per_lane, Parity};
use std::f64::consts::{FRAC_2_PI, FRAC_2_SQRT_PI, PI};

/// Above this b the Fourier series is summed; at or below it, sign sin v = sign v.
pub const SMALL_B: f64 = (PI / 80.0) * (PI / 80.0);

/// The correlation (±1 exactly when parallel, 0 with a zero variance) and the covariance
/// consistent with it.
fn correlation(sa: f64, sb: f64, c: f64, parallel: Parallel) -> (f64, f64) {
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
    let s = sa * sb;
    let c = match parallel {
        Parallel::Unknown if c.is_nan() => 0.0,
        Parallel::Unknown => c.clamp(-s, s),
        _ => rho * s,
    };
    (rho, c)
}

/// (E[sin u sin v], E[cos u cos v]).
pub fn closed_form(a: f64, b: f64, c: f64, parallel: Parallel) -> (f64, f64) {
    let (a, b) = (a.max(0.0), b.max(0.0));
    let (sa, sb) = (a.sqrt(), b.sqrt());
    let (_, c) = correlation(sa, sb, c, parallel);
    let var_diff = (sa - sb) * (sa - sb) + 2.0 * (sa * sb - c.abs());
    let half = 0.5 * (-0.5 * var_diff).exp();
    let e = (-2.0 * c.abs()).exp();
    let sin = half * -(-2.0 * c.abs()).exp_m1() * c.signum();
    (if c == 0.0 { 0.0 } else { sin }, half * (1.0 + e))
}

/// Dawson's integral F(x) = e^{−x²} ∫₀ˣ e^{t²} dt, to ~1e-15 relative: Taylor series for
/// |x| < ½, the asymptotic series Σ (2n−1)!!/(2x²)ⁿ/(2x) for |x| ≥ 8 (truncation error
/// ~e^{−x²}), and in between ∫₀^{min(x, 40/x)} e^{−s(2x−s)} ds by 21-point Kronrod panels
/// over which the exponent falls by at most 4.
pub fn dawson(x: f64) -> f64 {
    let ax = x.abs();
    let value = if ax < 0.5 {
        let (mut term, mut sum) = (ax, ax);
        for n in 0..30 {
            term *= -2.0 * ax * ax / (2 * n + 3) as f64;
            sum += term;
        }
        sum
    } else if ax >= 8.0 {
        let inv = 1.0 / (2.0 * ax * ax);
        let (mut term, mut sum) = (1.0, 1.0);
        for n in 0..60 {
            let next = term * (2 * n + 1) as f64 * inv;
            if next >= term || next < 1e-18 * sum {
                break;
            }
            term = next;
            sum += term;
        }
        sum / (2.0 * ax)
    } else {
        let top = ax.min(40.0 / ax);
        let panels = (2.0 * ax * top / 4.0).ceil().max(1.0) as usize;
        let h = top / panels as f64;
        (0..panels)
            .map(|i| {
                kronrod21(
                    |s| (-s * (2.0 * ax - s)).exp(),
                    i as f64 * h,
                    (i + 1) as f64 * h,
                )
            })
            .sum()
    };
    if x.is_nan() {
        x
    } else {
        value.copysign(x)
    }
}

/// (Sₛ, Dₛ) = (E[sin u sign sin v], E[cos u sign cos v]) of the module doc.
pub fn sign_kernels(a: f64, b: f64, c: f64, parallel: Parallel) -> (f64, f64) {
    let (a, b) = (a.max(0.0), b.max(0.0));
    let (sa, sb) = (a.sqrt(), b.sqrt());
    let (rho, _) = correlation(sa, sb, c, parallel);
    let tau2 = a * (1.0 - rho) * (1.0 + rho);
    if b == 0.0 {
        // v ≡ 0: sign sin 0 = 0, sign cos 0 = 1.
        return (0.0, (-0.5 * a).exp());
    }
    if b <= SMALL_B {
        let s = (-0.5 * tau2).exp() * FRAC_2_SQRT_PI * dawson(rho * (0.5 * a).sqrt());
        return (s, (-0.5 * a).exp());
    }
    let centre = rho.abs() * sa / sb;
    let width = 10.0 / sb;
    let lo = (centre - width).max(1.0);
    if lo > 1e15 || !lo.is_finite() {
        // Every term is below (2/π)·2/k ≤ 1.3e-15 and there are at most 10/√b + 1 of them.
        return (0.0, 0.0);
    }
    let hi = (centre + width).min(1e15 + 2.0 * width);
    let mut k = lo.floor() as u64 | 1;
    let (mut s, mut d) = (0.0, 0.0);
    while (k as f64) <= hi {
        let kf = k as f64;
        let (m, p) = (kf * sb - rho * sa, kf * sb + rho * sa);
        let em = (-0.5 * (m * m + tau2)).exp();
        let ep = (-0.5 * (p * p + tau2)).exp();
        s += (em - ep) / kf;
        let alternating = if k % 4 == 1 { 1.0 } else { -1.0 };
        d += alternating * (em + ep) / kf;
        k += 2;
    }
    (FRAC_2_PI * s, FRAC_2_PI * d)
}

/// sin(u).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sin;

/// cos(u).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cos;

/// The four kernels of sin (`cos = false`) or cos, as `want` asks.
fn trig_pair(cos: bool, a: f64, b: f64, c: f64, parallel: Parallel, want: Want) -> PairDual<f64> {
    let (ss, cc) = closed_form(a, b, c, parallel);
    let (phi, dphi) = if cos { (cc, ss) } else { (ss, cc) };
    let mut out = PairDual {
        phi: if want.nngp { phi } else { 0.0 },
        dphi: if want.ntk || want.hidden { dphi } else { 0.0 },
        ..PairDual::default()
    };
    if want.readout || want.hidden {
        let (s_sin, d_sin) = sign_kernels(a, b, c, parallel);
        let (s, d) = if cos { (d_sin, s_sin) } else { (s_sin, d_sin) };
        out.sign = s;
        out.dsign = if want.hidden { d } else { 0.0 };
    }
    out
}

macro_rules! trig_rule {
    ($name:ident, $cos:expr, $parity:expr, $grammar:literal, $summary:literal, $f:expr, $df:expr) => {
        impl Dual for $name {
            type Point<T: Real> = Var<T>;

            fn point(&self, a: f64) -> (DiagDual, Var) {
                let a = a.max(0.0);
                // E[sin² u] = (1 − e^{−2a})/2, E[cos² u] = (1 + e^{−2a})/2.
                let sin2 = -0.5 * (-2.0 * a).exp_m1();
                let cos2 = 0.5 * (1.0 + (-2.0 * a).exp());
                let diag = if $cos {
                    DiagDual {
                        phi: cos2,
                        dphi: sin2,
                    }
                } else {
                    DiagDual {
                        phi: sin2,
                        dphi: cos2,
                    }
                };
                (diag, Var::new(a))
            }

            fn gather(points: [&Var; 4]) -> Var<F64x4> {
                gather_var(points)
            }

            fn splat(point: &Var) -> Var<F64x4> {
                splat_var(point)
            }

            fn pair<T: Real>(
                &self,
                a: &Var<T>,
                b: &Var<T>,
                c: T,
                parallel: Parallel,
                want: Want,
            ) -> PairDual<T> {
                let out_parallel = carry($parity, parallel, a.var.all_eq(b.var));
                per_lane(a, b, c, out_parallel, |a, b, c| {
                    trig_pair($cos, a, b, c, parallel, want)
                })
            }
        }

        impl Rule for $name {
            const NAME: &'static str = $grammar;
            const SUMMARY: &'static str = $summary;
            fn from_params(_: &[f64]) -> Self {
                $name
            }
            #[inline]
            fn forward(&self, u: f64) -> f64 {
                ($f)(u)
            }
            #[inline]
            fn derivative(&self, u: f64) -> f64 {
                ($df)(u)
            }
        }
    };
}

trig_rule!(
    Sin,
    false,
    Parity::Odd,
    "sin",
    "sin(u); closed-form NNGP/NTK, sign kernels by an exact Fourier series",
    f64::sin,
    f64::cos
);
trig_rule!(
    Cos,
    true,
    Parity::Even,
    "cos",
    "cos(u); closed-form NNGP/NTK, sign kernels by an exact Fourier series",
    f64::cos,
    |u: f64| -u.sin()
);

#[cfg(test)]
// mpmath reference values keep all their digits; lanes are compared index by index.
#[allow(clippy::excessive_precision, clippy::needless_range_loop)]
mod tests {
    //! The closed forms against neural-tangents and the numerical engine; the sign series
    //! against the engine given sin's roots explicitly, against Monte Carlo, and across its
    //! change of regime; Dawson's integral against mpmath.
    use super::*;
    use crate::rules::nt_reference::{network_kernels, Case};
    use crate::rules::numerical::{pair_moments, pair_moments_adaptive, Fun, SignChanges};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rand_distr::StandardNormal;

    #[test]
    fn matches_neural_tangents_reference_kernels() {
        // nt_kernels.json `sin_depth1`: dense(1.3, 0.4) sin dense(1.0, 0.2). NT uses the same
        // exponentials; measured agreement ~1e-16, checked at 1e-13 (diagonal 1e-12).
        let case = Case::load("sin_depth1");
        let err = network_kernels(&case, &[(1.3, 0.4), (1.0, 0.2)], |a, b, c, par| {
            let out = Sin.pair(&Var::new(a), &Var::new(b), c, par, Want::NNGP_NTK);
            (out.phi, out.dphi)
        });
        eprintln!("sin vs neural-tangents: {err:?}");
        assert!(
            err.off_diagonal <= 1e-13 && err.diagonal <= 1e-12,
            "{err:?}"
        );
    }

    #[test]
    fn dawson_matches_mpmath() {
        // mpmath 1.3 at 40 digits: exp(−x²)·quad(exp(t²), [0, x]). Checked at 2e-15 relative.
        let reference = [
            (0.1, 0.099335992397852866590618712384009),
            (0.5, 0.42443638350202229593404235248967),
            (1.0, 0.53807950691276841913638742040756),
            (2.0, 0.30134038892379196603466443928642),
            (3.0, 0.17827103061055828734259949223063),
            (5.0, 0.10213407442427683543855100704927),
            (7.0, 0.072180974658236292027763513309740),
            (10.0, 0.050253847187598528032748419860715),
            (30.0, 0.016675941401059175798435780415806),
        ];
        let mut worst: f64 = 0.0;
        for (x, f) in reference {
            let e = (dawson(x) / f - 1.0).abs();
            worst = worst.max(e);
            assert!(e <= 2e-15, "F({x}) = {} vs {f}", dawson(x));
            assert_eq!(dawson(-x), -dawson(x));
        }
        // Continuity across the branch points 0.5 and 8 (both sides accurate to ~1e-15).
        for x in [0.5f64, 8.0] {
            let (l, r) = (dawson(x.next_down()), dawson(x));
            assert!((l - r).abs() <= 4e-15 * r, "{x}: {l} vs {r}");
        }
        eprintln!("dawson: max relative error {worst:e}");
    }

    /// (a, b, ρ) covering both signs of ρ, unequal variances and ρ near ±1.
    const CASES: [(f64, f64, f64); 9] = [
        (1.0, 1.0, 0.5),
        (0.3, 2.0, -0.7),
        (2.5, 0.8, 0.95),
        (0.05, 0.1, 0.3),
        (4.0, 3.0, -0.2),
        (1.5, 1.5, 0.9999),
        (0.7, 0.02, 0.8),
        (6.0, 0.5, 0.6),
        (0.2, 5.0, -0.999),
    ];

    /// sin for the engine, with its roots kπ within 45 standard deviations of v listed.
    fn engine(cos: bool, a: f64, b: f64, c: f64, par: Parallel, adaptive: bool) -> PairDual<f64> {
        let run = if adaptive {
            pair_moments_adaptive
        } else {
            pair_moments
        };
        let reach = 45.0 * b.sqrt() + 2.0 * PI;
        let n = (reach / PI).ceil() as i64;
        let sin_roots: Vec<f64> = (-n..=n).map(|k| k as f64 * PI).collect();
        let cos_roots: Vec<f64> = (-n..=n).map(|k| (k as f64 + 0.5) * PI).collect();
        let sin = Fun {
            f: f64::sin,
            changes: SignChanges::Known(&sin_roots),
            parity: Parity::Odd,
            smooth: true,
        };
        let cosf = Fun {
            f: f64::cos,
            changes: SignChanges::Known(&cos_roots),
            parity: Parity::Even,
            smooth: true,
        };
        let msin = Fun {
            f: |u: f64| -u.sin(),
            changes: SignChanges::Known(&sin_roots),
            parity: Parity::Odd,
            smooth: true,
        };
        if cos {
            run(&cosf, &msin, a, b, c, par, Want::ALL)
        } else {
            run(&sin, &cosf, a, b, c, par, Want::ALL)
        }
    }

    #[test]
    fn all_four_kernels_match_the_numerical_engine() {
        // Independent methods: closed forms and the Fourier series vs quadrature with sin's
        // roots as explicit sign changes. The engine is accurate to ~1e-12 of E|integrand|
        // (≤ 1); checked at 1e-10 absolute.
        let mut worst: f64 = 0.0;
        let mut run = |cos: bool, a: f64, b: f64, c: f64, par: Parallel| {
            let ours = trig_pair(cos, a, b, c, par, Want::ALL);
            for adaptive in [false, true] {
                let num = engine(cos, a, b, c, par, adaptive);
                for (what, x, y) in [
                    ("E[φφ]", ours.phi, num.phi),
                    ("E[φ'φ']", ours.dphi, num.dphi),
                    ("S", ours.sign, num.sign),
                    ("D", ours.dsign, num.dsign),
                ] {
                    worst = worst.max((x - y).abs());
                    assert!((x - y).abs() <= 1e-10, "cos={cos} {what} at ({a}, {b}, {c}, {par:?}): {x} vs engine (adaptive: {adaptive}) {y}");
                }
            }
        };
        for (a, b, rho) in CASES {
            for cos in [false, true] {
                run(cos, a, b, rho * (a * b).sqrt(), Parallel::Unknown);
            }
        }
        for (a, b, par) in [
            (1.3, 1.3, Parallel::Positive),
            (0.5, 2.0, Parallel::Positive),
            (2.0, 2.0, Parallel::Negative),
            (0.0, 1.0, Parallel::Unknown),
            (1.0, 0.0, Parallel::Unknown),
            (1e-4, 1e-3, Parallel::Positive),
        ] {
            let c = if par == Parallel::Negative { -1.0 } else { 1.0 } * (a * b).sqrt();
            for cos in [false, true] {
                run(cos, a, b, c, par);
            }
        }
        eprintln!("sin/cos vs engine: max abs error {worst:e}");
    }

    #[test]
    fn sign_kernels_match_monte_carlo() {
        // 400k seeded samples; |sin u sign sin v| ≤ 1, so the standard error is measured and
        // the check is ≤ 5 SE.
        let n = 400_000;
        let mut rng = StdRng::seed_from_u64(11);
        for (a, b, rho) in [(1.0, 1.0, 0.5), (3.0, 0.5, -0.8), (0.4, 9.0, 0.9)] {
            let c = rho * (a * b).sqrt();
            let (s, d) = sign_kernels(a, b, c, Parallel::Unknown);
            let (mut m, mut m2, mut q, mut q2) = (0.0, 0.0, 0.0, 0.0);
            for _ in 0..n {
                let (z1, z2): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
                let u = a.sqrt() * z1;
                let v = c / a.sqrt() * z1 + (b - c * c / a).sqrt() * z2;
                let x = u.sin() * v.sin().signum();
                let y = u.cos() * v.cos().signum();
                m += x;
                m2 += x * x;
                q += y;
                q2 += y * y;
            }
            let nf = n as f64;
            let (m, q) = (m / nf, q / nf);
            let (se_m, se_q) = (
                ((m2 / nf - m * m) / nf).sqrt(),
                ((q2 / nf - q * q) / nf).sqrt(),
            );
            assert!(
                (m - s).abs() <= 5.0 * se_m,
                "S at ({a}, {b}, {rho}): {s} vs MC {m} ± {se_m}"
            );
            assert!(
                (q - d).abs() <= 5.0 * se_q,
                "D at ({a}, {b}, {rho}): {d} vs MC {q} ± {se_q}"
            );
        }
    }

    #[test]
    fn the_two_regimes_agree_at_their_boundary() {
        // Just above SMALL_B the series (≈255 terms) and just below it the Dawson form are
        // both exact to rounding; the kernels are continuous in b, so they agree to 1e-13.
        for (a, rho) in [(1.0, 0.5), (0.01, 0.99), (5.0, -0.3), (2.0, 1.0)] {
            let (b1, b2) = (SMALL_B, SMALL_B * (1.0 + 1e-12));
            let par = if rho == 1.0 {
                Parallel::Positive
            } else {
                Parallel::Unknown
            };
            let (s1, d1) = sign_kernels(a, b1, rho * (a * b1).sqrt(), par);
            let (s2, d2) = sign_kernels(a, b2, rho * (a * b2).sqrt(), par);
            assert!(
                (s1 - s2).abs() <= 1e-13 && (d1 - d2).abs() <= 1e-13,
                "a={a} ρ={rho}: ({s1}, {d1}) vs ({s2}, {d2})"
            );
        }
    }

    #[test]
    fn extremes_are_finite_and_right() {
        // a = b = 1e300: the phase of u is uniform, so with ρ = 1 exactly E[sin² u] = 1/2 and
        // S = E|sin u| = 2/π, D = E|cos u| = 2/π; with ρ < 1 the phases decorrelate (→ 0).
        let (ss, cc) = closed_form(1e300, 1e300, 1e300, Parallel::Positive);
        assert_eq!((ss, cc), (0.5, 0.5));
        let (s, d) = sign_kernels(1e300, 1e300, 1e300, Parallel::Positive);
        assert!(
            (s - FRAC_2_PI).abs() < 1e-15 && (d - FRAC_2_PI).abs() < 1e-15,
            "{s} {d}"
        );
        let (s, d) = sign_kernels(1e300, 1e300, 0.5e300, Parallel::Unknown);
        assert_eq!((s, d), (0.0, 0.0));
        for (a, b, c) in [
            (1e300, 1e-300, 1.0),
            (1e-300, 1e300, 1.0),
            (0.0, 0.0, 0.0),
            (1e300, 0.0, 0.0),
            (4.0, 1e-20, 2e-10),
            (1e10, 1.0, 1e5),
        ] {
            for par in [Parallel::Unknown, Parallel::Positive, Parallel::Negative] {
                for cos in [false, true] {
                    let out = trig_pair(cos, a, b, c, par, Want::ALL);
                    for v in [out.phi, out.dphi, out.sign, out.dsign] {
                        assert!(
                            v.is_finite() && v.abs() <= 1.0 + 1e-15,
                            "{a} {b} {c} {par:?}: {out:?}"
                        );
                    }
                }
            }
        }
        // Zero variance of v: sin 0 = 0, cos 0 = 1.
        assert_eq!(
            trig_pair(false, 2.0, 0.0, 0.0, Parallel::Unknown, Want::ALL).sign,
            0.0
        );
        assert!(
            (trig_pair(false, 2.0, 0.0, 0.0, Parallel::Unknown, Want::ALL).dsign - (-1.0f64).exp())
                .abs()
                < 1e-16
        );
    }

    #[test]
    fn lanes_match_scalars() {
        let pts = [0.3, 1.0, 2.5, 0.0].map(Var::new);
        let c = F64x4([0.1, -0.5, 1.2, 0.0]);
        let b = Var::new(1.7);
        let lanes = Sin.pair(
            &Sin::gather([&pts[0], &pts[1], &pts[2], &pts[3]]),
            &Sin::splat(&b),
            c,
            Parallel::Unknown,
            Want::ALL,
        );
        for k in 0..4 {
            let one = Sin.pair(&pts[k], &b, c.0[k], Parallel::Unknown, Want::ALL);
            assert_eq!(
                (
                    lanes.phi.0[k],
                    lanes.dphi.0[k],
                    lanes.sign.0[k],
                    lanes.dsign.0[k]
                ),
                (one.phi, one.dphi, one.sign, one.dsign)
            );
        }
    }
}
