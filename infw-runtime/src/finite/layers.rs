//! The node rules of a finite network (docs/math.md §2, §8), each with its forward map, its
//! forward-mode tangent (JVP) and its backward map, on a block of rows into the reusable
//! [`Buffers`]; and the three passes that run them over a [`Graph`] in node order.
//!
//! - dense: h = a_w z Wᵀ + a_b b (one rule for both parameterizations, see `graph.rs`);
//! - activation: φ(z) elementwise, tangent and backward through φ'(z);
//! - layer_norm (neural-tangents' `LayerNorm`, no learned scale): y = (z − μ)·s with
//!   μ, σ² the mean and variance over the width and s = 1/√(σ² + eps); its Jacobian
//!   s(I − 11ᵀ/n − y yᵀ/n) is symmetric, so tangent and backward share one map;
//! - sum (the end of `residual(…)`): tangent and backward pass through to every input;
//! - concat: columns side by side; the backward splits them;
//! - conv, global_avg_pool, flatten (docs/math.md §9): see `conv.rs` (im2col and one matrix
//!   product; pooling and its adjoint; flatten is the identity on the channels-last row).
//!
//! Reverse mode adds the contributions of every reader of a node (a fan-out): the first
//! writes, the others accumulate. Nothing here allocates.

use ndarray::linalg::{general_mat_mul, general_mat_vec_mul};
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};

use super::conv::{
    conv_backward, conv_forward, head, head_mut, pool_backward, pool_forward, ConvGrads,
};
use super::graph::{Buffers, Graph, Op};
use super::params::Params;
use crate::arch::LAYER_NORM_EPS;

/// `c ← α · a Wᵀ + β c`; a matrix-vector product for a single row (no packing of W).
fn mat_mul_t(
    alpha: f64,
    a: ArrayView2<f64>,
    w: &Array2<f64>,
    beta: f64,
    c: &mut ArrayViewMut2<f64>,
) {
    if a.nrows() == 1 {
        general_mat_vec_mul(alpha, w, &a.row(0), beta, &mut c.row_mut(0));
    } else {
        general_mat_mul(alpha, &a, &w.t(), beta, c);
    }
}

/// The value of op `i` for the first `b` rows: `x` itself for the input.
fn value<'a>(
    x: ArrayView2<'a, f64>,
    val: &'a [Array2<f64>],
    i: usize,
    b: usize,
) -> ArrayView2<'a, f64> {
    if i == 0 {
        x
    } else {
        val[i].slice(s![..b, ..])
    }
}

/// `out ← out + a_b b` on every row (skipped when a_b = 0).
fn add_bias(b_scale: f64, bias: &Array1<f64>, out: &mut ArrayViewMut2<f64>) {
    if b_scale != 0.0 {
        for mut row in out.rows_mut() {
            row.scaled_add(b_scale, bias);
        }
    }
}

/// `dst ← src` or `dst ← dst + src` (the second and later readers of a fan-out).
fn put(dst: &mut ArrayViewMut2<f64>, src: ArrayView2<f64>, accumulate: bool) {
    if accumulate {
        *dst += &src;
    } else {
        dst.assign(&src);
    }
}

/// Layer norm over each row of `z` into `out`, keeping s = 1/√(σ² + eps) per row.
fn layer_norm_forward(z: ArrayView2<f64>, out: &mut ArrayViewMut2<f64>, inv_std: &mut [f64]) {
    let n = z.ncols() as f64;
    for ((zr, mut yr), s) in z.rows().into_iter().zip(out.rows_mut()).zip(inv_std) {
        let mean = zr.sum() / n;
        let var = zr.iter().map(|&v| (v - mean) * (v - mean)).sum::<f64>() / n;
        *s = 1.0 / (var + LAYER_NORM_EPS).sqrt();
        let sc = *s;
        Zip::from(&mut yr)
            .and(&zr)
            .for_each(|y, &v| *y = (v - mean) * sc);
    }
}

