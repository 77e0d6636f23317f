//! Kernel regression past the N×N matrix (docs/math.md §5 "At scale", docs/scale.md): Nyström
//! centres and a preconditioned conjugate-gradient solve over kernel blocks K(X_block, C), the
//! Falkon recipe (Rudi, Carratino & Rosasco, NeurIPS 2017).
//!
//! With M centres C ⊂ X the Nyström estimator f(x) = K(x, C) α minimises
//! ‖K(X, C) α − Y‖² + λ αᵀ K(C, C) α, i.e. solves
//!
//! ```text
//! (K_CX K_XC + λ K_CC) α = K_CX Y            (M×M, never formed)
//! ```
//!
//! For C = X this is K(K + λI)α = KY, so α is exactly kernel regression's (K + λI)⁻¹Y with
//! the same absolute ridge λ as [`KernelRegression`](super::KernelRegression). The system is
//! solved by conjugate gradients on Bᵀ H B β = Bᵀ K_CX Y, α = Bβ, with Falkon's
//! preconditioner B = N^{-1/2} T⁻¹ A⁻¹, K_CC = TᵀT, TTᵀ/M + (λ/N) I = AᵀA, for which BBᵀ is
//! the inverse of (N/M) K_CC² + λ K_CC ≈ H. Memory is two M×M factors plus as many row
//! blocks of K(X, C) as [`FalkonOptions::cache_bytes`] allows; the blocks not kept are
//! recomputed in every iteration (time traded for memory).

use super::predictive::{Covariance, TestTestKernel};
use crate::error::{Error, Result};
use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Llt;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};
use ndarray::{Array1, Array2, ArrayView2};
use std::ops::Range;

/// The approximation's parameters, with defaults chosen on mnist1d_70k (docs/scale.md).
#[derive(Clone, Debug, PartialEq)]
pub struct FalkonOptions {
    /// Number M of Nyström centres, drawn uniformly without replacement from the training
    /// inputs; M ≥ N uses every training input (then the solve is exact kernel regression).
    pub centres: usize,
    /// Upper bound on conjugate-gradient iterations.
    pub max_iterations: usize,
    /// Stop when every target column's preconditioned residual ‖r‖/‖b‖ is at most this.
    pub tolerance: f64,
    /// Seed of the centre draw.
    pub seed: u64,
    /// Training rows per kernel block K(X_block, C).
    pub block_rows: usize,
    /// Memory for keeping blocks of K(X, C) between iterations: the first ⌊budget /
    /// (block_rows·M·8)⌋ blocks are kept, the rest recomputed block by block in every
    /// iteration (slower, O(block·M) memory each).
    pub cache_bytes: usize,
}

impl Default for FalkonOptions {
    fn default() -> Self {
        FalkonOptions {
            centres: 4096,
            max_iterations: 100,
            tolerance: 1e-8,
            seed: 0,
            block_rows: 2048,
            cache_bytes: 2 << 30,
        }
    }
}

impl FalkonOptions {
    /// Checks every field; each rejection names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, value: String, reason: &str| {
            Err(Error::InvalidArgument {
                name,
                value,
                reason: reason.into(),
            })
        };
        if self.centres == 0 {
            return bad(
                "centres",
                "0".into(),
                "at least one Nyström centre is needed",
            );
        }
        if self.max_iterations == 0 {
            return bad(
                "max_iterations",
                "0".into(),
                "at least one conjugate-gradient iteration is needed",
            );
        }
        if !(self.tolerance > 0.0 && self.tolerance < 1.0) {
            return bad(
                "tolerance",
                self.tolerance.to_string(),
                "the relative residual tolerance must lie in (0, 1)",
            );
        }
        if self.block_rows == 0 {
            return bad(
                "block_rows",
                "0".into(),
                "a kernel block needs at least one row",
            );
        }
        Ok(())
    }
}

/// What a long Falkon fit reports while it runs.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)] // each variant's doc describes its fields
pub enum FalkonProgress {
    /// `rows_done` of `rows` training rows of K(X, C) computed: in the first pass all N, in
    /// an iteration's pass the rows not kept.
    Kernel { rows_done: usize, rows: usize },
    /// Conjugate-gradient iteration `iteration` finished with the largest relative residual
    /// over target columns.
    Iteration {
        iteration: usize,
        max_iterations: usize,
        relative_residual: f64,
    },
}

/// How a Falkon fit ended.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FalkonReport {
    /// Number M of centres used.
    pub centres: usize,
    /// Conjugate-gradient iterations run.
    pub iterations: usize,
    /// Largest preconditioned relative residual ‖r‖/‖b‖ over target columns at the end.
    pub relative_residual: f64,
    /// Whether `relative_residual ≤ tolerance` was reached within `max_iterations`.
    pub converged: bool,
    /// Rows of K(X, C) kept in memory (within `cache_bytes`); the other N − kept rows are
    /// recomputed in every iteration.
    pub kept_rows: usize,
}

