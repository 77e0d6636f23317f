//! Kernel regression past the N×N matrix (docs/scale.md): the learning curve of the paper's
//! infinitely wide MLP on mnist1d_70k (60 000 / 10 000 signals, read from data/mnist1d_70k as
//! gzip), NNGP and NTK, at N = 4k, 12k, 30k, 60k with Nyström centres + Falkon's preconditioned
//! conjugate gradients, and exact kernel regression beside it where K(X, X) still fits
//! (N ≤ 12k by default).
//!
//! The ridge of each kernel is chosen once, at N = 4000, by exact regression on a held-out
//! fifth (grid 1e-6 … 1e-1 × the mean kernel diagonal); that same absolute ridge is used by
//! every solver at every N, so exact and Falkon solve the same problem. The test set is
//! only used to report.
//!
//! With `--variance`, every Falkon fit is followed by its approximate predictive variance
//! on the 10 000 test signals (docs/math.md §5 "At scale": the Nyström/DTC GP posterior for
//! the NNGP, the Nyström ensemble for the NTK), reported with its time, peak memory, mean,
//! and the accuracy on the test points of lower and upper half variance.
//!
//! Run: `cargo run --release --example scale [-- --sizes 4000,12000 --centres 4096 --exact-max 12000 --kernels nngp,ntk --variance]`
// √2 is written as the f64 literal 1.4142135623730951 so that it folds into the generated
// code and `network!` returns the network itself (an expression such as `2f64.sqrt()` makes
// it return a Result, checked when the value is built).
#![allow(clippy::approx_constant)]
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use infw::data::{accuracy, one_hot, Dataset};
use infw::solve::{CovarianceMode, FalkonOptions, FalkonProgress, KernelRegression};
use infw::{KernelKind, KernelProgram, Network, TrainingInputs};
use ndarray::{s, Array2};
use std::io::IsTerminal;
use std::time::Instant;

const RELATIVE_RIDGES: [f64; 6] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

struct Args {
    sizes: Vec<usize>,
    centres: usize,
    exact_max: usize,
    kernels: Vec<KernelKind>,
    variance: bool,
}

fn parse_args() -> infw::Result<Args> {
    let mut args = Args {
        sizes: vec![4_000, 12_000, 30_000, 60_000],
        centres: FalkonOptions::default().centres,
        exact_max: 12_000,
        kernels: vec![KernelKind::Nngp, KernelKind::Ntk],
        variance: false,
    };
    let list: Vec<String> = std::env::args().skip(1).collect();
    let bad = |flag: &'static str, value: &str| {
        infw::Error::InvalidArgument {
        name: flag,
        value: value.to_string(),
        reason: "expected --sizes N,N,…  --centres M  --exact-max N (positive integers; --exact-max 0 for none)  --kernels nngp,ntk  --variance".into(),
    }
    };
    let mut it = list.iter();
    while let Some(flag) = it.next() {
        if flag == "--variance" {
            args.variance = true;
            continue;
        }
        let value = it.next().ok_or_else(|| bad("argument", flag))?;
        let number = |v: &str, f| v.parse::<usize>().ok().filter(|&n| n > 0).ok_or(bad(f, v));
        match flag.as_str() {
            "--sizes" => {
                args.sizes = value
                    .split(',')
                    .map(|v| number(v, "--sizes"))
                    .collect::<infw::Result<_>>()?
            }
            "--centres" => args.centres = number(value, "--centres")?,
            "--exact-max" => {
                args.exact_max = value.parse().map_err(|_| bad("--exact-max", value))?
            }
            "--kernels" => {
                args.kernels = value
                    .split(',')
                    .map(|v| match v {
                        "nngp" => Ok(KernelKind::Nngp),
                        "ntk" => Ok(KernelKind::Ntk),
                        _ => Err(bad("--kernels", v)),
                    })
                    .collect::<infw::Result<_>>()?
            }
            _ => return Err(bad("argument", flag)),
        }
    }
    Ok(args)
}

/// Peak resident memory since the last reset, in GB (Linux; NaN elsewhere).
fn peak_gb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1e6)
}

/// Resets the peak-memory mark so each run is measured on its own (Linux ≥ 4.0).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn bar(len: u64, prefix: String) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if std::io::stdout().is_terminal() {
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>22} [{elapsed_precise}] {bar:30} {msg}")
        {
            pb.set_style(style);
        }
        pb.set_prefix(prefix);
    } else {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb
}

