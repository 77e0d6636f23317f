//! Datasets: CSV loading with line-numbered errors, the four embedded datasets,
//! standardisation with training statistics, one-hot targets, accuracy and a seeded
//! stratified validation split (the data side of the experiments of docs/math.md §7).
//!
//! ```
//! use infw_runtime::data::{one_hot, Dataset};
//! let wine = Dataset::embedded("wine")?.standardized();
//! let y = one_hot(&wine.y_train, wine.classes)?; // 118 × 3 MSE targets (docs/math.md §5)
//! assert_eq!(y.dim(), (118, 3));
//! let (train, validation) = wine.split_validation(0.2, 7)?;
//! assert_eq!(train.len() + validation.len(), 118);
//! # Ok::<(), infw_runtime::Error>(())
//! ```

mod csv;
mod dataset;
mod split;
mod standardize;
mod targets;

pub use csv::{load_csv, parse_csv};
pub use dataset::Dataset;
pub use split::Examples;
pub use standardize::Standardizer;
pub use targets::{accuracy, class_count, one_hot, MAX_CLASSES};
