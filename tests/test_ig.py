"""fastcore.ig on the CPU: quadrature tables, the generic (callable) path against the float64
reference, completeness oracles (notes §9), chunk/batch invariance (bitwise), bad input.

Tolerances. The path is built in float64 and rounded once to x's dtype; gradients are
accumulated in float64 and multiplied by (x − x') in float64, rounded once. Against the float64
reference a float64 run differs only by summation order (a few ulp of Σ|w g|·|x − x'|: rtol
1e-12); a float32 run sees the float32 rounding of each path point (u = 6e-8) propagated through
the callable (|∂g/∂x| = O(1) here) and of the callable's own float32 output: rtol/atol 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcore
from fastcore.testing import simd_levels
from fastcore import ig
from fastcore.reference import ig as ref

TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


# A smooth separable test function with known gradient: F(x) = Σ_j a_j sin(x_j) + ½ Σ_j c_j x_j²
# (per row), evaluated in float64 and rounded to the points' dtype (row-wise: batch-independent).
class Smooth:
    def __init__(self, rng, shape):
        self.a = rng.standard_normal(shape)
        self.c = rng.standard_normal(shape)

    def grad(self, p, t=None):
        p64 = p.astype(np.float64)
        return (self.a * np.cos(p64) + self.c * p64).astype(p.dtype)

    def forward(self, p, t=None):
        p64 = p.astype(np.float64)
        return (self.a * np.sin(p64) + 0.5 * self.c * p64 * p64).reshape(len(p), -1).sum(axis=1)


# ------------------------------------------------------------------ quadrature

@pytest.mark.parametrize("method", ig.METHODS)
@pytest.mark.parametrize("n", [2, 3, 5, 17, 50, 128])
def test_quadrature_matches_definitions(method, n):
    a, w = ig.quadrature(n, method)
    ar, wr = ref.quadrature(n, method)
    assert a.dtype == w.dtype == np.float64 and a.shape == w.shape == (n,)
    # Riemann/trapezoid tables are exact formulas (bitwise); Gauss–Legendre nodes from Newton's
    # method vs NumPy's eigenvalue-based leggauss agree to a few ulp.
    tol = 4e-15 if method == "gausslegendre" else 0.0
    np.testing.assert_allclose(a, ar, rtol=0, atol=tol)
    np.testing.assert_allclose(w, wr, rtol=tol * 10, atol=tol)
    assert np.all(np.diff(a) > 0) and a[0] >= 0 and a[-1] <= 1
    expected_sum = (n - 1) / n if method == "riemann_trapezoid" else 1.0
    assert abs(w.sum() - expected_sum) < 1e-14


def test_quadrature_pins():
    # Captum's riemann_trapezoid pins (notes §2): n = 3 -> [1/6, 1/3, 1/6] at [0, .5, 1]; n = 2 -> [.25, .25].
    a, w = ig.quadrature(3, "riemann_trapezoid")
    np.testing.assert_array_equal(a, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(w, [1 / 6, 1 / 3, 1 / 6], rtol=1e-15)
    np.testing.assert_allclose(ig.quadrature(2, "riemann_trapezoid")[1], [0.25, 0.25])
    a, w = ig.quadrature(1, "gausslegendre")
    np.testing.assert_array_equal(a, [0.5]) and np.testing.assert_array_equal(w, [1.0])
    # GL n is exact for polynomials of degree <= 2n - 1: ∫ α^p = 1/(p + 1).
    for n in (1, 2, 5, 20, 100):
        a, w = ig.quadrature(n)
        for p in range(2 * n):
            if p > 60:
                break
            assert abs(w @ a ** p - 1.0 / (p + 1)) < 1e-14, (n, p)
    # symmetry of GL about 1/2
    a, w = ig.quadrature(9)
    np.testing.assert_allclose(a + a[::-1], 1.0, atol=1e-15)
    np.testing.assert_array_equal(w, w[::-1])


@pytest.mark.parametrize("method,n", [("gausslegendre", 0), ("riemann_left", 1), ("riemann_right", 1),
                                      ("riemann_middle", 0), ("riemann_trapezoid", 1), ("trapezoid", 1)])
def test_quadrature_bad_n(method, n):
    with pytest.raises(ValueError, match="n_steps"):
        ig.quadrature(n, method)


def test_quadrature_bad_method():
    with pytest.raises(ValueError, match="method"):
        ig.quadrature(10, "simpson")
    with pytest.raises(TypeError, match="n_steps"):
        ig.quadrature(10.0)
    with pytest.raises(TypeError, match="n_steps"):
        ig.quadrature(True)


# ------------------------------------------------------------------ generic path vs reference

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 2, 3), (13, 257), (2, 4100)])
@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle", "riemann_trapezoid", "riemann_left"])
def test_generic_matches_reference(rng, dtype, shape, method):
    x = rng.standard_normal(shape).astype(dtype)
    xb = rng.standard_normal(shape).astype(dtype)
    model = Smooth(rng, shape[1:])
    res = ig.integrated_gradients(model.grad, x, xb, n_steps=9, method=method, chunk_size=5)
    a, w = ref.quadrature(9, method)
    expected = ref.integrated_gradients(model.grad, x.astype(np.float64), xb.astype(np.float64), None, a, w)
    assert res.attributions.dtype == dtype and res.attributions.shape == x.shape
    np.testing.assert_allclose(res.attributions, expected, **TOL[dtype])
    assert res.n_evaluations == 9 * shape[0]
    np.testing.assert_array_equal(res.alphas, a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_is_exact_at_ends_and_matches_formula(rng, dtype):
    x = rng.standard_normal((4, 33)).astype(dtype)
    xb = rng.standard_normal((4, 33)).astype(dtype)
    a = np.array([0.0, 0.3, 1.0])
    out = np.empty((12, 33), dtype)
    ig.interpolate(x, xb, a, 0, out)
    np.testing.assert_array_equal(out[:4], xb)
    np.testing.assert_array_equal(out[8:], x)
    # float64 formula rounded once to the dtype: bitwise
    expected = ((1 - 0.3) * xb.astype(np.float64) + 0.3 * x.astype(np.float64)).astype(dtype)
    np.testing.assert_array_equal(out[4:8], expected)
    # a sub-range starting mid-step (rows 5..10) and a shared baseline row
    out2 = np.empty((6, 33), dtype)
    ig.interpolate(x, xb[:1], a, 5, out2)
    full = np.empty((12, 33), dtype)
    ig.interpolate(x, xb[:1], a, 0, full)
    np.testing.assert_array_equal(out2, full[5:11])
    np.testing.assert_array_equal(full[:4], np.broadcast_to(xb[:1], (4, 33)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_zero_baseline_fast_path_is_bitwise_the_formula(rng, dtype):
    # A shared +0.0 baseline row takes a cheaper kernel (a * x + 0, ig_kernels.simd.cpp); it must
    # give the formula's bits, signed zeros and results that underflow the dtype included, and the
    # general kernel must still serve alphas where 1 - a < 0 and a -0.0 baseline.
    D = 37
    x = rng.standard_normal((3, D)).astype(dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    x[0, :6] = [0.0, -0.0, tiny, -tiny, 3 * tiny, -np.finfo(dtype).max / 2]
    a = np.array([0.0, -0.0, 1e-30, 0.3, 1.0, 1.5, -0.25])
    for base in (np.zeros((1, D), dtype), np.full((1, D), -0.0, dtype), np.zeros((3, D), dtype)):
        out = np.empty((len(a) * 3, D), dtype)
        with np.errstate(over="ignore", under="ignore"):
            ig.interpolate(x, base, a, 0, out)
            b64 = np.broadcast_to(base.astype(np.float64), x.shape)
            expected = np.concatenate([((1 - ak) * b64 + ak * x.astype(np.float64)).astype(dtype) for ak in a])
        np.testing.assert_array_equal(out, expected)
        assert np.array_equal(np.signbit(out), np.signbit(expected)), "signs of zeros differ"


def test_accumulate_low_level(rng):
    N, D, S = 3, 10, 4
    w = rng.random(S)
    g = rng.standard_normal((S * N, D))
    acc = np.zeros((N, D))
    ig.accumulate(acc, g[:5], w, 0)
    ig.accumulate(acc, g[5:], w, 5)
    expected = np.einsum("k,kid->id", w, g.reshape(S, N, D))
    np.testing.assert_allclose(acc, expected, rtol=1e-14)


# ------------------------------------------------------------------ completeness oracles

@pytest.mark.parametrize("method", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "trapezoid"])
def test_linear_exact_for_rules_summing_to_one(rng, method):
    w_lin = rng.standard_normal(16)
    x = rng.standard_normal((4, 16))
    xb = rng.standard_normal((1, 16))
    res = ig.integrated_gradients(lambda p, t: np.broadcast_to(w_lin, p.shape).copy(), x, xb, n_steps=7,
                                  method=method, return_delta=True, forward_fn=lambda p, t: p @ w_lin)
    np.testing.assert_allclose(res.attributions, (x - xb) * w_lin, rtol=1e-13, atol=1e-14)
    assert np.all(np.abs(res.delta) < 1e-12)


def test_riemann_trapezoid_gives_n_minus_1_over_n_on_linear(rng):
    w_lin = rng.standard_normal(8)
    x = rng.standard_normal((3, 8))
    n = 10
    res = ig.integrated_gradients(lambda p, t: np.broadcast_to(w_lin, p.shape).copy(), x, n_steps=n,
                                  method="riemann_trapezoid")
    np.testing.assert_allclose(res.attributions, (n - 1) / n * x * w_lin, rtol=1e-13)


@pytest.mark.parametrize("method,n", [("gausslegendre", 1), ("gausslegendre", 3), ("riemann_middle", 4),
                                      ("trapezoid", 5)])
def test_quadratic_exact_for_symmetric_rules(rng, method, n):
    d = 12
    A = rng.standard_normal((d, d))
    A = A + A.T
    b = rng.standard_normal(d)
    x = rng.standard_normal((5, d))
    xb = rng.standard_normal((5, d))
    grad = lambda p, t: p @ A + b  # noqa: E731  (A symmetric)
    fwd = lambda p, t: 0.5 * np.einsum("md,de,me->m", p, A, p) + p @ b  # noqa: E731
    res = ig.integrated_gradients(grad, x, xb, n_steps=n, method=method, return_delta=True, forward_fn=fwd)
    expected = (x - xb) * ((xb + 0.5 * (x - xb)) @ A + b)  # notes §9.3
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-12, atol=1e-12)
    assert np.all(np.abs(res.delta) < 1e-11)


def test_quadratic_left_right_error_formula(rng):
    d, n = 6, 8
    A = rng.standard_normal((d, d))
    A = A + A.T
    x = rng.standard_normal((3, d))
    grad = lambda p, t: p @ A  # noqa: E731
    for method, sign in (("riemann_left", -1), ("riemann_right", 1)):
        res = ig.integrated_gradients(grad, x, n_steps=n, method=method)
        exact = x * (0.5 * x @ A)
        np.testing.assert_allclose(res.attributions - exact, sign * x * (x @ A) / (2 * n), rtol=1e-10, atol=1e-13)


def test_convergence_rates(rng):
    model = Smooth(rng, (10,))
    x = rng.standard_normal((4, 10)) * 2
    def rel(method, n):
        r = ig.integrated_gradients(model.grad, x, n_steps=n, method=method, return_delta=True,
                                    forward_fn=model.forward)
        return np.max(r.relative_delta)
    assert rel("gausslegendre", 24) < 1e-12            # spectral
    for method, order in (("riemann_middle", 2), ("trapezoid", 2), ("riemann_left", 1)):
        e1, e2 = rel(method, 40), rel(method, 80)
        assert 2 ** order * 0.8 < e1 / e2 < 2 ** order * 1.25, (method, e1, e2)


def test_swap_antisymmetry_and_dummy_feature(rng):
    model = Smooth(rng, (9,))
    model.a[3] = model.c[3] = 0.0  # feature 3 is ignored by F
    x = rng.standard_normal((4, 9))
    xb = rng.standard_normal((4, 9))
    r1 = ig.integrated_gradients(model.grad, x, xb, n_steps=16)
    r2 = ig.integrated_gradients(model.grad, xb, x, n_steps=16)
    np.testing.assert_allclose(r1.attributions, -r2.attributions, rtol=1e-13, atol=1e-15)
    assert np.all(r1.attributions[:, 3] == 0.0)
    left = ig.integrated_gradients(model.grad, x, xb, n_steps=16, method="riemann_left").attributions
    right = ig.integrated_gradients(model.grad, xb, x, n_steps=16, method="riemann_left").attributions
    assert np.max(np.abs(left + right)) > 1e-3  # left Riemann is not symmetric (notes §9.6)


# ------------------------------------------------------------------ invariances (bitwise)

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_invariant_to_chunk_size(rng, dtype):
    N, S = 7, 11
    model = Smooth(rng, (3, 5))
    x = rng.standard_normal((N, 3, 5)).astype(dtype)
    res = [ig.integrated_gradients(model.grad, x, 0.25, n_steps=S, chunk_size=c).attributions
           for c in (1, N - 1, N, 3 * N + 1, None, S * N, 10 ** 6)]
    for r in res[1:]:
        np.testing.assert_array_equal(r, res[0])


def test_bitwise_invariant_to_batch_composition_and_baseline_tiling(rng):
    model = Smooth(rng, (20,))
    x = rng.standard_normal((6, 20))
    xb = rng.standard_normal((1, 20))
    full = ig.integrated_gradients(model.grad, x, xb, n_steps=13, chunk_size=5).attributions
    for i in range(6):
        alone = ig.integrated_gradients(model.grad, x[i:i + 1], xb, n_steps=13, chunk_size=3).attributions
        np.testing.assert_array_equal(alone[0], full[i])
    tiled = ig.integrated_gradients(model.grad, x, np.repeat(xb, 6, axis=0), n_steps=13).attributions
    np.testing.assert_array_equal(tiled, full)


def test_bitwise_across_threads_and_simd(rng, restore_threads, restore_simd):
    model = Smooth(rng, (5000,))
    x = rng.standard_normal((9, 5000)).astype(np.float32)
    results = []
    for level in simd_levels():
        fastcore.set_simd_level(level)
        for t in (1, 2):
            fastcore.set_num_threads(t)
            results.append(ig.integrated_gradients(model.grad, x, -0.5, n_steps=7, chunk_size=20).attributions)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_sum_independent_of_n_steps(rng):
    # the saliency PR #23 regression: the IG sum must not scale with the number of steps
    model = Smooth(rng, (8,))
    x = rng.standard_normal((3, 8))
    sums = [ig.integrated_gradients(model.grad, x, n_steps=n, chunk_size=4).attributions.sum(axis=1)
            for n in (20, 40, 80)]
    np.testing.assert_allclose(sums[0], sums[2], rtol=1e-10)


def test_targets_passed_per_row_and_progress(rng):
    N, S = 4, 5
    seen = []

    def f(p, t):
        seen.append(t.copy())
        return np.zeros_like(p)

    calls = []
    ig.integrated_gradients(f, rng.standard_normal((N, 3)), target=np.array([3, 1, 4, 1]), n_steps=S,
                            chunk_size=3, progress=lambda done, total: calls.append((done, total)))
    got = np.concatenate(seen)
    np.testing.assert_array_equal(got, np.tile([3, 1, 4, 1], S))
    assert calls[-1] == (N * S, N * S) and len(calls) == 7
    ig.integrated_gradients(lambda p, t: (seen.append(t), np.zeros_like(p))[1], np.ones((2, 2)), n_steps=2)
    assert seen[-1] is None
    ig.integrated_gradients(lambda p, t: (seen.append(t), np.zeros_like(p))[1], np.ones((2, 2)), target=7,
                            n_steps=2)
    np.testing.assert_array_equal(seen[-1], [7, 7, 7, 7])


def test_multiply_by_inputs_false_and_empty(rng):
    model = Smooth(rng, (4,))
    x = rng.standard_normal((3, 4))
    r = ig.integrated_gradients(model.grad, x, 1.0, n_steps=6, multiply_by_inputs=False)
    a, w = ref.quadrature(6)
    np.testing.assert_allclose(r.attributions, ref.integrated_gradients(model.grad, x, 1.0, None, a, w, False),
                               rtol=1e-13)
    e = ig.integrated_gradients(model.grad, np.zeros((0, 4)), n_steps=6)
    assert e.attributions.shape == (0, 4) and e.n_evaluations == 0
    z = ig.integrated_gradients(lambda p, t: np.zeros_like(p), np.zeros((3, 0)), n_steps=6)
    assert z.attributions.shape == (3, 0)
    # an empty batch with return_delta (the delta's per-example sums reshaped (0, -1): an error)
    e = ig.integrated_gradients(model.grad, np.zeros((0, 4)), n_steps=6, return_delta=True,
                                forward_fn=lambda p, t: p.sum(axis=1))
    assert e.attributions.shape == (0, 4) and e.delta.shape == e.relative_delta.shape == (0,)
    lin = ig.Linear(rng.standard_normal((2, 4)), np.zeros(2), output="logit")
    for method in ("gausslegendre", "exact"):
        e = ig.integrated_gradients(lin, np.zeros((0, 4)), target=0, method=method, return_delta=True)
        assert e.attributions.shape == (0, 4) and e.delta.shape == (0,)


def test_non_contiguous_x_is_copied(rng):
    model = Smooth(rng, (5,))
    x = np.asfortranarray(rng.standard_normal((6, 5)))
    r = ig.integrated_gradients(model.grad, x, n_steps=5)
    r2 = ig.integrated_gradients(model.grad, np.ascontiguousarray(x), n_steps=5)
    np.testing.assert_array_equal(r.attributions, r2.attributions)


# ------------------------------------------------------------------ bad input

def test_bad_callable_outputs(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"f: returned shape \(2, 4\)"):
        ig.integrated_gradients(lambda p, t: np.zeros((2, 4), np.float32), x, n_steps=2)
    with pytest.raises(TypeError, match="dtype float64"):
        ig.integrated_gradients(lambda p, t: np.zeros(p.shape), x, n_steps=2)
    with pytest.raises(TypeError, match="f: expected it to return an array"):
        ig.integrated_gradients(lambda p, t: p.tolist(), x, n_steps=2)

    def nan_at(p, t, calls=[0]):  # noqa: B006
        g = np.ones_like(p)
        calls[0] += 1
        if calls[0] == 2:
            g[1, 2] = np.nan  # chunk 2 (rows 3..5): row 4 = step 1, example 1
        return g

    with pytest.raises(ValueError, match=r"non-finite gradient \(nan\) at step 1 .*example 1, feature 2"):
        ig.integrated_gradients(nan_at, x, n_steps=3, chunk_size=3)


def test_bad_arguments(rng):
    x = rng.standard_normal((3, 4))
    g = lambda p, t: np.zeros_like(p)  # noqa: E731
    with pytest.raises(TypeError, match="x: expected dtype"):
        ig.integrated_gradients(g, x.astype(np.int64))
    with pytest.raises(ValueError, match="n_steps"):
        ig.integrated_gradients(g, x, n_steps=0)
    with pytest.raises(ValueError, match="n_steps"):
        ig.integrated_gradients(g, x, n_steps=1, method="riemann_left")
    with pytest.raises(ValueError, match="method"):
        ig.integrated_gradients(g, x, method="rk4")
    with pytest.raises(ValueError, match="exact"):
        ig.integrated_gradients(g, x, method="exact")
    with pytest.raises(ValueError, match="chunk_size"):
        ig.integrated_gradients(g, x, chunk_size=0)
    with pytest.raises(ValueError, match="multiply_by_inputs"):
        ig.integrated_gradients(g, x, return_delta=True, multiply_by_inputs=False, forward_fn=lambda p, t: p[:, 0])
    with pytest.raises(ValueError, match="forward_fn"):
        ig.integrated_gradients(g, x, return_delta=True)
    with pytest.raises(ValueError, match="forward_fn: returned shape"):
        ig.integrated_gradients(g, x, return_delta=True, forward_fn=lambda p, t: p)
    with pytest.raises(ValueError, match="baselines: shape"):
        ig.integrated_gradients(g, x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="baselines: shape"):
        ig.integrated_gradients(g, x, np.zeros(5))
    with pytest.raises(ValueError, match="baselines: expected finite"):
        ig.integrated_gradients(g, x, np.full(4, np.nan))
    # finite baselines that overflow x's dtype (reported as a non-finite gradient before)
    x32 = x.astype(np.float32)
    g32 = lambda p, t: np.zeros_like(p)  # noqa: E731
    with pytest.raises(ValueError, match=r"baselines: values overflow x's dtype float32 \(finite in float64\)"):
        ig.integrated_gradients(g32, x32, np.full(4, 1e300))
    with pytest.raises(ValueError, match=r"baselines: 1e\+300 overflows x's dtype float32"):
        ig.integrated_gradients(g32, x32, 1e300)
    with pytest.raises(ValueError, match=r"target: expected shape \(3,\)"):
        ig.integrated_gradients(g, x, target=np.array([1, 2]))
    with pytest.raises(ValueError, match="target: expected class indices"):
        ig.integrated_gradients(g, x, target=-1)
    with pytest.raises(TypeError, match="target"):
        ig.integrated_gradients(g, x, target=np.array([0.5, 1.0, 2.0]))
    with pytest.raises(TypeError, match="progress"):
        ig.integrated_gradients(g, x, progress="yes")
    with pytest.raises(TypeError, match="f: expected"):
        ig.integrated_gradients(42, x)
    with pytest.raises(TypeError, match="x: expected a NumPy or CuPy array"):
        ig.integrated_gradients(g, [[1.0, 2.0]])


# ------------------------------------------------------------------ expected gradients

def test_expected_gradients_matches_reference_and_is_chunk_invariant(rng):
    model = Smooth(rng, (3, 4))
    x = rng.standard_normal((5, 3, 4))
    bg = rng.standard_normal((7, 3, 4))
    mean, se = ig.expected_gradients(model.grad, x, bg, n_samples=30, rng=np.random.default_rng(5), chunk_size=4)
    d = np.random.default_rng(5)
    idx, alpha = d.integers(0, 7, size=(30, 5)), d.random((30, 5))
    rmean, rse = ref.expected_gradients(model.grad, x, bg, idx, alpha)
    np.testing.assert_allclose(mean, rmean, rtol=1e-12, atol=1e-14)
    # one pass about each example's first draw vs the reference's two passes
    np.testing.assert_allclose(se, rse, rtol=1e-10, atol=1e-14)
    for c in (1, 5, 149, None):
        m2, s2 = ig.expected_gradients(model.grad, x, bg, n_samples=30, rng=5, chunk_size=c)
        np.testing.assert_array_equal(m2, mean)
        np.testing.assert_array_equal(s2, se)


def test_expected_gradients_linear_expectation(rng):
    w = rng.standard_normal(6)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    bg = rng.standard_normal((50, 6))
    mean, se = ig.expected_gradients(lambda p, t: np.broadcast_to(w.astype(p.dtype), p.shape).copy(), x, bg,
                                     n_samples=400, rng=rng)
    truth = (x - bg.mean(axis=0)) * w  # φ does not depend on α for a linear model
    assert mean.dtype == np.float32 and se.dtype == np.float64
    assert np.all(se > 0)
    assert np.all(np.abs(mean - truth) < 5 * se + 1e-6)


def test_expected_gradients_standard_error_when_the_mean_dwarfs_the_spread(rng):
    """φ ≈ 1e5·w ± 1e-3·w: raw one-pass sums (s2 − n·mean²) cancelled to a standard error of 0 for
    most features; about the first draw it matches the two-pass reference. Constant φ gives 0."""
    w = np.array([1.0, 2.0, 3.0, 4.0])
    f = lambda p, t: np.broadcast_to(w, p.shape).copy()  # noqa: E731
    x = np.full((2, 4), 1e5)
    bg = 1e-3 * rng.standard_normal((50, 4))
    mean, se = ig.expected_gradients(f, x, bg, n_samples=400, rng=5)
    d = np.random.default_rng(5)
    idx, alpha = d.integers(0, 50, size=(400, 2)), d.random((400, 2))
    rmean, rse = ref.expected_gradients(f, x, bg, idx, alpha)
    assert np.all(rse > 0)
    np.testing.assert_allclose(se, rse, rtol=1e-6)  # φ's 1e-8 relative spread: ~1e-16/1e-8 of rounding
    np.testing.assert_allclose(mean, rmean, rtol=1e-14)
    _, se_const = ig.expected_gradients(f, x, np.zeros((3, 4)), n_samples=10, rng=1)
    np.testing.assert_array_equal(se_const, 0.0)


def test_expected_gradients_bad_input(rng):
    g = lambda p, t: np.zeros_like(p)  # noqa: E731
    x = rng.standard_normal((2, 3))
    with pytest.raises(ValueError, match="n_samples"):
        ig.expected_gradients(g, x, np.zeros((4, 3)), n_samples=1)
    with pytest.raises(ValueError, match="background: expected shape"):
        ig.expected_gradients(g, x, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="background: expected at least one row"):
        ig.expected_gradients(g, x, np.zeros((0, 3)))
    with pytest.raises(TypeError, match="rng"):
        ig.expected_gradients(g, x, np.zeros((4, 3)), rng="seed")
    with pytest.raises(ValueError, match="non-finite gradient"):
        ig.expected_gradients(lambda p, t: np.full_like(p, np.inf), x, np.zeros((4, 3)), n_samples=3)


def test_strided_x_and_baselines(rng):
    model = Smooth(rng, (4,))
    big = rng.standard_normal((10, 8))
    x = big[::2, 1::2]  # non-contiguous view: copied
    xb = rng.standard_normal((4, 1))[:, 0]  # (4,) strided view broadcast to every example
    r = ig.integrated_gradients(model.grad, x, xb, n_steps=6)
    r2 = ig.integrated_gradients(model.grad, np.ascontiguousarray(x), np.ascontiguousarray(xb), n_steps=6)
    np.testing.assert_array_equal(r.attributions, r2.attributions)


def test_progress_true_runs_with_or_without_tqdm(rng):
    model = Smooth(rng, (3,))
    x = rng.standard_normal((2, 3))
    r = ig.integrated_gradients(model.grad, x, n_steps=4, chunk_size=3, progress=True)
    np.testing.assert_array_equal(r.attributions, ig.integrated_gradients(model.grad, x, n_steps=4).attributions)


def test_low_level_bad_input(rng):
    x = rng.standard_normal((3, 4))
    a, w = ig.quadrature(5)
    with pytest.raises(ValueError, match="baselines: expected shape"):
        ig.interpolate(x, np.zeros((2, 4)), a, 0, np.empty((3, 4)))
    with pytest.raises(TypeError, match="out: expected dtype"):
        ig.interpolate(x, np.zeros((1, 4)), a, 0, np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="r0"):
        ig.interpolate(x, np.zeros((1, 4)), a, 14, np.empty((3, 4)))
    ro = np.empty((3, 4))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        ig.interpolate(x, np.zeros((1, 4)), a, 0, ro)
    with pytest.raises(ValueError, match="overlap"):
        ig.interpolate(x, np.zeros((1, 4)), a, 0, x[:2])
    with pytest.raises(TypeError, match="acc: expected dtype float64"):
        ig.accumulate(np.zeros((3, 4), np.float32), np.zeros((2, 4)), w, 0)
    with pytest.raises(ValueError, match="grads: expected shape"):
        ig.accumulate(np.zeros((3, 4)), np.zeros((2, 5)), w, 0)
    with pytest.raises(ValueError, match="r0"):
        ig.accumulate(np.zeros((3, 4)), np.zeros((2, 4)), w, 14)
    with pytest.raises(ValueError, match=r"non-finite gradient \(inf\) at step 1, example 0, feature 3"):
        ig.accumulate(np.zeros((3, 4)), np.array([[0, 0, 0, np.inf]] * 2, float), w, 3)
    # outputs overlapping the other (float64, contiguous: not copied) arguments
    buf = np.zeros((3, 4))
    with pytest.raises(ValueError, match="out: must not overlap alphas"):
        ig.interpolate(x, np.zeros((1, 4)), buf[0, :1], 0, buf)
    acc = np.zeros((3, 4))
    with pytest.raises(ValueError, match="acc: must not overlap grads"):
        ig.accumulate(acc, acc[:2], w, 0)
    with pytest.raises(ValueError, match="acc: must not overlap weights"):
        ig.accumulate(acc, np.zeros((2, 4)), acc.reshape(-1)[:5], 0)
