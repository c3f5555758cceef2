"""DLPack interoperability: any array with ``__dlpack__`` (PyTorch tensors, JAX arrays, ...) is
accepted by every public function, zero-copy, and the results come back as the same kind of array.

NumPy and CuPy are the native paths and pass through untouched. A foreign array is viewed as a
NumPy array (DLPack device kDLCPU) or a CuPy array (kDLCUDA / kDLCUDAManaged) sharing its memory,
so in-place functions (``out=``, optimizer state) write into the caller's tensor. Array results
are handed back through the foreign library's own ``from_dlpack`` (again zero-copy). No foreign
library is imported by this module: the one the caller's array came from is already loaded.

The wrapper is applied to the public functions of every family by
``fastcore._interop.export_dlpack(module)`` at the end of the family module.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from typing import Any, Callable

import numpy as np

from ._backend import _cupy, is_cupy_array
from ._errors import BackendUnavailableError

__all__ = ["accepts_dlpack", "export_dlpack", "is_foreign_array", "to_native"]

# DLPack device types (dlpack.h, DLDeviceType).
_KDL_CPU = 1
_KDL_CUDA = 2
_KDL_CUDA_HOST = 3
_KDL_CUDA_MANAGED = 13


def is_foreign_array(x: Any) -> bool:
    """True for an array-like that is neither NumPy nor CuPy but exports ``__dlpack__``."""
    if isinstance(x, np.ndarray) or isinstance(x, (int, float, complex, bool, str, bytes)):
        return False
    if is_cupy_array(x):
        return False
    return hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")


def _library_of(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def _from_dlpack_for(x: Any, name: str) -> Callable[[Any], Any]:
    """The function turning a NumPy/CuPy result back into x's kind of array, found before any work
    is done so an unsupported kind fails up front."""
    namespace = getattr(x, "__array_namespace__", None)
    if namespace is not None:
        try:
            fn = getattr(namespace(), "from_dlpack", None)
        except Exception:  # noqa: BLE001 - a broken namespace hook: try the known libraries
            fn = None
        if fn is not None:
            return fn
    library = _library_of(x)
    module = sys.modules.get(library)
    if library == "jaxlib" or library == "jax":
        jnp = sys.modules.get("jax.numpy")
        if jnp is not None:
            return jnp.from_dlpack
    if module is not None and callable(getattr(module, "from_dlpack", None)):
        return module.from_dlpack  # torch.from_dlpack, ...
    raise TypeError(f"{name}: {type(x).__module__}.{type(x).__name__} exports __dlpack__, but "
                    f"fastcore cannot hand results back to it (its library has no from_dlpack)")


def to_native(x: Any, name: str) -> Any:
    """A NumPy (host memory) or CuPy (GPU memory) view of a foreign DLPack array, sharing memory."""
    if getattr(x, "requires_grad", False):
        # torch refuses to export such tensors; a plain detach would silently cut the graph.
        raise TypeError(f"{name}: this tensor requires grad; fastcore's plain functions do not "
                        f"record autograd — use fastcore.torch (autograd wrappers) or pass "
                        f"{name}.detach()")
    for flag, resolve, what in (("is_neg", "resolve_neg", "lazily negated"),
                                ("is_conj", "resolve_conj", "lazily conjugated")):
        test = getattr(x, flag, None)
        if callable(test) and test():
            # torch exports such a view's memory without the pending negation/conjugation (a
            # negated view came through with the wrong sign), so it is refused, not misread.
            raise TypeError(f"{name}: this tensor is a {what} view ({flag}() is True), which DLPack "
                            f"exports without applying it; pass {name}.{resolve}()")
    try:
        device_type, _ = x.__dlpack_device__()
    except (BufferError, RuntimeError, ValueError, NotImplementedError) as exc:
        # e.g. a torch meta tensor (no data; DLPack knows no such device), an MKL-DNN tensor
        device = getattr(x, "device", "?")
        raise TypeError(f"{name}: cannot view this {type(x).__name__} (device {device}) through DLPack "
                        f"(expected CPU or CUDA memory): {exc}") from None
    device_type = int(device_type)
    try:
        if device_type in (_KDL_CPU, _KDL_CUDA_HOST):
            return np.from_dlpack(x)
        if device_type in (_KDL_CUDA, _KDL_CUDA_MANAGED):
            cupy, reason = _cupy()
            if cupy is None:
                raise BackendUnavailableError(f"{name}: a CUDA array was given, but {reason}")
            return cupy.from_dlpack(x)
    except (BufferError, RuntimeError) as exc:
        if isinstance(exc, BackendUnavailableError):
            raise
        dtype = getattr(x, "dtype", "?")
        raise TypeError(f"{name}: cannot view this {type(x).__name__} (dtype {dtype}) through "
                        f"DLPack on this device: {exc}") from exc
    raise TypeError(f"{name}: DLPack device type {device_type} is not supported "
                    f"(expected CPU or CUDA memory)")


class _Conversion:
    """State of one call: how results go back, and which native views stand for which inputs (a
    result that *is* an input view, e.g. ``out=``, is returned as the caller's own object)."""

    def __init__(self):
        self.back: Callable[[Any], Any] | None = None
        self.originals: dict[int, tuple[Any, Any]] = {}


def _convert_in(value: Any, name: str, state: _Conversion) -> Any:
    """Replace foreign arrays (also inside lists/tuples) by native views; remember how to convert
    results back (the first foreign array decides)."""
    if is_foreign_array(value):
        if state.back is None:
            state.back = _from_dlpack_for(value, name)
        native = to_native(value, name)
        state.originals[id(native)] = (native, value)
        return native
    if isinstance(value, (list, tuple)) and value and not _is_namedtuple(value):
        converted = [_convert_in(v, f"{name}[{i}]", state) for i, v in enumerate(value)]
        if any(c is not v for c, v in zip(converted, value)):
            return type(value)(converted)
    return value


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _convert_out(value: Any, state: _Conversion) -> Any:
    if isinstance(value, np.ndarray) or is_cupy_array(value):
        original = state.originals.get(id(value))
        if original is not None and original[0] is value:
            return original[1]
        return state.back(value)
    if _is_namedtuple(value):
        return type(value)(*(_convert_out(v, state) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_convert_out(v, state) for v in value)
    if isinstance(value, dict):
        return {k: _convert_out(v, state) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _convert_out(getattr(value, f.name), state)
                   for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value


_PLAIN_TYPES = frozenset({np.ndarray, int, float, bool, str, type(None)})


def _all_plain(args: tuple, kwargs: dict) -> bool:
    """True when every argument's exact type is in _PLAIN_TYPES, or is a list or tuple whose
    items' exact types all are (Tiger's lists of arrays). Loops: all() over a generator costs
    ~0.3 us per call."""
    for a in args:
        if type(a) not in _PLAIN_TYPES and not _plain_sequence(a):
            return False
    for v in kwargs.values():
        if type(v) not in _PLAIN_TYPES and not _plain_sequence(v):
            return False
    return True


def _plain_sequence(value: Any) -> bool:
    if type(value) is not list and type(value) is not tuple:  # (a namedtuple is neither)
        return False
    for v in value:
        if type(v) not in _PLAIN_TYPES:
            return False
    return True


def accepts_dlpack(fn: Callable) -> Callable:
    """Wrap a public function so foreign DLPack arrays work zero-copy (see the module docstring).

    Calls whose arguments are all NumPy/CuPy/scalars go straight through (one type check per
    argument)."""

    try:
        positional = [p.name for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        positional = []

    def arg_name(i: int) -> str:
        return positional[i] if i < len(positional) else f"argument {i}"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        # NumPy arrays and plain scalars need no conversion: straight through (exact types only;
        # subclasses, lists and everything else take the general path below).
        if _all_plain(args, kwargs):
            return fn(*args, **kwargs)
        state = _Conversion()
        new_args = [_convert_in(a, arg_name(i), state) for i, a in enumerate(args)]
        new_kwargs = {k: _convert_in(v, k, state) for k, v in kwargs.items()}
        result = fn(*new_args, **new_kwargs)
        return result if state.back is None else _convert_out(result, state)

    wrapper.__wrapped_by_fastcore_dlpack__ = True
    return wrapper


def export_dlpack(namespace: dict, names) -> None:
    """Wrap every public function named in ``names`` (a module's ``__all__``) in ``namespace``
    (a module's ``globals()``) with :func:`accepts_dlpack`. Classes are left alone: their methods
    take the arrays and are wrapped where they are defined."""
    for name in names:
        obj = namespace.get(name)
        if callable(obj) and not isinstance(obj, type) \
                and not getattr(obj, "__wrapped_by_fastcore_dlpack__", False):
            namespace[name] = accepts_dlpack(obj)
