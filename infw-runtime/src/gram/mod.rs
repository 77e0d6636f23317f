//! Parallel tiled Gram evaluation of a [`PairProgram`] (docs/math.md §3: one matrix product
//! feeds an elementwise map).
//!
//! Work is split into bands of rows (rayon). A band computes its inner products with one
//! matrix product into a band-sized scratch, then runs the fused per-pair pass straight
//! into the output rows: no N×N intermediate exists besides the outputs themselves. When
//! both arguments are the same set and only symmetric kernels are asked for, a band only
//! computes columns right of its first row and the lower triangle is mirrored afterwards.
//!
//! The per-pair pass runs on four training points at a time ([`F64x4`] lanes, compiled
//! for AVX2+FMA when the CPU has it) and treats every pair as generic; the rare pairs
//! whose inputs are exactly parallel are recomputed afterwards with correlation ±1
//! exactly (docs/math.md §5). Per-thread scratch is `band_rows × N` inner products plus one row
//! per kernel.

pub(crate) mod overflow;
mod parallel_rows;

use crate::dual::F64x4;
use crate::program::{PairInputs, PairKernels, PairProgram, Parallel, Want};
use crate::Result;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

pub use crate::validate::check_inputs;
pub use parallel_rows::parallel_rows;

/// Tiling parameters of the Gram evaluation.
#[derive(Clone, Copy, Debug)]
pub struct GramParams {
    /// Rows per band: the unit of parallel work (scratch is `band_rows × N` per band).
    /// 0 chooses by the input dimension: 32 rows, or 128 when d ≥ 256, where each band's
    /// matrix product re-packs the second argument and larger bands amortise it
    /// (measured at N = 4000, d = 784: 15 % less CPU than 32).
    pub band_rows: usize,
    /// Ask Linux for transparent huge pages for the outputs:
    /// typically 20–35 % faster at N = 4000, but a call can stall on memory compaction
    /// when memory is fragmented (seen here: 0.2 s becoming 0.8 s on a first call).
    pub huge_pages: bool,
}

/// The most rows a band may have: per-thread scratch is `band_rows × N` inner products,
/// 2 GiB at 2¹⁶ rows and N = 4 000, already far past where larger bands stop helping.
pub const MAX_BAND_ROWS: usize = 1 << 16;

impl GramParams {
    /// Checks the tiling parameters: `band_rows` is 0 (automatic) or at most [`MAX_BAND_ROWS`].
    pub fn validate(&self) -> Result<()> {
        if self.band_rows > MAX_BAND_ROWS {
            return Err(crate::Error::InvalidArgument {
                name: "band_rows",
                value: self.band_rows.to_string(),
                reason: format!(
                    "rows per Gram band must be 0 (automatic) or between 1 and {MAX_BAND_ROWS} (2^16)"
                ),
            });
        }
        Ok(())
    }
}

impl Default for GramParams {
    fn default() -> Self {
        GramParams {
            band_rows: 0,
            huge_pages: true,
        }
    }
}

/// Kernel matrices of one evaluation: rows are the first argument, columns the second
/// (the training examples of R and H). Unrequested kernels are `None`.
#[derive(Clone, Debug, Default)]
pub struct KernelMatrices {
    /// The NNGP kernel Σ(x, x').
    pub nngp: Option<Array2<f64>>,
    /// The NTK Θ(x, x').
    pub ntk: Option<Array2<f64>>,
    /// R(x, x'), docs/math.md §4.
    pub readout: Option<Array2<f64>>,
    /// H(x, x'), docs/math.md §4.
    pub hidden: Option<Array2<f64>>,
}

/// Evaluates the requested kernels between the rows of `x` and the rows of `t`
/// (`t = None`: `x` against itself). `t` holds the training examples of R and H.
pub fn kernel_matrices<K: PairProgram>(
    program: &K,
    x: ArrayView2<f64>,
    t: Option<ArrayView2<f64>>,
    want: Want,
    params: &GramParams,
) -> Result<KernelMatrices> {
    check_inputs(x, t)?;
    params.validate()?;
    let (n, m) = (x.nrows(), t.map_or(x.nrows(), |t| t.nrows()));
    let flags = [want.nngp, want.ntk, want.readout, want.hidden];
    let mut outputs: [Option<Array2<f64>>; 4] =
        flags.map(|f| f.then(|| output_matrix(n, m, params.huge_pages)));
    dispatch(
        program,
        x,
        t,
        want,
        params,
        outputs.each_mut().map(|o| o.as_mut().map(|a| a.view_mut())),
    )?;
    let [nngp, ntk, readout, hidden] = outputs;
    Ok(KernelMatrices {
        nngp,
        ntk,
        readout,
        hidden,
    })
}

