"""Benchmarks for fastcore.ig: integrated gradients of an MLP (tanh, softmax output), float32,
50 Gauss–Legendre steps: the fused built-in model vs the generic path with a NumPy gradient
callable vs the straightforward NumPy IG, on the same inputs (smaller than the issue's
3072-wide case, which benchmarks/families/ig.py runs)."""

from __future__ import annotations

import numpy as np
import pytest

from fastcore import ig
from fastcore.reference import ig as ref

N, D, H, C, S = 32, 1024, 128, 10, 50


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    layers = [((rng.standard_normal((H, D)) / np.sqrt(D)).astype(np.float32), np.zeros(H, np.float32)),
              ((rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32), np.zeros(H, np.float32)),
              ((rng.standard_normal((C, H)) / np.sqrt(H)).astype(np.float32), np.zeros(C, np.float32))]
    x = rng.standard_normal((N, D)).astype(np.float32)
    t = rng.integers(0, C, N)
    return layers, x, t


GROUP = f"ig MLP {D}-{H}-{H}-{C} N={N} GL{S} f32"


def test_ig_fused(benchmark, problem):
    layers, x, t = problem
    model = ig.MLP(layers, "tanh", "softmax")
    benchmark.group = GROUP
    res = benchmark(ig.integrated_gradients, model, x, target=t, n_steps=S)
    grad = ref.mlp_grad_callable(layers, "tanh", "softmax", np.float32)
    np.testing.assert_allclose(res.attributions, ig.integrated_gradients(grad, x, target=t, n_steps=S).attributions,
                               rtol=1e-3, atol=1e-6)


def test_ig_generic_numpy_callable(benchmark, problem):
    layers, x, t = problem
    grad = ref.mlp_grad_callable(layers, "tanh", "softmax", np.float32)
    benchmark.group = GROUP
    benchmark(ig.integrated_gradients, grad, x, target=t, n_steps=S)


def test_ig_numpy_straightforward(benchmark, problem):
    layers, x, t = problem
    grad = ref.mlp_grad_callable(layers, "tanh", "softmax", np.float32)
    a, w = ig.quadrature(S)
    benchmark.group = GROUP
    benchmark(ref.numpy_integrated_gradients, grad, x, 0.0, t, a, w)
