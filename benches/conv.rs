//! CNN-GP + CNTK throughput (docs/math.md §9): NNGP + NTK of (X, X) for the speed
//! declaration, `input(40, 1)`, three `conv(64, size = 5) relu`, `global_avg_pool`, and a
//! `flatten` variant (only the diagonal p = q of each plane is computed), on seeded
//! standard-normal signals.
//!
//! `cargo bench --bench conv`. N = 250 / 500 keeps a sample near a second; the cost is
//! quadratic in N (one pair pass per entry of the upper triangle), so N = 4000 takes
//! (4000/500)² ≈ 64 times the N = 500 time; `cargo run --release --example cnn_speed`
//! times N = 4000 in one run.

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode};
use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::time::Duration;

fn inputs(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| rng.sample::<f64, _>(StandardNormal))
}

fn conv(c: &mut Criterion) {
    let gap = infw::network! {
        input(40, 1)
        conv(64, size = 5) relu conv(64, size = 5) relu conv(64, size = 5) relu
        global_avg_pool dense(1)
    };
    let flat = infw::network! {
        input(40, 1)
        conv(64, size = 5) relu conv(64, size = 5) relu conv(64, size = 5) relu
        flatten dense(1)
    };
    let mut group = c.benchmark_group("conv");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for &n in &[250usize, 500] {
        let x = inputs(n, 40, 0xc0 + n as u64);
        group.bench_function(format!("gap_nngp_ntk/N={n}"), |b| {
            b.iter(|| gap.nngp_ntk(black_box(&x), black_box(&x)).unwrap())
        });
    }
    let x = inputs(4000, 40, 0xf1);
    group.bench_function("flatten_nngp_ntk/N=4000", |b| {
        b.iter(|| flat.nngp_ntk(black_box(&x), black_box(&x)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, conv);
criterion_main!(benches);
