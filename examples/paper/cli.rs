//! Command-line options of the paper experiment, parsed by hand (no dependency).

use std::path::PathBuf;

/// The datasets of the default run, in the order of the table.
pub const DEFAULT_DATASETS: [&str; 4] = ["digits", "mnist1d", "wine", "breast_cancer"];

pub const HELP: &str = "\
paper: the experiment infw exists for (docs/math.md §1, §7). One architecture
(relu, 2 hidden layers of 512, σw = √2, σb = 0.1), its two infinite-width limits
(NTK-SGD, Adam-like), the finite network trained with SGD and Adam, its linearization,
the standard-parameterization network, kernel regression, and the exact finite
counterparts of both limits at widths 512 and 2048, on the same data; then the
same models (but the Adam-like limit, which has no closed form for convolutions) for
a CNN on mnist1d (1-D) and digits (8×8) when those datasets are in the run.

USAGE:
    cargo run --release --example paper -- [OPTIONS]

OPTIONS:
    --quick           reduced grids, epochs and subsamples (whole run ≤ 2 minutes)
    --dataset NAME    one embedded dataset: digits, mnist1d, wine, breast_cancer
                      (repeatable; default: all four)
    --data DIR        your own data: DIR/train.csv and DIR/test.csv laid out like the
                      embedded ones (header label,f0,..; column 0 = class 0..C-1)
                      (repeatable; replaces the default list)
    --no-cnn          skip the convolutional rows (about 30 of the default run's 40 min)
    --out DIR         where results.csv, curves.csv, table.md and accuracy.svg/.png go
                      (default: results/)
    -h, --help        this text
";

/// Where one dataset comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Embedded(String),
    Dir(PathBuf),
}

/// Everything a run needs besides the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub quick: bool,
    /// Also run the CNN declarations on mnist1d and digits (off with `--no-cnn`).
    pub cnn: bool,
    pub sources: Vec<Source>,
    pub out: PathBuf,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    Help,
}

/// Parses the arguments after the program name; an error is a message for the user.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut quick = false;
    let mut cnn = true;
    let mut sources = Vec::new();
    let mut out = PathBuf::from("results");
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("{name} needs a value (see --help)")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" if inline.is_none() => quick = true,
            "--no-cnn" if inline.is_none() => cnn = false,
            "--dataset" => {
                let name = value("--dataset")?;
                if !DEFAULT_DATASETS.contains(&name.as_str()) {
                    return Err(format!(
                        "unknown dataset `{name}`; the embedded datasets are {} (use --data DIR for your own)",
                        DEFAULT_DATASETS.join(", ")
                    ));
                }
                sources.push(Source::Embedded(name));
            }
            "--data" => sources.push(Source::Dir(PathBuf::from(value("--data")?))),
            "--out" => out = PathBuf::from(value("--out")?),
            _ => {
                return Err(format!(
                    "unknown argument `{arg}`; valid: --quick, --no-cnn, --dataset NAME, --data DIR, --out DIR, --help"
                ))
            }
        }
    }
    if sources.is_empty() {
        sources = DEFAULT_DATASETS
            .iter()
            .map(|n| Source::Embedded(n.to_string()))
            .collect();
    }
    Ok(Command::Run(Options {
        quick,
        cnn,
        sources,
        out,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Command, String> {
        parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_flags_and_rejects_unknown_ones() {
        let Ok(Command::Run(o)) = p(&["--quick", "--dataset", "wine", "--out=x"]) else {
            panic!()
        };
        assert!(o.quick);
        assert!(o.cnn, "the CNN rows are on by default");
        let Ok(Command::Run(no_cnn)) = p(&["--no-cnn"]) else {
            panic!()
        };
        assert!(!no_cnn.cnn);
        assert!(p(&["--no-cnn=1"]).is_err());
        assert_eq!(o.sources, vec![Source::Embedded("wine".into())]);
        assert_eq!(o.out, PathBuf::from("x"));
        assert!(p(&["--fast"]).unwrap_err().contains("--fast"));
        assert!(p(&["--dataset", "iris"]).unwrap_err().contains("iris"));
        assert!(p(&["--out"]).is_err());
        assert_eq!(p(&["--help"]), Ok(Command::Help));
    }
}
