"""The examples a user runs first must keep working: each runs in a subprocess against the
installed package and must exit 0 (the quickstart also checks every family against its float64
reference). Slow: excluded from the sanitizer run."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(script, tmp_path):
    args = [sys.executable, str(EXAMPLES / script)]
    if script == "ig_heatmap.py":
        args.append(str(tmp_path / "heatmap.png"))
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
