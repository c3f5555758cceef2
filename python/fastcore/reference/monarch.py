"""Float64 / complex128 NumPy references for fastcore.monarch (notes/monarch.md §1–3).

The dense oracle is built from explicit permutation matrices, M = P_out · BD(w2) · P_mid · BD(w1),
exactly as the notes define it; the other references use it or the step-by-step formulas.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_dense", "multiply", "multiply_steps", "multiply_adjoint", "multiply_backward", "project_residual"]


def _wide(a):
    a = np.asarray(a)
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def _block_diag(blocks):
    nb, rows, cols = blocks.shape
    out = np.zeros((nb * rows, nb * cols), dtype=blocks.dtype)
    for b in range(nb):
        out[b * rows:(b + 1) * rows, b * cols:(b + 1) * cols] = blocks[b]
    return out


def to_dense(w1, w2):
    """M (n_out × n_in) for w1 (K, Q, P), w2 (L, S, R), L·R = K·Q."""
    w1, w2 = _wide(w1), _wide(w2)
    K, Q, P = w1.shape
    L, S, R = w2.shape
    assert L * R == K * Q
    n_mid = K * Q
    # P_mid: intermediate index i = r·L + l goes to position l·R + r (block l, offset r).
    p_mid = np.zeros((n_mid, n_mid))
    for i in range(n_mid):
        l, r = i % L, i // L
        p_mid[l * R + r, i] = 1.0
    # P_out: (block l, row s) at position l·S + s goes to output s·L + l.
    p_out = np.zeros((L * S, L * S))
    for l in range(L):
        for s in range(S):
            p_out[s * L + l, l * S + s] = 1.0
    return p_out @ _block_diag(w2) @ p_mid @ _block_diag(w1)


def multiply(x, w1, w2):
    """y = x Mᵀ over the last axis of x."""
    return _wide(x) @ to_dense(w1, w2).T


def multiply_steps(x, w1, w2):
    """y = x Mᵀ by the four steps of notes §1.2 (two batched products and two index maps) in
    float64 — the same map as :func:`multiply` without forming M (for large n)."""
    x, w1, w2 = _wide(x), _wide(w1), _wide(w2)
    K, Q, P = w1.shape
    L, S, R = w2.shape
    z = np.einsum("kqp,bkp->bkq", w1, x.reshape(-1, K, P)).reshape(-1, K * Q)
    zp = z.reshape(-1, R, L).transpose(0, 2, 1)
    y = np.einsum("lsr,blr->bsl", w2, zp)
    return y.reshape(x.shape[:-1] + (S * L,))


def multiply_adjoint(y, w1, w2):
    """x = y conj(M)."""
    return _wide(y) @ np.conj(to_dense(w1, w2))


def multiply_backward(x, w1, w2, dy):
    """(dx, dw1, dw2) for a real loss of y = x Mᵀ (complex: gradients w.r.t. the conjugate, as in
    PyTorch), from the four batched products of notes §2."""
    x, w1, w2, dy = _wide(x), _wide(w1), _wide(w2), _wide(dy)
    K, Q, P = w1.shape
    L, S, R = w2.shape
    xb = x.reshape(-1, K, P)
    dyb = dy.reshape(-1, S, L)                                   # output index s·L + l
    z = np.einsum("kqp,bkp->bkq", w1, xb).reshape(-1, K * Q)     # intermediate i = k·Q + q
    zp = z.reshape(-1, R, L).transpose(0, 2, 1)                  # z'[b, l, r] = z[b, r·L + l]
    dw2 = np.einsum("bsl,blr->lsr", dyb, np.conj(zp))
    dzp = np.einsum("lsr,bsl->blr", np.conj(w2), dyb)
    dz = dzp.transpose(0, 2, 1).reshape(-1, K, Q)
    dw1 = np.einsum("bkq,bkp->kqp", dz, np.conj(xb))
    dx = np.einsum("kqp,bkq->bkp", np.conj(w1), dz).reshape(x.shape)
    return dx, dw1, dw2


def project_residual(A, w1_shape, w2_shape):
    """Σ of the discarded squared singular values of the strided sub-blocks (Eckart–Young): the
    squared Frobenius error of the optimal projection onto Monarch matrices of these shapes."""
    A = _wide(A)
    K, Q, P = w1_shape
    L, S, R = w2_shape
    total = 0.0
    for l in range(L):
        for k in range(K):
            rank = sum(1 for r in range(R) if k * Q <= r * L + l < (k + 1) * Q)
            sv = np.linalg.svd(A[l::L, k * P:(k + 1) * P], compute_uv=False)
            total += float(np.sum(sv[rank:] ** 2))
    return total
