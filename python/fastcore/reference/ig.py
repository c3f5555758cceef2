"""Float64 NumPy references for fastcore.ig (integrated gradients, notes/ig.md).

Written from the definitions, independently of the compiled code: quadrature tables from NumPy's
Gauss–Legendre nodes and the Riemann/trapezoid formulas; IG as the full (S·N, D) path in float64
(no chunking), IG_i = (x_i − x'_i) · Σ_k w_k ∂F/∂x_i(x' + α_k (x − x')); MLP forward and input
gradients by plain matrix products.
"""

from __future__ import annotations

import numpy as np

__all__ = ["quadrature", "integrated_gradients", "mlp_forward", "mlp_grad", "activation"]


def quadrature(n_steps: int, method: str = "gausslegendre"):
    """(alphas, weights) in float64 on [0, 1]."""
    n = int(n_steps)
    k = np.arange(n, dtype=np.float64)
    if method == "gausslegendre":
        xi, om = np.polynomial.legendre.leggauss(n)
        return (1.0 + xi) / 2.0, om / 2.0
    if method == "riemann_left":
        return k / n, np.full(n, 1.0 / n)
    if method == "riemann_right":
        return (k + 1) / n, np.full(n, 1.0 / n)
    if method == "riemann_middle":
        return (k + 0.5) / n, np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":  # Captum's weights: sum (n - 1)/n
        w = np.full(n, 1.0 / n)
        w[0] = w[-1] = 0.5 / n
        return k / (n - 1), w
    if method == "trapezoid":  # the composite trapezoid rule on n points
        w = np.full(n, 1.0 / (n - 1))
        w[0] = w[-1] = 0.5 / (n - 1)
        return k / (n - 1), w
    raise ValueError(method)


def integrated_gradients(grad_fn, x, baselines, target, alphas, weights, multiply_by_inputs=True):
    """The whole path at once: rows k*N + i = (1 − α_k) x'_i + α_k x_i, one call to grad_fn."""
    x = np.asarray(x, np.float64)
    N = x.shape[0]
    xb = np.broadcast_to(np.asarray(baselines, np.float64), x.shape)
    a = np.asarray(alphas, np.float64).reshape(-1, *([1] * x.ndim))
    path = ((1.0 - a) * xb[None] + a * x[None]).reshape(-1, *x.shape[1:])
    t = None if target is None else np.tile(np.broadcast_to(np.asarray(target), (N,)), len(alphas))
    g = np.asarray(grad_fn(path, t), np.float64).reshape(len(alphas), *x.shape)
    avg = np.tensordot(np.asarray(weights, np.float64), g, axes=1)
    return avg * (x - xb) if multiply_by_inputs else avg


def activation(name, z):
    """(h, dh/dz) in float64."""
    z = np.asarray(z, np.float64)
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(np.float64)
    if name == "tanh":
        t = np.tanh(z)
        return t, 1.0 - t * t
    if name == "gelu":
        from scipy.special import erfc

        # Phi(z) = erfc(-z/sqrt 2)/2: 1 + erf(z/sqrt 2) cancels for z << 0 (gelu(-9) came out -0.0
        # instead of -1.0e-18)
        Phi = 0.5 * erfc(-z / np.sqrt(2.0))
        with np.errstate(over="ignore"):  # z^2 overflowing to inf: phi = 0, as it should be
            phi = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
        return z * Phi, Phi + z * phi
    if name == "gelu_tanh":
        from scipy.special import expit

        c = np.sqrt(2.0 / np.pi)
        with np.errstate(over="ignore"):  # z^3 overflowing to +-inf: tanh u = +-1, as it should be
            u = c * (z + 0.044715 * z ** 3)
        # 1 + tanh u = 2 expit(2u) and 1 - tanh^2 u = 4 expit(2u) expit(-2u), without the
        # cancellation of 1 + t for u << 0
        one_plus_t = 2.0 * expit(2.0 * u)
        one_minus_t2 = 4.0 * expit(2.0 * u) * expit(-2.0 * u)
        with np.errstate(over="ignore", invalid="ignore"):  # |z| past ~1e102: z^3 overflows
            slope = np.where(one_minus_t2 > 0, z * one_minus_t2 * c * (1.0 + 3 * 0.044715 * z * z), 0.0)
        return 0.5 * z * one_plus_t, 0.5 * one_plus_t + 0.5 * slope
    if name == "identity":
        return z, np.ones_like(z)
    raise ValueError(name)


def _forward_all(layers, act, x):
    h = np.asarray(x, np.float64)
    zs = []
    for li, (W, b) in enumerate(layers):
        z = h @ np.asarray(W, np.float64).T
        if b is not None:
            z = z + np.asarray(b, np.float64)
        zs.append(z)
        if li < len(layers) - 1:
            h = activation(act, z)[0]
    return zs


def _select(output, z, target):
    m = z.shape[0]
    t = np.zeros(m, np.int64) if target is None else np.broadcast_to(np.asarray(target, np.int64), (m,))
    if output == "logit":
        return z[np.arange(m), t], t, None
    zmax = z.max(axis=1, keepdims=True)
    e = np.exp(z - zmax)
    p = e / e.sum(axis=1, keepdims=True)
    if output == "softmax":
        return p[np.arange(m), t], t, p
    logp = (z - zmax) - np.log(e.sum(axis=1, keepdims=True))
    return logp[np.arange(m), t], t, p


