//! The CSV format of infw-runtime/data/README.md: a header `label,f0,f1,…`, then one
//! example per row, an integer class label first. Every rejection names the file and the 1-based line.

use super::targets::MAX_CLASSES;
use crate::error::{Error, Result};
use ndarray::Array2;
use std::borrow::Cow;
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
/// accepted). Cells may carry surrounding spaces or double quotes (R's `write.csv`); a
/// UTF-8 byte-order mark is skipped; lines may end in `\n`, `\r\n` or a lone `\r`.
///
/// ```
/// let (x, y) = infw_runtime::data::parse_csv("label,f0,f1\n1,0.5,2\n0,-1,3\n", "toy.csv")?;
/// assert_eq!((x.dim(), y), ((2, 2), vec![1, 0]));
/// # Ok::<(), infw_runtime::Error>(())
/// ```
pub fn parse_csv(text: &str, file: &str) -> Result<(Array2<f64>, Vec<usize>)> {
    // A UTF-8 byte-order mark (Excel, Windows tools) is not part of the first cell.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Old Mac files end lines with a lone CR: make every line end `\n`.
    let text: Cow<str> = if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    };
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
    let header = cells(lines[0]).map_err(|r| malformed(file, 1, r))?;
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
        let row = cells(raw).map_err(|r| malformed(file, line, r))?;
        for (col, cell) in row.iter().map(|c| c.as_ref()).enumerate() {
            count += 1;
            if col > width {
                continue; // counted, reported as ragged below
            }
            if col == 0 {
                labels.push(parse_label(cell).map_err(|r| malformed(file, line, r))?);
                continue;
            }
            let name = &header[col];
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

/// The cells of one line, trimmed. A cell in double quotes (R's `write.csv` quotes the
/// header names, some tools quote numbers too) is unquoted, `""` inside it standing for
/// one quote, and may contain commas. Lines without quotes take a borrowing fast path.
fn cells(line: &str) -> std::result::Result<Vec<Cow<'_, str>>, String> {
    if !line.contains('"') {
        return Ok(line.split(',').map(|c| Cow::Borrowed(c.trim())).collect());
    }
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            ',' if !quoted => out.push(Cow::Owned(std::mem::take(&mut cell).trim().to_string())),
            c => cell.push(c),
        }
    }
    if quoted {
        return Err("a quoted cell has no closing `\"`".into());
    }
    out.push(Cow::Owned(cell.trim().to_string()));
    Ok(out)
}

/// A class label: a non-negative integer below [`MAX_CLASSES`], written `3` or `3.0`.
fn parse_label(cell: &str) -> std::result::Result<usize, String> {
    let bad = |why: &str| format!("label `{cell}` {why}; labels are class indices 0, 1, 2, ...");
    let too_large = || {
        bad(&format!(
            "is too large (at most {} classes, 2^16)",
            MAX_CLASSES
        ))
    };
    if let Ok(v) = cell.parse::<usize>() {
        return if v < MAX_CLASSES {
            Ok(v)
        } else {
            Err(too_large())
        };
    }
    if cell.bytes().all(|b| b.is_ascii_digit()) && !cell.is_empty() {
        return Err(too_large()); // beyond usize
    }
    match cell.parse::<f64>() {
        Err(_) => Err(bad("is not a number")),
        Ok(v) if !v.is_finite() => Err(bad("is not finite")),
        Ok(v) if v < 0.0 => Err(bad("is negative")),
        Ok(v) if v.fract() != 0.0 => Err(bad("is not an integer")),
        Ok(v) if v >= MAX_CLASSES as f64 => Err(too_large()),
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

    /// Real-world exports: a UTF-8 BOM (once "found `\u{feff}label`"), R's write.csv with
    /// every header cell and some numbers quoted, and old-Mac CR-only line ends (once
    /// "has no example rows"). Each must read as the plain file does.
    #[test]
    fn reads_bom_quoted_cells_and_cr_only_lines_as_the_plain_file() {
        let plain = "label,f0,f1\n2,1.5,-3\n0,0,1e-3\n";
        let want = parse_csv(plain, "plain.csv").unwrap();
        let variants = [
            format!("\u{feff}{plain}"),
            "\"label\",\"f0\",\"f1\"\n2,1.5,-3\n0,0,1e-3\n".to_string(),
            "\"label\",\"f0\",\"f1\"\n\"2\",\"1.5\", \"-3\"\n0,\"0\",1e-3\n".to_string(),
            plain.replace('\n', "\r"),
            format!("\u{feff}{}", plain.replace('\n', "\r\n")),
        ];
        for v in &variants {
            assert_eq!(parse_csv(v, "v.csv").unwrap(), want, "{v:?}");
        }
        // Quoted names may hold commas and doubled quotes; they still count as one cell.
        let (x, _) = parse_csv("\"label\",\"a, b\",\"say \"\"hi\"\"\"\n1,2,3\n", "q.csv").unwrap();
        assert_eq!(x, ndarray::array![[2.0, 3.0]]);
        // CR-only files report the right line.
        assert!(rejects("label,f0\r0,1\r1,x\r", 3).contains("not a number"));
        assert!(rejects("label,f0\n0,\"1\n", 2).contains("closing"));
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

    /// Labels name classes, at most 2^16 of them: a label of 10^6 once made `paper`
    /// allocate 22.8 GB, 2^53 aborted, 18446744073709551615 wrapped the class count.
    #[test]
    fn labels_beyond_the_class_bound_are_rejected_at_their_line() {
        for huge in [
            "65536",
            "1000000",
            "9007199254740992",
            "18446744073709551615",
            "1e6",
        ] {
            let r = rejects(&format!("label,f0\n0,1\n{huge},2\n"), 3);
            assert!(
                r.contains("too large") && r.contains("65536"),
                "{huge}: {r}"
            );
        }
        // One below the bound is a class.
        let (_, y) = parse_csv("label,f0\n65535,1\n", "ok.csv").unwrap();
        assert_eq!(y, vec![MAX_CLASSES - 1]);
        // Beyond u64 as well (a digit string that does not parse as usize).
        assert!(rejects("label,f0\n99999999999999999999999,1\n", 2).contains("too large"));
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