/// [`kernel_matrices`] written into matrices the caller owns (`outputs`: NNGP, NTK, R, H, one
/// per kernel in `want`, each `rows of x` × `rows of t`, C-contiguous): repeated evaluations
/// of the same size then reuse memory that is already mapped, instead of first-touching fresh
/// pages for every call.
pub fn kernel_matrices_into<K: PairProgram>(
    program: &K,
    x: ArrayView2<f64>,
    t: Option<ArrayView2<f64>>,
    want: Want,
    params: &GramParams,
    outputs: [Option<ArrayViewMut2<f64>>; 4],
) -> Result<()> {
    check_inputs(x, t)?;
    params.validate()?;
    check_outputs(
        x.nrows(),
        t.map_or(x.nrows(), |t| t.nrows()),
        want,
        &outputs,
    )?;
    dispatch(program, x, t, want, params, outputs)
}

/// Checks that `outputs` holds exactly the kernels of `want`, each n × m and C-contiguous.
pub(crate) fn check_outputs(
    n: usize,
    m: usize,
    want: Want,
    outputs: &[Option<ArrayViewMut2<f64>>; 4],
) -> Result<()> {
    let flags = [want.nngp, want.ntk, want.readout, want.hidden];
    for ((o, on), name) in outputs.iter().zip(flags).zip(KERNEL_NAMES) {
        match (o, on) {
            (Some(o), true) => {
                if o.dim() != (n, m) {
                    return Err(crate::Error::ShapeMismatch {
                        what: format!("elements of the {name} output (rows of x × rows of t)"),
                        expected: n * m,
                        found: o.len(),
                    });
                }
                if !o.is_standard_layout() {
                    return Err(crate::Error::InvalidArgument {
                        name: "output",
                        value: name.into(),
                        reason: "an output matrix must be C-contiguous (row-major, no gaps)".into(),
                    });
                }
            }
            (None, false) => {}
            (Some(_), false) | (None, true) => {
                return Err(crate::Error::InvalidArgument {
                    name: "output",
                    value: name.into(),
                    reason:
                        "give one output matrix for each requested kernel, and none for the others"
                            .into(),
                })
            }
        }
    }
    Ok(())
}

/// Standard layout for the inputs, then the evaluation compiled for the requested set.
fn dispatch<K: PairProgram>(
    program: &K,
    x: ArrayView2<f64>,
    t: Option<ArrayView2<f64>>,
    want: Want,
    params: &GramParams,
    outs: [Option<ArrayViewMut2<f64>>; 4],
) -> Result<()> {
    let x = x.as_standard_layout();
    let t_owned = t.map(|t| t.as_standard_layout().into_owned());
    let same_set = t_owned.is_none();
    let t = t_owned
        .as_ref()
        .map(|t| t.view())
        .unwrap_or_else(|| x.view());
    let x = x.view();
    match want.mask() {
        m if m == Want::NNGP.mask() => run::<K, 1>(program, x, t, same_set, params, outs),
        m if m == Want::NTK.mask() => run::<K, 2>(program, x, t, same_set, params, outs),
        m if m == Want::NNGP_NTK.mask() => run::<K, 3>(program, x, t, same_set, params, outs),
        m if m == Want::ADAM.mask() => run::<K, 12>(program, x, t, same_set, params, outs),
        m if m == Want::ALL.mask() => run::<K, 15>(program, x, t, same_set, params, outs),
        4 => run::<K, 4>(program, x, t, same_set, params, outs),
        8 => run::<K, 8>(program, x, t, same_set, params, outs),
        m => run_dyn(program, x, t, same_set, params, Want::from_mask(m), outs),
    }
}

