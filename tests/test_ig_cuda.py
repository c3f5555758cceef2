"""fastcore.ig on CUDA (CuPy arrays): the generic path's kernels against the CPU kernels
(bitwise: both form path points and accumulations in double with the same rounded operations, no
FMA contraction), the generic path with a CuPy callable, the fused built-in models against the
CPU fused path and the float64 reference, the caller's stream, and errors.

These tests need a GPU and CuPy (marker `cuda`; they skip elsewhere).

Tolerances. Fused models: cuBLAS float32 products (no TF32 unless CUPY_TF32 is set) sum in a
different order than the CPU's fma chains and CUDA's tanh/erfc/exp differ from the CPU's by a few
ulp, so GPU and CPU agree to the float32 tolerance of tests/test_ig_models.py (2e-4) and to 1e-10
in float64. CuPy callables: CuPy's cos vs NumPy's differ by ~1 ulp per element (rtol 1e-5 / 1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastcore import ig
from fastcore.reference import ig as ref

pytestmark = pytest.mark.cuda

TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


def cupy():
    import cupy as cp

    return cp


def smooth(rng, shape):
    a = rng.standard_normal(shape)
    c = rng.standard_normal(shape)

    def grad(p, t=None):
        xp = cupy() if not isinstance(p, np.ndarray) else np
        p64 = p.astype(np.float64)
        return (xp.asarray(a) * xp.cos(p64) + xp.asarray(c) * p64).astype(p.dtype)

    return grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_and_accumulate_bitwise_vs_cpu(rng, dtype):
    cp = cupy()
    N, D, S = 7, 1031, 5
    x = rng.standard_normal((N, D)).astype(dtype)
    for xb in (rng.standard_normal((N, D)).astype(dtype), rng.standard_normal((1, D)).astype(dtype),
               np.zeros((1, D), dtype)):  # the CPU's zero-baseline kernel must match the GPU's formula
        a, w = ig.quadrature(S)
        out = np.empty((S * N - 3, D), dtype)
        ig.interpolate(x, xb, a, 2, out)
        out_d = cp.empty((S * N - 3, D), dtype)
        ig.interpolate(cp.asarray(x), cp.asarray(xb), a, 2, out_d)
        np.testing.assert_array_equal(cp.asnumpy(out_d), out)
    g = rng.standard_normal((S * N, D)).astype(dtype)
    acc = np.zeros((N, D))
    acc_d = cp.zeros((N, D))
    for r0, r1 in ((0, 4), (4, 20), (20, S * N)):
        ig.accumulate(acc, g[r0:r1], w, r0)
        ig.accumulate(acc_d, cp.asarray(g[r0:r1]), w, r0)
    np.testing.assert_array_equal(cp.asnumpy(acc_d), acc)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_generic_path_with_cupy_callable(rng, dtype):
    cp = cupy()
    N, F = 6, (3, 5)
    grad = smooth(rng, F)
    x = rng.standard_normal((N,) + F).astype(dtype)
    xb = rng.standard_normal((1,) + F).astype(dtype)
    cpu = ig.integrated_gradients(grad, x, xb, n_steps=11, chunk_size=4).attributions
    res = [ig.integrated_gradients(grad, cp.asarray(x), cp.asarray(xb), n_steps=11, chunk_size=c).attributions
           for c in (1, N - 1, N, 3 * N + 1, None)]
    assert isinstance(res[0], cp.ndarray) and res[0].dtype == dtype
    for r in res[1:]:
        cp.testing.assert_array_equal(r, res[0])  # bitwise independent of chunk_size on the GPU too
    np.testing.assert_allclose(cp.asnumpy(res[0]), cpu, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-13)


def test_generic_path_on_a_non_default_stream(rng):
    cp = cupy()
    grad = smooth(rng, (40,))
    x = cp.asarray(rng.standard_normal((9, 40)))
    expected = ig.integrated_gradients(grad, x, n_steps=8, chunk_size=5).attributions
    cp.cuda.get_current_stream().synchronize()  # x and expected come from the default stream
    with cp.cuda.Stream(non_blocking=True) as s:
        got = ig.integrated_gradients(grad, x, n_steps=8, chunk_size=5).attributions
        s.synchronize()
    cp.testing.assert_array_equal(got, expected)


def test_generic_path_errors_on_gpu(rng):
    cp = cupy()
    x = cp.asarray(rng.standard_normal((3, 4)).astype(np.float32))
    with pytest.raises(TypeError, match="f: returned a numpy array for CuPy points"):
        ig.integrated_gradients(lambda p, t: np.zeros(p.shape, np.float32), x, n_steps=2)

    def nan_at(p, t, calls=[0]):  # noqa: B006
        g = cp.ones_like(p)
        calls[0] += 1
        if calls[0] == 2:
            g[1, 2] = cp.nan  # chunk 2 (rows 3..5): row 4 = step 1, example 1
        return g

    with pytest.raises(ValueError, match=r"non-finite gradient at step 1 .*example 1, feature 2"):
        ig.integrated_gradients(nan_at, x, n_steps=3, chunk_size=3)
    with pytest.raises(ValueError, match="CPU/GPU|mix|device"):
        ig.integrated_gradients(lambda p, t: p, x, np.zeros((3, 4), np.float32))


def make_layers(rng, dims, dtype=np.float64):
    return [((rng.standard_normal((o, i)) / np.sqrt(i) * 1.5).astype(dtype), (0.3 * rng.standard_normal(o)).astype(dtype))
            for i, o in zip(dims[:-1], dims[1:])]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation,output", [("tanh", "softmax"), ("relu", "logit"), ("gelu", "log_softmax"),
                                               ("gelu_tanh", "softmax")])
def test_fused_models_on_gpu(rng, dtype, activation, output):
    cp = cupy()
    dims = [300, 64, 32, 10]
    layers = make_layers(rng, dims, dtype)
    m = ig.MLP(layers, activation, output)
    N = 13
    x = rng.standard_normal((N, 300)).astype(dtype)
    xb = rng.standard_normal((N, 300)).astype(dtype)
    t = rng.integers(0, 10, N)
    gpu = ig.integrated_gradients(m, cp.asarray(x), cp.asarray(xb), target=t, n_steps=20, return_delta=True)
    cpu = ig.integrated_gradients(m, x, xb, target=t, n_steps=20, return_delta=True)
    assert isinstance(gpu.attributions, cp.ndarray) and gpu.attributions.dtype == dtype
    np.testing.assert_allclose(cp.asnumpy(gpu.attributions), cpu.attributions, **TOL[dtype])
    np.testing.assert_allclose(gpu.f_input, cpu.f_input, **TOL[dtype])
    np.testing.assert_allclose(gpu.f_baseline, cpu.f_baseline, **TOL[dtype])
    a, w = ref.quadrature(20)
    rl = [(W.astype(np.float64), b.astype(np.float64)) for W, b in layers]
    expected = ref.integrated_gradients(lambda p, tt: ref.mlp_grad(rl, activation, output, p, tt),
                                        x.astype(np.float64), xb.astype(np.float64), t, a, w)
    np.testing.assert_allclose(cp.asnumpy(gpu.attributions), expected, **TOL[dtype])
    # forward / grad on CuPy arrays
    np.testing.assert_allclose(cp.asnumpy(m.grad(cp.asarray(x), t)),
                               ref.mlp_grad(rl, activation, output, x.astype(np.float64), t), **TOL[dtype])
    np.testing.assert_allclose(cp.asnumpy(m.forward(cp.asarray(x), t)),
                               ref.mlp_forward(rl, activation, output, x.astype(np.float64), t), **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["gelu_tanh", "gelu"])
def test_gpu_gelu_tails_and_confident_predictions(rng, dtype, activation):
    """The CUDA activation and output kernels keep GELU's negative tails and 1 - p_c of a
    confident prediction free of cancellation (tests/test_ig_models.py has the CPU versions)."""
    from test_ig_models import unit_readout_mlp

    cp = cupy()
    z = np.array([[-9.0, -6.0, -5.0, -3.0, -1.0, 0.5, 3.0]])
    D = z.shape[1]
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    for j in range(D):
        m = unit_readout_mlp(D, j, activation, dtype)
        h, dh = ref.activation(activation, z[0, j])
        np.testing.assert_allclose(cp.asnumpy(m.forward(cp.asarray(z.astype(dtype)), np.array([0])))[0], h, rtol=rtol)
        np.testing.assert_allclose(cp.asnumpy(m.grad(cp.asarray(z.astype(dtype)), np.array([0])))[0, j], dh, rtol=rtol)
    gap = 14.0 if dtype == np.float32 else 28.0
    W = (0.1 * rng.standard_normal((3, 7))).astype(dtype)
    b = np.array([gap, 0.0, 0.0], dtype)
    x = rng.standard_normal((4, 7)).astype(dtype)
    t = np.zeros(4, np.int64)
    for output in ("softmax", "log_softmax"):
        lin = ig.Linear(W, b, output)
        expected = ref.mlp_grad([(W.astype(np.float64), b.astype(np.float64))], "relu", output, x.astype(np.float64), t)
        tol = 2e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(cp.asnumpy(lin.grad(cp.asarray(x), t)), expected, rtol=tol,
                                   atol=tol * np.abs(expected).max())


def test_fused_gpu_smooth_completeness_and_exact(rng):
    cp = cupy()
    layers = make_layers(rng, [50, 30, 20, 5])
    m = ig.MLP(layers, "tanh", "softmax")
    x = cp.asarray(rng.standard_normal((8, 50)))
    r = ig.integrated_gradients(m, x, target=rng.integers(0, 5, 8), n_steps=50, return_delta=True)
    assert np.max(r.relative_delta) < 1e-12
    relu = ig.MLP(layers, "relu", "logit")
    e = ig.integrated_gradients(relu, x, 0.2, target=1, method="exact", return_delta=True)
    assert isinstance(e.attributions, cp.ndarray)
    assert np.all(np.abs(e.delta) < 1e-11)


def test_expected_gradients_gpu_matches_cpu(rng):
    cp = cupy()
    grad = smooth(rng, (12,))
    x = rng.standard_normal((4, 12))
    bg = rng.standard_normal((6, 12))
    m_cpu, s_cpu = ig.expected_gradients(grad, x, bg, n_samples=16, rng=7, chunk_size=5)
    m_gpu, s_gpu = ig.expected_gradients(grad, cp.asarray(x), cp.asarray(bg), n_samples=16, rng=7, chunk_size=5)
    np.testing.assert_allclose(cp.asnumpy(m_gpu), m_cpu, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(s_gpu, s_cpu, rtol=1e-9, atol=1e-13)
