//! Test helpers for the solvers: seeded random matrices and a dense reference solver that
//! shares no code with the library (Gaussian elimination with partial pivoting).

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// An n×m matrix of iid N(0,1) entries, seeded.
pub(crate) fn gaussian(n: usize, m: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_fn((n, m), |_| StandardNormal.sample(&mut rng))
}

/// K = B Bᵀ / n + shift·I with B n×n Gaussian: SPD with eigenvalues in
/// [shift, shift + (1 + 1)²] (Marchenko–Pastur edge 4 for a square Wishart; in practice ≤ ~4.5),
/// so its condition number is at most about (shift + 4.5) / shift.
pub(crate) fn spd(n: usize, shift: f64, seed: u64) -> Array2<f64> {
    let b = gaussian(n, n, seed);
    let mut k = b.dot(&b.t()) / n as f64;
    for i in 0..n {
        k[[i, i]] += shift;
    }
    // exact symmetry (the product above is symmetric up to rounding of the summation order)
    let kt = k.t().to_owned();
    (&k + &kt) / 2.0
}

/// Solves A X = B by Gaussian elimination with partial pivoting (reference only).
pub(crate) fn dense_solve(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut a = a.to_owned();
    let mut b = b.to_owned();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| a[[i, col]].abs().total_cmp(&a[[j, col]].abs()))
            .unwrap();
        if piv != col {
            for j in 0..n {
                a.swap([col, j], [piv, j]);
            }
            for j in 0..b.ncols() {
                b.swap([col, j], [piv, j]);
            }
        }
        for i in col + 1..n {
            let f = a[[i, col]] / a[[col, col]];
            for j in col..n {
                a[[i, j]] -= f * a[[col, j]];
            }
            for j in 0..b.ncols() {
                b[[i, j]] -= f * b[[col, j]];
            }
        }
    }
    for i in (0..n).rev() {
        for j in 0..b.ncols() {
            let mut s = b[[i, j]];
            for k in i + 1..n {
                s -= a[[i, k]] * b[[k, j]];
            }
            b[[i, j]] = s / a[[i, i]];
        }
    }
    b
}

/// max |a − b| / max(max |b|, tiny): the relative error measure used by the solver tests.
pub(crate) fn rel_err(a: ArrayView2<f64>, b: ArrayView2<f64>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    let scale = b.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b.iter())
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}
