"""Host -> CuPy helpers shared by the *_cuda.py tests (imported like public_calls.py)."""

from __future__ import annotations

import numpy as np
import pytest


def cupy():
    import cupy as cp

    return cp


def storage(name):
    """The NumPy dtype a test array is stored in on the GPU; bfloat16 comes from ml_dtypes
    (the test skips without it)."""
    if name == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def on_gpu(x_host, dtype_name):
    """x_host rounded to `dtype_name` and copied to the GPU (C-contiguous); skips the test when
    CuPy cannot hold that dtype (a CuPy without bfloat16)."""
    cp = cupy()
    try:
        return cp.asarray(np.ascontiguousarray(x_host.astype(storage(dtype_name))))
    except (TypeError, ValueError) as exc:
        pytest.skip(f"CuPy cannot hold {dtype_name}: {exc}")
