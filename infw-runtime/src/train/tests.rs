//! Tests of the training engine against direct simulations and its error contract.

use ndarray::{Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::*;
use crate::error::Error;
use crate::loss::Loss;

fn normal(rng: &mut StdRng, rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |_| rng.sample(StandardNormal))
}

/// A well-conditioned symmetric PSD kernel: G Gᵀ / d + ridge·I (eigenvalues ≥ ridge).
fn psd(rng: &mut StdRng, n: usize, d: usize, ridge: f64) -> Array2<f64> {
    let g = normal(rng, n, d);
    g.dot(&g.t()) / d as f64 + Array2::<f64>::eye(n) * ridge
}

fn max_abs_diff(a: &Array2<f64>, b: impl AsRef<[f64]>, what: &str, tol: f64) {
    let b = b.as_ref();
    assert_eq!(a.len(), b.len(), "{what}: sizes");
    let a = a.as_standard_layout();
    let a = a.as_slice().unwrap();
    let d = a
        .iter()
        .zip(b)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(d <= tol, "{what}: max |difference| {d:e} > {tol:e}");
}

fn flat(a: ndarray::ArrayView2<'_, f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

/// The function stored explicitly on train and test points, updated with kernel columns:
/// the reference the coefficient representation must reproduce.
struct Direct {
    train_k: Vec<Array2<f64>>,
    test_k: Vec<Array2<f64>>,
    targets: Array2<f64>,
    loss: Loss,
    beta: Option<f64>,
    gamma: Option<f64>,
    f: (Array2<f64>, Array2<f64>),
    m: (Array2<f64>, Array2<f64>),
    mean: (Array2<f64>, Array2<f64>),
    ema: (Array2<f64>, Array2<f64>),
    t: f64,
}

impl Direct {
    #[allow(clippy::too_many_arguments)]
    fn new(
        train_k: Vec<Array2<f64>>,
        test_k: Vec<Array2<f64>>,
        targets: Array2<f64>,
        f0: (Array2<f64>, Array2<f64>),
        cfg: &TrainConfig,
    ) -> Self {
        let zeros = (Array2::zeros(f0.0.raw_dim()), Array2::zeros(f0.1.raw_dim()));
        Direct {
            train_k,
            test_k,
            targets,
            loss: cfg.loss,
            beta: cfg.momentum,
            gamma: cfg.ema,
            m: zeros,
            mean: f0.clone(),
            ema: f0.clone(),
            f: f0,
            t: 0.0,
        }
    }

    fn step(&mut self, rule: &impl UpdateRule, b: usize, eta: f64) {
        let c = self.targets.ncols();
        let fb = self.f.0.row(b).to_vec();
        let mut chi = vec![0.0; c];
        self.loss
            .gradient(&fb, self.targets.row(b).as_slice().unwrap(), &mut chi);
        let mut u = vec![0.0; c * self.train_k.len()];
        rule.direction(&chi, &mut u);
        // U on train and test: Σ_j K_j(·, x_b) u_j — the column b of each kernel.
        let mut upd = (
            Array2::zeros(self.f.0.raw_dim()),
            Array2::zeros(self.f.1.raw_dim()),
        );
        for j in 0..self.train_k.len() {
            let uj = ndarray::ArrayView1::from(&u[j * c..(j + 1) * c]);
            for (k, out) in [
                (&self.train_k[j], &mut upd.0),
                (&self.test_k[j], &mut upd.1),
            ] {
                let col = k.column(b);
                for (i, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
                    row.scaled_add(col[i], &uj);
                }
            }
        }
        match self.beta {
            Some(beta) => {
                self.m.0 = &self.m.0 * beta + &upd.0;
                self.m.1 = &self.m.1 * beta + &upd.1;
                self.f.0.scaled_add(-eta * (1.0 - beta), &self.m.0);
                self.f.1.scaled_add(-eta * (1.0 - beta), &self.m.1);
            }
            None => {
                self.f.0.scaled_add(-eta, &upd.0);
                self.f.1.scaled_add(-eta, &upd.1);
            }
        }
        self.t += 1.0;
        self.mean.0 = &self.mean.0 * ((self.t - 1.0) / self.t) + &self.f.0 / self.t;
        self.mean.1 = &self.mean.1 * ((self.t - 1.0) / self.t) + &self.f.1 / self.t;
        if let Some(g) = self.gamma {
            self.ema.0 = &self.ema.0 * g + &self.f.0 * (1.0 - g);
            self.ema.1 = &self.ema.1 * g + &self.f.1 * (1.0 - g);
        }
    }
}

struct Problem {
    train_k: Vec<Array2<f64>>,
    test_k: Vec<Array2<f64>>,
    y: Array2<f64>,
    y_test: Array2<f64>,
    f0: (Array2<f64>, Array2<f64>),
}

/// Random kernels: symmetric PSD for the NTK, deliberately asymmetric for R and H so that
/// a row/column confusion changes every result.
fn problem(seed: u64, blocks: usize, n: usize, m: usize, c: usize) -> Problem {
    let mut rng = StdRng::seed_from_u64(seed);
    let (train_k, test_k) = if blocks == 1 {
        let all = psd(&mut rng, n + m, 6, 0.2);
        let train = all.slice(ndarray::s![..n, ..n]).to_owned();
        let test = all.slice(ndarray::s![n.., ..n]).to_owned();
        (vec![train], vec![test])
    } else {
        let mut tr = Vec::new();
        let mut te = Vec::new();
        for _ in 0..blocks {
            tr.push(normal(&mut rng, n, n) * 0.3 + Array2::<f64>::eye(n));
            te.push(normal(&mut rng, m, n) * 0.3);
        }
        (tr, te)
    };
    let y = normal(&mut rng, n, c);
    let y_test = normal(&mut rng, m, c);
    let f0 = (normal(&mut rng, n, c) * 0.5, normal(&mut rng, m, c) * 0.5);
    Problem {
        train_k,
        test_k,
        y,
        y_test,
        f0,
    }
}

fn ntk_kernels(mut b: Vec<Array2<f64>>) -> NtkKernel {
    NtkKernel::new(b.remove(0)).unwrap()
}

fn sign_kernels(mut b: Vec<Array2<f64>>) -> SignKernels {
    let h = b.remove(1);
    SignKernels::new(b.remove(0), h).unwrap()
}

/// Drives a [`Trainer`] and a [`Direct`] simulation with the same steps and compares
/// every tracked iterate on train (values) and test (predictions).
///
/// Tolerance: both sides add the same T = 3N = 36 terms of size ≤ η·max|K|·max|u|
/// (≈ 0.1·2·3) in different orders (the test side as a matrix product over N), so they
/// differ by ≲ (T + N)·ε·Σ|terms| ≈ 48·2.2e-16·22 ≈ 2e-13; momentum's 1/(1−β) = 2 and
/// the averages do not change the order. 1e-11 leaves a 50× margin.
fn compare_with_direct<R: UpdateRule + Copy>(
    rule: R,
    blocks: usize,
    mk: fn(Vec<Array2<f64>>) -> R::Kernels,
    cfg: TrainConfig,
    by_epoch: bool,
) {
    let (n, m, c) = (12, 5, 3);
    let p = problem(7 + blocks as u64, blocks, n, m, c);
    let train = TrainSet::new(mk(p.train_k.clone()), p.y.clone())
        .unwrap()
        .with_f0(p.f0.0.clone())
        .unwrap();
    let test = TestSet::new(mk(p.test_k.clone()))
        .with_f0(p.f0.1.clone())
        .unwrap();
    let mut trainer = Trainer::new(rule, train, cfg.clone()).unwrap();
    let mut direct = Direct::new(
        p.train_k.clone(),
        p.test_k.clone(),
        p.y.clone(),
        p.f0.clone(),
        &cfg,
    );
    let mut rng = StdRng::seed_from_u64(99);
    let mut t = 0u64;
    for epoch in 1..=3 {
        if by_epoch {
            trainer.run_epoch(Some(&test)).unwrap();
            for b in 0..n {
                let eta = cfg.schedule.rate(cfg.learning_rate, epoch, t, n);
                direct.step(&rule, b, eta);
                t += 1;
            }
        } else {
            for _ in 0..n {
                let b = rng.random_range(0..n);
                trainer.step(b).unwrap();
                direct.step(&rule, b, cfg.learning_rate);
            }
        }
    }
    let tol = 1e-11;
    let mut iterates = vec![(Iterate::Last, &direct.f)];
    if cfg.running_mean {
        iterates.push((Iterate::RunningMean, &direct.mean));
    }
    if cfg.ema.is_some() {
        iterates.push((Iterate::Ema, &direct.ema));
    }
    for (it, (want_train, want_test)) in iterates {
        let got_train = trainer.train_values(it).unwrap();
        max_abs_diff(
            want_train,
            flat(got_train),
            &format!("{it:?} on train"),
            tol,
        );
        let got_test = trainer.predict(&test, it).unwrap();
        max_abs_diff(
            want_test,
            flat(got_test.view()),
            &format!("{it:?} on test"),
            tol,
        );
        // The coefficients also reproduce the stored train values (f_0 + K(X,X) A).
        let on_train = TestSet::new(mk(p.train_k.clone()))
            .with_f0(p.f0.0.clone())
            .unwrap();
        let via_coef = trainer.predict(&on_train, it).unwrap();
        max_abs_diff(
            &via_coef,
            flat(got_train),
            &format!("{it:?} via coefficients"),
            tol,
        );
    }
    // The run is not trivial: the function moved.
    let moved = (&direct.f.0 - &p.f0.0)
        .iter()
        .fold(0.0_f64, |a, x| a.max(x.abs()));
    assert!(moved > 0.05, "function barely moved ({moved})");
}

fn extended(cfg: TrainConfig) -> TrainConfig {
    TrainConfig {
        momentum: Some(0.5),
        running_mean: true,
        ema: Some(0.8),
        ..cfg
    }
}

#[test]
fn ntk_coefficients_match_direct_simulation() {
    let cfg = TrainConfig::new(0.1);
    compare_with_direct(NtkSgd, 1, ntk_kernels, cfg.clone(), false);
    compare_with_direct(NtkSgd, 1, ntk_kernels, extended(cfg), false);
}

#[test]
fn adam_coefficients_match_direct_simulation() {
    let cfg = TrainConfig::new(0.1);
    compare_with_direct(AdamLimit, 2, sign_kernels, cfg.clone(), false);
    compare_with_direct(AdamLimit, 2, sign_kernels, extended(cfg), false);
}

#[test]
fn epochs_with_schedules_and_cross_entropy_match_direct_simulation() {
    for schedule in [
        Schedule::LinearDecay { epochs: 3 },
        Schedule::InverseSqrtEpoch,
    ] {
        let cfg = TrainConfig {
            shuffle: false,
            schedule,
            ..TrainConfig::new(0.1)
        };
        compare_with_direct(AdamLimit, 2, sign_kernels, extended(cfg.clone()), true);
        let ce = TrainConfig {
            loss: Loss::CrossEntropy,
            ..cfg
        };
        compare_with_direct(NtkSgd, 1, ntk_kernels, extended(ce), true);
    }
}

#[test]
fn linear_decay_reaches_zero_and_inverse_sqrt_divides() {
    let s = Schedule::LinearDecay { epochs: 2 };
    assert_eq!(s.rate(0.4, 1, 0, 10), 0.4);
    assert_eq!(s.rate(0.4, 2, 10, 10), 0.2);
    assert_eq!(s.rate(0.4, 3, 20, 10), 0.0);
    assert_eq!(s.rate(0.4, 9, 50, 10), 0.0);
    assert_eq!(Schedule::InverseSqrtEpoch.rate(0.4, 4, 123, 10), 0.2);
    assert_eq!(Schedule::Constant.rate(0.4, 4, 123, 10), 0.4);
}

/// Θ = G Gᵀ/d + 0.5 I (eigenvalues in [0.5, ≈5]); per-example SGD with η = 0.2 keeps
/// η Θ_bb < 1, so each epoch should lower the loss and 40 epochs remove most of it.
#[test]
fn ntk_mse_training_decreases_the_loss() {
    let mut rng = StdRng::seed_from_u64(3);
    let (n, c) = (20, 3);
    let theta = psd(&mut rng, n, 2 * n, 0.5);
    let y = normal(&mut rng, n, c);
    let initial = 0.5 * y.iter().map(|v| v * v).sum::<f64>() / n as f64;
    let train = TrainSet::new(NtkKernel::new(theta).unwrap(), y).unwrap();
    let mut trainer = Trainer::new(NtkSgd, train, TrainConfig::new(0.2)).unwrap();
    let mut seen = Vec::new();
    let history = trainer.fit_with(40, None, |r| seen.push(r.epoch)).unwrap();
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<_>>(),
        "callback once per epoch"
    );
    let mut prev = initial;
    for r in &history {
        assert!(
            r.train_loss < prev,
            "epoch {}: {} ≥ {prev}",
            r.epoch,
            r.train_loss
        );
        prev = r.train_loss;
    }
    assert!(prev < 1e-3 * initial, "final {prev} vs initial {initial}");
    assert_eq!(history.last().unwrap().train_accuracy, Some(1.0));
}

