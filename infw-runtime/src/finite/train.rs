//! The training loop for finite models: epochs of seeded-shuffled mini-batches, any
//! [`Model`] with any [`Optimizer`], a per-epoch [`History`] on the training and test sets
//! (the same records as the function-space trainer's).

use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::model::{check_finite, check_input, Model, Workspace};
use super::optim::Optimizer;
use crate::history::{EpochRecord, History};
use crate::loss::argmax;
use crate::{Error, Loss, Result};

/// Labelled examples, borrowed: inputs (rows = examples), targets (rows × C, one-hot or
/// real) and the class labels accuracy is measured against (`None`: the arg-max of each
/// target row). (A loaded train/test split is a [`crate::data::Dataset`].)
#[derive(Clone, Copy, Debug)]
pub struct Examples<'a> {
    /// Inputs, one example per row.
    pub x: ArrayView2<'a, f64>,
    /// Targets, one row per example.
    pub y: ArrayView2<'a, f64>,
    /// Class labels for accuracy; `None`: the arg-max of each target row.
    pub labels: Option<&'a [usize]>,
}

impl<'a> Examples<'a> {
    /// Inputs and one-hot (or real) targets; labels are the targets' row arg-max.
    pub fn new(x: ArrayView2<'a, f64>, y: ArrayView2<'a, f64>) -> Self {
        Examples { x, y, labels: None }
    }

    /// The same examples, scored against `labels` (checked when training starts).
    pub fn with_labels(self, labels: &'a [usize]) -> Self {
        Examples {
            labels: Some(labels),
            ..self
        }
    }

    fn validate(&self, d: usize, c: usize, what: &str) -> Result<()> {
        check_input(self.x, d, what)?;
        check_finite(self.x, what)?;
        check_finite(self.y, what)?;
        if self.y.nrows() != self.x.nrows() {
            return Err(Error::ShapeMismatch {
                what: format!("{what}: target rows vs input rows"),
                expected: self.x.nrows(),
                found: self.y.nrows(),
            });
        }
        if self.y.ncols() != c {
            return Err(Error::ShapeMismatch {
                what: format!("{what}: target columns vs network outputs"),
                expected: c,
                found: self.y.ncols(),
            });
        }
        if let Some(l) = self.labels {
            if l.len() != self.x.nrows() {
                return Err(Error::ShapeMismatch {
                    what: format!("{what}: labels vs input rows"),
                    expected: self.x.nrows(),
                    found: l.len(),
                });
            }
            if let Some(&bad) = l.iter().find(|&&k| k >= c) {
                return Err(Error::InvalidArgument {
                    name: "labels",
                    value: bad.to_string(),
                    reason: format!("class labels must be < the {c} outputs"),
                });
            }
        }
        Ok(())
    }

    fn label(&self, i: usize) -> usize {
        match self.labels {
            Some(l) => l[i],
            None => argmax(self.y.row(i)),
        }
    }
}

/// How to train a finite network (the function-space limits have their own
/// [`crate::train::TrainConfig`]; the learning rate lives in the [`Optimizer`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FiniteTrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step; 1 is per-example training (docs/math.md §4's setting).
    pub batch_size: usize,
    /// The loss minimised (and reported).
    pub loss: Loss,
    /// Seeds the shuffling of every epoch.
    pub seed: u64,
}

impl Default for FiniteTrainConfig {
    fn default() -> Self {
        FiniteTrainConfig {
            epochs: 10,
            batch_size: 1,
            loss: Loss::Mse,
            seed: 0,
        }
    }
}

