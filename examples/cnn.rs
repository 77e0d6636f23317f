//! Infinitely wide convolutional networks (CNN-GP and CNTK, docs/math.md §9) on the
//! embedded mnist1d signals (1-D, 40 positions) and digits images (2-D, 8×8), next to the
//! infinitely wide MLP of similar depth: kernel regression with the ridge chosen on a
//! held-out fifth of the training set (the test set is never used to choose).
//!
//! Run: `cargo run --release --example cnn [-- --train 1000]`
use infw::data::{accuracy, one_hot, Dataset};
use infw::{KernelProgram, Network};
use ndarray::{s, Array2};
use std::time::Instant;

const RIDGES: [f64; 5] = [1e-6, 1e-4, 1e-3, 1e-2, 1e-1];

struct Split {
    x_train: Array2<f64>,
    labels_train: Vec<usize>,
    x_test: Array2<f64>,
    labels_test: Vec<usize>,
    classes: usize,
}

/// Kernel regression of `kind` with the ridge chosen on the last fifth of the training set,
/// then refitted on all of it: (ridge, test accuracy).
fn regression<K: KernelProgram + Clone>(
    net: &Network<K>,
    kind: infw::KernelKind,
    d: &Split,
) -> infw::Result<(f64, f64)> {
    let n = d.x_train.nrows();
    let fit_n = n - n / 5;
    let y = one_hot(&d.labels_train, d.classes)?;
    let (x_fit, y_fit) = (d.x_train.slice(s![..fit_n, ..]), y.slice(s![..fit_n, ..]));
    let x_val = d.x_train.slice(s![fit_n.., ..]);
    // One Gram for every ridge: the prepared solver is refitted per ridge.
    let k_fit = net.kernels(&x_fit, infw::TrainingInputs::of(&x_fit), kind.want())?;
    let k_val = net.kernels(&x_val, infw::TrainingInputs::of(&x_fit), kind.want())?;
    let take = |k: infw::KernelMatrices| match kind {
        infw::KernelKind::Ntk => k.ntk,
        infw::KernelKind::Nngp => k.nngp,
    };
    let (k_fit, k_val) = (
        take(k_fit).expect("requested"),
        take(k_val).expect("requested"),
    );
    let mut best = (f64::NAN, -1.0);
    for ridge in RIDGES {
        let solver = infw::solve::KernelRegression::fit(k_fit.view(), y_fit.view(), ridge)?;
        let acc = accuracy(
            solver.predict(k_val.view())?.view(),
            &d.labels_train[fit_n..],
        )?;
        if acc > best.1 {
            best = (ridge, acc);
        }
    }
    let model = match kind {
        infw::KernelKind::Ntk => net.ntk_regression(&d.x_train, &y, best.0)?,
        infw::KernelKind::Nngp => net.nngp_regression(&d.x_train, &y, best.0)?,
    };
    let acc = accuracy(model.predict(&d.x_test)?.view(), &d.labels_test)?;
    Ok((best.0, acc))
}

fn report<K: KernelProgram + Clone>(name: &str, net: &Network<K>, d: &Split) -> infw::Result<()> {
    let start = Instant::now();
    let (r_ntk, ntk) = regression(net, infw::KernelKind::Ntk, d)?;
    let (r_nngp, nngp) = regression(net, infw::KernelKind::Nngp, d)?;
    println!(
        "{name:<44} NTK {:5.1} % (ridge {r_ntk:.0e})   NNGP {:5.1} % (ridge {r_nngp:.0e})   {:6.1} s",
        100.0 * ntk,
        100.0 * nngp,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn split(name: &str, train: usize) -> infw::Result<Split> {
    let data = Dataset::embedded(name)?.standardized();
    let n = train.min(data.x_train.nrows());
    Ok(Split {
        x_train: data.x_train.slice(s![..n, ..]).to_owned(),
        labels_train: data.y_train[..n].to_vec(),
        x_test: data.x_test,
        labels_test: data.y_test,
        classes: data.classes,
    })
}

fn main() -> infw::Result<()> {
    let mut train = 1000;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, n] = args.as_slice() {
        if flag == "--train" {
            train = n.parse().map_err(|_| infw::Error::InvalidArgument {
                name: "--train",
                value: n.clone(),
                reason: "a number of training examples".into(),
            })?;
        }
    }
    let sigma = 2f64.sqrt();

    let d = split("mnist1d", train)?;
    println!(
        "mnist1d: {} train / {} test signals of 40 positions (infinite width: channel counts matter only to finite networks)",
        d.x_train.nrows(),
        d.x_test.nrows()
    );
    let cnn = infw::network! {
        input(40, 1)
        conv(64, size = 5, w_std = sigma, b_std = 0.1) relu
        conv(64, size = 5, w_std = sigma, b_std = 0.1) relu
        conv(64, size = 5, w_std = sigma, b_std = 0.1) relu
        global_avg_pool
        readout(w_std = sigma, b_std = 0.1)
    }?;
    report("CNN: 3 × conv(size 5) relu, global_avg_pool", &cnn, &d)?;
    let mlp = infw::network! {
        dense(512, w_std = sigma, b_std = 0.1) relu
        dense(512, w_std = sigma, b_std = 0.1) relu
        dense(512, w_std = sigma, b_std = 0.1) relu
        readout(w_std = sigma, b_std = 0.1)
    }?;
    report("MLP: 3 × dense relu", &mlp, &d)?;

    let d = split("digits", train)?;
    println!(
        "\ndigits: {} train / {} test images of 8 × 8 pixels",
        d.x_train.nrows(),
        d.x_test.nrows()
    );
    let cnn2d = infw::network! {
        input(8, 8, 1)
        conv(32, size = 3, w_std = sigma, b_std = 0.1) relu
        conv(32, size = 3, w_std = sigma, b_std = 0.1) relu
        global_avg_pool
        readout(w_std = sigma, b_std = 0.1)
    }?;
    report("CNN: 2 × conv(3×3) relu, global_avg_pool", &cnn2d, &d)?;
    let flat = infw::network! {
        input(8, 8, 1)
        conv(32, size = 3, padding = valid, w_std = 1.4, b_std = 0.1) relu
        flatten dense(256) relu
    };
    report("CNN: conv(3×3, valid) relu flatten dense relu", &flat, &d)?;
    report("MLP: 3 × dense relu", &mlp, &d)?;
    Ok(())
}
