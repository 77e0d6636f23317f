//! [`Model`]: what the optimizers and the training loop need from a trainable finite model
//! (the network and its linearization), and the shared batch driver that splits large batches
//! over rayon workers, each with its own reusable buffers, and sums their gradients.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::graph::{Buffers, Graph};
use super::params::Params;
use crate::{Error, Loss, Result};

/// Rows handled by one worker block; batches larger than this are split over rayon workers.
pub const BLOCK_ROWS: usize = 128;

/// Reusable scratch for forward/backward passes. Create one per model with
/// [`Model::workspace`] and pass it to every step: after the first step of the largest batch
/// size, steps allocate nothing. A workspace of another model is resized, never misused.
#[derive(Debug, Default)]
pub struct Workspace {
    pub(crate) blocks: Vec<Buffers>,
}

impl Workspace {
    /// Makes sure `workers` buffers fit `graph` with `cap` rows; reallocates only on change.
    pub(crate) fn ensure(&mut self, graph: &Graph, cap: usize, tangents: bool, workers: usize) {
        for b in &mut self.blocks {
            if !b.fits(graph, cap, tangents) {
                *b = Buffers::new(graph, cap.max(b.cap), tangents);
            }
        }
        while self.blocks.len() < workers {
            self.blocks.push(Buffers::new(graph, cap, tangents));
        }
    }
}

/// A trainable model: the finite network ([`super::FiniteNetwork`]) or its linearization
/// ([`super::LinearizedNetwork`]). The optimizers update [`Model::params_mut`] with the
/// gradient from [`Model::loss_gradient`].
pub trait Model: Sync {
    /// d0, the number of input columns.
    fn input_dim(&self) -> usize;
    /// C, the number of outputs.
    fn outputs(&self) -> usize;
    /// The trainable parameters.
    fn params(&self) -> &Params;
    /// The trainable parameters, for the optimizer.
    fn params_mut(&mut self) -> &mut Params;
    /// Outputs (rows × C) for the rows of `x`, using `ws` as scratch.
    fn predict_with(&self, x: ArrayView2<f64>, ws: &mut Workspace) -> Result<Array2<f64>>;
    /// Mean loss over the rows of (`x`, `y`) and its gradient w.r.t. the parameters, written
    /// into `grad` (shaped like [`Model::params`]). `Error::Diverged` on a non-finite loss.
    fn loss_gradient(
        &self,
        x: ArrayView2<f64>,
        y: ArrayView2<f64>,
        loss: Loss,
        grad: &mut Params,
        ws: &mut Workspace,
    ) -> Result<f64>;

    /// A fresh workspace (buffers are sized on first use).
    fn workspace(&self) -> Workspace {
        Workspace::default()
    }

    /// Outputs (rows × C) for the rows of `x`.
    fn predict(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.predict_with(x, &mut self.workspace())
    }
}

/// The per-block computation a model contributes to the shared driver.
pub(crate) trait Core: Sync {
    fn graph(&self) -> &Graph;
    /// True when the forward pass needs tangent buffers.
    fn tangents(&self) -> bool;
    /// Forward on `x` (≤ cap rows); the model's outputs end in the first rows of the last
    /// op's value.
    fn forward_block(&self, x: ArrayView2<f64>, buf: &mut Buffers);
    /// Backward after `forward_block`, χ in the last op's delta; writes or adds into `grad`.
    fn backward_block(&self, x: ArrayView2<f64>, buf: &mut Buffers, grad: &mut Params, acc: bool);
    /// The parameters the gradient is shaped like.
    fn grad_shape(&self) -> &Params;
}

/// A typed error unless `params` has the dense and conv shapes of `graph` (they are public and
/// mutable through [`Model::params_mut`], so a forward pass re-checks them: O(nodes)).
pub(crate) fn check_layout(graph: &Graph, params: &Params) -> Result<()> {
    let n = graph.param_ops.len();
    let ok = params.weights.len() == n
        && params.biases.len() == n
        && (0..n).all(|k| {
            let (n_out, n_in) = graph.shape(k);
            params.weights[k].dim() == (n_out, n_in) && params.biases[k].len() == n_out
        });
    if ok {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what:
                "parameters vs the network's dense and conv shapes (replaced through params_mut?)"
                    .into(),
            expected: (0..n)
                .map(|k| {
                    let (n_out, n_in) = graph.shape(k);
                    n_out * (n_in + 1)
                })
                .sum(),
            found: params.len(),
        })
    }
}

/// Checks `x` has `d` columns and at least one row.
pub(crate) fn check_input(x: ArrayView2<f64>, d: usize, what: &str) -> Result<()> {
    if x.nrows() == 0 {
        return Err(Error::Empty {
            what: what.into(),
            axis: "rows",
        });
    }
    if x.ncols() != d {
        return Err(Error::ShapeMismatch {
            what: format!("{what}: columns (input dimension)"),
            expected: d,
            found: x.ncols(),
        });
    }
    Ok(())
}

/// A typed error on the first NaN or infinity in `x`.
pub(crate) fn check_finite(x: ArrayView2<f64>, what: &str) -> Result<()> {
    crate::validate::finite(what, x)
}

/// How many workers and rows per worker for a batch of `n` rows.
fn plan(n: usize) -> (usize, usize) {
    let want = n.div_ceil(BLOCK_ROWS);
    let workers = want.clamp(1, rayon::current_num_threads().max(1));
    let per = n.div_ceil(workers);
    (n.div_ceil(per), per)
}