/// The layer-norm Jacobian applied to the rows of `d` (tangent or backward signal):
/// s (d − mean(d) − y · mean(d ⊙ y)), written or added into `out`.
fn layer_norm_jacobian(
    y: ArrayView2<f64>,
    inv_std: &[f64],
    d: ArrayView2<f64>,
    out: &mut ArrayViewMut2<f64>,
    accumulate: bool,
) {
    let n = y.ncols() as f64;
    for (((yr, dr), mut or), &sc) in y
        .rows()
        .into_iter()
        .zip(d.rows())
        .zip(out.rows_mut())
        .zip(inv_std)
    {
        let md = dr.sum() / n;
        let mdy = dr.dot(&yr) / n;
        let z = Zip::from(&mut or).and(&dr).and(&yr);
        if accumulate {
            z.for_each(|o, &d, &y| *o += sc * (d - md - y * mdy));
        } else {
            z.for_each(|o, &d, &y| *o = sc * (d - md - y * mdy));
        }
    }
}

/// Forward pass on rows `x` (b ≤ cap rows): fills every op's value; f ends in the last.
pub(crate) fn forward(g: &Graph, p: &Params, x: ArrayView2<f64>, buf: &mut Buffers) {
    let b = x.nrows();
    for i in 1..g.ops.len() {
        let (lo, hi) = buf.val.split_at_mut(i);
        let hi = &mut hi[0];
        let mut out = hi.slice_mut(s![..b, ..]);
        match &g.ops[i] {
            Op::Input => {}
            &Op::Dense {
                input,
                param,
                w_scale,
                b_scale,
            } => {
                let z = value(x.view(), lo, input, b);
                mat_mul_t(w_scale, z, &p.weights[param], 0.0, &mut out);
                add_bias(b_scale, &p.biases[param], &mut out);
            }
            Op::Activation { input, activation } => {
                let z = value(x.view(), lo, *input, b);
                Zip::from(&mut out)
                    .and(z)
                    .for_each(|o, &v| *o = activation.forward(v));
            }
            Op::LayerNorm { input } => {
                let z = value(x.view(), lo, *input, b);
                layer_norm_forward(z, &mut out, &mut buf.inv_std[i][..b]);
            }
            Op::Sum { inputs } => {
                for (k, &j) in inputs.iter().enumerate() {
                    put(&mut out, value(x.view(), lo, j, b), k > 0);
                }
            }
            Op::Concat { parts } => {
                for &(j, off) in parts {
                    let z = value(x.view(), lo, j, b);
                    out.slice_mut(s![.., off..off + z.ncols()]).assign(&z);
                }
            }
            Op::Conv {
                input,
                param,
                w_scale,
                b_scale,
                shape,
            } => {
                let z = value(x.view(), lo, *input, b);
                let bias = Some((*b_scale, &p.biases[*param]));
                let (w, out) = (&p.weights[*param], head_mut(hi, b));
                conv_forward(shape, *w_scale, w, bias, z, out, &mut buf.scratch, false);
            }
            Op::GlobalAvgPool { input, positions } => {
                pool_forward(*positions, value(x.view(), lo, *input, b), &mut out);
            }
            Op::Flatten { input } => out.assign(&value(x.view(), lo, *input, b)),
        }
    }
}

