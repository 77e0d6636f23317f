"""Generates reference_values.in for infw-layers' numerical engine tests (docs/math.md §6).

Run: python3 reference_values.py > reference_values.in   (needs mpmath; a few minutes)
E[φφ], E[φ'φ']: brute-force trapezoidal sums in plain Python floats over u = √a x,
v = βx + γz, at steps h and h/2 (they must agree). S, D: mpmath tanh-sinh quadrature of
E_x[f(√a x) · E[sign g(βx + γz) | x]] with the Gaussian-tail sum, split at 0 and r/β.
"""
import math
from mpmath import mp, mpf, sqrt, tanh, sech, exp, log, quad, inf, npdf, ncdf, erfc

mp.dps = 20

def fsig(u):
    return 1 / (1 + math.exp(-u)) if u >= 0 else math.exp(u) / (1 + math.exp(u))

FLOAT = {
    'tanh': (math.tanh, lambda u: 1 / math.cosh(u) ** 2 if abs(u) < 700 else 0.0),
    'softplus': (lambda u: max(u, 0) + math.log1p(math.exp(-abs(u))), fsig),
    'silu': (lambda u: u * fsig(u), lambda u: fsig(u) * (1 + u * fsig(-u))),
    'sigmoid': (fsig, lambda u: fsig(u) * fsig(-u)),
    'gelu': (lambda u: u * 0.5 * math.erfc(-u / math.sqrt(2)),
             lambda u: 0.5 * math.erfc(-u / math.sqrt(2)) + u * math.exp(-u * u / 2) / math.sqrt(2 * math.pi)),
}
sig = lambda u: 1 / (1 + exp(-u))
MP = {
    'tanh': (tanh, lambda u: sech(u) ** 2, [0], []),
    'softplus': (lambda u: log(1 + exp(u)), sig, [], []),
    'silu': (lambda u: u * sig(u), lambda u: sig(u) * (1 + u * (1 - sig(u))), [0],
             [mpf('-1.278464542761073795109358739022980155439')]),
    'sigmoid': (sig, lambda u: sig(u) * (1 - sig(u)), [], []),
    'gelu': (lambda u: u * ncdf(u), lambda u: ncdf(u) + u * npdf(u), [0],
             [mpf('-0.7517915246935644574579049467795240396645')]),
}

def geometry(a, b, c, par):
    sa, sb = math.sqrt(a), math.sqrt(b)
    rho = 1.0 if par else c * (1 / sa) * (1 / sb)
    return sa, sb, rho * sb, sb * math.sqrt(max(0.0, (1 - rho) * (1 + rho)))

def trapezoid(F, a, b, c, par, hx, hz):
    sa, sb, beta, gamma = geometry(a, b, c, par)
    if gamma == 0:
        zs, wz = [0.0], [1.0]
    else:
        nz = int(10 / hz)
        zs = [j * hz for j in range(-nz, nz + 1)]
        wz = [hz * math.exp(-z * z / 2) / math.sqrt(2 * math.pi) for z in zs]
    nx = int(10 / hx)
    terms = []
    for i in range(-nx, nx + 1):
        x = i * hx
        m = math.fsum(w * F(beta * x + gamma * z) for z, w in zip(zs, wz))
        terms.append(hx * math.exp(-x * x / 2) / math.sqrt(2 * math.pi) * F(sa * x) * m)
    return math.fsum(terms)

def product(F, a, b, c, par):
    sa, sb, beta, gamma = geometry(a, b, c, par)
    hx, hz = 0.1 / max(1, sa, abs(beta)), 0.2 / max(1, gamma)
    fine, coarse = trapezoid(F, a, b, c, par, hx / 2, hz / 2), trapezoid(F, a, b, c, par, hx, hz)
    assert abs(fine - coarse) < 1e-14, (fine, coarse)
    return fine

Q = lambda t: erfc(t / sqrt(2)) / 2

def sign_kernel(F, roots, a, b, c, par):
    a, b, c = mpf(a), mpf(b), mpf(c)
    sa, sb = sqrt(a), sqrt(b)
    rho = mpf(1) if par else c / (sa * sb)
    beta, gamma = rho * sb, sb * sqrt(max(0, 1 - rho * rho))
    pts = sorted(roots)
    def s_at(x):
        v = F(x)
        return 1 if v > 0 else (-1 if v < 0 else 0)
    signs = [s_at((pts[0] - 1) if j == 0 and pts else (pts[-1] + 1) if j == len(pts) and pts
                  else (pts[j - 1] + pts[j]) / 2 if pts else 0) for j in range(len(pts) + 1)]
    def h(x):
        if gamma == 0:
            return signs[sum(1 for p in pts if p < beta * x)]
        s = mpf(signs[0])
        for j, p in enumerate(pts):
            s += (signs[j + 1] - signs[j]) * Q((p - beta * x) / gamma)
        return s
    brk = sorted(set([mpf(0)] + [p / beta for p in pts]))
    return quad(lambda x: F(sa * x) * h(x) * npdf(x), [-inf] + brk + [inf])

CASES = [(1.3, 0.7, 0.4, False), (2.5, 0.4, -0.9, False), (4.0, 4.0, 3.9, False), (0.8, 1.8, 1.2, True)]
EXTRA = [(9.0, 16.0, 11.988, False), (0.3, 0.3, -0.2999, False), (30.0, 2.0, 7.0, False)]

print('[')
for name in ['gelu', 'sigmoid', 'silu', 'softplus', 'tanh']:
    for case in CASES + (EXTRA if name in ('silu', 'tanh') else []):
        f, df = FLOAT[name]
        mf, mdf, r, dr = MP[name]
        v = [product(f, *case), product(df, *case), sign_kernel(mf, r, *case), sign_kernel(mdf, dr, *case)]
        a, b, c, par = case
        print(f'("{name}", {a}, {b}, {c}, {str(par).lower()}, [{", ".join(mp.nstr(mpf(x), 17) for x in v)}]),', flush=True)
print(']')
