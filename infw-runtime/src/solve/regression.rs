//! Kernel regression, the t = ∞ limit of NTK gradient flow with a ridge (docs/math.md §5):
//! f(X*) = K* (K + λI)⁻¹ Y, solved by a Cholesky factorisation that is kept for reuse.

use super::check;
use super::predictive::{self, Gaussian, TestTestKernel};
use crate::error::{Error, Result};
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::{Mat, Par, Side};
use ndarray::{Array2, ArrayView2};

/// Kernel (ridge) regression with its Cholesky factor of K + λI kept (docs/math.md §5).
///
/// The coefficients α = (K + λI)⁻¹ Y are computed once by two triangular solves; predictions
/// are K* α. With λ = 0 on a singular kernel (duplicate rows, fewer features than examples
/// with a linear kernel) [`fit`](Self::fit) returns [`Error::NotPositiveDefinite`].
///
/// ```
/// use infw_runtime::solve::KernelRegression;
/// use ndarray::array;
/// let k = array![[1.0, 0.0], [0.0, 4.0]];
/// let fit = KernelRegression::fit(k.view(), array![[1.0], [2.0]].view(), 0.0)?;
/// assert_eq!(fit.coefficients()[[1, 0]], 0.5);
/// # Ok::<(), infw_runtime::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KernelRegression {
    /// L, the lower Cholesky factor of K + λI (faer's `Llt::L`, upper triangle zero): kept
    /// as a matrix, not as faer's `Llt`, so that a saved model gets it back without
    /// refactorising (the `serde` feature, `crate::persist`).
    pub(crate) factor: Mat<f64>,
    pub(crate) alpha: Array2<f64>,
    pub(crate) ridge: f64,
}

impl KernelRegression {
    /// Factorises K + ridge·I (K: N×N symmetric kernel on the training set, Y: N×C targets)
    /// and solves for the coefficients α = (K + ridge·I)⁻¹ Y.
    ///
    /// Errors: shape mismatches, empty or non-finite inputs, a non-symmetric K, a negative
    /// or non-finite ridge, and [`Error::NotPositiveDefinite`] when K + ridge·I is not
    /// positive definite *numerically*: either faer's Cholesky meets a non-positive pivot,
    /// or a pivot ℓ_ii² falls below N·ε·max_i (K + λI)_ii. Every Cholesky pivot is at least
    /// the smallest eigenvalue, so the second case certifies a condition number above
    /// 1/(N·ε), where the solution carries no correct digit; a ridge is then required.
    pub fn fit(k_train: ArrayView2<f64>, y: ArrayView2<f64>, ridge: f64) -> Result<Self> {
        check::train_inputs(k_train, y)?;
        if !(ridge.is_finite() && ridge >= 0.0) {
            return Err(Error::InvalidArgument {
                name: "ridge",
                value: ridge.to_string(),
                reason: "the ridge must be finite and non-negative".into(),
            });
        }
        let n = k_train.nrows();
        let a = check::symmetric_faer(k_train, ridge);
        let max_diag = (0..n).map(|i| a[(i, i)]).fold(f64::NEG_INFINITY, f64::max);
        if !max_diag.is_finite() {
            return Err(Error::InvalidArgument {
                name: "ridge",
                value: ridge.to_string(),
                reason: "K + ridge·I overflows f64".into(),
            });
        }
        let llt = a.llt(Side::Lower).map_err(|e| Error::NotPositiveDefinite {
            detail: format!("Cholesky of K + {ridge}·I failed: {e:?}"),
        })?;
        let floor = n as f64 * f64::EPSILON * max_diag;
        let l = llt.L();
        for i in 0..n {
            let pivot = l[(i, i)] * l[(i, i)];
            if pivot.is_nan() || pivot <= floor {
                return Err(Error::NotPositiveDefinite {
                    detail: format!(
                        "Cholesky pivot {i} of K + {ridge}·I is {pivot:e}, below N·ε·max diag = {floor:e} (numerically singular)"
                    ),
                });
            }
        }
        let factor = llt.L().to_owned();
        let alpha = check::from_faer(cholesky_solve(factor.as_ref(), check::to_faer(y)).as_ref());
        Ok(Self {
            factor,
            alpha,
            ridge,
        })
    }

