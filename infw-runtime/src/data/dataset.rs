//! A classification dataset with its train/test split: from a directory, from the copies
//! embedded in the library, or from arrays.

use super::csv::{load_csv, parse_csv};
use super::standardize::Standardizer;
use crate::error::{Error, Result};
use ndarray::Array2;
use std::path::Path;

/// A classification dataset: features (one row per example) and class labels 0..classes,
/// split into train and test (docs/math.md §7).
///
/// `classes` is 1 + the largest *training* label. A class index below it that never occurs
/// in the training set is allowed (its one-hot column is then all zero in training, and no
/// kernel method can predict it); a test label ≥ `classes` is an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// A short name (the directory name, or the embedded dataset's name).
    pub name: String,
    /// Training features, N × d.
    pub x_train: Array2<f64>,
    /// Training labels, N.
    pub y_train: Vec<usize>,
    /// Test features, M × d.
    pub x_test: Array2<f64>,
    /// Test labels, M.
    pub y_test: Vec<usize>,
    /// Number of classes: 1 + the largest training label.
    pub classes: usize,
}

macro_rules! embedded_csv {
    ($name:literal, $part:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/",
            $name,
            "/",
            $part
        ))
    };
}

impl Dataset {
    /// The names accepted by [`Dataset::embedded`] (infw-runtime/data/README.md describes
    /// each).
    pub const EMBEDDED: [&'static str; 4] = ["digits", "breast_cancer", "wine", "mnist1d"];

    /// Builds a dataset from arrays, checking that it is consistent: non-empty train and
    /// test, as many labels as rows, equal feature widths, finite features, and every test
    /// label below `classes` = 1 + max training label.
    pub fn new(
        name: impl Into<String>,
        x_train: Array2<f64>,
        y_train: Vec<usize>,
        x_test: Array2<f64>,
        y_test: Vec<usize>,
    ) -> Result<Self> {
        let classes = super::class_count(&y_train, "y_train")?;
        let data = Dataset {
            name: name.into(),
            x_train,
            y_train,
            x_test,
            y_test,
            classes,
        };
        data.validate()?;
        Ok(data)
    }

    /// Checks the invariants [`Dataset::new`] establishes (useful after editing the public
    /// fields by hand).
    pub fn validate(&self) -> Result<()> {
        use crate::solve::check;
        check::non_empty("x_train", self.x_train.view())?;
        check::non_empty("x_test", self.x_test.view())?;
        check::dim(
            "labels in y_train (one per row of x_train)",
            self.x_train.nrows(),
            self.y_train.len(),
        )?;
        check::dim(
            "labels in y_test (one per row of x_test)",
            self.x_test.nrows(),
            self.y_test.len(),
        )?;
        check::dim(
            "features in x_test (as in x_train)",
            self.x_train.ncols(),
            self.x_test.ncols(),
        )?;
        check::finite("x_train", self.x_train.view())?;
        check::finite("x_test", self.x_test.view())?;
        let classes = super::class_count(&self.y_train, "y_train")?;
        check::dim(
            "classes (1 + largest training label)",
            classes,
            self.classes,
        )?;
        if let Some((i, &label)) = self.y_test.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(Error::InvalidArgument {
                name: "y_test",
                value: format!("label {label} at test row {i}"),
                reason: format!("the training labels only define classes 0..{classes}"),
            });
        }
        Ok(())
    }

