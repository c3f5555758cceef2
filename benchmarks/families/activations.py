"""fastcore.activations: the maps on float32 4096×4096 along the last axis and axis 0, against
the float64 NumPy reference pipeline and a float32 NumPy softmax (the usual user code). Memory
floor: 8 B per element (read x, write y) for the forward maps, 12 B for backward (y, dy -> dx).

GPU (when one is available): float32 8192×8192 (256 MiB, several times the L2 cache) along the
last axis and axis 0, against the CuPy pipeline a user would write (max, exp, sum, divide: four
kernels; sort-based sparsemax), as a fraction of the measured device copy bandwidth."""

from __future__ import annotations

import numpy as np

from fastcore import activations as A
from fastcore.reference import activations as R
from harness import Case, max_rel_error


def numpy_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def numpy_sparsemax(x, axis):
    """Sort-based sparsemax in float32 NumPy (Martins & Astudillo Alg. 1), the usual port."""
    z = np.moveaxis(x, axis, -1)
    zs = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1, dtype=x.dtype)
    cums = np.cumsum(zs, axis=-1)
    support = (1 + k * zs) > cums
    kstar = support.sum(-1, keepdims=True)
    tau = (np.take_along_axis(cums, kstar - 1, -1) - 1) / kstar
    return np.moveaxis(np.maximum(z - tau, 0), -1, axis)


def cupy_softmax(x, axis, log=False):
    import cupy as cp

    z = x - x.max(axis=axis, keepdims=True)
    if log:
        return z - cp.log(cp.exp(z).sum(axis=axis, keepdims=True))
    e = cp.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def cupy_sparsemax(x, axis):
    """numpy_sparsemax with CuPy: sort, cumsum, support size, threshold (several kernels)."""
    import cupy as cp

    z = cp.moveaxis(x, axis, -1)
    zs = -cp.sort(-z, axis=-1)
    k = cp.arange(1, z.shape[-1] + 1, dtype=x.dtype)
    cums = cp.cumsum(zs, axis=-1)
    kstar = ((1 + k * zs) > cums).sum(-1, keepdims=True)
    tau = (cp.take_along_axis(cums, kstar - 1, -1) - 1) / kstar
    return cp.moveaxis(cp.maximum(z - tau, 0), -1, axis)


def gpu_cases(ctx, rng):
    import fastcore

    if not fastcore.cuda_available():
        return []
    import cupy as cp

    rows = n = ctx.size(8192, 1024)
    x_h = (rng.standard_normal((rows, n)) * 3).astype(np.float32)
    x, dy = cp.asarray(x_h), cp.asarray(rng.standard_normal((rows, n)).astype(np.float32))
    y = cp.empty_like(x)
    out = []
    for axis in (-1, 0):
        for name in ("softmax", "log_softmax", "sparsemax", "entmax15"):
            fn = getattr(A, name)
            peers = {}
            if name in ("softmax", "log_softmax"):
                peers["cupy pipeline"] = lambda axis=axis, log=name == "log_softmax": cupy_softmax(x, axis, log)
            if name == "sparsemax":
                peers["cupy sort pipeline"] = lambda axis=axis: cupy_sparsemax(x, axis)
            sl = (slice(0, 64),) if axis == -1 else (slice(None), slice(0, 64))
            out.append(Case(
                family="activations", device="cuda",
                name=f"{name} f32 {rows}x{n} axis={axis}",
                compiled=lambda fn=fn, axis=axis: fn(x, axis=axis, out=y),
                peers=peers,
                bytes=8 * x.size,
                check=lambda fn=fn, name=name, axis=axis, sl=sl: max_rel_error(
                    cp.asnumpy(fn(cp.ascontiguousarray(x[sl]), axis=axis)),
                    getattr(R, name)(np.ascontiguousarray(x_h[sl]), axis=axis)),
            ))
    p = A.softmax(x)
    out.append(Case(
        family="activations", device="cuda", name=f"softmax_backward f32 {rows}x{n}",
        compiled=lambda: A.softmax_backward(p, dy, out=y),
        peers={"cupy pipeline": lambda: p * (dy - (p * dy).sum(axis=-1, keepdims=True))},
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
                peers["numpy sort float32"] = lambda axis=axis: numpy_sparsemax(x, axis)
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
    dy = rng.standard_normal(x.shape).astype(np.float32)
    for name in ("softmax", "sparsemax", "entmax15"):
        p = getattr(A, name)(x)
        bwd = getattr(A, name + "_backward")
        out.append(Case(
            family="activations",
            name=f"{name}_backward f32 {rows}x{n}",
            compiled=lambda bwd=bwd, p=p: bwd(p, dy, out=y),
            bytes=12 * x.size,
        ))
    out.extend(gpu_cases(ctx, rng))
    return out
