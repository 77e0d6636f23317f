//! The per-pair state of a convolutional front (docs/math.md §9): the covariance Σ_{p,q}
//! and the NTK Θ_{p,q} between the positions p of x and q of x', with the mask of entries
//! whose two patches are identical (correlation exactly +1).
//!
//! A full plane is `rows × cols` entries with zero gutters (columns right of every row,
//! rows above and below, see `Layout`), so that a stride-1 window reaching into the zero
//! padding reads 0 without a branch, and [`ConvTable`]'s padded taps (row `rows`, column
//! `cols`) land in them. The gutters are written once per layout, not per pair. In
//! diagonal mode (a `flatten` readout) only the entries p = q exist: a vector of `rows`
//! entries plus one zero.
//!
//! The generated code calls these operations with constant geometries and rule types;
//! they are `#[inline(always)]`, so each declaration gets loops of fixed sizes.

use crate::dual::{Dual, F64x4, Parallel, Want};
use infw_layers::conv::ConvGeometry;

/// The taps of one convolution: for every output position, the input position each
/// window offset reads, or the zero slot (`input positions`) in the padding.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTable {
    pub geometry: ConvGeometry,
    /// `taps[out · window + offset]`.
    pub taps: Vec<u32>,
    /// σw²/kⁿ and σb² (docs/math.md §9).
    pub w_var_over_window: f64,
    pub b_var: f64,
}

impl ConvTable {
    /// The table of `geometry` with standard deviations `w_std`, `b_std`.
    pub fn new(geometry: ConvGeometry, w_std: f64, b_std: f64) -> ConvTable {
        let (outs, window) = (geometry.output_positions(), geometry.window());
        let zero = geometry.input_positions() as u32;
        let mut taps = Vec::with_capacity(outs * window);
        for o in 0..outs {
            for a in 0..window {
                taps.push(geometry.source_position(o, a).map_or(zero, |i| i as u32));
            }
        }
        ConvTable {
            geometry,
            taps,
            w_var_over_window: w_std * w_std / window as f64,
            b_var: b_std * b_std,
        }
    }
}

/// One node's per-point data of an activation in the front: the rule's per-point value at
/// every position, alone and four positions to a lane bundle (the last one padded).
#[derive(Clone, Debug, Default)]
pub struct PositionPoints<P, P4> {
    pub single: Vec<P>,
    pub lanes: Vec<P4>,
}

impl<P: Copy, P4> PositionPoints<P, P4> {
    /// The per-position values and their lane bundles (`gather` packs four).
    pub fn new(single: Vec<P>, gather: impl Fn([&P; 4]) -> P4) -> Self {
        let n = single.len();
        let lanes = (0..n.div_ceil(4))
            .map(|c| gather(std::array::from_fn(|k| &single[(c * 4 + k).min(n - 1)])))
            .collect();
        PositionPoints { single, lanes }
    }
}

/// The per-point pass of the front: the variances Σ_{p,p}(x, x) of one point, position by
/// position, through the same layers (only the diagonal is needed per point).
#[derive(Clone, Debug, Default)]
pub struct Diagonal {
    pub var: Vec<f64>,
    next: Vec<f64>,
}

impl Diagonal {
    /// Σ⁰_{p,p} = (1/C) Σ_c x_{p,c}².
    #[inline(always)]
    pub fn input(&mut self, row: &[f64], positions: usize, channels: usize) {
        self.var.clear();
        let inv_c = 1.0 / channels as f64;
        for p in 0..positions {
            let v = &row[p * channels..(p + 1) * channels];
            self.var.push(v.iter().map(|a| a * a).sum::<f64>() * inv_c);
        }
        self.var.push(0.0);
    }

    /// A convolution on the diagonal: the same offset on both sides stays on it.
    #[inline(always)]
    pub fn conv(&mut self, t: &ConvTable) {
        let window = t.geometry.window();
        self.next.clear();
        for taps in t.taps.chunks_exact(window) {
            let s: f64 = taps.iter().map(|&i| self.var[i as usize]).sum();
            self.next.push(s * t.w_var_over_window + t.b_var);
        }
        self.next.push(0.0);
        std::mem::swap(&mut self.var, &mut self.next);
    }

