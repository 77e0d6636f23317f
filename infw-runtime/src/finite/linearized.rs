//! [`LinearizedNetwork`]: a finite network with feature learning disabled (docs/math.md §7),
//! f_lin(x) = f(x; θ0) + J(x; θ0)(θ − θ0), or the centred variant without f(x; θ0).
//!
//! Forward is a forward-mode JVP at θ0 with tangent θ − θ0; the gradient w.r.t. θ is the
//! backward pass with θ0's activations (f_lin is linear in θ).

use ndarray::{s, Array2, ArrayView2, Zip};

use super::graph::{Buffers, Graph};
use super::layers::{backward, forward_tangent};
use super::model::{
    check_batch, check_finite, check_input, check_layout, drive_loss_gradient, drive_predict, Core,
    Model, Workspace,
};
use super::network::FiniteNetwork;
use super::params::Params;
use crate::{Loss, Result};

/// The linearization of a [`FiniteNetwork`] around its parameters θ0 at construction.
///
/// Its trainable parameters ([`Model::params`]) are the displacement Δ = θ − θ0 (zero at
/// the start), not θ itself: the optimizers here are translation invariant, so training Δ
/// is training θ, and the tangent needs no subtraction θ − θ0 that would cancel digits.
#[derive(Clone, Debug)]
pub struct LinearizedNetwork {
    pub(crate) net0: FiniteNetwork,
    pub(crate) delta: Params,
    pub(crate) centered: bool,
}

impl LinearizedNetwork {
    /// Linearizes `net0` around its current parameters; `centered` drops f(x; θ0).
    pub fn new(net0: FiniteNetwork, centered: bool) -> Self {
        let delta = net0.params.zeros_like();
        LinearizedNetwork {
            net0,
            delta,
            centered,
        }
    }

    /// The network at θ0.
    pub fn base(&self) -> &FiniteNetwork {
        &self.net0
    }

    /// θ = θ0 + Δ (allocates).
    pub fn theta(&self) -> Params {
        let mut t = self.net0.params.clone();
        t.axpy(1.0, &self.delta);
        t
    }

    /// Sets θ (stores Δ = θ − θ0); `ShapeMismatch` unless `theta` is shaped like θ0.
    pub fn set_theta(&mut self, theta: &Params) -> Result<()> {
        self.net0.params.check_same_shape(theta, "theta")?;
        self.delta.assign_difference(theta, &self.net0.params);
        Ok(())
    }

    /// True for the centred variant (no f(x; θ0) term).
    pub fn is_centered(&self) -> bool {
        self.centered
    }

    /// Predictions at `x`, one row per input and one column per output: the shape every
    /// infw model predicts in.
    pub fn predict<S: ndarray::Data<Elem = f64>>(
        &self,
        x: &ndarray::ArrayBase<S, ndarray::Ix2>,
    ) -> Result<Array2<f64>> {
        Model::predict(self, x.view())
    }
}

impl Core for LinearizedNetwork {
    fn graph(&self) -> &Graph {
        &self.net0.graph
    }
    fn tangents(&self) -> bool {
        true
    }
    fn forward_block(&self, x: ArrayView2<f64>, buf: &mut Buffers) {
        forward_tangent(&self.net0.graph, &self.net0.params, &self.delta, x, buf);
        let b = x.nrows();
        let last = self.net0.graph.output();
        let (val, tval) = (&mut buf.val[last], &buf.tval[last]);
        let mut f = val.slice_mut(s![..b, ..]);
        let df = tval.slice(s![..b, ..]);
        if self.centered {
            f.assign(&df);
        } else {
            Zip::from(&mut f).and(&df).for_each(|f, &d| *f += d);
        }
    }
    fn backward_block(&self, x: ArrayView2<f64>, buf: &mut Buffers, grad: &mut Params, acc: bool) {
        backward(
            &self.net0.graph,
            &self.net0.params,
            x,
            buf,
            Some((grad, acc)),
        );
    }
    fn grad_shape(&self) -> &Params {
        &self.delta
    }
}

impl Model for LinearizedNetwork {
    fn input_dim(&self) -> usize {
        self.net0.input_dim()
    }
    fn outputs(&self) -> usize {
        self.net0.outputs()
    }
    fn params(&self) -> &Params {
        &self.delta
    }
    fn params_mut(&mut self) -> &mut Params {
        &mut self.delta
    }
    fn predict_with(&self, x: ArrayView2<f64>, ws: &mut Workspace) -> Result<Array2<f64>> {
        check_layout(&self.net0.graph, &self.delta)?;
        check_input(x, self.input_dim(), "x")?;
        check_finite(x, "x")?;
        Ok(drive_predict(self, x, ws))
    }
    fn loss_gradient(
        &self,
        x: ArrayView2<f64>,
        y: ArrayView2<f64>,
        loss: Loss,
        grad: &mut Params,
        ws: &mut Workspace,
    ) -> Result<f64> {
        check_layout(&self.net0.graph, &self.delta)?;
        check_batch(x, y, self.input_dim(), self.outputs(), grad, &self.delta)?;
        drive_loss_gradient(self, x, y, loss, grad, ws)
    }
}
