"""fastcore.s4 on CUDA (CuPy arrays) against the complex128 references and the CPU kernels.

These tests need a GPU and CuPy (marker `cuda`; they skip elsewhere). Tolerances are those of
tests/test_s4.py (notes/s4.md §9): the GPU evaluates the same formulas in the same precision
(nvcc may contract a*b + c into FMAs, which only changes roundings), with the FFT steps in cuFFT.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastcore import s4
from fastcore.reference import s4 as R

pytestmark = pytest.mark.cuda


def cupy():
    import cupy as cp

    return cp


def rel_err(a, b):
    cp = cupy()
    a = cp.asnumpy(a) if not isinstance(a, np.ndarray) else a
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def crandn(rng, *shape, dtype=np.complex128):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype,tol", [(np.complex64, 1e-4), (np.complex128, 1e-12)])
@pytest.mark.parametrize("conj", [True, False])
@pytest.mark.parametrize("N,Lz", [(1, 1), (13, 300), (300, 1025)])
def test_cauchy_cuda(rng, dtype, tol, conj, N, Lz):
    cp = cupy()
    v, w = crandn(rng, 3, N, dtype=dtype), crandn(rng, 3, N, dtype=dtype)
    w.real = -np.abs(w.real)
    z = np.exp(1j * rng.standard_normal(Lz)).astype(dtype)
    ref = R.cauchy(v, z, w, conj)
    got = s4.cauchy(cp.asarray(v), cp.asarray(z), cp.asarray(w), conj=conj)
    assert isinstance(got, cp.ndarray) and got.dtype == dtype
    assert rel_err(got, ref) < tol
    g = crandn(rng, 3, Lz, dtype=dtype)
    dv, dw = s4.cauchy_backward(cp.asarray(v), cp.asarray(z), cp.asarray(w), cp.asarray(g), conj=conj)
    rdv, rdw = R.cauchy_backward(v, z, w, g, conj)
    assert rel_err(dv, rdv) < tol and rel_err(dw, rdw) < tol


@pytest.mark.parametrize("L", [1, 33, 5000])
def test_vandermonde_and_kernel_diag_cuda(rng, L):
    cp = cupy()
    v, x = crandn(rng, 2, 7), crandn(rng, 2, 7) * 0.01
    x.real = -np.abs(x.real)
    for conj in (True, False):
        ref = R.vandermonde(v, x, L, conj)
        assert rel_err(s4.vandermonde(cp.asarray(v), cp.asarray(x), L, conj=conj), ref) < 1e-12
        got32 = s4.vandermonde(cp.asarray(v.astype(np.complex64)), cp.asarray(x.astype(np.complex64)), L, conj=conj)
        assert rel_err(got32, R.vandermonde(v.astype(np.complex64), x.astype(np.complex64), L, conj)) < 2e-5
        g = rng.standard_normal((2, L)) if conj else crandn(rng, 2, L)
        dv, dx = s4.vandermonde_backward(cp.asarray(v), cp.asarray(x), cp.asarray(g), conj=conj)
        rdv, rdx = R.vandermonde_backward(v, x, L, g, conj)
        assert rel_err(dv, rdv) < 1e-11 and rel_err(dx, rdx) < 1e-11
    Lambda, B = R.s4d_lin(16, 3)
    C = crandn(rng, 2, 3, 16)
    dt = np.array([1e-3, 1e-2, 1e-1])
    for method in ("zoh", "bilinear"):
        ref = R.kernel_diag(Lambda, B, C, dt, L, method)
        got = s4.kernel_diag(cp.asarray(Lambda), cp.asarray(B), cp.asarray(C), cp.asarray(dt), L, method)
        assert got.shape == (2, 3, L) and rel_err(got, ref) < 1e-10
        gK = rng.standard_normal((2, 3, L))
        want = s4.kernel_diag_backward(Lambda, B, C, dt, gK, method)  # CPU (checked against the reference)
        got = s4.kernel_diag_backward(cp.asarray(Lambda), cp.asarray(B), cp.asarray(C), cp.asarray(dt),
                                      cp.asarray(gK), method)
        for a, b in zip(got, want):
            assert a.shape == b.shape and rel_err(a, b) < 1e-11


@pytest.mark.parametrize("init", ["legs", "random"])
@pytest.mark.parametrize("L", [1, 2, 17, 1024, 16384])
def test_kernel_dplr_cuda(rng, init, L):
    cp = cupy()
    H, N = 2, 16
    Lambda, P, B = R.hippo_legs(N, H) if init == "legs" else R.random_dplr(rng, H, N)
    C = crandn(rng, H, N)
    dt = np.array([1e-2, 1e-1])
    Ct = R.ctilde(Lambda, P, B, C, dt, L)
    ref = R.kernel_dplr(Lambda, P, B, Ct, dt, L)
    got = s4.kernel_dplr(*(cp.asarray(a) for a in (Lambda, P, B, Ct, dt)), L)
    assert isinstance(got, cp.ndarray) and got.dtype == np.float64 and got.shape == (H, L)
    assert rel_err(got, ref) < 1e-10
    got32 = s4.kernel_dplr(*(cp.asarray(a.astype(np.complex64)) for a in (Lambda, P, B, Ct)), cp.asarray(dt), L)
    assert got32.dtype == np.float32
    assert rel_err(got32, ref) < (3e-5 if init == "legs" else 1e-4)


def test_kernel_dplr_cuda_rank2_channels(rng):
    cp = cupy()
    H, N, L = 3, 8, 100
    Lambda, P, B = R.random_dplr(rng, H, N, 2)
    Ct = crandn(rng, 2, H, N)
    ref = R.kernel_dplr(Lambda, P, B, Ct, np.full(H, 0.05), L)
    got = s4.kernel_dplr(*(cp.asarray(a) for a in (Lambda, P, B, Ct)), 0.05, L)
    assert got.shape == (2, H, L) and rel_err(got, ref) < 1e-10
    with pytest.raises(ValueError, match="CUDA"):
        s4.kernel_dplr(*(cp.asarray(a) for a in (Lambda, P, B)), cp.asarray(crandn(rng, 5, H, N)), 0.05, L)
    # the backward on CuPy runs the same steps as on the CPU (checked there against the reference)
    g = rng.standard_normal((2, H, L))
    want = s4.kernel_dplr_backward(Lambda, P, B, Ct, np.full(H, 0.05), g)
    got = s4.kernel_dplr_backward(*(cp.asarray(a) for a in (Lambda, P, B, Ct)), cp.asarray(np.full(H, 0.05)),
                                  cp.asarray(g))
    for a, b in zip(got, want):
        assert isinstance(a, cp.ndarray) and a.shape == b.shape and rel_err(a, b) < 1e-10


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("L,Lk", [(1, 1), (17, 5), (100, 100), (4096, 4096)])
def test_fftconv_cuda(rng, bidirectional, L, Lk):
    cp = cupy()
    Bn, H = 2, 3
    u = rng.standard_normal((Bn, H, L))
    K = rng.standard_normal((2, H, Lk) if bidirectional else (H, Lk)) / np.sqrt(Lk)
    D = rng.standard_normal(H)
    ref = R.fftconv(u, K, D, bidirectional)
    y = s4.fftconv(cp.asarray(u), cp.asarray(K), cp.asarray(D), bidirectional=bidirectional)
    assert isinstance(y, cp.ndarray) and rel_err(y, ref) < 1e-12
    y32 = s4.fftconv(*(cp.asarray(a.astype(np.float32)) for a in (u, K, D)), bidirectional=bidirectional)
    assert y32.dtype == np.float32 and rel_err(y32, ref) < 1e-5
    dy = rng.standard_normal(u.shape)
    got = s4.fftconv_backward(*(cp.asarray(a) for a in (u, K, D, dy)), bidirectional=bidirectional)
    want = R.fftconv_backward(u, K, D, dy, bidirectional)
    for a, b in zip(got, want):
        assert np.abs(cp.asnumpy(a) - b).max() < 1e-11 * max(np.abs(b).max(), 1)


def test_rtf_and_fft_cuda(rng):
    cp = cupy()
    a = rng.standard_normal((3, 2)) * 0.2
    b = rng.standard_normal((3, 2))
    h0 = rng.standard_normal(3)
    ref = R.rtf_kernel(a, b, h0, 101)
    assert rel_err(s4.rtf_kernel(cp.asarray(a), cp.asarray(b), cp.asarray(h0), 101), ref) < 1e-12
    x = rng.standard_normal((2, 100))
    assert rel_err(s4.rfft(cp.asarray(x)), np.fft.rfft(x)) < 1e-12
    assert rel_err(s4.irfft(s4.rfft(cp.asarray(x)), 100), x) < 1e-12


def test_cuda_errors(rng):
    cp = cupy()
    u = rng.standard_normal((2, 3, 10))
    with pytest.raises(ValueError, match="CPU/GPU mix"):
        s4.fftconv(cp.asarray(u), rng.standard_normal((3, 4)))
    with pytest.raises(TypeError, match="NumPy"):
        s4.ctilde(*(cp.asarray(a) for a in R.random_dplr(rng, 2, 4)), cp.asarray(crandn(rng, 2, 4)), 0.1, 8)
    Lambda, P, B = R.random_dplr(rng, 2, 4)
    with pytest.raises(ValueError, match="Re\\(Lambda\\)"):
        s4.kernel_dplr(cp.asarray(Lambda + 3), cp.asarray(P), cp.asarray(B), cp.asarray(B), 0.1, 8)
