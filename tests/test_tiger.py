"""fastcore.tiger on the CPU: agreement with the float64 reference, the published semantics
(accumulation, RMS, non-finite policies, strict mode), determinism, the Tiger class and bad input.

Tolerances. The kernels evaluate the reference's algebraic form operation by operation in the
storage dtype, so against the reference evaluated in that dtype (precision="storage") the
momentum is bitwise equal and theta differs at most by the effect of eta's last bit (the RMS sum
is added in another order; |d eta| <= 1 ulp(eta), |d theta| <= ulp(eta)*|sign + wd*theta| + the
rounding of theta - eta*d, i.e. <= 1 ulp(theta) for |theta| >> eta). Against the float64
reference (float32 arrays) each element passes through ~3 roundings of size u = 2^-24 on terms of
magnitude |b1*m| + |b2*g| (momentum) and |theta| + eta*(1 + wd*|theta|) (parameter), hence the
bounds 4u*(...) below; elements whose float64 momentum is within 1e-5 of that scale of zero may
legitimately take the other sign in float32 and are excluded from the theta comparison.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcore
from fastcore import Tiger, tiger_step
from fastcore.reference import tiger as ref

SIZES = [(0,), (1,), (3,), (4,), (65535,), (65537,), (7, 13), (64, 33), (2, 3, 5), ()]


def make(rng, shapes, dtype, *, m_scale=0.1):
    P = [np.asarray(rng.standard_normal(s), dtype) for s in shapes]
    G = [np.asarray(rng.standard_normal(s), dtype) for s in shapes]
    M = [np.asarray(m_scale * rng.standard_normal(s), dtype) for s in shapes]
    return P, G, M


def copies(arrays):
    return [a.copy() for a in arrays]


def run(P, G, M, **kw):
    P2, M2 = copies(P), copies(M)
    flags = tiger_step(P2, G, M2, **kw)
    return P2, M2, flags


def ulp(x, dtype):
    return np.spacing(np.abs(np.asarray(x, dtype))).astype(np.float64)


def eta_bound(P, kw, i):
    """An upper bound on eta for tensor i (lr * lr_mult * max(RMS, rms_floor), RMS <= max|theta|)."""
    mult = kw.get("lr_mult", 1.0)
    mult = mult[i] if isinstance(mult, list) else mult
    top = float(np.abs(P[i]).max()) if P[i].size else 0.0
    return kw["lr"] * mult * max(1.0, top, kw.get("rms_floor", 0.0))


def check_against_reference(P, G, M, P_new, M_new, flags, kw):
    """Kernel output vs the storage-precision reference (tight) and the float64 one (bounded).

    Storage precision: m bitwise. theta: the kernel adds the RMS sum of squares in another order
    than NumPy (relative difference of the RMS <= 1e-12 for these sizes), so eta may differ by a
    few ulp of eta (float64) or by 1 ulp after the rounding to float32; hence
    |d theta| <= ulp(theta) + |sign + wd*theta| * (2 ulp(eta) + 1e-12 eta)."""
    rp, rm, rf = ref.tiger_step(P, G, M, precision="storage", **kw)
    np.testing.assert_array_equal(flags, rf)
    for i, (a, b) in enumerate(zip(M_new, rm)):
        np.testing.assert_array_equal(a, b, err_msg=f"momentum {i} vs storage-precision reference")
    for i, (a, b) in enumerate(zip(P_new, rp)):
        if a.size:
            # non-finite results (nonfinite="ignore", detect="nan") must sit at the same places
            np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
            fin = np.isfinite(b)
            np.testing.assert_array_equal(a[~fin], b[~fin])
            a, b = a[fin], b[fin]
            eta = eta_bound(P, kw, i)
            d = 1.0 + 0.1 * np.abs(b.astype(np.float64))
            tol = ulp(b, a.dtype) + d * (2 * float(np.spacing(a.dtype.type(eta))) + 1e-12 * eta)
            err = np.abs(a.astype(np.float64) - b.astype(np.float64))
            assert np.all(err <= tol), f"theta {i}: {(err / tol).max()} x the bound"
    fp, fm, _ = ref.tiger_step(P, G, M, precision="float64", **kw)
    for i in range(len(P)):
        dt = P[i].dtype
        if not P[i].size or dt == np.float64 or rf[i] or not np.isfinite(G[i]).all() or not np.isfinite(M[i]).all():
            continue  # flagged tensors: m unchanged / the shrink, checked bitwise above
        u = 2.0**-24
        k = kw.get("grad_accum_steps", 1)
        beta = kw.get("beta", 0.965)
        scale_m = np.abs(M[i].astype(np.float64)) + (1 - beta) / k * np.abs(G[i].astype(np.float64))
        assert np.all(np.abs(M_new[i] - fm[i]) <= 4 * u * scale_m + 1e-45), f"momentum {i} vs float64"
        p64 = np.abs(P[i].astype(np.float64))
        scale_p = p64 + eta_bound(P, kw, i) * (1 + 0.1 * p64)
        sure = np.abs(fm[i]) > 1e-5 * scale_m
        err = np.abs(P_new[i].astype(np.float64) - fp[i])
        assert np.all(err[sure] <= 4 * u * scale_p[sure]), f"theta {i} vs float64: {err[sure].max()}"


# ----------------------------------------------------------------------------------------------
# Agreement with the reference


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("step,k", [(0, 1), (5, 1), (3, 4), (7, 4), (4, 4), (1, 3)])
def test_mixed_list_matches_reference(rng, dtype, step, k):
    P, G, M = make(rng, SIZES, dtype)
    n = len(SIZES)
    kw = dict(step=step, lr=1e-3 * (1 + rng.random()), beta=0.9 + 0.09 * rng.random(),
              weight_decay=0.01, grad_accum_steps=k,
              rms_mode=[["tensor", "row", "none"][i % 3] for i in range(n)],
              lr_mult=[0.5 + 0.25 * (i % 3) for i in range(n)],
              weight_decays=[0.05 * (i % 2) for i in range(n)])
    P2, M2, flags = run(P, G, M, **kw)
    check_against_reference(P, G, M, P2, M2, flags, kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_options_match_reference(rng, dtype):
    shapes = [(129, 17), (1000,), (5, 1), (1, 5), (31,)]
    P, G, M = make(rng, shapes, dtype)
    G[2][:] = 0
    G[0][[3, 50, 77]] = 0  # zero gradient rows for lazy_rows
    for kw in [dict(rms_floor=0.5), dict(maximize=True), dict(lazy_rows=True, rms_mode="row"),
               dict(lazy_rows=[True, False, True, False, True]), dict(beta2=0.99),
               dict(centre=[1.0, 0.0, 1.0, 0.0, 0.5], nonfinite="skip"), dict(rms_mode="none", lr_mult=0.3)]:
        kw = dict(step=0, lr=2e-3, **kw)
        P2, M2, flags = run(P, G, M, **kw)
        check_against_reference(P, G, M, P2, M2, flags, kw)


def test_step_size_invariant(rng):
    """Wherever m != 0, |theta_new - theta*(1 - eta*wd)| = eta (float64; up to the rounding of
    the two forms, a few ulp of theta)."""
    P, G, M = make(rng, [(5000,), (300, 11)], np.float64)
    lr, wd = 3e-3, 0.02
    P2, M2, _ = run(P, G, M, step=0, lr=lr, weight_decay=wd, rms_mode="tensor")
    for p0, p1, m1 in zip(P, P2, M2):
        eta = lr * np.sqrt(np.mean(p0 * p0))
        moved = np.abs(p1 - p0 * (1 - eta * wd))
        mask = m1 != 0
        assert mask.all()
        np.testing.assert_allclose(moved[mask], eta, rtol=0, atol=8 * np.spacing(np.abs(p0[mask]).max()))


def test_tiger_equals_lion_with_equal_betas(rng):
    """k = 1, no RMS scaling: Tiger is Lion with beta1 = beta2 = beta (float64, same algebraic
    form -> bitwise); and the kernel's Lion mode matches Lion with beta1 != beta2 bitwise."""
    P, G, M = make(rng, [(1000,)], np.float64)
    p, m = P[0].copy(), M[0].copy()
    pl, ml = P[0].copy(), M[0].copy()
    beta, lr, wd = 0.965, 1e-3, 0.01
    for t in range(20):
        g = rng.standard_normal(1000)
        tiger_step([p], [g], [m], step=t, lr=lr, beta=beta, weight_decay=wd, rms_mode="none")
        pl, ml = ref.lion_step(pl, g, ml, lr=lr, beta1=beta, beta2=beta, weight_decay=wd)
    np.testing.assert_array_equal(m, ml)
    np.testing.assert_array_equal(p, pl)
    p, m = P[0].copy(), M[0].copy()
    pl, ml = P[0].copy(), M[0].copy()
    for t in range(20):
        g = rng.standard_normal(1000)
        tiger_step([p], [g], [m], step=t, lr=lr, beta=0.9, beta2=0.99, weight_decay=wd, rms_mode="none")
        pl, ml = ref.lion_step(pl, g, ml, lr=lr, beta1=0.9, beta2=0.99, weight_decay=wd)
    np.testing.assert_array_equal(m, ml)
    np.testing.assert_array_equal(p, pl)


