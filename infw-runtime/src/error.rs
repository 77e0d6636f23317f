//! The one error type of the runtime: every variant says what was wrong with which input.

/// Errors returned by the runtime. User input never panics; it ends up here.
///
/// `#[non_exhaustive]`: a later version may add variants, so a `match` on it needs a
/// wildcard arm (`_ => …`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two inputs that must agree on a dimension do not.
    #[error("shape mismatch: {what} (expected {expected}, found {found})")]
    ShapeMismatch {
        /// Which dimension of which inputs (e.g. "columns of x and t").
        what: String,
        /// The size the first input (or the trained model) fixes.
        expected: usize,
        /// The size that was passed.
        found: usize,
    },

    /// An input with no rows or no columns.
    #[error("empty input: {what} has no {axis}")]
    Empty {
        /// The input's name.
        what: String,
        /// `"rows"` or `"columns"`.
        axis: &'static str,
    },

    /// A NaN or infinite value in an input.
    #[error("non-finite value in {what} at row {row}, column {col}: {value}")]
    NonFinite {
        /// The input's name.
        what: String,
        /// Row of the first non-finite entry (0-based).
        row: usize,
        /// Column of that entry (0-based).
        col: usize,
        /// The value found there (NaN, +∞ or -∞).
        value: f64,
    },

    /// A kernel evaluated to NaN or ±∞ from finite inputs: a variance overflowed (inputs
    /// too large, or stds whose product over the layers is). `cause` names the layer.
    #[error("the {kernel} kernel is not finite at row {row}, column {col}: {cause}; rescale the inputs (e.g. standardize them) or lower w_std / b_std")]
    NonFiniteKernel {
        /// Which kernel ("NNGP", "NTK", …).
        kernel: &'static str,
        /// Row of the first non-finite entry: the index into the first input (0-based).
        row: usize,
        /// Column of that entry: the index into the second input (0-based).
        col: usize,
        /// The first layer whose variance overflowed, as far as it is traced.
        cause: String,
    },

    /// A scalar argument (learning rate, ridge, time, …) outside its valid range.
    #[error("invalid argument `{name}` = {value}: {reason}")]
    InvalidArgument {
        /// The argument's name as in the API (e.g. `"learning_rate"`).
        name: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// What the valid range is, or why this value is rejected.
        reason: String,
    },

    /// A linear system that cannot be solved as asked.
    #[error("the kernel system is not positive definite ({detail}); add a ridge (e.g. 1e-8 · trace/N) or remove duplicate rows")]
    NotPositiveDefinite {
        /// What the factorisation reported (e.g. the failing pivot).
        detail: String,
    },

    /// Training diverged or produced a non-finite value.
    #[error("training produced a non-finite value: {what}")]
    Diverged {
        /// The quantity that became non-finite, and when.
        what: String,
    },

    /// A malformed data file; `line` is 1-based.
    #[error("{file}:{line}: {reason}")]
    Malformed {
        /// The file's path (or, for an embedded dataset, its path in the source tree).
        file: String,
        /// The offending line, 1-based.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// The architecture and the data disagree (e.g. a declared readout width that is not
    /// the number of target columns).
    #[error("architecture mismatch: {0}")]
    Architecture(String),

    /// A saved model or network restored with a declaration other than the one it was
    /// saved from (the `serde` feature, `persist`): the first difference, on both sides.
    #[error("the saved state was made with another declaration: saved {saved}, given {given}; declare the network as it was when saved")]
    ArchitectureMismatch {
        /// The saved side of the first difference (a node, the readout or the input).
        saved: String,
        /// The given declaration's side of it.
        given: String,
    },

    /// A finite network saved with a user activation (`act(path)`, a Rust type named in the
    /// declaration) restored from data alone: a file cannot name code.
    #[error("the saved declaration uses the user activation {activation}, which cannot be restored from data; restore with the declaration (`restore_with(net.architecture())`)")]
    UnrestorableActivation {
        /// The activation as declared (`act(my_crate::Swish)`).
        activation: String,
    },

    /// Saved state that is not consistent (hand-edited, or from another format version):
    /// what was being restored and what is wrong. Wrong shapes and non-finite values are
    /// [`Error::ShapeMismatch`] and [`Error::NonFinite`].
    #[error("cannot restore the saved {what}: {reason}")]
    InvalidSaved {
        /// What was being restored (e.g. "kernel model").
        what: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An I/O failure, with the path involved.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory that could not be read.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Short for `std::result::Result<T, infw::Error>`.
pub type Result<T> = std::result::Result<T, Error>;
