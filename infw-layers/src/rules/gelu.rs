//! gelu, exact: φ(u) = u·Φ(u), φ'(u) = Φ(u) + u·ϕ(u) (Φ, ϕ the Gaussian CDF and density).
//!
//! E\[φφ\] and E[φ'φ'] in closed form, as neural-tangents 0.6.5 implements `stax.Gelu`
//! (Tsuchida et al. 2020), with Δ² = (1+a)(1+b) − c²:
//! ```text
//! E[φφ]   = c/4 + [ (c² + ab Δ²)/((1+a)(1+b) Δ) + c·atan2(c, Δ) ] / (2π)
//! E[φ'φ'] = 1/4 + atan2(c, Δ)/(2π) + c/(2πΔ) · (1/Δ² + (1 − ab)/((1+a)(1+b)) + 1)
//! ```
//! evaluated in a scaled form that neither overflows nor cancels (a, b up to 1e300): with
//! p = a/(1+a), q = b/(1+b), α = 1/(1+a), β = 1/(1+b), s = √((1+a)(1+b)), r = c/s = ρ√(pq)
//! and w = Δ/s = √((1−ρ²)pq + α + βp) (≥ √α > 0, so there is no singularity):
//! ```text
//! E[φφ]   = c/4 + s·( r²/(s² w) + pq·w + r·asin r ) / (2π)
//! E[φ'φ'] = 1/4 + asin r/(2π) + r·(αβ/w² + αβ + α + βp) / (2π w)
//! ```
//! S and D have no closed form: the numerical engine (docs/math.md §6), with the sign
//! changes of φ at 0 and of φ' at u₀ ≈ −0.75179.
use crate::dual::{DiagDual, Dual, PairDual};
use crate::pair::{Parallel, Want};
use crate::real::{F64x4, Real};
use crate::rule::Rule;
use crate::rules::numerical::{
    carry, gather_points, pair_moments, per_lane, splat_point, Fun, NumPoint, Parity, SignChanges,
};
use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// The root of gelu'(u) = Φ(u) + u ϕ(u) (40-digit mpmath `findroot`, rounded to f64).
pub const GELU_DERIVATIVE_ROOT: f64 = -0.751_791_524_693_564_5;

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Φ(u), accurate in both tails.
#[inline]
fn cdf(u: f64) -> f64 {
    0.5 * libm::erfc(-u * FRAC_1_SQRT_2)
}

fn gelu(u: f64) -> f64 {
    u * cdf(u)
}

fn gelu_derivative(u: f64) -> f64 {
    cdf(u) + u * INV_SQRT_2PI * (-0.5 * u * u).exp()
}

/// The exact gelu layer rule (neural-tangents' `Gelu(approximate=False)`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gelu;

impl Gelu {
    /// φ for the numerical engine.
    pub const PHI: Fun<'static> = Fun {
        f: gelu,
        changes: SignChanges::Known(&[0.0]),
        parity: Parity::Neither,
        smooth: true,
    };
    /// φ' for the numerical engine.
    pub const DPHI: Fun<'static> = Fun {
        f: gelu_derivative,
        changes: SignChanges::Known(&[GELU_DERIVATIVE_ROOT]),
        parity: Parity::Neither,
        smooth: true,
    };
}

/// The closed forms E\[φφ\] and E[φ'φ'] of the module doc; ρ = ±1 exactly when parallel.
pub fn closed_form(a: f64, b: f64, c: f64, parallel: Parallel) -> (f64, f64) {
    let a = if a > 0.0 { a } else { 0.0 };
    let b = if b > 0.0 { b } else { 0.0 };
    let (sa, sb) = (a.sqrt(), b.sqrt());
    let rho = match parallel {
        Parallel::Positive => 1.0,
        Parallel::Negative => -1.0,
        Parallel::Unknown if sa > 0.0 && sb > 0.0 => {
            // As `Angle` does (c·a^{-1/2}·b^{-1/2}), so that near ±1 both see the same ρ.
            let r = c * (1.0 / sa) * (1.0 / sb);
            if r.is_nan() {
                0.0
            } else {
                r.clamp(-1.0, 1.0)
            }
        }
        Parallel::Unknown => 0.0,
    };
    let c = rho * sa * sb;
    let (alpha, beta) = (1.0 / (1.0 + a), 1.0 / (1.0 + b));
    let (p, q) = (a * alpha, b * beta);
    let s = (1.0 + a).sqrt() * (1.0 + b).sqrt();
    let r = (rho * p.sqrt() * q.sqrt()).clamp(-1.0, 1.0);
    let w = ((1.0 - rho) * (1.0 + rho) * p * q + alpha + beta * p).sqrt();
    let asin_r = r.asin();
    let phi = 0.25 * c + s * ((r / s) * (r / (s * w)) + p * q * w + r * asin_r) / (2.0 * PI);
    let ab = alpha * beta;
    let dphi =
        0.25 + asin_r / (2.0 * PI) + r * (ab / (w * w) + ab + alpha + beta * p) / (2.0 * PI * w);
    (phi, dphi)
}

