//! Exact parallelism of two input rows (docs/math.md §5, "Exactly parallel inputs").
use crate::program::Parallel;

/// Whether `t = α·x` for some α ≠ 0, up to the rounding of the inputs themselves
/// (each component within 4 ulps). Called only for pairs whose correlation is within
/// 1e-9 of ±1, so its O(d) cost is paid rarely.
pub fn parallel_rows(x: &[f64], t: &[f64]) -> Parallel {
    let Some((k, &xk)) = x
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
    else {
        return Parallel::Unknown;
    };
    if xk == 0.0 || t[k] == 0.0 {
        return Parallel::Unknown;
    }
    let alpha = t[k] / xk;
    let tol = 4.0 * f64::EPSILON;
    let exact = x.iter().zip(t).all(|(&xi, &ti)| {
        let scaled = alpha * xi;
        (ti - scaled).abs() <= tol * (ti.abs() + scaled.abs())
    });
    match (exact, alpha > 0.0) {
        (false, _) => Parallel::Unknown,
        (true, true) => Parallel::Positive,
        (true, false) => Parallel::Negative,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_multiples_and_rejects_near_misses() {
        let x = [0.3, -1.7, 2.5, 0.0];
        let twice: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
        let neg: Vec<f64> = x.iter().map(|v| -0.3 * v).collect();
        assert_eq!(parallel_rows(&x, &x), Parallel::Positive);
        assert_eq!(parallel_rows(&x, &twice), Parallel::Positive);
        assert_eq!(parallel_rows(&x, &neg), Parallel::Negative);
        let mut off = twice.clone();
        off[0] += 1e-9;
        assert_eq!(parallel_rows(&x, &off), Parallel::Unknown);
        assert_eq!(parallel_rows(&[0.0, 0.0], &[0.0, 0.0]), Parallel::Unknown);
        // A zero where the other row is not zero breaks parallelism.
        assert_eq!(
            parallel_rows(&x, &[0.6, -3.4, 5.0, 1e-300]),
            Parallel::Unknown
        );
    }
}
