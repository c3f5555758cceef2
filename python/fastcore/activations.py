"""Probability maps: softmax, log-softmax, sparsemax, 1.5-entmax, alpha-entmax, top-k softmax,
their backward passes and fused losses (notes/activations.md).

All maps act along ``axis`` of an array of any shape, viewed as (outer, n, inner) — no transposing
copy for a C-contiguous input (a non-contiguous input is copied once to C order).

Semantics, the same for every map and backend:

- ``scale`` multiplies x before the map (an inverse temperature): ``softmax(x, scale=1/T)``.
  softmax and log-softmax form scale·x in the input dtype (an overflow there acts as an infinite
  logit); the sparse maps form it in float64.
- ``mask``: a boolean array broadcastable to x, True = keep. Masked entries get exactly 0 (for
  log-softmax: -inf); a row with every entry masked gives all zeros (log-softmax: all -inf) —
  never NaN — and a zero gradient. A ``-inf`` logit behaves exactly like a masked entry.
- A NaN logit, or a logit that is +inf after scaling, makes its row NaN (that row only).
- sparsemax and 1.5-entmax are exact: sort-free thresholds (Michelot's iteration for
  sparsemax, Newton from below plus the closed-form root for 1.5-entmax), verified on the final
  support, with a sorting fallback; they equal the sort-based definitions to rounding.
- The backward functions take the forward output y (for log-softmax: the log-probabilities) and
  the upstream gradient dy, and return dx = scale·Jᵀdy for the map's input x.
- Results are bitwise identical for any number of threads and every SIMD level.

dtypes: CPU float32 and float64; CUDA (CuPy arrays) float16, bfloat16, float32 — stored as given,
computed in float32 — and float64. The sparse maps compute their thresholds in float64 everywhere.
The output has the input's dtype. Empty arrays give empty results.

On the GPU the maps and backward passes are CUDA kernels (a block per row when the axis is the
last one, a thread per column otherwise); ``topk_softmax`` and the losses are composed from the
compiled map and CuPy operations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _backend
from ._checks import (
    FLOAT_DTYPES,
    GPU_FLOAT_DTYPES,
    check_array,
    check_dtype,
    check_index_array,
    check_int,
    check_out,
    check_scalar,
    normalize_axis,
    split_axis,
)

__all__ = [
    "softmax", "log_softmax", "sparsemax", "entmax15", "entmax_bisect", "topk_softmax",
    "softmax_backward", "log_softmax_backward", "sparsemax_backward", "entmax15_backward",
    "entmax_bisect_backward", "softmax_cross_entropy", "sparsemax_loss", "entmax15_loss",
]

# Codes shared with cpp/activations/activations.hpp (enum Map).
_SOFTMAX, _LOG_SOFTMAX, _SPARSEMAX, _ENTMAX15, _BISECT = 0, 1, 2, 3, 4


def _input(x: Any, name: str = "x"):
    """Validated x (NumPy on the CPU; CuPy where the CUDA module has this family), its device."""
    x = check_array(x, name, convert=True, min_ndim=1)
    device = _backend.device_of(**{name: x})
    check_dtype(x, name, FLOAT_DTYPES if device == "cpu" else GPU_FLOAT_DTYPES)
    return x, device


def _backend_module(device: str):
    if device == "cpu":
        return _backend.cpu().activations
    module = _backend.cuda()
    if not hasattr(module, "activations"):
        raise _backend.BackendUnavailableError(
            "fastcore.activations has no CUDA kernels in this build; pass NumPy arrays")
    return module.activations


# dtype codes of cuda/activations/activations.cuh
_CUDA_DTYPE = {"float32": 0, "float16": 1, "bfloat16": 2, "float64": 3}


def _contiguous(x, device):
    xp = _backend.array_module(device) if device != "cpu" else np
    return xp.ascontiguousarray(x)


def _mask_bytes(mask, x, device):
    """The mask broadcast to x's shape as C-contiguous bytes (1 = keep), or None."""
    if mask is None:
        return None
    mask = check_array(mask, "mask", convert=True)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask: expected a boolean array (True = keep), got dtype {mask.dtype}")
    _backend.device_of(x=x, mask=mask)
    shape = x.shape
    xp = np if device == "cpu" else _backend.array_module(device)
    try:
        full = xp.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(f"mask: shape {tuple(mask.shape)} is not broadcastable to x's shape "
                         f"{tuple(shape)}") from None
    return xp.ascontiguousarray(full).view(xp.uint8)


