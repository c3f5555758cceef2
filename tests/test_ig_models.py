"""fastcore.ig built-in models (Linear, MLP): compiled forward/grad against the float64 reference
and finite differences, the fused IG path against the generic path and the reference, exact
modes, determinism, bad input.

Tolerances. float64: the compiled kernels differ from the reference only by rounding order
(fma chains vs BLAS, vmath exp ≤ 2 ulp, tanh series/exp form ≤ a few ulp) propagated through
≤ 3 layers of O(1) weights: rtol/atol 1e-10 on gradients and attributions. float32: the same
with u = 6e-8 and products of length up to 64: rtol/atol 2e-4 (attributions are sums of ~|x| · Σ|w g|
terms whose individual float32 errors are ~1e-6 relative).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcore
from fastcore import ig
from fastcore.reference import ig as ref
from fastcore.testing import simd_levels

TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


def make_layers(rng, dims, dtype=np.float64, bias=True):
    layers = []
    for din, dout in zip(dims[:-1], dims[1:]):
        W = (rng.standard_normal((dout, din)) / np.sqrt(din) * 1.5).astype(dtype)
        b = (0.3 * rng.standard_normal(dout)).astype(dtype) if bias else None
        layers.append((W, b))
    return layers


def ref_layers(layers):
    return [(W.astype(np.float64), None if b is None else b.astype(np.float64)) for W, b in layers]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ig.ACTIVATIONS)
@pytest.mark.parametrize("output", ig.OUTPUTS)
def test_forward_and_grad_match_reference(rng, dtype, activation, output):
    dims = [13, 17, 7, 5]
    layers = make_layers(rng, dims, dtype)
    m = ig.MLP(layers, activation, output)
    x = rng.standard_normal((11, 13)).astype(dtype)
    t = rng.integers(0, 5, 11)
    rl = ref_layers(layers)
    f = m.forward(x, t)
    g = m.grad(x, t)
    assert f.dtype == dtype and f.shape == (11,) and g.dtype == dtype and g.shape == x.shape
    np.testing.assert_allclose(f, ref.mlp_forward(rl, activation, output, x.astype(np.float64), t), **TOL[dtype])
    np.testing.assert_allclose(g, ref.mlp_grad(rl, activation, output, x.astype(np.float64), t), **TOL[dtype])


def unit_readout_mlp(D, j, activation, dtype):
    """An MLP whose hidden layer is the identity and whose output is hidden unit j alone:
    F(x) = act(x_j), dF/dx_j = act'(x_j) (also used by tests/test_ig_cuda.py)."""
    readout = np.zeros((1, D), dtype)
    readout[0, j] = 1
    return ig.MLP([(np.eye(D, dtype=dtype), np.zeros(D, dtype)), (readout, np.zeros(1, dtype))], activation, "logit")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["gelu_tanh", "gelu"])
