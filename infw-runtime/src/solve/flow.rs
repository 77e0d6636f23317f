//! Full-batch NTK gradient flow with MSE in function space (docs/math.md §5):
//! f_t(X*) = f_0(X*) + K* K⁻¹ (I − e^{−ηKt}) (Y − f_0(X)), evaluated through one symmetric
//! eigendecomposition K = V diag(λ) Vᵀ that is kept and reused for every t and test set.

use super::check;
use super::predictive::{self, Gaussian, TestTestKernel};
use crate::error::{Error, Result};
use faer::Side;
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// NTK gradient flow under MSE (docs/math.md §5), prepared once and evaluated at any time t ≥ 0.
///
/// The flow is df/dt = −η K (f − Y) on the training set with loss ½‖f − Y‖² summed over
/// examples (no 1/N). With K = V diag(λ) Vᵀ and R = Vᵀ (Y − f_0(X)):
///
/// * coefficients α_t = V diag(g_t(λ)) R, with g_t(λ) = −expm1(−ηλt)/λ (ηt at λ = 0, its
///   limit, so there is no cancellation for small λ),
/// * train predictions f_0(X) + V diag(−expm1(−ηλt)) R (= f_0(X) + K α_t),
/// * test predictions f_0(X*) + K* α_t.
///
/// **Eigenvalue threshold.** Eigenvalues with λ ≤ τ = N·ε·max|λ| are set to exactly 0 when
/// the flow is built: they are indistinguishable from 0 given the eigensolver's backward error,
/// and τ is numpy's default cut-off for `pinv`/`lstsq` (max(M, N)·ε). A zero eigenvalue
/// contributes ηt to the coefficients at finite t (its exact limit; it leaves the training
/// predictions unchanged) and 0 at t = ∞, so `t = f64::INFINITY` gives the minimum-norm
/// interpolant K* K⁺ (Y − f_0(X)). Eigenvalues below −τ mean K is not a kernel matrix and
/// are rejected.
///
/// ```
/// use infw_runtime::solve::GradientFlow;
/// use ndarray::array;
/// let k = array![[2.0, 0.0], [0.0, 1.0]];
/// let flow = GradientFlow::new(k.view(), array![[1.0], [1.0]].view(), 0.5)?;
/// assert_eq!(flow.predict_train(0.0)?[[0, 0]], 0.0); // f_0 = 0
/// assert!((flow.predict_train(f64::INFINITY)?[[1, 0]] - 1.0).abs() < 1e-15);
/// # Ok::<(), infw_runtime::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct GradientFlow {
    /// V, the eigenvectors of K as columns (N×N).
    pub(crate) eigvecs: Array2<f64>,
    /// λ, non-decreasing, with |λ| ≤ τ replaced by 0.
    pub(crate) eigvals: Array1<f64>,
    /// R = Vᵀ (Y − f_0(X)), N×C.
    pub(crate) projected: Array2<f64>,
    /// f_0 on the training set, when the user gave one.
    pub(crate) f0_train: Option<Array2<f64>>,
    pub(crate) learning_rate: f64,
    pub(crate) threshold: f64,
    /// r ≥ 0 added to the diagonal of K before the decomposition ([`with_ridge`](Self::with_ridge)).
    pub(crate) ridge: f64,
}

impl GradientFlow {
    /// Prepares the flow from f_0 = 0 (the mean of the initial GP, docs/math.md §5):
    /// K is the N×N training kernel, Y the N×C targets, η > 0 the learning rate.
    pub fn new(k_train: ArrayView2<f64>, y: ArrayView2<f64>, learning_rate: f64) -> Result<Self> {
        Self::build(k_train, y, learning_rate, None, 0.0)
    }

