"""Test helpers shared by fastcore's own tests (and useful to anyone testing code built on it):
dtype-aware tolerances, ulp errors, NumPy/CuPy conversion, poisoned outputs.

Tolerances are stated per dtype from its unit roundoff u (half the machine epsilon):
a kernel doing O(n) well-conditioned float operations per output is expected within a small
multiple of u·n relative error; the defaults below take n up to ~10^3 with margin and are the
*starting point* — a family tightens or widens them per kernel, with a comment saying why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "unit_roundoff",
    "default_tolerance",
    "to_numpy",
    "assert_close",
    "ulp_error",
    "poisoned",
    "simd_levels",
]

# u = 2^-p for p-bit significands (bfloat16 has 8 bits, float16 11, float32 24, float64 53).
_UNIT_ROUNDOFF = {"bfloat16": 2.0**-8, "float16": 2.0**-11, "float32": 2.0**-24, "float64": 2.0**-53,
                  "complex64": 2.0**-24, "complex128": 2.0**-53}


def _dtype_name(dtype: Any) -> str:
    return getattr(dtype, "name", None) or np.dtype(dtype).name


def unit_roundoff(dtype: Any) -> float:
    """u for a floating dtype (float16/bfloat16/float32/float64/complex)."""
    return _UNIT_ROUNDOFF[_dtype_name(dtype)]


def default_tolerance(dtype: Any) -> tuple[float, float]:
    """(rtol, atol) for comparing a kernel's output in `dtype` with the float64 reference:
    rtol = 256·u (float64: ~2.8e-14, float32: ~1.5e-5, float16: 0.125 -> capped at 1e-2,
    bfloat16: capped at 3e-2), atol = rtol (outputs are assumed O(1); scale it otherwise)."""
    u = unit_roundoff(dtype)
    rtol = min(256 * u, 1e-2 if _dtype_name(dtype) == "float16" else 3e-2)
    return rtol, rtol


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from a NumPy or CuPy array (copying from the GPU)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def assert_close(actual: Any, expected: Any, *, dtype: Any = None, rtol: float | None = None,
                 atol: float | None = None, err_msg: str = "") -> None:
    """assert_allclose with dtype-aware defaults; NaNs must match NaNs and infs must match."""
    a = to_numpy(actual)
    e = to_numpy(expected)
    d_rtol, d_atol = default_tolerance(dtype if dtype is not None else a.dtype)
    np.testing.assert_allclose(a.astype(np.result_type(a.dtype, np.float64)), e,
                               rtol=d_rtol if rtol is None else rtol,
                               atol=d_atol if atol is None else atol, equal_nan=True, err_msg=err_msg)


def ulp_error(actual: Any, reference: Any, dtype: Any) -> np.ndarray:
    """|actual − reference| in units of the last place of `dtype` at the reference value
    (reference in float64 or better). Exact infinities count as 0; subnormals use the
    smallest-subnormal spacing."""
    a = to_numpy(actual).astype(np.float64)
    r = np.asarray(to_numpy(reference), dtype=np.float64)
    dt = np.dtype(dtype)
    rounded = r.astype(dt)
    with np.errstate(over="ignore", invalid="ignore"):
        spacing = np.spacing(np.abs(rounded)).astype(np.float64)
    tiny = float(np.finfo(dt).smallest_subnormal)
    spacing = np.where((spacing == 0) | ~np.isfinite(spacing), tiny, spacing)
    both_inf = np.isinf(a) & np.isinf(rounded) & (np.sign(a) == np.sign(rounded))
    with np.errstate(invalid="ignore"):
        err = np.abs(a - r) / spacing
    return np.where(both_inf, 0.0, err)


def poisoned(shape: Any, dtype: Any, like: Any = None) -> Any:
    """An output buffer filled with NaN (integers: the dtype's max), so elements a kernel fails to
    write show up in the comparison. NumPy, or CuPy when `like` is a CuPy array."""
    xp = np
    if like is not None and not isinstance(like, np.ndarray):
        import cupy as xp  # noqa: F811
    dt = np.dtype(dtype)
    fill = np.nan if dt.kind in "fc" else np.iinfo(dt).max
    return xp.full(shape, fill, dtype=dt)


def simd_levels() -> list[str]:
    """Every SIMD level this machine can run, for parametrising "bitwise identical on every
    level" tests (use with fastcore.simd_level(level))."""
    import fastcore

    return fastcore.available_simd_levels()
