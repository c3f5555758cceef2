"""Repeated calls leave memory flat: 10^4 calls of every public function (small inputs) must not
grow the resident set, and the bindings must not leak references to their arguments."""

from __future__ import annotations

import gc
import sys

import pytest

from public_calls import all_calls

CALLS = all_calls()
REPEATS = 10_000
WARMUP = 500
# Slack for allocator noise (arenas, caches) on 10^4 calls; a leak of even 100 bytes per call
# would be 1 MB, a leaked small result array per call several MB.
RSS_SLACK_BYTES = 1 << 20


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _invoke_fresh(call):
    # Calls that write in place get private copies once, so the loop does not grow the state.
    return call.fresh() if call.mutable else call


def _growth_over_repeats(call) -> int:
    gc.collect()
    before = _rss_bytes()
    for _ in range(REPEATS):
        call.invoke()
    gc.collect()
    return _rss_bytes() - before


@pytest.mark.slow  # 10^4 calls per function; excluded from the (slower) sanitizer run
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_repeated_calls_keep_memory_flat(call):
    call = _invoke_fresh(call)
    for _ in range(WARMUP):
        call.invoke()
    grown = _growth_over_repeats(call)
    if grown >= RSS_SLACK_BYTES:
        # A leak grows the resident set in every window of 10^4 calls; a one-off step (a new
        # allocator arena, interpreter state left by earlier test files) does not recur. This
        # test once failed that way in a multi-file run and passed alone: look again.
        grown = min(grown, _growth_over_repeats(call))
    assert grown < RSS_SLACK_BYTES, f"{call.name}: resident memory grew by {grown} bytes over " \
                                    f"{REPEATS} calls, in two windows of calls in a row"


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_bindings_do_not_leak_references_to_arguments(call):
    call = _invoke_fresh(call)
    inputs = call.immutable_inputs()
    call.invoke()
    gc.collect()
    counts = [sys.getrefcount(a) for a in inputs]
    for _ in range(200):
        call.invoke()
    gc.collect()
    assert [sys.getrefcount(a) for a in inputs] == counts, f"{call.name} leaks references"
