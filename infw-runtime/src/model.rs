//! Models built from a [`Network`]: kernel regression, gradient flow and function-space
//! training of both limits (docs/math.md §5). Each keeps what it needs (the training inputs and a
//! prepared solver or trainer) so that predicting on new inputs computes only the
//! test-versus-train kernel.
//!
//! Every model predicts the same way: `predict(&x)`, one row per input and one column per
//! target, and `predict_with_uncertainty(&x, mode)` where a covariance exists. A model
//! whose prediction depends on the training time (gradient flow, the ensembles) is first
//! placed at that time with `at(t)`, which gives an [`AtTime`] with the same two methods.
use crate::gram::{check_inputs, KernelMatrices};
use crate::history::{EpochRecord, History};
use crate::network::TrainingInputs;
use crate::solve::{GradientFlow, KernelRegression};
use crate::train::{
    AdamLimit, Iterate, NtkKernel, NtkSgd, SignKernels, TestSet, TrainConfig, TrainSet, Trainer,
    UpdateRule,
};
use crate::{Error, KernelProgram, Network, Result, Want};
use ndarray::{Array2, ArrayBase, Data, Ix2};

/// Which kernel of the SGD limit a closed-form model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KernelKind {
    /// Σ^{L+1}: the posterior mean of the infinitely wide Bayesian network.
    Nngp,
    /// Θ^{L+1}: the infinitely wide network trained by gradient flow to convergence.
    Ntk,
}

impl KernelKind {
    /// The kernel to ask a Gram evaluation for.
    pub fn want(self) -> Want {
        match self {
            KernelKind::Nngp => Want::NNGP,
            KernelKind::Ntk => Want::NTK,
        }
    }
    fn take(self, k: KernelMatrices) -> Array2<f64> {
        match self {
            KernelKind::Nngp => k.nngp,
            KernelKind::Ntk => k.ntk,
        }
        .expect("requested kernel")
    }
}

/// Targets: one row per training input, finite, and as many columns as a declared final
/// `dense(C)` has outputs. The last is the rule `finite()` follows too: the declaration
/// fixes C, so every model of it (kernel or finite) refuses targets of another width.
fn check_targets(
    arch: &crate::Architecture,
    x_rows: usize,
    y: &ndarray::ArrayView2<f64>,
) -> Result<()> {
    if y.nrows() != x_rows {
        return Err(Error::ShapeMismatch {
            what: "rows of the targets (one per training input)".into(),
            expected: x_rows,
            found: y.nrows(),
        });
    }
    crate::validate::check_matrix("targets", y.view())?;
    arch.outputs_for(y.ncols()).map(|_| ())
}

/// Kernel regression K*(K + λI)⁻¹Y (docs/math.md §5, t = ∞), with its Cholesky factor kept.
#[derive(Debug)]
pub struct KernelModel<K> {
    pub(crate) net: Network<K>,
    pub(crate) kind: KernelKind,
    pub(crate) x_train: Array2<f64>,
    pub(crate) solver: KernelRegression,
}

impl<K: KernelProgram + Clone> KernelModel<K> {
    pub(crate) fn fit<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        net: &Network<K>,
        kind: KernelKind,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        ridge: f64,
    ) -> Result<Self> {
        check_inputs(x_train.view(), None)?;
        check_targets(net.architecture(), x_train.nrows(), &y_train.view())?;
        let k = kind.take(net.kernels(x_train, TrainingInputs::of(x_train), kind.want())?);
        let solver = KernelRegression::fit(k.view(), y_train.view(), ridge)?;
        Ok(KernelModel {
            net: net.clone(),
            kind,
            x_train: x_train.to_owned(),
            solver,
        })
    }

    /// Predictions at `x` (one row per input, one column per target).
    pub fn predict<S: Data<Elem = f64>>(&self, x: &ArrayBase<S, Ix2>) -> Result<Array2<f64>> {
        let k = self.kind.take(self.net.kernels(
            x,
            TrainingInputs::of(&self.x_train),
            self.kind.want(),
        )?);
        self.solver.predict(k.view())
    }

    /// The prepared solver (coefficients, factor).
    pub fn solver(&self) -> &KernelRegression {
        &self.solver
    }
}

/// Full-batch NTK gradient flow with MSE at any time t (docs/math.md §5), with the
/// eigendecomposition of Θ(X, X) kept for reuse across t.
#[derive(Debug)]
pub struct FlowModel<K> {
    pub(crate) net: Network<K>,
    pub(crate) x_train: Array2<f64>,
    pub(crate) flow: GradientFlow,
}