@pytest.mark.parametrize("k", [2, 3, 8])
def test_accumulation_equals_step_on_mean_gradient(rng, k):
    """k micro-steps on g_1..g_k == one k = 1 step on mean(g) (float64: momentum within a few
    ulp, parameters equal where the momentum sign is unambiguous); theta bitwise unchanged, and
    not even read (NaN parameters stay NaN without touching m), on non-final micro-steps."""
    P, _, M = make(rng, [(4000,), (50, 40)], np.float64)
    grads = [[rng.standard_normal(p.shape) for p in P] for _ in range(k)]
    p_acc, m_acc = copies(P), copies(M)
    for j in range(k):
        before = copies(p_acc)
        tiger_step(p_acc, grads[j], m_acc, step=3 * k + j, lr=2e-3, grad_accum_steps=k, rms_mode=["tensor", "row"])
        if j < k - 1:
            for a, b in zip(p_acc, before):
                np.testing.assert_array_equal(a, b)
    mean = [sum(grads[j][i] for j in range(k)) / k for i in range(len(P))]
    p_one, m_one = copies(P), copies(M)
    tiger_step(p_one, mean, m_one, step=0, lr=2e-3, rms_mode=["tensor", "row"])
    for i in range(len(P)):
        np.testing.assert_allclose(m_acc[i], m_one[i], rtol=0, atol=1e-15)
        sure = np.abs(m_one[i]) > 1e-12
        np.testing.assert_allclose(p_acc[i][sure], p_one[i][sure], rtol=0, atol=1e-15)
    # Micro-steps do not read theta: a NaN parameter changes nothing about m, and stays put.
    p_nan = [np.full(p.shape, np.nan) for p in P]
    m1, m2 = copies(M), copies(M)
    tiger_step(p_nan, grads[0], m1, step=0, lr=1e-3, grad_accum_steps=k)
    tiger_step(copies(P), grads[0], m2, step=0, lr=1e-3, grad_accum_steps=k)
    for a, b, p in zip(m1, m2, p_nan):
        np.testing.assert_array_equal(a, b)
        assert np.isnan(p).all()


# ----------------------------------------------------------------------------------------------
# Determinism


def test_multi_tensor_equals_loop_bitwise(rng):
    shapes = [(0,), (1,), (3,), (4,), (65535,), (65537,), (200, 301), (3, 4, 5)]
    dtypes = [np.float32, np.float64] * 4
    P = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    G = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    M = [rng.standard_normal(s).astype(d) * 0.1 for s, d in zip(shapes, dtypes)]
    G[3][1] = np.nan
    modes = ["tensor", "row", "none", "tensor", "tensor", "row", "row", "tensor"]
    lazy = [False, False, False, False, False, True, False, True]
    common = dict(step=1, lr=1e-3, rms_floor=1e-4, centre=0.5)
    P1, M1, f1 = run(P, G, M, rms_mode=modes, lazy_rows=lazy, **common)
    for i in range(len(P)):
        p, m = P[i].copy(), M[i].copy()
        f = tiger_step([p], [G[i]], [m], rms_mode=modes[i], lazy_rows=lazy[i], **common)
        np.testing.assert_array_equal(p, P1[i])
        np.testing.assert_array_equal(m, M1[i])
        assert f[0] == f1[i]
    assert f1.tolist() == [i == 3 for i in range(len(P))]


