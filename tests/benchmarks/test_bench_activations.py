"""pytest-benchmark groups for fastcore.activations (compiled vs NumPy on the same inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from fastcore import activations as A

ROWS, N = 1024, 4096


@pytest.fixture(scope="module")
def x():
    return (np.random.default_rng(0).standard_normal((ROWS, N)) * 3).astype(np.float32)


def numpy_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.benchmark(group="softmax f32 1024x4096")
def test_softmax_fastcore(benchmark, x):
    y = benchmark(A.softmax, x)
    np.testing.assert_allclose(y.sum(-1), 1, atol=1e-5)


@pytest.mark.benchmark(group="softmax f32 1024x4096")
def test_softmax_numpy(benchmark, x):
    benchmark(numpy_softmax, x)


@pytest.mark.benchmark(group="sparsemax f32 1024x4096")
def test_sparsemax_fastcore(benchmark, x):
    y = benchmark(A.sparsemax, x)
    np.testing.assert_allclose(y.sum(-1), 1, atol=1e-5)


@pytest.mark.benchmark(group="sparsemax f32 1024x4096")
def test_sparsemax_numpy_sort(benchmark, x):
    def sort_based(z):
        zs = -np.sort(-z, axis=-1)
        k = np.arange(1, z.shape[-1] + 1, dtype=z.dtype)
        cums = np.cumsum(zs, axis=-1)
        kstar = ((1 + k * zs) > cums).sum(-1, keepdims=True)
        tau = (np.take_along_axis(cums, kstar - 1, -1) - 1) / kstar
        return np.maximum(z - tau, 0)

    y = benchmark(sort_based, x)
    np.testing.assert_allclose(y, A.sparsemax(x), atol=1e-5)
