"""The GIL is released in every compiled call: many Python threads calling every family at once
must give bitwise the results of serial calls, also while another thread changes the pool size."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import fastcore
from public_calls import all_calls, same_bits

REPEATS = 3


def _run_all_concurrently(calls, workers=8):
    jobs = [c for c in calls for _ in range(REPEATS)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(lambda c: c.outcome(), jobs))
    return jobs, outcomes


def _assert_matches_serial(calls, jobs, outcomes):
    serial = {id(c): c.outcome() for c in calls}
    for call, got in zip(jobs, outcomes):
        want = serial[id(call)]
        assert len(got) == len(want), call.name
        for i, (a, b) in enumerate(zip(got, want)):
            assert same_bits(a, b), f"{call.name}: output {i} differs between threaded and serial runs"


def test_threads_calling_every_family_match_serial(restore_threads):
    calls = all_calls()
    fastcore.set_num_threads(2)
    jobs, outcomes = _run_all_concurrently(calls)
    _assert_matches_serial(calls, jobs, outcomes)


def test_changing_the_thread_count_during_work_is_safe(restore_threads):
    calls = all_calls()
    stop = threading.Event()

    def toggle():
        n = 0
        while not stop.is_set():
            fastcore.set_num_threads(1 + n % 3)
            n += 1

    toggler = threading.Thread(target=toggle)
    toggler.start()
    try:
        jobs, outcomes = _run_all_concurrently(calls, workers=4)
    finally:
        stop.set()
        toggler.join()
    # The partition never depends on the thread count, so the results are still bitwise serial.
    _assert_matches_serial(calls, jobs, outcomes)
