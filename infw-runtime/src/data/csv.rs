//! The CSV format of data/README.md: a header `label,f0,f1,…`, then one example per row,
//! an integer class label first. Every rejection names the file and the 1-based line.

use crate::error::{Error, Result};
use ndarray::Array2;
use std::path::Path;

fn malformed(file: &str, line: usize, reason: impl Into<String>) -> Error {
    Error::Malformed {
        file: file.to_string(),
        line,
        reason: reason.into(),
    }
}

/// Parses a dataset CSV held in memory; `file` only names it in errors.
///
/// Returns the features (one row per example) and the labels. Rejected, with the 1-based
/// line: an empty file, a header not starting with `label` or with no feature column, a file
/// with no example rows, ragged rows, blank lines between rows, non-numeric cells, NaN or
/// infinite values, and labels that are not non-negative integers (`3` and `3.0` are both
/// accepted). Cells may carry surrounding spaces; `\r\n` line ends are accepted.
///
/// ```
/// let (x, y) = infw_runtime::data::parse_csv("label,f0,f1\n1,0.5,2\n0,-1,3\n", "toy.csv")?;
/// assert_eq!((x.dim(), y), ((2, 2), vec![1, 0]));
/// # Ok::<(), infw_runtime::Error>(())
/// ```
pub fn parse_csv(text: &str, file: &str) -> Result<(Array2<f64>, Vec<usize>)> {
    let lines: Vec<&str> = text.lines().collect();
    // trailing blank lines are tolerated (an editor's extra newline); others are not
    let used = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    if used == 0 {
        return Err(malformed(
            file,
            1,
            "empty file: expected a header `label,f0,f1,...`",
        ));
    }
    let header: Vec<&str> = lines[0].split(',').map(str::trim).collect();
    if header[0] != "label" {
        return Err(malformed(
            file,
            1,
            format!(
                "the header must start with `label` (format `label,f0,f1,...`), found `{}`",
                header[0]
            ),
        ));
    }
    let width = header.len() - 1;
    if width == 0 {
        return Err(malformed(file, 1, "the header names no feature column"));
    }
    if used == 1 {
        return Err(malformed(
            file,
            1,
            "header only: the file has no example rows",
        ));
    }
    let rows = used - 1;
    let mut x = Vec::with_capacity(rows * width);
    let mut labels = Vec::with_capacity(rows);
    for (index, raw) in lines[1..used].iter().enumerate() {
        let line = index + 2;
        if raw.trim().is_empty() {
            return Err(malformed(file, line, "blank line between example rows"));
        }
        let mut count = 0;
        for (col, cell) in raw.split(',').map(str::trim).enumerate() {
            count += 1;
            if col > width {
                continue; // counted, reported as ragged below
            }
            if col == 0 {
                labels.push(parse_label(cell).map_err(|r| malformed(file, line, r))?);
                continue;
            }
            let name = header[col];
            let value: f64 = cell.parse().map_err(|_| {
                malformed(
                    file,
                    line,
                    format!("column {} (`{name}`): `{cell}` is not a number", col + 1),
                )
            })?;
            if !value.is_finite() {
                return Err(malformed(
                    file,
                    line,
                    format!("column {} (`{name}`): `{cell}` is not finite", col + 1),
                ));
            }
            x.push(value);
        }
        if count != width + 1 {
            return Err(malformed(
                file,
                line,
                format!(
                    "ragged row: {count} cells, but the header has {} (label + {width} features)",
                    width + 1
                ),
            ));
        }
    }
    let x = Array2::from_shape_vec((rows, width), x)
        .map_err(|e| malformed(file, 1, format!("internal shape error: {e}")))?;
    Ok((x, labels))
}

/// A class label: a non-negative integer, written `3` or `3.0`.
fn parse_label(cell: &str) -> std::result::Result<usize, String> {
    if let Ok(v) = cell.parse::<usize>() {
        return Ok(v);
    }
    let bad = |why: &str| format!("label `{cell}` {why}; labels are class indices 0, 1, 2, ...");
    match cell.parse::<f64>() {
        Err(_) => Err(bad("is not a number")),
        Ok(v) if !v.is_finite() => Err(bad("is not finite")),
        Ok(v) if v < 0.0 => Err(bad("is negative")),
        Ok(v) if v.fract() != 0.0 => Err(bad("is not an integer")),
        Ok(v) if v > 9_007_199_254_740_992.0 => Err(bad("is too large")),
        Ok(v) => Ok(v as usize),
    }
}

