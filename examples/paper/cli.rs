//! Command-line options of the paper experiment, parsed by clap (derive): values are
//! never taken from the next flag (`--data --quick` is an error), stray arguments are
//! rejected, and a dataset given twice is an error rather than a second run.

use clap::{CommandFactory, FromArgMatches, Parser};
use std::path::PathBuf;

/// The datasets of the default run, in the order of the table.
pub const DEFAULT_DATASETS: [&str; 4] = ["digits", "mnist1d", "wine", "breast_cancer"];

const ABOUT: &str = "\
paper: the experiment infw exists for (docs/math.md §1, §7). Two dense declarations
(mlp: relu, 2 hidden layers of 512; resnet: dense, a residual block dense-gelu-dense,
layer_norm, relu; σw = √2, σb = 0.1; `--arch` picks), their two infinite-width limits
(NTK-SGD, Adam-like), the finite network trained with SGD and Adam, its linearization,
the standard-parameterization network, kernel regression, and the exact finite
counterparts of both limits at widths 512 and 2048, on the same data; then the
same models (but the Adam-like limit, which has no closed form for convolutions) for
a CNN on mnist1d (1-D) and digits (8×8) when those datasets are in the run.";

/// The flags; `--dataset` and `--data` keep their command-line order (see [`parse`]).
#[derive(Parser, Debug)]
#[command(
    name = "paper",
    about = ABOUT,
    override_usage = "cargo run --release --example paper -- [OPTIONS]"
)]
struct Args {
    /// Reduced grids, epochs and subsamples (whole run ≤ 2 minutes)
    #[arg(long)]
    quick: bool,
    /// One embedded dataset (repeatable; default: all four)
    #[arg(long = "dataset", value_name = "NAME", value_parser = DEFAULT_DATASETS)]
    datasets: Vec<String>,
    /// Your own data: DIR/train.csv and DIR/test.csv laid out like the embedded ones
    /// (header label,f0,..; column 0 = class 0..C-1) (repeatable; replaces the default list)
    #[arg(long = "data", value_name = "DIR", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    dirs: Vec<String>,
    /// The dense declaration(s): `mlp` (dense relu ×2) and/or `resnet` (dense, a residual
    /// block dense-gelu-dense, layer_norm, relu) (repeatable; default: both)
    #[arg(long = "arch", value_name = "NAME", value_parser = ["mlp", "resnet"])]
    archs: Vec<String>,
    /// Skip the convolutional rows (about 30 of the default run's 40 min)
    #[arg(long)]
    no_cnn: bool,
    /// Where results.csv, curves.csv, table.md and accuracy.svg/.png go
    #[arg(long, value_name = "DIR", default_value = "results", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    out: String,
}

/// The help text.
pub fn help() -> String {
    Args::command().render_long_help().to_string()
}

/// A dense declaration of the experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Declaration {
    /// `dense(512) relu dense(512) relu` (w_std √2, b_std 0.1).
    Mlp,
    /// `dense(512) residual(dense(512) gelu dense(512)) layer_norm relu` (same stds).
    Resnet,
}

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
    /// The dense declarations to run, in the order given.
    pub archs: Vec<Declaration>,
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
    let args: Vec<String> = args.into_iter().collect();
    let argv = std::iter::once("paper".to_string()).chain(args.iter().cloned());
    let matches = match Args::command().try_get_matches_from(argv) {
        Ok(m) => m,
        // clap shows help as soon as it meets the flag; anything else given is a mistake.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            return match args.iter().find(|a| !matches!(a.as_str(), "-h" | "--help")) {
                None => Ok(Command::Help),
                Some(other) => Err(format!("--help takes no other arguments; found `{other}`")),
            };
        }
        // clap's rendering starts with its own `error: `; main adds one
        Err(e) => {
            let text = e.render().to_string();
            let text = text.trim_end();
            return Err(text.strip_prefix("error: ").unwrap_or(text).to_string());
        }
    };
    let args = Args::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    // Both kinds of source in the order given.
    let at = |id: &str| -> Vec<usize> {
        matches
            .indices_of(id)
            .map(|i| i.collect())
            .unwrap_or_default()
    };
    let mut sources: Vec<(usize, Source)> = at("datasets")
        .into_iter()
        .zip(args.datasets.iter().map(|n| Source::Embedded(n.clone())))
        .chain(
            at("dirs")
                .into_iter()
                .zip(args.dirs.iter().map(|d| Source::Dir(PathBuf::from(d)))),
        )
        .collect();
    sources.sort_by_key(|(i, _)| *i);
    let mut sources: Vec<Source> = sources.into_iter().map(|(_, s)| s).collect();
    for (k, s) in sources.iter().enumerate() {
        if sources[..k].contains(s) {
            let what = match s {
                Source::Embedded(n) => format!("--dataset {n}"),
                Source::Dir(d) => format!("--data {}", d.display()),
            };
            return Err(format!("`{what}` is given twice; each dataset runs once"));
        }
    }
    if sources.is_empty() {
        sources = DEFAULT_DATASETS
            .iter()
            .map(|n| Source::Embedded(n.to_string()))
            .collect();
    }
    let mut archs = Vec::new();
    for a in &args.archs {
        let d = if a == "mlp" {
            Declaration::Mlp
        } else {
            Declaration::Resnet
        };
        if archs.contains(&d) {
            return Err(format!("`--arch {a}` is given twice"));
        }
        archs.push(d);
    }
    if archs.is_empty() {
        archs = vec![Declaration::Mlp, Declaration::Resnet];
    }
    Ok(Command::Run(Options {
        quick: args.quick,
        cnn: !args.no_cnn,
        archs,
        sources,
        out: PathBuf::from(args.out),
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
        assert_eq!(o.archs, vec![Declaration::Mlp, Declaration::Resnet]);
        let Ok(Command::Run(r)) = p(&["--arch", "resnet"]) else {
            panic!("--arch resnet parses")
        };
        assert_eq!(r.archs, vec![Declaration::Resnet]);
        assert!(p(&["--arch", "resnet", "--arch", "resnet"]).is_err());
        assert!(p(&["--arch", "vgg"]).is_err());
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

    /// What the hand-written parser got wrong: a flag taken as a value, repeated
    /// datasets run twice, arguments after --help accepted.
    #[test]
    fn rejects_flags_as_values_repeats_and_stray_arguments() {
        for bad in [
            &["--data", "--quick"][..],
            &["--out", "--quick"],
            &["--dataset", "wine", "--dataset", "wine"],
            &["--data", "d", "--data", "d"],
            &["--help", "extra"],
            &["stray"],
            &["--data="],
            &["--quick", "--quick"],
        ] {
            assert!(p(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(p(&["--dataset", "wine", "--dataset", "wine"])
            .unwrap_err()
            .contains("twice"));
        // Order of mixed sources is the command line's.
        let Ok(Command::Run(o)) = p(&["--data", "a", "--dataset", "wine", "--data=b"]) else {
            panic!()
        };
        assert_eq!(
            o.sources,
            vec![
                Source::Dir("a".into()),
                Source::Embedded("wine".into()),
                Source::Dir("b".into())
            ]
        );
        assert_eq!(o.out, PathBuf::from("results"));
        assert!(help().contains("--dataset") && help().contains("--no-cnn"));
    }
}
