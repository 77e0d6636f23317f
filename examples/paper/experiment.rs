//! The experiment: for each dataset, choose every model's hyper-parameters on a validation
//! split of the training set, train it on the whole training set, score it on the test set
//! once, and collect every number for the report.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use infw::data::Dataset;
use infw::loss::argmax;
use infw::train::{AdamLimit, NtkSgd};
use infw::{KernelMatrices, KernelProgram, LimitRule, Loss, Network, TrainingInputs, Want};
use rayon::prelude::*;

use crate::cli::{Declaration, Options, Source};
use crate::models::{
    build, initial_outputs, kernel_regression, sub_kernels, train_finite, train_limit, Arch, Curve,
    Opt, Part, SEED,
};

/// Fraction of the training set held out (stratified, seeded) to choose hyper-parameters.
pub const VALIDATION: f64 = 0.2;

/// Grids, epochs and subsamples of a run.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Maximum epochs of the function-space limits (the epoch count is chosen on validation).
    pub limit_epochs: usize,
    /// Maximum epochs of the mini-batch finite models (chosen on validation likewise).
    pub finite_epochs: usize,
    /// Mini-batch size of the finite SGD/Adam/linearized/standard models.
    pub batch: usize,
    /// Small datasets get more epochs, up to this many, so that the mini-batch models make
    /// at least `min_steps` optimizer steps on the fit split.
    pub min_steps: usize,
    pub max_finite_epochs: usize,
    /// NTK limit with MSE: η = c / max_b Θ(x_b, x_b) for these c (< 2 keeps every step a
    /// contraction, so the per-example iteration cannot blow up).
    pub ntk_mse_fractions: &'static [f64],
    pub ntk_ce_rates: &'static [f64],
    pub adam_limit_mse_rates: &'static [f64],
    pub adam_limit_ce_rates: &'static [f64],
    /// SGD on the NTK-parameterized network and its linearization.
    pub sgd_rates: &'static [f64],
    /// Adam on the NTK-parameterized network.
    pub adam_rates: &'static [f64],
    /// Adam on the linearization.
    pub lin_adam_rates: &'static [f64],
    pub std_sgd_rates: &'static [f64],
    pub std_adam_rates: &'static [f64],
    /// Kernel-regression ridge λ as a multiple of mean diag K.
    pub ridges: &'static [f64],
    /// Training examples used by the exact finite counterparts of the limits (and the
    /// limits they are compared with); the rest is a stratified seeded subsample.
    pub exact_subsample: usize,
    /// Epochs of the exact finite counterparts (per-example steps).
    pub exact_epochs: usize,
    /// Also train the uncentred linearization (with the centred one's hyper-parameters).
    pub uncentred: bool,
}

impl Budget {
    /// The default run (≤ 20 minutes on 2 cores, measured) or the quick one (≤ 2 minutes).
    pub fn new(quick: bool) -> Budget {
        if quick {
            Budget {
                limit_epochs: 3,
                finite_epochs: 3,
                batch: 64,
                min_steps: 30,
                max_finite_epochs: 15,
                ntk_mse_fractions: &[0.5, 1.9],
                ntk_ce_rates: &[0.3, 1.0],
                adam_limit_mse_rates: &[0.1, 0.3],
                adam_limit_ce_rates: &[0.3, 1.0],
                sgd_rates: &[0.3, 1.0],
                adam_rates: &[0.01, 0.03],
                lin_adam_rates: &[0.003, 0.01],
                std_sgd_rates: &[0.03, 0.1],
                std_adam_rates: &[3e-4, 1e-3],
                ridges: &[1e-4, 1e-2],
                exact_subsample: 100,
                exact_epochs: 2,
                uncentred: false,
            }
        } else {
            Budget {
                limit_epochs: 60,
                finite_epochs: 30,
                batch: 64,
                min_steps: 400,
                max_finite_epochs: 50,
                ntk_mse_fractions: &[0.25, 0.5, 1.0, 1.9],
                ntk_ce_rates: &[0.3, 1.0, 3.0, 10.0],
                adam_limit_mse_rates: &[0.03, 0.1, 0.3, 1.0],
                adam_limit_ce_rates: &[0.3, 1.0, 3.0, 10.0],
                sgd_rates: &[0.3, 1.0, 3.0, 10.0],
                adam_rates: &[0.01, 0.03, 0.1],
                lin_adam_rates: &[0.001, 0.003, 0.01, 0.03],
                std_sgd_rates: &[0.03, 0.1, 0.3, 1.0],
                std_adam_rates: &[1e-3, 3e-3, 1e-2],
                ridges: &[1e-6, 1e-4, 1e-2, 1e-1],
                exact_subsample: 500,
                exact_epochs: 4,
                uncentred: true,
            }
        }
    }
}

