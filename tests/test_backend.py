"""Dispatch: NumPy never touches CUDA; a CuPy array without a usable GPU gets a clear error."""

from __future__ import annotations

import pytest

import fastcore
from fastcore import _backend
from fastcore._errors import BackendUnavailableError


def test_cpu_module_is_the_compiled_one():
    from fastcore import _cpu

    assert _backend.cpu() is _cpu


def test_cuda_unavailable_reason_is_consistent():
    reason = _backend.cuda_unavailable_reason()
    assert fastcore.cuda_available() == (reason is None)
    if reason is not None:
        with pytest.raises(BackendUnavailableError, match="a CuPy \\(GPU\\) array was given, but"):
            _backend.cuda()
    else:
        assert _backend.cuda() is not None


def test_error_classes():
    assert issubclass(fastcore.CudaError, RuntimeError)
    assert issubclass(fastcore.BackendUnavailableError, RuntimeError)


def test_missing_cuda_module_reason(monkeypatch):
    # A build without the CUDA module says so (simulated by making the import fail).
    _backend._cuda_module.cache_clear()
    real_import = _backend.importlib.import_module

    def fake_import(name, *args):
        if name == "fastcore._cuda":
            raise ImportError("No module named 'fastcore._cuda'")
        return real_import(name, *args)

    monkeypatch.setattr(_backend.importlib, "import_module", fake_import)
    try:
        reason = _backend.cuda_unavailable_reason()
        assert "no CUDA module" in reason
        with pytest.raises(BackendUnavailableError, match="no CUDA module"):
            _backend.cuda()
    finally:
        monkeypatch.undo()
        _backend._cuda_module.cache_clear()


@pytest.mark.cuda
def test_stream_handle_is_the_current_cupy_stream():
    import cupy

    s = cupy.cuda.Stream(non_blocking=True)
    with s:
        assert _backend.stream_handle() == s.ptr
    assert _backend.stream_handle() == cupy.cuda.get_current_stream().ptr
