//! The function-space training engine (docs/math.md §5): one loop for every update rule, with
//! the function kept as train-set values plus one coefficient matrix per kernel block.

use std::time::Instant;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, Zip};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::config::{invalid, Iterate, TrainConfig};
use super::kernels::{KernelSet, TestSet, TrainSet};
use super::rule::UpdateRule;
use crate::error::{Error, Result};
use crate::history::{EpochRecord, History};
use crate::loss::{argmax, Loss};

/// A function f = f_0 + Σ_j K_j(·, X) A_j: coefficients `A_j` (N×C, one row per training
/// example) and its values on the training set.
#[derive(Clone, Debug)]
pub(crate) struct FunctionState {
    pub(crate) coef: Vec<Array2<f64>>,
    pub(crate) train: Array2<f64>,
}

/// Trains a function in the kernel limit of `R`, one example per step (docs/math.md §4, §5).
///
/// State: the training-set values f(X) (N×C) and coefficient matrices (one per kernel
/// block, one row per training example) for the last iterate and, if enabled, momentum,
/// running mean and EMA. Test predictions at any time are one matrix product per block.
/// An epoch costs O(N² C) and a step allocates nothing.
///
/// ```
/// # use infw_runtime::train::{NtkKernel, NtkSgd, TrainConfig, TrainSet, Trainer, Iterate};
/// let theta = ndarray::array![[1.0, 0.1], [0.1, 1.0]];
/// let y = ndarray::array![[1.0], [-1.0]];
/// let train = TrainSet::new(NtkKernel::new(theta).unwrap(), y).unwrap();
/// let mut t = Trainer::new(NtkSgd, train, TrainConfig::new(0.5)).unwrap();
/// let history = t.fit(30, None).unwrap();
/// assert!(history.last().unwrap().train_loss < 1e-6);
/// ```
pub struct Trainer<R: UpdateRule> {
    // `pub(crate)` for `crate::persist` (the `serde` feature), which saves every field but
    // the scratch vectors `chi`, `fb`, `u` and the RNG (replayed: `replayed_order`).
    pub(crate) rule: R,
    pub(crate) config: TrainConfig,
    /// Block j, row b: K_j(X, x_b) — the column of example b, stored contiguously.
    pub(crate) columns: Vec<Array2<f64>>,
    pub(crate) targets: Array2<f64>,
    pub(crate) has_f0: bool,
    pub(crate) last: FunctionState,
    /// Momentum M as a function (no f_0): its coefficients and train values.
    pub(crate) momentum: Option<FunctionState>,
    pub(crate) mean: Option<FunctionState>,
    pub(crate) ema: Option<FunctionState>,
    pub(crate) chi: Vec<f64>,
    pub(crate) fb: Vec<f64>,
    pub(crate) u: Vec<f64>,
    pub(crate) order: Vec<usize>,
    pub(crate) rng: StdRng,
    pub(crate) epochs_done: usize,
    pub(crate) steps_done: u64,
    /// Set once training diverged; every later call returns `Error::Diverged` with it.
    pub(crate) failure: Option<String>,
}

/// The example order and the shuffling RNG of a trainer with `config` on `n` examples after
/// `epochs_done` completed epochs: the generator seeded with `config.seed`, and one shuffle
/// of the order per epoch when `config.shuffle` is on. This is all the RNG is used for
/// ([`Trainer::run_epoch`] shuffles once at its start; [`Trainer::step`] does not touch the
/// order), and an epoch that fails after its shuffle marks the trainer diverged, so for a
/// trainer that has not diverged the replay reproduces `order` and `rng` exactly.
pub(crate) fn replayed_order(
    n: usize,
    config: &TrainConfig,
    epochs_done: usize,
) -> (Vec<usize>, StdRng) {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(config.seed);
    if config.shuffle {
        for _ in 0..epochs_done {
            order.shuffle(&mut rng);
        }
    }
    (order, rng)
}

