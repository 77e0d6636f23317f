//! Per-feature standardisation with training statistics only, so no test information leaks
//! into the features the kernels see (infw-runtime/data/README.md: the raw scales differ by
//! orders of magnitude).

use crate::error::Result;
use crate::gram::overflow::{mul_pow2, scale_exponent};
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
    /// Per feature, the power of two the column was scaled by (0 for ordinary columns):
    /// statistics and transform work on x·2^-e, so that huge or tiny finite features
    /// neither overflow nor underflow (a column [1e200, −1e200, 0] has sd ≈ 8e199).
    exponent: Vec<i32>,
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
        let mut exponent = vec![0; d];
        if n == 0 {
            return Self {
                mean,
                scale,
                exponent,
            };
        }
        for (j, col) in x.columns().into_iter().enumerate() {
            let first = col[0];
            if col.iter().all(|&v| v == first) {
                mean[j] = first; // exact, so the training column becomes exactly 0
                continue;
            }
            let e = scale_exponent(col.iter().fold(0.0, |m: f64, v| m.max(v.abs())));
            let y = |v: f64| mul_pow2(v, -e);
            let mu = col.iter().map(|&v| y(v)).sum::<f64>() / n as f64;
            let var = col.iter().map(|&v| (y(v) - mu) * (y(v) - mu)).sum::<f64>() / n as f64;
            let sd = var.sqrt();
            mean[j] = mul_pow2(mu, e);
            if sd > 0.0 && sd.is_finite() {
                scale[j] = mul_pow2(sd, e);
                exponent[j] = e;
            }
        }
        Self {
            mean,
            scale,
            exponent,
        }
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
        let out = self.apply(x);
        check::finite(
            "standardised x (a value too far outside the training range)",
            out.view(),
        )?;
        Ok(out)
    }

    /// Standardises without validation; columns beyond the fitted ones are copied unchanged.
    pub(crate) fn apply(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut out = x.to_owned();
        for (j, mut col) in out.columns_mut().into_iter().enumerate() {
            if let (Some(&mu), Some(&sd)) = (self.mean.get(j), self.scale.get(j)) {
                match self.exponent[j] {
                    0 => col.mapv_inplace(|v| (v - mu) / sd),
                    e => {
                        let (mu, sd) = (mul_pow2(mu, -e), mul_pow2(sd, -e));
                        col.mapv_inplace(|v| (mul_pow2(v, -e) - mu) / sd);
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    /// Population mean and sd of a column, computed in exact-enough arithmetic on the
    /// column divided by its largest magnitude (an independent route from the fit's).
    fn reference(col: &[f64]) -> (f64, f64) {
        let m = col.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let n = col.len() as f64;
        let mu = col.iter().map(|v| v / m).sum::<f64>() / n;
        let var = col.iter().map(|v| (v / m - mu).powi(2)).sum::<f64>() / n;
        (mu * m, var.sqrt() * m)
    }

    /// Finite data at the edge of f64: [1e308, 1e308, 1.7e308] once gave −inf (the sum
    /// overflowed), [1e200, −1e200, 0] was left unscaled (the variance overflowed).
    #[test]
    fn huge_finite_features_are_standardised_without_overflow() {
        for col in [
            vec![1e308, 1e308, 1.7e308],
            vec![1e200, -1e200, 0.0],
            vec![1e-200, -3e-200, 2e-200],
            vec![1.7e308, -1.7e308, -1.7e308],
        ] {
            let x = Array2::from_shape_vec((3, 1), col.clone()).unwrap();
            let s = Standardizer::fit(x.view()).unwrap();
            let (mu, sd) = reference(&col);
            // Two routes through a handful of roundings each.
            assert!(
                (s.mean()[0] - mu).abs() <= 8.0 * f64::EPSILON * mu.abs().max(sd),
                "{col:?}"
            );
            assert!(
                (s.scale()[0] - sd).abs() <= 8.0 * f64::EPSILON * sd,
                "{col:?}"
            );
            let z = s.transform(x.view()).unwrap();
            // Standardised training data has mean 0 and population sd 1.
            let (zm, zs) = (z.sum() / 3.0, (z.mapv(|v| v * v).sum() / 3.0).sqrt());
            assert!(
                zm.abs() < 1e-15 && (zs - 1.0).abs() < 1e-15,
                "{col:?}: {z:?}"
            );
        }
    }

    #[test]
    fn a_test_value_beyond_f64_after_scaling_is_an_error() {
        let s = Standardizer::fit(array![[0.0], [1e-300]].view()).unwrap();
        assert!(matches!(
            s.transform(array![[1e300]].view()),
            Err(crate::Error::NonFinite { .. })
        ));
    }
}
