//! Save/load of finite networks and of the declaration as data: JSON round trips give
//! bit-identical outputs; mismatched declarations, user activations and corrupted files are
//! typed errors. The kernel models (which need `network!`) are tested in the facade's
//! tests/runtime_errors.rs (module `persist`).

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde_json::Value;

use super::*;
use crate::arch::SpatialInput;
use crate::dual::UserFunction;
use crate::finite::Parameterization;

fn randn(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || rng.sample(StandardNormal))
}

/// A graph with every flat node kind: dense, a parametrised activation, layer_norm, a
/// residual sum, a concatenation; a declared readout width of 3.
fn graph_arch() -> Architecture {
    let dense = |input, width| Node::Dense {
        input,
        width,
        w_std: 1.3,
        b_std: 0.1,
    };
    let act = |input, activation| Node::Activation { input, activation };
    Architecture {
        spatial: None,
        nodes: vec![
            Node::Input,
            dense(0, 6),
            act(1, Activation::leaky_relu(0.1)),
            dense(2, 6),
            Node::LayerNorm { input: 3 },
            act(4, Activation::ERF),
            dense(5, 6),
            Node::Sum { inputs: vec![2, 6] },
            dense(7, 4),
            act(8, Activation::RELU),
            Node::Concat { inputs: vec![7, 9] },
        ],
        readout: Readout {
            input: 10,
            outputs: Some(3),
            w_std: 1.0,
            b_std: 0.2,
        },
    }
}

/// input(6, 2) conv(3, size 3, valid) relu conv(2, circular) global_avg_pool.
fn conv_arch() -> Architecture {
    Architecture {
        spatial: Some(SpatialInput {
            shape: vec![6],
            channels: 2,
        }),
        nodes: vec![
            Node::Input,
            Node::Conv {
                input: 0,
                channels: 3,
                size: 3,
                stride: 1,
                padding: Padding::Valid,
                w_std: 1.4,
                b_std: 0.1,
            },
            Node::Activation {
                input: 1,
                activation: Activation::RELU,
            },
            Node::Conv {
                input: 2,
                channels: 2,
                size: 3,
                stride: 2,
                padding: Padding::Circular,
                w_std: 1.2,
                b_std: 0.0,
            },
            Node::GlobalAvgPool { input: 3 },
        ],
        readout: Readout {
            input: 4,
            outputs: None,
            w_std: 1.0,
            b_std: 0.0,
        },
    }
}

fn cube(u: f64) -> f64 {
    u * u * u
}
fn cube_derivative(u: f64) -> f64 {
    3.0 * u * u
}

fn user_arch() -> Architecture {
    let cube = Activation::User(UserFunction {
        name: "my_crate::Cube",
        value: cube,
        derivative: cube_derivative,
    });
    let h = crate::Hidden {
        width: 5,
        w_std: 1.0,
        b_std: 0.0,
        activation: cube,
    };
    Architecture::chain(&[h], None, 1.0, 0.0)
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

fn load<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_json::from_str(s).unwrap()
}

/// Edits the JSON of `saved` with `edit`, then parses it back.
fn edited<T: Serialize + serde::de::DeserializeOwned>(
    saved: &T,
    edit: impl FnOnce(&mut Value),
) -> T {
    let mut v = serde_json::to_value(saved).unwrap();
    edit(&mut v);
    serde_json::from_value(v).unwrap()
}

