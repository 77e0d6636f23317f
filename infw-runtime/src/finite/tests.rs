//! Tests of the finite networks: gradients vs finite differences, the linearization, Adam's
//! sign limit, training, errors. The wide-width checks (empirical NTK, SPEC §4's limit)
//! live in `tests_limit.rs`.

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::*;
use crate::{Activation, Architecture, Error, Hidden, Loss, Readout};

/// An architecture with `'static` hidden blocks (leaked: tests only).
pub(crate) fn arch(hidden: &[(usize, f64, f64, Activation)], w: f64, b: f64) -> Architecture {
    let h: Vec<Hidden> = hidden
        .iter()
        .map(|&(width, w_std, b_std, activation)| Hidden {
            width,
            w_std,
            b_std,
            activation,
        })
        .collect();
    Architecture {
        hidden: Box::leak(h.into_boxed_slice()),
        readout: Readout {
            outputs: None,
            w_std: w,
            b_std: b,
        },
    }
}

pub(crate) fn randn(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.sample(StandardNormal))
}

fn random_params_like(p: &Params, seed: u64) -> Params {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut q = p.zeros_like();
    for w in &mut q.weights {
        w.mapv_inplace(|_| rng.sample(StandardNormal));
    }
    for b in &mut q.biases {
        b.mapv_inplace(|_| rng.sample(StandardNormal));
    }
    q
}

/// One-hot targets for `labels` with `c` classes.
fn one_hot(labels: &[usize], c: usize) -> Array2<f64> {
    let mut y = Array2::zeros((labels.len(), c));
    for (i, &k) in labels.iter().enumerate() {
        y[[i, k]] = 1.0;
    }
    y
}

fn mean_loss(net: &FiniteNetwork, x: ArrayView2<f64>, y: ArrayView2<f64>, loss: Loss) -> f64 {
    let f = net.forward(x).unwrap();
    let n = x.nrows();
    (0..n)
        .map(|i| loss.value(f.row(i).as_slice().unwrap(), y.row(i).to_vec().as_slice()))
        .sum::<f64>()
        / n as f64
}

/// The smallest |pre-activation| of any hidden unit on any row of `x`.
fn min_abs_hidden_preactivation(net: &FiniteNetwork, x: ArrayView2<f64>) -> f64 {
    let mut buf = super::layers::Buffers::new(&net.specs, x.nrows(), false);
    super::layers::forward(&net.specs, &net.params, x, &mut buf);
    let hidden = net.specs.len() - 1;
    buf.pre[..hidden]
        .iter()
        .flat_map(|h| h.iter().map(|v| v.abs()).collect::<Vec<_>>())
        .fold(f64::INFINITY, f64::min)
}

/// The k-th scalar of layer `layer`'s weight (`which` = 0) or bias (1).
fn entry(p: &mut Params, layer: usize, which: usize, k: usize) -> &mut f64 {
    if which == 0 {
        &mut p.weights[layer].as_slice_mut().unwrap()[k]
    } else {
        &mut p.biases[layer].as_slice_mut().unwrap()[k]
    }
}

const ACTIVATIONS: [Activation; 5] = [
    Activation::Relu,
    Activation::Erf,
    Activation::LeakyRelu(0.1),
    Activation::Abs,
    Activation::Identity,
];

