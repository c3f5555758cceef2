"""fastcore.s4 on the CPU against the complex128 references (fastcore.reference.s4).

Tolerances (relative to max|K| or max|y| unless stated), from notes/s4.md §9:
* complex128 / float64 paths: 1e-10 (the kernels do O(N) sums of terms bounded by the result's
  scale plus an FFT; measured errors are ~1e-14, the margin covers LegS conditioning).
* complex64 S4 kernels: 3e-5 (LegS) / 1e-4 (random DPLR, long L); S4D: 2e-5 once the phase is
  kept in float64 (here it is).
* float32 FFT convolution: 1e-5 (measured ~2e-7; log2(n) rounding steps of 6e-8).
* complex64 Cauchy: 1e-4 relative to the row's max|y| (N terms, each with one rounded division).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcore
from fastcore import s4
from fastcore.reference import s4 as R


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def crandn(rng, *shape, dtype=np.complex128):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


# ---------------------------------------------------------------------------------------------
# FFT
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 7, 8, 16, 17, 31, 64, 97, 128, 256, 1000, 1024, 2048, 4096, 8192, 12289])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rfft_irfft_match_numpy(rng, m, dtype):
    # 11 rows: power-of-two lengths run 8 (float32) / 4 (float64) rows as the SIMD lanes of one
    # batched FFT and the rest one at a time; every row must have the one-row bits either way
    x = rng.standard_normal((11, m)).astype(dtype)
    X = s4.rfft(x)
    ref = np.fft.rfft(x.astype(np.float64))
    # float64: ~log2(m) u; float32 the same in u32 (Bluestein adds two more transforms)
    tol = 2e-14 if dtype == np.float64 else 2e-6
    assert X.dtype == (np.complex64 if dtype == np.float32 else np.complex128)
    assert rel_err(X, ref) < tol
    # a real signal's DC (and even-length Nyquist) bins are real: exactly, as NumPy's
    assert not X[:, 0].imag.any() and (m % 2 or not X[:, -1].imag.any())
    y = s4.irfft(X, m)
    assert y.dtype == dtype
    assert rel_err(y, np.fft.irfft(X.astype(np.complex128), m)) < tol
    assert rel_err(y, x) < tol
    for r in (0, 3, 7, 8, 10):
        assert np.array_equal(s4.rfft(x[r:r + 1]), X[r:r + 1])
        assert np.array_equal(s4.irfft(X[r:r + 1], m), y[r:r + 1])


def test_irfft_ignores_imaginary_dc_and_nyquist(rng):
    X = crandn(rng, 9, 9)
    np.testing.assert_allclose(s4.irfft(X, 16), np.fft.irfft(X, 16), atol=1e-14)
    np.testing.assert_allclose(s4.irfft(X, 17), np.fft.irfft(X, 17), atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Cauchy
# ---------------------------------------------------------------------------------------------

def cauchy_loop(v, z, w, conj):
    """The double loop of notes §9.4, complex128."""
    out = np.zeros(v.shape[:-1] + (len(z),), np.complex128)
    for idx in np.ndindex(v.shape[:-1]):
        for j, zj in enumerate(z):
            s = 0j
            for vi, wi in zip(v[idx], w[idx]):
                s += vi / (zj - wi)
                if conj:
                    s += np.conj(vi) / (zj - np.conj(wi))
            out[idx + (j,)] = s
    return out


@pytest.mark.parametrize("conj", [True, False])
@pytest.mark.parametrize("N,Lz", [(1, 1), (3, 17), (8, 5), (13, 300)])
def test_cauchy_double_loop(rng, conj, N, Lz):
    v, w = crandn(rng, 2, 3, N), crandn(rng, 2, 3, N)
    w.real = -np.abs(w.real)
    z = np.exp(1j * rng.standard_normal(Lz))
    ref = cauchy_loop(v, z, w, conj)
    got = s4.cauchy(v, z, w, conj=conj)
    assert got.shape == (2, 3, Lz) and got.dtype == np.complex128
    assert rel_err(got, ref) < 1e-12
    got32 = s4.cauchy(v.astype(np.complex64), z.astype(np.complex64), w.astype(np.complex64), conj=conj)
    assert got32.dtype == np.complex64
    assert rel_err(got32, ref) < 1e-4


def test_cauchy_s4_nodes_near_resonance(rng):
    # imaginary nodes z = 2i tan(pi k/L), w = dt*Lambda with tiny real parts: |z - w| ~ dt Re Lambda
    N, L = 32, 2048
    dt = 1e-3
    Lambda = -0.5 + 1j * np.pi * np.arange(N)
    t = np.tan(np.pi * np.arange(L // 2) / L)
    z = 2j * t
    w = dt * Lambda[None]
    v = crandn(rng, 1, N)
    ref = R.cauchy(v, z, w)
    got = s4.cauchy(v.astype(np.complex64), z.astype(np.complex64), w.astype(np.complex64))
    # 10x the plain complex64 tolerance near resonance (notes §9)
    assert rel_err(got, ref) < 1e-3
    assert rel_err(s4.cauchy(v, z, w), ref) < 1e-12


@pytest.mark.parametrize("conj", [True, False])
def test_cauchy_backward_finite_differences(rng, conj):
    N, Lz = 5, 7
    v, w, z = crandn(rng, 2, N), crandn(rng, 2, N), crandn(rng, Lz)
    w.real = -np.abs(w.real) - 0.5
    G = crandn(rng, 2, Lz)
    dv, dw = s4.cauchy_backward(v, z, w, G, conj=conj)
    rdv, rdw = R.cauchy_backward(v, z, w, G, conj=conj)
    assert rel_err(dv, rdv) < 1e-12 and rel_err(dw, rdw) < 1e-12

    def loss(v_, w_):  # L = Re sum conj(G) y  ->  dL/dRe y + i dL/dIm y = G
        return float((np.conj(G) * s4.cauchy(v_, z, w_, conj=conj)).real.sum())

    e = 1e-6
    dv_r, dw_r = crandn(rng, 2, N), crandn(rng, 2, N)
    fd = (loss(v + e * dv_r, w + e * dw_r) - loss(v - e * dv_r, w - e * dw_r)) / (2 * e)
    an = float((np.conj(dv) * dv_r).real.sum() + (np.conj(dw) * dw_r).real.sum())
    assert abs(fd - an) < 1e-7 * max(1.0, abs(an))
    dv32, dw32 = s4.cauchy_backward(*(a.astype(np.complex64) for a in (v, z, w, G)), conj=conj)
    assert rel_err(dv32, rdv) < 1e-4 and rel_err(dw32, rdw) < 1e-4


def test_cauchy_empty_and_noncontiguous(rng):
    v = crandn(rng, 3, 0)
    assert np.all(s4.cauchy(v, crandn(rng, 4), v) == 0)
    assert s4.cauchy(crandn(rng, 0, 4), crandn(rng, 4), crandn(rng, 0, 4)).shape == (0, 4)
    big = crandn(rng, 4, 10)
    v, w, z = big[:, ::2], big[:, 1::2] - 3, crandn(rng, 9)[::2]
    assert rel_err(s4.cauchy(v, z, w), R.cauchy(v, z, w)) < 1e-12


# ---------------------------------------------------------------------------------------------
# Vandermonde / S4D
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("conj", [True, False])
@pytest.mark.parametrize("L", [1, 3, 64, 65, 2049, 5000])
def test_vandermonde_reference(rng, conj, L):
    v, x = crandn(rng, 2, 5), crandn(rng, 2, 5) * 0.01
    x.real = -np.abs(x.real)
    ref = R.vandermonde(v, x, L, conj=conj)
    got = s4.vandermonde(v, x, L, conj=conj)
    assert got.shape == (2, L)
    assert rel_err(got, ref) < 1e-12
    got32 = s4.vandermonde(v.astype(np.complex64), x.astype(np.complex64), L, conj=conj)
    ref32 = R.vandermonde(v.astype(np.complex64), x.astype(np.complex64), L, conj=conj)  # same inputs
    assert got32.dtype == (np.float32 if conj else np.complex64)
    assert rel_err(got32, ref32) < 2e-6


@pytest.mark.parametrize("conj", [True, False])
def test_vandermonde_backward_finite_differences(rng, conj):
    N, L = 4, 37
    v, x = crandn(rng, 3, N), crandn(rng, 3, N) * 0.1
    x.real = -np.abs(x.real)
    g = rng.standard_normal((3, L)) if conj else crandn(rng, 3, L)
    dv, dx = s4.vandermonde_backward(v, x, g, conj=conj)
    rdv, rdx = R.vandermonde_backward(v, x, L, g, conj=conj)
    assert rel_err(dv, rdv) < 1e-12 and rel_err(dx, rdx) < 1e-12

    def loss(v_, x_):
        y = s4.vandermonde(v_, x_, L, conj=conj)
        return float((np.conj(g) * y).real.sum())

    e = 1e-6
    pv, px = crandn(rng, 3, N), crandn(rng, 3, N)
    fd = (loss(v + e * pv, x + e * px) - loss(v - e * pv, x - e * px)) / (2 * e)
    an = float((np.conj(dv) * pv).real.sum() + (np.conj(dx) * px).real.sum())
    assert abs(fd - an) < 1e-6 * max(1.0, abs(an))


def _diag_system(rng, init, H, N):
    if init == "lin":
        Lambda, B = R.s4d_lin(N, H)
    elif init == "legs":
        Lambda, _, B = R.hippo_legs(N, H)
    else:
        Lambda, _, B = R.random_dplr(rng, H, N)
    return Lambda, B, crandn(rng, 2, H, N)


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", ["lin", "legs", "random"])
@pytest.mark.parametrize("L", [1, 2, 3, 17, 1024])
def test_kernel_diag_vs_power_oracle(rng, method, init, L):
    H, N = 3, 16
    Lambda, B, C = _diag_system(rng, init, H, N)
    dt = np.array([1e-3, 1e-2, 1e-1])
    Ab, Bb = R.discretize(Lambda, None, B, dt, method)
    ref = R.kernel_power(Ab, Bb, C, L)
    K = s4.kernel_diag(Lambda, B, C, dt, L, method)
    assert K.shape == (2, H, L) and K.dtype == np.float64
    assert rel_err(K, ref) < 1e-10
    K32 = s4.kernel_diag(*(a.astype(np.complex64) for a in (Lambda, B, C)), dt, L, method)
    ref32 = R.kernel_power(*R.discretize(Lambda.astype(np.complex64), None, B.astype(np.complex64), dt, method),
                           C.astype(np.complex64), L)
    assert K32.dtype == np.float32
    assert rel_err(K32, ref32) < 2e-5


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_kernel_diag_long(rng, method):
    H, N, L = 2, 32, 16384
    Lambda, B = R.s4d_lin(N, H)
    C = crandn(rng, H, N)
    dt = np.array([1e-3, 1e-1])
    ref = R.kernel_diag(Lambda, B, C, dt, L, method)
    assert rel_err(s4.kernel_diag(Lambda, B, C, dt, L, method), ref) < 1e-10
    K32 = s4.kernel_diag(Lambda.astype(np.complex64), B.astype(np.complex64), C.astype(np.complex64), dt, L, method)
    ref32 = R.kernel_diag(Lambda.astype(np.complex64), B.astype(np.complex64), C.astype(np.complex64), dt, L, method)
    assert rel_err(K32, ref32) < 2e-5


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", ["lin", "legs", "random"])
@pytest.mark.parametrize("channels", [False, True])
def test_kernel_diag_backward_vs_reference_and_finite_differences(rng, method, init, channels):
    H, N, L = 3, 8, 65
    Lambda, B, C = _diag_system(rng, init, H, N)
    C = C if channels else C[0]
    dt = np.array([1e-3, 1e-2, 1e-1])
    g = rng.standard_normal(C.shape[:-1] + (L,))
    dl, dB, dC, ddt = s4.kernel_diag_backward(Lambda, B, C, dt, g, method)
    assert dl.shape == (H, N) and dB.shape == (H, N) and dC.shape == C.shape and ddt.shape == (H,)
    assert dl.dtype == dB.dtype == dC.dtype == np.complex128 and ddt.dtype == np.float64
    rl, rB, rC, rdt = R.kernel_diag_backward(Lambda, B, C, dt, g, method)
    for got, want in ((dl, rl), (dB, rB), (dC, rC), (ddt, rdt)):
        assert rel_err(got, want) < 1e-9   # the reference's zoh dLambda cancels at |dt Lambda| ~ 1e-3

    def loss(lam, b, c, d):
        return float((s4.kernel_diag(lam, b, c, d, L, method) * g).sum())

    e = 1e-7   # one central difference along a random direction of every input at once
    pl, pB, pC = crandn(rng, H, N), crandn(rng, H, N), crandn(rng, *C.shape)
    pd = rng.standard_normal(H) * dt
    fd = (loss(Lambda + e * pl, B + e * pB, C + e * pC, dt + e * pd)
          - loss(Lambda - e * pl, B - e * pB, C - e * pC, dt - e * pd)) / (2 * e)
    an = float(sum((np.conj(a) * p).real.sum() for a, p in ((dl, pl), (dB, pB), (dC, pC))) + (ddt * pd).sum())
    assert abs(fd - an) < 1e-6 * max(1.0, abs(an))


def _psi_exact(w, terms=60):
    """psi(w) = sum_m (m+1)/(m+2)! w^m in exact rational arithmetic (w's float parts are exact
    binary fractions), rounded once: the oracle for the zoh Lambda-derivative's factor."""
    from fractions import Fraction
    a, b = Fraction(w.real), Fraction(w.imag)
    pr, pi = Fraction(1), Fraction(0)  # w^m
    sr, si = Fraction(0), Fraction(0)
    fact = Fraction(2)                 # (m+2)!
    for m in range(terms):
        c = Fraction(m + 1) / fact
        sr, si = sr + c * pr, si + c * pi
        pr, pi = pr * a - pi * b, pr * b + pi * a
        fact *= m + 3
    return complex(float(sr), float(si))