/// Reads and parses a dataset CSV file (see [`parse_csv`]); a name ending in `.gz` is
/// decompressed first (gzip, as mnist1d_70k ships). I/O and decompression failures name the
/// path.
pub fn load_csv(path: impl AsRef<Path>) -> Result<(Array2<f64>, Vec<usize>)> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let io = |source| Error::Io {
        path: name.clone(),
        source,
    };
    let text = if path.extension().is_some_and(|e| e == "gz") {
        use std::io::Read;
        let file = std::fs::File::open(path).map_err(io)?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::io::BufReader::new(file))
            .read_to_string(&mut text)
            .map_err(io)?;
        text
    } else {
        std::fs::read_to_string(path).map_err(io)?
    };
    parse_csv(&text, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error must be Malformed, name the file, and point at `line`.
    fn rejects(text: &str, line: usize) -> String {
        match parse_csv(text, "bad.csv") {
            Err(Error::Malformed {
                file,
                line: got,
                reason,
            }) => {
                assert_eq!(file, "bad.csv");
                assert_eq!(got, line, "wrong line for {text:?}: {reason}");
                reason
            }
            other => panic!("{text:?} should be malformed, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_well_formed_file() {
        let (x, y) = parse_csv("label, f0,f1\r\n2,1.5,-3\r\n0.0,0,1e-3\n\n", "ok.csv").unwrap();
        assert_eq!(y, vec![2, 0]);
        assert_eq!(x, ndarray::array![[1.5, -3.0], [0.0, 1e-3]]);
    }

    #[test]
    fn empty_file_and_header_only() {
        assert!(rejects("", 1).contains("empty"));
        assert!(rejects("\n  \n", 1).contains("empty"));
        assert!(rejects("label,f0,f1\n", 1).contains("header only"));
        assert!(rejects("label\n1\n", 1).contains("no feature"));
        assert!(rejects("0,1.5,2\n1,2,3\n", 1).contains("label"));
    }

    #[test]
    fn ragged_rows() {
        assert!(rejects("label,f0,f1\n0,1,2\n1,2\n", 3).contains("ragged"));
        assert!(rejects("label,f0,f1\n0,1,2\n1,2,3,4\n", 3).contains("ragged"));
        assert!(rejects("label,f0,f1\n0,1,2\n\n1,2,3\n", 3).contains("blank"));
    }

    #[test]
    fn non_numeric_and_non_finite_cells() {
        assert!(rejects("label,f0,f1\n0,1,2\n1,2,x\n", 3).contains("`f1`"));
        assert!(rejects("label,f0,f1\n0,,2\n", 2).contains("not a number"));
        assert!(rejects("label,f0,f1\n0,1,2\n1,NaN,3\n0,1,1\n", 3).contains("not finite"));
        assert!(rejects("label,f0,f1\n0,inf,2\n", 2).contains("not finite"));
        assert!(rejects("label,f0,f1\n0,1,2\n1,2,-infinity\n", 3).contains("not finite"));
    }

    #[test]
    fn bad_labels() {
        assert!(rejects("label,f0\n0,1\n1.5,2\n", 3).contains("not an integer"));
        assert!(rejects("label,f0\n0,1\n1,2\n-1,2\n", 4).contains("negative"));
        assert!(rejects("label,f0\ncat,1\n", 2).contains("not a number"));
        assert!(rejects("label,f0\nnan,1\n", 2).contains("not finite"));
    }

    #[test]
    fn load_csv_names_the_missing_path() {
        match load_csv("/nonexistent/infw/train.csv") {
            Err(Error::Io { path, .. }) => assert!(path.contains("nonexistent")),
            other => panic!("expected Io error, got {other:?}"),
        }
    }

    #[test]
    fn load_csv_reads_gzip_and_reports_corrupt_gzip_with_the_path() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("infw-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("train.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&good).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(b"label,f0,f1\n1,0.5,2\n0,-1,3\n").unwrap();
        enc.finish().unwrap();
        let (x, y) = load_csv(&good).unwrap();
        assert_eq!(
            (x, y),
            (ndarray::array![[0.5, 2.0], [-1.0, 3.0]], vec![1, 0])
        );

        let bad = dir.join("bad.csv.gz");
        std::fs::write(&bad, b"label,f0\n1,2\n").unwrap(); // plain text named .gz
        match load_csv(&bad) {
            Err(Error::Io { path, .. }) => assert!(path.ends_with("bad.csv.gz"), "{path}"),
            other => panic!("expected Io, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