impl<K: KernelProgram + Clone> FlowModel<K> {
    /// The model at training time `t` (`f64::INFINITY` for the limit), for
    /// [`AtTime::predict`] and `predict_with_uncertainty`; `t` is checked when predicting.
    pub fn at(&self, t: f64) -> AtTime<'_, Self> {
        AtTime::new(self, t)
    }

    fn predict_at<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        t: f64,
    ) -> Result<Array2<f64>> {
        let k = self
            .net
            .kernels(x, TrainingInputs::of(&self.x_train), Want::NTK)?
            .ntk
            .expect("requested");
        self.flow.predict(k.view(), t)
    }

    /// The prepared flow (eigenvalues, train predictions).
    pub fn flow(&self) -> &GradientFlow {
        &self.flow
    }
}

/// A model placed at training time `t` (infw's summed-loss clock unless the model's options
/// say otherwise; `f64::INFINITY` for the limit): made by `FlowModel::at` and
/// `EnsembleModel::at`, it predicts like every other model.
///
/// (Checked in tests/function_space.rs: `at(0)` is f_0 = 0, `at(∞)` kernel regression.)
#[derive(Clone, Copy, Debug)]
pub struct AtTime<'a, M> {
    model: &'a M,
    t: f64,
}

impl<'a, M> AtTime<'a, M> {
    pub(crate) fn new(model: &'a M, t: f64) -> Self {
        AtTime { model, t }
    }

    /// The training time.
    pub fn time(&self) -> f64 {
        self.t
    }
}

impl<K: KernelProgram + Clone> AtTime<'_, FlowModel<K>> {
    /// Predictions at `x` (one row per input, one column per target).
    pub fn predict<S: Data<Elem = f64>>(&self, x: &ArrayBase<S, Ix2>) -> Result<Array2<f64>> {
        self.model.predict_at(x, self.t)
    }

    /// Mean and covariance at `x` over random initialisations (see
    /// `FlowModel::predict_with_uncertainty_at`'s description in docs/math.md §5,
    /// "Predictive uncertainty"): evaluates Σ(X, X) again, no new factorisation.
    pub fn predict_with_uncertainty<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        mode: crate::solve::CovarianceMode,
    ) -> Result<crate::solve::Gaussian> {
        self.model.predict_with_uncertainty_at(x, self.t, mode)
    }
}

impl<K: KernelProgram + Clone> AtTime<'_, crate::solve::EnsembleModel<K>> {
    /// The mean prediction at `x`; evaluates only the test–train kernel.
    pub fn predict<S: Data<Elem = f64>>(&self, x: &ArrayBase<S, Ix2>) -> Result<Array2<f64>> {
        self.model.mean_at(x, self.t)
    }

    /// Mean and covariance at `x`: `mode` chooses the full covariance or only the variances
    /// (then Σ(x, x) is evaluated per point and no T×T matrix is formed).
    pub fn predict_with_uncertainty<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        mode: crate::solve::CovarianceMode,
    ) -> Result<crate::solve::Gaussian> {
        self.model.predict_with_uncertainty_at(x, self.t, mode)
    }
}

/// An update rule of one of the two limits, with the kernels it needs (docs/math.md §4, §5).
pub trait LimitRule: UpdateRule + Sized {
    /// The rule's name, as saved files record it (`persist`, the `serde` feature).
    const NAME: &'static str;
    /// The kernels a Gram evaluation must produce for this rule.
    const WANT: Want;
    /// Packs the evaluated kernels (columns = training examples).
    fn pack(k: KernelMatrices) -> Result<Self::Kernels>;
}

impl LimitRule for NtkSgd {
    const NAME: &'static str = "ntk_sgd";
    const WANT: Want = Want::NTK;
    fn pack(k: KernelMatrices) -> Result<NtkKernel> {
        NtkKernel::new(k.ntk.expect("requested"))
    }
}

impl LimitRule for AdamLimit {
    const NAME: &'static str = "adam_limit";
    const WANT: Want = Want::ADAM;
    fn pack(k: KernelMatrices) -> Result<SignKernels> {
        SignKernels::new(k.readout.expect("requested"), k.hidden.expect("requested"))
    }
}