    /// An activation: returns the rule's per-position values and moves to E[φ(u)²].
    #[inline(always)]
    pub fn activation<D: Dual>(
        &mut self,
        rule: &D,
    ) -> PositionPoints<D::Point<f64>, D::Point<F64x4>> {
        let n = self.var.len() - 1;
        let mut single = Vec::with_capacity(n);
        for v in &mut self.var[..n] {
            let (diag, point) = rule.point(*v);
            single.push(point);
            *v = diag.phi;
        }
        PositionPoints::new(single, D::gather)
    }

    /// The mean of the diagonal: the variance after `flatten` (docs/math.md §9).
    #[inline(always)]
    pub fn mean(&self) -> f64 {
        let n = self.var.len() - 1;
        self.var[..n].iter().sum::<f64>() / n as f64
    }
}

/// Zero columns right of every row, and zero rows above and below a full plane: a stride-1
/// window that reaches up to `GUTTER` positions into the zero padding reads zeros from
/// them without a branch (a read left of column 0 lands in the previous row's gutter).
const GUTTER: usize = 8;

/// Where the entries of a plane live. A full plane (global_avg_pool readouts) holds
/// `rows × cols` entries, row p at `(p + GUTTER + 1)·ld` with `ld = cols + GUTTER`; a
/// diagonal one (flatten readouts) holds `rows` entries and one zero. In both, row index
/// `rows` and column index `cols` are zero slots (padded taps of [`ConvTable`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Layout {
    rows: usize,
    cols: usize,
    diagonal: bool,
}

impl Layout {
    fn full(rows: usize, cols: usize) -> Layout {
        Layout {
            rows,
            cols,
            diagonal: false,
        }
    }

    fn diagonal(rows: usize) -> Layout {
        Layout {
            rows,
            cols: 0,
            diagonal: true,
        }
    }

    #[inline(always)]
    fn ld(self) -> usize {
        self.cols + GUTTER
    }

    /// The index of entry (p, q) (diagonal: p = q, the index p).
    #[inline(always)]
    fn at(self, p: usize, q: usize) -> usize {
        if self.diagonal {
            p
        } else {
            (p + GUTTER + 1) * self.ld() + q
        }
    }

    fn len(self) -> usize {
        if self.diagonal {
            self.rows + 1
        } else {
            (self.rows + 2 * GUTTER + 2) * self.ld()
        }
    }

    /// The columns q of row p that hold entries.
    #[inline(always)]
    fn row_columns(self, p: usize) -> std::ops::Range<usize> {
        if self.diagonal {
            p..p + 1
        } else {
            0..self.cols
        }
    }

    /// The data entries of row p, as a range of indices.
    #[inline(always)]
    fn row(self, p: usize) -> std::ops::Range<usize> {
        if self.diagonal {
            p..p + 1
        } else {
            let start = self.at(p, 0);
            start..start + self.cols
        }
    }

    /// Whether a tap pair that reads index `k` of the padding is exactly parallel: only
    /// when both patches are padded there (a padded row and a padded column).
    fn padding_is_same(self, k: usize) -> bool {
        if self.diagonal {
            return true;
        }
        let (r, c) = (k / self.ld(), k % self.ld());
        let data_row = (GUTTER + 1..GUTTER + 1 + self.rows).contains(&r);
        !data_row && c >= self.cols
    }
}

/// A plane's storage and the layout whose padding it holds: its padding entries are
/// written once when the layout changes, then only data entries are written.
#[derive(Clone, Debug, Default)]
struct Plane<T> {
    data: Vec<T>,
    layout: Option<Layout>,
}

impl<T: Copy> Plane<T> {
    /// Makes the storage fit `layout`; padding entries are `pad(index)` afterwards, data
    /// entries are unspecified until written.
    #[inline(always)]
    fn prepare(&mut self, layout: Layout, pad: impl Fn(usize) -> T) {
        if self.layout != Some(layout) {
            self.data.clear();
            self.data.extend((0..layout.len()).map(pad));
            self.layout = Some(layout);
        }
    }
}