/// Adam limit under MSE with R, H diagonally dominant and a linear decay: sign descent
/// moves each value by ≈ η R_bb per step, so the residual shrinks to O(η_t); with η_t → 0
/// the loss must end far below its start.
#[test]
fn adam_mse_training_decreases_the_loss() {
    let mut rng = StdRng::seed_from_u64(4);
    let (n, c) = (20, 3);
    let r = normal(&mut rng, n, n).mapv(f64::abs) * 0.02 + Array2::<f64>::eye(n);
    let h = normal(&mut rng, n, n).mapv(f64::abs) * 0.02 + Array2::<f64>::eye(n) * 0.5;
    let y = normal(&mut rng, n, c);
    let initial = 0.5 * y.iter().map(|v| v * v).sum::<f64>() / n as f64;
    let train = TrainSet::new(SignKernels::new(r, h).unwrap(), y).unwrap();
    let cfg = TrainConfig {
        schedule: Schedule::LinearDecay { epochs: 30 },
        ..TrainConfig::new(0.2)
    };
    let mut trainer = Trainer::new(AdamLimit, train, cfg).unwrap();
    let history = trainer.fit(30, None).unwrap();
    let last = history.last().unwrap().train_loss;
    assert!(history[0].train_loss < initial);
    assert!(last < 1e-2 * initial, "final {last} vs initial {initial}");
}

