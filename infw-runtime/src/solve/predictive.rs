//! Predictive mean **and covariance** over random initialisations of the infinitely wide
//! network trained by full-batch gradient flow on MSE, for the NNGP and the NTK, at t = ∞
//! and at any t (docs/math.md §5, "Predictive uncertainty").
//!
//! The formulas are those of neural-tangents' `predict.gradient_descent_mse_ensemble`
//! (finite t) and `predict.gp_inference` (t = ∞); they reuse the factorisations the solvers
//! keep: the Cholesky factor of [`KernelRegression`] for t = ∞, the eigendecomposition of
//! [`GradientFlow`] for finite t. Both conventions in which neural-tangents differs from infw
//! are options here, defaulting to infw's: [`TimeConvention`] (summed vs averaged loss) and
//! [`Ridge`] (absolute vs relative to the mean diagonal).
//!
//! The covariance is over test points and is the same for every output column (the
//! outputs are independent and identically distributed given the kernels); the covariance
//! of all M·C outputs is `cov ⊗ I_C`.
//!
//! ```
//! use infw_runtime::solve::{EnsembleOptions, NngpEnsemble, TestTestKernel};
//! use ndarray::array;
//!
//! let k = array![[2.0, 0.5], [0.5, 1.0]]; // Σ(X, X)
//! let y = array![[1.0], [-1.0]];
//! let k_star = array![[1.0, 0.2]]; // Σ(X*, X)
//! let k_star_star = array![1.5]; // Σ(x*, x*) only: the diagonal
//! let gp = NngpEnsemble::new(k.view(), y.view(), EnsembleOptions::default())?;
//! let post = gp.predict(k_star.view(), TestTestKernel::Diagonal(k_star_star.view()), f64::INFINITY)?;
//! assert!(post.covariance.variances()[0] < 1.5); // the data shrink the prior variance
//! # Ok::<(), infw_runtime::Error>(())
//! ```

use super::check;
use super::{GradientFlow, KernelRegression};
use crate::error::{Error, Result};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};
use std::sync::OnceLock;

/// The ridge r added to the diagonal of the training kernel (docs/math.md §5).
///
/// infw's convention is [`Ridge::Absolute`] (the `ridge` of [`KernelRegression::fit`]);
/// neural-tangents' `diag_reg` is [`Ridge::RelativeToMeanDiagonal`] unless
/// `diag_reg_absolute_scale=True`. The relative ridge is resolved on the kernel that is
/// factorised: Σ(X, X) for the NNGP, Θ(X, X) for the NTK (as neural-tangents does).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Ridge {
    /// r itself: K + rI.
    Absolute(f64),
    /// r = c · mean_i K_ii = c · trace(K)/N (neural-tangents' relative `diag_reg`).
    RelativeToMeanDiagonal(f64),
}

impl Default for Ridge {
    /// No ridge (infw's default is absolute).
    fn default() -> Self {
        Ridge::Absolute(0.0)
    }
}

impl Ridge {
    /// The absolute ridge r for the training kernel `k_train` (N×N). Errors: a negative or
    /// non-finite coefficient, an empty or non-square kernel, a non-finite result.
    pub fn resolve(self, k_train: ArrayView2<f64>) -> Result<f64> {
        let c = match self {
            Ridge::Absolute(c) | Ridge::RelativeToMeanDiagonal(c) => c,
        };
        if !(c.is_finite() && c >= 0.0) {
            return Err(Error::InvalidArgument {
                name: "ridge",
                value: format!("{self:?}"),
                reason: "the ridge must be finite and non-negative".into(),
            });
        }
        match self {
            Ridge::Absolute(r) => Ok(r),
            Ridge::RelativeToMeanDiagonal(c) => {
                check::non_empty("k_train", k_train)?;
                check::dim(
                    "k_train must be square: columns",
                    k_train.nrows(),
                    k_train.ncols(),
                )?;
                let n = k_train.nrows();
                let trace: f64 = (0..n).map(|i| k_train[[i, i]]).sum();
                let r = c * (trace / n as f64);
                if !(r.is_finite() && r >= 0.0) {
                    return Err(Error::InvalidArgument {
                        name: "ridge",
                        value: format!("{self:?} · mean diagonal {}", trace / n as f64),
                        reason: "the relative ridge needs a finite, non-negative mean diagonal"
                            .into(),
                    });
                }
                Ok(r)
            }
        }
    }
}

