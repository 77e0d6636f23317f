//! The training loop for finite models: epochs of seeded-shuffled mini-batches, any
//! [`Model`] with any [`Optimizer`], a per-epoch history on the training and test sets.

use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::model::{check_finite, check_input, Model, Workspace};
use super::optim::Optimizer;
use crate::loss::argmax;
use crate::{Error, Loss, Result};

/// A labelled data set: inputs (rows = examples), targets (rows × C, one-hot or real) and
/// the class labels accuracy is measured against (`None`: the arg-max of each target row).
#[derive(Clone, Copy, Debug)]
pub struct Dataset<'a> {
    /// Inputs, one example per row.
    pub x: ArrayView2<'a, f64>,
    /// Targets, one row per example.
    pub y: ArrayView2<'a, f64>,
    /// Class labels for accuracy; `None`: the arg-max of each target row.
    pub labels: Option<&'a [usize]>,
}

impl<'a> Dataset<'a> {
    /// Inputs and one-hot (or real) targets; labels are the targets' row arg-max.
    pub fn new(x: ArrayView2<'a, f64>, y: ArrayView2<'a, f64>) -> Self {
        Dataset { x, y, labels: None }
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
            None => {
                // First index of the row maximum, as `loss::argmax`.
                let row = self.y.row(i);
                let mut best = 0;
                for (k, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = k;
                    }
                }
                best
            }
        }
    }
}

/// How to train.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step; 1 is per-example training (docs/math.md §4's setting).
    pub batch_size: usize,
    /// The loss minimised (and reported).
    pub loss: Loss,
    /// Seeds the shuffling of every epoch.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 1,
            loss: Loss::Mse,
            seed: 0,
        }
    }
}

/// The measurements after one epoch. Losses and accuracies are evaluated on the whole set
/// with the parameters at the end of the epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean loss over the training set.
    pub train_loss: f64,
    /// Accuracy on the training set, in [0, 1].
    pub train_accuracy: f64,
    /// Mean loss over the test set, when one was given.
    pub test_loss: Option<f64>,
    /// Accuracy on the test set, when one was given.
    pub test_accuracy: Option<f64>,
    /// Wall time of this epoch's optimization steps, in seconds (evaluation excluded).
    pub seconds: f64,
}

/// One record per epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The records in epoch order.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// The record of the last epoch, if any.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }
}

/// Mean loss and accuracy (row arg-max vs labels) of `model` on `data`.
pub fn evaluate<M: Model + ?Sized>(
    model: &M,
    data: &Dataset<'_>,
    loss: Loss,
    ws: &mut Workspace,
) -> Result<(f64, f64)> {
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
    Ok((mean, correct as f64 / n as f64))
}

/// Trains `model` with `opt` for `config.epochs` epochs of shuffled mini-batches and returns
/// the per-epoch history; `callback` sees every record as it is made. A non-finite loss
/// stops training with `Error::Diverged` (the model keeps its last parameters).
pub fn train<M: Model + ?Sized, O: Optimizer + ?Sized>(
    model: &mut M,
    opt: &mut O,
    train_set: &Dataset<'_>,
    test_set: Option<&Dataset<'_>>,
    config: &TrainConfig,
    mut callback: Option<&mut dyn FnMut(&EpochRecord)>,
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
                (Some(l), Some(a))
            }
            None => (None, None),
        };
        let rec = EpochRecord {
            epoch,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds,
        };
        if let Some(cb) = callback.as_mut() {
            cb(&rec);
        }
        history.epochs.push(rec);
    }
    Ok(history)
}
