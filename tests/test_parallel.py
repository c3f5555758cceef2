"""The project thread pool: fixed partition (bitwise identical for any thread count), exception
propagation, nested regions, concurrent Python callers, thread-count changes during work."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastcore
from fastcore import _cpu

T = _cpu._testing


@pytest.mark.parametrize("grain", [1, 7, 1000, 65536, 10**7])
def test_chunked_sum_is_bitwise_identical_for_any_thread_count(grain, rng, restore_threads):
    # Values of wildly different magnitudes: any change of summation order changes the bits.
    x = rng.standard_normal(300_007) * np.exp(rng.uniform(-30, 30, 300_007))
    fastcore.set_num_threads(1)
    reference = T.chunked_sum(x, grain)
    # the fixed partition: chunk sums in chunk order, each chunk summed left to right
    expected = 0.0
    for lo in range(0, x.size, grain):
        s = 0.0
        for v in x[lo:lo + grain].tolist():
            s += v
        expected += s
    if grain >= 1000:  # pure-Python check of the partition (cheap enough for big grains only)
        assert reference == expected
    for n in (2, 3, 4, 16):
        fastcore.set_num_threads(n)
        assert T.chunked_sum(x, grain) == reference


def test_exception_in_a_worker_reaches_the_caller(restore_threads):
    fastcore.set_num_threads(4)
    for failing in (0, 1, 57, 999):
        with pytest.raises(ValueError, match=f"chunk {failing} failed on purpose"):
            T.run_chunks_failing_at(1000, failing)
    # the pool is still usable afterwards
    assert T.run_chunks_failing_at(1000, -1) == 1000


def test_nested_regions_run_inline(restore_threads):
    fastcore.set_num_threads(4)
    assert T.nested_regions(37, 11) == sum(c * 11 for c in range(37))


def test_concurrent_python_threads_get_serial_results(rng, restore_threads):
    fastcore.set_num_threads(2)
    arrays = [rng.standard_normal(200_000) * 10 for _ in range(8)]
    expected = [T.chunked_sum(a, 4096) for a in arrays]
    exp_in = [a.astype(np.float32) for a in arrays]
    exp_expected = []
    for a in exp_in:
        out = np.empty_like(a)
        T.exp_f32(a, out)
        exp_expected.append(out)
    errors = []

    def worker(i):
        try:
            for _ in range(20):
                assert T.chunked_sum(arrays[i], 4096) == expected[i]
                out = np.empty_like(exp_in[i])
                T.exp_f32(exp_in[i], out)
                assert np.array_equal(out, exp_expected[i])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_changing_thread_count_during_work_is_safe(rng, restore_threads):
    x = rng.standard_normal(500_000)
    fastcore.set_num_threads(1)
    expected = T.chunked_sum(x, 1000)
    stop = threading.Event()
    errors = []

    def hammer():
        try:
            while not stop.is_set():
                assert T.chunked_sum(x, 1000) == expected
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for w in workers:
        w.start()
    for n in [1, 2, 4, 3, 8, 1, 2] * 10:
        fastcore.set_num_threads(n)
    stop.set()
    for w in workers:
        w.join()
    assert not errors, errors


def test_pool_survives_fork(rng, restore_threads):
    import multiprocessing as mp

    fastcore.set_num_threads(2)
    x = rng.standard_normal(100_000)
    expected = T.chunked_sum(x, 1000)  # the pool's workers exist now
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(T.chunked_sum, (x, 1000)) == expected


def test_copy_probe(rng, restore_threads):
    for n in (0, 1, 1_000_003, 3 << 20):
        src = rng.integers(0, 255, n, dtype=np.uint8)
        dst = np.zeros_like(src)
        T.copy(src, dst)
        assert np.array_equal(src, dst)


def test_fma_probe_counts_flops():
    flops = T.fma_peak_run(1000)
    assert flops > 0 and flops % 1000 == 0
