//! Options of the function-space trainer: learning-rate schedules, momentum, iterate
//! averaging and which iterate is reported (docs/math.md §5, "exact extensions").

use crate::error::{Error, Result};
use crate::loss::Loss;

/// Learning-rate schedule η_t applied to [`TrainConfig::learning_rate`] η (docs/math.md §5).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Schedule {
    /// η_t = η.
    #[default]
    Constant,
    /// η_t = η/√e during epoch e = 1, 2, …
    InverseSqrtEpoch,
    /// η_t = η (1 − t/T) at global step t = 0, 1, …, with T = `epochs`·N; 0 after T.
    LinearDecay {
        /// Number of epochs over which the rate reaches zero.
        epochs: usize,
    },
}

impl Schedule {
    /// The rate at 1-based `epoch` and 0-based global `step`, for N = `n_train`.
    pub fn rate(&self, base: f64, epoch: usize, step: u64, n_train: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::InverseSqrtEpoch => base / (epoch.max(1) as f64).sqrt(),
            Schedule::LinearDecay { epochs } => {
                let total = (epochs as f64) * (n_train as f64);
                base * (1.0 - step as f64 / total).max(0.0)
            }
        }
    }
}

/// Which iterate of f is reported in the history and predicted (docs/math.md §5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Iterate {
    /// The current f_t.
    #[default]
    Last,
    /// (1/t) Σ_{s=1..t} f_s, the mean over all steps so far (f_0 before the first step).
    RunningMean,
    /// e_t = γ e_{t−1} + (1−γ) f_t with e_0 = f_0 (no bias correction), γ = [`TrainConfig::ema`].
    Ema,
}

/// Everything that shapes a training run besides the data.
///
/// ```
/// # use infw_runtime::train::{TrainConfig, Schedule, Iterate};
/// let cfg = TrainConfig { momentum: Some(0.9), ema: Some(0.99), report: Iterate::Ema,
///                         schedule: Schedule::LinearDecay { epochs: 20 }, ..TrainConfig::new(0.1) };
/// assert!(cfg.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrainConfig {
    /// Base learning rate η > 0 (finite).
    pub learning_rate: f64,
    /// Per-example loss; MSE by default, which is also the right choice for the Adam
    /// limit (see [`super::AdamLimit`]: under cross-entropy it never settles, docs/math.md §5).
    pub loss: Loss,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Heavy-ball momentum β ∈ [0, 1) on the update: M ← βM + U_t, f ← f − η(1−β)M.
    /// `None` skips the extra state; `Some(0.0)` is mathematically the same as `None`.
    pub momentum: Option<f64>,
    /// Track the running mean of f over steps (O(N C) extra memory).
    pub running_mean: bool,
    /// Track the exponential mean of f over steps with decay γ ∈ [0, 1).
    pub ema: Option<f64>,
    /// The iterate used for the history (it must be tracked).
    pub report: Iterate,
    /// Shuffle the examples each epoch (seeded). Off: examples 0..N in order.
    pub shuffle: bool,
    /// Seed of the shuffling.
    pub seed: u64,
}

impl TrainConfig {
    /// Constant rate η, MSE, no momentum, no averaging, shuffled with seed 0.
    pub fn new(learning_rate: f64) -> Self {
        Self {
            learning_rate,
            loss: Loss::Mse,
            schedule: Schedule::Constant,
            momentum: None,
            running_mean: false,
            ema: None,
            report: Iterate::Last,
            shuffle: true,
            seed: 0,
        }
    }

    /// `Error::InvalidArgument` for a rate, β, γ or schedule out of range, or a reported
    /// iterate that is not tracked.
    pub fn validate(&self) -> Result<()> {
        let lr = self.learning_rate;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(invalid("learning_rate", lr, "must be finite and > 0"));
        }
        if let Some(beta) = self.momentum {
            if !(0.0..1.0).contains(&beta) {
                return Err(invalid("momentum", beta, "must lie in [0, 1)"));
            }
        }
        if let Some(gamma) = self.ema {
            if !(0.0..1.0).contains(&gamma) {
                return Err(invalid("ema", gamma, "must lie in [0, 1)"));
            }
        }
        if let Schedule::LinearDecay { epochs: 0 } = self.schedule {
            return Err(invalid(
                "schedule",
                "LinearDecay { epochs: 0 }",
                "decay needs at least one epoch",
            ));
        }
        match self.report {
            Iterate::RunningMean if !self.running_mean => Err(invalid(
                "report",
                "RunningMean",
                "set `running_mean: true` to track it",
            )),
            Iterate::Ema if self.ema.is_none() => {
                Err(invalid("report", "Ema", "set `ema: Some(γ)` to track it"))
            }
            _ => Ok(()),
        }
    }
}

pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, reason: &str) -> Error {
    Error::InvalidArgument {
        name,
        value: value.to_string(),
        reason: reason.into(),
    }
}
