"""fastcore.ig (issue #7): integrated gradients of an MLP 3072→256→256→10 (tanh, softmax
output), N = 64 examples, 50 Gauss–Legendre steps, float32:

* compiled: the fused built-in model (first-layer affine trick, compiled head);
* reference: the straightforward NumPy IG (the whole (S·N, D) path, one NumPy gradient call);
* peers: the generic path driven by the NumPy gradient callable of the same model, and that
  callable alone on the same path rows (the generic path's floor: its overhead is the gap).

Targets (development CPU): fused ≥ 10× the generic path and ≥ 20× the NumPy IG; generic ≤ 10% over
the callable. FLOPs counted are the fused path's (2·N·D·H1·2 + 4·S·N·(H1·H2 + H2·C)); the
GPU cases compare the fused CuPy path with the straightforward CuPy IG.
"""

from __future__ import annotations

import numpy as np

from fastcore import ig
from fastcore.reference import ig as ref
from harness import Case


def _problem(rng, N, D, H, C, dtype=np.float32):
    layers = [((rng.standard_normal((H, D)) / np.sqrt(D)).astype(dtype), (0.1 * rng.standard_normal(H)).astype(dtype)),
              ((rng.standard_normal((H, H)) / np.sqrt(H)).astype(dtype), (0.1 * rng.standard_normal(H)).astype(dtype)),
              ((rng.standard_normal((C, H)) / np.sqrt(H)).astype(dtype), np.zeros(C, dtype))]
    x = rng.standard_normal((N, D)).astype(dtype)
    t = rng.integers(0, C, N)
    return layers, x, t


def cases(ctx):
    rng = np.random.default_rng(0)
    N, D, H, C, S = 64, ctx.size(3072, 768), 256, 10, 50
    layers, x, t = _problem(rng, N, D, H, C)
    model = ig.MLP(layers, "tanh", "softmax")
    grad = ref.mlp_grad_callable(layers, "tanh", "softmax", np.float32)
    a, w = ig.quadrature(S)
    path = np.empty((S * N, D), np.float32)
    ig.interpolate(x, np.zeros((1, D), np.float32), a, 0, path)
    tt = np.tile(t, S)
    flops = 2 * N * D * H * 2 + 4 * S * N * (H * H + H * C)

    def check():
        fused = ig.integrated_gradients(model, x, target=t, n_steps=S, return_delta=True)
        generic = ig.integrated_gradients(grad, x, target=t, n_steps=S).attributions
        err = np.max(np.abs(fused.attributions - generic)) / np.max(np.abs(generic))
        return f"fused vs generic {err:.1e}, max rel delta {np.max(fused.relative_delta):.1e}"

    out = [Case(
        family="ig", name=f"IG MLP {D}-{H}-{H}-{C} tanh/softmax N={N} GL{S} f32",
        compiled=lambda: ig.integrated_gradients(model, x, target=t, n_steps=S),
        reference=lambda: ref.numpy_integrated_gradients(grad, x, 0.0, t, a, w),
        peers={"generic path + NumPy callable": lambda: ig.integrated_gradients(grad, x, target=t, n_steps=S),
               "NumPy callable alone (path rows)": lambda: grad(path, tt)},
        flops=flops, check=check,
        note="targets: >= 10x generic, >= 20x NumPy; generic <= 1.1x callable alone")]
    out.extend(_cuda_cases(ctx, layers, x, t, S))
    return out


def _cuda_cases(ctx, layers, x, t, S):
    import fastcore

    if not fastcore.cuda_available():
        return []
    import cupy as cp

    model = ig.MLP(layers, "tanh", "softmax")
    xd = cp.asarray(x)
    a, w = ig.quadrature(S)
    Ws = [cp.asarray(W) for W, _ in layers]
    bs = [cp.asarray(b) for _, b in layers]

    def cupy_grad(p, tt):  # the straightforward CuPy model gradient
        h, derivs = p, []
        for li, (W, b) in enumerate(zip(Ws, bs)):
            z = h @ W.T + b
            if li < len(Ws) - 1:
                h = cp.tanh(z)
                derivs.append(1 - h * h)
        e = cp.exp(z - z.max(axis=1, keepdims=True))
        pr = e / e.sum(axis=1, keepdims=True)
        onehot = cp.zeros_like(z)
        onehot[cp.arange(len(z)), tt] = 1
        d = pr[cp.arange(len(z)), tt][:, None] * (onehot - pr)
        for li in range(len(Ws) - 1, -1, -1):
            g = d @ Ws[li]
            if li > 0:
                d = g * derivs[li - 1]
        return g

    def cupy_ig():
        al = cp.asarray(a, cp.float32).reshape(-1, 1, 1)
        path = (al * xd[None]).reshape(-1, xd.shape[1])
        g = cupy_grad(path, cp.asarray(np.tile(t, S))).reshape(S, *xd.shape)
        return cp.tensordot(cp.asarray(w, cp.float32), g, axes=1) * xd

    return [Case(family="ig", name=f"IG MLP tanh/softmax N={x.shape[0]} GL{S} f32 (CuPy)", device="cuda",
                 compiled=lambda: ig.integrated_gradients(model, xd, target=t, n_steps=S),
                 reference=cupy_ig,
                 peers={"generic path + CuPy callable": lambda: ig.integrated_gradients(cupy_grad, xd, target=t,
                                                                                         n_steps=S)},
                 note="target: fused >= 5x the CuPy reference on an H100")]
