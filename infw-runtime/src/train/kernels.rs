//! Validated inputs of the trainer: kernel matrices whose **columns are training
//! examples**, and train/test sets that pair them with targets and an optional f_0 (docs/math.md §5).

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};

/// The kernel blocks one update rule needs, as matrices `K_j(x, x_b)`.
///
/// Rows are the points the function is evaluated at (training or test inputs); the
/// **columns are the training examples x_b**. The asymmetric kernels of the Adam limit
/// (docs/math.md §4) make this the only safe convention: `K_j[(i, b)] = K_j(x_i, x_b)`.
pub trait KernelSet {
    /// Names of the blocks, in the order of the trainer's coefficient matrices.
    const BLOCKS: &'static [&'static str];
    /// Block `j` (rows: evaluation points, columns: training examples).
    fn block(&self, j: usize) -> ArrayView2<'_, f64>;
    /// The owned blocks, in the order of [`KernelSet::BLOCKS`].
    fn into_blocks(self) -> Vec<Array2<f64>>;
    /// Number of evaluation points (rows).
    fn rows(&self) -> usize {
        self.block(0).nrows()
    }
    /// Number of training examples (columns).
    fn cols(&self) -> usize {
        self.block(0).ncols()
    }
}

/// The NTK Θ(·, X) of the SGD limit (docs/math.md §3): rows evaluation points, columns training examples.
#[derive(Clone, Debug)]
pub struct NtkKernel {
    theta: Array2<f64>,
}

impl NtkKernel {
    /// Wraps Θ(X_eval, X_train); rejects empty or non-finite matrices.
    ///
    /// ```
    /// # use infw_runtime::train::NtkKernel;
    /// let k = NtkKernel::new(ndarray::array![[1.0, 0.5], [0.5, 1.0]]).unwrap();
    /// assert_eq!(k.theta().dim(), (2, 2));
    /// ```
    pub fn new(theta: Array2<f64>) -> Result<Self> {
        check_nonempty("NTK kernel Θ", theta.view())?;
        check_finite("NTK kernel Θ", theta.view())?;
        Ok(Self { theta })
    }

    /// Θ(x_i, x_b): row i an evaluation point, column b a training example.
    pub fn theta(&self) -> ArrayView2<'_, f64> {
        self.theta.view()
    }
}

impl KernelSet for NtkKernel {
    const BLOCKS: &'static [&'static str] = &["NTK kernel Θ"];
    fn block(&self, _j: usize) -> ArrayView2<'_, f64> {
        self.theta.view()
    }
    fn into_blocks(self) -> Vec<Array2<f64>> {
        vec![self.theta]
    }
}

/// The two kernels of the Adam-like limit (docs/math.md §4): the readout part R(x, x_b) and the
/// hidden part H(x, x_b). They are **not symmetric**: the column is the training example
/// x_b the step is taken on, the row the point whose function value moves.
#[derive(Clone, Debug)]
pub struct SignKernels {
    readout: Array2<f64>,
    hidden: Array2<f64>,
}

impl SignKernels {
    /// Wraps R(X_eval, X_train) and H(X_eval, X_train) (columns: training examples);
    /// rejects empty, non-finite or differently shaped matrices.
    ///
    /// ```
    /// # use infw_runtime::train::SignKernels;
    /// let r = ndarray::array![[1.0, 0.2], [0.3, 1.0]];
    /// let h = ndarray::array![[0.5, 0.1], [0.0, 0.5]];
    /// let k = SignKernels::new(r, h).unwrap();
    /// assert_eq!(k.readout()[(0, 1)], 0.2); // R(x_0, x_1): step on x_1 moves f(x_0)
    /// ```
    pub fn new(readout: Array2<f64>, hidden: Array2<f64>) -> Result<Self> {
        check_nonempty("readout kernel R", readout.view())?;
        check_nonempty("hidden kernel H", hidden.view())?;
        if hidden.nrows() != readout.nrows() {
            return Err(Error::ShapeMismatch {
                what: "rows (evaluation points) of hidden kernel H vs readout kernel R".into(),
                expected: readout.nrows(),
                found: hidden.nrows(),
            });
        }
        if hidden.ncols() != readout.ncols() {
            return Err(Error::ShapeMismatch {
                what: "columns (training examples) of hidden kernel H vs readout kernel R".into(),
                expected: readout.ncols(),
                found: hidden.ncols(),
            });
        }
        check_finite("readout kernel R", readout.view())?;
        check_finite("hidden kernel H", hidden.view())?;
        Ok(Self { readout, hidden })
    }

    /// R(x_i, x_b): row i an evaluation point, column b a training example.
    pub fn readout(&self) -> ArrayView2<'_, f64> {
        self.readout.view()
    }

    /// H(x_i, x_b): row i an evaluation point, column b a training example.
    pub fn hidden(&self) -> ArrayView2<'_, f64> {
        self.hidden.view()
    }
}

impl KernelSet for SignKernels {
    const BLOCKS: &'static [&'static str] = &["readout kernel R", "hidden kernel H"];
    fn block(&self, j: usize) -> ArrayView2<'_, f64> {
        if j == 0 {
            self.readout.view()
        } else {
            self.hidden.view()
        }
    }
    fn into_blocks(self) -> Vec<Array2<f64>> {
        vec![self.readout, self.hidden]
    }
}