def test_threads_simd_and_chunking_bitwise(rng, restore_threads, restore_simd):
    shapes = [(300_001,), (257, 129), (70_000,)]
    P, G, M = make(rng, shapes, np.float32)
    kw = dict(step=0, lr=1e-3, rms_mode=["tensor", "row", "tensor"], lazy_rows=[False, False, True])
    results = []
    for threads in (1, 2):
        for level in fastcore.available_simd_levels():
            for chunk in (0, 2048, 8192):
                fastcore.set_num_threads(threads)
                fastcore.set_simd_level(level)
                results.append(run(P, G, M, _chunk=chunk, **kw))
    first = results[0]
    for other in results[1:]:
        for a, b in zip(first[0] + first[1], other[0] + other[1]):
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------------------------
# Non-finite gradients


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_tensor_scope_shrinks_only_that_tensor(rng, bad, dtype):
    P, G, M = make(rng, [(100,), (10, 10), (7,)], dtype)
    G[1][3, 4] = bad
    P2, M2, flags = run(P, G, M, step=0, lr=1e-3, centre=[0.0, 1.0, 0.0])
    assert flags.tolist() == [False, True, False]
    np.testing.assert_array_equal(M2[1], M[1])
    np.testing.assert_array_equal(P2[1], (P[1] - dtype(1)) * dtype(0.99) + dtype(1))
    for i in (0, 2):
        assert not np.array_equal(P2[i], P[i]) and np.isfinite(P2[i]).all()
    check_against_reference(P, G, M, P2, M2, flags, dict(step=0, lr=1e-3, centre=[0.0, 1.0, 0.0]))


def test_nonfinite_global_scope_skip_ignore_detect(rng):
    P, G, M = make(rng, [(100,), (10, 10), (7,)], np.float32)
    G[0][5] = np.inf
    # global scope: every tensor treated as non-finite
    P2, M2, flags = run(P, G, M, step=0, lr=1e-3, scope="global")
    assert flags.all()
    for p0, p1, m0, m1 in zip(P, P2, M, M2):
        np.testing.assert_array_equal(p1, p0 * np.float32(0.99))
        np.testing.assert_array_equal(m1, m0)
    # skip: nothing moves in the flagged tensor
    P2, M2, flags = run(P, G, M, step=0, lr=1e-3, nonfinite="skip")
    np.testing.assert_array_equal(P2[0], P[0])
    np.testing.assert_array_equal(M2[0], M[0])
    assert flags.tolist() == [True, False, False]
    # detect="nan": Inf is not caught, the momentum becomes Inf there and theta moves by eta
    P2, M2, flags = run(P, G, M, step=0, lr=1e-3, detect="nan")
    assert not flags.any() and np.isinf(M2[0][5]) and np.isfinite(P2[0]).all()
    # ignore: no check, same arithmetic as detect="nan" here
    P3, M3, flags = run(P, G, M, step=0, lr=1e-3, nonfinite="ignore")
    assert not flags.any()
    for a, b in zip(P2 + M2, P3 + M3):
        np.testing.assert_array_equal(a, b)


def test_found_inf_overrides_detection(rng):
    P, G, M = make(rng, [(50,), (60,)], np.float32)
    P_clean, M_clean, _ = run(P, G, M, step=0, lr=1e-3)
    P2, M2, flags = run(P, G, M, step=0, lr=1e-3, found_inf=True)
    assert flags.all()
    for p0, p1, m0, m1 in zip(P, P2, M, M2):
        np.testing.assert_array_equal(p1, p0 * np.float32(0.99))
        np.testing.assert_array_equal(m1, m0)
    P2, M2, flags = run(P, G, M, step=0, lr=1e-3, found_inf=[False, True], nonfinite="skip")
    assert flags.tolist() == [False, True]
    np.testing.assert_array_equal(P2[0], P_clean[0])
    np.testing.assert_array_equal(P2[1], P[1])
    # found_inf=False trusts the caller: a NaN gradient is not looked for
    G_nan = copies(G)
    G_nan[0][0] = np.nan
    P2, M2, flags = run(P, G_nan, M, step=0, lr=1e-3, found_inf=False)
    assert not flags.any() and np.isnan(M2[0][0])


def test_nonfinite_during_accumulation_default_policy(rng):
    """Default: a bad micro-batch is dropped but the cycle's decay is kept; theta is untouched
    until the last micro-step of the cycle."""
    P, G, M = make(rng, [(40,)], np.float64)
    G_bad = [G[0].copy()]
    G_bad[0][0] = np.nan
    P2, M2, flags = run(P, G_bad, M, step=0, lr=1e-3, grad_accum_steps=3)
    assert flags[0]
    np.testing.assert_array_equal(M2[0], 0.965 * M[0])
    np.testing.assert_array_equal(P2[0], P[0])
    P2, M2, flags = run(P, G_bad, M, step=2, lr=1e-3, grad_accum_steps=3)
    np.testing.assert_array_equal(M2[0], M[0])
    np.testing.assert_array_equal(P2[0], P[0] * 0.99)


def test_strict_reference_mode(rng):
    """strict_reference: NaN only (Inf passes), m frozen and theta shrunk on every micro-step,
    including the first micro-step quirk (no beta decay for that cycle)."""
    P, G, M = make(rng, [(40,), (8, 5), (9,)], np.float32)
    G[0][3] = np.nan
    G[2][1] = np.inf
    for step in (0, 1, 3):
        kw = dict(step=step, lr=1e-3, grad_accum_steps=4, strict_reference=True,
                  **ref.options_from_names(["dense/kernel", "embeddings", "layer_norm/gamma"]))
        P2, M2, flags = run(P, G, M, **kw)
        assert flags.tolist() == [True, False, False]
        np.testing.assert_array_equal(M2[0], M[0])  # b1 forced to 1 even on the first micro-step
        np.testing.assert_array_equal(P2[0], P[0] * np.float32(0.99))  # shrunk on a micro-step
        assert np.isinf(M2[2][1])
        check_against_reference(P, G, M, P2, M2, flags, kw)