/// Under cross-entropy the Adam limit never settles (docs/math.md §5): the readout signs stay
/// (−1 true class, +1 others) and the function keeps growing at a constant rate; under
/// MSE it stays bounded near the targets.
#[test]
fn adam_cross_entropy_keeps_pushing_while_mse_settles() {
    let (n, c) = (6, 3);
    let r = Array2::<f64>::eye(n) + 0.05;
    let h = Array2::<f64>::eye(n) * 0.5;
    let mut y = Array2::zeros((n, c));
    for b in 0..n {
        y[(b, b % c)] = 1.0;
    }
    let norm_after = |loss: Loss, epochs: usize| {
        let train =
            TrainSet::new(SignKernels::new(r.clone(), h.clone()).unwrap(), y.clone()).unwrap();
        let cfg = TrainConfig {
            loss,
            ..TrainConfig::new(0.1)
        };
        let mut t = Trainer::new(AdamLimit, train, cfg).unwrap();
        t.fit(epochs, None).unwrap();
        let f = t.train_values(Iterate::Last).unwrap().to_owned();
        if loss == Loss::CrossEntropy {
            let mut chi = [0.0; 3];
            let mut u = [0.0; 6];
            for b in 0..n {
                let fb = f.row(b).to_vec();
                loss.gradient(&fb, y.row(b).as_slice().unwrap(), &mut chi);
                AdamLimit.direction(&chi, &mut u);
                for k in 0..c {
                    let want = if y[(b, k)] == 1.0 { -1.0 } else { 1.0 };
                    assert_eq!(u[k], want, "example {b}, class {k}, f = {fb:?}");
                }
            }
        }
        f.iter().map(|v| v * v).sum::<f64>().sqrt()
    };
    let (ce10, ce20) = (
        norm_after(Loss::CrossEntropy, 10),
        norm_after(Loss::CrossEntropy, 20),
    );
    // Each epoch adds ≈ the same push, so twice the epochs ≈ twice the norm.
    assert!(ce20 > 1.5 * ce10, "cross-entropy: ‖f‖ {ce10} → {ce20}");
    let (mse10, mse20) = (norm_after(Loss::Mse, 10), norm_after(Loss::Mse, 20));
    let ynorm = (n as f64).sqrt();
    assert!(
        mse20 < 1.5 * ynorm && mse10 < 1.5 * ynorm,
        "mse: {mse10}, {mse20}"
    );
}

