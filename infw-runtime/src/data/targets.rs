//! Targets and scores: one-hot encoding for MSE training (docs/math.md §5) and classification
//! accuracy by row arg-max.

use crate::error::{Error, Result};
use crate::loss::argmax;
use ndarray::{Array2, ArrayView2};

/// The most classes a dataset or a one-hot encoding may have: 2¹⁶. Far more than any
/// classification task here (mnist1d has 10), and it keeps an N × C target matrix of a
/// 60 000-example set under 32 GB; a stray label of 10⁶ once made `paper` allocate 22.8 GB.
pub const MAX_CLASSES: usize = 1 << 16;

/// The class count `1 + max(labels)` (0 for no labels), or a typed error naming the first
/// label that exceeds [`MAX_CLASSES`] (`what` names the labels and where they came from).
pub fn class_count(labels: &[usize], what: &str) -> Result<usize> {
    match labels.iter().position(|&l| l >= MAX_CLASSES) {
        Some(i) => Err(Error::InvalidArgument {
            name: "labels",
            value: format!("{} at row {i} of {what}", labels[i]),
            reason: format!("labels are class indices below {MAX_CLASSES} (2^16 classes at most)"),
        }),
        None => Ok(labels.iter().max().map_or(0, |m| m + 1)),
    }
}

/// One-hot targets, one row per label and `classes` columns, for MSE on one-hot targets
/// (docs/math.md §5). Like `jax.nn.one_hot`, a label ≥ `classes` gives an all-zero row.
/// Errors: more than [`MAX_CLASSES`] classes.
///
/// ```
/// let y = infw_runtime::data::one_hot(&[2, 0], 3)?;
/// assert_eq!(y, ndarray::array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]);
/// # Ok::<(), infw_runtime::Error>(())
/// ```
pub fn one_hot(labels: &[usize], classes: usize) -> Result<Array2<f64>> {
    if classes > MAX_CLASSES {
        return Err(Error::InvalidArgument {
            name: "classes",
            value: classes.to_string(),
            reason: format!("one-hot targets have at most {MAX_CLASSES} (2^16) classes"),
        });
    }
    let mut y = Array2::zeros((labels.len(), classes));
    for (i, &label) in labels.iter().enumerate() {
        if label < classes {
            y[[i, label]] = 1.0;
        }
    }
    Ok(y)
}

/// The fraction of rows whose arg-max score (the first on ties, [`crate::loss::argmax`]) is
/// the label. Errors: a row count that is not the number of labels, no rows or no columns,
/// a NaN score (a diverged model), or a label with no score column.
pub fn accuracy(scores: ArrayView2<f64>, labels: &[usize]) -> Result<f64> {
    crate::solve::check::non_empty("scores", scores)?;
    crate::solve::check::dim(
        "rows of scores (one per label)",
        labels.len(),
        scores.nrows(),
    )?;
    let mut correct = 0usize;
    let mut row_buf = Vec::with_capacity(scores.ncols());
    for (i, (row, &label)) in scores.rows().into_iter().zip(labels).enumerate() {
        if label >= scores.ncols() {
            return Err(Error::InvalidArgument {
                name: "labels",
                value: format!("{label} at row {i}"),
                reason: format!("the scores have only {} columns", scores.ncols()),
            });
        }
        row_buf.clear();
        row_buf.extend(row.iter().copied());
        if let Some(col) = row_buf.iter().position(|v| v.is_nan()) {
            return Err(Error::NonFinite {
                what: "scores".into(),
                row: i,
                col,
                value: f64::NAN,
            });
        }
        if argmax(&row_buf) == label {
            correct += 1;
        }
    }
    Ok(correct as f64 / labels.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn one_hot_rows_and_out_of_range() {
        let y = one_hot(&[1, 0, 5], 3).unwrap();
        assert_eq!(y, array![[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
    }

    /// Huge class counts are a typed error before allocating (2^53 classes once aborted on
    /// a 2e17-byte allocation; usize::MAX wrapped 1 + max to 0).
    #[test]
    fn class_counts_are_bounded() {
        assert!(one_hot(&[0], MAX_CLASSES).is_ok());
        assert!(matches!(
            one_hot(&[0], MAX_CLASSES + 1),
            Err(Error::InvalidArgument {
                name: "classes",
                ..
            })
        ));
        assert_eq!(
            class_count(&[3, MAX_CLASSES - 1], "t").unwrap(),
            MAX_CLASSES
        );
        for huge in [MAX_CLASSES, 1_000_000, 1 << 53, usize::MAX] {
            let e = class_count(&[1, huge], "train.csv")
                .unwrap_err()
                .to_string();
            assert!(e.contains("65536") && e.contains("row 1"), "{e}");
        }
    }

    #[test]
    fn accuracy_counts_argmax_hits_and_rejects_bad_input() {
        let s = array![[0.1, 0.9], [2.0, -1.0], [0.5, 0.5], [f64::INFINITY, 0.0]];
        // hits: row 0 (1), row 2 tie → first column 0 ≠ 1 is a miss, row 3 (0)
        assert_eq!(accuracy(s.view(), &[1, 1, 1, 0]).unwrap(), 0.5);
        assert!(matches!(
            accuracy(s.view(), &[1, 0]),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            accuracy(s.view(), &[1, 0, 2, 0]),
            Err(Error::InvalidArgument { .. })
        ));
        let nan = array![[0.0, f64::NAN]];
        assert!(matches!(
            accuracy(nan.view(), &[0]),
            Err(Error::NonFinite { row: 0, col: 1, .. })
        ));
        assert!(matches!(
            accuracy(Array2::zeros((0, 2)).view(), &[]),
            Err(Error::Empty { .. })
        ));
    }
}
