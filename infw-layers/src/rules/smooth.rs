//! Smooth activations without closed-form kernels: tanh, softplus, silu (u·σ(u)) and
//! sigmoid. All four expectations come from the numerical engine (docs/math.md §6), told
//! where φ and φ' change sign:
//!
//! ```text
//! tanh      φ = tanh u            sign changes of φ: 0          of φ': none (φ' = sech² u > 0)
//! softplus  φ = ln(1 + eᵘ)        none (φ > 0)                  none (φ' = σ(u) > 0)
//! silu      φ = u σ(u)            0                             u₀ ≈ −1.27846 (1 + u σ(−u) = 0)
//! sigmoid   φ = σ(u)              none                          none (φ' = σ(u) σ(−u) > 0)
//! ```
//! φ and φ' are written so that they neither overflow nor lose precision for large |u|.
use crate::rule::Rule;
use crate::rules::numerical::{numerical_dual, Fun, Parity, SignChanges};

/// The root of silu'(u) = σ(u)(1 + u σ(−u)), i.e. u = −(1 + eᵘ) (40-digit mpmath
/// `findroot`, rounded to f64).
pub const SILU_DERIVATIVE_ROOT: f64 = -1.278_464_542_761_074;

/// σ(u) = 1/(1 + e^{−u}) without overflow.
#[inline]
pub fn logistic(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

fn tanh(u: f64) -> f64 {
    u.tanh()
}
/// sech² u = 4e/(1 + e)² with e = e^{−2|u|}: exact in the tails, where 1 − tanh² is 0.
fn tanh_derivative(u: f64) -> f64 {
    let e = (-2.0 * u.abs()).exp();
    4.0 * e / ((1.0 + e) * (1.0 + e))
}
/// ln(1 + eᵘ) = max(u, 0) + ln(1 + e^{−|u|}).
fn softplus(u: f64) -> f64 {
    u.max(0.0) + (-u.abs()).exp().ln_1p()
}
fn silu(u: f64) -> f64 {
    u * logistic(u)
}
fn silu_derivative(u: f64) -> f64 {
    let s = logistic(u);
    if u.abs() > 745.0 {
        // u σ(−u) is 0 or −|u|e^{−|u|} → 0: σ(u) alone.
        return s;
    }
    s * (1.0 + u * logistic(-u))
}
fn sigmoid_derivative(u: f64) -> f64 {
    logistic(u) * logistic(-u)
}

/// One numerical rule: the type, its grammar name and summary, and φ, φ' with their sign
/// changes and parity.
macro_rules! smooth_rule {
    (
        $(#[$doc:meta])* $name:ident, $grammar:literal, $summary:literal,
        phi = $phi:expr, $phi_changes:expr,
        dphi = $dphi:expr, $dphi_changes:expr,
        parity = $parity:expr
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $name;

        impl $name {
            /// φ for the numerical engine.
            pub const PHI: Fun<'static> = Fun { f: $phi, changes: SignChanges::Known($phi_changes), parity: $parity, smooth: true };
            /// φ' for the numerical engine (its parity does not matter).
            pub const DPHI: Fun<'static> = Fun { f: $dphi, changes: SignChanges::Known($dphi_changes), parity: Parity::Neither, smooth: true };
        }

        numerical_dual!($name, $name::PHI, $name::DPHI);

        impl Rule for $name {
            const NAME: &'static str = $grammar;
            const SUMMARY: &'static str = $summary;
            fn from_params(_: &[f64]) -> Self {
                $name
            }
            #[inline]
            fn forward(&self, u: f64) -> f64 {
                ($phi)(u)
            }
            #[inline]
            fn derivative(&self, u: f64) -> f64 {
                ($dphi)(u)
            }
        }
    };
}

smooth_rule!(
    /// tanh(u).
    Tanh, "tanh", "tanh(u); numerical (docs/math.md §6)",
    phi = tanh, &[0.0],
    dphi = tanh_derivative, &[],
    parity = Parity::Odd
);
smooth_rule!(
    /// softplus: ln(1 + eᵘ).
    Softplus, "softplus", "ln(1 + e^u); numerical (docs/math.md §6)",
    phi = softplus, &[],
    dphi = logistic, &[],
    parity = Parity::Neither
);
smooth_rule!(
    /// silu (swish): u·σ(u).
    Silu, "silu", "u·σ(u); numerical (docs/math.md §6)",
    phi = silu, &[0.0],
    dphi = silu_derivative, &[SILU_DERIVATIVE_ROOT],
    parity = Parity::Neither
);
smooth_rule!(
    /// sigmoid: σ(u) = 1/(1 + e^{−u}).
    Sigmoid, "sigmoid", "1/(1 + e^−u); numerical (docs/math.md §6)",
    phi = logistic, &[],
    dphi = sigmoid_derivative, &[],
    parity = Parity::Neither
);

#[cfg(test)]
mod tests {
    //! The engine is tested against closed forms in `numerical/tests.rs`; here: φ' is the
    //! derivative of φ, the known sign changes are where φ and φ' change sign, and the
    //! forms stay finite and exact in the tails.
    use super::*;

    #[test]
    fn derivatives_match_central_differences() {
        // Central difference with h = 1e-5: truncation h²|φ'''|/6 ≤ 2e-11, rounding
        // ε|φ|/h ≤ 2e-11·(1 + |u|): checked at 1e-9·(1 + |u|).
        type Named = (&'static str, fn(f64) -> f64, fn(f64) -> f64);
        let rules: [Named; 4] = [
            ("tanh", tanh, tanh_derivative),
            ("softplus", softplus, logistic),
            ("silu", silu, silu_derivative),
            ("sigmoid", logistic, sigmoid_derivative),
        ];
        let h = 1e-5;
        for (name, f, df) in rules {
            for i in -80..=80 {
                let u = i as f64 * 0.1;
                let fd = (f(u + h) - f(u - h)) / (2.0 * h);
                assert!(
                    (fd - df(u)).abs() <= 1e-9 * (1.0 + u.abs()),
                    "{name}' at {u}: {} vs {fd}",
                    df(u)
                );
            }
        }
    }

    #[test]
    fn sign_changes_are_where_the_signs_change() {
        let r = SILU_DERIVATIVE_ROOT;
        let d = 1e-12;
        assert!(silu_derivative(r - d) < 0.0 && silu_derivative(r + d) > 0.0);
        assert!(silu_derivative(r).abs() < 1e-15);
        for u in [-700.0, -30.0, -3.0, -1.0, 0.5, 3.0, 30.0, 700.0] {
            assert_eq!(tanh(u).signum(), u.signum());
            assert!(
                tanh_derivative(u) > 0.0 || u.abs() > 350.0,
                "sech² underflows only past 350"
            );
            assert!(softplus(u) > 0.0 && logistic(u) > 0.0);
            assert_eq!(silu(u).signum(), u.signum());
        }
    }

    #[test]
    fn tails_are_finite_and_exact() {
        for u in [-1e300, -800.0, -40.0, 40.0, 800.0, 1e300] {
            for v in [
                tanh(u),
                tanh_derivative(u),
                softplus(u),
                logistic(u),
                silu(u),
                silu_derivative(u),
                sigmoid_derivative(u),
            ] {
                assert!(v.is_finite(), "{u}");
            }
        }
        assert_eq!(softplus(800.0), 800.0);
        assert_eq!(softplus(-800.0), 0.0);
        assert!((softplus(-40.0) / (-40.0f64).exp() - 1.0).abs() < 1e-15);
        assert!((tanh_derivative(20.0) / (4.0 * (-40.0f64).exp()) - 1.0).abs() < 1e-15);
        assert_eq!(silu_derivative(1e300), 1.0);
    }
}
