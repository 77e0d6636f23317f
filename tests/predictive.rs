//! Predictive mean and covariance of the MSE-trained ensembles (docs/math.md §5,
//! "Predictive uncertainty") against neural-tangents 0.6.5's
//! `gradient_descent_mse_ensemble(...)(x_test, get=('nngp', 'ntk'), compute_cov=True, t)`
//! (tests/fixtures/nt_predict.json).
//!
//! Every case runs through infw's own kernels (the fixture's `dsl` compiled by `network!`),
//! with neural-tangents' conventions selected as options (mean-over-outputs time, relative or
//! absolute `diag_reg`). The measure per matrix is max|ours − ref| / max|ref|; the tolerance
//! is 1e-10. Both sides are closed forms in f64 on well-conditioned systems (ridge ≥ 1e-3 of
//! the mean diagonal, N ≤ 8), so agreement near 1e-14 is expected; 1e-10 leaves margin for
//! the different summation orders and factorisations, while any convention slip (time
//! scaling N·C, ridge scale, the NTK covariance's unregularised Σ(X, X), exp(−2At) in the
//! NNGP covariance) moves results by far more than 1e-4.
//!
//! The diagonal route (variances only, k(x, x) per test point) is checked against the same
//! reference diagonals, and the network-level models (`KernelModel`, `FlowModel`) against
//! the ensembles they must equal.
use infw::solve::{Covariance, CovarianceMode, EnsembleOptions, Gaussian, Ridge, TimeConvention};
use infw::{KernelKind, KernelProgram, Network};
use ndarray::{Array1, Array2};
use serde_json::Value;

const TOL: f64 = 1e-10;

/// What the test asks of a compiled network (object-safe, so one match arm per `dsl`).
trait Predictor {
    #[allow(clippy::too_many_arguments)] // the fixture case's inputs, one by one
    fn ensemble(
        &self,
        kind: KernelKind,
        x_train: &Array2<f64>,
        y_train: &Array2<f64>,
        x_test: &Array2<f64>,
        options: EnsembleOptions,
        t: f64,
        mode: CovarianceMode,
    ) -> infw::Result<Gaussian>;

    /// `KernelModel::predict_with_uncertainty` (t = ∞, absolute ridge).
    fn regression(
        &self,
        kind: KernelKind,
        x_train: &Array2<f64>,
        y_train: &Array2<f64>,
        x_test: &Array2<f64>,
        ridge: f64,
        mode: CovarianceMode,
    ) -> infw::Result<Gaussian>;

    /// `FlowModel::predict_with_uncertainty` (NTK, no ridge, summed-loss time).
    fn flow(
        &self,
        x_train: &Array2<f64>,
        y_train: &Array2<f64>,
        x_test: &Array2<f64>,
        learning_rate: f64,
        t: f64,
        mode: CovarianceMode,
    ) -> infw::Result<Gaussian>;

    /// Σ(x, x) per row, from the diagonal-only API, and the diagonal of the Gram matrix.
    fn diagonals(&self, x: &Array2<f64>) -> (Array1<f64>, Array1<f64>, Array1<f64>, Array1<f64>);
}

impl<K: KernelProgram + Clone> Predictor for Network<K> {
    fn ensemble(
        &self,
        kind: KernelKind,
        x_train: &Array2<f64>,
        y_train: &Array2<f64>,
        x_test: &Array2<f64>,
        options: EnsembleOptions,
        t: f64,
        mode: CovarianceMode,
    ) -> infw::Result<Gaussian> {
        self.mse_ensemble(kind, x_train, y_train, options)?
            .at(t)
            .predict_with_uncertainty(x_test, mode)
    }

    fn regression(
        &self,
        kind: KernelKind,
        x_train: &Array2<f64>,
        y_train: &Array2<f64>,
        x_test: &Array2<f64>,
        ridge: f64,
        mode: CovarianceMode,
    ) -> infw::Result<Gaussian> {
        let model = match kind {
            KernelKind::Nngp => self.nngp_regression(x_train, y_train, ridge)?,
            KernelKind::Ntk => self.ntk_regression(x_train, y_train, ridge)?,
        };
        model.predict_with_uncertainty(x_test, mode)
    }

    fn flow(
        &self,
        x_train: &Array2<f64>,
        y_train: &Array2<f64>,
        x_test: &Array2<f64>,
        learning_rate: f64,
        t: f64,
        mode: CovarianceMode,
    ) -> infw::Result<Gaussian> {
        self.ntk_gradient_flow(x_train, y_train, learning_rate)?
            .at(t)
            .predict_with_uncertainty(x_test, mode)
    }

