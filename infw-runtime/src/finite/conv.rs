//! The spatial node rules of a finite network (docs/math.md §9): convolution, global average
//! pooling and flattening, on blocks of rows in the channels-last layout of a row of X
//! (position-major, channel fastest).
//!
//! A convolution is im2col + one matrix product: the patches U of a chunk of rows (one row
//! per (row, output position), kⁿ·C_in columns ordered offset-major, channel fastest) are
//! gathered into a scratch buffer, and h = a_w U Wᵀ + a_b b with W of shape
//! C_out × (kⁿ·C_in) is then exactly the output (rows × positions × C_out) seen as
//! (rows·positions) × C_out. The backward pass gathers U again (a copy, cheap next to the
//! products) rather than keeping every conv's patches, and chunks of rows bound the scratch
//! to [`PATCH_BUDGET`] whatever the image size. The parameters keep the dense (W, b)
//! layout, so optimizers, rates and the linearization need nothing new. The block rules
//! allocate nothing; the empirical NTK's share ([`conv_ntk`]) allocates its products.

use infw_layers::conv::ConvGeometry;
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2};

/// A window offset that falls in the zero padding.
const PADDED: usize = usize::MAX;

/// One convolution as the finite code runs it: channel counts and the index map of
/// [`ConvGeometry::source_position`] tabulated per (output position, window offset).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConvShape {
    pub c_in: usize,
    pub c_out: usize,
    /// kⁿ, the window positions.
    pub window: usize,
    pub in_positions: usize,
    pub out_positions: usize,
    /// `sources[p·window + a]`: the input position output `p` reads at offset `a`
    /// ([`PADDED`] in the zero padding).
    sources: Vec<usize>,
}

impl ConvShape {
    /// Tabulates `g`'s index map for a conv from `c_in` to `c_out` channels.
    pub fn new(g: &ConvGeometry, c_in: usize, c_out: usize) -> ConvShape {
        let (p_out, window) = (g.output_positions(), g.window());
        let mut sources = Vec::with_capacity(p_out * window);
        for p in 0..p_out {
            for a in 0..window {
                sources.push(g.source_position(p, a).unwrap_or(PADDED));
            }
        }
        ConvShape {
            c_in,
            c_out,
            window,
            in_positions: g.input_positions(),
            out_positions: p_out,
            sources,
        }
    }

    /// Columns of U (and of W): kⁿ·C_in, the fan-in of one output.
    pub fn patch_len(&self) -> usize {
        self.window * self.c_in
    }
}

/// A contiguous row-major slice seen as a `rows × cols` matrix (internal buffers only:
/// the lengths are invariants of the graph's layout).
pub(crate) fn as_matrix(data: &[f64], rows: usize, cols: usize) -> ArrayView2<'_, f64> {
    ArrayView2::from_shape((rows, cols), &data[..rows * cols]).expect("buffer sized by layout")
}

/// The mutable counterpart of [`as_matrix`].
pub(crate) fn as_matrix_mut(data: &mut [f64], rows: usize, cols: usize) -> ArrayViewMut2<'_, f64> {
    ArrayViewMut2::from_shape((rows, cols), &mut data[..rows * cols])
        .expect("buffer sized by layout")
}

/// The first `rows` rows of an owned buffer as one contiguous slice.
pub(crate) fn head(a: &Array2<f64>, rows: usize) -> &[f64] {
    let n = rows * a.ncols();
    &a.as_slice().expect("owned buffers are standard layout")[..n]
}

/// The mutable counterpart of [`head`].
pub(crate) fn head_mut(a: &mut Array2<f64>, rows: usize) -> &mut [f64] {
    let n = rows * a.ncols();
    &mut a.as_slice_mut().expect("owned buffers are standard layout")[..n]
}