/// Per-example training of an infinite-width limit in function space (docs/math.md §5):
/// NTK-SGD ([`NtkSgd`]) or the Adam-like limit ([`AdamLimit`]).
pub struct FunctionSpaceModel<R: LimitRule, K> {
    pub(crate) net: Network<K>,
    pub(crate) x_train: Array2<f64>,
    pub(crate) trainer: Trainer<R>,
}

impl<R: LimitRule, K: KernelProgram + Clone> FunctionSpaceModel<R, K> {
    pub(crate) fn new<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        net: &Network<K>,
        rule: R,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        config: TrainConfig,
    ) -> Result<Self> {
        check_inputs(x_train.view(), None)?;
        check_targets(net.architecture(), x_train.nrows(), &y_train.view())?;
        let kernels = R::pack(net.kernels(x_train, TrainingInputs::of(x_train), R::WANT)?)?;
        Self::from_train_set(
            net,
            rule,
            x_train,
            TrainSet::new(kernels, y_train.to_owned())?,
            config,
        )
    }

    /// A model from kernels already evaluated on the training set (a [`TrainSet`]: packed
    /// kernels with columns = training examples, targets, and optionally the initial
    /// function f_0 on the training set), for runs that reuse one Gram matrix across
    /// learning rates or start from a finite network's initial outputs. `x_train` are the
    /// inputs the kernels were evaluated on (checked: one per kernel column), used for
    /// the test kernels of [`predict`](Self::predict).
    pub fn from_train_set<S: Data<Elem = f64>>(
        net: &Network<K>,
        rule: R,
        x_train: &ArrayBase<S, Ix2>,
        train: TrainSet<R::Kernels>,
        config: TrainConfig,
    ) -> Result<Self> {
        check_inputs(x_train.view(), None)?;
        if train.len() != x_train.nrows() {
            return Err(Error::ShapeMismatch {
                what: "training examples of the kernels vs rows of the training inputs".into(),
                expected: x_train.nrows(),
                found: train.len(),
            });
        }
        check_targets(net.architecture(), x_train.nrows(), &train.targets.view())?;
        Ok(FunctionSpaceModel {
            net: net.clone(),
            x_train: x_train.to_owned(),
            trainer: Trainer::new(rule, train, config)?,
        })
    }

    /// The kernels of `x` against the training inputs, packed for
    /// [`predict_prepared`](Self::predict_prepared) and for the per-epoch test metrics of
    /// [`fit`](Self::fit) (`y`: targets of `x`, optional). Preparing once saves the
    /// test-versus-train kernel at every epoch.
    pub fn prepare_test<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S1, Ix2>,
        y: Option<&ArrayBase<S2, Ix2>>,
    ) -> Result<TestSet<R::Kernels>> {
        let set = TestSet::new(R::pack(self.net.kernels(
            x,
            TrainingInputs::of(&self.x_train),
            R::WANT,
        )?)?);
        match y {
            Some(y) => set.with_targets(y.to_owned()),
            None => Ok(set),
        }
    }

    /// Trains `epochs` more epochs; `test` adds test loss and accuracy to the history.
    pub fn fit(&mut self, epochs: usize, test: Option<&TestSet<R::Kernels>>) -> Result<History> {
        self.trainer.fit(epochs, test)
    }

    /// Like [`fit`](Self::fit), calling `callback` after every epoch with its record.
    pub fn fit_with(
        &mut self,
        epochs: usize,
        test: Option<&TestSet<R::Kernels>>,
        callback: impl FnMut(&EpochRecord),
    ) -> Result<History> {
        self.trainer.fit_with(epochs, test, callback)
    }

    /// Predictions at `x` (one row per input, one column per target) with the configured
    /// reported iterate; evaluates the test-versus-train kernel. A model started from an
    /// initial function f_0 needs f_0 at `x` too: use a prepared test set with it
    /// ([`TestSet::with_f0`], [`predict_prepared`](Self::predict_prepared)); here that is
    /// `Error::InvalidArgument`.
    pub fn predict<S: Data<Elem = f64>>(&self, x: &ArrayBase<S, Ix2>) -> Result<Array2<f64>> {
        self.predict_prepared(&self.prepare_test(x, None::<&Array2<f64>>)?)
    }

    /// Predictions on a prepared test set with the configured reported iterate.
    pub fn predict_prepared(&self, test: &TestSet<R::Kernels>) -> Result<Array2<f64>> {
        self.trainer.predict(test, self.trainer.config().report)
    }

    /// Predictions on a prepared test set with a chosen iterate (last, running mean, EMA).
    pub fn predict_prepared_iterate(
        &self,
        test: &TestSet<R::Kernels>,
        iterate: Iterate,
    ) -> Result<Array2<f64>> {
        self.trainer.predict(test, iterate)
    }

    /// The engine, for step-by-step driving.
    pub fn trainer_mut(&mut self) -> &mut Trainer<R> {
        &mut self.trainer
    }

    /// The engine.
    pub fn trainer(&self) -> &Trainer<R> {
        &self.trainer
    }
}