impl<R: UpdateRule> Trainer<R> {
    /// Prepares training: validates `config`, transposes the train kernels in place so that
    /// each training example's column is contiguous, and sets f = f_0 (0 unless given).
    pub fn new(rule: R, train: TrainSet<R::Kernels>, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        let (n, c) = train.targets.dim();
        if config.loss == Loss::CrossEntropy && c < 2 {
            return Err(invalid(
                "loss",
                "CrossEntropy",
                "softmax cross-entropy needs at least 2 output columns (one-hot targets)",
            ));
        }
        let columns: Vec<Array2<f64>> = train
            .kernels
            .into_blocks()
            .into_iter()
            .map(columns_contiguous)
            .collect();
        let blocks = columns.len();
        let has_f0 = train.f0.is_some();
        let f0 = train
            .f0
            .map(standard)
            .unwrap_or_else(|| Array2::zeros((n, c)));
        let (order, rng) = replayed_order(n, &config, 0);
        let zero_state = |train: Array2<f64>| FunctionState {
            coef: vec![Array2::zeros((n, c)); blocks],
            train,
        };
        Ok(Self {
            rule,
            columns,
            targets: standard(train.targets),
            has_f0,
            last: zero_state(f0.clone()),
            momentum: config.momentum.map(|_| zero_state(Array2::zeros((n, c)))),
            mean: config.running_mean.then(|| zero_state(f0.clone())),
            ema: config.ema.map(|_| zero_state(f0.clone())),
            chi: vec![0.0; c],
            fb: vec![0.0; c],
            u: vec![0.0; blocks * c],
            order,
            rng,
            epochs_done: 0,
            steps_done: 0,
            failure: None,
            config,
        })
    }

    /// Number of training examples N.
    pub fn n_train(&self) -> usize {
        self.targets.nrows()
    }

    /// Number of outputs C.
    pub fn n_outputs(&self) -> usize {
        self.targets.ncols()
    }

    /// Completed epochs (steps taken with [`Trainer::step`] do not count).
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Steps taken so far, by epochs and by [`Trainer::step`].
    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// The configuration in use.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The update rule.
    pub fn rule(&self) -> &R {
        &self.rule
    }