def _output_gradient(output, p, t):
    """dF/dlogits for softmax (p_c (e_c - p)) and log-softmax (e_c - p) outputs, with 1 - p_c
    formed as the sum of the other probabilities (1 - p_c cancels when p_c is near 1)."""
    rows = np.arange(p.shape[0])
    d = -p.copy()
    d[rows, t] = 0.0
    d[rows, t] = -d.sum(axis=1)
    return p[rows, t][:, None] * d if output == "softmax" else d


def mlp_forward(layers, activation_name, output, x, target):
    """F(x) per row: the target's logit, softmax probability or log-probability."""
    z = _forward_all(layers, activation_name, x)[-1]
    return _select(output, z, target)[0]


def mlp_grad(layers, activation_name, output, x, target):
    """∂F/∂x per row (float64), by the chain rule written out."""
    zs = _forward_all(layers, activation_name, x)
    f, t, p = _select(output, zs[-1], target)
    m = zs[-1].shape[0]
    onehot = np.zeros_like(zs[-1])
    onehot[np.arange(m), t] = 1.0
    d = onehot if output == "logit" else _output_gradient(output, p, t)
    for li in range(len(layers) - 1, -1, -1):
        g = d @ np.asarray(layers[li][0], np.float64)
        if li > 0:
            d = g * activation(activation_name, zs[li - 1])[1]
    return g


def expected_gradients(grad_fn, x, background, idx, alpha, target=None):
    """Mean and standard error of φ_ji = (x_i − bg[idx_ji]) ⊙ ∇F((1 − α_ji) bg[idx_ji] + α_ji x_i)
    for given draws idx, alpha (n, N): all n·N rows at once, float64, two-pass variance."""
    x = np.asarray(x, np.float64)
    bg = np.asarray(background, np.float64)
    n, N = idx.shape
    xb = bg[idx]                                   # (n, N, *F)
    a = alpha.reshape(n, N, *([1] * (x.ndim - 1)))
    pts = ((1 - a) * xb + a * x[None]).reshape(n * N, *x.shape[1:])
    t = None if target is None else np.tile(np.broadcast_to(np.asarray(target), (N,)), n)
    g = np.asarray(grad_fn(pts, t), np.float64).reshape(n, N, *x.shape[1:])
    phi = g * (x[None] - xb)
    return phi.mean(axis=0), phi.std(axis=0, ddof=1) / np.sqrt(n)


def mlp_grad_callable(layers, activation_name, output, dtype):
    """A plain NumPy gradient callable f(points, target) -> ∂F/∂points of an MLP computed in
    `dtype` (BLAS products, NumPy elementwise functions): the "user callable" the benchmarks
    drive the generic path with, and the body of the straightforward NumPy IG."""
    dtype = np.dtype(dtype)
    Ws = [np.ascontiguousarray(W, dtype=dtype) for W, _ in layers]
    bs = [np.zeros(W.shape[0], dtype) if b is None else np.asarray(b, dtype) for W, b in layers]

    def act(z):
        if activation_name == "tanh":
            t = np.tanh(z)
            return t, 1 - t * t
        if activation_name == "relu":
            return np.maximum(z, 0), (z > 0).astype(dtype)
        h, d = activation(activation_name, z)
        return h.astype(dtype), d.astype(dtype)

    def grad(p, t):
        h = p.reshape(p.shape[0], -1)
        derivs = []
        for li, (W, b) in enumerate(zip(Ws, bs)):
            z = h @ W.T + b
            if li < len(Ws) - 1:
                h, d = act(z)
                derivs.append(d)
        m = z.shape[0]
        tt = np.zeros(m, np.int64) if t is None else t
        onehot = np.zeros_like(z)
        onehot[np.arange(m), tt] = 1
        if output == "logit":
            d = onehot
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            d = _output_gradient(output, e / e.sum(axis=1, keepdims=True), tt)
        for li in range(len(Ws) - 1, -1, -1):
            g = d @ Ws[li]
            if li > 0:
                d = g * derivs[li - 1]
        return g.reshape(p.shape)

    return grad


def numpy_integrated_gradients(grad_fn, x, baselines, target, alphas, weights):
    """The straightforward NumPy IG in x's dtype: materialise the whole (S·N, D) path, one call,
    weighted sum over steps (what most implementations do; the benchmark's floor to beat)."""
    a = np.asarray(alphas, x.dtype).reshape(-1, *([1] * x.ndim))
    xb = np.broadcast_to(np.asarray(baselines, x.dtype), x.shape)
    path = ((1 - a) * xb[None] + a * x[None]).reshape(-1, *x.shape[1:])
    t = None if target is None else np.tile(target, len(alphas))
    g = grad_fn(path, t).reshape(len(alphas), *x.shape)
    return np.tensordot(np.asarray(weights, x.dtype), g, axes=1) * (x - xb)
