"""CuPy/CUDA driver of fastcore.ig: the generic path's element-wise kernels and the fused
built-in models (matrix products through CuPy/cuBLAS, the rest in cuda/ig/ig.cu), all on the
caller's current CuPy stream. Imported only when a CuPy array arrives.

Float32 products use CuPy's default float32 compute type (TF32 only if the user enabled it
through CuPy's CUPY_TF32 setting)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _backend

_U64_MAX = np.iinfo(np.uint64).max


def _cp():
    return _backend.array_module("cuda")


def _mod():
    return _backend.cuda().ig


def _code(dtype: Any) -> int:
    return 0 if np.dtype(dtype) == np.float32 else 1


def _ptr(a: Any) -> int:
    return 0 if a is None else _backend.data_pointer(a)


def new_flag():
    """A device word for the deferred non-finite check (UINT64_MAX = none seen)."""
    cp = _cp()
    return cp.full(1, _U64_MAX, dtype=cp.uint64)


def read_flag(flag) -> int:
    v = int(flag.get()[0])
    return -1 if v == int(_U64_MAX) else v


def interpolate(x2, xb2, alphas, r0, out2) -> None:
    cp = _cp()
    a = cp.asarray(np.ascontiguousarray(alphas, dtype=np.float64)) if isinstance(alphas, np.ndarray) else alphas
    N, D = x2.shape
    _mod().interpolate(_code(x2.dtype), _ptr(x2), _ptr(xb2), 0 if xb2.shape[0] == 1 else D, N, D, _ptr(a),
                       int(r0), int(out2.shape[0]), _ptr(out2), _backend.stream_handle())


def accumulate(acc2, g2, weights, r0, flag=None) -> int:
    """acc += w · g (ascending steps). With ``flag`` the non-finite check is deferred (returns -1;
    read the flag at the end); without it, returns the global flat index r·D + col of the first
    non-finite element minus r0·D (the CPU convention: relative to the chunk), or -1."""
    cp = _cp()
    w = cp.asarray(np.ascontiguousarray(weights, dtype=np.float64)) if isinstance(weights, np.ndarray) else weights
    own = flag is None
    if own:
        flag = new_flag()
    N, D = acc2.shape
    _mod().accumulate(_code(g2.dtype), _ptr(acc2), _ptr(g2), N, D, _ptr(w), int(r0), int(g2.shape[0]), _ptr(flag),
                      _backend.stream_handle())
    if not own:
        return -1
    bad = read_flag(flag)
    return -1 if bad < 0 else bad - int(r0) * D


def model_params(model, dtype):
    """Device copies of a model's (W, W^T, b) in dtype, cached on the model per (device, dtype)."""
    cp = _cp()
    key = ("cuda", cp.cuda.Device().id, np.dtype(dtype))
    cache = model._cache
    if key not in cache:
        Ws, WTs, bs = model._params(np.dtype(dtype))
        cache[key] = ([cp.asarray(W) for W in Ws], [cp.asarray(W) for W in WTs], [cp.asarray(b) for b in bs])
    return cache[key]


_ACT = {"relu": 0, "gelu": 1, "gelu_tanh": 2, "tanh": 3}
_OUT = {"logit": 0, "softmax": 1, "log_softmax": 2}

# Path rows per fused chunk: about this many bytes per layer activation buffer.
_CHUNK_BYTES = 64 << 20