/// Test 1. Gradients of the mean loss against central differences, every activation, both
/// parameterizations, both losses, every parameter of a 3 → 5 → 4 → 3 network.
///
/// Tolerance: with step h the central difference has truncation error h²|L'''|/6 and
/// rounding error ~ ε|L|/h. With h = 1e-5, |L| ≲ 10, |L'''| ≲ 10²: ≲ 2e-8 + 2e-10, so
/// |fd − g| ≤ 1e-7 (1 + |g|). Piecewise-linear activations are only differentiable away
/// from their kink: the network is chosen so every hidden |h| > 1e-2, and one parameter
/// moved by 1e-5 changes any h by at most ~1e-5·max|input| ≪ 1e-2, so no kink is crossed.
#[test]
fn gradients_match_central_differences() {
    let h = 1e-5;
    let mut checked = 0;
    for act in ACTIVATIONS {
        for param in [Parameterization::Ntk, Parameterization::Standard] {
            for loss in [Loss::Mse, Loss::CrossEntropy] {
                let a = arch(&[(5, 1.4, 0.3, act), (4, 1.2, 0.2, act)], 1.1, 0.4);
                let x = randn(4, 3, 11);
                let y = one_hot(&[0, 2, 1, 2], 3);
                // A network whose hidden units all stay away from the kinks.
                let mut net = None;
                for seed in 0..200 {
                    let n = FiniteNetwork::new(&a, 3, 3, param, seed).unwrap();
                    if min_abs_hidden_preactivation(&n, x.view()) > 1e-2 {
                        net = Some(n);
                        break;
                    }
                }
                let mut net = net.expect("some seed keeps every pre-activation off its kink");
                let mut grad = net.params.zeros_like();
                let mut ws = net.workspace();
                net.loss_gradient(x.view(), y.view(), loss, &mut grad, &mut ws)
                    .unwrap();
                let n_w = net.params.weights.len();
                for layer in 0..n_w {
                    for which in 0..2 {
                        let len = if which == 0 {
                            net.params.weights[layer].len()
                        } else {
                            net.params.biases[layer].len()
                        };
                        for k in 0..len {
                            let orig = *entry(&mut net.params, layer, which, k);
                            *entry(&mut net.params, layer, which, k) = orig + h;
                            let up = mean_loss(&net, x.view(), y.view(), loss);
                            *entry(&mut net.params, layer, which, k) = orig - h;
                            let down = mean_loss(&net, x.view(), y.view(), loss);
                            *entry(&mut net.params, layer, which, k) = orig;
                            let fd = (up - down) / (2.0 * h);
                            let g = if which == 0 {
                                grad.weights[layer].as_slice().unwrap()[k]
                            } else {
                                grad.biases[layer].as_slice().unwrap()[k]
                            };
                            assert!(
                                (fd - g).abs() <= 1e-7 * (1.0 + g.abs()),
                                "{act:?} {param:?} {loss:?} layer {layer} {} {k}: fd {fd} vs backprop {g}",
                                if which == 0 { "W" } else { "b" }
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    // 5 activations × 2 × 2 × (15+5+20+4+12+3) parameters.
    assert_eq!(checked, 20 * 59);
}

/// The rayon split of a large batch sums to the single-block gradient of `gradient()`
/// (same maths, different summation order: agreement to 1e-12 relative).
#[test]
fn split_batch_gradient_equals_single_block_gradient() {
    let a = arch(
        &[
            (16, 1.3, 0.1, Activation::Erf),
            (8, 1.0, 0.1, Activation::Relu),
        ],
        1.0,
        0.1,
    );
    let net = FiniteNetwork::new(&a, 5, 3, Parameterization::Ntk, 3).unwrap();
    let n = 3 * BLOCK_ROWS + 17;
    let x = randn(n, 5, 1);
    let y = randn(n, 3, 2);
    let mut grad = net.params.zeros_like();
    let mut ws = net.workspace();
    let l = net
        .loss_gradient(x.view(), y.view(), Loss::Mse, &mut grad, &mut ws)
        .unwrap();
    // Again with the same workspace: reuse must not leak state between calls.
    let l2 = net
        .loss_gradient(x.view(), y.view(), Loss::Mse, &mut grad, &mut ws)
        .unwrap();
    assert_eq!(l, l2);
    let f = net.forward(x.view()).unwrap();
    let chi = (&f - &y) / n as f64;
    let g1 = net.gradient(x.view(), chi.view()).unwrap();
    let mut diff = grad.clone();
    diff.axpy(-1.0, &g1);
    assert!(
        diff.norm() <= 1e-12 * g1.norm(),
        "{} vs {}",
        diff.norm(),
        g1.norm()
    );
    assert!((l - mean_loss(&net, x.view(), y.view(), Loss::Mse)).abs() < 1e-12 * l);
}

/// Test 2. The linearization equals the network at θ0 (exactly: zero tangent), so does its
/// gradient; after θ0 → θ0 + t v it equals f(θ0) + J t v (checked against a central
/// difference of f along v, tolerance as in test 1) and differs from f(θ0 + t v) at second
/// order: halving t divides the gap by 4 (within 10 %: third-order terms are O(t) relative).
#[test]
fn linearized_model_is_first_order_taylor_expansion() {
    for act in [Activation::Erf, Activation::Relu, Activation::Abs] {
        let a = arch(&[(6, 1.4, 0.3, act), (5, 1.2, 0.2, act)], 1.1, 0.4);
        let net = FiniteNetwork::new(&a, 3, 2, Parameterization::Ntk, 5).unwrap();
        let x = randn(4, 3, 7);
        let y = randn(4, 2, 8);
        let mut lin = net.linearize(false);
        // At θ0.
        let f0 = net.forward(x.view()).unwrap();
        assert_eq!(lin.predict(x.view()).unwrap(), f0);
        let (mut g_net, mut g_lin) = (net.params.zeros_like(), net.params.zeros_like());
        let mut ws = net.workspace();
        net.loss_gradient(x.view(), y.view(), Loss::Mse, &mut g_net, &mut ws)
            .unwrap();
        let mut ws2 = lin.workspace();
        lin.loss_gradient(x.view(), y.view(), Loss::Mse, &mut g_lin, &mut ws2)
            .unwrap();
        assert_eq!(g_net, g_lin);

        // Along a direction v.
        let v = random_params_like(&net.params, 9);
        let at = |t: f64| {
            let mut n = net.clone();
            n.params.axpy(t, &v);
            n.forward(x.view()).unwrap()
        };
        let h = 1e-5;
        let jv = (at(h) - at(-h)) / (2.0 * h);
        let mut gaps = Vec::new();
        for t in [1e-2, 5e-3] {
            lin.params_mut().fill(0.0);
            lin.params_mut().axpy(t, &v);
            let fl = lin.predict(x.view()).unwrap();
            let taylor = &f0 + &(&jv * t);
            let err = (&fl - &taylor)
                .mapv(f64::abs)
                .fold(0.0f64, |m, &e| m.max(e));
            assert!(
                err <= 1e-7 * t * (1.0 + jv.mapv(f64::abs).sum()),
                "{act:?}: {err}"
            );
            let gap = (&at(t) - &fl).mapv(f64::abs).sum();
            gaps.push(gap);
            // The gradient of the linear model does not move with θ.
            lin.loss_gradient(x.view(), y.view(), Loss::Mse, &mut g_lin, &mut ws2)
                .unwrap();
            // The residual f_lin − y changed, so compare with J(θ0)ᵀ χ for the new χ:
            let chi = (&fl - &y) / 4.0;
            let g_expected = net.gradient(x.view(), chi.view()).unwrap();
            let mut d = g_lin.clone();
            d.axpy(-1.0, &g_expected);
            assert!(d.norm() <= 1e-12 * g_expected.norm());
        }
        let ratio = gaps[0] / gaps[1];
        assert!(gaps[1] > 0.0);
        assert!(
            (3.6..=4.4).contains(&ratio),
            "{act:?}: f − f_lin should be O(t²), gap ratio {ratio} ({gaps:?})"
        );

        // The centred variant drops exactly f(θ0).
        let mut cen = net.linearize(true);
        cen.params_mut().assign(lin.params());
        let fc = cen.predict(x.view()).unwrap();
        let fl = lin.predict(x.view()).unwrap();
        assert!(
            (&fl - &f0 - &fc)
                .mapv(f64::abs)
                .fold(0.0f64, |m, &e| m.max(e))
                < 1e-13
        );
    }
}

/// Test 3. Adam with β1 = β2 = 0, ε = 0 and SPEC §4's rates is sign descent, bitwise, over
/// several per-example steps (including exactly-zero gradient entries from dead relu units).
#[test]
fn adam_without_moments_is_sign_descent_bitwise() {
    let a = arch(
        &[
            (12, 1.3, 0.2, Activation::Relu),
            (10, 1.3, 0.2, Activation::Relu),
        ],
        1.3,
        0.2,
    );
    let net = FiniteNetwork::new(&a, 4, 3, Parameterization::Ntk, 21).unwrap();
    let rates = net.sign_limit_rates();
    let mut adam_net = net.clone();
    let mut sign_net = net.clone();
    let mut adam = Adam::new(0.05, 0.0, 0.0, 0.0)
        .unwrap()
        .with_rates(rates.clone());
    let mut sd = SignDescent::sign_limit(0.05, &net.params).unwrap();
    let x = randn(6, 4, 1);
    let y = one_hot(&[0, 1, 2, 0, 1, 2], 3);
    let mut g = net.params.zeros_like();
    let mut ws = net.workspace();
    let mut zeros = 0usize;
    for step in 0..6 {
        let (xb, yb) = (
            x.slice(ndarray::s![step..step + 1, ..]),
            y.slice(ndarray::s![step..step + 1, ..]),
        );
        adam_net
            .loss_gradient(xb, yb, Loss::CrossEntropy, &mut g, &mut ws)
            .unwrap();
        zeros += g.weights[0].iter().filter(|&&v| v == 0.0).count();
        adam.step(adam_net.params_mut(), &g).unwrap();
        sign_net
            .loss_gradient(xb, yb, Loss::CrossEntropy, &mut g, &mut ws)
            .unwrap();
        sd.step(sign_net.params_mut(), &g).unwrap();
        assert_eq!(adam_net.params, sign_net.params, "step {step}");
    }
    assert!(zeros > 0, "the test should exercise sign(0) = 0");
    assert_ne!(adam_net.params, net.params);
}

/// Standard and NTK parameterizations draw the same normals in the same order, so with the
/// same seed they compute the same function at initialization (to rounding).
#[test]
fn standard_and_ntk_agree_at_init_and_seeding_is_reproducible() {
    let a = arch(&[(7, 1.5, 0.3, Activation::Erf)], 0.9, 0.2);
    let x = randn(5, 4, 3);
    let ntk = FiniteNetwork::new(&a, 4, 2, Parameterization::Ntk, 1).unwrap();
    let std = FiniteNetwork::new(&a, 4, 2, Parameterization::Standard, 1).unwrap();
    let (f1, f2) = (
        ntk.forward(x.view()).unwrap(),
        std.forward(x.view()).unwrap(),
    );
    assert!((&f1 - &f2).mapv(f64::abs).sum() < 1e-12);
    let again = FiniteNetwork::new(&a, 4, 2, Parameterization::Ntk, 1).unwrap();
    assert_eq!(again.params, ntk.params);
    let other = FiniteNetwork::new(&a, 4, 2, Parameterization::Ntk, 2).unwrap();
    assert_ne!(other.params, ntk.params);
}

/// The training loop lowers the loss of a separable toy problem for both models and all
/// three optimizers, and reports what it should.
#[test]
fn training_reduces_loss_for_network_and_linearization() {
    let a = arch(&[(32, 1.4, 0.1, Activation::Relu)], 1.0, 0.0);
    let x = randn(60, 2, 4);
    let labels: Vec<usize> = x
        .rows()
        .into_iter()
        .map(|r| (r[0] > 0.0) as usize)
        .collect();
    let y = one_hot(&labels, 2);
    let data = Dataset::new(x.view(), y.view());
    let cfg = TrainConfig {
        epochs: 15,
        batch_size: 4,
        loss: Loss::Mse,
        seed: 1,
    };
    let net = FiniteNetwork::new(&a, 2, 2, Parameterization::Ntk, 0).unwrap();
    type MakeOptimizer = Box<dyn Fn(&Params) -> Box<dyn Optimizer>>;
    let opts: Vec<MakeOptimizer> = vec![
        Box::new(|_| Box::new(Sgd::new(0.05, 0.9).unwrap())),
        Box::new(|_| Box::new(Adam::new(0.01, 0.9, 0.999, 1e-8).unwrap())),
        Box::new(|p| Box::new(SignDescent::sign_limit(0.05, p).unwrap())),
    ];
    for make in &opts {
        let mut n = net.clone();
        let mut lin = net.linearize(true);
        let mut seen = 0;
        let mut cb = |_: &EpochRecord| seen += 1;
        let mut o = make(&n.params);
        let h = train(&mut n, o.as_mut(), &data, Some(&data), &cfg, Some(&mut cb)).unwrap();
        assert_eq!(seen, 15);
        let mut o = make(&n.params);
        let hl = train(&mut lin, o.as_mut(), &data, None, &cfg, None).unwrap();
        let (ws, wl) = (
            evaluate(&net, &data, Loss::Mse, &mut net.workspace()).unwrap(),
            evaluate(
                &net.linearize(true),
                &data,
                Loss::Mse,
                &mut Workspace::default(),
            )
            .unwrap(),
        );
        let last = h.last().unwrap();
        assert_eq!(h.epochs.len(), 15);
        assert!(
            last.train_loss < 0.5 * ws.0,
            "{} vs {}",
            last.train_loss,
            ws.0
        );
        assert_eq!(last.test_loss, Some(last.train_loss));
        assert!(last.train_accuracy > 0.9 && last.seconds >= 0.0);
        let ll = hl.last().unwrap();
        eprintln!(
            "net {} -> {}, linearized {} -> {}",
            ws.0, last.train_loss, wl.0, ll.train_loss
        );
        assert!(ll.train_loss < 0.5 * wl.0 && ll.test_loss.is_none());
    }
}

#[test]
fn bad_input_gives_typed_errors_not_panics() {
    let a = arch(&[(4, 1.0, 0.0, Activation::Relu)], 1.0, 0.0);
    let mut net = FiniteNetwork::new(&a, 3, 2, Parameterization::Ntk, 0).unwrap();
    assert!(matches!(
        net.forward(randn(2, 4, 0).view()),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        net.forward(Array2::zeros((0, 3)).view()),
        Err(Error::Empty { .. })
    ));
    let mut x = randn(2, 3, 0);
    x[[1, 2]] = f64::NAN;
    assert!(matches!(
        net.forward(x.view()),
        Err(Error::NonFinite { row: 1, col: 2, .. })
    ));
    let zero = arch(&[(0, 1.0, 0.0, Activation::Relu)], 1.0, 0.0);
    assert!(FiniteNetwork::new(&zero, 3, 2, Parameterization::Ntk, 0).is_err());
    assert!(FiniteNetwork::new(&a, 0, 2, Parameterization::Ntk, 0).is_err());
    let fixed = Architecture {
        readout: Readout {
            outputs: Some(3),
            ..a.readout
        },
        ..a
    };
    assert!(matches!(
        FiniteNetwork::new(&fixed, 3, 2, Parameterization::Ntk, 0),
        Err(Error::Architecture(_))
    ));
    assert!(Adam::new(0.1, 1.0, 0.0, 0.0).is_err());
    assert!(Sgd::new(f64::NAN, 0.0).is_err());
    // A gradient shaped like another network's.
    let other_arch = arch(&[(5, 1.0, 0.0, Activation::Relu)], 1.0, 0.0);
    let other = FiniteNetwork::new(&other_arch, 3, 2, Parameterization::Ntk, 0).unwrap();
    let mut sd = SignDescent::new(0.1).unwrap();
    assert!(matches!(
        sd.step(&mut net.params, &other.params),
        Err(Error::ShapeMismatch { .. })
    ));
    // Parameters replaced with the wrong shape through params_mut.
    let mut broken = net.clone();
    broken.params_mut().weights[0] = Array2::zeros((2, 2));
    assert!(matches!(
        broken.forward(randn(1, 3, 0).view()),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut lin = net.linearize(false);
    lin.params_mut().biases.pop();
    assert!(matches!(
        lin.predict(randn(1, 3, 0).view()),
        Err(Error::ShapeMismatch { .. })
    ));
    // Divergence is an error, not a panic or a NaN history.
    let x = randn(20, 3, 1);
    let y = randn(20, 2, 2) * 1e3;
    let data = Dataset::new(x.view(), y.view());
    let mut sgd = Sgd::new(1e6, 0.0).unwrap();
    let cfg = TrainConfig {
        epochs: 50,
        batch_size: 1,
        loss: Loss::Mse,
        seed: 0,
    };
    assert!(matches!(
        train(&mut net, &mut sgd, &data, None, &cfg, None),
        Err(Error::Diverged { .. })
    ));
}

/// `empirical_ntk`'s per-layer formula equals its definition Σ_p ∂f_0/∂θ_p(x) ∂f_0/∂θ_p(x'),
/// with per-example gradients from `gradient` (χ = e_0), in both parameterizations
/// (the same products summed in another order: 1e-12 relative).
#[test]
fn empirical_ntk_equals_sum_over_parameters() {
    let a = arch(
        &[
            (7, 1.3, 0.2, Activation::Erf),
            (6, 1.1, 0.3, Activation::LeakyRelu(0.2)),
        ],
        0.9,
        0.1,
    );
    for param in [Parameterization::Ntk, Parameterization::Standard] {
        let net = FiniteNetwork::new(&a, 3, 2, param, 4).unwrap();
        let (x1, x2) = (randn(3, 3, 1), randn(4, 3, 2));
        let k = net.empirical_ntk(x1.view(), x2.view()).unwrap();
        let e0 = ndarray::array![[1.0, 0.0]];
        let grad = |x: ArrayView2<f64>, i: usize| {
            net.gradient(x.slice(ndarray::s![i..i + 1, ..]), e0.view())
                .unwrap()
        };
        for i in 0..3 {
            for j in 0..4 {
                let want = grad(x1.view(), i).dot(&grad(x2.view(), j));
                assert!(
                    (k[[i, j]] - want).abs() <= 1e-12 * (1.0 + want.abs()),
                    "{param:?}"
                );
            }
        }
    }
}

/// `sign_step_first_order_change` is J(x_eval)Δθ for Δθ = −η r_p sign(χ·∂f(x_b)/∂θ_p):
/// checked against a central difference of f along Δθ (step 1e-5, tolerance as test 1:
/// 1e-7), and sign(0) = 0 leaves the readout row of an output with χ_c = 0 untouched.
#[test]
fn sign_step_change_is_the_jvp_of_the_sign_step() {
    let a = arch(
        &[
            (9, 1.4, 0.1, Activation::Erf),
            (8, 1.2, 0.1, Activation::Erf),
        ],
        1.0,
        0.05,
    );
    let net = FiniteNetwork::new(&a, 4, 3, Parameterization::Ntk, 8).unwrap();
    let x = randn(3, 4, 5);
    let x_b = randn(1, 4, 6);
    let chi = ndarray::array![0.7, -0.2, 0.0];
    let eta = 0.3;
    let df = net
        .sign_step_first_order_change(x_b.row(0), chi.view(), x.view(), eta)
        .unwrap();
    let mut step = net
        .gradient(x_b.view(), chi.view().insert_axis(ndarray::Axis(0)))
        .unwrap();
    let rates = net.sign_limit_rates();
    for (w, r) in step.weights.iter_mut().zip(&rates.weights) {
        w.mapv_inplace(|g| -eta * r * super::network::sign(g));
    }
    for (b, r) in step.biases.iter_mut().zip(&rates.biases) {
        b.mapv_inplace(|g| -eta * r * super::network::sign(g));
    }
    let at = |t: f64| {
        let mut n = net.clone();
        n.params.axpy(t, &step);
        n.forward(x.view()).unwrap()
    };
    let h = 1e-5;
    let fd = (at(h) - at(-h)) / (2.0 * h);
    let err = (&fd - &df).mapv(f64::abs).fold(0.0f64, |m, &e| m.max(e));
    assert!(err < 1e-7, "{err}");
    // χ_3 = 0 makes the readout row of output 3 not move (sign(0) = 0).
    assert!(step.weights[2].row(2).iter().all(|&v| v == 0.0));
    assert_eq!(step.biases[2][2], 0.0);
}
