//! One NNGP + NTK evaluation of (X, X) for the benchmark network, for measuring peak
//! memory (run it under `/usr/bin/time -v`) and trying Gram tiling parameters.
//!
//! ```text
//! cargo run --release --example gram_memory -- N D [BAND_ROWS] [REPS] [--dump DIR] [--reuse] [--small-pages]
//! ```
//!
//! `--small-pages`: outputs without the transparent-huge-page advice (`GramParams::huge_pages`).
//! `--reuse`: every repetition writes into the same two matrices (`nngp_ntk_into`), as a
//! caller evaluating many Grams of one size would, instead of receiving new ones.
//!
//! X is seeded standard normal (same seeds as `benches/gram.rs`). Prints the wall time of
//! each repetition and the median. `--dump DIR` writes X, NNGP and NTK to DIR as raw
//! little-endian f64 row-major files (`x.f64`, `nngp.f64`, `ntk.f64`), for comparing
//! against another implementation.

use ndarray::Array2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::io::Write;
use std::time::Instant;

fn inputs(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| rng.sample::<f64, _>(StandardNormal))
}

fn write_f64(path: &std::path::Path, a: &Array2<f64>) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for v in a.iter() {
        f.write_all(&v.to_le_bytes())?;
    }
    f.flush()
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let dump = args.iter().position(|a| a == "--dump").map(|i| {
        let dir = args.get(i + 1).expect("--dump DIR").clone();
        args.drain(i..i + 2);
        std::path::PathBuf::from(dir)
    });
    let small_pages = args
        .iter()
        .position(|a| a == "--small-pages")
        .map(|i| args.remove(i))
        .is_some();
    let reuse = args
        .iter()
        .position(|a| a == "--reuse")
        .map(|i| args.remove(i))
        .is_some();
    let usage = "usage: gram_memory N D [BAND_ROWS] [REPS] [--dump DIR] [--reuse] [--small-pages]";
    let n: usize = args.first().expect(usage).parse().expect(usage);
    let d: usize = args.get(1).expect(usage).parse().expect(usage);
    let band_rows: Option<usize> = args.get(2).map(|s| s.parse().expect(usage));
    let reps: usize = args.get(3).map_or(1, |s| s.parse().expect(usage));

    let mut net = infw::network! { dense(512) relu dense(512) relu dense(512) relu };
    net = net.with_gram_params(infw::GramParams {
        band_rows: band_rows.unwrap_or(0),
        huge_pages: !small_pages,
        ..Default::default()
    });
    let x = inputs(n, d, 0x5eed + n as u64 + d as u64);

    let mut times = Vec::with_capacity(reps);
    let mut last: Option<(Array2<f64>, Array2<f64>)> = None;
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        match (&mut last, reuse) {
            (Some((k, th)), true) => net.nngp_ntk_into(&x, &x, k, th).expect("nngp_ntk_into"),
            _ => last = Some(net.nngp_ntk(&x, &x).expect("nngp_ntk")),
        }
        times.push(t0.elapsed().as_secs_f64());
    }
    let (nngp, ntk) = last.expect("at least one repetition");
    println!(
        "N={n} d={d} band_rows={} reuse={reuse} times_s={times:.4?}",
        band_rows.map_or("default".to_string(), |b| b.to_string())
    );
    times.sort_by(f64::total_cmp);
    println!(
        "median_s={:.4} nngp[0,1]={:e} ntk[0,1]={:e}",
        times[times.len() / 2],
        nngp[[0, 1.min(n - 1)]],
        ntk[[0, 1.min(n - 1)]]
    );
    if let Some(dir) = dump {
        std::fs::create_dir_all(&dir).expect("create dump dir");
        write_f64(&dir.join("x.f64"), &x).expect("write x");
        write_f64(&dir.join("nngp.f64"), &nngp).expect("write nngp");
        write_f64(&dir.join("ntk.f64"), &ntk).expect("write ntk");
        println!("dumped x, nngp, ntk to {}", dir.display());
    }
}