    /// Values of `iterate` on the training set (N×C, f_0 included).
    pub fn train_values(&self, iterate: Iterate) -> Result<ArrayView2<'_, f64>> {
        Ok(self.state(iterate)?.train.view())
    }

    /// Coefficient matrices of `iterate` (one N×C per kernel block, in the order of
    /// `KernelSet::BLOCKS`): f = f_0 + Σ_j K_j(·, X) A_j.
    pub fn coefficients(&self, iterate: Iterate) -> Result<&[Array2<f64>]> {
        Ok(&self.state(iterate)?.coef)
    }

    /// Predictions of `iterate` at the test points: f_0(X*) + Σ_j K_j(X*, X) A_j (M×C).
    pub fn predict(&self, test: &TestSet<R::Kernels>, iterate: Iterate) -> Result<Array2<f64>> {
        self.check_test(test)?;
        let state = self.state(iterate)?;
        let mut out = match &test.f0 {
            Some(f0) => f0.to_owned(),
            None => Array2::zeros((test.len(), self.n_outputs())),
        };
        for (j, coef) in state.coef.iter().enumerate() {
            general_mat_mul(1.0, &test.kernels.block(j), coef, 1.0, &mut out);
        }
        Ok(out)
    }

    /// One step on training example `b` with the schedule's current rate (epoch counter
    /// unchanged), for driving the dynamics step by step.
    pub fn step(&mut self, b: usize) -> Result<()> {
        self.check_usable()?;
        if b >= self.n_train() {
            return Err(invalid(
                "b",
                b,
                &format!("example index must be < N = {}", self.n_train()),
            ));
        }
        let eta = self.current_rate(self.epochs_done + 1);
        let result = self.step_inner(b, eta, self.epochs_done + 1, 0);
        if result.is_ok() {
            self.check_states_finite(self.epochs_done + 1)?;
        }
        result
    }

    /// One epoch over all N examples (seeded shuffle unless `shuffle` is off), then the
    /// metrics of the reported iterate on the training set and, if given, `test`.
    pub fn run_epoch(&mut self, test: Option<&TestSet<R::Kernels>>) -> Result<EpochRecord> {
        self.check_usable()?;
        if let Some(t) = test {
            self.check_test(t)?;
        }
        let start = Instant::now();
        let epoch = self.epochs_done + 1;
        if self.config.shuffle {
            self.order.shuffle(&mut self.rng);
        }
        let mut eta = self.config.learning_rate;
        for i in 0..self.order.len() {
            let b = self.order[i];
            eta = self.current_rate(epoch);
            self.step_inner(b, eta, epoch, i + 1)?;
        }
        let seconds = start.elapsed().as_secs_f64();
        self.epochs_done = epoch;
        self.check_states_finite(epoch)?;
        let mut record = EpochRecord {
            epoch,
            learning_rate: eta,
            train_loss: 0.0,
            train_accuracy: None,
            test_loss: None,
            test_accuracy: None,
            seconds,
        };
        let (loss, acc) = self.metrics(
            self.state(self.config.report)?.train.view(),
            self.targets.view(),
        );
        if !loss.is_finite() {
            return Err(self.diverge(format!(
                "mean training loss {loss} at the end of epoch {epoch}, step {}; lower the learning rate",
                self.n_train()
            )));
        }
        record.train_loss = loss;
        record.train_accuracy = acc;
        if let Some(test) = test {
            if let Some(y) = &test.targets {
                let pred = self.predict(test, self.config.report)?;
                let (loss, acc) = self.metrics(pred.view(), y.view());
                if !loss.is_finite() {
                    return Err(self.diverge(format!(
                        "mean test loss {loss} at the end of epoch {epoch}, step {}; lower the learning rate",
                        self.n_train()
                    )));
                }
                record.test_loss = Some(loss);
                record.test_accuracy = acc;
            }
        }
        Ok(record)
    }

    /// `epochs` epochs; returns the history.
    pub fn fit(&mut self, epochs: usize, test: Option<&TestSet<R::Kernels>>) -> Result<History> {
        self.fit_with(epochs, test, |_| {})
    }

    /// `epochs` epochs, calling `callback` after each with its record; returns the history.
    pub fn fit_with(
        &mut self,
        epochs: usize,
        test: Option<&TestSet<R::Kernels>>,
        mut callback: impl FnMut(&EpochRecord),
    ) -> Result<History> {
        let mut history = History::default();
        for _ in 0..epochs {
            let record = self.run_epoch(test)?;
            callback(&record);
            history.epochs.push(record);
        }
        Ok(history)
    }

    fn current_rate(&self, epoch: usize) -> f64 {
        self.config.schedule.rate(
            self.config.learning_rate,
            epoch,
            self.steps_done,
            self.n_train(),
        )
    }

    /// The per-step update; O(N C · blocks) and no allocation. `step_in_epoch` is 1-based,
    /// 0 for a [`Trainer::step`] call (used in the divergence message only).
    fn step_inner(&mut self, b: usize, eta: f64, epoch: usize, step_in_epoch: usize) -> Result<()> {
        let c = self.n_outputs();
        for (dst, src) in self.fb.iter_mut().zip(self.last.train.row(b)) {
            *dst = *src;
        }
        let (loss, y_b) = (self.config.loss, row_slice(&self.targets, b));
        if R::SCALE_FREE {
            loss.gradient_direction(&self.fb, y_b, &mut self.chi);
        } else {
            loss.gradient(&self.fb, y_b, &mut self.chi);
        }
        if let Some(bad) = self
            .chi
            .iter()
            .chain(&self.fb)
            .find(|v| !v.is_finite())
            .copied()
        {
            let at = if step_in_epoch == 0 {
                format!("Trainer::step call {} overall", self.steps_done + 1)
            } else {
                format!("epoch {epoch}, step {step_in_epoch}")
            };
            return Err(self.diverge(format!(
                "loss gradient {bad} at {at} (training example {b}); lower the learning rate"
            )));
        }
        self.rule.direction(&self.chi, &mut self.u);

        match (self.config.momentum, self.momentum.as_mut()) {
            (Some(beta), Some(m)) => {
                // M ← βM + U_t, then f ← f − η(1−β) M (docs/math.md §5).
                m.train.map_inplace(|v| *v *= beta);
                for (j, coef) in m.coef.iter_mut().enumerate() {
                    let uj = &self.u[j * c..(j + 1) * c];
                    coef.map_inplace(|v| *v *= beta);
                    for (v, &x) in coef.row_mut(b).iter_mut().zip(uj) {
                        *v += x;
                    }
                    add_outer(&mut m.train, 1.0, row_slice(&self.columns[j], b), uj);
                }
                let s = -eta * (1.0 - beta);
                for (a, mc) in self.last.coef.iter_mut().zip(&m.coef) {
                    a.scaled_add(s, mc);
                }
                self.last.train.scaled_add(s, &m.train);
            }
            _ => {
                for (j, coef) in self.last.coef.iter_mut().enumerate() {
                    let uj = &self.u[j * c..(j + 1) * c];
                    for (v, &x) in coef.row_mut(b).iter_mut().zip(uj) {
                        *v -= eta * x;
                    }
                    add_outer(
                        &mut self.last.train,
                        -eta,
                        row_slice(&self.columns[j], b),
                        uj,
                    );
                }
            }
        }
        self.steps_done += 1;

        if let Some(mean) = self.mean.as_mut() {
            // f̄_t = f̄_{t−1} + (f_t − f̄_{t−1}) / t.
            let w = 1.0 / self.steps_done as f64;
            let blend = |avg: &mut Array2<f64>, cur: &Array2<f64>| {
                Zip::from(avg).and(cur).for_each(|a, &x| *a += w * (x - *a));
            };
            for (a, cur) in mean.coef.iter_mut().zip(&self.last.coef) {
                blend(a, cur);
            }
            blend(&mut mean.train, &self.last.train);
        }
        if let (Some(gamma), Some(ema)) = (self.config.ema, self.ema.as_mut()) {
            // e_t = γ e_{t−1} + (1−γ) f_t.
            let blend = |avg: &mut Array2<f64>, cur: &Array2<f64>| {
                Zip::from(avg)
                    .and(cur)
                    .for_each(|a, &x| *a = gamma * *a + (1.0 - gamma) * x);
            };
            for (a, cur) in ema.coef.iter_mut().zip(&self.last.coef) {
                blend(a, cur);
            }
            blend(&mut ema.train, &self.last.train);
        }
        Ok(())
    }

    /// Every tracked iterate must stay finite: a model with a NaN is never returned.
    fn check_states_finite(&mut self, epoch: usize) -> Result<()> {
        fn first_bad(state: &FunctionState) -> Option<f64> {
            let mut all = state
                .train
                .iter()
                .chain(state.coef.iter().flat_map(|a| a.iter()));
            all.find(|v| !v.is_finite()).copied()
        }
        let states = [
            ("last iterate", Some(&self.last)),
            ("momentum", self.momentum.as_ref()),
            ("running mean", self.mean.as_ref()),
            ("EMA", self.ema.as_ref()),
        ];
        let found = states
            .into_iter()
            .find_map(|(name, s)| s.and_then(first_bad).map(|bad| (name, bad)));
        match found {
            Some((name, bad)) => Err(self.diverge(format!(
                "{name} reached {bad} in epoch {epoch}, by step {} overall; lower the learning rate",
                self.steps_done
            ))),
            None => Ok(()),
        }
    }

    fn diverge(&mut self, what: String) -> Error {
        self.failure = Some(what.clone());
        Error::Diverged { what }
    }

    pub(crate) fn check_usable(&self) -> Result<()> {
        match &self.failure {
            Some(what) => Err(Error::Diverged {
                what: format!("(earlier) {what}"),
            }),
            None => Ok(()),
        }
    }

    fn state(&self, iterate: Iterate) -> Result<&FunctionState> {
        match iterate {
            Iterate::Last => Ok(&self.last),
            Iterate::RunningMean => self.mean.as_ref().ok_or_else(|| {
                invalid(
                    "iterate",
                    "RunningMean",
                    "set `running_mean: true` to track it",
                )
            }),
            Iterate::Ema => self
                .ema
                .as_ref()
                .ok_or_else(|| invalid("iterate", "Ema", "set `ema: Some(γ)` to track it")),
        }
    }

    fn check_test(&self, test: &TestSet<R::Kernels>) -> Result<()> {
        if test.kernels.cols() != self.n_train() {
            return Err(Error::ShapeMismatch {
                what: "columns of the test kernel (training examples) vs the training set size N"
                    .into(),
                expected: self.n_train(),
                found: test.kernels.cols(),
            });
        }
        if let Some(y) = &test.targets {
            if y.ncols() != self.n_outputs() {
                return Err(Error::ShapeMismatch {
                    what: "columns of the test targets vs the training targets (outputs C)".into(),
                    expected: self.n_outputs(),
                    found: y.ncols(),
                });
            }
        }
        match (&test.f0, self.has_f0) {
            (Some(f0), true) if f0.ncols() != self.n_outputs() => Err(Error::ShapeMismatch {
                what: "columns of f_0 on the test set vs the outputs C".into(),
                expected: self.n_outputs(),
                found: f0.ncols(),
            }),
            (None, true) => Err(invalid(
                "test f_0",
                "missing",
                "the training set has an f_0, so the test set needs f_0(X*) too (TestSet::with_f0)",
            )),
            (Some(_), false) => Err(invalid(
                "test f_0",
                "given",
                "the training set has no f_0 (f_0 = 0): give f_0 on both sets or on neither",
            )),
            _ => Ok(()),
        }
    }

    /// Mean loss and arg-max accuracy (None for C = 1) of values `f` against `y`.
    fn metrics(&self, f: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> (f64, Option<f64>) {
        let loss = self.config.loss;
        let mut total = 0.0;
        let mut hits = 0usize;
        for (fr, yr) in f.rows().into_iter().zip(y.rows()) {
            let (fr, yr) = (fr.to_vec(), yr.to_vec());
            total += loss.value(&fr, &yr);
            hits += usize::from(argmax(&fr) == argmax(&yr));
        }
        let m = f.nrows() as f64;
        let acc = (f.ncols() > 1).then(|| hits as f64 / m);
        (total / m, acc)
    }
}

