//! What a training run reports, the same for every trainer: the function-space limits
//! ([`crate::train::Trainer`], [`crate::FunctionSpaceModel`]) and the finite networks
//! ([`crate::finite::train`]).

/// The measurements after one epoch, for the iterate that is reported. Losses and
/// accuracies are evaluated on the whole set at the end of the epoch.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Learning rate of the epoch's last step (after any schedule).
    pub learning_rate: f64,
    /// Mean per-example loss on the training set.
    pub train_loss: f64,
    /// Fraction of training rows whose arg-max is the label; `None` with one output.
    pub train_accuracy: Option<f64>,
    /// Mean loss on the test set, when one with targets was given.
    pub test_loss: Option<f64>,
    /// Test accuracy, when a test set with targets was given and there are ≥ 2 outputs.
    pub test_accuracy: Option<f64>,
    /// Wall time of the epoch's optimisation steps, in seconds (evaluation excluded).
    pub seconds: f64,
}

/// One record per epoch, in epoch order.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct History {
    /// The records in epoch order.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// The record of the last epoch, if any.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// Number of epochs recorded.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch was recorded.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// The records in epoch order.
    pub fn iter(&self) -> std::slice::Iter<'_, EpochRecord> {
        self.epochs.iter()
    }
}

impl<'a> IntoIterator for &'a History {
    type Item = &'a EpochRecord;
    type IntoIter = std::slice::Iter<'a, EpochRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.epochs.iter()
    }
}

/// `history[i]`: the record of epoch i + 1.
impl std::ops::Index<usize> for History {
    type Output = EpochRecord;
    fn index(&self, i: usize) -> &EpochRecord {
        &self.epochs[i]
    }
}
