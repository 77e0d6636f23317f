//! Solvers for the NTK limit trained with MSE (docs/math.md §5): kernel regression and full-batch
//! gradient flow in function space.
//!
//! Each solver is a prepared object that keeps its factorisation (a Cholesky factor for
//! [`KernelRegression`], a symmetric eigendecomposition for [`GradientFlow`]), so predicting
//! on many test sets or at many times does not refactor — the habit of faer's `Llt` and of
//! neural-tangents' `predict` functions. No explicit inverse is ever formed.
//!
//! The same factorisations give the predictive mean **and covariance** over random
//! initialisations, for the NNGP and the NTK, at t = ∞ and any t ([`NngpEnsemble`],
//! [`NtkEnsemble`], and at the network level [`EnsembleModel`]; docs/math.md §5,
//! "Predictive uncertainty"), with neural-tangents' conventions as options ([`Ridge`],
//! [`TimeConvention`]). [`kernel_diagonals`] gives k(x, x) per point for the variances.
//!
//! ```
//! use infw_runtime::solve::{GradientFlow, KernelRegression};
//! use ndarray::array;
//!
//! let k = array![[2.0, 0.5], [0.5, 1.0]]; // Θ(X, X)
//! let y = array![[1.0], [-1.0]];
//! let k_test = array![[1.0, 0.2]]; // Θ(X*, X)
//!
//! let ridge = KernelRegression::fit(k.view(), y.view(), 1e-6)?;
//! let flow = GradientFlow::new(k.view(), y.view(), 1.0)?;
//! let at_infinity = flow.predict(k_test.view(), f64::INFINITY)?;
//! let regression = ridge.predict(k_test.view())?;
//! assert!((at_infinity[[0, 0]] - regression[[0, 0]]).abs() < 1e-5);
//! # Ok::<(), infw_runtime::Error>(())
//! ```

pub(crate) mod check;
mod diagonal;
pub(crate) mod ensemble;
mod falkon;
mod flow;
mod predictive;
#[cfg(feature = "serde")]
pub(crate) use predictive::Factors;
mod regression;

pub use diagonal::{kernel_diagonals, KernelDiagonals};
pub use ensemble::EnsembleModel;
pub use falkon::{
    draw_centres, Clamping, Falkon, FalkonOptions, FalkonProgress, FalkonReport, KernelRowPairs,
    KernelRows, NystromGp, NystromNtkEnsemble,
};
pub use flow::GradientFlow;
pub use predictive::{
    Covariance, CovarianceMode, EnsembleOptions, Gaussian, NngpEnsemble, NtkEnsemble, Ridge,
    TestTestKernel, TimeConvention,
};
pub use regression::KernelRegression;

#[cfg(test)]
pub(crate) mod testutil;
