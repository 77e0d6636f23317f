//! The paper example end to end in quick mode on wine (a few seconds in release mode):
//! it must succeed and write the CSVs and the chart; a bad `--data` folder must be an
//! error message, not a panic. `cargo test` builds this example as a test (`test = true`
//! in Cargo.toml) instead of as a binary, so its code is compiled once, not twice.

use super::{cli, experiment, report};
use std::path::PathBuf;

fn options(args: &[&str]) -> cli::Options {
    match cli::parse(args.iter().map(|s| s.to_string())) {
        Ok(cli::Command::Run(o)) => o,
        other => panic!("expected a run, got {other:?}"),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("infw-paper-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn quick_run_on_wine_writes_the_table_csvs_and_chart() {
    let out = scratch("quick");
    // The mlp declaration only: the resnet runs the same code (each declaration costs ~25 s
    // here); `paper --quick --dataset wine --arch resnet` is run by hand.
    let opts = options(&[
        "--quick",
        "--dataset",
        "wine",
        "--arch",
        "mlp",
        "--out",
        out.to_str().unwrap(),
    ]);
    let all = experiment::run(&opts).expect("quick run succeeds");

    // Every model of the table, both losses where they apply, each with a test accuracy.
    for model in report::MODELS {
        if model.contains("uncentred") {
            continue; // not trained in quick mode
        }
        let rows: Vec<_> = all.iter().filter(|o| o.model == model).collect();
        let expected = if model.contains("regression") { 1 } else { 2 };
        assert_eq!(rows.len(), expected, "{model}");
        for o in rows {
            assert_eq!(o.dataset, "wine");
            assert!(
                o.test_acc.is_finite() && (0.0..=1.0).contains(&o.test_acc),
                "{model}: {o:?}"
            );
        }
    }
    // Kernel regression on standardised wine is a solved problem (≥ 90 % everywhere it is
    // measured); a much lower number means the pipeline is broken, not the model weak.
    let ntk = all.iter().find(|o| o.model == "NTK regression").unwrap();
    assert!(ntk.test_acc > 0.85, "{ntk:?}");

    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(csv.starts_with("dataset,group,model,loss,"));
    assert_eq!(csv.lines().count(), 1 + all.len());
    let curves = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    assert!(curves.lines().count() > all.len());
    let svg = std::fs::read_to_string(out.join("accuracy.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("wine"),
        "chart has its titles"
    );
    assert!(svg.contains("<text"), "chart has text");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_bad_data_folder_is_an_error_message() {
    let out = scratch("bad");
    let missing = scratch("missing-data");
    let opts = options(&[
        "--data",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = experiment::run(&opts).expect_err("no such folder");
    assert!(err.contains("cannot load --data"), "{err}");
    assert!(
        err.contains("train.csv"),
        "the loader names the file: {err}"
    );
    assert!(!out.exists(), "nothing is written before the data loads");
}

#[test]
fn unknown_flags_are_rejected() {
    let e = cli::parse(["--quik".to_string()]).unwrap_err();
    assert!(e.contains("--quik") && e.contains("--quick"), "{e}");
}

/// The convolutional rows (docs/math.md §9) in quick mode on the first 200 digits images:
/// every model but the Adam-like limit and the exact counterparts (no closed form for
/// convolutions), each with a test accuracy; the CNN kernels must classify digits well
/// above chance even from 160 fitting images (≥ 80 %: a broken front gives ~10 %).
#[test]
fn quick_cnn_rows_on_digits() {
    let data = infw::data::Dataset::embedded("digits").unwrap();
    let d = experiment::cnn_dataset(&data, true).unwrap();
    assert_eq!(d.name, "digits CNN");
    assert_eq!(d.x_train.nrows(), experiment::QUICK_CNN_EXAMPLES);
    let net = infw::network! {
        input(8, 8, 1) conv(8, size = 3, w_std = 1.4, b_std = 0.1) relu global_avg_pool
    };
    let (rows, header) = experiment::run_dataset(&net, &d, &experiment::Budget::new(true)).unwrap();
    assert!(header.contains("no Adam-like limit"), "{header}");
    for model in report::MODELS {
        let n = rows.iter().filter(|o| o.model == model).count();
        let expected = if model.contains("Adam limit")
            || model.contains("sign descent")
            || model.contains("per-example")
            || model.contains("uncentred")
            || model.contains("from w=")
            || model.contains("last iterate")
        {
            0
        } else if model.contains("regression") {
            1
        } else {
            2
        };
        assert_eq!(n, expected, "{model}");
    }
    for o in &rows {
        assert!(
            o.test_acc.is_finite() && (0.0..=1.0).contains(&o.test_acc),
            "{o:?}"
        );
    }
    let ntk = rows.iter().find(|o| o.model == "NTK regression").unwrap();
    assert!(ntk.test_acc >= 0.8, "{ntk:?}");
}