    fn diagonals(&self, x: &Array2<f64>) -> (Array1<f64>, Array1<f64>, Array1<f64>, Array1<f64>) {
        let d = self.kernel_diagonals(x, infw::Want::NNGP_NTK).unwrap();
        let (k, theta) = self.nngp_ntk(x, x).unwrap();
        (
            d.nngp.unwrap(),
            d.ntk.unwrap(),
            k.diag().to_owned(),
            theta.diag().to_owned(),
        )
    }
}

/// One arm per distinct `dsl` of the fixture. neural-tangents' final `Dense(1)` is the
/// per-output kernel used with targets of any width; infw's rule is that a declared
/// `dense(C)` must match the targets' C columns (as the finite network needs), so the
/// fixture's final `dense(1, …)` is written as the same-kernel `readout(…)`, sized to the
/// targets.
#[allow(clippy::approx_constant)] // the fixture's `dsl` spells √2 as 1.4142135623730951
fn network_for(dsl: &str) -> Box<dyn Predictor> {
    match dsl {
        "dense(512, w_std=1.4142135623730951, b_std=0.1) relu dense(512, w_std=1.4142135623730951, b_std=0.1) relu dense(1, w_std=1.4142135623730951, b_std=0.1)" => {
            Box::new(infw::network! { dense(512, w_std=1.4142135623730951, b_std=0.1) relu dense(512, w_std=1.4142135623730951, b_std=0.1) relu readout(w_std=1.4142135623730951, b_std=0.1) })
        }
        "dense(256, w_std=1.5, b_std=0.2) erf dense(1)" => {
            Box::new(infw::network! { dense(256, w_std=1.5, b_std=0.2) erf readout })
        }
        other => panic!(
            "nt_predict.json has a case with dsl `{other}` that tests/predictive.rs does not build: add a match arm for it"
        ),
    }
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("matrix of numbers");
    let (n, m) = (rows.len(), rows[0].len());
    assert!(rows.iter().all(|r| r.len() == m), "ragged matrix");
    Array2::from_shape_vec((n, m), rows.into_iter().flatten().collect()).unwrap()
}

