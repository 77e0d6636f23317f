//! Tests of the finite networks: gradients vs finite differences, the linearization, Adam's
//! sign limit, training, errors. The wide-width checks (empirical NTK, docs/math.md §4's limit)
//! live in `tests_limit.rs`.

use ndarray::{Array2, ArrayView2, Zip};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::*;
use crate::{Activation, Architecture, Error, Hidden, Loss, Node, Readout};

/// A chain architecture from (width, w_std, b_std, activation) blocks.
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
    Architecture::chain(&h, None, w, b)
}

pub(crate) fn randn(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.sample(StandardNormal))
}

pub(crate) fn random_params_like(p: &Params, seed: u64) -> Params {
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
pub(crate) fn one_hot(labels: &[usize], c: usize) -> Array2<f64> {
    let mut y = Array2::zeros((labels.len(), c));
    for (i, &k) in labels.iter().enumerate() {
        y[[i, k]] = 1.0;
    }
    y
}

pub(crate) fn mean_loss(
    net: &FiniteNetwork,
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    loss: Loss,
) -> f64 {
    let f = net.forward(x).unwrap();
    let n = x.nrows();
    (0..n)
        .map(|i| loss.value(f.row(i).as_slice().unwrap(), y.row(i).to_vec().as_slice()))
        .sum::<f64>()
        / n as f64
}

/// The smallest |u| over every input u of every activation node, on any row of `x` (the
/// kinks of the piecewise-linear activations are at u = 0).
pub(crate) fn min_abs_hidden_preactivation(net: &FiniteNetwork, x: ArrayView2<f64>) -> f64 {
    let g = &net.graph;
    let mut buf = super::graph::Buffers::new(g, x.nrows(), false);
    super::layers::forward(g, &net.params, x, &mut buf);
    let mut m = f64::INFINITY;
    for op in &g.ops {
        if let super::graph::Op::Activation { input, .. } = *op {
            let u = if input == 0 {
                x.view()
            } else {
                buf.val[input].view()
            };
            m = u.iter().fold(m, |m, v| m.min(v.abs()));
        }
    }
    m
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
    Activation::RELU,
    Activation::ERF,
    Activation::leaky_relu(0.1),
    Activation::ABS,
    Activation::IDENTITY,
];

/// A graph under construction, for tests: node ids are returned as nodes are added.
pub(crate) struct GraphBuilder {
    nodes: Vec<Node>,
}

impl GraphBuilder {
    pub fn new() -> Self {
        GraphBuilder {
            nodes: vec![Node::Input],
        }
    }
    fn push(&mut self, n: Node) -> usize {
        self.nodes.push(n);
        self.nodes.len() - 1
    }
    pub fn dense(&mut self, input: usize, width: usize, w_std: f64, b_std: f64) -> usize {
        self.push(Node::Dense {
            input,
            width,
            w_std,
            b_std,
        })
    }
    pub fn act(&mut self, input: usize, activation: Activation) -> usize {
        self.push(Node::Activation { input, activation })
    }
    pub fn layer_norm(&mut self, input: usize) -> usize {
        self.push(Node::LayerNorm { input })
    }
    pub fn sum(&mut self, inputs: &[usize]) -> usize {
        self.push(Node::Sum {
            inputs: inputs.to_vec(),
        })
    }
    pub fn concat(&mut self, inputs: &[usize]) -> usize {
        self.push(Node::Concat {
            inputs: inputs.to_vec(),
        })
    }
    pub fn readout(self, input: usize, w_std: f64, b_std: f64) -> Architecture {
        Architecture {
            spatial: None,
            nodes: self.nodes,
            readout: Readout {
                input,
                outputs: None,
                w_std,
                b_std,
            },
        }
    }
}

/// `dense(w) act residual(dense(w) act dense(w)) layer_norm`, then the readout: the stream
/// fans out into the block and the sum.
pub(crate) fn residual_layer_norm(w: usize, act: Activation) -> Architecture {
    let mut g = GraphBuilder::new();
    let h = g.dense(0, w, 1.3, 0.2);
    let z = g.act(h, act);
    let b1 = g.dense(z, w, 1.2, 0.1);
    let b2 = g.act(b1, act);
    let b3 = g.dense(b2, w, 1.1, 0.1);
    let s = g.sum(&[z, b3]);
    let n = g.layer_norm(s);
    g.readout(n, 1.0, 0.1)
}

/// Small graphs (input dimension 3) that together exercise every node kind, with `act` as
/// every activation: (what it exercises, the architecture).
fn graphs(act: Activation) -> Vec<(&'static str, Architecture)> {
    let mut out = vec![(
        "chain: dense, activation",
        arch(&[(5, 1.4, 0.3, act), (4, 1.2, 0.2, act)], 1.1, 0.4),
    )];
    out.push((
        "residual: fan-out, sum, layer_norm",
        residual_layer_norm(4, act),
    ));
    // layer_norm of a dense output, then the activation.
    let mut g = GraphBuilder::new();
    let h = g.dense(0, 5, 1.3, 0.3);
    let n = g.layer_norm(h);
    let z = g.act(n, act);
    out.push(("layer_norm before the activation", g.readout(z, 1.1, 0.2)));
    // The input fans out into two dense branches of unequal widths, concatenated.
    let mut g = GraphBuilder::new();
    let a1 = g.dense(0, 4, 1.3, 0.2);
    let a2 = g.act(a1, act);
    let b1 = g.dense(0, 3, 0.9, 0.4);
    let c = g.concat(&[a2, b1]);
    out.push((
        "concat of branches, fan-out of the input",
        g.readout(c, 1.2, 0.1),
    ));
    // Nodes without parameters upstream (the input's activation and layer norm, a residual
    // around the input), a triple sum reading one node twice, a dense node that the readout
    // never reads, and a concat mixing all of them.
    let mut g = GraphBuilder::new();
    let xa = g.act(0, act);
    let xn = g.layer_norm(0);
    let h = g.dense(0, 3, 1.2, 0.3);
    let r = g.sum(&[h, 0]);
    let z = g.act(r, act);
    let t = g.sum(&[z, z, h]);
    let _dead = g.dense(t, 2, 1.0, 0.5);
    let n = g.layer_norm(t);
    let c = g.concat(&[xa, n, xn, z]);
    let d = g.dense(c, 4, 1.1, 0.2);
    let e = g.act(d, act);
    out.push((
        "parameter-free nodes, repeated inputs, a dead node",
        g.readout(e, 0.9, 0.3),
    ));
    out
}

/// The largest |fd − g| / (1 + |g|) over every scalar parameter, between the backward
/// pass's gradient of the mean loss and central differences with step `h`; and the count.
pub(crate) fn gradient_error(
    net: &mut FiniteNetwork,
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    loss: Loss,
    h: f64,
) -> (usize, f64, String) {
    let mut grad = net.params.zeros_like();
    let mut ws = net.workspace();
    net.loss_gradient(x, y, loss, &mut grad, &mut ws).unwrap();
    let (mut checked, mut worst, mut at) = (0, 0.0f64, String::new());
    for layer in 0..net.params.weights.len() {
        for which in 0..2 {
            let len = if which == 0 {
                net.params.weights[layer].len()
            } else {
                net.params.biases[layer].len()
            };
            for k in 0..len {
                let orig = *entry(&mut net.params, layer, which, k);
                *entry(&mut net.params, layer, which, k) = orig + h;
                let up = mean_loss(net, x, y, loss);
                *entry(&mut net.params, layer, which, k) = orig - h;
                let down = mean_loss(net, x, y, loss);
                *entry(&mut net.params, layer, which, k) = orig;
                let fd = (up - down) / (2.0 * h);
                let g = *entry(&mut grad, layer, which, k);
                let err = (fd - g).abs() / (1.0 + g.abs());
                if err > worst {
                    worst = err;
                    at = format!(
                        "tensor {layer} {} {k}: fd {fd} vs backprop {g}",
                        if which == 0 { "W" } else { "b" }
                    );
                }
                checked += 1;
            }
        }
    }
    (checked, worst, at)
}

/// A network of `a` whose activation inputs all stay ≥ 1e-2 away from 0 on `x` (the kink of
/// the piecewise-linear activations), from the first of 500 seeds that gives one.
pub(crate) fn off_kink_network(
    a: &Architecture,
    x: ArrayView2<f64>,
    c: usize,
    param: Parameterization,
) -> FiniteNetwork {
    (0..500)
        .map(|seed| FiniteNetwork::new(a, x.ncols(), c, param, seed).unwrap())
        .find(|n| min_abs_hidden_preactivation(n, x) > 1e-2)
        .expect("some seed keeps every activation input off its kink")
}

/// Test 1. Gradients of the mean loss against central differences, for every graph of
/// `graphs` (every node kind: dense, each activation, layer_norm, residual sum, concat,
/// fan-outs, parameter-free and dead nodes), both parameterizations, both losses, every
/// parameter.
///
/// Tolerance: with step h the central difference has truncation error h²|L'''|/6 and
/// rounding error ~ ε|L|/h. With h = 1e-5, |L| ≲ 10 and |L'''| ≲ 10³ (layer norm's scale
/// 1/σ enters cubed): ≲ 2e-8 + 2e-10, so |fd − g| ≤ 1e-7 (1 + |g|). Piecewise-linear
/// activations are only differentiable away from their kink: the network is chosen so
/// every activation input has |u| > 1e-2, and one parameter moved by 1e-5 changes any u
/// by ~1e-5 (≲ 1e-3 even through layer norm's 1/σ) ≪ 1e-2, so no kink is crossed.
#[test]
fn gradients_match_central_differences() {
    let h = 1e-5;
    let mut checked = 0;
    let mut worst = 0.0f64;
    let x = randn(4, 3, 11);
    let y = one_hot(&[0, 2, 1, 2], 3);
    for act in ACTIVATIONS {
        for (what, a) in graphs(act) {
            for param in [Parameterization::Ntk, Parameterization::Standard] {
                for loss in [Loss::Mse, Loss::CrossEntropy] {
                    let mut net = off_kink_network(&a, x.view(), 3, param);
                    let (n, err, at) = gradient_error(&mut net, x.view(), y.view(), loss, h);
                    assert!(err <= 1e-7, "{what}, {act:?} {param:?} {loss:?}: {at}");
                    checked += n;
                    worst = worst.max(err);
                }
            }
        }
    }
    eprintln!("{checked} partial derivatives, worst |fd − g|/(1 + |g|) = {worst:.2e} (bound 1e-7)");
    // The chain alone: 5 activations × 2 × 2 × (15+5+20+4+12+3) parameters, as before.
    assert!(checked > 20 * 59);
}

/// The forward-mode JVP (tangent of f along a random direction v of the parameters) equals
/// the central difference (f(θ + h v) − f(θ − h v)) / 2h for every graph of `graphs`, and its
/// value part is the forward pass. Tolerance as test 1 (h = 1e-5, v ~ N(0, 1) per scalar:
/// 1e-7 (1 + |Jv|)); the networks are kept off the kinks likewise.
#[test]
fn jvp_matches_central_differences_for_every_node_kind() {
    let h = 1e-5;
    let x = randn(5, 3, 13);
    let mut worst = 0.0f64;
    for act in ACTIVATIONS {
        for (what, a) in graphs(act) {
            for param in [Parameterization::Ntk, Parameterization::Standard] {
                let net = off_kink_network(&a, x.view(), 2, param);
                let v = random_params_like(&net.params, 17);
                let (f, jv) = net.jvp(x.view(), &v).unwrap();
                assert_eq!(f, net.forward(x.view()).unwrap());
                let at = |t: f64| {
                    let mut n = net.clone();
                    n.params.axpy(t, &v);
                    n.forward(x.view()).unwrap()
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                let err = Zip::from(&fd)
                    .and(&jv)
                    .fold(0.0f64, |m, &a, &b| m.max((a - b).abs() / (1.0 + b.abs())));
                assert!(err <= 1e-7, "{what}, {act:?} {param:?}: {err}\n{fd}\n{jv}");
                worst = worst.max(err);
            }
        }
    }
    eprintln!("JVP vs central differences: worst |fd − Jv|/(1 + |Jv|) = {worst:.2e} (bound 1e-7)");
}

/// For every graph: the linearized model at θ0 is the network, bitwise, and so is its
/// gradient; with Δθ = t v it moves by J t v (the JVP, to rounding: 1e-12 relative).
#[test]
fn linearized_graph_at_theta0_equals_the_network() {
    let x = randn(6, 3, 19);
    let y = randn(6, 2, 20);
    for act in ACTIVATIONS {
        for (what, a) in graphs(act) {
            let net = FiniteNetwork::new(&a, 3, 2, Parameterization::Ntk, 3).unwrap();
            let mut lin = net.linearize(false);
            let f0 = net.forward(x.view()).unwrap();
            assert_eq!(lin.predict(&x).unwrap(), f0, "{what}");
            let (mut g_net, mut g_lin) = (net.params.zeros_like(), net.params.zeros_like());
            net.loss_gradient(
                x.view(),
                y.view(),
                Loss::Mse,
                &mut g_net,
                &mut net.workspace(),
            )
            .unwrap();
            let mut ws = lin.workspace();
            lin.loss_gradient(x.view(), y.view(), Loss::Mse, &mut g_lin, &mut ws)
                .unwrap();
            assert_eq!(g_net, g_lin, "{what}");
            let v = random_params_like(&net.params, 23);
            lin.params_mut().axpy(0.01, &v);
            let moved = lin.predict_with(x.view(), &mut ws).unwrap();
            let jv = net.jvp(x.view(), &v).unwrap().1;
            let err = (&moved - &f0 - &(&jv * 0.01)).mapv(f64::abs).sum();
            assert!(
                err <= 1e-12 * (1.0 + f0.mapv(f64::abs).sum()),
                "{what}: {err}"
            );
        }
    }
}

/// docs/math.md §4's rates per dense node wherever it sits (docs/math.md §8): W of a dense node with fan-in
/// n_in (its input node's width: a concat's total) and width n_out gets 1/√(n_out n_in), its
/// bias 1/√n_out; the readout W 1/√n_in and its bias 1.
#[test]
fn sign_limit_rates_per_dense_node_of_a_graph() {
    let (_, a) = graphs(Activation::RELU).swap_remove(3);
    let net = FiniteNetwork::with_width_factor(&a, 2, 3, 2, Parameterization::Ntk, 0).unwrap();
    // Dense nodes: a1 (4·2 from x: 3), b1 (3·2 from x), the readout (2 from the concat of
    // both: 8 + 6 = 14).
    assert_eq!(net.widths(), vec![8, 6, 2]);
    let r = net.sign_limit_rates();
    let inv = |v: f64| 1.0 / v.sqrt();
    assert_eq!(r.weights, vec![inv(24.0), inv(18.0), inv(14.0)]);
    assert_eq!(r.biases, vec![inv(8.0), inv(6.0), 1.0]);
    let shapes: Vec<_> = net.params.weights.iter().map(|w| w.dim()).collect();
    assert_eq!(shapes, vec![(8, 3), (6, 3), (2, 14)]);
}

/// Malformed graphs and impossible widths are typed errors, before anything is allocated.
#[test]
fn malformed_graphs_and_huge_widths_are_errors() {
    let ok = residual_layer_norm(4, Activation::RELU);
    let net = |a: &Architecture, factor: usize| {
        FiniteNetwork::with_width_factor(a, factor, 3, 2, Parameterization::Ntk, 0)
    };
    assert!(net(&ok, 1).is_ok());
    let arch_err = |r: Result<FiniteNetwork, Error>| matches!(r, Err(Error::Architecture(_)));
    // Widths that overflow, a dense matrix that could never be allocated, width 0.
    assert!(arch_err(net(&ok, usize::MAX / 2)));
    assert!(arch_err(net(&ok, 1 << 31)));
    let mut zero = ok.clone();
    zero.nodes[3] = Node::Dense {
        input: 2,
        width: 0,
        w_std: 1.0,
        b_std: 0.0,
    };
    assert!(net(&zero, 1).is_err());
    let mut bad = ok.clone();
    bad.nodes[2] = Node::Activation {
        input: 5,
        activation: Activation::RELU,
    };
    assert!(arch_err(net(&bad, 1)), "reads a later node");
    let mut bad = ok.clone();
    bad.nodes[0] = Node::LayerNorm { input: 0 };
    assert!(arch_err(net(&bad, 1)), "no input node");
    let mut bad = ok.clone();
    bad.nodes[4] = Node::Input;
    assert!(arch_err(net(&bad, 1)), "a second input");
    let mut bad = ok.clone();
    bad.nodes[6] = Node::Sum { inputs: vec![] };
    assert!(arch_err(net(&bad, 1)), "an empty sum");
    let mut bad = ok.clone();
    bad.nodes[6] = Node::Sum { inputs: vec![2, 0] };
    assert!(arch_err(net(&bad, 1)), "a sum of widths 4 and 3");
    let mut bad = ok.clone();
    bad.readout.input = 99;
    assert!(arch_err(net(&bad, 1)), "the readout reads no node");
    let mut bad = ok.clone();
    bad.nodes[3] = Node::Dense {
        input: 2,
        width: 4,
        w_std: f64::NAN,
        b_std: 0.0,
    };
    assert!(matches!(net(&bad, 1), Err(Error::InvalidArgument { .. })));
}

/// The rayon split of a large batch sums to the single-block gradient of `gradient()`
/// (same maths, different summation order: agreement to 1e-12 relative).
#[test]
fn split_batch_gradient_equals_single_block_gradient() {
    let a = arch(
        &[
            (16, 1.3, 0.1, Activation::ERF),
            (8, 1.0, 0.1, Activation::RELU),
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
    for act in [Activation::ERF, Activation::RELU, Activation::ABS] {
        let a = arch(&[(6, 1.4, 0.3, act), (5, 1.2, 0.2, act)], 1.1, 0.4);
        let net = FiniteNetwork::new(&a, 3, 2, Parameterization::Ntk, 5).unwrap();
        let x = randn(4, 3, 7);
        let y = randn(4, 2, 8);
        let mut lin = net.linearize(false);
        // At θ0.
        let f0 = net.forward(x.view()).unwrap();
        assert_eq!(lin.predict(&x).unwrap(), f0);
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
            let fl = lin.predict(&x).unwrap();
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
        let fc = cen.predict(&x).unwrap();
        let fl = lin.predict(&x).unwrap();
        assert!(
            (&fl - &f0 - &fc)
                .mapv(f64::abs)
                .fold(0.0f64, |m, &e| m.max(e))
                < 1e-13
        );
    }
}

/// Test 3. Adam with β1 = β2 = 0, ε = 0 and docs/math.md §4's rates is sign descent, bitwise, over
/// several per-example steps (including exactly-zero gradient entries from dead relu units).
#[test]
fn adam_without_moments_is_sign_descent_bitwise() {
    let a = arch(
        &[
            (12, 1.3, 0.2, Activation::RELU),
            (10, 1.3, 0.2, Activation::RELU),
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
    let a = arch(&[(7, 1.5, 0.3, Activation::ERF)], 0.9, 0.2);
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
    let a = arch(&[(32, 1.4, 0.1, Activation::RELU)], 1.0, 0.0);
    let x = randn(60, 2, 4);
    let labels: Vec<usize> = x
        .rows()
        .into_iter()
        .map(|r| (r[0] > 0.0) as usize)
        .collect();
    let y = one_hot(&labels, 2);
    let data = Examples::new(x.view(), y.view());
    let cfg = FiniteTrainConfig {
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
        let mut o = make(&n.params);
        let h = train_with(&mut n, o.as_mut(), &data, Some(&data), &cfg, |_| seen += 1).unwrap();
        assert_eq!(seen, 15);
        let mut o = make(&n.params);
        let hl = train(&mut lin, o.as_mut(), &data, None, &cfg).unwrap();
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
        assert!(last.train_accuracy.unwrap() > 0.9 && last.seconds >= 0.0);
        let ll = hl.last().unwrap();
        eprintln!(
            "net {} -> {}, linearized {} -> {}",
            ws.0, last.train_loss, wl.0, ll.train_loss
        );
        assert!(ll.train_loss < 0.5 * wl.0 && ll.test_loss.is_none());
        assert_eq!(
            last.learning_rate,
            o.learning_rate(),
            "the record carries the rate"
        );
    }
}

/// With one output there is no class to pick: accuracy is `None` in the finite records, as
/// in the function-space ones.
#[test]
fn one_output_has_no_accuracy() {
    let a = arch(&[(8, 1.4, 0.1, Activation::RELU)], 1.0, 0.0);
    let x = randn(10, 2, 5);
    let y = randn(10, 1, 6);
    let data = Examples::new(x.view(), y.view());
    let mut net = FiniteNetwork::new(&a, 2, 1, Parameterization::Ntk, 0).unwrap();
    let cfg = FiniteTrainConfig {
        epochs: 2,
        ..FiniteTrainConfig::default()
    };
    let h = train(
        &mut net,
        &mut Sgd::new(0.01, 0.0).unwrap(),
        &data,
        Some(&data),
        &cfg,
    )
    .unwrap();
    assert_eq!((h.len(), h[1].epoch), (2, 2));
    assert!(h[1].train_accuracy.is_none() && h[1].test_accuracy.is_none());
    assert_eq!((h[1].learning_rate, h[1].test_loss.is_some()), (0.01, true));
}

#[test]
fn bad_input_gives_typed_errors_not_panics() {
    let a = arch(&[(4, 1.0, 0.0, Activation::RELU)], 1.0, 0.0);
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
    let zero = arch(&[(0, 1.0, 0.0, Activation::RELU)], 1.0, 0.0);
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
    let other_arch = arch(&[(5, 1.0, 0.0, Activation::RELU)], 1.0, 0.0);
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
        lin.predict(&randn(1, 3, 0)),
        Err(Error::ShapeMismatch { .. })
    ));
    // Divergence is an error, not a panic or a NaN history.
    let x = randn(20, 3, 1);
    let y = randn(20, 2, 2) * 1e3;
    let data = Examples::new(x.view(), y.view());
    let mut sgd = Sgd::new(1e6, 0.0).unwrap();
    let cfg = FiniteTrainConfig {
        epochs: 50,
        batch_size: 1,
        loss: Loss::Mse,
        seed: 0,
    };
    assert!(matches!(
        train(&mut net, &mut sgd, &data, None, &cfg),
        Err(Error::Diverged { .. })
    ));
}

/// `empirical_ntk`'s per-dense-node formula equals its definition Σ_p ∂f_0/∂θ_p(x)
/// ∂f_0/∂θ_p(x'), with per-example gradients from `gradient` (χ = e_0), in both
/// parameterizations, for a chain and every graph of `graphs` (the same products summed in
/// another order: 1e-12 relative).
#[test]
fn empirical_ntk_equals_sum_over_parameters() {
    let chain = arch(
        &[
            (7, 1.3, 0.2, Activation::ERF),
            (6, 1.1, 0.3, Activation::leaky_relu(0.2)),
        ],
        0.9,
        0.1,
    );
    let mut all = vec![("chain erf, leaky_relu", chain)];
    all.extend(graphs(Activation::ERF));
    all.extend(graphs(Activation::leaky_relu(0.2)));
    for (what, a) in &all {
        for param in [Parameterization::Ntk, Parameterization::Standard] {
            let net = FiniteNetwork::new(a, 3, 2, param, 4).unwrap();
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
                        "{what} {param:?}: {} vs {want}",
                        k[[i, j]]
                    );
                }
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
            (9, 1.4, 0.1, Activation::ERF),
            (8, 1.2, 0.1, Activation::ERF),
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
