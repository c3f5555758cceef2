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


# --- log_f64 and pow_f64 (the alpha-entmax powers) -------------------------------------------------
# Stated bounds: log_f64 <= 2 ulp (measured 1.0); pow_f64(u, b) = exp(b·log u) relative error
# <= (2 + 1.5·|b·log u|)·2^-52 — log's error is multiplied by |b·log u| in exp's argument
# (measured up to 0.98·(2 + |b·log u|)·2^-52 at b = 100).

def vlog(x):
    out = np.empty_like(x)
    _cpu._testing.log_f64(x, out)
    return out


def vpow(x, b):
    out = np.empty_like(x)
    _cpu._testing.pow_f64(x, b, out)
    return out


def positive_float64_inputs(rng):
    """Random bit patterns of positive finite doubles (subnormals included), dense windows around
    1, sqrt(2), the smallest normal and the smallest subnormal, uniform points in (0, 1)."""
    bits = rng.integers(0, 0x7FF0000000000000, 2_000_000, dtype=np.uint64).view(np.float64)
    windows = []
    for centre in (1.0, np.sqrt(2.0), np.sqrt(0.5), np.finfo(np.float64).tiny, 5e-324 * 20001):
        c = np.float64(centre).view(np.int64)
        windows.append((np.arange(-20000, 20000, dtype=np.int64) + c).view(np.float64))
    return np.concatenate([bits, *windows, rng.uniform(0, 1, 1_000_000),
                           np.array([5e-324, np.finfo(np.float64).max, 0.5, 2.0])])


@pytest.mark.parametrize("level", simd_levels())
def test_log_f64_error_bound_and_special_values(level, rng, restore_simd):
    fastcore.set_simd_level(level)
    x = positive_float64_inputs(rng)
    x = x[x > 0]
    err = ulp_error(vlog(x), np.log(x), np.float64)
    worst = int(np.argmax(err))
    assert err.max() <= 2.0, f"{err.max():.3f} ulp at x={x[worst]!r}"
    specials = np.array([0.0, -0.0, np.inf, -np.inf, -1.0, -5e-324, np.nan, 1.0])
    got = vlog(specials)
    assert got[:2].tolist() == [-np.inf, -np.inf] and got[2] == np.inf
    assert np.isnan(got[3:7]).all() and got[7] == 0.0


@pytest.mark.parametrize("level", simd_levels())
@pytest.mark.parametrize("b", [0.5, 1.0, 2.0, 10.0 / 3.0, 4.0, 7.3, 100.0, -0.5, -3.0])
def test_pow_f64_error_bound(level, b, rng, restore_simd):
    fastcore.set_simd_level(level)
    u = np.concatenate([rng.uniform(0, 1, 300_000), rng.uniform(0, 1e-6, 10_000), 1 - rng.uniform(0, 1e-9, 10_000)])
    want = np.power(u, b)
    got = vpow(u, b)
    normal = (want >= np.finfo(np.float64).tiny) & np.isfinite(want)
    rel = np.abs(got[normal] - want[normal]) / want[normal]
    bound = (2.0 + 1.5 * np.abs(b * np.log(u[normal]))) * 2.0**-52
    worst = int(np.argmax(rel / bound))
    assert (rel <= bound).all(), f"{rel[worst]:.3e} > {bound[worst]:.3e} at u={u[normal][worst]!r}"
    # below the normal range the same relative bound at the smallest normal, plus the rounding to
    # a subnormal spacing; u = 0 gives +0
    sub = (want < np.finfo(np.float64).tiny) & (u > 0)
    with np.errstate(divide="ignore"):
        sub_bound = (2.0 + 1.5 * np.abs(b * np.log(u[sub]))) * 2.0**-52 * np.finfo(np.float64).tiny \
            + 2 * np.finfo(np.float64).smallest_subnormal
    assert (np.abs(got[sub] - want[sub]) <= sub_bound).all()
    assert vpow(np.array([0.0, 1.0]), b).tolist() == [0.0 if b > 0 else np.inf, 1.0]


@pytest.mark.parametrize("fn", ["log", "pow"])
def test_log_pow_bitwise_identical_on_every_simd_level(fn, rng, restore_simd):
    x = np.abs(rng.standard_normal(100_003)) * rng.choice([1e-300, 1e-5, 1.0, 1e5], 100_003)
    results = {}
    for level in simd_levels():
        fastcore.set_simd_level(level)
        results[level] = vlog(x) if fn == "log" else vpow(x, 2.7)
    first = results[simd_levels()[0]]
    for level, y in results.items():
        assert np.array_equal(y.view(np.uint8), first.view(np.uint8)), level
