"""The vectorised exp of cpp/common/vmath.hpp, tested against the C library (NumPy's exp in
float64, itself within ~0.5 ulp of float64) over the whole input range, on every SIMD path.

Stated bound: <= 2 ulp of the output dtype everywhere, subnormal results included (measured
maximum about 1.06 ulp for float32 and 1 ulp for float64). Special values exactly: NaN -> NaN,
+inf -> +inf, -inf -> +0, overflow -> +inf, deep underflow -> +0."""

from __future__ import annotations

import numpy as np
import pytest

import fastcore
from fastcore import _cpu
from fastcore.testing import simd_levels, ulp_error

ULP_BOUND = 2.0


def vexp(x):
    out = np.empty_like(x)
    (_cpu._testing.exp_f32 if x.dtype == np.float32 else _cpu._testing.exp_f64)(x, out)
    return out


def float32_inputs(rng):
    """Every 251st float32 bit pattern (all exponents, both signs, NaNs, infs, subnormals), dense
    windows around each threshold, and random points in the finite-result range."""
    strided = (np.arange(0, 2**32, 251, dtype=np.uint64)).astype(np.uint32).view(np.float32)
    edges = []
    for centre in (0.0, 88.72284, -87.33655, -103.972084, -88.0, 1e-30, 0.34657359, -0.34657359):
        c = np.float32(centre).view(np.int32)
        edges.append((np.arange(-20000, 20000, dtype=np.int32) + c).view(np.float32))
    random = rng.uniform(-104, 89, 1_000_000).astype(np.float32)
    specials = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, np.finfo(np.float32).max,
                         -np.finfo(np.float32).max, np.finfo(np.float32).smallest_subnormal], np.float32)
    return np.concatenate([strided, *edges, random, specials])


def float64_inputs(rng):
    bits = rng.integers(0, 2**64, 2_000_000, dtype=np.uint64, endpoint=False).view(np.float64)
    edges = []
    for centre in (0.0, 709.782712893384, -708.3964185322641, -745.1332191019411, 1e-300, 0.34657359027997264):
        c = np.float64(centre).view(np.int64)
        edges.append((np.arange(-20000, 20000, dtype=np.int64) + c).view(np.float64))
    random = rng.uniform(-746, 710, 1_000_000)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, np.finfo(np.float64).max,
                         np.finfo(np.float64).smallest_subnormal])
    return np.concatenate([bits, *edges, random, specials])


@pytest.fixture(scope="module")
def inputs32():
    x = float32_inputs(np.random.default_rng(1))
    with np.errstate(over="ignore", invalid="ignore"):
        ref = np.exp(x.astype(np.float64))
    return x, ref


@pytest.fixture(scope="module")
def inputs64():
    x = float64_inputs(np.random.default_rng(2))
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    return x, ref


def check_special_values(x, y, ref, dtype):
    nan = np.isnan(x)
    assert np.isnan(y[nan]).all(), "exp(NaN) must be NaN"
    assert not np.isnan(y[~nan]).any(), "exp must not create NaN"
    if dtype == np.float32:  # beyond max·(1 + 2^-24) the correctly rounded float32 result is +inf
        overflow = ref > float(np.finfo(np.float32).max) * (1 + 2.0**-24)
    else:
        overflow = np.isinf(ref)
    assert np.isposinf(y[overflow]).all()
    assert y[x == -np.inf].tolist() == [0.0] * int((x == -np.inf).sum())
    assert np.isposinf(y[x == np.inf]).all()
    assert (y[~nan] >= 0).all()


@pytest.mark.parametrize("level", simd_levels())
def test_exp_f32_error_bound_over_full_range(level, inputs32, restore_simd):
    x, ref = inputs32
    fastcore.set_simd_level(level)
    y = vexp(x)
    check_special_values(x, y, ref, np.float32)
    finite = np.isfinite(x) & np.isfinite(y) & (ref <= np.finfo(np.float32).max)
    err = ulp_error(y[finite], ref[finite], np.float32)
    worst = int(np.argmax(err))
    assert err.max() <= ULP_BOUND, f"{err.max():.3f} ulp at x={x[finite][worst]!r}"
    # subnormal results: absolute error within 2 subnormal spacings as well
    sub = finite & (ref < np.finfo(np.float32).tiny)
    assert sub.sum() > 1000
    assert np.abs(y[sub].astype(np.float64) - ref[sub]).max() <= ULP_BOUND * 2.0**-149


