"""The shared validation helpers (fastcore._checks) reject bad input with a message naming the
argument and what was expected. Family tests check that their public functions use them."""

from __future__ import annotations

import numpy as np
import pytest

from fastcore import _checks as C
from fastcore._backend import device_of, is_cupy_array


class FakeCupyArray:
    """Stands in for cupy.ndarray (only the module name matters to the dispatcher)."""

    __module__ = "cupy._core.core"

    def __init__(self, shape=(3,), dtype=np.float32):
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.ndim = len(shape)
        self.size = int(np.prod(shape))


def test_check_array_accepts_and_returns(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    assert C.check_array(x, "x", dtypes=C.FLOAT_DTYPES, ndim=2, shape=(3, None), contiguous=True) is x


def test_check_array_wrong_type():
    with pytest.raises(TypeError, match=r"x: expected a NumPy or CuPy array, got list"):
        C.check_array([1.0, 2.0], "x")
    with pytest.raises(TypeError, match=r"weights: expected a NumPy or CuPy array, got str"):
        C.check_array("abc", "weights")


def test_check_array_convert_keeps_dtype():
    out = C.check_array([1.0, 2.0], "x", convert=True, dtypes=C.FLOAT_DTYPES)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    with pytest.raises(TypeError, match=r"x: expected dtype float32 or float64, got int64"):
        C.check_array([1, 2], "x", convert=True, dtypes=C.FLOAT_DTYPES)
    with pytest.raises(TypeError, match=r"x: expected a numeric array"):
        C.check_array([object()], "x", convert=True)
    with pytest.raises(TypeError, match=r"x: expected an array"):
        C.check_array(None, "x", convert=True)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.complex64, np.bool_])
def test_check_array_wrong_dtype(dtype):
    with pytest.raises(TypeError, match=rf"logits: expected dtype float32 or float64, got {np.dtype(dtype).name}"):
        C.check_array(np.zeros(3, dtype), "logits", dtypes=C.FLOAT_DTYPES)


def test_check_dtype_by_name_and_byte_order():
    C.check_dtype(np.zeros(2, np.float16), "x", C.GPU_FLOAT_DTYPES)
    with pytest.raises(TypeError, match=r"x: expected dtype float16, bfloat16, float32 or float64, got int8"):
        C.check_dtype(np.zeros(2, np.int8), "x", C.GPU_FLOAT_DTYPES)
    with pytest.raises(TypeError, match=r"x: expected native byte order, got dtype '>f8'"):
        C.check_dtype(np.zeros(2, ">f8"), "x", C.FLOAT_DTYPES)


def test_check_array_wrong_ndim_and_shape():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"x: expected a 3-d array, got 2-d with shape \(2, 3\)"):
        C.check_array(x, "x", ndim=3)
    with pytest.raises(ValueError, match=r"x: expected at least 3 dimension"):
        C.check_array(x, "x", min_ndim=3)
    with pytest.raises(ValueError, match=r"w1: expected shape \(2, 4\), got \(2, 3\)"):
        C.check_array(x, "w1", shape=(2, 4))
    with pytest.raises(ValueError, match=r"w1: expected shape \(\*, 4\), got \(2, 3\)"):
        C.check_array(x, "w1", shape=(None, 4))


def test_check_array_empty():
    with pytest.raises(ValueError, match=r"x: expected a non-empty array, got shape \(0, 3\)"):
        C.check_array(np.zeros((0, 3)), "x", allow_empty=False)
    C.check_array(np.zeros((0, 3)), "x")  # allowed by default


def test_check_array_non_contiguous(rng):
    x = rng.standard_normal((4, 6))
    with pytest.raises(ValueError, match=r"x: expected a C-contiguous array, got strides \(8, 48\)"):
        C.check_array(x.T, "x", contiguous=True)
    with pytest.raises(ValueError, match=r"C-contiguous"):
        C.check_array(x[:, ::2], "x", contiguous=True)


def test_check_array_read_only():
    x = np.zeros(4)
    x.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\]: array is read-only"):
        C.check_array(x, "params[0]", writeable=True)


def test_check_finite_names_the_first_bad_element(rng):
    x = rng.standard_normal((3, 4))
    x[1, 2] = np.nan
    x[2, 0] = np.inf
    with pytest.raises(ValueError, match=r"grad: expected finite values, found nan at index \(1, 2\)"):
        C.check_array(x, "grad", finite=True)
    x[1, 2] = 0
    with pytest.raises(ValueError, match=r"found inf at index \(2, 0\)"):
        C.check_finite(x, "grad")


def test_check_same_dtype():
    a, b = np.zeros(2, np.float32), np.zeros(2, np.float64)
    with pytest.raises(TypeError, match=r"w: expected dtype float32 \(the dtype of x\), got float64"):
        C.check_same_dtype(x=a, w=b)
    assert C.check_same_dtype(x=a, w=None, v=a) == np.float32