def _output(out, x, device, inputs):
    if out is None:
        xp = np if device == "cpu" else _backend.array_module(device)
        return xp.empty(x.shape, dtype=x.dtype)
    return check_out(out, shape=x.shape, dtype=x.dtype, inputs=inputs, like=x)


def _forward(code, x, axis, scale, mask, out, alpha=0.0, n_iter=0):
    x, device = _input(x)
    axis = normalize_axis(axis, x.ndim)
    scale = check_scalar(scale, "scale")
    mask_bytes = _mask_bytes(mask, x, device)
    y = _output(out, x, device, {"x": x, "mask": mask})
    if x.size == 0:
        return y
    outer, n, inner = split_axis(x.shape, axis)
    module = _backend_module(device)
    x = _contiguous(x, device)
    if device == "cpu":
        module.forward(code, x, mask_bytes, y, outer, n, inner, scale, alpha, n_iter)
    else:
        ptr = _backend.data_pointer
        module.forward(code, _CUDA_DTYPE[x.dtype.name], ptr(x), 0 if mask_bytes is None else ptr(mask_bytes),
                       ptr(y), outer, n, inner, scale, alpha, n_iter, _backend.stream_handle())
    return y


def softmax(x, axis=-1, *, scale=1.0, mask=None, out=None):
    """softmax(scale·x) along axis: exp(z - max z) / Σ exp(z - max z), max/sum/write in one read
    of each row that fits in cache (an online max/sum pass for longer rows)."""
    return _forward(_SOFTMAX, x, axis, scale, mask, out)


def log_softmax(x, axis=-1, *, scale=1.0, mask=None, out=None):
    """log softmax(scale·x) along axis, computed as (z - max) - log Σ exp(z - max)."""
    return _forward(_LOG_SOFTMAX, x, axis, scale, mask, out)


def sparsemax(x, axis=-1, *, scale=1.0, mask=None, out=None):
    """sparsemax(scale·x): the Euclidean projection onto the simplex, p = (z - τ)₊ with Σp = 1
    (Martins & Astudillo 2016), exact and sort-free."""
    return _forward(_SPARSEMAX, x, axis, scale, mask, out)


def entmax15(x, axis=-1, *, scale=1.0, mask=None, out=None):
    """1.5-entmax(scale·x): p = (z/2 - τ)₊² with Σp = 1 (Peters et al. 2019), exact and
    sort-free."""
    return _forward(_ENTMAX15, x, axis, scale, mask, out)


def _check_alpha(alpha):
    return check_scalar(alpha, "alpha", lo=1.0, lo_inclusive=False)


def _check_n_iter(n_iter):
    return 0 if n_iter is None else check_int(n_iter, "n_iter", lo=1, hi=10_000)


def entmax_bisect(x, alpha=1.5, axis=-1, *, n_iter=None, mask=None, out=None):
    """alpha-entmax for any alpha > 1: p = ((alpha-1)x - τ)₊^(1/(alpha-1)), Σp = 1.

    τ is found by safeguarded Newton (Halley for alpha <= 1.5)/bisection in float64 (bracket
    [max - 1, max - n^(1-alpha)] in units of (alpha-1)x), until a step no longer moves τ, the
    bracket stops shrinking, or ``n_iter`` steps; the result is renormalised to sum to 1. alpha = 1.5 and 2 agree with :func:`entmax15` and :func:`sparsemax`
    to rounding."""
    alpha = _check_alpha(alpha)
    return _forward(_BISECT, x, axis, 1.0, mask, out, alpha, _check_n_iter(n_iter))


def topk_softmax(x, k, axis=-1, *, out=None):
    """Softmax over the k largest entries of each row, exactly 0 elsewhere (the "sparse softmax").

    Ties at the k-th largest value are broken deterministically: the lower index wins."""
    x, device = _input(x)
    axis = normalize_axis(axis, x.ndim)
    n = x.shape[axis]
    k = check_int(k, "k", lo=1, hi=max(n, 1))
    y = _output(out, x, device, {"x": x})
    if x.size == 0:
        return y
    if device != "cpu":
        return _topk_softmax_cupy(x, k, axis, y)
    outer, n, inner = split_axis(x.shape, axis)
    _backend_module(device).topk_softmax(_contiguous(x, device), y, outer, n, inner, k)
    return y


