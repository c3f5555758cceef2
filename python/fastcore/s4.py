"""S4 kernels (fastcore.s4): Cauchy and Vandermonde products, S4 (DPLR) and S4D kernel
generation, long FFT convolution and the RTF kernel, on the CPU (NumPy arrays: C++ kernels with an
in-house FFT) and on CUDA (CuPy arrays: CUDA kernels for the Cauchy/Vandermonde/Woodbury parts
and the spectrum multiply, cuFFT through CuPy for the transforms, on the current CuPy stream),
with float64/complex128 NumPy references in ``fastcore.reference.s4``.

Conventions (state-spaces/s4; notes/s4.md §1-3): H channels, N stored states = one half of the
conjugate pairs (the full state is [x, conj x]); A = diag(Lambda) - sum_r P_r P_r^H; bilinear
discretisation; the kernel is K_l = C_f Abar^l Bbar_f (K_0 = C Bbar, real: "2 Re" of the half sum);
``kernel_dplr`` consumes Ct = C (I - Abar^L) (``ctilde``), the parameter S4 models train.

dtypes: complex64 / complex128 for the complex parameters (kernels come out float32 / float64),
float32 / float64 for convolutions. complex64 kernels still compute their nodes, phases and
Woodbury solves in float64 and round once (notes §4). Non-contiguous inputs are copied;
outputs are new C-contiguous arrays (``fftconv`` also takes ``out=``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _backend, _checks
from .reference import s4 as _ref

__all__ = [
    "cauchy", "cauchy_backward", "vandermonde", "vandermonde_backward", "kernel_dplr", "kernel_diag",
    "kernel_diag_backward", "kernel_dplr_backward",
    "ctilde", "double_length", "discretize", "scan", "fftconv", "fftconv_backward", "rtf_kernel",
    "rfft", "irfft",
]

_COMPLEX = ("complex64", "complex128")
_REAL = ("float32", "float64")
_REAL_OF = {"complex64": np.float32, "complex128": np.float64}
_COMPLEX_OF = {"float32": np.complex64, "float64": np.complex128}


def _cpu():
    return _backend.cpu().s4


def _xp(a: Any):
    return np if isinstance(a, np.ndarray) else _backend.array_module("cuda")


def _on_gpu(**named: Any) -> bool:
    """True for CuPy inputs; ValueError on a CPU/GPU mix (names from `named`)."""
    return _checks.same_device(**named) == "cuda"


def _ptr(a: Any) -> int:
    return _backend.data_pointer(a)


def _gpu():
    return _backend.cuda().s4


def _arr(x: Any, name: str, dtypes, ndim=None, shape=None, gpu: bool = True) -> Any:
    """A validated, C-contiguous NumPy or CuPy array (a copy when x is not contiguous). A 0-d array
    stays 0-d (np.ascontiguousarray would make it (1,)): callers that need a dimension refuse it."""
    x = _checks.check_array(x, name, dtypes=dtypes, convert=True)
    if not gpu and _backend.is_cupy_array(x):
        raise TypeError(f"{name}: this function runs on the CPU in float64 (a setup/oracle utility); "
                        f"pass a NumPy array (cupy.asnumpy)")
    if ndim is not None and x.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        want = " or ".join(f"{d}-d" for d in (ndim if isinstance(ndim, tuple) else (ndim,)))
        raise ValueError(f"{name}: expected a {want} array, got shape {tuple(x.shape)}")
    if shape is not None:
        _checks.check_shape(x, name, shape)
    return x if x.flags.c_contiguous else _xp(x).ascontiguousarray(x)


def _is_scalar(x: Any) -> bool:
    """A Python/NumPy number or a 0-d NumPy array: the form in which dt, h0 and D may be scalars."""
    return np.isscalar(x) or (isinstance(x, np.ndarray) and x.ndim == 0)


def _check_finite(x: np.ndarray, name: str) -> None:
    if x.size:
        _checks.check_finite(x, name)


def _length(L: Any, name: str = "L") -> int:
    return _checks.check_int(L, name, lo=1)


def _stable(Lambda: np.ndarray) -> None:
    _check_finite(Lambda, "Lambda")
    xp = _xp(Lambda)
    bad = ~(Lambda.real < 0)
    if bool(bad.any()):
        idx = tuple(int(i) for i in xp.argwhere(bad)[0].tolist())
        raise ValueError(f"Lambda: expected Re(Lambda) < 0 (a stable system), got {Lambda[idx]} at index {idx}")


def _dt(dt: Any, H: int, like: Any = None) -> Any:
    """dt as float64 (H,) on the device of `like`: a positive scalar or an (H,) array of positive
    reals."""
    xp = np if like is None else _xp(like)
    if _is_scalar(dt):
        v = _checks.check_scalar(dt, "dt", lo=0.0, lo_inclusive=False)
        return xp.full(H, v)
    d = _arr(dt, "dt", _REAL, ndim=1, shape=(H,)).astype(np.float64)
    if like is not None:
        _checks.same_device(Lambda=like, dt=d)
    _check_finite(d, "dt")
    if d.size and not bool((d > 0).all()):
        i = int(_xp(d).argmin(d > 0))
        raise ValueError(f"dt: expected positive step sizes, got {d[i]} at index {i}")
    return d


def _ssm_params(Lambda, B, P=None, *, gpu=True):
    Lambda = _arr(Lambda, "Lambda", _COMPLEX, ndim=2, gpu=gpu)
    H, N = Lambda.shape
    _stable(Lambda)
    dtype = Lambda.dtype.name
    B = _arr(B, "B", (dtype,), ndim=2, shape=(H, N), gpu=gpu)
    if P is not None:
        P = _arr(P, "P", (dtype,), ndim=(2, 3), gpu=gpu)
        if P.ndim == 2:
            P = P[None]
        _checks.check_shape(P, "P", (None, H, N))
    _checks.same_device(Lambda=Lambda, B=B, P=P)
    for name, a in (("B", B), ("P", P)):
        if a is not None:
            _check_finite(a, name)
    return Lambda, B, P, H, N


def _c_side(C, name, dtype, H, N, like=None, gpu=True):
    C = _arr(C, name, (dtype,), ndim=(2, 3), gpu=gpu)
    if like is not None:
        _checks.same_device(Lambda=like, **{name: C})
    _checks.check_shape(C, name, (None, H, N) if C.ndim == 3 else (H, N))
    _check_finite(C, name)
    return C


# ------------------------------------------------------------------------------------------
# Cauchy and Vandermonde products
# ------------------------------------------------------------------------------------------

def _cauchy_args(v, z, w):
    v = _arr(v, "v", _COMPLEX)
    if v.ndim < 1:
        raise ValueError(f"v: expected at least 1 dimension (..., N), got shape {tuple(v.shape)}")
    w = _arr(w, "w", (v.dtype.name,), shape=v.shape)
    z = _arr(z, "z", (v.dtype.name,), ndim=1)
    return v, z, w, _on_gpu(v=v, z=z, w=w)


def cauchy(v, z, w, *, conj: bool = True) -> np.ndarray:
    """Cauchy product y[..., j] = sum_i v[..., i]/(z[j] - w[..., i]), plus the conjugate-pair term
    conj(v_i)/(z_j - conj(w_i)) when ``conj`` (S4's symmetric form).

    v, w: (..., N) complex64/complex128 (same shape and dtype); z: (L',) of the same dtype.
    Returns (..., L') of that dtype. Memory O(N + L') per row (the (N, L') matrix is never
    formed); the conjugate pair shares one denominator, factored to stay accurate near
    resonance. Empty N gives zeros."""
    conj = _checks.check_bool(conj, "conj")
    v, z, w, gpu = _cauchy_args(v, z, w)
    lead, N = v.shape[:-1], v.shape[-1]
    out = _xp(v).zeros(lead + (z.shape[0],), v.dtype)
    if out.size == 0 or N == 0:
        return out
    if gpu:
        _gpu().cauchy(_ptr(v), _ptr(z), _ptr(w), _ptr(out), out.size // z.shape[0], N, z.shape[0], conj,
                      v.dtype == np.complex64, _backend.stream_handle())
        return out
    _cpu().cauchy(v.reshape(-1, N), z, w.reshape(-1, N), out.reshape(-1, z.shape[0]), conj)
    return out


def cauchy_backward(v, z, w, grad, *, conj: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (dv, dw) of ``cauchy`` for an upstream gradient grad (..., L') given as
    dL/dRe y + i dL/dIm y (the PyTorch convention for complex tensors); dv, dw use the same
    convention."""
    conj = _checks.check_bool(conj, "conj")
    v, z, w, gpu = _cauchy_args(v, z, w)
    lead, N = v.shape[:-1], v.shape[-1]
    grad = _arr(grad, "grad", (v.dtype.name,), shape=lead + (z.shape[0],))
    _checks.same_device(v=v, grad=grad)
    xp = _xp(v)
    dv, dw = xp.zeros_like(v), xp.zeros_like(v)
    if gpu:
        if v.size and z.size:
            _gpu().cauchy_backward(_ptr(v), _ptr(z), _ptr(w), _ptr(grad), _ptr(dv), _ptr(dw), v.size // N, N,
                                   z.shape[0], conj, v.dtype == np.complex64, _backend.stream_handle())
        return dv, dw
    if v.size and z.size:
        _cpu().cauchy_backward(v.reshape(-1, N), z, w.reshape(-1, N), grad.reshape(-1, z.shape[0]),
                               dv.reshape(-1, N), dw.reshape(-1, N), conj)
    return dv, dw


def _vand_args(v, x):
    v = _arr(v, "v", _COMPLEX)
    if v.ndim < 1:
        raise ValueError(f"v: expected at least 1 dimension (..., N), got shape {tuple(v.shape)}")
    x = _arr(x, "x", (v.dtype.name,), shape=v.shape)
    return v, x, _on_gpu(v=v, x=x)


def _vandermonde_rows(v2, x2, out2, L, real_out, gpu):
    """The compiled Vandermonde product on (rows, N) complex128 v, x into out2 (rows, L)."""
    if gpu:
        _gpu().vandermonde(_ptr(v2), _ptr(x2), _ptr(out2), v2.shape[0], v2.shape[1], L, real_out,
                           out2.dtype in (np.float32, np.complex64), _backend.stream_handle())
    else:
        _cpu().vandermonde(v2, x2, out2, L, real_out)


def vandermonde(v, x, L, *, conj: bool = True) -> np.ndarray:
    """y[..., l] = 2 Re sum_n v[..., n] exp(x[..., n] l) for l < L (``conj``; real float32/float64
    output) or the complex sum without the 2 Re (``conj=False``).

    v, x: (..., N) complex64/complex128. The phase x*l is evaluated in float64 (exact powers
    from an exp anchor per 2048 outputs, float64 power tables), so complex64 stays accurate for
    long L; the (N, L) matrix is never formed."""
    conj = _checks.check_bool(conj, "conj")
    v, x, gpu = _vand_args(v, x)
    L = _length(L)
    lead, N = v.shape[:-1], v.shape[-1]
    single = v.dtype == np.complex64
    odt = (np.float32 if single else np.float64) if conj else v.dtype
    xp = _xp(v)
    out = xp.empty(lead + (L,), odt)
    rows = int(np.prod(lead, dtype=np.int64))
    if rows == 0:
        return out
    if N == 0:
        out[...] = 0
        return out
    _vandermonde_rows(xp.ascontiguousarray(v.reshape(rows, N).astype(np.complex128)),
                      xp.ascontiguousarray(x.reshape(rows, N).astype(np.complex128)), out.reshape(rows, L), L,
                      conj, gpu)
    return out


def vandermonde_backward(v, x, grad, *, conj: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (dv, dx) of ``vandermonde``: grad (..., L) real (conj) or complex; dv, dx in
    the dtype of v (complex convention of ``cauchy_backward``):
    dv = sum_l G_l conj(e^{x l}), dx = conj(v) sum_l G_l l conj(e^{x l}), G = 2 grad (conj)."""
    conj = _checks.check_bool(conj, "conj")
    v, x, gpu = _vand_args(v, x)
    xp = _xp(v)
    lead, N = v.shape[:-1], v.shape[-1]
    single = v.dtype == np.complex64
    gdt = ((np.float32 if single else np.float64) if conj else v.dtype)
    grad = _arr(grad, "grad", (np.dtype(gdt).name,), ndim=len(lead) + 1)
    _checks.check_shape(grad, "grad", lead + (None,))
    _checks.same_device(v=v, grad=grad)
    L = grad.shape[-1]
    rows = int(np.prod(lead, dtype=np.int64))
    dv, dx = _vandermonde_backward_rows(xp, v.reshape(rows, N), x.reshape(rows, N), grad.reshape(rows, L),
                                        conj, gpu, single)
    return dv.reshape(v.shape).astype(v.dtype), dx.reshape(v.shape).astype(v.dtype)


def _vandermonde_backward_rows(xp, v2, x2, g2, conj, gpu, single):
    """The compiled Vandermonde backward on (rows, N) v, x and (rows, L) grad: (dv, dx) complex128."""
    rows, N = v2.shape
    L = g2.shape[1]
    dv = xp.zeros((rows, N), np.complex128)
    dx = xp.zeros((rows, N), np.complex128)
    if rows and N and L:
        v2 = xp.ascontiguousarray(v2.astype(np.complex128))
        x2 = xp.ascontiguousarray(x2.astype(np.complex128))
        g2 = xp.ascontiguousarray(g2)
        if gpu:
            _gpu().vandermonde_backward(_ptr(v2), _ptr(x2), _ptr(g2), _ptr(dv), _ptr(dx), rows, N, L, conj,
                                        single, _backend.stream_handle())
        else:
            _cpu().vandermonde_backward(v2, x2, g2, dv, dx, conj)
    return dv, dx


# ------------------------------------------------------------------------------------------
# Kernel generation
# ------------------------------------------------------------------------------------------

def _dplr_gpu(Lambda, P, B, Ct3, dtv, L):
    """CUDA path of kernel_dplr: per-state numerators in complex128 (CuPy), the fused Cauchy +
    Woodbury spectrum kernel, the Nyquist node, then cuFFT's irfft of length L."""
    import cupy as cp

    H, N = Lambda.shape
    r, C = P.shape[0], Ct3.shape[0]
    g = _gpu()
    if r > g.MAX_RANK or (1 + r) * (C + r) > g.MAX_PRODUCTS:
        raise ValueError(f"P, Ct: the CUDA kernel supports rank <= {g.MAX_RANK} and (1 + rank)(C + rank) <= "
                         f"{g.MAX_PRODUCTS}, got rank {r} and C = {C}; use NumPy arrays for larger systems")
    single = Lambda.dtype == np.complex64
    rdt = np.float32 if single else np.float64
    d = dtv[:, None]
    w = d * Lambda.astype(np.complex128)                                   # (H, N)
    bside = cp.concatenate([B[None], P], 0).astype(np.complex128)         # (1+r, H, N)
    cside = cp.concatenate([Ct3, P.conj()], 0).astype(np.complex128)      # (C+r, H, N)
    v = d * bside[:, None] * cside[None, :]                               # (1+r, C+r, H, N)
    alpha = (-2 * (v.real * w.real + v.imag * w.imag)).reshape(-1, H, N).transpose(1, 0, 2)
    beta = (2 * v.real).reshape(-1, H, N).transpose(1, 0, 2)
    alpha = cp.ascontiguousarray(alpha.astype(rdt))
    beta = cp.ascontiguousarray(beta.astype(rdt))
    wc = cp.ascontiguousarray(w.astype(Lambda.dtype))
    nf = L // 2 + 1
    khat = cp.zeros((C, H, nf), Lambda.dtype)
    g.dplr_spectrum(_ptr(alpha), _ptr(beta), _ptr(wc), _ptr(khat), H, N, r, C, L, single, _backend.stream_handle())
    if L % 2 == 0:  # Nyquist node in closed form: dt Re sum_n Ct_n B_n
        khat[..., L // 2] = (dtv * (Ct3.astype(np.complex128) * B.astype(np.complex128)).sum(-1).real)
    return cp.ascontiguousarray(cp.fft.irfft(khat, L, axis=-1).astype(rdt))


def kernel_dplr(Lambda, P, B, Ct, dt, L):
    """The S4 (DPLR) convolution kernel in one fused pass (notes §3-4).

    Lambda (H, N), B (H, N), P (r, H, N) or (H, N) for rank 1 (r = 0 allowed), Ct (H, N) or
    (C, H, N): complex64/complex128, one dtype; dt: positive scalar or (H,) real. Ct is
    C (I - Abar^L) (see ``ctilde``). Returns K (H, L) or (C, H, L), float32/float64.

    Per channel and frequency node z_k = 2i tan(pi k/L) (tan in float64): the (1+r)(C+r)
    conjugate-pair Cauchy sums share one denominator, Woodbury (solved in float64) and (1 + i t)
    are fused, the Nyquist node uses its closed form dt Re sum Ct B, and an inverse real DFT of
    length L (any L: real FFT for powers of two, Bluestein otherwise) gives K.
    CuPy inputs: the same spectrum in one CUDA kernel (rank <= 3, (1+r)(C+r) <= 16), then
    cuFFT's irfft, on the current stream."""
    Lambda, B, P, H, N = _ssm_params(Lambda, B, P)
    xp = _xp(Lambda)
    dtype = Lambda.dtype.name
    if P is None:
        P = xp.zeros((0, H, N), Lambda.dtype)
    Ct = _c_side(Ct, "Ct", dtype, H, N, like=Lambda)
    dtv = _dt(dt, H, like=Lambda)
    L = _length(L)
    squeeze = Ct.ndim == 2
    Ct3 = Ct[None] if squeeze else Ct
    if xp is not np:
        K = _dplr_gpu(Lambda, P, B, Ct3, dtv, L) if Ct3.shape[0] and H else \
            xp.empty((Ct3.shape[0], H, L), _REAL_OF[dtype])
        return K[0] if squeeze else K
    K = np.empty((Ct3.shape[0], H, L), _REAL_OF[dtype])
    if K.size:
        _cpu().kernel_dplr(Lambda, np.ascontiguousarray(P), B, np.ascontiguousarray(Ct3), dtv, K)
    return K[0] if squeeze else K


def _expm1(xp, w):
    """e^w - 1 for complex w without cancellation near 0: expm1 of the real part times the phase,
    plus (phase - 1) = -2 sin^2(Im w / 2) + i sin(Im w) (cos(Im w) - 1 itself cancels: ~eps/|w|
    relative, 1e-9 at |w| = 2e-8)."""
    wi = w.imag
    half = xp.sin(0.5 * wi)
    cis_minus_1 = -2.0 * half * half + 1j * xp.sin(wi)
    return xp.expm1(w.real) * (cis_minus_1 + 1.0) + cis_minus_1


def _kernel_grad(grad, Lambda, lead):
    """A kernel backward's upstream gradient: the kernel's real dtype, shape lead + (L,) with
    L >= 1, on Lambda's device. Returns (grad, L). NaN/Inf in grad propagate to the gradients (as
    in autograd: mixed-precision loss scalers detect an overflow from them), not refused."""
    grad = _arr(grad, "grad", (np.dtype(_REAL_OF[Lambda.dtype.name]).name,), ndim=len(lead) + 1)
    _checks.check_shape(grad, "grad", lead + (None,))
    _checks.same_device(Lambda=Lambda, grad=grad)
    return grad, _length(grad.shape[-1], "grad.shape[-1]")


def _grad_like(g, x):
    """A per-channel gradient g (H,) in the form of its parameter x (dt or D): a float for a scalar
    x (the channels' sum, accumulated in float64), else x's dtype (float64 for a list)."""
    if _is_scalar(x):
        return float(g.sum(dtype=np.float64))
    return g.astype(getattr(x, "dtype", np.float64), copy=False)


def _solve_batched(xp, M, b):
    """x with M x = b for a stack of r x r systems (..., r, r), (..., r): rank 1 (HiPPO-LegS, the
    common case) by one division, larger ranks by the batched LU solve (per-matrix overhead)."""
    if M.shape[-1] == 1:
        return b / M[..., 0]
    return xp.linalg.solve(M, b[..., None])[..., 0]


def _dplr_spectrum_backward(xp, lam, bside, cside, d, z, dkhat, nC, r):
    """(dv (1+r, C+r, H, N), dw summed over the products (H, N)) from dkhat (C, H, nreg): the
    Cauchy sums replayed with the compiled ``cauchy``, Woodbury's adjoint batched over (h, node),
    then the compiled ``cauchy_backward`` — the CuPy path (and the CPU kernel's cross-check)."""
    v = xp.ascontiguousarray(d * bside[:, None] * cside[None, :])   # (1+r, C+r, H, N)
    w = xp.ascontiguousarray(xp.broadcast_to(d * lam, v.shape))
    k = cauchy(v, z, w)                                              # (1+r, C+r, H, nreg)
    k01, k10, k11 = k[1:, :nC], k[0, nC:], k[1:, nC:]
    dk = xp.zeros_like(k)
    dk[0, :nC] = dkhat                                               # khat = k00 - ...
    if r:
        M = xp.eye(r) + xp.moveaxis(k11, (0, 1), (-1, -2))            # [h, n, i(c), j(b)]
        x = _solve_batched(xp, M, xp.moveaxis(k10, 0, -1))            # (H, n, r)
        # khat = k00 - sum_q k01[q] x[q]: dk01[q] = -conj(x[q]) dkhat, dx[q] = -sum_c conj(k01[q, c]) dkhat[c]
        dk[1:, :nC] = -xp.conj(xp.moveaxis(x, -1, 0))[:, None] * dkhat[None]
        dx = -xp.einsum("qchn,chn->hnq", xp.conj(k01), dkhat)
        # x = M^-1 k10: dk10 = M^-H dx, dM = -dk10 x^H; M[i, j] = delta + k11[j, i]
        dk10 = _solve_batched(xp, xp.conj(xp.swapaxes(M, -1, -2)), dx)                   # (H, n, r)
        dM = -dk10[..., :, None] * xp.conj(x)[..., None, :]                               # (H, n, i, j)
        dk[0, nC:] = xp.moveaxis(dk10, -1, 0)
        dk[1:, nC:] = xp.moveaxis(dM, (-1, -2), (0, 1))                                    # [j(b), i(c)]
    dv, dw = cauchy_backward(v, z, w, xp.ascontiguousarray(dk))
    return dv, dw.sum(axis=(0, 1))


def kernel_dplr_backward(Lambda, P, B, Ct, dt, grad):
    """Gradients of ``kernel_dplr`` for a real loss with dL/dK = ``grad`` ((H, L) or (C, H, L),
    the kernel's real dtype): returns (dLambda, dP, dB, dCt, ddt) — complex gradients in the
    convention of ``cauchy_backward`` (dz = dL/dRe z + i dL/dIm z, as PyTorch), dP of P's shape
    (None when P is None), ddt of dt's shape (a float for a scalar dt).

    The forward's steps are replayed in complex128 and differentiated in reverse (notes §3-4):
    irfft (its adjoint is rfft(grad)/L, doubled for the bins it mirrors), the closed-form Nyquist
    node dt Re sum Ct B, the (1 + i t_k) factor, Woodbury per (channel, node) khat = k00 -
    k01^T (I + k11^T)^-1 k10 (adjoint solves with the conjugate transpose, batched), then the
    compiled ``cauchy_backward`` for the (1+r)(C+r) Cauchy products v = dt b_a c_c over the
    nodes z_k = 2i tan(pi k/L) with poles w = dt Lambda. cside holds conj(P), so P's gradient
    from it is conjugated. NumPy or CuPy (same steps)."""
    p_shape = None if P is None else tuple(getattr(P, "shape", np.shape(P)))
    Lambda, B, P, H, N = _ssm_params(Lambda, B, P)
    xp = _xp(Lambda)
    dtype = Lambda.dtype.name
    P3 = xp.zeros((0, H, N), Lambda.dtype) if P is None else P
    Ct = _c_side(Ct, "Ct", dtype, H, N, like=Lambda)
    dtv = _dt(dt, H, like=Lambda)
    grad, L = _kernel_grad(grad, Lambda, Ct.shape[:-1])
    squeeze = Ct.ndim == 2
    c128 = np.complex128
    lam, b, pp = Lambda.astype(c128), B.astype(c128), P3.astype(c128)
    ct = (Ct[None] if squeeze else Ct).astype(c128)
    g = (grad[None] if squeeze else grad).astype(np.float64)
    if H == 0 or N == 0:  # no states (the forward's kernel is 0): zero gradients of every shape
        cdt = Lambda.dtype
        return (xp.zeros((H, N), cdt), None if p_shape is None else xp.zeros(p_shape, cdt),
                xp.zeros((H, N), cdt), xp.zeros(Ct.shape, cdt), _grad_like(xp.zeros(H), dt))
    nC, r = ct.shape[0], pp.shape[0]
    nreg = (L + 1) // 2
    t = xp.asarray(np.tan(np.pi * np.arange(nreg) / L))
    d = dtv[:, None]                                     # (H, 1)

    bside = xp.concatenate([b[None], pp], 0)             # (1+r, H, N)
    cside = xp.concatenate([ct, xp.conj(pp)], 0)         # (C+r, H, N)

    # irfft adjoint: dF_k = rfft(g)_k / L, doubled where irfft mirrors the bin (0 < k < L/2).
    with np.errstate(invalid="ignore"):  # a non-finite grad propagates (see _kernel_grad)
        G = xp.fft.rfft(g, axis=-1) / L                  # (C, H, L//2 + 1)
    scale = xp.full(L // 2 + 1, 2.0)
    scale[0] = 1.0
    if L % 2 == 0:
        scale[-1] = 1.0
    G = G * scale
    dkhat = xp.ascontiguousarray(G[..., :nreg] * (1 - 1j * t))   # through khat * (1 + i t)
    if xp is np:  # one fused compiled pass: Cauchy sums, Woodbury's adjoint, Cauchy backward
        dv = np.empty((1 + r, nC + r, H, N), np.complex128)
        dw_sum = np.empty((H, N), np.complex128)
        _cpu().kernel_dplr_backward(Lambda, P3, B, Ct[None] if squeeze else Ct, dtv, dkhat, L,
                                    dv.reshape(-1, H, N), dw_sum)
    else:
        dv, dw_sum = _dplr_spectrum_backward(xp, lam, bside, cside, d, 2j * t, dkhat, nC, r)

    # v = dt bside[a] cside[c], w = dt Lambda.
    dbside = d * xp.einsum("achn,chn->ahn", dv, xp.conj(cside))
    dcside = d * xp.einsum("achn,ahn->chn", dv, xp.conj(bside))
    dLambda = d * dw_sum
    ddt = (xp.einsum("achn,ahn,chn->h", dv, xp.conj(bside), xp.conj(cside)).real
           + (dw_sum * xp.conj(lam)).real.sum(-1))
    dB, dP = dbside[0], dbside[1:] + xp.conj(dcside[nC:])
    dCt = dcside[:nC]
    if L % 2 == 0:  # the Nyquist bin dt Re sum Ct B, real: its gradient is G's real part there
        gN = G[..., L // 2].real                         # (C, H)
        dCt = dCt + (gN * dtv)[..., None] * xp.conj(b)[None]
        dB = dB + ((gN * dtv)[..., None] * xp.conj(ct)).sum(0)
        ddt = ddt + (gN * (ct * b[None]).sum(-1).real).sum(0)
    cdt = Lambda.dtype
    dP_out = None if p_shape is None else dP.astype(cdt).reshape(p_shape)
    return (dLambda.astype(cdt), dP_out, dB.astype(cdt), (dCt[0] if squeeze else dCt).astype(cdt),
            _grad_like(ddt, dt))


def _diag_coefficients(xp, Lambda, B, C, dtv, method):
    """(v, x) of K_l = 2 Re sum v e^{x l} in complex128 (notes §5), NumPy or CuPy."""
    Lambda, B, C = (a.astype(np.complex128) for a in (Lambda, B, C))
    w = dtv[:, None] * Lambda
    if method == "zoh":
        return C * B * _expm1(xp, w) / Lambda, xp.broadcast_to(w, C.shape)
    return C * B * (dtv[:, None] / (1 - w / 2)), xp.broadcast_to(xp.log((1 + w / 2) / (1 - w / 2)), C.shape)


def kernel_diag(Lambda, B, C, dt, L, method: str = "zoh"):
    """The S4D (diagonal) kernel K_l = 2 Re sum_n v_n exp(x_n l) (notes §5).

    method "zoh": v = C B (e^{dt Lambda} - 1)/Lambda, x = dt Lambda; "bilinear": v = C B dt/(1 -
    dt Lambda/2), x = log((1 + dt Lambda/2)/(1 - dt Lambda/2)). Lambda, B (H, N), C (H, N) or
    (C, H, N) complex64/complex128; dt scalar or (H,). v and x are formed in float64, the
    Vandermonde product keeps the phase in float64. Returns (H, L) or (C, H, L). CuPy inputs
    run the CUDA Vandermonde kernel."""
    Lambda, B, _, H, N = _ssm_params(Lambda, B)
    xp = _xp(Lambda)
    C = _c_side(C, "C", Lambda.dtype.name, H, N, like=Lambda)
    method = _checks.check_choice(method, "method", ("zoh", "bilinear"))
    dtv = _dt(dt, H, like=Lambda)
    L = _length(L)
    v, x = _diag_coefficients(xp, Lambda, B, C, dtv, method)
    lead = C.shape[:-1]
    out = xp.empty(lead + (L,), _REAL_OF[Lambda.dtype.name])
    rows = int(np.prod(lead, dtype=np.int64))
    if rows and N:
        _vandermonde_rows(xp.ascontiguousarray(v.reshape(rows, N)), xp.ascontiguousarray(x.reshape(rows, N)),
                          out.reshape(rows, L), L, True, xp is not np)
    elif rows:
        out[...] = 0
    return out


# Taylor coefficients (m + 1)/(m + 2)! of psi(w) = (w e^w - (e^w - 1))/w^2, m = 0..35: below
# |w| = 2 the first omitted term is < 1e-30.
_PSI_TERMS = [(m + 1) / math.factorial(m + 2) for m in range(36)]


def _zoh_psi(xp, w):
    """psi(w) = (w e^w - (e^w - 1)) / w^2 in complex128: d/dLambda of the ZOH factor
    (e^{dt Lambda} - 1)/Lambda is dt^2 psi(dt Lambda). The closed form cancels as w -> 0 (w e^w and
    e^w - 1 agree to first order), so |w| < 2 takes the Taylor series sum (m+1)/(m+2)! w^m
    (measured against exact rational sums: within ~5 ulp, the series within 2)."""
    em1 = _expm1(xp, w)
    small = xp.abs(w) < 2.0
    w_safe = xp.where(small, 1.0, w)
    closed = (w_safe * (em1 + 1) - em1) / (w_safe * w_safe)
    series = xp.zeros_like(w)
    for c in reversed(_PSI_TERMS):
        series = series * w + c
    return xp.where(small, series, closed)


def kernel_diag_backward(Lambda, B, C, dt, grad, method: str = "zoh"):
    """Gradients of ``kernel_diag`` for a real loss with dL/dK = ``grad`` ((H, L) or (C, H, L), the
    kernel's real dtype): returns (dLambda, dB, dC, ddt), complex gradients in the convention of
    ``cauchy_backward`` (dz = dL/dRe z + i dL/dIm z, as PyTorch) and ddt of dt's shape (a float
    for a scalar dt, else an (H,) array of dt's dtype).

    The Vandermonde part is the compiled ``vandermonde_backward`` (phase in float64); the chain
    through the discretisation is closed-form in complex128 (notes §5): with w = dt Lambda,
      zoh:      v = C B (e^w - 1)/Lambda, x = w;  dv/dLambda = C B dt^2 psi(w) (psi by its series
                for |w| < 2, no cancellation), dv/ddt = C B e^w, dx/dLambda = dt, dx/ddt = Lambda;
      bilinear: v = C B dt/(1 - w/2), x = log((1 + w/2)/(1 - w/2));  dv/dLambda = C B dt^2 /
                (2 (1 - w/2)^2), dv/ddt = C B/(1 - w/2)^2, dx/dLambda = dt/(1 - w^2/4),
                dx/ddt = Lambda/(1 - w^2/4).
    Holomorphic steps take conj(derivative) x upstream gradient; dt (real) takes the real part."""
    Lambda, B, _, H, N = _ssm_params(Lambda, B)
    xp = _xp(Lambda)
    C = _c_side(C, "C", Lambda.dtype.name, H, N, like=Lambda)
    method = _checks.check_choice(method, "method", ("zoh", "bilinear"))
    dtv = _dt(dt, H, like=Lambda)
    lead = C.shape[:-1]
    grad, L = _kernel_grad(grad, Lambda, lead)
    v, x = _diag_coefficients(xp, Lambda, B, C, dtv, method)
    rows = int(np.prod(lead, dtype=np.int64))
    dv, dx = _vandermonde_backward_rows(xp, v.reshape(rows, N), x.reshape(rows, N), grad.reshape(rows, L),
                                        True, xp is not np, Lambda.dtype == np.complex64)
    dv, dx = dv.reshape(C.shape), dx.reshape(C.shape)

    lam, b, c = (a.astype(np.complex128) for a in (Lambda, B, C))
    d = dtv[:, None]
    w = d * lam
    if method == "zoh":
        em1 = _expm1(xp, w)
        factor = em1 / lam                      # v = C B factor
        dfactor_dlam = d * d * _zoh_psi(xp, w)
        dfactor_ddt = xp.exp(w)                 # (not em1 + 1: absolute error eps where e^w << 1)
        dx_dlam, dx_ddt = xp.broadcast_to(d, w.shape), lam
    else:
        den = 1 - w / 2
        factor = d / den
        dfactor_dlam = d * d / (2 * den * den)
        dfactor_ddt = 1 / (den * den)
        q = 1 - w * w / 4
        dx_dlam, dx_ddt = d / q, lam / q
    sum_channels = (lambda a: a.sum(axis=0)) if C.ndim == 3 else (lambda a: a)
    dC = xp.conj(b * factor) * dv
    dB = sum_channels(xp.conj(c * factor) * dv)
    dLambda = sum_channels(xp.conj(c * b * dfactor_dlam) * dv + xp.conj(dx_dlam) * dx)
    ddt_hn = (dv * xp.conj(c * b * dfactor_ddt)).real + (dx * xp.conj(dx_ddt)).real
    ddt = sum_channels(ddt_hn).sum(axis=-1)      # (H,)
    cdt = Lambda.dtype
    return dLambda.astype(cdt), dB.astype(cdt), dC.astype(cdt), _grad_like(ddt, dt)


def _dense_args(Lambda, P, B, C, dt, L, cname):
    Lambda, B, P, H, N = _ssm_params(Lambda, B, P, gpu=False)
    C = _c_side(C, cname, Lambda.dtype.name, H, N, gpu=False)
    return Lambda, P, B, C, _dt(dt, H), _length(L)


def ctilde(Lambda, P, B, C, dt, L) -> np.ndarray:
    """Ct = C (I - Abar^L) on the full state (its stored half), computed in float64 with
    Abar^L by repeated squaring of the dense (2N, 2N) bilinear Abar, and returned in C's dtype.
    P None (or rank 0): the diagonal case, Ct = C (1 - Abar^L) elementwise. NumPy only."""
    Lambda, P, B, C, dtv, L = _dense_args(Lambda, P, B, C, dt, L, "C")
    return _ref.ctilde(Lambda, P, B, C, dtv, L).astype(C.dtype)


def double_length(Lambda, P, B, Ct, dt, L) -> np.ndarray:
    """Ct for length 2L from Ct for length L: Ct_2L = Ct_L (I + Abar^L) (float64 inside; NumPy
    only)."""
    Lambda, P, B, Ct, dtv, L = _dense_args(Lambda, P, B, Ct, dt, L, "Ct")
    return _ref.double_length(Lambda, P, B, Ct, dtv, L).astype(Ct.dtype)


def discretize(Lambda, P, B, dt, *, method: str = "bilinear") -> tuple[np.ndarray, np.ndarray]:
    """Discrete (Abar, Bbar) in complex128 for the recurrent view. P None: the diagonal system on
    the stored half, Abar, Bbar (H, N) ("bilinear" or "zoh"). Otherwise the dense full state:
    Abar (H, 2N, 2N), Bbar (H, 2N) (bilinear). NumPy only."""
    Lambda, B, P, H, N = _ssm_params(Lambda, B, P, gpu=False)
    method = _checks.check_choice(method, "method", ("bilinear", "zoh") if P is None else ("bilinear",))
    return _ref.discretize(Lambda, P, B, _dt(dt, H), method)


def scan(Abar, Bbar, C, u, D=None) -> np.ndarray:
    """The recurrence x_k = Abar x_{k-1} + Bbar u_k, y_k = Re(C_f x_k) + D u_k (diagonal: 2 Re(C x))
    from x = 0, in float64: the oracle for checking the convolution view. Abar, Bbar from
    ``discretize``: diagonal (H, N), (H, N), or dense on the full state [x, conj x] (H, 2N, 2N),
    (H, 2N); C (H, N) the stored half (the true C, not Ct); u (B, H, L) real; D (H,), a real
    scalar (as in ``fftconv``) or None. Non-finite Abar, Bbar, C or D are refused (as the kernels'
    parameters); NaN/Inf in u propagate into y from their step on. NumPy only."""
    Abar = _arr(Abar, "Abar", _COMPLEX, ndim=(2, 3), gpu=False)
    H = Abar.shape[0]
    n = Abar.shape[1]
    if Abar.ndim == 3:
        _checks.check_shape(Abar, "Abar", (H, n, n))
        if n % 2:
            raise ValueError(f"Abar: expected a dense (H, 2N, 2N) matrix on the full state [x, conj x] (an even "
                             f"size), got shape {tuple(Abar.shape)}")
    Bbar = _arr(Bbar, "Bbar", _COMPLEX, shape=(H, n), gpu=False)
    N = n if Abar.ndim == 2 else n // 2
    C = _arr(C, "C", _COMPLEX, shape=(H, N), gpu=False)
    u = _arr(u, "u", _REAL, ndim=3, gpu=False)
    _checks.check_shape(u, "u", (None, H, None))
    D = _d_arg(D, H, _REAL, u, gpu=False)
    for name, a in (("Abar", Abar), ("Bbar", Bbar), ("C", C), ("D", D)):
        if a is not None:
            _check_finite(a, name)
    return _ref.scan(Abar, Bbar, C, u, D)


def rtf_kernel(a, b, h0, L):
    """The rational-transfer-function kernel (Parnichkun et al. 2024; notes §8), O(L log L) and
    independent of the state size: k = IDFT_n(DFT_n([0, b]) / DFT_n([1, a]) + h0)[:L] with n = L
    rounded up to even (as published: the n-periodised impulse response of
    H(z) = h0 + (b1 z^-1 + ... + bN z^-N)/(1 + a1 z^-1 + ... + aN z^-N)).

    a, b: (H, N) float32/float64 (a may be (N,), shared), h0: (H,) or a scalar; N < n.
    Returns (H, L) in the dtype of b. Computed in float64 inside (CuPy: cuFFT)."""
    b = _arr(b, "b", _REAL, ndim=2)
    xp = _xp(b)
    H, N = b.shape
    a = _arr(a, "a", (b.dtype.name,), ndim=(1, 2))
    _checks.same_device(a=a, b=b)
    if a.ndim == 1:
        _checks.check_shape(a, "a", (N,))
        a = xp.ascontiguousarray(xp.broadcast_to(a, (H, N)))
    _checks.check_shape(a, "a", (H, N))
    if _is_scalar(h0):
        h0 = xp.full(H, _checks.check_scalar(h0, "h0"), b.dtype)
    h0 = _arr(h0, "h0", (b.dtype.name,), shape=(H,))
    _checks.same_device(b=b, h0=h0)
    L = _length(L)
    n = L + (L % 2)
    if N >= n:
        raise ValueError(f"a, b: state size N = {N} must be smaller than the transform length {n} "
                         f"(L = {L} rounded up to even)")
    for name, x in (("a", a), ("b", b), ("h0", h0)):
        _check_finite(x, name)
    if xp is not np:
        one = xp.ones((H, 1))
        num = xp.fft.rfft(xp.concatenate([0 * one, b.astype(np.float64)], -1), n)
        den = xp.fft.rfft(xp.concatenate([one, a.astype(np.float64)], -1), n)
        k = xp.fft.irfft(num / den + h0.astype(np.float64)[:, None], n)[:, :L]
        return xp.ascontiguousarray(k.astype(b.dtype))
    out = np.empty((H, L), b.dtype)
    if H:
        _cpu().rtf_kernel(a, b, h0, out)
    return out


# ------------------------------------------------------------------------------------------
# FFT convolution
# ------------------------------------------------------------------------------------------

def _d_arg(D, H, dtypes, like, gpu=True):
    """The skip term's D as an (H,) array (or None): a finite real scalar (Python/NumPy number or 0-d
    NumPy array: one D for every channel, in like's dtype on like's device) or an (H,) array."""
    if D is None:
        return None
    if _is_scalar(D):
        return _xp(like).full(H, _checks.check_scalar(D, "D"), like.dtype)
    return _arr(D, "D", dtypes, shape=(H,), gpu=gpu)


def _conv_args(u, K, D, bidirectional):
    _checks.check_bool(bidirectional, "bidirectional")
    u = _arr(u, "u", _REAL, ndim=3)
    Bn, H, L = u.shape
    dtype = u.dtype.name
    if bidirectional:
        K = _arr(K, "K", (dtype,), ndim=3)
        _checks.check_shape(K, "K", (2, H, None))
    else:
        K = _arr(K, "K", (dtype,), ndim=2)
        _checks.check_shape(K, "K", (H, None))
        K = K[None]
    if K.shape[-1] < 1 and L > 0:
        raise ValueError(f"K: expected at least one tap, got shape {tuple(K.shape)}")
    D = _d_arg(D, H, (dtype,), u)
    gpu = _on_gpu(u=u, K=K, D=D)
    return u, K, D, gpu


def _conv_size(L, Lk, bidirectional):
    """(taps used, FFT size): the CPU kernel's power-of-two size (cpp conv_size)."""
    lk = min(Lk, L)
    need = L + lk - (0 if bidirectional else 1)
    return lk, max(2, 1 << max(0, (need - 1).bit_length()))


def _gpu_kernel_spectrum(K, L, bidirectional):
    xp = _xp(K)
    H, Lk = K.shape[1], K.shape[2]
    lk, n = _conv_size(L, Lk, bidirectional)
    kk = xp.zeros((H, n), K.dtype)
    kk[:, :lk] = K[0, :, :lk]
    if bidirectional:
        kk[:, n - lk:] += K[1, :, :lk][:, ::-1]
    return xp.ascontiguousarray(xp.fft.rfft(kk, n)), lk, n


def _gpu_multiply(X, S, H, conj):
    rows, nf = X.shape[0] * X.shape[1], X.shape[-1]
    _gpu().spectrum_multiply(_ptr(X), _ptr(S), rows, H, nf, bool(conj), X.dtype == np.complex64,
                             _backend.stream_handle())


def fftconv(u, K, D=None, *, bidirectional: bool = False, out=None):
    """y = u * K + D u: the causal linear convolution y[t] = sum_{s<=t} K[h, s] u[b, h, t-s] per
    (batch, channel) row, through zero-padded power-of-two real FFTs (in-house, size
    n >= L + L_k - 1), fused per row (forward FFT, multiply by the channel's kernel spectrum,
    computed once and reused across the batch, inverse FFT, + D u).

    u: (B, H, L) float32/float64; K: (H, L_k) (any L_k >= 1; taps beyond L are ignored), or
    (2, H, L_k) when ``bidirectional``: then y[t] += sum_{m>=0} K[1, h, m] u[t+m+1] (the
    strictly anticausal convention of state-spaces/s4); D: (H,) of u's dtype, a real scalar (a
    Python/NumPy number or 0-d NumPy array, the same for every channel) or None. out: optional
    (B, H, L) C-contiguous array of u's dtype, not overlapping the inputs.
    CuPy inputs: cuFFT (CuPy) for the transforms, a CUDA kernel for the spectrum multiply."""
    u, K, D, gpu = _conv_args(u, K, D, bidirectional)
    if out is None:
        out = _xp(u).empty(u.shape, u.dtype)
    else:
        _checks.check_out(out, "out", shape=u.shape, dtype=u.dtype, inputs={"u": u, "K": K, "D": D}, like=u)
    if out.size == 0:
        return out
    if gpu:
        S, lk, n = _gpu_kernel_spectrum(K, u.shape[-1], bidirectional)
        X = _xp(u).fft.rfft(u, n)
        _gpu_multiply(X, S, u.shape[1], False)
        y = _xp(u).fft.irfft(X, n)[..., :u.shape[-1]]
        if D is not None:
            y += D[:, None] * u
        out[...] = y
        return out
    _cpu().fftconv(u, K, D, out, bool(bidirectional))
    return out


def fftconv_backward(u, K, D, dy, *, bidirectional: bool = False):
    """Gradients (du, dK, dD) of ``fftconv`` for the upstream dy (B, H, L): du = the adjoint
    correlation with K + D dy, dK = sum_b correlation of dy with u (reduced over the batch in the
    frequency domain, in batch order: deterministic), dD = sum_{b,t} u dy (None when D is None).
    dK has K's shape ((H, L_k) or (2, H, L_k)); dD D's form: (H,) of u's dtype, or a float (the
    sum over the channels, in float64) for a scalar D, as ddt for a scalar dt."""
    d_given = D
    u, K3, D, gpu = _conv_args(u, K, D, bidirectional)
    dy = _arr(dy, "dy", (u.dtype.name,), shape=u.shape)
    _checks.same_device(u=u, dy=dy)
    xp = _xp(u)
    Bn, H, L = u.shape
    if gpu and u.size:
        S, lk, n = _gpu_kernel_spectrum(K3, L, bidirectional)
        U = xp.fft.rfft(u, n)
        Y = xp.fft.rfft(dy, n)
        r = xp.fft.irfft((U.conj() * Y).sum(0), n)      # (H, n): sum_b correlation of dy with u
        dK = xp.zeros(K3.shape, u.dtype)
        dK[0, :, :lk] = r[:, :lk]
        if bidirectional:
            dK[1, :, :lk] = r[:, n - 1 - xp.arange(lk)]
        _gpu_multiply(Y, S, H, True)
        du = xp.ascontiguousarray(xp.fft.irfft(Y, n)[..., :L])
        dD = None
        if D is not None:
            du += D[:, None] * dy
            dD = _grad_like((u.astype(np.float64) * dy).sum((0, 2)), d_given)   # D's dtype is u's
        return du, (dK if bidirectional else dK[0]), dD
    du = xp.empty_like(u)
    dK = xp.zeros(K3.shape, u.dtype)
    dD = None if D is None else xp.zeros(H, u.dtype)
    if H and not gpu:  # (the GPU path got here only when empty)
        _cpu().fftconv_backward(u, K3, D, dy, du, dK, dD, bool(bidirectional))
    return du, (dK if bidirectional else dK[0]), (None if dD is None else _grad_like(dD, d_given))


# ------------------------------------------------------------------------------------------
# FFT utilities (the in-house FFT, exposed for testing and reuse)
# ------------------------------------------------------------------------------------------

def rfft(x):
    """Real FFT along the last axis (any length m >= 1; radix-4 real FFT for powers of two,
    Bluestein otherwise): (..., m) float32/float64 -> (..., m//2 + 1) complex64/complex128,
    numpy.fft.rfft's convention. CuPy inputs use cuFFT."""
    x = _arr(x, "x", _REAL)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"x: expected shape (..., m) with m >= 1, got {tuple(x.shape)}")
    m = x.shape[-1]
    if not isinstance(x, np.ndarray):
        return _xp(x).fft.rfft(x).astype(_COMPLEX_OF[x.dtype.name], copy=False)
    out = np.empty(x.shape[:-1] + (m // 2 + 1,), _COMPLEX_OF[x.dtype.name])
    if out.size:
        _cpu().rfft(x.reshape(-1, m), out.reshape(-1, m // 2 + 1))
    return out


def irfft(X, n: int):
    """Inverse of ``rfft`` (numpy.fft.irfft(X, n) with X of exactly n//2 + 1 entries on the last
    axis; normalised by 1/n; the imaginary parts of X_0 and, for even n, X_{n/2} are ignored).
    CuPy inputs use cuFFT."""
    X = _arr(X, "X", _COMPLEX)
    n = _length(n, "n")
    if X.ndim < 1:
        raise ValueError(f"X: expected at least 1 dimension (..., n//2 + 1), got shape {tuple(X.shape)}")
    _checks.check_shape(X, "X", X.shape[:-1] + (n // 2 + 1,))
    if not isinstance(X, np.ndarray):
        return _xp(X).fft.irfft(X, n).astype(_REAL_OF[X.dtype.name], copy=False)
    out = np.empty(X.shape[:-1] + (n,), _REAL_OF[X.dtype.name])
    if out.size:
        _cpu().irfft(X.reshape(-1, n // 2 + 1), out.reshape(-1, n))
    return out


from ._interop import export_dlpack  # noqa: E402  (torch / JAX arrays in, the same kind out)

export_dlpack(globals(), __all__)
del export_dlpack
