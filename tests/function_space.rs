//! Function-space training of both limits through `network!`, like a user (SPEC §4–§5):
//! per-example NTK-SGD against the closed-form gradient flow, the flow's limits t = 0 and
//! t → ∞, Adam-limit training on a small real subset, one step of each rule against the
//! formulas, and typed errors on bad input.

use infw::data::{one_hot, Dataset};
use infw::train::{Iterate, Schedule, TrainConfig};
use infw::{Error, Loss, TrainingInputs, Want};
use ndarray::{s, Array2, ArrayView2};

macro_rules! net {
    () => {
        infw::network! {
            dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
            dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
            readout(w_std = 1.4142135623730951, b_std = 0.1)
        }
    };
}

/// The first `n` training rows of digits (standardised with the full training set's
/// statistics) and the next `m` as held-out points, with one-hot targets.
fn digits(n: usize, m: usize) -> (Array2<f64>, Array2<f64>, Array2<f64>, Array2<f64>) {
    let d = Dataset::embedded("digits").unwrap().standardized();
    let x = d.x_train.slice(s![..n, ..]).to_owned();
    let xt = d.x_train.slice(s![n..n + m, ..]).to_owned();
    let y = one_hot(&d.y_train[..n], d.classes);
    let yt = one_hot(&d.y_train[n..n + m], d.classes);
    (x, y, xt, yt)
}

fn frob(a: ArrayView2<f64>) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn max_abs(a: ArrayView2<f64>) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

fn sgd_config(lr: f64) -> TrainConfig {
    TrainConfig {
        shuffle: false,
        ..TrainConfig::new(lr)
    }
}

/// Per-example NTK-SGD with MSE, in order (no shuffling), constant rate η, against the
/// closed-form full-batch flow.
///
/// Convention: the flow is df/dt = −η_flow Θ (f − Y), the gradient of ½‖f − Y‖² *summed*
/// over examples (no 1/N). One per-example epoch is the product over b of
/// (I − η Θ e_b e_bᵀ) applied to the residual, = I − ηΘ + O(η²): a full-batch step of rate η,
/// i.e. time η of the flow with η_flow = 1 (equivalently time 1 with η_flow = η). So k epochs
/// of rate η sit at t = kη. The epoch map and e^{−ηΘ} differ at second order,
/// η²(Σ_{a<b} Θ_{·b} Θ_{ba} e_aᵀ − Θ²/2), which is not zero for a non-diagonal Θ; over the
/// k = T/η epochs to a fixed time T these add up to a gap c·η + O(η²): first order in η.
#[test]
fn per_example_sgd_tracks_the_gradient_flow_to_first_order() {
    let net = net!();
    let (x, y, xt, _) = digits(60, 20);
    let flow = net.ntk_gradient_flow(&x, &y, 1.0).unwrap();
    let lambda_max = *flow.flow().eigenvalues().last().unwrap();
    // η0 λ_max = 0.2: well inside the first-order regime (the expansion is in ηλ_max).
    let eta0 = 0.2 / lambda_max;
    let k0 = 10usize;
    let t = k0 as f64 * eta0;
    let f_flow = flow.flow().predict_train(t).unwrap();
    let f_flow_test = flow.predict(&xt, t).unwrap();

    // The same flow with η_flow = η0 at time k0: only the product η·t enters e^{−ηΘt}, so
    // the two agree to rounding (a few ulp of each entry, entries are O(1)).
    let flow_eta = net.ntk_gradient_flow(&x, &y, eta0).unwrap();
    let f_alt = flow_eta.flow().predict_train(k0 as f64).unwrap();
    assert!(max_abs((&f_alt - &f_flow).view()) < 1e-12);

    let mut gaps = Vec::new();
    for m in 0..3u32 {
        let eta = eta0 / 2f64.powi(m as i32);
        let epochs = k0 << m;
        let mut model = net.ntk_training(&x, &y, sgd_config(eta)).unwrap();
        model.fit(epochs, None).unwrap();
        let f = model
            .trainer()
            .train_values(Iterate::Last)
            .unwrap()
            .to_owned();
        let test = model.test_set(&xt, None::<&Array2<f64>>).unwrap();
        let ft = model.predict(&test).unwrap();
        let gap = frob((&f - &f_flow).view()) / frob(f_flow.view());
        let gap_test = frob((&ft - &f_flow_test).view()) / frob(f_flow_test.view());
        eprintln!(
            "η = {eta:.3e} ({epochs} epochs): relative gap train {gap:.3e}, test {gap_test:.3e}"
        );
        if m == 0 {
            // The time per epoch is η: other conventions (η/N for a mean loss, 2η, η/2)
            // put the flow much further from SGD.
            for (label, tt) in [("t/N", t / 60.0), ("t/2", t / 2.0), ("2t", 2.0 * t)] {
                let other = flow.flow().predict_train(tt).unwrap();
                let g = frob((&f - &other).view()) / frob(other.view());
                eprintln!("  against the flow at {label}: {g:.3e}");
                assert!(g > 5.0 * gap, "{label}: {g} vs {gap}");
            }
        }
        gaps.push((gap, gap_test));
    }
    let r1 = gaps[1].0 / gaps[0].0;
    let r2 = gaps[2].0 / gaps[1].0;
    let r1t = gaps[1].1 / gaps[0].1;
    let r2t = gaps[2].1 / gaps[1].1;
    eprintln!("ratios train {r1:.4} {r2:.4}, test {r1t:.4} {r2t:.4}");
}