impl<K: KernelProgram + Clone> Network<K> {
    /// NTK kernel regression Θ*(Θ + λI)⁻¹Y: the infinitely wide network trained to
    /// convergence by gradient flow on MSE (docs/math.md §5, t = ∞). `ridge` λ ≥ 0.
    pub fn ntk_regression<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        ridge: f64,
    ) -> Result<KernelModel<K>> {
        KernelModel::fit(self, KernelKind::Ntk, x_train, y_train, ridge)
    }

    /// NNGP kernel regression: the posterior mean of the infinitely wide Bayesian network.
    pub fn nngp_regression<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        ridge: f64,
    ) -> Result<KernelModel<K>> {
        KernelModel::fit(self, KernelKind::Nngp, x_train, y_train, ridge)
    }

    /// Full-batch NTK gradient flow on MSE with learning rate η, at any time (docs/math.md §5).
    pub fn ntk_gradient_flow<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        learning_rate: f64,
    ) -> Result<FlowModel<K>> {
        check_inputs(x_train.view(), None)?;
        check_targets(self.architecture(), x_train.nrows(), &y_train.view())?;
        let k = self.ntk(x_train, x_train)?;
        let flow = GradientFlow::new(k.view(), y_train.view(), learning_rate)?;
        Ok(FlowModel {
            net: self.clone(),
            x_train: x_train.to_owned(),
            flow,
        })
    }

    /// Per-example NTK-SGD in function space: f ← f − η Θ(·, x_b) χ_b (docs/math.md §5).
    pub fn ntk_training<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        config: TrainConfig,
    ) -> Result<FunctionSpaceModel<NtkSgd, K>> {
        FunctionSpaceModel::new(self, NtkSgd, x_train, y_train, config)
    }

    /// Per-example training of the Adam-like limit (docs/math.md §4–§5):
    /// f_c ← f_c − η[sign(χ_c) R(·, x_b) + (χ_c/‖χ‖₂) H(·, x_b)]. Prefer MSE (docs/math.md §5).
    pub fn adam_training<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        config: TrainConfig,
    ) -> Result<FunctionSpaceModel<AdamLimit, K>>
    where
        K: crate::AdamLimitProgram,
    {
        FunctionSpaceModel::new(self, AdamLimit, x_train, y_train, config)
    }
}

impl<K: KernelProgram> Network<K> {
    /// The finite network of the same declaration (docs/math.md §2), seeded, with the declared
    /// widths; `outputs` is the number of target columns (checked against a declared
    /// readout width).
    pub fn finite(
        &self,
        input_dim: usize,
        outputs: usize,
        param: crate::finite::Parameterization,
        seed: u64,
    ) -> Result<crate::finite::FiniteNetwork> {
        crate::finite::FiniteNetwork::new(self.architecture(), input_dim, outputs, param, seed)
    }

    /// The finite network with every hidden width multiplied by `factor`.
    pub fn finite_wider(
        &self,
        factor: usize,
        input_dim: usize,
        outputs: usize,
        param: crate::finite::Parameterization,
        seed: u64,
    ) -> Result<crate::finite::FiniteNetwork> {
        crate::finite::FiniteNetwork::with_width_factor(
            self.architecture(),
            factor,
            input_dim,
            outputs,
            param,
            seed,
        )
    }
}

