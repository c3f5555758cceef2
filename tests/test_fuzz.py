"""Property-based fuzzing of the public functions (hypothesis): random shapes (0, 1, primes),
dtypes, strides, axes, extreme values (NaN, ±inf, subnormals, huge) and wrong argument types.
Every call must either return the reference result or raise TypeError/ValueError with a message —
never crash, hang, return garbage silently or write outside its output.
"""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from fastcore import activations as A  # noqa: E402
from fastcore import tiger  # noqa: E402
from fastcore.reference import activations as R  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SIZES = st.sampled_from([0, 1, 2, 3, 5, 7, 13, 16, 17, 31, 33, 64, 97])
EXTREMES = st.sampled_from([0.0, -0.0, 1e-310, -1e-310, 5e-324, 1e30, -1e30, 3e38, -3e38, 1e300,
                            np.nan, np.inf, -np.inf])
MAPS = ["softmax", "log_softmax", "sparsemax", "entmax15"]


@st.composite
def logit_arrays(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = tuple(draw(st.lists(SIZES, min_size=1, max_size=3)))
    x = draw(hnp.arrays(dtype, shape, elements=st.floats(-50, 50, width=32)))
    if x.size and draw(st.booleans()):
        flat = x.reshape(-1)
        for _ in range(draw(st.integers(1, 3))):
            with np.errstate(over="ignore"):
                flat[draw(st.integers(0, x.size - 1))] = dtype(draw(EXTREMES))
    if x.ndim >= 1 and x.shape[-1] > 1 and draw(st.booleans()):
        x = x[..., ::2]                                   # a strided view
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


def assert_agrees(name, got, want, dtype):
    assert got.shape == want.shape and got.dtype == dtype
    assert np.array_equal(np.isnan(got), np.isnan(want)), name
    finite = np.isfinite(want)
    assert np.array_equal(np.isinf(got), np.isinf(want)), name
    # Huge logits: relative precision of the input dtype on the exponent scale.
    atol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got[finite], want[finite], atol=atol, rtol=1e-5 if dtype == np.float32 else 1e-11)


@SETTINGS
@given(logit_arrays(), st.sampled_from(MAPS), st.sampled_from([1.0, 0.5, -2.0, 2.0]))
def test_maps_on_random_arrays_match_reference(case, name, scale):
    x, axis = case
    before = x.copy()
    got = getattr(A, name)(x, axis=axis, scale=scale)
    assert np.array_equal(x, before, equal_nan=True)        # the input is untouched
    if x.size == 0:
        assert got.shape == x.shape
        return
    with np.errstate(all="ignore"):
        if name in ("softmax", "log_softmax"):
            # documented: these form scale·x in the input dtype, so an overflow there is an
            # infinite logit (the sparse maps form it in float64)
            want = getattr(R, name)((x * x.dtype.type(scale)).astype(x.dtype), axis=axis)
        else:
            want = getattr(R, name)(x, axis=axis, scale=scale)
    assert_agrees(name, got, want, x.dtype)


@SETTINGS
@given(logit_arrays(), st.sampled_from([1.05, 1.3, 1.7, 2.5, 4.0]))
def test_entmax_bisect_on_random_arrays_matches_reference(case, alpha):
    """alpha-entmax against its float64 bisection reference on the same random arrays (NaN,
    infinities, huge and subnormal logits, strides, any axis), alpha on both sides of 2."""
    x, axis = case
    got = A.entmax_bisect(x, alpha, axis=axis)
    if x.size == 0:
        assert got.shape == x.shape
        return
    with np.errstate(all="ignore"):
        want = R.entmax_bisect(x.astype(np.float64), alpha, axis=axis)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    # float32: the output's rounding plus the float32 logits' spread; float64: the threshold to a
    # few ulp (alpha <= 4 here: at larger alpha an entry a few ulp above the threshold has
    # p = u^(1/(alpha-1)) far from 0, and no tolerance of this size holds)
    atol = 2e-6 if x.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got[finite], want[finite], atol=atol)


