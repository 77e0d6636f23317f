//! The Adam-like limit through graphs (docs/math.md §8) against finite networks: for every
//! node kind, a declaration compiled by `network!` gives R and H, and finite networks of the
//! same declaration (`Network::architecture`) at widths 256 → 1024 → 4096, 28 seeds each,
//! take one sign-descent step; their seed-averaged first-order change must approach the
//! limit −[sign(χ_c) R(x, x_b) + (χ_c/‖χ‖) H(x, x_b)] (mean absolute error shrinking with
//! width, every entry within 3 standard errors at 4096: `SignStepReport::converges`).
//!
//! The chain cases relu and erf are the runtime's test against the reference fixture; here:
//! residual sums (a stream read by a block and a skip), layer_norm, concatenation, a dense
//! output read both by an activation and by a skip connection (the four-orthant rule), and
//! every other activation of the registry and a user's, each in one hidden layer.
//!
//! Risk of a false alarm: each case checks 9 entries at 3 standard errors (two-sided
//! p ≈ 0.0027 each), so about 2.4 % of seed sets fail one entry of a case by chance; the
//! seed base is fixed, so a failure reproduces and is examined (docs/math.md §4).

use infw::finite::sign_check::{sign_step_convergence, sign_step_limit};
use infw::ndarray::{array, s, Array2};
use infw::{KernelProgram, Network, TrainingInputs, Want};

/// Network seeds are `7919 s + seed_base(case)`, s = 0..seeds: a base of its own per case
/// (from the case's name), so that cases are independent draws. A first run shared one base
/// by all cases: one-layer networks of the same shape then drew the same weights, and
/// sigmoid and softplus failed together (3.02 and 2.91 standard errors, the same pattern of
/// signs), although their one-layer first-order change is an unbiased estimate of the limit
/// at every width (each unit's pre-activation is exactly Gaussian): one shared fluctuation.
fn seed_base(case: &str) -> u64 {
    case.bytes().fold(31337u64, |h, b| {
        h.wrapping_mul(1_000_003).wrapping_add(b as u64)
    }) % 1_000_000_007
}
const SEEDS: u64 = 28;
/// Widths 256, 1024, 4096 for declarations of width 256.
const FACTORS: [usize; 3] = [1, 4, 16];

/// Four points in R⁴ (three to evaluate at, the last one trained on) and χ with both signs.
fn setting() -> (Array2<f64>, Array2<f64>, [f64; 3]) {
    let x = array![
        [0.9, -0.4, 1.3, 0.2],
        [-1.1, 0.7, 0.3, -0.8],
        [0.5, 1.6, -0.6, 0.4],
        [1.2, 0.1, -0.9, -1.4],
    ];
    let eval = x.slice(s![0..3, ..]).to_owned();
    let train = x.slice(s![3..4, ..]).to_owned();
    (eval, train, [0.8, -1.3, 0.4])
}

/// Checks one declaration against its finite networks (prints the report).
fn check<K: KernelProgram>(what: &str, net: &Network<K>) {
    check_with(what, net, SEEDS)
}

/// [`check`] with `seeds` networks per width.
fn check_with<K: KernelProgram>(what: &str, net: &Network<K>, seeds: u64) {
    let (eval, train, chi) = setting();
    let chi = infw::ndarray::Array1::from(chi.to_vec());
    let k = net
        .kernels(&eval, TrainingInputs::of(&train), Want::ADAM)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (r, h) = (k.readout.unwrap(), k.hidden.unwrap());
    let limit = sign_step_limit(r.column(0), h.column(0), chi.view());
    let report = sign_step_convergence(
        net.architecture(),
        &FACTORS,
        train.row(0),
        chi.view(),
        eval.view(),
        &limit,
        seeds,
        seed_base(what),
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!("{what}: {report}");
    if let Err(e) = report.converges(3.0) {
        panic!("{what}: {e}\n{report}");
    }
}

/// A residual block ending in a dense layer, layer_norm, a smooth activation inside the
/// block and a relu read through layer_norm by both skip and block: the dense outputs before
/// the sum get the four-orthant B of the final relu.
#[test]
fn residual_layer_norm_gelu() {
    let net = infw::network! {
        dense(256, b_std = 0.2) residual(dense(256, b_std = 0.1) gelu dense(256)) layer_norm relu
    };
    check("residual + layer_norm + gelu", &net);
}

/// A skip connection beside a leaky relu (the four-orthant rule with a second slope) and a
/// readout reading a Gaussian sum.
#[test]
fn residual_beside_leaky_relu() {
    let net = infw::network! { dense(256, b_std = 0.3) residual(leaky_relu(0.2) dense(256, w_std = 1.3)) };
    check("residual beside leaky_relu", &net);
}

/// A fan-out into two branches of different widths, concatenated and read by a dense layer.
#[test]
fn concatenation_of_branches() {
    let net = infw::network! {
        dense(256, b_std = 0.1) erf parallel(dense(256, w_std = 1.4) relu | dense(128, b_std = 0.5)) dense(256) abs
    };
    check("concatenation", &net);
}

/// x³/3 + x: a user's activation (numerical kernels).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct CubicPlus;

impl infw::UserActivation for CubicPlus {
    fn value(u: f64) -> f64 {
        u * u * u / 3.0 + u
    }
    fn derivative(u: f64) -> f64 {
        u * u + 1.0
    }
}

/// One hidden layer costs little: 160 seeds per width, 0.42 times the standard error of 28.
fn one_layer<K: KernelProgram>(what: &str, net: &Network<K>) {
    check_with(what, net, 160)
}

/// Every activation not covered by the runtime's relu/erf test, in one hidden layer with a
/// bias (so that the sign kernels see nonzero means of the pair).
/// 11 declarations × 3 widths × 160 seeds: 1 s in release on 2 cores since the diagonal
/// trapezoid no longer falls back to the quadrature (it was ~70 s and `#[ignore]`d).
#[test]
fn every_activation_in_one_layer() {
    one_layer(
        "leaky_relu",
        &infw::network! { dense(256, b_std = 0.2) leaky_relu(0.1) },
    );
    one_layer("abs", &infw::network! { dense(256, b_std = 0.2) abs });
    one_layer(
        "identity",
        &infw::network! { dense(256, b_std = 0.2) identity },
    );
    one_layer("gelu", &infw::network! { dense(256, b_std = 0.2) gelu });
    one_layer("sin", &infw::network! { dense(256, b_std = 0.2) sin });
    one_layer("cos", &infw::network! { dense(256, b_std = 0.2) cos });
    one_layer("tanh", &infw::network! { dense(256, b_std = 0.2) tanh });
    one_layer(
        "softplus",
        &infw::network! { dense(256, b_std = 0.2) softplus },
    );
    one_layer("silu", &infw::network! { dense(256, b_std = 0.2) silu });
    one_layer(
        "sigmoid",
        &infw::network! { dense(256, b_std = 0.2) sigmoid },
    );
    one_layer(
        "act(CubicPlus)",
        &infw::network! { dense(256, b_std = 0.2) act(CubicPlus) },
    );
}
