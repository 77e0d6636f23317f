//! One file per activation rule (or family sharing a core). Adding an activation is a new
//! file here plus one line in the registry (`activation.rs`).

pub mod erf;
pub mod piecewise_linear;

pub use erf::Erf;
pub use piecewise_linear::{Abs, Identity, LeakyRelu, PiecewiseLinear, Relu};
