"""Shared fixtures: a seeded RNG that gives every test its own stream, the `cuda` marker's skip
logic, and the `xp` helpers for tests that run on both backends."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

BASE_SEED = int(os.environ.get("FASTCORE_TEST_SEED", "20261122"))


def pytest_report_header(config):
    import fastcore

    return [f"fastcore {fastcore.__version__}: simd={fastcore.get_simd_level()} "
            f"threads={fastcore.get_num_threads()} cuda_available={fastcore.cuda_available()}",
            f"random seed: FASTCORE_TEST_SEED={BASE_SEED}"]


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from (FASTCORE_TEST_SEED, the test's node id): reproducible, yet every
    test (and every parametrisation) draws its own independent stream."""
    key = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(np.random.SeedSequence([BASE_SEED, key]))


def pytest_collection_modifyitems(config, items):
    import fastcore
    from fastcore._backend import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU: {reason}")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def restore_threads():
    """Restores the thread count after a test that changes it."""
    import fastcore

    n = fastcore.get_num_threads()
    yield
    fastcore.set_num_threads(n)


@pytest.fixture
def restore_simd():
    import fastcore

    level = fastcore.get_simd_level()
    yield
    fastcore.set_simd_level(level)
