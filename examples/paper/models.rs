//! The models of the experiment and how each is trained and scored: the two function-space
//! limits, kernel regression, and the finite networks (mini-batch and per-example).
//! Every function here trains on one set and scores on another; the caller decides
//! whether that is (fit, validation) for choosing hyper-parameters or (train, test).

use std::time::Instant;

use infw::data::{accuracy, one_hot};
use infw::finite::{
    self, Adam, Examples, FiniteNetwork, FiniteTrainConfig, Model, Optimizer, Parameterization,
    Sgd, SignDescent,
};
use infw::solve::KernelRegression;
use infw::train::{Iterate, TestSet, TrainConfig, TrainSet};
use infw::{FunctionSpaceModel, KernelMatrices, KernelProgram, LimitRule, Loss, Network};
use ndarray::{Array2, ArrayView2, Axis};

/// Seed of every initialization and every shuffle (the function-space trainer and the
/// finite training loop shuffle identically for the same seed, so the exact finite
/// counterparts of a limit see the examples in the same order as the limit).
pub const SEED: u64 = 0;

/// Examples with their one-hot targets.
pub struct Part<'a> {
    pub x: ArrayView2<'a, f64>,
    pub labels: &'a [usize],
    pub y: Array2<f64>,
}

impl<'a> Part<'a> {
    pub fn new(x: ArrayView2<'a, f64>, labels: &'a [usize], classes: usize) -> Self {
        Part {
            x,
            labels,
            y: one_hot(labels, classes).expect("Dataset bounds its classes"),
        }
    }
}

/// What a training run produced: the per-epoch score curve (accuracy on the scoring set;
/// shorter than asked when training diverged), the wall time, and the divergence epoch.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    pub acc: Vec<f64>,
    /// Mean loss on the scoring set per epoch (breaks accuracy ties when choosing).
    pub loss: Vec<f64>,
    /// For the function-space limits: the last iterate's accuracy (`acc` is the averaged one).
    pub last_iterate: Vec<f64>,
    /// Outputs on the scoring set at the end (the last iterate for the limits).
    pub outputs: Option<Array2<f64>>,
    pub seconds: f64,
    pub diverged_at: Option<usize>,
}

impl Curve {
    /// The final score, or NaN when training diverged (a diverged run has no score).
    pub fn final_accuracy(&self) -> f64 {
        self.acc
            .last()
            .copied()
            .filter(|_| self.diverged_at.is_none())
            .unwrap_or(f64::NAN)
    }
}

fn diverged<T>(r: &infw::Result<T>) -> bool {
    matches!(r, Err(infw::Error::Diverged { .. }))
}

// ---------------------------------------------------------------- kernels

/// The rows `rows` and columns `cols` of every kernel present (columns = training examples).
pub fn sub_kernels(k: &KernelMatrices, rows: &[usize], cols: &[usize]) -> KernelMatrices {
    let s = |m: &Option<Array2<f64>>| {
        m.as_ref()
            .map(|m| m.select(Axis(0), rows).select(Axis(1), cols))
    };
    KernelMatrices {
        nngp: s(&k.nngp),
        ntk: s(&k.ntk),
        readout: s(&k.readout),
        hidden: s(&k.hidden),
    }
}

fn clone_kernels(k: &KernelMatrices) -> KernelMatrices {
    KernelMatrices {
        nngp: k.nngp.clone(),
        ntk: k.ntk.clone(),
        readout: k.readout.clone(),
        hidden: k.hidden.clone(),
    }
}

/// Function-space training of limit `R` with the running mean of f over steps (the limit
/// of weight averaging, docs/math.md §5) as the scored iterate; the last iterate is kept too.
/// `k_train`: train × train kernels, `k_eval`: scoring rows × train. `f0`: the initial
/// function on (train, eval) rows; `None` is f_0 = 0, the mean of the initial GP.
#[allow(clippy::too_many_arguments)]
pub fn train_limit<R: LimitRule, K: KernelProgram + Clone>(
    net: &Network<K>,
    rule: R,
    k_train: &KernelMatrices,
    train: &Part<'_>,
    k_eval: &KernelMatrices,
    eval: &Part<'_>,
    lr: f64,
    loss: Loss,
    epochs: usize,
    f0: Option<(Array2<f64>, Array2<f64>)>,
) -> infw::Result<Curve> {
    let start = Instant::now();
    let config = TrainConfig {
        loss,
        running_mean: true,
        report: Iterate::RunningMean,
        shuffle: true,
        seed: SEED,
        ..TrainConfig::new(lr)
    };
    let mut set = TrainSet::new(R::pack(clone_kernels(k_train))?, train.y.clone())?;
    let mut test = TestSet::new(R::pack(clone_kernels(k_eval))?);
    if let Some((f_train, f_eval)) = f0 {
        set = set.with_f0(f_train)?;
        test = test.with_f0(f_eval)?;
    }
    let mut model = FunctionSpaceModel::from_train_set(net, rule, &train.x, set, config)?;
    let mut curve = Curve::default();
    for epoch in 1..=epochs {
        let r = model.fit(1, None);
        if diverged(&r) {
            curve.diverged_at = Some(epoch);
            break;
        }
        r?;
        let mean = model.predict_prepared_iterate(&test, Iterate::RunningMean)?;
        let last = model.predict_prepared_iterate(&test, Iterate::Last)?;
        if mean.iter().chain(last.iter()).any(|v| !v.is_finite()) {
            curve.diverged_at = Some(epoch);
            break;
        }
        curve.acc.push(accuracy(mean.view(), eval.labels)?);
        curve.loss.push(mean_loss(loss, mean.view(), eval.y.view()));
        curve.last_iterate.push(accuracy(last.view(), eval.labels)?);
        curve.outputs = Some(last);
    }
    curve.seconds = start.elapsed().as_secs_f64();
    Ok(curve)
}

