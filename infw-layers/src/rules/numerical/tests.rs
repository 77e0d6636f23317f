//! The engine as the oracle: against every closed form of the crate (erf; relu, abs,
//! identity, leaky_relu; sin/cos and gelu in their own files), against mpmath reference
//! values for the smooth rules, against Monte Carlo for tanh, and on extreme inputs.
//!
//! Tolerances. Each integral is converged to ~1e-12 of E|integrand| (TOL_OUTER), the inner
//! ones to 1e-13; the closed forms are exact to ~1e-15. So every comparison is
//! |engine − exact| ≤ 1e-10 · scale, scale = a bound on E|integrand| (written per test):
//! 100× headroom over the engine's own target, and far below any formula error (a wrong
//! sign, root or branch shows at 1e-3 or more).
use super::*;
use crate::dual::Dual;
use crate::rules::{Abs, Erf, Identity, LeakyRelu, Relu, Sigmoid, Silu, Softplus, Tanh};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

const FRAC_2_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

fn erf(u: f64) -> f64 {
    libm::erf(u)
}
fn derf(u: f64) -> f64 {
    FRAC_2_SQRT_PI * (-u * u).exp()
}
const ERF: Fun = Fun {
    f: erf,
    changes: SignChanges::Known(&[0.0]),
    parity: Parity::Odd,
    smooth: true,
};
const DERF: Fun = Fun {
    f: derf,
    changes: SignChanges::Known(&[]),
    parity: Parity::Even,
    smooth: true,
};

/// (a, b, ρ): both signs, unequal variances, ρ near ±1, small and large variances.
const CASES: [(f64, f64, f64); 14] = [
    (1.0, 1.0, 0.5),
    (1.3, 0.7, 0.2),
    (0.5, 2.0, -0.8),
    (2.2, 2.2, 0.95),
    (0.9, 1.6, -0.999),
    (1.5, 1.5, 0.999_999),
    (0.01, 3.0, 0.7),
    (4.0, 0.05, -0.4),
    (9.0, 16.0, 0.6),
    (100.0, 0.5, 0.9),
    (1e4, 1e4, -0.3),
    (1e-6, 1e-6, 0.8),
    (1e6, 1.0, 0.999),
    (0.3, 0.4, 0.0),
];

/// Parallel and degenerate cases: (a, b, c, parallel).
const EDGES: [(f64, f64, f64, Parallel); 8] = [
    (1.7, 1.7, 1.7, Parallel::Positive),
    (0.5, 4.5, 1.5, Parallel::Positive),
    (2.0, 2.0, -2.0, Parallel::Negative),
    (0.3, 1.2, -0.6, Parallel::Negative),
    (0.0, 1.3, 0.0, Parallel::Unknown),
    (1.3, 0.0, 0.0, Parallel::Unknown),
    (0.0, 0.0, 0.0, Parallel::Unknown),
    (2.0, 0.5, 1.0, Parallel::Unknown), // c = √(ab) exactly, not flagged
];

/// The engine with its trapezoidal fast path (taken for smooth φ when it validates), and the
/// adaptive quadrature alone: both are checked against every closed form.
type Engine = fn(&Fun, &Fun, f64, f64, f64, Parallel, Want) -> PairDual<f64>;
const ENGINES: [(&str, Engine); 2] = [("fast", pair_moments), ("adaptive", pair_moments_adaptive)];

fn all_cases() -> Vec<(f64, f64, f64, Parallel)> {
    let mut v: Vec<_> = CASES
        .iter()
        .map(|&(a, b, r)| (a, b, r * (a * b).sqrt(), Parallel::Unknown))
        .collect();
    v.extend_from_slice(&EDGES);
    v
}

/// Max of |x − y|/scale over the four kernels, asserting each ≤ 1e-10.
fn compare(
    name: &str,
    case: (f64, f64, f64, Parallel),
    ours: PairDual,
    exact: PairDual,
    scale: [f64; 4],
) -> f64 {
    let mut worst: f64 = 0.0;
    let what = ["E[φφ]", "E[φ'φ']", "S", "D"];
    let xs = [ours.phi, ours.dphi, ours.sign, ours.dsign];
    let ys = [exact.phi, exact.dphi, exact.sign, exact.dsign];
    for k in 0..4 {
        let e = (xs[k] - ys[k]).abs() / scale[k];
        worst = worst.max(e);
        assert!(
            e <= 1e-10,
            "{name} {} at {case:?}: engine {} vs closed form {} (error {e:e} of scale)",
            what[k],
            xs[k],
            ys[k]
        );
    }
    worst
}

