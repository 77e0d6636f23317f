//! One file per activation rule (or family sharing a core). Adding an activation is a new
//! file here plus one line in the registry (`activation.rs`).

pub mod erf;
pub mod gelu;
#[cfg(test)]
mod nt_reference;
pub mod numerical;
pub mod piecewise_linear;
pub mod smooth;
pub mod trig;
pub mod user;

pub use erf::Erf;
pub use gelu::Gelu;
pub use piecewise_linear::{Abs, Identity, LeakyRelu, PiecewiseLinear, Relu};
pub use smooth::{Sigmoid, Silu, Softplus, Tanh};
pub use trig::{Cos, Sin};
pub use user::User;