/// The flow at t = 0 is f_0 = 0 exactly (SPEC §5): every coefficient is −expm1(−0)/λ = 0.
/// At large t it approaches NTK kernel regression; with a tiny ridge the two differ only by
/// the ridge's O(λ_ridge/λ_min) shift and e^{−λ_min t}.
#[test]
fn gradient_flow_starts_at_zero_and_ends_at_kernel_regression() {
    let net = net!();
    let (x, y, xt, _) = digits(60, 20);
    let model = net.ntk_gradient_flow(&x, &y, 1.0).unwrap();
    assert!(model
        .flow()
        .predict_train(0.0)
        .unwrap()
        .iter()
        .all(|&v| v == 0.0));
    assert!(model.predict(&xt, 0.0).unwrap().iter().all(|&v| v == 0.0));

    let eig = model.flow().eigenvalues();
    let (lmin, lmax) = (eig[0], *eig.last().unwrap());
    eprintln!("Θ eigenvalues: min {lmin:.4e}, max {lmax:.4e}");
    assert!(
        lmin > 0.0,
        "60 distinct digits rows give a positive definite NTK"
    );
    let ridge = 1e-10 * lmax;
    let reg = net.ntk_regression(&x, &y, ridge).unwrap();
    let f_reg = reg.predict(&xt).unwrap();
    let f_reg_train = reg.predict(&x).unwrap();
    let scale = max_abs(f_reg.view());
    for t in [1.0 / lmin, 10.0 / lmin, 40.0 / lmin, f64::INFINITY] {
        let d = max_abs((&model.predict(&xt, t).unwrap() - &f_reg).view()) / scale;
        let dtr = max_abs((&model.flow().predict_train(t).unwrap() - &f_reg_train).view());
        eprintln!("t = {t:.3e}: test {d:.3e}, train {dtr:.3e}");
    }
}

/// Real-valued targets with no structure (C = 3), so that χ has entries of both signs and
/// differing sizes: a stronger check of the sign / normalisation parts than one-hot rows.
fn wavy_targets(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, 3), |(i, c)| (1.7 * i as f64 + 2.3 * c as f64).sin())
}