#[test]
fn quadrature_rules_are_exact_on_polynomials() {
    // Gauss–Hermite n nodes: E[Z^2k] = (2k−1)!! for 2k ≤ 2n − 1; Kronrod 21: degree 31.
    for (n, rule) in [(24, hermite_24()), (48, hermite_48())] {
        assert_eq!(rule.len(), n);
        let mut double_factorial = 1.0;
        for k in 0..n {
            let m: f64 = rule.iter().map(|&(x, w)| w * x.powi(2 * k as i32)).sum();
            assert!(
                (m / double_factorial - 1.0).abs() < 1e-12,
                "n={n} E[Z^{}] = {m} vs {double_factorial}",
                2 * k
            );
            let odd: f64 = rule
                .iter()
                .map(|&(x, w)| w * x.powi(2 * k as i32 + 1))
                .sum();
            assert!(odd.abs() < 1e-12 * double_factorial * (2 * k + 1) as f64);
            double_factorial *= (2 * k + 1) as f64;
        }
    }
    for p in [0, 5, 30, 31] {
        let v = kronrod21(|x| x.powi(p), 0.0, 1.0);
        assert!((v * (p + 1) as f64 - 1.0).abs() < 1e-14, "∫x^{p} = {v}");
    }
}

#[test]
fn matches_erf_closed_forms() {
    // erf is entire and bounded: |φ| ≤ 1, |φ'| ≤ 2/√π; scale 1 for every kernel.
    for (label, engine) in ENGINES {
        let mut worst: f64 = 0.0;
        for case in all_cases() {
            let (a, b, c, par) = case;
            let ours = engine(&ERF, &DERF, a, b, c, par, Want::ALL);
            let exact = Erf.pair(&Var::new(a), &Var::new(b), c, par, Want::ALL);
            worst = worst.max(compare(
                &format!("erf ({label})"),
                case,
                ours,
                exact,
                [1.0; 4],
            ));
            let d = diag_moments(&ERF, &DERF, a);
            let (de, _) = Erf.point(a);
            assert!(
                (d.phi - de.phi).abs() <= 1e-10 && (d.dphi - de.dphi).abs() <= 1e-10,
                "erf diag at {a}: {d:?} vs {de:?}"
            );
        }
        eprintln!("engine ({label}) vs erf: max error {worst:e}");
        assert!(worst > 0.0, "the comparison ran");
    }
}

fn relu(u: f64) -> f64 {
    u.max(0.0)
}
fn step(u: f64) -> f64 {
    if u > 0.0 {
        1.0
    } else {
        0.0
    }
}
fn abs(u: f64) -> f64 {
    u.abs()
}
fn sgn(u: f64) -> f64 {
    sign0(u)
}
fn ident(u: f64) -> f64 {
    u
}
fn one(_: f64) -> f64 {
    1.0
}
fn leaky(u: f64) -> f64 {
    if u > 0.0 {
        u
    } else {
        0.1 * u
    }
}
fn dleaky(u: f64) -> f64 {
    if u > 0.0 {
        1.0
    } else if u < 0.0 {
        0.1
    } else {
        0.0
    }
}

