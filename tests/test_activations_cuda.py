"""fastcore.activations on CUDA (CuPy arrays) against the float64 references: every map, every
row schedule (last axis: a warp per row up to 2 KiB rows, a block per row above, from a
shared-memory copy of the row when it fits and from global memory when it does not
(n = 70001 float32/float64; 30001 for backward); other
axes: a warp per column, or a thread per column from 2**18 columns on), masks, NaN rows,
long rows, the backward passes, losses and top-k; outputs poisoned (NaN-filled) before each call
so an unwritten element fails. Needs a GPU and CuPy (marker `cuda`; skipped elsewhere).

Tolerances: float64 as on the CPU (1e-12); float32 storage computes in float32 (CUDA's expf is
<= 2 ulp; sums in float32): 5e-6 absolute on probabilities; float16 / bfloat16 storage: the float32
result rounded once to the storage type: half an ulp of 1 plus the float32 error, 1e-3 / 8e-3.
The sparse-map thresholds are iterated in float64 on every dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
from gpu_arrays import cupy, on_gpu, storage

from fastcore import activations as A
from fastcore.reference import activations as R

pytestmark = pytest.mark.cuda

MAPS = ["softmax", "log_softmax", "sparsemax", "entmax15"]
TOL = {"float64": 1e-12, "float32": 5e-6, "float16": 1e-3, "bfloat16": 8e-3}


def poisoned_like(x):
    cp = cupy()
    out = cp.empty(x.shape, dtype=x.dtype)
    out.fill(np.nan)
    return out


def check(name, got, want, dtype_name):
    got = cupy().asnumpy(got).astype(np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    tol = TOL[dtype_name]
    if name == "log_softmax":
        np.testing.assert_allclose(got[finite], want[finite], rtol=tol * 4, atol=tol * 4)
    else:
        np.testing.assert_allclose(got[finite], want[finite], atol=tol)


@pytest.mark.parametrize("dtype_name", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape, axis", [((7, 1), -1), ((5, 33), -1), ((3, 1025), -1),
                                         ((2, 70001), -1), ((33, 6), 0), ((4, 129, 5), 1)])
def test_forward_maps_match_reference(rng, dtype_name, shape, axis):
    x_host = (rng.standard_normal(shape) * 3).astype(np.float32)
    x = on_gpu(x_host, dtype_name)
    x_exact = cupy().asnumpy(x).astype(np.float64)    # the values the GPU actually sees
    for name in MAPS:
        out = poisoned_like(x)
        y = getattr(A, name)(x, axis=axis, out=out)
        assert y is out
        check(name, y, getattr(R, name)(x_exact, axis=axis), dtype_name)


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_many_columns_take_the_thread_per_column_schedule(rng, dtype_name):
    """2**18 + 3 columns (a thread per column): the first and last 1000 columns against the
    reference (columns are independent, and the NumPy reference is slow on this many), every
    column written (no poison left) and summing to 1; the backward passes likewise."""
    cp = cupy()
    shape = (3, (1 << 18) + 3)
    x_host = rng.standard_normal(shape)
    dy_host = rng.standard_normal(shape)
    x, dy = on_gpu(x_host, dtype_name), on_gpu(dy_host, dtype_name)
    x_exact, dy_exact = cp.asnumpy(x).astype(np.float64), cp.asnumpy(dy).astype(np.float64)
    ends = np.r_[0:1000, shape[1] - 1000:shape[1]]
    tol = TOL[dtype_name]
    backward = {"softmax": (A.softmax_backward, R.softmax_backward),
                "log_softmax": (A.log_softmax_backward, R.log_softmax_backward),
                "sparsemax": (A.sparsemax_backward, R.sparsemax_backward),
                "entmax15": (A.entmax15_backward, R.entmax15_backward)}
    for name in MAPS:
        y = getattr(A, name)(x, axis=0, out=poisoned_like(x))
        y_host = cp.asnumpy(y).astype(np.float64)
        if name != "log_softmax":
            np.testing.assert_allclose(y_host.sum(axis=0), 1.0, atol=10 * tol)
        else:
            assert np.isfinite(y_host).all()
        check(name, y_host[:, ends], getattr(R, name)(x_exact[:, ends], axis=0), dtype_name)
        fn, ref = backward[name]
        got = cp.asnumpy(fn(y, dy, axis=0, out=poisoned_like(y))).astype(np.float64)
        assert np.isfinite(got).all()
        want = ref(y_host[:, ends], dy_exact[:, ends], axis=0)
        np.testing.assert_allclose(got[:, ends], want, atol=tol * 20, rtol=tol * 20)


@pytest.mark.parametrize("dtype_name", ["float64", "float32", "bfloat16"])
def test_short_rows_take_a_warp_each(rng, dtype_name):
    """Rows of at most 2 KiB take a warp each, 8 rows a block; longer rows a block each. n on both
    sides of the switch, 1003 rows (not a multiple of 8: the last block is partly idle), a NaN
    row and a fully masked row on the warp schedule; forward against the reference, backward
    against the CPU kernels in float64 on the same values (the reference's n x n Jacobians are
    too slow for 1003 rows)."""
    cp = cupy()
    short = 2048 // storage(dtype_name).itemsize
    backward = {"softmax": A.softmax_backward, "log_softmax": A.log_softmax_backward,
                "sparsemax": A.sparsemax_backward, "entmax15": A.entmax15_backward}
    for n in (short, short + 1):
        x_host = rng.standard_normal((1003, n)) * 3
        x_host[500, n // 2] = np.nan
        mask_host = np.ones((1003, n), dtype=bool)
        mask_host[7] = False
        x, dy = on_gpu(x_host, dtype_name), on_gpu(rng.standard_normal((1003, n)), dtype_name)
        mask = cp.asarray(mask_host)
        x_exact, dy_exact = cp.asnumpy(x).astype(np.float64), cp.asnumpy(dy).astype(np.float64)
        for name in MAPS:
            y = getattr(A, name)(x, mask=mask, out=poisoned_like(x))
            want = getattr(R, name)(x_exact, mask=mask_host)
            check(name, y, want, dtype_name)
            got = cp.asnumpy(backward[name](y, dy, out=poisoned_like(y))).astype(np.float64)
            y_exact = cp.asnumpy(y).astype(np.float64)
            np.testing.assert_allclose(got, backward[name](y_exact, dy_exact), atol=TOL[dtype_name] * 20,
                                       rtol=TOL[dtype_name] * 20)


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_masks_nan_rows_and_scale(rng, dtype_name):
    cp = cupy()
    x_host = rng.standard_normal((6, 300))
    mask_host = rng.random((6, 300)) > 0.3
    mask_host[2] = False
    x_host[4, 17] = np.nan
    x = on_gpu(x_host, dtype_name)
    mask = cp.asarray(mask_host)
    for name in MAPS:
        want = getattr(R, name)(x_host.astype(dtype_name), scale=0.7, mask=mask_host)
        check(name, getattr(A, name)(x, scale=0.7, mask=mask), want, dtype_name)
    for alpha in (1.3, 2.5):
        want = R.entmax_bisect(x_host.astype(dtype_name), alpha, mask=mask_host)
        got = cp.asnumpy(A.entmax_bisect(x, alpha, mask=mask))
        np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("alpha", [1.05, 1.3, 1.7, 2.5])
@pytest.mark.parametrize("shape, axis", [((9, 200), -1), ((5, 3000), -1), ((300, 7), 0), ((6, 2**18), 0)])
def test_entmax_bisect_on_every_schedule(rng, alpha, shape, axis):
    """alpha-entmax's threshold iteration (Halley steps for alpha <= 1.5, Newton up to 2, the
    alpha > 2 vanishing-step test) on every schedule: a warp per short row (200 float64 = 1.6 KiB),
    a block per long row, a warp per column, a thread per column (2**18 columns). float64 against
    the CPU kernels (which match the reference to 1e-12; the reference itself is a Python loop per
    column) to 1e-11. The bisection safeguard would hide a broken step from that comparison, so
    for alpha <= 2 a budget of 40 steps must give the converged bits: Newton/Halley converge in
    far fewer, bisection alone would still be ~2^-40 off."""
    cp = cupy()
    x_host = rng.standard_normal(shape) * 3
    x = cp.asarray(x_host)
    got = A.entmax_bisect(x, alpha, axis=axis, out=poisoned_like(x))
    want = A.entmax_bisect(x_host, alpha, axis=axis)
    np.testing.assert_allclose(cp.asnumpy(got), want, atol=1e-11, rtol=1e-11)
    if alpha <= 2:
        assert cp.array_equal(A.entmax_bisect(x, alpha, axis=axis, n_iter=40), got)
    # an n_iter stop renormalises with a pass of its own (a converged iteration reuses its sum)
    stopped = cp.asnumpy(A.entmax_bisect(x, alpha, axis=axis, n_iter=2))
    np.testing.assert_allclose(stopped.sum(axis=axis), 1.0, atol=1e-12)
    got32 = A.entmax_bisect(x.astype(cp.float32), alpha, axis=axis)
    np.testing.assert_allclose(cp.asnumpy(got32), A.entmax_bisect(x_host.astype(np.float32), alpha, axis=axis),
                               atol=TOL["float32"])


@pytest.mark.parametrize("dtype_name", ["float64", "float32", "bfloat16"])
@pytest.mark.parametrize("shape, axis", [((40, 37), -1), ((40, 37), 0), ((2, 30001), -1)])
def test_backward_matches_reference(rng, dtype_name, shape, axis):
    x_host = rng.standard_normal(shape).astype(np.float32)
    dy_host = rng.standard_normal(shape).astype(np.float32)
    backward = {"softmax": (A.softmax_backward, R.softmax_backward),
                "log_softmax": (A.log_softmax_backward, R.log_softmax_backward),
                "sparsemax": (A.sparsemax_backward, R.sparsemax_backward),
                "entmax15": (A.entmax15_backward, R.entmax15_backward)}
    for name, (fn, ref) in backward.items():
        y = getattr(A, name)(on_gpu(x_host, dtype_name), axis=axis)
        dy = on_gpu(dy_host, dtype_name)
        y_exact = cupy().asnumpy(y).astype(np.float64)
        dy_exact = cupy().asnumpy(dy).astype(np.float64)
        got = cupy().asnumpy(fn(y, dy, axis=axis, out=poisoned_like(y), scale=1.5)).astype(np.float64)
        if y_exact.shape[axis] <= 4096:
            want = ref(y_exact, dy_exact, axis=axis, scale=1.5)
        else:  # the reference forms n x n Jacobians (40 s at n = 30001): the CPU kernels, which
            # are tested against it, in float64 on the same values
            want = fn(y_exact, dy_exact, axis=axis, scale=1.5)
        np.testing.assert_allclose(got, want, atol=TOL[dtype_name] * 20, rtol=TOL[dtype_name] * 20)


def test_losses_and_topk_on_gpu(rng):
    cp = cupy()
    x_host = rng.standard_normal((9, 21))
    target = rng.integers(0, 21, size=9)
    for fn, ref in ((A.softmax_cross_entropy, R.softmax_cross_entropy),
                    (A.sparsemax_loss, R.sparsemax_loss), (A.entmax15_loss, R.entmax15_loss)):
        loss, grad = fn(cp.asarray(x_host), cp.asarray(target))
        want_loss, want_grad = ref(x_host, target)
        np.testing.assert_allclose(cp.asnumpy(loss), want_loss, atol=1e-12)
        np.testing.assert_allclose(cp.asnumpy(grad), want_grad, atol=1e-12)
    tied = cp.asarray(np.array([[1.0, 3.0, 2.0, 2.0, 2.0, 0.0]]))
    assert np.array_equal(cp.asnumpy(A.topk_softmax(tied, 3)) > 0, [[False, True, True, True, False, False]])
    np.testing.assert_allclose(cp.asnumpy(A.topk_softmax(cp.asarray(x_host), 5)), R.topk_softmax(x_host, 5),
                               atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_gradient_of_a_confident_row_on_gpu(dtype):
    """p_t - 1 formed as -(the sum of the other p) on the CuPy path too (tests/test_activations.py
    has the CPU version): softmax 1 - p_t against its exact value k e^-g / (1 + k e^-g)."""
    cp = cupy()
    n, k = 9, 8
    for gap in ([12.0, 14.0, 16.0] if dtype == np.float32 else [25.0, 28.0, 30.0]):
        x = np.zeros((2, n), dtype)
        x[0, 0] = x[1, 4] = gap
        target = np.array([0, 4])
        _, grad = A.softmax_cross_entropy(cp.asarray(x), cp.asarray(target))
        got = -cp.asnumpy(grad)[[0, 1], target].astype(np.float64)
        want = k * np.exp(-gap) / (1 + k * np.exp(-gap))
        np.testing.assert_allclose(got, want, rtol=3e-6 if dtype == np.float32 else 1e-13)


def test_runs_on_the_current_stream_and_is_deterministic(rng):
    cp = cupy()
    x = cp.asarray(rng.standard_normal((300, 2049)).astype(np.float32))
    cp.cuda.get_current_stream().synchronize()  # x is written on the default stream
    with cp.cuda.Stream(non_blocking=True) as stream:
        a = A.entmax15(x)
        b = A.entmax15(x)
        stream.synchronize()
    assert cp.array_equal(a, b)


def test_cpu_gpu_mix_is_rejected(rng):
    cp = cupy()
    x = cp.asarray(rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match="CPU/GPU mix"):
        A.softmax(x, mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="CPU/GPU mix"):
        A.softmax_backward(x, np.ones((2, 3)))