/// Rare combinations go through a loop with a runtime `want` (same results, less folding).
fn run_dyn<K: PairProgram>(
    program: &K,
    x: ArrayView2<f64>,
    t: ArrayView2<f64>,
    same_set: bool,
    params: &GramParams,
    want: Want,
    outs: [Option<ArrayViewMut2<f64>>; 4],
) -> Result<()> {
    run_with(program, x, t, same_set, params, want, outs)
}

fn run<K: PairProgram, const MASK: u8>(
    program: &K,
    x: ArrayView2<f64>,
    t: ArrayView2<f64>,
    same_set: bool,
    params: &GramParams,
    outs: [Option<ArrayViewMut2<f64>>; 4],
) -> Result<()> {
    run_with(program, x, t, same_set, params, Want::from_mask(MASK), outs)
}

/// One band of output rows, one optional view per kernel.
struct Band<'a> {
    first_row: usize,
    outs: [Option<ArrayViewMut2<'a, f64>>; 4],
    /// The first non-finite output of the band: (row, column, kernel index).
    non_finite: Option<(usize, usize, usize)>,
}

/// The kernels' names by output index, for messages.
const KERNEL_NAMES: [&str; 4] = [
    "NNGP",
    "NTK",
    "R (Adam-limit readout)",
    "H (Adam-limit hidden)",
];

/// Lanes of four pairs.
const LANES: usize = 4;