@SETTINGS
@given(logit_arrays())
def test_backward_on_random_arrays_matches_reference(case):
    x, axis = case
    if x.size == 0:
        return
    x = np.where(np.isfinite(x), x, 0).astype(x.dtype)
    dy = np.cos(np.arange(x.size, dtype=np.float64)).reshape(x.shape).astype(x.dtype)
    for name in ("softmax", "sparsemax", "entmax15"):
        y = getattr(A, name)(x, axis=axis)
        got = getattr(A, name + "_backward")(y, dy, axis=axis)
        want = getattr(R, name + "_backward")(y, dy, axis=axis)
        tol = 1e-4 if x.dtype == np.float32 else 1e-10
        np.testing.assert_allclose(got, want, atol=tol, rtol=tol)


JUNK = st.one_of(st.none(), st.text(max_size=3), st.integers(-3, 3), st.floats(allow_nan=True),
                 st.just([1, "a"]), st.just({"a": 1}), st.just(object()), st.just(np.zeros(3, np.int64)),
                 st.just(np.zeros((2, 2), np.complex64)), st.just(np.zeros(0)), st.just(np.float64(2.0)),
                 st.just(np.ones((2, 3), bool)), st.just(np.zeros((4, 1, 2))))


@SETTINGS
@given(st.sampled_from(["softmax", "sparsemax", "entmax15", "entmax_bisect", "topk_softmax",
                        "softmax_backward", "sparsemax_loss", "softmax_cross_entropy"]),
       st.integers(0, 3), JUNK)
def test_wrong_arguments_raise_type_or_value_errors(name, position, junk):
    x = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, 0.0]])
    args = {"softmax": [x, -1], "sparsemax": [x, -1], "entmax15": [x, -1],
            "entmax_bisect": [x, 1.5, -1], "topk_softmax": [x, 2, -1],
            "softmax_backward": [A.softmax(x), x, -1], "sparsemax_loss": [x, np.array([0, 2]), -1],
            "softmax_cross_entropy": [x, np.array([1, 1]), -1]}[name]
    if position >= len(args):
        return
    args[position] = junk
    try:
        result = getattr(A, name)(*args)
    except (TypeError, ValueError) as exc:
        assert str(exc)                                      # a message, naming the problem
        return
    # Accepted: then it must be a valid result of the right shape and finite where x is.
    for r in result if isinstance(result, tuple) else (result,):
        assert isinstance(r, np.ndarray)


@SETTINGS
@given(st.lists(st.sampled_from([0, 1, 3, 4, 17, 64]), min_size=1, max_size=4),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 5), st.integers(1, 3))
def test_tiger_step_random_lists(sizes, dtype, step, k):
    rng = np.random.default_rng(sum(sizes) + step)
    params = [rng.standard_normal(s).astype(dtype) for s in sizes]
    grads = [rng.standard_normal(s).astype(dtype) for s in sizes]
    moms = [np.zeros(s, dtype) for s in sizes]
    from fastcore.reference import tiger as ref

    want_p, want_m, _ = ref.tiger_step([p.astype(np.float64) for p in params],
                                       [g.astype(np.float64) for g in grads],
                                       [m.astype(np.float64) for m in moms],
                                       step=step, lr=0.01, grad_accum_steps=k)
    tiger.tiger_step(params, grads, moms, step=step, lr=0.01, grad_accum_steps=k)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for p, w in zip(params, want_p):
        np.testing.assert_allclose(p, w, atol=tol)


def test_size_products_that_overflow_are_rejected_before_any_work():
    from fastcore import _cpu

    x = np.zeros(4, np.float32)
    with pytest.raises(ValueError):
        _cpu.activations.forward(0, x, None, x.copy(), 2**40, 2**40, 2**40, 1.0, 0.0, 0)
    with pytest.raises(ValueError):
        _cpu.activations.backward(0, x, x, x.copy(), 2**62, 4, 1, 1.0, 0.0)