/// M distinct indices of 0..n, uniformly at random, sorted; all of 0..n when m ≥ n.
pub fn draw_centres(n: usize, m: usize, seed: u64) -> Vec<usize> {
    use rand::SeedableRng;
    if m >= n {
        return (0..n).collect();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut picked = rand::seq::index::sample(&mut rng, n, m).into_vec();
    picked.sort_unstable();
    picked
}

/// A fitted Nyström kernel regression (docs/math.md §5 "At scale"): coefficients α on the
/// centres, predictions K(X*, C) α.
#[derive(Clone, Debug)]
pub struct Falkon {
    pub(crate) alpha: Array2<f64>,
    pub(crate) ridge: f64,
    pub(crate) report: FalkonReport,
}

/// Source of training-kernel blocks: K(X\[rows\], C), rows.len() × M.
pub type KernelRows<'a> = dyn FnMut(Range<usize>) -> Result<Array2<f64>> + 'a;

/// H·v for the M×C block v: K_CX (K_XC v), accumulated over kernel blocks; the first blocks
/// that fit in the cache budget are kept, the others recomputed in every product.
struct NormalOperator<'a, 'b> {
    kept: Vec<Array2<f64>>,
    /// K_b v for one block (block_rows × C), reused by every block and iteration.
    scratch: Mat<f64>,
    rows: &'a mut KernelRows<'b>,
    n: usize,
    m: usize,
    block_rows: usize,
}

impl NormalOperator<'_, '_> {
    fn block(&mut self, range: Range<usize>) -> Result<Array2<f64>> {
        let k = (self.rows)(range.clone())?;
        checked_block(k, range, self.m, "kernel block K(X, C)")
    }

    /// Rows of K(X, C) held in memory.
    fn kept_rows(&self) -> usize {
        (self.kept.len() * self.block_rows).min(self.n)
    }

    /// out = K_CX K_XC v (out: M×C), reporting progress over the recomputed blocks.
    fn apply(
        &mut self,
        v: MatRef<'_, f64>,
        out: MatMut<'_, f64>,
        progress: &mut dyn FnMut(FalkonProgress),
    ) -> Result<()> {
        let mut out = out;
        let mut accum = Accum::Replace;
        for k in &self.kept {
            normal_product(
                row_major(k.view()),
                v,
                out.as_mut(),
                accum,
                &mut self.scratch,
            );
            accum = Accum::Add;
        }
        let (n, step, from) = (self.n, self.block_rows, self.kept_rows());
        for start in (from..n).step_by(step) {
            let end = (start + step).min(n);
            let k = self.block(start..end)?;
            normal_product(
                row_major(k.view()),
                v,
                out.as_mut(),
                accum,
                &mut self.scratch,
            );
            accum = Accum::Add;
            progress(FalkonProgress::Kernel {
                rows_done: end - from,
                rows: n - from,
            });
        }
        Ok(())
    }
}

/// A kernel block of training rows `range` against M centres, checked (shape, finite) and in
/// standard layout.
fn checked_block(
    k: Array2<f64>,
    range: Range<usize>,
    m: usize,
    what: &'static str,
) -> Result<Array2<f64>> {
    let len = range.len();
    if k.dim() != (len, m) {
        return Err(Error::ShapeMismatch {
            what: format!(
                "{what} of training rows {}..{} (rows × centres {len} × {m})",
                range.start, range.end
            ),
            expected: len * m,
            found: k.len(),
        });
    }
    crate::validate::check_matrix(what, k.view())?;
    Ok(k.as_standard_layout().into_owned())
}

/// The Cholesky factor L of K(C, C) + jitter·I with Falkon's jitter M·ε·max diag: centres
/// may coincide or K(C, C) be numerically singular; the jitter makes the factor exist and
/// moves the solution by O(λ·M·ε) relatively. Consumes K(C, C) (memory).
fn jittered_cholesky(k_cc: Array2<f64>, name: &str) -> Result<Llt<f64>> {
    let m = k_cc.nrows();
    let max_diag = (0..m).map(|i| k_cc[[i, i]]).fold(0.0f64, f64::max);
    let jitter = m as f64 * f64::EPSILON * max_diag.max(f64::MIN_POSITIVE);
    let symmetric = super::check::symmetric_faer(k_cc.view(), jitter);
    drop(k_cc);
    symmetric
        .llt(Side::Lower)
        .map_err(|e| Error::NotPositiveDefinite {
            detail: format!("Cholesky of {name} + {jitter:e}·I failed: {e:?}"),
        })
}

/// A standard-layout ndarray matrix as a faer view (no copy).
fn row_major(a: ArrayView2<'_, f64>) -> MatRef<'_, f64> {
    let (r, c) = a.dim();
    MatRef::from_row_major_slice(a.to_slice().expect("standard layout"), r, c)
}

/// out (+)= Kᵀ (K v) for a block K of rows × M.
/// `scratch` holds K v (at least rows × C), so the iterations allocate nothing per block.
fn normal_product(
    k: MatRef<'_, f64>,
    v: MatRef<'_, f64>,
    out: MatMut<'_, f64>,
    accum: Accum,
    scratch: &mut Mat<f64>,
) {
    let mut kv = scratch.as_mut().submatrix_mut(0, 0, k.nrows(), v.ncols());
    matmul(kv.as_mut(), Accum::Replace, k, v, 1.0, Par::rayon(0));
    matmul(out, accum, k.transpose(), kv.as_ref(), 1.0, Par::rayon(0));
}

/// Falkon's preconditioner: L (K_CC + jitter = L Lᵀ, so T = Lᵀ) and L_A (TTᵀ/M + λ/N·I =
/// L_A L_Aᵀ, so A = L_Aᵀ), with N^{-1/2} kept apart. Two M×M factors stay in memory.
struct Preconditioner {
    l: Llt<f64>,
    l_a: Llt<f64>,
    inv_sqrt_n: f64,
    ridge_over_n: f64,
}

impl Preconditioner {
    /// Consumes K(C, C) so that at most three M×M matrices are alive at once.
    fn new(k_cc: Array2<f64>, n: usize, ridge: f64) -> Result<Self> {
        let m = k_cc.nrows();
        let l = jittered_cholesky(k_cc, "K(C, C)")?;
        // TTᵀ = Lᵀ L
        let mut a = Mat::<f64>::zeros(m, m);
        matmul(
            a.as_mut(),
            Accum::Replace,
            l.L().transpose(),
            l.L(),
            1.0 / m as f64,
            Par::rayon(0),
        );
        let ridge_over_n = ridge / n as f64;
        for i in 0..m {
            a[(i, i)] += ridge_over_n;
        }
        // symmetrise against rounding of the product
        for i in 0..m {
            for j in 0..i {
                let s = 0.5 * (a[(i, j)] + a[(j, i)]);
                a[(i, j)] = s;
                a[(j, i)] = s;
            }
        }
        let l_a = a.llt(Side::Lower).map_err(|e| Error::NotPositiveDefinite {
            detail: format!("Cholesky of Falkon's TTᵀ/M + λ/N·I failed: {e:?}"),
        })?;
        Ok(Preconditioner {
            l,
            l_a,
            inv_sqrt_n: 1.0 / (n as f64).sqrt(),
            ridge_over_n,
        })
    }

    /// B v = N^{-1/2} L⁻ᵀ L_A⁻ᵀ v.
    fn apply_b(&self, v: &mut Mat<f64>) {
        solve_upper_triangular_in_place(self.l_a.L().transpose(), v.as_mut(), Par::rayon(0));
        solve_upper_triangular_in_place(self.l.L().transpose(), v.as_mut(), Par::rayon(0));
        scale(v, self.inv_sqrt_n);
    }

    /// Bᵀ v = N^{-1/2} L_A⁻¹ L⁻¹ v.
    fn apply_bt(&self, v: &mut Mat<f64>) {
        solve_lower_triangular_in_place(self.l.L(), v.as_mut(), Par::rayon(0));
        solve_lower_triangular_in_place(self.l_a.L(), v.as_mut(), Par::rayon(0));
        scale(v, self.inv_sqrt_n);
    }

    /// (λ/N) L_A⁻¹ L_A⁻ᵀ v = Bᵀ λK_CC B v (with the jittered K_CC = LLᵀ).
    fn ridge_term(&self, v: &Mat<f64>) -> Mat<f64> {
        let mut w = v.clone();
        solve_upper_triangular_in_place(self.l_a.L().transpose(), w.as_mut(), Par::rayon(0));
        solve_lower_triangular_in_place(self.l_a.L(), w.as_mut(), Par::rayon(0));
        scale(&mut w, self.ridge_over_n);
        w
    }
}

fn scale(v: &mut Mat<f64>, s: f64) {
    for j in 0..v.ncols() {
        for i in 0..v.nrows() {
            v[(i, j)] *= s;
        }
    }
}

fn column_dots(a: &Mat<f64>, b: &Mat<f64>) -> Vec<f64> {
    (0..a.ncols())
        .map(|j| (0..a.nrows()).map(|i| a[(i, j)] * b[(i, j)]).sum())
        .collect()
}

impl Falkon {
    /// Fits α from kernel blocks of the training set against the centres.
    ///
    /// * `rows(range)` returns K(X\[range\], C) (range.len() × M, finite);
    /// * `k_cc` is K(C, C) (M×M, symmetric; consumed to bound memory), `y` the targets (N×C), `ridge` λ > 0 the same
    ///   absolute ridge as [`KernelRegression`](super::KernelRegression);
    /// * `progress` is called after every kernel block pass and every iteration.
    ///
    /// Not reaching `tolerance` within `max_iterations` is not an error: the report says so.
    pub fn fit(
        rows: &mut KernelRows<'_>,
        k_cc: Array2<f64>,
        y: ArrayView2<f64>,
        ridge: f64,
        options: &FalkonOptions,
        progress: &mut dyn FnMut(FalkonProgress),
    ) -> Result<Self> {
        options.validate()?;
        super::check::non_empty("y", y)?;
        super::check::finite("y", y)?;
        super::check::non_empty("k_cc", k_cc.view())?;
        super::check::dim("k_cc must be square: columns", k_cc.nrows(), k_cc.ncols())?;
        super::check::finite("k_cc", k_cc.view())?;
        super::check::symmetric("k_cc", k_cc.view())?;
        if !(ridge.is_finite() && ridge > 0.0) {
            return Err(Error::InvalidArgument {
                name: "ridge",
                value: ridge.to_string(),
                reason: "the Nyström solve needs a finite, positive ridge".into(),
            });
        }
        let (n, c) = y.dim();
        let m = k_cc.nrows();
        if m > n {
            return Err(Error::ShapeMismatch {
                what: "centres (at most one per training example)".into(),
                expected: n,
                found: m,
            });
        }
        let block_bytes = options.block_rows.saturating_mul(m).saturating_mul(8);
        let blocks_kept = options.cache_bytes / block_bytes.max(1);
        let pre = Preconditioner::new(k_cc, n, ridge)?;
        let mut op = NormalOperator {
            kept: Vec::new(),
            scratch: Mat::zeros(options.block_rows.min(n), c),
            rows,
            n,
            m,
            block_rows: options.block_rows,
        };

        // b = Bᵀ K_CX Y, in the same pass that keeps the blocks of K(X, C) that fit
        let mut kty = Mat::<f64>::zeros(m, c);
        for (index, start) in (0..n).step_by(options.block_rows).enumerate() {
            let end = (start + options.block_rows).min(n);
            let k = op.block(start..end)?;
            let y_block = y.slice(ndarray::s![start..end, ..]).to_owned();
            matmul(
                kty.as_mut(),
                if start == 0 {
                    Accum::Replace
                } else {
                    Accum::Add
                },
                row_major(k.view()).transpose(),
                row_major(y_block.view()),
                1.0,
                Par::rayon(0),
            );
            if index < blocks_kept {
                op.kept.push(k);
            }
            progress(FalkonProgress::Kernel {
                rows_done: end,
                rows: n,
            });
        }
        let mut b = kty;
        pre.apply_bt(&mut b);
        let b_norm: Vec<f64> = column_dots(&b, &b).into_iter().map(f64::sqrt).collect();

        // conjugate gradients on W = Bᵀ H B, one independent recursion per target column
        let mut beta = Mat::<f64>::zeros(m, c);
        let mut r = b.clone();
        let mut p = r.clone();
        let mut rr = column_dots(&r, &r);
        let residual = |rr: &[f64]| {
            rr.iter()
                .zip(&b_norm)
                .map(|(&s, &bn)| if bn > 0.0 { s.sqrt() / bn } else { 0.0 })
                .fold(0.0f64, f64::max)
        };
        let mut rel = residual(&rr);
        let mut iterations = 0;
        let mut hv = Mat::<f64>::zeros(m, c);
        while rel > options.tolerance && iterations < options.max_iterations {
            // q = Bᵀ K_CX K_XC B p + (λ/N) L_A⁻¹ L_A⁻ᵀ p
            let mut bp = p.clone();
            pre.apply_b(&mut bp);
            op.apply(bp.as_ref(), hv.as_mut(), progress)?;
            let mut q = hv.clone();
            pre.apply_bt(&mut q);
            q += pre.ridge_term(&p);
            let pq = column_dots(&p, &q);
            let mut rr_new = vec![0.0; c];
            for j in 0..c {
                // a converged (or zero) column stays where it is
                let step = if rr[j] > 0.0 && pq[j] > 0.0 {
                    rr[j] / pq[j]
                } else {
                    0.0
                };
                for i in 0..m {
                    beta[(i, j)] += step * p[(i, j)];
                    r[(i, j)] -= step * q[(i, j)];
                }
                rr_new[j] = (0..m).map(|i| r[(i, j)] * r[(i, j)]).sum();
                let ratio = if rr[j] > 0.0 { rr_new[j] / rr[j] } else { 0.0 };
                for i in 0..m {
                    p[(i, j)] = r[(i, j)] + ratio * p[(i, j)];
                }
            }
            rr = rr_new;
            rel = residual(&rr);
            iterations += 1;
            if !rel.is_finite() {
                return Err(Error::NotPositiveDefinite {
                    detail: format!(
                        "Falkon's conjugate gradients broke down at iteration {iterations} (residual {rel})"
                    ),
                });
            }
            progress(FalkonProgress::Iteration {
                iteration: iterations,
                max_iterations: options.max_iterations,
                relative_residual: rel,
            });
        }
        pre.apply_b(&mut beta);
        let alpha = super::check::from_faer(beta.as_ref());
        Ok(Falkon {
            alpha,
            ridge,
            report: FalkonReport {
                centres: m,
                iterations,
                relative_residual: rel,
                converged: rel <= options.tolerance,
                kept_rows: op.kept_rows(),
            },
        })
    }

    /// Predictions K(X*, C) α from the test-versus-centres kernel (rows × M).
    pub fn predict(&self, k_test_centres: ArrayView2<f64>) -> Result<Array2<f64>> {
        super::check::non_empty("k_test_centres", k_test_centres)?;
        super::check::dim(
            "columns of k_test_centres (one per centre)",
            self.alpha.nrows(),
            k_test_centres.ncols(),
        )?;
        super::check::finite("k_test_centres", k_test_centres)?;
        Ok(k_test_centres.dot(&self.alpha))
    }

    /// The coefficients α, one row per centre (M×C).
    pub fn coefficients(&self) -> ArrayView2<'_, f64> {
        self.alpha.view()
    }

    /// The ridge λ of the fit.
    pub fn ridge(&self) -> f64 {
        self.ridge
    }

    /// How the solve ended (iterations, residual, convergence).
    pub fn report(&self) -> &FalkonReport {
        &self.report
    }
}

// ---------------------------------------------------------------------------------------
// Approximate predictive variance through the same centres (docs/math.md §5 "At scale").
// ---------------------------------------------------------------------------------------

/// Kernel blocks for the NTK ensemble's variance: (Θ(X\[rows\], C), Σ(X\[rows\], C)), each
/// rows.len() × M.
pub type KernelRowPairs<'a> = dyn FnMut(Range<usize>) -> Result<(Array2<f64>, Array2<f64>)> + 'a;

/// How many approximate variances rounding left outside the bounds the exact formula
/// guarantees, and how far: each such variance is clamped onto the bound (0 below; for the
/// GP also k(x, x) above), so no variance is negative and none is NaN. The off-diagonal
/// entries of a full covariance are never changed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Clamping {
    /// Variances moved onto a bound.
    pub count: usize,
    /// The largest move, relative to the prior variance Σ(x, x) of its point (0 if none).
    pub largest: f64,
}