@pytest.mark.parametrize("level", simd_levels())
def test_exp_f64_error_bound_over_full_range(level, inputs64, restore_simd):
    x, ref = inputs64
    fastcore.set_simd_level(level)
    y = vexp(x)
    check_special_values(x, y, ref, np.float64)
    finite = np.isfinite(x) & np.isfinite(ref)
    err = ulp_error(y[finite], ref[finite], np.float64)
    worst = int(np.argmax(err))
    assert err.max() <= ULP_BOUND, f"{err.max():.3f} ulp at x={x[finite][worst]!r}"
    sub = finite & (ref < np.finfo(np.float64).tiny) & (ref > 0)
    assert sub.sum() > 100


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_bitwise_identical_on_every_simd_level(dtype, rng, restore_simd):
    x = (rng.standard_normal(100_003) * 40).astype(dtype)
    results = {}
    for level in simd_levels():
        fastcore.set_simd_level(level)
        results[level] = vexp(x)
    first = results[simd_levels()[0]]
    for level, y in results.items():
        assert np.array_equal(y.view(np.uint8), first.view(np.uint8)), level


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_bitwise_identical_for_any_thread_count(dtype, rng, restore_threads):
    x = (rng.standard_normal(1_000_001) * 30).astype(dtype)
    fastcore.set_num_threads(1)
    one = vexp(x)
    for n in (2, 3, 8):
        fastcore.set_num_threads(n)
        assert np.array_equal(vexp(x), one)


@pytest.mark.parametrize("n", [0, 1, 2, 15, 16, 17, 63, 65, 1000])
def test_exp_odd_sizes_and_in_place(n, rng):
    x = rng.uniform(-50, 50, n).astype(np.float32)
    y = vexp(x)
    np.testing.assert_allclose(y, np.exp(x.astype(np.float64)), rtol=2.4e-7)
    _cpu._testing.exp_f32(x, x)  # in place
    assert np.array_equal(x, y)


def test_exp_binding_rejects_bad_arrays():
    x = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        _cpu._testing.exp_f32(np.zeros(4), x)
    with pytest.raises(ValueError, match="out: expected 4 elements"):
        _cpu._testing.exp_f32(x, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _cpu._testing.exp_f32(np.zeros(8, np.float32)[::2], x)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _cpu._testing.exp_f32(x, ro)


# --- exp_nonpositive: the softmax exp (arguments z - max z <= 0) -------------------------------

def vexp_nonpositive(x):
    out = np.empty_like(x)
    fn = _cpu._testing.exp_nonpositive_f32 if x.dtype == np.float32 else _cpu._testing.exp_nonpositive_f64
    fn(x, out)
    return out


@pytest.mark.parametrize("level", simd_levels())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_nonpositive_is_bitwise_exp_on_its_domain(level, dtype, rng, restore_simd):
    """Softmax relies on exp_nonpositive(x) == exp(x) bit for bit for every x <= 0 (it only drops
    the overflow clamp and the NaN restore), and on NaN giving +0 (never garbage)."""
    fastcore.set_simd_level(level)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    finfo = np.finfo(dtype)
    # random bit patterns with the sign bit set: every exponent, subnormals, -0, -inf
    width = 32 if dtype == np.float32 else 64
    patterns = rng.integers(0, 2 ** (width - 1), 400_000, dtype=np.uint64).astype(bits) | bits(1 << (width - 1))
    x = np.concatenate([
        patterns.view(dtype),
        -rng.random(200_000).astype(dtype) * 110,          # the range that gives non-zero results
        np.array([-0.0, 0.0, -np.inf, -finfo.tiny, -finfo.smallest_subnormal, -finfo.max,
                  -87.33654, -88.72284, -103.972, -104.0, -745.1332, -746.0], dtype=dtype),
    ])
    x = x[~np.isnan(x)]
    assert np.array_equal(vexp_nonpositive(x).view(bits), vexp(x).view(bits))
    nan = np.array([np.nan, -np.nan], dtype=dtype)
    assert np.array_equal(vexp_nonpositive(nan), np.zeros(2, dtype))
