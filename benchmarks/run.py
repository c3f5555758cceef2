#!/usr/bin/env python
"""Benchmark tables per kernel family: compiled vs the NumPy reference and the named peers, in
the same run, with the measured floors (copy bandwidth, FMA peak) first.

    python benchmarks/run.py                 # every family, full sizes, JSON into benchmarks/results/
    python benchmarks/run.py --quick         # small sizes (a smoke run)
    python benchmarks/run.py --family core --family activations
    python benchmarks/run.py --device cuda   # only the GPU cases (needs CuPy and a GPU)

Each family lives in benchmarks/families/<family>.py and defines `cases(ctx) -> list[Case]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import os
import pathlib
import platform
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fastcore  # noqa: E402
from harness import (  # noqa: E402
    Context,
    format_table,
    measure_cpu_floors,
    measure_gpu_copy_bandwidth,
    measure_gpu_gemm_rates,
    run_case,
)


def family_names() -> list[str]:
    return sorted(p.stem for p in (HERE / "families").glob("*.py") if not p.stem.startswith("_"))


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", action="append", choices=family_names(), help="run only these families")
    parser.add_argument("--quick", action="store_true", help="small sizes, short timings")
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "results", help="directory for the JSON")
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args(argv)

    print(f"fastcore {fastcore.__version__}  commit {git_commit()}  {dt.date.today()}  {cpu_model()}")
    fastcore.show_config()
    bw, bw1, peak = measure_cpu_floors(args.quick)
    gpu_bw = measure_gpu_copy_bandwidth() if args.device != "cpu" else None
    gemm = measure_gpu_gemm_rates(args.quick) if args.device != "cpu" else {}
    ctx = Context(quick=args.quick, copy_bandwidth=bw, copy_bandwidth_1t=bw1, fma_peak=peak,
                  gpu_copy_bandwidth=gpu_bw, gpu_gemm_rates=gemm, min_time=0.1 if args.quick else 0.3)
    print(f"\nfloors: CPU copy {bw / 1e9:.1f} GB/s ({fastcore.get_num_threads()} threads; "
          f"{bw1 / 1e9:.1f} GB/s on 1), read+write counted; FMA peak {peak / 1e9:.0f} GFLOP/s "
          f"float32 ({fastcore.get_simd_level()})"
          + (f"; GPU device copy {gpu_bw / 1e9:.0f} GB/s" if gpu_bw else "")
          + "".join(f"; cuBLAS {k} GEMM {v / 1e12:.0f} TFLOP/s" for k, v in gemm.items()))

    all_results = []
    for name in args.family or family_names():
        module = importlib.import_module(f"families.{name}")
        cases = [c for c in module.cases(ctx) if args.device in ("all", c.device)]
        cases = [c for c in cases if c.device == "cpu" or fastcore.cuda_available()]
        if not cases:
            continue
        results = [run_case(c, ctx) for c in cases]
        print(f"\n== {name} ==")
        print(format_table(results))
        all_results.extend(results)

    if not args.no_json:
        args.out.mkdir(parents=True, exist_ok=True)
        tag = "quick-" if args.quick else ""
        path = args.out / f"{dt.date.today()}-{platform.node() or 'host'}-{tag}{args.device}.json"
        payload = {
            "date": str(dt.date.today()),
            "commit": git_commit(),
            "cpu": cpu_model(),
            "config": fastcore.config(),
            "floors": {"cpu_copy_bytes_per_s": bw, "cpu_copy_bytes_per_s_1thread": bw1,
                       "cpu_fma_flops_per_s": peak, "gpu_copy_bytes_per_s": gpu_bw,
                       "gpu_gemm_flops_per_s": gemm},
            "env": {k: v for k, v in os.environ.items() if k.startswith("FASTCORE_")},
            "results": [dict(dataclasses.asdict(r), speedup_vs_reference=r.speedup_vs_reference)
                        for r in all_results],
        }
        path.write_text(json.dumps(payload, indent=2, default=str))
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