#[test]
fn ntk_cross_entropy_training_fits_the_labels() {
    let mut rng = StdRng::seed_from_u64(5);
    let (n, c) = (15, 3);
    let theta = psd(&mut rng, n, 2 * n, 0.5);
    let mut y = Array2::zeros((n, c));
    for b in 0..n {
        y[(b, rng.random_range(0..c))] = 1.0;
    }
    let train = TrainSet::new(NtkKernel::new(theta).unwrap(), y).unwrap();
    let cfg = TrainConfig {
        loss: Loss::CrossEntropy,
        ..TrainConfig::new(0.5)
    };
    let mut t = Trainer::new(NtkSgd, train, cfg).unwrap();
    let h = t.fit(30, None).unwrap();
    assert!(h[29].train_loss < 0.5 * h[0].train_loss);
    assert!(h[0].train_loss < (c as f64).ln(), "below the loss of f = 0");
    assert_eq!(h[29].train_accuracy, Some(1.0));
}

/// With β = 0 the momentum path (M ← 0·M + U, f ← f − η M) is the plain update.
/// They round differently only in the train values (Σ_j K_j u_j summed before scaling by
/// η vs after: ≤ 2ε relative per term); those ulps feed later gradients, and the
/// dynamics here are contracting (η Θ_bb < 1; no χ_c near 0 for the sign), so after 36
/// steps of size ≤ 1 everything agrees to ≪ 1e-12.
#[test]
fn momentum_zero_equals_no_momentum() {
    fn run<R: UpdateRule + Copy>(rule: R, blocks: usize, mk: fn(Vec<Array2<f64>>) -> R::Kernels) {
        let p = problem(11, blocks, 12, 4, 3);
        let go = |momentum| {
            let train = TrainSet::new(mk(p.train_k.clone()), p.y.clone()).unwrap();
            let cfg = TrainConfig {
                momentum,
                seed: 5,
                ..TrainConfig::new(0.1)
            };
            let mut t = Trainer::new(rule, train, cfg).unwrap();
            t.fit(3, None).unwrap();
            t
        };
        let (plain, zero) = (go(None), go(Some(0.0)));
        for (a, b) in plain
            .coefficients(Iterate::Last)
            .unwrap()
            .iter()
            .zip(zero.coefficients(Iterate::Last).unwrap())
        {
            max_abs_diff(a, b.as_slice().unwrap(), "coefficients", 1e-12);
        }
        let want = plain.train_values(Iterate::Last).unwrap().to_owned();
        max_abs_diff(
            &want,
            flat(zero.train_values(Iterate::Last).unwrap()),
            "train",
            1e-12,
        );
        let test = TestSet::new(mk(p.test_k.clone()));
        let want = plain.predict(&test, Iterate::Last).unwrap();
        max_abs_diff(
            &want,
            flat(zero.predict(&test, Iterate::Last).unwrap().view()),
            "test",
            1e-12,
        );
    }
    run(NtkSgd, 1, ntk_kernels);
    run(AdamLimit, 2, sign_kernels);
}

