//! Kernels asked alone equal the same kernels asked together: every activation's E[φφ] is
//! the next node's Σ, so asking only for the NTK (or only for R and H) must not drop it.
//! (A first version passed `want` through to the rules, which skipped E[φφ] when the NNGP
//! was not asked: `ntk()` alone was wrong for gelu, sin, cos and the numerical rules.)

use infw::ndarray::{array, Array2};
use infw::{KernelProgram, Network, TrainingInputs, Want};

fn x() -> Array2<f64> {
    array![
        [0.9, -0.4, 1.3, 0.2],
        [-1.1, 0.7, 0.3, -0.8],
        [0.5, 1.6, -0.6, 0.4],
        [1.2, 0.1, -0.9, -1.4],
    ]
}

/// Within 1e-10 of the largest entry: `ntk(x, x)` computes one triangle and mirrors it,
/// `kernels` every entry with (x, x') in that order, so the lower triangles differ by a
/// swapped pair: a few ulp for closed forms, up to the numerical rules' accuracy bound
/// (1e-10, docs/math.md §6) for quadrature; the bug this guards against was 100 % off.
fn close(what: &str, a: Option<&Array2<f64>>, b: Option<&Array2<f64>>) {
    let (a, b) = (a.unwrap(), b.unwrap());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let dev = (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        dev <= 1e-10 * scale,
        "{what}: {dev:e} of {scale:e}\n{a}\n{b}"
    );
}

fn check<K: KernelProgram>(what: &str, net: &Network<K>) {
    let x = x();
    let all = net.kernels(&x, TrainingInputs::of(&x), Want::ALL).unwrap();
    let ntk = net.ntk(&x, &x).unwrap();
    let nngp = net.nngp(&x, &x).unwrap();
    close(&format!("{what}: NTK alone"), Some(&ntk), all.ntk.as_ref());
    close(
        &format!("{what}: NNGP alone"),
        Some(&nngp),
        all.nngp.as_ref(),
    );
    if net.program().has_adam_limit() {
        let adam = net.kernels(&x, TrainingInputs::of(&x), Want::ADAM).unwrap();
        // Same pairs in the same order: equal to the last bit.
        assert_eq!(adam.readout, all.readout, "{what}: R without the NNGP");
        assert_eq!(adam.hidden, all.hidden, "{what}: H without the NNGP");
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Cube;

impl infw::UserActivation for Cube {
    fn value(u: f64) -> f64 {
        u * u * u
    }
    fn derivative(u: f64) -> f64 {
        3.0 * u * u
    }
}

#[test]
fn kernels_asked_alone_equal_kernels_asked_together() {
    check(
        "relu",
        &infw::network! { dense(8, b_std = 0.1) relu dense(8) relu },
    );
    check(
        "erf",
        &infw::network! { dense(8, b_std = 0.1) erf dense(8) erf },
    );
    check(
        "gelu",
        &infw::network! { dense(8, b_std = 0.1) gelu dense(8) gelu },
    );
    check(
        "sin",
        &infw::network! { dense(8, b_std = 0.1) sin dense(8) sin },
    );
    check(
        "cos",
        &infw::network! { dense(8, b_std = 0.1) cos dense(8) cos },
    );
    check(
        "tanh",
        &infw::network! { dense(8, b_std = 0.1) tanh dense(8) tanh },
    );
    check(
        "softplus",
        &infw::network! { dense(8, b_std = 0.1) softplus dense(8) softplus },
    );
    check(
        "silu",
        &infw::network! { dense(8, b_std = 0.1) silu dense(8) silu },
    );
    check(
        "sigmoid",
        &infw::network! { dense(8, b_std = 0.1) sigmoid dense(8) sigmoid },
    );
    check(
        "act(Cube)",
        &infw::network! { dense(8, b_std = 0.1) act(Cube) dense(8) act(Cube) },
    );
    check(
        "residual",
        &infw::network! { dense(8) residual(dense(8) gelu dense(8)) layer_norm relu },
    );
}