# ----------------------------------------------------------------------------------------------
# Edge semantics


def test_sign_zero_and_zero_rms_and_lr_zero(rng):
    # m = 0 and g = 0: sign(0) = 0, only the decay acts: theta*(1 - eta*wd) in the kernel's form
    p = rng.standard_normal(100)
    p2, m2 = p.copy(), np.zeros(100)
    tiger_step([p2], [np.zeros(100)], [m2], step=0, lr=0.01, weight_decay=0.1, rms_mode="none")
    np.testing.assert_array_equal(m2, 0)
    np.testing.assert_array_equal(p2, p - 0.01 * (0.0 + 0.1 * p))
    # RMS = 0 (zero-initialised tensor): no movement without a floor, lr*floor with one
    z, m = np.zeros(10, np.float32), np.zeros(10, np.float32)
    g = rng.standard_normal(10).astype(np.float32)
    tiger_step([z], [g], [m], step=0, lr=0.01)
    np.testing.assert_array_equal(z, 0)
    z, m = np.zeros(10, np.float32), np.zeros(10, np.float32)
    tiger_step([z], [g], [m], step=0, lr=0.01, rms_floor=1e-3)
    np.testing.assert_array_equal(z, -np.float32(1e-5) * np.sign(g))
    # lr = 0: theta bitwise unchanged
    P, G, M = make(rng, [(1000,), (30, 30)], np.float32)
    P2, _, _ = run(P, G, M, step=0, lr=0.0)
    for a, b in zip(P, P2):
        np.testing.assert_array_equal(a, b)


def test_row_rms_equals_per_row_loop(rng):
    P, G, M = make(rng, [(37, 19)], np.float64)
    P2, M2, _ = run(P, G, M, step=0, lr=1e-2, rms_mode="row")
    for r in range(37):
        p, m = P[0][r].copy(), M[0][r].copy()
        tiger_step([p], [G[0][r].copy()], [m], step=0, lr=1e-2, rms_mode="tensor")
        np.testing.assert_array_equal(m, M2[0][r])
        np.testing.assert_allclose(p, P2[0][r], rtol=0, atol=2 * np.spacing(np.abs(p).max()))


def test_lazy_rows_leave_zero_gradient_rows_bitwise(rng):
    P, G, M = make(rng, [(50, 8)], np.float32)
    zero_rows = [0, 7, 49]
    G[0][zero_rows] = 0
    G[0][10, :4] = 0  # partly zero: still updated
    P2, M2, _ = run(P, G, M, step=0, lr=1e-3, lazy_rows=True, rms_mode="row")
    np.testing.assert_array_equal(P2[0][zero_rows], P[0][zero_rows])
    np.testing.assert_array_equal(M2[0][zero_rows], M[0][zero_rows])
    moved = np.setdiff1d(np.arange(50), zero_rows)
    assert np.all(P2[0][moved] != P[0][moved])


def test_maximize_is_descent_on_negated_gradient(rng):
    P, G, M = make(rng, [(999,), (3, 77)], np.float32)
    a = run(P, G, M, step=0, lr=1e-3, maximize=True)
    b = run(P, [-g for g in G], M, step=0, lr=1e-3)
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        np.testing.assert_array_equal(x, y)


def test_empty_list_and_empty_tensors():
    assert tiger_step([], [], [], step=0, lr=1e-3).shape == (0,)
    p, g, m = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    assert tiger_step([p], [g], [m], step=0, lr=1e-3, rms_mode="row").tolist() == [False]


# ----------------------------------------------------------------------------------------------
# The Tiger class


def test_piecewise_linear_schedule():
    sched = {4: 1.0, 8: 0.5}
    got = [ref.piecewise_linear(t, sched) for t in range(11)]
    np.testing.assert_allclose(got, [0, 0.25, 0.5, 0.75, 1, 0.875, 0.75, 0.625, 0.5, 0.5, 0.5])
    assert ref.piecewise_linear(0, {2: 3.0}, from_zero=False) == 3.0
    assert ref.piecewise_linear(5, {0: 1.0}) == 1.0


def test_tiger_class_matches_functional_loop_with_schedule(rng):
    P, _, _ = make(rng, [(64,), (16, 8), (8,)], np.float32)
    names = ["dense/kernel", "token_embeddings", "dense/bias"]
    k = 2
    opt = Tiger(copies(P), lr=2e-3, grad_accum_steps=k, lr_schedule={4: 1.0, 10: 0.1}, names=names)
    opts = Tiger.options_from_names(names)
    assert opts["rms_mode"] == ["tensor", "row", "none"]
    assert opts["lr_mult"] == [1.0, 1.0, 0.5] and opts["weight_decays"] == [0.01, 0.01, 0.0]
    p_loop, m_loop = copies(P), [np.zeros_like(p) for p in P]
    for t in range(12):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in P]
        lr_t = 2e-3 * ref.piecewise_linear(t, {4: 1.0, 10: 0.1})
        assert opt.current_lr() == pytest.approx(lr_t, rel=1e-15)
        opt.step(grads)
        tiger_step(p_loop, grads, m_loop, step=t, lr=lr_t, grad_accum_steps=k, **opts)
    for a, b in zip(opt.params + opt.moms, p_loop + m_loop):
        np.testing.assert_array_equal(a, b)
    assert opt.t == 12
    # a callable schedule
    opt2 = Tiger(copies(P), lr=1e-3, lr_schedule=lambda t: 0.5 ** t)
    assert opt2.current_lr(3) == 1e-3 / 8


def test_gamma_gets_centre_one():
    opts = Tiger.options_from_names(["ln/gamma", "ln/beta", "x_embeddings_proj"])
    assert opts["centre"] == [1.0, 0.0, 0.0]
    assert opts["rms_mode"] == ["none", "none", "row"]
    with pytest.raises(TypeError, match="names"):
        Tiger.options_from_names("dense/kernel")


