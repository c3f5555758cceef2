"""Build and run-time configuration: version, threads, SIMD level, show_config()."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

import numpy as np

from . import _cpu
from ._backend import _cuda_module, cuda_unavailable_reason
from ._checks import check_choice, check_int

__all__ = [
    "__version__",
    "show_config",
    "config",
    "get_num_threads",
    "set_num_threads",
    "num_threads",
    "get_simd_level",
    "set_simd_level",
    "simd_level",
    "available_simd_levels",
]

__version__: str = _cpu.__version__

SIMD_LEVELS = ("scalar", "avx2", "avx512")


def get_num_threads() -> int:
    """Threads fastcore's CPU kernels use (the project thread pool; not OpenMP/BLAS threads)."""
    return _cpu.get_num_threads()


def set_num_threads(n: int) -> None:
    """Use n >= 1 threads for CPU kernels started from now on. Safe while kernels run in other
    threads. Results do not depend on n (fixed work partition), only the speed does. The default
    is FASTCORE_NUM_THREADS when set, else the CPUs this process may run on."""
    _cpu.set_num_threads(check_int(n, "n", lo=1, hi=4096))


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Context manager: run the block with n threads, then restore the previous count."""
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        _cpu.set_num_threads(previous)


def get_simd_level() -> str:
    """The instruction set CPU kernels dispatch to: 'scalar', 'avx2' or 'avx512'."""
    return _cpu.get_simd_level()


def available_simd_levels() -> list[str]:
    """Levels compiled into this build and supported by this CPU (any can be forced)."""
    return list(_cpu.supported_simd_levels())


def set_simd_level(level: str) -> None:
    """Force kernels onto one instruction set ('scalar', 'avx2', 'avx512' or 'auto' for the best
    one). Mostly for testing and benchmarking: every level gives bitwise the same results for the
    kernels that promise it. The environment variable FASTCORE_SIMD does the same at start-up."""
    check_choice(level, "level", SIMD_LEVELS + ("auto",))
    if level != "auto" and level not in available_simd_levels():
        raise ValueError(f"level: {level!r} is not available on this CPU/build "
                         f"(available: {', '.join(available_simd_levels())})")
    _cpu.set_simd_level(level)


@contextlib.contextmanager
def simd_level(level: str) -> Iterator[None]:
    """Context manager: run the block at one SIMD level, then restore the previous one."""
    previous = get_simd_level()
    set_simd_level(level)
    try:
        yield
    finally:
        _cpu.set_simd_level(previous)


def _warn_about_environment() -> None:
    """Warn (once, at import) about environment settings that could not be honoured."""
    env_threads = os.environ.get("FASTCORE_NUM_THREADS", "")
    if env_threads:
        try:
            ok = 1 <= int(env_threads) <= 4096
        except ValueError:
            ok = False
        if not ok:
            warnings.warn(f"FASTCORE_NUM_THREADS={env_threads!r} is not an integer in [1, 4096]; "
                          f"using {get_num_threads()} threads", RuntimeWarning, stacklevel=3)
    requested, honoured = _cpu.simd_env_request()
    if requested and not honoured:
        warnings.warn(f"FASTCORE_SIMD={requested!r} is not one of {', '.join(SIMD_LEVELS)} or not available "
                      f"on this CPU/build; using {get_simd_level()!r}", RuntimeWarning, stacklevel=3)


def config() -> dict[str, Any]:
    """Everything show_config() prints, as a dict."""
    build = dict(_cpu.build_info())
    cuda_module, cuda_reason = _cuda_module()
    cuda: dict[str, Any] = {"compiled": cuda_module is not None}
    if cuda_module is not None:
        cuda.update(
            architectures=list(cuda_module.compiled_architectures()),
            nvcc=cuda_module.nvcc_version(),
            runtime_version=cuda_module.runtime_version(),
            driver_version=cuda_module.driver_version(),
            device_count=cuda_module.device_count(),
        )
        cuda["devices"] = [cuda_module.device_info(i)["name"] for i in range(cuda["device_count"])]
    cuda["usable"] = cuda_unavailable_reason() is None
    cuda["unusable_reason"] = cuda_unavailable_reason()
    requested, honoured = _cpu.simd_env_request()
    return {
        "version": __version__,
        "distribution": build["distribution"],
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": f"{platform.system()} {platform.machine()}",
        "compiler": build["compiler"],
        "build_type": build["build_type"],
        "native": build["native"],
        "sanitize": build["sanitize"] or None,
        "simd": {
            "active": get_simd_level(),
            "best": _cpu.best_simd_level(),
            "compiled": list(build["simd_compiled"]),
            "available": available_simd_levels(),
            "env": requested or None,
            "env_honoured": honoured,
        },
        "threads": {
            "current": get_num_threads(),
            "default": _cpu.default_num_threads(),
            "env": os.environ.get("FASTCORE_NUM_THREADS") or None,
        },
        "cuda": cuda,
    }


def _cuda_version(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}" if v else "none"


def show_config(file: TextIO | None = None) -> None:
    """Print the version, the compiled backends, the CUDA architectures compiled in, the SIMD
    level in use and the thread count — what this build really is, read from the modules."""
    c = config()
    out = file if file is not None else sys.stdout
    s, t, g = c["simd"], c["threads"], c["cuda"]
    lines = [
        f"{c['distribution']} {c['version']}",
        f"  python {c['python']}, numpy {c['numpy']}, {c['platform']}",
        f"  cpu backend : fastcore._cpu, {c['compiler']}, {c['build_type']}"
        + (", -march=native" if c["native"] else ", portable (no -march=native)")
        + (f", sanitizers: {c['sanitize']}" if c["sanitize"] else ""),
        f"  simd        : {s['active']} in use (best on this CPU: {s['best']}; compiled: {', '.join(s['compiled'])})"
        + (f"; FASTCORE_SIMD={s['env']}" + ("" if s["env_honoured"] else " (not honoured)") if s["env"] else ""),
        f"  threads     : {t['current']} (default {t['default']}"
        + (f", FASTCORE_NUM_THREADS={t['env']}" if t["env"] else "") + ")",
    ]
    if g["compiled"]:
        lines.append(f"  cuda backend: fastcore._cuda, nvcc {g['nvcc']}, runtime {_cuda_version(g['runtime_version'])}"
                     f" (static), architectures {', '.join(g['architectures'])}")
        lines.append(f"  cuda driver : {_cuda_version(g['driver_version'])}; devices: "
                     + (", ".join(g["devices"]) if g["devices"] else "none"))
    else:
        lines.append("  cuda backend: not compiled (no nvcc at build time, or FASTCORE_CUDA=OFF)")
    lines.append("  cupy arrays : " + ("supported" if g["usable"] else f"not supported here ({g['unusable_reason']})"))
    print("\n".join(lines), file=out)