def test_zoh_psi_matches_exact_series(rng):
    # The factor of d/dLambda (e^{dt Lambda} - 1)/Lambda = dt^2 psi(dt Lambda): Taylor series below
    # |w| = 2 (the closed form cancels as w -> 0: at |w| = 1e-9 it would keep no digit), closed
    # form above (its complex exp and products: measured up to ~5 ulp); bound 10 ulp of complex128.
    mags = np.concatenate([10.0 ** rng.uniform(-9, 0, 24), rng.uniform(1.8, 2.2, 24), rng.uniform(2.2, 6.0, 12)])
    w = mags * np.exp(1j * rng.uniform(np.pi / 2, 3 * np.pi / 2, mags.size))  # Re w <= 0 (stable)
    got = s4._zoh_psi(np, w)
    want = np.array([_psi_exact(v) for v in w])
    assert np.max(np.abs(got - want) / np.abs(want)) < 2.2e-15


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_kernel_diag_backward_scalar_dt_and_single_precision(rng, method):
    H, N, L = 2, 6, 33
    Lambda, B = R.s4d_lin(N, H)
    C = crandn(rng, H, N)
    g = rng.standard_normal((H, L))
    # a scalar dt gives a float: the sum of the per-channel gradients of the same dt as an array
    _, _, _, d_scalar = s4.kernel_diag_backward(Lambda, B, C, 0.05, g, method)
    _, _, _, d_array = s4.kernel_diag_backward(Lambda, B, C, np.full(H, 0.05), g, method)
    assert isinstance(d_scalar, float) and abs(d_scalar - d_array.sum()) <= 1e-12 * np.abs(d_array).sum()
    # complex64 parameters and float32 dt/grad: float32 results within float32 accuracy of complex128
    dt = np.array([1e-3, 1e-1], np.float32)
    ref = s4.kernel_diag_backward(Lambda, B, C, dt.astype(np.float64), g, method)
    got = s4.kernel_diag_backward(*(a.astype(np.complex64) for a in (Lambda, B, C)), dt, g.astype(np.float32), method)
    for a, b in zip(got, ref):
        assert a.dtype == (np.float32 if b.dtype.kind == "f" else np.complex64)
        assert rel_err(a, b) < 2e-5


