"""pytest-benchmark groups for fastcore.monarch: fused multiply vs dense NumPy matmul with the same
matrix (float32, B = 1024, n = 1024 with 32 blocks)."""

from __future__ import annotations

import numpy as np
import pytest

from fastcore import monarch as M


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((32, 32, 32)).astype(np.float32) / 6
    w2 = rng.standard_normal((32, 32, 32)).astype(np.float32) / 6
    x = rng.standard_normal((1024, 1024)).astype(np.float32)
    return x, w1, w2, M.to_dense(w1, w2)


@pytest.mark.benchmark(group="monarch f32 B=1024 n=1024")
def test_monarch_fastcore(benchmark, problem):
    x, w1, w2, dense = problem
    y = benchmark(M.multiply, x, w1, w2)
    np.testing.assert_allclose(y, x @ dense.T, rtol=1e-4, atol=1e-4)


@pytest.mark.benchmark(group="monarch f32 B=1024 n=1024")
def test_monarch_numpy_dense(benchmark, problem):
    x, w1, w2, dense = problem
    benchmark(lambda: x @ dense.T)
