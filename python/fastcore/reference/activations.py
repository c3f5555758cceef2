"""Float64 NumPy references for fastcore.activations, written from the formulas
(notes/activations.md; Martins & Astudillo 2016; Peters, Niculae & Martins 2019; Blondel et al.
2019). Clarity over speed: sorting, explicit loops over rows, float64 everywhere.

Semantics shared with the kernels: z = scale * x; masked entries (mask False) and -inf logits get
probability 0; a row with nothing left gives zeros (log-softmax: -inf); a NaN or +inf logit makes
its row NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "softmax", "log_softmax", "sparsemax", "entmax15", "entmax_bisect", "topk_softmax",
    "softmax_backward", "log_softmax_backward", "sparsemax_backward", "entmax15_backward",
    "entmax_bisect_backward", "softmax_cross_entropy", "sparsemax_loss", "entmax15_loss",
    "sparsemax_threshold", "entmax15_threshold", "jacobian",
]


def _rows(x, axis, scale=1.0, mask=None):
    """z as float64 with the mapped axis last, masked entries -inf; and a function putting the
    axis back."""
    z = np.asarray(x, dtype=np.float64) * float(scale)
    if mask is not None:
        z = np.where(np.broadcast_to(np.asarray(mask, dtype=bool), z.shape), z, -np.inf)
    z = np.moveaxis(z, axis, -1)
    return z.reshape(-1, z.shape[-1]).copy(), z.shape, (lambda r, shape=z.shape: np.moveaxis(r.reshape(shape), -1, axis))


def _row_map(x, axis, scale, mask, row_fn, empty_value=0.0):
    z, shape, back = _rows(x, axis, scale, mask)
    out = np.empty_like(z)
    for r in range(z.shape[0]):
        row = z[r]
        if np.any(np.isnan(row)) or np.any(row == np.inf):
            out[r] = np.nan
        elif np.all(row == -np.inf):
            out[r] = empty_value
        else:
            out[r] = row_fn(row)
    return back(out)


def softmax(x, axis=-1, *, scale=1.0, mask=None):
    def row_fn(z):
        e = np.exp(z - z.max())
        return e / e.sum()
    return _row_map(x, axis, scale, mask, row_fn)


def log_softmax(x, axis=-1, *, scale=1.0, mask=None):
    def row_fn(z):
        shifted = z - z.max()
        return shifted - np.log(np.exp(shifted).sum())
    return _row_map(x, axis, scale, mask, row_fn, empty_value=-np.inf)


def _sparsemax_tau_shifted(z):
    """tau - max(z) for sparsemax, by sorting (Martins & Astudillo 2016, Alg. 1), computed on
    z - max(z) (shift invariance keeps it exact for huge logits)."""
    z = np.asarray(z, dtype=np.float64)
    zs = np.sort(z[np.isfinite(z)])[::-1]
    zs = zs - zs[0]
    cums = np.cumsum(zs)
    k = np.arange(1, zs.size + 1)
    support = 1 + k * zs > cums
    kstar = k[support][-1]
    return (cums[kstar - 1] - 1) / kstar


def sparsemax_threshold(z):
    """tau with sum (z - tau)_+ = 1."""
    z = np.asarray(z, dtype=np.float64)
    return _sparsemax_tau_shifted(z) + z[np.isfinite(z)].max()


def sparsemax(x, axis=-1, *, scale=1.0, mask=None):
    def row_fn(z):
        return np.maximum((z - z.max()) - _sparsemax_tau_shifted(z), 0.0)
    return _row_map(x, axis, scale, mask, row_fn)


def _entmax15_tau_shifted(z):
    z = np.asarray(z, dtype=np.float64)
    zs = np.sort(z[np.isfinite(z)])[::-1]
    zs = zs - zs[0]  # shift invariance; keeps the moments well conditioned
    for k in range(1, zs.size + 1):
        head = zs[:k]
        mu = head.mean()
        var = (head ** 2).mean() - mu ** 2
        tau = mu - np.sqrt(max(1.0 / k - var, 0.0))
        nxt = zs[k] if k < zs.size else -np.inf
        if head[-1] >= tau >= nxt:
            return tau
    raise AssertionError("no consistent support size (cannot happen in exact arithmetic)")


def entmax15_threshold(z):
    """tau with sum (z - tau)_+^2 = 1 (z already halved), exact by sorting: on the k largest,
    tau_k = mu_k - sqrt(1/k - sigma_k^2), choosing the k with z_(k) >= tau_k >= z_(k+1)
    (Peters et al. 2019; notes §4 — not 'the largest k with z_(k) >= tau_k')."""
    z = np.asarray(z, dtype=np.float64)
    return _entmax15_tau_shifted(z) + z[np.isfinite(z)].max()


def entmax15(x, axis=-1, *, scale=1.0, mask=None):
    def row_fn(z):
        half = z / 2
        return np.maximum((half - half.max()) - _entmax15_tau_shifted(half), 0.0) ** 2
    return _row_map(x, axis, scale, mask, row_fn)


def entmax_bisect(x, alpha=1.5, axis=-1, *, n_iter=200, mask=None):
    """alpha-entmax by plain bisection on tau in [max - 1, max - n^(1-alpha)] (units of
    (alpha-1) z), iterated until the bracket stops shrinking, then renormalised."""
    alpha = float(alpha)

    def row_fn(z):
        d = (alpha - 1.0) * z
        d = d - d.max()
        finite = d[np.isfinite(d)]
        lo, hi = -1.0, -finite.size ** (1.0 - alpha)

        def p_of(tau):
            return np.maximum(d - tau, 0.0) ** (1.0 / (alpha - 1.0))

        for _ in range(n_iter):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if p_of(mid).sum() >= 1.0:
                lo = mid
            else:
                hi = mid
        p = p_of(lo)
        return p / p.sum()

    return _row_map(x, axis, 1.0, mask, row_fn)


def topk_softmax(x, k, axis=-1):
    """Softmax over the k largest entries (ties: lower index first, by a stable sort)."""
    def row_fn(z):
        order = np.argsort(-z, kind="stable")
        keep = np.zeros(z.shape, dtype=bool)
        keep[order[:k]] = True
        out = np.zeros_like(z)
        e = np.exp(z[keep] - z[keep].max())
        out[keep] = e / e.sum()
        return out
    return _row_map(x, axis, 1.0, None, row_fn)


# --- backward: dx = scale * J(z)^T dy, from the forward output ---------------------------------

def jacobian(name, y, alpha=1.5):
    """The Jacobian dp/dz of one row from its output p (log-softmax: from log p), notes §7."""
    y = np.asarray(y, dtype=np.float64)
    if name == "softmax":
        return np.diag(y) - np.outer(y, y)
    if name == "log_softmax":
        p = np.exp(y)
        return np.eye(y.size) - np.outer(np.ones(y.size), p)
    if name == "sparsemax":
        s = (y > 0).astype(np.float64)
        return np.diag(s) - np.outer(s, s) / s.sum()
    power = {"entmax15": 0.5}.get(name, 2.0 - alpha)
    g = np.where(y > 0, np.where(y > 0, y, 1.0) ** power, 0.0)
    return np.diag(g) - np.outer(g, g) / g.sum()


def _row_backward(name, y, dy, axis, scale, alpha=1.5):
    yr, shape, back = _rows(y, axis)
    dyr = _rows(dy, axis)[0]
    out = np.empty_like(yr)
    for r in range(yr.shape[0]):
        if np.any(np.isnan(yr[r])):
            out[r] = np.nan
            continue
        valid = ~(yr[r] == -np.inf) if name == "log_softmax" else np.ones(yr.shape[1], bool)
        if not np.any(valid) or (name != "log_softmax" and not np.any(yr[r] > 0)):
            out[r] = 0.0
            continue
        J = jacobian(name, yr[r][valid], alpha)
        row = np.zeros(yr.shape[1])
        row[valid] = J.T @ dyr[r][valid]
        out[r] = row
    return back(out * float(scale))


def softmax_backward(y, dy, axis=-1, *, scale=1.0):
    return _row_backward("softmax", y, dy, axis, scale)


def log_softmax_backward(y, dy, axis=-1, *, scale=1.0):
    return _row_backward("log_softmax", y, dy, axis, scale)


def sparsemax_backward(y, dy, axis=-1, *, scale=1.0):
    return _row_backward("sparsemax", y, dy, axis, scale)


def entmax15_backward(y, dy, axis=-1, *, scale=1.0):
    return _row_backward("entmax15", y, dy, axis, scale)


def entmax_bisect_backward(y, dy, alpha, axis=-1):
    return _row_backward("bisect", y, dy, axis, 1.0, alpha)


# --- fused losses ----------------------------------------------------------------------------

def _loss(name, x, target, axis):
    z, shape, back = _rows(x, axis)
    t = np.asarray(target).reshape(-1)
    p = {"softmax": softmax, "sparsemax": sparsemax, "entmax15": entmax15}[name](z, -1)
    loss = np.empty(z.shape[0])
    for r in range(z.shape[0]):
        zt = z[r, t[r]]
        if name == "softmax":
            m = z[r].max()
            loss[r] = np.log(np.exp(z[r] - m).sum()) - (zt - m)
        else:
            # Fenchel-Young: <p, z> - Omega(p) - z_t with Omega the negative Tsallis entropy.
            pr = p[r]
            on = pr > 0
            inner = np.sum(pr[on] * (z[r, on] - zt))
            if name == "sparsemax":
                entropy = 0.5 * (1.0 - np.sum(pr ** 2))
            else:
                entropy = (1.0 - np.sum(pr ** 1.5)) / 0.75
            loss[r] = max(inner + entropy, 0.0)
    # p - onehot(t), its target entry p_t - 1 formed as -(the sum of the other p): exact to
    # rounding also for a confident row (p_t = 1 - 1e-12 cancels to ~1e-4 relative error)
    rows = np.arange(z.shape[0])
    grad = p.copy()
    grad[rows, t] = 0.0
    grad[rows, t] = -grad.sum(axis=1)
    return loss.reshape(shape[:-1]), back(grad)


def softmax_cross_entropy(x, target, axis=-1):
    return _loss("softmax", x, target, axis)


def sparsemax_loss(x, target, axis=-1):
    return _loss("sparsemax", x, target, axis)


def entmax15_loss(x, target, axis=-1):
    return _loss("entmax15", x, target, axis)
