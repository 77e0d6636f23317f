//! [`EnsembleModel`]: a network with its training set and an MSE ensemble
//! ([`NngpEnsemble`] or [`NtkEnsemble`]), so that predicting the mean and covariance on new
//! inputs evaluates only the test kernels (docs/math.md §5, "Predictive uncertainty").

use super::predictive::{
    CovarianceMode, EnsembleOptions, Gaussian, NngpEnsemble, NtkEnsemble, TestTestKernel,
};
use crate::network::TrainingInputs;
use crate::{KernelKind, KernelProgram, Network, Result, Want};
use ndarray::{Array1, Array2, ArrayBase, ArrayView2, Data, Ix2};

/// The test–test NNGP kernel of a [`CovarianceMode`], owned.
#[derive(Debug)]
pub(crate) enum TestTestOwned {
    Full(Array2<f64>),
    Diagonal(Array1<f64>),
}

impl TestTestOwned {
    pub(crate) fn view(&self) -> TestTestKernel<'_> {
        match self {
            TestTestOwned::Full(k) => TestTestKernel::Full(k.view()),
            TestTestOwned::Diagonal(k) => TestTestKernel::Diagonal(k.view()),
        }
    }
}

/// Σ(X*, X*) in full, or only its diagonal, as `mode` asks.
pub(crate) fn nngp_test_test<K: KernelProgram>(
    net: &Network<K>,
    x: ArrayView2<f64>,
    mode: CovarianceMode,
) -> Result<TestTestOwned> {
    Ok(match mode {
        CovarianceMode::Full => TestTestOwned::Full(net.nngp(&x, &x)?),
        CovarianceMode::Diagonal => TestTestOwned::Diagonal(
            net.program()
                .diagonals(x, Want::NNGP)?
                .nngp
                .expect("requested"),
        ),
    })
}

#[derive(Clone, Debug)]
pub(crate) enum Inner {
    Nngp(NngpEnsemble),
    Ntk(NtkEnsemble),
}

/// The ensemble over random initialisations of the infinitely wide network of one
/// declaration trained by gradient flow on MSE, NNGP (readout only) or NTK (all layers),
/// with its training inputs kept (docs/math.md §5, "Predictive uncertainty"). Built by
/// [`Network::mse_ensemble`].
#[derive(Clone, Debug)]
pub struct EnsembleModel<K> {
    pub(crate) net: Network<K>,
    pub(crate) x_train: Array2<f64>,
    pub(crate) inner: Inner,
}

impl<K: KernelProgram + Clone> EnsembleModel<K> {
    /// Evaluates the training kernels (Σ(X, X), and Θ(X, X) for the NTK, in one pass) and
    /// prepares the ensemble; the factorisations are computed on first prediction and kept.
    pub fn fit<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        net: &Network<K>,
        kind: KernelKind,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        options: EnsembleOptions,
    ) -> Result<Self> {
        crate::validate::check_inputs(x_train.view(), None)?;
        let inner = match kind {
            KernelKind::Nngp => {
                let k = net.nngp(x_train, x_train)?;
                Inner::Nngp(NngpEnsemble::new(k.view(), y_train.view(), options)?)
            }
            KernelKind::Ntk => {
                let (k, theta) = net.nngp_ntk(x_train, x_train)?;
                Inner::Ntk(NtkEnsemble::new(
                    theta.view(),
                    k.view(),
                    y_train.view(),
                    options,
                )?)
            }
        };
        Ok(EnsembleModel {
            net: net.clone(),
            x_train: x_train.to_owned(),
            inner,
        })
    }

    /// Which ensemble this is.
    pub fn kind(&self) -> KernelKind {
        match self.inner {
            Inner::Nngp(_) => KernelKind::Nngp,
            Inner::Ntk(_) => KernelKind::Ntk,
        }
    }

    /// The model at training time `t` (on the clock of the options; `f64::INFINITY` for the
    /// limit): [`AtTime::predict`](crate::model::AtTime) gives the mean, `predict_with_uncertainty`
    /// mean and covariance. `t` is checked when predicting.
    pub fn at(&self, t: f64) -> crate::model::AtTime<'_, Self> {
        crate::model::AtTime::new(self, t)
    }

    /// The mean prediction at `x` after time `t`. Evaluates only the test–train kernel.
    pub(crate) fn mean_at<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        t: f64,
    ) -> Result<Array2<f64>> {
        let train = TrainingInputs::of(&self.x_train);
        match &self.inner {
            Inner::Nngp(e) => e.mean(self.net.nngp(x, &self.x_train)?.view(), t),
            Inner::Ntk(e) => {
                let k = self.net.kernels(x, train, Want::NTK)?;
                e.mean(k.ntk.expect("requested").view(), t)
            }
        }
    }

    /// Mean and covariance at `x` after time `t`. `mode` chooses the full M×M covariance or
    /// only the variances (then Σ(x, x) is evaluated per point and no M×M matrix is formed).
    pub(crate) fn predict_with_uncertainty_at<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        t: f64,
        mode: CovarianceMode,
    ) -> Result<Gaussian> {
        crate::validate::check_inputs(x.view(), Some(self.x_train.view()))?;
        let train = TrainingInputs::of(&self.x_train);
        let k_tt = nngp_test_test(&self.net, x.view(), mode)?;
        match &self.inner {
            Inner::Nngp(e) => {
                let k = self.net.kernels(x, train, Want::NNGP)?;
                e.predict(k.nngp.expect("requested").view(), k_tt.view(), t)
            }
            Inner::Ntk(e) => {
                let k = self.net.kernels(x, train, Want::NNGP_NTK)?;
                e.predict(
                    k.ntk.expect("requested").view(),
                    k.nngp.expect("requested").view(),
                    k_tt.view(),
                    t,
                )
            }
        }
    }

    /// The NNGP ensemble, when this is one.
    pub fn nngp(&self) -> Option<&NngpEnsemble> {
        match &self.inner {
            Inner::Nngp(e) => Some(e),
            Inner::Ntk(_) => None,
        }
    }

    /// The NTK ensemble, when this is one.
    pub fn ntk(&self) -> Option<&NtkEnsemble> {
        match &self.inner {
            Inner::Ntk(e) => Some(e),
            Inner::Nngp(_) => None,
        }
    }
}