/// Targets equal to f_0 under MSE give χ = 0, so both rules leave f = f_0 (sign(0) = 0
/// and no hidden update at ‖χ‖ = 0): the running mean is f_0 exactly (f̄ + (f − f̄)/t
/// with f = f̄), the EMA γa + (1−γ)a within 2 ulp.
#[test]
fn running_mean_of_a_constant_sequence_is_the_constant() {
    fn run<R: UpdateRule + Copy>(rule: R, blocks: usize, mk: fn(Vec<Array2<f64>>) -> R::Kernels) {
        let p = problem(12, blocks, 8, 4, 2);
        let train = TrainSet::new(mk(p.train_k.clone()), p.f0.0.clone())
            .unwrap()
            .with_f0(p.f0.0.clone())
            .unwrap();
        let test = TestSet::new(mk(p.test_k.clone()))
            .with_f0(p.f0.1.clone())
            .unwrap();
        let cfg = TrainConfig {
            running_mean: true,
            ema: Some(0.7),
            report: Iterate::RunningMean,
            ..TrainConfig::new(0.3)
        };
        let mut t = Trainer::new(rule, train, cfg).unwrap();
        let h = t.fit(4, Some(&test)).unwrap();
        assert_eq!(h[3].train_loss, 0.0);
        for it in [Iterate::Last, Iterate::RunningMean] {
            assert_eq!(t.train_values(it).unwrap(), p.f0.0.view(), "{it:?}");
            assert_eq!(t.predict(&test, it).unwrap(), p.f0.1, "{it:?}");
        }
        let scale = p.f0.0.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        max_abs_diff(
            &p.f0.0,
            flat(t.train_values(Iterate::Ema).unwrap()),
            "EMA",
            4.0 * f64::EPSILON * scale,
        );
    }
    run(NtkSgd, 1, ntk_kernels);
    run(AdamLimit, 2, sign_kernels);
}