def test_gelu_keeps_relative_accuracy_in_the_negative_tail(dtype, activation):
    """gelu_tanh(z) = z (1 + tanh u)/2 with 1 + tanh u formed without cancellation: in float32,
    1 + tanh(u) for u << 0 was a difference of nearly equal numbers (gelu_tanh(-5) 35% off, its
    derivative likewise). gelu's float32 erfc had an absolute error bound (Abramowitz-Stegun
    7.1.26): gelu(-8) was 1% off; now exp(-a^2) t Q(t) with a relative one. Each hidden unit is
    read out alone: F = h_j, dF/dx_j = h'(x_j)."""
    z = np.array([[-9.0, -8.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, -0.25, 0.5, 3.0]])
    D = z.shape[1]
    # float32: a few ulps of the exp, the divisions and the fit (gelu: its exponent -z^2/2 is
    # formed exactly from z; from a = |z|/sqrt 2 rounded to float it carried ~2a^2 2^-24 of
    # relative error: 4e-6 at z = -9); gelu_tanh also the rounding of u; float64 a few ulps
    rtol = (1e-6 if activation == "gelu" else 1e-5) if dtype == np.float32 else 1e-13
    for j in range(D):
        m = unit_readout_mlp(D, j, activation, dtype)
        h, dh = ref.activation(activation, z[0, j])
        f = m.forward(z.astype(dtype), np.array([0]))[0]
        g = m.grad(z.astype(dtype), np.array([0]))[0, j]
        np.testing.assert_allclose(f, h, rtol=rtol, atol=0, err_msg=f"z = {z[0, j]}")
        np.testing.assert_allclose(g, dh, rtol=rtol, atol=0, err_msg=f"z = {z[0, j]}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "tanh", "relu"])
def test_activations_of_huge_pre_activations(dtype, activation):
    """Pre-activations far past the tails (up to the float max): gelu(z) = z or 0 (float32's
    exp(-z^2/2) went through a Dekker split whose z * 4097 overflowed past ~8e34, and inf - inf
    made gelu(+-1e36) NaN), derivatives 1 or 0; finite and equal to the reference."""
    big = float(np.finfo(dtype).max) / 2
    z = np.array([[-big, -1e36, -1e20, -50.0, 50.0, 1e20, 1e36, big]]).astype(dtype)
    D = z.shape[1]
    for j in range(D):
        m = unit_readout_mlp(D, j, activation, dtype)
        h, dh = ref.activation(activation, float(z[0, j]))
        f = m.forward(z, np.array([0]))[0]
        g = m.grad(z, np.array([0]))[0, j]
        assert np.isfinite(f) and np.isfinite(g), (activation, z[0, j], f, g)
        np.testing.assert_allclose(f, h, rtol=1e-6, atol=0, err_msg=f"z = {z[0, j]}")
        np.testing.assert_allclose(g, dh, rtol=1e-6, atol=0, err_msg=f"z = {z[0, j]}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output", ["softmax", "log_softmax"])
@pytest.mark.parametrize("activation", [None, "tanh"])
def test_confident_predictions_keep_their_gradient(rng, dtype, output, activation):
    """dF/dlogits = (p_c)(e_c - p): its target entry 1 - p_c is the sum of the other
    probabilities, not a difference (p_c = 1 - 2e-6 in float32 / 1 - 1e-12 in float64 left
    1 - p_c with ~6 % / ~1e-4 relative error, and every attribution with it). Against the float64
    reference, which forms it the same way; 1 - p_c is also checked against the exact sum."""
    D, C = 7, 3
    gap = 14.0 if dtype == np.float32 else 28.0  # p of the other classes ~ e^-gap
    W = (0.1 * rng.standard_normal((C, D))).astype(dtype)
    b = np.array([gap, 0.0, 0.0], dtype)
    x = rng.standard_normal((4, D)).astype(dtype)
    t = np.zeros(4, np.int64)
    if activation is None:
        m = ig.Linear(W, b, output)
        rl = [(W.astype(np.float64), b.astype(np.float64))]
        act = "relu"  # unused by a single layer
    else:
        eye = np.eye(D, dtype=dtype)
        m = ig.MLP([(eye, np.zeros(D, dtype)), (W, b)], activation, output)
        rl = ref_layers([(eye, np.zeros(D, dtype)), (W, b)])
        act = activation
    expected = ref.mlp_grad(rl, act, output, x.astype(np.float64), t)
    # rounding of the products W^T d relative to the largest entry (entries may cancel)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(m.grad(x, t), expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    # the reference's 1 - p_c: the exact sum of the others
    h = x.astype(np.float64) if activation is None else np.tanh(x.astype(np.float64))
    z = h @ W.astype(np.float64).T + b.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    d = ref._output_gradient(output, p, t)
    np.testing.assert_allclose(d[:, 0] / (p[:, 0] if output == "softmax" else 1.0), p[:, 1] + p[:, 2], rtol=1e-15)


@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "tanh"])
@pytest.mark.parametrize("output", ig.OUTPUTS)
def test_grad_against_finite_differences(rng, activation, output):
    layers = make_layers(rng, [6, 9, 4])
    m = ig.MLP(layers, activation, output)
    x = rng.standard_normal((3, 6))
    t = np.array([0, 3, 1])
    g = m.grad(x, t)
    h = 1e-6
    fd = np.empty_like(x)
    for j in range(6):
        e = np.zeros(6)
        e[j] = h
        fd[:, j] = (m.forward(x + e, t) - m.forward(x - e, t)) / (2 * h)
    # central differences: truncation O(h²) ~ 1e-12, rounding ~ u/h ~ 1e-10
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation,output", [("tanh", "softmax"), ("relu", "logit"), ("gelu", "log_softmax"),
                                               ("gelu_tanh", "softmax")])
