"""Benchmarks for fastcore.s4: compiled kernels vs the NumPy reference pipelines and numpy.fft /
scipy.fft on the same inputs (moderate sizes; benchmarks/families/s4.py runs the issue's sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from fastcore import s4
from fastcore.reference import s4 as R


@pytest.fixture(scope="module")
def cauchy_inputs():
    rng = np.random.default_rng(0)
    v = (rng.standard_normal((64, 32)) + 1j * rng.standard_normal((64, 32))).astype(np.complex64)
    w = (-np.abs(rng.standard_normal((64, 32))) + 1j * rng.standard_normal((64, 32))).astype(np.complex64)
    z = (2j * np.tan(np.pi * np.arange(1025) / 2048)).astype(np.complex64)
    return v, z, w


def test_cauchy_fastcore(benchmark, cauchy_inputs):
    benchmark.group = "s4 cauchy c64 64x32x1025"
    y = benchmark(lambda: s4.cauchy(*cauchy_inputs))
    assert np.isfinite(y).all()


def test_cauchy_reference(benchmark, cauchy_inputs):
    benchmark.group = "s4 cauchy c64 64x32x1025"
    benchmark(lambda: R.cauchy(*cauchy_inputs))


@pytest.fixture(scope="module")
def dplr_inputs():
    rng = np.random.default_rng(1)
    Lambda, P, B = R.hippo_legs(32, 64)
    Ct = rng.standard_normal((64, 32)) + 1j * rng.standard_normal((64, 32))
    return [a.astype(np.complex64) for a in (Lambda, P, B, Ct)] + [np.full(64, 0.01)]


def test_kernel_dplr_fastcore(benchmark, dplr_inputs):
    benchmark.group = "s4 kernel_dplr c64 H=64 N=32 L=2048"
    K = benchmark(lambda: s4.kernel_dplr(*dplr_inputs, 2048))
    assert np.isfinite(K).all()


def test_kernel_dplr_reference(benchmark, dplr_inputs):
    benchmark.group = "s4 kernel_dplr c64 H=64 N=32 L=2048"
    benchmark(lambda: R.kernel_dplr(*dplr_inputs, 2048))


@pytest.fixture(scope="module")
def conv_inputs():
    rng = np.random.default_rng(2)
    u = rng.standard_normal((4, 64, 4096)).astype(np.float32)
    K = rng.standard_normal((64, 4096)).astype(np.float32)
    D = rng.standard_normal(64).astype(np.float32)
    return u, K, D


def test_fftconv_fastcore(benchmark, conv_inputs):
    benchmark.group = "s4 fftconv f32 B=4 H=64 L=4096"
    y = benchmark(lambda: s4.fftconv(*conv_inputs))
    assert np.isfinite(y).all()


def test_fftconv_numpy(benchmark, conv_inputs):
    u, K, D = conv_inputs
    benchmark.group = "s4 fftconv f32 B=4 H=64 L=4096"
    n = 8192
    benchmark(lambda: np.fft.irfft(np.fft.rfft(u, n) * np.fft.rfft(K, n), n)[..., :4096] + D[:, None] * u)


def test_fftconv_scipy(benchmark, conv_inputs):
    sf = pytest.importorskip("scipy.fft")
    u, K, D = conv_inputs
    benchmark.group = "s4 fftconv f32 B=4 H=64 L=4096"
    n = 8192
    benchmark(lambda: sf.irfft(sf.rfft(u, n, workers=-1) * sf.rfft(K, n, workers=-1), n, workers=-1)[..., :4096]
              + D[:, None] * u)