impl<K: KernelProgram + Clone> KernelModel<K> {
    /// Mean **and covariance** at `x` over random initialisations, from the kept Cholesky
    /// factor (docs/math.md §5, "Predictive uncertainty"; t = ∞, absolute ridge λ):
    ///
    /// * NNGP: the GP posterior with noise variance λ, Σ*(Σ + λI)⁻¹Y and
    ///   Σ** − Σ*(Σ + λI)⁻¹Σ*ᵀ ([`KernelRegression::gp_posterior`]);
    /// * NTK: the ensemble trained to convergence ([`KernelRegression::ntk_ensemble`]); this
    ///   evaluates Σ(X, X) again (O(N²d), no new factorisation).
    ///
    /// `mode` chooses the full covariance over the rows of `x` or only the variances.
    pub fn predict_with_uncertainty<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        mode: crate::solve::CovarianceMode,
    ) -> Result<crate::solve::Gaussian> {
        check_inputs(x.view(), Some(self.x_train.view()))?;
        let train = TrainingInputs::of(&self.x_train);
        let k_tt = crate::solve::ensemble::nngp_test_test(&self.net, x.view(), mode)?;
        match self.kind {
            KernelKind::Nngp => {
                let k = self.net.kernels(x, train, Want::NNGP)?;
                self.solver
                    .gp_posterior(k.nngp.expect("requested").view(), k_tt.view())
            }
            KernelKind::Ntk => {
                let k = self.net.kernels(x, train, Want::NNGP_NTK)?;
                let k_train = self.net.nngp(&self.x_train, &self.x_train)?;
                self.solver.ntk_ensemble(
                    k.ntk.expect("requested").view(),
                    k.nngp.expect("requested").view(),
                    k_train.view(),
                    k_tt.view(),
                )
            }
        }
    }
}

impl<K: KernelProgram + Clone> FlowModel<K> {
    /// Mean **and covariance** at `x` after time `t` (infw's summed-loss clock;
    /// f64::INFINITY for the limit) over random initialisations f_0 ~ GP(0, Σ), from the
    /// kept eigendecomposition of Θ(X, X) ([`GradientFlow::ntk_ensemble`]; docs/math.md §5,
    /// "Predictive uncertainty"). Evaluates Σ(X, X) again (O(N²d), no new factorisation).
    /// For a ridge or neural-tangents' conventions use [`Network::mse_ensemble`].
    fn predict_with_uncertainty_at<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        t: f64,
        mode: crate::solve::CovarianceMode,
    ) -> Result<crate::solve::Gaussian> {
        check_inputs(x.view(), Some(self.x_train.view()))?;
        let k_tt = crate::solve::ensemble::nngp_test_test(&self.net, x.view(), mode)?;
        let k = self
            .net
            .kernels(x, TrainingInputs::of(&self.x_train), Want::NNGP_NTK)?;
        let k_train = self.net.nngp(&self.x_train, &self.x_train)?;
        self.flow.ntk_ensemble(
            k.ntk.expect("requested").view(),
            k.nngp.expect("requested").view(),
            k_train.view(),
            k_tt.view(),
            t,
        )
    }
}

impl<K: KernelProgram + Clone> Network<K> {
    /// The ensemble over random initialisations of this infinitely wide network trained by
    /// full-batch gradient flow on MSE: NNGP (readout only) or NTK (all layers), with mean
    /// and covariance at any time (docs/math.md §5, "Predictive uncertainty"; neural-tangents'
    /// `gradient_descent_mse_ensemble`). `options` defaults to infw's conventions (summed
    /// loss, absolute ridge 0); [`crate::solve::EnsembleOptions::neural_tangents`] gives
    /// neural-tangents'.
    pub fn mse_ensemble<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        kind: KernelKind,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        options: crate::solve::EnsembleOptions,
    ) -> Result<crate::solve::EnsembleModel<K>> {
        check_inputs(x_train.view(), None)?;
        check_targets(self.architecture(), x_train.nrows(), &y_train.view())?;
        crate::solve::EnsembleModel::fit(self, kind, x_train, y_train, options)
    }
}

impl<K: KernelProgram> Network<K> {
    /// The diagonal k(x, x) of the kernels in `want`, one value per row of `x`, without a
    /// Gram matrix (the variances of docs/math.md §5, "Predictive uncertainty"): the
    /// per-point and per-pair passes on (x, x) with correlation exactly +1, parallel over
    /// points. Equal to the diagonal of [`Network::kernels`] of `x` against itself.
    pub fn kernel_diagonals<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        want: Want,
    ) -> Result<crate::solve::KernelDiagonals> {
        self.program().diagonals(x.view(), want)
    }
}