fn take(kind: KernelKind, k: infw::KernelMatrices) -> Array2<f64> {
    match kind {
        KernelKind::Ntk => k.ntk,
        KernelKind::Nngp => k.nngp,
    }
    .expect("requested")
}

/// The absolute ridge: the relative grid value with the best held-out accuracy at N = n,
/// times the mean diagonal of K(X, X).
fn choose_ridge<K: KernelProgram + Clone>(
    net: &Network<K>,
    kind: KernelKind,
    x: &Array2<f64>,
    labels: &[usize],
    classes: usize,
) -> infw::Result<(f64, f64)> {
    let fit_n = x.nrows() - x.nrows() / 5;
    let (x_fit, x_val) = (x.slice(s![..fit_n, ..]), x.slice(s![fit_n.., ..]));
    let y_fit = one_hot(&labels[..fit_n], classes)?;
    let k_fit = take(
        kind,
        net.kernels(&x_fit, TrainingInputs::of(&x_fit), kind.want())?,
    );
    let k_val = take(
        kind,
        net.kernels(&x_val, TrainingInputs::of(&x_fit), kind.want())?,
    );
    let mean_diag = k_fit.diag().mean().unwrap_or(1.0);
    let mut best = (f64::NAN, -1.0, f64::NAN);
    for r in RELATIVE_RIDGES {
        let ridge = r * mean_diag;
        let solver = KernelRegression::fit(k_fit.view(), y_fit.view(), ridge)?;
        let acc = accuracy(solver.predict(k_val.view())?.view(), &labels[fit_n..])?;
        if acc > best.1 {
            best = (ridge, acc, r);
        }
    }
    Ok((best.0, best.2))
}

/// The approximate predictive variance of a Falkon fit on the test set: preparation
/// (one more pass over K(X, C)) and evaluation timed, peak memory of both, and whether the
/// test points of larger variance are more often misclassified.
fn variance_run<K: KernelProgram + Clone>(
    net: &Network<K>,
    model: &infw::FalkonModel<K>,
    x: &Array2<f64>,
    data: &Dataset,
    n: usize,
    kind: KernelKind,
) -> infw::Result<String> {
    reset_peak();
    let t = Instant::now();
    let pb = bar(n as u64, format!("N = {n} {kind:?} variance"));
    let post = model.uncertainty_with(x, |p| {
        if let FalkonProgress::Kernel { rows_done, .. } = p {
            pb.set_position(rows_done as u64);
        }
    })?;
    pb.finish_and_clear();
    let prepared = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let g = post.predict_with_uncertainty(&data.x_test, CovarianceMode::Diagonal)?;
    let evaluated = t.elapsed().as_secs_f64();
    let peak = peak_gb();
    let var = g.gaussian.covariance.variances();
    let prior = net
        .kernel_diagonals(&data.x_test, infw::Want::NNGP)?
        .nngp
        .expect("requested");
    // the relu kernels' Σ(x, x) grows with ‖x‖², so the variance is also read relative to it
    let relative = &var / &prior;
    // accuracy on the test points of the lower and the upper half of `score`
    let halves = |score: &ndarray::Array1<f64>| -> infw::Result<(f64, f64)> {
        let mut order: Vec<usize> = (0..score.len()).collect();
        order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
        let half = order.len() / 2;
        let acc = |rows: &[usize]| {
            let labels: Vec<usize> = rows.iter().map(|&i| data.y_test[i]).collect();
            accuracy(
                g.gaussian.mean.select(ndarray::Axis(0), rows).view(),
                &labels,
            )
        };
        Ok((100.0 * acc(&order[..half])?, 100.0 * acc(&order[half..])?))
    };
    let (low, high) = halves(&var)?;
    let (rel_low, rel_high) = halves(&relative)?;
    Ok(format!(
        "| {n} | {kind:?} | {} | {prepared:.1} | {evaluated:.1} | {peak:.2} | {:.4e} | {:.4} | {:.4} | {low:.2} % / {high:.2} % | {rel_low:.2} % / {rel_high:.2} % | {} (largest {:.1e} of Σ(x, x)) |",
        model.centre_rows().len(),
        var.mean().unwrap_or(f64::NAN),
        prior.mean().unwrap_or(f64::NAN),
        relative.mean().unwrap_or(f64::NAN),
        g.clamping.count,
        g.clamping.largest
    ))
}