@pytest.mark.parametrize("method,n", [("gausslegendre", 16), ("riemann_trapezoid", 7), ("riemann_left", 5)])
def test_fused_equals_generic_equals_reference(rng, dtype, activation, output, method, n):
    dims = [37, 19, 11, 6]
    layers = make_layers(rng, dims, dtype)
    m = ig.MLP(layers, activation, output)
    N = 10
    x = rng.standard_normal((N, 37)).astype(dtype)
    xb = rng.standard_normal((N, 37)).astype(dtype)
    t = rng.integers(0, 6, N)
    fused = ig.integrated_gradients(m, x, xb, target=t, n_steps=n, method=method, return_delta=True)
    generic = ig.integrated_gradients(m.grad, x, xb, target=t, n_steps=n, method=method, chunk_size=7,
                                      return_delta=True, forward_fn=m.forward)
    a, w = ref.quadrature(n, method)
    rl = ref_layers(layers)
    expected = ref.integrated_gradients(lambda p, tt: ref.mlp_grad(rl, activation, output, p, tt),
                                        x.astype(np.float64), xb.astype(np.float64), t, a, w)
    np.testing.assert_allclose(fused.attributions, expected, **TOL[dtype])
    np.testing.assert_allclose(generic.attributions, expected, **TOL[dtype])
    np.testing.assert_allclose(fused.delta, generic.delta, **TOL[dtype])
    np.testing.assert_allclose(fused.f_input, ref.mlp_forward(rl, activation, output, x.astype(np.float64), t),
                               **TOL[dtype])
    assert fused.n_evaluations == generic.n_evaluations == n * N + 2 * N  # path rows + 2N forward rows


