"""Dispatch: NumPy arrays go to ``fastcore._cpu``, CuPy arrays to ``fastcore._cuda``.

CuPy is imported lazily (only once a CuPy array is seen, or when ``cuda_available()`` is asked),
so ``import fastcore`` never pays for it and works without it.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import numpy as np

from ._errors import BackendUnavailableError

__all__ = [
    "cpu",
    "cuda",
    "cuda_available",
    "cuda_unavailable_reason",
    "device_of",
    "is_cupy_array",
    "array_module",
    "stream_handle",
    "data_pointer",
]

CPU = "cpu"
GPU = "cuda"


_cpu_module = None


def cpu():
    """The compiled CPU module ``fastcore._cpu``."""
    global _cpu_module
    if _cpu_module is None:  # an import statement costs ~0.5 us per call even when cached
        from . import _cpu

        _cpu_module = _cpu
    return _cpu_module


@functools.lru_cache(maxsize=None)
def _cuda_module():
    """(module, None) or (None, reason) for fastcore._cuda."""
    try:
        module = importlib.import_module("fastcore._cuda")
    except ImportError as exc:
        return None, f"this build of fastcore has no CUDA module (built without nvcc?): {exc}"
    return module, None


@functools.lru_cache(maxsize=None)
def _cupy():
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or CuPy failing to load its CUDA libraries
        return None, f"CuPy is not importable: {exc}"
    return cupy, None


def cuda_unavailable_reason() -> str | None:
    """Why CuPy arrays cannot be processed here, or None when they can."""
    module, reason = _cuda_module()
    if module is None:
        return reason
    if module.device_count() == 0:
        driver = module.driver_version()
        return ("no CUDA GPU is visible (driver CUDA version %d)" % driver) if driver else \
            "no CUDA driver is installed"
    cupy, reason = _cupy()
    if cupy is None:
        return reason
    return None


def cuda_available() -> bool:
    """True when CuPy arrays can be processed: _cuda built, a GPU visible and CuPy importable."""
    return cuda_unavailable_reason() is None


def cuda():
    """The compiled CUDA module, or BackendUnavailableError saying why it can't be used."""
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise BackendUnavailableError(f"a CuPy (GPU) array was given, but {reason}")
    return _cuda_module()[0]


def is_cupy_array(x: Any) -> bool:
    """True for cupy.ndarray, decided without importing CuPy."""
    module = type(x).__module__
    return module == "cupy" or module.startswith("cupy.")


def device_of(**arrays: Any) -> str:
    """"cpu" or "cuda" for a set of named arrays (None values are skipped).

    Raises TypeError for objects that are neither NumPy nor CuPy arrays and ValueError when
    NumPy and CuPy arrays are mixed, naming the arguments.
    """
    on_gpu, on_cpu = [], []
    for name, a in arrays.items():
        if a is None:
            continue
        if isinstance(a, np.ndarray):
            on_cpu.append(name)
        elif is_cupy_array(a):
            on_gpu.append(name)
        else:
            raise TypeError(f"{name}: expected a NumPy or CuPy array, got {type(a).__name__}")
    if on_gpu and on_cpu:
        raise ValueError(
            "CPU/GPU mix: %s %s NumPy (CPU) but %s %s CuPy (GPU); move them to one device"
            % (", ".join(on_cpu), "is" if len(on_cpu) == 1 else "are",
               ", ".join(on_gpu), "is" if len(on_gpu) == 1 else "are"))
    return GPU if on_gpu else CPU


def array_module(device: str):
    """numpy for "cpu", cupy for "cuda"."""
    if device == GPU:
        cupy, reason = _cupy()
        if cupy is None:
            raise BackendUnavailableError(reason)
        return cupy
    return np


def stream_handle() -> int:
    """The current CuPy stream as an integer handle (0 = the default stream)."""
    cupy, reason = _cupy()
    if cupy is None:
        raise BackendUnavailableError(reason)
    return int(cupy.cuda.get_current_stream().ptr)


def data_pointer(a: Any) -> int:
    """Address of the first element of a NumPy or CuPy array."""
    if isinstance(a, np.ndarray):
        return int(a.__array_interface__["data"][0])
    return int(a.data.ptr)
