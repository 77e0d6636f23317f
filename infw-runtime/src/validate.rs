//! Input checks shared by the whole runtime (kernels, solvers, trainers, finite networks):
//! typed errors, never panics.
use crate::{Error, Result};
use ndarray::ArrayView2;

/// Rejects a matrix with no rows or no columns.
pub fn non_empty(what: &str, a: ArrayView2<f64>) -> Result<()> {
    if a.nrows() == 0 {
        return Err(Error::Empty {
            what: what.into(),
            axis: "rows",
        });
    }
    if a.ncols() == 0 {
        return Err(Error::Empty {
            what: what.into(),
            axis: "columns",
        });
    }
    Ok(())
}

/// Rejects the first NaN or infinite entry, naming its position.
pub fn finite(what: &str, a: ArrayView2<f64>) -> Result<()> {
    for ((row, col), &value) in a.indexed_iter() {
        if !value.is_finite() {
            return Err(Error::NonFinite {
                what: what.into(),
                row,
                col,
                value,
            });
        }
    }
    Ok(())
}

/// Checks one input matrix: non-empty and finite.
pub fn check_matrix(what: &str, a: ArrayView2<f64>) -> Result<()> {
    non_empty(what, a)?;
    finite(what, a)
}

/// Checks the two arguments of a kernel evaluation: each valid, same feature dimension.
pub fn check_inputs(x: ArrayView2<f64>, t: Option<ArrayView2<f64>>) -> Result<()> {
    check_matrix("first input", x)?;
    if let Some(t) = t {
        check_matrix("second input", t)?;
        if t.ncols() != x.ncols() {
            return Err(Error::ShapeMismatch {
                what: "feature dimension of the second input".into(),
                expected: x.ncols(),
                found: t.ncols(),
            });
        }
    }
    Ok(())
}