#[test]
fn matches_piecewise_linear_closed_forms() {
    // Kinks are not smooth, but each one is a known sign change of φ or φ' and so a
    // breakpoint of every adaptive integral: the integrands are polynomial × Gaussian on
    // each side, and the 1e-10 bound holds as for smooth φ (Gauss–Hermite is rejected by
    // its own error test there, since it converges only algebraically across a kink).
    // Scale: E|φ(u)φ(v)| ≤ √(ab), E|φ' φ'| ≤ 1, |S| ≤ E|φ(u)| ≤ √a, |D| ≤ 1; plus 1e-300
    // for the zero-variance cases, where every kernel is exactly 0 or 1.
    // With a zero variance the closed forms take φ'(u) as its a → 0⁺ limit (1 half the
    // time for relu), the engine takes φ'(0) literally (0 for relu, as the finite network
    // does); E[φ'φ'] (a or b = 0) and D (a = 0; at b = 0 the closed form is literal too)
    // are not compared there (Θ and Π vanish at such a point anyway).
    let z: &[f64] = &[0.0];
    let mut worst: f64 = 0.0;
    let rules: [(&str, Fun, Fun, PiecewiseRule); 4] = [
        (
            "relu",
            Fun {
                f: relu,
                changes: SignChanges::Known(z),
                parity: Parity::Neither,
                smooth: false,
            },
            Fun {
                f: step,
                changes: SignChanges::Known(z),
                parity: Parity::Neither,
                smooth: false,
            },
            |a, b, c, p| Relu.pair(&Var::new(a), &Var::new(b), c, p, Want::ALL),
        ),
        (
            "abs",
            Fun {
                f: abs,
                changes: SignChanges::Known(z),
                parity: Parity::Even,
                smooth: false,
            },
            Fun {
                f: sgn,
                changes: SignChanges::Known(z),
                parity: Parity::Odd,
                smooth: false,
            },
            |a, b, c, p| Abs.pair(&Var::new(a), &Var::new(b), c, p, Want::ALL),
        ),
        (
            "identity",
            Fun {
                f: ident,
                changes: SignChanges::Known(z),
                parity: Parity::Odd,
                smooth: true,
            },
            Fun {
                f: one,
                changes: SignChanges::Known(&[]),
                parity: Parity::Even,
                smooth: true,
            },
            |a, b, c, p| Identity.pair(&Var::new(a), &Var::new(b), c, p, Want::ALL),
        ),
        (
            "leaky_relu(0.1)",
            Fun {
                f: leaky,
                changes: SignChanges::Known(z),
                parity: Parity::Neither,
                smooth: false,
            },
            Fun {
                f: dleaky,
                changes: SignChanges::Known(z),
                parity: Parity::Neither,
                smooth: false,
            },
            |a, b, c, p| LeakyRelu { alpha: 0.1 }.pair(&Var::new(a), &Var::new(b), c, p, Want::ALL),
        ),
    ];
    for ((name, phi, dphi, exact), (label, engine)) in
        rules.iter().flat_map(|r| ENGINES.map(|e| (r, e)))
    {
        for case in all_cases() {
            let (a, b, c, par) = case;
            let mut ours = engine(phi, dphi, a, b, c, par, Want::ALL);
            let exact = exact(a, b, c, par);
            if a == 0.0 || b == 0.0 {
                ours.dphi = exact.dphi;
            }
            if a == 0.0 {
                ours.dsign = exact.dsign;
            }
            let scale = [(a * b).sqrt() + 1e-300, 1.0, a.sqrt() + 1e-300, 1.0];
            worst = worst.max(compare(
                &format!("{name} ({label})"),
                case,
                ours,
                exact,
                scale,
            ));
        }
    }
    eprintln!("engine (both paths) vs piecewise-linear: max error {worst:e}");
}
type PiecewiseRule = fn(f64, f64, f64, Parallel) -> PairDual<f64>;

/// Reference values of (E[φφ], E[φ'φ'], S, D) at (a, b, c), ρ = 1 exactly when flagged,
/// computed outside this crate by independent code (`reference_values.py`, kept next to
/// this file): E[φφ] and E[φ'φ'] by brute-force trapezoidal sums in plain Python over
/// x and z (steps ≤ 0.1/√a, ≤ 0.2/max(1, γ); halving them changes no value by more than
/// 4e-16), S and D by mpmath 1.3 tanh-sinh quadrature at 20 digits of the one-dimensional
/// Gaussian-tail form, split at 0 and at the sign changes. (mpmath's nested quadrature
/// was discarded for the products: near |ρ| = 1 it errs by up to 0.1.)
#[allow(clippy::type_complexity)]
const REFERENCE: &[(&str, f64, f64, f64, bool, [f64; 4])] = &include!("reference_values.in");