def mlp(model, x, xb, t, alphas, weights, multiply, want_attr, want_f):
    """The fused IG of a built-in model on CuPy arrays (same algebra as cpp/ig/mlp_kernels.simd.cpp).

    x (N, D) CuPy; xb None (no baseline: a1' = a1) or (1 | N, D) CuPy of x's dtype; t None or an int64
    NumPy array (N,). Returns (attr or None, f_ends (N, 2) NumPy float64 [F(x'), F(x)] or None)."""
    cp = _cp()
    dtype = x.dtype
    code = _code(dtype)
    stream = _backend.stream_handle()
    Ws, WTs, bs = model_params(model, dtype)
    L = len(Ws)
    act = _ACT[model.activation] if L > 1 else 0
    out_code = _OUT[model.output]
    N, D = x.shape
    H1, C = Ws[0].shape[0], Ws[-1].shape[0]
    t_dev = None if t is None else cp.asarray(np.ascontiguousarray(t, dtype=np.int64))
    # First layer once per example (notes §7d): a1 = W1 x + b1, a1' = W1 x' + b1.
    A1 = cp.ascontiguousarray(cp.matmul(x, WTs[0]) + bs[0])
    if xb is None:
        A1b = A1
    else:
        A1b = cp.ascontiguousarray(cp.matmul(xb, WTs[0]) + bs[0])
    stride = 0 if A1b.shape[0] == 1 else H1

    def head_forward(Z0):
        Z, H = [Z0], [None]
        for li in range(1, L):
            h = cp.empty_like(Z[li - 1])
            _mod().act_forward(code, act, _ptr(Z[li - 1]), _ptr(h), int(h.size), stream)
            H.append(h)
            Z.append(cp.ascontiguousarray(cp.matmul(h, WTs[li]) + bs[li]))
        return Z, H

    attr = None
    S = len(alphas)
    if want_attr and S > 0:
        a_dev = cp.asarray(np.ascontiguousarray(alphas, dtype=np.float64))
        w_dev = cp.asarray(np.ascontiguousarray(weights, dtype=np.float64))
        dbar = cp.zeros((N, H1), dtype=cp.float64)
        flag = new_flag()
        widest = max([H1] + [W.shape[0] for W in Ws])
        total = S * N
        chunk = max(1, min(total, _CHUNK_BYTES // (widest * dtype.itemsize)))
        for r0 in range(0, total, chunk):
            m = min(chunk, total - r0)
            Z0 = cp.empty((m, H1), dtype=dtype)
            _mod().interpolate(code, _ptr(A1), _ptr(A1b), stride, N, H1, _ptr(a_dev), r0, m, _ptr(Z0), stream)
            Z, H = head_forward(Z0)
            cur = cp.empty((m, C), dtype=dtype)
            _mod().output_rows(code, out_code, _ptr(Z[-1]), m, C, _ptr(t_dev), r0, N, 0, _ptr(cur), stream)
            for li in range(L - 1, 0, -1):
                nxt = cp.ascontiguousarray(cp.matmul(cur, Ws[li]))
                _mod().act_backward(code, act, _ptr(Z[li - 1]), _ptr(H[li]), _ptr(nxt), int(nxt.size), stream)
                cur = nxt
            # δ̄1 += w_s δ1 in ascending steps: the generic path's accumulation kernel, rows r0.. of N examples
            _mod().accumulate(code, _ptr(dbar), _ptr(cur), N, H1, _ptr(w_dev), r0, m, _ptr(flag), stream)
        G = cp.matmul(dbar.astype(dtype), Ws[0])
        if multiply:
            base = x if xb is None else xb
            attr = (G.astype(cp.float64) * (x.astype(cp.float64) - base.astype(cp.float64))).astype(dtype)
        else:
            attr = G
    elif want_attr:
        attr = cp.zeros_like(x)
    f_ends = None
    if want_f:
        f_dev = cp.empty((2, N), dtype=cp.float64)
        for end, rows in ((0, A1b), (1, A1)):
            Z0 = cp.ascontiguousarray(cp.broadcast_to(rows, (N, H1)))
            Z, _ = head_forward(Z0)
            _mod().output_rows(code, out_code, _ptr(Z[-1]), N, C, _ptr(t_dev), 0, N, _ptr(f_dev[end]), 0, stream)
        f_ends = cp.asnumpy(f_dev).T.copy()
    return attr, f_ends