    /// Prepares the flow of the regularised kernel A = K + ridge·I from f_0 = 0: the flow
    /// df/dt = −η A (f − Y) on the training set, test predictions K* A⁻¹ (I − e^{−ηAt}) Y.
    /// This is neural-tangents' `diag_reg` inside the exponential (docs/math.md §5,
    /// "Predictive uncertainty"): each training example gets a private tangent direction of
    /// variance `ridge` that the test points do not see. `ridge` is absolute, finite, ≥ 0;
    /// the eigendecomposition is of K + ridge·I, so its eigenvalues are at least `ridge`.
    pub fn with_ridge(
        k_train: ArrayView2<f64>,
        y: ArrayView2<f64>,
        learning_rate: f64,
        ridge: f64,
    ) -> Result<Self> {
        if !(ridge.is_finite() && ridge >= 0.0) {
            return Err(Error::InvalidArgument {
                name: "ridge",
                value: ridge.to_string(),
                reason: "the ridge must be finite and non-negative".into(),
            });
        }
        Self::build(k_train, y, learning_rate, None, ridge)
    }

    /// Prepares the flow from a given initial function (e.g. a sampled f_0): `f0_train` is
    /// f_0(X), N×C. Test predictions then need f_0(X*) through
    /// [`predict_with_initial`](Self::predict_with_initial).
    pub fn with_initial(
        k_train: ArrayView2<f64>,
        y: ArrayView2<f64>,
        learning_rate: f64,
        f0_train: ArrayView2<f64>,
    ) -> Result<Self> {
        Self::build(k_train, y, learning_rate, Some(f0_train), 0.0)
    }

