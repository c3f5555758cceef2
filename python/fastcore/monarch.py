"""Monarch matrices (Dao et al. 2022): fused multiply, adjoint, backward, optimal projection,
solve / log-determinant, and a ``MonarchLinear`` layer. Notes: notes/monarch.md.

Layout (the reference implementation's, so existing weights load unchanged):
``x`` (..., n_in); ``w1`` (K, Q, P) with K·P = n_in; ``w2`` (L, S, R) with L·R = K·Q;
``y`` (..., L·S). M = P_out · BD(w2) · P_mid · BD(w1) and y = x Mᵀ, where intermediate index
i = k·Q + q feeds second-stage block l = i mod L at offset r = i div L and block l's row s is
output s·L + l.

CPU (float32, float64, complex64, complex128): one fused pass per tile of 16 batch rows — the
stage-1 result stays in cache, both permutations are folded into the addressing (no copy passes),
register-tiled FMA micro-kernels per ISA, tiles in parallel. Bitwise identical for any thread count
and SIMD level (for NaN results: the same positions, not necessarily the same sign or payload —
x86 vector and scalar instructions pick NaN signs differently); the weight gradients reduce the
batch in a fixed number of chunks (no atomics).

CUDA (CuPy arrays: float32, float16, bfloat16 with float32 accumulation, complex64): ``multiply`` and
``multiply_adjoint`` (so also dx of ``multiply_backward``) run one fused kernel (cuda/monarch) for
float32/float16/bfloat16 C-contiguous operands whose intermediate tile fits in shared memory: stage 1
into shared memory with P_mid folded into its addressing, stage 2 from there with P_out folded into
the stores; tensor cores (WMMA) for the 16-bit forward when P, Q, R, S are multiples of 16. Other
cases (complex64, non-contiguous operands, intermediates too large for shared memory) and the weight
gradients use batched matrix products through CuPy (cuBLAS) with the permutations as strided views.

Non-finite values propagate as IEEE arithmetic does (no checks, no masking). Structural zeros of M
are never multiplied, so an inf in x reaches only the outputs connected to it (a dense product
would turn inf·0 into NaN everywhere).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _backend
from ._checks import check_array, check_dtype, check_int, check_out

__all__ = ["multiply", "multiply_adjoint", "multiply_backward", "to_dense", "project", "solve",
           "logdet", "factor_shapes", "MonarchLinear"]

CPU_DTYPES = ("float32", "float64", "complex64", "complex128")
GPU_DTYPES = ("float32", "float16", "bfloat16", "complex64")


def _factors(w1, w2):
    w1 = check_array(w1, "w1", convert=True, ndim=3, allow_empty=False)
    w2 = check_array(w2, "w2", convert=True, ndim=3, allow_empty=False)
    device = _backend.device_of(w1=w1, w2=w2)
    dtypes = CPU_DTYPES if device == "cpu" else GPU_DTYPES
    check_dtype(w1, "w1", dtypes)
    if w2.dtype != w1.dtype:
        raise TypeError(f"w2: expected dtype {w1.dtype} (the dtype of w1), got {w2.dtype}")
    K, Q, P = w1.shape
    L, S, R = w2.shape
    if L * R != K * Q:
        raise ValueError(f"w2: shape {tuple(w2.shape)} does not match w1 {tuple(w1.shape)}: "
                         f"the second stage needs L·R = K·Q ({L}·{R} != {K}·{Q})")
    return w1, w2, device


def _operand(a, name, w1, device, last):
    a = check_array(a, name, convert=True, min_ndim=1)
    if _backend.device_of(**{name: a, "w1": w1}) != device:
        raise ValueError(f"{name}: must be on the same device as w1")
    if a.dtype != w1.dtype:
        raise TypeError(f"{name}: expected dtype {w1.dtype} (the dtype of w1), got {a.dtype}")
    if a.shape[-1] != last:
        raise ValueError(f"{name}: last dimension must be {last}, got shape {tuple(a.shape)}")
    return a


def _xp(device):
    return np if device == "cpu" else _backend.array_module(device)


def _batch(shape):
    return int(np.prod(shape[:-1], dtype=np.int64))


def _apply(v, name, w1, w2, out, adjoint):
    """The shared body of multiply (v = x) and multiply_adjoint (v = y)."""
    w1, w2, device = _factors(w1, w2)
    K, Q, P = w1.shape
    L, S, R = w2.shape
    n_in, n_out = (L * S, K * P) if adjoint else (K * P, L * S)
    v = _operand(v, name, w1, device, n_in)
    xp = _xp(device)
    shape = tuple(v.shape[:-1]) + (n_out,)
    result = xp.empty(shape, dtype=v.dtype) if out is None else check_out(
        out, shape=shape, dtype=v.dtype, inputs={name: v, "w1": w1, "w2": w2}, like=v)
    if result.size == 0 or v.size == 0:
        if result.size:
            result[...] = 0
        return result
    if device == "cpu":
        kernels = _backend.cpu().monarch
        (kernels.adjoint if adjoint else kernels.multiply)(
            np.ascontiguousarray(v), np.ascontiguousarray(w1), np.ascontiguousarray(w2), result,
            _batch(v.shape))
    elif not _gpu_fused(v, w1, w2, result, adjoint):
        result[...] = (_gpu_adjoint if adjoint else _gpu_multiply)(v, w1, w2)
    return result


def multiply(x, w1, w2, *, out=None):
    """y = x Mᵀ for x of shape (..., K·P); returns (..., L·S)."""
    return _apply(x, "x", w1, w2, out, adjoint=False)


def multiply_adjoint(y, w1, w2, *, out=None):
    """x = y conj(M) for y of shape (..., L·S); returns (..., K·P)."""
    return _apply(y, "y", w1, w2, out, adjoint=True)


def multiply_backward(x, w1, w2, dy):
    """(dx, dw1, dw2) for y = x Mᵀ: dx = dy conj(M), and the weight gradients summed over every
    leading dimension (complex: gradients w.r.t. the conjugate, PyTorch's convention).
    Deterministic: the batch is reduced in a fixed order, never with atomics."""
    w1, w2, device = _factors(w1, w2)
    K, Q, P = w1.shape
    L, S, R = w2.shape
    x = _operand(x, "x", w1, device, K * P)
    dy = _operand(dy, "dy", w1, device, L * S)
    if tuple(dy.shape[:-1]) != tuple(x.shape[:-1]):
        raise ValueError(f"dy: leading dimensions {tuple(dy.shape[:-1])} must match x's "
                         f"{tuple(x.shape[:-1])}")
    xp = _xp(device)
    if device != "cpu":
        return _gpu_backward(x, w1, w2, dy)
    dx = xp.empty(x.shape, dtype=x.dtype)
    dw1 = xp.zeros(w1.shape, dtype=w1.dtype)
    dw2 = xp.zeros(w2.shape, dtype=w2.dtype)
    if x.size == 0:
        return dx, dw1, dw2
    _backend.cpu().monarch.backward(np.ascontiguousarray(x), np.ascontiguousarray(w1),
                                    np.ascontiguousarray(w2), np.ascontiguousarray(dy),
                                    dx, dw1, dw2, _batch(x.shape))
    return dx, dw1, dw2


def to_dense(w1, w2):
    """The dense matrix M (L·S × K·P), computed by the multiply kernel on the identity."""
    w1, w2, device = _factors(w1, w2)
    K, Q, P = w1.shape
    eye = _xp(device).eye(K * P, dtype=w1.dtype)
    return multiply(eye, w1, w2).T.copy()


# --- GPU: fused kernel (cuda/monarch) where it applies, else a CuPy composition ---------------------

_FUSED_DTYPE = {"float32": 0, "float16": 1, "bfloat16": 2}   # codes of cuda/monarch/monarch.cuh


def _fused_module():
    """fastcore._cuda.monarch, or None in a build without it (CuPy arrays then take the CuPy path,
    as they did before the fused kernel existed)."""
    if _backend.cuda_unavailable_reason() is not None:
        return None
    return getattr(_backend.cuda(), "monarch", None)


def _fused_args(v, w1, w2):
    """(module, dtype code) when the fused kernel may take these operands, else None."""
    code = _FUSED_DTYPE.get(v.dtype.name)
    if code is None or not (v.flags.c_contiguous and w1.flags.c_contiguous and w2.flags.c_contiguous):
        return None
    module = _fused_module()
    return None if module is None else (module, code)


def _gpu_fused(v, w1, w2, out, adjoint):
    """Runs the fused kernel into ``out`` and returns True, or returns False (nothing done) when it
    does not apply: complex64, a non-C-contiguous operand, or an intermediate tile that does not fit
    in this GPU's shared memory (the kernel decides; see docs/architecture.md)."""
    args = _fused_args(v, w1, w2)
    if args is None:
        return False
    module, code = args
    K, Q, P = w1.shape
    L, S, R = w2.shape
    ptr = _backend.data_pointer
    return module.multiply(code, adjoint, ptr(v), ptr(w1), ptr(w2), ptr(out),
                         _batch(v.shape), K, Q, P, L, S, R, _backend.stream_handle())


def _gpu_plan(v, w1, w2, adjoint=False):
    """Which fused kernel ``multiply`` (``multiply_adjoint`` when adjoint) would run for these
    operands: a dict {'kernel': 'none' | 'simt' | 'tensor_core' | 'cupy', 'rows', 'shared_bytes',
    'tc_rows'} ('cupy': not offered to the fused kernel at all). For tests and benchmarks."""
    args = _fused_args(v, w1, w2)
    if args is None:
        return {"kernel": "cupy", "rows": 0, "shared_bytes": 0, "tc_rows": 0}
    module, code = args
    K, Q, P = w1.shape
    L, S, R = w2.shape
    ptr = _backend.data_pointer
    return module.plan(code, adjoint, ptr(v), ptr(w1), ptr(w2), _batch(v.shape),
                       K, Q, P, L, S, R)


# The unfused path: cuBLAS batched products through CuPy, the permutations as strided views.

def _gpu_compute(a):
    cp = _backend.array_module("cuda")
    return a.astype(cp.float32) if a.dtype.name in ("float16", "bfloat16") else a


def _gpu_multiply(x, w1, w2):
    cp = _backend.array_module("cuda")
    K, Q, P = w1.shape
    L, S, R = w2.shape
    B = _batch(x.shape)
    xb, a1, a2 = _gpu_compute(x).reshape(B, K, P), _gpu_compute(w1), _gpu_compute(w2)
    z = cp.matmul(a1[None], xb[..., None])[..., 0].reshape(B, K * Q)          # (B, K, Q)
    zp = z.reshape(B, R, L).transpose(0, 2, 1)                                # (B, L, R)
    y = cp.matmul(a2[None], zp[..., None])[..., 0]                            # (B, L, S)
    return y.transpose(0, 2, 1).reshape(x.shape[:-1] + (L * S,)).astype(x.dtype)


def _gpu_adjoint(y, w1, w2):
    cp = _backend.array_module("cuda")
    K, Q, P = w1.shape
    L, S, R = w2.shape
    B = _batch(y.shape)
    yb = _gpu_compute(y).reshape(B, S, L).transpose(0, 2, 1)                  # (B, L, S)
    a1, a2 = cp.conj(_gpu_compute(w1)), cp.conj(_gpu_compute(w2))
    dzp = cp.matmul(a2.transpose(0, 2, 1)[None], yb[..., None])[..., 0]       # (B, L, R)
    dz = dzp.transpose(0, 2, 1).reshape(B, K, Q)
    dx = cp.matmul(a1.transpose(0, 2, 1)[None], dz[..., None])[..., 0]        # (B, K, P)
    return dx.reshape(y.shape[:-1] + (K * P,)).astype(y.dtype)


def _gpu_backward(x, w1, w2, dy):
    cp = _backend.array_module("cuda")
    K, Q, P = w1.shape
    L, S, R = w2.shape
    B = _batch(x.shape)
    xb = _gpu_compute(x).reshape(B, K, P)
    a1 = _gpu_compute(w1)
    z = cp.matmul(a1[None], xb[..., None])[..., 0].reshape(B, K * Q)
    zp = z.reshape(B, R, L).transpose(0, 2, 1)                                # (B, L, R)
    dyb = _gpu_compute(dy).reshape(B, S, L).transpose(0, 2, 1)                # (B, L, S)
    dw2 = cp.einsum("bls,blr->lsr", dyb, cp.conj(zp))
    dx = cp.empty(dy.shape[:-1] + (K * P,), dtype=dy.dtype)
    if not _gpu_fused(dy, w1, w2, dx, True):                                 # dx = dy conj(M)
        dx = _gpu_adjoint(dy, w1, w2)
    dzp = cp.matmul(cp.conj(_gpu_compute(w2)).transpose(0, 2, 1)[None], dyb[..., None])[..., 0]
    dz = dzp.transpose(0, 2, 1).reshape(B, K, Q)
    dw1 = cp.einsum("bkq,bkp->kqp", dz, cp.conj(xb))
    return dx, dw1.astype(w1.dtype), dw2.astype(w2.dtype)


# --- projection ---------------------------------------------------------------------------------

def factor_shapes(in_features: int, out_features: int, nblocks: int = 4):
    """(w1_shape, w2_shape, in_padded, out_padded) of a Monarch layer in_features → out_features
    with ``nblocks`` blocks, the reference MonarchLinear's rule: in_blk = ⌈in/nb⌉,
    out_blk = ⌈out/nb⌉; expanding layers use w1 (nb, in_blk, in_blk), w2 (nb, out_blk, in_blk),
    others w1 (nb, out_blk, in_blk), w2 (nb, out_blk, out_blk)."""
    in_features = check_int(in_features, "in_features", lo=1)
    out_features = check_int(out_features, "out_features", lo=1)
    nb = check_int(nblocks, "nblocks", lo=1)
    in_blk, out_blk = -(-in_features // nb), -(-out_features // nb)
    if nb * in_blk < nb * out_blk:
        w1_shape, w2_shape = (nb, in_blk, in_blk), (nb, out_blk, in_blk)
    else:
        w1_shape, w2_shape = (nb, out_blk, in_blk), (nb, out_blk, out_blk)
    return w1_shape, w2_shape, nb * in_blk, nb * out_blk


def _default_nblocks(n_in: int, n_out: int) -> int:
    """The divisor of gcd(n_in, n_out) closest to √n_in (√n for the square case)."""
    g = math.gcd(n_in, n_out)
    divisors = [d for d in range(1, g + 1) if g % d == 0]
    return min(divisors, key=lambda d: (abs(d - math.sqrt(n_in)), -d))


def project(A, nblocks=None, *, shapes=None):
    """(w1, w2): the Monarch matrix closest to A (n_out × n_in) in Frobenius norm.

    Any shape and block structure: each strided sub-block A[l::L, k·P:(k+1)·P] is replaced by its
    truncated SVD of rank |{r : k·Q ≤ r·L + l < (k+1)·Q}|; the sub-problems are independent, so
    the result is the global optimum (Eckart–Young per block; notes §3.2). Exact when A is Monarch
    with these shapes. ``shapes=(w1_shape, w2_shape)`` fixes the factors; otherwise ``nblocks``
    (default: the divisor of gcd(n_in, n_out) closest to √n_in) gives
    w1 (nb, min(n_in,n_out)/nb, n_in/nb), w2 (nb, n_out/nb, min(n_in,n_out)/nb).
    Computed with NumPy's LAPACK SVD in the input precision (CuPy on the GPU)."""
    A = check_array(A, "A", convert=True, ndim=2, allow_empty=False)
    device = _backend.device_of(A=A)
    check_dtype(A, "A", CPU_DTYPES if device == "cpu" else ("float32", "float64", "complex64", "complex128"))
    # LAPACK's SVD never returns for some matrices with an inf (NumPy issue 32591): refused first
    check_array(A, "A", finite=True)
    n_out, n_in = A.shape
    if shapes is None:
        nb = _default_nblocks(n_in, n_out) if nblocks is None else check_int(nblocks, "nblocks", lo=1)
        if n_in % nb or n_out % nb:
            raise ValueError(f"nblocks: {nb} must divide both dimensions of A {tuple(A.shape)}; "
                             f"pass shapes=(w1_shape, w2_shape) for other layouts")
        mid = min(n_in, n_out) // nb
        shapes = ((nb, mid, n_in // nb), (nb, n_out // nb, mid))
    try:
        (K, Q, P), (L, S, R) = (tuple(check_int(v, "shapes", lo=1) for v in s) for s in shapes)
    except ValueError:
        raise ValueError(f"shapes: expected positive extents ((K, Q, P), (L, S, R)), got {shapes!r}") from None
    except TypeError:
        raise TypeError(f"shapes: expected two triples of integers ((K, Q, P), (L, S, R)), got {shapes!r}") from None
    if K * P != n_in or L * S != n_out or L * R != K * Q:
        raise ValueError(f"shapes: w1 {(K, Q, P)} and w2 {(L, S, R)} do not fit A {tuple(A.shape)} "
                         f"(need K·P = {n_in}, L·S = {n_out}, L·R = K·Q)")
    xp = _xp(device)
    w1 = xp.zeros((K, Q, P), dtype=A.dtype)
    w2 = xp.zeros((L, S, R), dtype=A.dtype)
    for l in range(L):
        for k in range(K):
            rs = [r for r in range(R) if k * Q <= r * L + l < (k + 1) * Q]
            if not rs:
                continue
            U, sv, Vh = xp.linalg.svd(A[l::L, k * P:(k + 1) * P], full_matrices=False)
            rank = min(len(rs), sv.shape[0])
            rs_arr = xp.asarray(rs[:rank])
            w2[l][:, rs_arr] = (U[:, :rank] * sv[:rank]).astype(A.dtype)
            w1[k][rs_arr * L + l - k * Q, :] = Vh[:rank].astype(A.dtype)
    return w1, w2


# --- square invertible Monarch matrices ----------------------------------------------------------

def _square_factors(w1, w2):
    w1, w2, device = _factors(w1, w2)
    K, Q, P = w1.shape
    L, S, R = w2.shape
    if Q != P or S != R:
        raise ValueError(f"w1, w2: solve/logdet need square blocks (w1 (K, P, P), w2 (L, R, R)); "
                         f"got {tuple(w1.shape)} and {tuple(w2.shape)}")
    return w1, w2, device


def solve(w1, w2, y):
    """x with M x = y (y: (n,) or (..., n)), i.e. x = BD(w1)⁻¹ P_midᵀ BD(w2)⁻¹ P_outᵀ y: block
    solves and index maps, O(n·√n) per vector after factorising the √n blocks."""
    w1, w2, device = _square_factors(w1, w2)
    K, Q, P = w1.shape
    L, S, R = w2.shape
    y = _operand(y, "y", w1, device, L * S)
    xp = _xp(device)
    B = _batch(y.shape)
    yb = y.reshape(B, S, L).transpose(0, 2, 1)                                # (B, L, S)
    zp = xp.linalg.solve(w2[None], yb[..., None])[..., 0]                     # (B, L, R)
    z = zp.transpose(0, 2, 1).reshape(B, K, Q)
    x = xp.linalg.solve(w1[None], z[..., None])[..., 0]                       # (B, K, P)
    return x.reshape(y.shape[:-1] + (K * P,))


def _permutation_sign(perm) -> int:
    perm = np.asarray(perm)
    seen = np.zeros(perm.size, bool)
    sign = 1
    for start in range(perm.size):
        if seen[start]:
            continue
        length, j = 0, start
        while not seen[j]:
            seen[j] = True
            j = perm[j]
            length += 1
        if length % 2 == 0:
            sign = -sign
    return sign


def logdet(w1, w2):
    """(sign, log|det M|) of a square Monarch matrix, as numpy.linalg.slogdet returns them:
    the block determinants times the signs of the two permutations."""
    w1, w2, device = _square_factors(w1, w2)
    xp = _xp(device)
    K, Q, P = w1.shape
    L, S, R = w2.shape
    s1, l1 = xp.linalg.slogdet(w1)
    s2, l2 = xp.linalg.slogdet(w2)
    i = np.arange(K * Q)
    mid = _permutation_sign((i % L) * R + i // L)
    l_idx, s_idx = np.divmod(np.arange(L * S), S)
    out = _permutation_sign(s_idx * L + l_idx)
    sign = xp.prod(s1) * xp.prod(s2) * (mid * out)
    return sign, xp.sum(l1) + xp.sum(l2)


# --- layer --------------------------------------------------------------------------------------

class MonarchLinear:
    """y = x Mᵀ + b for x (..., in_features) with a Monarch weight of ``nblocks`` blocks.

    Factor shapes follow :func:`factor_shapes` (the reference layer's, so its weights load as
    they are). Sizes that are not multiples of nblocks: x is zero-padded to in_padded and y
    truncated to out_features before the bias. Initialisation: each factor uniform in
    ±1/√(its block input size) (Kaiming-uniform with a = √5, as torch's nn.Linear), the bias
    uniform in ±1/√in_features."""

    factor_shapes = staticmethod(factor_shapes)

    def __init__(self, in_features, out_features, nblocks=4, bias=True, dtype=np.float32, rng=None):
        (w1_shape, w2_shape, self.in_padded, self.out_padded) = factor_shapes(in_features, out_features, nblocks)
        self.in_features, self.out_features, self.nblocks = in_features, out_features, nblocks
        rng = np.random.default_rng(rng)
        dtype = np.dtype(dtype)
        if dtype.kind not in "fc":  # integer weights would all round to 0
            raise TypeError(f"dtype: expected a floating or complex dtype, got {dtype}")
        self.w1 = rng.uniform(-1, 1, w1_shape).astype(dtype) / np.sqrt(w1_shape[-1]).astype(dtype)
        self.w2 = rng.uniform(-1, 1, w2_shape).astype(dtype) / np.sqrt(w2_shape[-1]).astype(dtype)
        self.bias = (rng.uniform(-1, 1, out_features) / np.sqrt(in_features)).astype(dtype) if bias else None

    def _pad(self, x):
        x = check_array(x, "x", convert=True, min_ndim=1)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x: last dimension must be in_features={self.in_features}, got {x.shape[-1]}")
        if self.in_padded == self.in_features:
            return x
        xp = _xp(_backend.device_of(x=x))
        pad = xp.zeros(x.shape[:-1] + (self.in_padded - self.in_features,), dtype=x.dtype)
        return xp.concatenate([x, pad], axis=-1)

    def forward(self, x):
        y = multiply(self._pad(x), self.w1, self.w2)[..., :self.out_features]
        return y + self.bias if self.bias is not None else y

    __call__ = forward

    def backward(self, x, dy):
        """(dx, dw1, dw2, dbias) for the gradient dy of the output."""
        xp_ = self._pad(x)
        dy = check_array(dy, "dy", convert=True, min_ndim=1)
        if dy.shape[-1] != self.out_features:
            raise ValueError(f"dy: last dimension must be out_features={self.out_features}")
        xp = _xp(_backend.device_of(x=xp_, dy=dy))
        if self.out_padded != self.out_features:
            pad = xp.zeros(dy.shape[:-1] + (self.out_padded - self.out_features,), dtype=dy.dtype)
            dy = xp.concatenate([dy, pad], axis=-1)
        dx, dw1, dw2 = multiply_backward(xp_, self.w1, self.w2, dy)
        dbias = dy[..., :self.out_features].reshape(-1, self.out_features).sum(0) if self.bias is not None else None
        return dx[..., :self.in_features], dw1, dw2, dbias

    def to_dense(self):
        """The dense (out_features × in_features) weight."""
        return to_dense(self.w1, self.w2)[:self.out_features, :self.in_features]

    @classmethod
    def from_dense(cls, weight, bias=None, nblocks=4):
        """The best Monarch approximation (Frobenius norm) of a dense (out, in) weight, by
        :func:`project` of the zero-padded weight onto this layer's factor shapes."""
        weight = check_array(weight, "weight", convert=True, ndim=2, allow_empty=False)
        out_features, in_features = weight.shape
        layer = cls(in_features, out_features, nblocks, bias=bias is not None, dtype=weight.dtype)
        padded = np.zeros((layer.out_padded, layer.in_padded), dtype=weight.dtype)
        padded[:out_features, :in_features] = weight
        layer.w1, layer.w2 = project(padded, shapes=(layer.w1.shape, layer.w2.shape))
        if bias is not None:
            bias = check_array(bias, "bias", convert=True, shape=(out_features,))
            layer.bias = np.asarray(bias, dtype=weight.dtype).copy()
        return layer


from ._interop import export_dlpack  # noqa: E402

export_dlpack(globals(), [n for n in __all__ if n != "MonarchLinear"])
del export_dlpack
