//! The dense-layer rule of a finite network (SPEC §2): forward, forward-mode tangent (JVP)
//! and backward on a block of rows, written into reusable buffers.
//!
//! Every parameterization is `h = a_w · x Wᵀ + a_b · b` with per-layer scales: NTK has
//! `a_w = σw/√n_in`, `a_b = σb` and N(0,1) parameters; standard has `a_w = a_b = 1` and the
//! scales folded into the initial variance. One rule, so gradients and JVPs stay in sync.

use ndarray::linalg::{general_mat_mul, general_mat_vec_mul};
use ndarray::{s, Array2, ArrayView2, Zip};

use super::params::Params;
use crate::Activation;

/// One dense layer as the finite code sees it. `activation` is `None` for the readout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LayerSpec {
    pub n_in: usize,
    pub n_out: usize,
    pub w_scale: f64,
    pub b_scale: f64,
    pub activation: Option<Activation>,
}

/// Buffers for one block of at most `cap` rows: pre-activations, activations, backward
/// signals and (for the linearized model) their tangents; plus a gradient accumulator.
#[derive(Debug)]
pub(crate) struct Buffers {
    pub cap: usize,
    /// h^l, one per layer (cap × n_l); the last is the network output.
    pub pre: Vec<Array2<f64>>,
    /// x^l = φ(h^l), one per hidden layer.
    pub post: Vec<Array2<f64>>,
    /// ∂(χ·f)/∂h^l, one per layer; the last holds χ.
    pub delta: Vec<Array2<f64>>,
    /// ḣ^l and ẋ^l (empty unless tangents were asked for).
    pub tpre: Vec<Array2<f64>>,
    pub tpost: Vec<Array2<f64>>,
    /// Gradient accumulator of this block's worker (allocated on first use).
    pub grad: Option<Params>,
    /// Row scratch for the loss (C entries each).
    pub frow: Vec<f64>,
    pub yrow: Vec<f64>,
    pub chirow: Vec<f64>,
}

impl Buffers {
    pub fn new(specs: &[LayerSpec], cap: usize, tangents: bool) -> Buffers {
        let hidden = specs.len() - 1;
        let mk = |n: usize| Array2::zeros((cap, n));
        let c = specs[hidden].n_out;
        Buffers {
            cap,
            pre: specs.iter().map(|s| mk(s.n_out)).collect(),
            post: specs[..hidden].iter().map(|s| mk(s.n_out)).collect(),
            delta: specs.iter().map(|s| mk(s.n_out)).collect(),
            tpre: if tangents {
                specs.iter().map(|s| mk(s.n_out)).collect()
            } else {
                Vec::new()
            },
            tpost: if tangents {
                specs[..hidden].iter().map(|s| mk(s.n_out)).collect()
            } else {
                Vec::new()
            },
            grad: None,
            frow: vec![0.0; c],
            yrow: vec![0.0; c],
            chirow: vec![0.0; c],
        }
    }

    /// True when these buffers fit `specs` with at least `cap` rows (and tangents if asked).
    pub fn fits(&self, specs: &[LayerSpec], cap: usize, tangents: bool) -> bool {
        self.cap >= cap
            && self.pre.len() == specs.len()
            && self
                .pre
                .iter()
                .zip(specs)
                .all(|(a, s)| a.ncols() == s.n_out)
            && (!tangents || self.tpre.len() == specs.len())
    }
}

/// `c ← α · a Wᵀ + β c`; a matrix-vector product for a single row (no packing of W).
fn mat_mul_t(
    alpha: f64,
    a: ArrayView2<f64>,
    w: &Array2<f64>,
    beta: f64,
    c: &mut ndarray::ArrayViewMut2<f64>,
) {
    if a.nrows() == 1 {
        general_mat_vec_mul(alpha, w, &a.row(0), beta, &mut c.row_mut(0));
    } else {
        general_mat_mul(alpha, &a, &w.t(), beta, c);
    }
}

/// The input of layer `l` for the first `b` rows: `x` itself, or the previous layer's
/// activations.
fn layer_input<'a>(
    x: ArrayView2<'a, f64>,
    post: &'a [Array2<f64>],
    l: usize,
    b: usize,
) -> ArrayView2<'a, f64> {
    if l == 0 {
        x
    } else {
        post[l - 1].slice(s![..b, ..])
    }
}

/// Forward pass on rows `x` (b ≤ cap rows): fills `pre` and `post`.
pub(crate) fn forward(specs: &[LayerSpec], p: &Params, x: ArrayView2<f64>, buf: &mut Buffers) {
    let b = x.nrows();
    for (l, sp) in specs.iter().enumerate() {
        {
            let input = layer_input(x.view(), &buf.post, l, b);
            let mut h = buf.pre[l].slice_mut(s![..b, ..]);
            mat_mul_t(sp.w_scale, input, &p.weights[l], 0.0, &mut h);
            if sp.b_scale != 0.0 {
                for mut row in h.rows_mut() {
                    row.scaled_add(sp.b_scale, &p.biases[l]);
                }
            }
        }
        if let Some(act) = sp.activation {
            let h = buf.pre[l].slice(s![..b, ..]);
            Zip::from(buf.post[l].slice_mut(s![..b, ..]))
                .and(h)
                .for_each(|o, &v| *o = act.apply(v));
        }
    }
}