fn main() -> infw::Result<()> {
    let args = parse_args()?;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist1d_70k");
    let start = Instant::now();
    let data = Dataset::from_dir(dir)?.standardized();
    println!(
        "mnist1d_70k: {} train / {} test signals of {} features, loaded and standardised in {:.1} s; {} rayon threads",
        data.x_train.nrows(),
        data.x_test.nrows(),
        data.features(),
        start.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    let net = infw::network! {
        dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
        dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
        readout(w_std = 1.4142135623730951, b_std = 0.1)
    };
    let x_all = &data.x_train;
    let options = FalkonOptions {
        centres: args.centres,
        ..FalkonOptions::default()
    };
    println!(
        "Falkon: {} centres, ≤ {} CG iterations, tolerance {:e}, K(X, C) kept up to {:.1} GB",
        options.centres,
        options.max_iterations,
        options.tolerance,
        options.cache_bytes as f64 / 1e9
    );
    let mut ridges = Vec::new();
    for &kind in &args.kernels {
        let n = 4_000.min(x_all.nrows());
        let (ridge, rel) = choose_ridge(
            &net,
            kind,
            &x_all.slice(s![..n, ..]).to_owned(),
            &data.y_train[..n],
            data.classes,
        )?;
        println!("{kind:?}: ridge {ridge:.3e} ({rel:e} × mean diagonal), chosen at N = {n} on a held-out fifth");
        ridges.push((kind, ridge));
    }
    let mut variances = Vec::new();
    println!(
        "\n| N | kernel | solver | test accuracy | time (s) | peak memory (GB) | CG iterations |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &n in &args.sizes {
        let n = n.min(x_all.nrows());
        let x = x_all.slice(s![..n, ..]).to_owned();
        let y = one_hot(&data.y_train[..n], data.classes)?;
        for &(kind, ridge) in &ridges {
            if n <= args.exact_max {
                reset_peak();
                let t = Instant::now();
                let model = match kind {
                    KernelKind::Ntk => net.ntk_regression(&x, &y, ridge)?,
                    KernelKind::Nngp => net.nngp_regression(&x, &y, ridge)?,
                };
                let acc = accuracy(model.predict(&data.x_test)?.view(), &data.y_test)?;
                drop(model);
                println!(
                    "| {n} | {kind:?} | exact | {:.2} % | {:.1} | {:.2} | – |",
                    100.0 * acc,
                    t.elapsed().as_secs_f64(),
                    peak_gb()
                );
            }
            reset_peak();
            let t = Instant::now();
            let pb = bar(
                options.max_iterations as u64,
                format!("N = {n} {kind:?} Falkon"),
            );
            let model = net.falkon_regression_with(kind, &x, &y, ridge, &options, |p| match p {
                FalkonProgress::Kernel { rows_done, rows } => {
                    pb.set_message(format!("kernel rows {rows_done}/{rows}"))
                }
                FalkonProgress::Iteration {
                    iteration,
                    relative_residual,
                    ..
                } => {
                    pb.set_position(iteration as u64);
                    pb.set_message(format!("CG residual {relative_residual:.1e}"));
                }
            })?;
            pb.finish_and_clear();
            let acc = accuracy(model.predict(&data.x_test)?.view(), &data.y_test)?;
            let report = model.solver().report();
            println!(
                "| {n} | {kind:?} | Falkon, M = {}, {} rows kept | {:.2} % | {:.1} | {:.2} | {}{} |",
                report.centres,
                report.kept_rows,
                100.0 * acc,
                t.elapsed().as_secs_f64(),
                peak_gb(),
                report.iterations,
                if report.converged {
                    String::new()
                } else {
                    format!(" (not converged: {:.1e})", report.relative_residual)
                }
            );
            if args.variance {
                variances.push(variance_run(&net, &model, &x, &data, n, kind)?);
            }
        }
    }
    if args.variance {
        println!("\nApproximate predictive variance (Nyström through the fit's centres) on the {} test signals:\n", data.x_test.nrows());
        println!("| N | kernel | M | preparation (s) | variances (s) | peak memory (GB) | mean variance | mean Σ(x, x) | mean variance / Σ(x, x) | accuracy, lower / upper half by variance | … by variance / Σ(x, x) | clamped |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for row in &variances {
            println!("{row}");
        }
    }
    println!(
        "\ntotal {:.1} s; peak memory is the process's resident high-water mark per run (VmHWM, reset before each)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
