//! Composing architectures (docs/math.md §8): a residual + layer_norm + gelu network, a
//! concatenation of two branches, and a user's own activation, on the embedded digits
//! data. Kernel regression (NTK and NNGP) for all of them; the Adam-like limit where it is
//! built (chains of dense, activations and layer_norm: for a residual network the
//! Adam-limit methods do not exist on its type, a compile error, see docs/math.md §8).
//! Hyper-parameters are Rust expressions: no recompilation to change σ or a width.
//!
//! Run: `cargo run --release --example compose`
use infw::data::{accuracy, one_hot, Dataset};
use infw::train::{Iterate, TrainConfig};
use infw::{AdamLimitProgram, KernelProgram, Network};
use ndarray::Array2;
use std::time::Instant;

/// swish with β = 1.5: u·σ(1.5u), a user activation (its kernels are integrated
/// numerically).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Swish;

impl infw::UserActivation for Swish {
    fn value(u: f64) -> f64 {
        u / (1.0 + (-1.5 * u).exp())
    }
    fn derivative(u: f64) -> f64 {
        let s = 1.0 / (1.0 + (-1.5 * u).exp());
        s + 1.5 * u * s * (1.0 - s)
    }
}

struct Data {
    x_train: Array2<f64>,
    y_train: Array2<f64>,
    x_test: Array2<f64>,
    labels_test: Vec<usize>,
}

fn regression<K: KernelProgram + Clone>(
    name: &str,
    net: &Network<K>,
    d: &Data,
) -> infw::Result<()> {
    let start = Instant::now();
    let ntk = net.ntk_regression(&d.x_train, &d.y_train, 1e-6)?;
    let ntk_acc = accuracy(ntk.predict(&d.x_test)?.view(), &d.labels_test)?;
    let nngp = net.nngp_regression(&d.x_train, &d.y_train, 1e-6)?;
    let nngp_acc = accuracy(nngp.predict(&d.x_test)?.view(), &d.labels_test)?;
    println!(
        "{name:<34} NTK regression {:5.1} %   NNGP regression {:5.1} %   ({:.2} s)",
        100.0 * ntk_acc,
        100.0 * nngp_acc,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Training examples used for the Adam-like limit: its sign kernels S and D of gelu and of a
/// user activation are integrated numerically per pair (docs/math.md §6), far slower than
/// the closed forms, so the example trains on the first ADAM_TRAIN images.
const ADAM_TRAIN: usize = 400;

fn adam<K: AdamLimitProgram + Clone>(name: &str, net: &Network<K>, d: &Data) -> infw::Result<()> {
    let start = Instant::now();
    let n = ADAM_TRAIN.min(d.x_train.nrows());
    let (x_train, y_train) = (
        d.x_train.slice(ndarray::s![..n, ..]).to_owned(),
        d.y_train.slice(ndarray::s![..n, ..]).to_owned(),
    );
    let config = TrainConfig {
        running_mean: true,
        report: Iterate::RunningMean,
        seed: 0,
        ..TrainConfig::new(0.02)
    };
    let mut model = net.adam_training(&x_train, &y_train, config)?;
    model.fit(10, None)?;
    let acc = accuracy(model.predict(&d.x_test)?.view(), &d.labels_test)?;
    println!(
        "{name:<34} Adam-like limit (MSE, 10 epochs, η = 0.02, {n} training images) {:5.1} %   ({:.2} s)",
        100.0 * acc,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> infw::Result<()> {
    let data = Dataset::embedded("digits")?.standardized();
    let d = Data {
        y_train: one_hot(&data.y_train, data.classes)?,
        x_train: data.x_train,
        x_test: data.x_test,
        labels_test: data.y_test,
    };
    println!(
        "digits: {} train / {} test images, {} features (infinite width; widths matter only to finite networks)\n",
        d.x_train.nrows(),
        d.x_test.nrows(),
        d.x_train.ncols(),
    );
    let sigma = 2f64.sqrt();
    let width = 512;

    let resnet = infw::network! {
        dense(width, w_std = sigma, b_std = 0.1)
        residual(gelu dense(width, w_std = sigma, b_std = 0.1))
        layer_norm
        residual(gelu dense(width, w_std = sigma, b_std = 0.1))
        layer_norm gelu
    }?;
    println!("resnet: {}", resnet.architecture());
    regression("residual + layer_norm + gelu", &resnet, &d)?;

    let branches = infw::network! {
        dense(512, w_std = 1.4, b_std = 0.1) relu
        parallel(dense(256, w_std = 1.4) erf | dense(256, w_std = 1.4) relu)
    };
    regression("parallel(erf | relu) concat", &branches, &d)?;

    let chain = infw::network! { dense(512, w_std = 1.4, b_std = 0.1) layer_norm gelu dense(512, w_std = 1.4) layer_norm gelu };
    regression("layer_norm + gelu chain", &chain, &d)?;
    adam("layer_norm + gelu chain", &chain, &d)?;

    let swish = infw::network! { dense(512, w_std = 1.4, b_std = 0.1) act(Swish) dense(512, w_std = 1.4) act(Swish) };
    regression("user activation (swish β = 1.5)", &swish, &d)?;
    adam("user activation (swish β = 1.5)", &swish, &d)?;
    Ok(())
}