/// Which clock the training time t is measured on (docs/math.md §5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TimeConvention {
    /// infw: loss ½ Σ_{i,c} (f_ic − y_ic)² summed over the N·C training outputs, so the flow
    /// is df/dt = −η Θ (f − Y).
    #[default]
    SummedLoss,
    /// neural-tangents: loss ½ · mean over the N·C training outputs, df/dt = −η Θ (f − Y)/(N·C).
    /// Time t here is t/(N·C) on infw's clock (the same η).
    MeanLoss,
}

impl TimeConvention {
    /// t on infw's clock ([`TimeConvention::SummedLoss`]) for `n_train` examples with
    /// `outputs` columns each; ∞ stays ∞.
    pub fn to_summed(self, t: f64, n_train: usize, outputs: usize) -> f64 {
        match self {
            TimeConvention::SummedLoss => t,
            TimeConvention::MeanLoss => t / (n_train as f64 * outputs as f64),
        }
    }
}

/// Options of the MSE-trained ensembles ([`NngpEnsemble`], [`NtkEnsemble`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EnsembleOptions {
    /// η > 0; times are multiplied by it.
    pub learning_rate: f64,
    /// The ridge added to the factorised training kernel (also inside the exponential at
    /// finite t).
    pub ridge: Ridge,
    /// The clock of t.
    pub time: TimeConvention,
}

impl Default for EnsembleOptions {
    /// infw's conventions: η = 1, no ridge, summed loss.
    fn default() -> Self {
        EnsembleOptions {
            learning_rate: 1.0,
            ridge: Ridge::default(),
            time: TimeConvention::SummedLoss,
        }
    }
}

impl EnsembleOptions {
    /// The conventions of neural-tangents'
    /// `gradient_descent_mse_ensemble(kernel_fn, x_train, y_train, learning_rate, diag_reg,
    /// diag_reg_absolute_scale)`: its time, and its ridge (relative unless `absolute`).
    pub fn neural_tangents(
        learning_rate: f64,
        diag_reg: f64,
        diag_reg_absolute_scale: bool,
    ) -> Self {
        EnsembleOptions {
            learning_rate,
            ridge: if diag_reg_absolute_scale {
                Ridge::Absolute(diag_reg)
            } else {
                Ridge::RelativeToMeanDiagonal(diag_reg)
            },
            time: TimeConvention::MeanLoss,
        }
    }
}

/// The test–test kernel Σ(X*, X*) the covariance starts from: the full M×M matrix, or only
/// its diagonal k(x, x) per test point. Which one is given selects the [`Covariance`]
/// returned, so the diagonal route never forms an M×M matrix.
#[derive(Clone, Copy, Debug)]
pub enum TestTestKernel<'a> {
    /// Σ(X*, X*), M×M, symmetric.
    Full(ArrayView2<'a, f64>),
    /// Σ(x*, x*) for each test point, length M.
    Diagonal(ArrayView1<'a, f64>),
}

/// Which covariance to compute (model-level methods evaluate the matching test–test kernel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CovarianceMode {
    /// The M×M covariance over test points.
    #[default]
    Full,
    /// Only the variances: O(M·N) memory beyond the factorisation.
    Diagonal,
}

/// The covariance over test points of a predictive [`Gaussian`].
#[derive(Clone, Debug, PartialEq)]
pub enum Covariance {
    /// M×M, symmetric.
    Full(Array2<f64>),
    /// The M variances. Rounding can leave an entry a few ε·k(x, x) below 0 where the
    /// exact variance is 0 (a test point equal to a training point without ridge).
    Diagonal(Array1<f64>),
}

impl Covariance {
    /// The variances (the diagonal of a full covariance).
    pub fn variances(&self) -> Array1<f64> {
        match self {
            Covariance::Full(c) => c.diag().to_owned(),
            Covariance::Diagonal(v) => v.clone(),
        }
    }

    /// The full matrix, when it was computed.
    pub fn full(&self) -> Option<&Array2<f64>> {
        match self {
            Covariance::Full(c) => Some(c),
            Covariance::Diagonal(_) => None,
        }
    }
}

/// The distribution of the outputs on a test set over random initialisations: Gaussian,
/// with an M×C mean and a covariance over the M test points shared by every output.
#[derive(Clone, Debug, PartialEq)]
pub struct Gaussian {
    /// M×C.
    pub mean: Array2<f64>,
    /// Over test points, the same for each of the C outputs.
    pub covariance: Covariance,
}

/// Validates a test–test kernel against M test points.
pub(crate) fn check_test_test(k: &TestTestKernel<'_>, m: usize) -> Result<()> {
    match k {
        TestTestKernel::Full(k) => check::square_kernel("k_test_test", *k, m),
        TestTestKernel::Diagonal(v) => check::vector("k_test_test diagonal", *v, m),
    }
}

