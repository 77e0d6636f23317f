//! Function-space training of both infinite-width limits (docs/math.md §5).
//!
//! No weights exist at infinite width: a step on example x_b with loss gradient χ moves the
//! function by kernel columns, f ← f − η Σ_j K_j(·, x_b) u_j(χ). One engine ([`Trainer`])
//! runs every limit; the [`UpdateRule`] says how χ becomes the u_j:
//! [`NtkSgd`] (Θ, u = χ) and [`AdamLimit`] (R and H, u = (sign χ, χ/‖χ‖), docs/math.md §4).
//! Kernels are matrices whose **columns are the training examples** ([`NtkKernel`],
//! [`SignKernels`]); the function is kept as its training-set values plus one coefficient
//! matrix per kernel, so test predictions are a matrix product at any time.
//! Momentum, iterate averaging and learning-rate schedules live in [`TrainConfig`].

mod config;
mod engine;
mod kernels;
mod rule;
#[cfg(test)]
mod tests;

pub use config::{Iterate, Schedule, TrainConfig};
pub use engine::Trainer;
#[cfg(feature = "serde")]
pub(crate) use engine::{replayed_order, FunctionState};
pub use kernels::{KernelSet, NtkKernel, SignKernels, TestSet, TrainSet};
pub use rule::{AdamLimit, NtkSgd, UpdateRule};
