"""Benchmarks for fastcore.tiger: the fused step vs the float32 NumPy reference and an in-place
NumPy step, on the same inputs (8M float32 parameters in 60 tensors; benchmarks/families/tiger.py
runs the 64M case of the issue)."""

from __future__ import annotations

import numpy as np
import pytest

from fastcore import tiger_step
from fastcore.reference import tiger as ref

N_TOTAL = 8 << 20
N_TENSORS = 60


@pytest.fixture(scope="module")
def lists():
    rng = np.random.default_rng(0)
    raw = np.exp(rng.uniform(np.log(64), np.log(N_TOTAL / 8), N_TENSORS))
    sizes = np.maximum(1, (raw / raw.sum() * N_TOTAL).astype(np.int64))
    P = [rng.standard_normal(int(n)).astype(np.float32) for n in sizes]
    G = [rng.standard_normal(int(n)).astype(np.float32) for n in sizes]
    M = [np.zeros(int(n), np.float32) for n in sizes]
    return P, G, M


def numpy_inplace_step(P, G, M, lr, beta=0.965, wd=0.01):
    for p, g, m in zip(P, G, M):
        if not np.isfinite(g).all():
            p *= np.float32(0.99)
            continue
        eta = np.float32(lr * np.sqrt(np.mean(np.square(p, dtype=np.float32), dtype=np.float64)))
        m *= np.float32(beta)
        m += np.float32(1 - beta) * g
        p -= eta * (np.sign(m) + np.float32(wd) * p)


def test_tiger_step_fastcore(benchmark, lists):
    P, G, M = lists
    benchmark.group = "tiger full step f32 8M/60"
    flags = benchmark(lambda: tiger_step(P, G, M, step=0, lr=1e-7))
    assert not flags.any() and all(np.isfinite(p).all() for p in P)


def test_tiger_step_reference(benchmark, lists):
    P, G, M = lists
    benchmark.group = "tiger full step f32 8M/60"
    benchmark(lambda: ref.tiger_step(P, G, M, step=0, lr=1e-7, precision="storage"))


def test_tiger_step_numpy_inplace(benchmark, lists):
    P, G, M = lists
    benchmark.group = "tiger full step f32 8M/60"
    benchmark(lambda: numpy_inplace_step(P, G, M, 1e-7))


def test_tiger_micro_step_fastcore(benchmark, lists):
    P, G, M = lists
    benchmark.group = "tiger micro-step f32 8M/60"
    before = P[0].copy()
    benchmark(lambda: tiger_step(P, G, M, step=0, lr=1e-7, grad_accum_steps=4, found_inf=False))
    np.testing.assert_array_equal(P[0], before)


def test_tiger_micro_step_numpy(benchmark, lists):
    P, G, M = lists
    benchmark.group = "tiger micro-step f32 8M/60"

    def step():
        for g, m in zip(G, M):
            m *= np.float32(0.965)
            m += np.float32(0.035 / 4) * g

    benchmark(step)
