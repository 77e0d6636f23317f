//! One-run timing of the CNN-GP + CNTK Gram of the speed declaration (docs/math.md
//! §9): `input(40, 1)` and three `conv(64, size = 5) relu`, `global_avg_pool`, on the
//! first N embedded mnist1d training signals against themselves.
//!
//! Run: `cargo run --release --example cnn_speed [-- N]` (default 4000)
use infw::data::Dataset;
use std::time::Instant;

fn main() -> infw::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4000);
    let data = Dataset::embedded("mnist1d")?.standardized();
    let n = n.min(data.x_train.nrows());
    let x = data.x_train.slice(ndarray::s![..n, ..]).to_owned();
    let net = infw::network! {
        input(40, 1)
        conv(64, size = 5) relu conv(64, size = 5) relu conv(64, size = 5) relu
        global_avg_pool dense(1)
    };
    let start = Instant::now();
    let (nngp, ntk) = net.nngp_ntk(&x, &x)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "N = {n}: NNGP + NTK of (X, X) in {secs:.2} s on {} threads ({:.2} µs per pair); K[0,1] = {:.6}, Θ[0,1] = {:.6}",
        rayon::current_num_threads(),
        secs * 1e6 / (n * (n + 1) / 2) as f64,
        nngp[[0, 1]],
        ntk[[0, 1]]
    );
    Ok(())
}