    /// Loads `dir/train.csv` and `dir/test.csv` (format of infw-runtime/data/README.md; each
    /// may instead be gzip-compressed as `train.csv.gz` / `test.csv.gz`); the name is the
    /// directory's last component. A test label ≥ classes, or a test file whose feature
    /// count differs from train's, is reported with the test file and line.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        // `train.csv`, or `train.csv.gz` where only the compressed file exists
        let pick = |stem: &str| {
            let plain = dir.join(stem);
            let gz = dir.join(format!("{stem}.gz"));
            if !plain.exists() && gz.exists() {
                gz
            } else {
                plain
            }
        };
        let (x_train, y_train) = load_csv(pick("train.csv"))?;
        let test_path = pick("test.csv");
        let (x_test, y_test) = load_csv(&test_path)?;
        Self::assemble(
            name,
            x_train,
            y_train,
            x_test,
            y_test,
            &test_path.display().to_string(),
        )
    }

    /// One of the datasets compiled into the library ([`Dataset::EMBEDDED`]); an unknown
    /// name is an error listing the valid ones.
    ///
    /// ```
    /// let digits = infw_runtime::data::Dataset::embedded("digits")?;
    /// assert_eq!((digits.x_train.dim(), digits.classes), ((1297, 64), 10));
    /// # Ok::<(), infw_runtime::Error>(())
    /// ```
    pub fn embedded(name: &str) -> Result<Self> {
        let (train, test) = match name {
            "digits" => (
                embedded_csv!("digits", "train.csv"),
                embedded_csv!("digits", "test.csv"),
            ),
            "breast_cancer" => (
                embedded_csv!("breast_cancer", "train.csv"),
                embedded_csv!("breast_cancer", "test.csv"),
            ),
            "wine" => (
                embedded_csv!("wine", "train.csv"),
                embedded_csv!("wine", "test.csv"),
            ),
            "mnist1d" => (
                embedded_csv!("mnist1d", "train.csv"),
                embedded_csv!("mnist1d", "test.csv"),
            ),
            _ => {
                return Err(Error::InvalidArgument {
                    name: "name",
                    value: name.to_string(),
                    reason: format!(
                        "no embedded dataset of that name; the embedded datasets are {}",
                        Self::EMBEDDED.join(", ")
                    ),
                })
            }
        };
        let (x_train, y_train) = parse_csv(train, &format!("infw-runtime/data/{name}/train.csv"))?;
        let test_file = format!("infw-runtime/data/{name}/test.csv");
        let (x_test, y_test) = parse_csv(test, &test_file)?;
        Self::assemble(
            name.to_string(),
            x_train,
            y_train,
            x_test,
            y_test,
            &test_file,
        )
    }

    /// Joins parsed train and test parts, reporting test-side problems against the test
    /// file. Row i of a parsed file is on line i + 2 (header on line 1, no blank lines
    /// between rows, which the parser rejects).
    fn assemble(
        name: String,
        x_train: Array2<f64>,
        y_train: Vec<usize>,
        x_test: Array2<f64>,
        y_test: Vec<usize>,
        test_file: &str,
    ) -> Result<Self> {
        let classes = y_train.iter().max().map_or(0, |m| m + 1);
        if x_test.ncols() != x_train.ncols() {
            return Err(Error::Malformed {
                file: test_file.to_string(),
                line: 1,
                reason: format!(
                    "{} feature columns, but train.csv has {}",
                    x_test.ncols(),
                    x_train.ncols()
                ),
            });
        }
        if let Some((i, &label)) = y_test.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(Error::Malformed {
                file: test_file.to_string(),
                line: i + 2,
                reason: format!(
                    "label {label} is not a class of the training set (classes 0..{})",
                    classes
                ),
            });
        }
        Ok(Dataset {
            name,
            x_train,
            y_train,
            x_test,
            y_test,
            classes,
        })
    }

    /// The dataset with every feature standardised by the *training* mean and standard
    /// deviation (test statistics never leak in); constant training features are centred
    /// and left unscaled (see [`Standardizer`]).
    ///
    /// Never fails on a dataset that passes [`validate`](Self::validate) (all constructors
    /// ensure it). On a hand-edited dataset whose test width differs from train's, test
    /// columns beyond the training width are left unchanged.
    pub fn standardized(&self) -> Dataset {
        let s = Standardizer::fit_lenient(self.x_train.view());
        Dataset {
            name: self.name.clone(),
            x_train: s.apply(self.x_train.view()),
            y_train: self.y_train.clone(),
            x_test: s.apply(self.x_test.view()),
            y_test: self.y_test.clone(),
            classes: self.classes,
        }
    }

    /// The number of input features d.
    pub fn features(&self) -> usize {
        self.x_train.ncols()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shapes and class counts from infw-runtime/data/README.md.
    #[test]
    fn embedded_datasets_have_the_documented_shapes() {
        let expected = [
            ("digits", 1297, 500, 64, 10),
            ("breast_cancer", 400, 169, 30, 2),
            ("wine", 118, 60, 13, 3),
            ("mnist1d", 4000, 1000, 40, 10),
        ];
        assert_eq!(Dataset::EMBEDDED.len(), expected.len());
        for (name, n_train, n_test, d, classes) in expected {
            assert!(Dataset::EMBEDDED.contains(&name));
            let data = Dataset::embedded(name).unwrap();
            assert_eq!(data.name, name);
            assert_eq!(data.x_train.dim(), (n_train, d), "{name}");
            assert_eq!(data.x_test.dim(), (n_test, d), "{name}");
            assert_eq!((data.y_train.len(), data.y_test.len()), (n_train, n_test));
            assert_eq!(data.classes, classes, "{name}");
            data.validate().unwrap();
        }
        // class counts of wine, infw-runtime/data/README.md: train [39, 47, 32], test [20, 24, 16]
        let wine = Dataset::embedded("wine").unwrap();
        let count = |y: &[usize], c| y.iter().filter(|&&l| l == c).count();
        assert_eq!([0, 1, 2].map(|c| count(&wine.y_train, c)), [39, 47, 32]);
        assert_eq!([0, 1, 2].map(|c| count(&wine.y_test, c)), [20, 24, 16]);
        // first wine row of train.csv: 2,13.08,3.9,...,550
        assert_eq!(wine.y_train[0], 2);
        assert_eq!(wine.x_train[[0, 0]], 13.08);
        assert_eq!(wine.x_train[[0, 12]], 550.0);
    }

    #[test]
    fn unknown_embedded_name_lists_the_valid_ones() {
        let err = Dataset::embedded("iris").unwrap_err();
        let msg = err.to_string();
        for name in Dataset::EMBEDDED {
            assert!(msg.contains(name), "{msg}");
        }
    }

    /// A fresh directory under the system temp dir for one test.
    fn temp_dir(tag: &str, train: &str, test: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("infw-data-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("train.csv"), train).unwrap();
        std::fs::write(dir.join("test.csv"), test).unwrap();
        dir
    }

    #[test]
    fn from_dir_loads_and_reports_test_problems_with_file_and_line() {
        // class 1 never occurs in train: allowed, classes = 1 + max label = 3
        let dir = temp_dir("ok", "label,a,b\n0,1,2\n2,3,4\n", "label,a,b\n1,0,0\n");
        let data = Dataset::from_dir(&dir).unwrap();
        assert_eq!((data.classes, data.y_test.clone()), (3, vec![1]));
        assert!(data.name.starts_with("infw-data-"));

        let dir = temp_dir("label", "label,a\n0,1\n1,2\n", "label,a\n1,0\n0,1\n2,5\n");
        match Dataset::from_dir(&dir) {
            Err(Error::Malformed { file, line, .. }) => {
                assert!(file.ends_with("test.csv"), "{file}");
                assert_eq!(line, 4);
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
        let dir = temp_dir("width", "label,a,b\n0,1,2\n", "label,a\n0,1\n");
        assert!(matches!(
            Dataset::from_dir(&dir),
            Err(Error::Malformed { line: 1, .. })
        ));
        let dir = temp_dir("bad-train", "label,a\n0,1\n0,x\n", "label,a\n0,1\n");
        match Dataset::from_dir(&dir) {
            Err(Error::Malformed { file, line: 3, .. }) => assert!(file.ends_with("train.csv")),
            other => panic!("expected Malformed at train.csv:3, got {other:?}"),
        }
        for tag in ["ok", "label", "width", "bad-train"] {
            let _ = std::fs::remove_dir_all(
                std::env::temp_dir().join(format!("infw-data-{}-{tag}", std::process::id())),
            );
        }
    }

    /// Standardised training columns have mean 0 and sd 1 up to the rounding of the
    /// statistics. Per feature with n rows, the computed mean μ̂ errs by at most ~n·ε·max|x|
    /// (naive summation), which shifts the standardised mean by n·ε·max|x|/σ; the sd likewise
    /// to relative ~n·ε·(1 + max|x|/σ). The bound 4·n·ε·(1 + max|x|/σ) is computed from the
    /// data per feature (≈ 1e-11 for breast_cancer's area features, ~1e-13 elsewhere).
    #[test]
    fn standardization_uses_training_statistics() {
        for name in ["breast_cancer", "wine", "digits"] {
            let raw = Dataset::embedded(name).unwrap();
            let std = raw.standardized();
            let n = raw.x_train.nrows() as f64;
            for j in 0..raw.features() {
                let col = raw.x_train.column(j);
                let first = col[0];
                let z = std.x_train.column(j);
                if col.iter().all(|&v| v == first) {
                    // constant feature (digits has pixels that are 0 on every image)
                    assert!(z.iter().all(|&v| v == 0.0), "{name} f{j}");
                    continue;
                }
                let mu = col.sum() / n;
                let sigma = (col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n).sqrt();
                let max = col.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let tol = 4.0 * n * f64::EPSILON * (1.0 + max / sigma);
                let mean_z = z.sum() / n;
                let sd_z = (z.iter().map(|v| (v - mean_z) * (v - mean_z)).sum::<f64>() / n).sqrt();
                assert!(mean_z.abs() < tol, "{name} f{j}: mean {mean_z:e} > {tol:e}");
                assert!(
                    (sd_z - 1.0).abs() < tol,
                    "{name} f{j}: sd {sd_z} (tol {tol:e})"
                );
                // the test set uses the same (training) statistics, not its own
                for (zt, xt) in std.x_test.column(j).iter().zip(raw.x_test.column(j)) {
                    let expect = (xt - mu) / sigma;
                    assert!(
                        (zt - expect).abs() <= tol * (1.0 + expect.abs()),
                        "{name} f{j}"
                    );
                }
            }
            assert_eq!((std.y_train, std.y_test), (raw.y_train, raw.y_test));
        }
    }

    #[test]
    fn standardizer_rejects_bad_input() {
        use ndarray::array;
        assert!(matches!(
            Standardizer::fit(Array2::zeros((0, 3)).view()),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            Standardizer::fit(array![[1.0, f64::NAN]].view()),
            Err(Error::NonFinite { row: 0, col: 1, .. })
        ));
        let s = Standardizer::fit(array![[1.0, 2.0], [3.0, 2.0]].view()).unwrap();
        assert_eq!(s.scale(), &ndarray::arr1(&[1.0, 1.0])); // sd of [1,3] is 1; constant → 1
        assert!(matches!(
            s.transform(array![[1.0, 2.0, 3.0]].view()),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn new_validates_consistency() {
        let x = Array2::zeros((2, 3));
        assert!(Dataset::new("ok", x.clone(), vec![0, 1], x.clone(), vec![1, 0]).is_ok());
        assert!(Dataset::new("rows", x.clone(), vec![0], x.clone(), vec![1, 0]).is_err());
        assert!(Dataset::new("class", x.clone(), vec![0, 1], x.clone(), vec![2, 0]).is_err());
        let narrow = Array2::zeros((2, 2));
        assert!(matches!(
            Dataset::new("width", x, vec![0, 1], narrow, vec![0, 0]),
            Err(Error::ShapeMismatch { .. })
        ));
    }
}