def test_save_load_continue_is_bitwise(rng):
    P, _, _ = make(rng, [(300,), (20, 7)], np.float32)
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in P] for _ in range(10)]
    straight = Tiger(copies(P), lr=1e-3, grad_accum_steps=2, lr_schedule={6: 1.0})
    for g in grads:
        straight.step(g)
    first = Tiger(copies(P), lr=1e-3, grad_accum_steps=2, lr_schedule={6: 1.0})
    for g in grads[:5]:
        first.step(g)
    state = first.state_dict()
    params_mid = copies(first.params)
    first.step(grads[5])  # the saved state must not alias the live momenta
    resumed = Tiger(params_mid, lr=0.5, beta=0.5)  # hyper-parameters come from the state
    resumed.load_state_dict(state)
    assert resumed.t == 5 and resumed.grad_accum_steps == 2
    for g in grads[5:]:
        resumed.step(g)
    for a, b in zip(straight.params + straight.moms, resumed.params + resumed.moms):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------------------------
# Bad input: a clear error before anything is modified


def _good(rng):
    P, G, M = make(rng, [(10,), (4, 5)], np.float32)
    return P, G, M


@pytest.mark.parametrize("mutate,exc,match", [
    (lambda P, G, M, kw: G.pop(), ValueError, "same length"),
    (lambda P, G, M, kw: G.__setitem__(1, np.zeros((5, 4), np.float32)), ValueError, r"grads\[1\].*shape"),
    (lambda P, G, M, kw: M.__setitem__(1, np.zeros((4, 5), np.float64)), TypeError, r"moms\[1\].*dtype"),
    (lambda P, G, M, kw: G.__setitem__(1, np.zeros((4, 5), np.float64)), TypeError, r"grads\[1\].*dtype"),
    (lambda P, G, M, kw: P.__setitem__(1, np.zeros((4, 5), np.int32)), TypeError, r"params\[1\].*dtype"),
    (lambda P, G, M, kw: P[1].setflags(write=False), ValueError, r"params\[1\].*read-only"),
    (lambda P, G, M, kw: M[1].setflags(write=False), ValueError, r"moms\[1\].*read-only"),
    (lambda P, G, M, kw: P.__setitem__(1, np.zeros((5, 4), np.float32).T), ValueError, "contiguous"),
    (lambda P, G, M, kw: M.__setitem__(1, P[1]), ValueError, "overlaps"),
    (lambda P, G, M, kw: G.__setitem__(1, P[1]), ValueError, "overlaps"),
    (lambda P, G, M, kw: P.__setitem__(1, P[0][:0].reshape(0) if False else P[0]), ValueError, "shape|overlaps"),
    (lambda P, G, M, kw: P.__setitem__(1, [[0.0] * 5] * 4), TypeError, "array"),
    (lambda P, G, M, kw: kw.update(beta=1.0), ValueError, "beta"),
    (lambda P, G, M, kw: kw.update(beta=-0.1), ValueError, "beta"),
    (lambda P, G, M, kw: kw.update(grad_accum_steps=0), ValueError, "grad_accum_steps"),
    (lambda P, G, M, kw: kw.update(lr=-1e-3), ValueError, "lr"),
    (lambda P, G, M, kw: kw.update(lr=np.nan), ValueError, "lr"),
    (lambda P, G, M, kw: kw.update(step=-1), ValueError, "step"),
    (lambda P, G, M, kw: kw.update(nonfinite="explode"), ValueError, "nonfinite"),
    (lambda P, G, M, kw: kw.update(detect="inf"), ValueError, "detect"),
    (lambda P, G, M, kw: kw.update(scope="row"), ValueError, "scope"),
    (lambda P, G, M, kw: kw.update(rms_mode=["tensor", "column"]), ValueError, r"rms_mode\[1\]"),
    (lambda P, G, M, kw: kw.update(rms_mode=["tensor"]), ValueError, "rms_mode"),
    (lambda P, G, M, kw: kw.update(lr_mult=[1.0, -1.0]), ValueError, r"lr_mult\[1\]"),
    (lambda P, G, M, kw: kw.update(shrink_ratio=1.5), ValueError, "shrink_ratio"),
    (lambda P, G, M, kw: kw.update(found_inf=[True]), ValueError, "found_inf"),
    (lambda P, G, M, kw: kw.update(found_inf=True, nonfinite="ignore"), ValueError, "found_inf"),
    (lambda P, G, M, kw: kw.update(lazy_rows=True, grad_accum_steps=2), ValueError, "lazy_rows"),
    (lambda P, G, M, kw: kw.update(beta2=0.99, grad_accum_steps=2), ValueError, "beta2"),
    (lambda P, G, M, kw: kw.update(strict_reference=True, rms_floor=1e-3), ValueError, "rms_floor"),
    (lambda P, G, M, kw: kw.update(stochastic_rounding=True), ValueError, "stochastic_rounding"),
    (lambda P, G, M, kw: kw.update(maximize=1), TypeError, "maximize"),
    (lambda P, G, M, kw: kw.update(step=2**63), ValueError, "step"),  # the kernels count in int64
    (lambda P, G, M, kw: kw.update(grad_accum_steps=2**63), ValueError, "grad_accum_steps"),
    (lambda P, G, M, kw: kw.update(rms_mode=np.array("column")), ValueError, r"rms_mode\[0\]"),
])
def test_bad_input_raises_before_modifying(rng, mutate, exc, match):
    P, G, M = _good(rng)
    kw = dict(step=0, lr=1e-3)
    mutate(P, G, M, kw)
    before = [np.array(a, copy=True) for a in P + M]
    with pytest.raises(exc, match=match):
        tiger_step(P, G, M, **kw)
    for a, b in zip(P + M, before):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_zero_d_arrays_are_one_value_for_every_tensor(rng):
    """Per-tensor options accept a 0-d array like the scalar it holds (as lr does)."""
    P, G, M = _good(rng)
    P2, M2 = copies(P), copies(M)
    flags = tiger_step(P, G, M, step=0, lr=1e-3, lr_mult=np.array(0.5), found_inf=np.array(True),
                       rms_mode=np.array("row"), centre=np.float64(0.0))
    flags2 = tiger_step(P2, G, M2, step=0, lr=1e-3, lr_mult=0.5, found_inf=True, rms_mode="row", centre=0.0)
    np.testing.assert_array_equal(flags, flags2)
    for a, b in zip(P + M, P2 + M2):
        np.testing.assert_array_equal(a, b)


