"""neural-tangents 0.6.5 NNGP + NTK of (X, X) for `dense(512) relu dense(512) relu dense(512)
relu` (w_std 1, b_std 0), on the X that infw's `examples/gram_memory` wrote with `--dump`,
for the comparison in README ("Speed"). Not part of the test suite. In a venv outside the
project:
    pip install neural-tangents==0.6.5 "jax[cpu]==0.4.23" "numpy<2" "scipy<1.13"
    cargo run --release --example gram_memory -- 4000 64 0 5 --dump /tmp/g64
    python benches/neural_tangents/nt_dense.py /tmp/g64 4000 64
Prints the median of 3 timed calls of the jitted kernel function (after one warm-up call)
and the largest difference from infw's NNGP and NTK, relative to their largest entry."""
import sys, time
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
from neural_tangents import stax

folder, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = np.fromfile(f"{folder}/x.f64", dtype="<f8").reshape(n, d)
_, _, kernel_fn = stax.serial(
    stax.Dense(512), stax.Relu(), stax.Dense(512), stax.Relu(), stax.Dense(512), stax.Relu(),
    stax.Dense(1),
)
f = jax.jit(kernel_fn, static_argnames="get")
k = f(x, None, get=("nngp", "ntk"))
k.nngp.block_until_ready()
times = []
for _ in range(3):
    t0 = time.time()
    k = f(x, None, get=("nngp", "ntk"))
    k.ntk.block_until_ready()
    times.append(time.time() - t0)
nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
ours = {name: np.fromfile(f"{folder}/{name}.f64", dtype="<f8").reshape(n, n) for name in ("nngp", "ntk")}
diff = {name: np.abs(ours[name] - theirs).max() / np.abs(theirs).max()
        for name, theirs in (("nngp", nngp), ("ntk", ntk))}
print(f"N={n} d={d} times_s={[round(t, 4) for t in times]} median_s={sorted(times)[1]:.4f} "
      f"max|infw-nt|/max: nngp {diff['nngp']:.1e} ntk {diff['ntk']:.1e}")
