//! The finite side of the Adam-like limit's test (docs/math.md §4, §8): one sign-descent step
//! of finite networks of growing width, averaged over seeds, against the limit
//! Δf_c(x) = −η[sign(χ_c) R(x, x_b) + (χ_c/‖χ‖) H(x, x_b)]. Generic over the architecture, so
//! the same check serves every node kind (and a user's declaration).

// `!(x < bound)` is written on purpose: a NaN must fail the check, not pass it.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use super::{FiniteNetwork, Parameterization};
use crate::error::{Error, Result};
use crate::Architecture;

/// The seed-averaged first-order change of one sign step at one width.
#[derive(Clone, Debug)]
pub struct SignStepRun {
    /// The factor the declared widths were multiplied by.
    pub width_factor: usize,
    /// Mean of Δf over seeds (evaluation rows × outputs).
    pub mean: Array2<f64>,
    /// Its standard error.
    pub standard_error: Array2<f64>,
    /// Mean over entries of |mean − limit|.
    pub mean_abs_error: f64,
    /// (mean − limit)/standard error, per entry.
    pub z: Array2<f64>,
}

/// Every width's run against the limit.
#[derive(Clone, Debug)]
pub struct SignStepReport {
    /// The limit Δf (evaluation rows × outputs).
    pub limit: Array2<f64>,
    /// One run per width factor, in the order given.
    pub runs: Vec<SignStepRun>,
}

