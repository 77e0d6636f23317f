//! Gram-engine throughput: NNGP + NTK of (X, X) for a 3-hidden-layer ReLU network
//! (readout implied), plus one case asking for all four kernels (NNGP, NTK, R, H) to
//! price the Adam-limit part.
//!
//! `cargo bench --bench gram` (filter e.g. `-- 'N=4000/d=64'`). Criterion's minimum
//! sample size (10) with flat sampling (one evaluation per sample for these sizes), so
//! the whole bench runs in a few minutes.

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode};
use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::time::Duration;

/// Seeded standard-normal n×d inputs.
fn inputs(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| rng.sample::<f64, _>(StandardNormal))
}

fn gram(c: &mut Criterion) {
    let net = infw::network! { dense(512) relu dense(512) relu dense(512) relu };
    let mut group = c.benchmark_group("gram");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    for &n in &[2000usize, 4000] {
        for &d in &[64usize, 784] {
            let x = inputs(n, d, 0x5eed + n as u64 + d as u64);
            group.bench_function(format!("nngp_ntk/N={n}/d={d}"), |b| {
                b.iter(|| net.nngp_ntk(black_box(&x), black_box(&x)).unwrap())
            });
        }
    }

    // All four kernels (no symmetric shortcut: R and H are not symmetric).
    let (n, d) = (4000usize, 64usize);
    let x = inputs(n, d, 0x5eed + n as u64 + d as u64);
    group.bench_function(format!("all_kernels/N={n}/d={d}"), |b| {
        b.iter(|| {
            net.kernels(black_box(&x), infw::TrainingInputs::of(&x), infw::Want::ALL)
                .unwrap()
        })
    });
    group.finish();
}

/// The speed aim for activations without closed forms: `dense(512) tanh ×3` against
/// `dense(512) relu ×3`, NNGP + NTK of (X, X) at N = 4000, d = 64, in one run
/// (`cargo bench --bench gram -- activations`); the ratio of the two is what is reported.
fn activations(c: &mut Criterion) {
    let relu = infw::network! { dense(512) relu dense(512) relu dense(512) relu };
    let tanh = infw::network! { dense(512) tanh dense(512) tanh dense(512) tanh };
    let gelu = infw::network! { dense(512) gelu dense(512) gelu dense(512) gelu };
    let mut group = c.benchmark_group("activations");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let (n, d) = (4000usize, 64usize);
    let x = inputs(n, d, 0x5eed + n as u64 + d as u64);
    group.bench_function(format!("relu_x3/N={n}/d={d}"), |b| {
        b.iter(|| relu.nngp_ntk(black_box(&x), black_box(&x)).unwrap())
    });
    group.bench_function(format!("gelu_x3/N={n}/d={d}"), |b| {
        b.iter(|| gelu.nngp_ntk(black_box(&x), black_box(&x)).unwrap())
    });
    group.bench_function(format!("tanh_x3/N={n}/d={d}"), |b| {
        b.iter(|| tanh.nngp_ntk(black_box(&x), black_box(&x)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, gram, activations);
criterion_main!(benches);