/// im2col: U[(r, p), a·C_in + c] = z[r, src(p, a)·C_in + c], 0 in the padding, for every
/// row r of `z` (which may be the caller's X in any layout) into `cols`.
pub(crate) fn im2col(sh: &ConvShape, z: ArrayView2<f64>, cols: &mut [f64]) {
    let (ci, k, pl) = (sh.c_in, sh.window, sh.patch_len());
    let per_row = sh.out_positions * pl;
    for (zr, out) in z.rows().into_iter().zip(cols.chunks_exact_mut(per_row)) {
        let contiguous = zr.as_slice();
        for (srcs, patch) in sh.sources.chunks_exact(k).zip(out.chunks_exact_mut(pl)) {
            for (&q, dst) in srcs.iter().zip(patch.chunks_exact_mut(ci)) {
                if q == PADDED {
                    dst.fill(0.0);
                } else if let Some(zs) = contiguous {
                    dst.copy_from_slice(&zs[q * ci..(q + 1) * ci]);
                } else {
                    for (c, d) in dst.iter_mut().enumerate() {
                        *d = zr[q * ci + c];
                    }
                }
            }
        }
    }
}

/// col2im, the adjoint of [`im2col`]: dz[r, src(p, a)·C_in + c] += dU[(r, p), a·C_in + c]
/// over the rows of `dz` (a contiguous block of rows); written instead when `!accumulate`.
pub(crate) fn col2im(sh: &ConvShape, dcols: &[f64], dz: &mut [f64], accumulate: bool) {
    if !accumulate {
        dz.fill(0.0);
    }
    let (ci, k, pl) = (sh.c_in, sh.window, sh.patch_len());
    let per_row = sh.out_positions * pl;
    let row_len = sh.in_positions * ci;
    for (dr, du) in dz
        .chunks_exact_mut(row_len)
        .zip(dcols.chunks_exact(per_row))
    {
        for (srcs, patch) in sh.sources.chunks_exact(k).zip(du.chunks_exact(pl)) {
            for (&q, src) in srcs.iter().zip(patch.chunks_exact(ci)) {
                if q != PADDED {
                    for (d, &v) in dr[q * ci..(q + 1) * ci].iter_mut().zip(src) {
                        *d += v;
                    }
                }
            }
        }
    }
}

/// Entries of one chunk of patches (16 MiB): a block's rows are convolved in chunks of
/// at most this many patch entries (at least one row).
pub(crate) const PATCH_BUDGET: usize = 1 << 21;

impl ConvShape {
    /// Rows per chunk for a block of `rows` rows.
    pub fn chunk_rows(&self, rows: usize) -> usize {
        let per_row = (self.out_positions * self.patch_len()).max(1);
        (PATCH_BUDGET / per_row).clamp(1, rows.max(1))
    }

    /// The scratch a block of `cap` rows needs: one chunk of patches.
    pub fn scratch_len(&self, cap: usize) -> usize {
        self.chunk_rows(cap) * self.out_positions * self.patch_len()
    }
}

/// `out (+)= a_w U Wᵀ (+ a_b b)` for the patches U of the rows of `z`, chunk by chunk:
/// the convolution of `z` (rows × P_in·C_in) into `out` (the rows' P·C_out outputs,
/// contiguous); added to `out` when `accumulate`, the bias only when given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_forward(
    sh: &ConvShape,
    w_scale: f64,
    w: &Array2<f64>,
    bias: Option<(f64, &Array1<f64>)>,
    z: ArrayView2<f64>,
    out: &mut [f64],
    scratch: &mut [f64],
    accumulate: bool,
) {
    let (p, pl, co) = (sh.out_positions, sh.patch_len(), sh.c_out);
    let chunk = sh.chunk_rows(z.nrows());
    let beta = if accumulate { 1.0 } else { 0.0 };
    for r0 in (0..z.nrows()).step_by(chunk) {
        let r1 = (r0 + chunk).min(z.nrows());
        let rows = (r1 - r0) * p;
        let u = &mut scratch[..rows * pl];
        im2col(sh, z.slice(s![r0..r1, ..]), u);
        let u = as_matrix(u, rows, pl);
        let mut h = as_matrix_mut(&mut out[r0 * p * co..], rows, co);
        general_mat_mul(w_scale, &u, &w.t(), beta, &mut h);
        if let Some((b_scale, b)) = bias {
            if b_scale != 0.0 {
                for mut row in h.rows_mut() {
                    row.scaled_add(b_scale, b);
                }
            }
        }
    }
}

/// Where [`conv_backward`] writes: the gradient of (W, b) (added when the flag is set) and
/// the backward signal on the conv's input (added when the flag is set).
pub(crate) struct ConvGrads<'a> {
    pub params: Option<(&'a mut Array2<f64>, &'a mut Array1<f64>, bool)>,
    pub input: Option<(&'a mut [f64], bool)>,
}