def test_bad_list_arguments():
    with pytest.raises(TypeError, match="params"):
        tiger_step(np.zeros(3, np.float32), [np.zeros(3, np.float32)], [np.zeros(3, np.float32)], step=0, lr=1e-3)


def test_tiger_class_bad_input(rng):
    P, G, _ = _good(rng)
    with pytest.raises(TypeError, match="lr_schedule"):
        Tiger(P, lr_schedule="cosine")
    with pytest.raises(ValueError, match="rms_mode"):
        Tiger(P, rms_mode="column")
    with pytest.raises(ValueError, match="names"):
        Tiger(P, names=["a"])
    opt = Tiger(P)
    with pytest.raises(ValueError, match="moms"):
        opt.load_state_dict({"step": 3, "moms": [np.zeros(10, np.float32)]})
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict({"step": 3, "moms": [np.zeros(10, np.float32), np.zeros((5, 4), np.float32)]})
    assert opt.t == 0


@pytest.mark.parametrize("edit,exc,match", [
    (lambda h: h.update(options={"rms_mode": "bogus"}), ValueError, r"rms_mode\[0\]"),
    (lambda h: h.update(options={"lr": 1.0}), TypeError, r"options.*unexpected option"),
    (lambda h: h.update(options=["rms_mode"]), TypeError, r"options.*expected a dict"),
    (lambda h: h.update(lr_schedule={"x": "y"}), TypeError, r"\['lr_schedule'\] key: expected an integer"),
    (lambda h: h.update(lr_schedule={5: -1.0}), ValueError, r"\['lr_schedule'\]\[5\]: expected a value >= 0"),
    (lambda h: h.update(lr_schedule_kind="cosine"), ValueError, "lr_schedule_kind"),
    (lambda h: h.update(grad_accum_steps=2, options={"lazy_rows": True}), ValueError, "lazy_rows"),
    (lambda h: h.update(from_zero="no"), TypeError, r"state\['hyper'\]\['from_zero'\]: expected a bool, got str"),
    (lambda h: h.update(from_zero=0), TypeError, r"state\['hyper'\]\['from_zero'\]: expected a bool, got int"),
])
def test_load_state_dict_validates_everything_before_changing(rng, edit, exc, match):
    """Every saved hyper-parameter, the per-tensor options and the schedule included, is checked
    before the counter, momenta or settings change."""
    P, G, _ = _good(rng)
    opt = Tiger(P, lr=1e-3)
    opt.step(G)
    state = opt.state_dict()
    state["step"] = 7
    state["moms"] = [np.full_like(m, 3.0) for m in state["moms"]]
    edit(state["hyper"])
    target = Tiger(copies(P), lr=1e-3)
    before = copies(target.moms)
    with pytest.raises(exc, match=match):
        target.load_state_dict(state)
    assert target.t == 0 and target.options == {} and target.lr_schedule is None
    for a, b in zip(target.moms, before):
        np.testing.assert_array_equal(a, b)


def test_from_zero_must_be_a_bool(rng):
    """bool(from_zero) made the string "no" mean True, in the constructor and in a loaded state
    (where it was also applied without a check); a NumPy bool is fine."""
    P, G, _ = _good(rng)
    for bad in ("no", 0, None, np.array([True])):
        with pytest.raises(TypeError, match=r"^from_zero: expected a bool, got "):
            Tiger(copies(P), lr_schedule={4: 1.0}, from_zero=bad)
    opt = Tiger(copies(P), lr=1e-3, lr_schedule={4: 1.0}, from_zero=np.bool_(False))
    assert opt.from_zero is False and opt.current_lr(0) == 1e-3   # no (0, 0) point prepended
    state = opt.state_dict()
    resumed = Tiger(copies(P), lr=1e-3, lr_schedule={4: 1.0})
    resumed.load_state_dict({**state, "hyper": {**state["hyper"], "from_zero": np.bool_(False)}})
    assert resumed.from_zero is False and resumed.current_lr(0) == 1e-3
    del state["hyper"]["from_zero"]  # a state without the key keeps the default
    resumed.load_state_dict(state)
    assert resumed.from_zero is True and resumed.current_lr(0) == 0.0


def test_load_state_dict_restores_the_schedule_kind(rng):
    P, G, _ = _good(rng)
    plain = Tiger(copies(P), lr=1e-3)
    for _ in range(3):
        plain.step(G)
    # saved without a schedule: a resumed optimizer built with one continues without it
    resumed = Tiger(copies(P), lr=1e-3, lr_schedule={100: 1.0})
    resumed.load_state_dict(plain.state_dict())
    assert resumed.lr_schedule is None and resumed.current_lr() == plain.current_lr() == 1e-3
    # a dict schedule travels with the state
    scheduled = Tiger(copies(P), lr=1e-3, lr_schedule={10: 1.0})
    scheduled.step(G)
    resumed = Tiger(copies(P), lr=1e-3)
    resumed.load_state_dict(scheduled.state_dict())
    assert resumed.lr_schedule == {10: 1.0} and resumed.current_lr() == scheduled.current_lr()
    # a callable cannot be saved: loading needs an optimizer that already has one (it is kept)
    def schedule(t):
        return 0.5

    with_callable = Tiger(copies(P), lr=1e-3, lr_schedule=schedule)
    state = with_callable.state_dict()
    assert state["hyper"]["lr_schedule"] is None and state["hyper"]["lr_schedule_kind"] == "callable"
    with pytest.raises(ValueError, match="callable lr_schedule"):
        Tiger(copies(P), lr=1e-3).load_state_dict(state)
    other = Tiger(copies(P), lr=1e-3, lr_schedule=lambda t: 0.25)
    other.load_state_dict(state)
    assert other.current_lr() == 0.25e-3
    # states saved before lr_schedule_kind existed keep the old rule (None keeps the current)
    old = plain.state_dict()
    del old["hyper"]["lr_schedule_kind"]
    keeps = Tiger(copies(P), lr=1e-3, lr_schedule={100: 1.0})
    keeps.load_state_dict(old)
    assert keeps.lr_schedule == {100: 1.0}


