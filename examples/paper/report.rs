//! The report: the grids up front, then the table (dataset × model: test accuracy, wall
//! time), `results.csv` (every number), `curves.csv` (test accuracy per epoch) and
//! `accuracy.svg` (one panel per dataset and loss).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::experiment::{Budget, Group, Outcome, VALIDATION};

/// The rows of the table, in order.
pub const MODELS: [&str; 22] = [
    "NTK limit (SGD)",
    "Adam limit",
    "finite SGD",
    "finite Adam",
    "linearized SGD",
    "linearized Adam",
    "linearized SGD, uncentred",
    "linearized Adam, uncentred",
    "standard-param SGD",
    "standard-param Adam",
    "NTK regression",
    "NNGP regression",
    "NTK limit, last iterate, f0=0",
    "NTK limit from w=512's f0",
    "per-example SGD, w=512",
    "NTK limit from w=2048's f0",
    "per-example SGD, w=2048",
    "Adam limit, last iterate, f0=0",
    "Adam limit from w=512's f0",
    "sign descent, w=512",
    "Adam limit from w=2048's f0",
    "sign descent, w=2048",
];

fn model_rank(m: &str) -> usize {
    MODELS.iter().position(|x| *x == m).unwrap_or(MODELS.len())
}

/// What the run does, printed before it starts.
pub fn preamble(b: &Budget, quick: bool) {
    println!(
        "infw paper experiment{}: relu, 2 hidden layers of 512 (and 2048 for the exact counterparts), σw = √2, σb = 0.1, readout σw = √2, σb = 0.1",
        if quick { " (--quick)" } else { "" }
    );
    println!(
        "features standardised with training statistics; hyper-parameters chosen on a {:.0} % stratified validation split of the training set (seed 0), \
         then the model is retrained on the whole training set and scored on the test set",
        100.0 * VALIDATION
    );
    println!("grids (learning rate η; the epoch count is chosen too, as the best epoch of the validation curve; accuracy ties go to the lower validation loss):");
    println!(
        "  NTK limit (per-example NTK-SGD in function space), ≤ {} epochs: MSE η = c / max Θ(x,x), c ∈ {:?}; CE η ∈ {:?}",
        b.limit_epochs, b.ntk_mse_fractions, b.ntk_ce_rates
    );
    println!(
        "  Adam limit (per-example, docs/math.md §4), ≤ {} epochs: MSE η ∈ {:?}; CE η ∈ {:?}",
        b.limit_epochs, b.adam_limit_mse_rates, b.adam_limit_ce_rates
    );
    println!("  both limits: f_0 = 0, constant rate, reported iterate = running mean of f over all steps (the limit of weight averaging)");
    println!(
        "  finite nets, mini-batch {} (≤ max({}, enough epochs for {} steps, capped at {}) epochs), init seed 0, plain SGD (no momentum) and Adam (β = 0.9, 0.999, ε = 1e-8): \
         NTK-param and linearized SGD η ∈ {:?}; NTK-param Adam η ∈ {:?}; linearized Adam η ∈ {:?}; standard-param SGD η ∈ {:?}, Adam η ∈ {:?}",
        b.batch, b.finite_epochs, b.min_steps, b.max_finite_epochs, b.sgd_rates, b.adam_rates, b.lin_adam_rates, b.std_sgd_rates, b.std_adam_rates
    );
    println!(
        "  linearized = f(x;θ0) + J(x;θ0)(θ−θ0) minus f(x;θ0) (centred: starts at f = 0 like the limits){}",
        if b.uncentred {
            "; the uncentred one is also trained, with the centred one's hyper-parameters"
        } else {
            ""
        }
    );
    println!(
        "  kernel regression: ridge λ ∈ {:?} × mean diag K",
        b.ridges
    );
    println!(
        "  exact finite counterparts: NTK-param network, per-example SGD (↔ NTK limit) and per-example sign descent with docs/math.md §4's per-tensor rates (↔ Adam limit), \
         width 512 and 2048, η = the limit's chosen η, {} epochs, on ≤ {} training examples (stratified subsample), compared with the limit's last iterate on the same examples",
        b.exact_epochs, b.exact_subsample
    );
    println!();
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}", 100.0 * v)
    } else {
        "—".into()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// The datasets in the order they were run.
fn datasets(all: &[Outcome]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for o in all {
        if !names.contains(&o.dataset) {
            names.push(o.dataset.clone());
        }
    }
    names
}

/// The table as text (markdown-compatible).
pub fn table(all: &[Outcome]) -> String {
    let names = datasets(all);
    let mut rows: Vec<(usize, bool, &str, &str)> = all
        .iter()
        .map(|o| {
            (
                model_rank(&o.model),
                o.loss != "MSE",
                o.model.as_str(),
                o.loss,
            )
        })
        .collect();
    rows.sort();
    rows.dedup();
    let mut s = String::new();
    let _ = write!(s, "| model | loss |");
    for n in &names {
        let _ = write!(s, " {n} acc % | {n} s |");
    }
    s.push('\n');
    let _ = write!(s, "|---|---|");
    for _ in &names {
        s.push_str("---:|---:|");
    }
    s.push('\n');
    let mut group = None;
    for (_, _, model, loss) in rows {
        let g = all.iter().find(|o| o.model == model).map(|o| o.group);
        if group.is_some() && g != group {
            let label = match g {
                Some(Group::Reference) => "*reference*",
                Some(Group::Exact) => "*exact counterparts (subsample, per-example)*",
                _ => "",
            };
            let _ = write!(s, "| {label} | |");
            for _ in &names {
                s.push_str(" | |");
            }
            s.push('\n');
        }
        group = g;
        let _ = write!(s, "| {model} | {loss} |");
        for n in &names {
            match all
                .iter()
                .find(|o| &o.dataset == n && o.model == model && o.loss == loss)
            {
                Some(o) => {
                    let mark = if o.hyper.ends_with("(fallback)") {
                        "†"
                    } else {
                        ""
                    };
                    let _ = write!(s, " {}{mark} | {:.1} |", pct(o.test_acc), o.seconds);
                }
                None => s.push_str(" | |"),
            }
        }
        s.push('\n');
    }
    if all.iter().any(|o| o.hyper.ends_with("(fallback)")) {
        s.push_str("\n† the rate chosen on validation diverged in the final training; the next grid choice was used (see the notes in results.csv)\n");
    }
    s
}

/// Each exact finite counterpart against the limit started from its own f_0, for the
/// datasets that have counterparts (the CNN rows have none: no Adam-like limit).
pub fn exact_table(all: &[Outcome]) -> String {
    let names: Vec<String> = datasets(all)
        .into_iter()
        .filter(|n| {
            all.iter()
                .any(|o| &o.dataset == n && o.model.starts_with("per-example SGD"))
        })
        .collect();
    let mut s = String::from("| finite counterpart | loss |");
    for n in &names {
        let _ = write!(s, " {n}: finite / limit % | agree % | rel. diff |");
    }
    s.push_str("\n|---|---|");
    for _ in &names {
        s.push_str("---:|---:|---:|");
    }
    s.push('\n');
    let pairs = [
        ("per-example SGD, w=512", "NTK limit from w=512's f0"),
        ("per-example SGD, w=2048", "NTK limit from w=2048's f0"),
        ("sign descent, w=512", "Adam limit from w=512's f0"),
        ("sign descent, w=2048", "Adam limit from w=2048's f0"),
    ];
    for loss in ["MSE", "CE"] {
        for (finite, limit) in pairs {
            let _ = write!(s, "| {finite} | {loss} |");
            for n in &names {
                let get = |m: &str| {
                    all.iter()
                        .find(|o| &o.dataset == n && o.model == m && o.loss == loss)
                };
                match (get(finite), get(limit)) {
                    (Some(f), Some(l)) => {
                        let _ = write!(
                            s,
                            " {} / {} | {} | {} |",
                            pct(f.test_acc),
                            pct(l.test_acc),
                            pct(f.agreement),
                            if f.rel_diff.is_finite() {
                                format!("{:.3}", f.rel_diff)
                            } else {
                                "—".into()
                            }
                        );
                    }
                    _ => s.push_str(" | | |"),
                }
            }
            s.push('\n');
        }
    }
    s
}

/// Prints the table and writes the CSVs and the chart into `out`.
pub fn write(
    out: &Path,
    all: &[Outcome],
    headers: &[String],
    b: &Budget,
    quick: bool,
    wall: f64,
) -> Result<(), String> {
    let io = |what: &Path, e: std::io::Error| format!("cannot write {}: {e}", what.display());
    println!();
    for h in headers {
        println!("{h}");
    }
    println!();
    println!(
        "test accuracy (%) and wall time (s) of the final training (kernels excluded for the limits and regression; \
         jobs ran two at a time on 2 cores){}:",
        if quick { " — QUICK RUN, not the experiment" } else { "" }
    );
    println!();
    print!("{}", table(all));
    println!();
    println!(
        "exact counterparts against their limits (per-example, same init, same example order, same η; \
         the limit started from the finite network's own initial outputs): test accuracy finite / limit, \
         % of test predictions that agree, relative output difference ‖f − f_lim‖/‖f_lim‖:"
    );
    println!();
    print!("{}", exact_table(all));
    println!();
    println!("total wall time: {wall:.0} s");

    let mut csv = String::from(
        "dataset,group,model,loss,hyperparameters,learning_rate,epochs,batch,n_train,validation_accuracy,test_accuracy,seconds,search_seconds,agreement_with_limit,relative_difference_to_limit,note\n",
    );
    for o in all {
        let batch = match o.group {
            Group::Exact => "1".to_string(),
            _ if o.model.contains("limit") || o.model.contains("regression") => "1".to_string(),
            _ => b.batch.to_string(),
        };
        let batch = if o.model.contains("regression") {
            String::new()
        } else {
            batch
        };
        let _ = writeln!(
            csv,
            "{},{:?},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{},{},{}",
            csv_field(&o.dataset),
            o.group,
            csv_field(&o.model),
            o.loss,
            csv_field(&o.hyper),
            num(o.lr),
            if o.epochs > 0 {
                o.epochs.to_string()
            } else {
                String::new()
            },
            batch,
            o.n_train,
            num(o.val_acc),
            num(o.test_acc),
            o.seconds,
            o.select_seconds,
            num(o.agreement),
            num(o.rel_diff),
            csv_field(&o.note)
        );
    }
    let p = out.join("results.csv");
    std::fs::write(&p, csv).map_err(|e| io(&p, e))?;

    let mut curves = String::from("dataset,model,loss,epoch,test_accuracy\n");
    for o in all {
        for (e, a) in o.curve.iter().enumerate() {
            let _ = writeln!(
                curves,
                "{},{},{},{},{}",
                csv_field(&o.dataset),
                csv_field(&o.model),
                o.loss,
                e + 1,
                a
            );
        }
    }
    let p = out.join("curves.csv");
    std::fs::write(&p, curves).map_err(|e| io(&p, e))?;
    let p = out.join("table.md");
    std::fs::write(&p, format!("{}\n{}", table(all), exact_table(all))).map_err(|e| io(&p, e))?;

    for name in ["accuracy.svg", "accuracy.png"] {
        let p = out.join(name);
        chart(&p, all).map_err(|e| format!("cannot draw {}: {e}", p.display()))?;
    }
    println!(
        "wrote results.csv, curves.csv, table.md, accuracy.svg and accuracy.png in {}",
        out.display()
    );
    Ok(())
}

/// The limits started from a finite network's f_0 are left off the chart (they are in
/// the exact-counterpart table), to keep it readable.
fn on_chart(model: &str) -> bool {
    !model.contains("'s f0")
}

/// A colour per model (fixed, so the same model has the same colour in every panel).
fn colour(model: &str) -> RGBColor {
    const P: [RGBColor; 22] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(197, 176, 213),
        RGBColor(196, 156, 148),
        RGBColor(127, 127, 127),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 0),
        RGBColor(188, 189, 34),
        RGBColor(31, 119, 180),
        RGBColor(120, 170, 220),
        RGBColor(120, 170, 220),
        RGBColor(23, 80, 140),
        RGBColor(23, 80, 140),
        RGBColor(214, 39, 40),
        RGBColor(255, 152, 150),
        RGBColor(255, 152, 150),
        RGBColor(150, 20, 20),
        RGBColor(150, 20, 20),
    ];
    P[model_rank(model) % P.len()]
}