@pytest.mark.parametrize("output", ig.OUTPUTS)
def test_linear_models(rng, output):
    W = rng.standard_normal((4, 23))
    b = rng.standard_normal(4)
    lin = ig.Linear(W, b, output=output)
    x = rng.standard_normal((9, 23))
    t = rng.integers(0, 4, 9)
    r = ig.integrated_gradients(lin, x, 0.5, target=t, n_steps=24, return_delta=True)
    a, w = ref.quadrature(24)
    expected = ref.integrated_gradients(lambda p, tt: ref.mlp_grad([(W, b)], "identity", output, p, tt),
                                        x, 0.5, t, a, w)
    np.testing.assert_allclose(r.attributions, expected, rtol=1e-10, atol=1e-12)
    if output == "logit":
        exact = ig.integrated_gradients(lin, x, 0.5, target=t, method="exact", return_delta=True)
        np.testing.assert_allclose(exact.attributions, (x - 0.5) * W[t], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(r.attributions, exact.attributions, rtol=1e-12, atol=1e-14)
        assert np.all(np.abs(exact.delta) < 1e-12)
        assert exact.alphas is None and exact.n_evaluations == 2 * len(x)  # forward rows for the delta only
    else:
        assert np.max(r.relative_delta) < 1e-9  # GL24 on a smooth 1-layer model
        with pytest.raises(ValueError, match="exact"):
            ig.integrated_gradients(lin, x, target=t, method="exact")


@pytest.mark.parametrize("dims", [[8, 12, 3], [10, 9, 8, 4]])
def test_relu_exact_completeness_and_convergence(rng, dims):
    layers = make_layers(rng, dims)
    m = ig.MLP(layers, "relu", "logit")
    x = 2 * rng.standard_normal((5, dims[0]))
    xb = rng.standard_normal((1, dims[0]))
    t = rng.integers(0, dims[-1], 5)
    exact = ig.integrated_gradients(m, x, xb, target=t, method="exact", return_delta=True)
    assert np.all(np.abs(exact.delta) < 1e-12 * (1 + np.abs(exact.f_input)))  # completeness, exactly
    # midpoint with many nodes approaches it at O(h · #kinks · jump): 1e5 nodes -> ~1e-4 worst case
    mid = ig.integrated_gradients(m, x, xb, target=t, method="riemann_middle", n_steps=40000)
    np.testing.assert_allclose(mid.attributions, exact.attributions, atol=2e-3 * np.abs(exact.attributions).max())
    gl = ig.integrated_gradients(m, x, xb, target=t, n_steps=50, return_delta=True)
    assert np.max(np.abs(gl.delta)) > 10 * np.max(np.abs(exact.delta))  # quadrature misses the kinks
    local = ig.integrated_gradients(m, x, xb, target=t, method="exact", multiply_by_inputs=False)
    np.testing.assert_allclose(local.attributions * (x - xb), exact.attributions, rtol=1e-12, atol=1e-13)


def test_smooth_mlp_gl50_completeness(rng):
    # notes §9.1: GL50 on a tanh-softmax MLP, relative delta <= 1e-13 in float64
    layers = make_layers(rng, [30, 20, 20, 10])
    m = ig.MLP(layers, "tanh", "softmax")
    x = rng.standard_normal((8, 30))
    r = ig.integrated_gradients(m, x, target=rng.integers(0, 10, 8), n_steps=50, return_delta=True)
    assert np.max(r.relative_delta) < 1e-12


def test_swap_antisymmetry_and_dummy_feature(rng):
    layers = make_layers(rng, [9, 7, 3])
    layers[0][0][:, 4] = 0.0  # feature 4 is ignored
    m = ig.MLP(layers, "gelu", "softmax")
    x = rng.standard_normal((6, 9))
    xb = rng.standard_normal((6, 9))
    t = rng.integers(0, 3, 6)
    r1 = ig.integrated_gradients(m, x, xb, target=t, n_steps=20).attributions
    r2 = ig.integrated_gradients(m, xb, x, target=t, n_steps=20).attributions
    np.testing.assert_allclose(r1, -r2, rtol=1e-12, atol=1e-14)
    assert np.all(r1[:, 4] == 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ig.ACTIVATIONS)
def test_fused_bitwise_threads_simd_and_batch(rng, dtype, activation, restore_threads, restore_simd):
    layers = make_layers(rng, [70, 33, 21, 7], dtype)
    m = ig.MLP(layers, activation, "log_softmax")
    N = 19  # blocks of 8 examples with a partial one
    x = rng.standard_normal((N, 70)).astype(dtype)
    t = rng.integers(0, 7, N)
    results = []
    for level in simd_levels():
        fastcore.set_simd_level(level)
        for th in (1, 2):
            fastcore.set_num_threads(th)
            results.append(ig.integrated_gradients(m, x, 0.1, target=t, n_steps=9).attributions)
            results.append(m.grad(x, t))
    for r in results[2::2]:
        np.testing.assert_array_equal(r, results[0])
    for r in results[3::2]:
        np.testing.assert_array_equal(r, results[1])
    full = results[0]
    for i in (0, 8, 18):
        alone = ig.integrated_gradients(m, x[i:i + 1], 0.1, target=t[i:i + 1], n_steps=9).attributions
        np.testing.assert_array_equal(alone[0], full[i])


def test_model_callable_and_repr(rng):
    m = ig.MLP(make_layers(rng, [4, 5, 1]), "relu", "logit")
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(m(x), m.grad(x))  # single output: target optional
    assert "4→5→1" in repr(m) and "Linear" in repr(ig.Linear(np.ones((2, 3))))
    assert ig.Linear(np.ones((2, 3))).layers[0][1].tolist() == [0.0, 0.0]


def test_model_bad_input(rng):
    layers = make_layers(rng, [5, 4, 3])
    m = ig.MLP(layers, "tanh", "softmax")
    x = rng.standard_normal((2, 5))
    with pytest.raises(ValueError, match="target: required"):
        ig.integrated_gradients(m, x)
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 3\)"):
        ig.integrated_gradients(m, x, target=3)
    with pytest.raises(ValueError, match=r"target: expected shape \(2,\)"):
        ig.integrated_gradients(m, x, target=np.array([[0, 1]]))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 5\)"):
        ig.integrated_gradients(m, rng.standard_normal((2, 6)), target=0)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 5\)"):
        m.grad(rng.standard_normal((2, 5, 1)), 0)
    with pytest.raises(ValueError, match="exact"):
        ig.integrated_gradients(m, x, target=0, method="exact")
    with pytest.raises(ValueError, match="activation"):
        ig.MLP(layers, "sigmoid")
    with pytest.raises(ValueError, match="output"):
        ig.MLP(layers, output="probit")
    with pytest.raises(ValueError, match=r"layers\[1\] W: expected 4 input columns"):
        ig.MLP([layers[0], (np.ones((3, 5)), None)])
    with pytest.raises(ValueError, match=r"layers\[0\] b: expected shape"):
        ig.MLP([(layers[0][0], np.ones(3))])
    with pytest.raises(ValueError, match="finite"):
        ig.Linear(np.full((2, 2), np.nan))
    with pytest.raises(TypeError, match="pair"):
        ig.MLP([layers[0][0]])
    with pytest.raises(TypeError, match="layers"):
        ig.MLP([])
    with pytest.raises(TypeError, match="dtype"):
        ig.Linear(np.ones((2, 2), np.int32))