/// Mean loss and accuracy (row arg-max vs labels; `None` with one output) of `model` on
/// `data`.
pub fn evaluate<M: Model + ?Sized>(
    model: &M,
    data: &Examples<'_>,
    loss: Loss,
    ws: &mut Workspace,
) -> Result<(f64, Option<f64>)> {
    data.validate(model.input_dim(), model.outputs(), "evaluation set")?;
    let f = model.predict_with(data.x, ws)?;
    let n = data.x.nrows();
    let mut total = 0.0;
    let mut correct = 0usize;
    let mut frow = vec![0.0; model.outputs()];
    let mut yrow = vec![0.0; model.outputs()];
    for i in 0..n {
        frow.iter_mut().zip(f.row(i)).for_each(|(d, &v)| *d = v);
        yrow.iter_mut()
            .zip(data.y.row(i))
            .for_each(|(d, &v)| *d = v);
        total += loss.value(&frow, &yrow);
        if argmax(&frow) == data.label(i) {
            correct += 1;
        }
    }
    let mean = total / n as f64;
    if !mean.is_finite() {
        return Err(Error::Diverged {
            what: format!("mean loss on the evaluation set = {mean}"),
        });
    }
    let accuracy = (model.outputs() > 1).then(|| correct as f64 / n as f64);
    Ok((mean, accuracy))
}

/// Trains `model` with `opt` for `config.epochs` epochs of shuffled mini-batches and returns
/// the per-epoch history. A non-finite loss stops training with `Error::Diverged` (the
/// model keeps its last parameters).
pub fn train<M: Model + ?Sized, O: Optimizer + ?Sized>(
    model: &mut M,
    opt: &mut O,
    train_set: &Examples<'_>,
    test_set: Option<&Examples<'_>>,
    config: &FiniteTrainConfig,
) -> Result<History> {
    train_with(model, opt, train_set, test_set, config, |_| {})
}

/// Like [`train`], calling `callback` after every epoch with its record.
pub fn train_with<M: Model + ?Sized, O: Optimizer + ?Sized>(
    model: &mut M,
    opt: &mut O,
    train_set: &Examples<'_>,
    test_set: Option<&Examples<'_>>,
    config: &FiniteTrainConfig,
    mut callback: impl FnMut(&EpochRecord),
) -> Result<History> {
    let (d, c) = (model.input_dim(), model.outputs());
    train_set.validate(d, c, "training set")?;
    if let Some(t) = test_set {
        t.validate(d, c, "test set")?;
    }
    if config.batch_size == 0 {
        return Err(Error::InvalidArgument {
            name: "batch_size",
            value: "0".into(),
            reason: "a mini-batch needs at least one example".into(),
        });
    }
    let n = train_set.x.nrows();
    let bs = config.batch_size.min(n);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut ws = model.workspace();
    let mut grad = model.params().zeros_like();
    let mut xb = Array2::zeros((bs, d));
    let mut yb = Array2::zeros((bs, c));
    let mut history = History::default();
    for epoch in 1..=config.epochs {
        order.shuffle(&mut rng);
        let start = Instant::now();
        for batch in order.chunks(bs) {
            let m = batch.len();
            for (r, &i) in batch.iter().enumerate() {
                xb.row_mut(r).assign(&train_set.x.row(i));
                yb.row_mut(r).assign(&train_set.y.row(i));
            }
            let (xv, yv) = (
                xb.slice(ndarray::s![..m, ..]),
                yb.slice(ndarray::s![..m, ..]),
            );
            model.loss_gradient(xv, yv, config.loss, &mut grad, &mut ws)?;
            opt.step(model.params_mut(), &grad)?;
        }
        let seconds = start.elapsed().as_secs_f64();
        let (train_loss, train_accuracy) = evaluate(model, train_set, config.loss, &mut ws)?;
        let (test_loss, test_accuracy) = match test_set {
            Some(t) => {
                let (l, a) = evaluate(model, t, config.loss, &mut ws)?;
                (Some(l), a)
            }
            None => (None, None),
        };
        let rec = EpochRecord {
            epoch,
            learning_rate: opt.learning_rate(),
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds,
        };
        callback(&rec);
        history.epochs.push(rec);
    }
    Ok(history)
}
