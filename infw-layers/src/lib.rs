//! The layer rules of infw, shared by the `network!` compiler and the runtime.
//!
//! Each activation is one type implementing [`Rule`] (name, parameters, φ, φ') and
//! [`Dual`] (its Gaussian expectations: E\[φφ\], E[φ'φ'] for the NNGP/NTK, S and D for the
//! Adam-like limit, and how it carries exact parallelism), in one file of [`rules`]. The
//! registry ([`activation`]) lists every rule once; the compiler reads names and
//! parameters from it, the runtime's finite networks dispatch φ and φ' through it, and the
//! generated kernel code calls the rule types directly.

#![deny(missing_docs)]

pub mod activation;
pub mod angle;
pub mod conv;
pub mod dual;
pub mod pair;
pub mod real;
pub mod rule;
pub mod rules;

pub use activation::{Activation, Entry, UserFunction, REGISTRY};
pub use angle::{acos, asin, gather_vars, splat_vars, Angle, Var};
pub use conv::{ConvGeometry, GeometryError, Padding};
pub use dual::{gather_var, inv_sqrt_or_zero, splat_var, DiagDual, Dual, PairDual, SQRT_2_OVER_PI};
pub use pair::{Parallel, Want};
pub use real::{gather_values, sign0, splat_values, F64x4, Real};
pub use rule::{Param, Rule, UserActivation};
