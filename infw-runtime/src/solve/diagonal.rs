//! The diagonal k(x, x) of the kernels, one value per point, without any Gram matrix: what
//! the predictive variances need at test points (docs/math.md §5, "Predictive uncertainty").
//!
//! Each point runs the generated program's per-point pass and then its per-pair pass on the
//! pair (x, x) with ⟨x, x⟩/d0 as inner product and the correlation exactly +1
//! ([`Parallel::Positive`], docs/math.md §5 "Exactly parallel inputs"), as the diagonal of a
//! symmetric Gram evaluation does. O(d) work per point, parallel over points (rayon).

use crate::error::{Error, Result};
use crate::program::{PairInputs, PairKernels, PairProgram, Parallel, Want};
use ndarray::{Array1, ArrayView2, Axis};
use rayon::prelude::*;

/// The requested kernels on the diagonal, one entry per row of the inputs; unrequested
/// ones are `None` (as in [`crate::KernelMatrices`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KernelDiagonals {
    /// Σ(x, x).
    pub nngp: Option<Array1<f64>>,
    /// Θ(x, x).
    pub ntk: Option<Array1<f64>>,
    /// R(x, x), docs/math.md §4.
    pub readout: Option<Array1<f64>>,
    /// H(x, x), docs/math.md §4.
    pub hidden: Option<Array1<f64>>,
}

/// k(x, x) for every row x of `x`, for the kernels in `want`, straight from the compiled
/// program (see also [`crate::Network::kernel_diagonals`]). Errors: empty or non-finite
/// inputs; R or H asked of a declaration without the Adam-like limit.
pub fn kernel_diagonals<K: PairProgram>(
    program: &K,
    x: ArrayView2<f64>,
    want: Want,
) -> Result<KernelDiagonals> {
    crate::validate::check_matrix("inputs", x)?;
    if (want.readout || want.hidden) && !program.has_adam_limit() {
        return Err(Error::Architecture(format!(
            "this declaration has no Adam-like limit (R, H): {}",
            program
                .adam_limit_refusal()
                .unwrap_or("it is not built for this program")
        )));
    }
    let inv_d = 1.0 / x.ncols() as f64;
    let signs = program.needs_sign_dot(want);
    let pairs: Vec<PairKernels<f64>> = x
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|row| {
            let sq_norm = crate::gram::overflow::mean_square(row);
            let point = program.point(sq_norm);
            let sign_dot = if signs {
                row.iter().map(|&v| v * crate::dual::sign0(v)).sum::<f64>() * inv_d
            } else {
                0.0
            };
            let inputs = PairInputs {
                dot: sq_norm,
                sign_dot,
                ntk: 0.0,
                parallel: Parallel::Positive,
            };
            program.pair(&point, &point, inputs, want)
        })
        .collect();
    type Pick = fn(&PairKernels<f64>) -> f64;
    let kernels: [(bool, &'static str, Pick); 4] = [
        (want.nngp, "NNGP", |k| k.nngp),
        (want.ntk, "NTK", |k| k.ntk),
        (want.readout, "R (Adam-limit readout)", |k| k.readout),
        (want.hidden, "H (Adam-limit hidden)", |k| k.hidden),
    ];
    for (on, name, f) in kernels {
        if let Some(i) = pairs.iter().position(|k| on && !f(k).is_finite()) {
            let q = crate::gram::overflow::mean_square(x.row(i));
            return Err(crate::gram::non_finite_kernel(program, name, i, i, q, q));
        }
    }
    let column = |on: bool, f: fn(&PairKernels<f64>) -> f64| {
        on.then(|| pairs.iter().map(f).collect::<Array1<f64>>())
    };
    Ok(KernelDiagonals {
        nngp: column(want.nngp, |k| k.nngp),
        ntk: column(want.ntk, |k| k.ntk),
        readout: column(want.readout, |k| k.readout),
        hidden: column(want.hidden, |k| k.hidden),
    })
}
