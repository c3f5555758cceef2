"""fastcore.activations: the maps on float32 4096×4096 along the last axis and axis 0, against
the float64 NumPy reference pipeline and a float32 NumPy softmax (the usual user code). Memory
floor: 8 B per element (read x, write y) for the forward maps, 12 B for backward (y, dy -> dx).

GPU (when one is available): softmax and sparsemax at 4096×4096 and 8192×32768 in float32 and
bfloat16 (issue 3's targets), the other maps and axis 0 at float32 8192×8192, against the CuPy
pipeline a user would write (max, exp, sum, divide: four kernels; sort-based sparsemax), as a
fraction of the measured device copy bandwidth (2 × size × itemsize bytes per forward call)."""

from __future__ import annotations

import numpy as np

from fastcore import activations as A
from fastcore.reference import activations as R
from harness import Case, max_rel_error


def numpy_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sort_sparsemax(x, axis, xp=np):
    """Sort-based sparsemax (Martins & Astudillo Alg. 1), the usual port, in NumPy or (xp=cupy)
    CuPy: sort, cumsum, support size, threshold."""
    z = xp.moveaxis(x, axis, -1)
    zs = -xp.sort(-z, axis=-1)
    k = xp.arange(1, z.shape[-1] + 1, dtype=x.dtype)
    cums = xp.cumsum(zs, axis=-1)
    support = (1 + k * zs) > cums
    kstar = support.sum(-1, keepdims=True)
    tau = (xp.take_along_axis(cums, kstar - 1, -1) - 1) / kstar
    return xp.moveaxis(xp.maximum(z - tau, 0), -1, axis)


def numpy_bisect_entmax(x, alpha, n_iter=50):
    """alpha-entmax along the last axis by plain bisection on tau, vectorised over the rows, in
    the input dtype: the algorithm of the usual PyTorch port (a fixed 50 halvings of
    [max - 1, max - n^(1-alpha)] in units of (alpha-1) x, then p renormalised), in NumPy."""
    d = (alpha - 1) * x
    d = d - d.max(axis=-1, keepdims=True)
    lo = np.full(d.shape[:-1] + (1,), -1.0, dtype=x.dtype)
    hi = np.full_like(lo, -(d.shape[-1] ** (1 - alpha)))
    inv = 1.0 / (alpha - 1)
    for _ in range(n_iter):
        mid = (lo + hi) / 2
        above = (np.clip(d - mid, 0, None) ** inv).sum(axis=-1, keepdims=True) >= 1
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    p = np.clip(d - lo, 0, None) ** inv
    return p / p.sum(axis=-1, keepdims=True)


def cupy_softmax(x, axis, log=False):
    import cupy as cp

    z = x - x.max(axis=axis, keepdims=True)
    if log:
        return z - cp.log(cp.exp(z).sum(axis=axis, keepdims=True))
    e = cp.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _gpu_storage_dtypes(cp):
    """float32, and bfloat16 where ml_dtypes and this CuPy can hold it."""
    out = [("f32", np.dtype(np.float32))]
    try:
        import ml_dtypes

        cp.asarray(np.zeros(1, ml_dtypes.bfloat16))
        out.append(("bf16", np.dtype(ml_dtypes.bfloat16)))
    except Exception:  # no ml_dtypes, or a CuPy without bfloat16
        pass
    return out