impl Clamping {
    /// `v` clamped into [0, upper]; errors on a non-finite `v` (never expected from finite
    /// inputs, but never returned either).
    fn clamp(&mut self, v: f64, prior: f64, upper: f64, index: usize) -> Result<f64> {
        if !v.is_finite() {
            return Err(Error::NonFinite {
                what: "approximate predictive variance".into(),
                row: index,
                col: index,
                value: v,
            });
        }
        let c = v.clamp(0.0, upper);
        if c != v {
            self.count += 1;
            self.largest = self
                .largest
                .max((c - v).abs() / prior.abs().max(f64::MIN_POSITIVE));
        }
        Ok(c)
    }

    /// Adds the counts of another batch of test points.
    pub fn merge(&mut self, other: Clamping) {
        self.count += other.count;
        self.largest = self.largest.max(other.largest);
    }
}

/// A checked block (rows × M, standard layout) whitened in its own memory: on return its
/// buffer, read as an M × rows column-major matrix, holds L⁻¹ Kᵀ.
fn whiten(l: &Llt<f64>, mut k: Array2<f64>) -> Array2<f64> {
    let (rows, m) = k.dim();
    let slice = k.as_slice_mut().expect("standard layout");
    solve_lower_triangular_in_place(
        l.L(),
        MatMut::from_column_major_slice_mut(slice, m, rows),
        Par::rayon(0),
    );
    k
}

/// The M × rows column-major matrix a whitened block holds (no copy).
fn whitened(v: &Array2<f64>) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(v.as_slice().expect("standard layout"), v.ncols(), v.nrows())
}

/// L⁻¹ K(C, X*) for a test block K(X*, C) (T × M), as an M × T faer matrix.
fn whiten_test(l: &Llt<f64>, k: ArrayView2<f64>) -> Mat<f64> {
    let mut v = Mat::from_fn(k.ncols(), k.nrows(), |i, j| k[[j, i]]);
    solve_lower_triangular_in_place(l.L(), v.as_mut(), Par::rayon(0));
    v
}

/// The arguments every variance preparation shares.
fn check_preparation(n: usize, m: usize, ridge: f64, block_rows: usize) -> Result<()> {
    if !(ridge.is_finite() && ridge > 0.0) {
        return Err(Error::InvalidArgument {
            name: "ridge",
            value: ridge.to_string(),
            reason: "the Nyström variance needs a finite, positive ridge".into(),
        });
    }
    if block_rows == 0 {
        return Err(Error::InvalidArgument {
            name: "block_rows",
            value: "0".into(),
            reason: "a kernel block needs at least one row".into(),
        });
    }
    if m > n {
        return Err(Error::ShapeMismatch {
            what: "centres (at most one per training example)".into(),
            expected: n,
            found: m,
        });
    }
    Ok(())
}

fn check_centre_kernel(name: &'static str, k_cc: ArrayView2<f64>) -> Result<()> {
    super::check::non_empty(name, k_cc)?;
    super::check::dim(
        &format!("{name} must be square: columns"),
        k_cc.nrows(),
        k_cc.ncols(),
    )?;
    super::check::finite(name, k_cc)?;
    super::check::symmetric(name, k_cc)
}

fn check_test_centres(name: &'static str, k: ArrayView2<f64>, m: usize) -> Result<()> {
    super::check::non_empty(name, k)?;
    super::check::dim(&format!("columns of {name} (one per centre)"), m, k.ncols())?;
    super::check::finite(name, k)
}

/// G + λI = R Rᵀ for the lower triangle of G.
fn ridge_cholesky(mut g: Mat<f64>, ridge: f64, name: &str) -> Result<Llt<f64>> {
    for i in 0..g.nrows() {
        g[(i, i)] += ridge;
    }
    g.llt(Side::Lower).map_err(|e| Error::NotPositiveDefinite {
        detail: format!("Cholesky of {name} + λI failed: {e:?}"),
    })
}

/// g (lower triangle) += V Vᵀ for V M × rows.
fn add_gram_lower(g: &mut Mat<f64>, v: MatRef<'_, f64>) {
    faer::linalg::matmul::triangular::matmul(
        g.as_mut(),
        faer::linalg::matmul::triangular::BlockStructure::TriangularLower,
        Accum::Add,
        v,
        faer::linalg::matmul::triangular::BlockStructure::Rectangular,
        v.transpose(),
        faer::linalg::matmul::triangular::BlockStructure::Rectangular,
        1.0,
        Par::rayon(0),
    );
}

