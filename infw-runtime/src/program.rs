//! The contract between the code `network!` generates and the runtime.
//!
//! The macro unrolls docs/math.md §3–§4 for one declared architecture into an implementation of
//! [`KernelProgram`]: a per-point pass (everything that depends on one input only, done
//! once per point) and a fused per-pair pass (every requested kernel from the pair's inner
//! products). The runtime supplies the inner products from matrix products, tile by tile.

use crate::arch::Architecture;
use crate::dual::{F64x4, Real};
use crate::gram::{GramParams, KernelMatrices};
use crate::solve::KernelDiagonals;
use crate::Result;
pub use infw_layers::{Parallel, Want};
use ndarray::{ArrayView2, ArrayViewMut2};

/// The per-pair inputs: inner products of the raw inputs, scaled by 1/d0.
#[derive(Clone, Copy, Debug, Default)]
pub struct PairInputs<T = f64> {
    /// ⟨x, x'⟩ / d0.
    pub dot: T,
    /// ⟨x, sign(x')⟩ / d0, S⁰ of docs/math.md §4 (0 when H is not requested).
    pub sign_dot: T,
    /// Θ of the input: 0 for raw inputs; the pooled NTK when a convolutional front feeds
    /// the dense part (docs/math.md §9).
    pub ntk: T,
    /// Exact parallelism of x and x'.
    pub parallel: Parallel,
}

/// The kernels of one pair; unrequested ones are 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairKernels<T = f64> {
    /// Σ(x, x').
    pub nngp: T,
    /// Θ(x, x').
    pub ntk: T,
    /// R(x, x'): x' is the training example.
    pub readout: T,
    /// H(x, x'): x' is the training example.
    pub hidden: T,
}

/// What a [`crate::Network`] wraps: a compiled declaration that evaluates its kernels.
/// `network!` implements it; user code names it as a bound (`Network<impl KernelProgram>`).
///
/// Behind it (hidden plumbing, not an API): dense declarations implement it through
/// `PairProgram` (one matrix product feeds a per-pair pass), convolutional ones through
/// `spatial::SpatialProgram`.
pub trait KernelProgram: Send + Sync {
    /// The declared architecture.
    fn architecture(&self) -> &Architecture;

    /// Whether R and H are built for this declaration (then it implements
    /// [`AdamLimitProgram`]); asking [`crate::Network::kernels`] for them otherwise is an error.
    fn has_adam_limit(&self) -> bool;

    /// Why R and H are not built, when they are not: the compiler's reason (docs/math.md §8).
    fn adam_limit_refusal(&self) -> Option<&'static str> {
        None
    }

    /// The kernels in `want` between the rows of `x` and of `t` (`None`: `x` itself);
    /// `t` holds the training examples of R and H.
    fn gram(
        &self,
        x: ArrayView2<f64>,
        t: Option<ArrayView2<f64>>,
        want: Want,
        params: &GramParams,
    ) -> Result<KernelMatrices>;

    /// [`gram`](Self::gram) written into the caller's matrices (NNGP, NTK, R, H: one for each
    /// kernel in `want`, C-contiguous, rows of x × rows of t). Dense declarations write in
    /// place; the default evaluates into new matrices and copies.
    fn gram_into(
        &self,
        x: ArrayView2<f64>,
        t: Option<ArrayView2<f64>>,
        want: Want,
        params: &GramParams,
        mut outputs: [Option<ArrayViewMut2<f64>>; 4],
    ) -> Result<()> {
        crate::validate::check_inputs(x, t)?;
        crate::gram::check_outputs(
            x.nrows(),
            t.map_or(x.nrows(), |t| t.nrows()),
            want,
            &outputs,
        )?;
        let k = self.gram(x, t, want, params)?;
        for (o, k) in outputs.iter_mut().zip([k.nngp, k.ntk, k.readout, k.hidden]) {
            if let (Some(o), Some(k)) = (o, k) {
                o.assign(&k);
            }
        }
        Ok(())
    }

    /// k(x, x) for every row of `x`.
    fn diagonals(&self, x: ArrayView2<f64>, want: Want) -> Result<KernelDiagonals>;
}

impl<P: PairProgram> KernelProgram for P {
    fn architecture(&self) -> &Architecture {
        PairProgram::architecture(self)
    }
    fn has_adam_limit(&self) -> bool {
        PairProgram::has_adam_limit(self)
    }
    fn adam_limit_refusal(&self) -> Option<&'static str> {
        PairProgram::adam_limit_refusal(self)
    }
    fn gram(
        &self,
        x: ArrayView2<f64>,
        t: Option<ArrayView2<f64>>,
        want: Want,
        params: &GramParams,
    ) -> Result<KernelMatrices> {
        crate::gram::kernel_matrices(self, x, t, want, params)
    }
    fn gram_into(
        &self,
        x: ArrayView2<f64>,
        t: Option<ArrayView2<f64>>,
        want: Want,
        params: &GramParams,
        outputs: [Option<ArrayViewMut2<f64>>; 4],
    ) -> Result<()> {
        crate::gram::kernel_matrices_into(self, x, t, want, params, outputs)
    }
    fn diagonals(&self, x: ArrayView2<f64>, want: Want) -> Result<KernelDiagonals> {
        crate::solve::kernel_diagonals(self, x, want)
    }
}

