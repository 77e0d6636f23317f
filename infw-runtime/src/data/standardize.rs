//! Per-feature standardisation with training statistics only, so no test information leaks
//! into the features the kernels see (data/README.md: the raw scales differ by orders of
//! magnitude).

use crate::error::Result;
use crate::solve::check;
use ndarray::{Array1, Array2, ArrayView2};

/// Per-feature mean and standard deviation of a training set; [`transform`](Self::transform)
/// maps x to (x − mean) / sd.
///
/// The sd is the population one (divide by N), as scikit-learn's `StandardScaler`. A feature
/// that is constant on the training set (all values equal) keeps mean = that value and
/// sd = 1: it becomes exactly 0 on train, and stays centred but unscaled on test.
///
/// ```
/// use infw_runtime::data::Standardizer;
/// use ndarray::array;
/// let s = Standardizer::fit(array![[1.0, 5.0], [3.0, 5.0]].view())?;
/// assert_eq!(s.transform(array![[3.0, 6.0]].view())?, array![[1.0, 1.0]]);
/// # Ok::<(), infw_runtime::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    mean: Array1<f64>,
    scale: Array1<f64>,
}

impl Standardizer {
    /// Fits the statistics on a non-empty, finite training matrix (one row per example).
    pub fn fit(x_train: ArrayView2<f64>) -> Result<Self> {
        check::non_empty("x_train", x_train)?;
        check::finite("x_train", x_train)?;
        Ok(Self::fit_lenient(x_train))
    }

    /// Fits without validation: with no rows, every feature gets mean 0 and sd 1.
    pub(crate) fn fit_lenient(x: ArrayView2<f64>) -> Self {
        let n = x.nrows();
        let d = x.ncols();
        let mut mean = Array1::zeros(d);
        let mut scale = Array1::ones(d);
        if n == 0 {
            return Self { mean, scale };
        }
        for (j, col) in x.columns().into_iter().enumerate() {
            let first = col[0];
            if col.iter().all(|&v| v == first) {
                mean[j] = first; // exact, so the training column becomes exactly 0
                continue;
            }
            let mu = col.sum() / n as f64;
            let var = col.iter().map(|&v| (v - mu) * (v - mu)).sum::<f64>() / n as f64;
            let sd = var.sqrt();
            mean[j] = mu;
            if sd > 0.0 && sd.is_finite() {
                scale[j] = sd;
            }
        }
        Self { mean, scale }
    }

    /// Standardises rows with the fitted statistics; the column count must match the
    /// training data and the values must be finite.
    pub fn transform(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        check::dim(
            "features (columns) to standardise",
            self.mean.len(),
            x.ncols(),
        )?;
        check::finite("x", x)?;
        Ok(self.apply(x))
    }

    /// Standardises without validation; columns beyond the fitted ones are copied unchanged.
    pub(crate) fn apply(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut out = x.to_owned();
        for (j, mut col) in out.columns_mut().into_iter().enumerate() {
            if let (Some(&mu), Some(&sd)) = (self.mean.get(j), self.scale.get(j)) {
                col.mapv_inplace(|v| (v - mu) / sd);
            }
        }
        out
    }

    /// The per-feature training means.
    pub fn mean(&self) -> &Array1<f64> {
        &self.mean
    }

    /// The per-feature divisors: the training sd, or 1 for constant features.
    pub fn scale(&self) -> &Array1<f64> {
        &self.scale
    }
}
