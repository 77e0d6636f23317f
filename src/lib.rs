//! # infw — infinitely wide neural networks, compiled from one declaration
//!
//! ```ignore
//! let net = infw::network!{ dense(512) relu dense(512) relu };
//! let k = net.ntk(&x_train, &x_test)?;
//! ```
//!
//! See the README for the grammar and the capabilities; SPEC.md for the mathematics.

pub use infw_macros::network;
pub use infw_runtime::*;

/// Re-exports for the code `network!` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use infw_runtime::*;
}