/// The per-pair planes of one pair (x, x') and their scratch; one per thread.
#[derive(Clone, Debug, Default)]
pub struct Planes {
    cov: Plane<f64>,
    ntk: Plane<f64>,
    same: Plane<bool>,
    next_cov: Plane<f64>,
    next_ntk: Plane<f64>,
    next_same: Plane<bool>,
    layout: Layout,
    /// Θ is nonzero (a parameter lies upstream).
    has_ntk: bool,
    /// Some entry is known to be exactly parallel.
    any_same: bool,
    /// The recomputed parallel entries of an activation: (index, Σ, Θ).
    fixed: Vec<(usize, f64, f64)>,
}

impl Planes {
    /// Σ⁰_{p,q} = (1/C) Σ_c x_{p,c} x'_{q,c}, Θ⁰ = 0; `diagonal`: only p = q.
    #[inline(always)]
    pub fn input(
        &mut self,
        x: &[f64],
        t: &[f64],
        positions: usize,
        channels: usize,
        diagonal: bool,
    ) {
        let l = if diagonal {
            Layout::diagonal(positions)
        } else {
            Layout::full(positions, positions)
        };
        self.layout = l;
        self.has_ntk = false;
        self.cov.prepare(l, |_| 0.0);
        self.same.prepare(l, |k| l.padding_is_same(k));
        let inv_c = 1.0 / channels as f64;
        let mut any = false;
        let (cov, same) = (&mut self.cov.data, &mut self.same.data);
        for p in 0..positions {
            let xp = &x[p * channels..(p + 1) * channels];
            let row = l.row(p);
            let qs = l.row_columns(p);
            if channels == 1 {
                let (xv, ts) = (xp[0], &t[qs]);
                for ((c, s), &tq) in cov[row.clone()].iter_mut().zip(&mut same[row]).zip(ts) {
                    *c = xv * tq;
                    *s = xv == tq;
                    any |= xv == tq;
                }
            } else {
                for (k, q) in row.zip(qs) {
                    let tq = &t[q * channels..(q + 1) * channels];
                    cov[k] = xp.iter().zip(tq).map(|(a, b)| a * b).sum::<f64>() * inv_c;
                    same[k] = xp == tq;
                    any |= xp == tq;
                }
            }
        }
        self.any_same = any;
    }