@st.composite
def monarch_problems(draw):
    K, Q, P = (draw(st.sampled_from([1, 2, 3, 5])) for _ in range(3))
    L = draw(st.sampled_from([d for d in range(1, K * Q + 1) if (K * Q) % d == 0]))
    R, S = K * Q // L, draw(st.sampled_from([1, 2, 3, 7]))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.complex64, np.complex128]))
    lead = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 5]), max_size=2)))
    return (K, Q, P), (L, S, R), dtype, lead


@SETTINGS
@given(monarch_problems(), st.booleans())
def test_monarch_random_shapes_match_dense_oracle(problem, poison):
    from fastcore import monarch as M
    from fastcore.reference import monarch as RM

    s1, s2, dtype, lead = problem
    rng = np.random.default_rng(sum(s1) * 31 + sum(s2))
    w1 = rng.standard_normal(s1).astype(dtype)
    w2 = rng.standard_normal(s2).astype(dtype)
    x = rng.standard_normal(lead + (s1[0] * s1[2],)).astype(dtype)
    if poison and x.size:
        x.reshape(-1)[0] = np.inf
    with np.errstate(all="ignore"):
        y = M.multiply(x, w1, w2)
        # the step-wise oracle, not the dense one: structural zeros of M are never multiplied,
        # so an inf reaches only the outputs connected to it (dense: inf·0 = NaN everywhere)
        want = RM.multiply_steps(x, w1, w2)
    assert y.shape == want.shape
    assert np.array_equal(np.isfinite(y), np.isfinite(want))
    finite = np.isfinite(want)
    tol = 1e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12
    np.testing.assert_allclose(y[finite], want[finite], atol=tol * max(1.0, np.abs(want[finite]).max(initial=0)))


@SETTINGS
@given(st.integers(1, 70), st.integers(1, 80), st.integers(1, 3), st.sampled_from([np.float32, np.float64]),
       st.booleans())
def test_fftconv_random_lengths_match_direct_convolution(L, Lk, H, dtype, with_d):
    from fastcore import s4

    rng = np.random.default_rng(L * 1000 + Lk)
    u = rng.standard_normal((2, H, L)).astype(dtype)
    K = rng.standard_normal((H, Lk)).astype(dtype)
    D = rng.standard_normal(H).astype(dtype) if with_d else None
    y = s4.fftconv(u, K, D)
    want = np.zeros((2, H, L))
    for b in range(2):
        for h in range(H):
            want[b, h] = np.convolve(u[b, h].astype(np.float64), K[h].astype(np.float64))[:L]
            if with_d:
                want[b, h] += D[h] * u[b, h]
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y, want, atol=tol * max(1.0, np.abs(want).max()))


@SETTINGS
@given(st.integers(1, 40), st.sampled_from(["gausslegendre", "riemann_left", "riemann_right",
                                             "riemann_middle", "riemann_trapezoid", "trapezoid"]),
       st.integers(1, 9), st.integers(1, 20))
def test_ig_linear_model_any_chunking(n_steps, method, n, chunk):
    """Any chunk size gives bitwise the same attributions; a linear model's IG is exact for the
    rules whose weights sum to 1."""
    from fastcore import ig

    if method.startswith("riemann") and n_steps < 2:
        with pytest.raises(ValueError):
            ig.quadrature(n_steps, method)
        return
    rng = np.random.default_rng(n_steps * 100 + n)
    w = rng.standard_normal(6)

    def grad(points, target):
        return np.broadcast_to(w, points.shape).copy()

    x = rng.standard_normal((n, 6))
    a = ig.integrated_gradients(grad, x, 0.0, n_steps=n_steps, method=method, chunk_size=chunk)
    b = ig.integrated_gradients(grad, x, 0.0, n_steps=n_steps, method=method)
    assert a.attributions.tobytes() == b.attributions.tobytes()
    _, weights = ig.quadrature(n_steps, method)
    np.testing.assert_allclose(a.attributions, x * w * weights.sum(), rtol=1e-12, atol=1e-12)
