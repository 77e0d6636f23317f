//! erf: finite forward pass and its dual kernels.

/// The error function (libm's, correctly rounded to ~1 ulp).
#[inline]
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}
