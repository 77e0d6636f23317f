//! Input validation and the ndarray ↔ faer bridge shared by the solvers (docs/math.md §5).
//! Every check returns a typed [`Error`]; nothing here panics on user input.

use crate::error::{Error, Result};
use faer::Mat;
use ndarray::{Array2, ArrayView2};

pub(crate) use crate::validate::non_empty;

pub(crate) use crate::validate::finite;

/// Checks that a dimension has the size it must have.
pub(crate) fn dim(what: &str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what: what.to_string(),
            expected,
            found,
        })
    }
}

/// Validates a training kernel K (N×N, finite, symmetric) and targets Y (N×C, finite).
///
/// Symmetry is required up to `SYMMETRY_TOL · max|K|`: a Gram matrix computed tile by tile
/// may differ from its transpose by a few roundings, but a genuinely non-symmetric matrix
/// (e.g. the Adam-limit kernels R, H of docs/math.md §4, or a K* passed by mistake) is rejected.
pub(crate) fn train_inputs(k: ArrayView2<f64>, y: ArrayView2<f64>) -> Result<()> {
    non_empty("k_train", k)?;
    dim("k_train must be square: columns", k.nrows(), k.ncols())?;
    non_empty("y", y)?;
    dim("rows of y (one per training example)", k.nrows(), y.nrows())?;
    finite("k_train", k)?;
    finite("y", y)?;
    symmetric("k_train", k)
}

/// Checks that a finite square matrix is symmetric up to `SYMMETRY_TOL · max|K|` (see
/// [`train_inputs`]); `name` is reported in the error.
pub(crate) fn symmetric(name: &'static str, k: ArrayView2<f64>) -> Result<()> {
    let scale = k.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let n = k.nrows();
    for i in 0..n {
        for j in 0..i {
            let gap = (k[[i, j]] - k[[j, i]]).abs();
            if gap > SYMMETRY_TOL * scale {
                return Err(Error::InvalidArgument {
                    name,
                    value: format!("K[{i},{j}] = {}, K[{j},{i}] = {}", k[[i, j]], k[[j, i]]),
                    reason: format!(
                        "the kernel must be symmetric (allowed gap {SYMMETRY_TOL:e} · max|K|)"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Relative asymmetry tolerated in a training kernel: far above the few ulps a tiled Gram
/// computation produces, far below any real asymmetry.
pub(crate) const SYMMETRY_TOL: f64 = 1e-10;

/// Validates a test–train kernel K* (M×N, finite) against N training examples.
pub(crate) fn test_kernel(k_test_train: ArrayView2<f64>, n_train: usize) -> Result<()> {
    non_empty("k_test_train", k_test_train)?;
    dim(
        "columns of k_test_train (one per training example)",
        n_train,
        k_test_train.ncols(),
    )?;
    finite("k_test_train", k_test_train)
}

/// The symmetric part (K + Kᵀ)/2 of a square matrix, plus `shift` on the diagonal, as a faer
/// matrix. Symmetrising makes the factorisation independent of which triangle faer reads.
pub(crate) fn symmetric_faer(k: ArrayView2<f64>, shift: f64) -> Mat<f64> {
    let n = k.nrows();
    Mat::from_fn(n, n, |i, j| {
        let v = 0.5 * (k[[i, j]] + k[[j, i]]);
        if i == j {
            v + shift
        } else {
            v
        }
    })
}

/// Copies an ndarray matrix into a faer matrix.
pub(crate) fn to_faer(a: ArrayView2<f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

/// Copies a faer matrix into an ndarray matrix.
pub(crate) fn from_faer(m: faer::MatRef<'_, f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// Validates a square symmetric kernel given beside the training kernel (e.g. the NNGP Gram
/// matrix Σ(X, X) the NTK covariance needs): non-empty, `n × n`, finite, symmetric.
pub(crate) fn square_kernel(name: &'static str, k: ArrayView2<f64>, n: usize) -> Result<()> {
    non_empty(name, k)?;
    dim(&format!("rows of {name}"), n, k.nrows())?;
    dim(&format!("columns of {name}"), n, k.ncols())?;
    finite(name, k)?;
    symmetric(name, k)
}

/// Validates a vector: `n` entries, all finite.
pub(crate) fn vector(name: &str, v: ndarray::ArrayView1<f64>, n: usize) -> Result<()> {
    dim(&format!("length of {name}"), n, v.len())?;
    finite(name, v.insert_axis(ndarray::Axis(1)))
}