    /// Predictions K* α on a test set, from the M×N kernel K* = Θ(X*, X) (docs/math.md §5).
    pub fn predict(&self, k_test_train: ArrayView2<f64>) -> Result<Array2<f64>> {
        check::test_kernel(k_test_train, self.alpha.nrows())?;
        Ok(k_test_train.dot(&self.alpha))
    }

    /// The coefficients α = (K + λI)⁻¹ Y, one row per training example (N×C).
    pub fn coefficients(&self) -> ArrayView2<'_, f64> {
        self.alpha.view()
    }

    /// Solves (K + λI) Z = rhs with the kept factorisation, e.g. for new targets on the same
    /// training inputs; rhs must have N rows and be finite.
    pub fn solve(&self, rhs: ArrayView2<f64>) -> Result<Array2<f64>> {
        check::non_empty("rhs", rhs)?;
        check::dim("rows of rhs", self.alpha.nrows(), rhs.nrows())?;
        check::finite("rhs", rhs)?;
        Ok(check::from_faer(
            cholesky_solve(self.factor.as_ref(), check::to_faer(rhs)).as_ref(),
        ))
    }

    /// The ridge λ the system was factorised with.
    pub fn ridge(&self) -> f64 {
        self.ridge
    }

    /// The number N of training examples.
    pub fn n_train(&self) -> usize {
        self.alpha.nrows()
    }

    /// The Gaussian-process posterior of a regression fitted on the **NNGP** kernel Σ with
    /// noise variance λ (docs/math.md §5, "Predictive uncertainty"): mean Σ* α and
    /// covariance Σ** − Σ* (Σ(X, X) + λI)⁻¹ Σ*ᵀ, computed as Σ** − WᵀW with W = L⁻¹ Σ*ᵀ
    /// from the kept Cholesky factor L (exactly symmetric; no new factorisation).
    ///
    /// This is also the NNGP ensemble of infinitely wide networks whose readout is trained
    /// to t = ∞. `k_test_train` is Σ(X*, X) (M×N); `k_test_test` is Σ(X*, X*) in full (M×M)
    /// or its diagonal (M), which selects the covariance returned. The diagonal costs
    /// O(M·N²) time and O(M·N) memory beyond the factor.
    pub fn gp_posterior(
        &self,
        k_test_train: ArrayView2<f64>,
        k_test_test: TestTestKernel<'_>,
    ) -> Result<Gaussian> {
        check::test_kernel(k_test_train, self.n_train())?;
        predictive::check_test_test(&k_test_test, k_test_train.nrows())?;
        let mean = k_test_train.dot(&self.alpha);
        let mut w = check::to_faer(k_test_train.t());
        solve_lower_triangular_in_place(self.factor.as_ref(), w.as_mut(), Par::Seq);
        let w = check::from_faer(w.as_ref());
        Ok(Gaussian {
            mean,
            covariance: predictive::gp_covariance(w.view(), k_test_test),
        })
    }

    /// The ensemble over random initialisations of infinitely wide networks trained by
    /// gradient flow on MSE to t = ∞, for a regression fitted on the **NTK** Θ with ridge λ
    /// (docs/math.md §5, "Predictive uncertainty"). With A = Θ(X, X) + λI and Z = A⁻¹ Θ*ᵀ
    /// (two triangular solves with the kept factor):
    ///
    /// * mean Θ* α,
    /// * covariance Σ** − ZᵀΣ*ᵀ − Σ*Z + Zᵀ Σ(X, X) Z, with the unregularised Σ(X, X)
    ///   (neural-tangents' `gp_inference` with `get='ntk'`).
    ///
    /// `ntk_test_train` is Θ(X*, X), `nngp_test_train` Σ(X*, X) (both M×N), `nngp_train`
    /// Σ(X, X) (N×N, symmetric), `nngp_test_test` Σ(X*, X*) in full or its diagonal.
    pub fn ntk_ensemble(
        &self,
        ntk_test_train: ArrayView2<f64>,
        nngp_test_train: ArrayView2<f64>,
        nngp_train: ArrayView2<f64>,
        nngp_test_test: TestTestKernel<'_>,
    ) -> Result<Gaussian> {
        predictive::check_ntk_inputs(
            ntk_test_train,
            nngp_test_train,
            nngp_train,
            &nngp_test_test,
            self.n_train(),
        )?;
        let mean = ntk_test_train.dot(&self.alpha);
        let z = check::from_faer(
            cholesky_solve(self.factor.as_ref(), check::to_faer(ntk_test_train.t())).as_ref(),
        );
        Ok(Gaussian {
            mean,
            covariance: predictive::ntk_covariance(
                z.view(),
                nngp_test_train,
                nngp_train,
                nngp_test_test,
            ),
        })
    }
}

