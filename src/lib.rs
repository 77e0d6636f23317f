//! # infw — infinitely wide neural networks, compiled from one declaration
//!
//! ```
//! use infw::data::{accuracy, one_hot, Dataset};
//!
//! let data = Dataset::embedded("wine")?.standardized();
//! let net = infw::network! { dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu dense(512) relu };
//! let k = net.ntk(&data.x_train, &data.x_test)?; // one row per training row
//! assert_eq!(k.dim(), (data.x_train.nrows(), data.x_test.nrows()));
//! let y = one_hot(&data.y_train, data.classes);
//! let model = net.ntk_regression(&data.x_train, &y, 1e-6)?;
//! let acc = accuracy(model.predict(&data.x_test)?.view(), &data.y_test)?;
//! assert!(acc > 0.9);
//! # Ok::<(), infw::Error>(())
//! ```
//!
//! `network!` accepts `{…}`, `(…)` and `[…]`. The kernels are those of docs/math.md §3 (NNGP, NTK)
//! and §4 (R and H of the Adam-like limit); training in function space is docs/math.md §5.
//!
//! # Grammar (EBNF)
//!
//! ```text
//! network    = layer { layer } ;                      (* separated by whitespace *)
//! layer      = dense | activation | readout ;
//! dense      = "dense" "(" width [ "," std { "," std } ] ")" ;
//! width      = positive integer | "width" "=" positive integer ;
//! std        = ( "w_std" | "b_std" ) "=" number ;     (* ≥ 0; defaults 1.0 and 0.0 *)
//! activation = "relu" | "erf" | "identity" | "abs" | "leaky_relu" "(" number ")" ;
//! readout    = "readout" [ "(" std { "," std } ")" ] ;   (* last layer only *)
//! ```
//!
//! Every activation follows a `dense`; two `dense` in a row have an identity between them.
//! **A body that does not end in `dense` gets an implicit readout `dense`** with as many
//! outputs as the targets have columns (w_std 1, b_std 0, neural-tangents' defaults);
//! `readout(w_std = …, b_std = …)` sets its stds. Widths are kept for the finite network
//! ([`Network::finite`]); the infinite-width kernels ignore them.

pub use infw_macros::network;
pub use infw_runtime::*;

/// Re-exports for the code `network!` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use infw_runtime::*;
}
