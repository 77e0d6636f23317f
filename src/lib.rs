//! # infw — infinitely wide neural networks, compiled from one declaration
//!
//! ```
//! use infw::data::{accuracy, one_hot, Dataset};
//!
//! let data = Dataset::embedded("wine")?.standardized();
//! // An expression among the hyper-parameters is checked when the value is built: `?`.
//! let net = infw::network! { dense(512, w_std = 2f64.sqrt(), b_std = 0.1) relu dense(512) relu }?;
//! let k = net.ntk(&data.x_train, &data.x_test)?; // one row per training row
//! assert_eq!(k.dim(), (data.x_train.nrows(), data.x_test.nrows()));
//! let y = one_hot(&data.y_train, data.classes)?;
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
//! network    = item { item } ;                           (* separated by whitespace *)
//! item       = dense | activation | "layer_norm" | residual | parallel | readout ;
//! dense      = "dense" "(" width { "," std } ")" ;
//! width      = integer | "width" "=" integer | expr ;       (* 1 ≤ width ≤ 2^32 *)
//! std        = ( "w_std" | "b_std" ) "=" ( number | expr ) ;  (* ≥ 0; defaults 1.0, 0.0 *)
//! activation = name [ "(" number { "," number } ")" ]      (* the registry: relu, gelu, … *)
//!            | "act" "(" path ")" ;                        (* a type implementing UserActivation *)
//! residual   = "residual" "(" item { item } ")" ;          (* x + block(x) *)
//! parallel   = "parallel" "(" branch "|" branch { "|" branch } ")" ;   (* concatenation *)
//! branch     = item { item } ;
//! readout    = "readout" [ "(" std { "," std } ")" ] ;     (* last item only *)
//! expr       = a Rust expression of type f64 (stds) or usize (widths) ;
//! ```
//!
//! An activation or `layer_norm` needs a Gaussian input (a `dense`, or a residual/
//! layer_norm of one); a residual block ends in a `dense` as wide as its stream; every
//! `parallel` branch has a declared width. A body that does not end in `dense` gets an
//! implied readout with as many outputs as the targets have columns. Literal numbers are
//! folded at compile time and give a `Network`; a declaration with an expression gives a
//! `Result<Network, Error>`, checked when it is built.
//!
//! # Features
//!
//! - `serde` (off by default): save and load trained kernel models (`KernelModel`,
//!   `FlowModel`, `FalkonModel`, `EnsembleModel`), function-space trainers
//!   (`FunctionSpaceModel`, resumed exactly) and finite networks (`FiniteNetwork`,
//!   `LinearizedNetwork`) in any serde format; see `persist` (present with the feature).

#![deny(missing_docs)]

pub use infw_macros::network;

pub use infw_runtime::{arch, data, error, finite, history, loss, model, network, solve, train};

pub use infw_runtime::{
    Activation, AdamLimitProgram, Architecture, EpochRecord, Error, FalkonModel, FlowModel,
    FunctionSpaceModel, GramParams, Hidden, History, KernelKind, KernelMatrices, KernelModel,
    KernelProgram, LimitRule, Loss, Network, Node, Readout, Result, TrainingInputs, UserActivation,
    Want, MAX_BAND_ROWS,
};

/// Save and load (the `serde` feature): `model.saved()` is plain data for any serde format,
/// `saved.restore(&net)` the model again, for the network declared again (kernel models are
/// compiled code, so the declaration is not in the file; a description of it is, and
/// [`Error::ArchitectureMismatch`] says where another declaration differs). Finite networks
/// are data and restore without it, unless they use a user activation. A function-space
/// model is saved with its trainer's whole state (`restore::<NtkSgd, _>(&net)` or
/// `AdamLimit`) and continues training bit for bit. Restored models
/// predict bit for bit what the saved ones did when the format round-trips `f64` exactly
/// (serde_json: its `float_roundtrip` feature). The runtime's
/// [`infw_runtime::persist`] documents what is saved and checked.
///
/// ```
/// use infw::data::{one_hot, Dataset};
/// use infw::persist::SavedKernelModel;
///
/// let data = Dataset::embedded("wine")?.standardized();
/// let net = infw::network! { dense(512, w_std = 1.5, b_std = 0.1) relu dense(512, w_std = 1.5, b_std = 0.1) relu };
/// let y = one_hot(&data.y_train, data.classes)?;
/// let model = net.ntk_regression(&data.x_train, &y, 1e-6)?;
/// let json = serde_json::to_string(&model.saved()).expect("JSON");
///
/// // Later, or in another program: the same declaration, then the file.
/// let saved: SavedKernelModel = serde_json::from_str(&json).expect("JSON");
/// let loaded = saved.restore(&net)?; // Error::ArchitectureMismatch for another declaration
/// assert_eq!(loaded.predict(&data.x_test)?, model.predict(&data.x_test)?);
/// # Ok::<(), infw::Error>(())
/// ```
#[cfg(feature = "serde")]
pub mod persist {
    pub use infw_runtime::persist::*;
}

/// The ndarray infw is built against (0.16), so users need not guess its version: a second
/// ndarray in the dependency graph makes every call fail with "multiple different versions
/// of crate `ndarray`".
///
/// ```
/// use infw::ndarray::array;
/// let net = infw::network! { dense(8) relu };
/// let x = array![[1.0, 0.0], [0.0, 1.0]];
/// assert_eq!(net.nngp(&x, &x)?.dim(), (2, 2));
/// # Ok::<(), infw::Error>(())
/// ```
pub use ndarray;

/// Re-exports for the code `network!` generates (the whole runtime, including its hidden
/// plumbing: the layer rules as `dual`, `program`, `spatial`, `gram`). Not a public API:
/// it changes whenever the code generator does.
#[doc(hidden)]
pub mod __private {
    pub use infw_runtime::*;
}