/// Validates the inputs of an NTK covariance against N training examples.
pub(crate) fn check_ntk_inputs(
    ntk_test_train: ArrayView2<f64>,
    nngp_test_train: ArrayView2<f64>,
    nngp_train: ArrayView2<f64>,
    nngp_test_test: &TestTestKernel<'_>,
    n: usize,
) -> Result<()> {
    check::test_kernel(ntk_test_train, n)?;
    check::non_empty("nngp_test_train", nngp_test_train)?;
    check::dim(
        "rows of nngp_test_train (one per test point, as ntk_test_train)",
        ntk_test_train.nrows(),
        nngp_test_train.nrows(),
    )?;
    check::dim(
        "columns of nngp_test_train (one per training example)",
        n,
        nngp_test_train.ncols(),
    )?;
    check::finite("nngp_test_train", nngp_test_train)?;
    check::square_kernel("nngp_train", nngp_train, n)?;
    check_test_test(nngp_test_test, ntk_test_train.nrows())
}

/// (C + Cᵀ)/2: removes the rounding-level asymmetry of products that are symmetric in exact
/// arithmetic.
fn symmetrised(c: Array2<f64>) -> Array2<f64> {
    let ct = c.t().to_owned();
    (c + ct) * 0.5
}

/// Σ** − WᵀW for W N×M (the NNGP covariance once W carries the solve).
pub(crate) fn gp_covariance(w: ArrayView2<f64>, k_test_test: TestTestKernel<'_>) -> Covariance {
    match k_test_test {
        TestTestKernel::Full(k) => Covariance::Full(symmetrised(&k - &w.t().dot(&w))),
        TestTestKernel::Diagonal(k) => {
            let reduced = w.map_axis(Axis(0), |col| col.dot(&col));
            Covariance::Diagonal(&k - &reduced)
        }
    }
}

/// Σ** − P − Pᵀ + Zᵀ Σ(X, X) Z with P = Σ* Z, for Z = G Θ*ᵀ (N×M) (the NTK covariance).
/// The diagonal needs only the column sums of Z ⊙ Σ*ᵀ and Z ⊙ (Σ(X, X) Z): O(M·N) memory.
pub(crate) fn ntk_covariance(
    z: ArrayView2<f64>,
    nngp_test_train: ArrayView2<f64>,
    nngp_train: ArrayView2<f64>,
    k_test_test: TestTestKernel<'_>,
) -> Covariance {
    let kz = nngp_train.dot(&z); // N×M
    match k_test_test {
        TestTestKernel::Full(k) => {
            let p = nngp_test_train.dot(&z); // M×M
            let q = z.t().dot(&kz);
            Covariance::Full(symmetrised(&k - &p - p.t() + &q))
        }
        TestTestKernel::Diagonal(k) => {
            let mut var = k.to_owned();
            Zip::from(&mut var)
                .and(z.columns())
                .and(nngp_test_train.rows())
                .and(kz.columns())
                .for_each(|v, zc, sc, kzc| {
                    *v += zc.dot(&kzc) - 2.0 * zc.dot(&sc);
                });
            Covariance::Diagonal(var)
        }
    }
}

fn check_learning_rate(eta: f64) -> Result<()> {
    if eta.is_finite() && eta > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name: "learning_rate",
            value: eta.to_string(),
            reason: "the learning rate must be finite and positive".into(),
        })
    }
}

/// The training kernel of an ensemble with its two factorisations, each built on first use
/// and kept: the Cholesky factor of K + rI (t = ∞) and the eigendecomposition of K + rI
/// (finite t), as neural-tangents caches them.
///
/// Fields `pub(crate)` for `crate::persist`, which saves the kernel, the targets, the
/// options and whichever factorisation has been built.
#[derive(Clone, Debug)]
pub(crate) struct Factors {
    pub(crate) k_train: Array2<f64>,
    pub(crate) y: Array2<f64>,
    pub(crate) ridge: f64,
    pub(crate) options: EnsembleOptions,
    pub(crate) cholesky: OnceLock<KernelRegression>,
    pub(crate) flow: OnceLock<GradientFlow>,
}