fn column_sq_norms(v: &Mat<f64>) -> Vec<f64> {
    (0..v.ncols())
        .map(|j| (0..v.nrows()).map(|i| v[(i, j)] * v[(i, j)]).sum())
        .collect()
}

/// Σ** − VᵀV + c·WᵀW as a symmetric T × T matrix, the diagonal clamped into [0, upper(j)].
fn full_covariance(
    k_test_test: ArrayView2<f64>,
    v: &Mat<f64>,
    w: &Mat<f64>,
    c: f64,
    upper: impl Fn(f64) -> f64,
) -> Result<(Covariance, Clamping)> {
    let t = v.ncols();
    let mut q = Mat::<f64>::zeros(t, t);
    matmul(
        q.as_mut(),
        Accum::Replace,
        v.transpose(),
        v.as_ref(),
        -1.0,
        Par::rayon(0),
    );
    matmul(
        q.as_mut(),
        Accum::Add,
        w.transpose(),
        w.as_ref(),
        c,
        Par::rayon(0),
    );
    let mut out = Array2::from_shape_fn((t, t), |(i, j)| {
        k_test_test[[i, j]] + 0.5 * (q[(i, j)] + q[(j, i)])
    });
    let mut clamping = Clamping::default();
    for j in 0..t {
        let prior = k_test_test[[j, j]];
        out[[j, j]] = clamping.clamp(out[[j, j]], prior, upper(prior), j)?;
    }
    Ok((Covariance::Full(out), clamping))
}

/// The NNGP's approximate predictive covariance through M Nyström centres: the GP
/// posterior of the deterministic training conditional (DTC; Seeger, Williams & Lawrence
/// 2003; Quiñonero-Candela & Rasmussen 2005) with the ridge λ as noise variance, whose mean
/// is exactly the Nyström/Falkon regression K(x, C) α (docs/math.md §5 "At scale"):
///
/// ```text
/// var(x) = k(x,x) − k_xC K_CC⁻¹ k_Cx + λ k_xC (K_CX K_XC + λ K_CC)⁻¹ k_Cx
/// ```
///
/// **Approximate**: it equals the exact posterior variance k(x,x) − k_xX (K + λI)⁻¹ k_Xx
/// when every training input is a centre (C = X), and otherwise is the posterior of the
/// prior whose training-set covariance is replaced by K_XC K_CC⁻¹ K_CX. It lies in
/// [0, k(x, x)] exactly; rounding outside is clamped and counted ([`Clamping`]).
///
/// Kept: two M×M Cholesky factors, L of K_CC + jitter (Falkon's) and R of
/// A Aᵀ + λI with A = L⁻¹ K_CX; var(x) = k(x,x) − ‖L⁻¹k_Cx‖² + λ‖R⁻¹L⁻¹k_Cx‖².
/// Preparing it streams the N × M kernel once in blocks (N·M² + N·M² flops: one
/// triangular solve and one symmetric rank-update per block); nothing N × N is formed.
#[derive(Debug)]
pub struct NystromGp {
    l: Llt<f64>,
    r: Llt<f64>,
    ridge: f64,
}

impl NystromGp {
    /// Prepares the covariance from kernel blocks `rows(range)` = K(X\[range\], C)
    /// (range.len() × M, finite; called once per block of `block_rows` rows, in order),
    /// `k_cc` = K(C, C) (M×M, symmetric; consumed), N training examples and the fit's ridge
    /// λ > 0. `progress` receives one [`FalkonProgress::Kernel`] event per block.
    pub fn new(
        rows: &mut KernelRows<'_>,
        k_cc: Array2<f64>,
        n: usize,
        ridge: f64,
        block_rows: usize,
        progress: &mut dyn FnMut(FalkonProgress),
    ) -> Result<Self> {
        check_centre_kernel("k_cc", k_cc.view())?;
        let m = k_cc.nrows();
        check_preparation(n, m, ridge, block_rows)?;
        let l = jittered_cholesky(k_cc, "K(C, C)")?;
        let mut g = Mat::<f64>::zeros(m, m);
        for start in (0..n).step_by(block_rows) {
            let end = (start + block_rows).min(n);
            let k = checked_block((rows)(start..end)?, start..end, m, "kernel block K(X, C)")?;
            let v = whiten(&l, k);
            add_gram_lower(&mut g, whitened(&v));
            progress(FalkonProgress::Kernel {
                rows_done: end,
                rows: n,
            });
        }
        let r = ridge_cholesky(g, ridge, "L⁻¹ K_CX K_XC L⁻ᵀ")?;
        Ok(NystromGp { l, r, ridge })
    }

    /// The approximate covariance over test points from K(X*, C) (T × M) and Σ(X*, X*) in
    /// full (T × T) or its diagonal (T): [`Covariance::Full`] or [`Covariance::Diagonal`]
    /// accordingly, with the variances clamped into [0, k(x, x)] and the clamps counted.
    pub fn covariance(
        &self,
        k_test_centres: ArrayView2<f64>,
        k_test_test: TestTestKernel<'_>,
    ) -> Result<(Covariance, Clamping)> {
        check_test_centres("k_test_centres", k_test_centres, self.centres())?;
        super::predictive::check_test_test(&k_test_test, k_test_centres.nrows())?;
        let v = whiten_test(&self.l, k_test_centres);
        let mut w = v.clone();
        solve_lower_triangular_in_place(self.r.L(), w.as_mut(), Par::rayon(0));
        match k_test_test {
            TestTestKernel::Full(k) => full_covariance(k, &v, &w, self.ridge, |p| p),
            TestTestKernel::Diagonal(k) => {
                let (vv, ww) = (column_sq_norms(&v), column_sq_norms(&w));
                let mut clamping = Clamping::default();
                let var = (0..k.len())
                    .map(|j| {
                        let raw = k[j] - vv[j] + self.ridge * ww[j];
                        clamping.clamp(raw, k[j], k[j], j)
                    })
                    .collect::<Result<Array1<f64>>>()?;
                Ok((Covariance::Diagonal(var), clamping))
            }
        }
    }

    /// Number M of centres.
    pub fn centres(&self) -> usize {
        self.l.L().nrows()
    }

    /// The ridge λ (the noise variance of the posterior).
    pub fn ridge(&self) -> f64 {
        self.ridge
    }
}

/// The NTK ensemble's approximate predictive covariance through M Nyström centres
/// (docs/math.md §5 "At scale"): networks trained to t = ∞ from f₀ ~ GP(0, Σ) by the
/// Nyström-restricted regression of Falkon, whose trained function is
/// f(x) = f₀(x) + β_x (Y − f₀(X)) with the Nyström smoother β_x = Θ_xC H⁻¹ Θ_CX,
/// H = Θ_CX Θ_XC + λ Θ_CC (its mean β_x Y is the Falkon NTK regression). Its covariance
///
/// ```text
/// Σ(x, x′) − β_x Σ_Xx′ − β_x′ Σ_Xx + β_x Σ_XX β_x′ᵀ
/// ```
///
/// is evaluated with Σ on the training set replaced by its Nyström approximation through
/// the same centres, Σ_XC Σ_CC⁻¹ Σ_CX (Σ(x, x′) itself is exact). **Approximate**; equal to
/// the exact ensemble covariance ([`super::KernelRegression::ntk_ensemble`]) when C = X.
///
/// In whitened form (Θ_CC = L_Θ L_Θᵀ, Σ_CC = L_Σ L_Σᵀ, A_Θ = L_Θ⁻¹ Θ_CX, A_Σ = L_Σ⁻¹ Σ_CX,
/// B = A_Θ A_Θᵀ + λI, S = A_Σ A_Θᵀ): with w = L_Σ⁻¹ Σ_Cx and z = S B⁻¹ L_Θ⁻¹ Θ_Cx,
/// var(x) = (Σ(x, x) − ‖w‖²) + ‖z − w‖², non-negative by construction (clamped at 0
/// against rounding). Kept: four M×M matrices (L_Θ, L_Σ, the factor of B, S); preparing
/// streams both N × M kernels once (about 5·N·M² flops), nothing N × N.
#[derive(Debug)]
pub struct NystromNtkEnsemble {
    l_ntk: Llt<f64>,
    l_nngp: Llt<f64>,
    b: Llt<f64>,
    s: Mat<f64>,
    ridge: f64,
}