/// Mean per-example loss of predictions `f` against targets `y`.
pub fn mean_loss(loss: Loss, f: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    let total: f64 = f
        .outer_iter()
        .zip(y.outer_iter())
        .map(|(a, b)| loss.value(&a.to_vec(), &b.to_vec()))
        .sum();
    total / f.nrows().max(1) as f64
}

/// Kernel regression K*(K + λI)⁻¹Y with λ = `ridge` · mean diag K; returns (accuracy, s).
pub fn kernel_regression(
    k_train: ArrayView2<f64>,
    train: &Part<'_>,
    k_eval: ArrayView2<f64>,
    eval: &Part<'_>,
    ridge: f64,
) -> infw::Result<(f64, f64)> {
    let start = Instant::now();
    let scale = k_train.diag().mean().unwrap_or(1.0);
    let solver = KernelRegression::fit(k_train, train.y.view(), ridge * scale)?;
    let pred = solver.predict(k_eval)?;
    let acc = accuracy(pred.view(), eval.labels)?;
    Ok((acc, start.elapsed().as_secs_f64()))
}

// ---------------------------------------------------------------- finite networks

/// Which finite model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// NTK parameterization, features learned.
    Ntk,
    /// The NTK-parameterized network's linearization around its initialization θ0;
    /// `centered` drops f(x; θ0) so that it starts at f = 0 like the limits.
    Linearized { centered: bool },
    /// Standard parameterization (the "traditional" finite model).
    Standard,
}

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    Sgd,
    /// β1 = 0.9, β2 = 0.999, ε = 1e-8.
    Adam,
    /// Sign descent with docs/math.md §4's per-tensor rates (the finite side of the Adam limit).
    SignLimit,
}

/// A finite network of `net`'s declaration, `factor` × wider.
pub fn build<K: KernelProgram>(
    net: &Network<K>,
    arch: Arch,
    factor: usize,
    input_dim: usize,
    classes: usize,
) -> infw::Result<Box<dyn Model + Send>> {
    let param = match arch {
        Arch::Standard => Parameterization::Standard,
        _ => Parameterization::Ntk,
    };
    let base: FiniteNetwork = net.finite_wider(factor, input_dim, classes, param, SEED)?;
    Ok(match arch {
        Arch::Linearized { centered } => Box::new(base.linearize(centered)),
        _ => Box::new(base),
    })
}

/// The initial outputs f(x; θ0) of the NTK-parameterized network `factor` × wider on the
/// rows of `a` and `b` (the f_0 its limit must start from to be its exact counterpart).
pub fn initial_outputs<K: KernelProgram>(
    net: &Network<K>,
    factor: usize,
    classes: usize,
    a: ArrayView2<f64>,
    b: ArrayView2<f64>,
) -> infw::Result<(Array2<f64>, Array2<f64>)> {
    let m = build(net, Arch::Ntk, factor, a.ncols(), classes)?;
    Ok((m.predict(a)?, m.predict(b)?))
}

/// Trains a finite model with mini-batches of `batch` (1 = per-example) and scores it on
/// `eval` after every epoch. A divergence ends the curve early (not an error).
#[allow(clippy::too_many_arguments)]
pub fn train_finite(
    mut model: Box<dyn Model + Send>,
    opt: Opt,
    train: &Part<'_>,
    eval: &Part<'_>,
    lr: f64,
    loss: Loss,
    epochs: usize,
    batch: usize,
) -> infw::Result<Curve> {
    let start = Instant::now();
    let mut optimizer: Box<dyn Optimizer> = match opt {
        Opt::Sgd => Box::new(Sgd::new(lr, 0.0)?),
        Opt::Adam => Box::new(Adam::new(lr, 0.9, 0.999, 1e-8)?),
        Opt::SignLimit => Box::new(SignDescent::sign_limit(lr, model.params())?),
    };
    let train_set = Examples::new(train.x.view(), train.y.view()).with_labels(train.labels);
    let eval_set = Examples::new(eval.x.view(), eval.y.view()).with_labels(eval.labels);
    let config = FiniteTrainConfig {
        epochs,
        batch_size: batch,
        loss,
        seed: SEED,
    };
    let mut acc = Vec::with_capacity(epochs);
    let mut losses = Vec::with_capacity(epochs);
    let r = finite::train_with(
        &mut *model,
        &mut *optimizer,
        &train_set,
        Some(&eval_set),
        &config,
        |r| {
            acc.push(r.test_accuracy.unwrap_or(f64::NAN));
            losses.push(r.test_loss.unwrap_or(f64::NAN));
        },
    );
    let diverged_at = if diverged(&r) {
        Some(acc.len() + 1)
    } else {
        r?;
        None
    };
    let outputs = match diverged_at {
        None => Some(model.predict(eval.x)?),
        Some(_) => None,
    };
    Ok(Curve {
        acc,
        loss: losses,
        last_iterate: vec![],
        outputs,
        seconds: start.elapsed().as_secs_f64(),
        diverged_at,
    })
}