@pytest.mark.parametrize("axis, ndim, expected", [(0, 3, 0), (-1, 3, 2), (-3, 3, 0), (2, 3, 2), (np.int64(1), 2, 1)])
def test_normalize_axis(axis, ndim, expected):
    assert C.normalize_axis(axis, ndim) == expected


def test_normalize_axis_bad():
    with pytest.raises(ValueError, match=r"axis: axis 3 is out of range for a 3-d array \(expected -3 <= axis < 3\)"):
        C.normalize_axis(3, 3)
    with pytest.raises(ValueError, match=r"axis -4 is out of range"):
        C.normalize_axis(-4, 3)
    with pytest.raises(TypeError, match=r"axis: expected an integer axis, got float"):
        C.normalize_axis(1.0, 3)
    with pytest.raises(TypeError, match=r"axis: expected an integer axis, got bool"):
        C.normalize_axis(True, 3)
    with pytest.raises(ValueError, match=r"a 0-d array has no axis"):
        C.normalize_axis(0, 0)


def test_split_axis():
    assert C.split_axis((2, 3, 5, 7), 0) == (1, 2, 105)
    assert C.split_axis((2, 3, 5, 7), 2) == (6, 5, 7)
    assert C.split_axis((2, 3, 5, 7), 3) == (30, 7, 1)
    assert C.split_axis((4,), 0) == (1, 4, 1)
    # shapes that are not tuples of Python ints take the general path
    assert C.split_axis([2, np.int64(3), 5], 1) == (2, 3, 5)
    assert all(type(v) is int for v in C.split_axis([2, np.int64(3), 5], 1))


def test_check_dtype_fast_path_keeps_every_rule():
    """The module's dtype tuples are answered by membership; byte order and other dtypes still
    go through the full checks and their messages."""
    for dtype in C.FLOAT_DTYPES:
        assert C.check_dtype(np.zeros(2, dtype), "x", C.FLOAT_DTYPES) == dtype
        swapped = np.zeros(2, dtype.newbyteorder(">" if dtype.byteorder != ">" else "<"))
        with pytest.raises(TypeError, match=r"x: expected native byte order"):
            C.check_dtype(swapped, "x", C.FLOAT_DTYPES)
    with pytest.raises(TypeError, match=r"x: expected dtype float32 or float64, got float16"):
        C.check_dtype(np.zeros(2, np.float16), "x", C.FLOAT_DTYPES)
    assert C.check_dtype(np.zeros(2, np.complex64), "x", C.COMPLEX_DTYPES) == np.complex64
    assert C.check_dtype(np.zeros(2, np.float16), "x", C.GPU_FLOAT_DTYPES) == np.float16


def test_memory_bounds_and_overlap(rng):
    buf = rng.standard_normal(100)
    a, b = buf[:50], buf[50:]
    C.check_no_overlap(a, "out", b, "x")  # adjacent, disjoint
    with pytest.raises(ValueError, match=r"out: must not overlap x in memory"):
        C.check_no_overlap(buf[10:60], "out", buf[50:], "x")
    rev = buf[::-1]
    lo, hi = C.memory_bounds(rev)
    assert hi - lo == buf.nbytes
    with pytest.raises(ValueError):
        C.check_no_overlap(rev, "out", buf, "x")
    assert C.memory_bounds(buf[:0]) is None
    C.check_no_overlap(buf[:0], "out", buf, "x")  # empty never overlaps
    # interleaved views share no element but are refused (kernels may write in any order)
    with pytest.raises(ValueError):
        C.check_no_overlap(buf[::2], "out", buf[1::2], "x")