def test_kernel_diag_backward_bad_input(rng):
    Lambda, B = R.s4d_lin(4, 2)
    C = crandn(rng, 2, 4)
    g = rng.standard_normal((2, 9))
    with pytest.raises(ValueError, match="grad"):
        s4.kernel_diag_backward(Lambda, B, C, 0.1, g[:1])
    with pytest.raises(TypeError, match="grad"):
        s4.kernel_diag_backward(Lambda, B, C, 0.1, g.astype(np.float32))   # complex128 params: float64 grad
    # a non-finite upstream gradient propagates (as in autograd, for loss scalers), not refused
    bad = s4.kernel_diag_backward(Lambda, B, C, 0.1, np.where(g > 1, np.nan, g))
    assert all(np.isnan(np.asarray(a)).any() for a in bad[:3])
    with pytest.raises(ValueError, match="dt"):
        s4.kernel_diag_backward(Lambda, B, C, -0.1, g)
    with pytest.raises(ValueError, match="method"):
        s4.kernel_diag_backward(Lambda, B, C, 0.1, g, method="dss")


# ---------------------------------------------------------------------------------------------
# S4 (DPLR) kernels
# ---------------------------------------------------------------------------------------------

def _dplr_system(rng, init, H, N, rank=1):
    if init == "legs":
        Lambda, P, B = R.hippo_legs(N, H)
    elif init == "lin":
        Lambda, B = R.s4d_lin(N, H)
        P = crandn(rng, rank, H, N) * 0.1
    else:
        Lambda, P, B = R.random_dplr(rng, H, N, rank)
    return Lambda, P, B


@pytest.mark.parametrize("init", ["legs", "lin", "random"])
@pytest.mark.parametrize("L", [1, 2, 3, 17, 1024])
def test_kernel_dplr_vs_dense_oracle(rng, init, L):
    H, N = 3, 8
    Lambda, P, B = _dplr_system(rng, init, H, N)
    C = crandn(rng, H, N)
    dt = np.array([1e-3, 1e-2, 1e-1])
    Ab, Bb = R.discretize(Lambda, P, B, dt)
    ref = R.kernel_power(Ab, Bb, C, L)
    assert np.abs(ref.imag if np.iscomplexobj(ref) else 0).max() == 0
    Ct = s4.ctilde(Lambda, P, B, C, dt, L)
    K = s4.kernel_dplr(Lambda, P, B, Ct, dt, L)
    assert K.shape == (H, L) and K.dtype == np.float64
    assert rel_err(K, ref) < 1e-10
    K32 = s4.kernel_dplr(*(a.astype(np.complex64) for a in (Lambda, P, B, Ct)), dt.astype(np.float32), L)
    assert K32.dtype == np.float32
    assert rel_err(K32, ref) < (3e-5 if init == "legs" else 1e-4)


@pytest.mark.parametrize("rank", [0, 2, 3])
def test_kernel_dplr_rank_and_channels(rng, rank):
    H, N, L = 2, 6, 40
    Lambda, P, B = R.random_dplr(rng, H, N, max(rank, 1))
    P = P[:rank]
    C = crandn(rng, 3, H, N)
    dt = 0.05
    Ab, Bb = R.discretize(Lambda, P if rank else None, B, np.full(H, dt))
    ref = R.kernel_power(Ab, Bb, C, L)
    Ct = s4.ctilde(Lambda, P if rank else None, B, C, dt, L)
    K = s4.kernel_dplr(Lambda, P, B, Ct, dt, L)
    assert K.shape == (3, H, L)
    assert rel_err(K, ref) < 1e-10
    assert rel_err(K, R.kernel_dplr(Lambda, P, B, Ct, np.full(H, dt), L)) < 1e-11


def test_kernel_dplr_long_legs(rng):
    # L = 16384 with few channels; complex64 with fp64 nodes: <= 5.3e-6 measured (notes §9)
    H, N, L = 2, 32, 16384
    Lambda, P, B = R.hippo_legs(N, H)
    C = crandn(rng, H, N)
    dt = np.array([1e-2, 1e-1])
    Ct = R.ctilde(Lambda, P, B, C, dt, L)
    ref = R.kernel_dplr(Lambda, P, B, Ct, dt, L)
    assert rel_err(s4.kernel_dplr(Lambda, P, B, Ct, dt, L), ref) < 1e-10
    K32 = s4.kernel_dplr(*(a.astype(np.complex64) for a in (Lambda, P, B, Ct)), dt, L)
    assert rel_err(K32, ref) < 3e-5


@pytest.mark.parametrize("init", ["legs", "lin", "random"])
@pytest.mark.parametrize("rank, channels, L", [(1, 0, 1), (1, 0, 2), (1, 2, 17), (2, 0, 64), (0, 3, 33), (3, 1, 20)])
def test_kernel_dplr_backward_vs_reference_and_finite_differences(rng, init, rank, channels, L):
    H, N = 2, 6
    Lambda, P, B = _dplr_system(rng, init, H, N, max(rank, 1))
    P = P[:rank] if P.ndim == 3 else (P[None] if rank else P[None][:0])
    Ct = crandn(rng, channels, H, N) if channels else crandn(rng, H, N)
    dt = np.array([1e-3, 1e-1])
    g = rng.standard_normal(Ct.shape[:-1] + (L,))
    got = s4.kernel_dplr_backward(Lambda, P, B, Ct, dt, g)
    want = R.kernel_dplr_backward(Lambda, P, B, Ct, dt, g)
    shapes = (Lambda.shape, P.shape, B.shape, Ct.shape, (H,))
    for a, b, shape in zip(got[:4], want[:4], shapes):
        assert a.shape == shape
        if a.size:
            assert rel_err(a, b) < 1e-10
    # ddt sums terms of size ~|dLambda| |Lambda| / dt that cancel (exactly, for L = 1: K_0 does
    # not depend on dt), so its error is measured against that scale
    scale = max(np.abs(want[4]).max(), np.abs(want[0]).max() * np.abs(Lambda).max() / dt.min())
    assert got[4].shape == (H,) and np.abs(got[4] - want[4]).max() < 1e-10 * scale

    def loss(lam, p, b, c, d):
        return float((s4.kernel_dplr(lam, p, b, c, d, L) * g).sum())

    e = 1e-7   # one central difference along a random direction of every input at once
    dirs = [crandn(rng, *a.shape) for a in (Lambda, P, B, Ct)] + [rng.standard_normal(H) * dt]
    plus = [a + e * d for a, d in zip((Lambda, P, B, Ct, dt), dirs)]
    minus = [a - e * d for a, d in zip((Lambda, P, B, Ct, dt), dirs)]
    fd = (loss(*plus) - loss(*minus)) / (2 * e)
    an = sum(float((np.conj(a) * d).real.sum()) for a, d in zip(got, dirs))
    assert abs(fd - an) < 1e-6 * max(1.0, abs(an))