#[inline(always)]
fn run_with<K: PairProgram>(
    program: &K,
    x: ArrayView2<f64>,
    t: ArrayView2<f64>,
    same_set: bool,
    params: &GramParams,
    want: Want,
    mut outputs: [Option<ArrayViewMut2<f64>>; 4],
) -> Result<()> {
    let (n, m, d) = (x.nrows(), t.nrows(), x.ncols());
    let inv_d = 1.0 / d as f64;
    // Symmetric shortcut: only when every requested kernel is symmetric.
    let mirror = same_set && !want.readout && !want.hidden;

    // Per-point work, once per point: ‖x‖²/d without avoidable overflow, and its root
    // for the parallelism pre-filter below.
    let mean_squares = |a: ArrayView2<f64>| -> Vec<f64> {
        a.axis_iter(Axis(0))
            .into_par_iter()
            .map(overflow::mean_square)
            .collect()
    };
    let x_norms = mean_squares(x);
    let t_norms = if same_set {
        x_norms.clone()
    } else {
        mean_squares(t)
    };
    let roots = |q: &[f64]| q.iter().map(|v| v.sqrt()).collect::<Vec<f64>>();
    let (x_roots, t_roots) = (roots(&x_norms), roots(&t_norms));
    let x_points: Vec<K::Point<f64>> = x_norms.par_iter().map(|&q| program.point(q)).collect();
    let t_points: Vec<K::Point<f64>> = if same_set {
        x_points.clone()
    } else {
        t_norms.par_iter().map(|&q| program.point(q)).collect()
    };
    // Inputs too large (or small) to multiply as they are take part in the matrix products
    // scaled by exact powers of two, undone on each band's products.
    let x_scaled = overflow::scaled(x);
    let t_scaled = if same_set { None } else { overflow::scaled(t) };
    let (ex, et) = (
        x_scaled.as_ref().map_or(0, |s| s.1),
        if same_set {
            x_scaled.as_ref().map_or(0, |s| s.1)
        } else {
            t_scaled.as_ref().map_or(0, |s| s.1)
        },
    );
    let x_mul: ArrayView2<f64> = match &x_scaled {
        Some((a, _)) => a.view(),
        None => x.view(),
    };
    let t_mul: ArrayView2<f64> = match (&t_scaled, same_set) {
        (_, true) => x_mul.view(),
        (Some((a, _)), false) => a.view(),
        (None, false) => t.view(),
    };
    // Training points four to a lane bundle; the last bundle is padded with its last point.
    let t_lanes: Vec<K::Point<F64x4>> = (0..m.div_ceil(LANES))
        .into_par_iter()
        .map(|c| {
            program.gather(std::array::from_fn(|k| {
                &t_points[(c * LANES + k).min(m - 1)]
            }))
        })
        .collect();
    let t_sign = program
        .needs_sign_dot(want)
        .then(|| t.mapv(crate::dual::sign0));

    // Bands start at multiples of LANES so that a band's first column is a bundle start.
    let rows = match params.band_rows {
        0 if d >= 256 => 128,
        0 => 32,
        r => r.next_multiple_of(LANES),
    };
    let padded = m.next_multiple_of(LANES);
    {
        let mut chunked: Vec<_> = outputs
            .iter_mut()
            .map(|o| {
                o.as_mut().map(|a| {
                    a.axis_chunks_iter_mut(Axis(0), rows)
                        .map(Some)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut bands: Vec<Band> = (0..n.div_ceil(rows))
            .map(|b| Band {
                first_row: b * rows,
                outs: std::array::from_fn(|k| {
                    chunked[k]
                        .as_mut()
                        .map(|v| v[b].take().expect("each band taken once"))
                }),
                non_finite: None,
            })
            .collect();
        bands.par_iter_mut().for_each_init(
            || Scratch::new(rows, padded, t_sign.is_some()),
            |scratch, band| {
                let i0 = band.first_row;
                let bn = band
                    .outs
                    .iter()
                    .flatten()
                    .next()
                    .map(|o| o.nrows())
                    .unwrap_or(0);
                let j0 = if mirror { i0 } else { 0 };
                // One matrix product per band feeds every pair of the band.
                let xb = x_mul.slice(s![i0..i0 + bn, ..]);
                let product = |rhs: &ArrayView2<f64>, dst: &mut Array2<f64>, e: i32| {
                    let mut blk = dst.slice_mut(s![..bn, j0..m]);
                    band_product(inv_d, xb, rhs.slice(s![j0.., ..]), blk.view_mut());
                    if e != 0 {
                        blk.mapv_inplace(|v| overflow::mul_pow2(v, e));
                    }
                };
                product(&t_mul, &mut scratch.dots, ex + et);
                if let Some(ts) = &t_sign {
                    product(&ts.view(), &mut scratch.sign_dots, ex);
                }
                for r in 0..bn {
                    let i = i0 + r;
                    let dot_row = scratch.dots.row(r);
                    let dots = dot_row.as_slice().expect("standard layout");
                    let sdot_row = if t_sign.is_some() {
                        scratch.sign_dots.row(r)
                    } else {
                        scratch.dots.row(r)
                    };
                    let sign_dots = sdot_row.as_slice().expect("standard layout");
                    // The bundle holding the diagonal pair (same set) is left to the
                    // scalar pass below: its correlation is 1 up to rounding, which a
                    // numerical rule would first integrate as a general pair (~0.1 ms).
                    let diagonal = (same_set && i >= j0).then(|| (i - j0) / LANES);
                    let row = Row {
                        x_point: program.splat(&x_points[i]),
                        t_lanes: &t_lanes[j0 / LANES..],
                        dots: &dots[j0..],
                        sign_dots: &sign_dots[j0..],
                        skip: diagonal,
                    };
                    hot_row(program, &row, want, &mut scratch.out);
                    for (k, o) in band.outs.iter_mut().enumerate() {
                        if let Some(o) = o {
                            let mut dst = o.row_mut(r);
                            let dst = dst.slice_mut(s![j0..]);
                            dst.into_slice()
                                .expect("standard layout")
                                .copy_from_slice(&scratch.out[k][..m - j0]);
                        }
                    }
                    // Fix-up: the rare pairs whose correlation is within 1e-9 of ±1 are
                    // checked for exact parallelism and recomputed with ρ = ±1 exactly.
                    let xr = x.row(i);
                    // |ρ| ≥ 1 − 5e-10 ⇔ ρ² ≥ 1 − 1e-9 to first order, in roots so that
                    // large inputs cannot overflow the test.
                    let near = (1.0 - 5e-10) * x_roots[i];
                    let skipped = diagonal.map_or(0..0, |c| {
                        let first = j0 + c * LANES;
                        first..(first + LANES).min(m)
                    });
                    for (j, &dot) in dots.iter().enumerate().take(m).skip(j0) {
                        let parallel = if same_set && i == j {
                            Parallel::Positive
                        } else if skipped.contains(&j)
                            || (dot != 0.0 && dot.abs() >= near * t_roots[j])
                        {
                            parallel_rows(
                                xr.as_slice().expect("standard layout"),
                                t.row(j).as_slice().expect("standard layout"),
                            )
                        } else {
                            continue;
                        };
                        if parallel != Parallel::Unknown || skipped.contains(&j) {
                            let inputs = PairInputs {
                                dot,
                                sign_dot: sign_dots[j],
                                ntk: 0.0,
                                parallel,
                            };
                            let k = program.pair(&x_points[i], &t_points[j], inputs, want);
                            store(&mut band.outs, r, j, &k);
                        }
                    }
                    // The finished row, still in cache: any NaN or ∞ is remembered (the
                    // first per band) and reported after the evaluation.
                    if band.non_finite.is_none() {
                        for (k, o) in band.outs.iter().enumerate() {
                            let Some(o) = o else { continue };
                            let row = o.row(r);
                            let row = row.as_slice().expect("standard layout");
                            if !overflow::all_finite(&row[j0..]) {
                                let j = (j0..m).find(|&j| !row[j].is_finite()).unwrap_or(j0);
                                band.non_finite = Some((i, j, k));
                                break;
                            }
                        }
                    }
                }
            },
        );
        if let Some((i, j, k)) = bands.iter().filter_map(|b| b.non_finite).min() {
            return Err(non_finite_kernel(
                program,
                KERNEL_NAMES[k],
                i,
                j,
                x_norms[i],
                t_norms[j],
            ));
        }
    }
    if mirror {
        for o in outputs.iter_mut().flatten() {
            mirror_upper_to_lower(o);
        }
    }
    Ok(())
}

/// The error for a kernel that is not finite at (row, col): it names the first layer whose
/// variance Σ(x,x) overflows at either point, when one does.
pub(crate) fn non_finite_kernel<K: PairProgram>(
    program: &K,
    kernel: &'static str,
    row: usize,
    col: usize,
    q_row: f64,
    q_col: f64,
) -> crate::Error {
    let arch = program.architecture();
    let layer = |q: f64| {
        if q.is_finite() {
            program.non_finite_node(q)
        } else {
            Some(0)
        }
    };
    let cause = match (layer(q_row), layer(q_col)) {
        (Some(a), b) => {
            let a = b.map_or(a, |b| a.min(b));
            format!(
                "the variance Σ(x, x) first overflows at {}",
                arch.describe_node(a)
            )
        }
        (None, Some(b)) => {
            format!(
                "the variance Σ(x, x) first overflows at {}",
                arch.describe_node(b)
            )
        }
        (None, None) => "every layer's variance Σ(x, x) is finite at both points; the \
                         readout or a pair's covariance or NTK sum overflowed"
            .into(),
    };
    crate::Error::NonFiniteKernel {
        kernel,
        row,
        col,
        cause,
    }
}

/// Per-thread scratch: the band's inner products and one row of each kernel.
struct Scratch {
    dots: Array2<f64>,
    sign_dots: Array2<f64>,
    out: [Vec<f64>; 4],
}

impl Scratch {
    fn new(rows: usize, padded_cols: usize, signs: bool) -> Scratch {
        Scratch {
            dots: Array2::zeros((rows, padded_cols)),
            sign_dots: Array2::zeros((if signs { rows } else { 0 }, padded_cols)),
            out: std::array::from_fn(|_| vec![0.0; padded_cols]),
        }
    }
}

/// One row of the hot pass: the point x (in every lane) against bundles of training points.
struct Row<'a, P, Q> {
    x_point: P,
    t_lanes: &'a [Q],
    /// Inner products, padded to whole bundles.
    dots: &'a [f64],
    sign_dots: &'a [f64],
    /// A bundle the hot loop leaves out (computed pair by pair afterwards).
    skip: Option<usize>,
}

/// The hot loop over one row, four pairs per step, every pair taken as generic (parallel
/// pairs are fixed up afterwards), writing all four kernels into `out`. Compiled twice:
/// for the baseline target and with AVX2+FMA, chosen at run time.
#[inline(always)]
fn hot_row_body<K: PairProgram>(
    program: &K,
    row: &Row<K::Point<F64x4>, K::Point<F64x4>>,
    want: Want,
    out: &mut [Vec<f64>; 4],
) {
    let bundles = row.t_lanes.len();
    let (dots, sdots) = (
        &row.dots[..bundles * LANES],
        &row.sign_dots[..bundles * LANES],
    );
    let [o0, o1, o2, o3] = out;
    let (o0, o1, o2, o3) = (
        &mut o0[..bundles * LANES],
        &mut o1[..bundles * LANES],
        &mut o2[..bundles * LANES],
        &mut o3[..bundles * LANES],
    );
    for (c, t) in row.t_lanes.iter().enumerate() {
        if row.skip == Some(c) {
            continue;
        }
        let lanes = c * LANES..(c + 1) * LANES;
        let inputs = PairInputs {
            dot: F64x4(dots[lanes.clone()].try_into().expect("4 lanes")),
            sign_dot: F64x4(sdots[lanes.clone()].try_into().expect("4 lanes")),
            ntk: F64x4([0.0; 4]),
            parallel: Parallel::Unknown,
        };
        let k = program.pair(&row.x_point, t, inputs, want);
        o0[lanes.clone()].copy_from_slice(&k.nngp.0);
        o1[lanes.clone()].copy_from_slice(&k.ntk.0);
        o2[lanes.clone()].copy_from_slice(&k.readout.0);
        o3[lanes].copy_from_slice(&k.hidden.0);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hot_row_avx2<K: PairProgram>(
    program: &K,
    row: &Row<K::Point<F64x4>, K::Point<F64x4>>,
    want: Want,
    out: &mut [Vec<f64>; 4],
) {
    hot_row_body(program, row, want, out)
}

#[inline(always)]
fn hot_row<K: PairProgram>(
    program: &K,
    row: &Row<K::Point<F64x4>, K::Point<F64x4>>,
    want: Want,
    out: &mut [Vec<f64>; 4],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { hot_row_avx2(program, row, want, out) };
    }
    hot_row_body(program, row, want, out)
}

/// Writes one pair's requested kernels into row `r`, column `j` of the band.
#[inline(always)]
fn store(outs: &mut [Option<ArrayViewMut2<f64>>; 4], r: usize, j: usize, k: &PairKernels) {
    let [o0, o1, o2, o3] = outs;
    if let Some(o) = o0 {
        o[[r, j]] = k.nngp;
    }
    if let Some(o) = o1 {
        o[[r, j]] = k.ntk;
    }
    if let Some(o) = o2 {
        o[[r, j]] = k.readout;
    }
    if let Some(o) = o3 {
        o[[r, j]] = k.hidden;
    }
}

/// A zeroed n×m matrix for a Gram output. On Linux the allocation is marked for
/// transparent huge pages, so that first-touching it costs one fault per 2 MiB instead
/// of one per 4 KiB; it is zeroed in parallel.
fn output_matrix(n: usize, m: usize, huge_pages: bool) -> Array2<f64> {
    let len = n * m;
    let mut data: Vec<f64> = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = data.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE);
        let end = start + len * std::mem::size_of::<f64>();
        if huge_pages && end > aligned + HUGE {
            let bytes = (end - aligned) / HUGE * HUGE;
            // SAFETY: advisory only; the range lies inside the allocation just made.
            unsafe { libc::madvise(aligned as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE) };
        }
    }
    data.spare_capacity_mut()
        .par_chunks_mut(1 << 16)
        .for_each(|c| {
            for v in c {
                v.write(0.0);
            }
        });
    // SAFETY: every element of the capacity was initialised just above.
    unsafe { data.set_len(len) };
    Array2::from_shape_vec((n, m), data).expect("n·m elements")
}

/// Copies the upper triangle onto the lower one, in parallel cache-sized blocks.
fn mirror_upper_to_lower(a: &mut ArrayViewMut2<f64>) {
    let n = a.nrows();
    assert!(
        n == a.ncols() && a.is_standard_layout(),
        "checked by the callers"
    );
    const B: usize = 64;
    struct Ptr(*mut f64);
    unsafe impl Sync for Ptr {}
    let ptr = Ptr(a.as_mut_ptr());
    let stride = n;
    (0..n.div_ceil(B)).into_par_iter().for_each(|bi| {
        let p = &ptr;
        let (i0, i1) = (bi * B, ((bi + 1) * B).min(n));
        for bj in 0..=bi {
            let (j0, j1) = (bj * B, ((bj + 1) * B).min(n));
            for i in i0..i1 {
                for j in j0..j1.min(i) {
                    // SAFETY: a is standard-layout n×n; band bi writes only its own rows
                    // (i in i0..i1) at columns j < i, and reads (j, i) with j < i, which
                    // lies in the upper triangle that no band writes.
                    unsafe { *p.0.add(i * stride + j) = *p.0.add(j * stride + i) };
                }
            }
        }
    });
}
/// From this input dimension on, the band product uses faer's matrix product (AVX-512
/// kernels where the CPU has them) instead of ndarray's (matrixmultiply, AVX2): measured on
/// the project's 2-core Xeon for one band, 128 × 784 times 784 × 4000, faer takes 18 ms
/// against 26 ms; at d = 64 (32 × 64 × 4000) matrixmultiply is faster, 0.50 against 0.66 ms.
const FAER_PRODUCT_FROM_DIM: usize = 256;

/// `dst = alpha · a · bᵀ`, `a` one band of rows, `b` the other set's rows: run inside one
/// rayon task per band, so single-threaded.
fn band_product(alpha: f64, a: ArrayView2<f64>, b: ArrayView2<f64>, mut dst: ArrayViewMut2<f64>) {
    if a.ncols() < FAER_PRODUCT_FROM_DIM {
        ndarray::linalg::general_mat_mul(alpha, &a, &b.t(), 0.0, &mut dst);
        return;
    }
    let (rows, cols, inner) = (a.nrows(), b.nrows(), a.ncols());
    let (sa, sb, sd) = (a.strides(), b.strides(), dst.strides());
    let (sd0, sd1) = (sd[0], sd[1]);
    // SAFETY: each view's pointer, shape and strides (in elements) describe exactly the
    // elements it borrows; the faer views live no longer than these borrows, and `dst` is
    // borrowed mutably and alone.
    let (fa, fb, fd) = unsafe {
        (
            faer::MatRef::from_raw_parts(a.as_ptr(), rows, inner, sa[0], sa[1]),
            faer::MatRef::from_raw_parts(b.as_ptr(), cols, inner, sb[0], sb[1]),
            faer::MatMut::from_raw_parts_mut(dst.as_mut_ptr(), rows, cols, sd0, sd1),
        )
    };
    faer::linalg::matmul::matmul(
        fd,
        faer::Accum::Replace,
        fa,
        fb.transpose(),
        alpha,
        faer::Par::Seq,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both band-product paths against the sum written out, on views with row strides wider
    /// than their width, a transposed (column-major) band and a reversed (negative-stride)
    /// one. Sums of 300 products of terms ≤ 1 in size: 1e-12 is far above their rounding.
    #[test]
    fn band_products_match_the_definition_on_either_path() {
        let mut seed = 11u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for d in [64, 300] {
            let big = Array2::from_shape_fn((9, d + 3), |_| next());
            let other = Array2::from_shape_fn((7, d), |_| next());
            let a_t = Array2::from_shape_fn((d, 5), |_| next());
            let bands: [ArrayView2<f64>; 3] = [
                big.slice(s![1..6, 2..2 + d]),
                a_t.t(),
                big.slice(s![..;-2, ..d]),
            ];
            for a in bands {
                let mut out = Array2::from_elem((a.nrows(), 10), f64::NAN);
                band_product(0.5, a, other.view(), out.slice_mut(s![.., 1..8]));
                for i in 0..a.nrows() {
                    for j in 0..7 {
                        let want: f64 =
                            0.5 * (0..d).map(|k| a[[i, k]] * other[[j, k]]).sum::<f64>();
                        assert!((out[[i, j + 1]] - want).abs() <= 1e-12, "d = {d}");
                    }
                    assert!(
                        out[[i, 0]].is_nan() && out[[i, 8]].is_nan(),
                        "wrote outside"
                    );
                }
            }
        }
    }
}