/// Row `b` of a standard-layout matrix as a slice.
fn row_slice(a: &Array2<f64>, b: usize) -> &[f64] {
    let c = a.ncols();
    &a.as_slice().expect("kept in standard layout")[b * c..(b + 1) * c]
}

/// f[a, :] += alpha · k[a] · u for every row a (a rank-one update, contiguous in f and k).
fn add_outer(f: &mut Array2<f64>, alpha: f64, k: &[f64], u: &[f64]) {
    let c = u.len();
    let fs = f.as_slice_mut().expect("kept in standard layout");
    for (row, &ka) in fs.chunks_exact_mut(c).zip(k) {
        let s = alpha * ka;
        for (v, &x) in row.iter_mut().zip(u) {
            *v += s * x;
        }
    }
}

/// Returns `k` (N×N, `k[(a, b)] = K(x_a, x_b)`) re-laid out so that row b holds the column
/// K(X, x_b) contiguously: a free view change for column-major input, an in-place
/// (tiled) transpose for row-major input, a copy only for other layouts.
fn columns_contiguous(k: Array2<f64>) -> Array2<f64> {
    if k.t().is_standard_layout() {
        return k.reversed_axes();
    }
    let mut k = if k.is_standard_layout() {
        k
    } else {
        k.as_standard_layout().into_owned()
    };
    const TILE: usize = 64;
    let n = k.nrows();
    let s = k.as_slice_mut().expect("standard layout");
    for i0 in (0..n).step_by(TILE) {
        for j0 in (i0..n).step_by(TILE) {
            for i in i0..(i0 + TILE).min(n) {
                for j in j0.max(i + 1)..(j0 + TILE).min(n) {
                    s.swap(i * n + j, j * n + i);
                }
            }
        }
    }
    k
}

/// `a` in row-major layout, without a copy when it already is.
fn standard(a: Array2<f64>) -> Array2<f64> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}
