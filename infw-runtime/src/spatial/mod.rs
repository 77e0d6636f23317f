//! Kernels of convolutional declarations (CNN-GP and CNTK, docs/math.md §9).
//!
//! `network!` compiles a declaration that starts with `input(…)` into a
//! [`SpatialProgram`]: a front over the positions (convolutions and activations on the
//! planes Σ_{p,q}, Θ_{p,q} of [`Planes`]) that ends in `global_avg_pool` or `flatten`, then
//! the dense part as for any declaration, fed with the pooled Σ and Θ. A point's own pass
//! needs only the diagonal Σ_{p,p}(x,x) ([`Diagonal`]); the pooled self-variance of a
//! `global_avg_pool` network is the pair pass of the point with itself.
//!
//! The Gram evaluation is parallel over rows (rayon, one [`Planes`] scratch per thread,
//! no allocation per pair once the planes have grown); for one set against itself only
//! pairs j ≥ i are computed and mirrored.

mod planes;

pub use planes::{ConvTable, Diagonal, Planes, PositionPoints};

use crate::arch::Architecture;
use crate::gram::{GramParams, KernelMatrices};
use crate::program::{KernelProgram, PairKernels, Want};
use crate::solve::KernelDiagonals;
use crate::validate::check_inputs;
use crate::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// What `network!` generates for a convolutional declaration.
pub trait SpatialProgram: Send + Sync {
    /// Everything the pair pass needs from one point (its row, the rule values per
    /// position, the dense part's per-point data).
    type Point: Send + Sync;

    /// The declared architecture.
    fn architecture(&self) -> &Architecture;

    /// The length of one row of X: positions × channels of `input(…)`.
    fn row_len(&self) -> usize;

    /// The per-point pass of one row.
    fn point(&self, row: &[f64], scratch: &mut Planes) -> Self::Point;

    /// NNGP and NTK of one pair (only `want.nngp` / `want.ntk` are read).
    fn pair(
        &self,
        x: &Self::Point,
        t: &Self::Point,
        scratch: &mut Planes,
        want: Want,
    ) -> PairKernels<f64>;
}

/// A convolutional program as a [`KernelProgram`]: what a [`crate::Network`] of a
/// declaration with `input(…)` wraps. It has no Adam-like limit (docs/math.md §9), so it
/// never implements [`crate::AdamLimitProgram`].
#[derive(Clone, Debug)]
pub struct Convolutional<S>(pub S);

impl<S: SpatialProgram> KernelProgram for Convolutional<S> {
    fn architecture(&self) -> &Architecture {
        self.0.architecture()
    }
    fn has_adam_limit(&self) -> bool {
        false
    }
    fn adam_limit_refusal(&self) -> Option<&'static str> {
        Some("a convolution has no closed-form sign kernel: the sign of a sum over positions of products does not factorise (docs/math.md §9)")
    }
    fn gram(
        &self,
        x: ArrayView2<f64>,
        t: Option<ArrayView2<f64>>,
        want: Want,
        _params: &GramParams,
    ) -> Result<KernelMatrices> {
        kernel_matrices(&self.0, x, t, want)
    }
    fn diagonals(&self, x: ArrayView2<f64>, want: Want) -> Result<KernelDiagonals> {
        diagonals(&self.0, x, want)
    }
}

fn check_rows<S: SpatialProgram>(program: &S, what: &str, a: ArrayView2<f64>) -> Result<()> {
    if a.ncols() != program.row_len() {
        return Err(Error::ShapeMismatch {
            what: format!(
                "row length of the {what} (positions × channels of the declared input(…))"
            ),
            expected: program.row_len(),
            found: a.ncols(),
        });
    }
    Ok(())
}

/// A convolutional kernel that overflowed (its per-layer variances are not traced).
fn non_finite(kernel: &'static str, row: usize, col: usize) -> Error {
    Error::NonFiniteKernel {
        kernel,
        row,
        col,
        cause: "a variance of the convolutional network overflowed".into(),
    }
}

fn no_adam(want: Want) -> Result<()> {
    if want.readout || want.hidden {
        return Err(Error::Architecture(
            "a convolutional declaration has no Adam-like limit (R, H): the sign of a sum over positions has no closed form (docs/math.md §9)".into(),
        ));
    }
    Ok(())
}

fn points<S: SpatialProgram>(program: &S, a: ArrayView2<f64>) -> Vec<S::Point> {
    let a = a.as_standard_layout();
    a.axis_iter(Axis(0))
        .into_par_iter()
        .map_init(Planes::default, |planes, row| {
            program.point(row.as_slice().expect("standard layout"), planes)
        })
        .collect()
}