    /// A convolution: Σ ← σw²/kⁿ Σ_a Σ_{src(p,a), src(q,a)} + σb², and
    /// Θ ← σw²/kⁿ Σ_a Θ_{…} + Σ (docs/math.md §9). An output entry is exactly parallel when
    /// every tap pair is (both padded, or both identical).
    #[inline(always)]
    pub fn conv(&mut self, t: &ConvTable, want_ntk: bool) {
        let g = &t.geometry;
        let window = g.window();
        let outs = g.output_positions();
        let (wv, bv) = (t.w_var_over_window, t.b_var);
        let li = self.layout;
        let lo = if li.diagonal {
            Layout::diagonal(outs)
        } else {
            Layout::full(outs, outs)
        };
        let ntk = want_ntk && self.has_ntk;
        self.next_cov.prepare(lo, |_| 0.0);
        if want_ntk {
            self.next_ntk.prepare(lo, |_| 0.0);
        }
        let zero_padded_stride_1 = !li.diagonal && g.stride == [1, 1] && !g.circular;
        if zero_padded_stride_1
            && g.input[1] == 1
            && g.size[0] <= MAX_FUSED_TAPS
            && g.pad_before[0] <= GUTTER
            && g.size[0] - 1 - g.pad_before[0].min(g.size[0] - 1) <= GUTTER
        {
            self.conv_1d(g, li, lo, wv, bv, want_ntk, ntk);
        } else if zero_padded_stride_1 {
            self.conv_2d(g, li, lo, wv, bv, want_ntk, ntk);
        } else {
            let (cov, th) = (&self.cov.data, &self.ntk.data);
            let (next_cov, next_ntk) = (&mut self.next_cov.data, &mut self.next_ntk.data);
            for p in 0..lo.rows {
                let tp = &t.taps[p * window..(p + 1) * window];
                for (k, q) in lo.row(p).zip(lo.row_columns(p)) {
                    let tq = &t.taps[q * window..(q + 1) * window];
                    let (mut s, mut sth) = (0.0, 0.0);
                    for a in 0..window {
                        let src = li.at(tp[a] as usize, tq[a] as usize);
                        s += cov[src];
                        if ntk {
                            sth += th[src];
                        }
                    }
                    let c = s * wv + bv;
                    next_cov[k] = c;
                    if want_ntk {
                        next_ntk[k] = if ntk { sth * wv + c } else { c };
                    }
                }
            }
        }
        let mut still_same = false;
        if self.any_same {
            self.next_same.prepare(lo, |k| lo.padding_is_same(k));
            let (same, next_same) = (&self.same.data, &mut self.next_same.data);
            for p in 0..lo.rows {
                let tp = &t.taps[p * window..(p + 1) * window];
                for (k, q) in lo.row(p).zip(lo.row_columns(p)) {
                    let tq = &t.taps[q * window..(q + 1) * window];
                    let s = (0..window).all(|a| same[li.at(tp[a] as usize, tq[a] as usize)]);
                    next_same[k] = s;
                    still_same |= s;
                }
            }
            std::mem::swap(&mut self.same, &mut self.next_same);
        }
        self.layout = lo;
        std::mem::swap(&mut self.cov, &mut self.next_cov);
        if want_ntk {
            std::mem::swap(&mut self.ntk, &mut self.next_ntk);
        }
        self.has_ntk = want_ntk;
        self.any_same = still_same;
    }