fn max_abs<'a>(a: impl IntoIterator<Item = &'a f64>) -> f64 {
    a.into_iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// max|ours − ref| / max|ref| (a zero reference must be matched exactly), with the shapes
/// checked and NaN refused (it would slip through `f64::max`).
fn rel_err(ours: &Array2<f64>, reference: &Array2<f64>) -> f64 {
    assert_eq!(ours.dim(), reference.dim(), "shape");
    assert!(ours.iter().all(|v| v.is_finite()), "non-finite output");
    let diff = max_abs((ours - reference).iter());
    let e = diff / max_abs(reference.iter()).max(f64::MIN_POSITIVE);
    assert!(!e.is_nan());
    e
}

fn rel_err_1d(ours: &Array1<f64>, reference: &Array1<f64>) -> f64 {
    rel_err(
        &ours.clone().insert_axis(ndarray::Axis(1)),
        &reference.clone().insert_axis(ndarray::Axis(1)),
    )
}

fn full(g: &Gaussian) -> &Array2<f64> {
    g.covariance.full().expect("full covariance requested")
}

fn load() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/nt_predict.json"
    );
    let text = std::fs::read_to_string(path).expect("tests/fixtures/nt_predict.json");
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn every_nt_predict_case_matches_neural_tangents() {
    let fixture = load();
    assert_eq!(fixture["format"], "nt_predict/v1");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    let mut worst = 0.0f64;
    let mut lines = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let net = network_for(case["dsl"].as_str().expect("dsl"));
        let x_train = matrix(&case["x_train"]);
        let y_train = matrix(&case["y_train"]);
        let x_test = matrix(&case["x_test"]);
        let t = match &case["t"] {
            Value::Null => f64::INFINITY,
            v => v.as_f64().expect("t"),
        };
        let lr = case["learning_rate"].as_f64().expect("learning_rate");
        let diag_reg = case["diag_reg"].as_f64().expect("diag_reg");
        let absolute = case["diag_reg_absolute_scale"].as_bool().expect("absolute");
        let options = EnsembleOptions::neural_tangents(lr, diag_reg, absolute);
        for (kind, label) in [(KernelKind::Nngp, "nngp"), (KernelKind::Ntk, "ntk")] {
            let ref_mean = matrix(&case[format!("{label}_mean")]);
            let ref_cov = matrix(&case[format!("{label}_cov")]);
            let g = net
                .ensemble(
                    kind,
                    &x_train,
                    &y_train,
                    &x_test,
                    options,
                    t,
                    CovarianceMode::Full,
                )
                .unwrap_or_else(|e| panic!("{name} {label}: {e}"));
            let e_mean = rel_err(&g.mean, &ref_mean);
            let e_cov = rel_err(full(&g), &ref_cov);
            let d = net
                .ensemble(
                    kind,
                    &x_train,
                    &y_train,
                    &x_test,
                    options,
                    t,
                    CovarianceMode::Diagonal,
                )
                .unwrap_or_else(|e| panic!("{name} {label} diagonal: {e}"));
            assert!(matches!(d.covariance, Covariance::Diagonal(_)));
            let ref_var = ref_cov.diag().to_owned();
            // relative to max|cov| like the full matrix, so both numbers compare
            let e_var =
                max_abs((&d.covariance.variances() - &ref_var).iter()) / max_abs(ref_cov.iter());
            let e_dmean = rel_err(&d.mean, &ref_mean);
            lines.push(format!(
                "{name:<24} {label:<4}  mean {e_mean:.1e}  cov {e_cov:.1e}  var(diag route) {e_var:.1e}  mean(diag route) {e_dmean:.1e}"
            ));
            for (what, e) in [
                ("mean", e_mean),
                ("cov", e_cov),
                ("variances", e_var),
                ("mean (diagonal route)", e_dmean),
            ] {
                assert!(e <= TOL, "{name} {label} {what}: error {e:e} > {TOL:e}");
                worst = worst.max(e);
            }

            // infw's clock: the same prediction at t/(N·C) with TimeConvention::SummedLoss
            if t.is_finite() {
                let summed = EnsembleOptions {
                    time: TimeConvention::SummedLoss,
                    ..options
                };
                let nc = (y_train.nrows() * y_train.ncols()) as f64;
                let s = net
                    .ensemble(
                        kind,
                        &x_train,
                        &y_train,
                        &x_test,
                        summed,
                        t / nc,
                        CovarianceMode::Full,
                    )
                    .unwrap();
                let e = rel_err(&s.mean, &ref_mean).max(rel_err(full(&s), &ref_cov));
                assert!(e <= TOL, "{name} {label} on infw's clock: {e:e}");
            }
            // t = ∞ with an absolute ridge is kernel regression: KernelModel must agree
            if t == f64::INFINITY && absolute {
                for mode in [CovarianceMode::Full, CovarianceMode::Diagonal] {
                    let r = net
                        .regression(kind, &x_train, &y_train, &x_test, diag_reg, mode)
                        .unwrap();
                    let e_mean = rel_err(&r.mean, &ref_mean);
                    let e_var = max_abs((&r.covariance.variances() - &ref_var).iter())
                        / max_abs(ref_cov.iter());
                    let e_cov = match &r.covariance {
                        Covariance::Full(c) => rel_err(c, &ref_cov),
                        Covariance::Diagonal(_) => 0.0,
                    };
                    lines.push(format!(
                        "{name:<24} {label:<4}  KernelModel {mode:?}: mean {e_mean:.1e} cov {e_cov:.1e} var {e_var:.1e}"
                    ));
                    assert!(
                        e_mean.max(e_var).max(e_cov) <= TOL,
                        "{name} {label} KernelModel {mode:?}"
                    );
                }
            }
        }
    }
    for l in &lines {
        println!("{l}");
    }
    println!(
        "{} cases, worst relative error {worst:.2e} (tolerance {TOL:e})",
        cases.len()
    );
}

/// FlowModel (NTK, no ridge, infw's clock) equals the NTK ensemble with Ridge::Absolute(0)
/// and the default (summed) time, at finite t and at t = ∞ (where the flow uses the
/// eigendecomposition and the ensemble the Cholesky factor: two routes, one answer).
#[test]
fn flow_model_matches_the_unregularised_ntk_ensemble() {
    let fixture = load();
    let case = &fixture["cases"][0];
    let net = network_for(case["dsl"].as_str().unwrap());
    let (x_train, y_train, x_test) = (
        matrix(&case["x_train"]),
        matrix(&case["y_train"]),
        matrix(&case["x_test"]),
    );
    let options = EnsembleOptions::default();
    assert_eq!(options.ridge, Ridge::Absolute(0.0));
    for t in [0.0, 0.03, 0.4, f64::INFINITY] {
        for mode in [CovarianceMode::Full, CovarianceMode::Diagonal] {
            let f = net.flow(&x_train, &y_train, &x_test, 0.7, t, mode).unwrap();
            let e = net
                .ensemble(
                    KernelKind::Ntk,
                    &x_train,
                    &y_train,
                    &x_test,
                    EnsembleOptions {
                        learning_rate: 0.7,
                        ..options
                    },
                    t,
                    mode,
                )
                .unwrap();
            // t = ∞ without ridge: eigen route vs Cholesky on Θ(X, X) with κ ~ 1e3, so
            // agreement to ~κ·ε·N, far below the tolerance.
            let em = rel_err(&f.mean, &e.mean);
            let ev = rel_err_1d(&f.covariance.variances(), &e.covariance.variances());
            println!("FlowModel vs ensemble t = {t}, {mode:?}: mean {em:.1e}, var {ev:.1e}");
            assert!(em.max(ev) <= 1e-9, "t = {t}, {mode:?}: {em:e} {ev:e}");
        }
    }
    // t = 0: the prior, mean 0 and covariance Σ(X*, X*)
    let f = net
        .flow(
            &x_train,
            &y_train,
            &x_test,
            0.7,
            0.0,
            CovarianceMode::Diagonal,
        )
        .unwrap();
    assert!(f.mean.iter().all(|&v| v == 0.0));
    let (k_diag, _, _, _) = net.diagonals(&x_test);
    assert!(rel_err_1d(&f.covariance.variances(), &k_diag) < 1e-15);
}

