"""Benchmarks for cpp/common: the vectorised exp vs NumPy's exp."""

from __future__ import annotations

import numpy as np
import pytest

from fastcore import _cpu

N = 1 << 22


@pytest.fixture(scope="module", params=[np.float32, np.float64], ids=["float32", "float64"])
def exp_inputs(request):
    x = np.random.default_rng(0).uniform(-80, 80, N).astype(request.param)
    return x, np.empty_like(x)


def test_exp_fastcore(benchmark, exp_inputs):
    x, y = exp_inputs
    fn = _cpu._testing.exp_f32 if x.dtype == np.float32 else _cpu._testing.exp_f64
    benchmark.group = f"exp {x.dtype.name} n={N}"
    benchmark(fn, x, y)
    np.testing.assert_allclose(y, np.exp(x.astype(np.float64)), rtol=4 * np.finfo(x.dtype).eps)


def test_exp_numpy(benchmark, exp_inputs):
    x, y = exp_inputs
    benchmark.group = f"exp {x.dtype.name} n={N}"
    benchmark(np.exp, x, out=y)