/// Which kept factorisation serves a time.
enum Route<'a> {
    Infinite(&'a KernelRegression),
    Finite(&'a GradientFlow, f64),
}

impl Factors {
    fn new(k_train: ArrayView2<f64>, y: ArrayView2<f64>, options: EnsembleOptions) -> Result<Self> {
        check::train_inputs(k_train, y)?;
        check_learning_rate(options.learning_rate)?;
        let ridge = options.ridge.resolve(k_train)?;
        Ok(Factors {
            k_train: k_train.to_owned(),
            y: y.to_owned(),
            ridge,
            options,
            cholesky: OnceLock::new(),
            flow: OnceLock::new(),
        })
    }

    fn cholesky(&self) -> Result<&KernelRegression> {
        if let Some(c) = self.cholesky.get() {
            return Ok(c);
        }
        let c = KernelRegression::fit(self.k_train.view(), self.y.view(), self.ridge)?;
        Ok(self.cholesky.get_or_init(|| c))
    }

    fn flow(&self) -> Result<&GradientFlow> {
        if let Some(f) = self.flow.get() {
            return Ok(f);
        }
        let f = GradientFlow::with_ridge(
            self.k_train.view(),
            self.y.view(),
            self.options.learning_rate,
            self.ridge,
        )?;
        Ok(self.flow.get_or_init(|| f))
    }

    /// Validates t on the user's clock and picks the factorisation: t = ∞ by Cholesky (the
    /// t = None of neural-tangents), finite t by the eigendecomposition at infw's time.
    fn route(&self, t: f64) -> Result<Route<'_>> {
        if t.is_nan() || t < 0.0 {
            return Err(Error::InvalidArgument {
                name: "t",
                value: t.to_string(),
                reason: "time must be non-negative (f64::INFINITY for the t = ∞ limit)".into(),
            });
        }
        if t == f64::INFINITY {
            return Ok(Route::Infinite(self.cholesky()?));
        }
        let summed = self
            .options
            .time
            .to_summed(t, self.y.nrows(), self.y.ncols());
        Ok(Route::Finite(self.flow()?, summed))
    }
}

/// The NNGP ensemble: infinitely wide networks whose readout layer is trained by gradient
/// flow on MSE from a random initialisation, i.e. the Gaussian process Σ conditioned by the
/// flow (docs/math.md §5, "Predictive uncertainty"). At t = ∞ it is the GP posterior with
/// noise variance r: mean Σ*(Σ + rI)⁻¹Y, covariance Σ** − Σ*(Σ + rI)⁻¹Σ*ᵀ.
#[derive(Clone, Debug)]
pub struct NngpEnsemble {
    pub(crate) factors: Factors,
}

impl NngpEnsemble {
    /// Prepares the ensemble from Σ(X, X) (N×N, symmetric) and the targets Y (N×C). The
    /// factorisations are computed on first use (Cholesky for t = ∞, eigendecomposition for
    /// finite t) and kept. Errors: shapes, non-finite values, a non-symmetric kernel, a bad
    /// learning rate or ridge.
    pub fn new(
        k_train: ArrayView2<f64>,
        y: ArrayView2<f64>,
        options: EnsembleOptions,
    ) -> Result<Self> {
        Ok(NngpEnsemble {
            factors: Factors::new(k_train, y, options)?,
        })
    }

    /// The mean Σ* A⁻¹(I − e^{−ηAt})Y at time `t` (A = Σ(X, X) + rI; t = ∞: Σ* A⁻¹ Y), from
    /// Σ(X*, X) (M×N).
    pub fn mean(&self, k_test_train: ArrayView2<f64>, t: f64) -> Result<Array2<f64>> {
        match self.factors.route(t)? {
            Route::Infinite(c) => c.predict(k_test_train),
            Route::Finite(f, t) => f.predict(k_test_train, t),
        }
    }

    /// Mean and covariance at time `t` (f64::INFINITY for the limit), from Σ(X*, X) (M×N)
    /// and Σ(X*, X*) in full or its diagonal (see [`GradientFlow::nngp_ensemble`] and
    /// [`KernelRegression::gp_posterior`] for the formulas). Errors: shapes, non-finite
    /// values, t < 0 or NaN, [`Error::NotPositiveDefinite`] at t = ∞ without a ridge on a
    /// singular kernel.
    pub fn predict(
        &self,
        k_test_train: ArrayView2<f64>,
        k_test_test: TestTestKernel<'_>,
        t: f64,
    ) -> Result<Gaussian> {
        match self.factors.route(t)? {
            Route::Infinite(c) => c.gp_posterior(k_test_train, k_test_test),
            Route::Finite(f, t) => f.nngp_ensemble(k_test_train, k_test_test, t),
        }
    }

    /// The absolute ridge r in use.
    pub fn ridge(&self) -> f64 {
        self.factors.ridge
    }

    /// The options the ensemble was built with.
    pub fn options(&self) -> EnsembleOptions {
        self.factors.options
    }
}

/// The NTK ensemble: infinitely wide networks trained (all layers) by gradient flow on MSE
/// from a random initialisation f_0 ~ GP(0, Σ), averaged over the initialisation
/// (docs/math.md §5, "Predictive uncertainty"; neural-tangents' `get='ntk'`).
#[derive(Clone, Debug)]
pub struct NtkEnsemble {
    pub(crate) factors: Factors,
    pub(crate) nngp_train: Array2<f64>,
}

