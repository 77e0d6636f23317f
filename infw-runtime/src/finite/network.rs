//! [`FiniteNetwork`]: the finite network of a declared architecture (docs/math.md §2), with forward,
//! backward, JVP, the empirical NTK at initialization and the first-order effect of one
//! sign-descent step (docs/math.md §4).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::conv::{as_matrix, conv_ntk, head, ConvNtkMethod};
use super::graph::{Buffers, Graph, Op};
use super::layers::{backward, forward, forward_tangent};
use super::linearized::LinearizedNetwork;
use super::model::{
    check_batch, check_finite, check_input, check_layout, drive_loss_gradient, drive_predict, Core,
    Model, Workspace,
};
use super::params::{Params, TensorRates};
use crate::{Architecture, Error, Loss, Result};

/// How weights enter the pre-activations (docs/math.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Parameterization {
    /// W, b ~ N(0,1); h = (σw/√n_in) W x + σb b. The one whose wide limits are the NTK and
    /// the Adam limit.
    #[default]
    Ntk,
    /// W ~ N(0, σw²/n_in), b ~ N(0, σb²); h = W x + b. The "traditional" finite model (§7).
    Standard,
}

/// The finite network of a declared [`Architecture`]: its graph of dense, activation,
/// layer-norm, sum (residual) and concat nodes, or of conv, global_avg_pool and flatten
/// nodes of a declaration with `input(…)`, then the readout (docs/math.md §2, §8, §9).
/// A convolutional network's rows are the channels-last inputs flattened in C order.
///
/// ```
/// use infw_runtime::{Activation, Architecture, Hidden};
/// use infw_runtime::finite::{FiniteNetwork, Parameterization};
/// let h = Hidden { width: 8, w_std: 1.0, b_std: 0.1, activation: Activation::RELU };
/// let arch = Architecture::chain(&[h], None, 1.0, 0.0);
/// let net = FiniteNetwork::new(&arch, 3, 2, Parameterization::Ntk, 7).unwrap();
/// let f = net.forward(ndarray::array![[1.0, 0.0, -1.0]].view()).unwrap();
/// assert_eq!(f.dim(), (1, 2));
/// ```
#[derive(Clone, Debug)]
pub struct FiniteNetwork {
    pub(crate) graph: Graph,
    pub(crate) params: Params,
    pub(crate) param: Parameterization,
    /// The declaration and width factor the graph was built from (what saving writes).
    pub(crate) arch: Architecture,
    pub(crate) factor: usize,
}

impl FiniteNetwork {
    /// Builds and initializes the network (seeded: the same seed gives the same network).
    /// `outputs` is the number of target columns; the readout width is
    /// `arch.outputs_for(outputs)`.
    pub fn new(
        arch: &Architecture,
        input_dim: usize,
        outputs: usize,
        param: Parameterization,
        seed: u64,
    ) -> Result<Self> {
        Self::with_width_factor(arch, 1, input_dim, outputs, param, seed)
    }

    /// The same declaration with every dense width and conv channel count (not the
    /// readout's width) multiplied by `factor` (e.g. 4 to see whether a finite network approaches its limit as width
    /// grows). Widths that overflow, or parameters that could not be allocated, are an
    /// error before anything is allocated.
    pub fn with_width_factor(
        arch: &Architecture,
        factor: usize,
        input_dim: usize,
        outputs: usize,
        param: Parameterization,
        seed: u64,
    ) -> Result<Self> {
        let graph = graph_for(arch, factor, input_dim, outputs, param)?;

        // W then b of each dense node in node order, the readout last: for a chain, the
        // same draws as layer by layer.
        let mut rng = StdRng::seed_from_u64(seed);
        let tensors = graph.param_ops.len();
        let mut weights = Vec::with_capacity(tensors);
        let mut biases = Vec::with_capacity(tensors);
        for (k, &(w_std, b_std)) in graph.stds.iter().enumerate() {
            let (n_out, n_in) = graph.shape(k);
            let (ws, bs) = match param {
                Parameterization::Ntk => (1.0, 1.0),
                Parameterization::Standard => (w_std / (n_in as f64).sqrt(), b_std),
            };
            let w = Array2::from_shape_simple_fn((n_out, n_in), || {
                ws * rng.sample::<f64, _>(StandardNormal)
            });
            let b =
                Array1::from_shape_simple_fn(n_out, || bs * rng.sample::<f64, _>(StandardNormal));
            weights.push(w);
            biases.push(b);
        }
        Ok(FiniteNetwork {
            graph,
            params: Params { weights, biases },
            param,
            arch: arch.clone(),
            factor,
        })
    }

