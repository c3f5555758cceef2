"""Argument validation shared by every family: the one place for these checks.

Every public function validates with these helpers *before* any compiled code runs. Errors name
the argument and say what was expected and what was given:

* ``TypeError``  — wrong kind of object or dtype (``x: expected float32 or float64, got int64``)
* ``ValueError`` — wrong shape, axis, value range, memory layout, aliasing, non-finite values,
  CPU/GPU mix

The helpers work on NumPy and CuPy arrays alike (they only use ``dtype``, ``shape``,
``strides``, ``flags`` and the data pointer) and never copy.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ._backend import data_pointer, device_of, is_cupy_array

__all__ = [
    "FLOAT_DTYPES",
    "HALF_DTYPES",
    "GPU_FLOAT_DTYPES",
    "COMPLEX_DTYPES",
    "INTEGER_DTYPES",
    "as_array",
    "check_array",
    "check_dtype",
    "check_same_dtype",
    "check_shape",
    "check_contiguous",
    "check_writeable",
    "check_finite",
    "check_no_overlap",
    "check_out",
    "check_scalar",
    "check_int",
    "check_choice",
    "check_index_array",
    "normalize_axis",
    "split_axis",
    "memory_bounds",
    "same_device",
    "dtype_names",
]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Storage types of the GPU kernels. bfloat16 has no NumPy dtype: CuPy arrays carry ml_dtypes'
# bfloat16 (dtype.name == "bfloat16"), so dtypes may also be given by name.
HALF_DTYPES = ("float16", "bfloat16")
GPU_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
COMPLEX_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))
INTEGER_DTYPES = tuple(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64,
                                                np.uint8, np.uint16, np.uint32, np.uint64))


# ids of the constant tuples above (module-level: never freed, so an id cannot be reused)
_DTYPE_TUPLE_IDS = frozenset(map(id, (FLOAT_DTYPES, COMPLEX_DTYPES, INTEGER_DTYPES)))


@functools.lru_cache(maxsize=256)
def _cached_dtype_name(d: Any) -> str:
    return np.dtype(d).name


def _dtype_name(d: Any) -> str:
    # numpy's dtype.name is a Python property costing ~3 us; validation asks for it on every call
    if isinstance(d, str):
        return d
    try:
        return _cached_dtype_name(d)
    except TypeError:  # unhashable dtype-like
        return np.dtype(d).name


@functools.lru_cache(maxsize=256)
def _allowed_names(dtypes: tuple) -> frozenset:
    return frozenset(_dtype_name(d) for d in dtypes)


def dtype_names(dtypes: Iterable[Any]) -> str:
    """'float32 or float64' / 'float32, float64 or complex64'."""
    names = [_dtype_name(d) for d in dtypes]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _describe(x: Any) -> str:
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        return f"{type(x).__module__.split('.')[0]}.{type(x).__name__} of dtype {x.dtype} and shape {tuple(x.shape)}"
    return type(x).__name__


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or is_cupy_array(x)


def as_array(x: Any, name: str) -> Any:
    """x itself when it is a NumPy or CuPy array; array-likes (lists, scalars) become NumPy arrays
    without any dtype change. Other objects raise TypeError."""
    if _is_array(x):
        return x
    if isinstance(x, (str, bytes, dict, set)) or x is None:
        raise TypeError(f"{name}: expected an array, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array, could not convert {type(x).__name__}: {exc}") from None
    if arr.dtype == object:
        raise TypeError(f"{name}: expected a numeric array, got {type(x).__name__} of Python objects")
    return arr


def check_dtype(x: Any, name: str, dtypes: Sequence[Any]) -> np.dtype:
    """TypeError unless x.dtype is one of dtypes (NumPy dtypes, types or names such as
    "bfloat16") in native byte order. Returns the dtype."""
    dtype = x.dtype
    # The module's dtype tuples hold np.dtype objects only: a membership test (identity first,
    # then dtype ==, which includes the byte order) answers the common case without names.
    if id(dtypes) in _DTYPE_TUPLE_IDS and dtype in dtypes and dtype.isnative:
        return dtype
    try:
        allowed = _allowed_names(tuple(dtypes))
    except TypeError:  # unhashable dtype-likes
        allowed = frozenset(_dtype_name(d) for d in dtypes)
    if _dtype_name(x.dtype) not in allowed:
        raise TypeError(f"{name}: expected dtype {dtype_names(dtypes)}, got {x.dtype}")
    if not x.dtype.isnative:
        raise TypeError(f"{name}: expected native byte order, got dtype {x.dtype.str!r}; "
                        f"use {name}.astype({name}.dtype.newbyteorder('='))")
    return x.dtype


def check_same_dtype(**arrays: Any) -> np.dtype | None:
    """TypeError unless every given array (None skipped) has the same dtype."""
    items = [(k, a) for k, a in arrays.items() if a is not None]
    if not items:
        return None
    first_name, first = items[0]
    for name, a in items[1:]:
        if a.dtype != first.dtype:
            raise TypeError(f"{name}: expected dtype {first.dtype} (the dtype of {first_name}), got {a.dtype}")
    return first.dtype


def check_shape(x: Any, name: str, shape: Sequence[int | None]) -> None:
    """ValueError unless x.shape matches shape (None matches any extent)."""
    expected = tuple(shape)
    if len(x.shape) != len(expected) or any(e is not None and e != s for s, e in zip(x.shape, expected)):
        shown = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
        raise ValueError(f"{name}: expected shape {shown}, got {tuple(x.shape)}")


def check_contiguous(x: Any, name: str) -> None:
    """ValueError unless x is C-contiguous."""
    if not x.flags.c_contiguous:
        raise ValueError(
            f"{name}: expected a C-contiguous array, got strides {tuple(x.strides)} for shape "
            f"{tuple(x.shape)}; pass np.ascontiguousarray({name}) (a copy)")


def check_writeable(x: Any, name: str) -> None:
    """ValueError when x is read-only (NumPy's writeable flag; CuPy arrays are always writeable)."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        raise ValueError(f"{name}: array is read-only; it is written in place")


def check_finite(x: Any, name: str) -> None:
    """ValueError naming the first non-finite element of x (for the functions whose NaN policy is
    'raise'). Costs one pass over x."""
    xp = np if isinstance(x, np.ndarray) else _cupy_module()
    finite = xp.isfinite(x)
    if not bool(finite.all()):
        flat_index = int(xp.argmin(finite.reshape(-1)))
        index = np.unravel_index(flat_index, x.shape) if x.ndim else ()
        value = x.reshape(-1)[flat_index].item()
        raise ValueError(f"{name}: expected finite values, found {value} at index {tuple(int(i) for i in index)}")


def _cupy_module():
    from ._backend import array_module

    return array_module("cuda")


def check_array(
    x: Any,
    name: str,
    *,
    dtypes: Sequence[Any] | None = None,
    ndim: int | None = None,
    min_ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    allow_empty: bool = True,
    contiguous: bool = False,
    writeable: bool = False,
    finite: bool = False,
    convert: bool = False,
) -> Any:
    """Validate one array argument and return it.

    convert: accept array-likes (lists, scalars) and turn them into NumPy arrays without changing
    their dtype; otherwise a NumPy or CuPy array is required.
    """
    if convert:
        x = as_array(x, name)
    elif not _is_array(x):
        raise TypeError(f"{name}: expected a NumPy or CuPy array, got {_describe(x)}")
    if dtypes is not None:
        check_dtype(x, name, dtypes)
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got {x.ndim}-d with shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimension(s), got shape {tuple(x.shape)}")
    if shape is not None:
        check_shape(x, name, shape)
    if not allow_empty and x.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {tuple(x.shape)}")
    if contiguous:
        check_contiguous(x, name)
    if writeable:
        check_writeable(x, name)
    if finite:
        check_finite(x, name)
    return x


def memory_bounds(x: Any) -> tuple[int, int] | None:
    """[lo, hi) byte addresses spanned by x's elements, or None for an empty array."""
    if x.size == 0:
        return None
    lo = hi = data_pointer(x)
    for extent, stride in zip(x.shape, x.strides):
        step = (extent - 1) * stride
        if step < 0:
            lo += step
        else:
            hi += step
    return lo, hi + x.itemsize


def check_no_overlap(a: Any, a_name: str, b: Any, b_name: str) -> None:
    """ValueError when the memory spans of a and b intersect (an output must not alias an input).

    Conservative: two interleaved views of one buffer that share no element still count as
    overlapping, because compiled kernels may write them in any order."""
    if a is None or b is None or isinstance(a, np.ndarray) != isinstance(b, np.ndarray):
        return  # different devices cannot overlap
    if isinstance(a, np.ndarray):
        # the same test (byte spans intersect) in C: __array_interface__ costs microseconds
        overlap = bool(np.may_share_memory(a, b))
    else:
        ba, bb = memory_bounds(a), memory_bounds(b)
        overlap = ba is not None and bb is not None and ba[0] < bb[1] and bb[0] < ba[1]
    if overlap:
        raise ValueError(f"{a_name}: must not overlap {b_name} in memory (the output would alias an input)")


def check_out(
    out: Any,
    name: str = "out",
    *,
    shape: Sequence[int],
    dtype: Any,
    inputs: dict[str, Any] | None = None,
    like: Any | None = None,
    contiguous: bool = True,
) -> Any:
    """Validate an ``out=`` array: right kind/device (that of ``like``), exact shape and dtype,
    writeable, C-contiguous (by default) and not overlapping any of ``inputs``."""
    if not _is_array(out):
        raise TypeError(f"{name}: expected a NumPy or CuPy array, got {_describe(out)}")
    if like is not None and not (type(out) is np.ndarray and type(like) is np.ndarray):
        same_device(**{name: out, "the inputs": like})  # (two NumPy arrays cannot mix devices)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(out.shape)}")
    if out.dtype is not dtype and out.dtype != np.dtype(dtype):
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {out.dtype}")
    check_writeable(out, name)
    if contiguous:
        check_contiguous(out, name)
    for in_name, a in (inputs or {}).items():
        if a is not None:
            check_no_overlap(out, name, a, in_name)
    return out


def same_device(**arrays: Any) -> str:
    """"cpu" or "cuda"; ValueError on a CPU/GPU mix (see _backend.device_of)."""
    return device_of(**arrays)


def _reject_bool(value: Any, name: str, what: str) -> None:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected {what}, got bool")


def check_bool(value: Any, name: str) -> bool:
    """A bool or NumPy bool as a Python bool; anything else is a TypeError (a string such as "no"
    is truthy, 0/1 are ambiguous)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def check_int(value: Any, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """A Python int in [lo, hi] (either bound optional). TypeError for non-integers (bool too)."""
    _reject_bool(value, name, "an integer")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}") from None
    if lo is not None and v < lo:
        raise ValueError(f"{name}: expected an integer >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{name}: expected an integer <= {hi}, got {v}")
    return v


def check_scalar(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_inclusive: bool = True,
    hi_inclusive: bool = True,
    finite: bool = True,
) -> float:
    """A real number as a Python float, optionally in a range. TypeError for non-numbers (and for
    bool and complex), ValueError for NaN/inf (when finite) or out of range."""
    if type(value) is not float:  # a plain Python float (the common case) needs no type checks
        _reject_bool(value, name, "a real number")
        if not isinstance(value, numbers.Real) and not (isinstance(value, np.ndarray) and value.ndim == 0
                                                        and value.dtype.kind in "fiu"):
            raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if finite and not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    if math.isnan(v):
        raise ValueError(f"{name}: expected a number, got nan")
    if lo is not None and (v < lo or (v == lo and not lo_inclusive)):
        raise ValueError(f"{name}: expected a value {'>=' if lo_inclusive else '>'} {lo}, got {v}")
    if hi is not None and (v > hi or (v == hi and not hi_inclusive)):
        raise ValueError(f"{name}: expected a value {'<=' if hi_inclusive else '<'} {hi}, got {v}")
    return v


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, one of {', '.join(map(repr, choices))}; got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_index_array(x: Any, name: str, *, shape: Sequence[int | None] | None = None,
                      lo: int = 0, hi: int | None = None, convert: bool = True) -> Any:
    """An integer array (e.g. class targets) with every value in [lo, hi). Returns it as given
    (converted from a list when convert)."""
    x = as_array(x, name) if convert else x
    if not _is_array(x):
        raise TypeError(f"{name}: expected an integer array, got {_describe(x)}")
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got dtype {x.dtype}")
    if shape is not None:
        check_shape(x, name, shape)
    if x.size:
        xmin, xmax = int(x.min()), int(x.max())
        if xmin < lo or (hi is not None and xmax >= hi):
            bad = xmin if xmin < lo else xmax
            raise ValueError(f"{name}: expected values in [{lo}, {hi}), got {bad}")
    return x


def normalize_axis(axis: Any, ndim: int, name: str = "axis") -> int:
    """A valid non-negative axis for an ndim-d array; negative axes count from the end."""
    if type(axis) is int and -ndim <= axis < ndim:  # the common case: no further checks
        return axis % ndim
    _reject_bool(axis, name, "an integer axis")
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name}: expected an integer axis, got {type(axis).__name__}") from None
    if not -ndim <= a < ndim:
        raise ValueError(f"{name}: axis {a} is out of range for a {ndim}-d array (expected {-ndim} <= axis < {ndim})"
                         if ndim else f"{name}: a 0-d array has no axis {a}")
    return a % ndim


def split_axis(shape: Sequence[int], axis: int) -> tuple[int, int, int]:
    """(outer, n, inner) such that the array is viewed as outer × n × inner with the reduced axis
    in the middle — how every 'any axis' kernel addresses memory without a transposing copy."""
    if type(shape) is tuple:  # NumPy/CuPy shapes: already Python ints
        return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])
    outer = math.prod(int(e) for e in shape[:axis])
    inner = math.prod(int(e) for e in shape[axis + 1:])
    return outer, int(shape[axis]), inner