impl NtkEnsemble {
    /// Prepares the ensemble from Θ(X, X) and Σ(X, X) (both N×N, symmetric) and the targets
    /// Y (N×C). The ridge (relative: to mean diag Θ) goes on Θ only; Σ(X, X) enters the
    /// covariance unregularised. Factorisations of Θ + rI are computed on first use and kept.
    pub fn new(
        ntk_train: ArrayView2<f64>,
        nngp_train: ArrayView2<f64>,
        y: ArrayView2<f64>,
        options: EnsembleOptions,
    ) -> Result<Self> {
        let factors = Factors::new(ntk_train, y, options)?;
        check::square_kernel("nngp_train", nngp_train, ntk_train.nrows())?;
        Ok(NtkEnsemble {
            factors,
            nngp_train: nngp_train.to_owned(),
        })
    }

    /// The mean Θ* A⁻¹(I − e^{−ηAt})Y at time `t` (A = Θ(X, X) + rI), from Θ(X*, X) (M×N).
    pub fn mean(&self, ntk_test_train: ArrayView2<f64>, t: f64) -> Result<Array2<f64>> {
        match self.factors.route(t)? {
            Route::Infinite(c) => c.predict(ntk_test_train),
            Route::Finite(f, t) => f.predict(ntk_test_train, t),
        }
    }

    /// Mean and covariance at time `t`, from Θ(X*, X), Σ(X*, X) (both M×N) and Σ(X*, X*) in
    /// full or its diagonal (formulas: [`GradientFlow::ntk_ensemble`],
    /// [`KernelRegression::ntk_ensemble`]).
    pub fn predict(
        &self,
        ntk_test_train: ArrayView2<f64>,
        nngp_test_train: ArrayView2<f64>,
        nngp_test_test: TestTestKernel<'_>,
        t: f64,
    ) -> Result<Gaussian> {
        let k = self.nngp_train.view();
        match self.factors.route(t)? {
            Route::Infinite(c) => {
                c.ntk_ensemble(ntk_test_train, nngp_test_train, k, nngp_test_test)
            }
            Route::Finite(f, t) => {
                f.ntk_ensemble(ntk_test_train, nngp_test_train, k, nngp_test_test, t)
            }
        }
    }

    /// The absolute ridge r in use (on Θ).
    pub fn ridge(&self) -> f64 {
        self.factors.ridge
    }