@pytest.mark.parametrize("rank, channels, L", [(0, 1, 9), (1, 1, 64), (1, 3, 17), (2, 2, 40), (3, 1, 33)])
def test_kernel_dplr_backward_fused_kernel_matches_array_path(rng, rank, channels, L):
    # The CPU runs one fused compiled pass (Cauchy sums, Woodbury's adjoint, Cauchy backward per
    # node); CuPy runs the step-by-step array path (compiled cauchy / cauchy_backward and batched
    # solves). Both from the same dkhat, on NumPy here.
    H, N = 3, 7
    Lambda, P, B = R.random_dplr(rng, H, N, max(rank, 1))
    P = P[:rank]
    Ct = crandn(rng, channels, H, N)
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), H))
    nreg = (L + 1) // 2
    dkhat = crandn(rng, channels, H, nreg)
    np_ = (1 + rank) * (channels + rank)
    dv = np.empty((np_, H, N), np.complex128)
    dw = np.empty((H, N), np.complex128)
    fastcore._backend.cpu().s4.kernel_dplr_backward(Lambda, P, B, Ct, dt, dkhat, L, dv, dw)
    t = np.tan(np.pi * np.arange(nreg) / L)
    bside = np.concatenate([B[None], P], 0)
    cside = np.concatenate([Ct, P.conj()], 0)
    rdv, rdw = s4._dplr_spectrum_backward(np, Lambda, bside, cside, dt[:, None], 2j * t, dkhat, channels, rank)
    assert rel_err(dv, rdv.reshape(np_, H, N)) < 1e-12 and rel_err(dw, rdw) < 1e-12


def test_kernel_dplr_backward_shapes_dtypes_and_bad_input(rng):
    H, N, L = 2, 5, 24
    Lambda, P, B = R.random_dplr(rng, H, N, 1)
    Ct = crandn(rng, H, N)
    g = rng.standard_normal((H, L))
    # rank-1 P given as (H, N) and P=None (rank 0) come back in the caller's form
    d2 = s4.kernel_dplr_backward(Lambda, P[0], B, Ct, 0.05, g)
    d3 = s4.kernel_dplr_backward(Lambda, P, B, Ct, 0.05, g)
    assert d2[1].shape == (H, N) and np.array_equal(d2[1], d3[1][0])
    assert isinstance(d3[4], float)
    _, dP0, *_ = s4.kernel_dplr_backward(Lambda, None, B, Ct, np.full(H, 0.05), g)
    assert dP0 is None
    # single precision: complex64 parameters, float32 dt and grad, within float32 accuracy
    dt = np.array([1e-2, 1e-1], np.float32)
    ref = s4.kernel_dplr_backward(Lambda, P, B, Ct, dt.astype(np.float64), g)
    got = s4.kernel_dplr_backward(*(a.astype(np.complex64) for a in (Lambda, P, B, Ct)), dt, g.astype(np.float32))
    for a, b in zip(got, ref):
        assert a.dtype == (np.float32 if b.dtype.kind == "f" else np.complex64)
        assert rel_err(a, b) < 1e-4
    with pytest.raises(ValueError, match="grad"):
        s4.kernel_dplr_backward(Lambda, P, B, Ct, 0.05, g[None].repeat(2, 0))
    with pytest.raises(TypeError, match="grad"):
        s4.kernel_dplr_backward(Lambda, P, B, Ct, 0.05, g.astype(np.float32))
    # a non-finite upstream gradient propagates (as in autograd, for loss scalers), not refused
    bad = s4.kernel_dplr_backward(Lambda, P, B, Ct, 0.05, np.full_like(g, np.inf))
    assert not np.isfinite(np.asarray(bad[0])).all()
    with pytest.raises(ValueError, match="Lambda"):
        s4.kernel_dplr_backward(-Lambda, P, B, Ct, 0.05, g)


