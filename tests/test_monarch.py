"""fastcore.monarch against the dense float64 oracle (fastcore.reference.monarch): multiply,
adjoint, backward (oracle, exact adjoint identities, finite differences), projection (exact
recovery, Eckart–Young residual, the permuted DFT, idempotence), solve/logdet, MonarchLinear,
determinism and bad input.

Tolerances, relative to max|reference| (each output is a sum of P + R products in one FMA chain):
float64 / complex128 1e-13, float32 / complex64 2e-6 (a few ulp times √(P+R) rounding growth).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastcore
from fastcore import monarch as M
from fastcore.reference import monarch as R
from fastcore.testing import simd_levels

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
SHAPES = [((4, 4, 4), (4, 4, 4)),                 # n = 16 square
          ((32, 32, 32), (32, 32, 32)),           # n = 1024
          ((8, 192, 96), (24, 16, 64)),           # the reference's rectangular 768 -> 384
          ((3, 5, 7), (5, 2, 3)),                 # odd sizes, L != K
          ((1, 1, 1), (1, 1, 1)),
          ((16, 8, 8), (8, 16, 16))]              # nblocks != sqrt(n)


def rtol(dtype):
    return 2e-6 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-13


def draw(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.issubdtype(np.dtype(dtype), np.complexfloating):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def close(got, want, dtype):
    scale = max(np.max(np.abs(want)), 1e-30)
    assert np.max(np.abs(got - want)) <= rtol(dtype) * scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("s1, s2", SHAPES)
def test_multiply_adjoint_backward_match_dense_oracle(rng, dtype, s1, s2):
    w1, w2 = draw(rng, s1, dtype), draw(rng, s2, dtype)
    n_in, n_out = s1[0] * s1[2], s2[0] * s2[1]
    x = draw(rng, (2, 3, n_in), dtype)                        # several leading batch dims
    dy = draw(rng, (2, 3, n_out), dtype)
    y = M.multiply(x, w1, w2)
    assert y.shape == (2, 3, n_out) and y.dtype == dtype
    close(y, R.multiply(x, w1, w2), dtype)
    close(M.multiply_adjoint(dy, w1, w2), R.multiply_adjoint(dy, w1, w2), dtype)
    for got, want in zip(M.multiply_backward(x, w1, w2, dy), R.multiply_backward(x, w1, w2, dy)):
        close(got, want, dtype)
    close(M.to_dense(w1, w2), R.to_dense(w1, w2), dtype)


@pytest.mark.parametrize("batch", [1, 2, 15, 16, 17, 100])
def test_batch_sizes_including_one(rng, batch):
    w1, w2 = draw(rng, (8, 8, 8), np.float64), draw(rng, (8, 8, 8), np.float64)
    x = draw(rng, (batch, 64), np.float64)
    close(M.multiply(x, w1, w2), R.multiply(x, w1, w2), np.float64)
    close(M.multiply(x[0], w1, w2), R.multiply(x[0], w1, w2), np.float64)  # a single vector


def test_large_square_sizes(rng):
    w1, w2 = draw(rng, (64, 64, 64), np.float32), draw(rng, (64, 64, 64), np.float32)
    x = draw(rng, (33, 4096), np.float32)
    close(M.multiply(x, w1, w2), R.multiply_steps(x, w1, w2), np.float32)
    small = [draw(rng, (3, 4, 5), np.float64), draw(rng, (6, 7, 2), np.float64)]
    xs = draw(rng, (4, 15), np.float64)
    close(R.multiply_steps(xs, *small), R.multiply(xs, *small), np.float64)   # the two oracles agree


def test_exact_adjoint_identities_in_float64(rng):
    """y is linear in x and bilinear in (w1, w2): <dX, Δx> = <dY, f(Δx, w1, w2)> etc."""
    w1, w2 = draw(rng, (3, 5, 7), np.float64), draw(rng, (5, 2, 3), np.float64)
    x, dy = draw(rng, (11, 21), np.float64), draw(rng, (11, 10), np.float64)
    dx, dw1, dw2 = M.multiply_backward(x, w1, w2, dy)
    d_x, d_1, d_2 = draw(rng, x.shape, np.float64), draw(rng, w1.shape, np.float64), draw(rng, w2.shape, np.float64)
    assert np.vdot(dx, d_x) == pytest.approx(np.vdot(dy, M.multiply(d_x, w1, w2)), rel=1e-12)
    assert np.vdot(dw1, d_1) == pytest.approx(np.vdot(dy, M.multiply(x, d_1, w2)), rel=1e-12)
    assert np.vdot(dw2, d_2) == pytest.approx(np.vdot(dy, M.multiply(x, w1, d_2)), rel=1e-12)
    np.testing.assert_allclose(dx, dy @ M.to_dense(w1, w2), rtol=1e-12, atol=1e-12)


def test_backward_by_finite_differences(rng):
    w1, w2 = draw(rng, (2, 3, 2), np.float64), draw(rng, (3, 2, 2), np.float64)
    x, dy = draw(rng, (3, 4), np.float64), draw(rng, (3, 6), np.float64)
    _, dw1, dw2 = M.multiply_backward(x, w1, w2, dy)
    h = 1e-6
    for w, dw, which in ((w1, dw1, 0), (w2, dw2, 1)):
        for idx in np.ndindex(w.shape):
            e = np.zeros_like(w)
            e[idx] = h
            args_p = (w1 + e, w2) if which == 0 else (w1, w2 + e)
            args_m = (w1 - e, w2) if which == 0 else (w1, w2 - e)
            numeric = np.sum((M.multiply(x, *args_p) - M.multiply(x, *args_m)) * dy) / (2 * h)
            assert dw[idx] == pytest.approx(numeric, abs=1e-8)


# --- projection ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("s1, s2", [((4, 4, 4), (4, 4, 4)), ((3, 5, 7), (5, 2, 3)), ((8, 192, 96), (24, 16, 64))])
def test_projection_recovers_monarch_matrices_exactly(rng, dtype, s1, s2):
    w1, w2 = draw(rng, s1, dtype), draw(rng, s2, dtype)
    A = R.to_dense(w1, w2)
    p1, p2 = M.project(A, shapes=(s1, s2))
    np.testing.assert_allclose(M.to_dense(p1, p2), A, atol=1e-10 * np.abs(A).max())


@pytest.mark.parametrize("s1, s2", [((4, 4, 4), (4, 4, 4)), ((3, 5, 7), (5, 2, 3)), ((4, 2, 3), (2, 5, 4))])
def test_projection_residual_is_the_discarded_spectrum(rng, s1, s2):
    A = rng.standard_normal((s2[0] * s2[1], s1[0] * s1[2]))
    p1, p2 = M.project(A, shapes=(s1, s2))
    residual = np.sum((A - M.to_dense(p1, p2)) ** 2)
    assert residual == pytest.approx(R.project_residual(A, s1, s2), rel=1e-10)
    # idempotence
    q1, q2 = M.project(M.to_dense(p1, p2), shapes=(s1, s2))
    np.testing.assert_allclose(M.to_dense(q1, q2), M.to_dense(p1, p2), atol=1e-10)


def test_permuted_dft_is_monarch():
    """Cooley–Tukey: DFT_n with columns permuted by 'reshape (m, m), transpose' is Monarch."""
    m = 4
    n = m * m
    F = np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n)
    perm = np.arange(n).reshape(m, m).T.reshape(-1)
    A = F[:, perm]
    p1, p2 = M.project(A, nblocks=m)
    np.testing.assert_allclose(M.to_dense(p1, p2), A, atol=1e-12)


def test_default_nblocks_and_float32_projection(rng):
    A = rng.standard_normal((64, 64)).astype(np.float32)
    w1, w2 = M.project(A)
    assert w1.shape == (8, 8, 8) and w2.shape == (8, 8, 8) and w1.dtype == np.float32


# --- solve / logdet ------------------------------------------------------------------------------

def test_solve_and_logdet(rng):
    w1 = draw(rng, (4, 5, 5), np.float64) + 3 * np.eye(5)
    w2 = draw(rng, (5, 4, 4), np.float64) + 3 * np.eye(4)
    D = R.to_dense(w1, w2)
    y = rng.standard_normal((3, 20))
    x = M.solve(w1, w2, y)
    np.testing.assert_allclose(x @ D.T, y, atol=1e-10)
    sign, logabs = M.logdet(w1, w2)
    want_sign, want_log = np.linalg.slogdet(D)
    assert sign == want_sign and logabs == pytest.approx(want_log, rel=1e-12)
    with pytest.raises(ValueError, match="square blocks"):
        M.solve(draw(rng, (3, 5, 7), np.float64), draw(rng, (5, 2, 3), np.float64), y)


# --- MonarchLinear -------------------------------------------------------------------------------

@pytest.mark.parametrize("n_in, n_out, nb", [(10, 7, 4), (16, 64, 4), (64, 16, 4), (768, 384, 8), (5, 5, 1)])
def test_monarch_linear(rng, n_in, n_out, nb):
    layer = M.MonarchLinear(n_in, n_out, nblocks=nb, dtype=np.float64, rng=1)
    x = rng.standard_normal((6, n_in))
    W = layer.to_dense()
    assert W.shape == (n_out, n_in)
    y = layer(x)
    np.testing.assert_allclose(y, x @ W.T + layer.bias, atol=1e-12)
    dy = rng.standard_normal((6, n_out))
    dx, dw1, dw2, db = layer.backward(x, dy)
    np.testing.assert_allclose(dx, dy @ W, atol=1e-12)
    np.testing.assert_allclose(db, dy.sum(0), atol=1e-12)
    # projection of the layer's own dense weight gives the same map back
    again = M.MonarchLinear.from_dense(W, layer.bias, nblocks=nb)
    np.testing.assert_allclose(again(x), y, atol=1e-10)


def test_monarch_linear_init_bounds():
    layer = M.MonarchLinear(64, 64, nblocks=4, rng=0)
    assert np.all(np.abs(layer.w1) <= 1 / np.sqrt(layer.w1.shape[-1]))
    assert np.all(np.abs(layer.bias) <= 1 / np.sqrt(64)) and layer.w1.dtype == np.float32


# --- determinism and bad input ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
# L = 12: the stage-2 products vectorised over blocks on some SIMD levels and strided on others;
# L = 16: vectorised over blocks on every level (row and output edges: 70 rows, S = 10)
@pytest.mark.parametrize("s1, s2", [((8, 12, 6), (12, 10, 8)), ((8, 16, 6), (16, 10, 8))])
def test_bitwise_identical_for_any_thread_count_and_simd_level(rng, dtype, s1, s2, restore_threads, restore_simd):
    w1, w2 = draw(rng, s1, dtype), draw(rng, s2, dtype)
    x, dy = draw(rng, (70, s1[0] * s1[2]), dtype), draw(rng, (70, s2[0] * s2[1]), dtype)

    def run():
        return [M.multiply(x, w1, w2), M.multiply_adjoint(dy, w1, w2), *M.multiply_backward(x, w1, w2, dy)]

    fastcore.set_num_threads(1)
    base = run()
    fastcore.set_num_threads(2)
    runs = [run()]
    for level in simd_levels():
        fastcore.set_simd_level(level)
        runs.append(run())
    for r in runs:
        for a, b in zip(base, r):
            assert a.tobytes() == b.tobytes()


def test_bad_input(rng):
    w1, w2 = draw(rng, (4, 4, 4), np.float32), draw(rng, (4, 4, 4), np.float32)
    x = draw(rng, (3, 16), np.float32)
    with pytest.raises(ValueError, match="x: last dimension must be 16"):
        M.multiply(draw(rng, (3, 15), np.float32), w1, w2)
    with pytest.raises(ValueError, match="L·R = K·Q"):
        M.multiply(x, w1, draw(rng, (4, 4, 3), np.float32))
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        M.multiply(x.astype(np.float64), w1, w2)
    with pytest.raises(TypeError, match="w2: expected dtype float32"):
        M.multiply(x, w1, w2.astype(np.float64))
    with pytest.raises(TypeError, match="w1: expected dtype"):
        M.multiply(x.astype(np.int32), w1.astype(np.int32), w2.astype(np.int32))
    with pytest.raises(ValueError, match="w1: expected a 3-d array"):
        M.multiply(x, w1[0], w2)
    with pytest.raises(ValueError, match="dy: leading dimensions"):
        M.multiply_backward(x, w1, w2, draw(rng, (4, 16), np.float32))
    with pytest.raises(ValueError, match="out: must not overlap x"):
        M.multiply(x, w1, w2, out=x)
    with pytest.raises(ValueError, match="shapes: w1"):
        M.project(rng.standard_normal((16, 16)), shapes=((4, 4, 4), (4, 4, 5)))
    with pytest.raises(ValueError, match="nblocks: 3 must divide"):
        M.project(rng.standard_normal((16, 16)), nblocks=3)
    A = rng.standard_normal((12, 18))
    with pytest.raises(TypeError, match=r"shapes: expected two triples of integers"):
        M.project(A, shapes=((3.9, 4, 6), (2, 6, 6)))  # was truncated to 3 by int()
    with pytest.raises(ValueError, match=r"shapes: expected positive extents"):
        M.project(A, shapes=((3, 0, 6), (2, 6, 0)))  # was accepted: empty factors
    # a non-finite A: LAPACK's SVD never returned for an inf among finite values (NumPy 32591)
    for value in (np.inf, -np.inf, np.nan):
        bad_A = np.ones((3, 3))
        bad_A[0, 0] = value
        with pytest.raises(ValueError, match=r"A: expected finite values, found .* at index \(0, 0\)"):
            M.project(bad_A)
    with pytest.raises(ValueError, match=r"A: expected finite values"):
        M.MonarchLinear.from_dense(np.full((4, 4), np.inf))
    with pytest.raises(ValueError, match=r"bias: expected shape \(7,\)"):
        M.MonarchLinear.from_dense(A[:7, :10], bias=np.zeros(3))
    with pytest.raises(ValueError, match=r"bias: expected shape \(7,\)"):
        M.MonarchLinear.from_dense(A[:7, :10], bias=1.0)
    with pytest.raises(TypeError, match=r"dtype: expected a floating or complex dtype, got int32"):
        M.MonarchLinear(8, 8, dtype=np.int32)
    # NaN propagates (documented): no check, no masking
    bad = x.copy()
    bad[1, 3] = np.nan
    y = M.multiply(bad, w1, w2)
    assert np.isnan(y[1]).any() and np.isfinite(y[[0, 2]]).all()
    # empty batches
    assert M.multiply(np.empty((0, 16), np.float32), w1, w2).shape == (0, 16)
