"""Same-process A/B timing of two builds of fastcore's CPU module.

On a shared machine run-to-run noise (±30% on the development VM) hides 5-15% changes. Loading two
builds side by side in one process and alternating their calls cancels most of it: both see the
same machine state at nearly the same moment (ABBA order, so neither build always runs first). It needs an otherwise idle
machine: with other jobs on the cores, two identical builds have differed by 30%.

    python tools/ab_compare.py snapshot before      # copy the current build's _cpu module
    ... edit, rebuild (an editable install rebuilds on import) ...
    python tools/ab_compare.py snapshot after
    python tools/ab_compare.py run before after case.py --reps 15

case.py defines ``setup() -> state`` and ``call(cpu, state)``, where ``cpu`` is one build's raw
``_cpu`` module (the pybind11 API the Python layer calls, e.g. ``cpu.activations.forward(...)``).
If ``call`` returns arrays, the two builds' results are compared bitwise. Snapshots live in
build/ab/LABEL/ (git-ignored). Each loaded build has its own thread pool; the idle one sleeps.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import runpy
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
AB_DIR = ROOT / "build" / "ab"


def snapshot(label: str) -> Path:
    """Copy the importable fastcore._cpu extension into build/ab/LABEL/ab_LABEL/."""
    from fastcore import _backend

    source = Path(_backend.cpu().__file__)
    package = AB_DIR / label / f"ab_{label}"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    target = package / source.name
    shutil.copy2(source, target)
    return target


def load(label: str):
    """The snapshot LABEL as module ab_LABEL._cpu (its own copy of the library in this process)."""
    package = AB_DIR / label / f"ab_{label}"
    files = [p for suffix in importlib.machinery.EXTENSION_SUFFIXES for p in package.glob(f"_cpu{suffix}")]
    if not files:
        raise SystemExit(f"no snapshot {label!r} in {AB_DIR} (run: ab_compare.py snapshot {label})")
    spec = importlib.util.spec_from_file_location(f"ab_{label}._cpu", files[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _arrays(result):
    if isinstance(result, np.ndarray):
        return [result]
    if isinstance(result, (list, tuple)):
        return [a for r in result for a in _arrays(r)]
    return []


def run(label_a: str, label_b: str, case_file: str, reps: int) -> None:
    case = runpy.run_path(case_file)
    builds = {label_a: load(label_a), label_b: load(label_b)}
    state = case["setup"]()
    results = {label: case["call"](cpu, state) for label, cpu in builds.items()}  # warm-up
    a_out, b_out = (_arrays(results[label]) for label in (label_a, label_b))
    times: dict[str, list[float]] = {label: [] for label in builds}
    order = list(builds.items())
    for rep in range(reps):
        for label, cpu in (order if rep % 2 == 0 else order[::-1]):  # ABBA: no first-call bias
            t0 = time.perf_counter()
            case["call"](cpu, state)
            times[label].append(time.perf_counter() - t0)
    med = {label: float(np.median(t)) for label, t in times.items()}
    for label in builds:
        print(f"{label:>12s}: median {med[label] * 1e3:9.3f} ms  min {min(times[label]) * 1e3:9.3f} ms")
    print(f"{label_b}/{label_a} (medians): {med[label_b] / med[label_a]:.3f}")
    if a_out:
        same = len(a_out) == len(b_out) and all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a_out, b_out))
        print(f"results bitwise equal: {same}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    snap = sub.add_parser("snapshot", help="copy the current build's _cpu module under a label")
    snap.add_argument("label")
    go = sub.add_parser("run", help="time two snapshots on a case file, alternating calls")
    go.add_argument("label_a")
    go.add_argument("label_b")
    go.add_argument("case_file")
    go.add_argument("--reps", type=int, default=15)
    args = parser.parse_args(argv)
    if args.command == "snapshot":
        print(snapshot(args.label))
    else:
        run(args.label_a, args.label_b, args.case_file, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