impl Dual for Gelu {
    type Point<T: Real> = NumPoint<T>;

    fn point(&self, a: f64) -> (DiagDual, NumPoint) {
        let (phi, dphi) = closed_form(a, a, a, Parallel::Positive);
        (DiagDual { phi, dphi }, NumPoint::new(a))
    }

    fn gather(points: [&NumPoint; 4]) -> NumPoint<F64x4> {
        gather_points(points)
    }

    fn splat(point: &NumPoint) -> NumPoint<F64x4> {
        splat_point(point)
    }

    fn pair<T: Real>(
        &self,
        a: &NumPoint<T>,
        b: &NumPoint<T>,
        c: T,
        parallel: Parallel,
        want: Want,
    ) -> PairDual<T> {
        let out_parallel = carry(Parity::Neither, parallel, a.var.var.all_eq(b.var.var));
        per_lane(&a.var, &b.var, c, out_parallel, |a, b, c| {
            let (phi, dphi) = closed_form(a, b, c, parallel);
            let numerical = Want {
                nngp: false,
                ntk: false,
                ..want
            };
            let mut out = if want.readout || want.hidden {
                pair_moments(&Gelu::PHI, &Gelu::DPHI, a, b, c, parallel, numerical)
            } else {
                PairDual::default()
            };
            out.phi = if want.nngp { phi } else { 0.0 };
            out.dphi = if want.ntk || want.hidden { dphi } else { 0.0 };
            out
        })
    }
}

impl Rule for Gelu {
    const NAME: &'static str = "gelu";
    const SUMMARY: &'static str = "u·Φ(u) (exact); closed-form NNGP/NTK, numerical S and D";
    fn from_params(_: &[f64]) -> Self {
        Gelu
    }
    #[inline]
    fn forward(&self, u: f64) -> f64 {
        gelu(u)
    }
    #[inline]
    fn derivative(&self, u: f64) -> f64 {
        gelu_derivative(u)
    }
}

#[cfg(test)]
mod tests {
    //! The closed forms against (1) neural-tangents' reference kernels, through the network
    //! recursion, (2) the numerical engine, and their extremes.
    use super::*;
    use crate::rules::nt_reference::{network_kernels, Case};

    #[test]
    fn matches_neural_tangents_reference_kernels() {
        // nt_kernels.json `gelu_depth2`: dense(1.5, 0.1) gelu dense(1.5, 0.1) gelu dense(1).
        // The reference README measures NT against an independent quadrature to 1e-15 on
        // generic entries and warns of ≲1e-8 on diagonals for arccos-type forms (NT's ρ there
        // is 1 ± ε); gelu's atan2(c, Δ) is well conditioned at ρ = 1 (Δ ≥ 1), and we measure
        // 4e-16 and 2e-16: checked at 1e-13 on both, relative to max |entry|.
        let case = Case::load("gelu_depth2");
        let err = network_kernels(
            &case,
            &[(1.5, 0.1), (1.5, 0.1), (1.0, 0.0)],
            |a, b, c, par| {
                let out = Gelu.pair(&NumPoint::new(a), &NumPoint::new(b), c, par, Want::NNGP_NTK);
                (out.phi, out.dphi)
            },
        );
        assert!(
            err.off_diagonal <= 1e-13 && err.diagonal <= 1e-13,
            "{err:?}"
        );
        eprintln!("gelu vs neural-tangents: {err:?}");
    }