    fn build(
        k_train: ArrayView2<f64>,
        y: ArrayView2<f64>,
        learning_rate: f64,
        f0_train: Option<ArrayView2<f64>>,
        ridge: f64,
    ) -> Result<Self> {
        check::train_inputs(k_train, y)?;
        if !(learning_rate.is_finite() && learning_rate > 0.0) {
            return Err(Error::InvalidArgument {
                name: "learning_rate",
                value: learning_rate.to_string(),
                reason: "the learning rate must be finite and positive".into(),
            });
        }
        let mut residual = y.to_owned();
        if let Some(f0) = f0_train {
            check::dim("rows of f0_train", y.nrows(), f0.nrows())?;
            check::dim("columns of f0_train", y.ncols(), f0.ncols())?;
            check::finite("f0_train", f0)?;
            residual -= &f0;
        }
        let n = k_train.nrows();
        let evd = check::symmetric_faer(k_train, ridge)
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::InvalidArgument {
                name: "k_train",
                value: format!("{n}×{n} matrix"),
                reason: format!("the symmetric eigendecomposition did not converge ({e:?})"),
            })?;
        let s = evd.S().column_vector();
        let mut eigvals = Array1::from_shape_fn(n, |i| s[i]);
        let eigvecs = check::from_faer(evd.U());
        let largest = eigvals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let threshold = n as f64 * f64::EPSILON * largest;
        for (i, l) in eigvals.iter_mut().enumerate() {
            if *l < -threshold {
                return Err(Error::NotPositiveDefinite {
                    detail: format!(
                        "eigenvalue {i} of the training kernel is {l:e} < −N·ε·max|λ| = {:e}: K is not positive semi-definite, so gradient flow diverges",
                        -threshold
                    ),
                });
            }
            if *l <= threshold {
                *l = 0.0;
            }
        }
        let projected = eigvecs.t().dot(&residual);
        Ok(Self {
            eigvecs,
            eigvals,
            projected,
            f0_train: f0_train.map(|f| f.to_owned()),
            learning_rate,
            threshold,
            ridge,
        })
    }

    fn check_time(&self, t: f64) -> Result<()> {
        if t.is_nan() || t < 0.0 {
            return Err(Error::InvalidArgument {
                name: "t",
                value: t.to_string(),
                reason: "time must be non-negative (f64::INFINITY for the t = ∞ limit)".into(),
            });
        }
        if t.is_finite() && !(self.learning_rate * t).is_finite() {
            return Err(Error::InvalidArgument {
                name: "t",
                value: t.to_string(),
                reason: "η·t overflows f64; use f64::INFINITY for the t = ∞ limit".into(),
            });
        }
        Ok(())
    }

    /// Scales the rows of R by `weight(λ_i)` and maps back with V.
    fn apply(&self, weight: impl Fn(f64) -> f64) -> Array2<f64> {
        let mut scaled = self.projected.clone();
        for (mut row, &l) in scaled.axis_iter_mut(Axis(0)).zip(self.eigvals.iter()) {
            let w = weight(l);
            row.mapv_inplace(|v| v * w);
        }
        self.eigvecs.dot(&scaled)
    }

    /// The coefficients α_t (N×C) with f_t(X*) = f_0(X*) + K* α_t; t = ∞ gives K⁺ (Y − f_0(X)).
    pub fn coefficients(&self, t: f64) -> Result<Array2<f64>> {
        self.check_time(t)?;
        let eta = self.learning_rate;
        Ok(if t == f64::INFINITY {
            self.apply(|l| if l > 0.0 { 1.0 / l } else { 0.0 })
        } else {
            self.apply(|l| {
                if l > 0.0 {
                    -(-eta * l * t).exp_m1() / l
                } else {
                    eta * t
                }
            })
        })
    }

    /// f_t on the training set (N×C): f_0(X) + V diag(1 − e^{−ηλt}) Vᵀ (Y − f_0(X)).
    pub fn predict_train(&self, t: f64) -> Result<Array2<f64>> {
        self.check_time(t)?;
        let eta = self.learning_rate;
        let change = if t == f64::INFINITY {
            self.apply(|l| if l > 0.0 { 1.0 } else { 0.0 })
        } else {
            self.apply(|l| -(-eta * l * t).exp_m1())
        };
        Ok(match &self.f0_train {
            Some(f0) => change + f0,
            None => change,
        })
    }

    /// f_t on a test set from the M×N kernel K* = Θ(X*, X), for a flow started at f_0 = 0.
    /// A flow built [`with_initial`](Self::with_initial) needs f_0(X*) and returns an error
    /// here pointing to [`predict_with_initial`](Self::predict_with_initial).
    pub fn predict(&self, k_test_train: ArrayView2<f64>, t: f64) -> Result<Array2<f64>> {
        if self.f0_train.is_some() {
            return Err(Error::InvalidArgument {
                name: "f0_test",
                value: "none".into(),
                reason: "this flow was built with an initial function f_0 on the training set; \
                         pass f_0 on the test set to predict_with_initial"
                    .into(),
            });
        }
        check::test_kernel(k_test_train, self.eigvecs.nrows())?;
        Ok(k_test_train.dot(&self.coefficients(t)?))
    }

    /// f_t on a test set started from a given f_0: f_0(X*) + K* α_t, with `f0_test` = f_0(X*)
    /// (M×C). Also valid for a flow built with [`new`](Self::new) (f_0(X) = 0 on train).
    pub fn predict_with_initial(
        &self,
        k_test_train: ArrayView2<f64>,
        f0_test: ArrayView2<f64>,
        t: f64,
    ) -> Result<Array2<f64>> {
        check::test_kernel(k_test_train, self.eigvecs.nrows())?;
        check::dim(
            "rows of f0_test (one per test example)",
            k_test_train.nrows(),
            f0_test.nrows(),
        )?;
        check::dim(
            "columns of f0_test (outputs)",
            self.projected.ncols(),
            f0_test.ncols(),
        )?;
        check::finite("f0_test", f0_test)?;
        Ok(k_test_train.dot(&self.coefficients(t)?) + f0_test)
    }

    /// The eigenvalues of K used by the flow, non-decreasing, with those ≤ τ set to 0.
    pub fn eigenvalues(&self) -> &[f64] {
        self.eigvals.as_slice().unwrap_or(&[])
    }

    /// The threshold τ = N·ε·max|λ| below which eigenvalues count as 0.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The learning rate η.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// The ridge r the kernel was shifted by before the decomposition (0 unless built
    /// [`with_ridge`](Self::with_ridge)).
    pub fn ridge(&self) -> f64 {
        self.ridge
    }

    /// Refuses a flow started from a given f_0: the ensemble formulas average over f_0.
    fn check_ensemble(&self) -> Result<()> {
        if self.f0_train.is_some() {
            return Err(Error::InvalidArgument {
                name: "f0_train",
                value: "given".into(),
                reason: "the predictive covariance averages over the random initial function; \
                         build the flow with GradientFlow::new or with_ridge (f_0 = 0 in the mean)"
                    .into(),
            });
        }
        Ok(())
    }

    /// V diag(w(μ)) Vᵀ B for an N×M matrix B.
    fn apply_to(&self, b: ArrayView2<f64>, weight: impl Fn(f64) -> f64) -> Array2<f64> {
        let mut projected = self.eigvecs.t().dot(&b);
        for (mut row, &l) in projected.axis_iter_mut(Axis(0)).zip(self.eigvals.iter()) {
            let w = weight(l);
            row.mapv_inplace(|v| v * w);
        }
        self.eigvecs.dot(&projected)
    }

    /// The weight g_t(μ) of the coefficients: −expm1(−ημt)/μ, ηt at μ = 0; 1/μ (0) at t = ∞.
    fn g(&self, t: f64) -> impl Fn(f64) -> f64 {
        let eta = self.learning_rate;
        move |l: f64| {
            if t == f64::INFINITY {
                if l > 0.0 {
                    1.0 / l
                } else {
                    0.0
                }
            } else if l > 0.0 {
                -(-eta * l * t).exp_m1() / l
            } else {
                eta * t
            }
        }
    }

    /// The Gaussian over random initialisations of the outputs at `X*` after time `t`, for a
    /// flow of the **NNGP** kernel Σ (training only the readout; docs/math.md §5, "Predictive
    /// uncertainty"), with A = Σ(X, X) + rI the decomposed matrix:
    ///
    /// * mean Σ* A⁻¹ (I − e^{−ηAt}) Y,
    /// * covariance Σ** − Σ* A⁻¹ (I − e^{−2ηAt}) Σ*ᵀ (neural-tangents' definition: the
    ///   initial outputs on the training set have covariance A, the ridge acting as noise).
    ///
    /// `k_test_train` is Σ(X*, X) (M×N); `k_test_test` is Σ(X*, X*) in full (M×M) or its
    /// diagonal (M), which selects the covariance returned. At t = ∞ this is the GP
    /// posterior (with K⁺ where A is singular). Errors: shapes, non-finite values, t < 0 or
    /// NaN, a flow built [`with_initial`](Self::with_initial).
    pub fn nngp_ensemble(
        &self,
        k_test_train: ArrayView2<f64>,
        k_test_test: TestTestKernel<'_>,
        t: f64,
    ) -> Result<Gaussian> {
        self.check_ensemble()?;
        self.check_time(t)?;
        if t.is_finite() && !(2.0 * self.learning_rate * t).is_finite() {
            return Err(Error::InvalidArgument {
                name: "t",
                value: t.to_string(),
                reason: "2·η·t overflows f64; use f64::INFINITY for the t = ∞ limit".into(),
            });
        }
        check::test_kernel(k_test_train, self.eigvecs.nrows())?;
        predictive::check_test_test(&k_test_test, k_test_train.nrows())?;
        let mean = k_test_train.dot(&self.coefficients(t)?);
        // W = diag(√h) Vᵀ Σ*ᵀ with h = g_{2t}, so that the subtracted term WᵀW is exactly
        // symmetric and positive semi-definite.
        let h = self.g(2.0 * t);
        let mut w = self.eigvecs.t().dot(&k_test_train.t());
        for (mut row, &l) in w.axis_iter_mut(Axis(0)).zip(self.eigvals.iter()) {
            let s = h(l).sqrt();
            row.mapv_inplace(|v| v * s);
        }
        Ok(Gaussian {
            mean,
            covariance: predictive::gp_covariance(w.view(), k_test_test),
        })
    }

    /// The Gaussian over random initialisations of the outputs at `X*` after time `t`, for a
    /// flow of the **NTK** Θ from f_0 ~ GP(0, Σ) (docs/math.md §5, "Predictive
    /// uncertainty"), with A = Θ(X, X) + rI the decomposed matrix and G_t = A⁻¹(I − e^{−ηAt}):
    ///
    /// * mean Θ* G_t Y,
    /// * covariance Σ** − Θ* G_t Σ*ᵀ − Σ* G_t Θ*ᵀ + Θ* G_t Σ(X, X) G_t Θ*ᵀ, with the
    ///   unregularised Σ(X, X) (neural-tangents' `gradient_descent_mse_ensemble`).
    ///
    /// `ntk_test_train` is Θ(X*, X), `nngp_test_train` Σ(X*, X) (both M×N), `nngp_train`
    /// Σ(X, X) (N×N, symmetric), `nngp_test_test` Σ(X*, X*) in full or its diagonal.
    pub fn ntk_ensemble(
        &self,
        ntk_test_train: ArrayView2<f64>,
        nngp_test_train: ArrayView2<f64>,
        nngp_train: ArrayView2<f64>,
        nngp_test_test: TestTestKernel<'_>,
        t: f64,
    ) -> Result<Gaussian> {
        self.check_ensemble()?;
        self.check_time(t)?;
        let n = self.eigvecs.nrows();
        predictive::check_ntk_inputs(
            ntk_test_train,
            nngp_test_train,
            nngp_train,
            &nngp_test_test,
            n,
        )?;
        let z = self.apply_to(ntk_test_train.t(), self.g(t));
        let mean = ntk_test_train.dot(&self.coefficients(t)?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::testutil::{dense_solve, gaussian, rel_err, spd};
    use crate::solve::KernelRegression;
    use ndarray::Array2;

    /// Reference α_t = ηt·φ(−ηtK) Y with φ(z) = (e^z − 1)/z = Σ_k z^k/(k+1)!, summed as a
    /// Taylor series: no eigendecomposition, no inverse, exact also for singular K.
    fn taylor_alpha(k: &Array2<f64>, y: &Array2<f64>, eta_t: f64) -> Array2<f64> {
        let mut term = y * eta_t; // k = 0 term: ηt·Y
        let mut sum = term.clone();
        for j in 1..80 {
            term = k.dot(&term) * (-eta_t / (j as f64 + 1.0));
            sum += &term;
        }
        sum
    }

    /// t = 0 must return f_0 exactly: every weight −expm1(−0) is exactly 0, and for the
    /// zero eigenvalues ηt = 0, so the change is an exact 0 matrix.
    #[test]
    fn time_zero_gives_the_initial_function() {
        let k = spd(6, 0.5, 21);
        let y = gaussian(6, 2, 22);
        let f0 = gaussian(6, 2, 23);
        let k_star = gaussian(3, 6, 24);
        let f0_star = gaussian(3, 2, 25);
        let flow = GradientFlow::with_initial(k.view(), y.view(), 0.7, f0.view()).unwrap();
        assert_eq!(flow.predict_train(0.0).unwrap(), f0);
        assert_eq!(
            flow.predict_with_initial(k_star.view(), f0_star.view(), 0.0)
                .unwrap(),
            f0_star
        );
        let from_zero = GradientFlow::new(k.view(), y.view(), 0.7).unwrap();
        assert_eq!(
            from_zero.predict_train(0.0).unwrap(),
            Array2::<f64>::zeros((6, 2))
        );
        assert_eq!(
            from_zero.predict(k_star.view(), 0.0).unwrap(),
            Array2::<f64>::zeros((3, 2))
        );
    }

    /// Against the Taylor series at ηt = 0.6 with λ_max ≲ 4.5, so ηt‖K‖ ≲ 2.7: the series'
    /// terms are bounded by ηt·e^{2.7}‖Y‖ ≈ 9‖Y‖ in sum, so its rounding error is
    /// ≲ 80·N·ε·9 ≈ 1e-12 relative; the eigen route errs by ~N·ε·(‖g‖∞/min g) ≈ 1e-14.
    /// Tolerance 1e-11. Also checks with f_0 ≠ 0, where the residual Y − f_0 is what flows.
    #[test]
    fn matches_dense_taylor_series_at_finite_time() {
        let (n, m, c, eta, t) = (8, 4, 3, 0.3, 2.0);
        let k = spd(n, 0.5, 26);
        let y = gaussian(n, c, 27);
        let f0 = gaussian(n, c, 28);
        let k_star = gaussian(m, n, 29);
        let f0_star = gaussian(m, c, 30);
        let alpha = taylor_alpha(&k, &(&y - &f0), eta * t);
        let flow = GradientFlow::with_initial(k.view(), y.view(), eta, f0.view()).unwrap();
        assert!(rel_err(flow.coefficients(t).unwrap().view(), alpha.view()) < 1e-11);
        let train = flow.predict_train(t).unwrap();
        assert!(rel_err(train.view(), (k.dot(&alpha) + &f0).view()) < 1e-11);
        let test = flow
            .predict_with_initial(k_star.view(), f0_star.view(), t)
            .unwrap();
        assert!(rel_err(test.view(), (k_star.dot(&alpha) + &f0_star).view()) < 1e-11);
    }

    /// With λ_min ≥ 0.5 (checked), η = 1, t = 80: the flow's weights differ from 1/λ by
    /// e^{−ηλt}/λ ≤ 2e^{−40} ≈ 8e-18, and kernel regression with ridge r = 1e-12 differs from
    /// 1/λ by r/λ² ≤ 4e-12. With roundoff ~N·κ·ε ≈ 2e-14 the two agree to ~5e-12 relative;
    /// tolerance 1e-10. The same holds for t = ∞, and against dense elimination with ridge 0.
    #[test]
    fn large_time_approaches_kernel_regression() {
        let (n, m, c) = (8, 4, 2);
        let k = spd(n, 0.5, 31);
        let y = gaussian(n, c, 32);
        let k_star = gaussian(m, n, 33);
        let flow = GradientFlow::new(k.view(), y.view(), 1.0).unwrap();
        assert!(flow.eigenvalues()[0] >= 0.5, "test premise: λ_min ≥ 0.5");
        let ridge = KernelRegression::fit(k.view(), y.view(), 1e-12).unwrap();
        let reference = ridge.predict(k_star.view()).unwrap();
        for t in [80.0, f64::INFINITY] {
            let pred = flow.predict(k_star.view(), t).unwrap();
            assert!(rel_err(pred.view(), reference.view()) < 1e-10, "t = {t}");
            let train = flow.predict_train(t).unwrap();
            assert!(
                rel_err(train.view(), y.view()) < 1e-10,
                "interpolation at t = {t}"
            );
        }
        let dense = k_star.dot(&dense_solve(k.view(), y.view()));
        let inf = flow.predict(k_star.view(), f64::INFINITY).unwrap();
        assert!(rel_err(inf.view(), dense.view()) < 1e-11);
    }

    /// Singular K = X Xᵀ (X 6×2, rank 2). At t = ∞ the flow must give the minimum-norm
    /// solution α = K⁺Y and train predictions P Y, P = X (XᵀX)⁻¹ Xᵀ the projection on
    /// range(X); the reference uses the 2×2 normal equations (κ(XᵀX) ~ 10), so both sides are
    /// accurate to ~κ²·N·ε ≈ 1e-13 as long as the 4 null eigenvalues (rounding-sized,
    /// ~ε·λ_max) fall below τ = N·ε·λ_max; tolerance 1e-9. At finite t the null directions
    /// contribute ηt·(their component) to α but nothing to the train predictions.
    #[test]
    fn infinite_time_on_singular_kernel_is_min_norm() {
        let x = gaussian(6, 2, 34);
        let k = x.dot(&x.t());
        let k = (&k + &k.t()) / 2.0;
        let y = gaussian(6, 2, 35);
        let flow = GradientFlow::new(k.view(), y.view(), 1.0).unwrap();
        let zeros = flow.eigenvalues().iter().filter(|&&l| l == 0.0).count();
        assert_eq!(zeros, 4, "eigenvalues {:?}", flow.eigenvalues());
        let g = x.t().dot(&x); // XᵀX
        let xty = x.t().dot(&y);
        let b = dense_solve(g.view(), xty.view()); // (XᵀX)⁻¹XᵀY
        let projection = x.dot(&b);
        let alpha_ref = x.dot(&dense_solve(g.view(), b.view())); // X (XᵀX)⁻² XᵀY = K⁺Y
        assert!(
            rel_err(
                flow.predict_train(f64::INFINITY).unwrap().view(),
                projection.view()
            ) < 1e-9
        );
        assert!(
            rel_err(
                flow.coefficients(f64::INFINITY).unwrap().view(),
                alpha_ref.view()
            ) < 1e-9
        );
        // finite t: agrees with the Taylor series (exact for singular K); ηt‖K‖ ≈ 1 keeps
        // the series' rounding at ~1e-14
        let lmax = *flow.eigenvalues().last().unwrap();
        let t = 1.0 / lmax;
        let alpha_t = taylor_alpha(&k, &y, t);
        assert!(rel_err(flow.coefficients(t).unwrap().view(), alpha_t.view()) < 1e-10);
    }

    #[test]
    fn argument_and_shape_errors() {
        let k = spd(4, 0.5, 36);
        let y = gaussian(4, 2, 37);
        for eta in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                GradientFlow::new(k.view(), y.view(), eta),
                Err(Error::InvalidArgument {
                    name: "learning_rate",
                    ..
                })
            ));
        }
        let flow = GradientFlow::new(k.view(), y.view(), 1.0).unwrap();
        for t in [-1.0, f64::NAN, f64::NEG_INFINITY] {
            assert!(matches!(
                flow.predict_train(t),
                Err(Error::InvalidArgument { name: "t", .. })
            ));
        }
        assert!(matches!(
            GradientFlow::new(k.view(), gaussian(4, 2, 38).view(), 1e300)
                .unwrap()
                .predict_train(1e10),
            Err(Error::InvalidArgument { name: "t", .. })
        ));
        let shape = |r: Result<Array2<f64>>| matches!(r, Err(Error::ShapeMismatch { .. }));
        assert!(shape(flow.predict(gaussian(3, 5, 39).view(), 1.0)));
        assert!(matches!(
            GradientFlow::new(gaussian(4, 3, 40).view(), y.view(), 1.0),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            GradientFlow::new(k.view(), gaussian(5, 2, 41).view(), 1.0),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            GradientFlow::with_initial(k.view(), y.view(), 1.0, gaussian(4, 3, 42).view()),
            Err(Error::ShapeMismatch { .. })
        ));
        let k_star = gaussian(3, 4, 43);
        assert!(shape(flow.predict_with_initial(
            k_star.view(),
            gaussian(2, 2, 44).view(),
            1.0
        )));
        // a flow with f_0 refuses to predict without f_0(X*)
        let with_f0 = GradientFlow::with_initial(k.view(), y.view(), 1.0, y.view()).unwrap();
        assert!(matches!(
            with_f0.predict(k_star.view(), 1.0),
            Err(Error::InvalidArgument {
                name: "f0_test",
                ..
            })
        ));
    }

    #[test]
    fn non_finite_and_indefinite_inputs_are_rejected() {
        let k = spd(4, 0.5, 45);
        let y = gaussian(4, 1, 46);
        let mut k_nan = k.clone();
        k_nan[[3, 3]] = f64::NAN;
        assert!(matches!(
            GradientFlow::new(k_nan.view(), y.view(), 1.0),
            Err(Error::NonFinite { row: 3, col: 3, .. })
        ));
        let mut f0 = y.clone();
        f0[[0, 0]] = f64::INFINITY;
        assert!(matches!(
            GradientFlow::with_initial(k.view(), y.view(), 1.0, f0.view()),
            Err(Error::NonFinite { .. })
        ));
        let flow = GradientFlow::new(k.view(), y.view(), 1.0).unwrap();
        let mut k_star = gaussian(2, 4, 47);
        k_star[[1, 0]] = f64::NAN;
        assert!(matches!(
            flow.predict(k_star.view(), 1.0),
            Err(Error::NonFinite { row: 1, col: 0, .. })
        ));
        // an indefinite "kernel" (eigenvalues ±1) would make the flow diverge
        let indefinite = ndarray::array![[0.0, 1.0], [1.0, 0.0]];
        assert!(matches!(
            GradientFlow::new(indefinite.view(), ndarray::array![[1.0], [0.0]].view(), 1.0),
            Err(Error::NotPositiveDefinite { .. })
        ));
    }
}
