"""fastcore.monarch on CUDA (CuPy arrays): the fused kernel (cuda/monarch) and the CuPy fallback
against the float64 oracle (fastcore.reference.monarch; the dense permutation-matrix form up to
n = 1024, the equivalent float64 step-by-step form at n = 4096). Needs a GPU and CuPy (marker `cuda`;
skipped elsewhere). Outputs are poisoned (NaN-filled `out=`) before each fused call so an unwritten
element fails, and every test asserts which path ran (`monarch._gpu_plan`).

Tolerances, on max|got - want| relative to max|want|, the reference computed in float64 from the
inputs as stored (16-bit inputs are rounded before the reference sees them):
- float32: 1e-5 (notes/monarch.md §5). Each output is two float32 FMA chains of P and R terms,
  rounding error ~ u32·√(P+R) ≈ 6e-8·16 relative to the row scale at n = 4096.
- float16 / bfloat16 with float32 accumulation: eps16·(1 + √R/4) with eps16 = 2⁻¹⁰ / 2⁻⁷. The
  output is rounded once to 16 bits (≤ eps16/2 relative), and on the tensor-core path the
  intermediate is rounded once too (the WMMA A operand is 16-bit): those R roundings of relative
  size ≤ eps16/2 enter each output through a sum of R terms, ~ eps16/2·√R·(row scale) at worst.
  Accumulation in float32 adds ~ u32·√(P+R), negligible here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gpu_arrays import cupy, on_gpu, storage

from fastcore import monarch as M
from fastcore.reference import monarch as R
from fastcore.testing import to_numpy, unit_roundoff

pytestmark = pytest.mark.cuda

DTYPES = ["float32", "float16", "bfloat16"]

# (w1 shape, w2 shape, what it exercises)
SHAPES = [
    ((4, 4, 4), (4, 4, 4)),          # n = 16: blocks of 4, SIMT for every dtype
    ((32, 32, 32), (32, 32, 32)),    # n = 1024: tensor cores for 16-bit
    ((64, 64, 64), (64, 64, 64)),    # n = 4096: the shared-memory bound (16-bit: 128 KiB tile)
    ((16, 64, 64), (64, 16, 16)),    # n = 1024 with nblocks != sqrt(n), L != K
    ((8, 192, 96), (24, 16, 64)),    # the reference's rectangular 768 -> 384
    ((3, 5, 7), (5, 2, 3)),          # odd block sizes (SIMT fallback), L != K
    ((4, 24, 24), (8, 12, 12)),      # block sizes that are not multiples of 16 (SIMT for 16-bit)
    ((1, 1, 1), (1, 1, 1)),
]


def device_info():
    from fastcore import _backend

    return _backend.cuda().device_info()


def host64(a):
    """The stored values (after rounding to the storage type) in float64."""
    return to_numpy(a).astype(np.float64)


def tol(dtype_name, w2_shape):
    if dtype_name == "float32":
        return 1e-5
    eps16 = 2 * unit_roundoff(storage(dtype_name))   # machine epsilon: 2^-10 float16, 2^-7 bfloat16
    return eps16 * (1 + math.sqrt(w2_shape[2]) / 4)


def oracle(x, w1, w2, adjoint=False):
    x, w1, w2 = host64(x), host64(w1), host64(w2)
    big = w1.shape[0] * w1.shape[1] > 1024
    if adjoint:
        return R.multiply_adjoint(x, w1, w2)
    return R.multiply_steps(x, w1, w2) if big else R.multiply(x, w1, w2)


def assert_close(got, want, dtype_name, w2_shape, what=""):
    got = host64(got)
    assert got.shape == want.shape
    assert np.all(np.isfinite(got)), f"{what}: non-finite output (an element was not written?)"
    err = np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30)
    assert err <= tol(dtype_name, w2_shape), f"{what}: relative error {err:.3g} > {tol(dtype_name, w2_shape):.3g}"


def draw(rng, s1, s2, lead, dtype_name, adjoint=False):
    # Weights scaled by 1/sqrt(block input) so every stage keeps values O(1) (float16 range).
    w1 = on_gpu(rng.standard_normal(s1) / math.sqrt(s1[2]), dtype_name)
    w2 = on_gpu(rng.standard_normal(s2) / math.sqrt(s2[2]), dtype_name)
    n = s2[0] * s2[1] if adjoint else s1[0] * s1[2]
    v = on_gpu(rng.standard_normal(tuple(lead) + (n,)), dtype_name)
    return v, w1, w2


def poisoned(shape, like):
    # (fastcore.testing.poisoned picks the fill from the NumPy dtype kind; bfloat16's kind is 'V')
    out = cupy().empty(shape, dtype=like.dtype)
    out.fill(np.nan)
    return out


def expected_kernel(dtype_name, s1, s2, batch, adjoint=False):
    """The kernel plan() must choose for the shapes of this file on any compute capability >= 8.0
    GPU (their tiles fit in 99 KiB of shared memory except n = 4096, which is checked apart)."""
    major = device_info()["compute_capability"][0]
    sixteen = dtype_name != "float32"
    tc_shape = all(d % 16 == 0 for d in (s1[1], s1[2], s2[1], s2[2]))
    if sixteen and tc_shape and not adjoint and batch >= 16 and major >= 8:
        return "tensor_core"
    return "simt"


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("s1, s2", SHAPES)
@pytest.mark.parametrize("lead", [(1,), (7,), (2, 9), (37,)])
def test_fused_multiply_matches_oracle(rng, dtype_name, s1, s2, lead):
    """B = 1, odd B, several leading dims; B = 18 and 37 on the tensor-core path leave 2 and 5
    rows to the SIMT kernel in a second launch."""
    x, w1, w2 = draw(rng, s1, s2, lead, dtype_name)
    plan = M._gpu_plan(x, w1, w2)
    batch = math.prod(lead)
    if s1 == (64, 64, 64):
        assert plan["kernel"] in ("tensor_core", "simt"), plan  # depends on the GPU's shared memory
    else:
        assert plan["kernel"] == expected_kernel(dtype_name, s1, s2, batch), plan
    if plan["kernel"] == "tensor_core":
        assert plan["tc_rows"] == batch // 16 * 16
    out = poisoned(tuple(lead) + (s2[0] * s2[1],), x)
    y = M.multiply(x, w1, w2, out=out)
    assert y is out and y.dtype == x.dtype
    assert_close(y, oracle(x, w1, w2), dtype_name, s2, f"{plan}")
    # without out= too (the result array is allocated by multiply)
    assert_close(M.multiply(x, w1, w2), oracle(x, w1, w2), dtype_name, s2, "no out")


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("s1, s2", [s for s in SHAPES if s[0] != (64, 64, 64)])
@pytest.mark.parametrize("lead", [(1,), (3, 5)])
def test_fused_adjoint_matches_oracle(rng, dtype_name, s1, s2, lead):
    y, w1, w2 = draw(rng, s1, s2, lead, dtype_name, adjoint=True)
    assert M._gpu_plan(y, w1, w2, adjoint=True)["kernel"] == "simt"
    out = poisoned(tuple(lead) + (s1[0] * s1[2],), y)
    x = M.multiply_adjoint(y, w1, w2, out=out)
    assert x is out
    # the adjoint's inner sums run over S then Q terms: the same bound with the larger of them
    assert_close(x, oracle(y, w1, w2, adjoint=True), dtype_name, (0, 0, max(s2[1], s1[1])), "adjoint")


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_adjoint_n4096(rng, dtype_name):
    s = (64, 64, 64)
    y, w1, w2 = draw(rng, s, s, (5,), dtype_name, adjoint=True)
    # the oracle's step-by-step dx = dy conj(M) (notes §2; x only enters dw1/dw2)
    want = R.multiply_backward(np.zeros((5, 4096)), host64(w1), host64(w2), host64(y))[0]
    assert_close(M.multiply_adjoint(y, w1, w2), want, dtype_name, (0, 0, 64), "adjoint n=4096")


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_backward_dx_fused_and_weight_grads(rng, dtype_name):
    s1, s2 = (8, 192, 96), (24, 16, 64)
    x, w1, w2 = draw(rng, s1, s2, (2, 3), dtype_name)
    dy = on_gpu(rng.standard_normal((2, 3, 384)), dtype_name)
    dx, dw1, dw2 = M.multiply_backward(x, w1, w2, dy)
    rdx, rdw1, rdw2 = R.multiply_backward(host64(x), host64(w1), host64(w2), host64(dy))
    assert_close(dx, rdx, dtype_name, (0, 0, 192), "dx")
    # dw1, dw2 still come from the CuPy composition (float32 arithmetic, one rounding at the end)
    assert_close(dw1, rdw1, dtype_name, (0, 0, 16), "dw1")
    assert_close(dw2, rdw2, dtype_name, (0, 0, 16), "dw2")


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_fused_agrees_with_cupy_fallback(rng, dtype_name):
    s1 = s2 = (32, 32, 32)
    x, w1, w2 = draw(rng, s1, s2, (21,), dtype_name)
    fused = host64(M.multiply(x, w1, w2))
    composed = host64(M._gpu_multiply(x, w1, w2))
    want = oracle(x, w1, w2)
    err = np.max(np.abs(fused - composed)) / np.max(np.abs(want))
    assert err <= 2 * tol(dtype_name, s2)


def test_too_large_intermediate_falls_back_to_cupy(rng):
    """K·Q = 65536 float32 intermediates (256 KiB for one row) exceed every GPU's shared memory per
    block: plan() says 'none', multiply launches nothing fused and the CuPy path gives the result."""
    s1, s2 = (64, 1024, 1), (1024, 1, 64)
    for dtype_name in DTYPES:
        x, w1, w2 = draw(rng, s1, s2, (3,), dtype_name)
        assert M._gpu_plan(x, w1, w2)["kernel"] == "none"
        assert M._gpu_plan(x[:1], w1, w2)["kernel"] == "none"
        assert_close(M.multiply(x, w1, w2), R.multiply_steps(host64(x), host64(w1), host64(w2)),
                     dtype_name, s2, "fallback")


def test_few_rows_per_tile_falls_back_to_cupy(rng):
    """An intermediate for which only 1-3 rows fit in shared memory: with B >= 4 the weights would be
    re-read from L2 for every row or two, so plan() declines (cuBLAS path); B = 1 still runs fused."""
    optin = device_info()["shared_mem_per_block_optin"]
    n_mid = (optin // 4 // 2) // 16 * 16            # 2 float32 rows fit, 4 do not
    K = 16
    Q = n_mid // K
    s1, s2 = (K, Q, 1), (Q, 1, K)                   # n_in = 16, n_mid = K·Q, n_out = Q
    x, w1, w2 = draw(rng, s1, s2, (5,), "float32")
    assert M._gpu_plan(x, w1, w2)["kernel"] == "none"
    assert M._gpu_plan(x[:1], w1, w2)["kernel"] == "simt"
    want = R.multiply_steps(host64(x), host64(w1), host64(w2))
    assert_close(M.multiply(x, w1, w2), want, "float32", s2, "declined")
    assert_close(M.multiply(x[:1], w1, w2), want[:1], "float32", s2, "B=1 fused")


def test_cupy_path_cases(rng):
    """complex64 and non-contiguous operands are never offered to the fused kernel."""
    cp = cupy()
    s1 = s2 = (4, 8, 8)
    w1 = cp.asarray((rng.standard_normal(s1) + 1j * rng.standard_normal(s1)).astype(np.complex64))
    w2 = cp.asarray((rng.standard_normal(s2) + 1j * rng.standard_normal(s2)).astype(np.complex64))
    x = cp.asarray((rng.standard_normal((3, 32)) + 1j * rng.standard_normal((3, 32))).astype(np.complex64))
    assert M._gpu_plan(x, w1, w2)["kernel"] == "cupy"
    got = cp.asnumpy(M.multiply(x, w1, w2))
    want = R.multiply(cp.asnumpy(x), cp.asnumpy(w1), cp.asnumpy(w2))
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))
    xr, w1r, w2r = draw(rng, s1, s2, (6,), "float32")
    xs = xr[::2]                                    # rows 0, 2, 4: not C-contiguous
    assert M._gpu_plan(xs, w1r, w2r)["kernel"] == "cupy"
    assert_close(M.multiply(xs, w1r, w2r), oracle(xs, w1r, w2r), "float32", s2, "strided")


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_misaligned_input_uses_simt(rng, dtype_name):
    """A C-contiguous x that starts 2 bytes past a 32-byte boundary cannot feed WMMA loads: plan()
    picks the SIMT kernel, and the result is still right."""
    s1 = s2 = (32, 32, 32)
    _, w1, w2 = draw(rng, s1, s2, (1,), dtype_name)
    buf = on_gpu(rng.standard_normal(20 * 1024 + 1), dtype_name)   # CuPy allocations are 256-byte aligned
    x = buf[1:].reshape(20, 1024)
    assert x.flags.c_contiguous and x.data.ptr % 32 != 0
    assert M._gpu_plan(x, w1, w2)["kernel"] == "simt"
    assert_close(M.multiply(x, w1, w2), oracle(x, w1, w2), dtype_name, s2, "misaligned")


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_non_default_stream(rng, dtype_name):
    """The kernel runs on the current CuPy stream: inputs written and outputs read on a
    non-blocking stream (no implicit synchronisation with the legacy default stream)."""
    cp = cupy()
    s1 = s2 = (32, 32, 32)
    x_host = rng.standard_normal((53, 1024))
    w1_host = rng.standard_normal(s1) / math.sqrt(32)
    w2_host = rng.standard_normal(s2) / math.sqrt(32)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        x, w1, w2 = on_gpu(x_host, dtype_name), on_gpu(w1_host, dtype_name), on_gpu(w2_host, dtype_name)
        for _ in range(3):  # queue several launches behind each other on the same stream
            y = M.multiply(x, w1, w2)
            xa = M.multiply_adjoint(y, w1, w2)
        y_host, xa_host = cp.asnumpy(y, stream=stream), cp.asnumpy(xa, stream=stream)
    stream.synchronize()
    want = oracle(x, w1, w2)
    assert_close(y_host, want, dtype_name, s2, "stream")
    assert_close(xa_host, R.multiply_adjoint(host64(y_host), host64(w1), host64(w2)),
                 dtype_name, s2, "stream adjoint")


def test_bad_sizes_rejected_by_compiled_code():
    """The C++ launcher re-checks what Python validated (the second line of defence)."""
    from fastcore import _backend

    mon = _backend.cuda().monarch
    with pytest.raises(ValueError):
        mon.plan(0, False, 256, 256, 256, 4, 2, 3, 4, 5, 6, 7)      # L·R != K·Q
    with pytest.raises(ValueError):
        mon.plan(7, False, 256, 256, 256, 4, 2, 2, 2, 2, 2, 2)      # unknown dtype code
    with pytest.raises(ValueError):
        mon.multiply(0, False, 0, 0, 0, 0, 4, 2, 2, 2, 2, 2, 2, 0)  # null pointers
    assert mon.multiply(0, False, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 0)  # B = 0: nothing to do