def test_ctilde_double_length(rng):
    H, N, L = 2, 6, 16
    Lambda, P, B = R.random_dplr(rng, H, N)
    C = crandn(rng, H, N)
    dt = np.array([1e-2, 1e-1])
    Ct = s4.ctilde(Lambda, P, B, C, dt, L)
    np.testing.assert_allclose(s4.double_length(Lambda, P, B, Ct, dt, L), s4.ctilde(Lambda, P, B, C, dt, 2 * L),
                               rtol=1e-12, atol=1e-12)
    # the doubled Ct gives the true 2L kernel
    Ab, Bb = s4.discretize(Lambda, P, B, dt)
    ref = R.kernel_power(Ab, Bb, C, 2 * L)
    assert rel_err(s4.kernel_dplr(Lambda, P, B, s4.double_length(Lambda, P, B, Ct, dt, L), dt, 2 * L), ref) < 1e-10
    # diagonal case
    Ctd = s4.ctilde(Lambda, None, B, C, dt, L)
    np.testing.assert_allclose(s4.double_length(Lambda, None, B, Ctd, dt, L), s4.ctilde(Lambda, None, B, C, dt, 2 * L),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# FFT convolution
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("L,Lk", [(1, 1), (2, 1), (7, 7), (17, 5), (33, 64), (100, 100), (129, 31)])
@pytest.mark.parametrize("use_d", [True, False])
def test_fftconv_direct(rng, bidirectional, L, Lk, use_d):
    Bn, H = 2, 3
    u = rng.standard_normal((Bn, H, L))
    K = rng.standard_normal((2, H, Lk) if bidirectional else (H, Lk))
    D = rng.standard_normal(H) if use_d else None
    ref = R.fftconv_direct(u, K, D, bidirectional)
    scale = max(np.abs(ref).max(), 1.0)
    y = s4.fftconv(u, K, D, bidirectional=bidirectional)
    assert y.dtype == np.float64 and y.shape == u.shape
    assert np.abs(y - ref).max() / scale < 1e-12
    y32 = s4.fftconv(u.astype(np.float32), K.astype(np.float32), None if D is None else D.astype(np.float32),
                     bidirectional=bidirectional)
    assert y32.dtype == np.float32
    assert np.abs(y32 - ref).max() / scale < 1e-5
    assert np.abs(R.fftconv(u, K, D, bidirectional) - ref).max() / scale < 1e-12


def test_fftconv_matches_scan(rng):
    # the convolution view with the generated kernel equals the recurrence with C (not Ct)
    H, N, L = 2, 6, 64
    Lambda, P, B = R.random_dplr(rng, H, N)
    C = crandn(rng, H, N)
    D = rng.standard_normal(H)
    dt = np.array([1e-2, 1e-1])
    u = rng.standard_normal((3, H, L))
    K = s4.kernel_dplr(Lambda, P, B, s4.ctilde(Lambda, P, B, C, dt, L), dt, L)
    Ab, Bb = s4.discretize(Lambda, P, B, dt)
    y_scan = s4.scan(Ab, Bb, C, u, D)
    assert rel_err(s4.fftconv(u, K, D), y_scan) < 1e-10
    # diagonal
    Kd = s4.kernel_diag(Lambda, B, C, dt, L, "zoh")
    Ad, Bd = s4.discretize(Lambda, None, B, dt, method="zoh")
    assert rel_err(s4.fftconv(u, Kd, D), s4.scan(Ad, Bd, C, u, D)) < 1e-10


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("L,Lk", [(1, 1), (17, 5), (16, 40), (50, 50)])
def test_fftconv_backward(rng, bidirectional, L, Lk):
    Bn, H = 2, 3
    u = rng.standard_normal((Bn, H, L))
    K = rng.standard_normal((2, H, Lk) if bidirectional else (H, Lk))
    D = rng.standard_normal(H)
    dy = rng.standard_normal(u.shape)
    du, dK, dD = s4.fftconv_backward(u, K, D, dy, bidirectional=bidirectional)
    rdu, rdK, rdD = R.fftconv_backward(u, K, D, dy, bidirectional)
    assert dK.shape == K.shape
    for a, b in ((du, rdu), (dK, rdK), (dD, rdD)):
        assert np.abs(a - b).max() < 1e-11 * max(np.abs(b).max(), 1)
    # finite differences on the compiled forward (float64)
    e = 1e-6
    pu, pK, pD = rng.standard_normal(u.shape), rng.standard_normal(K.shape), rng.standard_normal(H)

    def loss(a, b, c):
        return float((s4.fftconv(a, b, c, bidirectional=bidirectional) * dy).sum())

    fd = (loss(u + e * pu, K + e * pK, D + e * pD) - loss(u - e * pu, K - e * pK, D - e * pD)) / (2 * e)
    an = float((du * pu).sum() + (dK * pK).sum() + (dD * pD).sum())
    assert abs(fd - an) < 1e-6 * max(1.0, abs(an))
    du0, dK0, dD0 = s4.fftconv_backward(u, K, None, dy, bidirectional=bidirectional)
    assert dD0 is None
    np.testing.assert_allclose(du0, du - D[:, None] * dy, atol=1e-11)
    d32 = s4.fftconv_backward(u.astype(np.float32), K.astype(np.float32), D.astype(np.float32),
                              dy.astype(np.float32), bidirectional=bidirectional)
    for a, b in zip(d32, (rdu, rdK, rdD)):
        assert a.dtype == np.float32
        assert np.abs(a - b).max() < 1e-5 * max(np.abs(b).max(), 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("L,Lk", [(100, 100), (37, 80), (1, 1)])
def test_fftconv_channel_lanes_have_the_one_channel_bits(rng, dtype, bidirectional, L, Lk):
    """fftconv and its backward run whole groups of 8 (float32) / 4 (float64) channels as SIMD
    lanes of one batched FFT, the leftover channels one at a time. H = 19 has both. Each channel's
    results must equal that channel run alone (H = 1: the one-channel path) bit for bit, and the
    reference to the dtype's tolerance."""
    Bn, H = 3, 19
    u = rng.standard_normal((Bn, H, L)).astype(dtype)
    K = rng.standard_normal((2, H, Lk) if bidirectional else (H, Lk)).astype(dtype)
    D = rng.standard_normal(H).astype(dtype)
    dy = rng.standard_normal(u.shape).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for d in (D, None):
        y = s4.fftconv(u, K, d, bidirectional=bidirectional)
        ref = R.fftconv(u.astype(np.float64), K.astype(np.float64), None if d is None else d.astype(np.float64),
                        bidirectional)
        assert np.abs(y - ref).max() / max(np.abs(ref).max(), 1) < tol
        du, dK, dD = s4.fftconv_backward(u, K, d, dy, bidirectional=bidirectional)
        for h in (0, 5, 7, 8, 15, 16, 18):
            Kh = K[:, h:h + 1] if bidirectional else K[h:h + 1]
            dh = None if d is None else d[h:h + 1]
            assert np.array_equal(s4.fftconv(u[:, h:h + 1], Kh, dh, bidirectional=bidirectional), y[:, h:h + 1])
            du1, dK1, dD1 = s4.fftconv_backward(u[:, h:h + 1], Kh, dh, dy[:, h:h + 1], bidirectional=bidirectional)
            assert np.array_equal(du1, du[:, h:h + 1])
            assert np.array_equal(dK1, dK[:, h:h + 1] if bidirectional else dK[h:h + 1])
            if d is not None:
                assert np.array_equal(dD1, dD[h:h + 1])
    rdu, rdK, rdD = R.fftconv_backward(*(a.astype(np.float64) for a in (u, K, D, dy)), bidirectional)
    du, dK, dD = s4.fftconv_backward(u, K, D, dy, bidirectional=bidirectional)
    for a, b in ((du, rdu), (dK, rdK), (dD, rdD)):
        assert np.abs(a - b).max() < tol * max(np.abs(b).max(), 1)


def test_fftconv_out_and_long(rng):
    u = rng.standard_normal((1, 2, 16384)).astype(np.float32)
    K = rng.standard_normal((2, 16384)).astype(np.float32) * np.exp(-np.arange(16384) / 2000).astype(np.float32)
    out = np.full(u.shape, np.nan, np.float32)
    y = s4.fftconv(u, K, out=out)
    assert y is out
    ref = R.fftconv(u, K)
    assert np.abs(y - ref).max() / np.abs(ref).max() < 1e-5


# ---------------------------------------------------------------------------------------------
# RTF
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("L", [2, 3, 17, 64, 1000])
def test_rtf_kernel(rng, L):
    H, N = 3, 1
    a = rng.standard_normal((H, N)) * 0.2
    a /= np.abs(a).sum(-1, keepdims=True) + 1.0  # l1-Montel: poles inside the unit disc
    b = rng.standard_normal((H, N))
    h0 = rng.standard_normal(H)
    ref = R.rtf_kernel(a, b, h0, L)
    k = s4.rtf_kernel(a, b, h0, L)
    assert rel_err(k, ref) < 1e-12
    k32 = s4.rtf_kernel(a.astype(np.float32), b.astype(np.float32), h0.astype(np.float32), L)
    assert k32.dtype == np.float32 and rel_err(k32, ref) < 1e-5


def test_rtf_is_periodised_impulse_response(rng):
    # with b taken literally the kernel is the L-periodised impulse response (notes §8)
    H, N, L = 2, 4, 64
    a = rng.standard_normal((H, N))
    a /= np.abs(a).sum(-1, keepdims=True) + 1.5
    b = rng.standard_normal((H, N))
    h0 = rng.standard_normal(H)
    T = 40 * L
    imp = np.zeros((H, T))
    for h in range(H):  # y_t = -sum a_i y_{t-i} + sum b_i x_{t-i}, x = delta
        for t in range(T):
            acc = b[h, t - 1] if 1 <= t <= N else 0.0
            for i in range(1, N + 1):
                if t - i >= 0:
                    acc -= a[h, i - 1] * imp[h, t - i]
            imp[h, t] = acc
    per = imp.reshape(H, -1, L).sum(1)
    per[:, 0] += h0
    assert rel_err(s4.rtf_kernel(a, b, h0, L), per) < 1e-10


# ---------------------------------------------------------------------------------------------
# Determinism, validation
# ---------------------------------------------------------------------------------------------

def test_bitwise_thread_invariance(rng, restore_threads):
    H, N, L = 5, 16, 3000
    Lambda, P, B = R.random_dplr(rng, H, N)
    Ct = crandn(rng, H, N)
    dt = np.full(H, 0.01)
    Hc = 13  # fftconv: one lane group of 8 channels and 5 channels one at a time
    u = rng.standard_normal((3, Hc, 777)).astype(np.float32)
    K = rng.standard_normal((2, Hc, 500)).astype(np.float32)
    D = rng.standard_normal(Hc).astype(np.float32)
    dy = rng.standard_normal(u.shape).astype(np.float32)
    v, w, z = crandn(rng, 40, N, dtype=np.complex64), crandn(rng, 40, N, dtype=np.complex64), \
        crandn(rng, 700, dtype=np.complex64)
    g = crandn(rng, 40, 700, dtype=np.complex64)
    xs = (-np.abs(w.real) * 0.01 + 1j * w.imag).astype(np.complex64)

    def run():
        return [s4.kernel_dplr(Lambda.astype(np.complex64), P.astype(np.complex64), B.astype(np.complex64),
                               Ct.astype(np.complex64), dt, L),
                s4.kernel_diag(Lambda, B, Ct, dt, 5000, "bilinear"),
                s4.fftconv(u, K, D, bidirectional=True), *s4.fftconv_backward(u, K, D, dy, bidirectional=True),
                s4.cauchy(v, z, w), *s4.cauchy_backward(v, z, w, g),
                *s4.vandermonde_backward(v, xs, g[:, :300].real.copy()),
                s4.rtf_kernel(K[0, :H, :3] * 0.1, K[1, :H, :3], D[:H], 999),
                s4.rfft(u[0, :, :512]), s4.irfft(s4.rfft(u[:, :, :256].astype(np.float64)), 256)]

    fastcore.set_num_threads(1)
    one = run()
    fastcore.set_num_threads(2)
    two = run()
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


def test_validation_errors(rng):
    H, N = 2, 4
    Lambda, P, B = R.random_dplr(rng, H, N)
    Ct = crandn(rng, H, N)
    dt = np.full(H, 0.1)
    with pytest.raises(ValueError, match="Re\\(Lambda\\) < 0"):
        s4.kernel_dplr(Lambda + 2.0, P, B, Ct, dt, 8)
    with pytest.raises(ValueError, match="dt"):
        s4.kernel_dplr(Lambda, P, B, Ct, np.array([0.1, -1.0]), 8)
    with pytest.raises(ValueError, match="dt"):
        s4.kernel_diag(Lambda, B, Ct, 0.0, 8)
    with pytest.raises(ValueError, match="L"):
        s4.kernel_dplr(Lambda, P, B, Ct, dt, 0)
    with pytest.raises(TypeError, match="L"):
        s4.kernel_dplr(Lambda, P, B, Ct, dt, 8.0)
    with pytest.raises(ValueError, match="B"):
        s4.kernel_dplr(Lambda, P, B[:, :3], Ct, dt, 8)
    with pytest.raises(TypeError, match="Ct"):
        s4.kernel_dplr(Lambda, P, B, Ct.astype(np.complex64), dt, 8)
    with pytest.raises(TypeError, match="Lambda"):
        s4.kernel_dplr(Lambda.real, P, B, Ct, dt, 8)
    with pytest.raises(ValueError, match="method"):
        s4.kernel_diag(Lambda, B, Ct, dt, 8, method="dss")
    with pytest.raises(ValueError, match="Lambda"):
        s4.kernel_dplr(np.where(np.arange(N) == 1, np.nan, Lambda), P, B, Ct, dt, 8)
    u = rng.standard_normal((2, H, 10))
    with pytest.raises(ValueError, match="K"):
        s4.fftconv(u, rng.standard_normal((H + 1, 4)))
    with pytest.raises(ValueError, match="K"):
        s4.fftconv(u, rng.standard_normal((H, 4)), bidirectional=True)
    with pytest.raises(TypeError, match="K"):
        s4.fftconv(u, rng.standard_normal((H, 4)).astype(np.float32))
    with pytest.raises(TypeError, match="u"):
        s4.fftconv(u.astype(np.int64), rng.standard_normal((H, 4)))
    with pytest.raises(ValueError, match="D"):
        s4.fftconv(u, rng.standard_normal((H, 4)), rng.standard_normal(H + 1))
    with pytest.raises(ValueError, match="out"):
        s4.fftconv(u, rng.standard_normal((H, 4)), out=u)
    ro = np.empty_like(u)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        s4.fftconv(u, rng.standard_normal((H, 4)), out=ro)
    with pytest.raises(ValueError, match="dy"):
        s4.fftconv_backward(u, rng.standard_normal((H, 4)), None, u[:, :, :5])
    with pytest.raises(TypeError, match="z"):
        s4.cauchy(Ct, np.zeros(3), Ct)
    with pytest.raises(ValueError, match="w"):
        s4.cauchy(Ct, np.zeros(3, np.complex128), Ct[:, :2])
    with pytest.raises(ValueError, match="smaller"):
        s4.rtf_kernel(np.zeros((1, 8)), np.zeros((1, 8)), 0.0, 4)
    with pytest.raises(ValueError, match="X"):
        s4.irfft(np.zeros((2, 5), np.complex128), 16)
    with pytest.raises(ValueError, match="L"):
        s4.vandermonde(Ct, Ct, 0)
    with pytest.raises(TypeError, match="conj|grad"):
        s4.vandermonde_backward(Ct, Ct, crandn(rng, H, 5))


def test_noncontiguous_inputs_are_copied(rng):
    u = rng.standard_normal((2, 3, 40))[:, :, ::2]
    K = rng.standard_normal((3, 10)).T.copy().T
    assert not u.flags.c_contiguous
    np.testing.assert_allclose(s4.fftconv(u, K), R.fftconv_direct(u, K), atol=1e-12)


def test_bitwise_simd_levels(rng, restore_simd):
    from fastcore.testing import simd_levels

    H, N, L = 3, 16, 1000
    Lambda, P, B = R.random_dplr(rng, H, N)
    Ct = crandn(rng, H, N)
    u = rng.standard_normal((2, 11, 300)).astype(np.float32)  # 11 channels: lanes and singles
    K = rng.standard_normal((2, 11, 100)).astype(np.float32)
    dy = rng.standard_normal(u.shape).astype(np.float32)
    v, w, z = crandn(rng, 7, N, dtype=np.complex64), crandn(rng, 7, N, dtype=np.complex64), \
        crandn(rng, 333, dtype=np.complex64)
    results = []
    for level in simd_levels():
        with fastcore.simd_level(level):
            results.append([s4.kernel_dplr(*(a.astype(np.complex64) for a in (Lambda, P, B, Ct)), 0.01, L),
                            s4.kernel_diag(Lambda, B, Ct, 0.01, L, "bilinear"),
                            s4.fftconv(u, K, bidirectional=True), s4.cauchy(v, z, w),
                            *s4.cauchy_backward(v, z, w, s4.cauchy(v, z, w)),
                            *s4.fftconv_backward(u, K, None, dy, bidirectional=True)[:2],
                            s4.rfft(u[0]), s4.rfft(u[0, :, :257].astype(np.float64)),
                            s4.rfft(u[0, :, :256]), s4.irfft(s4.rfft(u[0, :, :128].astype(np.float64)), 128)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("conj", [True, False])
def test_cauchy_huge_nodes_stay_finite(rng, conj):
    # nodes like tan(pi k/L) at k = L/2: |z|^4 overflows float32 unless the denominators are scaled
    v, w = crandn(rng, 2, 8), crandn(rng, 2, 8)
    w.real = -np.abs(w.real)
    z = np.array([1e16j, -3e12 + 1e13j, 2.0 + 0.5j, 1e30])
    ref = R.cauchy(v, z, w, conj)
    got = s4.cauchy(v.astype(np.complex64), z.astype(np.complex64), w.astype(np.complex64), conj=conj)
    assert np.isfinite(got).all()
    # each entry against its own scale (the sums decay like 1/|z|)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=0)


def test_empty_sizes(rng):
    # zero channels / batch / length: empty results of the right shape and dtype, nothing runs
    assert s4.fftconv(np.zeros((0, 3, 5)), rng.standard_normal((3, 2))).shape == (0, 3, 5)
    assert s4.fftconv(np.zeros((2, 0, 5), np.float32), np.zeros((0, 2), np.float32)).dtype == np.float32
    du, dK, dD = s4.fftconv_backward(np.zeros((0, 3, 5)), rng.standard_normal((3, 2)), np.ones(3),
                                     np.zeros((0, 3, 5)))
    assert du.shape == (0, 3, 5) and np.all(dK == 0) and np.all(dD == 0)
    K = s4.kernel_dplr(np.zeros((0, 4), np.complex64), None, np.zeros((0, 4), np.complex64),
                       np.zeros((2, 0, 4), np.complex64), 0.1, 7)
    assert K.shape == (2, 0, 7) and K.dtype == np.float32
    assert s4.kernel_diag(-np.ones((2, 0)) + 0j, np.zeros((2, 0)) + 0j, np.zeros((2, 0)) + 0j, 0.1, 5).shape == (2, 5)
    assert np.all(s4.vandermonde(np.zeros((3, 0), np.complex64), np.zeros((3, 0), np.complex64), 4) == 0)
    assert s4.rtf_kernel(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), 6).shape == (0, 6)


# --- found by fuzzing the S4 family (2026-11-23) ---------------------------------------------------

def _expm1_series(w):
    """e^w - 1 for |w| << 1 by its series (exact to rounding for |w| <= 1e-3)."""
    return w * (1 + w / 2 * (1 + w / 3 * (1 + w / 4 * (1 + w / 5))))


def test_zoh_factors_keep_relative_accuracy_for_tiny_dt_lambda():
    """ZOH's e^w - 1 for small w = dt Lambda: discretize's Bbar used e^w - 1 (exactly 0 below
    |w| ~ 1e-16) and the kernel's expm1 formed cos(Im w) - 1 by cancellation (~eps/|w|)."""
    Lam = np.array([[-1e-4 + 0j, -1e-4 + 1e-3j, -1e-12 + 0j, -1e-15 + 2e-9j]])
    B = np.array([[1.0 + 0j, 1j, 1.0 + 0j, 0.5 - 1j]])
    for dt in (1e-4, 1e-8, 2e-8):
        w = dt * Lam
        want = _expm1_series(w) / Lam * B
        _, Bbar = s4.discretize(Lam, None, B, dt, method="zoh")
        np.testing.assert_allclose(Bbar, want, rtol=4e-16)
        k = s4.kernel_diag(Lam, B, np.ones_like(B), dt, 1, "zoh")  # k_0 = 2 Re sum C B (e^w - 1)/Lambda
        exact = 2 * want.real.sum()
        assert abs(k[0, 0] - exact) <= 1e-14 * np.abs(2 * want).sum(), (dt, k[0, 0], exact)


def test_kernel_diag_backward_ddt_where_e_to_the_w_is_tiny():
    """d/d dt of the ZOH factor is e^w; em1 + 1 left it absolute-rounding sized (0 for e^w ~ 1e-18)."""
    Lam = np.array([[-400 + 30j]])
    one = np.ones((1, 1), complex)
    g = np.array([[1.0, 0.0, 0.0]])
    ddt = s4.kernel_diag_backward(Lam, one, one, np.array([0.1]), g, "zoh")[3]
    want = R.kernel_diag_backward(Lam, one, one, np.array([0.1]), g, "zoh")[3]
    assert want[0] != 0
    np.testing.assert_allclose(ddt, want, rtol=1e-12)


def test_fftconv_bidirectional_must_be_a_bool(rng):
    u = rng.standard_normal((1, 2, 8))
    K = rng.standard_normal((2, 2, 8))
    with pytest.raises(TypeError, match="bidirectional: expected a bool, got str"):
        s4.fftconv(u, K, bidirectional="no")  # truthy: silently bidirectional before
    with pytest.raises(TypeError, match="bidirectional: expected a bool"):
        s4.fftconv_backward(u, K, None, u, bidirectional=1)


def test_conj_must_be_a_bool(rng):
    """bool(conj) turned conj="no" into the conjugate-pair form."""
    v, w, z = crandn(rng, 2, 4), crandn(rng, 2, 4), crandn(rng, 5)
    with pytest.raises(TypeError, match="conj: expected a bool, got str"):
        s4.cauchy(v, z, w, conj="no")
    with pytest.raises(TypeError, match="conj: expected a bool, got int"):
        s4.cauchy_backward(v, z, w, crandn(rng, 2, 5), conj=0)
    with pytest.raises(TypeError, match="conj: expected a bool, got str"):
        s4.vandermonde(v, w, 6, conj="no")
    with pytest.raises(TypeError, match="conj: expected a bool, got NoneType"):
        s4.vandermonde_backward(v, w, rng.standard_normal((2, 6)), conj=None)


def test_kernel_dplr_backward_without_states():
    """N = 0 or H = 0: the forward is zeros, the backward zero gradients of every shape (it raised
    a NumPy reshape error)."""
    for H, N in ((2, 0), (0, 3)):
        z = np.zeros((H, N), complex)
        g = np.ones((H, 8))
        assert s4.kernel_dplr(-1 + z, None, z, z, 0.1, 8).shape == (H, 8)
        dl, dP, dB, dCt, ddt = s4.kernel_dplr_backward(-1 + z, None, z, z, 0.1, g)
        assert dl.shape == dB.shape == dCt.shape == (H, N) and dP is None and ddt == 0.0
        dl, dP, dB, dCt, ddt = s4.kernel_dplr_backward(-1 + z, z, z, z[None].repeat(2, 0), np.full(H, 0.1),
                                                       np.ones((2, H, 8)))
        assert dP.shape == (H, N) and dCt.shape == (2, H, N) and ddt.shape == (H,) and not ddt.any()


def test_zero_d_arrays_are_refused_where_a_dimension_is_needed(rng):
    """0-d v / x / X were silently promoted to shape (1,) inside validation (np.ascontiguousarray
    makes 0-d arrays 1-d): cauchy and vandermonde computed a one-state product, rfft a length-1
    transform, irfft(X, 1) one sample, and a 0-d w next to a 0-d v was blamed instead of v."""
    for cdt in (np.complex64, np.complex128):
        v0 = np.array(crandn(rng, 1)[0], cdt)
        w1 = np.array([-0.5 + 1j], cdt)
        z = crandn(rng, 3, dtype=cdt)
        for call in (lambda: s4.cauchy(v0, z, w1), lambda: s4.cauchy(v0, z, v0),
                     lambda: s4.cauchy_backward(v0, z, w1, z), lambda: s4.vandermonde(v0, v0, 4),
                     lambda: s4.vandermonde(v0, w1, 4), lambda: s4.vandermonde_backward(v0, v0, np.zeros(4))):
            with pytest.raises(ValueError, match=r"^v: expected at least 1 dimension \(\.\.\., N\), got shape \(\)"):
                call()
        with pytest.raises(ValueError, match=r"^X: expected at least 1 dimension .*got shape \(\)"):
            s4.irfft(v0, 1)
    for dtype in (np.float32, np.float64):
        with pytest.raises(ValueError, match=r"^x: expected shape \(\.\.\., m\) with m >= 1, got \(\)"):
            s4.rfft(np.array(rng.standard_normal(), dtype))
    # arrays with a dimension are unaffected: a one-state product equals the 1-d call
    v1 = crandn(rng, 1)
    z = crandn(rng, 3)
    assert np.array_equal(s4.cauchy(v1, z, np.array([-0.5 + 1j])), s4.cauchy(v1[None], z, np.array([[-0.5 + 1j]]))[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fftconv_scalar_d_gradient_has_d_form(rng, dtype, bidirectional):
    """A scalar D (Python or NumPy number, or a 0-d array) is one D for every channel: dD is its
    gradient, the sum of the per-channel ones, as a float (as ddt for a scalar dt) — it came back
    (H,), and a 0-d array D was refused with a shape error."""
    Bn, H, L = 2, 5, 23
    u = rng.standard_normal((Bn, H, L)).astype(dtype)
    K = rng.standard_normal((2, H, 9) if bidirectional else (H, 9)).astype(dtype)
    dy = rng.standard_normal(u.shape).astype(dtype)
    d = float(rng.standard_normal())
    y_full = s4.fftconv(u, K, np.full(H, d, dtype), bidirectional=bidirectional)
    du_full, dK_full, dD_full = s4.fftconv_backward(u, K, np.full(H, d, dtype), dy, bidirectional=bidirectional)
    assert dD_full.shape == (H,) and dD_full.dtype == dtype
    want = float((u.astype(np.float64) * dy).sum())
    tol = 1e-5 if dtype == np.float32 else 1e-12     # B*L-term sums rounded once per channel
    for D in (d, dtype(d), np.array(d, dtype), np.array(d)):
        assert np.array_equal(s4.fftconv(u, K, D, bidirectional=bidirectional), y_full)   # D rounded to u's dtype
        du, dK, dD = s4.fftconv_backward(u, K, D, dy, bidirectional=bidirectional)
        assert np.array_equal(du, du_full) and np.array_equal(dK, dK_full)
        assert type(dD) is float and np.shape(dD) == np.shape(D) == ()
        assert abs(dD - want) <= tol * np.abs(u.astype(np.float64) * dy).sum()
    # against a central difference of the float64 forward in the scalar D
    if dtype == np.float64:
        e = 1e-6
        fd = float(((s4.fftconv(u, K, d + e, bidirectional=bidirectional)
                     - s4.fftconv(u, K, d - e, bidirectional=bidirectional)) * dy).sum()) / (2 * e)
        assert abs(fd - s4.fftconv_backward(u, K, d, dy, bidirectional=bidirectional)[2]) < 1e-7 * max(1.0, abs(fd))
    # an (H,) D keeps its (H,) gradient; a (1,) D is not broadcast; a non-finite or complex scalar is refused
    with pytest.raises(ValueError, match=r"D: expected shape \(5,\), got \(1,\)"):
        s4.fftconv_backward(u, K, np.array([d], dtype), dy, bidirectional=bidirectional)
    with pytest.raises(ValueError, match="D: expected a finite number"):
        s4.fftconv(u, K, np.array(np.inf, dtype), bidirectional=bidirectional)
    with pytest.raises(TypeError, match="D: expected a real number"):
        s4.fftconv(u, K, np.array(1j), bidirectional=bidirectional)
    # no channels: the gradient of a scalar D is 0.0
    assert s4.fftconv_backward(u[:, :0], K[..., :0, :], d, dy[:, :0], bidirectional=bidirectional)[2] == 0.0


def _scan_system(rng, cdt, rdt, H=2, N=3, L=12):
    Lambda, P, B = R.random_dplr(rng, H, N)
    C = crandn(rng, H, N, dtype=cdt)
    u = rng.standard_normal((2, H, L)).astype(rdt)
    dense = tuple(a.astype(cdt) for a in s4.discretize(Lambda, P, B, np.array([0.05, 0.2])))
    diag = tuple(a.astype(cdt) for a in s4.discretize(Lambda, None, B, 0.1, method="zoh"))
    return dense, diag, C, u


SCAN_DTYPES = pytest.mark.parametrize("cdt, rdt", [(np.complex64, np.float32), (np.complex128, np.float64)])


@SCAN_DTYPES
def test_scan_refuses_an_odd_dense_state(rng, cdt, rdt):
    """A dense Abar lives on the full state [x, conj x]: (H, 2N, 2N). An odd size reached NumPy's
    broadcasting error inside the recurrence."""
    (Ab, Bb), _, C, u = _scan_system(rng, cdt, rdt)
    with pytest.raises(ValueError, match=r"^Abar: expected a dense \(H, 2N, 2N\) .*even.*got shape \(2, 5, 5\)"):
        s4.scan(Ab[:, :5, :5], Bb[:, :5], C[:, :2], u)


@SCAN_DTYPES
def test_scan_refuses_non_finite_parameters(rng, cdt, rdt):
    """NaN/Inf in Abar, Bbar, C or D went through scan silently while kernel_diag / kernel_dplr
    refuse non-finite parameters; now ValueError naming the argument (u's propagate, below)."""
    dense, diag, C, u = _scan_system(rng, cdt, rdt)
    H = u.shape[1]
    for Abar, Bbar in (dense, diag):
        for name in ("Abar", "Bbar", "C", "D"):
            args = {"Abar": Abar.copy(), "Bbar": Bbar.copy(), "C": C.copy(), "D": rng.standard_normal(H).astype(rdt)}
            args[name].reshape(-1)[rng.integers(args[name].size)] = rng.choice([np.nan, np.inf, -np.inf])
            with pytest.raises(ValueError, match=f"^{name}: expected finite values, found"):
                s4.scan(args["Abar"], args["Bbar"], args["C"], u, args["D"])
    with pytest.raises(ValueError, match="^D: expected a finite number"):
        s4.scan(*dense, C, u, float("nan"))


@SCAN_DTYPES
def test_scan_scalar_d_and_non_finite_u(rng, cdt, rdt):
    """A scalar D (accepted by fftconv, whose oracle scan is) was refused with a shape error; it is
    that D in every channel (rounded to u's dtype, as in fftconv). NaN in u propagates: y is NaN
    from that step on in that (batch, channel) row and unchanged elsewhere."""
    (Ab, Bb), _, C, u = _scan_system(rng, cdt, rdt)
    H, L = u.shape[1:]
    d = float(rng.standard_normal())
    y = s4.scan(Ab, Bb, C, u, np.full(H, d, rdt))
    for D in (d, np.array(d), rdt(d)):
        assert np.array_equal(s4.scan(Ab, Bb, C, u, D), y)
    bad = u.copy()
    bad[1, 0, 5] = np.nan
    yb = s4.scan(Ab, Bb, C, bad, d)
    hit = np.zeros(u.shape, bool)
    hit[1, 0, 5:] = True
    assert np.isnan(yb[hit]).all() and np.array_equal(yb[~hit], y[~hit])


@pytest.mark.parametrize("conj", [True, False])
@pytest.mark.parametrize("cdt", [np.complex64, np.complex128])
def test_cauchy_nodes_near_the_float_max(rng, cdt, conj):
    """|z| near the largest float: y ~ 2 Re(sum v)/z is tiny but finite; it came back NaN/Inf once
    |Re z| + |Im z| (any conj: the node scale overflowed, then 0/0) or 2 |Re v| max(|Re z|, |Im z|)
    (conj: the unscaled numerator overflowed) exceeded the float max."""
    fmax = float(np.finfo(cdt).max)
    v, w = crandn(rng, 2, 6), crandn(rng, 2, 6)
    w.real = -np.abs(w.real)
    v, w = v.astype(cdt), w.astype(cdt)
    z = np.array([0.6 * fmax * (1 + 1j), -0.7 * fmax + 0.7j * fmax, 0.9 * fmax, -fmax, 1j * fmax,
                  fmax * 10.0 ** rng.uniform(-3, 0) * np.exp(2j * np.pi * rng.uniform()), 2.0 + 0.5j]).astype(cdt)
    got = s4.cauchy(v, z, w, conj=conj)
    # the reference at z/s, w/s (s a power of two: exact), where complex128 has room: y(z) = y_s(z/s, w/s)/s
    s = 2.0 ** 600
    want_s = R.cauchy(v.astype(np.complex128), z.astype(np.complex128) / s, w.astype(np.complex128) / s, conj)
    scale = 2 * np.abs(v.astype(np.complex128)).sum(-1, keepdims=True) / np.abs(z.astype(np.complex128) / s)
    tol = 1e-4 if cdt == np.complex64 else 1e-12   # results this small are subnormal: fewer bits
    assert np.isfinite(got).all()
    assert (np.abs(got.astype(np.complex128) * s - want_s) <= tol * scale).all()