/// Forward pass at `p` together with the tangent along `t` (forward-mode JVP): fills the
/// values and, for every op that depends on parameters, its tangent: a dense op's is
/// a_w (z Ẇᵀ + ż Wᵀ) + a_b ḃ, an activation's φ'(z) ż, layer norm's J ż, a sum's Σ ż,
/// a concat's the ż side by side (zero columns for parts without parameters); a conv's the
/// same as a dense op's on patches, pooling and flatten their linear maps of ż.
pub(crate) fn forward_tangent(
    g: &Graph,
    p: &Params,
    t: &Params,
    x: ArrayView2<f64>,
    buf: &mut Buffers,
) {
    forward(g, p, x, buf);
    let b = x.nrows();
    for i in 1..g.ops.len() {
        if !g.trainable[i] {
            continue;
        }
        let (lo, hi) = buf.tval.split_at_mut(i);
        let lo: &[Array2<f64>] = lo;
        let hi = &mut hi[0];
        let mut out = hi.slice_mut(s![..b, ..]);
        let tangent = |j: usize| lo[j].slice(s![..b, ..]);
        match &g.ops[i] {
            Op::Input => {}
            &Op::Dense {
                input,
                param,
                w_scale,
                b_scale,
            } => {
                let z = value(x.view(), &buf.val, input, b);
                mat_mul_t(w_scale, z, &t.weights[param], 0.0, &mut out);
                if g.trainable[input] {
                    mat_mul_t(w_scale, tangent(input), &p.weights[param], 1.0, &mut out);
                }
                add_bias(b_scale, &t.biases[param], &mut out);
            }
            Op::Activation { input, activation } => {
                let z = value(x.view(), &buf.val, *input, b);
                Zip::from(&mut out)
                    .and(z)
                    .and(tangent(*input))
                    .for_each(|o, &v, &dv| *o = activation.derivative(v) * dv);
            }
            Op::LayerNorm { input } => {
                let y = buf.val[i].slice(s![..b, ..]);
                layer_norm_jacobian(y, &buf.inv_std[i][..b], tangent(*input), &mut out, false);
            }
            Op::Sum { inputs } => {
                let mut first = true;
                for &j in inputs.iter().filter(|&&j| g.trainable[j]) {
                    put(&mut out, tangent(j), !first);
                    first = false;
                }
            }
            Op::Concat { parts } => {
                for &(j, off) in parts {
                    let mut cols = out.slice_mut(s![.., off..off + g.widths[j]]);
                    if g.trainable[j] {
                        cols.assign(&tangent(j));
                    } else {
                        cols.fill(0.0);
                    }
                }
            }
            Op::Conv {
                input,
                param,
                w_scale,
                b_scale,
                shape,
            } => {
                // a_w (U Ẇᵀ + U̇ Wᵀ) + a_b ḃ, U̇ the patches of the input's tangent.
                let z = value(x.view(), &buf.val, *input, b);
                let bias = Some((*b_scale, &t.biases[*param]));
                let scratch = &mut buf.scratch;
                let out = head_mut(hi, b);
                conv_forward(
                    shape,
                    *w_scale,
                    &t.weights[*param],
                    bias,
                    z,
                    out,
                    scratch,
                    false,
                );
                if g.trainable[*input] {
                    let (w, dz) = (&p.weights[*param], tangent(*input));
                    conv_forward(shape, *w_scale, w, None, dz, out, scratch, true);
                }
            }
            Op::GlobalAvgPool { input, positions } => {
                pool_forward(*positions, tangent(*input), &mut out);
            }
            Op::Flatten { input } => out.assign(&tangent(*input)),
        }
    }
}

