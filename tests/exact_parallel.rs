//! At exactly parallel inputs the correlation is ±1 exactly (docs/math.md §5): our diagonal and
//! ±multiple entries match the closed-form one-point recursion to rounding, with no √eps
//! error from arccos. neural-tangents is off there by up to ~1.2e-8 (tests/reference);
//! here the tolerance is 1e-14 relative: a handful of roundings through ≤ 3 layers.
// √2 is written as the f64 literal 1.4142135623730951 so that it folds into the generated
// code and `network!` returns the network itself (an expression such as `2f64.sqrt()` makes
// it return a Result, checked when the value is built).
#![allow(clippy::approx_constant)]
use ndarray::{array, Array2};

const TOL: f64 = 1e-14;

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

/// Independent one-point recursion for relu with no biases: Σ ← w²Σ/2 per block,
/// Σ̇ = 1/2, Θ ← Σ + w²·½·Θ (docs/math.md §3 at θ = 0).
fn relu_diag(q: f64, w2: f64, layers: usize) -> (f64, f64) {
    let mut sigma = w2 * q;
    let mut theta = sigma;
    for _ in 0..layers {
        let next = w2 * sigma / 2.0;
        theta = next + w2 * 0.5 * theta;
        sigma = next;
    }
    (sigma, theta)
}

#[test]
fn diagonal_and_positive_multiples_are_exact() {
    let net = infw::network! { dense(64, w_std = 1.4142135623730951) relu dense(64, w_std = 1.4142135623730951) relu dense(1, w_std = 1.4142135623730951) };
    // Rows chosen so that fl(⟨x,x⟩) and fl(‖x‖²) round differently from the exact value.
    let x: Array2<f64> = array![
        [0.1, 0.7, -0.3, 1.9, 0.11],
        [1.3, -0.2, 0.5, 0.05, -2.2],
        [0.2, 1.4, -0.6, 3.8, 0.22],      // 2 × row 0
        [-0.65, 0.1, -0.25, -0.025, 1.1], // −0.5 × row 1
    ];
    let (nngp, ntk) = net.nngp_ntk(&x, &x).unwrap();
    let w2 = std::f64::consts::SQRT_2 * std::f64::consts::SQRT_2; // the declared w_std, squared as the compiler folds it
    for i in 0..4 {
        let q = x.row(i).dot(&x.row(i)) / 5.0;
        let (s, t) = relu_diag(q, w2, 2);
        assert!(
            rel(nngp[[i, i]], s) < TOL,
            "nngp diag {i}: {} vs {s}",
            nngp[[i, i]]
        );
        assert!(
            rel(ntk[[i, i]], t) < TOL,
            "ntk diag {i}: {} vs {t}",
            ntk[[i, i]]
        );
    }
    // relu networks without biases are positively homogeneous: K(2x, x) = 2 K(x, x).
    assert!(rel(nngp[[2, 0]], 2.0 * nngp[[0, 0]]) < TOL);
    assert!(rel(ntk[[2, 0]], 2.0 * ntk[[0, 0]]) < TOL);
    assert_eq!(nngp[[2, 0]], nngp[[0, 2]]);
    // x' = −x/2: the first relu sees ρ = −1 exactly, so E[relu(u)relu(v)] = 0 and the second
    // layer starts from covariance 0: Σ² = w²·√(ab)/(2π) with a, b the first-layer variances.
    let (a, b) = (
        w2 * x.row(1).dot(&x.row(1)) / 5.0,
        w2 * x.row(3).dot(&x.row(3)) / 5.0,
    );
    let (a2, b2) = (w2 * a / 2.0, w2 * b / 2.0);
    let expected = w2 * (a2 * b2).sqrt() / (2.0 * std::f64::consts::PI);
    assert!(
        rel(nngp[[3, 1]], expected) < TOL,
        "{} vs {expected}",
        nngp[[3, 1]]
    );
    // The NTK there: Σ̇¹ = 0 (θ = π) and Σ² = 0, so Θ² = 0 and Θ³ = Σ³ exactly.
    let expected_ntk = expected;
    assert!(
        rel(ntk[[3, 1]], expected_ntk) < TOL,
        "{} vs {expected_ntk}",
        ntk[[3, 1]]
    );
}

#[test]
fn erf_and_biased_diagonals_are_exact() {
    let net = infw::network! { dense(8, w_std = 1.2, b_std = 0.3) erf dense(1) };
    let x = array![[0.3, -1.2, 2.0], [1e-3, 4.0, -0.5]];
    let (nngp, ntk) = net.nngp_ntk(&x, &x).unwrap();
    for i in 0..2 {
        let a = 1.44 * x.row(i).dot(&x.row(i)) / 3.0 + 0.09;
        let e = std::f64::consts::FRAC_2_PI * (2.0 * a / (1.0 + 2.0 * a)).asin();
        let edot = 2.0 * std::f64::consts::FRAC_2_PI / (1.0 + 4.0 * a).sqrt();
        assert!(rel(nngp[[i, i]], e) < TOL);
        assert!(rel(ntk[[i, i]], e + edot * a) < TOL);
    }
}

#[test]
fn numerics_stay_finite_at_zero_and_huge_inputs() {
    let relu = infw::network! { dense(8) relu dense(8) relu };
    let leaky = infw::network! { dense(8) leaky_relu(0.2) dense(8) abs };
    let erf = infw::network! { dense(8, w_std = 2.0) erf };
    let x = array![
        [0.0, 0.0, 0.0],
        [1e150, -1e150, 3e149],
        [1e-160, 0.0, -1e-160],
        [1.0, 2.0, 3.0]
    ];
    for k in [
        relu.kernels(&x, infw::TrainingInputs::of(&x), infw::Want::ALL)
            .unwrap(),
        leaky
            .kernels(&x, infw::TrainingInputs::of(&x), infw::Want::ALL)
            .unwrap(),
        erf.kernels(&x, infw::TrainingInputs::of(&x), infw::Want::ALL)
            .unwrap(),
    ] {
        for m in [k.nngp, k.ntk, k.readout, k.hidden] {
            let m = m.unwrap();
            assert!(m.iter().all(|v| v.is_finite()), "non-finite kernel: {m:?}");
        }
    }
}
