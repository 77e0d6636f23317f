//! The experiment infw exists for (docs/math.md §1, §7): do infinite-width NTKs lose to finite
//! networks even when the finite networks' feature learning is disabled, and does the
//! Adam-like limit close that gap? Two dense declarations (`--arch mlp|resnet`) and two
//! CNNs, every model, the same data.
//!
//! Run: `cargo run --release --example paper` (≤ 20 minutes on 2 cores), `-- --quick`
//! (≤ 2 minutes), `-- --help` for the options. Writes `results/results.csv`, `results/table.md`,
//! `results/curves.csv` and the chart `results/accuracy.svg` (and `.png`). The measured
//! default run and what it says about the claim: docs/experiment.md.
//!
//! Layout: `cli` (arguments), `models` (how each model trains and is scored),
//! `experiment` (grids, validation, jobs), `report` (table, CSV, chart).
// √2 is written as the f64 literal 1.4142135623730951 so that it folds into the generated
// code and `network!` returns the network itself (an expression such as `2f64.sqrt()` makes
// it return a Result, checked when the value is built).
#![allow(clippy::approx_constant)]
// `cargo test` builds this example as a test (Cargo.toml: `test = true`), where `main` and
// what only it uses are not called.
#![cfg_attr(test, allow(dead_code))]

mod cli;
mod experiment;
mod models;
mod report;
#[cfg(test)]
mod tests;

use std::process::ExitCode;

fn main() -> ExitCode {
    let opts = match cli::parse(std::env::args().skip(1)) {
        Ok(cli::Command::Help) => {
            print!("{}", cli::help());
            return ExitCode::SUCCESS;
        }
        Ok(cli::Command::Run(opts)) => opts,
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    match experiment::run(&opts) {
        Ok(_) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
