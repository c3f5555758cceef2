"""fastcore.monarch: float32 multiply at B = 4096 for n = 4096 (64 blocks) and n = 1024 (32
blocks), against the dense NumPy matmul with the same matrix and a batched-matmul-plus-copies
NumPy implementation of the same factors (the reference implementation's structure). Compute
floor: 4·B·n·√n flops at the FMA peak; memory floor: x read and y written once."""

from __future__ import annotations

import numpy as np

from fastcore import monarch as M
from harness import Case, max_rel_error


def numpy_bmm(x, w1, w2):
    """Two batched products with explicit permutation copies (the reference implementation)."""
    K, Q, P = w1.shape
    L, S, R = w2.shape
    B = x.shape[0]
    z = np.matmul(x.reshape(B, K, 1, P), w1.transpose(0, 2, 1)[None])[:, :, 0, :].reshape(B, K * Q)
    zp = np.ascontiguousarray(z.reshape(B, R, L).transpose(0, 2, 1))
    y = np.matmul(zp[:, :, None, :], w2.transpose(0, 2, 1)[None])[:, :, 0, :]
    return np.ascontiguousarray(y.transpose(0, 2, 1)).reshape(B, L * S)


def cases(ctx):
    out = []
    rng = np.random.default_rng(0)
    batch = ctx.size(4096, 512)
    for n, nb in ((4096, 64), (1024, 32)):
        m = n // nb
        w1 = (rng.standard_normal((nb, m, m)) / np.sqrt(m)).astype(np.float32)
        w2 = (rng.standard_normal((nb, m, m)) / np.sqrt(m)).astype(np.float32)
        x = rng.standard_normal((batch, n)).astype(np.float32)
        y = np.empty_like(x)
        dense = M.to_dense(w1, w2)
        out.append(Case(
            family="monarch",
            name=f"multiply f32 B={batch} n={n} blocks={nb}",
            compiled=lambda x=x, w1=w1, w2=w2, y=y: M.multiply(x, w1, w2, out=y),
            peers={"numpy dense matmul": lambda x=x, d=dense: x @ d.T,
                   "numpy bmm + copies": lambda x=x, w1=w1, w2=w2: numpy_bmm(x, w1, w2)},
            flops=4.0 * batch * n * m,
            bytes=2 * x.nbytes,
            check=lambda x=x, w1=w1, w2=w2, d=dense: max_rel_error(M.multiply(x[:64], w1, w2),
                                                                   x[:64].astype(np.float64) @ d.T.astype(np.float64)),
        ))
        dy = rng.standard_normal((batch, n)).astype(np.float32)
        out.append(Case(
            family="monarch",
            name=f"backward f32 B={batch} n={n} blocks={nb}",
            compiled=lambda x=x, w1=w1, w2=w2, dy=dy: M.multiply_backward(x, w1, w2, dy),
            peers={"numpy dense (dx, dW)": lambda x=x, d=dense, dy=dy: (dy @ d, dy.T @ x)},
            flops=10.0 * batch * n * m,
        ))
    for batch_small in (1, 16):
        n, nb = 4096, 64
        m = n // nb
        w1 = rng.standard_normal((nb, m, m)).astype(np.float32)
        w2 = rng.standard_normal((nb, m, m)).astype(np.float32)
        x = rng.standard_normal((batch_small, n)).astype(np.float32)
        dense = M.to_dense(w1, w2)
        out.append(Case(
            family="monarch",
            name=f"multiply f32 B={batch_small} n={n} blocks={nb}",
            compiled=lambda x=x, w1=w1, w2=w2: M.multiply(x, w1, w2),
            peers={"numpy dense matvec": lambda x=x, d=dense: x @ d.T},
            flops=4.0 * batch_small * n * m,
        ))
    return out