/// Backward pass after [`forward`] on the same `x`, with χ in the first b rows of the last
/// delta. Fills the delta of every op with parameters upstream; with `grad = Some((g,
/// accumulate))` writes (or adds) the gradient of Σ_rows χ·f into `g`: for each dense op,
/// ∂/∂W = a_w δᵀ z and ∂/∂b = a_b Σ_rows δ (for a conv, z its patches and the sums over
/// rows and positions).
pub(crate) fn backward(
    g: &Graph,
    p: &Params,
    x: ArrayView2<f64>,
    buf: &mut Buffers,
    mut grad: Option<(&mut Params, bool)>,
) {
    let b = x.nrows();
    let last = g.output();
    buf.written.fill(false);
    buf.written[last] = true;
    for i in (1..=last).rev() {
        if !g.trainable[i] {
            continue;
        }
        if !buf.written[i] {
            // No path from this op to the readout: its parameters get zero gradients.
            buf.delta[i].fill(0.0);
            buf.written[i] = true;
        }
        let (lo, hi) = buf.delta.split_at_mut(i);
        let d = hi[0].slice(s![..b, ..]);
        let written = &mut buf.written;
        match &g.ops[i] {
            Op::Input => {}
            &Op::Dense {
                input,
                param,
                w_scale,
                b_scale,
            } => {
                if let Some((gr, accumulate)) = grad.as_mut() {
                    let z = value(x.view(), &buf.val, input, b);
                    dense_parameter_gradient(
                        w_scale,
                        b_scale,
                        d,
                        z,
                        &mut gr.weights[param],
                        &mut gr.biases[param],
                        *accumulate,
                    );
                }
                if g.trainable[input] {
                    let (mut dz, acc) = target(lo, written, input, b);
                    let w = &p.weights[param];
                    if b == 1 {
                        // One example (docs/math.md §4's per-example setting): stream W's rows
                        // instead of packing the whole matrix for a matrix product.
                        let mut row = dz.row_mut(0);
                        if !acc {
                            row.fill(0.0);
                        }
                        for (k, &dk) in d.row(0).iter().enumerate() {
                            if dk != 0.0 {
                                row.scaled_add(w_scale * dk, &w.row(k));
                            }
                        }
                    } else {
                        general_mat_mul(w_scale, &d, w, if acc { 1.0 } else { 0.0 }, &mut dz);
                    }
                }
            }
            Op::Activation { input, activation } => {
                let z = value(x.view(), &buf.val, *input, b);
                let (mut dz, acc) = target(lo, written, *input, b);
                let zip = Zip::from(&mut dz).and(d).and(z);
                if acc {
                    zip.for_each(|o, &d, &v| *o += d * activation.derivative(v));
                } else {
                    zip.for_each(|o, &d, &v| *o = d * activation.derivative(v));
                }
            }
            Op::LayerNorm { input } => {
                let y = buf.val[i].slice(s![..b, ..]);
                let (mut dz, acc) = target(lo, written, *input, b);
                layer_norm_jacobian(y, &buf.inv_std[i][..b], d, &mut dz, acc);
            }
            Op::Sum { inputs } => {
                for &j in inputs.iter().filter(|&&j| g.trainable[j]) {
                    let (mut dz, acc) = target(lo, written, j, b);
                    put(&mut dz, d, acc);
                }
            }
            Op::Concat { parts } => {
                for &(j, off) in parts.iter().filter(|&&(j, _)| g.trainable[j]) {
                    let (mut dz, acc) = target(lo, written, j, b);
                    put(&mut dz, d.slice(s![.., off..off + g.widths[j]]), acc);
                }
            }
            Op::Conv {
                input,
                param,
                w_scale,
                b_scale,
                shape,
            } => {
                let z = value(x.view(), &buf.val, *input, b);
                let params = grad.as_mut().map(|(gr, accumulate)| {
                    let (gw, gb) = (&mut gr.weights[*param], &mut gr.biases[*param]);
                    (gw, gb, *accumulate)
                });
                let input = if g.trainable[*input] {
                    let acc = written[*input];
                    written[*input] = true;
                    Some((head_mut(&mut lo[*input], b), acc))
                } else {
                    None
                };
                let w = &p.weights[*param];
                let out = ConvGrads { params, input };
                let d = head(&hi[0], b);
                conv_backward(shape, *w_scale, *b_scale, w, z, d, out, &mut buf.scratch);
            }
            Op::GlobalAvgPool { input, positions } => {
                if g.trainable[*input] {
                    let (mut dz, acc) = target(lo, written, *input, b);
                    pool_backward(*positions, d, &mut dz, acc);
                }
            }
            Op::Flatten { input } => {
                if g.trainable[*input] {
                    let (mut dz, acc) = target(lo, written, *input, b);
                    put(&mut dz, d, acc);
                }
            }
        }
    }
}

/// The delta of op `j` (first `b` rows), and whether it already holds a contribution from
/// another reader (a fan-out), marking it as written.
fn target<'a>(
    deltas: &'a mut [Array2<f64>],
    written: &mut [bool],
    j: usize,
    b: usize,
) -> (ArrayViewMut2<'a, f64>, bool) {
    let acc = written[j];
    written[j] = true;
    (deltas[j].slice_mut(s![..b, ..]), acc)
}

/// ∂(Σ_rows χ·f)/∂W = a_w δᵀ z and ∂/∂b = a_b Σ_rows δ of one dense op, written or added.
fn dense_parameter_gradient(
    w_scale: f64,
    b_scale: f64,
    d: ArrayView2<f64>,
    z: ArrayView2<f64>,
    gw: &mut Array2<f64>,
    gb: &mut Array1<f64>,
    accumulate: bool,
) {
    if d.nrows() == 1 {
        // Outer product a_w δᵀ z, row by row.
        let z0 = z.row(0);
        for (mut gr, &dk) in gw.rows_mut().into_iter().zip(d.row(0)) {
            let a = w_scale * dk;
            if accumulate {
                gr.scaled_add(a, &z0);
            } else {
                Zip::from(&mut gr).and(&z0).for_each(|g, &z| *g = a * z);
            }
        }
    } else {
        let beta = if accumulate { 1.0 } else { 0.0 };
        general_mat_mul(w_scale, &d.t(), &z, beta, gw);
    }
    if !accumulate {
        gb.fill(0.0);
    }
    if b_scale != 0.0 {
        for row in d.axis_iter(Axis(0)) {
            gb.scaled_add(b_scale, &row);
        }
    }
}