#[test]
fn smooth_rules_match_reference_values() {
    // Every φ here is bounded by 1 + |u| and φ' by 1.1: scale 1 + √(ab) for E[φφ] and S,
    // 1 for the others. Cases with ρ = 0.999 and −0.9997 and a = 30 exercise the adaptive
    // fallback of the rules (the fast path declines them).
    use crate::rules::Gelu;
    let (mut worst, mut worst_adaptive): (f64, f64) = (0.0, 0.0);
    assert!(REFERENCE.len() >= 26);
    for &(name, a, b, c, parallel, values) in REFERENCE {
        let par = if parallel {
            Parallel::Positive
        } else {
            Parallel::Unknown
        };
        let (pa, pb) = (NumPoint::new(a), NumPoint::new(b));
        let (ours, funs) = match name {
            "tanh" => (
                Tanh.pair(&pa, &pb, c, par, Want::ALL),
                (Tanh::PHI, Tanh::DPHI),
            ),
            "softplus" => (
                Softplus.pair(&pa, &pb, c, par, Want::ALL),
                (Softplus::PHI, Softplus::DPHI),
            ),
            "silu" => (
                Silu.pair(&pa, &pb, c, par, Want::ALL),
                (Silu::PHI, Silu::DPHI),
            ),
            "sigmoid" => (
                Sigmoid.pair(&pa, &pb, c, par, Want::ALL),
                (Sigmoid::PHI, Sigmoid::DPHI),
            ),
            "gelu" => (
                Gelu.pair(&pa, &pb, c, par, Want::ALL),
                (Gelu::PHI, Gelu::DPHI),
            ),
            other => panic!("{other}"),
        };
        let exact = PairDual {
            phi: values[0],
            dphi: values[1],
            sign: values[2],
            dsign: values[3],
            parallel: ours.parallel,
        };
        let s = 1.0 + (a * b).sqrt();
        worst = worst.max(compare(name, (a, b, c, par), ours, exact, [s, 1.0, s, 1.0]));
        let adaptive = pair_moments_adaptive(&funs.0, &funs.1, a, b, c, par, Want::ALL);
        worst_adaptive = worst_adaptive.max(compare(
            &format!("{name} (adaptive)"),
            (a, b, c, par),
            adaptive,
            exact,
            [s, 1.0, s, 1.0],
        ));
    }
    eprintln!("smooth rules vs reference values: max error {worst:e} (rules), {worst_adaptive:e} (adaptive engine)");
}

#[test]
fn tanh_matches_monte_carlo() {
    // 400k seeded samples per case; every integrand is bounded by 1, the standard error is
    // measured from the samples, and the check is ≤ 5 SE (a false alarm among these 24
    // checks has probability < 1e-5).
    let n = 400_000;
    let mut rng = StdRng::seed_from_u64(2024);
    for (a, b, rho) in [
        (1.0, 1.0, 0.5),
        (2.5, 0.6, -0.7),
        (0.2, 3.0, 0.95),
        (6.0, 6.0, 0.2),
        (1.0, 1.0, -0.999),
        (0.7, 1.4, 0.0),
    ] {
        let c = rho * (a * b).sqrt();
        let k = Tanh.pair(
            &NumPoint::new(a),
            &NumPoint::new(b),
            c,
            Parallel::Unknown,
            Want::ALL,
        );
        let mut sums = [[0.0; 2]; 4];
        for _ in 0..n {
            let (z1, z2): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
            let u = a.sqrt() * z1;
            let v = c / a.sqrt() * z1 + (b - c * c / a).max(0.0).sqrt() * z2;
            // Written independently of the rule: tanh and 1 − tanh².
            let (f, g) = (u.tanh(), v.tanh());
            let (df, dg) = (1.0 - f * f, 1.0 - g * g);
            for (s, x) in sums
                .iter_mut()
                .zip([f * g, df * dg, f * sign0(g), df * sign0(dg)])
            {
                s[0] += x;
                s[1] += x * x;
            }
        }
        for (what, exact, s) in [
            ("E[φφ]", k.phi, sums[0]),
            ("E[φ'φ']", k.dphi, sums[1]),
            ("S", k.sign, sums[2]),
            ("D", k.dsign, sums[3]),
        ] {
            let mean = s[0] / n as f64;
            let se = ((s[1] / n as f64 - mean * mean).max(0.0) / n as f64).sqrt();
            assert!(
                (mean - exact).abs() <= 5.0 * se + 1e-12,
                "tanh {what} at ({a}, {b}, {rho}): engine {exact}, Monte Carlo {mean} ± {se}"
            );
        }
    }
}