def test_same_parameter_twice_is_rejected(rng):
    p = rng.standard_normal(8).astype(np.float32)
    g = [rng.standard_normal(8).astype(np.float32) for _ in range(2)]
    m = [np.zeros(8, np.float32) for _ in range(2)]
    with pytest.raises(ValueError, match=r"params\[1\].*overlaps params\[0\]|params\[0\].*overlaps params\[1\]"):
        tiger_step([p, p], g, m, step=0, lr=1e-3)
    # a shared (read-only) gradient is fine
    tiger_step([p, p.copy()], [g[0], g[0]], m, step=0, lr=1e-3)


class PublishedTiger:
    """An independent, literal NumPy transcription of the published tiger.py (TF graph semantics:
    name regexes, b1 = 1 and g = 0 on NaN, the shrink through tf.where on every micro-step, the
    update written also with lr = 0 on micro-steps), in float64 with the schedule in float64."""

    def __init__(self, learning_rate, beta, weight_decay, grad_accum_steps, lr_schedule, shrink_ratio):
        self.lr, self.beta, self.wd = learning_rate, beta, weight_decay
        self.k, self.schedule, self.s = grad_accum_steps, lr_schedule, shrink_ratio
        self.iterations = 0
        self.slots = None

    def apply(self, grads, variables, names):
        import re

        if self.slots is None:
            self.slots = [np.zeros_like(v) for v in variables]
        t, k = self.iterations, self.k
        b1 = self.beta if t % k == 0 else 1.0
        b2 = (1 - self.beta) / k
        lr = self.lr * ref.piecewise_linear(t, self.schedule)
        lr = lr if (t + 1) % k == 0 else 0.0
        for grad, var, m, name in zip(grads, variables, self.slots, names):
            is_nan = bool(np.isnan(grad).any())
            b1_v = 1.0 if is_nan else b1
            g = np.zeros_like(grad) if is_nan else grad
            c, lr_v, d = 0.0, lr, self.wd
            if re.findall("bias|beta|gamma", name):
                lr_v, d = lr_v * 0.5, 0.0
                if "gamma" in name:
                    c = 1.0
            elif "embeddings" in name:
                lr_v = lr_v * np.sqrt(np.mean(var**2, axis=-1, keepdims=True))
            else:
                lr_v = lr_v * np.sqrt(np.mean(var**2))
            m[...] = b1_v * m + b2 * g
            with np.errstate(invalid="ignore"):
                u = (np.sign(m) + d * var) * lr_v
                var[...] = np.where(is_nan, (var - c) * self.s + c, var - u)
        self.iterations += 1


