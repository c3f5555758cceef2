"""fastcore.monarch: float32 multiply at B = 4096 for n = 4096 (64 blocks) and n = 1024 (32
blocks), against the dense NumPy matmul with the same matrix and a batched-matmul-plus-copies
NumPy implementation of the same factors (the reference implementation's structure). Compute
floor: 4·B·n·√n flops at the FMA peak; memory floor: x read and y written once.

GPU (when one is available): the fused kernel (cuda/monarch) at B = 8192 and B = 1, n = 1024 / 32
blocks and n = 4096 / 64 blocks, bfloat16 (where CuPy can hold it), float16 and float32, against
the CuPy composition it replaces (monarch._gpu_multiply: two cuBLAS batched products in float32
plus copies) and cuBLAS dense (cupy.matmul with the same matrix in the same dtype). Memory floor:
x read, y written and the weights read once (notes/monarch.md §6.1, "fused")."""

from __future__ import annotations

import numpy as np

import fastcore
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
    out.extend(gpu_cases(ctx, rng))
    return out


def _gpu_dtypes(cp):
    names = []
    try:
        import ml_dtypes

        cp.asarray(np.zeros(1, ml_dtypes.bfloat16))
        names.append(("bf16", np.dtype(ml_dtypes.bfloat16)))
    except Exception:  # no ml_dtypes, or a CuPy without bfloat16
        pass
    return names + [("f16", np.dtype(np.float16)), ("f32", np.dtype(np.float32))]


def gpu_cases(ctx, rng):
    if not fastcore.cuda_available():
        return []
    import cupy as cp

    out = []
    for label, dtype in _gpu_dtypes(cp):
        for n, nb, batch in ((1024, 32, ctx.size(8192, 1024)), (4096, 64, ctx.size(8192, 1024)), (4096, 64, 1)):
            m = n // nb
            w1_h = rng.standard_normal((nb, m, m)) / np.sqrt(m)
            w2_h = rng.standard_normal((nb, m, m)) / np.sqrt(m)
            x_h = rng.standard_normal((batch, n))
            w1, w2, x = (cp.asarray(a.astype(dtype)) for a in (w1_h, w2_h, x_h))
            y = cp.empty((batch, n), dtype=dtype)
            dense = M.to_dense(w1, w2)                    # (n, n) in the same dtype, for cuBLAS
            dense_t = cp.ascontiguousarray(dense.T)
            plan = M._gpu_plan(x, w1, w2)
            peers = {"cupy composition (2 bmm + copies, f32)": lambda x=x, w1=w1, w2=w2: M._gpu_multiply(x, w1, w2)}
            try:
                cp.matmul(x[:1], dense_t)
                peers["cuBLAS dense (cupy.matmul)"] = lambda x=x, d=dense_t: cp.matmul(x, d)
            except Exception:  # a CuPy without matmul for this dtype
                pass
            x64 = x_h[:64].astype(dtype).astype(np.float64)
            d64 = M.to_dense(w1_h.astype(dtype).astype(np.float64), w2_h.astype(dtype).astype(np.float64))
            out.append(Case(
                family="monarch", device="cuda",
                name=f"multiply {label} B={batch} n={n} blocks={nb}",
                compiled=lambda x=x, w1=w1, w2=w2, y=y: M.multiply(x, w1, w2, out=y),
                peers=peers,
                flops=4.0 * batch * n * m,
                gemm_dtype="f32" if label == "f32" else "f16",
                bytes=(2 * batch * n + 2 * nb * m * m) * dtype.itemsize,
                check=lambda x=x, w1=w1, w2=w2, x64=x64, d64=d64: max_rel_error(
                    M.multiply(x[:64], w1, w2), x64 @ d64.T),
                note=f"fused kernel: {plan['kernel']}, {plan['rows']} rows/block, {plan['shared_bytes']} B shared",
            ))
    return out