/// The backward pass of a convolution, chunk by chunk, for the rows of `z` with backward
/// signal `d` (the rows' P·C_out entries, contiguous): ∂/∂W = a_w δᵀ U, ∂/∂b = a_b Σ δ,
/// and on the input the col2im of a_w δ W.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_backward(
    sh: &ConvShape,
    w_scale: f64,
    b_scale: f64,
    w: &Array2<f64>,
    z: ArrayView2<f64>,
    d: &[f64],
    out: ConvGrads,
    scratch: &mut [f64],
) {
    let (p, pl, co) = (sh.out_positions, sh.patch_len(), sh.c_out);
    let row_in = sh.in_positions * sh.c_in;
    let chunk = sh.chunk_rows(z.nrows());
    let ConvGrads {
        mut params,
        mut input,
    } = out;
    for (k, r0) in (0..z.nrows()).step_by(chunk).enumerate() {
        let r1 = (r0 + chunk).min(z.nrows());
        let rows = (r1 - r0) * p;
        let dh = as_matrix(&d[r0 * p * co..], rows, co);
        if let Some((gw, gb, accumulate)) = params.as_mut() {
            let u = &mut scratch[..rows * pl];
            im2col(sh, z.slice(s![r0..r1, ..]), u);
            let u = as_matrix(u, rows, pl);
            let acc = *accumulate || k > 0;
            general_mat_mul(w_scale, &dh.t(), &u, if acc { 1.0 } else { 0.0 }, *gw);
            if !acc {
                gb.fill(0.0);
            }
            if b_scale != 0.0 {
                for row in dh.rows() {
                    gb.scaled_add(b_scale, &row);
                }
            }
        }
        if let Some((dz, accumulate)) = input.as_mut() {
            let du = &mut scratch[..rows * pl];
            general_mat_mul(w_scale, &dh, w, 0.0, &mut as_matrix_mut(du, rows, pl));
            col2im(sh, du, &mut dz[r0 * row_in..r1 * row_in], *accumulate);
        }
    }
}

/// global_avg_pool: out[r, c] = (1/P) Σ_p z[r, p·C + c] (also its tangent: it is linear).
pub(crate) fn pool_forward(positions: usize, z: ArrayView2<f64>, out: &mut ArrayViewMut2<f64>) {
    let c = out.ncols();
    let inv = 1.0 / positions as f64;
    for (zr, mut or) in z.rows().into_iter().zip(out.rows_mut()) {
        or.fill(0.0);
        for p in 0..positions {
            let zp = zr.slice(s![p * c..(p + 1) * c]);
            or.scaled_add(inv, &zp);
        }
    }
}

/// The adjoint of [`pool_forward`]: dz[r, p·C + c] (+)= d[r, c] / P.
pub(crate) fn pool_backward(
    positions: usize,
    d: ArrayView2<f64>,
    dz: &mut ArrayViewMut2<f64>,
    accumulate: bool,
) {
    let c = d.ncols();
    let inv = 1.0 / positions as f64;
    for (dr, mut zr) in d.rows().into_iter().zip(dz.rows_mut()) {
        for p in 0..positions {
            let mut zp = zr.slice_mut(s![p * c..(p + 1) * c]);
            if accumulate {
                zp.scaled_add(inv, &dr);
            } else {
                zp.assign(&dr);
                zp *= inv;
            }
        }
    }
}

/// Above this many f64 the empirical NTK of a convolution switches from per-example
/// gradients to pair products (256 MiB).
const NTK_GRADIENT_BUDGET: usize = 1 << 25;
/// Entries of one block of pair products ((rows·P) × (rows'·P)), twice (16 MiB each).
const NTK_PAIR_BUDGET: usize = 1 << 21;

/// How [`conv_ntk`] sums over a convolution's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvNtkMethod {
    /// The cheaper of the two below that fits in memory.
    Auto,
    /// Per-example gradients G(x) = (a_w Σ_p δ_p ⊗ U_p, a_b Σ_p δ_p), then G(x)·G(x').
    Gradients,
    /// Σ_{p,q} (δ_p · δ'_q)(a_w² U_p · U'_q + a_b²), by blocks of rows.
    Pairs,
}