/// What `network!` generates for a dense declaration: the per-point and per-pair passes.
pub trait PairProgram: Send + Sync {
    /// Everything the pair pass needs from one point (each layer's Σˡ(x,x), Πˡ(x,x), …),
    /// as `f64` for one point or as [`F64x4`] lanes for four.
    type Point<T: Real>: Copy + Send + Sync + Default;

    /// The declared architecture.
    fn architecture(&self) -> &Architecture;

    /// Whether the pass for `want` reads ⟨x, sign x'⟩/d0 (S⁰, docs/math.md §4): the sign
    /// kernel of a dense layer that reads the input directly.
    fn needs_sign_dot(&self, want: Want) -> bool;

    /// Whether R and H are built for this declaration (then it implements
    /// [`AdamLimitProgram`]); asking [`crate::Network::kernels`] for them otherwise is an error.
    fn has_adam_limit(&self) -> bool;

    /// Why R and H are not built, when they are not: the compiler's reason (docs/math.md §8).
    fn adam_limit_refusal(&self) -> Option<&'static str> {
        None
    }

    /// Per-point pass from ‖x‖²/d0.
    fn point(&self, sq_norm: f64) -> Self::Point<f64>;

    /// The first node (in node order) whose variance Σ(x,x) is not finite for a point
    /// with ‖x‖²/d0 = `sq_norm`, or `None`: names the layer where a kernel overflowed
    /// ([`crate::Error::NonFiniteKernel`]). Called only after an overflow was seen.
    fn non_finite_node(&self, sq_norm: f64) -> Option<usize> {
        let _ = sq_norm;
        None
    }

    /// Four points in the lanes of one.
    fn gather(&self, points: [&Self::Point<f64>; 4]) -> Self::Point<F64x4>;

    /// One point repeated in every lane.
    fn splat(&self, point: &Self::Point<f64>) -> Self::Point<F64x4>;

    /// Fused per-pair pass. `x` is the evaluation point, `t` the training example (the
    /// second argument of R and H); NNGP and NTK are symmetric. Generic over the lanes.
    fn pair<T: Real>(
        &self,
        x: &Self::Point<T>,
        t: &Self::Point<T>,
        inputs: PairInputs<T>,
        want: Want,
    ) -> PairKernels<T>;
}

/// The programs whose Adam-like limit (R and H, docs/math.md §4, §8) is built. `network!`
/// implements it when every node of the declaration has its sign-kernel rule; the
/// Adam-limit methods of [`crate::Network`] require it, so asking for the limit of a
/// declaration without one is a compile error, not a runtime surprise.
#[diagnostic::on_unimplemented(
    message = "the Adam-like limit is not built for this declaration",
    label = "this network has no Adam-like limit (R, H)",
    note = "the sign-kernel limit is derived for dense layers, activations, layer_norm, residual sums and concatenations, except where a sign kernel is a 2-D integral (a dense layer reading a post-activation residual stream; a smooth activation beside a skip connection; see `adam_limit_refusal()` and docs/math.md §8); convolutions have no closed form (the sign of a sum over positions does not factorise, docs/math.md §9)"
)]
pub trait AdamLimitProgram: KernelProgram {}

/// Stand-in program the macro expands to after a compile error, so that the user sees the
/// one error at its token and no cascade of type errors. Never runs.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct CompileErrorStub;

// Not a suggestion worth showing in "the trait is implemented for …" help.
#[diagnostic::do_not_recommend]
impl AdamLimitProgram for CompileErrorStub {}

impl PairProgram for CompileErrorStub {
    type Point<T: Real> = ();
    fn architecture(&self) -> &Architecture {
        unreachable!("network! failed to compile; this stub never runs")
    }
    fn needs_sign_dot(&self, _: Want) -> bool {
        unreachable!("network! failed to compile; this stub never runs")
    }
    fn has_adam_limit(&self) -> bool {
        unreachable!("network! failed to compile; this stub never runs")
    }
    fn point(&self, _: f64) {}
    fn gather(&self, _: [&(); 4]) {}
    fn splat(&self, _: &()) {}
    fn pair<T: Real>(&self, _: &(), _: &(), _: PairInputs<T>, _: Want) -> PairKernels<T> {
        unreachable!("network! failed to compile; this stub never runs")
    }
}
