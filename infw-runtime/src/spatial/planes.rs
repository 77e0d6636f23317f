//! The per-pair state of a convolutional front (docs/math.md §9): the covariance Σ_{p,q}
//! and the NTK Θ_{p,q} between the positions p of x and q of x', with the mask of entries
//! whose two patches are identical (correlation exactly +1).
//!
//! A plane is `rows × cols` entries stored with one extra zero row and zero column, so
//! that a window reaching into the zero padding reads 0 without a branch ([`ConvTable`]
//! points padded taps there). In diagonal mode (a `flatten` readout) only the entries
//! p = q exist: a vector of `rows` entries plus one zero.
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

/// The per-pair planes of one pair (x, x') and their scratch; one per thread.
#[derive(Clone, Debug, Default)]
pub struct Planes {
    cov: Vec<f64>,
    ntk: Vec<f64>,
    same: Vec<bool>,
    next_cov: Vec<f64>,
    next_ntk: Vec<f64>,
    next_same: Vec<bool>,
    rows: usize,
    cols: usize,
    /// Only p = q (a `flatten` readout).
    diagonal: bool,
    /// Θ is nonzero (a parameter lies upstream).
    has_ntk: bool,
    /// Some entry is known to be exactly parallel.
    any_same: bool,
    /// The recomputed parallel entries of an activation: (index, Σ, Θ).
    fixed: Vec<(usize, f64, f64)>,
}

