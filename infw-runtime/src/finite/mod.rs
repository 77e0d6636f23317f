//! Finite networks of a declared architecture (docs/math.md §2) in plain Rust over ndarray: the
//! models the two infinite-width limits are compared against (docs/math.md §7).
//!
//! - [`FiniteNetwork`]: the declared graph (dense, activations, layer_norm, residual sums,
//!   concatenations; docs/math.md §8; conv, global_avg_pool and flatten on a declared
//!   `input(…)`, docs/math.md §9), NTK or standard parameterization, forward / backward / JVP,
//!   [`FiniteNetwork::empirical_ntk`] and [`FiniteNetwork::sign_step_first_order_change`]
//!   (the finite side of docs/math.md §4's sign-descent limit).
//! - [`LinearizedNetwork`]: the same network with feature learning disabled.
//! - [`Sgd`], [`Adam`], [`SignDescent`] with per-tensor rates ([`TensorRates`]).
//! - [`train`] / [`train_with`]: epochs of seeded mini-batches for any [`Model`] and
//!   [`Optimizer`], reporting the same [`crate::EpochRecord`]s as the function-space trainer.

mod conv;
mod graph;
mod layers;
mod linearized;
mod model;
mod network;
mod optim;
mod params;
pub mod sign_check;
mod train;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_conv;
#[cfg(test)]
mod tests_limit;

pub use graph::MAX_PARAMETERS;
pub use linearized::LinearizedNetwork;
pub use model::{Model, Workspace, BLOCK_ROWS};
pub use network::{FiniteNetwork, Parameterization};
pub use optim::{Adam, Optimizer, Sgd, SignDescent};
pub use params::{Params, TensorRates};
pub use train::{evaluate, train, train_with, Examples, FiniteTrainConfig};