const PANEL: (u32, u32) = (420, 320);
const LEGEND_WIDTH: u32 = 250;

/// The chart's size in pixels for `all`'s datasets.
fn chart_size(all: &[Outcome]) -> (u32, u32) {
    let d = datasets(all).len().max(1) as u32;
    (PANEL.0 * d + LEGEND_WIDTH, PANEL.1 * 2)
}

/// The chart as SVG (`.svg`) or PNG (any other extension).
pub fn chart(path: &Path, all: &[Outcome]) -> Result<(), Box<dyn std::error::Error>> {
    let size = chart_size(all);
    if path.extension().is_some_and(|e| e == "svg") {
        draw(SVGBackend::new(path, size).into_drawing_area(), all)
    } else {
        draw(BitMapBackend::new(path, size).into_drawing_area(), all)
    }
}

/// Test accuracy per epoch: one panel per (loss, dataset), kernel regression as flat lines.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    all: &[Outcome],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let names = datasets(all);
    let losses = ["MSE", "CE"];
    let (w, _) = chart_size(all);
    let legend_w = LEGEND_WIDTH;
    root.fill(&WHITE)?;
    let (panels, legend) = root.split_horizontally(w - legend_w);
    let cells = panels.split_evenly((losses.len(), names.len().max(1)));
    for (i, loss) in losses.iter().enumerate() {
        for (j, name) in names.iter().enumerate() {
            let area = &cells[i * names.len() + j];
            let rows: Vec<&Outcome> = all
                .iter()
                .filter(|o| {
                    &o.dataset == name && (o.loss == *loss || o.model.contains("regression"))
                })
                .collect();
            let max_e = rows.iter().map(|o| o.curve.len()).max().unwrap_or(1).max(2);
            let lo = rows
                .iter()
                .flat_map(|o| o.curve.iter().copied().chain([o.test_acc]))
                .filter(|v| v.is_finite())
                .fold(1.0f64, f64::min);
            let lo = ((lo * 10.0).floor() / 10.0).clamp(0.0, 0.9) * 100.0;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name} — {loss}"), ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(1i32..max_e as i32, lo..100f64)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("test accuracy %")
                .x_labels(max_e.min(10))
                .light_line_style(RGBColor(238, 238, 238))
                .label_style(("sans-serif", 12))
                .draw()?;
            for o in rows {
                let c = colour(&o.model);
                let finite_exact = o.group == Group::Exact && !o.model.contains("limit");
                let width = if o.group == Group::Exact { 1 } else { 2 };
                if o.model.contains("regression") {
                    if o.test_acc.is_finite() {
                        let y = 100.0 * o.test_acc;
                        chart.draw_series(LineSeries::new(
                            [(1, y), (max_e as i32, y)],
                            c.stroke_width(1),
                        ))?;
                    }
                    continue;
                }
                let pts: Vec<(i32, f64)> = o
                    .curve
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.is_finite())
                    .map(|(e, a)| ((e + 1) as i32, 100.0 * a))
                    .collect();
                chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(width)))?;
                if finite_exact {
                    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
                }
            }
        }
    }
    // The legend: one entry per model that appears.
    legend.fill(&WHITE)?;
    let mut y = 20;
    for m in MODELS
        .iter()
        .filter(|m| on_chart(m) && all.iter().any(|o| o.model == **m))
    {
        let c = colour(m);
        let exact = all.iter().any(|o| o.model == *m && o.group == Group::Exact);
        legend.draw(&PathElement::new(
            vec![(8, y), (38, y)],
            c.stroke_width(if exact { 1 } else { 2 }),
        ))?;
        if exact && !m.contains("limit") {
            legend.draw(&Circle::new((23, y), 3, c.filled()))?;
        }
        legend.draw(&Text::new(
            m.to_string(),
            (44, y - 7),
            ("sans-serif", 13).into_font(),
        ))?;
        y += 20;
    }
    legend.draw(&Text::new(
        "regression: flat lines".to_string(),
        (8, y + 10),
        ("sans-serif", 12).into_font(),
    ))?;
    root.present()?;
    Ok(())
}
