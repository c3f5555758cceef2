"""fastcore.tiger on CUDA (CuPy arrays): agreement with the CPU kernel and the reference for
float32 / float16 / bfloat16 parameters with float32 / bfloat16 momentum, the launch count for
long lists, determinism, stochastic rounding, non-finite policies, micro-steps.

These tests need a GPU and CuPy (marker `cuda`; they skip elsewhere).

Tolerances. float32: the GPU evaluates the same operations as the CPU kernel with explicit
round-to-nearest intrinsics (no FMA contraction), so the momentum is bitwise equal to the CPU's
and theta differs at most through eta (the RMS sum of squares is added in another order:
relative 1e-12 in double, at most 1 ulp of eta after rounding to float32). 16-bit storage: the
kernel computes in float32 from the stored values and rounds once to the storage type, so the
result is within 1 ulp of the storage type of the float32 result computed on the CPU from the
same (upcast) inputs; the momentum (bfloat16) likewise.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcore
from fastcore import tiger_step
from fastcore.reference import tiger as ref

pytestmark = pytest.mark.cuda

SHAPES = [(0,), (1,), (3,), (4,), (65535,), (65537,), (129, 31), (5, 1), (2, 3, 4)]


def cupy():
    import cupy as cp

    return cp


def bf16():
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


def storage_dtype(name):
    return bf16() if name == "bfloat16" else np.dtype(name)


def make(rng, shapes, p_dtype, m_dtype):
    P = [np.asarray(rng.standard_normal(s), np.float32).astype(storage_dtype(p_dtype)) for s in shapes]
    G = [np.asarray(rng.standard_normal(s), np.float32).astype(storage_dtype(p_dtype)) for s in shapes]
    M = [np.asarray(0.1 * rng.standard_normal(s), np.float32).astype(storage_dtype(m_dtype)) for s in shapes]
    return P, G, M


def to_gpu(arrays):
    cp = cupy()
    return [cp.asarray(a) for a in arrays]


def to_cpu(arrays):
    return [a.get() for a in arrays]


def spacing(x, dtype):
    """ulp of the storage dtype at x (float64 result)."""
    x = np.abs(np.asarray(x, np.float64))
    if np.dtype(dtype) == bf16():
        # bfloat16 has 8 significand bits: ulp = 2^(floor(log2 x) - 7), subnormals aside
        e = np.floor(np.log2(np.maximum(x, 2.0**-126)))
        return 2.0 ** (e - 7)
    return np.spacing(x.astype(dtype)).astype(np.float64)


OPTIONS = [
    dict(),
    dict(rms_mode=["tensor", "row", "none", "row", "tensor", "row", "row", "tensor", "none"]),
    dict(rms_floor=0.5, lr_mult=0.5, weight_decays=0.1),
    dict(lazy_rows=True, rms_mode="row"),
    dict(beta2=0.99, maximize=True),
    dict(grad_accum_steps=3, step=2),
    dict(grad_accum_steps=3, step=1),
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(o) or "default")
def test_float32_matches_cpu_kernel(rng, opts):
    P, G, M = make(rng, SHAPES, "float32", "float32")
    for g in G[6:7]:
        g[[0, 7, 100]] = 0  # zero rows for lazy_rows
    kw = {"step": 0, "lr": 1e-3}
    kw.update(opts)
    Pc, Mc = [p.copy() for p in P], [m.copy() for m in M]
    fc = tiger_step(Pc, G, Mc, **kw)
    Pg, Gg, Mg = to_gpu(P), to_gpu(G), to_gpu(M)
    fg = tiger_step(Pg, Gg, Mg, **kw)
    np.testing.assert_array_equal(fg.get(), fc)
    for a, b in zip(to_cpu(Mg), Mc):
        np.testing.assert_array_equal(a, b)
    for p0, a, b in zip(P, to_cpu(Pg), Pc):
        if a.size:
            eta = kw["lr"] * max(1.0, float(np.abs(p0).max()), opts.get("rms_floor", 0.0))
            tol = spacing(b, np.float32) + (1 + 0.1 * np.abs(b)) * 2 * float(np.spacing(np.float32(eta)))
            assert np.all(np.abs(a.astype(np.float64) - b) <= tol)


@pytest.mark.parametrize("p_dtype,m_dtype", [("float16", "float32"), ("bfloat16", "float32"),
                                             ("bfloat16", "bfloat16"), ("float32", "bfloat16"),
                                             ("float16", "bfloat16")])
def test_half_storage_matches_float32_math(rng, p_dtype, m_dtype):
    P, G, M = make(rng, SHAPES, p_dtype, m_dtype)
    kw = dict(step=0, lr=2e-3, rms_mode=["tensor", "row", "none"] * 3)
    # float32 math on the CPU from the same stored values, rounded to storage once at the end
    P32 = [p.astype(np.float32) for p in P]
    M32 = [m.astype(np.float32) for m in M]
    G32 = [g.astype(np.float32) for g in G]
    tiger_step(P32, G32, M32, **kw)
    Pg, Gg, Mg = to_gpu(P), to_gpu(G), to_gpu(M)
    tiger_step(Pg, Gg, Mg, **kw)
    for a, b in zip(to_cpu(Pg), P32):
        err = np.abs(a.astype(np.float64) - b.astype(np.float64))
        assert np.all(err <= spacing(b, a.dtype) * 1.0 + 1e-30)
    for a, b in zip(to_cpu(Mg), M32):
        err = np.abs(a.astype(np.float64) - b.astype(np.float64))
        assert np.all(err <= spacing(b, a.dtype) * 1.0 + 1e-30)


def test_thousand_small_tensors_in_two_launches(rng):
    cp = cupy()
    shapes = [(int(rng.integers(1, 300)),) for _ in range(1000)]
    P, G, M = make(rng, shapes, "float32", "float32")
    Pg, Gg, Mg = to_gpu(P), to_gpu(G), to_gpu(M)
    tiger_step(Pg, Gg, Mg, step=0, lr=1e-3)
    assert fastcore.tiger._last_cuda_launches <= 2
    tiger_step(Pg, Gg, Mg, step=0, lr=1e-3, grad_accum_steps=2, found_inf=False)  # micro-step
    assert fastcore.tiger._last_cuda_launches == 1
    cp.cuda.get_current_stream().synchronize()
    # and the list result equals the CPU kernel's (momentum bitwise)
    Pc, Mc = [p.copy() for p in P], [m.copy() for m in M]
    tiger_step(Pc, G, Mc, step=0, lr=1e-3)
    tiger_step(Pc, G, Mc, step=0, lr=1e-3, grad_accum_steps=2, found_inf=False)
    for a, b in zip(to_cpu(Mg), Mc):
        np.testing.assert_array_equal(a, b)


def test_deterministic_across_runs(rng):
    P, G, M = make(rng, [(3_000_001,), (1000, 257)], "float32", "float32")
    results = []
    for _ in range(3):
        Pg, Gg, Mg = to_gpu(P), to_gpu(G), to_gpu(M)
        tiger_step(Pg, Gg, Mg, step=0, lr=1e-3, rms_mode=["tensor", "row"])
        results.append(to_cpu(Pg) + to_cpu(Mg))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_micro_steps_leave_parameters_bitwise(rng):
    P, G, M = make(rng, [(10_000,), (30, 40)], "bfloat16", "bfloat16")
    Pg, Gg, Mg = to_gpu(P), to_gpu(G), to_gpu(M)
    for t in range(3):
        tiger_step(Pg, Gg, Mg, step=t, lr=1e-3, grad_accum_steps=4, stochastic_rounding=True, seed=5)
        for a, b in zip(to_cpu(Pg), P):
            np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_policies_on_gpu(rng, bad):
    P, G, M = make(rng, [(100,), (10, 10), (7,)], "float32", "float32")
    G[1][2, 3] = bad
    for kw in [dict(), dict(scope="global"), dict(nonfinite="skip"), dict(found_inf=[False, False, True]),
               dict(strict_reference=True, grad_accum_steps=2), dict(detect="nan")]:
        kw = dict(step=1, lr=1e-3, centre=[0.0, 1.0, 0.0], **kw)
        Pc, Mc = [p.copy() for p in P], [m.copy() for m in M]
        fc = tiger_step(Pc, G, Mc, **kw)
        Pg, Gg, Mg = to_gpu(P), to_gpu(G), to_gpu(M)
        fg = tiger_step(Pg, Gg, Mg, **kw)
        np.testing.assert_array_equal(fg.get(), fc)
        for a, b in zip(to_cpu(Mg), Mc):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(to_cpu(Pg), Pc):
            np.testing.assert_allclose(a, b, rtol=2**-22, atol=1e-9)


def test_stochastic_rounding_reproducible_and_unbiased(rng):
    cp = cupy()
    n = 10_000
    v = np.float32(1.0 + 2.0**-7 * 3)  # a bfloat16 value
    lr = 1e-3  # |update| = lr * 1 (rms_mode none): 1e-3 / ulp(1.0 in bf16 = 2^-7) ~ 0.128 ulp
    def one(seed, sr=True):
        p = cp.full(n, v, dtype=bf16())
        m = cp.full(n, 1.0, dtype=cp.float32)  # sign(m) = +1 after the step
        g = cp.full(n, 1.0, dtype=bf16())
        tiger_step([p], [g], [m], step=0, lr=lr, weight_decay=0.0, rms_mode="none",
                   stochastic_rounding=sr, seed=seed)
        return p.get().astype(np.float64)
    a, b, c = one(1), one(1), one(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    expected = float(v) - lr
    # each element is one of the two neighbours of `expected`; Bernoulli with p ~ 0.128
    ulp = 2.0**-7
    assert set(np.unique(a)) <= {float(v), float(v) - ulp}
    sigma = ulp * 0.5 / np.sqrt(n)
    assert abs(a.mean() - expected) < 5 * sigma
    # round to nearest: every element stagnates (the update is below half an ulp)
    np.testing.assert_array_equal(one(1, sr=False), float(v))


def test_cpu_gpu_mix_is_rejected(rng):
    cp = cupy()
    p = cp.zeros(4, cp.float32)
    with pytest.raises(ValueError, match="CPU/GPU mix"):
        tiger_step([p], [np.zeros(4, np.float32)], [cp.zeros(4, cp.float32)], step=0, lr=1e-3)
    with pytest.raises(TypeError, match="moms"):
        tiger_step([p], [cp.zeros(4, cp.float32)], [cp.zeros(4, cp.float16)], step=0, lr=1e-3)
    with pytest.raises(TypeError, match="params"):
        tiger_step([cp.zeros(4, cp.float64)], [cp.zeros(4, cp.float64)], [cp.zeros(4, cp.float32)],
                   step=0, lr=1e-3)


def test_tiger_class_on_gpu_save_load_bitwise(rng):
    cp = cupy()
    P, _, _ = make(rng, [(1000,), (20, 30)], "bfloat16", "bfloat16")
    grads = [[cp.asarray(np.asarray(rng.standard_normal(p.shape), np.float32).astype(bf16())) for p in P]
             for _ in range(6)]
    opts = dict(lr=1e-3, grad_accum_steps=2, momentum_dtype="bfloat16", stochastic_rounding=True, seed=3)
    straight = fastcore.Tiger(to_gpu(P), **opts)
    for g in grads:
        straight.step(g)
    first = fastcore.Tiger(to_gpu(P), **opts)
    for g in grads[:3]:
        first.step(g)
    state = first.state_dict()
    resumed = fastcore.Tiger([p.copy() for p in first.params], **opts)
    resumed.load_state_dict(state)
    for g in grads[3:]:
        resumed.step(g)
    for a, b in zip(straight.params + straight.moms, resumed.params + resumed.moms):
        np.testing.assert_array_equal(a.get().view(np.uint16), b.get().view(np.uint16))
