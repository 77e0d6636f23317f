//! Save and load of trained kernel models (the `serde` feature) through `network!`, like a
//! user: saved → JSON → restored with the network declared again predicts bit for bit what
//! the trained model did (means and predictive covariances), and a function-space model
//! continues training bit for bit; another declaration, and files that are truncated,
//! mis-shaped or out of range, are typed errors. Finite networks are
//! tested in infw-runtime (`persist::tests`), and so are non-finite values (JSON cannot
//! carry them). A module of runtime_errors.rs, not its own test binary (each costs CI a
//! link).

use infw::data::{one_hot, Dataset};
use infw::persist::{
    SavedEnsembleModel, SavedFalkonModel, SavedFlowModel, SavedFunctionSpaceModel, SavedKernelModel,
};
use infw::solve::{CovarianceMode, EnsembleOptions, FalkonOptions, Ridge};
use infw::train::{AdamLimit, Iterate, NtkSgd, Schedule, TrainConfig};
use infw::{Error, History, KernelKind};
use ndarray::{s, Array2};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// (Also has the Adam-like limit: a chain of dense layers and activations.)
fn net() -> infw::Network<impl infw::AdamLimitProgram + Clone> {
    infw::network! { dense(512, w_std = 1.5, b_std = 0.1) relu dense(512, w_std = 1.5, b_std = 0.1) relu }
}

/// The same graph with another std in the second layer.
fn other_net() -> infw::Network<impl infw::KernelProgram + Clone> {
    infw::network! { dense(512, w_std = 1.5, b_std = 0.1) relu dense(512, w_std = 1.4, b_std = 0.1) relu }
}

/// wine, standardised: 118 training and 60 test rows of 13 features, 3 classes.
fn wine() -> (Array2<f64>, Array2<f64>, Array2<f64>) {
    let data = Dataset::embedded("wine").unwrap().standardized();
    let y = one_hot(&data.y_train, data.classes).unwrap();
    (data.x_train, y, data.x_test)
}

/// Through a JSON string and back.
fn through_json<T: Serialize + DeserializeOwned>(saved: &T) -> T {
    serde_json::from_str(&serde_json::to_string(saved).unwrap()).unwrap()
}

/// The JSON of `saved` edited by `edit`, parsed back.
fn edited<T: Serialize + DeserializeOwned>(saved: &T, edit: impl FnOnce(&mut Value)) -> T {
    let mut v = serde_json::to_value(saved).unwrap();
    edit(&mut v);
    serde_json::from_value(v).unwrap()
}

fn is_mismatch<T>(r: infw::Result<T>) -> bool {
    matches!(r, Err(Error::ArchitectureMismatch { .. }))
}