/// One convolution's share of the empirical NTK, Σ over its W and b of ∂f(x)/∂θ ∂f(x')/∂θ,
/// added to `k` (n1 × n2): from the conv's inputs `z1`, `z2` (rows × P_in·C_in; their
/// patches are gathered again here) and the backward signals `d1`, `d2` ((n·P) × C_out)
/// of the two sets of rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_ntk(
    sh: &ConvShape,
    w_scale: f64,
    b_scale: f64,
    z1: ArrayView2<f64>,
    d1: ArrayView2<f64>,
    z2: ArrayView2<f64>,
    d2: ArrayView2<f64>,
    k: &mut Array2<f64>,
    method: ConvNtkMethod,
) {
    let (n1, n2) = k.dim();
    let (p, pl, co) = (sh.out_positions, sh.patch_len(), sh.c_out);
    let f = co * (pl + 1);
    let method = match method {
        ConvNtkMethod::Auto => {
            let fits = (n1 + n2).saturating_mul(f) <= NTK_GRADIENT_BUDGET;
            let grad_cost = ((n1 + n2) * p * co * pl + n1 * n2 * f) as f64;
            let pair_cost = (n1 * n2) as f64 * (p * p) as f64 * (co + pl) as f64;
            if fits && grad_cost <= pair_cost {
                ConvNtkMethod::Gradients
            } else {
                ConvNtkMethod::Pairs
            }
        }
        m => m,
    };
    if method == ConvNtkMethod::Gradients {
        let mut u = vec![0.0; p * pl];
        let mut grads = |z: ArrayView2<f64>, d: ArrayView2<f64>| {
            let mut g = Array2::<f64>::zeros((z.nrows(), f));
            for (r, mut gr) in g.rows_mut().into_iter().enumerate() {
                im2col(sh, z.slice(s![r..r + 1, ..]), &mut u);
                let dr = d.slice(s![r * p..(r + 1) * p, ..]);
                let gs = gr.as_slice_mut().expect("fresh array");
                let (gw, gb) = gs.split_at_mut(co * pl);
                let ur = as_matrix(&u, p, pl);
                general_mat_mul(w_scale, &dr.t(), &ur, 0.0, &mut as_matrix_mut(gw, co, pl));
                for row in dr.rows() {
                    for (b, &v) in gb.iter_mut().zip(row) {
                        *b += b_scale * v;
                    }
                }
            }
            g
        };
        let (g1, g2) = (grads(z1, d1), grads(z2, d2));
        general_mat_mul(1.0, &g1, &g2.t(), 1.0, k);
        return;
    }
    // Pairs, by blocks of rows of each side: two (b·P) × (b'·P) products and the patches
    // of both blocks within the budgets.
    let side = ((NTK_PAIR_BUDGET / (p * p).max(1)) as f64).sqrt().floor() as usize;
    let side = side.min(PATCH_BUDGET / (p * pl).max(1)).max(1);
    let (ww, bb) = (w_scale * w_scale, b_scale * b_scale);
    let mut u1 = vec![0.0; side.min(n1) * p * pl];
    let mut u2 = vec![0.0; side.min(n2) * p * pl];
    for i0 in (0..n1).step_by(side) {
        let i1 = (i0 + side).min(n1);
        im2col(sh, z1.slice(s![i0..i1, ..]), &mut u1);
        let ub1 = as_matrix(&u1, (i1 - i0) * p, pl);
        for j0 in (0..n2).step_by(side) {
            let j1 = (j0 + side).min(n2);
            im2col(sh, z2.slice(s![j0..j1, ..]), &mut u2);
            let ub2 = as_matrix(&u2, (j1 - j0) * p, pl);
            let dd = d1
                .slice(s![i0 * p..i1 * p, ..])
                .dot(&d2.slice(s![j0 * p..j1 * p, ..]).t());
            let uu = ub1.dot(&ub2.t());
            for i in i0..i1 {
                for j in j0..j1 {
                    let block = s![
                        (i - i0) * p..(i - i0 + 1) * p,
                        (j - j0) * p..(j - j0 + 1) * p
                    ];
                    let mut sum = 0.0;
                    ndarray::Zip::from(dd.slice(block))
                        .and(uu.slice(block))
                        .for_each(|&a, &b| sum += a * (ww * b + bb));
                    k[[i, j]] += sum;
                }
            }
        }
    }
}