/// The kernels in `want` (NNGP and/or NTK) between the rows of `x` and of `t`.
pub fn kernel_matrices<S: SpatialProgram>(
    program: &S,
    x: ArrayView2<f64>,
    t: Option<ArrayView2<f64>>,
    want: Want,
) -> Result<KernelMatrices> {
    check_inputs(x, t)?;
    no_adam(want)?;
    check_rows(program, "first input", x)?;
    let same_set = t.is_none();
    let x_points = points(program, x);
    let t_points_owned = t.map(|t| points(program, t));
    let t_points = t_points_owned.as_ref().unwrap_or(&x_points);
    let (n, m) = (x_points.len(), t_points.len());
    let mut nngp = want.nngp.then(|| Array2::<f64>::zeros((n, m)));
    let mut ntk = want.ntk.then(|| Array2::<f64>::zeros((n, m)));
    fn rows(a: &mut Option<Array2<f64>>, n: usize, m: usize) -> Vec<Option<&mut [f64]>> {
        match a {
            Some(a) => a
                .as_slice_mut()
                .expect("standard layout")
                .chunks_mut(m)
                .map(Some)
                .collect(),
            None => (0..n).map(|_| None).collect(),
        }
    }
    let (nngp_rows, ntk_rows) = (rows(&mut nngp, n, m), rows(&mut ntk, n, m));
    nngp_rows
        .into_par_iter()
        .zip(ntk_rows)
        .enumerate()
        .with_min_len(1)
        .for_each_init(Planes::default, |planes, (i, (k_row, t_row))| {
            let j0 = if same_set { i } else { 0 };
            let row = Row {
                x: &x_points[i],
                t: &t_points[j0..],
                nngp: k_row.map(|r| &mut r[j0..]),
                ntk: t_row.map(|r| &mut r[j0..]),
            };
            row_pass(program, row, planes, want);
        });
    if same_set {
        for a in [&mut nngp, &mut ntk].into_iter().flatten() {
            for i in 0..n {
                for j in 0..i {
                    a[[i, j]] = a[[j, i]];
                }
            }
        }
    }
    let check = |kernel: &'static str, a: &Option<Array2<f64>>| -> Result<()> {
        match a
            .as_ref()
            .and_then(|a| a.indexed_iter().find(|(_, v)| !v.is_finite()))
        {
            Some(((row, col), _)) => Err(non_finite(kernel, row, col)),
            None => Ok(()),
        }
    };
    check("NNGP", &nngp)?;
    check("NTK", &ntk)?;
    Ok(KernelMatrices {
        nngp,
        ntk,
        readout: None,
        hidden: None,
    })
}

/// One output row: the point x against the training points `t`.
struct Row<'a, P> {
    x: &'a P,
    t: &'a [P],
    nngp: Option<&'a mut [f64]>,
    ntk: Option<&'a mut [f64]>,
}

#[inline(always)]
fn row_body<S: SpatialProgram>(
    program: &S,
    mut row: Row<S::Point>,
    planes: &mut Planes,
    want: Want,
) {
    for (j, t) in row.t.iter().enumerate() {
        let k = program.pair(row.x, t, planes, want);
        if let Some(r) = row.nngp.as_deref_mut() {
            r[j] = k.nngp;
        }
        if let Some(r) = row.ntk.as_deref_mut() {
            r[j] = k.ntk;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn row_avx2<S: SpatialProgram>(program: &S, row: Row<S::Point>, planes: &mut Planes, want: Want) {
    row_body(program, row, planes, want)
}

/// The pair passes of one row, compiled for the baseline target and with AVX2+FMA,
/// chosen at run time (as the dense Gram does).
#[inline(always)]
fn row_pass<S: SpatialProgram>(program: &S, row: Row<S::Point>, planes: &mut Planes, want: Want) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function was compiled for.
        return unsafe { row_avx2(program, row, planes, want) };
    }
    row_body(program, row, planes, want)
}

/// k(x, x) for every row of `x`: the pair pass of each point with itself.
pub fn diagonals<S: SpatialProgram>(
    program: &S,
    x: ArrayView2<f64>,
    want: Want,
) -> Result<KernelDiagonals> {
    crate::validate::check_matrix("inputs", x)?;
    no_adam(want)?;
    check_rows(program, "inputs", x)?;
    let pts = points(program, x);
    let pairs: Vec<PairKernels<f64>> = pts
        .par_iter()
        .map_init(Planes::default, |planes, p| {
            program.pair(p, p, planes, want)
        })
        .collect();
    for (on, kernel, f) in [
        (
            want.nngp,
            "NNGP",
            (|k| k.nngp) as fn(&PairKernels<f64>) -> f64,
        ),
        (want.ntk, "NTK", |k| k.ntk),
    ] {
        if let Some(i) = pairs.iter().position(|k| on && !f(k).is_finite()) {
            return Err(non_finite(kernel, i, i));
        }
    }
    let column = |on: bool, f: fn(&PairKernels<f64>) -> f64| {
        on.then(|| pairs.iter().map(f).collect::<Array1<f64>>())
    };
    Ok(KernelDiagonals {
        nngp: column(want.nngp, |k| k.nngp),
        ntk: column(want.ntk, |k| k.ntk),
        readout: None,
        hidden: None,
    })
}