/// The error, as `Debug` prints it (`ShapeMismatch { … }`), or "Ok".
fn error<T>(r: infw::Result<T>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn kernel_regressions_round_trip_bit_for_bit() {
    let (x, y, x_test) = wine();
    let net = net();
    for kind in [KernelKind::Ntk, KernelKind::Nngp] {
        let model = match kind {
            KernelKind::Ntk => net.ntk_regression(&x, &y, 1e-6).unwrap(),
            KernelKind::Nngp => net.nngp_regression(&x, &y, 1e-6).unwrap(),
        };
        let text = serde_json::to_string(&model.saved()).unwrap();
        let loaded = serde_json::from_str::<SavedKernelModel>(&text)
            .unwrap()
            .restore(&net)
            .unwrap();
        assert_eq!(
            loaded.predict(&x_test).unwrap(),
            model.predict(&x_test).unwrap()
        );
        assert_eq!(
            loaded.solver().coefficients(),
            model.solver().coefficients()
        );
        // the kept factor came back: the covariance needs no refactorisation and is the same
        let x_few = x_test.slice(s![..12, ..]);
        assert_eq!(
            loaded
                .predict_with_uncertainty(&x_few, CovarianceMode::Full)
                .unwrap(),
            model
                .predict_with_uncertainty(&x_few, CovarianceMode::Full)
                .unwrap()
        );
        assert_eq!(serde_json::to_string(&loaded.saved()).unwrap(), text);
        // the file names the declaration; another one is refused
        let saved: SavedKernelModel = serde_json::from_str(&text).unwrap();
        assert!(saved
            .architecture()
            .check_matches(net.architecture())
            .is_ok());
        assert!(is_mismatch(saved.restore(&other_net())));
    }
}

#[test]
fn gradient_flows_round_trip_bit_for_bit() {
    let (x, y, x_test) = wine();
    let net = net();
    let model = net.ntk_gradient_flow(&x, &y, 0.5).unwrap();
    let loaded = through_json(&model.saved()).restore(&net).unwrap();
    for t in [0.0, 0.3, 10.0, f64::INFINITY] {
        assert_eq!(
            loaded.at(t).predict(&x_test).unwrap(),
            model.at(t).predict(&x_test).unwrap()
        );
    }
    let x_few = x_test.slice(s![..12, ..]);
    assert_eq!(
        loaded
            .at(2.0)
            .predict_with_uncertainty(&x_few, CovarianceMode::Diagonal)
            .unwrap(),
        model
            .at(2.0)
            .predict_with_uncertainty(&x_few, CovarianceMode::Diagonal)
            .unwrap()
    );
    assert!(is_mismatch(
        through_json(&model.saved()).restore(&other_net())
    ));
}

#[test]
fn falkon_models_round_trip_bit_for_bit() {
    let (x, y, x_test) = wine();
    let net = net();
    let options = FalkonOptions {
        centres: 40,
        block_rows: 25,
        tolerance: 1e-10,
        ..FalkonOptions::default()
    };
    for kind in [KernelKind::Ntk, KernelKind::Nngp] {
        let model = net.falkon_regression(kind, &x, &y, 1e-3, &options).unwrap();
        let loaded = through_json(&model.saved()).restore(&net).unwrap();
        assert_eq!(
            loaded.predict(&x_test).unwrap(),
            model.predict(&x_test).unwrap()
        );
        assert_eq!(loaded.centre_rows(), model.centre_rows());
        assert_eq!(loaded.solver().report(), model.solver().report());
        // the approximate covariance, from the training inputs as before saving
        let (a, b) = (
            loaded.uncertainty(&x).unwrap().variances(&x_test).unwrap(),
            model.uncertainty(&x).unwrap().variances(&x_test).unwrap(),
        );
        assert_eq!(a, b);
        assert!(is_mismatch(
            through_json(&model.saved()).restore(&other_net())
        ));
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
fn a_user_activation_is_matched_by_its_path() {
    let (x, y, x_test) = wine();
    // numerical kernels (docs/math.md §6), ~1 ms per pair: a few rows only
    let (x, y, x_test) = (
        x.slice(s![..10, ..]),
        y.slice(s![..10, ..]),
        x_test.slice(s![..4, ..]),
    );
    let net = infw::network! { dense(64, w_std = 0.8) act(Cube) };
    let model = net.nngp_regression(&x, &y, 1e-3).unwrap();
    let loaded = through_json(&model.saved()).restore(&net).unwrap();
    assert_eq!(
        loaded.predict(&x_test).unwrap(),
        model.predict(&x_test).unwrap()
    );
    let relu = infw::network! { dense(64, w_std = 0.8) relu };
    match through_json(&model.saved()).restore(&relu) {
        Err(Error::ArchitectureMismatch { saved, given }) => {
            assert!(saved.contains("Cube"), "{saved}");
            assert!(given.contains("relu"), "{given}");
        }
        other => panic!("{}", error(other)),
    }
}

#[test]
fn corrupted_kernel_model_files_are_typed_errors() {
    let (x, y, _) = wine();
    let (x, y) = (x.slice(s![..40, ..]), y.slice(s![..40, ..]));
    let net = net();
    let saved = net.ntk_regression(&x, &y, 1e-6).unwrap().saved();
    let text = serde_json::to_string(&saved).unwrap();
    // what the JSON parser refuses: a truncated file, a number beyond f64, a NaN
    assert!(serde_json::from_str::<SavedKernelModel>(&text[..text.len() - 10]).is_err());
    assert!(serde_json::from_str::<SavedKernelModel>(&text.replacen("1e-6", "1e999", 1)).is_err());
    assert!(serde_json::from_str::<SavedKernelModel>(&text.replacen("1e-6", "NaN", 1)).is_err());
    let mut v = serde_json::to_value(&saved).unwrap();
    v["coefficients"]["dim"] = json!([41, 3]); // data no longer fill the shape
    assert!(serde_json::from_value::<SavedKernelModel>(v).is_err());

    let restore = |edit: fn(&mut Value)| edited(&saved, edit).restore(&net);
    for (edit, expect) in [
        // shapes that disagree with each other or with the declaration
        (
            (|v: &mut Value| {
                v["coefficients"] = serde_json::to_value(Array2::<f64>::zeros((39, 3))).unwrap()
            }) as fn(&mut Value),
            "ShapeMismatch",
        ),
        (
            |v| v["cholesky_factor"] = serde_json::to_value(Array2::<f64>::eye(39)).unwrap(),
            "ShapeMismatch",
        ),
        (
            |v| v["x_train"] = serde_json::to_value(Array2::<f64>::zeros((0, 13))).unwrap(),
            "Empty",
        ),
        // a factor that is not a Cholesky factor
        (
            |v| v["cholesky_factor"]["data"][1] = 0.5.into(),
            "InvalidSaved",
        ),
        (
            |v| v["cholesky_factor"]["data"][0] = (-1.0).into(),
            "InvalidSaved",
        ),
        // out-of-range scalars, another format version
        (|v| v["ridge"] = (-1.0).into(), "InvalidSaved"),
        (|v| v["format"] = 7.into(), "InvalidSaved"),
        // another declaration written into the file
        (
            |v| v["architecture"]["nodes"][1]["dense"]["width"] = 256.into(),
            "ArchitectureMismatch",
        ),
    ] {
        let e = error(restore(edit));
        assert!(e.starts_with(expect), "{expect}: {e}");
    }

    let flow = net.ntk_gradient_flow(&x, &y, 0.5).unwrap().saved();
    let restore = |edit: fn(&mut Value)| edited(&flow, edit).restore(&net);
    for (edit, expect) in [
        (
            (|v: &mut Value| {
                v["eigenvalues"]["data"].as_array_mut().unwrap().pop();
                v["eigenvalues"]["dim"] = json!([39]);
            }) as fn(&mut Value),
            "ShapeMismatch",
        ),
        (
            |v| v["eigenvalues"]["data"][3] = (-2.0).into(),
            "InvalidSaved",
        ),
        (|v| v["learning_rate"] = 0.0.into(), "InvalidSaved"),
    ] {
        let e = error(restore(edit));
        assert!(e.starts_with(expect), "{expect}: {e}");
    }

    let options = FalkonOptions {
        centres: 10,
        ..FalkonOptions::default()
    };
    let falkon = net
        .falkon_regression(KernelKind::Nngp, &x, &y, 1e-3, &options)
        .unwrap()
        .saved();
    let restore = |edit: fn(&mut Value)| edited(&falkon, edit).restore(&net);
    for (edit, expect) in [
        (
            (|v: &mut Value| v["block_rows"] = 0.into()) as fn(&mut Value),
            "InvalidSaved",
        ),
        (
            |v| v["centre_rows"][1] = v["centre_rows"][0].clone(),
            "InvalidSaved",
        ),
        (|v| v["n_train"] = 3.into(), "InvalidSaved"),
        (
            |v| {
                v["centre_rows"].as_array_mut().unwrap().pop();
            },
            "ShapeMismatch",
        ),
        (|v| v["ridge"] = 0.0.into(), "InvalidSaved"),
    ] {
        let e = error(restore(edit));
        assert!(e.starts_with(expect), "{expect}: {e}");
    }
    // the three kinds of file are not interchangeable
    assert!(serde_json::from_str::<SavedFlowModel>(&text).is_err());
    assert!(serde_json::from_str::<SavedFalkonModel>(&text).is_err());
}

/// The records of a history with `seconds` zeroed, as `Debug` prints them (shortest
/// round-trip digits): equal strings are bit-identical records.
fn records(h: &History) -> String {
    let mut h = h.clone();
    for r in &mut h.epochs {
        r.seconds = 0.0;
    }
    format!("{:?}", h.epochs)
}

#[test]
fn function_space_models_resume_bit_for_bit() {
    let data = Dataset::embedded("wine").unwrap().standardized();
    let y = one_hot(&data.y_train, data.classes).unwrap();
    let y_test = one_hot(&data.y_test, data.classes).unwrap();
    let (x, x_test) = (&data.x_train, &data.x_test);
    let net = net();
    let config = TrainConfig {
        momentum: Some(0.5),
        running_mean: true,
        ema: Some(0.9),
        report: Iterate::Ema,
        schedule: Schedule::LinearDecay { epochs: 8 },
        seed: 5,
        ..TrainConfig::new(0.002)
    };

    // NTK-SGD: two epochs and a step, saved, resumed for three more
    let mut model = net.ntk_training(x, &y, config.clone()).unwrap();
    let test = model.prepare_test(x_test, Some(&y_test)).unwrap();
    model.fit(2, Some(&test)).unwrap();
    model.trainer_mut().step(17).unwrap();
    let saved = through_json(&model.saved().unwrap());
    assert_eq!(saved.rule(), "ntk_sgd");
    let mut back = saved.clone().restore::<NtkSgd, _>(&net).unwrap();
    let test_back = back.prepare_test(x_test, Some(&y_test)).unwrap();
    let (a, b) = (
        model.fit(3, Some(&test)).unwrap(),
        back.fit(3, Some(&test_back)).unwrap(),
    );
    assert_eq!(records(&a), records(&b));
    assert_eq!(
        back.predict(x_test).unwrap(),
        model.predict(x_test).unwrap()
    );
    // another rule or declaration is refused
    let e = error(saved.clone().restore::<AdamLimit, _>(&net));
    assert!(
        e.starts_with("InvalidSaved") && e.contains("ntk_sgd"),
        "{e}"
    );
    assert!(is_mismatch(saved.restore::<NtkSgd, _>(&other_net())));

    // the Adam-like limit, with its two kernel blocks
    let config = TrainConfig {
        momentum: None,
        ema: None,
        report: Iterate::RunningMean,
        ..config
    };
    let mut model = net.adam_training(x, &y, config).unwrap();
    model.fit(2, None).unwrap();
    let saved = through_json(&model.saved().unwrap());
    let mut back = saved.clone().restore::<AdamLimit, _>(&net).unwrap();
    assert_eq!(
        records(&model.fit(2, None).unwrap()),
        records(&back.fit(2, None).unwrap())
    );
    assert_eq!(
        back.predict(x_test).unwrap(),
        model.predict(x_test).unwrap()
    );
    assert!(saved.restore::<NtkSgd, _>(&net).is_err());
}

#[test]
fn ensembles_round_trip_bit_for_bit() {
    let (x, y, x_test) = wine();
    let x_few = x_test.slice(s![..12, ..]);
    let net = net();
    for (kind, options) in [
        (
            KernelKind::Nngp,
            EnsembleOptions {
                ridge: Ridge::Absolute(1e-4),
                ..EnsembleOptions::default()
            },
        ),
        (
            KernelKind::Ntk,
            EnsembleOptions::neural_tangents(0.7, 1e-4, false),
        ),
    ] {
        let model = net.mse_ensemble(kind, &x, &y, options).unwrap();
        // saved before any prediction: no factorisation in the file; the restored model
        // builds them from the saved kernel, as the original does
        let fresh = serde_json::to_value(model.saved()).unwrap();
        assert!(fresh["cholesky"].is_null() && fresh["eigen"].is_null());
        let before = through_json(&model.saved()).restore(&net).unwrap();
        let same = |a: &infw::solve::EnsembleModel<_>, b: &infw::solve::EnsembleModel<_>| {
            for t in [0.0, 3.0, f64::INFINITY] {
                assert_eq!(
                    a.at(t).predict(&x_test).unwrap(),
                    b.at(t).predict(&x_test).unwrap(),
                    "{kind:?}, t = {t}"
                );
                for mode in [CovarianceMode::Full, CovarianceMode::Diagonal] {
                    assert_eq!(
                        a.at(t).predict_with_uncertainty(&x_few, mode).unwrap(),
                        b.at(t).predict_with_uncertainty(&x_few, mode).unwrap(),
                        "{kind:?}, t = {t}, {mode:?}"
                    );
                }
            }
        };
        same(&before, &model);
        // saved after predictions at finite t and t = ∞: both factorisations in the file
        let text = serde_json::to_string(&model.saved()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(!v["cholesky"].is_null() && !v["eigen"].is_null());
        let after = serde_json::from_str::<SavedEnsembleModel>(&text)
            .unwrap()
            .restore(&net)
            .unwrap();
        assert_eq!(after.kind(), kind);
        same(&after, &model);
        assert_eq!(serde_json::to_string(&after.saved()).unwrap(), text);
        assert!(is_mismatch(
            through_json(&model.saved()).restore(&other_net())
        ));
    }
}

#[test]
fn corrupted_function_space_and_ensemble_files_are_typed_errors() {
    let (x, y, _) = wine();
    let (x, y) = (x.slice(s![..30, ..]), y.slice(s![..30, ..]));
    let net = net();
    let config = TrainConfig {
        momentum: Some(0.5),
        ..TrainConfig::new(0.01)
    };
    let mut model = net.ntk_training(&x, &y, config).unwrap();
    model.fit(2, None).unwrap();
    let saved = model.saved().unwrap();
    let restore = |edit: fn(&mut Value)| edited(&saved, edit).restore::<NtkSgd, _>(&net);
    for (edit, expect) in [
        // shapes that disagree: a kernel block, the targets, a coefficient matrix, the order
        (
            (|v: &mut Value| {
                v["kernel_columns"][0] = serde_json::to_value(Array2::<f64>::eye(29)).unwrap()
            }) as fn(&mut Value),
            "ShapeMismatch",
        ),
        (
            |v| v["targets"] = serde_json::to_value(Array2::<f64>::zeros((29, 3))).unwrap(),
            "ShapeMismatch",
        ),
        (
            |v| {
                let extra = v["last"]["coefficients"][0].clone();
                v["last"]["coefficients"]
                    .as_array_mut()
                    .unwrap()
                    .push(extra);
            },
            "ShapeMismatch",
        ),
        (
            |v| {
                v["momentum"]["train_values"] =
                    serde_json::to_value(Array2::<f64>::zeros((30, 2))).unwrap()
            },
            "ShapeMismatch",
        ),
        (
            |v| {
                v["order"].as_array_mut().unwrap().pop();
            },
            "ShapeMismatch",
        ),
        // an unknown rule, a configuration out of range, state it does not track or lacks
        (|v| v["rule"] = "rmsprop".into(), "InvalidSaved"),
        (
            |v| v["config"]["learning_rate"] = (-1.0).into(),
            "InvalidSaved",
        ),
        (|v| v["momentum"] = Value::Null, "InvalidSaved"),
        (|v| v["ema"] = v["last"].clone(), "InvalidSaved"),
        // counts and order that are not those of the run
        (|v| v["epochs_done"] = 3.into(), "InvalidSaved"),
        (
            |v| v["order"].as_array_mut().unwrap().swap(0, 1),
            "InvalidSaved",
        ),
        (|v| v["config"]["seed"] = 6.into(), "InvalidSaved"),
        (|v| v["format"] = 2.into(), "InvalidSaved"),
        (
            |v| v["architecture"]["nodes"][1]["dense"]["width"] = 256.into(),
            "ArchitectureMismatch",
        ),
    ] {
        let e = error(restore(edit));
        assert!(e.starts_with(expect), "{expect}: {e}");
    }
    let e = error(edited(&saved, |v| v["rule"] = "rmsprop".into()).restore::<NtkSgd, _>(&net));
    assert!(e.contains("unknown rule `rmsprop`"), "{e}");

    let model = net
        .mse_ensemble(
            KernelKind::Ntk,
            &x,
            &y,
            EnsembleOptions::neural_tangents(1.0, 1e-3, false),
        )
        .unwrap();
    model.at(1.0).predict(&x).unwrap();
    model.at(f64::INFINITY).predict(&x).unwrap();
    let ensemble = model.saved();
    let restore = |edit: fn(&mut Value)| edited(&ensemble, edit).restore(&net);
    for (edit, expect) in [
        (
            (|v: &mut Value| {
                v["train_kernel"] = serde_json::to_value(Array2::<f64>::eye(29)).unwrap()
            }) as fn(&mut Value),
            "ShapeMismatch",
        ),
        (
            |v| {
                v["cholesky"]["cholesky_factor"] =
                    serde_json::to_value(Array2::<f64>::eye(29)).unwrap()
            },
            "ShapeMismatch",
        ),
        (
            |v| {
                v["eigen"]["projected_residual"] =
                    serde_json::to_value(Array2::<f64>::zeros((30, 2))).unwrap()
            },
            "ShapeMismatch",
        ),
        (
            |v| v["train_kernel"]["data"][1] = 9.0.into(),
            "InvalidSaved",
        ),
        (|v| v["nngp_train"] = Value::Null, "InvalidSaved"),
        (|v| v["kind"] = "Nngp".into(), "InvalidSaved"),
        (
            |v| v["eigen"]["eigenvalues"]["data"][0] = (-1.0).into(),
            "InvalidSaved",
        ),
        (
            |v| v["cholesky"]["cholesky_factor"]["data"][1] = 0.5.into(),
            "InvalidSaved",
        ),
        (
            |v| v["options"]["learning_rate"] = 0.0.into(),
            "InvalidSaved",
        ),
        (
            |v| v["options"]["ridge"] = json!({"RelativeToMeanDiagonal": -1.0}),
            "InvalidSaved",
        ),
    ] {
        let e = error(restore(edit));
        assert!(e.starts_with(expect), "{expect}: {e}");
    }
    // a function-space file is not an ensemble file
    let text = serde_json::to_string(&saved).unwrap();
    assert!(serde_json::from_str::<SavedEnsembleModel>(&text).is_err());
    assert!(serde_json::from_str::<SavedFunctionSpaceModel>(
        &serde_json::to_string(&ensemble).unwrap()
    )
    .is_err());
}
