"""neural-tangents 0.6.5 CNN-GP + CNTK Gram of the issue-10 speed declaration on the first N
embedded mnist1d training signals (standardised as infw does: population sd per feature),
for the comparison in README ("Convolutions"). Not part of the test suite. Run from the
repository root, in a venv outside the project:
    pip install neural-tangents==0.6.5 "jax[cpu]==0.4.23" "numpy<2" "scipy<1.13"
    python benches/neural_tangents/nt_conv.py 1800
and compare with `cargo run --release --example cnn_speed -- 1800`."""
import sys, time, resource
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import neural_tangents as nt
from neural_tangents import stax

n = int(sys.argv[1])
data = np.loadtxt("infw-runtime/data/mnist1d/train.csv", delimiter=",", skiprows=1)
x = data[:, 1:]
mu, sd = x.mean(0), x.std(0)
sd[sd == 0] = 1.0
x = ((x - mu) / sd)[:n].reshape(n, 40, 1)
layers = []
for _ in range(3):
    layers += [stax.Conv(64, (5,), padding="SAME"), stax.Relu()]
layers += [stax.GlobalAvgPool(), stax.Dense(1)]
_, _, kernel_fn = stax.serial(*layers)
kernel_fn = nt.batch(kernel_fn, batch_size=100)
t0 = time.time()
k = kernel_fn(x, None, ("nngp", "ntk"))
nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
secs = time.time() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"neural-tangents N = {n}: {secs:.1f} s, peak {peak:.0f} MB; K[0,1] = {nngp[0,1]:.6f}, Θ[0,1] = {ntk[0,1]:.6f}")