impl SignStepReport {
    /// The criteria of docs/math.md §4's test: every entry within `z_bound` standard errors
    /// of the limit at the largest width; standard errors that shrink with width (the
    /// fluctuation falls as 1/√width); and a mean absolute error that shrinks from the
    /// narrowest to the widest, unless it is already at the widest's noise floor, 2 mean
    /// standard errors (an error at the noise floor cannot shrink detectably: the entries
    /// share their seeds, so a width's mean |error|/SE is nearly one draw of a half-normal,
    /// below 1.96 in 95 % of draws, and can be small by chance at a narrow width). `Err` says
    /// which failed.
    pub fn converges(&self, z_bound: f64) -> std::result::Result<(), String> {
        let (first, last) = match (self.runs.first(), self.runs.last()) {
            (Some(f), Some(l)) if self.runs.len() >= 2 => (f, l),
            _ => return Err("at least two widths are needed".into()),
        };
        if let Some(z) = last.z.iter().find(|z| !(z.abs() < z_bound)) {
            return Err(format!(
                "an entry lies {z:.2} standard errors from the limit at width factor {} (bound {z_bound})",
                last.width_factor
            ));
        }
        let ses: Vec<f64> = self
            .runs
            .iter()
            .map(|r| r.standard_error.mean().unwrap_or(f64::NAN))
            .collect();
        if !ses.windows(2).all(|w| w[1] < w[0]) {
            return Err(format!(
                "the standard errors do not shrink with width: {ses:?}"
            ));
        }
        let maes: Vec<f64> = self.runs.iter().map(|r| r.mean_abs_error).collect();
        let floor = 2.0 * ses[ses.len() - 1];
        if !(last.mean_abs_error < first.mean_abs_error || last.mean_abs_error <= floor) {
            return Err(format!(
                "the mean absolute error does not shrink from the narrowest to the widest and lies above the widest's noise floor {floor:.5} (2 standard errors): {maes:?}"
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for SignStepReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "limit Δf (eval rows × outputs) =\n{:.4}", self.limit)?;
        writeln!(f, "  factor  mean|err|  max|err|/SE  mean|err|/SE")?;
        for r in &self.runs {
            let zmax = r.z.iter().fold(0.0f64, |m, z| m.max(z.abs()));
            let zmean = r.z.mapv(f64::abs).mean().unwrap_or(f64::NAN);
            writeln!(
                f,
                "  {:>6}  {:.5}    {zmax:.2}         {zmean:.2}",
                r.width_factor, r.mean_abs_error
            )?;
        }
        if let Some(last) = self.runs.last() {
            write!(
                f,
                "  errors in standard errors at the widest:\n{:.2}",
                last.z
            )?;
        }
        Ok(())
    }
}

/// Δf of one sign-descent step (η = 1, docs/math.md §4's per-tensor rates, NTK
/// parameterization) on `x_b` with loss gradient `chi`, at the rows of `x_eval`, for
/// `seeds` networks of `arch` with widths × `factor` (network seeds `7919 s + base`):
/// the per-entry mean and standard error over seeds.
pub fn sign_step_statistics(
    arch: &Architecture,
    factor: usize,
    x_b: ArrayView1<f64>,
    chi: ArrayView1<f64>,
    x_eval: ArrayView2<f64>,
    seeds: u64,
    base: u64,
) -> Result<(Array2<f64>, Array2<f64>)> {
    if seeds < 2 {
        return Err(Error::InvalidArgument {
            name: "seeds",
            value: seeds.to_string(),
            reason: "a standard error needs at least two seeds".into(),
        });
    }
    let samples: Vec<Array2<f64>> = (0..seeds)
        .into_par_iter()
        .map(|seed| {
            FiniteNetwork::with_width_factor(
                arch,
                factor,
                x_b.len(),
                chi.len(),
                Parameterization::Ntk,
                7919 * seed + base,
            )?
            .sign_step_first_order_change(x_b, chi, x_eval, 1.0)
        })
        .collect::<Result<_>>()?;
    let s = seeds as f64;
    let mean = samples
        .iter()
        .fold(Array2::zeros(samples[0].raw_dim()), |acc, m| acc + m)
        / s;
    let var = samples
        .iter()
        .fold(Array2::zeros(mean.raw_dim()), |acc, m| {
            acc + (m - &mean).mapv(|v| v * v)
        })
        / (s - 1.0);
    Ok((mean, var.mapv(|v: f64| (v / s).sqrt())))
}

/// [`sign_step_statistics`] at every width factor against `limit` (Δf of the infinite-width
/// network: −[sign(χ_c) R(x, x_b) + (χ_c/‖χ‖) H(x, x_b)] at the rows of `x_eval`).
#[allow(clippy::too_many_arguments)]
pub fn sign_step_convergence(
    arch: &Architecture,
    factors: &[usize],
    x_b: ArrayView1<f64>,
    chi: ArrayView1<f64>,
    x_eval: ArrayView2<f64>,
    limit: &Array2<f64>,
    seeds: u64,
    base: u64,
) -> Result<SignStepReport> {
    for (what, expected, found) in [
        (
            "rows of the limit (the evaluation rows)",
            x_eval.nrows(),
            limit.nrows(),
        ),
        (
            "columns of the limit (the outputs of χ)",
            chi.len(),
            limit.ncols(),
        ),
    ] {
        if expected != found {
            return Err(Error::ShapeMismatch {
                what: what.into(),
                expected,
                found,
            });
        }
    }
    let mut runs = Vec::with_capacity(factors.len());
    for &width_factor in factors {
        let (mean, standard_error) =
            sign_step_statistics(arch, width_factor, x_b, chi, x_eval, seeds, base)?;
        let err = &mean - limit;
        runs.push(SignStepRun {
            width_factor,
            mean_abs_error: err.mapv(f64::abs).mean().unwrap_or(f64::NAN),
            z: &err / &standard_error,
            mean,
            standard_error,
        });
    }
    Ok(SignStepReport {
        limit: limit.clone(),
        runs,
    })
}

/// The limit Δf_c(x) = −η[sign(χ_c) R(x, x_b) + (χ_c/‖χ‖) H(x, x_b)] (η = 1) from the columns
/// R(·, x_b) and H(·, x_b) at the evaluation rows (docs/math.md §4).
pub fn sign_step_limit(
    r: ArrayView1<f64>,
    h: ArrayView1<f64>,
    chi: ArrayView1<f64>,
) -> Array2<f64> {
    let norm = chi.dot(&chi).sqrt();
    Array2::from_shape_fn((r.len(), chi.len()), |(i, k)| {
        let scaled = if norm > 0.0 { chi[k] / norm } else { 0.0 };
        -(crate::finite::network::sign(chi[k]) * r[i] + scaled * h[i])
    })
}