/// Kernel regression at scale (docs/math.md §5 "At scale", docs/scale.md): Nyström centres
/// drawn from the training inputs and Falkon's preconditioned conjugate gradients over
/// kernel blocks; no N×N matrix is formed. Keeps the centres and the coefficients only.
#[derive(Debug)]
pub struct FalkonModel<K> {
    pub(crate) net: Network<K>,
    pub(crate) kind: KernelKind,
    pub(crate) centres: Array2<f64>,
    pub(crate) centre_rows: Vec<usize>,
    pub(crate) block_rows: usize,
    pub(crate) n_train: usize,
    pub(crate) solver: crate::solve::Falkon,
}

impl<K: KernelProgram + Clone> FalkonModel<K> {
    fn fit(
        net: &Network<K>,
        kind: KernelKind,
        x_train: ndarray::ArrayView2<f64>,
        y_train: ndarray::ArrayView2<f64>,
        ridge: f64,
        options: &crate::solve::FalkonOptions,
        progress: &mut dyn FnMut(crate::solve::FalkonProgress),
    ) -> Result<Self> {
        options.validate()?;
        check_inputs(x_train, None)?;
        check_targets(net.architecture(), x_train.nrows(), &y_train)?;
        let centre_rows =
            crate::solve::draw_centres(x_train.nrows(), options.centres, options.seed);
        let centres = x_train.select(ndarray::Axis(0), &centre_rows);
        let k_cc = kind.take(net.kernels(&centres, TrainingInputs::of(&centres), kind.want())?);
        let mut rows = |r: std::ops::Range<usize>| {
            let block = x_train.slice(ndarray::s![r, ..]);
            Ok(kind.take(net.kernels(&block, TrainingInputs::of(&centres), kind.want())?))
        };
        let solver = crate::solve::Falkon::fit(&mut rows, k_cc, y_train, ridge, options, progress)?;
        Ok(FalkonModel {
            net: net.clone(),
            kind,
            centres,
            centre_rows,
            block_rows: options.block_rows,
            n_train: x_train.nrows(),
            solver,
        })
    }

    /// Predictions at `x` (one row per input, one column per target), computed in blocks
    /// of the fit's `block_rows` so memory stays O(block·M).
    pub fn predict<S: Data<Elem = f64>>(&self, x: &ArrayBase<S, Ix2>) -> Result<Array2<f64>> {
        check_inputs(x.view(), Some(self.centres.view()))?;
        let outputs = self.solver.coefficients().ncols();
        let mut out = Array2::zeros((x.nrows(), outputs));
        for start in (0..x.nrows()).step_by(self.block_rows) {
            let end = (start + self.block_rows).min(x.nrows());
            let block = x.slice(ndarray::s![start..end, ..]);
            let k = self.kind.take(self.net.kernels(
                &block,
                TrainingInputs::of(&self.centres),
                self.kind.want(),
            )?);
            out.slice_mut(ndarray::s![start..end, ..])
                .assign(&self.solver.predict(k.view())?);
        }
        Ok(out)
    }

    /// The fitted solver: coefficients on the centres, ridge, and how CG ended.
    pub fn solver(&self) -> &crate::solve::Falkon {
        &self.solver
    }

