//! Overflow guards of the Gram evaluation: the input kernel ‖x‖²/d and ⟨x, x'⟩/d computed
//! without avoidable overflow, and a cheap finiteness test of computed kernel rows.
//!
//! Rows whose entries are all within [2⁻³⁰⁰, 2³⁰⁰] in magnitude (every practical input)
//! take the plain path, bit for bit as before; others are scaled by an exact power of two
//! before squaring, so that only results that are themselves beyond f64 overflow.

use ndarray::{Array2, ArrayView1, ArrayView2};

/// Magnitudes beyond which (or, when non-zero, below the reciprocal of which) squares and
/// products are scaled: 2³⁰⁰ squared times any realistic dimension stays far below f64::MAX.
const PLAIN: f64 = 2.037035976334486e90; // 2^300

/// 2^e for -1022 ≤ e ≤ 1023, exactly.
fn pow2(e: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&e));
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// v·2^e for |e| ≤ 2044, in two exact halves so that neither factor over- or underflows;
/// the product overflows only if the true result does.
pub fn mul_pow2(v: f64, e: i32) -> f64 {
    let h = e / 2;
    v * pow2(h) * pow2(e - h)
}

/// Whether a magnitude needs scaling before it is squared.
fn needs_scaling(max_abs: f64) -> bool {
    max_abs > PLAIN || (max_abs > 0.0 && max_abs < 1.0 / PLAIN)
}

/// The exponent e with max_abs·2^-e of order 1 (0 when no scaling is needed).
pub fn scale_exponent(max_abs: f64) -> i32 {
    if needs_scaling(max_abs) {
        (max_abs.log2().floor() as i32 + 1).clamp(-1022, 1023)
    } else {
        0
    }
}

fn max_abs<'a>(v: impl IntoIterator<Item = &'a f64>) -> f64 {
    v.into_iter().fold(0.0, |m: f64, &x| m.max(x.abs()))
}

/// ‖x‖²/d, computed without overflow unless the result itself overflows.
pub fn mean_square(row: ArrayView1<f64>) -> f64 {
    let inv_d = 1.0 / row.len() as f64;
    let e = scale_exponent(max_abs(row.iter()));
    if e == 0 {
        return row.dot(&row) * inv_d;
    }
    let s: f64 = row.iter().map(|&v| mul_pow2(v, -e).powi(2)).sum();
    mul_pow2(s * inv_d, 2 * e)
}

/// The matrix scaled by 2^-e so that its largest magnitude is of order 1, with e; `None`
/// when no scaling is needed.
pub fn scaled(a: ArrayView2<f64>) -> Option<(Array2<f64>, i32)> {
    let e = scale_exponent(max_abs(a.iter()));
    (e != 0).then(|| (a.mapv(|v| mul_pow2(v, -e)), e))
}

/// Whether every value is finite: a branch-free fold of the exponent bits that the
/// compiler vectorises, cheap next to the kernel row that was just computed.
#[inline]
pub fn all_finite(s: &[f64]) -> bool {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    s.iter()
        .fold(0u64, |acc, v| acc | ((v.to_bits() & EXP == EXP) as u64))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    #[test]
    fn mean_square_does_not_overflow_when_the_result_is_representable() {
        let base = Array1::from(vec![0.5, -1.25, 2.0, 1.0]);
        let plain = mean_square(base.view());
        for s in [1e154, 1e-150, 3.0e100] {
            let big = base.mapv(|v| v * s);
            let q = mean_square(big.view());
            // Scaling by 2^e is exact; the only roundings are the squares' and the sum's.
            let want = plain * s * s;
            assert!(
                ((q - want) / want).abs() < 8.0 * f64::EPSILON,
                "{s}: {q} vs {want}"
            );
        }
        // Beyond f64 the result overflows, as it must.
        assert!(mean_square(base.mapv(|v| v * 1e160).view()).is_infinite());
    }

    #[test]
    fn mul_pow2_spans_the_whole_exponent_range() {
        assert_eq!(mul_pow2(0.75, 1024), 0.75 * 2f64.powi(512) * 2f64.powi(512));
        assert_eq!(mul_pow2(1.0, -1074), f64::from_bits(1));
        assert_eq!(mul_pow2(3.0, 0), 3.0);
    }

    #[test]
    fn all_finite_finds_any_nan_or_infinity() {
        let mut v = vec![1.0; 37];
        assert!(all_finite(&v));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            v[23] = bad;
            assert!(!all_finite(&v));
        }
    }
}