def test_check_out(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    out = np.empty((4, 5), np.float32)
    assert C.check_out(out, shape=x.shape, dtype=x.dtype, inputs={"x": x}, like=x) is out
    with pytest.raises(ValueError, match=r"out: expected shape \(4, 5\), got \(5, 4\)"):
        C.check_out(np.empty((5, 4), np.float32), shape=x.shape, dtype=x.dtype)
    with pytest.raises(TypeError, match=r"out: expected dtype float32, got float64"):
        C.check_out(np.empty((4, 5)), shape=x.shape, dtype=x.dtype)
    assert C.check_out(out, shape=x.shape, dtype=np.float32) is out  # a dtype-like, not a dtype
    with pytest.raises(TypeError, match=r"out: expected dtype float32, got >f4"):
        C.check_out(np.empty((4, 5), ">f4"), shape=x.shape, dtype=x.dtype)
    sub = np.empty((4, 5), np.float32).view(np.recarray)  # a subclass: the general device check
    assert C.check_out(sub, shape=x.shape, dtype=x.dtype, inputs={"x": x}, like=x) is sub
    with pytest.raises(ValueError, match=r"out: must not overlap x"):
        C.check_out(x, shape=x.shape, dtype=x.dtype, inputs={"x": x})
    with pytest.raises(ValueError, match=r"out: expected a C-contiguous"):
        C.check_out(np.empty((5, 4), np.float32).T, shape=x.shape, dtype=x.dtype)
    ro = np.empty((4, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"out: array is read-only"):
        C.check_out(ro, shape=x.shape, dtype=x.dtype)
    with pytest.raises(TypeError, match=r"out: expected a NumPy or CuPy array, got list"):
        C.check_out([0.0], shape=(1,), dtype=np.float64)
    with pytest.raises(ValueError, match=r"CPU/GPU mix"):
        C.check_out(out, shape=x.shape, dtype=x.dtype, like=FakeCupyArray())


def test_device_of_and_mixing():
    x = np.zeros(3)
    g = FakeCupyArray()
    assert is_cupy_array(g) and not is_cupy_array(x)
    assert device_of(x=x, w=x, b=None) == "cpu"
    assert device_of(x=g) == "cuda"
    with pytest.raises(ValueError, match=r"CPU/GPU mix: x is NumPy \(CPU\) but w1, w2 are CuPy \(GPU\)"):
        device_of(x=x, w1=g, w2=g)
    with pytest.raises(TypeError, match=r"x: expected a NumPy or CuPy array, got list"):
        device_of(x=[1, 2])


def test_check_scalar():
    assert C.check_scalar(3, "lr", lo=0) == 3.0
    assert C.check_scalar(np.float32(0.5), "beta", lo=0, hi=1, hi_inclusive=False) == 0.5
    with pytest.raises(ValueError, match=r"lr: expected a value >= 0, got -1.0"):
        C.check_scalar(-1, "lr", lo=0)
    with pytest.raises(ValueError, match=r"beta: expected a value < 1, got 1.0"):
        C.check_scalar(1.0, "beta", hi=1, hi_inclusive=False)
    with pytest.raises(ValueError, match=r"alpha: expected a value > 1, got 1.0"):
        C.check_scalar(1.0, "alpha", lo=1, lo_inclusive=False)
    with pytest.raises(ValueError, match=r"dt: expected a finite number, got nan"):
        C.check_scalar(float("nan"), "dt")
    with pytest.raises(ValueError, match=r"expected a finite number, got inf"):
        C.check_scalar(float("inf"), "dt")
    with pytest.raises(TypeError, match=r"scale: expected a real number, got str"):
        C.check_scalar("1", "scale")
    with pytest.raises(TypeError, match=r"scale: expected a real number, got bool"):
        C.check_scalar(True, "scale")
    with pytest.raises(TypeError, match=r"expected a real number, got complex"):
        C.check_scalar(1j, "scale")


def test_check_int():
    assert C.check_int(np.int32(4), "k", lo=1) == 4
    with pytest.raises(ValueError, match=r"k: expected an integer >= 1, got 0"):
        C.check_int(0, "k", lo=1)
    with pytest.raises(ValueError, match=r"k: expected an integer <= 10, got 11"):
        C.check_int(11, "k", hi=10)
    with pytest.raises(TypeError, match=r"n_steps: expected an integer, got float"):
        C.check_int(2.0, "n_steps")
    with pytest.raises(TypeError, match=r"expected an integer, got bool"):
        C.check_int(False, "n_steps")


def test_check_choice():
    assert C.check_choice("row", "rms_mode", ("none", "tensor", "row")) == "row"
    with pytest.raises(ValueError, match=r"rms_mode: expected one of 'none', 'tensor', 'row', got 'rows'"):
        C.check_choice("rows", "rms_mode", ("none", "tensor", "row"))
    with pytest.raises(TypeError, match=r"rms_mode: expected a string"):
        C.check_choice(None, "rms_mode", ("none",))


def test_check_index_array():
    t = C.check_index_array([0, 2, 1], "target", shape=(3,), hi=3)
    assert t.dtype.kind == "i"
    with pytest.raises(ValueError, match=r"target: expected values in \[0, 3\), got 3"):
        C.check_index_array(np.array([0, 3]), "target", hi=3)
    with pytest.raises(ValueError, match=r"got -1"):
        C.check_index_array(np.array([-1, 0]), "target", hi=3)
    with pytest.raises(TypeError, match=r"target: expected an integer array, got dtype float64"):
        C.check_index_array(np.array([0.0]), "target")
    with pytest.raises(ValueError, match=r"target: expected shape \(2,\), got \(3,\)"):
        C.check_index_array(np.array([0, 1, 2]), "target", shape=(2,))


def test_dtype_names():
    assert C.dtype_names([np.float32]) == "float32"
    assert C.dtype_names([np.float32, np.float64, np.complex64]) == "float32, float64 or complex64"