/// Which part of the table a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// docs/math.md §7's models: the limits and the finite networks with and without feature learning.
    Main,
    /// The standard-parameterization network and closed-form kernel regression.
    Reference,
    /// The exact finite counterparts of the limits (per-example, on a subsample), with
    /// the limit's last iterate on the same subsample.
    Exact,
}

/// One row of the results: a model with one loss on one dataset.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub dataset: String,
    pub group: Group,
    pub model: String,
    pub loss: &'static str,
    /// Chosen (or inherited) hyper-parameters, human-readable.
    pub hyper: String,
    pub lr: f64,
    pub epochs: usize,
    /// Best validation accuracy of the grid (NaN where nothing was chosen on validation).
    pub val_acc: f64,
    pub test_acc: f64,
    /// Wall time of the final training (kernels or network training, per-epoch scoring
    /// included), seconds.
    pub seconds: f64,
    /// Wall time of the hyper-parameter search, seconds.
    pub select_seconds: f64,
    /// Training examples the final model saw.
    pub n_train: usize,
    /// Test accuracy after every epoch of the final training.
    pub curve: Vec<f64>,
    /// Exact finite counterparts: fraction of test arg-max predictions equal to those of
    /// the limit started from the same initial function (NaN elsewhere).
    pub agreement: f64,
    /// Exact finite counterparts: ‖f − f_lim‖/‖f_lim‖ on the test set (NaN elsewhere).
    pub rel_diff: f64,
    pub note: String,
}

pub fn loss_name(loss: Loss) -> &'static str {
    match loss {
        Loss::Mse => "MSE",
        Loss::CrossEntropy => "CE",
    }
}

/// The (lr, epochs, validation accuracy) with the best validation accuracy; ties (common
/// on small validation sets, where several points reach 100 %) go to the lower validation
/// loss, then to the earlier grid point and epoch.
fn best(grid: &[(f64, Curve)]) -> Option<(f64, usize, f64)> {
    ranked(grid).into_iter().next()
}

/// Every grid point's best epoch, best first by the order of [`best`]: the fallbacks when
/// the chosen rate diverges in the final training.
fn ranked(grid: &[(f64, Curve)]) -> Vec<(f64, usize, f64)> {
    let mut points: Vec<(f64, usize, f64, f64)> = Vec::new();
    for (lr, c) in grid {
        let mut out: Option<(f64, usize, f64, f64)> = None;
        for (e, &a) in c.acc.iter().enumerate() {
            let l = c
                .loss
                .get(e)
                .copied()
                .filter(|l| l.is_finite())
                .unwrap_or(f64::INFINITY);
            let better = match out {
                None => true,
                Some((_, _, b, bl)) => a > b || (a == b && l < bl),
            };
            if a.is_finite() && better {
                out = Some((*lr, e + 1, a, l));
            }
        }
        points.extend(out);
    }
    // Stable: equal accuracy and loss keep the grid order.
    points.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.3.total_cmp(&b.3)));
    points.into_iter().map(|(lr, e, a, _)| (lr, e, a)).collect()
}

/// A test accuracy for the console: `97.31 %`, or `diverged` (never `NaN %`).
fn percent(v: f64) -> String {
    if v.is_finite() {
        format!("{:>6.2} %", 100.0 * v)
    } else {
        "diverged".into()
    }
}