/// One step of each rule on a chosen example equals its formula (SPEC §4, §5), evaluated
/// from the kernels `Network::kernels` returns, with **columns the training example**:
/// Adam limit Δf_c(x) = −η [sign(χ_c) R(x, x_b) + (χ_c/‖χ‖) H(x, x_b)], NTK
/// Δf(x) = −η Θ(x, x_b) χ. Two steps, so the second χ = f(x_b) − y_b comes from a moved f.
/// The trainer does the same arithmetic in another order: a few ulp of the O(1) values.
#[test]
fn one_step_of_each_rule_is_its_formula() {
    let net = net!();
    let (x, _, xt, _) = digits(30, 10);
    let y = wavy_targets(30);
    let eta = 0.05;
    let k = net.kernels(&x, TrainingInputs::of(&x), Want::ADAM).unwrap();
    let (r, h) = (k.readout.unwrap(), k.hidden.unwrap());
    let kt = net
        .kernels(&xt, TrainingInputs::of(&x), Want::ADAM)
        .unwrap();
    let (rt, ht) = (kt.readout.unwrap(), kt.hidden.unwrap());
    // R is not symmetric: the test below would notice rows taken for columns.
    assert!(max_abs((&r - &r.t()).view()) > 1e-3);
    let theta = net.ntk(&x, &x).unwrap();
    let theta_t = net.ntk(&xt, &x).unwrap();

    let sign = |v: f64| {
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    let mut adam = net.adam_training(&x, &y, sgd_config(eta)).unwrap();
    let adam_test = adam.test_set(&xt, None::<&Array2<f64>>).unwrap();
    let mut ntk = net.ntk_training(&x, &y, sgd_config(eta)).unwrap();
    let ntk_test = ntk.test_set(&xt, None::<&Array2<f64>>).unwrap();
    for b in [7usize, 19] {
        // Adam limit
        let f = adam
            .trainer()
            .train_values(Iterate::Last)
            .unwrap()
            .to_owned();
        let ft = adam.predict(&adam_test).unwrap();
        let chi = &f.row(b) - &y.row(b);
        let norm = chi.iter().map(|v| v * v).sum::<f64>().sqrt();
        let expect = |rk: ArrayView2<f64>, hk: ArrayView2<f64>, f0: &Array2<f64>| {
            Array2::from_shape_fn(f0.dim(), |(i, c)| {
                f0[(i, c)] - eta * (sign(chi[c]) * rk[(i, b)] + chi[c] / norm * hk[(i, b)])
            })
        };
        let want = expect(r.view(), h.view(), &f);
        let want_t = expect(rt.view(), ht.view(), &ft);
        adam.trainer_mut().step(b).unwrap();
        let got = adam
            .trainer()
            .train_values(Iterate::Last)
            .unwrap()
            .to_owned();
        let got_t = adam.predict(&adam_test).unwrap();
        assert!(
            max_abs((&got - &want).view()) < 1e-13,
            "Adam train, step on {b}"
        );
        assert!(
            max_abs((&got_t - &want_t).view()) < 1e-13,
            "Adam test, step on {b}"
        );

        // NTK-SGD
        let f = ntk
            .trainer()
            .train_values(Iterate::Last)
            .unwrap()
            .to_owned();
        let ft = ntk.predict(&ntk_test).unwrap();
        let chi = &f.row(b) - &y.row(b);
        let want =
            Array2::from_shape_fn(f.dim(), |(i, c)| f[(i, c)] - eta * theta[(i, b)] * chi[c]);
        let want_t = Array2::from_shape_fn(ft.dim(), |(i, c)| {
            ft[(i, c)] - eta * theta_t[(i, b)] * chi[c]
        });
        ntk.trainer_mut().step(b).unwrap();
        let got = ntk
            .trainer()
            .train_values(Iterate::Last)
            .unwrap()
            .to_owned();
        let got_t = ntk.predict(&ntk_test).unwrap();
        assert!(
            max_abs((&got - &want).view()) < 1e-13,
            "NTK train, step on {b}"
        );
        assert!(
            max_abs((&got_t - &want_t).view()) < 1e-13,
            "NTK test, step on {b}"
        );
    }
}

fn mse(f: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    0.5 * (&f - &y).iter().map(|v| v * v).sum::<f64>() / f.nrows() as f64
}

/// The Adam limit with MSE on 100 digits rows: the training loss falls from its f_0 = 0
/// value ½ (one-hot rows) and the training set is fitted.
#[test]
fn adam_limit_with_mse_fits_a_small_subset() {
    let net = net!();
    let (x, y, _, _) = digits(100, 0);
    for (lr, sched) in [
        (0.003, Schedule::Constant),
        (0.01, Schedule::Constant),
        (0.01, Schedule::LinearDecay { epochs: 30 }),
        (0.03, Schedule::LinearDecay { epochs: 30 }),
    ] {
        let cfg = TrainConfig {
            schedule: sched,
            running_mean: true,
            seed: 1,
            ..TrainConfig::new(lr)
        };
        let mut model = net.adam_training(&x, &y, cfg).unwrap();
        let hist = model.fit(30, None).unwrap();
        let fm = model
            .trainer()
            .train_values(Iterate::RunningMean)
            .unwrap()
            .to_owned();
        eprintln!(
            "lr {lr} {sched:?}: losses {:?}",
            hist.iter()
                .map(|r| format!("{:.4} {:?}", r.train_loss, r.train_accuracy))
                .collect::<Vec<_>>()
        );
        eprintln!("  mean-iterate loss {:.4}", mse(fm.view(), y.view()));
    }
}

/// Bad input to either trainer is a typed error naming the problem, never a panic.
#[test]
fn bad_input_gives_typed_errors_for_both_limits() {
    let net = net!();
    let (x, y, _, _) = digits(12, 0);

    // Runs `check` on the outcome of both constructors for the same inputs.
    fn both<K: infw::KernelProgram + Clone>(
        net: &infw::Network<K>,
        x: &Array2<f64>,
        y: &Array2<f64>,
        cfg: TrainConfig,
        what: &str,
        check: impl Fn(&Error) -> bool,
    ) {
        let e1 = net.ntk_training(x, y, cfg.clone()).err();
        let e2 = net.adam_training(x, y, cfg).err();
        for (rule, e) in [("ntk_training", e1), ("adam_training", e2)] {
            match e {
                Some(e) => assert!(check(&e), "{rule}, {what}: unexpected error {e:?}"),
                None => panic!("{rule}, {what}: accepted"),
            }
        }
    }

    for lr in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.1] {
        both(
            &net,
            &x,
            &y,
            TrainConfig::new(lr),
            &format!("learning rate {lr}"),
            |e| {
                matches!(
                    e,
                    Error::InvalidArgument {
                        name: "learning_rate",
                        ..
                    }
                )
            },
        );
    }

    let mut y_nan = y.clone();
    y_nan[(5, 3)] = f64::NAN;
    both(&net, &x, &y_nan, TrainConfig::new(0.1), "NaN target", |e| {
        matches!(e, Error::NonFinite { row: 5, col: 3, .. })
    });
    let mut y_inf = y.clone();
    y_inf[(0, 0)] = f64::INFINITY;
    both(
        &net,
        &x,
        &y_inf,
        TrainConfig::new(0.1),
        "infinite target",
        |e| matches!(e, Error::NonFinite { row: 0, col: 0, .. }),
    );

    let short = y.slice(s![..11, ..]).to_owned();
    both(
        &net,
        &x,
        &short,
        TrainConfig::new(0.1),
        "11 target rows for 12 inputs",
        |e| {
            matches!(
                e,
                Error::ShapeMismatch {
                    expected: 12,
                    found: 11,
                    ..
                }
            )
        },
    );

    let no_rows = Array2::<f64>::zeros((0, 64));
    let no_targets = Array2::<f64>::zeros((0, 10));
    both(
        &net,
        &no_rows,
        &no_targets,
        TrainConfig::new(0.1),
        "x with no rows",
        |e| matches!(e, Error::Empty { .. }),
    );
    let no_features = Array2::<f64>::zeros((12, 0));
    both(
        &net,
        &no_features,
        &y,
        TrainConfig::new(0.1),
        "x with no columns",
        |e| matches!(e, Error::Empty { .. }),
    );

    let mut x_nan = x.clone();
    x_nan[(2, 9)] = f64::NAN;
    both(&net, &x_nan, &y, TrainConfig::new(0.1), "NaN input", |e| {
        matches!(e, Error::NonFinite { row: 2, col: 9, .. })
    });
}
