"""Float64 NumPy reference of the Tiger optimizer step (bojone/tiger, kexue.fm/archives/9512).

Written from the published step (notes/tiger.md §2), one tensor at a time, out of place, with
explicit per-tensor metadata instead of the reference's variable-name regexes.

The algebraic form (shared with the CPU and CUDA kernels, so that they agree tightly; the
compiled kernels evaluate exactly these operations, in this order, with no FMA contraction):

    b1 = beta if step % k == 0 else 1            b2 = (1 - beta) / k
    m' = b1*m + b2*g                                               (momentum)
    eta = (lr * lr_mult) * max(RMS(theta), rms_floor)   (RMS per tensor or per row; 1 if "none")
    theta' = theta - eta * (sign(m') + wd * theta)                 (last micro-step of a cycle)
    shrink: theta' = (theta - c) * s + c                           (non-finite policy)

sign(x) is +1 / -1 for positive / negative x and x itself for +-0 and NaN (sign(0) = 0).
The scalars b1, b2, eta (computed in float64) are rounded to the storage dtype once;
``precision="storage"`` evaluates the element-wise operations in the array's own dtype (float32
arrays: float32 arithmetic, each operation correctly rounded, as the kernels do), the default
``precision="float64"`` evaluates everything in float64.

Lion mode (``beta2`` given, k = 1): c = b1*m + b2*g; theta' = theta - eta*(sign(c) + wd*theta);
m' = beta2*m + (1 - beta2)*g.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["tiger_step", "lion_step", "piecewise_linear", "sign", "options_from_names"]


def sign(x: np.ndarray) -> np.ndarray:
    """+1 / -1 for positive / negative values, x itself for +-0 and NaN."""
    one = np.ones((), x.dtype)
    return np.where(x > 0, one, np.where(x < 0, -one, x))


def piecewise_linear(t: float, schedule: Mapping[int, float], from_zero: bool = True) -> float:
    """The reference's piecewise-linear schedule (in float64; the published code uses float32):
    linear between the sorted keys, constant after the last; with from_zero a (0, 0) point is
    prepended when the first key is not 0; before the first key the first value holds."""
    points = sorted((int(k), float(v)) for k, v in schedule.items())
    if not points:
        raise ValueError("schedule: expected at least one point")
    if from_zero and points[0][0] != 0:
        points = [(0, 0.0)] + points
    x = points[0][1]
    for i, (t_begin, v_begin) in enumerate(points):
        if t < t_begin:
            break
        if i + 1 < len(points):
            t_end, v_end = points[i + 1]
            x = v_begin + (v_end - v_begin) / (t_end - t_begin) * (t - t_begin)
        else:
            x = v_begin
    return float(x)


def options_from_names(names: Sequence[str], weight_decay: float = 0.01) -> dict[str, list]:
    """Per-tensor options from variable names with the published rules (tiger.py):
    a name containing 'bias', 'beta' or 'gamma' -> lr_mult 0.5, no weight decay, no RMS scaling
    ('gamma' also gets shrink centre 1); else 'embeddings' -> row-wise RMS; else tensor RMS."""
    lr_mult, wds, modes, centre = [], [], [], []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"names: expected strings, got {type(name).__name__}")
        if "bias" in name or "beta" in name or "gamma" in name:
            lr_mult.append(0.5)
            wds.append(0.0)
            modes.append("none")
            centre.append(1.0 if "gamma" in name else 0.0)
        else:
            lr_mult.append(1.0)
            wds.append(float(weight_decay))
            modes.append("row" if "embeddings" in name else "tensor")
            centre.append(0.0)
    return {"lr_mult": lr_mult, "weight_decays": wds, "rms_mode": modes, "centre": centre}


def _per_tensor(value: Any, n: int, default: Any) -> list:
    if value is None:
        return [default] * n
    if isinstance(value, (str, bool, int, float)):
        return [value] * n
    return list(value)


def _rms(theta: np.ndarray, mode: str) -> np.ndarray | float:
    t = theta.astype(np.float64)
    if mode == "tensor":
        return float(np.sqrt(np.mean(t * t))) if t.size else 0.0
    if mode == "row":
        rows = t.reshape(-1, t.shape[-1] if t.ndim else 1)
        return np.sqrt(np.mean(rows * rows, axis=1))
    return 1.0


def tiger_step(
    params: Sequence[np.ndarray],
    grads: Sequence[np.ndarray],
    moms: Sequence[np.ndarray],
    *,
    step: int,
    lr: float,
    beta: float = 0.965,
    weight_decay: float = 0.01,
    grad_accum_steps: int = 1,
    lr_mult: Sequence[float] | None = None,
    weight_decays: Sequence[float] | None = None,
    rms_mode: Sequence[str] | str | None = None,
    rms_floor: float = 0.0,
    centre: Sequence[float] | None = None,
    shrink_ratio: float = 0.99,
    nonfinite: str = "shrink",
    detect: str = "nonfinite",
    scope: str = "tensor",
    found_inf: bool | Sequence[bool] | None = None,
    lazy_rows: bool | Sequence[bool] = False,
    beta2: float | None = None,
    maximize: bool = False,
    strict_reference: bool = False,
    precision: str = "float64",
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """One Tiger micro-step, out of place: returns (new params, new moms, flags), where flags[i]
    says whether tensor i was treated as non-finite. Arrays come back in float64 (precision
    "float64") or in their own dtype (precision "storage"). Semantics as fastcore.tiger.tiger_step.
    """
    n = len(params)
    k = int(grad_accum_steps)
    first = step % k == 0
    final = (step + 1) % k == 0
    lr_mult = _per_tensor(lr_mult, n, 1.0)
    wds = _per_tensor(weight_decays, n, weight_decay)
    modes = _per_tensor(rms_mode, n, "tensor")
    centres = _per_tensor(centre, n, 0.0)
    lazy = _per_tensor(lazy_rows, n, False)
    if strict_reference:
        detect, scope, nonfinite, found_inf = "nan", "tensor", "shrink", None

    # Non-finite decision per tensor, then the scope.
    if nonfinite == "ignore" and not strict_reference:
        flags = np.zeros(n, bool)
    elif found_inf is not None:
        flags = np.array(_per_tensor(found_inf, n, False), bool)
    else:
        test = np.isnan if detect == "nan" else (lambda a: ~np.isfinite(a))
        flags = np.array([bool(test(np.asarray(g)).any()) for g in grads], bool)
    if scope == "global" and flags.any():
        flags[:] = True

    b1_full = beta if first else 1.0
    b2_full = (1.0 - beta) / k
    out_p, out_m = [], []
    for i in range(n):
        p0, g0, m0 = params[i], grads[i], moms[i]
        dt = np.float64 if precision == "float64" else p0.dtype.type
        p = p0.astype(dt)
        g = g0.astype(dt)
        m = m0.astype(dt)
        if maximize:
            g = -g
        c = dt(centres[i])
        s = dt(shrink_ratio)
        if p.size == 0:  # nothing to update (the flag still counts)
            out_p.append(p)
            out_m.append(m)
            continue
        if flags[i]:
            if strict_reference or nonfinite == "shrink":
                m_new = m.copy()
                if not strict_reference and k > 1 and first:
                    m_new = dt(beta) * m  # the cycle's decay is kept, the micro-batch dropped
                if strict_reference or final:
                    p_new = (p - c) * s + c
                else:
                    p_new = p.copy()
            else:  # skip
                m_new = m.copy()
                if k > 1 and first:
                    m_new = dt(beta) * m
                p_new = p.copy()
            out_p.append(p_new)
            out_m.append(m_new)
            continue
        b1, b2 = dt(b1_full), dt(b2_full)
        if beta2 is not None:
            direction = sign(b1 * m + b2 * g)
            m_new = dt(beta2) * m + dt(1.0 - beta2) * g
        else:
            m_new = b1 * m + b2 * g
            direction = sign(m_new)
        if not (final or strict_reference):
            out_p.append(p.copy())
            out_m.append(m_new)
            continue
        lr_t = lr if final else 0.0
        rms = _rms(p0, modes[i])
        if modes[i] != "none":
            rms = np.maximum(rms, rms_floor)
        eta = (lr_t * lr_mult[i]) * rms
        wd = dt(wds[i])
        if modes[i] == "row" and p.size:
            shape = p.shape
            L = shape[-1] if p.ndim else 1
            eta_rows = np.asarray(eta, np.float64).astype(dt).reshape(-1, 1)
            pr, dr = p.reshape(-1, L), direction.reshape(-1, L)
            p_new = (pr - eta_rows * (dr + wd * pr)).reshape(shape)
        else:
            eta_t = dt(eta)
            p_new = p - eta_t * (direction + wd * p)
        if lazy[i] and p.size:
            L = p.shape[-1] if p.ndim else 1
            zero_rows = np.all(g.reshape(-1, L) == 0, axis=1)
            keep = np.repeat(zero_rows, L).reshape(p.shape)
            p_new = np.where(keep, p, p_new)
            m_new = np.where(keep, m, m_new)
        out_p.append(p_new)
        out_m.append(m_new)
    return out_p, out_m, flags


def lion_step(param: np.ndarray, grad: np.ndarray, mom: np.ndarray, *, lr: float, beta1: float,
              beta2: float, weight_decay: float) -> tuple[np.ndarray, np.ndarray]:
    """Lion (Chen et al. 2023, Algorithm 2) in float64, in the same algebraic form:
    c = beta1*m + (1 - beta1)*g; theta' = theta - lr*(sign(c) + wd*theta);
    m' = beta2*m + (1 - beta2)*g."""
    p, g, m = (np.asarray(a, np.float64) for a in (param, grad, mom))
    c = beta1 * m + (1.0 - beta1) * g
    p_new = p - lr * (sign(c) + weight_decay * p)
    m_new = beta2 * m + (1.0 - beta2) * g
    return p_new, m_new


def schedule_multiplier(t: int, schedule: Callable[[int], float] | Mapping[int, float] | None,
                        from_zero: bool = True) -> float:
    """The lr multiplier at micro-step t: 1 without a schedule, schedule(t) for a callable, the
    piecewise-linear function for a dict."""
    if schedule is None:
        return 1.0
    if callable(schedule):
        return float(schedule(t))
    return piecewise_linear(t, schedule, from_zero)