/// Forward pass at `p` together with the tangent along `t` (forward-mode JVP): fills `pre`,
/// `post`, and `tpre`, `tpost` with ḣ^l = a_w (x^{l−1} Ẇᵀ + ẋ^{l−1} Wᵀ) + a_b ḃ, ẋ^l = φ'(h^l) ḣ^l.
pub(crate) fn forward_tangent(
    specs: &[LayerSpec],
    p: &Params,
    t: &Params,
    x: ArrayView2<f64>,
    buf: &mut Buffers,
) {
    forward(specs, p, x, buf);
    let b = x.nrows();
    for (l, sp) in specs.iter().enumerate() {
        {
            let input = layer_input(x.view(), &buf.post, l, b);
            let mut th = buf.tpre[l].slice_mut(s![..b, ..]);
            mat_mul_t(sp.w_scale, input, &t.weights[l], 0.0, &mut th);
            if l > 0 {
                let tin = buf.tpost[l - 1].slice(s![..b, ..]);
                mat_mul_t(sp.w_scale, tin, &p.weights[l], 1.0, &mut th);
            }
            if sp.b_scale != 0.0 {
                for mut row in th.rows_mut() {
                    row.scaled_add(sp.b_scale, &t.biases[l]);
                }
            }
        }
        if let Some(act) = sp.activation {
            let h = buf.pre[l].slice(s![..b, ..]);
            let th = buf.tpre[l].slice(s![..b, ..]);
            Zip::from(buf.tpost[l].slice_mut(s![..b, ..]))
                .and(h)
                .and(th)
                .for_each(|o, &v, &dv| *o = act.derivative(v) * dv);
        }
    }
}

/// Backward pass after [`forward`] on the same `x`, with χ in the first b rows of the last
/// `delta`. Fills every `delta`; with `grad = Some((g, accumulate))` writes (or adds) the
/// gradient of Σ_rows χ·f into `g`: ∂/∂W^l = a_w δ^lᵀ x^{l−1}, ∂/∂b^l = a_b Σ_rows δ^l.
pub(crate) fn backward(
    specs: &[LayerSpec],
    p: &Params,
    x: ArrayView2<f64>,
    buf: &mut Buffers,
    mut grad: Option<(&mut Params, bool)>,
) {
    let b = x.nrows();
    for l in (0..specs.len()).rev() {
        let sp = specs[l];
        if let Some((g, accumulate)) = grad.as_mut() {
            let beta = if *accumulate { 1.0 } else { 0.0 };
            let input = layer_input(x.view(), &buf.post, l, b);
            let d = buf.delta[l].slice(s![..b, ..]);
            if b == 1 {
                // Outer product a_w δᵀ x, row by row.
                let x0 = input.row(0);
                for (mut gw, &di) in g.weights[l].rows_mut().into_iter().zip(d.row(0)) {
                    if *accumulate {
                        gw.scaled_add(sp.w_scale * di, &x0);
                    } else {
                        let a = sp.w_scale * di;
                        Zip::from(&mut gw).and(&x0).for_each(|g, &x| *g = a * x);
                    }
                }
            } else {
                general_mat_mul(sp.w_scale, &d.t(), &input, beta, &mut g.weights[l]);
            }
            let gb = &mut g.biases[l];
            if !*accumulate {
                gb.fill(0.0);
            }
            if sp.b_scale != 0.0 {
                for row in d.rows() {
                    gb.scaled_add(sp.b_scale, &row);
                }
            }
        }
        if l > 0 {
            let (lo, hi) = buf.delta.split_at_mut(l);
            let d = hi[0].slice(s![..b, ..]);
            let mut dprev = lo[l - 1].slice_mut(s![..b, ..]);
            if b == 1 {
                // One example (SPEC §4's per-example setting): stream W's rows instead of
                // packing the whole matrix for a matrix product.
                let mut row = dprev.row_mut(0);
                row.fill(0.0);
                for (i, &di) in d.row(0).iter().enumerate() {
                    if di != 0.0 {
                        row.scaled_add(sp.w_scale * di, &p.weights[l].row(i));
                    }
                }
            } else {
                general_mat_mul(sp.w_scale, &d, &p.weights[l], 0.0, &mut dprev);
            }
            let act = specs[l - 1].activation.unwrap_or(Activation::Identity);
            Zip::from(&mut dprev)
                .and(buf.pre[l - 1].slice(s![..b, ..]))
                .for_each(|d, &h| *d *= act.derivative(h));
        }
    }
}