#[test]
fn extremes_are_finite_and_limits_are_right() {
    // Every rule, every combination of tiny, zero, unit and huge variances, covariances
    // at and beyond ±√(ab), every parallel flag: finite kernels, never a panic.
    let vars = [0.0, 1e-300, 1e-8, 1.0, 1e8, 1e300];
    for &a in &vars {
        for &b in &vars {
            let s = (a * b).sqrt();
            for c in [0.0, s, -s, 0.5 * s, 2.0 * s + 1.0, -1e300] {
                for par in [Parallel::Unknown, Parallel::Positive, Parallel::Negative] {
                    let (pa, pb) = (NumPoint::new(a), NumPoint::new(b));
                    let outs = [
                        ("tanh", Tanh.pair(&pa, &pb, c, par, Want::ALL)),
                        ("softplus", Softplus.pair(&pa, &pb, c, par, Want::ALL)),
                        ("silu", Silu.pair(&pa, &pb, c, par, Want::ALL)),
                        ("sigmoid", Sigmoid.pair(&pa, &pb, c, par, Want::ALL)),
                        ("gelu", crate::rules::Gelu.pair(&pa, &pb, c, par, Want::ALL)),
                    ];
                    for (name, o) in outs {
                        for v in [o.phi, o.dphi, o.sign, o.dsign] {
                            assert!(v.is_finite(), "{name} at ({a}, {b}, {c}, {par:?}): {o:?}");
                        }
                    }
                }
            }
            let d = Tanh.point(a).0;
            assert!(d.phi.is_finite() && d.dphi.is_finite());
        }
    }
    // a = b = 1e300: tanh(u) = sign u but for |u| < 20 (probability 1e-149), so
    // E[φφ] = S = (2/π) asin ρ, and φ' ≈ 0 (E[φ'] = O(1/√a)); identity: E[uv] = c.
    for rho in [-0.9, -0.2, 0.0, 0.5, 0.99] {
        let c = rho * 1e300;
        let k = Tanh.pair(
            &NumPoint::new(1e300),
            &NumPoint::new(1e300),
            c,
            Parallel::Unknown,
            Want::ALL,
        );
        let arcsine = std::f64::consts::FRAC_2_PI * f64::asin(rho);
        assert!(
            (k.phi - arcsine).abs() < 1e-10 && (k.sign - arcsine).abs() < 1e-10,
            "ρ = {rho}: {k:?} vs {arcsine}"
        );
        assert!(k.dphi.abs() < 1e-100 && k.dsign.abs() < 1e-100, "{k:?}");
        let id = Fun {
            f: ident,
            changes: SignChanges::Known(&[0.0]),
            parity: Parity::Odd,
            smooth: false,
        };
        let k = pair_moments(
            &id,
            &Fun {
                f: one,
                changes: SignChanges::Known(&[]),
                parity: Parity::Even,
                smooth: false,
            },
            1e300,
            1e300,
            c,
            Parallel::Unknown,
            Want::ALL,
        );
        assert!(
            (k.phi / 1e300 - rho).abs() < 1e-10 && (k.dphi - 1.0).abs() < 1e-12,
            "{k:?}"
        );
    }
}