/// Running mean and EMA against their definitions, computed from the recorded last
/// iterates: f̄_t = (1/t) Σ_{s≤t} f_s, e_t = γ^t f_0 + Σ_{s≤t} (1−γ) γ^{t−s} f_s.
/// The incremental forms differ from these sums by ≲ t·ε·max|f| ≈ 40·2.2e-16·5 ≈ 5e-14;
/// tolerance 1e-11.
#[test]
fn averaging_matches_its_definition() {
    let (n, m, c) = (10, 4, 2);
    let p = problem(13, 2, n, m, c);
    let gamma = 0.9;
    let train = TrainSet::new(sign_kernels(p.train_k.clone()), p.y.clone())
        .unwrap()
        .with_f0(p.f0.0.clone())
        .unwrap();
    let test = TestSet::new(sign_kernels(p.test_k.clone()))
        .with_f0(p.f0.1.clone())
        .unwrap();
    let cfg = TrainConfig {
        momentum: Some(0.3),
        running_mean: true,
        ema: Some(gamma),
        ..TrainConfig::new(0.05)
    };
    let mut t = Trainer::new(AdamLimit, train, cfg).unwrap();
    let mut history = Vec::new();
    let mut rng = StdRng::seed_from_u64(1);
    let steps = 40;
    for _ in 0..steps {
        t.step(rng.random_range(0..n)).unwrap();
        history.push((
            t.train_values(Iterate::Last).unwrap().to_owned(),
            t.predict(&test, Iterate::Last).unwrap(),
        ));
    }
    let tt = steps as f64;
    let mean_train = history.iter().fold(Array2::zeros((n, c)), |a, h| a + &h.0) / tt;
    let mean_test = history.iter().fold(Array2::zeros((m, c)), |a, h| a + &h.1) / tt;
    let mut ema_train = &p.f0.0 * gamma.powi(steps);
    let mut ema_test = &p.f0.1 * gamma.powi(steps);
    for (s, h) in history.iter().enumerate() {
        let w = (1.0 - gamma) * gamma.powi(steps - 1 - s as i32);
        ema_train.scaled_add(w, &h.0);
        ema_test.scaled_add(w, &h.1);
    }
    let tol = 1e-11;
    max_abs_diff(
        &mean_train,
        flat(t.train_values(Iterate::RunningMean).unwrap()),
        "mean train",
        tol,
    );
    max_abs_diff(
        &mean_test,
        flat(t.predict(&test, Iterate::RunningMean).unwrap().view()),
        "mean test",
        tol,
    );
    max_abs_diff(
        &ema_train,
        flat(t.train_values(Iterate::Ema).unwrap()),
        "ema train",
        tol,
    );
    max_abs_diff(
        &ema_test,
        flat(t.predict(&test, Iterate::Ema).unwrap().view()),
        "ema test",
        tol,
    );
    // Not trivially equal to the last iterate.
    let last = t.train_values(Iterate::Last).unwrap().to_owned();
    assert!((&last - &mean_train).iter().any(|d| d.abs() > 1e-3));
}

#[test]
fn history_reports_test_metrics_and_seeded_shuffles_repeat() {
    let (n, m, c) = (12, 5, 3);
    let p = problem(14, 1, n, m, c);
    let make = |seed| {
        let train = TrainSet::new(ntk_kernels(p.train_k.clone()), p.y.clone()).unwrap();
        Trainer::new(
            NtkSgd,
            train,
            TrainConfig {
                seed,
                ..TrainConfig::new(0.1)
            },
        )
        .unwrap()
    };
    let test = TestSet::new(ntk_kernels(p.test_k.clone()))
        .with_targets(p.y_test.clone())
        .unwrap();
    let (mut a, mut b, mut other) = (make(1), make(1), make(2));
    let ha = a.fit(2, Some(&test)).unwrap();
    b.fit(2, Some(&test)).unwrap();
    other.fit(2, Some(&test)).unwrap();
    assert_eq!(
        a.train_values(Iterate::Last).unwrap(),
        b.train_values(Iterate::Last).unwrap()
    );
    assert_ne!(
        a.train_values(Iterate::Last).unwrap(),
        other.train_values(Iterate::Last).unwrap()
    );
    let pred = a.predict(&test, Iterate::Last).unwrap();
    let want: f64 = pred
        .rows()
        .into_iter()
        .zip(p.y_test.rows())
        .map(|(f, y)| Loss::Mse.value(f.as_slice().unwrap(), y.as_slice().unwrap()))
        .sum::<f64>()
        / m as f64;
    assert_eq!(ha[1].test_loss, Some(want));
    assert!(ha[1].test_accuracy.is_some() && ha[1].seconds >= 0.0);
    assert_eq!((ha[0].epoch, ha[1].epoch), (1, 2));
}

// ---------------------------------------------------------------- bad input

fn ok_ntk(n: usize, c: usize) -> TrainSet<NtkKernel> {
    TrainSet::new(
        NtkKernel::new(Array2::eye(n)).unwrap(),
        Array2::ones((n, c)),
    )
    .unwrap()
}

#[test]
fn bad_kernels_are_typed_errors() {
    assert!(matches!(
        NtkKernel::new(Array2::zeros((0, 0))),
        Err(Error::Empty { .. })
    ));
    let mut k = Array2::eye(3);
    k[(1, 2)] = f64::NAN;
    assert!(matches!(
        NtkKernel::new(k),
        Err(Error::NonFinite { row: 1, col: 2, .. })
    ));
    let e = SignKernels::new(Array2::eye(3), Array2::zeros((2, 3)));
    assert!(matches!(
        e,
        Err(Error::ShapeMismatch {
            expected: 3,
            found: 2,
            ..
        })
    ));
    let e = SignKernels::new(Array2::eye(3), Array2::zeros((3, 4)));
    assert!(matches!(
        e,
        Err(Error::ShapeMismatch {
            expected: 3,
            found: 4,
            ..
        })
    ));
    let mut h = Array2::eye(3);
    h[(0, 0)] = f64::INFINITY;
    assert!(matches!(
        SignKernels::new(Array2::eye(3), h),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        SignKernels::new(Array2::zeros((2, 0)), Array2::zeros((2, 0))),
        Err(Error::Empty {
            axis: "columns",
            ..
        })
    ));
}

