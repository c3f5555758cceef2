#!/usr/bin/env python
"""fastcore quickstart: runs each kernel family on realistic sizes, checks the result against the
float64 NumPy reference, and prints the time and the speed ratio against that reference.

    pip install . && python examples/quickstart.py

Exits non-zero when any result check fails.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import fastcore
from fastcore import reference


def timed(fn, repeat=5):
    """(result, median seconds) over a few runs after one warm-up."""
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def row(family, what, ok, err, t_fast, t_ref):
    return {"family": family, "what": what, "ok": ok, "err": err, "t_fast": t_fast, "t_ref": t_ref}


def demo_core(rng):
    """The shared vectorised exp (cpp/common/vmath.hpp) on 16M float32 values."""
    from fastcore import _cpu

    x = rng.uniform(-80, 80, 1 << 24).astype(np.float32)
    y = np.empty_like(x)
    _, t_fast = timed(lambda: _cpu._testing.exp_f32(x, y))
    ref, t_ref = timed(lambda: reference.exp(x))
    rel = float(np.max(np.abs(y - ref) / ref))
    return [row("core", "exp float32, 16M values", rel < 2.5e-7, rel, t_fast, t_ref)]


def demo_tiger(rng):
    """Tiger optimizer step (fastcore.tiger): 16M float32 parameters in 100 tensors, one fused
    multi-tensor call vs the float32 NumPy reference."""
    from fastcore.reference import tiger as ref_tiger

    sizes = rng.integers(1, 2 * (16 << 20) // 100, 100)
    P = [rng.standard_normal(int(n)).astype(np.float32) for n in sizes]
    G = [rng.standard_normal(int(n)).astype(np.float32) for n in sizes]
    M = [np.zeros(int(n), np.float32) for n in sizes]
    P0, M0 = [p.copy() for p in P], [m.copy() for m in M]
    fastcore.tiger_step(P, G, M, step=0, lr=1e-3)
    rp, rm, _ = ref_tiger.tiger_step(P0, G, M0, step=0, lr=1e-3)
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(P, rp))
    # lr = 0 keeps the parameters fixed, so repeated timing runs measure the same work
    _, t_fast = timed(lambda: fastcore.tiger_step(P, G, M, step=0, lr=0.0))
    _, t_ref = timed(lambda: ref_tiger.tiger_step(P, G, M, step=0, lr=0.0, precision="storage"), repeat=2)
    # float32 storage: theta ~ N(0, 1) within a few ulp (2^-23 * |theta| <~ 5e-7) of float64
    return [row("tiger", f"step f32, {int(sizes.sum()) >> 20}M params/100 tensors", err < 1e-6, err, t_fast, t_ref)]


def demo_ig(rng):
    """Integrated gradients (fastcore.ig): MLP 3072→256→256→10 (tanh, softmax), 64 examples,
    50 Gauss–Legendre steps, float32: the fused built-in model vs the straightforward NumPy IG."""
    from fastcore import ig
    from fastcore.reference import ig as ref_ig

    D, H, C, N, S = 3072, 256, 10, 64, 50
    layers = [((rng.standard_normal((H, D)) / np.sqrt(D)).astype(np.float32), np.zeros(H, np.float32)),
              ((rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32), np.zeros(H, np.float32)),
              ((rng.standard_normal((C, H)) / np.sqrt(H)).astype(np.float32), np.zeros(C, np.float32))]
    model = ig.MLP(layers, "tanh", "softmax")
    x = rng.standard_normal((N, D)).astype(np.float32)
    t = rng.integers(0, C, N)
    res, t_fast = timed(lambda: ig.integrated_gradients(model, x, target=t, n_steps=S, return_delta=True))
    grad = ref_ig.mlp_grad_callable(layers, "tanh", "softmax", np.float32)
    a, w = ig.quadrature(S)
    expected, t_ref = timed(lambda: ref_ig.numpy_integrated_gradients(grad, x, 0.0, t, a, w), repeat=2)
    err = float(np.max(np.abs(res.attributions - expected)) / np.max(np.abs(expected)))
    # float32 products of length <= 3072 on both sides: relative agreement ~1e-6; completeness
    # (the delta) is the quadrature error plus float32 rounding of F and of the attributions
    ok = err < 1e-4 and float(np.max(np.abs(res.delta))) < 1e-4
    return [row("ig", f"MLP {D}-{H}-{H}-{C} tanh/softmax, N={N}, GL{S}", ok, err, t_fast, t_ref)]


def demo_activations(rng):
    """Probability maps (fastcore.activations): softmax and exact sparsemax on 4096x4096 float32
    logits vs the float64 NumPy references (softmax: exp(x - max)/sum; sparsemax: sort-based)."""
    from fastcore import activations as A
    from fastcore.reference import activations as R

    x = (rng.standard_normal((4096, 4096)) * 3).astype(np.float32)
    rows = []
    for name in ("softmax", "sparsemax"):
        y, t_fast = timed(lambda name=name: getattr(A, name)(x))
        ref, t_ref = timed(lambda name=name: getattr(R, name)(x), repeat=1)
        err = float(np.max(np.abs(y - ref)))
        # probabilities in [0, 1]: float32 results within a few ulp of 1
        rows.append(row("activations", f"{name} f32 4096x4096", err < 2e-6, err, t_fast, t_ref))
    return rows


def demo_monarch(rng):
    """Monarch multiply (fastcore.monarch): float32, batch 4096, n = 4096 with 64 blocks, vs the
    dense NumPy matmul with the same matrix (the float64 check uses 64 rows)."""
    from fastcore import monarch as M

    n, nb = 4096, 64
    m = n // nb
    w1 = (rng.standard_normal((nb, m, m)) / np.sqrt(m)).astype(np.float32)
    w2 = (rng.standard_normal((nb, m, m)) / np.sqrt(m)).astype(np.float32)
    x = rng.standard_normal((4096, n)).astype(np.float32)
    dense = M.to_dense(w1, w2)
    y, t_fast = timed(lambda: M.multiply(x, w1, w2))
    _, t_ref = timed(lambda: x @ dense.T, repeat=2)
    exact = x[:64].astype(np.float64) @ dense.T.astype(np.float64)
    err = float(np.max(np.abs(y[:64] - exact)) / np.max(np.abs(exact)))
    # two float32 FMA chains of 64 terms each: relative error ~1e-7
    return [row("monarch", f"multiply f32 B=4096 n={n} ({nb} blocks)", err < 2e-6, err, t_fast, t_ref)]


def demo_s4(rng):
    """S4 kernels (fastcore.s4): the fused S4 kernel (H=256, N=32 pairs, L=4096, complex64,
    HiPPO-LegS) and the FFT convolution (float32, B=8, H=256, L=4096) vs the NumPy pipelines."""
    from fastcore.reference import s4 as ref_s4

    H, N, L = 256, 32, 4096
    Lambda, P, B = ref_s4.hippo_legs(N, H)
    Ct = rng.standard_normal((H, N)) + 1j * rng.standard_normal((H, N))
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), H))
    c64 = [a.astype(np.complex64) for a in (Lambda, P, B, Ct)]
    K, t_fast = timed(lambda: fastcore.s4.kernel_dplr(*c64, dt, L))
    K_ref, t_ref = timed(lambda: ref_s4.kernel_dplr(Lambda, P, B, Ct, dt, L), repeat=1)
    err_k = float(np.abs(K - K_ref).max() / np.abs(K_ref).max())
    u = rng.standard_normal((8, H, L)).astype(np.float32)
    Kc = K.astype(np.float32)
    D = rng.standard_normal(H).astype(np.float32)
    y, t_conv = timed(lambda: fastcore.s4.fftconv(u, Kc, D))
    y_ref, t_conv_ref = timed(lambda: ref_s4.fftconv(u, Kc, D), repeat=1)
    err_y = float(np.abs(y - y_ref).max() / np.abs(y_ref).max())
    # complex64 S4 kernel with float64 nodes: <= 3e-5 of max|K| (notes/s4.md §9); float32 FFT
    # convolution: <= 1e-5 of max|y|
    return [row("s4", f"kernel_dplr c64 H={H} N={N} L={L}", err_k < 3e-5, err_k, t_fast, t_ref),
            row("s4", f"fftconv f32 B=8 H={H} L={L}", err_y < 1e-5, err_y, t_conv, t_conv_ref)]


DEMOS = [demo_core]
DEMOS.append(demo_activations)
DEMOS.append(demo_tiger)
DEMOS.append(demo_monarch)
DEMOS.append(demo_ig)
DEMOS.append(demo_s4)


def main() -> int:
    fastcore.show_config()
    rng = np.random.default_rng(0)
    rows = [r for demo in DEMOS for r in demo(rng)]
    print()
    print(f"{'family':13s} {'what':46s} {'check':>14s} {'fastcore':>10s} {'reference':>10s} {'speed-up':>9s}")
    for r in rows:
        status = ("ok " if r["ok"] else "BAD") + f" {r['err']:.1e}"
        print(f"{r['family']:13s} {r['what']:46s} {status:>14s} {r['t_fast'] * 1e3:8.2f}ms "
              f"{r['t_ref'] * 1e3:8.2f}ms {r['t_ref'] / r['t_fast']:8.1f}x")
    failed = [r for r in rows if not r["ok"]]
    if failed:
        print(f"\n{len(failed)} result check(s) FAILED", file=sys.stderr)
        return 1
    print("\nall results match the float64 references")
    return 0


if __name__ == "__main__":
    sys.exit(main())
