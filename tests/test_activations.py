"""fastcore.activations against the float64 references (fastcore.reference.activations), the
mathematical properties of each map, the backward passes and losses, determinism and bad input.

Tolerances (probabilities lie in [0, 1], so absolute errors are the natural measure):
- float64: 1e-13 — sums of up to 65537 terms in blocked order, each term correct to ~1 ulp.
- float32: softmax 2e-6 (the project exp is <= 1.06 ulp; scale*x and the sum are rounded in float32:
  a few ulp of 1); the sparse maps compute thresholds in float64 from the float32 inputs, so
  their outputs are the float64 result rounded once: 2 ulp of 1 = 2.4e-7.
- log-softmax: relative 1e-6 (float32) / 1e-13 (float64) on values of size up to ~20.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcore
from fastcore import activations as A
from fastcore.reference import activations as R
from fastcore.testing import simd_levels

MAPS = ["softmax", "log_softmax", "sparsemax", "entmax15"]
PROB_MAPS = ["softmax", "sparsemax", "entmax15"]
DTYPES = [np.float32, np.float64]


def atol_for(name, dtype):
    if dtype == np.float64:
        return 1e-13
    return 2e-6 if name in ("softmax", "log_softmax", "bisect") else 2.4e-7


def assert_map_close(name, got, want, dtype):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    if name == "log_softmax":
        rtol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=rtol)
    else:
        np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=atol_for(name, dtype))


def logits(rng, shape, dtype, spread=3.0):
    return (rng.standard_normal(shape) * spread).astype(dtype)


# --- values against the references --------------------------------------------------------------

def test_golden_values():
    x = np.array([-2.0, 0.0, 0.5])
    np.testing.assert_allclose(A.softmax(x), [0.0486, 0.3592, 0.5922], atol=5e-5)
    np.testing.assert_allclose(A.sparsemax(x), [0.0, 0.25, 0.75], atol=1e-15)
    np.testing.assert_allclose(A.entmax15(x), [0.0, 0.3260, 0.6740], atol=5e-5)
    # Two classes [t, 0]: sparsemax p1 = clip((t+1)/2), 1.5-entmax p1 = ((t + sqrt(8 - t^2))/4)^2.
    for t in (-1.5, -0.3, 0.0, 0.7, 1.9):
        two = np.array([t, 0.0])
        assert A.sparsemax(two)[0] == pytest.approx(np.clip((t + 1) / 2, 0, 1), abs=1e-15)
        assert A.entmax15(two)[0] == pytest.approx(((t + np.sqrt(8 - t * t)) / 4) ** 2, abs=1e-14)


@pytest.mark.parametrize("n", [1, 2, 3, 31, 32, 33, 1000, 1025, 4097, 65537])
@pytest.mark.parametrize("dtype", DTYPES)
def test_maps_match_reference_along_last_axis(rng, n, dtype):
    rows = 2 if n > 5000 else 5
    x = logits(rng, (rows, n), dtype)
    for name in MAPS:
        assert_map_close(name, getattr(A, name)(x), getattr(R, name)(x), dtype)


@pytest.mark.parametrize("shape, axis", [((4, 37, 5), 1), ((37, 6), 0), ((3, 4, 67), 0),
                                         ((2, 3, 17, 19), 2), ((5, 1, 3), 1), ((40, 130), 0)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_any_axis_matches_reference(rng, shape, axis, dtype):
    x = logits(rng, shape, dtype)
    for name in MAPS:
        got = getattr(A, name)(x, axis=axis)
        assert_map_close(name, got, getattr(R, name)(x, axis=axis), dtype)
        # The same row through the strided path and the contiguous path: identical bits.
        moved = np.ascontiguousarray(np.moveaxis(x, axis, -1))
        assert np.array_equal(np.moveaxis(got, axis, -1), getattr(A, name)(moved))


def column_problem(rng, n, inner, dtype):
    """(2, n, inner) logits and a mask with special columns for the axis-1 strip tests: a NaN
    (column 3), a +inf (5), -inf entries (9), a fully masked column (7), a column masked except
    for its last entry (11)."""
    x = logits(rng, (2, n, inner), dtype)
    mask = rng.random((2, n, inner)) > 0.2
    if n > 1:
        x[0, n // 2, 3] = np.nan
        x[1, n - 1, 5] = np.inf
        x[1, : n // 3, 9] = -np.inf
    mask[0, :, 7] = False            # fully masked column
    mask[1, :, 11] = False
    mask[1, n - 1, 11] = True         # one survivor
    return x, mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, inner", [(2500, 70), (1024, 16), (1, 33), (5, 200), (70_000, 17)])
def test_softmax_down_columns_has_the_row_paths_bits(rng, dtype, n, inner):
    """axis != -1 with >= 16 columns runs the column-vectorised strip kernel (strips of 256 bytes,
    n rows in blocks of 1024); columns longer than 256 KiB go through the gather path instead.
    Every column must equal the contiguous row path bit for bit, special columns included: a NaN,
    a +inf, a fully masked column, -inf entries, a column that is masked except for one entry."""
    x, mask = column_problem(rng, n, inner, dtype)
    for name in ("softmax", "log_softmax"):
        fn = getattr(A, name)
        for kwargs in ({}, {"mask": mask, "scale": -0.75}):
            got = fn(x, axis=1, **kwargs)
            moved = {k: np.ascontiguousarray(np.moveaxis(v, 1, -1)) if k == "mask" else v
                     for k, v in kwargs.items()}
            want = fn(np.ascontiguousarray(np.moveaxis(x, 1, -1)), **moved)
            assert np.array_equal(np.moveaxis(got, 1, -1), want, equal_nan=True), (name, kwargs)
    if n > 1:
        assert np.all(np.isnan(A.softmax(x, axis=1)[0, :, 3]))
        assert np.all(np.isnan(A.softmax(x, axis=1)[1, :, 5]))
    assert np.all(A.softmax(x, axis=1, mask=mask)[0, :, 7] == 0)
    assert np.all(A.log_softmax(x, axis=1, mask=mask)[0, :, 7] == -np.inf)
    assert A.softmax(x, axis=1, mask=mask)[1, n - 1, 11] == 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, inner", [(2500, 70), (1024, 16), (1, 33), (2, 17), (5, 200), (20_000, 17)])
def test_sparse_maps_down_columns_have_the_row_paths_bits(rng, dtype, n, inner):
    """Sparsemax and the entmaxes with axis != -1 and >= 16 columns run the column-vectorised
    strip kernel (256-byte strips; a partial strip at the right edge); columns whose candidate
    scratch would pass 4 MiB (20000 rows) go through the gather path. Every column must equal the
    contiguous row path bit for bit, special columns included: a NaN, a +inf, a fully masked
    column, -inf entries, a column masked except for one entry, a constant column (every entry
    a candidate), ties at the max."""
    x, mask = column_problem(rng, n, inner, dtype)
    if n > 1:
        x[0, :, 13] = 0.625                       # constant: all candidates, p = 1/n
        x[1, :2, 14] = x[1, :, 14].max() + 1      # a tie at the max
    # alpha-entmax writes the powers of its last pass (row positions kept with them; the strips
    # through a 64-row tile); an n_iter stop recomputes them: both forms, dense (1.1) and sparse
    for name, args in (("sparsemax", ()), ("entmax15", ()), ("entmax_bisect", (1.1,)),
                       ("entmax_bisect", (1.7,)), ("entmax_bisect", (2.5,))):
        fn = getattr(A, name)
        cases = ({}, {"mask": mask}, {"n_iter": 2}) if name == "entmax_bisect" else \
            ({}, {"mask": mask, "scale": -0.75}, {"scale": 2.5}, {"scale": 0.0})
        for kwargs in cases:
            got = fn(x, *args, axis=1, **kwargs)
            moved = {k: np.ascontiguousarray(np.moveaxis(v, 1, -1)) if k == "mask" else v
                     for k, v in kwargs.items()}
            want = fn(np.ascontiguousarray(np.moveaxis(x, 1, -1)), *args, **moved)
            assert np.array_equal(np.moveaxis(got, 1, -1), want, equal_nan=True), (name, args, kwargs)
    y = A.sparsemax(x, axis=1, mask=mask)
    assert np.all(y[0, :, 7] == 0) and y[1, n - 1, 11] == 1
    if n > 1:
        assert np.all(np.isnan(A.entmax15(x, axis=1)[0, :, 3]))
        assert np.all(np.isnan(A.sparsemax(x, axis=1)[1, :, 5]))
        np.testing.assert_allclose(A.sparsemax(x, axis=1)[0, :, 13], 1 / n, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [0.25, 3.0, -1.5, 0.0])
def test_scale_is_an_inverse_temperature(rng, dtype, scale):
    x = logits(rng, (6, 50), dtype)
    for name in MAPS:
        assert_map_close(name, getattr(A, name)(x, scale=scale), getattr(R, name)(x, scale=scale), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [1.05, 1.1, 1.25, 1.5, 2.0, 3.0])
def test_entmax_bisect_matches_reference(rng, dtype, alpha):
    x = logits(rng, (6, 300), dtype)
    got = A.entmax_bisect(x, alpha)
    want = R.entmax_bisect(x, alpha)
    np.testing.assert_allclose(got, want, atol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("alpha", [1.02, 1.1, 1.25, 1.5, 1.7, 2.0])
def test_entmax_bisect_converges_in_a_few_newton_steps(rng, alpha):
    """For alpha <= 2 the threshold iteration (Newton on the b-norm of (d - tau)_+, from the
    subset floor) has converged after 12 steps: a budget of 12 gives the same bits as the
    default budget of 200, on dense (alpha near 1) and sparse supports, short and long rows.
    (Newton on sum p - 1 from tau = -1 needed ~25-60 steps near alpha = 1, and a converged
    step used to be taken for a bisection that then walked the bracket down: ~50 more.)"""
    for spread in (0.1, 1.0, 3.0, 30.0):
        for n in (2, 37, 1000, 4097):
            x = logits(rng, (8, n), np.float64, spread=spread)
            full = A.entmax_bisect(x, alpha)
            assert np.array_equal(A.entmax_bisect(x, alpha, n_iter=12), full), (spread, n)


def test_entmax_bisect_agrees_with_the_exact_maps(rng):
    x = logits(rng, (8, 200), np.float64)
    np.testing.assert_allclose(A.entmax_bisect(x, 1.5), A.entmax15(x), atol=1e-12)
    np.testing.assert_allclose(A.entmax_bisect(x, 2.0), A.sparsemax(x), atol=1e-12)
    # A fixed iteration budget still returns a distribution.
    y = A.entmax_bisect(x, 1.7, n_iter=3)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-12)


# --- properties ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", PROB_MAPS)
def test_simplex(rng, dtype, name):
    x = logits(rng, (20, 257), dtype, spread=rng.choice([0.1, 1.0, 10.0]))
    y = getattr(A, name)(x)
    assert np.all(y >= 0)
    n_eps = 257 * np.finfo(dtype).eps
    np.testing.assert_allclose(y.astype(np.float64).sum(-1), 1.0, atol=4 * n_eps)


@pytest.mark.parametrize("name", MAPS)
@pytest.mark.parametrize("c", [1e4, -1e4])
def test_shift_invariance(rng, name, c):
    x = logits(rng, (4, 100), np.float64)
    np.testing.assert_allclose(getattr(A, name)(x + c), getattr(A, name)(x), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", MAPS)
def test_shift_in_float32_matches_reference_of_shifted_input(rng, name):
    x = logits(rng, (4, 100), np.float32) + np.float32(1e4)
    assert_map_close(name, getattr(A, name)(x), getattr(R, name)(x), np.float32)


@pytest.mark.parametrize("name", MAPS)
def test_permutation_equivariance_and_monotonicity(rng, name):
    x = logits(rng, (3, 64), np.float64)
    perm = rng.permutation(64)
    y = getattr(A, name)(x)
    np.testing.assert_allclose(getattr(A, name)(x[:, perm]), y[:, perm], atol=1e-14)
    for r in range(3):
        order = np.argsort(x[r])
        assert np.all(np.diff(y[r][order]) >= 0)


def test_sparsemax_kkt(rng):
    for spread in (0.2, 1.0, 5.0, 50.0):
        x = logits(rng, (10, 300), np.float64, spread)
        p = A.sparsemax(x)
        for r in range(10):
            s = p[r] > 0
            tau = x[r][s] - p[r][s]
            assert np.ptp(tau) < 1e-12               # z_i - p_i = tau on the support
            assert np.all(x[r][~s] <= tau[0] + 1e-12)  # z_j <= tau off it


def test_entmax15_kkt(rng):
    for spread in (0.2, 1.0, 5.0, 50.0):
        x = logits(rng, (10, 300), np.float64, spread)
        p = A.entmax15(x)
        for r in range(10):
            s = p[r] > 0
            tau = x[r][s] / 2 - np.sqrt(p[r][s])
            assert np.ptp(tau) < 1e-12
            assert np.all(x[r][~s] / 2 <= tau[0] + 1e-12)


@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_entries_just_above_the_lane_extremes_threshold_stay_in_the_support(rng, name):
    """The row kernel takes as candidates only entries above a floor: the threshold of the 16
    lane extremes (entry i is in lane i % 16) less 2^-30, a lower bound on the row's threshold.
    Rows whose lane extremes alone give a threshold t, with entries at t + delta elsewhere (they
    join the support with a tiny p) and entries just below t: every support entry must survive."""
    factor = 1.0 if name == "sparsemax" else 0.5
    power = 1 if name == "sparsemax" else 2
    for delta in (1e-6, 1e-4, 1e-2):
        top = rng.uniform(-0.05, 0, 16)
        top[0] = 0.0
        if power == 1:
            t = (top.sum() - 1) / 16
        else:  # the root of sum (top - t)^2 = 1 with every top entry above it
            mu, var = top.mean(), top.var()
            t = mu - np.sqrt(1 / 16 - var)
        d = np.full(16 * 9, -5.0)
        d[:16] = top
        d[16 + 5] = t + delta
        d[16 * 3 + 9] = t + 2 * delta
        d[16 * 5 + 1] = t - 1e-3
        x = d / factor
        got = getattr(A, name)(x)
        want = getattr(R, name)(x)
        assert_map_close(name, got, want, np.float64)
        assert got[16 + 5] > 0 and got[16 * 3 + 9] > got[16 + 5] and got[16 * 5 + 1] == 0
        # the same row down a column strip (axis 0, 20 columns)
        cols = np.repeat(x[:, None], 20, axis=1)
        assert np.array_equal(getattr(A, name)(cols, axis=0)[:, 7], got)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hard_inputs_for_the_sparse_maps(dtype):
    """Ties, huge magnitudes, tiny spreads, n = 1 and 2, all-equal rows, ramps."""
    cases = [np.zeros(7), np.full(5, 3.0), np.array([1.0]), np.array([2.0, 2.0]),
             np.array([1e30, 1e30, -1e30]) if dtype == np.float64 else np.array([1e30, 1e30, -1e30]),
             np.array([0.5, 0.5, 0.5, -0.5, -0.5]), np.linspace(0, 1, 4097), np.linspace(0, 30, 1000),
             np.array([1.0, 1.0 - 1e-7, 1.0 - 2e-7]), np.arange(50.0) * 1e-9]
    for x in cases:
        x = x.astype(dtype)
        for name in ("sparsemax", "entmax15", "softmax"):
            assert_map_close(name, getattr(A, name)(x), getattr(R, name)(x), dtype)


@pytest.mark.parametrize("axis", [-1, 0])
def test_sparse_maps_scale_float32_logits_past_float32_range(rng, axis):
    """The sparse maps scale x in double: a float32 logit near FLT_MAX times a factor > 1 (scale,
    or alpha - 1 > 1) is finite there, so the row is a proper one-hot, as the float64 reference
    says. (The float32 candidate pre-test once formed x * factor in float32: inf, no entry passed,
    and sparsemax returned inf, alpha-entmax zeros.) Rows and 20-column strips, both signs."""
    x = logits(rng, (3, 50), np.float32)
    x[0, 7] = 3e38
    x[1, 11] = -3e38
    x[2, 3] = np.finfo(np.float32).max
    for name, args, kwargs in (("sparsemax", (), {"scale": 2.0}), ("entmax15", (), {"scale": 4.0}),
                               ("entmax_bisect", (2.5,), {}), ("sparsemax", (), {"scale": -2.0}),
                               ("entmax15", (), {"scale": -3.0})):
        xa = np.ascontiguousarray(np.repeat(x.T[:, :, None], 20, axis=2)) if axis == 0 else x
        got = getattr(A, name)(xa, *args, axis=axis, **kwargs)
        got = got[:, :, 5].T if axis == 0 else got
        want = getattr(R, name)(x.astype(np.float64), *args, **kwargs)
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"{name} {kwargs}")
        np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_equals_deleting_the_columns(rng, dtype):
    x = logits(rng, (6, 40), dtype)
    keep = rng.random(40) > 0.4
    for name in MAPS:
        full = getattr(A, name)(x, mask=keep)
        alone = getattr(A, name)(x[:, keep])
        assert_map_close(name, full[:, keep], alone.astype(np.float64), dtype)
        assert np.all(full[:, ~keep] == (-np.inf if name == "log_softmax" else 0.0))
        # -inf logits behave exactly like masked entries.
        xinf = x.copy()
        xinf[:, ~keep] = -np.inf
        assert np.array_equal(getattr(A, name)(xinf), full)


def test_mask_broadcasts(rng):
    x = logits(rng, (3, 4, 10), np.float64)
    mask = rng.random((1, 4, 10)) > 0.3
    mask[:, :, 0] = True
    np.testing.assert_allclose(A.softmax(x, mask=mask), R.softmax(x, mask=mask), atol=1e-14)


@pytest.mark.parametrize("name", MAPS)
def test_fully_masked_rows_give_zeros_not_nan(rng, name):
    x = logits(rng, (3, 9), np.float64)
    mask = np.ones((3, 9), bool)
    mask[1] = False
    y = getattr(A, name)(x, mask=mask)
    expected = -np.inf if name == "log_softmax" else 0.0
    assert np.all(y[1] == expected)
    assert np.all(np.isfinite(y[[0, 2]]) | (name == "log_softmax"))
    xinf = x.copy()
    xinf[1] = -np.inf
    assert np.array_equal(getattr(A, name)(xinf), y)


@pytest.mark.parametrize("name", MAPS + ["entmax_bisect"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_plus_inf_poison_their_row_only(rng, name, bad):
    x = logits(rng, (4, 2000), np.float32)   # 2000: also the candidate/blocked paths
    clean = getattr(A, name)(x)
    x[2, 777] = bad
    y = getattr(A, name)(x)
    assert np.all(np.isnan(y[2]))
    assert np.array_equal(np.delete(y, 2, axis=0), np.delete(clean, 2, axis=0))


def test_long_rows_use_the_online_path_and_still_match(rng):
    x = logits(rng, (2, 100_003), np.float32)   # > 256 KiB per row
    x[0, 50_000:] += 5                           # the max moves late in the row
    for name in MAPS:
        assert_map_close(name, getattr(A, name)(x), getattr(R, name)(x), np.float32)
    m = rng.random(x.shape) > 0.5
    assert_map_close("softmax", A.softmax(x, mask=m), R.softmax(x, mask=m), np.float32)


# --- top-k softmax --------------------------------------------------------------------------------

def test_topk_softmax(rng):
    x = logits(rng, (5, 30), np.float64)
    for k in (1, 4, 29, 30):
        np.testing.assert_allclose(A.topk_softmax(x, k), R.topk_softmax(x, k), atol=1e-14)
    np.testing.assert_allclose(A.topk_softmax(x, 30), A.softmax(x), atol=1e-14)
    # ties at the k-th value: the lower index wins
    tied = np.array([1.0, 3.0, 2.0, 2.0, 2.0, 0.0])
    y = A.topk_softmax(tied, 3)
    assert np.array_equal(y > 0, [False, True, True, True, False, False])
    assert np.array_equal(A.topk_softmax(np.ones(4, np.float32), 2) > 0, [True, True, False, False])
    np.testing.assert_allclose(A.topk_softmax(x, 3, axis=0), R.topk_softmax(x, 3, axis=0), atol=1e-14)


# --- backward -------------------------------------------------------------------------------------

BACKWARD = {"softmax": A.softmax_backward, "log_softmax": A.log_softmax_backward,
            "sparsemax": A.sparsemax_backward, "entmax15": A.entmax15_backward}
REF_BACKWARD = {"softmax": R.softmax_backward, "log_softmax": R.log_softmax_backward,
                "sparsemax": R.sparsemax_backward, "entmax15": R.entmax15_backward}


@pytest.mark.parametrize("name", MAPS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", [((7, 33), -1), ((33, 5), 0), ((2, 9, 4), 1)])
def test_backward_matches_closed_form_jacobians(rng, name, dtype, shape, axis):
    x = logits(rng, shape, dtype)
    y = getattr(A, name)(x, axis=axis)
    dy = rng.standard_normal(shape).astype(dtype)
    got = BACKWARD[name](y, dy, axis=axis, scale=1.5)
    want = REF_BACKWARD[name](y, dy, axis=axis, scale=1.5)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, want, atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_outputs_past_32_mib_use_streaming_stores_with_the_same_bits(rng, dtype):
    """An output of >= 32 MiB is written with non-temporal stores, by every map (rows of 4099
    elements: unaligned row starts, so the alignment peel and the tail run too). Its bits must
    equal the same rows mapped in small calls (plain stores)."""
    rows = (32 << 20) // (4099 * np.dtype(dtype).itemsize) + 3
    x = logits(rng, (rows, 4099), dtype)
    mask = rng.random(x.shape) > 0.1
    for name in MAPS + ["entmax_bisect"]:
        fn = getattr(A, name)
        for kwargs in ({}, {"scale": 0.5}, {"mask": mask}):
            if name == "entmax_bisect" and "scale" in kwargs:
                continue
            got = fn(x, **kwargs)
            want = np.concatenate([
                fn(x[i:i + 512], **({"mask": mask[i:i + 512]} if "mask" in kwargs else kwargs))
                for i in range(0, rows, 512)])
            assert np.array_equal(got, want), (name, kwargs)
        p = np.exp(got[:3].astype(np.float64)) if name == "log_softmax" else got[:3].astype(np.float64)
        np.testing.assert_allclose(p.sum(-1), 1, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, inner", [(2500, 70), (1024, 16), (1, 33), (5, 200), (3000, 17)])
def test_backward_down_columns_has_the_row_paths_bits(rng, dtype, n, inner):
    """axis != -1 with >= 16 columns runs the column-vectorised backward strips (256-byte strips,
    the column sums in the row kernel's order). Every column's dx must equal the contiguous row
    path bit for bit, for every map and special columns: a NaN in y, a column with no support
    (all zeros: sparse maps), -inf entries (log-softmax of masked entries), a one-hot column."""
    x = logits(rng, (2, n, inner), dtype)
    dy = rng.standard_normal((2, n, inner)).astype(dtype)
    for name in MAPS + ["entmax_bisect"]:
        alpha = (1.7,) if name == "entmax_bisect" else ()
        y = getattr(A, name)(x, *alpha, axis=1)
        if n > 1:
            off = -np.inf if name == "log_softmax" else 0  # y of an entry with probability 0
            y[0, n // 2, 3] = np.nan
            y[1, :, 9] = off
            y[1, :, 11] = off
            y[1, n - 1, 11] = 0 if name == "log_softmax" else 1  # one-hot
            if name == "log_softmax":
                y[1, : n // 3, 5] = -np.inf
        fn = A.entmax_bisect_backward if name == "entmax_bisect" else BACKWARD[name]
        kwargs = {} if name == "entmax_bisect" else {"scale": -1.25}
        got = fn(y, dy, *alpha, axis=1, **kwargs)
        want = fn(*(np.ascontiguousarray(np.moveaxis(v, 1, -1)) for v in (y, dy)), *alpha, **kwargs)
        assert np.array_equal(np.moveaxis(got, 1, -1), want, equal_nan=True), name
        if n > 1 and name != "log_softmax":  # log-softmax's NaN stays in its entry (dy - e^y sum dy)
            assert np.all(np.isnan(got[0, :, 3])), name
        if n > 1 and name != "softmax":
            assert np.all(got[1, :, 9] == 0), name


@pytest.mark.parametrize("name", MAPS + ["entmax_bisect"])
def test_backward_matches_finite_differences(rng, name):
    """Central differences of the forward map in float64 (h = 1e-6: error ~h^2 + eps/h ~ 1e-10),
    for y = map(scale*x); away from the support boundary (the maps are smooth there)."""
    scale, alpha = 0.8, 1.7
    x = logits(rng, (3, 12), np.float64)
    dy = rng.standard_normal(x.shape)

    def forward(v):
        if name == "entmax_bisect":
            return A.entmax_bisect(v, alpha)
        return getattr(A, name)(v, scale=scale)

    y = forward(x)
    if name == "entmax_bisect":
        dx = A.entmax_bisect_backward(y, dy, alpha)
    else:
        dx = BACKWARD[name](y, dy, scale=scale)
    h = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        numeric[idx] = np.sum((forward(x + e) - forward(x - e)) * dy) / (2 * h)
    np.testing.assert_allclose(dx, numeric, atol=2e-7)


def test_backward_masked_entries_get_zero_gradient(rng):
    x = logits(rng, (4, 10), np.float64)
    mask = rng.random((4, 10)) > 0.4
    mask[2] = False
    dy = rng.standard_normal(x.shape)
    for name in MAPS:
        y = getattr(A, name)(x, mask=mask)
        dx = BACKWARD[name](y, dy)
        assert np.all(dx[~mask] == 0) and np.all(np.isfinite(dx))


# --- losses ---------------------------------------------------------------------------------------

LOSSES = {"softmax": (A.softmax_cross_entropy, R.softmax_cross_entropy, A.softmax),
          "sparsemax": (A.sparsemax_loss, R.sparsemax_loss, A.sparsemax),
          "entmax15": (A.entmax15_loss, R.entmax15_loss, A.entmax15)}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", [((9, 17), -1), ((17, 4), 0), ((3, 5, 6), 1)])
def test_losses_match_reference(rng, name, dtype, shape, axis):
    loss_fn, ref_fn, map_fn = LOSSES[name]
    x = logits(rng, shape, dtype)
    row_shape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    target = rng.integers(0, shape[axis], size=row_shape)
    loss, grad = loss_fn(x, target, axis=axis)
    want_loss, want_grad = ref_fn(x, target, axis=axis)
    tol = 1e-12 if dtype == np.float64 else 3e-6
    np.testing.assert_allclose(loss, want_loss, atol=tol, rtol=tol)
    np.testing.assert_allclose(grad, want_grad, atol=tol)
    assert np.all(loss >= 0)
    onehot = np.moveaxis(np.eye(shape[axis])[target], -1, axis % len(shape))
    np.testing.assert_allclose(grad, map_fn(x, axis=axis) - onehot, atol=tol)


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_gradient_by_finite_differences(rng, name):
    loss_fn = LOSSES[name][0]
    x = logits(rng, (2, 7), np.float64)
    target = np.array([3, 0])
    _, grad = loss_fn(x, target)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        numeric = (loss_fn(x + e, target)[0].sum() - loss_fn(x - e, target)[0].sum()) / (2 * h)
        assert grad[idx] == pytest.approx(numeric, abs=1e-7)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_gradient_of_a_confident_row_keeps_its_relative_accuracy(name, dtype):
    """grad_t = p_t - 1 for p_t near 1 is formed as -(the sum of the other p): as a subtraction
    it carried p_t's rounding (float32 p_t = 1 - 2e-6: ±6e-8, 3 %). Rows of logit gaps g, exact
    values in float64: softmax 1 - p_t = k e^-g / (1 + k e^-g) (k = n - 1 others); the sparse maps
    are checked against the sum of their own other entries."""
    n = 9
    for gap in ([12.0, 14.0, 16.0] if dtype == np.float32 else [25.0, 28.0, 30.0]):
        scale = 1.0 if name == "softmax" else 1e-6 if dtype == np.float32 else 1e-12
        x = np.zeros((2, n))
        x[0, 0] = x[1, 4] = gap if name == "softmax" else 1.0 - scale  # sparse: others just inside
        x[:, 1:4] = 0.0
        target = np.array([0, 4])
        _, grad = LOSSES[name][0](x.astype(dtype), target)
        got = -grad[[0, 1], target].astype(np.float64)
        if name == "softmax":
            k = n - 1
            want = np.full(2, k * np.exp(-gap) / (1 + k * np.exp(-gap)))
        else:
            others = grad.astype(np.float64).sum(axis=1) - grad[[0, 1], target]
            want = others
        assert np.all(want > 0)
        rtol = 3e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got, want, rtol=rtol, err_msg=f"gap {gap}")
        # the float64 reference (on the rounded input) forms it the same way
        _, want_grad = LOSSES[name][1](x.astype(dtype).astype(np.float64), target)
        np.testing.assert_allclose(grad, want_grad, rtol=rtol, atol=0 if name == "softmax" else 1e-300)


def test_fenchel_young_loss_is_zero_at_a_confident_correct_prediction():
    x = np.array([[10.0, 0.0, -1.0]])
    for name in ("sparsemax", "entmax15"):
        loss, grad = LOSSES[name][0](x, np.array([0]))
        assert loss[0] == 0.0 and np.all(grad == 0)


# --- determinism ---------------------------------------------------------------------------------

def _all_outputs(x, dy, target, mask):
    outs = [getattr(A, name)(x, mask=mask) for name in MAPS]
    outs += [getattr(A, name)(x, axis=0) for name in MAPS]
    outs.append(A.entmax_bisect(x, 1.3))
    outs.append(A.topk_softmax(x, 5))
    outs += [BACKWARD[name](getattr(A, name)(x), dy) for name in MAPS]
    outs += [v for name in LOSSES for v in LOSSES[name][0](x, target)]
    # The mapped axis not the last: column strips (backward, 1500 columns), register-blocked
    # transposes with row and column tails (67 rows, 1500 = 23 tiles + 28 columns; 12 columns).
    outs += [BACKWARD[name](getattr(A, name)(x, axis=0), dy, axis=0) for name in MAPS]
    narrow, narrow_dy = np.ascontiguousarray(x[:, :12]), np.ascontiguousarray(dy[:, :12])
    outs += [BACKWARD[name](getattr(A, name)(narrow, axis=0), narrow_dy, axis=0) for name in MAPS]
    outs.append(A.topk_softmax(x, 5, axis=0))
    outs += [v for name in LOSSES for v in LOSSES[name][0](x, np.arange(1500) % 67, axis=0)]
    return outs


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_for_any_thread_count_and_simd_level(rng, dtype, restore_threads, restore_simd):
    x = logits(rng, (67, 1500), dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    target = rng.integers(0, 1500, size=67)
    mask = rng.random(x.shape) > 0.2
    fastcore.set_num_threads(1)
    base = _all_outputs(x, dy, target, mask)
    runs = []
    fastcore.set_num_threads(2)
    runs.append(_all_outputs(x, dy, target, mask))
    for level in simd_levels():
        fastcore.set_simd_level(level)
        runs.append(_all_outputs(x, dy, target, mask))
    for run in runs:
        for a, b in zip(base, run):
            assert a.tobytes() == b.tobytes()


# --- arrays: out=, strides, empty ----------------------------------------------------------------

def test_out_argument_and_non_contiguous_input(rng):
    x = logits(rng, (8, 30), np.float32)
    out = np.empty_like(x)
    assert A.softmax(x, out=out) is out
    strided = logits(rng, (8, 60), np.float32)[:, ::2]
    assert np.array_equal(A.sparsemax(strided), A.sparsemax(np.ascontiguousarray(strided)))
    assert A.softmax(np.empty((0, 5), np.float32)).shape == (0, 5)
    assert A.softmax(np.empty((3, 0))).shape == (3, 0)
    loss, grad = A.softmax_cross_entropy(np.empty((0, 4)), np.empty(0, np.int64))
    assert loss.shape == (0,) and grad.shape == (0, 4)


def test_lists_are_accepted():
    np.testing.assert_allclose(A.sparsemax([-2.0, 0.0, 0.5]), [0, 0.25, 0.75])


# --- bad input ------------------------------------------------------------------------------------

def test_bad_input_raises_clear_errors(rng):
    x = logits(rng, (4, 6), np.float64)
    with pytest.raises(TypeError, match="x: expected dtype"):
        A.softmax(x.astype(np.int32))
    with pytest.raises(TypeError, match="x: expected dtype"):
        A.softmax(x.astype(np.complex128))
    with pytest.raises(ValueError, match="x: expected at least 1 dimension"):
        A.softmax(np.float64(3.0))
    with pytest.raises(ValueError, match="axis: axis 2 is out of range"):
        A.sparsemax(x, axis=2)
    with pytest.raises(TypeError, match="axis"):
        A.sparsemax(x, axis=1.0)
    with pytest.raises(ValueError, match="alpha: expected a value > 1"):
        A.entmax_bisect(x, alpha=1.0)
    with pytest.raises(ValueError, match="alpha"):
        A.entmax_bisect(x, alpha=np.nan)
    with pytest.raises(ValueError, match="n_iter"):
        A.entmax_bisect(x, n_iter=0)
    with pytest.raises(ValueError, match="k: expected an integer >= 1"):
        A.topk_softmax(x, 0)
    with pytest.raises(ValueError, match="k: expected an integer <= 6"):
        A.topk_softmax(x, 7)
    with pytest.raises(ValueError, match="mask: shape .* not broadcastable"):
        A.softmax(x, mask=np.ones((4, 5), bool))
    with pytest.raises(TypeError, match="mask: expected a boolean array"):
        A.softmax(x, mask=np.ones((4, 6)))
    with pytest.raises(ValueError, match="out: expected shape"):
        A.softmax(x, out=np.empty((4, 5)))
    with pytest.raises(TypeError, match="out: expected dtype"):
        A.softmax(x, out=np.empty((4, 6), np.float32))
    with pytest.raises(ValueError, match="out: must not overlap x"):
        A.softmax(x, out=x)
    readonly = np.empty_like(x)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        A.softmax(x, out=readonly)
    with pytest.raises(ValueError, match="scale"):
        A.softmax(x, scale=np.inf)
    with pytest.raises(ValueError, match="target: expected values in \\[0, 6\\)"):
        A.softmax_cross_entropy(x, np.array([0, 1, 6, 2]))
    with pytest.raises(ValueError, match="target: expected values in"):
        A.sparsemax_loss(x, np.array([0, 1, -1, 2]))
    with pytest.raises(ValueError, match="target"):
        A.entmax15_loss(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="target: expected an integer array"):
        A.softmax_cross_entropy(x, np.zeros(4))
    with pytest.raises(ValueError, match="dy: expected shape"):
        A.softmax_backward(x, x[:, :5])
    with pytest.raises(TypeError, match="dy: expected dtype"):
        A.softmax_backward(x, x.astype(np.float32))
    with pytest.raises(TypeError, match="x: expected an array"):
        A.softmax("not an array")