#[test]
fn serde_json_round_trips_f64_exactly_with_float_roundtrip() {
    // The exactness the bit-for-bit tests rely on (serde_json's `float_roundtrip` feature,
    // enabled in the dev-dependencies): shortest-digit printing, correctly rounded parsing.
    let x = randn(200, 50, 1).mapv(|v| v * 10f64.powi((v * 40.0) as i32));
    let back: Array2<f64> = load(&json(&x));
    assert!(x.iter().zip(&back).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn finite_networks_round_trip_bit_for_bit() {
    let x = randn(9, 5, 2);
    for param in [Parameterization::Ntk, Parameterization::Standard] {
        let net = FiniteNetwork::with_width_factor(&graph_arch(), 2, 5, 3, param, 3).unwrap();
        let text = json(&net.saved());
        let back = load::<SavedFiniteNetwork>(&text).restore().unwrap();
        assert_eq!(back.params(), net.params());
        assert_eq!(back.widths(), net.widths());
        assert_eq!(back.width_factor(), 2);
        assert_eq!(back.parameterization(), param);
        assert_eq!(back.architecture(), net.architecture());
        assert_eq!(
            back.forward(x.view()).unwrap(),
            net.forward(x.view()).unwrap()
        );
        // saving the restored network writes the same file
        assert_eq!(json(&back.saved()), text);
    }
    let conv = FiniteNetwork::new(&conv_arch(), 12, 2, Parameterization::Ntk, 4).unwrap();
    let xc = randn(4, 12, 5);
    let back = load::<SavedFiniteNetwork>(&json(&conv.saved()))
        .restore()
        .unwrap();
    assert_eq!(
        back.forward(xc.view()).unwrap(),
        conv.forward(xc.view()).unwrap()
    );
}

#[test]
fn linearized_networks_round_trip_bit_for_bit() {
    let net = FiniteNetwork::new(&graph_arch(), 5, 3, Parameterization::Ntk, 6).unwrap();
    let x = randn(7, 5, 7);
    for centered in [false, true] {
        let mut lin = net.linearize(centered);
        let mut theta = lin.theta();
        for w in &mut theta.weights {
            w.mapv_inplace(|v| v * 1.01 + 1e-3);
        }
        lin.set_theta(&theta).unwrap();
        let back = load::<SavedLinearizedNetwork>(&json(&lin.saved()))
            .restore()
            .unwrap();
        assert_eq!(back.is_centered(), centered);
        assert_eq!(back.params(), lin.params());
        assert_eq!(back.predict(&x).unwrap(), lin.predict(&x).unwrap());
    }
}

#[test]
fn a_user_activation_needs_its_declaration() {
    let arch = user_arch();
    let net = FiniteNetwork::new(&arch, 4, 2, Parameterization::Ntk, 8).unwrap();
    let saved: SavedFiniteNetwork = load(&json(&net.saved()));
    match saved.clone().restore() {
        Err(Error::UnrestorableActivation { activation }) => {
            assert_eq!(activation, "act(my_crate::Cube)")
        }
        other => panic!("{other:?}"),
    }
    let x = randn(3, 4, 9);
    let back = saved.clone().restore_with(&arch).unwrap();
    assert_eq!(
        back.forward(x.view()).unwrap(),
        net.forward(x.view()).unwrap()
    );
    // another declaration (relu in place of act(Cube)) is refused, naming the node
    let mut relu = arch.clone();
    relu.nodes[2] = Node::Activation {
        input: 1,
        activation: Activation::RELU,
    };
    match saved.restore_with(&relu) {
        Err(Error::ArchitectureMismatch { saved, given }) => {
            assert!(
                saved.contains("node 2") && saved.contains("my_crate::Cube"),
                "{saved}"
            );
            assert!(
                given.contains("node 2") && given.contains("relu"),
                "{given}"
            );
        }
        other => panic!("{other:?}"),
    }
    // the linearized network likewise
    let lin: SavedLinearizedNetwork = load(&json(&net.linearize(false).saved()));
    assert!(matches!(
        lin.clone().restore(),
        Err(Error::UnrestorableActivation { .. })
    ));
    assert!(lin.restore_with(&arch).is_ok());
}

#[test]
fn mismatched_declarations_name_the_first_difference() {
    let saved = SavedArchitecture::from(&graph_arch());
    assert!(saved.check_matches(&graph_arch()).is_ok());
    let mut wider = graph_arch();
    wider.nodes[8] = Node::Dense {
        input: 7,
        width: 5,
        w_std: 1.3,
        b_std: 0.1,
    };
    let mut other_std = graph_arch();
    other_std.readout.b_std = 0.25;
    let mut shorter = graph_arch();
    shorter.nodes.truncate(8);
    shorter.readout.input = 7;
    let conv = conv_arch();
    for (given, saved_part, given_part) in [
        (&wider, "width: 4", "width: 5"),
        (&other_std, "b_std: 0.2", "b_std: 0.25"),
        (&shorter, "node 8", "no node 8"),
        (&conv, "input None", "input Some"),
    ] {
        match saved.check_matches(given) {
            Err(Error::ArchitectureMismatch { saved, given }) => {
                assert!(saved.contains(saved_part), "{saved}");
                assert!(given.contains(given_part), "{given}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn corrupted_finite_network_files_are_typed_errors() {
    let net = FiniteNetwork::new(&graph_arch(), 5, 3, Parameterization::Ntk, 10).unwrap();
    let saved = net.saved();
    let text = json(&saved);
    // truncated, or a number out of f64's range, or JSON's missing NaN: the parser's error
    assert!(serde_json::from_str::<SavedFiniteNetwork>(&text[..text.len() / 2]).is_err());
    let huge = text.replacen("1.3", "1e999", 1);
    assert!(serde_json::from_str::<SavedFiniteNetwork>(&huge).is_err());
    assert!(serde_json::from_str::<SavedFiniteNetwork>(&text.replacen("1.3", "NaN", 1)).is_err());
    // an array whose data do not fill its shape: ndarray's deserialiser refuses it
    let mut v = serde_json::to_value(&saved).unwrap();
    v["params"]["weights"][0]["dim"] = serde_json::json!([6, 4]);
    assert!(serde_json::from_value::<SavedFiniteNetwork>(v).is_err());

    let restore = |edit: fn(&mut Value)| edited(&saved, edit).restore();
    // a consistent array of the wrong shape
    let r = restore(|v| {
        v["params"]["weights"][0] = serde_json::to_value(Array2::<f64>::zeros((6, 4))).unwrap()
    });
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
    // a missing tensor
    let r = restore(|v| {
        v["params"]["biases"].as_array_mut().unwrap().pop();
    });
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
    // another input dimension than the parameters were trained for
    let r = restore(|v| v["input_dim"] = 7.into());
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
    // another number of outputs than the declared dense(3)
    let r = restore(|v| v["outputs"] = 2.into());
    assert!(matches!(r, Err(Error::Architecture(_))), "{r:?}");
    for edit in [
        (|v: &mut Value| v["format"] = 2.into()) as fn(&mut Value),
        |v| v["width_factor"] = 0.into(),
        |v| v["input_dim"] = 0.into(),
        |v| {
            v["architecture"]["nodes"][2]["activation"]["activation"]["registry"]["name"] =
                "swish".into()
        },
        |v| {
            v["architecture"]["nodes"][2]["activation"]["activation"]["registry"]["params"] =
                serde_json::json!([])
        },
    ] {
        let r = restore(edit);
        assert!(matches!(r, Err(Error::InvalidSaved { .. })), "{r:?}");
    }
    // a graph that reads a later node, or a negative std: the graph's own checks
    let r = restore(|v| v["architecture"]["nodes"][1]["dense"]["input"] = 5.into());
    assert!(matches!(r, Err(Error::Architecture(_))), "{r:?}");
    let r = restore(|v| v["architecture"]["nodes"][1]["dense"]["w_std"] = (-1.0).into());
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    let r = restore(|v| v["architecture"]["readout"]["input"] = 99.into());
    assert!(matches!(r, Err(Error::Architecture(_))), "{r:?}");
    // non-finite parameters (a binary format can carry them)
    let mut nan = saved.clone();
    nan.params.biases[1][2] = f64::NAN;
    assert!(matches!(nan.restore(), Err(Error::NonFinite { .. })));

    let mut lin = net.linearize(false).saved();
    lin.displacement.weights[0][[0, 0]] = f64::INFINITY;
    assert!(matches!(
        lin.clone().restore(),
        Err(Error::NonFinite { .. })
    ));
    lin.displacement.weights.pop();
    assert!(matches!(lin.restore(), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn architectures_round_trip_through_data() {
    for arch in [graph_arch(), conv_arch()] {
        let saved: SavedArchitecture = load(&json(&SavedArchitecture::from(&arch)));
        assert_eq!(saved.to_architecture().unwrap(), arch);
        assert!(saved.check_matches(&arch).is_ok());
    }
    let r = edited(&SavedArchitecture::from(&conv_arch()), |v| {
        v["nodes"][1]["conv"]["padding"] = "reflect".into()
    })
    .to_architecture();
    assert!(matches!(r, Err(Error::InvalidSaved { .. })), "{r:?}");
}

/// A declaration without kernels: enough for `restore`, which evaluates none.
#[derive(Clone, Debug)]
struct Declared(Architecture);

impl KernelProgram for Declared {
    fn architecture(&self) -> &Architecture {
        &self.0
    }
    fn has_adam_limit(&self) -> bool {
        false
    }
    fn gram(
        &self,
        _: ArrayView2<f64>,
        _: Option<ArrayView2<f64>>,
        _: crate::Want,
        _: &crate::GramParams,
    ) -> Result<crate::KernelMatrices> {
        Err(Error::Architecture("a stub without kernels".into()))
    }
    fn diagonals(
        &self,
        _: ArrayView2<f64>,
        _: crate::Want,
    ) -> Result<crate::solve::KernelDiagonals> {
        Err(Error::Architecture("a stub without kernels".into()))
    }
}

fn non_finite<T>(r: Result<T>) -> bool {
    matches!(r, Err(Error::NonFinite { .. }))
}

#[test]
fn non_finite_values_in_saved_kernel_models_are_typed_errors() {
    // JSON cannot carry NaN or ∞; a binary format can. Every saved matrix is checked.
    let arch = graph_arch();
    let net = Network::new(Declared(arch.clone()));
    let n = 4;
    let mut l = Array2::<f64>::eye(n);
    l[[2, 1]] = 0.5;
    let kernel = SavedKernelModel {
        format: FORMAT_VERSION,
        architecture: (&arch).into(),
        kind: KernelKind::Ntk,
        ridge: 1e-3,
        x_train: randn(n, 5, 11),
        coefficients: randn(n, 3, 12),
        cholesky_factor: l,
    };
    assert!(kernel.clone().restore(&net).is_ok());
    let mut bad = kernel.clone();
    bad.x_train[[1, 2]] = f64::NAN;
    assert!(non_finite(bad.restore(&net)));
    let mut bad = kernel.clone();
    bad.coefficients[[3, 0]] = f64::INFINITY;
    assert!(non_finite(bad.restore(&net)));
    let mut bad = kernel.clone();
    bad.cholesky_factor[[3, 1]] = f64::NEG_INFINITY;
    assert!(non_finite(bad.restore(&net)));
    let mut bad = kernel.clone();
    bad.ridge = f64::NAN;
    assert!(matches!(bad.restore(&net), Err(Error::InvalidSaved { .. })));
    // the declared dense(3) readout fixes the coefficients' columns
    let mut bad = kernel;
    bad.coefficients = randn(n, 2, 13);
    assert!(matches!(bad.restore(&net), Err(Error::Architecture(_))));

    let flow = SavedFlowModel {
        format: FORMAT_VERSION,
        architecture: (&arch).into(),
        learning_rate: 1.0,
        ridge: 0.0,
        threshold: 1e-12,
        x_train: randn(n, 5, 14),
        eigenvalues: ndarray::array![0.0, 0.5, 1.0, 2.0],
        eigenvectors: Array2::eye(n),
        projected_residual: randn(n, 3, 15),
        initial_train: None,
    };
    assert!(flow.clone().restore(&net).is_ok());
    let mut bad = flow.clone();
    bad.eigenvalues[2] = f64::NAN;
    assert!(non_finite(bad.restore(&net)));
    let mut bad = flow.clone();
    bad.eigenvalues[2] = 3.0; // out of order
    assert!(matches!(bad.restore(&net), Err(Error::InvalidSaved { .. })));
    let mut bad = flow;
    bad.initial_train = Some(randn(n, 2, 16));
    assert!(matches!(
        bad.restore(&net),
        Err(Error::ShapeMismatch { .. })
    ));

    let falkon = SavedFalkonModel {
        format: FORMAT_VERSION,
        architecture: (&arch).into(),
        kind: KernelKind::Nngp,
        ridge: 1e-3,
        n_train: 10,
        block_rows: 3,
        centres: randn(n, 5, 17),
        centre_rows: vec![0, 3, 4, 9],
        coefficients: randn(n, 3, 18),
        report: FalkonReport {
            centres: n,
            iterations: 5,
            relative_residual: 1e-9,
            converged: true,
            kept_rows: 10,
        },
    };
    assert!(falkon.clone().restore(&net).is_ok());
    let mut bad = falkon.clone();
    bad.centres[[0, 0]] = f64::NAN;
    assert!(non_finite(bad.restore(&net)));
    let mut bad = falkon;
    bad.report.centres = 5;
    assert!(matches!(
        bad.restore(&net),
        Err(Error::ShapeMismatch { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Function-space models and ensembles (kernels given as matrices: the stub has none)
// ---------------------------------------------------------------------------------------

use crate::history::History;
use crate::solve::{Ridge, TimeConvention};
use crate::train::{Iterate, NtkKernel, Schedule, SignKernels, TestSet, TrainSet};
use rand::RngCore;

/// A kernel on n + m points (rows of `randn`, a linear kernel plus a constant): its
/// training block, its test-versus-train block.
fn linear_kernel(n: usize, m: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let z = randn(n + m, 6, seed);
    let k = z.dot(&z.t()) / 6.0 + 0.5;
    (
        k.slice(ndarray::s![..n, ..n]).to_owned(),
        k.slice(ndarray::s![n.., ..n]).to_owned(),
    )
}

/// The records of a history, seconds zeroed, as `Debug` prints them (the shortest digits
/// that round-trip, and -0 apart from 0): equal strings are bit-identical records.
fn records(h: &History) -> String {
    let mut h = h.clone();
    for r in &mut h.epochs {
        r.seconds = 0.0;
    }
    format!("{:?}", h.epochs)
}

/// Saves `model` mid-run (two epochs, then two single steps), restores it from JSON and
/// checks that both continue bit for bit: order and RNG, three more epochs' records with
/// test metrics, predictions of every tracked iterate, and the file saved again.
fn resumes_exactly<R: LimitRule + Default>(
    mut model: FunctionSpaceModel<R, Declared>,
    net: &Network<Declared>,
    test: &TestSet<R::Kernels>,
    iterates: &[Iterate],
) {
    model.fit(2, Some(test)).unwrap();
    model.trainer_mut().step(3).unwrap();
    model.trainer_mut().step(0).unwrap();
    let text = json(&model.saved().unwrap());
    let mut back = load::<SavedFunctionSpaceModel>(&text)
        .restore::<R, _>(net)
        .unwrap();
    assert_eq!(back.trainer.order, model.trainer.order);
    assert_eq!(
        back.trainer.rng.clone().next_u64(),
        model.trainer.rng.clone().next_u64()
    );
    assert_eq!(
        (back.trainer().epochs_done(), back.trainer().steps_done()),
        (2, 2 * 9 + 2)
    );
    assert_eq!(json(&back.saved().unwrap()), text);
    let (a, b) = (
        model.fit(3, Some(test)).unwrap(),
        back.fit(3, Some(test)).unwrap(),
    );
    assert_eq!(records(&a), records(&b));
    assert_eq!(a.len(), 3);
    for &it in iterates {
        assert_eq!(
            back.predict_prepared_iterate(test, it).unwrap(),
            model.predict_prepared_iterate(test, it).unwrap(),
            "{it:?}"
        );
    }
    assert_eq!(json(&back.saved().unwrap()), json(&model.saved().unwrap()));
}

#[test]
fn function_space_training_resumes_bit_for_bit() {
    let net = Network::new(Declared(graph_arch()));
    let (n, m) = (9, 4);
    let x = randn(n, 5, 20);
    let y = randn(n, 3, 21);
    let y_test = randn(m, 3, 22);

    // NTK-SGD with every tracked state, a step-dependent schedule and an initial f_0
    let (k, k_test) = linear_kernel(n, m, 23);
    let f0 = randn(n, 3, 24) * 0.1;
    let train = TrainSet::new(NtkKernel::new(k).unwrap(), y.clone())
        .unwrap()
        .with_f0(f0)
        .unwrap();
    let config = TrainConfig {
        momentum: Some(0.5),
        running_mean: true,
        ema: Some(0.9),
        report: Iterate::Ema,
        schedule: Schedule::LinearDecay { epochs: 10 },
        seed: 7,
        ..TrainConfig::new(0.05)
    };
    let model = FunctionSpaceModel::from_train_set(&net, NtkSgd, &x, train, config).unwrap();
    let test = TestSet::new(NtkKernel::new(k_test).unwrap())
        .with_targets(y_test.clone())
        .unwrap()
        .with_f0(randn(m, 3, 25) * 0.1)
        .unwrap();
    resumes_exactly(
        model,
        &net,
        &test,
        &[Iterate::Last, Iterate::RunningMean, Iterate::Ema],
    );

    // the Adam-like limit: two asymmetric blocks, running mean reported, 1/√epoch
    let r = randn(n + m, n, 26).mapv(f64::abs);
    let h = randn(n + m, n, 27) * 0.3;
    let block = |a: &Array2<f64>, rows| a.slice(ndarray::s![rows, ..]).to_owned();
    let train = TrainSet::new(
        SignKernels::new(block(&r, 0..n), block(&h, 0..n)).unwrap(),
        y,
    )
    .unwrap();
    let config = TrainConfig {
        running_mean: true,
        report: Iterate::RunningMean,
        schedule: Schedule::InverseSqrtEpoch,
        seed: 11,
        ..TrainConfig::new(0.02)
    };
    let model = FunctionSpaceModel::from_train_set(&net, AdamLimit, &x, train, config).unwrap();
    let test = TestSet::new(SignKernels::new(block(&r, n..n + m), block(&h, n..n + m)).unwrap())
        .with_targets(y_test)
        .unwrap();
    resumes_exactly(model, &net, &test, &[Iterate::Last, Iterate::RunningMean]);
}

#[test]
fn the_replayed_order_is_the_trainers() {
    let n = 13;
    let (k, _) = linear_kernel(n, 1, 30);
    for shuffle in [true, false] {
        let config = TrainConfig {
            shuffle,
            seed: 31,
            ..TrainConfig::new(0.01)
        };
        let train = TrainSet::new(NtkKernel::new(k.clone()).unwrap(), randn(n, 2, 32)).unwrap();
        let mut t = Trainer::new(NtkSgd, train, config.clone()).unwrap();
        for epochs in 0..5 {
            let (order, rng) = replayed_order(n, &config, epochs);
            assert_eq!(order, t.order, "epoch {epochs}");
            assert_eq!(rng.clone().next_u64(), t.rng.clone().next_u64());
            t.run_epoch(None).unwrap();
            t.step(epochs).unwrap(); // steps do not touch the order
        }
        let identity: Vec<usize> = (0..n).collect();
        assert_eq!(t.order == identity, !shuffle);
    }
}

#[test]
fn a_diverged_model_is_not_saved() {
    let net = Network::new(Declared(graph_arch()));
    let n = 6;
    let (k, _) = linear_kernel(n, 1, 40);
    let train = TrainSet::new(NtkKernel::new(k).unwrap(), randn(n, 3, 41)).unwrap();
    let mut model = FunctionSpaceModel::from_train_set(
        &net,
        NtkSgd,
        &randn(n, 5, 42),
        train,
        TrainConfig::new(1e300),
    )
    .unwrap();
    assert!(matches!(model.fit(3, None), Err(Error::Diverged { .. })));
    match model.saved() {
        Err(Error::Diverged { what }) => assert!(what.starts_with("(earlier)"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_finite_values_in_saved_trainers_and_ensembles_are_typed_errors() {
    // JSON cannot carry NaN or ∞; a binary format can.
    let arch = graph_arch();
    let net = Network::new(Declared(arch.clone()));
    let n = 5;
    let (k, _) = linear_kernel(n, 1, 50);
    let train = TrainSet::new(NtkKernel::new(k.clone()).unwrap(), randn(n, 3, 51)).unwrap();
    let config = TrainConfig {
        ema: Some(0.8),
        ..TrainConfig::new(0.1)
    };
    let mut model =
        FunctionSpaceModel::from_train_set(&net, NtkSgd, &randn(n, 5, 52), train, config).unwrap();
    model.fit(1, None).unwrap();
    let saved = model.saved().unwrap();
    assert!(saved.clone().restore::<NtkSgd, _>(&net).is_ok());
    let mut bad = saved.clone();
    bad.kernel_columns[0][[2, 3]] = f64::NAN;
    assert!(non_finite(bad.restore::<NtkSgd, _>(&net)));
    let mut bad = saved.clone();
    bad.ema.as_mut().unwrap().coefficients[0][[1, 1]] = f64::INFINITY;
    assert!(non_finite(bad.restore::<NtkSgd, _>(&net)));
    let mut bad = saved;
    bad.last.train_values[[4, 2]] = f64::NAN;
    assert!(non_finite(bad.restore::<NtkSgd, _>(&net)));

    let ensemble = SavedEnsembleModel {
        format: FORMAT_VERSION,
        architecture: (&arch).into(),
        kind: KernelKind::Ntk,
        options: crate::solve::EnsembleOptions {
            learning_rate: 0.5,
            ridge: Ridge::RelativeToMeanDiagonal(1e-3),
            time: TimeConvention::MeanLoss,
        },
        x_train: randn(n, 5, 53),
        targets: randn(n, 3, 54),
        train_kernel: k.clone(),
        nngp_train: Some(Array2::eye(n)),
        cholesky: Some(SavedCholesky {
            coefficients: randn(n, 3, 55),
            cholesky_factor: Array2::eye(n),
        }),
        eigen: Some(SavedEigen {
            eigenvalues: ndarray::array![0.0, 0.5, 1.0, 2.0, 3.0],
            eigenvectors: Array2::eye(n),
            projected_residual: randn(n, 3, 56),
            threshold: 1e-12,
        }),
    };
    assert!(ensemble.clone().restore(&net).is_ok());
    let mut bad = ensemble.clone();
    bad.train_kernel[[0, 0]] = f64::NAN;
    assert!(non_finite(bad.restore(&net)));
    let mut bad = ensemble.clone();
    bad.nngp_train.as_mut().unwrap()[[1, 0]] = f64::INFINITY;
    assert!(non_finite(bad.restore(&net)));
    let mut bad = ensemble.clone();
    bad.eigen.as_mut().unwrap().eigenvalues[1] = f64::NAN;
    assert!(non_finite(bad.restore(&net)));
    let mut bad = ensemble;
    bad.cholesky.as_mut().unwrap().coefficients[[0, 2]] = f64::NEG_INFINITY;
    assert!(non_finite(bad.restore(&net)));
}