    /// The network of `arch` with given parameters (a restored save, `crate::persist`): the
    /// graph checked and compiled as by [`with_width_factor`](Self::with_width_factor)
    /// (`factor`, `input_dim` ≥ 1 checked by the caller), the parameters' shapes against it.
    #[cfg(feature = "serde")]
    pub(crate) fn from_parts(
        arch: &Architecture,
        factor: usize,
        input_dim: usize,
        outputs: usize,
        param: Parameterization,
        params: Params,
    ) -> Result<Self> {
        let graph = graph_for(arch, factor, input_dim, outputs, param)?;
        check_layout(&graph, &params)?;
        Ok(FiniteNetwork {
            graph,
            params,
            param,
            arch: arch.clone(),
            factor,
        })
    }

    /// The parameterization chosen at construction.
    pub fn parameterization(&self) -> Parameterization {
        self.param
    }

    /// The declared architecture it was built from.
    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }

    /// The factor every dense width and conv channel count was multiplied by (1 for
    /// [`FiniteNetwork::new`]).
    pub fn width_factor(&self) -> usize {
        self.factor
    }

    /// The width of every dense node (a conv node's channel count) in node order, then C
    /// (the readout): the row counts of the parameter tensors.
    pub fn widths(&self) -> Vec<usize> {
        (0..self.graph.param_ops.len())
            .map(|k| self.graph.shape(k).0)
            .collect()
    }

    /// docs/math.md §4's per-tensor learning-rate multipliers for this network's shapes (§8: per
    /// dense node, from its fan-in and width).
    pub fn sign_limit_rates(&self) -> TensorRates {
        TensorRates::sign_limit(&self.params)
    }

    /// Predictions at `x`, one row per input and one column per output: the shape every
    /// infw model predicts in (the same as [`forward`](Self::forward)).
    pub fn predict<S: ndarray::Data<Elem = f64>>(
        &self,
        x: &ndarray::ArrayBase<S, ndarray::Ix2>,
    ) -> Result<Array2<f64>> {
        self.forward(x.view())
    }

    /// f(x) for the rows of `x` (rows × C).
    pub fn forward(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        check_layout(&self.graph, &self.params)?;
        check_input(x, self.input_dim(), "x")?;
        check_finite(x, "x")?;
        Ok(drive_predict(self, x, &mut Workspace::default()))
    }

    /// Σ_rows ∂(χ_row · f(x_row))/∂θ: the backward pass for a given χ = ∂ℓ/∂f (rows × C).
    /// (Not divided by the number of rows: pass χ/B for a mean loss.)
    pub fn gradient(&self, x: ArrayView2<f64>, chi: ArrayView2<f64>) -> Result<Params> {
        check_layout(&self.graph, &self.params)?;
        let mut g = self.params.zeros_like();
        check_batch(x, chi, self.input_dim(), self.outputs(), &g, &self.params)?;
        check_finite(x, "x")?;
        check_finite(chi, "chi")?;
        let mut buf = Buffers::new(&self.graph, x.nrows(), false);
        forward(&self.graph, &self.params, x, &mut buf);
        let last = self.graph.output();
        buf.delta[last].assign(&chi);
        backward(
            &self.graph,
            &self.params,
            x,
            &mut buf,
            Some((&mut g, false)),
        );
        Ok(g)
    }

    /// Forward-mode JVP at the current parameters along `tangent`: returns
    /// (f(x), J(x)·tangent), both rows × C.
    pub fn jvp(&self, x: ArrayView2<f64>, tangent: &Params) -> Result<(Array2<f64>, Array2<f64>)> {
        check_layout(&self.graph, &self.params)?;
        check_input(x, self.input_dim(), "x")?;
        check_finite(x, "x")?;
        self.params.check_same_shape(tangent, "tangent")?;
        let mut buf = Buffers::new(&self.graph, x.nrows(), true);
        forward_tangent(&self.graph, &self.params, tangent, x, &mut buf);
        let last = self.graph.output();
        Ok((buf.val[last].clone(), buf.tval[last].clone()))
    }

    /// Empirical NTK of output 0 at the current parameters: Θ(x, x') = Σ_p ∂f_0(x)/∂θ_p ·
    /// ∂f_0(x')/∂θ_p, for x in the rows of `x1` and x' in the rows of `x2`. Computed per
    /// dense node as (Δ Δ'ᵀ) ⊙ (a_w² Z Z'ᵀ + a_b²) with Z the node's input and Δ the
    /// backward signal at its output, never per parameter; per conv node the same sum runs
    /// over pairs of positions, or over per-example gradients when that is cheaper
    /// (docs/math.md §9).
    pub fn empirical_ntk(&self, x1: ArrayView2<f64>, x2: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.empirical_ntk_with(x1, x2, ConvNtkMethod::Auto)
    }

    /// [`FiniteNetwork::empirical_ntk`] with a chosen way of summing over conv parameters.
    pub(crate) fn empirical_ntk_with(
        &self,
        x1: ArrayView2<f64>,
        x2: ArrayView2<f64>,
        method: ConvNtkMethod,
    ) -> Result<Array2<f64>> {
        check_layout(&self.graph, &self.params)?;
        let d = self.input_dim();
        check_input(x1, d, "x1")?;
        check_input(x2, d, "x2")?;
        check_finite(x1, "x1")?;
        check_finite(x2, "x2")?;
        let g = &self.graph;
        let signals = |x: ArrayView2<f64>| {
            let mut buf = Buffers::new(g, x.nrows(), false);
            forward(g, &self.params, x, &mut buf);
            let last = g.output();
            buf.delta[last].fill(0.0);
            buf.delta[last].column_mut(0).fill(1.0);
            backward(g, &self.params, x, &mut buf, None);
            buf
        };
        let (b1, b2) = (signals(x1), signals(x2));
        let mut k = Array2::zeros((x1.nrows(), x2.nrows()));
        for &i in &g.param_ops {
            if let Op::Conv {
                input,
                w_scale,
                b_scale,
                ref shape,
                ..
            } = g.ops[i]
            {
                let (r1, r2) = (x1.nrows(), x2.nrows());
                let (p, co) = (shape.out_positions, shape.c_out);
                let (z1, z2) = if input == 0 {
                    (x1.view(), x2.view())
                } else {
                    (b1.val[input].view(), b2.val[input].view())
                };
                let d1 = as_matrix(head(&b1.delta[i], r1), r1 * p, co);
                let d2 = as_matrix(head(&b2.delta[i], r2), r2 * p, co);
                conv_ntk(shape, w_scale, b_scale, z1, d1, z2, d2, &mut k, method);
                continue;
            }
            let Op::Dense {
                input,
                w_scale,
                b_scale,
                ..
            } = g.ops[i]
            else {
                continue;
            };
            let (in1, in2) = if input == 0 {
                (x1.view(), x2.view())
            } else {
                (b1.val[input].view(), b2.val[input].view())
            };
            let mut fwd = in1.dot(&in2.t());
            fwd.mapv_inplace(|v| w_scale * w_scale * v + b_scale * b_scale);
            let bwd = b1.delta[i].dot(&b2.delta[i].t());
            k += &(fwd * bwd);
        }
        Ok(k)
    }

    /// One sign-descent step on the single example `x_b` with loss gradient `chi` ∈ R^C and
    /// docs/math.md §4's per-tensor rates, Δθ_p = −η r_p sign(χ·∂f(x_b)/∂θ_p) (sign(0) = 0), and the
    /// first-order change of f at the rows of `x_eval`: Σ_p ∂f/∂θ_p Δθ_p (rows × C). Its
    /// wide limit is −η[sign(χ_c) R(x, x_b) + (χ_c/‖χ‖) H(x, x_b)] (docs/math.md §4).
    pub fn sign_step_first_order_change(
        &self,
        x_b: ArrayView1<f64>,
        chi: ArrayView1<f64>,
        x_eval: ArrayView2<f64>,
        eta: f64,
    ) -> Result<Array2<f64>> {
        if !eta.is_finite() {
            return Err(Error::InvalidArgument {
                name: "eta",
                value: eta.to_string(),
                reason: "the learning rate must be finite".into(),
            });
        }
        let xb = x_b.insert_axis(ndarray::Axis(0));
        let chi2 = chi.insert_axis(ndarray::Axis(0));
        let mut step = self.gradient(xb, chi2)?;
        let rates = self.sign_limit_rates();
        for (w, r) in step.weights.iter_mut().zip(&rates.weights) {
            w.mapv_inplace(|g| -eta * r * sign(g));
        }
        for (b, r) in step.biases.iter_mut().zip(&rates.biases) {
            b.mapv_inplace(|g| -eta * r * sign(g));
        }
        Ok(self.jvp(x_eval, &step)?.1)
    }

    /// The linearization f(θ0) + J(θ0)(θ − θ0) around the current parameters (feature
    /// learning disabled); `centered` drops the f(θ0) term.
    pub fn linearize(&self, centered: bool) -> LinearizedNetwork {
        LinearizedNetwork::new(self.clone(), centered)
    }
}