#[test]
fn lanes_match_scalars_and_parallelism_is_carried() {
    let pts = [0.3, 1.0, 2.5, 0.0].map(NumPoint::new);
    let b = NumPoint::new(1.7);
    let c = F64x4([0.1, -0.5, 1.2, 0.0]);
    let lanes = Tanh.pair(
        &Tanh::gather([&pts[0], &pts[1], &pts[2], &pts[3]]),
        &Tanh::splat(&b),
        c,
        Parallel::Unknown,
        Want::ALL,
    );
    for k in 0..4 {
        let one = Tanh.pair(&pts[k], &b, c.0[k], Parallel::Unknown, Want::ALL);
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
    let p = NumPoint::new(1.3);
    assert_eq!(
        Tanh.pair(&p, &p, -1.3, Parallel::Negative, Want::NNGP)
            .parallel,
        Parallel::Negative
    );
    assert_eq!(
        Silu.pair(&p, &p, -1.3, Parallel::Negative, Want::NNGP)
            .parallel,
        Parallel::Unknown
    );
    assert_eq!(
        Silu.pair(&p, &p, 1.3, Parallel::Positive, Want::NNGP)
            .parallel,
        Parallel::Positive
    );
    assert_eq!(
        Tanh.pair(&p, &b, 1.0, Parallel::Positive, Want::NNGP)
            .parallel,
        Parallel::Unknown
    );
    // What is not asked for is 0.
    let only = Tanh.pair(&p, &b, 0.4, Parallel::Unknown, Want::NNGP);
    assert!(only.phi != 0.0 && only.dphi == 0.0 && only.sign == 0.0 && only.dsign == 0.0);
}

#[test]
#[ignore = "timing, run with --ignored --nocapture"]
fn pair_cost() {
    // Per-pair time for tanh (a, b in [0.5, 2.3], ρ in [−0.95, 0.95], or ρ = 0.9995 where the
    // fast path declines), with and without the fast path.
    let cases: [(&str, Engine, f64); 3] = [
        ("fast", pair_moments, 0.95),
        ("adaptive", pair_moments_adaptive, 0.95),
        ("ρ = 0.9995", pair_moments, 0.0),
    ];
    for (label, want, (path, engine, spread)) in [
        ("ALL", Want::ALL),
        ("NNGP_NTK", Want::NNGP_NTK),
        ("ADAM", Want::ADAM),
    ]
    .into_iter()
    .flat_map(|w| cases.map(|c| (w.0, w.1, c)))
    {
        let mut acc = 0.0;
        let n = if path == "fast" { 2000 } else { 100 };
        let t = std::time::Instant::now();
        for i in 0..n {
            let a = 0.5 + (i % 7) as f64 * 0.3;
            let b = 0.6 + (i % 11) as f64 * 0.2;
            let rho = if spread > 0.0 {
                -spread + 2.0 * spread * ((i * 37) % 101) as f64 / 100.0
            } else {
                0.9995
            };
            let k = engine(
                &Tanh::PHI,
                &Tanh::DPHI,
                a,
                b,
                rho * (a * b).sqrt(),
                Parallel::Unknown,
                want,
            );
            acc += k.phi + k.dphi + k.sign + k.dsign;
        }
        let per = t.elapsed().as_secs_f64() / n as f64;
        eprintln!(
            "tanh {path} {label}: {:.1} µs per pair (checksum {acc:.3})",
            per * 1e6
        );
    }
}

/// Whether the series of `p` and `q` (at some length) accepts E[φφ] and E[φ'φ'] at
/// correlation ρ.
fn series_accepts(p: &NumPoint, q: &NumPoint, rho: f64) -> bool {
    SERIES_TIERS.iter().enumerate().any(|(t, &half)| {
        let rk = rho.abs().powi(2 * half as i32);
        [(&p.phi, &q.phi), (&p.dphi, &q.dphi)]
            .iter()
            .all(|(a, b)| accepted(series_margin(*a, *b, rk, t), 0))
    })
}

#[test]
fn series_matches_adaptive_reference() {
    // The per-point series (NNGP, NTK) of every smooth rule against the adaptive oracle, over
    // variances 0 … 30 and correlations up to ±(1 − 1e-6); errors relative to
    // √(E[φ(u)²] E[φ(v)²]) (and the same for φ'), asserted ≤ 1e-10.
    use crate::dual::Dual;
    let vars = [0.0, 1e-3, 0.05, 0.3, 0.7, 1.0, 1.6, 3.0, 8.0, 30.0];
    let rhos = [
        -0.999999, -0.999, -0.99, -0.9, -0.6, -0.3, -0.05, 0.0, 0.02, 0.2, 0.45, 0.7, 0.85, 0.95,
        0.99, 0.9995, 0.999999,
    ];
    type Rule<'a> = (
        &'a str,
        Fun<'static>,
        Fun<'static>,
        fn(f64) -> (DiagDual, NumPoint),
    );
    let rules: [Rule; 4] = [
        ("tanh", Tanh::PHI, Tanh::DPHI, |a| Tanh.point(a)),
        ("softplus", Softplus::PHI, Softplus::DPHI, |a| {
            Softplus.point(a)
        }),
        ("silu", Silu::PHI, Silu::DPHI, |a| Silu.point(a)),
        ("sigmoid", Sigmoid::PHI, Sigmoid::DPHI, |a| Sigmoid.point(a)),
    ];
    let (mut worst, mut taken, mut total): (f64, usize, usize) = (0.0, 0, 0);
    for (name, phi, dphi, point) in rules {
        for &a in &vars {
            let (da, pa) = point(a);
            for &b in &vars {
                let (db, pb) = point(b);
                for &rho in &rhos {
                    let c = rho * (a * b).sqrt();
                    let ours =
                        numerical_pair(&phi, &dphi, &pa, &pb, c, Parallel::Unknown, Want::NNGP_NTK);
                    let exact = pair_moments_adaptive(
                        &phi,
                        &dphi,
                        a,
                        b,
                        c,
                        Parallel::Unknown,
                        Want::NNGP_NTK,
                    );
                    let accepted = a > 0.0 && b > 0.0 && series_accepts(&pa, &pb, rho)
                        || (a == 0.0 || b == 0.0) && series_accepts(&pa, &pb, 0.0);
                    total += 1;
                    taken += accepted as usize;
                    let scales = [(da.phi * db.phi).sqrt(), (da.dphi * db.dphi).sqrt()];
                    for (k, (x, y)) in [(ours.phi, exact.phi), (ours.dphi, exact.dphi)]
                        .into_iter()
                        .enumerate()
                    {
                        let e = if scales[k] > 0.0 {
                            (x - y).abs() / scales[k]
                        } else {
                            (x - y).abs()
                        };
                        if accepted {
                            worst = worst.max(e);
                        }
                        assert!(
                            e <= 1e-10,
                            "{name} k={k} a={a} b={b} ρ={rho}: {x} vs {y} (error {e:e}, series {accepted})"
                        );
                    }
                }
            }
        }
    }
    eprintln!("series vs adaptive: max error {worst:e} of scale over {taken} of {total} pairs on the series");
    assert!(taken * 2 > total, "the series should take most of the grid");
}