impl Planes {
    #[inline(always)]
    fn ld(&self) -> usize {
        self.cols + 1
    }

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
        self.rows = positions;
        self.cols = if diagonal { 0 } else { positions };
        self.diagonal = diagonal;
        self.has_ntk = false;
        let inv_c = 1.0 / channels as f64;
        let entries = if diagonal {
            positions + 1
        } else {
            (positions + 1) * (positions + 1)
        };
        self.cov.clear();
        self.cov.resize(entries, 0.0);
        self.same.clear();
        self.same.resize(entries, false);
        self.any_same = false;
        let ld = self.ld();
        for p in 0..positions {
            let xp = &x[p * channels..(p + 1) * channels];
            let qs = if diagonal { p..p + 1 } else { 0..positions };
            for q in qs {
                let tq = &t[q * channels..(q + 1) * channels];
                let k = if diagonal { p } else { p * ld + q };
                self.cov[k] = if channels == 1 {
                    xp[0] * tq[0]
                } else {
                    xp.iter().zip(tq).map(|(a, b)| a * b).sum::<f64>() * inv_c
                };
                if xp == tq {
                    self.same[k] = true;
                    self.any_same = true;
                }
            }
        }
        if diagonal {
            self.same[positions] = true;
        } else {
            // The zero row and column are identical zeros: two padded taps match.
            self.same[positions * ld + positions] = true;
        }
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
        let in_ld = self.ld();
        let (rows, cols) = (outs, if self.diagonal { 0 } else { outs });
        let ld = cols + 1;
        let entries = if self.diagonal {
            outs + 1
        } else {
            (outs + 1) * (outs + 1)
        };
        let ntk = want_ntk && self.has_ntk;
        let fused = !self.diagonal
            && g.stride == [1, 1]
            && !g.circular
            && g.input[1] == 1
            && g.size[0] <= MAX_FUSED_TAPS;
        if !fused {
            self.next_cov.clear();
            self.next_cov.resize(entries, 0.0);
            if want_ntk {
                self.next_ntk.clear();
                self.next_ntk.resize(entries, 0.0);
            }
        }
        if fused {
            // 1-D, stride 1, zero padding: output entry (p, q) sums the input entries
            // (p + a − pad, q + a − pad) over the offsets a; one pass per output row reads
            // every valid tap, sums and finishes (no read-modify-write per tap).
            self.conv_1d_fused(g, wv, bv, want_ntk, ntk);
        } else if !self.diagonal && g.stride == [1, 1] && !g.circular {
            // Stride 1, zero padding: for an output row p and an offset a, the taps of
            // consecutive q are consecutive input columns: sums of contiguous runs.
            for p0 in 0..g.output[0] {
                for p1 in 0..g.output[1] {
                    let p = p0 * g.output[1] + p1;
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
                                let dst = p * ld + q0 * g.output[1] + lo1;
                                let src = i * in_ld + j0 * g.input[1] + lo1 + a1 - g.pad_before[1];
                                add_run(
                                    &mut self.next_cov[dst..dst + len],
                                    &self.cov[src..src + len],
                                );
                                if ntk {
                                    add_run(
                                        &mut self.next_ntk[dst..dst + len],
                                        &self.ntk[src..src + len],
                                    );
                                }
                            }
                        }
                    }
                    self.finish_row(p * ld..p * ld + cols, wv, bv, want_ntk, ntk);
                }
            }
        } else {
            for p in 0..rows {
                let tp = &t.taps[p * window..(p + 1) * window];
                let qs = if self.diagonal { p..p + 1 } else { 0..cols };
                for q in qs {
                    let tq = &t.taps[q * window..(q + 1) * window];
                    let k = if self.diagonal { p } else { p * ld + q };
                    let (mut s, mut th) = (0.0, 0.0);
                    for a in 0..window {
                        let src = if self.diagonal {
                            tp[a] as usize
                        } else {
                            tp[a] as usize * in_ld + tq[a] as usize
                        };
                        s += self.cov[src];
                        if ntk {
                            th += self.ntk[src];
                        }
                    }
                    let cov = s * wv + bv;
                    self.next_cov[k] = cov;
                    if want_ntk {
                        self.next_ntk[k] = if ntk { th * wv + cov } else { cov };
                    }
                }
            }
        }
        let mut still_same = false;
        if self.any_same {
            self.next_same.clear();
            self.next_same.resize(entries, false);
            for p in 0..rows {
                let tp = &t.taps[p * window..(p + 1) * window];
                let qs = if self.diagonal { p..p + 1 } else { 0..cols };
                for q in qs {
                    let tq = &t.taps[q * window..(q + 1) * window];
                    let k = if self.diagonal { p } else { p * ld + q };
                    let same = (0..window).all(|a| {
                        let src = if self.diagonal {
                            tp[a] as usize
                        } else {
                            tp[a] as usize * in_ld + tq[a] as usize
                        };
                        self.same[src]
                    });
                    self.next_same[k] = same;
                    still_same |= same;
                }
            }
            std::mem::swap(&mut self.same, &mut self.next_same);
            let zero = if self.diagonal {
                rows
            } else {
                rows * ld + cols
            };
            self.same[zero] = true;
        }
        self.rows = rows;
        self.cols = cols;
        std::mem::swap(&mut self.cov, &mut self.next_cov);
        if want_ntk {
            std::mem::swap(&mut self.ntk, &mut self.next_ntk);
        }
        self.has_ntk = want_ntk;
        self.any_same = still_same;
    }

    /// The stride-1, zero-padded 1-D convolution of [`Planes::conv`], fused: for an output
    /// row p the valid offsets a read input rows i_a = p + a − pad; in the interior columns
    /// every offset is valid and the sum runs four columns to a lane bundle; the few edge
    /// columns check each offset. Every entry of the next planes is written (no memset).
    #[inline(always)]
    fn conv_1d_fused(&mut self, g: &ConvGeometry, wv: f64, bv: f64, want_ntk: bool, ntk: bool) {
        let (n_in, pad, size) = (g.input[0], g.pad_before[0], g.size[0]);
        let outs = g.output[0];
        let (in_ld, ld) = (self.ld(), outs + 1);
        let entries = ld * ld;
        let (cov, tht) = (&self.cov, &self.ntk);
        let (next_cov, next_ntk) = (&mut self.next_cov, &mut self.next_ntk);
        next_cov.resize(entries, 0.0);
        if want_ntk {
            next_ntk.resize(entries, 0.0);
        }
        // Columns q where every offset reads a real input column: pad ≤ q + a < n_in + pad.
        let q_lo = pad.min(outs);
        let q_hi = (n_in + pad + 1).saturating_sub(size).clamp(q_lo, outs);
        let mut starts = [0usize; MAX_FUSED_TAPS];
        let mut offsets = [0usize; MAX_FUSED_TAPS];
        for p in 0..outs {
            // The valid offsets of this row: (a, start of input row i_a shifted by a − pad).
            let mut taps = 0;
            for a in 0..size {
                if let Some(i) = g.source(0, p, a) {
                    starts[taps] = i * in_ld + a;
                    offsets[taps] = a;
                    taps += 1;
                }
            }
            let (starts, offsets) = (&starts[..taps], &offsets[..taps]);
            let row = p * ld;
            // The valid offsets of a row are contiguous, [a0, a0 + taps), and so are those of
            // an edge column q, [pad − q, n_in + pad − q): the taps of (p, q) step along the
            // diagonal of the input planes (in_ld + 1 apart) over their intersection.
            let a0 = offsets.first().copied().unwrap_or(0);
            let edge = |q: usize, plane: &[f64]| -> f64 {
                let lo = pad.saturating_sub(q).max(a0);
                let hi = (n_in + pad).saturating_sub(q).min(a0 + starts.len());
                (lo..hi)
                    .map(|a| plane[starts[a - a0] + q - pad])
                    .sum::<f64>()
            };
            for q in (0..q_lo).chain(q_hi..outs) {
                let c = edge(q, cov) * wv + bv;
                next_cov[row + q] = c;
                if want_ntk {
                    next_ntk[row + q] = if ntk { edge(q, tht) * wv + c } else { c };
                }
            }
            if q_lo < q_hi {
                let out = row + q_lo..row + q_hi;
                let c = &mut next_cov[out.clone()];
                tap_sums(cov, starts, q_lo - pad, c, |s| s * wv + bv);
                if want_ntk {
                    let t = &mut next_ntk[out];
                    if ntk {
                        tap_sums(tht, starts, q_lo - pad, t, |s| s * wv);
                        for (t, c) in t.iter_mut().zip(c.iter()) {
                            *t += c;
                        }
                    } else {
                        t.copy_from_slice(c);
                    }
                }
            }
            // The zero column.
            next_cov[row + outs] = 0.0;
            if want_ntk {
                next_ntk[row + outs] = 0.0;
            }
        }
        // The zero row.
        next_cov[outs * ld..].fill(0.0);
        if want_ntk {
            next_ntk[outs * ld..].fill(0.0);
        }
    }

    /// The affine end of a convolution on one output row of tap sums:
    /// Σ = σw²/kⁿ·sum + σb², Θ = σw²/kⁿ·sum + Σ.
    #[inline(always)]
    fn finish_row(
        &mut self,
        row: std::ops::Range<usize>,
        wv: f64,
        bv: f64,
        want_ntk: bool,
        ntk: bool,
    ) {
        for v in &mut self.next_cov[row.clone()] {
            *v = *v * wv + bv;
        }
        if want_ntk {
            let (nt, nc) = (&mut self.next_ntk[row.clone()], &self.next_cov[row]);
            if ntk {
                for (t, c) in nt.iter_mut().zip(nc) {
                    *t = *t * wv + c;
                }
            } else {
                nt.copy_from_slice(nc);
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
        let ld = self.ld();
        // Exactly parallel entries first, from the covariances before they are overwritten.
        self.fixed.clear();
        if self.any_same {
            let cols = if self.diagonal { self.rows } else { self.cols };
            for p in 0..self.rows {
                let qs = if self.diagonal { p..p + 1 } else { 0..cols };
                for q in qs {
                    let k = if self.diagonal { p } else { p * ld + q };
                    if self.same[k] {
                        let d = rule.pair(
                            &x.single[p],
                            &t.single[q],
                            self.cov[k],
                            Parallel::Positive,
                            want,
                        );
                        let th = if ntk { self.ntk[k] * d.dphi } else { 0.0 };
                        self.fixed.push((k, d.phi, th));
                    }
                }
            }
        }
        if self.diagonal {
            let n = self.rows;
            for (c, (xa, ta)) in x.lanes.iter().zip(&t.lanes).enumerate() {
                let lanes = c * 4..(c * 4 + 4).min(n);
                let len = lanes.len();
                let mut cov = [0.0; 4];
                cov[..len].copy_from_slice(&self.cov[lanes.clone()]);
                let d = rule.pair(xa, ta, F64x4(cov), Parallel::Unknown, want);
                self.cov[lanes.clone()].copy_from_slice(&d.phi.0[..len]);
                if ntk {
                    for (o, f) in self.ntk[lanes].iter_mut().zip(&d.dphi.0[..len]) {
                        *o *= f;
                    }
                }
            }
        } else {
            let cols = self.cols;
            let bundles = cols / 4;
            for p in 0..self.rows {
                let xa = D::splat(&x.single[p]);
                let row = p * ld;
                for c in 0..bundles {
                    let k = row + c * 4;
                    let cov = F64x4(self.cov[k..k + 4].try_into().expect("4 lanes"));
                    let d = rule.pair(&xa, &t.lanes[c], cov, Parallel::Unknown, want);
                    self.cov[k..k + 4].copy_from_slice(&d.phi.0);
                    if ntk {
                        let th = F64x4(self.ntk[k..k + 4].try_into().expect("4 lanes")) * d.dphi;
                        self.ntk[k..k + 4].copy_from_slice(&th.0);
                    }
                }
                for q in bundles * 4..cols {
                    let k = row + q;
                    let d = rule.pair(
                        &x.single[p],
                        &t.single[q],
                        self.cov[k],
                        Parallel::Unknown,
                        want,
                    );
                    self.cov[k] = d.phi;
                    if ntk {
                        self.ntk[k] *= d.dphi;
                    }
                }
            }
        }
        for &(k, phi, th) in &self.fixed {
            self.cov[k] = phi;
            if ntk {
                self.ntk[k] = th;
            }
        }
    }

    /// (Σ, Θ) after `global_avg_pool` (mean over all (p, q)) or, in diagonal mode,
    /// after `flatten` (mean over p of Σ_{p,p}).
    #[inline(always)]
    pub fn pool(&self) -> (f64, f64) {
        let ld = self.ld();
        let (mut s, mut th) = (0.0, 0.0);
        let cols = if self.diagonal { 1 } else { self.cols };
        for p in 0..self.rows {
            let k = if self.diagonal { p } else { p * ld };
            s += self.cov[k..k + cols].iter().sum::<f64>();
            if self.has_ntk {
                th += self.ntk[k..k + cols].iter().sum::<f64>();
            }
        }
        let n = (self.rows * cols) as f64;
        (s / n, th / n)
    }
}

/// out[q] = finish(Σ_t plane[starts[t] + shift + q]) for every q of `out`: the interior of
/// one output row of a 1-D convolution. The number of taps is a constant in the common
/// cases (each tap is then one contiguous, bounds-checked-once run and the loop is
/// vectorised); other counts take the generic loop.
#[inline(always)]
fn tap_sums(
    plane: &[f64],
    starts: &[usize],
    shift: usize,
    out: &mut [f64],
    finish: impl Fn(f64) -> f64,
) {
    #[inline(always)]
    fn fixed<const K: usize>(
        plane: &[f64],
        starts: &[usize],
        shift: usize,
        out: &mut [f64],
        finish: impl Fn(f64) -> f64,
    ) {
        let n = out.len();
        let runs: [&[f64]; K] = std::array::from_fn(|t| &plane[starts[t] + shift..][..n]);
        for (q, o) in out.iter_mut().enumerate() {
            let mut s = runs[0][q];
            for run in &runs[1..] {
                s += run[q];
            }
            *o = finish(s);
        }
    }
    match starts.len() {
        1 => fixed::<1>(plane, starts, shift, out, finish),
        2 => fixed::<2>(plane, starts, shift, out, finish),
        3 => fixed::<3>(plane, starts, shift, out, finish),
        4 => fixed::<4>(plane, starts, shift, out, finish),
        5 => fixed::<5>(plane, starts, shift, out, finish),
        6 => fixed::<6>(plane, starts, shift, out, finish),
        7 => fixed::<7>(plane, starts, shift, out, finish),
        _ => {
            for (q, o) in out.iter_mut().enumerate() {
                *o = finish(starts.iter().map(|&st| plane[st + shift + q]).sum());
            }
        }
    }
}

/// The widest window the fused 1-D convolution takes (wider ones use the run sums).
const MAX_FUSED_TAPS: usize = 32;

/// dst += src, elementwise (vectorised).
#[inline(always)]
fn add_run(dst: &mut [f64], src: &[f64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}