@pytest.mark.parametrize("k", [1, 3])
def test_strict_tiger_class_reproduces_published_tiger(rng, k):
    names = ["encoder/dense/kernel", "encoder/dense/bias", "token_embeddings", "layer_norm/gamma",
             "layer_norm/beta", "zero_init/kernel"]
    shapes = [(16, 8), (8,), (50, 12), (12,), (12,), (6, 4)]
    P = [rng.standard_normal(s) for s in shapes]
    P[3] = 1.0 + 0.1 * rng.standard_normal(12)
    P[5] = np.zeros((6, 4))  # RMS 0: never moves in the published algorithm
    schedule = {6: 1.0, 20: 0.2}
    published = PublishedTiger(2e-3, 0.945, 0.05, k, schedule, 0.98)
    ours = Tiger([p.copy() for p in P], lr=2e-3, beta=0.945, weight_decay=0.05, grad_accum_steps=k,
                 lr_schedule=schedule, shrink_ratio=0.98, names=names, strict_reference=True)
    theirs = [p.copy() for p in P]
    for t in range(24):
        grads = [rng.standard_normal(s) for s in shapes]
        if t in (3, 9, 10):  # NaN events, including on the first micro-step of a cycle
            grads[t % len(shapes)][0] = np.nan
        if t == 15:  # Inf passes through unnoticed
            grads[0][1, 1] = np.inf
        published.apply(grads, theirs, names)
        ours.step(grads)
    for i, (a, b) in enumerate(zip(ours.params, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=f"param {i} ({names[i]})")
    for i, (a, b) in enumerate(zip(ours.moms, published.slots)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=f"momentum {i}")
    np.testing.assert_array_equal(ours.params[5], 0)


from hypothesis import given, settings, HealthCheck, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_configurations_match_reference(rng, data):
    """Random lists, dtypes, steps, accumulation and options: the kernel always agrees with the
    reference (same bounds as above)."""
    n = data.draw(st.integers(1, 5))
    shapes = [tuple(data.draw(st.lists(st.integers(0, 40), min_size=0, max_size=3))) for _ in range(n)]
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    k = data.draw(st.integers(1, 4))
    kw = dict(step=data.draw(st.integers(0, 20)), lr=data.draw(st.floats(0, 0.05)), grad_accum_steps=k,
              beta=data.draw(st.floats(0, 0.999)),
              rms_mode=[data.draw(st.sampled_from(["none", "tensor", "row"])) for _ in range(n)],
              rms_floor=data.draw(st.sampled_from([0.0, 1e-3])),
              lr_mult=[data.draw(st.floats(0, 2)) for _ in range(n)],
              weight_decays=[data.draw(st.floats(0, 0.1)) for _ in range(n)],
              centre=[data.draw(st.sampled_from([0.0, 1.0])) for _ in range(n)],
              nonfinite=data.draw(st.sampled_from(["shrink", "skip", "ignore"])),
              scope=data.draw(st.sampled_from(["tensor", "global"])),
              maximize=data.draw(st.booleans()))
    if k == 1 and data.draw(st.booleans()):
        kw["lazy_rows"] = [data.draw(st.booleans()) for _ in range(n)]
    P, G, M = make(rng, shapes, dtype)
    for g in G:
        if g.size and data.draw(st.booleans()):
            g.reshape(-1)[data.draw(st.integers(0, g.size - 1))] = data.draw(st.sampled_from([np.nan, np.inf, 0.0]))
        if g.ndim and g.size and data.draw(st.booleans()):
            g.reshape(-1, g.shape[-1])[0] = 0  # a zero row (lazy rows)
    P2, M2, flags = run(P, G, M, **kw)
    check_against_reference(P, G, M, P2, M2, flags, kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_views_match_aligned_copies(rng, dtype):
    """Contiguous views starting one element into a buffer (not 16/32/64-byte aligned) give the
    same bits as aligned copies."""
    sizes = [1, 3, 4, 65535, 65537, 1023]
    bufs = [[np.asarray(rng.standard_normal(n + 1), dtype) for n in sizes] for _ in range(3)]
    P, G, M = ([b[1:] for b in kind] for kind in bufs)
    assert any(p.ctypes.data % 32 for p in P)
    Pa, Ga, Ma = ([np.array(a, copy=True) for a in kind] for kind in (P, G, M))
    tiger_step(P, G, M, step=0, lr=1e-3, rms_mode=["tensor", "none", "row"] * 2)
    tiger_step(Pa, Ga, Ma, step=0, lr=1e-3, rms_mode=["tensor", "none", "row"] * 2)
    for a, b in zip(P + M, Pa + Ma):
        np.testing.assert_array_equal(a, b)


def test_gpu_fast_validation_path_agrees_with_general_checks():
    """The CuPy fast path (_gpu_triple_ok) accepts exactly what the general checks accept; checked
    here with stand-ins that look like CuPy arrays (type module 'cupy...') wrapping NumPy ones."""
    from fastcore.tiger import _gpu_triple_ok

    class FakeCupy:
        def __init__(self, a):
            self.dtype, self.shape, self.flags = a.dtype, a.shape, a.flags

    FakeCupy.__module__ = "cupy._fake"
    f32, f16 = np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float16)
    ok = [(f32, f32, f32), (f16, f16, f32)]
    bad = [(f32, f16, f32), (f16, f16, f16), (f32, np.zeros((4, 3), np.float32), f32),
           (np.zeros((3, 4), np.float64),) * 3, (np.zeros((4, 3), np.float32).T, f32.T.T, f32),
           (f32, f32, np.zeros((3, 4), ">f4"))]
    for p, g, m in ok:
        assert _gpu_triple_ok(FakeCupy(p), FakeCupy(g), FakeCupy(m))
    for p, g, m in bad:
        assert not _gpu_triple_ok(FakeCupy(p), FakeCupy(g), FakeCupy(m))
    assert not _gpu_triple_ok(f32, f32, f32)  # NumPy arrays are not CuPy arrays


def test_cpu_fast_validation_path_agrees_with_general_checks():
    """The compiled metadata pre-check (regular_prefix) passes exactly the NumPy triples that the
    Python checks pass: every triple it stops at must be one _cpu_triple_ok rejects too, and every
    triple it passes one that _cpu_triple_ok accepts (a wrong 'pass' would skip a check)."""
    from fastcore import _backend
    from fastcore.tiger import _cpu_triple_ok

    class Sub(np.ndarray):
        pass

    f32, f64 = np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float64)
    readonly = np.zeros((3, 4), np.float32)
    readonly.flags.writeable = False
    wide = np.zeros((3, 8), np.float32)
    ok = [(f32, f32, f32), (f64, f64, f64), (f32, readonly, f32), (np.zeros(0, np.float32),) * 3,
          (np.zeros((), np.float64),) * 3, (wide[:, :4].copy(), f32, f32), (f32, np.zeros((3, 4), "<f4"), f32)]
    bad = [(f32, f64, f32), (f32, f32, f64), (np.zeros((3, 4), np.float16),) * 3, (np.zeros((3, 4), np.int32),) * 3,
           (f32, np.zeros((4, 3), np.float32), f32), (f32, np.zeros(12, np.float32), f32),
           (f32, f32, np.zeros((3, 4, 1), np.float32)), (wide[:, :4], f32, f32), (f32, np.zeros((4, 3), np.float32).T, f32),
           (f32, f32, np.zeros((3, 4), ">f4")), (readonly, f32, f32), (f32, f32, readonly), (f32.view(Sub), f32, f32),
           (f32, f32.view(Sub), f32), (f32, f32, np.asfortranarray(np.zeros((3, 4), np.float32))),
           (f32, [[0.0] * 4] * 3, f32), (f32, None, f32)]
    regular_prefix = _backend.cpu().tiger.regular_prefix
    for p, g, m in ok:
        assert _cpu_triple_ok(p, g, m) and regular_prefix([p], [g], [m]) == 1
    for p, g, m in bad:
        assert not _cpu_triple_ok(p, g, m) and regular_prefix([p], [g], [m]) == 0
    # it stops at the first irregular triple
    assert regular_prefix([f32, f32, f32], [f32, f64, f32], [f32, f32, f32]) == 1


def test_overlap_check_matches_pairwise_definition(rng):
    """The vectorised overlap check rejects a call exactly when a parameter or momentum shares a
    byte with any other array of the call (grads may share memory with each other): random
    slices of one buffer, against the O(n^2) definition; the error names an overlapping pair."""
    from fastcore.tiger import _check_no_aliasing

    buffer = np.zeros(400, np.float32)
    for trial in range(300):
        n = int(rng.integers(1, 6))
        arrays = []
        for _ in range(3 * n):
            lo = int(rng.integers(0, 390))
            arrays.append(buffer[lo:lo + int(rng.integers(0, 12))])
        params, moms, grads = arrays[:n], arrays[n:2 * n], arrays[2 * n:]
        named = ([(f"params[{i}]", a, True) for i, a in enumerate(params)]
                 + [(f"moms[{i}]", a, True) for i, a in enumerate(moms)]
                 + [(f"grads[{i}]", a, False) for i, a in enumerate(grads)])

        def overlap(a, b):
            return a.size and b.size and np.shares_memory(a, b)

        clashes = {frozenset((na, nb)) for ia, (na, a, wa) in enumerate(named) for nb, b, wb in named[ia + 1:]
                   if (wa or wb) and overlap(a, b)}
        if not clashes:
            _check_no_aliasing(params, moms, grads)
            continue
        with pytest.raises(ValueError, match="overlaps") as info:
            _check_no_aliasing(params, moms, grads)
        first, other = info.value.args[0].split(": overlaps ")[0], info.value.args[0].split(": overlaps ")[1].split(" ")[0]
        assert frozenset((first, other)) in clashes, (info.value, clashes)