    /// The centres (rows of the training inputs), one per row.
    pub fn centres(&self) -> ndarray::ArrayView2<'_, f64> {
        self.centres.view()
    }

    /// Which training rows were drawn as centres (sorted).
    pub fn centre_rows(&self) -> &[usize] {
        &self.centre_rows
    }

    /// Prepares the **approximate** predictive covariance through the same centres
    /// (docs/math.md §5 "At scale", docs/scale.md): for the NNGP the GP posterior of the
    /// Nyström (DTC) approximation with the ridge as noise, for the NTK the ensemble over
    /// initialisations of the Nyström-trained network with Σ on the training set replaced
    /// by its Nyström approximation. Both equal the exact
    /// [`KernelModel::predict_with_uncertainty`] when every training input is a centre, and
    /// their means are this model's predictions.
    ///
    /// `x_train` must be the fit's training inputs (checked: row count, and the centres at
    /// their rows); the model does not keep them. Streams K(X, C) once more in blocks of the
    /// fit's `block_rows` (the NTK: Θ and Σ), O(N·M²) flops, and keeps two M×M factors
    /// (NNGP) or four M×M matrices (NTK); nothing N×N. Predicting needs nothing of this
    /// unless asked: [`predict`](Self::predict) is unchanged.
    pub fn uncertainty<S: Data<Elem = f64>>(
        &self,
        x_train: &ArrayBase<S, Ix2>,
    ) -> Result<FalkonUncertainty<'_, K>> {
        self.uncertainty_with(x_train, |_| {})
    }

    /// Like [`uncertainty`](Self::uncertainty), calling `progress` after every kernel block.
    pub fn uncertainty_with<S: Data<Elem = f64>>(
        &self,
        x_train: &ArrayBase<S, Ix2>,
        mut progress: impl FnMut(crate::solve::FalkonProgress),
    ) -> Result<FalkonUncertainty<'_, K>> {
        let x_train = x_train.view();
        check_inputs(x_train, Some(self.centres.view()))?;
        if x_train.nrows() != self.n_train {
            return Err(Error::ShapeMismatch {
                what: "rows of the training inputs (those of the Falkon fit)".into(),
                expected: self.n_train,
                found: x_train.nrows(),
            });
        }
        if let Some((i, &row)) = self
            .centre_rows
            .iter()
            .enumerate()
            .find(|&(i, &row)| x_train.row(row) != self.centres.row(i))
        {
            return Err(Error::InvalidArgument {
                name: "x_train",
                value: format!("row {row}"),
                reason: format!(
                    "not the training inputs of the fit: centre {i} was drawn from row {row}, which differs"
                ),
            });
        }
        let centres = TrainingInputs::of(&self.centres);
        let n = self.n_train;
        let ridge = self.solver.ridge();
        let inner = match self.kind {
            KernelKind::Nngp => {
                let k_cc = self.net.nngp(&self.centres, &self.centres)?;
                let mut rows = |r: std::ops::Range<usize>| {
                    let block = x_train.slice(ndarray::s![r, ..]);
                    Ok(self
                        .net
                        .kernels(&block, centres, Want::NNGP)?
                        .nngp
                        .expect("requested"))
                };
                Uncertainty::Gp(crate::solve::NystromGp::new(
                    &mut rows,
                    k_cc,
                    n,
                    ridge,
                    self.block_rows,
                    &mut progress,
                )?)
            }
            KernelKind::Ntk => {
                let k_cc = self.net.kernels(&self.centres, centres, Want::NNGP_NTK)?;
                let mut rows = |r: std::ops::Range<usize>| {
                    let block = x_train.slice(ndarray::s![r, ..]);
                    let k = self.net.kernels(&block, centres, Want::NNGP_NTK)?;
                    Ok((k.ntk.expect("requested"), k.nngp.expect("requested")))
                };
                Uncertainty::Ntk(crate::solve::NystromNtkEnsemble::new(
                    &mut rows,
                    k_cc.ntk.expect("requested"),
                    k_cc.nngp.expect("requested"),
                    n,
                    ridge,
                    self.block_rows,
                    &mut progress,
                )?)
            }
        };
        Ok(FalkonUncertainty { model: self, inner })
    }
}

#[derive(Debug)]
enum Uncertainty {
    Gp(crate::solve::NystromGp),
    Ntk(crate::solve::NystromNtkEnsemble),
}

/// The approximate predictive distribution of a [`FalkonModel`] (built by
/// [`FalkonModel::uncertainty`]): mean = the model's predictions, covariance through the
/// Nyström centres (**approximate**, docs/math.md §5 "At scale"), with the variances that
/// rounding left outside their exact bounds clamped and counted.
#[derive(Debug)]
pub struct FalkonUncertainty<'a, K> {
    model: &'a FalkonModel<K>,
    inner: Uncertainty,
}

/// What [`FalkonUncertainty::predict_with_uncertainty`] returns: the Gaussian (mean T×C,
/// covariance over the T test points shared by every output) and the clamping report.
#[derive(Clone, Debug, PartialEq)]
pub struct ApproximateGaussian {
    /// Mean and approximate covariance.
    pub gaussian: crate::solve::Gaussian,
    /// Variances moved onto their bounds against rounding (see [`crate::solve::Clamping`]).
    pub clamping: crate::solve::Clamping,
}