impl NystromNtkEnsemble {
    /// Prepares the covariance from kernel blocks `rows(range)` = (Θ(X\[range\], C),
    /// Σ(X\[range\], C)), `ntk_cc` = Θ(C, C) and `nngp_cc` = Σ(C, C) (M×M, symmetric;
    /// consumed), N training examples and the fit's ridge λ > 0 on Θ.
    pub fn new(
        rows: &mut KernelRowPairs<'_>,
        ntk_cc: Array2<f64>,
        nngp_cc: Array2<f64>,
        n: usize,
        ridge: f64,
        block_rows: usize,
        progress: &mut dyn FnMut(FalkonProgress),
    ) -> Result<Self> {
        check_centre_kernel("ntk_cc", ntk_cc.view())?;
        check_centre_kernel("nngp_cc", nngp_cc.view())?;
        let m = ntk_cc.nrows();
        super::check::dim("rows of nngp_cc (one per centre)", m, nngp_cc.nrows())?;
        check_preparation(n, m, ridge, block_rows)?;
        let l_ntk = jittered_cholesky(ntk_cc, "Θ(C, C)")?;
        let l_nngp = jittered_cholesky(nngp_cc, "Σ(C, C)")?;
        let mut g = Mat::<f64>::zeros(m, m);
        let mut s = Mat::<f64>::zeros(m, m);
        for start in (0..n).step_by(block_rows) {
            let end = (start + block_rows).min(n);
            let (theta, sigma) = (rows)(start..end)?;
            let a_ntk = whiten(
                &l_ntk,
                checked_block(theta, start..end, m, "NTK kernel block Θ(X, C)")?,
            );
            let a_nngp = whiten(
                &l_nngp,
                checked_block(sigma, start..end, m, "NNGP kernel block Σ(X, C)")?,
            );
            let (a_ntk, a_nngp) = (whitened(&a_ntk), whitened(&a_nngp));
            add_gram_lower(&mut g, a_ntk);
            matmul(
                s.as_mut(),
                Accum::Add,
                a_nngp,
                a_ntk.transpose(),
                1.0,
                Par::rayon(0),
            );
            progress(FalkonProgress::Kernel {
                rows_done: end,
                rows: n,
            });
        }
        let b = ridge_cholesky(g, ridge, "L_Θ⁻¹ Θ_CX Θ_XC L_Θ⁻ᵀ")?;
        Ok(NystromNtkEnsemble {
            l_ntk,
            l_nngp,
            b,
            s,
            ridge,
        })
    }

    /// The approximate covariance over test points from Θ(X*, C), Σ(X*, C) (both T × M)
    /// and Σ(X*, X*) in full or its diagonal; variances clamped at 0 and counted.
    pub fn covariance(
        &self,
        ntk_test_centres: ArrayView2<f64>,
        nngp_test_centres: ArrayView2<f64>,
        nngp_test_test: TestTestKernel<'_>,
    ) -> Result<(Covariance, Clamping)> {
        let m = self.centres();
        check_test_centres("ntk_test_centres", ntk_test_centres, m)?;
        check_test_centres("nngp_test_centres", nngp_test_centres, m)?;
        super::check::dim(
            "rows of nngp_test_centres (one per test point, as ntk_test_centres)",
            ntk_test_centres.nrows(),
            nngp_test_centres.nrows(),
        )?;
        super::predictive::check_test_test(&nngp_test_test, ntk_test_centres.nrows())?;
        let mut u = whiten_test(&self.l_ntk, ntk_test_centres);
        solve_lower_triangular_in_place(self.b.L(), u.as_mut(), Par::rayon(0));
        solve_upper_triangular_in_place(self.b.L().transpose(), u.as_mut(), Par::rayon(0));
        let w = whiten_test(&self.l_nngp, nngp_test_centres);
        // d = z − w = S B⁻¹ v − w
        let mut d = Mat::<f64>::zeros(m, u.ncols());
        matmul(
            d.as_mut(),
            Accum::Replace,
            self.s.as_ref(),
            u.as_ref(),
            1.0,
            Par::rayon(0),
        );
        for j in 0..d.ncols() {
            for i in 0..m {
                d[(i, j)] -= w[(i, j)];
            }
        }
        match nngp_test_test {
            TestTestKernel::Full(k) => full_covariance(k, &w, &d, 1.0, |_| f64::INFINITY),
            TestTestKernel::Diagonal(k) => {
                let (ww, dd) = (column_sq_norms(&w), column_sq_norms(&d));
                let mut clamping = Clamping::default();
                let var = (0..k.len())
                    .map(|j| clamping.clamp(k[j] - ww[j] + dd[j], k[j], f64::INFINITY, j))
                    .collect::<Result<Array1<f64>>>()?;
                Ok((Covariance::Diagonal(var), clamping))
            }
        }
    }

    /// Number M of centres.
    pub fn centres(&self) -> usize {
        self.l_ntk.L().nrows()
    }