/// Predicts the rows of `x` (already validated) into a new array.
pub(crate) fn drive_predict<M: Core + ?Sized>(
    m: &M,
    x: ArrayView2<f64>,
    ws: &mut Workspace,
) -> Array2<f64> {
    let graph = m.graph();
    let last = graph.output();
    let n = x.nrows();
    let mut out = Array2::zeros((n, graph.outputs()));
    let (workers, per) = plan(n);
    ws.ensure(graph, per.min(BLOCK_ROWS), m.tangents(), workers);
    let work = |buf: &mut Buffers, x: ArrayView2<f64>, mut out: ArrayViewMut2<f64>| {
        let mut start = 0;
        while start < x.nrows() {
            let end = (start + BLOCK_ROWS).min(x.nrows());
            let xb = x.slice(s![start..end, ..]);
            m.forward_block(xb, buf);
            out.slice_mut(s![start..end, ..])
                .assign(&buf.val[last].slice(s![..end - start, ..]));
            start = end;
        }
    };
    if workers == 1 {
        work(&mut ws.blocks[0], x, out.view_mut());
    } else {
        let xs: Vec<_> = x.axis_chunks_iter(ndarray::Axis(0), per).collect();
        let outs: Vec<_> = out.axis_chunks_iter_mut(ndarray::Axis(0), per).collect();
        ws.blocks[..workers]
            .par_iter_mut()
            .zip(xs.into_par_iter().zip(outs.into_par_iter()))
            .for_each(|(buf, (xc, oc))| work(buf, xc, oc));
    }
    out
}

/// Mean loss and its gradient over the rows of (`x`, `y`) (already validated), summed over
/// workers into `grad`.
pub(crate) fn drive_loss_gradient<M: Core + ?Sized>(
    m: &M,
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    loss: Loss,
    grad: &mut Params,
    ws: &mut Workspace,
) -> Result<f64> {
    let graph = m.graph();
    let last = graph.output();
    let n = x.nrows();
    let inv_n = 1.0 / n as f64;
    let (workers, per) = plan(n);
    ws.ensure(graph, per.min(BLOCK_ROWS), m.tangents(), workers);
    let work = |buf: &mut Buffers, x: ArrayView2<f64>, y: ArrayView2<f64>| -> f64 {
        if buf.grad.is_none()
            || !buf
                .grad
                .as_ref()
                .is_some_and(|g| g.same_shape(m.grad_shape()))
        {
            buf.grad = Some(m.grad_shape().zeros_like());
        }
        let mut grad = buf
            .grad
            .take()
            .unwrap_or_else(|| m.grad_shape().zeros_like());
        let mut total = 0.0;
        let mut start = 0;
        while start < x.nrows() {
            let end = (start + BLOCK_ROWS).min(x.nrows());
            let xb = x.slice(s![start..end, ..]);
            m.forward_block(xb, buf);
            for i in 0..end - start {
                for (dst, &v) in buf.frow.iter_mut().zip(buf.val[last].row(i)) {
                    *dst = v;
                }
                for (dst, &v) in buf.yrow.iter_mut().zip(y.row(start + i)) {
                    *dst = v;
                }
                total += loss.value(&buf.frow, &buf.yrow);
                loss.gradient(&buf.frow, &buf.yrow, &mut buf.chirow);
                for (dst, &v) in buf.delta[last].row_mut(i).iter_mut().zip(&buf.chirow) {
                    *dst = v * inv_n;
                }
            }
            m.backward_block(xb, buf, &mut grad, start > 0);
            start = end;
        }
        buf.grad = Some(grad);
        total
    };
    let total = if workers == 1 {
        work(&mut ws.blocks[0], x, y)
    } else {
        let xs: Vec<_> = x.axis_chunks_iter(ndarray::Axis(0), per).collect();
        let ys: Vec<_> = y.axis_chunks_iter(ndarray::Axis(0), per).collect();
        ws.blocks[..workers]
            .par_iter_mut()
            .zip(xs.into_par_iter().zip(ys.into_par_iter()))
            .map(|(buf, (xc, yc))| work(buf, xc, yc))
            .sum()
    };
    for (k, buf) in ws.blocks[..workers].iter().enumerate() {
        if let Some(g) = &buf.grad {
            if k == 0 {
                grad.assign(g);
            } else {
                grad.axpy(1.0, g);
            }
        }
    }
    let mean = total * inv_n;
    if !mean.is_finite() {
        return Err(Error::Diverged {
            what: format!("mean training loss = {mean}"),
        });
    }
    Ok(mean)
}

/// Validates a (`x`, `y`) batch against a model's dimensions and `grad`'s shape.
pub(crate) fn check_batch(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    d: usize,
    c: usize,
    grad: &Params,
    params: &Params,
) -> Result<()> {
    check_input(x, d, "x")?;
    if y.nrows() != x.nrows() {
        return Err(Error::ShapeMismatch {
            what: "y rows vs x rows".into(),
            expected: x.nrows(),
            found: y.nrows(),
        });
    }
    if y.ncols() != c {
        return Err(Error::ShapeMismatch {
            what: "y columns vs network outputs".into(),
            expected: c,
            found: y.ncols(),
        });
    }
    params.check_same_shape(grad, "gradient buffer")
}