/// The training set: kernels K(X, X) (N×N), targets Y (N×C) and an optional f_0(X).
///
/// Targets are real values or one-hot rows (MSE), or one-hot rows (cross-entropy, whose
/// class is the row's arg-max). f_0 = 0 unless given (docs/math.md §5).
#[derive(Clone, Debug)]
pub struct TrainSet<K: KernelSet> {
    pub(crate) kernels: K,
    pub(crate) targets: Array2<f64>,
    pub(crate) f0: Option<Array2<f64>>,
}

impl<K: KernelSet> TrainSet<K> {
    /// Pairs the N×N train kernels with N×C targets; checks shapes and finiteness.
    pub fn new(kernels: K, targets: Array2<f64>) -> Result<Self> {
        check_nonempty("training targets", targets.view())?;
        check_finite("training targets", targets.view())?;
        if kernels.cols() != kernels.rows() {
            return Err(Error::ShapeMismatch {
                what: "columns of the train kernel K(X, X) vs its rows (both are the training examples)"
                    .into(),
                expected: kernels.rows(),
                found: kernels.cols(),
            });
        }
        if kernels.rows() != targets.nrows() {
            return Err(Error::ShapeMismatch {
                what: "rows of the training targets vs the train kernel's size N".into(),
                expected: kernels.rows(),
                found: targets.nrows(),
            });
        }
        Ok(Self {
            kernels,
            targets,
            f0: None,
        })
    }

    /// Sets the initial function values f_0(X) (N×C), e.g. a sample of the initial GP.
    /// A test set used with this trainer must then carry its own f_0(X*).
    pub fn with_f0(mut self, f0: Array2<f64>) -> Result<Self> {
        check_shape("f_0 on the training set", f0.view(), self.targets.dim())?;
        check_finite("f_0 on the training set", f0.view())?;
        self.f0 = Some(f0);
        Ok(self)
    }

    /// Number of training examples N.
    pub fn len(&self) -> usize {
        self.targets.nrows()
    }

    /// Always false: an empty training set is rejected by [`TrainSet::new`].
    pub fn is_empty(&self) -> bool {
        self.targets.nrows() == 0
    }
}

/// A test set: kernels K(X*, X) (M×N, columns the training examples), optional targets
/// (M×C) for the per-epoch history, and f_0(X*) when the training set has an f_0.
#[derive(Clone, Debug)]
pub struct TestSet<K: KernelSet> {
    pub(crate) kernels: K,
    pub(crate) targets: Option<Array2<f64>>,
    pub(crate) f0: Option<Array2<f64>>,
}

impl<K: KernelSet> TestSet<K> {
    /// Test kernels only (predictions, no test metrics).
    pub fn new(kernels: K) -> Self {
        Self {
            kernels,
            targets: None,
            f0: None,
        }
    }

    /// Adds M×C targets, used for test loss and accuracy in the history.
    pub fn with_targets(mut self, targets: Array2<f64>) -> Result<Self> {
        check_nonempty("test targets", targets.view())?;
        if targets.nrows() != self.kernels.rows() {
            return Err(Error::ShapeMismatch {
                what: "rows of the test targets vs rows of the test kernel".into(),
                expected: self.kernels.rows(),
                found: targets.nrows(),
            });
        }
        check_finite("test targets", targets.view())?;
        self.targets = Some(targets);
        Ok(self)
    }

    /// Adds f_0(X*) (M×C); required exactly when the training set has an f_0.
    pub fn with_f0(mut self, f0: Array2<f64>) -> Result<Self> {
        check_nonempty("f_0 on the test set", f0.view())?;
        if f0.nrows() != self.kernels.rows() {
            return Err(Error::ShapeMismatch {
                what: "rows of f_0 on the test set vs rows of the test kernel".into(),
                expected: self.kernels.rows(),
                found: f0.nrows(),
            });
        }
        check_finite("f_0 on the test set", f0.view())?;
        self.f0 = Some(f0);
        Ok(self)
    }

    /// Number of test points M.
    pub fn len(&self) -> usize {
        self.kernels.rows()
    }

    /// Always false: kernels are non-empty by construction.
    pub fn is_empty(&self) -> bool {
        self.kernels.rows() == 0
    }
}

pub(crate) use crate::validate::finite as check_finite;

pub(crate) use crate::validate::non_empty as check_nonempty;

/// `Error::ShapeMismatch` unless `a` has shape `dim` (rows checked first).
pub(crate) fn check_shape(what: &str, a: ArrayView2<'_, f64>, dim: (usize, usize)) -> Result<()> {
    if a.nrows() != dim.0 {
        return Err(Error::ShapeMismatch {
            what: format!("rows of {what}"),
            expected: dim.0,
            found: a.nrows(),
        });
    }
    if a.ncols() != dim.1 {
        return Err(Error::ShapeMismatch {
            what: format!("columns of {what}"),
            expected: dim.1,
            found: a.ncols(),
        });
    }
    Ok(())
}