/// (L Lᵀ)⁻¹ rhs by the two triangular solves of faer's `Llt::solve` (the same calls, the
/// same parallelism, so the same bits).
fn cholesky_solve(l: faer::MatRef<'_, f64>, mut rhs: Mat<f64>) -> Mat<f64> {
    faer::linalg::cholesky::llt::solve::solve_in_place_with_conj(
        l,
        faer::Conj::No,
        rhs.as_mut(),
        faer::get_global_parallelism(),
        faer::dyn_stack::MemStack::new(&mut []),
    );
    rhs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::testutil::{dense_solve, gaussian, rel_err, spd};
    use ndarray::{array, Array2};

    /// N = 8, shift 0.5: eigenvalues in [0.5, ~4.5] plus the ridge, so κ ≤ ~10. Cholesky and
    /// Gaussian elimination with partial pivoting are both backward stable, so each forward
    /// error is ≲ c·N·κ·ε ≈ 8·10·2.2e-16 ≈ 2e-14 (c a small constant); 1e-11 leaves a margin
    /// of ~500 for c while still catching any real mistake (a missing ridge changes α by
    /// ~ridge/λ ≈ 0.2 here).
    #[test]
    fn fit_and_predict_match_dense_gaussian_elimination() {
        let (n, m, c, ridge) = (8, 5, 3, 0.1);
        let k = spd(n, 0.5, 1);
        let y = gaussian(n, c, 2);
        let k_star = gaussian(m, n, 3);
        let mut a = k.clone();
        for i in 0..n {
            a[[i, i]] += ridge;
        }
        let alpha_ref = dense_solve(a.view(), y.view());
        let fit = KernelRegression::fit(k.view(), y.view(), ridge).unwrap();
        assert!(rel_err(fit.coefficients(), alpha_ref.view()) < 1e-11);
        let pred = fit.predict(k_star.view()).unwrap();
        assert!(rel_err(pred.view(), k_star.dot(&alpha_ref).view()) < 1e-11);
        // the kept factorisation solves new right-hand sides: residual of (K + λI) Z = B
        let b = gaussian(n, 2, 4);
        let z = fit.solve(b.view()).unwrap();
        assert!(rel_err(a.dot(&z).view(), b.view()) < 1e-11);
        assert_eq!(fit.ridge(), ridge);
        assert_eq!(fit.n_train(), n);
    }

    /// K = X Xᵀ with X 6×2 has rank 2: exactly singular, so with ridge 0 the user must get
    /// NotPositiveDefinite (whether faer meets a non-positive pivot or our N·ε pivot floor
    /// catches a rounding-sized one). The same K with a ridge is fine.
    #[test]
    fn singular_kernel_without_ridge_is_not_positive_definite() {
        let x = gaussian(6, 2, 5);
        let k = x.dot(&x.t());
        let k = (&k + &k.t()) / 2.0;
        let y = gaussian(6, 1, 6);
        assert!(matches!(
            KernelRegression::fit(k.view(), y.view(), 0.0),
            Err(Error::NotPositiveDefinite { .. })
        ));
        assert!(KernelRegression::fit(k.view(), y.view(), 1e-3).is_ok());
        // duplicate examples: the second pivot is exactly 0
        let dup = array![[1.0, 1.0], [1.0, 1.0]];
        assert!(matches!(
            KernelRegression::fit(dup.view(), array![[1.0], [0.0]].view(), 0.0),
            Err(Error::NotPositiveDefinite { .. })
        ));
    }

    fn shape(r: Result<impl std::fmt::Debug>) -> bool {
        matches!(r, Err(Error::ShapeMismatch { .. }))
    }

    #[test]
    fn shape_errors() {
        let k = spd(4, 0.5, 7);
        let y = gaussian(4, 2, 8);
        let not_square = gaussian(4, 3, 9);
        assert!(shape(KernelRegression::fit(
            not_square.view(),
            y.view(),
            0.1
        )));
        let y_short = gaussian(3, 2, 10);
        assert!(shape(KernelRegression::fit(k.view(), y_short.view(), 0.1)));
        let fit = KernelRegression::fit(k.view(), y.view(), 0.1).unwrap();
        let k_star_bad = gaussian(2, 5, 11);
        assert!(shape(fit.predict(k_star_bad.view())));
        assert!(shape(fit.solve(gaussian(5, 1, 12).view())));
    }

    #[test]
    fn empty_inputs_are_rejected() {
        let empty = Array2::<f64>::zeros((0, 0));
        let y0 = Array2::<f64>::zeros((0, 1));
        assert!(matches!(
            KernelRegression::fit(empty.view(), y0.view(), 0.1),
            Err(Error::Empty { .. })
        ));
        let k = spd(3, 0.5, 13);
        let no_outputs = Array2::<f64>::zeros((3, 0));
        assert!(matches!(
            KernelRegression::fit(k.view(), no_outputs.view(), 0.1),
            Err(Error::Empty {
                axis: "columns",
                ..
            })
        ));
        let fit = KernelRegression::fit(k.view(), gaussian(3, 1, 14).view(), 0.1).unwrap();
        assert!(matches!(
            fit.predict(Array2::<f64>::zeros((0, 3)).view()),
            Err(Error::Empty { axis: "rows", .. })
        ));
    }

    #[test]
    fn non_finite_inputs_and_bad_ridge_are_rejected() {
        let k = spd(3, 0.5, 15);
        let y = gaussian(3, 1, 16);
        let mut k_nan = k.clone();
        k_nan[[1, 2]] = f64::NAN;
        assert!(matches!(
            KernelRegression::fit(k_nan.view(), y.view(), 0.1),
            Err(Error::NonFinite { row: 1, col: 2, .. })
        ));
        let mut y_inf = y.clone();
        y_inf[[2, 0]] = f64::INFINITY;
        assert!(matches!(
            KernelRegression::fit(k.view(), y_inf.view(), 0.1),
            Err(Error::NonFinite { row: 2, col: 0, .. })
        ));
        for ridge in [-1e-9, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                KernelRegression::fit(k.view(), y.view(), ridge),
                Err(Error::InvalidArgument { name: "ridge", .. })
            ));
        }
        let fit = KernelRegression::fit(k.view(), y.view(), 0.1).unwrap();
        let mut k_star = gaussian(2, 3, 17);
        k_star[[0, 1]] = f64::NEG_INFINITY;
        assert!(matches!(
            fit.predict(k_star.view()),
            Err(Error::NonFinite { row: 0, col: 1, .. })
        ));
    }

    #[test]
    fn non_symmetric_kernel_is_rejected() {
        let mut k = spd(3, 0.5, 18);
        k[[0, 2]] += 1e-3;
        assert!(matches!(
            KernelRegression::fit(k.view(), gaussian(3, 1, 19).view(), 0.1),
            Err(Error::InvalidArgument {
                name: "k_train",
                ..
            })
        ));
    }
}
