//! NTK regression on the embedded digits data: the infinitely wide network trained to
//! convergence by gradient flow (docs/math.md §5), in one declaration and three calls.
//!
//! Run: `cargo run --release --example digits`
// √2 is written as the f64 literal 1.4142135623730951 so that it folds into the generated
// code and `network!` returns the network itself (an expression such as `2f64.sqrt()` makes
// it return a Result, checked when the value is built).
#![allow(clippy::approx_constant)]
use infw::data::{accuracy, one_hot, Dataset};
use std::time::Instant;

fn main() -> Result<(), infw::Error> {
    let data = Dataset::embedded("digits")?.standardized();
    let net = infw::network! {
        dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
        dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu
    };
    println!("architecture: {} (infinite width)", net.architecture());
    println!(
        "digits: {} train / {} test images, {} features, {} classes",
        data.x_train.nrows(),
        data.x_test.nrows(),
        data.features(),
        data.classes
    );
    let y = one_hot(&data.y_train, data.classes)?;

    let start = Instant::now();
    let model = net.ntk_regression(&data.x_train, &y, 1e-6)?;
    let fit = start.elapsed();
    let scores = model.predict(&data.x_test)?;
    let total = start.elapsed();
    let acc = accuracy(scores.view(), &data.y_test)?;
    println!(
        "NTK regression:  test accuracy {:.2} %  (kernel + Cholesky {:.3} s, prediction {:.3} s)",
        100.0 * acc,
        fit.as_secs_f64(),
        (total - fit).as_secs_f64()
    );

    let start = Instant::now();
    let nngp = net.nngp_regression(&data.x_train, &y, 1e-6)?;
    let acc = accuracy(nngp.predict(&data.x_test)?.view(), &data.y_test)?;
    println!(
        "NNGP regression: test accuracy {:.2} %  ({:.3} s)",
        100.0 * acc,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