    /// The stride-1, zero-padded 1-D convolution of [`Planes::conv`]: for an output row p
    /// the valid offsets a read input rows i_a = p + a − pad, each a contiguous run of
    /// columns shifted by a − pad (reads into the padding land in the zero gutters); one
    /// pass per output row sums the runs and finishes (no read-modify-write per tap).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn conv_1d(
        &mut self,
        g: &ConvGeometry,
        li: Layout,
        lo: Layout,
        wv: f64,
        bv: f64,
        want_ntk: bool,
        ntk: bool,
    ) {
        let (pad, size) = (g.pad_before[0], g.size[0]);
        let (cov, th) = (&self.cov.data, &self.ntk.data);
        let (next_cov, next_ntk) = (&mut self.next_cov.data, &mut self.next_ntk.data);
        let mut starts = [0usize; MAX_FUSED_TAPS];
        for p in 0..lo.rows {
            let mut taps = 0;
            for a in 0..size {
                if let Some(i) = g.source(0, p, a) {
                    // Column q reads input column q + a − pad.
                    starts[taps] = li.at(i, 0) + a - pad;
                    taps += 1;
                }
            }
            let starts = &starts[..taps];
            let out = lo.row(p);
            let c = &mut next_cov[out.clone()];
            tap_sums(cov, starts, c, |s| s * wv + bv);
            if want_ntk {
                let t = &mut next_ntk[out];
                if ntk {
                    tap_sums(th, starts, t, |s| s * wv);
                    for (t, c) in t.iter_mut().zip(c.iter()) {
                        *t += c;
                    }
                } else {
                    t.copy_from_slice(c);
                }
            }
        }
    }

    /// The stride-1, zero-padded 2-D convolution of [`Planes::conv`]: for an output row p
    /// and an offset a, the taps of consecutive q are consecutive input columns: sums of
    /// contiguous runs.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn conv_2d(
        &mut self,
        g: &ConvGeometry,
        li: Layout,
        lo: Layout,
        wv: f64,
        bv: f64,
        want_ntk: bool,
        ntk: bool,
    ) {
        let (cov, th) = (&self.cov.data, &self.ntk.data);
        let (next_cov, next_ntk) = (&mut self.next_cov.data, &mut self.next_ntk.data);
        for p0 in 0..g.output[0] {
            for p1 in 0..g.output[1] {
                let p = p0 * g.output[1] + p1;
                let out = lo.row(p);
                next_cov[out.clone()].fill(0.0);
                if ntk {
                    next_ntk[out.clone()].fill(0.0);
                }
                for a0 in 0..g.size[0] {
                    let Some(i0) = g.source(0, p0, a0) else {
                        continue;
                    };
                    for a1 in 0..g.size[1] {
                        let Some(i1) = g.source(1, p1, a1) else {
                            continue;
                        };
                        let i = i0 * g.input[1] + i1;
                        // Valid q1: 0 ≤ q1 + a1 − pad1 < input1.
                        let lo1 = g.pad_before[1].saturating_sub(a1);
                        let hi1 = (g.input[1] + g.pad_before[1])
                            .saturating_sub(a1)
                            .min(g.output[1]);
                        if lo1 >= hi1 {
                            continue;
                        }
                        let len = hi1 - lo1;
                        for q0 in 0..g.output[0] {
                            let Some(j0) = g.source(0, q0, a0) else {
                                continue;
                            };
                            let dst = lo.at(p, q0 * g.output[1] + lo1);
                            let src = li.at(i, j0 * g.input[1] + lo1 + a1 - g.pad_before[1]);
                            add_run(&mut next_cov[dst..dst + len], &cov[src..src + len]);
                            if ntk {
                                add_run(&mut next_ntk[dst..dst + len], &th[src..src + len]);
                            }
                        }
                    }
                }
                for v in &mut next_cov[out.clone()] {
                    *v = *v * wv + bv;
                }
                if want_ntk {
                    let (nt, nc) = (&mut next_ntk[out.clone()], &next_cov[out]);
                    if ntk {
                        for (t, c) in nt.iter_mut().zip(nc) {
                            *t = *t * wv + c;
                        }
                    } else {
                        nt.copy_from_slice(nc);
                    }
                }
            }
        }
    }

    /// An activation on every entry (docs/math.md §9: §3 elementwise, with a = Σ_{p,p}(x,x)
    /// and b = Σ_{q,q}(x',x')): Σ ← E[φ(u)φ(v)], Θ ← Θ·E[φ'(u)φ'(v)]. Four entries per
    /// step in lanes, as generic pairs; entries known to be parallel are recomputed with
    /// correlation exactly +1.
    #[inline(always)]
    pub fn activation<D: Dual>(
        &mut self,
        rule: &D,
        x: &PositionPoints<D::Point<f64>, D::Point<F64x4>>,
        t: &PositionPoints<D::Point<f64>, D::Point<F64x4>>,
        want_ntk: bool,
    ) {
        let want = Want {
            nngp: true,
            ntk: want_ntk,
            readout: false,
            hidden: false,
        };
        let ntk = want_ntk && self.has_ntk;
        let l = self.layout;
        let (cov, th) = (&mut self.cov.data, &mut self.ntk.data);
        // Exactly parallel entries first, from the covariances before they are overwritten.
        self.fixed.clear();
        if self.any_same {
            let same = &self.same.data;
            for p in 0..l.rows {
                for (k, q) in l.row(p).zip(l.row_columns(p)) {
                    if same[k] {
                        let d =
                            rule.pair(&x.single[p], &t.single[q], cov[k], Parallel::Positive, want);
                        let tk = if ntk { th[k] * d.dphi } else { 0.0 };
                        self.fixed.push((k, d.phi, tk));
                    }
                }
            }
        }
        if l.diagonal {
            let n = l.rows;
            for (c, (xa, ta)) in x.lanes.iter().zip(&t.lanes).enumerate() {
                let lanes = c * 4..(c * 4 + 4).min(n);
                let len = lanes.len();
                let mut cv = [0.0; 4];
                cv[..len].copy_from_slice(&cov[lanes.clone()]);
                let d = rule.pair(xa, ta, F64x4(cv), Parallel::Unknown, want);
                cov[lanes.clone()].copy_from_slice(&d.phi.0[..len]);
                if ntk {
                    for (o, f) in th[lanes].iter_mut().zip(&d.dphi.0[..len]) {
                        *o *= f;
                    }
                }
            }
        } else {
            let bundles = l.cols / 4;
            for p in 0..l.rows {
                let xa = D::splat(&x.single[p]);
                let row = l.row(p);
                let (cr, tr) = (&mut cov[row.clone()], &mut th[..]);
                for (c, (cb, ta)) in cr.chunks_exact_mut(4).zip(&t.lanes).enumerate() {
                    let cb: &mut [f64; 4] = cb.try_into().expect("4 lanes");
                    let d = rule.pair(&xa, ta, F64x4(*cb), Parallel::Unknown, want);
                    *cb = d.phi.0;
                    if ntk {
                        let k = row.start + c * 4;
                        let tb: &mut [f64; 4] = (&mut tr[k..k + 4]).try_into().expect("4 lanes");
                        *tb = (F64x4(*tb) * d.dphi).0;
                    }
                }
                for q in bundles * 4..l.cols {
                    let k = row.start + q;
                    let d = rule.pair(&x.single[p], &t.single[q], cov[k], Parallel::Unknown, want);
                    cov[k] = d.phi;
                    if ntk {
                        th[k] *= d.dphi;
                    }
                }
            }
        }
        for &(k, phi, tk) in &self.fixed {
            cov[k] = phi;
            if ntk {
                th[k] = tk;
            }
        }
    }

    /// (Σ, Θ) after `global_avg_pool` (mean over all (p, q)) or, in diagonal mode,
    /// after `flatten` (mean over p of Σ_{p,p}).
    #[inline(always)]
    pub fn pool(&self) -> (f64, f64) {
        let l = self.layout;
        let (mut s, mut th) = (0.0, 0.0);
        let mut n = 0;
        for p in 0..l.rows {
            let row = l.row(p);
            n += row.len();
            s += self.cov.data[row.clone()].iter().sum::<f64>();
            if self.has_ntk {
                th += self.ntk.data[row].iter().sum::<f64>();
            }
        }
        (s / n as f64, th / n as f64)
    }
}

