//! [`Network`]: what `network!` returns; the user-facing capabilities hang off it.
use crate::gram::{GramParams, KernelMatrices};
use crate::{Architecture, KernelProgram, Result, Want};
use ndarray::{Array2, ArrayBase, ArrayView2, Data, Ix2};

/// A declared architecture with its compiled kernel program (docs/math.md §3–§4).
#[derive(Clone, Debug)]
pub struct Network<K> {
    program: K,
    gram: GramParams,
}

/// Marks a set of inputs as the training examples: the second argument of R and H, which
/// are not symmetric (docs/math.md §4). Wrapping them makes the argument order impossible to confuse.
#[derive(Clone, Copy, Debug)]
pub struct TrainingInputs<'a>(pub ArrayView2<'a, f64>);

impl<'a> TrainingInputs<'a> {
    /// The training examples `x_train` (one per row).
    pub fn of<S: Data<Elem = f64>>(x_train: &'a ArrayBase<S, Ix2>) -> Self {
        TrainingInputs(x_train.view())
    }
}

/// Whether two views are the very same matrix (then the symmetric shortcut applies).
fn same_matrix(a: &ArrayView2<f64>, b: &ArrayView2<f64>) -> bool {
    a.as_ptr() == b.as_ptr() && a.shape() == b.shape() && a.strides() == b.strides()
}

impl<K: KernelProgram> Network<K> {
    /// Wraps a generated program; called by `network!`.
    pub fn new(program: K) -> Self {
        Network {
            program,
            gram: GramParams::default(),
        }
    }

    /// Wraps a generated program whose hyper-parameters were expressions, checking them
    /// (docs: a negative or non-finite std, a zero width are typed errors); called by
    /// `network!` when a declaration has an expression.
    pub fn try_new(program: K) -> Result<Self> {
        program.architecture().validate()?;
        Ok(Self::new(program))
    }

    /// The same network with other Gram tiling parameters.
    pub fn with_gram_params(mut self, gram: GramParams) -> Self {
        self.gram = gram;
        self
    }

    /// The declared architecture.
    pub fn architecture(&self) -> &Architecture {
        self.program.architecture()
    }

    /// The compiled per-point / per-pair program.
    pub fn program(&self) -> &K {
        &self.program
    }

    /// NNGP kernel Σ^{L+1}(x1, x2) (docs/math.md §3): one row per row of `x1`.
    pub fn nngp<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x1: &ArrayBase<S1, Ix2>,
        x2: &ArrayBase<S2, Ix2>,
    ) -> Result<Array2<f64>> {
        Ok(self
            .symmetric(x1.view(), x2.view(), Want::NNGP)?
            .nngp
            .expect("requested"))
    }

    /// NTK Θ^{L+1}(x1, x2) of one output (docs/math.md §3; the full NTK is this ⊗ I_C).
    pub fn ntk<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x1: &ArrayBase<S1, Ix2>,
        x2: &ArrayBase<S2, Ix2>,
    ) -> Result<Array2<f64>> {
        Ok(self
            .symmetric(x1.view(), x2.view(), Want::NTK)?
            .ntk
            .expect("requested"))
    }

    /// NNGP and NTK in one fused pass: `(nngp, ntk)`.
    pub fn nngp_ntk<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x1: &ArrayBase<S1, Ix2>,
        x2: &ArrayBase<S2, Ix2>,
    ) -> Result<(Array2<f64>, Array2<f64>)> {
        let k = self.symmetric(x1.view(), x2.view(), Want::NNGP_NTK)?;
        Ok((k.nngp.expect("requested"), k.ntk.expect("requested")))
    }

    /// [`nngp_ntk`](Self::nngp_ntk) written into matrices the caller owns (each
    /// `x1.nrows() × x2.nrows()`, C-contiguous; every entry is overwritten). For repeated
    /// evaluations of one size: the memory is reused instead of fresh pages being
    /// first-touched for every call, which on some machines is a large part of a Gram's
    /// time (README, "Speed").
    pub fn nngp_ntk_into<S1: Data<Elem = f64>, S2: Data<Elem = f64>>(
        &self,
        x1: &ArrayBase<S1, Ix2>,
        x2: &ArrayBase<S2, Ix2>,
        nngp: &mut Array2<f64>,
        ntk: &mut Array2<f64>,
    ) -> Result<()> {
        let (x1, x2) = (x1.view(), x2.view());
        let t = (!same_matrix(&x1, &x2)).then_some(x2);
        self.program.gram_into(
            x1,
            t,
            Want::NNGP_NTK,
            &self.gram,
            [Some(nngp.view_mut()), Some(ntk.view_mut()), None, None],
        )
    }

    /// Any subset of {NNGP, NTK, R, H} between evaluation points `x` (rows) and the
    /// training examples (columns), in one fused pass that pays only for what `want` asks.
    pub fn kernels<S: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<S, Ix2>,
        training: TrainingInputs<'_>,
        want: Want,
    ) -> Result<KernelMatrices> {
        if (want.readout || want.hidden) && !self.program.has_adam_limit() {
            return Err(crate::Error::Architecture(format!(
                "this declaration has no Adam-like limit (R, H): {}",
                self.program
                    .adam_limit_refusal()
                    .unwrap_or("it is not built for this program")
            )));
        }
        let x = x.view();
        // Spoken from the caller's side: their inputs against the training features (the
        // Gram's own check would call the training set "the second input").
        if x.ncols() != training.0.ncols() {
            return Err(crate::Error::ShapeMismatch {
                what:
                    "features (columns) of the inputs, which must be those of the training inputs"
                        .into(),
                expected: training.0.ncols(),
                found: x.ncols(),
            });
        }
        let t = (!same_matrix(&x, &training.0)).then_some(training.0);
        self.program.gram(x, t, want, &self.gram)
    }

    fn symmetric(
        &self,
        x1: ArrayView2<f64>,
        x2: ArrayView2<f64>,
        want: Want,
    ) -> Result<KernelMatrices> {
        let t = (!same_matrix(&x1, &x2)).then_some(x2);
        self.program.gram(x1, t, want, &self.gram)
    }
}
