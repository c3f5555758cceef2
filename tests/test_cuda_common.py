"""cuda/common through fastcore._cuda. The first group runs wherever the module was compiled
(CI compiles it; no GPU needed): import without a driver, versions, architectures, and CUDA
errors becoming fastcore.CudaError with CUDA's own text. The `cuda` group needs a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import fastcore

_cuda = pytest.importorskip("fastcore._cuda", reason="this build has no CUDA module")


def test_module_imports_and_reports_versions():
    assert _cuda.__version__ == fastcore.__version__
    assert _cuda.runtime_version() >= 12000
    assert _cuda.driver_version() >= 0
    assert _cuda.device_count() >= 0  # never raises, also without a driver


def test_compiled_architectures_are_explicit():
    archs = _cuda.compiled_architectures()
    assert archs, "no architecture compiled in"
    for a in archs:
        assert a.split("-")[0].isdigit(), a  # never 'native' or 'all'


@pytest.mark.parametrize("code, name, text", [(2, "cudaErrorMemoryAllocation", "out of memory"),
                                              (100, "cudaErrorNoDevice", "no CUDA-capable device")])
def test_cuda_errors_become_cuda_error_with_cuda_text(code, name, text):
    with pytest.raises(fastcore.CudaError) as info:
        _cuda._testing.raise_cuda_error(code)
    assert name in str(info.value) and text in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_success_code_does_not_raise():
    _cuda._testing.raise_cuda_error(0)


def test_device_query_without_device_raises_cleanly():
    if _cuda.device_count() > 0:
        pytest.skip("a GPU is present")
    with pytest.raises(fastcore.CudaError, match="CUDA error"):
        _cuda.device_info(0)


@pytest.mark.cuda
def test_device_info_is_cached_and_sane():
    info = _cuda.device_info()
    assert info["sm_count"] > 0 and info["shared_mem_per_block_optin"] >= info["shared_mem_per_block"]
    assert _cuda.device_info() == info


@pytest.mark.cuda
@pytest.mark.parametrize("nbytes, offset", [(0, 0), (1, 0), (15, 1), (1 << 20, 0), ((1 << 22) + 7, 3)])
def test_copy_probe_on_the_current_stream(nbytes, offset, rng):
    import cupy

    from fastcore._backend import stream_handle

    host = rng.integers(0, 255, nbytes + offset, dtype=np.uint8)
    src = cupy.asarray(host)
    dst = cupy.full(nbytes + offset, 0xAB, dtype=cupy.uint8)  # poisoned
    # src and dst were written on the legacy default stream, which a non-blocking stream does not
    # wait for (racecheck's slower launches exposed this): finish that work first.
    cupy.cuda.get_current_stream().synchronize()
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        _cuda._testing.copy(src.data.ptr + offset, dst.data.ptr + offset, nbytes, stream_handle())
    stream.synchronize()
    out = dst.get()
    assert np.array_equal(out[offset:], host[offset:])
    assert (out[:offset] == 0xAB).all()
