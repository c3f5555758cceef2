"""Timing and reporting machinery shared by benchmarks/run.py and the family modules in
benchmarks/families/ (one module per family, each with a `cases(ctx)` function).

Method (DESIGN.md §5): every case is timed as the median of repeated runs after a warm-up, the
compiled kernel and its comparisons (the NumPy reference, peers) in the same process run, and
reported as ratios plus a fraction of the machine's floor: measured copy bandwidth for
memory-bound kernels (bytes each input read once + each output written once), measured FMA rate
for compute-bound ones.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import fastcore
from fastcore import _cpu


@dataclasses.dataclass
class Case:
    """One benchmark: the compiled call and what it is compared with, on the same inputs."""

    family: str
    name: str
    compiled: Callable[[], Any]
    reference: Callable[[], Any] | None = None      # the float64/NumPy reference pipeline
    peers: dict[str, Callable[[], Any]] = dataclasses.field(default_factory=dict)
    bytes: float | None = None                      # minimum bytes moved (memory floor)
    flops: float | None = None                      # flops executed (compute floor)
    check: Callable[[], str] | None = None          # returns a short "max err ..." string
    device: str = "cpu"
    note: str = ""
    gemm_dtype: str | None = None                   # GPU: %peak against this dtype's GEMM rate


@dataclasses.dataclass
class Context:
    quick: bool
    copy_bandwidth: float       # bytes/s, read + write counted, all threads
    copy_bandwidth_1t: float    # bytes/s, one thread
    fma_peak: float             # flop/s, float32, active SIMD level, all threads
    gpu_copy_bandwidth: float | None = None
    gpu_gemm_rates: dict[str, float] = dataclasses.field(default_factory=dict)
    min_time: float = 0.3       # seconds of repeated runs per measurement

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def time_cpu(fn: Callable[[], Any], min_time: float = 0.3, max_reps: int = 1000) -> float:
    """Median seconds per call: one warm-up call, then repeats for at least min_time."""
    fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < max_reps:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if time.perf_counter() - start >= min_time and len(samples) >= 3:
            break
    return statistics.median(samples)


def time_gpu(fn: Callable[[], Any], min_time: float = 0.3, max_reps: int = 1000) -> float:
    """Median seconds per call measured with CUDA events on the current stream."""
    import cupy

    fn()
    cupy.cuda.get_current_stream().synchronize()
    samples = []
    start = time.perf_counter()
    while len(samples) < max_reps:
        a, b = cupy.cuda.Event(), cupy.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(a, b) / 1e3)
        if time.perf_counter() - start >= min_time and len(samples) >= 3:
            break
    return statistics.median(samples)


def measure_cpu_floors(quick: bool) -> tuple[float, float, float]:
    """(copy bandwidth all threads, copy bandwidth 1 thread, FMA flop/s): the floors."""
    n = (64 if quick else 256) << 20  # bytes; well beyond the L2 caches
    src = np.ones(n, np.uint8)
    dst = np.empty_like(src)
    t_all = time_cpu(lambda: _cpu._testing.copy(src, dst), 0.3)
    with fastcore.num_threads(1):
        t_one = time_cpu(lambda: _cpu._testing.copy(src, dst), 0.3)
    iters = 2_000_000 if quick else 20_000_000
    _cpu._testing.fma_peak_run(10_000)
    t0 = time.perf_counter()
    flops = _cpu._testing.fma_peak_run(iters)
    peak = flops / (time.perf_counter() - t0)
    return 2 * n / t_all, 2 * n / t_one, peak


def measure_gpu_copy_bandwidth() -> float | None:
    if not fastcore.cuda_available():
        return None
    import cupy

    from fastcore import _cuda
    from fastcore._backend import stream_handle

    n = 1 << 30  # 1 GiB, many times the L2 cache
    src = cupy.ones(n, cupy.uint8)
    dst = cupy.empty_like(src)
    t = time_gpu(lambda: _cuda._testing.copy(src.data.ptr, dst.data.ptr, n, stream_handle()))
    return 2 * n / t


def measure_gpu_gemm_rates(quick: bool) -> dict[str, float]:
    """cuBLAS (cupy.matmul) flop/s on square products, the compute floor for GPU cases: float16
    on the tensor cores (bfloat16 runs at the same rate on sm_80+) and float32 (CuPy's default,
    no TF32)."""
    if not fastcore.cuda_available():
        return {}
    import cupy

    n = 2048 if quick else 8192
    rates = {}
    for name, dtype in (("f16", cupy.float16), ("f32", cupy.float32)):
        a = cupy.random.standard_normal((n, n), dtype=cupy.float32).astype(dtype)
        b = cupy.random.standard_normal((n, n), dtype=cupy.float32).astype(dtype)
        rates[name] = 2.0 * n**3 / time_gpu(lambda a=a, b=b: cupy.matmul(a, b), 0.3, 50)
    return rates


@dataclasses.dataclass
class Result:
    family: str
    name: str
    device: str
    seconds: float
    reference_seconds: float | None
    peers: dict[str, float]
    fraction_of_bandwidth: float | None
    fraction_of_peak: float | None
    check: str
    note: str

    @property
    def speedup_vs_reference(self) -> float | None:
        return None if not self.reference_seconds else self.reference_seconds / self.seconds


def run_case(case: Case, ctx: Context) -> Result:
    timer = time_gpu if case.device == "cuda" else time_cpu
    t = timer(case.compiled, ctx.min_time)
    t_ref = timer(case.reference, ctx.min_time) if case.reference else None
    peers = {name: timer(fn, ctx.min_time) for name, fn in case.peers.items()}
    bw = ctx.gpu_copy_bandwidth if case.device == "cuda" else ctx.copy_bandwidth
    frac_bw = (case.bytes / t) / bw if case.bytes and bw else None
    if case.flops and case.device == "cpu":
        frac_peak = (case.flops / t) / ctx.fma_peak
    elif case.flops and case.gemm_dtype in ctx.gpu_gemm_rates:
        frac_peak = (case.flops / t) / ctx.gpu_gemm_rates[case.gemm_dtype]
    else:
        frac_peak = None
    return Result(case.family, case.name, case.device, t, t_ref, peers, frac_bw, frac_peak,
                  case.check() if case.check else "", case.note)


def format_table(results: list[Result]) -> str:
    header = f"{'case':44s} {'dev':4s} {'time':>10s} {'vs ref':>8s} {'%bw':>6s} {'%peak':>6s}  peers (x faster than)  check"
    lines = [header, "-" * len(header)]
    for r in results:
        speed = f"{r.speedup_vs_reference:7.1f}x" if r.speedup_vs_reference else "       -"
        bw = f"{100 * r.fraction_of_bandwidth:5.0f}%" if r.fraction_of_bandwidth else "     -"
        pk = f"{100 * r.fraction_of_peak:5.0f}%" if r.fraction_of_peak else "     -"
        peers = ", ".join(f"{k} {v / r.seconds:.1f}x" for k, v in r.peers.items()) or "-"
        lines.append(f"{r.name:44s} {r.device:4s} {format_seconds(r.seconds):>10s} {speed} {bw} {pk}  {peers}  {r.check}")
    return "\n".join(lines)


def format_seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def max_rel_error(actual: Any, expected: Any) -> str:
    from fastcore.testing import to_numpy

    a = to_numpy(actual).astype(np.float64)
    e = np.asarray(to_numpy(expected), dtype=np.float64)
    scale = max(float(np.abs(e).max()), np.finfo(np.float64).tiny)
    return f"max err {float(np.abs(a - e).max()) / scale:.1e}"