def _topk_softmax_cupy(x, k, axis, y):
    """GPU top-k softmax composed from CuPy operations (a stable sort gives the lower-index tie
    rule; the softmax of the kept entries is computed in float32/float64)."""
    cp = _backend.array_module("cuda")
    moved = cp.moveaxis(x, axis, -1)
    acc = cp.float64 if x.dtype == cp.float64 else cp.float32
    z = moved.astype(acc)
    order = cp.argsort(-z, axis=-1, kind="stable")[..., :k]
    keep = cp.zeros(z.shape, dtype=bool)
    cp.put_along_axis(keep, order, True, axis=-1)
    bad = cp.isnan(z).any(-1, keepdims=True) | (z == cp.inf).any(-1, keepdims=True)
    m = cp.max(cp.where(keep, z, -cp.inf), axis=-1, keepdims=True)
    e = cp.where(keep & (m > -cp.inf), cp.exp(z - cp.where(m > -cp.inf, m, 0)), 0)
    total = e.sum(-1, keepdims=True)
    p = cp.where(bad, cp.nan, e / cp.where(total > 0, total, 1))
    y[...] = cp.moveaxis(p.astype(x.dtype), -1, axis)
    return y


def _backward(code, y, dy, axis, scale, out, alpha=0.0):
    y, device = _input(y, "y")
    dy = check_array(dy, "dy", convert=True)
    _backend.device_of(y=y, dy=dy)
    if dy.dtype != y.dtype:
        raise TypeError(f"dy: expected dtype {y.dtype} (the dtype of y), got {dy.dtype}")
    if tuple(dy.shape) != tuple(y.shape):
        raise ValueError(f"dy: expected shape {tuple(y.shape)} (the shape of y), got {tuple(dy.shape)}")
    axis = normalize_axis(axis, y.ndim)
    scale = check_scalar(scale, "scale")
    dx = _output(out, y, device, {"y": y, "dy": dy})
    if y.size == 0:
        return dx
    outer, n, inner = split_axis(y.shape, axis)
    module = _backend_module(device)
    y, dy = _contiguous(y, device), _contiguous(dy, device)
    if device == "cpu":
        module.backward(code, y, dy, dx, outer, n, inner, scale, alpha)
    else:
        ptr = _backend.data_pointer
        module.backward(code, _CUDA_DTYPE[y.dtype.name], ptr(y), ptr(dy), ptr(dx), outer, n, inner,
                        scale, alpha, _backend.stream_handle())
    return dx


def softmax_backward(y, dy, axis=-1, *, scale=1.0, out=None):
    """dx = scale · y ⊙ (dy − ⟨y, dy⟩) from y = softmax(scale·x)."""
    return _backward(_SOFTMAX, y, dy, axis, scale, out)


def log_softmax_backward(y, dy, axis=-1, *, scale=1.0, out=None):
    """dx = scale · (dy − exp(y)·Σdy) from y = log_softmax(scale·x); masked entries (y = -inf)
    get 0."""
    return _backward(_LOG_SOFTMAX, y, dy, axis, scale, out)


def sparsemax_backward(y, dy, axis=-1, *, scale=1.0, out=None):
    """dx_i = scale · s_i (dy_i − mean over the support of dy), s = [y > 0]."""
    return _backward(_SPARSEMAX, y, dy, axis, scale, out)


def entmax15_backward(y, dy, axis=-1, *, scale=1.0, out=None):
    """dx = scale · (g ⊙ dy − g·⟨g, dy⟩/Σg) with g = sqrt(y) on the support."""
    return _backward(_ENTMAX15, y, dy, axis, scale, out)


def entmax_bisect_backward(y, dy, alpha, axis=-1, *, out=None):
    """dx = g ⊙ dy − g·⟨g, dy⟩/Σg with g = y^(2-alpha) on the support (gradient in x; alpha is
    a constant)."""
    alpha = _check_alpha(alpha)
    return _backward(_BISECT, y, dy, axis, 1.0, out, alpha)