impl<K: KernelProgram + Clone> FalkonUncertainty<'_, K> {
    /// Mean and approximate covariance at `x`: the full T×T covariance
    /// ([`CovarianceMode::Full`](crate::solve::CovarianceMode), one kernel block of all T
    /// rows) or only the variances ([`CovarianceMode::Diagonal`](crate::solve::CovarianceMode),
    /// in blocks of the fit's `block_rows`, O(block·M) memory). Errors: empty, non-finite
    /// or wrongly shaped inputs (typed).
    pub fn predict_with_uncertainty<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        mode: crate::solve::CovarianceMode,
    ) -> Result<ApproximateGaussian> {
        use crate::solve::{Clamping, Covariance, CovarianceMode, Gaussian};
        let model = self.model;
        check_inputs(x.view(), Some(model.centres.view()))?;
        let t = x.nrows();
        let block = match mode {
            CovarianceMode::Full => t,
            CovarianceMode::Diagonal => model.block_rows,
        };
        let mut mean = Array2::zeros((t, model.solver.coefficients().ncols()));
        let mut variances = ndarray::Array1::zeros(t);
        let mut full = None;
        let mut clamping = Clamping::default();
        let want = match self.inner {
            Uncertainty::Gp(_) => Want::NNGP,
            Uncertainty::Ntk(_) => Want::NNGP_NTK,
        };
        for start in (0..t).step_by(block) {
            let end = (start + block).min(t);
            let xb = x.slice(ndarray::s![start..end, ..]);
            let k = model
                .net
                .kernels(&xb, TrainingInputs::of(&model.centres), want)?;
            let k_tt = crate::solve::ensemble::nngp_test_test(&model.net, xb, mode)?;
            let nngp = k.nngp.expect("requested");
            let (cov, c) = match &self.inner {
                Uncertainty::Gp(gp) => {
                    mean.slice_mut(ndarray::s![start..end, ..])
                        .assign(&model.solver.predict(nngp.view())?);
                    gp.covariance(nngp.view(), k_tt.view())?
                }
                Uncertainty::Ntk(ens) => {
                    let ntk = k.ntk.expect("requested");
                    mean.slice_mut(ndarray::s![start..end, ..])
                        .assign(&model.solver.predict(ntk.view())?);
                    ens.covariance(ntk.view(), nngp.view(), k_tt.view())?
                }
            };
            clamping.merge(c);
            match cov {
                Covariance::Full(c) => full = Some(c),
                Covariance::Diagonal(v) => variances.slice_mut(ndarray::s![start..end]).assign(&v),
            }
        }
        let covariance = match (mode, full) {
            (CovarianceMode::Full, Some(c)) => Covariance::Full(c),
            _ => Covariance::Diagonal(variances),
        };
        Ok(ApproximateGaussian {
            gaussian: Gaussian { mean, covariance },
            clamping,
        })
    }

    /// Only the approximate variances at `x` (one per row), in blocks, with the clamping
    /// report: [`predict_with_uncertainty`](Self::predict_with_uncertainty) in
    /// [`CovarianceMode::Diagonal`](crate::solve::CovarianceMode).
    pub fn variances<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
    ) -> Result<(ndarray::Array1<f64>, crate::solve::Clamping)> {
        let p = self.predict_with_uncertainty(x, crate::solve::CovarianceMode::Diagonal)?;
        match p.gaussian.covariance {
            crate::solve::Covariance::Diagonal(v) => Ok((v, p.clamping)),
            full => Ok((full.variances(), p.clamping)),
        }
    }
}

impl<K: KernelProgram + Clone> Network<K> {
    /// Kernel regression of `kind` (NNGP or NTK) with absolute ridge λ > 0 when K(X, X) does
    /// not fit in memory: Nyström centres + Falkon's preconditioned CG (docs/math.md §5 "At
    /// scale"). With `options.centres ≥ N` it equals [`ntk_regression`](Self::ntk_regression)
    /// / [`nngp_regression`](Self::nngp_regression) up to the CG tolerance.
    pub fn falkon_regression<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        kind: KernelKind,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        ridge: f64,
        options: &crate::solve::FalkonOptions,
    ) -> Result<FalkonModel<K>> {
        self.falkon_regression_with(kind, x_train, y_train, ridge, options, |_| {})
    }

    /// Like [`falkon_regression`](Self::falkon_regression), calling `progress` after every
    /// kernel block and every CG iteration (for progress bars).
    pub fn falkon_regression_with<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        kind: KernelKind,
        x_train: &ArrayBase<S1, Ix2>,
        y_train: &ArrayBase<S2, Ix2>,
        ridge: f64,
        options: &crate::solve::FalkonOptions,
        mut progress: impl FnMut(crate::solve::FalkonProgress),
    ) -> Result<FalkonModel<K>> {
        FalkonModel::fit(
            self,
            kind,
            x_train.view(),
            y_train.view(),
            ridge,
            options,
            &mut progress,
        )
    }
}