#[test]
fn series_lanes_mix_series_and_fallback() {
    // Lanes on the series and lanes that decline (ρ near 1, no series) in one bundle agree
    // with the scalar pass lane by lane.
    use crate::dual::Dual;
    let pts = [0.4, 1.0, 2.5, 0.0].map(|a| Tanh.point(a).1);
    let (_, b) = Tanh.point(1.0);
    let c = F64x4([0.1, 0.99999, -1.2, 0.0]);
    let lanes = Tanh.pair(
        &Tanh::gather([&pts[0], &pts[1], &pts[2], &pts[3]]),
        &Tanh::splat(&b),
        c,
        Parallel::Unknown,
        Want::NNGP_NTK,
    );
    for k in 0..4 {
        let one = Tanh.pair(&pts[k], &b, c.0[k], Parallel::Unknown, Want::NNGP_NTK);
        // A lane may sum a longer series than the same pair alone (the bundle's tier is
        // its worst lane's): both are within SERIES_TOL of the truth (values here ≤ 1).
        let close = |x: f64, y: f64| (x - y).abs() <= 2.0 * SERIES_TOL;
        assert!(close(lanes.phi.0[k], one.phi) && close(lanes.dphi.0[k], one.dphi));
        let exact = pair_moments_adaptive(
            &Tanh::PHI,
            &Tanh::DPHI,
            pts[k].var.var,
            1.0,
            c.0[k],
            Parallel::Unknown,
            Want::NNGP_NTK,
        );
        assert!((one.phi - exact.phi).abs() < 1e-11 && (one.dphi - exact.dphi).abs() < 1e-11);
    }
}