    /// The options the ensemble was built with.
    pub fn options(&self) -> EnsembleOptions {
        self.factors.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::testutil::{dense_solve, gaussian, rel_err, spd};
    use ndarray::s;

    /// Joint kernels on N train + M test points: Σ and Θ, each SPD on the N + M points.
    struct Joint {
        k: Array2<f64>,
        theta: Array2<f64>,
    }

    impl Joint {
        fn new(n: usize, m: usize, seed: u64) -> Joint {
            Joint {
                k: spd(n + m, 0.3, seed),
                theta: spd(n + m, 0.6, seed + 1),
            }
        }
        fn train(a: &Array2<f64>, n: usize) -> Array2<f64> {
            a.slice(s![..n, ..n]).to_owned()
        }
        fn test_train(a: &Array2<f64>, n: usize) -> Array2<f64> {
            a.slice(s![n.., ..n]).to_owned()
        }
        fn test_test(a: &Array2<f64>, n: usize) -> Array2<f64> {
            a.slice(s![n.., n..]).to_owned()
        }
    }

    /// A⁻¹(I − e^{−sA}) B = s·φ(−sA) B with φ(z) = (e^z − 1)/z = Σ_k z^k/(k+1)!, summed as a
    /// Taylor series: no eigendecomposition, no Cholesky. With s‖A‖ ≲ 3 the terms sum to
    /// ≲ e³‖B‖ and the series' rounding is ~1e-13 relative.
    fn taylor(a: &Array2<f64>, b: &Array2<f64>, s: f64) -> Array2<f64> {
        let mut term = b * s;
        let mut sum = term.clone();
        for j in 1..120 {
            term = a.dot(&term) * (-s / (j as f64 + 1.0));
            sum += &term;
        }
        sum
    }

    fn with_ridge(a: &Array2<f64>, r: f64) -> Array2<f64> {
        let mut a = a.clone();
        for i in 0..a.nrows() {
            a[[i, i]] += r;
        }
        a
    }

    /// Finite t against the Taylor reference of the formulas of docs/math.md §5
    /// ("Predictive uncertainty"), NNGP and NTK, full and diagonal, mean-loss clock with a
    /// relative ridge. κ ≲ 20 here, so the eigen route errs by ~N·κ·ε ≈ 1e-14 and the series
    /// by ~1e-13; tolerance 1e-11.
    #[test]
    fn finite_time_matches_a_taylor_reference() {
        let (n, m, c) = (7, 4, 2);
        let j = Joint::new(n, m, 101);
        let y = gaussian(n, c, 103);
        let (eta, t_nt, rel) = (0.8, 5.0, 1e-2);
        let opts = EnsembleOptions {
            learning_rate: eta,
            ridge: Ridge::RelativeToMeanDiagonal(rel),
            time: TimeConvention::MeanLoss,
        };
        let s_t = eta * t_nt / (n * c) as f64; // η·t on infw's clock
        let (kxx, kxt, ktt) = (
            Joint::train(&j.k, n),
            Joint::test_train(&j.k, n),
            Joint::test_test(&j.k, n),
        );
        let (txx, txt) = (Joint::train(&j.theta, n), Joint::test_train(&j.theta, n));
        let mean_diag = |a: &Array2<f64>| a.diag().sum() / n as f64;

        // NNGP
        let a = with_ridge(&kxx, rel * mean_diag(&kxx));
        let mean_ref = kxt.dot(&taylor(&a, &y, s_t));
        let cov_ref = &ktt - &kxt.dot(&taylor(&a, &kxt.t().to_owned(), 2.0 * s_t));
        let gp = NngpEnsemble::new(kxx.view(), y.view(), opts).unwrap();
        assert_eq!(gp.ridge(), rel * mean_diag(&kxx));
        let g = gp
            .predict(kxt.view(), TestTestKernel::Full(ktt.view()), t_nt)
            .unwrap();
        assert!(rel_err(g.mean.view(), mean_ref.view()) < 1e-11);
        let cov = g.covariance.full().unwrap();
        assert!(rel_err(cov.view(), cov_ref.view()) < 1e-11);
        assert_eq!(cov, &cov.t().to_owned(), "exactly symmetric");
        let d = gp
            .predict(kxt.view(), TestTestKernel::Diagonal(ktt.diag()), t_nt)
            .unwrap();
        let var_ref = cov_ref.diag().to_owned().insert_axis(Axis(1));
        let var = d.covariance.variances().insert_axis(Axis(1));
        assert!(rel_err(var.view(), var_ref.view()) < 1e-11);
        assert!(rel_err(gp.mean(kxt.view(), t_nt).unwrap().view(), mean_ref.view()) < 1e-11);

        // NTK
        let a = with_ridge(&txx, rel * mean_diag(&txx));
        let z = taylor(&a, &txt.t().to_owned(), s_t); // G Θ*ᵀ
        let mean_ref = txt.dot(&taylor(&a, &y, s_t));
        let p = kxt.dot(&z);
        let cov_ref = &ktt - &p - p.t() + &z.t().dot(&kxx).dot(&z);
        let ntk = NtkEnsemble::new(txx.view(), kxx.view(), y.view(), opts).unwrap();
        let g = ntk
            .predict(
                txt.view(),
                kxt.view(),
                TestTestKernel::Full(ktt.view()),
                t_nt,
            )
            .unwrap();
        assert!(rel_err(g.mean.view(), mean_ref.view()) < 1e-11);
        assert!(rel_err(g.covariance.full().unwrap().view(), cov_ref.view()) < 1e-11);
        let d = ntk
            .predict(
                txt.view(),
                kxt.view(),
                TestTestKernel::Diagonal(ktt.diag()),
                t_nt,
            )
            .unwrap();
        let var_ref = cov_ref.diag().to_owned().insert_axis(Axis(1));
        let var = d.covariance.variances().insert_axis(Axis(1));
        assert!(rel_err(var.view(), var_ref.view()) < 1e-11);
    }

    /// t = ∞ (Cholesky route) against dense Gaussian elimination, absolute ridge, infw's
    /// clock; and a large finite t (eigen route, e^{−ηλt} < e^{−60}) against t = ∞.
    #[test]
    fn infinite_time_matches_dense_elimination_and_the_large_time_limit() {
        let (n, m, c, r) = (8, 3, 3, 0.05);
        let j = Joint::new(n, m, 111);
        let y = gaussian(n, c, 113);
        let opts = EnsembleOptions {
            ridge: Ridge::Absolute(r),
            ..EnsembleOptions::default()
        };
        let (kxx, kxt, ktt) = (
            Joint::train(&j.k, n),
            Joint::test_train(&j.k, n),
            Joint::test_test(&j.k, n),
        );
        let (txx, txt) = (Joint::train(&j.theta, n), Joint::test_train(&j.theta, n));
        let a = with_ridge(&kxx, r);
        let cov_ref = &ktt - &kxt.dot(&dense_solve(a.view(), kxt.t()));
        let mean_ref = kxt.dot(&dense_solve(a.view(), y.view()));
        let gp = NngpEnsemble::new(kxx.view(), y.view(), opts).unwrap();
        let large_t = 60.0 / 0.3; // λ_min(A) ≥ 0.3 + r
        for t in [f64::INFINITY, large_t] {
            let g = gp
                .predict(kxt.view(), TestTestKernel::Full(ktt.view()), t)
                .unwrap();
            assert!(rel_err(g.mean.view(), mean_ref.view()) < 1e-11, "t = {t}");
            assert!(rel_err(g.covariance.full().unwrap().view(), cov_ref.view()) < 1e-11);
        }
        let a = with_ridge(&txx, r);
        let z = dense_solve(a.view(), txt.t());
        let p = kxt.dot(&z);
        let cov_ref = &ktt - &p - p.t() + &z.t().dot(&kxx).dot(&z);
        let mean_ref = txt.dot(&dense_solve(a.view(), y.view()));
        let ntk = NtkEnsemble::new(txx.view(), kxx.view(), y.view(), opts).unwrap();
        for t in [f64::INFINITY, 60.0 / 0.6] {
            for diag in [false, true] {
                let tt = if diag {
                    TestTestKernel::Diagonal(ktt.diag())
                } else {
                    TestTestKernel::Full(ktt.view())
                };
                let g = ntk.predict(txt.view(), kxt.view(), tt, t).unwrap();
                assert!(rel_err(g.mean.view(), mean_ref.view()) < 1e-11, "t = {t}");
                let var = g.covariance.variances().insert_axis(Axis(1));
                let var_ref = cov_ref.diag().to_owned().insert_axis(Axis(1));
                assert!(rel_err(var.view(), var_ref.view()) < 1e-11);
                if !diag {
                    assert!(rel_err(g.covariance.full().unwrap().view(), cov_ref.view()) < 1e-11);
                }
            }
        }
    }

    /// t = 0 is the prior: mean exactly 0, covariance exactly Σ(X*, X*), for both kernels.
    #[test]
    fn time_zero_is_the_prior() {
        let (n, m) = (5, 3);
        let j = Joint::new(n, m, 121);
        let y = gaussian(n, 2, 122);
        let (kxx, kxt, ktt) = (
            Joint::train(&j.k, n),
            Joint::test_train(&j.k, n),
            Joint::test_test(&j.k, n),
        );
        let (txx, txt) = (Joint::train(&j.theta, n), Joint::test_train(&j.theta, n));
        let opts = EnsembleOptions::neural_tangents(1.0, 1e-3, false);
        let ntk = NtkEnsemble::new(txx.view(), kxx.view(), y.view(), opts).unwrap();
        let g = ntk
            .predict(
                txt.view(),
                kxt.view(),
                TestTestKernel::Full(ktt.view()),
                0.0,
            )
            .unwrap();
        assert!(g.mean.iter().all(|&v| v == 0.0));
        assert_eq!(g.covariance.full().unwrap(), &ktt);
        let gp = NngpEnsemble::new(kxx.view(), y.view(), opts).unwrap();
        let g = gp
            .predict(kxt.view(), TestTestKernel::Diagonal(ktt.diag()), 0.0)
            .unwrap();
        assert!(g.mean.iter().all(|&v| v == 0.0));
        assert_eq!(g.covariance.variances(), ktt.diag().to_owned());
    }

    #[test]
    fn time_conventions_and_ridges() {
        assert_eq!(TimeConvention::default(), TimeConvention::SummedLoss);
        assert_eq!(TimeConvention::MeanLoss.to_summed(12.0, 3, 2), 2.0);
        assert_eq!(TimeConvention::SummedLoss.to_summed(12.0, 3, 2), 12.0);
        assert_eq!(
            TimeConvention::MeanLoss.to_summed(f64::INFINITY, 3, 2),
            f64::INFINITY
        );
        let k = ndarray::array![[2.0, 0.1], [0.1, 4.0]];
        assert_eq!(Ridge::Absolute(0.5).resolve(k.view()).unwrap(), 0.5);
        assert_eq!(
            Ridge::RelativeToMeanDiagonal(0.5)
                .resolve(k.view())
                .unwrap(),
            1.5
        );
        for bad in [
            Ridge::Absolute(-1.0),
            Ridge::RelativeToMeanDiagonal(f64::INFINITY),
        ] {
            assert!(matches!(
                bad.resolve(k.view()),
                Err(Error::InvalidArgument { name: "ridge", .. })
            ));
        }
        let neg = ndarray::array![[-2.0, 0.0], [0.0, -1.0]];
        assert!(Ridge::RelativeToMeanDiagonal(0.1)
            .resolve(neg.view())
            .is_err());
    }

    #[test]
    fn shape_time_and_value_errors_are_typed() {
        let (n, m) = (5, 3);
        let j = Joint::new(n, m, 131);
        let y = gaussian(n, 2, 132);
        let (kxx, kxt, ktt) = (
            Joint::train(&j.k, n),
            Joint::test_train(&j.k, n),
            Joint::test_test(&j.k, n),
        );
        let (txx, txt) = (Joint::train(&j.theta, n), Joint::test_train(&j.theta, n));
        let opts = EnsembleOptions::default();
        let gp = NngpEnsemble::new(kxx.view(), y.view(), opts).unwrap();
        let full = TestTestKernel::Full(ktt.view());
        for t in [-0.5, f64::NAN, f64::NEG_INFINITY] {
            assert!(matches!(
                gp.predict(kxt.view(), full, t),
                Err(Error::InvalidArgument { name: "t", .. })
            ));
        }
        let shape = |r: Result<Gaussian>| matches!(r, Err(Error::ShapeMismatch { .. }));
        // test–test of the wrong size, full and diagonal
        let small = ktt.slice(s![..2, ..2]);
        assert!(shape(gp.predict(
            kxt.view(),
            TestTestKernel::Full(small),
            1.0
        )));
        let short = ktt.diag().slice_move(s![..2]);
        assert!(shape(gp.predict(
            kxt.view(),
            TestTestKernel::Diagonal(short),
            f64::INFINITY
        )));
        // test–train with the wrong number of columns
        let wide = gaussian(m, n + 1, 133);
        assert!(shape(gp.predict(wide.view(), full, 1.0)));
        // NTK: Σ* with the wrong number of rows, Σ(X, X) of the wrong size
        let ntk = NtkEnsemble::new(txx.view(), kxx.view(), y.view(), opts).unwrap();
        let kxt_short = kxt.slice(s![..2, ..]);
        assert!(shape(ntk.predict(txt.view(), kxt_short, full, 1.0)));
        assert!(matches!(
            NtkEnsemble::new(txx.view(), kxx.slice(s![..4, ..4]), y.view(), opts),
            Err(Error::ShapeMismatch { .. })
        ));
        // non-finite values
        let mut bad = ktt.clone();
        bad[[1, 1]] = f64::NAN;
        assert!(matches!(
            gp.predict(kxt.view(), TestTestKernel::Full(bad.view()), 1.0),
            Err(Error::NonFinite { row: 1, col: 1, .. })
        ));
        let mut bad_diag = ktt.diag().to_owned();
        bad_diag[2] = f64::INFINITY;
        assert!(matches!(
            ntk.predict(
                txt.view(),
                kxt.view(),
                TestTestKernel::Diagonal(bad_diag.view()),
                1.0
            ),
            Err(Error::NonFinite { row: 2, .. })
        ));
        // a non-symmetric test–test kernel
        let mut asym = ktt.clone();
        asym[[0, 2]] += 0.1;
        assert!(matches!(
            gp.predict(kxt.view(), TestTestKernel::Full(asym.view()), 1.0),
            Err(Error::InvalidArgument {
                name: "k_test_test",
                ..
            })
        ));
        // bad learning rate
        let opts_bad = EnsembleOptions {
            learning_rate: f64::NAN,
            ..opts
        };
        assert!(matches!(
            NngpEnsemble::new(kxx.view(), y.view(), opts_bad),
            Err(Error::InvalidArgument {
                name: "learning_rate",
                ..
            })
        ));
        // a singular kernel without ridge: the typed error at t = ∞, not a panic
        let x = gaussian(n, 2, 134);
        let low_rank = x.dot(&x.t());
        let low_rank = (&low_rank + &low_rank.t()) / 2.0;
        let sing = NngpEnsemble::new(low_rank.view(), y.view(), opts).unwrap();
        let kxt_lr = gaussian(m, n, 135);
        assert!(matches!(
            sing.predict(kxt_lr.view(), full, f64::INFINITY),
            Err(Error::NotPositiveDefinite { .. })
        ));
        // a flow with a given f_0 has no ensemble over f_0
        let flow = GradientFlow::with_initial(kxx.view(), y.view(), 1.0, y.view()).unwrap();
        assert!(matches!(
            flow.nngp_ensemble(kxt.view(), full, 1.0),
            Err(Error::InvalidArgument {
                name: "f0_train",
                ..
            })
        ));
    }
}