def test_expected_gradients_with_model(rng):
    layers = make_layers(rng, [8, 6, 3])
    m = ig.MLP(layers, "tanh", "softmax")
    x = rng.standard_normal((4, 8))
    bg = rng.standard_normal((9, 8))
    t = rng.integers(0, 3, 4)
    mean, se = ig.expected_gradients(m, x, bg, n_samples=20, rng=3, target=t)
    d = np.random.default_rng(3)
    idx, alpha = d.integers(0, 9, size=(20, 4)), d.random((20, 4))
    rmean, rse = ref.expected_gradients(lambda p, tt: ref.mlp_grad(layers, "tanh", "softmax", p, tt), x, bg, idx,
                                        alpha, t)
    np.testing.assert_allclose(mean, rmean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(se, rse, rtol=1e-6, atol=1e-12)
    with pytest.raises(ValueError, match="target: required"):
        ig.expected_gradients(m, x, bg)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(N=st.integers(1, 20), D=st.integers(1, 40), H=st.lists(st.integers(1, 20), min_size=0, max_size=2),
       C=st.integers(1, 5), S=st.integers(2, 9), act=st.sampled_from(ig.ACTIVATIONS),
       out=st.sampled_from(ig.OUTPUTS), method=st.sampled_from(ig.METHODS), shared=st.booleans(),
       chunk=st.integers(1, 50), seed=st.integers(0, 2**32 - 1))
def test_property_fused_generic_reference(N, D, H, C, S, act, out, method, shared, chunk, seed):
    """Random architectures (0-2 hidden layers, widths 1..20, 1..5 classes), rules, baselines and
    chunk sizes: fused == generic(model.grad) == float64 reference (float64 tolerance)."""
    rng = np.random.default_rng(seed)
    layers = make_layers(rng, [D] + H + [C])
    m = ig.MLP(layers, act, out)
    x = rng.standard_normal((N, D))
    xb = rng.standard_normal((1 if shared else N, D))
    t = rng.integers(0, C, N)
    fused = ig.integrated_gradients(m, x, xb, target=t, n_steps=S, method=method).attributions
    generic = ig.integrated_gradients(m.grad, x, xb, target=t, n_steps=S, method=method, chunk_size=chunk)
    a, w = ref.quadrature(S, method)
    expected = ref.integrated_gradients(lambda p, tt: ref.mlp_grad(layers, act, out, p, tt), x, xb, t, a, w)
    np.testing.assert_allclose(fused, expected, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(generic.attributions, expected, rtol=1e-9, atol=1e-11)
    again = ig.integrated_gradients(m.grad, x, xb, target=t, n_steps=S, method=method, chunk_size=chunk + 7)
    np.testing.assert_array_equal(again.attributions, generic.attributions)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_without_multiplying_and_shared_baseline(rng, dtype):
    layers = make_layers(rng, [21, 13, 4], dtype)
    m = ig.MLP(layers, "gelu_tanh", "log_softmax")
    x = rng.standard_normal((5, 21)).astype(dtype)
    xb = rng.standard_normal(21).astype(dtype)  # one baseline row for every example
    t = rng.integers(0, 4, 5)
    fused = ig.integrated_gradients(m, x, xb, target=t, n_steps=12, multiply_by_inputs=False).attributions
    generic = ig.integrated_gradients(m.grad, x, xb, target=t, n_steps=12, multiply_by_inputs=False).attributions
    a, w = ref.quadrature(12)
    rl = ref_layers(layers)
    expected = ref.integrated_gradients(lambda p, tt: ref.mlp_grad(rl, "gelu_tanh", "log_softmax", p, tt),
                                        x.astype(np.float64), xb.astype(np.float64), t, a, w, False)
    np.testing.assert_allclose(fused, expected, **TOL[dtype])
    np.testing.assert_allclose(generic, expected, **TOL[dtype])
    tiled = ig.integrated_gradients(m, x, np.tile(xb, (5, 1)), target=t, n_steps=12).attributions
    shared = ig.integrated_gradients(m, x, xb, target=t, n_steps=12).attributions
    np.testing.assert_array_equal(tiled, shared)  # a shared row is computed once, with the same bits
