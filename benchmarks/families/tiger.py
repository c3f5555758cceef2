"""Tiger optimizer step: 64M float32 parameters in ~200 tensors of mixed sizes (issue #4).

Floors (notes/tiger.md §9): a full step must read p, g, m and write p, m: 20 B/param; an
accumulation micro-step reads g, m and writes m: 12 B/param. The kernel also reads theta once
for the RMS and g once for the non-finite check in a pre-pass (one pass over both: +8 B/param;
+4 B with found_inf given, where only the RMS is needed). Reported fractions use the floors.

Compared: the float32 NumPy reference (fastcore.reference.tiger, precision="storage", out of
place) and an in-place multi-pass NumPy step (the "best plain NumPy" peer).
"""

from __future__ import annotations

import numpy as np

from fastcore import tiger_step
from fastcore.reference import tiger as ref
from harness import Case


def _sizes(total: int, count: int, rng) -> list[int]:
    # log-uniform sizes (biases to big matrices), rescaled to the total
    raw = np.exp(rng.uniform(np.log(64), np.log(total / 8), count))
    sizes = np.maximum(1, (raw / raw.sum() * total).astype(np.int64))
    sizes[0] += total - sizes.sum()
    return [int(s) for s in sizes]


def numpy_inplace_step(P, G, M, lr, beta=0.965, wd=0.01):
    """Plain NumPy, in place, float32: the multi-pass form a user would write."""
    b = np.float32(beta)
    c = np.float32(1 - beta)
    for p, g, m in zip(P, G, M):
        if not np.isfinite(g).all():
            p *= np.float32(0.99)
            continue
        eta = np.float32(lr * np.sqrt(np.mean(np.square(p, dtype=np.float32), dtype=np.float64)))
        m *= b
        m += c * g
        p -= eta * (np.sign(m) + np.float32(wd) * p)


def cases(ctx):
    rng = np.random.default_rng(0)
    total = ctx.size(64 << 20, 4 << 20)
    count = 200 if not ctx.quick else 50
    sizes = _sizes(total, count, rng)
    P = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    G = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    M = [np.zeros(n, np.float32) for n in sizes]
    n_params = sum(sizes)
    label = f"{n_params / 2**20:.0f}M params/{count} tensors"
    out = []

    def check_full():
        # one fresh step on a copy of the first 3 tensors vs the float64 reference
        p3, m3 = [p[:4096].copy() for p in P[:3]], [m[:4096].copy() for m in M[:3]]
        g3 = [g[:4096] for g in G[:3]]
        rp, _, _ = ref.tiger_step(p3, g3, m3, step=0, lr=1e-3)
        tiger_step(p3, g3, m3, step=0, lr=1e-3)
        err = max(float(np.max(np.abs(a - b))) for a, b in zip(p3, rp))
        return f"max |dtheta| {err:.1e}"

    out.append(Case(
        family="tiger", name=f"tiger step f32 {label}",
        compiled=lambda: tiger_step(P, G, M, step=0, lr=1e-6),
        reference=lambda: ref.tiger_step(P, G, M, step=0, lr=1e-6, precision="storage"),
        peers={"numpy in-place": lambda: numpy_inplace_step(P, G, M, 1e-6)},
        bytes=20 * n_params, check=check_full,
        note="20 B/param floor; kernel moves 28 B (pre-pass over theta and g)"))
    out.append(Case(
        family="tiger", name=f"tiger step f32 found_inf {label}",
        compiled=lambda: tiger_step(P, G, M, step=0, lr=1e-6, found_inf=False),
        bytes=20 * n_params, note="20 B/param floor; kernel moves 24 B (RMS pre-pass)"))
    out.append(Case(
        family="tiger", name=f"tiger micro-step f32 {label}",
        compiled=lambda: tiger_step(P, G, M, step=0, lr=1e-6, grad_accum_steps=4, found_inf=False),
        bytes=12 * n_params, note="12 B/param: g and m only"))
    out.append(Case(
        family="tiger", name=f"tiger micro-step f32 checked {label}",
        compiled=lambda: tiger_step(P, G, M, step=0, lr=1e-6, grad_accum_steps=4),
        bytes=12 * n_params, note="12 B/param floor; kernel moves 16 B (non-finite pre-pass)"))
    # Many small tensors: what the Python layer costs around one compiled call (1000 tensors of
    # 1-4095 float32; the kernel's own work is ~2 MB of traffic).
    small = [int(n) for n in np.random.default_rng(2).integers(1, 4096, 1000)]
    Ps = [rng.standard_normal(n).astype(np.float32) for n in small]
    Gs = [rng.standard_normal(n).astype(np.float32) for n in small]
    Ms = [np.zeros(n, np.float32) for n in small]
    out.append(Case(
        family="tiger", name="tiger step f32 1000 small tensors",
        compiled=lambda: tiger_step(Ps, Gs, Ms, step=0, lr=1e-6),
        peers={"numpy in-place": lambda: numpy_inplace_step(Ps, Gs, Ms, 1e-6)},
        bytes=20 * sum(small), note="validation of 3000 arrays + one compiled call"))
    out.extend(_cuda_cases(ctx))
    return out


def _cuda_cases(ctx):
    """H100 targets (issue #4): >= 80% of device copy bandwidth at 1B float32 parameters (20 B
    per parameter), and 1000 small tensors in <= 2 launches (timed here as well)."""
    import fastcore

    if not fastcore.cuda_available():
        return []
    import cupy as cp

    out = []
    total = ctx.size(1 << 30, 1 << 24)
    sizes = _sizes(total, 200, np.random.default_rng(1))
    P = [cp.random.standard_normal(n, dtype=cp.float32) for n in sizes]
    G = [cp.random.standard_normal(n, dtype=cp.float32) for n in sizes]
    M = [cp.zeros(n, cp.float32) for n in sizes]
    label = f"{sum(sizes) / 2**20:.0f}M params/200 tensors"

    def cupy_tiger(beta=0.965, lr=1e-7, wd=0.01):
        """The per-tensor CuPy loop a user would write (no guard, no accumulation): 4 kernels each."""
        for p, g, m in zip(P, G, M):
            m *= beta
            m += (1 - beta) * g
            p *= 1 - lr * wd
            p -= lr * cp.sign(m)

    out.append(Case(family="tiger", name=f"tiger step f32 cuda {label}", device="cuda",
                    compiled=lambda: tiger_step(P, G, M, step=0, lr=1e-7),
                    peers={"cupy per-tensor loop": cupy_tiger},
                    bytes=20 * sum(sizes), note="20 B/param floor; moves 28 B (reduce launch reads p and g)"))
    out.append(Case(family="tiger", name=f"tiger micro-step f32 cuda {label}", device="cuda",
                    compiled=lambda: tiger_step(P, G, M, step=0, lr=1e-7, grad_accum_steps=4, found_inf=False),
                    bytes=12 * sum(sizes), note="12 B/param: one launch"))
    small = [int(n) for n in np.random.default_rng(2).integers(1, 4096, 1000)]
    Ps = [cp.random.standard_normal(n, dtype=cp.float32) for n in small]
    Gs = [cp.random.standard_normal(n, dtype=cp.float32) for n in small]
    Ms = [cp.zeros(n, cp.float32) for n in small]
    out.append(Case(family="tiger", name="tiger step f32 cuda 1000 small tensors", device="cuda",
                    compiled=lambda: tiger_step(Ps, Gs, Ms, step=0, lr=1e-7), bytes=20 * sum(small),
                    note="2 launches; host-side validation and metadata dominate"))
    return out
