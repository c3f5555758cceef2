"""DLPack interoperability (python/fastcore/_interop.py): foreign arrays in, same kind out,
zero-copy, in-place writes visible to the caller, clear errors for what cannot be viewed."""

from __future__ import annotations

import types

import numpy as np
import pytest

from fastcore._interop import accepts_dlpack, export_dlpack, is_foreign_array, to_native


class NoWayBack:
    """Exports DLPack but offers no from_dlpack anywhere."""

    def __init__(self, data):
        self._data = data

    def __dlpack__(self, **kwargs):
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()


class Foreign(NoWayBack):
    """A minimal array library speaking DLPack and the array-API namespace protocol."""

    def __array_namespace__(self, api_version=None):
        return types.SimpleNamespace(from_dlpack=lambda x: Foreign(np.from_dlpack(x)))


@accepts_dlpack
def scaled_sum(x, y=None, *, factor=2.0, out=None):
    """A stand-in public function: checks it got NumPy, returns (array, float)."""
    assert isinstance(x, np.ndarray)
    if out is None:
        out = np.empty_like(x)
    np.multiply(x if y is None else x + y, factor, out=out)
    return out, float(out.sum())


def test_native_arrays_pass_through_untouched(rng):
    x = rng.standard_normal(5)
    out, total = scaled_sum(x)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, 2 * x)
    assert not is_foreign_array(x) and not is_foreign_array(3.0)


def test_foreign_in_same_kind_out_zero_copy(rng):
    x = rng.standard_normal((3, 4))
    fx = Foreign(x)
    out, total = scaled_sum(fx, factor=3.0)
    assert isinstance(out, Foreign)
    np.testing.assert_array_equal(out._data, 3 * x)
    assert total == pytest.approx(float((3 * x).sum()))
    # The native view shares memory with the caller's buffer.
    view = to_native(fx, "x")
    assert np.shares_memory(view, x)


def test_out_argument_is_returned_as_the_callers_object(rng):
    x = rng.standard_normal(7)
    buffer = np.zeros(7)
    fout = Foreign(buffer)
    out, _ = scaled_sum(Foreign(x), Foreign(x), out=fout)
    assert out is fout
    np.testing.assert_array_equal(buffer, 4 * x)   # written in place, through DLPack


def test_lists_of_foreign_arrays_are_converted(rng):
    seen = []

    @accepts_dlpack
    def first_of_list(arrays):
        seen.extend(type(a) for a in arrays)
        return arrays[0] * 1.0

    result = first_of_list([Foreign(rng.standard_normal(2)), Foreign(rng.standard_normal(3))])
    assert seen == [np.ndarray, np.ndarray]
    assert isinstance(result, Foreign)


def test_unconvertible_kind_fails_before_work(rng):
    calls = []

    @accepts_dlpack
    def record(x):
        calls.append(x)
        return x

    with pytest.raises(TypeError, match="x: .*NoWayBack.*from_dlpack"):
        record(NoWayBack(rng.standard_normal(2)))
    assert calls == []


def test_export_dlpack_wraps_functions_not_classes():
    def f(x):
        return x

    class C:
        pass

    namespace = {"f": f, "C": C, "__name__": "m"}
    export_dlpack(namespace, ["f", "C"])
    assert namespace["f"] is not f and namespace["f"].__wrapped__ is f
    assert namespace["C"] is C
    wrapped = namespace["f"]
    export_dlpack(namespace, ["f"])                 # idempotent
    assert namespace["f"] is wrapped


# --- PyTorch (skipped only when torch is not installed) ---------------------------------------

def test_torch_tensors_round_trip(rng):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(rng.standard_normal((4, 5)))
    out, _ = scaled_sum(x, factor=0.5)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    torch.testing.assert_close(out, 0.5 * x, rtol=0, atol=0)


def test_torch_out_written_in_place(rng):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(rng.standard_normal(6).astype(np.float32))
    out = torch.empty(6)
    result, _ = scaled_sum(x, out=out)
    assert result is out
    torch.testing.assert_close(out, 2 * x, rtol=0, atol=0)


def test_torch_requires_grad_is_refused_with_advice():
    torch = pytest.importorskip("torch")
    x = torch.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"x: .*requires grad.*fastcore\.torch.*detach"):
        scaled_sum(x)


def test_torch_lazily_negated_or_conjugated_views_are_refused():
    """torch hands DLPack the memory of a negated view without its pending negation (z.conj().imag
    came through with the wrong sign): refused with the fix, and the resolved tensor works."""
    torch = pytest.importorskip("torch")
    import fastcore

    z = torch.tensor([[1 + 2j, 3 - 4j]], dtype=torch.complex64)
    negated = z.conj().imag  # values [[-2, 4]], stored as [[2, -4]] with the negative bit
    assert negated.is_neg()
    with pytest.raises(TypeError, match=r"x: .*lazily negated.*x\.resolve_neg\(\)"):
        fastcore.softmax(negated)
    expected = fastcore.softmax(np.array([[-2.0, 4.0]], np.float32))
    np.testing.assert_array_equal(fastcore.softmax(negated.resolve_neg()).numpy(), expected)
    with pytest.raises(TypeError, match=r"x: .*lazily conjugated.*resolve_conj"):
        scaled_sum(z.conj())


def test_torch_dtype_numpy_cannot_view_is_a_type_error():
    torch = pytest.importorskip("torch")
    x = torch.ones(3, dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="x: cannot view .*bfloat16"):
        scaled_sum(x)


def test_torch_tensors_dlpack_cannot_export_are_a_type_error_naming_the_argument():
    """torch's own errors for a meta tensor (no data; DLPack knows no 'meta' device), a sparse
    and an MKL-DNN tensor come back as a TypeError naming the argument, before any kernel."""
    torch = pytest.importorskip("torch")
    tensors = [torch.zeros(3, 4, device="meta"), torch.zeros(3, 4).to_sparse()]
    if torch.backends.mkldnn.is_available():
        tensors.append(torch.zeros(3, 4).to_mkldnn())
    for t in tensors:
        with pytest.raises(TypeError, match=r"^x: cannot view this Tensor"):
            scaled_sum(t)


def test_public_functions_take_torch_tensors(rng):
    torch = pytest.importorskip("torch")
    import fastcore

    x = torch.from_numpy(rng.standard_normal((3, 7)).astype(np.float32))
    y = fastcore.sparsemax(x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), fastcore.sparsemax(x.numpy()))
    loss, grad = fastcore.activations.softmax_cross_entropy(x, torch.tensor([0, 6, 3]))
    assert isinstance(loss, torch.Tensor) and isinstance(grad, torch.Tensor)
    # In place through DLPack: the optimizer updates the caller's tensors.
    p = torch.from_numpy(rng.standard_normal(10).astype(np.float32))
    before = p.clone()
    fastcore.tiger_step([p], [torch.ones(10)], [torch.zeros(10)], step=0, lr=0.1)
    assert not torch.equal(p, before)