fn grid_text(grid: &[(f64, Curve)]) -> String {
    grid.iter()
        .map(|(lr, c)| {
            let best = c.acc.iter().cloned().fold(f64::NAN, f64::max);
            let div = c
                .diverged_at
                .map_or(String::new(), |e| format!(" (diverged ep {e})"));
            if best.is_finite() {
                format!("η={lr}: {:.1}{div}", 100.0 * best)
            } else {
                format!("η={lr}: diverged{div}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything one dataset's jobs share.
struct Ctx<'a, K> {
    net: &'a Network<K>,
    budget: &'a Budget,
    name: String,
    classes: usize,
    d: usize,
    k_train: KernelMatrices,
    k_test: KernelMatrices,
    k_fit: KernelMatrices,
    k_val: KernelMatrices,
    fit: Part<'a>,
    val: Part<'a>,
    train: Part<'a>,
    test: Part<'a>,
    theta_max: f64,
    pb: ProgressBar,
}

impl<K> Ctx<'_, K> {
    fn say(&self, msg: String) {
        if self.pb.is_hidden() {
            println!("{msg}");
        } else {
            self.pb.println(msg);
        }
    }

    fn outcome(&self, group: Group, model: &str, loss: Loss) -> Outcome {
        Outcome {
            dataset: self.name.clone(),
            group,
            model: model.to_string(),
            loss: loss_name(loss),
            hyper: String::new(),
            lr: f64::NAN,
            epochs: 0,
            val_acc: f64::NAN,
            test_acc: f64::NAN,
            seconds: 0.0,
            select_seconds: 0.0,
            n_train: self.train.labels.len(),
            curve: vec![],
            agreement: f64::NAN,
            rel_diff: f64::NAN,
            note: String::new(),
        }
    }
}

type Job<'a> = Box<dyn FnOnce() -> infw::Result<Vec<Outcome>> + Send + 'a>;

fn run_jobs(jobs: Vec<Job<'_>>) -> infw::Result<Vec<Outcome>> {
    let results: Vec<infw::Result<Vec<Outcome>>> =
        jobs.into_par_iter().with_max_len(1).map(|j| j()).collect();
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// A limit: learning rate and epochs chosen on validation, then trained on all of train.
fn limit_job<R: LimitRule + Copy, K: KernelProgram + Clone>(
    ctx: &Ctx<'_, K>,
    rule: R,
    model: &str,
    loss: Loss,
    rates: &[f64],
) -> infw::Result<Vec<Outcome>> {
    let epochs = ctx.budget.limit_epochs;
    let start = Instant::now();
    let mut grid = Vec::new();
    for &lr in rates {
        let c = train_limit(
            ctx.net, rule, &ctx.k_fit, &ctx.fit, &ctx.k_val, &ctx.val, lr, loss, epochs, None,
        )?;
        grid.push((lr, c));
    }
    let mut o = ctx.outcome(Group::Main, model, loss);
    o.select_seconds = start.elapsed().as_secs_f64();
    let Some((lr, e, val)) = best(&grid) else {
        o.note = format!("every grid point diverged: {}", grid_text(&grid));
        return Ok(vec![o]);
    };
    let c = train_limit(
        ctx.net,
        rule,
        &ctx.k_train,
        &ctx.train,
        &ctx.k_test,
        &ctx.test,
        lr,
        loss,
        e,
        None,
    )?;
    o.lr = lr;
    o.epochs = e;
    o.val_acc = val;
    o.hyper = format!("η={lr:.4} epochs={e}");
    o.test_acc = c.final_accuracy();
    o.seconds = c.seconds;
    o.note = format!(
        "averaged iterate (running mean of f over steps); last iterate {}; grid (best val % over epochs): {}",
        percent(c.last_iterate.last().copied().unwrap_or(f64::NAN)).trim_start(),
        grid_text(&grid)
    );
    o.curve = c.acc;
    ctx.say(format!(
        "  {:<14} {model:<28} {:<3} {}  ({}, {:.1} s + {:.1} s search)",
        ctx.name,
        o.loss,
        percent(o.test_acc),
        o.hyper,
        o.seconds,
        o.select_seconds
    ));
    Ok(vec![o])
}

/// The maximum epochs of the mini-batch models on `n` examples.
pub fn finite_epochs(b: &Budget, n: usize) -> usize {
    let steps = n.div_ceil(b.batch).max(1);
    b.finite_epochs
        .max(b.min_steps.div_ceil(steps))
        .min(b.max_finite_epochs)
}

/// A finite model: rate and epochs chosen on validation, then trained on all of train.
/// For the centred linearization the uncentred one is trained with the same choice.
#[allow(clippy::too_many_arguments)]
fn finite_job<K: KernelProgram>(
    ctx: &Ctx<'_, K>,
    group: Group,
    model: &str,
    arch: Arch,
    opt: Opt,
    loss: Loss,
    rates: &[f64],
) -> infw::Result<Vec<Outcome>> {
    let epochs = finite_epochs(ctx.budget, ctx.fit.labels.len());
    let batch = ctx.budget.batch;
    let start = Instant::now();
    let mut grid = Vec::new();
    for &lr in rates {
        let m = build(ctx.net, arch, 1, ctx.d, ctx.classes)?;
        grid.push((
            lr,
            train_finite(m, opt, &ctx.fit, &ctx.val, lr, loss, epochs, batch)?,
        ));
    }
    let select_seconds = start.elapsed().as_secs_f64();
    let mut o = ctx.outcome(group, model, loss);
    o.select_seconds = select_seconds;
    let choices = ranked(&grid);
    if choices.is_empty() {
        o.note = format!("every grid point diverged: {}", grid_text(&grid));
        return Ok(vec![o]);
    }
    let mut variants = vec![(arch, model.to_string())];
    if arch == (Arch::Linearized { centered: true }) && ctx.budget.uncentred {
        variants.push((
            Arch::Linearized { centered: false },
            format!("{model}, uncentred"),
        ));
    }
    let mut out = Vec::new();
    for (arch, name) in variants {
        // The validation choice, or, when it diverges in the final training on all of
        // train, the next grid choice in validation order (the note says so).
        let mut fallbacks = String::new();
        let mut final_run = None;
        for &(lr, e, val) in &choices {
            let m = build(ctx.net, arch, 1, ctx.d, ctx.classes)?;
            let c = train_finite(m, opt, &ctx.train, &ctx.test, lr, loss, e, batch)?;
            if c.final_accuracy().is_finite() {
                final_run = Some((lr, e, val, c));
                break;
            }
            fallbacks += &format!(
                "η={lr} ({e} epochs) diverged in epoch {} of the final training, fell back to the next grid choice; ",
                c.diverged_at.map_or("?".to_string(), |ep| ep.to_string())
            );
        }
        let Some((lr, e, val, c)) = final_run else {
            let mut o = ctx.outcome(group, &name, loss);
            o.select_seconds = select_seconds;
            o.note = format!(
                "{fallbacks}every grid choice diverged in the final training; grid (best val % over epochs): {}",
                grid_text(&grid)
            );
            ctx.say(format!(
                "  {:<14} {name:<28} {:<3} diverged",
                ctx.name, o.loss
            ));
            out.push(o);
            continue;
        };
        let mut o = ctx.outcome(group, &name, loss);
        o.lr = lr;
        o.epochs = e;
        o.val_acc = val;
        o.select_seconds = select_seconds;
        o.hyper = format!("η={lr} epochs={e} batch={batch}");
        o.test_acc = c.final_accuracy();
        o.seconds = c.seconds;
        o.note = fallbacks;
        if !o.note.is_empty() {
            o.hyper += " (fallback)";
        }
        if name.ends_with("uncentred") {
            o.note += "hyper-parameters of the centred linearization (not searched again); ";
        }
        o.note += &format!("grid (best val % over epochs): {}", grid_text(&grid));
        o.curve = c.acc;
        ctx.say(format!(
            "  {:<14} {name:<28} {:<3} {}  ({}, {:.1} s + {:.1} s search)",
            ctx.name,
            o.loss,
            percent(o.test_acc),
            o.hyper,
            o.seconds,
            o.select_seconds
        ));
        out.push(o);
    }
    Ok(out)
}

/// NTK and NNGP kernel regression, ridge chosen on validation.
fn regression_job<K>(ctx: &Ctx<'_, K>) -> infw::Result<Vec<Outcome>> {
    let mut out = Vec::new();
    fn pick(k: &KernelMatrices, nngp: bool) -> ndarray::ArrayView2<'_, f64> {
        let m = if nngp { &k.nngp } else { &k.ntk };
        m.as_ref().expect("Want::ALL").view()
    }
    for (model, nngp) in [("NTK regression", false), ("NNGP regression", true)] {
        let start = Instant::now();
        let mut grid = Vec::new();
        for &ridge in ctx.budget.ridges {
            let (a, _) = kernel_regression(
                pick(&ctx.k_fit, nngp),
                &ctx.fit,
                pick(&ctx.k_val, nngp),
                &ctx.val,
                ridge,
            )?;
            grid.push((ridge, a));
        }
        let (ridge, val) = grid
            .iter()
            .fold((f64::NAN, f64::NEG_INFINITY), |b, &(r, a)| {
                if a > b.1 {
                    (r, a)
                } else {
                    b
                }
            });
        let mut o = ctx.outcome(Group::Reference, model, Loss::Mse);
        o.select_seconds = start.elapsed().as_secs_f64();
        let (acc, secs) = kernel_regression(
            pick(&ctx.k_train, nngp),
            &ctx.train,
            pick(&ctx.k_test, nngp),
            &ctx.test,
            ridge,
        )?;
        o.loss = "MSE";
        o.hyper = format!("λ={ridge}·mean diag K");
        o.val_acc = val;
        o.test_acc = acc;
        o.seconds = secs;
        o.note = format!(
            "closed form (t = ∞); time excludes the kernels; grid (val %): {}",
            grid.iter()
                .map(|(r, a)| format!("λ={r}: {:.1}", 100.0 * a))
                .collect::<Vec<_>>()
                .join(", ")
        );
        ctx.say(format!(
            "  {:<14} {model:<28} MSE {}  ({})",
            ctx.name,
            percent(acc),
            o.hyper
        ));
        out.push(o);
    }
    Ok(out)
}

/// The exact finite counterparts of one limit (per-example steps with the limit's chosen
/// rate, widths 512 and 2048) and the limit's last iterate, on a training subsample.
struct Exact<'a> {
    sub: Part<'a>,
    k_sub: KernelMatrices,
    k_test_sub: KernelMatrices,
    note: String,
}

/// One run of the exact group: the finite network `factor` × wider (followed by its limit
/// started from the same initial function, to compare outputs), or the limit from f_0 = 0.
#[derive(Clone, Copy, Debug)]
enum ExactRun {
    Finite { factor: usize },
    Limit,
}

/// Agreement of the arg-max predictions and ‖F − L‖/‖L‖ (Frobenius) of two output matrices.
fn compare(f: &ndarray::Array2<f64>, l: &ndarray::Array2<f64>) -> (f64, f64) {
    let agree = f
        .outer_iter()
        .zip(l.outer_iter())
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count() as f64
        / f.nrows().max(1) as f64;
    let diff = (f - l).iter().map(|v| v * v).sum::<f64>().sqrt();
    let norm = l.iter().map(|v| v * v).sum::<f64>().sqrt();
    (agree, diff / norm)
}

#[allow(clippy::too_many_arguments)]
fn exact_job<R: LimitRule + Copy, K: KernelProgram + Clone>(
    ctx: &Ctx<'_, K>,
    ex: &Exact<'_>,
    rule: R,
    limit: &Outcome,
    names: (&str, &str),
    opt: Opt,
    run: ExactRun,
) -> infw::Result<Vec<Outcome>> {
    let loss = if limit.loss == "MSE" {
        Loss::Mse
    } else {
        Loss::CrossEntropy
    };
    let epochs = ctx.budget.exact_epochs;
    let lr = limit.lr;
    let new = |model: &str| {
        let mut o = ctx.outcome(Group::Exact, model, loss);
        o.n_train = ex.sub.labels.len();
        o.lr = lr;
        o.epochs = epochs;
        o.hyper = format!("η={lr:.4} (the limit's) epochs={epochs} batch=1");
        o
    };
    if !lr.is_finite() {
        let mut o = new(names.0);
        o.note = "no learning rate: the limit's grid diverged".into();
        return Ok(vec![o]);
    }
    let finish = |mut o: Outcome, c: Curve| {
        o.test_acc = c.final_accuracy();
        o.seconds = c.seconds;
        if let Some(ep) = c.diverged_at {
            o.note += &format!("diverged in epoch {ep}; ");
        }
        o.note += &ex.note;
        o.curve = c.acc;
        let extra = if o.agreement.is_finite() {
            format!(
                "; vs its limit: {:.1} % same predictions, ‖f−f_lim‖/‖f_lim‖ = {:.3}",
                100.0 * o.agreement,
                o.rel_diff
            )
        } else {
            String::new()
        };
        ctx.say(format!(
            "  {:<14} {:<28} {:<3} {}  ({}, {:.1} s{extra})",
            ctx.name,
            o.model,
            o.loss,
            percent(o.test_acc),
            o.hyper,
            o.seconds
        ));
        o
    };
    // The limit (last iterate) on the subsample, from f_0 = 0 or the given f_0.
    let limit_run = |f0_of: Option<usize>, name: &str| -> infw::Result<(Outcome, Curve)> {
        let f0 = match f0_of {
            Some(factor) => Some(initial_outputs(
                ctx.net,
                factor,
                ctx.classes,
                ex.sub.x,
                ctx.test.x,
            )?),
            None => None,
        };
        let c = train_limit(
            ctx.net,
            rule,
            &ex.k_sub,
            &ex.sub,
            &ex.k_test_sub,
            &ctx.test,
            lr,
            loss,
            epochs,
            f0,
        )?;
        let mut o = new(name);
        o.note = format!(
            "{}; last iterate (the finite runs have no averaging); averaged iterate {}; ",
            match f0_of {
                Some(f) => format!("f_0 = the width-{} network's initial outputs", 512 * f),
                None => "f_0 = 0".into(),
            },
            percent(c.acc.last().copied().unwrap_or(f64::NAN)).trim_start()
        );
        let c = Curve {
            acc: c.last_iterate.clone(),
            ..c
        };
        Ok((o, c))
    };
    match run {
        ExactRun::Limit => {
            let (o, c) = limit_run(None, names.0)?;
            Ok(vec![finish(o, c)])
        }
        ExactRun::Finite { factor } => {
            let m = build(ctx.net, Arch::Ntk, factor, ctx.d, ctx.classes)?;
            let c = train_finite(m, opt, &ex.sub, &ctx.test, lr, loss, epochs, 1)?;
            let (lo, lc) = limit_run(Some(factor), names.1)?;
            let mut o = new(names.0);
            if let (Some(f), Some(l)) = (&c.outputs, &lc.outputs) {
                (o.agreement, o.rel_diff) = compare(f, l);
                o.note = format!(
                    "same init, same example order as the limit from its f_0: {:.1} % of test predictions agree, relative output difference {:.3}; ",
                    100.0 * o.agreement,
                    o.rel_diff
                );
            }
            let o = finish(o, c);
            let lo = finish(lo, lc);
            Ok(vec![o, lo])
        }
    }
}

fn progress(len: u64, name: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if std::io::stdout().is_terminal() {
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:>14} [{elapsed_precise}] {bar:30} {pos}/{len} jobs {msg}",
        ) {
            pb.set_style(style);
        }
        pb.set_prefix(name.to_string());
    } else {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb
}

/// Runs every model on one dataset (raw features; standardised here with training
/// statistics only).
pub fn run_dataset<K: KernelProgram + Clone + Sync>(
    net: &Network<K>,
    raw: &Dataset,
    budget: &Budget,
) -> infw::Result<(Vec<Outcome>, String)> {
    let data = raw.standardized();
    let (fit, val) = data.split_validation(VALIDATION, SEED)?;
    let n = data.x_train.nrows();
    // A convolutional declaration has no Adam-like limit (docs/math.md §9): its rows are
    // the kernels, the NTK limit and the finite networks, without the exact counterparts.
    let adam = net.program().has_adam_limit();
    let want = if adam { Want::ALL } else { Want::NNGP_NTK };
    let start = Instant::now();
    let k_train = net.kernels(&data.x_train, TrainingInputs::of(&data.x_train), want)?;
    let k_test = net.kernels(&data.x_test, TrainingInputs::of(&data.x_train), want)?;
    let kernel_seconds = start.elapsed().as_secs_f64();
    let theta_max = k_train
        .ntk
        .as_ref()
        .expect("Want::ALL")
        .diag()
        .fold(0.0f64, |m, &v| m.max(v));
    let classes = data.classes;
    let all_test: Vec<usize> = (0..data.x_test.nrows()).collect();
    let n_jobs = if adam {
        1 + 2 * (2 + 6) + 2 * 6
    } else {
        1 + 2 * (1 + 6)
    };
    let ctx = Ctx {
        net,
        budget,
        name: data.name.clone(),
        classes,
        d: data.features(),
        k_fit: sub_kernels(&k_train, &fit.indices, &fit.indices),
        k_val: sub_kernels(&k_train, &val.indices, &fit.indices),
        k_train,
        k_test,
        fit: Part::new(fit.x.view(), &fit.y, classes),
        val: Part::new(val.x.view(), &val.y, classes),
        train: Part::new(data.x_train.view(), &data.y_train, classes),
        test: Part::new(data.x_test.view(), &data.y_test, classes),
        theta_max,
        pb: progress(n_jobs as u64, &data.name),
    };
    let ntk_mse_rates: Vec<f64> = budget
        .ntk_mse_fractions
        .iter()
        .map(|c| c / ctx.theta_max)
        .collect();
    let mut header = format!(
        "{}: {} train ({} fit + {} validation), {} test, {} features, {} classes; kernels (train×train, test×train, all four) {:.1} s; max_b Θ(x_b,x_b) = {:.2}",
        data.name,
        n,
        ctx.fit.labels.len(),
        ctx.val.labels.len(),
        data.x_test.nrows(),
        ctx.d,
        classes,
        kernel_seconds,
        theta_max
    );
    ctx.say(header.clone());

    // Phase 1: every model's search and final training, in parallel (expensive first).
    ctx.pb.set_message("search + final training");
    let c = &ctx;
    let pb = &ctx.pb;
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for loss in [Loss::Mse, Loss::CrossEntropy] {
        let finite: [(&str, Group, Arch, Opt, &'static [f64]); 6] = [
            (
                "linearized SGD",
                Group::Main,
                Arch::Linearized { centered: true },
                Opt::Sgd,
                budget.sgd_rates,
            ),
            (
                "linearized Adam",
                Group::Main,
                Arch::Linearized { centered: true },
                Opt::Adam,
                budget.lin_adam_rates,
            ),
            (
                "finite SGD",
                Group::Main,
                Arch::Ntk,
                Opt::Sgd,
                budget.sgd_rates,
            ),
            (
                "finite Adam",
                Group::Main,
                Arch::Ntk,
                Opt::Adam,
                budget.adam_rates,
            ),
            (
                "standard-param SGD",
                Group::Reference,
                Arch::Standard,
                Opt::Sgd,
                budget.std_sgd_rates,
            ),
            (
                "standard-param Adam",
                Group::Reference,
                Arch::Standard,
                Opt::Adam,
                budget.std_adam_rates,
            ),
        ];
        for (name, group, arch, opt, rates) in finite {
            jobs.push(Box::new(move || {
                let r = finite_job(c, group, name, arch, opt, loss, rates);
                pb.inc(1);
                r
            }));
        }
    }
    let ntk_mse_rates = &ntk_mse_rates;
    for loss in [Loss::Mse, Loss::CrossEntropy] {
        jobs.push(Box::new(move || {
            let rates: &[f64] = match loss {
                Loss::Mse => ntk_mse_rates,
                Loss::CrossEntropy => budget.ntk_ce_rates,
            };
            let r = limit_job(c, NtkSgd, "NTK limit (SGD)", loss, rates);
            pb.inc(1);
            r
        }));
        if adam {
            jobs.push(Box::new(move || {
                let rates = match loss {
                    Loss::Mse => budget.adam_limit_mse_rates,
                    Loss::CrossEntropy => budget.adam_limit_ce_rates,
                };
                let r = limit_job(c, AdamLimit, "Adam limit", loss, rates);
                pb.inc(1);
                r
            }));
        }
    }
    jobs.push(Box::new(move || {
        let r = regression_job(c);
        pb.inc(1);
        r
    }));
    let mut outcomes = run_jobs(jobs)?;
    if !adam {
        ctx.pb.finish_and_clear();
        header += "; no Adam-like limit and no exact counterparts (a convolution's sign kernels have no closed form, docs/math.md §9)";
        return Ok((outcomes, header));
    }

    // Phase 2: the exact finite counterparts, with the limits' chosen rates.
    ctx.pb.set_message("exact counterparts");
    let sub = if n > budget.exact_subsample {
        let frac = budget.exact_subsample as f64 / n as f64;
        Some(data.split_validation(frac, SEED + 1)?.1)
    } else {
        None
    };
    let (sub_idx, sub_part, ex_note) = match &sub {
        Some(s) => (
            s.indices.clone(),
            Part::new(s.x.view(), &s.y, classes),
            format!(
                "trained on a stratified seeded subsample of {} of the {n} training examples (per-example steps at width 2048 are expensive)",
                s.y.len()
            ),
        ),
        None => (
            (0..n).collect(),
            Part::new(data.x_train.view(), &data.y_train, classes),
            "trained on the whole training set".to_string(),
        ),
    };
    let ex = Exact {
        k_sub: sub_kernels(&ctx.k_train, &sub_idx, &sub_idx),
        k_test_sub: sub_kernels(&ctx.k_test, &all_test, &sub_idx),
        sub: sub_part,
        note: ex_note,
    };
    header += &format!(
        "; exact counterparts: {} training examples, {} epochs",
        ex.sub.labels.len(),
        budget.exact_epochs
    );
    let find = |model: &str, loss: &str| {
        outcomes
            .iter()
            .find(|o| o.model == model && o.loss == loss)
            .cloned()
            .expect("phase 1 produced every limit")
    };
    let ex = &ex;
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for loss in ["MSE", "CE"] {
        let ntk = find("NTK limit (SGD)", loss);
        let adam = find("Adam limit", loss);
        for (run, ntk_names, adam_names) in [
            (
                ExactRun::Finite { factor: 4 },
                ("per-example SGD, w=2048", "NTK limit from w=2048's f0"),
                ("sign descent, w=2048", "Adam limit from w=2048's f0"),
            ),
            (
                ExactRun::Finite { factor: 1 },
                ("per-example SGD, w=512", "NTK limit from w=512's f0"),
                ("sign descent, w=512", "Adam limit from w=512's f0"),
            ),
            (
                ExactRun::Limit,
                ("NTK limit, last iterate, f0=0", ""),
                ("Adam limit, last iterate, f0=0", ""),
            ),
        ] {
            let (ntk, adam) = (ntk.clone(), adam.clone());
            jobs.push(Box::new(move || {
                let r = exact_job(c, ex, NtkSgd, &ntk, ntk_names, Opt::Sgd, run);
                pb.inc(1);
                r
            }));
            jobs.push(Box::new(move || {
                let r = exact_job(c, ex, AdamLimit, &adam, adam_names, Opt::SignLimit, run);
                pb.inc(1);
                r
            }));
        }
    }
    outcomes.extend(run_jobs(jobs)?);
    ctx.pb.finish_and_clear();
    Ok((outcomes, header))
}

/// Training and test examples of the convolutional rows in quick mode (the full run uses
/// the whole dataset).
pub const QUICK_CNN_EXAMPLES: usize = 200;

/// The dataset of a convolutional declaration's rows: named "`name` CNN" so that its rows
/// stand beside the MLP's in the table and chart; in quick mode its first
/// [`QUICK_CNN_EXAMPLES`] training and test examples.
pub fn cnn_dataset(d: &Dataset, quick: bool) -> infw::Result<Dataset> {
    let (n, m) = if quick {
        (
            QUICK_CNN_EXAMPLES.min(d.x_train.nrows()),
            QUICK_CNN_EXAMPLES.min(d.x_test.nrows()),
        )
    } else {
        (d.x_train.nrows(), d.x_test.nrows())
    };
    Dataset::new(
        format!("{} CNN", d.name),
        d.x_train.slice(ndarray::s![..n, ..]).to_owned(),
        d.y_train[..n].to_vec(),
        d.x_test.slice(ndarray::s![..m, ..]).to_owned(),
        d.y_test[..m].to_vec(),
    )
}

/// The same data under another name (its rows stand beside the others in the table).
fn renamed(d: &Dataset, name: &str) -> Result<Dataset, String> {
    Dataset::new(
        name.to_string(),
        d.x_train.clone(),
        d.y_train.clone(),
        d.x_test.clone(),
        d.y_test.clone(),
    )
    .map_err(|e| e.to_string())
}

/// Loads one dataset (the loader's error for a bad folder).
pub fn load(source: &Source) -> infw::Result<Dataset> {
    match source {
        Source::Embedded(name) => Dataset::embedded(name),
        Source::Dir(dir) => Dataset::from_dir(dir),
    }
}

/// The whole run: every dataset, then the report. Returns the outcomes.
pub fn run(opts: &Options) -> Result<Vec<Outcome>, String> {
    let total = Instant::now();
    let budget = Budget::new(opts.quick);
    // Load everything first, so a bad --data folder fails before any training.
    let mut datasets = Vec::new();
    for s in &opts.sources {
        let d = load(s).map_err(|e| match s {
            Source::Dir(p) => format!("cannot load --data {}: {e}", p.display()),
            Source::Embedded(n) => format!("cannot load dataset {n}: {e}"),
        })?;
        datasets.push(d);
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| format!("cannot create --out {}: {e}", opts.out.display()))?;
    let net = infw::network! {
        dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
        dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
        readout(w_std = 1.4142135623730951, b_std = 0.1)
    };
    // The second dense declaration, of similar size: a residual block with gelu inside and
    // layer_norm after; its Adam-like limit is built (docs/math.md §8: the dense outputs
    // before the sum get the four-orthant B of the final relu).
    let resnet = infw::network! {
        dense(512, w_std = 1.4142135623730951, b_std = 0.1)
        residual(
            dense(512, w_std = 1.4142135623730951, b_std = 0.1) gelu
            dense(512, w_std = 1.4142135623730951, b_std = 0.1)
        )
        layer_norm relu
        readout(w_std = 1.4142135623730951, b_std = 0.1)
    };
    crate::report::preamble(&budget, opts.quick);
    let mut all = Vec::new();
    let mut headers = Vec::new();
    for d in &datasets {
        for arch in &opts.archs {
            let (o, h) = match arch {
                Declaration::Mlp => run_dataset(&net, d, &budget),
                Declaration::Resnet => {
                    let named = renamed(d, &format!("{} resnet", d.name))?;
                    run_dataset(&resnet, &named, &budget)
                }
            }
            .map_err(|e| format!("{}: {e}", d.name))?;
            all.extend(o);
            headers.push(h);
        }
    }
    // The convolutional declarations, on the embedded signals and images they fit.
    let sigma = std::f64::consts::SQRT_2;
    let cnn_1d = infw::network! {
        input(40, 1)
        conv(64, size = 5, w_std = sigma, b_std = 0.1) relu
        conv(64, size = 5, w_std = sigma, b_std = 0.1) relu
        global_avg_pool
        readout(w_std = sigma, b_std = 0.1)
    }
    .map_err(|e| e.to_string())?;
    let cnn_2d = infw::network! {
        input(8, 8, 1)
        conv(32, size = 3, w_std = sigma, b_std = 0.1) relu
        conv(32, size = 3, w_std = sigma, b_std = 0.1) relu
        global_avg_pool
        readout(w_std = sigma, b_std = 0.1)
    }
    .map_err(|e| e.to_string())?;
    for (s, d) in opts.sources.iter().zip(&datasets) {
        if !opts.cnn {
            break;
        }
        let name = match s {
            Source::Embedded(n) if n == "mnist1d" || n == "digits" => n.as_str(),
            _ => continue,
        };
        let d = cnn_dataset(d, opts.quick).map_err(|e| format!("{name} CNN: {e}"))?;
        let r = if name == "mnist1d" {
            run_dataset(&cnn_1d, &d, &budget)
        } else {
            run_dataset(&cnn_2d, &d, &budget)
        };
        let (o, h) = r.map_err(|e| format!("{}: {e}", d.name))?;
        all.extend(o);
        headers.push(h);
    }
    let wall = total.elapsed().as_secs_f64();
    crate::report::write(&opts.out, &all, &headers, &budget, opts.quick, wall)?;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(acc: &[f64]) -> Curve {
        Curve {
            acc: acc.to_vec(),
            loss: vec![1.0; acc.len()],
            diverged_at: acc.iter().position(|a| !a.is_finite()).map(|e| e + 1),
            ..Curve::default()
        }
    }

    /// The fallbacks are every grid point's best epoch in validation order; a grid point
    /// with no finite score offers none, and the first is `best`'s choice.
    #[test]
    fn ranked_orders_the_fallback_choices_and_percent_never_says_nan() {
        let grid = vec![
            (0.1, curve(&[0.5, 0.8])),
            (1.0, curve(&[0.9])),
            (10.0, curve(&[f64::NAN])),
            (0.01, curve(&[0.8, 0.7])),
        ];
        let r = ranked(&grid);
        assert_eq!(r, vec![(1.0, 1, 0.9), (0.1, 2, 0.8), (0.01, 1, 0.8)]);
        assert_eq!(best(&grid), Some(r[0]));
        assert_eq!(percent(f64::NAN), "diverged");
        assert_eq!(percent(0.5).trim(), "50.00 %");
        assert!(!grid_text(&grid).contains("NaN"));
    }
}