    #[test]
    fn closed_forms_match_the_numerical_engine() {
        // Two independent computations of the same expectations; the engine's accuracy
        // (≈1e-12 of E|φφ|) dominates: checked at 1e-10·(1 + |value|).
        let mut worst: f64 = 0.0;
        for (a, b) in [
            (0.3, 0.8),
            (1.0, 1.0),
            (2.5, 0.4),
            (6.0, 9.0),
            (0.0, 1.3),
            (1e-3, 4.0),
        ] {
            for rho in [-0.95, -0.5, 0.0, 0.3, 0.9, 0.999] {
                let c = rho * (a * b).sqrt();
                let (phi, dphi) = closed_form(a, b, c, Parallel::Unknown);
                let n = pair_moments(
                    &Gelu::PHI,
                    &Gelu::DPHI,
                    a,
                    b,
                    c,
                    Parallel::Unknown,
                    Want::NNGP_NTK,
                );
                for (x, y) in [(phi, n.phi), (dphi, n.dphi)] {
                    let e = (x - y).abs() / (1.0 + y.abs());
                    worst = worst.max(e);
                    assert!(
                        e <= 1e-10,
                        "({a}, {b}, ρ = {rho}): closed {x}, numerical {y}"
                    );
                }
            }
        }
        for (a, b, par) in [
            (1.7, 1.7, Parallel::Positive),
            (0.6, 2.4, Parallel::Positive),
            (1.2, 0.3, Parallel::Negative),
        ] {
            let c = if par == Parallel::Negative { -1.0 } else { 1.0 } * (a * b).sqrt();
            let (phi, dphi) = closed_form(a, b, c, par);
            let n = pair_moments(&Gelu::PHI, &Gelu::DPHI, a, b, c, par, Want::NNGP_NTK);
            for (x, y) in [(phi, n.phi), (dphi, n.dphi)] {
                let e = (x - y).abs() / (1.0 + y.abs());
                worst = worst.max(e);
                assert!(
                    e <= 1e-10,
                    "parallel ({a}, {b}, {par:?}): closed {x}, numerical {y}"
                );
            }
        }
        eprintln!("gelu closed forms vs engine: max error {worst:e}");
    }

    #[test]
    fn extremes_are_finite_and_right() {
        // a = b = 1e300: gelu(u) ≈ relu(u), so E[φφ] → the relu arc-cosine kernel and
        // E[φ'φ'] → (π − θ)/(2π) (relative corrections O(1/√a)).
        for rho in [-1.0, -0.4, 0.0, 0.6, 1.0] {
            let (a, b) = (1e300, 1e300);
            let theta = f64::acos(rho);
            let relu_j = 1e300 / (2.0 * PI) * ((1.0 - rho * rho).sqrt() + (PI - theta) * rho);
            let (phi, dphi) = closed_form(a, b, rho * 1e300, Parallel::Unknown);
            assert!(
                (phi / relu_j - 1.0).abs() < 1e-12 || (phi - relu_j).abs() < 1e288,
                "{rho}: {phi} vs {relu_j}"
            );
            assert!(
                (dphi - (PI - theta) / (2.0 * PI)).abs() < 1e-12,
                "{rho}: {dphi}"
            );
        }
        // Zero variances: φ(0) = 0, φ'(0) = 1/2.
        assert_eq!(closed_form(0.0, 0.0, 0.0, Parallel::Unknown), (0.0, 0.25));
        // u ≡ 0: E[φ(0)φ(v)] = 0 and E[φ'(0)φ'(v)] = ½·E[Φ(v) + vϕ(v)] = ¼.
        let (p, d) = closed_form(0.0, 2.0, 0.0, Parallel::Positive);
        assert!(p == 0.0 && (d - 0.25).abs() < 1e-15, "{p} {d}");
        let out = Gelu.pair(
            &NumPoint::new(1e300),
            &NumPoint::new(0.0),
            0.0,
            Parallel::Unknown,
            Want::ALL,
        );
        for v in [out.phi, out.dphi, out.sign, out.dsign] {
            assert!(v.is_finite());
        }
    }

    #[test]
    fn derivative_root_is_the_sign_change() {
        let r = GELU_DERIVATIVE_ROOT;
        assert!(gelu_derivative(r - 1e-12) < 0.0 && gelu_derivative(r + 1e-12) > 0.0);
        assert!(gelu_derivative(r).abs() < 1e-15);
    }
}