#[test]
fn bad_train_sets_are_typed_errors() {
    let k = || NtkKernel::new(Array2::eye(3)).unwrap();
    let rect = NtkKernel::new(Array2::zeros((3, 2))).unwrap();
    assert!(matches!(
        TrainSet::new(rect, Array2::zeros((3, 1))),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        TrainSet::new(k(), Array2::zeros((4, 1))),
        Err(Error::ShapeMismatch {
            expected: 3,
            found: 4,
            ..
        })
    ));
    assert!(matches!(
        TrainSet::new(k(), Array2::zeros((3, 0))),
        Err(Error::Empty { .. })
    ));
    let mut y = Array2::zeros((3, 2));
    y[(2, 1)] = f64::NEG_INFINITY;
    assert!(matches!(
        TrainSet::new(k(), y),
        Err(Error::NonFinite { row: 2, col: 1, .. })
    ));
    assert!(matches!(
        ok_ntk(3, 2).with_f0(Array2::zeros((3, 1))),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut f0 = Array2::zeros((3, 2));
    f0[(0, 0)] = f64::NAN;
    assert!(matches!(
        ok_ntk(3, 2).with_f0(f0),
        Err(Error::NonFinite { .. })
    ));
}

#[test]
fn bad_configs_are_typed_errors() {
    let bad = |cfg: TrainConfig| Trainer::new(NtkSgd, ok_ntk(3, 2), cfg).err();
    for lr in [f64::NAN, f64::INFINITY, 0.0, -0.1] {
        assert!(
            matches!(
                bad(TrainConfig::new(lr)),
                Some(Error::InvalidArgument {
                    name: "learning_rate",
                    ..
                })
            ),
            "lr {lr}"
        );
    }
    let base = TrainConfig::new(0.1);
    for beta in [1.0, -0.1, f64::NAN] {
        let cfg = TrainConfig {
            momentum: Some(beta),
            ..base.clone()
        };
        assert!(matches!(
            bad(cfg),
            Some(Error::InvalidArgument {
                name: "momentum",
                ..
            })
        ));
    }
    for gamma in [1.0, f64::NAN] {
        let cfg = TrainConfig {
            ema: Some(gamma),
            ..base.clone()
        };
        assert!(matches!(
            bad(cfg),
            Some(Error::InvalidArgument { name: "ema", .. })
        ));
    }
    let cfg = TrainConfig {
        schedule: Schedule::LinearDecay { epochs: 0 },
        ..base.clone()
    };
    assert!(matches!(
        bad(cfg),
        Some(Error::InvalidArgument {
            name: "schedule",
            ..
        })
    ));
    for report in [Iterate::RunningMean, Iterate::Ema] {
        let cfg = TrainConfig {
            report,
            ..base.clone()
        };
        assert!(matches!(
            bad(cfg),
            Some(Error::InvalidArgument { name: "report", .. })
        ));
    }
    let ce = TrainConfig {
        loss: Loss::CrossEntropy,
        ..base.clone()
    };
    assert!(matches!(
        Trainer::new(NtkSgd, ok_ntk(3, 1), ce).err(),
        Some(Error::InvalidArgument { name: "loss", .. })
    ));
    // Untracked iterate asked for explicitly; example index out of range.
    let mut t = Trainer::new(NtkSgd, ok_ntk(3, 2), base).unwrap();
    assert!(matches!(
        t.train_values(Iterate::Ema),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        t.coefficients(Iterate::RunningMean),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        t.step(3),
        Err(Error::InvalidArgument { name: "b", .. })
    ));
}

#[test]
fn bad_test_sets_are_typed_errors() {
    let test_k = |m, n| NtkKernel::new(Array2::ones((m, n))).unwrap();
    assert!(matches!(
        TestSet::new(test_k(4, 3)).with_targets(Array2::zeros((5, 2))),
        Err(Error::ShapeMismatch {
            expected: 4,
            found: 5,
            ..
        })
    ));
    let mut y = Array2::zeros((4, 2));
    y[(3, 0)] = f64::NAN;
    assert!(matches!(
        TestSet::new(test_k(4, 3)).with_targets(y),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        TestSet::new(test_k(4, 3)).with_f0(Array2::zeros((2, 2))),
        Err(Error::ShapeMismatch { .. })
    ));

    let mut t = Trainer::new(NtkSgd, ok_ntk(3, 2), TrainConfig::new(0.1)).unwrap();
    let wrong_n = TestSet::new(test_k(4, 5));
    assert!(matches!(
        t.predict(&wrong_n, Iterate::Last),
        Err(Error::ShapeMismatch {
            expected: 3,
            found: 5,
            ..
        })
    ));
    let wrong_c = TestSet::new(test_k(4, 3))
        .with_targets(Array2::zeros((4, 1)))
        .unwrap();
    assert!(matches!(
        t.run_epoch(Some(&wrong_c)),
        Err(Error::ShapeMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert_eq!(
        t.epochs_done(),
        0,
        "a rejected test set must not run the epoch"
    );
    let stray_f0 = TestSet::new(test_k(4, 3))
        .with_f0(Array2::zeros((4, 2)))
        .unwrap();
    assert!(matches!(
        t.predict(&stray_f0, Iterate::Last),
        Err(Error::InvalidArgument { .. })
    ));

    let with_f0 = ok_ntk(3, 2).with_f0(Array2::zeros((3, 2))).unwrap();
    let t = Trainer::new(NtkSgd, with_f0, TrainConfig::new(0.1)).unwrap();
    assert!(matches!(
        t.predict(&TestSet::new(test_k(4, 3)), Iterate::Last),
        Err(Error::InvalidArgument { .. })
    ));
    let f0_wrong_c = TestSet::new(test_k(4, 3))
        .with_f0(Array2::zeros((4, 3)))
        .unwrap();
    assert!(matches!(
        t.predict(&f0_wrong_c, Iterate::Last),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// Θ = 11ᵀ + I, y = 1, η = 1e200, examples in order: step 1 sets f ≈ 1e200, step 2 has
/// χ ≈ 1e200 and overflows f to −∞, step 3 sees f(x_2) = −∞ → Diverged at epoch 1, step 3.
#[test]
fn divergence_is_reported_with_epoch_and_step() {
    let theta = Array2::ones((3, 3)) + Array2::<f64>::eye(3);
    let train = TrainSet::new(NtkKernel::new(theta).unwrap(), Array2::ones((3, 1))).unwrap();
    let cfg = TrainConfig {
        shuffle: false,
        ..TrainConfig::new(1e200)
    };
    let mut t = Trainer::new(NtkSgd, train, cfg).unwrap();
    match t.run_epoch(None) {
        Err(Error::Diverged { what }) => assert!(what.contains("epoch 1, step 3"), "{what}"),
        other => panic!("expected Diverged, got {other:?}"),
    }
    assert!(
        matches!(t.step(0), Err(Error::Diverged { .. })),
        "a diverged trainer stays failed"
    );
    assert!(matches!(t.run_epoch(None), Err(Error::Diverged { .. })));

    // Finite values but an infinite loss at the end of an epoch: Θ = 2I, η = 1e200 sets
    // every f to 2e200, whose squared error overflows.
    let train = TrainSet::new(
        NtkKernel::new(Array2::eye(3) * 2.0).unwrap(),
        Array2::ones((3, 1)),
    )
    .unwrap();
    let mut t = Trainer::new(NtkSgd, train, TrainConfig::new(1e200)).unwrap();
    match t.run_epoch(None) {
        Err(Error::Diverged { what }) => assert!(what.contains("epoch 1, step 3"), "{what}"),
        other => panic!("expected Diverged, got {other:?}"),
    }
}

/// Row-major, column-major and strided kernels give the same training.
#[test]
fn kernel_memory_layout_does_not_matter() {
    let p = problem(15, 2, 9, 3, 2);
    let run = |r: Array2<f64>, h: Array2<f64>| {
        let train = TrainSet::new(SignKernels::new(r, h).unwrap(), p.y.clone()).unwrap();
        let mut t = Trainer::new(AdamLimit, train, TrainConfig::new(0.1)).unwrap();
        t.fit(2, None).unwrap();
        t.train_values(Iterate::Last).unwrap().to_owned()
    };
    let want = run(p.train_k[0].clone(), p.train_k[1].clone());
    let fortran = |a: &Array2<f64>| {
        let mut f = Array2::zeros(ndarray::ShapeBuilder::f(a.raw_dim()));
        f.assign(a);
        f
    };
    assert_eq!(run(fortran(&p.train_k[0]), fortran(&p.train_k[1])), want);
    // A strided view made owned in an unusual layout: every other column of a wider matrix.
    let wide = |a: &Array2<f64>| {
        let mut w = Array2::zeros((9, 18));
        w.slice_mut(ndarray::s![.., ..;2]).assign(a);
        w.slice_move(ndarray::s![.., ..;2])
    };
    assert_eq!(run(wide(&p.train_k[0]), wide(&p.train_k[1])), want);
}
