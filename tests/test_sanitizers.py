"""In the sanitizer build (CI's .ci/sanitize sets FASTCORE_EXPECT_SANITIZERS), prove that the
sanitizers are live and that a report kills the process — so any report in the suite fails CI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fastcore import _cpu

expected = os.environ.get("FASTCORE_EXPECT_SANITIZERS", "")
pytestmark = pytest.mark.skipif(not expected, reason="not the sanitizer build (see .ci/sanitize)")


def test_the_build_has_the_expected_sanitizers():
    assert _cpu.build_info()["sanitize"] == expected


@pytest.mark.parametrize("kind, report", [("heap-overflow", "AddressSanitizer"),
                                          ("signed-overflow", "runtime error")])
def test_a_sanitizer_report_aborts_the_process(kind, report):
    code = f"from fastcore import _cpu; _cpu._testing.sanitizer_canary({kind!r})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert report in r.stderr