#[test]
#[ignore = "timing, run with --ignored --nocapture"]
fn series_pair_cost() {
    // Per-pair time of the series pass for tanh in lanes (a, b in [0.3, 1.2], |ρ| ≤ 0.5).
    let pts: Vec<NumPoint> = (0..64)
        .map(|i| Tanh.point(0.3 + 0.9 * i as f64 / 63.0).1)
        .collect();
    let lanes: Vec<NumPoint<F64x4>> = pts
        .chunks(4)
        .map(|p| Tanh::gather([&p[0], &p[1], &p[2], &p[3]]))
        .collect();
    let mut acc = 0.0;
    let n = 200_000;
    let t = std::time::Instant::now();
    for i in 0..n {
        let a = Tanh::splat(&pts[i % 64]);
        let b = &lanes[(i / 7) % 16];
        let r = -0.5 + ((i * 37) % 101) as f64 / 100.0;
        let c = F64x4::splat(r * 0.5);
        let k = Tanh.pair(&a, b, c, Parallel::Unknown, Want::NNGP_NTK);
        acc += k.phi.0[0] + k.dphi.0[3];
    }
    let per = t.elapsed().as_secs_f64() / (4 * n) as f64;
    eprintln!(
        "tanh series NNGP_NTK: {:.1} ns per pair (checksum {acc:.3})",
        per * 1e9
    );
}

#[test]
fn line_trapezoid_matches_quadrature() {
    // The per-point E[φ²], E[φ'²] of every smooth rule, and exactly parallel pairs, by
    // trapezoidal sums against Gauss–Hermite / adaptive quadrature, variances 1e-3 … 300. Bound: 1e-9 relative, the
    // reference's own acceptance (GH_ACCEPT); the trapezoid's error is about e^{−36}.
    let vars = [1e-3, 0.05, 0.3, 0.7, 1.0, 1.6, 3.0, 8.0, 30.0, 100.0, 300.0];
    let rules: [(&str, Fun<'static>, Fun<'static>); 5] = [
        ("tanh", Tanh::PHI, Tanh::DPHI),
        ("softplus", Softplus::PHI, Softplus::DPHI),
        ("silu", Silu::PHI, Silu::DPHI),
        ("sigmoid", Sigmoid::PHI, Sigmoid::DPHI),
        ("erf", ERF, DERF),
    ];
    let mut worst: f64 = 0.0;
    for (name, phi, dphi) in rules {
        for a in vars {
            // The trapezoid itself (diag_moments would fall back to the reference).
            let fast = diag_trapezoid(&phi, &dphi, a.sqrt())
                .unwrap_or_else(|| panic!("{name} at a = {a}: the trapezoid declined"));
            let reference = diag_quadrature(&phi, &dphi, a);
            for (f, r) in [(fast.phi, reference.phi), (fast.dphi, reference.dphi)] {
                let e = (f - r).abs() / r.abs().max(f64::MIN_POSITIVE);
                assert!(e <= 1e-9, "{name} at a = {a}: {f} vs {r} ({e:e})");
                worst = worst.max(e);
            }
            // Exactly parallel pairs with another variance, v = ±√(b/a)·u: the same sums
            // against the adaptive oracle, relative to √(E[φ(u)²]E[φ(v)²]).
            for (b, sign) in [(2.3 * a, 1.0), (0.4 * a, -1.0)] {
                let (sa, sb) = (a.sqrt(), b.sqrt());
                let Some(fast) = line_trapezoid(&phi, &dphi, sa, sign * sb) else {
                    assert!(sa.max(sb) > 300f64.sqrt(), "{name} a={a} b={b}: declined");
                    continue;
                };
                let parallel = if sign > 0.0 {
                    Parallel::Positive
                } else {
                    Parallel::Negative
                };
                let c = sign * sa * sb;
                let exact = pair_moments_adaptive(&phi, &dphi, a, b, c, parallel, Want::NNGP_NTK);
                let db = diag_quadrature(&phi, &dphi, b);
                let scales = [
                    (reference.phi * db.phi).sqrt(),
                    (reference.dphi * db.dphi).sqrt(),
                ];
                for (k, (f, r)) in [(fast[0], exact.phi), (fast[1], exact.dphi)]
                    .into_iter()
                    .enumerate()
                {
                    let e = (f - r).abs() / scales[k].max(f64::MIN_POSITIVE);
                    assert!(
                        e <= 1e-9,
                        "{name} a={a} b={b} sign {sign}: {f} vs {r} ({e:e})"
                    );
                    worst = worst.max(e);
                }
            }
        }
    }
    eprintln!("line trapezoid vs quadrature: max relative error {worst:e}");
}