    /// The ridge λ on Θ.
    pub fn ridge(&self) -> f64 {
        self.ridge
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solve::testutil::{dense_solve, gaussian, rel_err, spd};
    use crate::solve::KernelRegression;
    use ndarray::{s, Axis};

    /// The Laplace kernel exp(−‖x − x′‖) on n Gaussian points of R³: its eigenvalues decay
    /// polynomially, like the arc-cosine kernels of relu networks, so K(C, C) stays
    /// well conditioned for the centre counts used here (unlike an RBF Gram, which is
    /// numerically rank-deficient beyond a few dozen points).
    fn laplace(n: usize, seed: u64) -> Array2<f64> {
        let x = gaussian(n, 3, seed);
        Array2::from_shape_fn((n, n), |(i, j)| {
            let d = &x.row(i) - &x.row(j);
            (-d.dot(&d).sqrt()).exp()
        })
    }

    fn tight() -> FalkonOptions {
        FalkonOptions {
            tolerance: 1e-13,
            max_iterations: 500,
            block_rows: 17, // ragged last block
            ..FalkonOptions::default()
        }
    }

    /// Fits with K(X, C) taken from a full kernel `k` and centres `idx`.
    fn fit_on(
        k: &Array2<f64>,
        idx: &[usize],
        y: &Array2<f64>,
        ridge: f64,
        options: &FalkonOptions,
    ) -> Result<Falkon> {
        let k_xc = k.select(Axis(1), idx);
        let k_cc = k_xc.select(Axis(0), idx);
        let mut rows = |r: Range<usize>| Ok(k_xc.slice(s![r, ..]).to_owned());
        Falkon::fit(&mut rows, k_cc, y.view(), ridge, options, &mut |_| {})
    }

    #[test]
    fn all_centres_is_exact_kernel_regression() {
        // M = N: H = K(K + λI) and BBᵀ = H⁻¹ up to the jitter, so CG converges at once.
        // Error budget: jitter N·ε·max diag / λ_min(K + λI) ≈ 80·2.2e-16·5/0.5 ≈ 2e-13,
        // plus N·ε·κ(K + λI)² ≈ 80·2.2e-16·100 ≈ 2e-12 of rounding through the normal
        // equations (κ ≤ (4.5 + 0.5)/0.5 = 10, testutil::spd): 1e-10 leaves ≥ 50×.
        let (n, c) = (80, 3);
        let k = spd(n, 0.5, 1);
        let y = gaussian(n, c, 2);
        let ridge = 1e-2;
        let idx: Vec<usize> = (0..n).collect();
        let falkon = fit_on(&k, &idx, &y, ridge, &tight()).unwrap();
        let exact = KernelRegression::fit(k.view(), y.view(), ridge).unwrap();
        let err = rel_err(falkon.coefficients(), exact.coefficients());
        assert!(err < 1e-10, "relative error {err:e}");
        assert!(falkon.report().converged);
        assert!(falkon.report().iterations <= 3, "{:?}", falkon.report());
    }

    #[test]
    fn fewer_centres_solve_the_nystrom_normal_equations() {
        let (n, c, ridge) = (300, 2, 1e-3);
        let k = laplace(n, 3);
        let y = gaussian(n, c, 4);
        let idx = draw_centres(n, 60, 5);
        let falkon = fit_on(&k, &idx, &y, ridge, &tight()).unwrap();
        assert!(falkon.report().converged, "{:?}", falkon.report());
        // reference: (K_CX K_XC + λ K_CC) α = K_CX Y by Gaussian elimination
        let k_xc = k.select(Axis(1), &idx);
        let k_cc = k_xc.select(Axis(0), &idx);
        let h = k_xc.t().dot(&k_xc) + ridge * &k_cc;
        let reference = dense_solve(h.view(), k_xc.t().dot(&y).view());
        // Compared as predictions on the training set, the quantity the estimator defines
        // (α itself is less well determined along K_CC's small eigenvectors). The CG
        // residual 1e-13 times κ(W) (W = BᵀHB ≈ I; ≤ 10³ for a working preconditioner)
        // bounds the error at 1e-10; the jitter M·ε·max diag ≈ 1e-14 adds nothing visible.
        // Observed: 8e-14.
        let err = rel_err(
            k_xc.dot(&falkon.coefficients()).view(),
            k_xc.dot(&reference).view(),
        );
        assert!(err < 1e-10, "relative error {err:e}");
    }

    #[test]
    fn kept_and_recomputed_kernels_give_the_same_fit() {
        let (n, ridge) = (200, 1e-2);
        let k = laplace(n, 6);
        let y = gaussian(n, 3, 7);
        let idx = draw_centres(n, 50, 8);
        let kept = fit_on(&k, &idx, &y, ridge, &tight()).unwrap();
        let streamed = FalkonOptions {
            cache_bytes: 0,
            ..tight()
        };
        let recomputed = fit_on(&k, &idx, &y, ridge, &streamed).unwrap();
        assert_eq!(
            (kept.report().kept_rows, recomputed.report().kept_rows),
            (n, 0)
        );
        // a budget of three blocks of 17 rows × 50 centres keeps 51 rows, recomputes 149
        let partly = FalkonOptions {
            cache_bytes: 3 * 17 * 50 * 8 + 7,
            ..tight()
        };
        let partial = fit_on(&k, &idx, &y, ridge, &partly).unwrap();
        assert_eq!(partial.report().kept_rows, 51);
        let err = rel_err(partial.coefficients(), kept.coefficients());
        assert!(err < 1e-11, "partly kept: relative error {err:e}");
        // the same arithmetic but for the summation order over blocks: rounding only,
        // ε·κ(W)·iterations ≈ 2e-16·10²·30 ≈ 1e-12 (observed 1e-14)
        let err = rel_err(recomputed.coefficients(), kept.coefficients());
        assert!(err < 1e-11, "relative error {err:e}");
        assert_eq!(kept.report().iterations, recomputed.report().iterations);
    }

    /// Iterations of plain (unpreconditioned) CG on H α = K_CX y to relative residual `tol`.
    fn plain_cg_iterations(h: &Array2<f64>, b: &Array2<f64>, tol: f64) -> usize {
        let b = b.column(0).to_owned();
        let mut x = ndarray::Array1::<f64>::zeros(b.len());
        let mut r = b.clone();
        let mut p = r.clone();
        let mut rr = r.dot(&r);
        let b_norm = rr.sqrt();
        for it in 1..=100_000 {
            let q = h.dot(&p);
            let a = rr / p.dot(&q);
            x.scaled_add(a, &p);
            r.scaled_add(-a, &q);
            let rr_new = r.dot(&r);
            if rr_new.sqrt() <= tol * b_norm {
                return it;
            }
            p = &r + &(rr_new / rr * &p);
            rr = rr_new;
        }
        usize::MAX
    }

    #[test]
    fn the_preconditioner_makes_iterations_few() {
        // A small ridge makes H = K_CX K_XC + λK_CC badly conditioned; Falkon's
        // preconditioner brings W = BᵀHB close to I (Rudi et al. 2017, Thm. 1). The test
        // asks for at least 5× fewer iterations than plain CG on H to the same relative
        // residual (the residuals are of different systems, so this compares rates).
        // Observed: 28 against 525.
        let (n, ridge, tol) = (1000, 1e-4, 1e-10);
        let k = laplace(n, 9);
        let y = gaussian(n, 1, 10);
        let idx = draw_centres(n, 200, 11);
        let options = FalkonOptions {
            tolerance: tol,
            max_iterations: 500,
            ..FalkonOptions::default()
        };
        let mut reported = 0;
        let k_xc = k.select(Axis(1), &idx);
        let k_cc = k_xc.select(Axis(0), &idx);
        let mut rows = |r: Range<usize>| Ok(k_xc.slice(s![r, ..]).to_owned());
        let falkon = Falkon::fit(
            &mut rows,
            k_cc.clone(),
            y.view(),
            ridge,
            &options,
            &mut |p| {
                if let FalkonProgress::Iteration { iteration, .. } = p {
                    reported = iteration;
                }
            },
        )
        .unwrap();
        let report = falkon.report();
        let h = k_xc.t().dot(&k_xc) + ridge * &k_cc;
        let plain = plain_cg_iterations(&h, &k_xc.t().dot(&y), tol);
        assert!(
            report.converged && 5 * report.iterations <= plain,
            "{report:?}, plain CG: {plain}"
        );
        assert_eq!(reported, report.iterations);
    }

    #[test]
    fn a_cap_on_iterations_is_reported_not_hidden() {
        let (n, ridge) = (300, 1e-6);
        let k = laplace(n, 12);
        let y = gaussian(n, 1, 13);
        let idx = draw_centres(n, 100, 14);
        let options = FalkonOptions {
            tolerance: 1e-14,
            max_iterations: 2,
            ..FalkonOptions::default()
        };
        let falkon = fit_on(&k, &idx, &y, ridge, &options).unwrap();
        let report = falkon.report();
        assert_eq!(report.iterations, 2);
        assert!(
            !report.converged && report.relative_residual > 1e-14,
            "{report:?}"
        );
    }

    #[test]
    fn centres_are_distinct_sorted_and_seeded() {
        let a = draw_centres(1000, 100, 1);
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[99] < 1000);
        assert_eq!(a, draw_centres(1000, 100, 1));
        assert_ne!(a, draw_centres(1000, 100, 2));
        assert_eq!(draw_centres(5, 9, 0), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        let n = 30;
        let k = spd(n, 0.5, 15);
        let y = gaussian(n, 1, 16);
        let idx = draw_centres(n, 10, 17);
        let invalid = |r: Result<Falkon>, field: &str| match r {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, field),
            other => panic!("expected InvalidArgument({field}), got {other:?}"),
        };
        for ridge in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            invalid(fit_on(&k, &idx, &y, ridge, &tight()), "ridge");
        }
        let o = FalkonOptions::default();
        for (options, field) in [
            (
                FalkonOptions {
                    centres: 0,
                    ..o.clone()
                },
                "centres",
            ),
            (
                FalkonOptions {
                    max_iterations: 0,
                    ..o.clone()
                },
                "max_iterations",
            ),
            (
                FalkonOptions {
                    tolerance: 0.0,
                    ..o.clone()
                },
                "tolerance",
            ),
            (
                FalkonOptions {
                    tolerance: 1.0,
                    ..o.clone()
                },
                "tolerance",
            ),
            (
                FalkonOptions {
                    tolerance: f64::NAN,
                    ..o.clone()
                },
                "tolerance",
            ),
            (
                FalkonOptions {
                    block_rows: 0,
                    ..o.clone()
                },
                "block_rows",
            ),
        ] {
            invalid(fit_on(&k, &idx, &y, 1e-2, &options), field);
        }
        // a block with a NaN, a block of the wrong shape, targets with NaN
        let k_cc = k.select(Axis(1), &idx).select(Axis(0), &idx);
        let mut nan_rows = |r: Range<usize>| {
            let mut b = k.select(Axis(1), &idx).slice(s![r, ..]).to_owned();
            b[[0, 0]] = f64::NAN;
            Ok(b)
        };
        let r = Falkon::fit(&mut nan_rows, k_cc.clone(), y.view(), 1e-2, &o, &mut |_| {});
        assert!(matches!(r, Err(Error::NonFinite { .. })), "{r:?}");
        let mut short_rows = |r: Range<usize>| Ok(Array2::zeros((r.len(), 3)));
        let r = Falkon::fit(
            &mut short_rows,
            k_cc.clone(),
            y.view(),
            1e-2,
            &o,
            &mut |_| {},
        );
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
        let mut y_nan = y.clone();
        y_nan[[3, 0]] = f64::NAN;
        assert!(fit_on(&k, &idx, &y_nan, 1e-2, &o).is_err());
        // more centres than examples
        let big = spd(40, 0.5, 18);
        let mut rows = |r: Range<usize>| Ok(Array2::zeros((r.len(), 40)));
        let r = Falkon::fit(&mut rows, big, y.view(), 1e-2, &o, &mut |_| {});
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
    }

    // ---- approximate predictive variance ------------------------------------------------

    /// The Laplace kernel on n + t points and its Σ-like companion exp(−‖x − x′‖²/8) + 0.1
    /// (a different positive-definite kernel, standing in for Σ beside Θ), split into
    /// train (first n) and test (last t) blocks.
    struct Split {
        train: Array2<f64>,
        test_train: Array2<f64>,
        test_test: Array2<f64>,
    }

    fn split(k: &Array2<f64>, n: usize) -> Split {
        Split {
            train: k.slice(s![..n, ..n]).to_owned(),
            test_train: k.slice(s![n.., ..n]).to_owned(),
            test_test: k.slice(s![n.., n..]).to_owned(),
        }
    }

    fn kernels(n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
        let x = gaussian(n, 3, seed);
        let lap = Array2::from_shape_fn((n, n), |(i, j)| {
            let d = &x.row(i) - &x.row(j);
            (-d.dot(&d).sqrt()).exp()
        });
        let other = Array2::from_shape_fn((n, n), |(i, j)| {
            let d = &x.row(i) - &x.row(j);
            (-d.dot(&d) / 8.0).exp() + 0.1
        });
        (lap, other)
    }

    fn gp_on(k: &Split, idx: &[usize], ridge: f64, block_rows: usize) -> Result<NystromGp> {
        let k_xc = k.train.select(Axis(1), idx);
        let k_cc = k_xc.select(Axis(0), idx);
        let mut rows = |r: Range<usize>| Ok(k_xc.slice(s![r, ..]).to_owned());
        NystromGp::new(
            &mut rows,
            k_cc,
            k.train.nrows(),
            ridge,
            block_rows,
            &mut |_| {},
        )
    }

    fn ntk_on(
        theta: &Split,
        sigma: &Split,
        idx: &[usize],
        ridge: f64,
    ) -> Result<NystromNtkEnsemble> {
        let t_xc = theta.train.select(Axis(1), idx);
        let s_xc = sigma.train.select(Axis(1), idx);
        let (t_cc, s_cc) = (t_xc.select(Axis(0), idx), s_xc.select(Axis(0), idx));
        let mut rows = |r: Range<usize>| {
            Ok((
                t_xc.slice(s![r.clone(), ..]).to_owned(),
                s_xc.slice(s![r, ..]).to_owned(),
            ))
        };
        NystromNtkEnsemble::new(
            &mut rows,
            t_cc,
            s_cc,
            theta.train.nrows(),
            ridge,
            13,
            &mut |_| {},
        )
    }

    fn diag_of(c: &Covariance) -> ndarray::Array1<f64> {
        c.variances()
    }

    fn max_abs_diff(a: &ndarray::Array1<f64>, b: &ndarray::Array1<f64>) -> f64 {
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
    }

    #[test]
    fn every_input_a_centre_gives_the_exact_gp_posterior_variance() {
        // C = X: k − k K⁻¹ k + λ k K⁻¹(K + λI)⁻¹ k = k − k (K + λI)⁻¹ k, since
        // K⁻¹ − λK⁻¹(K + λI)⁻¹ = K⁻¹(K + λI − λI)(K + λI)⁻¹ (docs/math.md §5 "At scale").
        // Budget, relative to max k(x, x) = 1 (the scale the variances are read on): the
        // jitter δ = N·ε·max diag ≈ 2e-14 moves the result by O(δ/λ) ≈ 2e-12, as it moves the
        // regression coefficients (all_centres_is_exact_kernel_regression), and each of the
        // subtractions costs ε·κ(K + λI)·k ≲ 2e-16·10³; asserted 1e-9 (≥ 100× margin).
        // Observed: 9.5e-15 (diagonal), 1.0e-14 (full).
        let (n, t, ridge) = (80, 25, 1e-2);
        let (lap, _) = kernels(n + t, 21);
        let k = split(&lap, n);
        let idx: Vec<usize> = (0..n).collect();
        let gp = gp_on(&k, &idx, ridge, 17).unwrap();
        let y = gaussian(n, 1, 22);
        let exact = KernelRegression::fit(k.train.view(), y.view(), ridge).unwrap();
        let diag = k.test_test.diag().to_owned();
        let reference = exact
            .gp_posterior(k.test_train.view(), TestTestKernel::Diagonal(diag.view()))
            .unwrap()
            .covariance
            .variances();
        let k_tc = k.test_train.select(Axis(1), &idx);
        let (approx, clamping) = gp
            .covariance(k_tc.view(), TestTestKernel::Diagonal(diag.view()))
            .unwrap();
        let err = max_abs_diff(&diag_of(&approx), &reference);
        eprintln!("observed GP, C = X diagonal: {err:e}");
        assert!(err < 1e-9, "diagonal: {err:e}");
        assert_eq!(clamping.count, 0);
        // the full covariance, and its diagonal against the diagonal route
        let full_ref = exact
            .gp_posterior(
                k.test_train.view(),
                TestTestKernel::Full(k.test_test.view()),
            )
            .unwrap()
            .covariance;
        let (full, _) = gp
            .covariance(k_tc.view(), TestTestKernel::Full(k.test_test.view()))
            .unwrap();
        let err = rel_err(full.full().unwrap().view(), full_ref.full().unwrap().view());
        eprintln!("observed GP, C = X full: {err:e}");
        assert!(err < 1e-9, "full: {err:e}");
        assert!(max_abs_diff(&full.variances(), &diag_of(&approx)) < 1e-12);
    }

    /// The DTC variance by Gaussian elimination (shares no code with NystromGp).
    fn dense_dtc(k: &Split, idx: &[usize], ridge: f64) -> ndarray::Array1<f64> {
        let k_xc = k.train.select(Axis(1), idx);
        let k_cc = k_xc.select(Axis(0), idx);
        let k_tc = k.test_train.select(Axis(1), idx);
        let h = k_xc.t().dot(&k_xc) + ridge * &k_cc;
        let q = dense_solve(k_cc.view(), k_tc.t());
        let p = dense_solve(h.view(), k_tc.t());
        let mut var = k.test_test.diag().to_owned();
        for j in 0..var.len() {
            var[j] += -k_tc.row(j).dot(&q.column(j)) + ridge * k_tc.row(j).dot(&p.column(j));
        }
        var
    }

    #[test]
    fn fewer_centres_give_the_dense_dtc_variance_within_bounds() {
        // Reference: the DTC formula by Gaussian elimination on K_CC and H = K_CX K_XC + λK_CC
        // (no Cholesky, no whitening, no jitter). Both routes lose O(ε·κ(K_CC)) in the
        // subtraction k − k K_CC⁻¹ k and the reference O(ε·κ(H)) in λ k H⁻¹ k, while the
        // jitter moves ours by O(δ/λ) ≈ 1e-14/1e-3; for M = 60 Laplace centres these stay
        // far below 1e-9 of max k(x, x) = 1, the bound asserted. Observed: 7.2e-15.
        let (n, t, ridge) = (300, 40, 1e-3);
        let (lap, _) = kernels(n + t, 23);
        let k = split(&lap, n);
        let idx = draw_centres(n, 60, 24);
        let gp = gp_on(&k, &idx, ridge, 64).unwrap();
        let k_tc = k.test_train.select(Axis(1), &idx);
        let diag = k.test_test.diag().to_owned();
        let (var, clamping) = gp
            .covariance(k_tc.view(), TestTestKernel::Diagonal(diag.view()))
            .unwrap();
        let var = var.variances();
        let err = max_abs_diff(&var, &dense_dtc(&k, &idx, ridge));
        eprintln!("observed GP, M < N {err:e}");
        assert!(err < 1e-9, "{err:e}");
        assert_eq!(clamping.count, 0);
        // 0 ≤ var ≤ k(x, x), and strictly inside for these test points
        assert!(var.iter().zip(&diag).all(|(&v, &p)| v > 0.0 && v < p));
    }

    #[test]
    fn variances_stay_in_bounds_at_training_points_with_a_tiny_ridge() {
        // Test points that are centres, λ = 1e-10: the exact variance k − Q + λ(…) is
        // ~1e-10, the size of the rounding, so clamping may act; every variance ends in
        // [0, k(x, x)], finite, and the clamp count is reported.
        let (n, ridge) = (120, 1e-10);
        let (lap, _) = kernels(n, 25);
        let idx = draw_centres(n, 40, 26);
        let k = Split {
            train: lap.clone(),
            test_train: lap.select(Axis(0), &idx),
            test_test: lap.select(Axis(0), &idx).select(Axis(1), &idx),
        };
        let gp = gp_on(&k, &idx, ridge, 50).unwrap();
        let k_tc = k.test_train.select(Axis(1), &idx);
        let diag = k.test_test.diag().to_owned();
        let (var, clamping) = gp
            .covariance(k_tc.view(), TestTestKernel::Diagonal(diag.view()))
            .unwrap();
        let var = var.variances();
        assert!(var
            .iter()
            .zip(&diag)
            .all(|(&v, &p)| v.is_finite() && (0.0..=p).contains(&v)));
        // at a centre the DTC variance is λ k_xC H⁻¹ k_Cx ≤ λ·(something ≤ 1/λ_min): tiny
        assert!(var.iter().all(|&v| v < 1e-6), "{var:?}");
        eprintln!(
            "tiny ridge: {clamping:?}, max variance {:e}",
            var.iter().fold(0.0f64, |m, v| m.max(*v))
        );
        assert!(
            clamping.count <= var.len() && clamping.largest < 1e-8,
            "{clamping:?}"
        );
    }

    #[test]
    fn every_input_a_centre_gives_the_exact_ntk_ensemble_covariance() {
        // C = X reproduces KernelRegression::ntk_ensemble (docs/math.md §5 "At scale"):
        // the same budget as the GP case with two jittered factors (Θ_CC, Σ_CC), relative
        // to max |cov|; asserted 1e-9. Observed: 8.3e-13 (full), 3.0e-13 (diagonal).
        let (n, t, ridge) = (70, 20, 1e-2);
        let (theta, sigma) = kernels(n + t, 27);
        let (theta, sigma) = (split(&theta, n), split(&sigma, n));
        let idx: Vec<usize> = (0..n).collect();
        let ens = ntk_on(&theta, &sigma, &idx, ridge).unwrap();
        let y = gaussian(n, 1, 28);
        let exact = KernelRegression::fit(theta.train.view(), y.view(), ridge).unwrap();
        let reference = exact
            .ntk_ensemble(
                theta.test_train.view(),
                sigma.test_train.view(),
                sigma.train.view(),
                TestTestKernel::Full(sigma.test_test.view()),
            )
            .unwrap()
            .covariance;
        let (full, _) = ens
            .covariance(
                theta.test_train.view(),
                sigma.test_train.view(),
                TestTestKernel::Full(sigma.test_test.view()),
            )
            .unwrap();
        let err = rel_err(
            full.full().unwrap().view(),
            reference.full().unwrap().view(),
        );
        eprintln!("observed NTK, C = X full: {err:e}");
        assert!(err < 1e-9, "full: {err:e}");
        let diag = sigma.test_test.diag().to_owned();
        let (var, clamping) = ens
            .covariance(
                theta.test_train.view(),
                sigma.test_train.view(),
                TestTestKernel::Diagonal(diag.view()),
            )
            .unwrap();
        let scale = reference.variances().iter().fold(0.0f64, |m, v| m.max(*v));
        let err = max_abs_diff(&var.variances(), &reference.variances()) / scale;
        eprintln!("observed NTK, C = X diagonal: {err:e}");
        assert!(err < 1e-9, "diagonal: {err:e}");
        assert_eq!(clamping.count, 0);
    }

    #[test]
    fn fewer_centres_give_the_dense_nystrom_ntk_ensemble_covariance() {
        // Reference, densely: β = Θ_*C H⁻¹ Θ_CX (T×N), Q = Σ_XC Σ_CC⁻¹ Σ_CX, cov =
        // Σ** − β Q_X* − (β Q_X*)ᵀ + β Q βᵀ with Q_X* = Σ_XC Σ_CC⁻¹ Σ_C*, by Gaussian
        // elimination (Σ_CC⁻¹ and H⁻¹ applied to N columns: the reference's own rounding,
        // ε·κ(Σ_CC)·κ(H)-ish, dominates). Asserted 1e-9 of max |cov|; observed 3.8e-11.
        let (n, t, ridge) = (250, 30, 1e-3);
        let (theta, sigma) = kernels(n + t, 29);
        let (theta, sigma) = (split(&theta, n), split(&sigma, n));
        let idx = draw_centres(n, 50, 30);
        let ens = ntk_on(&theta, &sigma, &idx, ridge).unwrap();
        let t_xc = theta.train.select(Axis(1), &idx);
        let t_cc = t_xc.select(Axis(0), &idx);
        let t_tc = theta.test_train.select(Axis(1), &idx);
        let s_xc = sigma.train.select(Axis(1), &idx);
        let s_cc = s_xc.select(Axis(0), &idx);
        let s_tc = sigma.test_train.select(Axis(1), &idx);
        let h = t_xc.t().dot(&t_xc) + ridge * &t_cc;
        let beta = dense_solve(h.view(), t_tc.t()).t().dot(&t_xc.t()); // T×N
        let q_xt = s_xc.dot(&dense_solve(s_cc.view(), s_tc.t())); // N×T
        let q_xx = s_xc.dot(&dense_solve(s_cc.view(), s_xc.t()));
        let bq = beta.dot(&q_xt);
        let reference = &sigma.test_test - &bq - bq.t() + beta.dot(&q_xx).dot(&beta.t());
        let (full, _) = ens
            .covariance(
                t_tc.view(),
                s_tc.view(),
                TestTestKernel::Full(sigma.test_test.view()),
            )
            .unwrap();
        let err = rel_err(full.full().unwrap().view(), reference.view());
        eprintln!("observed NTK, M < N {err:e}");
        assert!(err < 1e-9, "{err:e}");
        assert!(full.variances().iter().all(|&v| v > 0.0));
    }

    #[test]
    fn clamping_moves_rounding_onto_the_bounds_and_counts_it() {
        let mut c = Clamping::default();
        assert_eq!(c.clamp(0.25, 1.0, 1.0, 0).unwrap(), 0.25);
        assert_eq!(c, Clamping::default());
        assert_eq!(c.clamp(-1e-12, 2.0, 2.0, 1).unwrap(), 0.0);
        assert_eq!(c.clamp(2.5, 2.0, 2.0, 2).unwrap(), 2.0);
        assert_eq!(c.clamp(5.0, 2.0, f64::INFINITY, 3).unwrap(), 5.0);
        assert_eq!(c.count, 2);
        assert_eq!(c.largest, 0.25, "{c:?}");
        let r = c.clamp(f64::NAN, 1.0, 1.0, 4);
        assert!(matches!(r, Err(Error::NonFinite { row: 4, .. })), "{r:?}");
    }

    #[test]
    fn variance_inputs_are_checked_with_typed_errors() {
        let (n, t) = (40, 5);
        let (lap, other) = kernels(n + t, 31);
        let (k, s2) = (split(&lap, n), split(&other, n));
        let idx = draw_centres(n, 10, 32);
        for ridge in [0.0, -1.0, f64::NAN] {
            assert!(matches!(
                gp_on(&k, &idx, ridge, 8),
                Err(Error::InvalidArgument { name: "ridge", .. })
            ));
            assert!(matches!(
                ntk_on(&k, &s2, &idx, ridge),
                Err(Error::InvalidArgument { name: "ridge", .. })
            ));
        }
        assert!(matches!(
            gp_on(&k, &idx, 1e-2, 0),
            Err(Error::InvalidArgument {
                name: "block_rows",
                ..
            })
        ));
        // blocks of the wrong width, or with a NaN
        let k_cc = k.train.select(Axis(0), &idx).select(Axis(1), &idx);
        let mut narrow = |r: Range<usize>| Ok(Array2::zeros((r.len(), 3)));
        let r = NystromGp::new(&mut narrow, k_cc.clone(), n, 1e-2, 8, &mut |_| {});
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
        let mut nan = |r: Range<usize>| {
            let mut b = Array2::zeros((r.len(), 10));
            b[[0, 0]] = f64::NAN;
            Ok(b)
        };
        let r = NystromGp::new(&mut nan, k_cc.clone(), n, 1e-2, 8, &mut |_| {});
        assert!(matches!(r, Err(Error::NonFinite { .. })), "{r:?}");
        let gp = gp_on(&k, &idx, 1e-2, 8).unwrap();
        let k_tc = k.test_train.select(Axis(1), &idx);
        let diag = k.test_test.diag().to_owned();
        let short = diag.slice(s![..t - 1]);
        for r in [
            gp.covariance(k.test_train.view(), TestTestKernel::Diagonal(diag.view())),
            gp.covariance(k_tc.view(), TestTestKernel::Diagonal(short)),
            gp.covariance(
                k_tc.view(),
                TestTestKernel::Full(k.test_test.slice(s![..2, ..2])),
            ),
        ] {
            assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
        }
        let mut bad = k_tc.clone();
        bad[[1, 2]] = f64::INFINITY;
        let r = gp.covariance(bad.view(), TestTestKernel::Diagonal(diag.view()));
        assert!(matches!(r, Err(Error::NonFinite { .. })), "{r:?}");
        let mut bad_diag = diag.clone();
        bad_diag[0] = f64::NAN;
        let r = gp.covariance(k_tc.view(), TestTestKernel::Diagonal(bad_diag.view()));
        assert!(matches!(r, Err(Error::NonFinite { .. })), "{r:?}");
        let ens = ntk_on(&k, &s2, &idx, 1e-2).unwrap();
        let s_tc = s2.test_train.select(Axis(1), &idx);
        let r = ens.covariance(
            k_tc.view(),
            s_tc.slice(s![..2, ..]),
            TestTestKernel::Diagonal(diag.view()),
        );
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{r:?}");
    }
}