/// sign(g) with sign(0) = 0 (docs/math.md §4).
#[inline]
pub(crate) fn sign(g: f64) -> f64 {
    if g > 0.0 {
        1.0
    } else if g < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl Core for FiniteNetwork {
    fn graph(&self) -> &Graph {
        &self.graph
    }
    fn tangents(&self) -> bool {
        false
    }
    fn forward_block(&self, x: ArrayView2<f64>, buf: &mut Buffers) {
        forward(&self.graph, &self.params, x, buf);
    }
    fn backward_block(&self, x: ArrayView2<f64>, buf: &mut Buffers, grad: &mut Params, acc: bool) {
        backward(&self.graph, &self.params, x, buf, Some((grad, acc)));
    }
    fn grad_shape(&self) -> &Params {
        &self.params
    }
}

/// The graph of `arch` at `factor` × the declared widths on `input_dim` inputs, its readout
/// sized for `outputs` target columns: shared by a fresh network and a restored one, so
/// both refuse a zero factor, an empty input or an empty readout alike.
fn graph_for(
    arch: &Architecture,
    factor: usize,
    input_dim: usize,
    outputs: usize,
    param: Parameterization,
) -> Result<Graph> {
    if factor == 0 {
        return Err(Error::InvalidArgument {
            name: "width factor",
            value: "0".into(),
            reason: "hidden widths must stay at least 1".into(),
        });
    }
    if input_dim == 0 {
        return Err(Error::Empty {
            what: "input dimension".into(),
            axis: "columns",
        });
    }
    let c = arch.outputs_for(outputs)?;
    if c == 0 {
        return Err(Error::Empty {
            what: "readout".into(),
            axis: "outputs",
        });
    }
    Graph::new(arch, factor, input_dim, c, param)
}

impl Model for FiniteNetwork {
    fn input_dim(&self) -> usize {
        self.graph.input_dim()
    }
    fn outputs(&self) -> usize {
        self.graph.outputs()
    }
    fn params(&self) -> &Params {
        &self.params
    }
    fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }
    fn predict_with(&self, x: ArrayView2<f64>, ws: &mut Workspace) -> Result<Array2<f64>> {
        check_layout(&self.graph, &self.params)?;
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
        check_layout(&self.graph, &self.params)?;
        check_batch(x, y, self.input_dim(), self.outputs(), grad, &self.params)?;
        drive_loss_gradient(self, x, y, loss, grad, ws)
    }
}
