//! The one error type of the runtime: every variant says what was wrong with which input.

/// Errors returned by the runtime. User input never panics; it ends up here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two inputs that must agree on a dimension do not.
    #[error("shape mismatch: {what} (expected {expected}, found {found})")]
    ShapeMismatch {
        what: String,
        expected: usize,
        found: usize,
    },

    /// An input with no rows or no columns.
    #[error("empty input: {what} has no {axis}")]
    Empty { what: String, axis: &'static str },

    /// A NaN or infinite value in an input.
    #[error("non-finite value in {what} at row {row}, column {col}: {value}")]
    NonFinite {
        what: String,
        row: usize,
        col: usize,
        value: f64,
    },

    /// A kernel evaluated to NaN or ±∞ from finite inputs: a variance overflowed (inputs
    /// too large, or stds whose product over the layers is). `cause` names the layer.
    #[error("the {kernel} kernel is not finite at row {row}, column {col}: {cause}; rescale the inputs (e.g. standardize them) or lower w_std / b_std")]
    NonFiniteKernel {
        kernel: &'static str,
        row: usize,
        col: usize,
        cause: String,
    },

    /// A scalar argument (learning rate, ridge, time, …) outside its valid range.
    #[error("invalid argument `{name}` = {value}: {reason}")]
    InvalidArgument {
        name: &'static str,
        value: String,
        reason: String,
    },

    /// A linear system that cannot be solved as asked.
    #[error("the kernel system is not positive definite ({detail}); add a ridge (e.g. 1e-8 · trace/N) or remove duplicate rows")]
    NotPositiveDefinite { detail: String },

    /// Training diverged or produced a non-finite value.
    #[error("training produced a non-finite value: {what}")]
    Diverged { what: String },

    /// A malformed data file; `line` is 1-based.
    #[error("{file}:{line}: {reason}")]
    Malformed {
        file: String,
        line: usize,
        reason: String,
    },

    /// The architecture and the data disagree (e.g. a declared readout width that is not
    /// the number of target columns).
    #[error("architecture mismatch: {0}")]
    Architecture(String),

    /// An I/O failure, with the path involved.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Short for `std::result::Result<T, infw::Error>`.
pub type Result<T> = std::result::Result<T, Error>;
