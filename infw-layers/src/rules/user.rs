//! A user's activation, `act(path)`: φ and φ' from [`UserActivation`], every kernel from the
//! numerical engine (docs/math.md §6). Nothing is known about where φ and φ' change sign,
//! so the engine locates the changes per pair on a grid over ±12 standard deviations of
//! each argument, refined by bisection ([`locate`](crate::rules::numerical::locate)); two
//! changes closer than the grid step (1/20 standard deviation, and 0.05 in absolute units
//! near 0 for wide inputs) are missed, and so is a change beyond 12 standard deviations.
//! The parity of φ is not known either, so exact parallelism survives only with equal
//! variances and a positive sign.
use crate::rule::{Rule, UserActivation};
use crate::rules::numerical::{numerical_dual, Fun, Parity, SignChanges};

/// The rule of a user's activation `A`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct User<A: UserActivation>(pub A);

impl<A: UserActivation> User<A> {
    /// φ for the numerical engine.
    pub const PHI: Fun<'static> = Fun {
        f: A::value,
        changes: SignChanges::Locate,
        parity: Parity::Neither,
        smooth: false,
    };
    /// φ' for the numerical engine.
    pub const DPHI: Fun<'static> = Fun {
        f: A::derivative,
        changes: SignChanges::Locate,
        parity: Parity::Neither,
        smooth: false,
    };
}

numerical_dual!(User<A>, User::<A>::PHI, User::<A>::DPHI; A: UserActivation);

impl<A: UserActivation> Rule for User<A> {
    const NAME: &'static str = "act";
    const SUMMARY: &'static str =
        "a user's φ, act(path); numerical, sign changes located on a grid (docs/math.md §6)";
    fn from_params(_: &[f64]) -> Self {
        User(A::default())
    }
    #[inline]
    fn forward(&self, u: f64) -> f64 {
        A::value(u)
    }
    #[inline]
    fn derivative(&self, u: f64) -> f64 {
        A::derivative(u)
    }
}

#[cfg(test)]
mod tests {
    //! A user's function with known kernels: the engine must find its sign changes itself.
    use super::*;
    use crate::angle::Var;
    use crate::dual::Dual;
    use crate::pair::{Parallel, Want};
    use crate::rules::numerical::NumPoint;
    use crate::rules::{Relu, Tanh};

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    struct Cube;
    impl UserActivation for Cube {
        fn value(u: f64) -> f64 {
            u * u * u
        }
        fn derivative(u: f64) -> f64 {
            3.0 * u * u
        }
    }

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    struct MyRelu;
    impl UserActivation for MyRelu {
        fn value(u: f64) -> f64 {
            u.max(0.0)
        }
        fn derivative(u: f64) -> f64 {
            if u > 0.0 {
                1.0
            } else {
                0.0
            }
        }
    }

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    struct MyTanh;
    impl UserActivation for MyTanh {
        fn value(u: f64) -> f64 {
            u.tanh()
        }
        fn derivative(u: f64) -> f64 {
            let e = (-2.0 * u.abs()).exp();
            4.0 * e / ((1.0 + e) * (1.0 + e))
        }
    }

    /// Checked at 1e-10 of √(E[f(u)²] E[g(v)²])-sized values, the engine's accuracy.
    fn close(x: f64, y: f64, scale: f64, what: &str) {
        assert!((x - y).abs() <= 1e-10 * scale, "{what}: {x} vs {y}");
    }

    #[test]
    fn cube_matches_its_moments() {
        // E[u³v³] = 9abc + 6c³, E[3u²·3v²] = 9(ab + 2c²), D = 3a (sign 3v² = 1 but at 0),
        // S = E[E[u³|v] sign v] = κ³ E|v|³ + 3κτ² E|v|, κ = c/b, τ² = a − c²/b,
        // E|v| = √(2b/π), E|v|³ = 2√(2/π) b^{3/2}.
        let r = User(Cube);
        for (a, b, rho) in [(1.0f64, 1.0f64, 0.5), (0.4, 2.0, -0.8), (3.0, 0.7, 0.99)] {
            let c = rho * (a * b).sqrt();
            let out = r.pair(
                &NumPoint::new(a),
                &NumPoint::new(b),
                c,
                Parallel::Unknown,
                Want::ALL,
            );
            let (kappa, tau2) = (c / b, a - c * c / b);
            let k = crate::SQRT_2_OVER_PI;
            let s = kappa.powi(3) * 2.0 * k * b.powf(1.5) + 3.0 * kappa * tau2 * k * b.sqrt();
            let scale = 15.0 * (a * b).powf(1.5);
            close(out.phi, 9.0 * a * b * c + 6.0 * c.powi(3), scale, "E[φφ]");
            close(
                out.dphi,
                9.0 * (a * b + 2.0 * c * c),
                9.0 * 3.0 * a * b,
                "E[φ'φ']",
            );
            close(out.sign, s, 4.0 * a.powf(1.5), "S");
            close(out.dsign, 3.0 * a, 3.0 * a, "D");
        }
    }

    #[test]
    fn located_sign_changes_reproduce_the_known_ones() {
        // relu: the kink and the zero half-line found by the grid match the closed forms;
        // tanh: the same kernels as the rule told its roots.
        let mut worst: f64 = 0.0;
        for (a, b, rho) in [
            (1.0f64, 1.0f64, 0.5),
            (0.4, 2.0, -0.8),
            (3.0, 0.7, 0.99),
            (2.0, 1e-6, 0.3),
        ] {
            let c = rho * (a * b).sqrt();
            let ours = User(MyRelu).pair(
                &NumPoint::new(a),
                &NumPoint::new(b),
                c,
                Parallel::Unknown,
                Want::ALL,
            );
            let exact = Relu.pair(&Var::new(a), &Var::new(b), c, Parallel::Unknown, Want::ALL);
            let scale = (a * b).sqrt().max(a.sqrt()).max(1.0);
            for (x, y) in [
                (ours.phi, exact.phi),
                (ours.dphi, exact.dphi),
                (ours.sign, exact.sign),
                (ours.dsign, exact.dsign),
            ] {
                worst = worst.max((x - y).abs() / scale);
                close(x, y, scale, &format!("relu at ({a}, {b}, {rho})"));
            }
            let ours = User(MyTanh).pair(
                &NumPoint::new(a),
                &NumPoint::new(b),
                c,
                Parallel::Unknown,
                Want::ALL,
            );
            let known = Tanh.pair(
                &NumPoint::new(a),
                &NumPoint::new(b),
                c,
                Parallel::Unknown,
                Want::ALL,
            );
            for (x, y) in [
                (ours.phi, known.phi),
                (ours.dphi, known.dphi),
                (ours.sign, known.sign),
                (ours.dsign, known.dsign),
            ] {
                worst = worst.max((x - y).abs());
                close(x, y, 1.0, &format!("tanh at ({a}, {b}, {rho})"));
            }
        }
        eprintln!("user (located) vs closed/known: max error {worst:e}");
    }

    #[test]
    fn registry_facing_constants() {
        assert_eq!(<User<Cube> as Rule>::NAME, "act");
        assert_eq!(User::<Cube>::from_params(&[]).forward(2.0), 8.0);
        let (diag, _) = User(Cube).point(2.0);
        // E[u⁶] = 15a³, E[9u⁴] = 27a².
        close(diag.phi, 120.0, 120.0, "E[u⁶]");
        close(diag.dphi, 108.0, 108.0, "E[9u⁴]");
    }
}