def gpu_cases(ctx, rng):
    """Issue 3's GPU targets: softmax and sparsemax forward at 4096x4096 and 8192x32768, float32
    and bfloat16, against >= 80% of device copy bandwidth and >= 3x the CuPy pipeline; plus the
    other maps and axis 0 at 8192x8192 float32, and the backward passes."""
    import fastcore

    if not fastcore.cuda_available():
        return []
    import cupy as cp

    out = []

    def add(name, x, x_h, axis, label, peers_for):
        fn = getattr(A, name)
        y = cp.empty_like(x)
        sl = (slice(0, 16),) if axis == -1 else (slice(None), slice(0, 16))
        peers = {}
        for peer_name, peer in peers_for(name, x, axis).items():
            try:  # a CuPy without this dtype in some routine: no peer
                peer()
                peers[peer_name] = peer
            except Exception:
                pass
        rows, n = x.shape
        out.append(Case(
            family="activations", device="cuda",
            name=f"{name} {label} {rows}x{n} axis={axis}",
            compiled=lambda fn=fn, x=x, y=y, axis=axis: fn(x, axis=axis, out=y),
            peers=peers,
            bytes=2 * x.size * x.dtype.itemsize,
            check=lambda fn=fn, name=name, x=x, axis=axis, sl=sl: max_rel_error(
                cp.asnumpy(fn(cp.ascontiguousarray(x[sl]), axis=axis)).astype(np.float64),
                getattr(R, name)(cp.asnumpy(x[sl]).astype(np.float64), axis=axis)),
        ))

    def peers_for(name, x, axis):
        if name in ("softmax", "log_softmax"):
            return {"cupy pipeline": lambda: cupy_softmax(x, axis, name == "log_softmax")}
        if name == "sparsemax":
            return {"cupy sort pipeline": lambda: sort_sparsemax(x, axis, cp)}
        return {}

    shapes = [(4096, 4096), (8192, 32768)] if not ctx.quick else [(512, 1024)]
    for rows, n in shapes:
        x_h = (rng.standard_normal((rows, n), dtype=np.float32) * 3)
        for label, dtype in _gpu_storage_dtypes(cp):
            x = cp.asarray(x_h.astype(dtype))
            for name in ("softmax", "sparsemax"):
                add(name, x, x_h, -1, label, peers_for)
            del x
    rows = n = ctx.size(8192, 1024)
    x_h = (rng.standard_normal((rows, n), dtype=np.float32) * 3)
    x = cp.asarray(x_h)
    for name in ("log_softmax", "entmax15"):
        add(name, x, x_h, -1, "f32", peers_for)
    for name in ("softmax", "log_softmax", "sparsemax", "entmax15"):
        add(name, x, x_h, 0, "f32", peers_for)
    dy = cp.asarray(rng.standard_normal((rows, n), dtype=np.float32))
    y = cp.empty_like(x)
    for name in ("softmax", "sparsemax"):
        p = getattr(A, name)(x)
        bwd = getattr(A, name + "_backward")
        peers = {}
        if name == "softmax":
            peers["cupy pipeline"] = lambda p=p: p * (dy - (p * dy).sum(axis=-1, keepdims=True))
        out.append(Case(
            family="activations", device="cuda", name=f"{name}_backward f32 {rows}x{n}",
            compiled=lambda bwd=bwd, p=p: bwd(p, dy, out=y),
            peers=peers,
            bytes=12 * x.size,
        ))
    return out


def cases(ctx):
    out = []
    rows = ctx.size(4096, 512)
    n = 4096
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((rows, n)) * 3).astype(np.float32)
    y = np.empty_like(x)
    small = x[:64]
    for axis in (-1, 0):
        for name in ("softmax", "log_softmax", "sparsemax", "entmax15"):
            fn = getattr(A, name)
            peers = {}
            if name == "softmax":
                peers["numpy float32"] = lambda axis=axis: numpy_softmax(x, axis)
            if name == "sparsemax":
                peers["numpy sort float32"] = lambda axis=axis: sort_sparsemax(x, axis)
            out.append(Case(
                family="activations",
                name=f"{name} f32 {rows}x{n} axis={axis}",
                compiled=lambda fn=fn, axis=axis: fn(x, axis=axis, out=y),
                reference=(lambda fn=name, axis=axis: getattr(R, fn)(x, axis=axis)) if not ctx.quick else None,
                peers=peers,
                bytes=8 * x.size,
                check=lambda fn=fn, name=name: max_rel_error(
                    np.nan_to_num(fn(small), neginf=0), np.nan_to_num(getattr(R, name)(small), neginf=0)),
            ))
    # alpha-entmax on these logits (3 x standard normal): alpha = 1.05 keeps ~4070 of the 4096
    # entries, 1.25 ~27, 1.7 ~3; against the row-vectorised NumPy bisection
    for alpha in (1.05, 1.25, 1.7):
        out.append(Case(
            family="activations",
            name=f"entmax_bisect a={alpha} f32 {rows}x{n} axis=-1",
            compiled=lambda alpha=alpha: A.entmax_bisect(x, alpha, out=y),
            peers={"numpy bisection x50 float32": lambda alpha=alpha: numpy_bisect_entmax(x, alpha)},
            bytes=8 * x.size,
            check=lambda alpha=alpha: max_rel_error(A.entmax_bisect(small, alpha),
                                                    R.entmax_bisect(small.astype(np.float64), alpha)),
        ))
    dy = rng.standard_normal(x.shape).astype(np.float32)
    for alpha in (1.05, 1.7):
        p = A.entmax_bisect(x, alpha)
        out.append(Case(
            family="activations",
            name=f"entmax_bisect_backward a={alpha} f32 {rows}x{n}",
            compiled=lambda p=p, alpha=alpha: A.entmax_bisect_backward(p, dy, alpha, out=y),
            bytes=12 * x.size,
        ))
    for axis in (-1, 0):
        for name in ("softmax", "sparsemax", "entmax15"):
            p = getattr(A, name)(x, axis=axis)
            bwd = getattr(A, name + "_backward")
            out.append(Case(
                family="activations",
                name=f"{name}_backward f32 {rows}x{n}" + (" axis=0" if axis == 0 else ""),
                compiled=lambda bwd=bwd, p=p, axis=axis: bwd(p, dy, axis=axis, out=y),
                bytes=12 * x.size,
            ))
    out.extend(gpu_cases(ctx, rng))
    return out