/// out[q] = finish(Σ_t plane[starts[t] + q]) for every q of `out`: one output row of a 1-D
/// convolution. The number of taps is a constant in the common cases (each tap is then one
/// contiguous run, bounds-checked once, and the loop is vectorised); other counts take the
/// generic loop.
#[inline(always)]
fn tap_sums(plane: &[f64], starts: &[usize], out: &mut [f64], finish: impl Fn(f64) -> f64) {
    #[inline(always)]
    fn fixed<const K: usize>(
        plane: &[f64],
        starts: &[usize],
        out: &mut [f64],
        finish: impl Fn(f64) -> f64,
    ) {
        let n = out.len();
        let runs: [&[f64]; K] = std::array::from_fn(|t| &plane[starts[t]..][..n]);
        for (q, o) in out.iter_mut().enumerate() {
            let mut s = runs[0][q];
            for run in &runs[1..] {
                s += run[q];
            }
            *o = finish(s);
        }
    }
    match starts.len() {
        1 => fixed::<1>(plane, starts, out, finish),
        2 => fixed::<2>(plane, starts, out, finish),
        3 => fixed::<3>(plane, starts, out, finish),
        4 => fixed::<4>(plane, starts, out, finish),
        5 => fixed::<5>(plane, starts, out, finish),
        6 => fixed::<6>(plane, starts, out, finish),
        7 => fixed::<7>(plane, starts, out, finish),
        _ => {
            for (q, o) in out.iter_mut().enumerate() {
                *o = finish(starts.iter().map(|&st| plane[st + q]).sum());
            }
        }
    }
}

/// The widest window the fused 1-D convolution takes (wider ones use the tap table).
const MAX_FUSED_TAPS: usize = 32;