def _loss(code, x, target, axis):
    x, device = _input(x)
    axis = normalize_axis(axis, x.ndim)
    n = x.shape[axis]
    row_shape = tuple(s for i, s in enumerate(x.shape) if i != axis)
    target = check_index_array(target, "target", shape=row_shape, lo=0, hi=n)
    _backend.device_of(x=x, target=target)
    xp = np if device == "cpu" else _backend.array_module(device)
    loss = xp.empty(row_shape, dtype=x.dtype)
    grad = xp.empty(x.shape, dtype=x.dtype)
    if x.size == 0:
        return loss, grad
    if device != "cpu":
        return _loss_cupy(code, x, target, axis, loss, grad)
    outer, n, inner = split_axis(x.shape, axis)
    _backend_module(device).loss(code, _contiguous(x, device),
                                 xp.ascontiguousarray(target, dtype=xp.int64), loss, grad,
                                 outer, n, inner)
    return loss, grad


def _loss_cupy(code, x, target, axis, loss, grad):
    """GPU losses: the compiled map gives p (log p for cross-entropy); the loss and p - e_t are
    CuPy reductions/elementwise operations in float32 (float64 for float64 input)."""
    cp = _backend.array_module("cuda")
    acc = cp.float64 if x.dtype == cp.float64 else cp.float32
    t = cp.expand_dims(target.astype(cp.int64), axis)
    z = x.astype(acc)
    zt = cp.take_along_axis(z, t, axis=axis)
    if code == _SOFTMAX:
        logp = log_softmax(z, axis=axis)
        value = -cp.take_along_axis(logp, t, axis=axis)
        p = cp.exp(logp)
    else:
        p = (sparsemax if code == _SPARSEMAX else entmax15)(z, axis=axis)
        inner = cp.sum(cp.where(p > 0, p * (z - zt), 0), axis=axis, keepdims=True)
        power = cp.sum(p * p if code == _SPARSEMAX else p * cp.sqrt(p), axis=axis, keepdims=True)
        entropy = 0.5 * (1 - power) if code == _SPARSEMAX else (1 - power) / 0.75
        value = cp.maximum(inner + entropy, 0)
    onehot = cp.zeros_like(p)
    cp.put_along_axis(onehot, t, 1, axis=axis)
    loss[...] = cp.squeeze(value, axis=axis).astype(x.dtype)
    g = p - onehot
    # p_t - 1 as -(the sum of the other p, in float64) where p_t > 1/2: no cancellation for a
    # confident row; elsewhere p_t - 1 is exact enough and a float32 sum of n others would not be
    # (as the CPU's)
    others = cp.sum(cp.where(onehot > 0, 0, p), axis=axis, keepdims=True, dtype=cp.float64)
    p_t = cp.take_along_axis(p, t, axis=axis)
    cp.put_along_axis(g, t, cp.where(p_t > 0.5, -others, p_t - 1).astype(g.dtype), axis=axis)
    grad[...] = g.astype(x.dtype)
    return loss, grad


def softmax_cross_entropy(x, target, axis=-1):
    """(loss, grad) per row: loss = logsumexp(x) − x_target, grad = softmax(x) − onehot(target).
    target: integers in [0, n) with x's shape minus the axis."""
    return _loss(_SOFTMAX, x, target, axis)


def sparsemax_loss(x, target, axis=-1):
    """The sparsemax Fenchel–Young loss (Blondel et al. 2019) and its gradient
    sparsemax(x) − onehot(target): loss = ⟨p, x − x_t⟩ + (1 − Σp²)/2 ≥ 0."""
    return _loss(_SPARSEMAX, x, target, axis)


def entmax15_loss(x, target, axis=-1):
    """The 1.5-entmax Fenchel–Young loss and its gradient entmax15(x) − onehot(target):
    loss = ⟨p, x − x_t⟩ + (1 − Σp^1.5)/0.75 ≥ 0."""
    return _loss(_ENTMAX15, x, target, axis)


from ._interop import export_dlpack  # noqa: E402  (wraps the functions above; see _interop.py)

export_dlpack(globals(), __all__)
del export_dlpack