/// The diagonal-only kernels equal the diagonal of the Gram matrices (both use ρ = +1
/// exactly on (x, x)).
#[test]
fn kernel_diagonals_equal_the_gram_diagonal() {
    let fixture = load();
    let mut seen = std::collections::BTreeSet::new();
    for case in fixture["cases"].as_array().unwrap() {
        let dsl = case["dsl"].as_str().unwrap();
        if !seen.insert(dsl.to_string()) {
            continue;
        }
        let net = network_for(dsl);
        for x in [matrix(&case["x_train"]), matrix(&case["x_test"])] {
            let (k, theta, k_gram, theta_gram) = net.diagonals(&x);
            let (ek, et) = (rel_err_1d(&k, &k_gram), rel_err_1d(&theta, &theta_gram));
            println!("{dsl}: diag Σ {ek:.1e}, diag Θ {et:.1e}");
            assert!(ek.max(et) < 1e-14, "{dsl}: {ek:e} {et:e}");
        }
    }
}

/// User errors are typed, never panics: negative or NaN time, shape mismatches, non-finite
/// inputs, bad ridge or learning rate.
#[test]
fn user_errors_are_typed() {
    let fixture = load();
    let case = &fixture["cases"][6];
    // The fixture's final dense(1) as a readout sized to the targets (see `network_for`).
    let net = infw::network! { dense(256, w_std=1.5, b_std=0.2) erf readout };
    assert_eq!(case["dsl"], "dense(256, w_std=1.5, b_std=0.2) erf dense(1)");
    let (x_train, y_train, x_test) = (
        matrix(&case["x_train"]),
        matrix(&case["y_train"]),
        matrix(&case["x_test"]),
    );
    let opts = EnsembleOptions::neural_tangents(1.0, 1e-3, false);
    let model = net
        .mse_ensemble(KernelKind::Ntk, &x_train, &y_train, opts)
        .unwrap();
    for t in [-1.0, f64::NAN, f64::NEG_INFINITY] {
        assert!(matches!(
            model
                .at(t)
                .predict_with_uncertainty(&x_test, CovarianceMode::Full),
            Err(infw::Error::InvalidArgument { name: "t", .. })
        ));
    }
    let wrong_dim = Array2::<f64>::zeros((2, x_train.ncols() + 1));
    assert!(matches!(
        model
            .at(1.0)
            .predict_with_uncertainty(&wrong_dim, CovarianceMode::Diagonal),
        Err(infw::Error::ShapeMismatch { .. })
    ));
    let mut nan = x_test.clone();
    nan[[0, 0]] = f64::NAN;
    assert!(matches!(
        model
            .at(1.0)
            .predict_with_uncertainty(&nan, CovarianceMode::Full),
        Err(infw::Error::NonFinite { .. })
    ));
    let short_y = y_train.slice(ndarray::s![..3, ..]).to_owned();
    assert!(matches!(
        net.mse_ensemble(KernelKind::Nngp, &x_train, &short_y, opts),
        Err(infw::Error::ShapeMismatch { .. })
    ));
    for ridge in [
        Ridge::Absolute(-1.0),
        Ridge::RelativeToMeanDiagonal(f64::NAN),
    ] {
        let bad = EnsembleOptions { ridge, ..opts };
        assert!(matches!(
            net.mse_ensemble(KernelKind::Nngp, &x_train, &y_train, bad),
            Err(infw::Error::InvalidArgument { name: "ridge", .. })
        ));
    }
    let bad = EnsembleOptions {
        learning_rate: 0.0,
        ..opts
    };
    assert!(matches!(
        net.mse_ensemble(KernelKind::Ntk, &x_train, &y_train, bad),
        Err(infw::Error::InvalidArgument {
            name: "learning_rate",
            ..
        })
    ));
}