/// dst += src, elementwise (vectorised).
#[inline(always)]
fn add_run(dst: &mut [f64], src: &[f64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infw_layers::conv::Padding;

    /// Σ after `input` and two convolutions, entry by entry from the definition
    /// (docs/math.md §9), against the planes: every convolution path (the fused 1-D one, the
    /// run sums that wide windows fall back to, 2-D runs, the tap table for strides and
    /// circular padding) and Θ's recursion Θ ← σw²/kⁿ Σ_a Θ + Σ.
    #[test]
    fn convolutions_match_the_definition_on_every_path() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let cases: &[(&[usize], usize, usize, Padding)] = &[
            (&[12], 3, 1, Padding::Same),
            (&[12], 5, 1, Padding::Same),
            (&[12], 4, 1, Padding::Same),
            (&[12], 5, 1, Padding::Valid),
            (&[30], 19, 1, Padding::Same), // pad 9 > GUTTER: run sums
            (&[12], 3, 2, Padding::Same),
            (&[12], 3, 1, Padding::Circular),
            (&[5, 4], 3, 1, Padding::Same),
            (&[5, 4], 2, 1, Padding::Valid),
        ];
        for &(shape, size, stride, padding) in cases {
            let g1 = ConvGeometry::new(shape, size, stride, padding).expect("geometry");
            let mid: Vec<usize> = g1.output[..shape.len()].to_vec();
            let g2 = ConvGeometry::new(&mid, size.min(mid[0]), 1, Padding::Same).expect("geometry");
            let (t1, t2) = (ConvTable::new(g1, 1.3, 0.2), ConvTable::new(g2, 0.9, 0.1));
            let n = g1.input_positions();
            let x: Vec<f64> = (0..n).map(|_| next()).collect();
            let y: Vec<f64> = (0..n).map(|_| next()).collect();
            // The definition: S'_{pq} = σw²/kⁿ Σ_a S_{src(p,a), src(q,a)} + σb², zero padded.
            let reference = |t: &ConvTable, s: &[Vec<f64>]| -> Vec<Vec<f64>> {
                let (outs, w) = (t.geometry.output_positions(), t.geometry.window());
                let mut r = vec![vec![0.0; outs]; outs];
                for (p, row) in r.iter_mut().enumerate() {
                    for (q, v) in row.iter_mut().enumerate() {
                        let sum: f64 = (0..w)
                            .filter_map(|a| {
                                let i = t.geometry.source_position(p, a)?;
                                let j = t.geometry.source_position(q, a)?;
                                Some(s[i][j])
                            })
                            .sum();
                        *v = sum * t.w_var_over_window + t.b_var;
                    }
                }
                r
            };
            let s0: Vec<Vec<f64>> = x
                .iter()
                .map(|a| y.iter().map(|b| a * b).collect())
                .collect();
            let s1 = reference(&t1, &s0);
            let s2 = reference(&t2, &s1);
            // Θ¹ = Σ¹ (no parameter upstream), Θ² = σw²/kⁿ Σ_a Θ¹ + Σ².
            let th2: Vec<Vec<f64>> = reference(&t2, &s1)
                .iter()
                .zip(&s2)
                .map(|(r, s)| r.iter().zip(s).map(|(a, b)| a - t2.b_var + b).collect())
                .collect();
            let mut planes = Planes::default();
            for _ in 0..2 {
                // Twice: the second pair reuses the buffers and their gutters.
                planes.input(&x, &y, n, 1, false);
                planes.conv(&t1, true);
                planes.conv(&t2, true);
                let l = planes.layout;
                let mut worst = 0.0f64;
                for (p, (srow, trow)) in s2.iter().zip(&th2).enumerate() {
                    for (q, (s, th)) in srow.iter().zip(trow).enumerate() {
                        let k = l.at(p, q);
                        worst = worst
                            .max((planes.cov.data[k] - s).abs())
                            .max((planes.ntk.data[k] - th).abs());
                    }
                }
                // Sums of at most 19 · 19 products of size ≤ 1: 1e-13 is far above rounding.
                assert!(
                    worst <= 1e-13,
                    "{shape:?} size {size} stride {stride} {padding:?}: {worst:e}"
                );
            }
        }
    }
}
