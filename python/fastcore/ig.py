"""Integrated gradients (Sundararajan, Taly & Yan, *Axiomatic Attribution for Deep Networks*,
ICML 2017): a batched path engine for any gradient callable, and fully compiled built-in models.

    IG_i(x) = (x_i − x'_i) ∫₀¹ ∂F(x' + α(x − x'))/∂x_i dα ≈ (x_i − x'_i) Σ_k w_k ∂_iF((1 − α_k) x' + α_k x)

Orientation: the baseline x' is at α = 0 and the input x at α = 1 (Captum's). Completeness,
Σ_i IG_i = F(x) − F(x'), holds for the integral; ``delta`` measures the quadrature error.

Generic path (``f`` a callable ``f(points, target) -> grads``): the (step, example) rows
r = k·N + i are built step-major by compiled code straight into one reusable buffer of
``chunk_size`` rows (any size ≥ 1) handed to ``f``; gradients are accumulated in float64 per
example in ascending step order, so the attributions are bitwise independent of ``chunk_size``
and of which other examples share the batch (for a callable whose rows do not interact). Memory
holds at most ``chunk_size`` path rows, never n_steps × N × D.

Built-in models (``Linear``, ``MLP``) run the whole computation in compiled code with the
first-layer affine trick (notes §7d): a₁(α) = (1 − α) a₁' + α a₁ from two first-layer products
per example, the rest of the network on the S·N rows, δ̄₁ = Σ_k w_k ∂F/∂a₁(α_k), then
IG = (x − x') ⊙ (δ̄₁ W₁): one input-sized product per example instead of one per step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _backend, _checks

__all__ = [
    "METHODS",
    "quadrature",
    "IGResult",
    "integrated_gradients",
    "interpolate",
    "accumulate",
    "expected_gradients",
    "Linear",
    "MLP",
    "ACTIVATIONS",
    "OUTPUTS",
]

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
           "trapezoid")

# Default chunk: about this many bytes of path rows per call of the callable. On the CPU, 8 MiB:
# the path buffer and the callable's per-chunk temporaries then come back from the heap on every
# chunk and call (glibc serves blocks under 32 MiB from the heap once one has been freed) and stay
# in the last-level cache, where larger chunks mmap fresh pages each time (measured on the issue's
# benchmark, 3200 rows of 3072 floats: one 37.5 MiB chunk cost ~4 ms of page faults per call, 18%
# over the callable; 8 MiB chunks ~11%). On a GPU, 64 MiB: fewer, larger launches.
_DEFAULT_CHUNK_BYTES_CPU = 8 << 20
_DEFAULT_CHUNK_BYTES_GPU = 64 << 20


def _default_chunk_rows(xp, total: int, row_bytes: int) -> int:
    budget = _DEFAULT_CHUNK_BYTES_CPU if xp is np else _DEFAULT_CHUNK_BYTES_GPU
    return max(1, min(total, budget // max(1, row_bytes)))


# --------------------------------------------------------------------------------------------
# Quadrature
# --------------------------------------------------------------------------------------------

def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the n-point Gauss–Legendre rule on [−1, 1] in float64: Newton's
    method on P_n (three-term recurrence) from Tricomi's initial guesses; w = 2 / ((1 − ξ²) P_n'(ξ)²).
    Symmetric by construction (the negative half mirrors the positive one)."""
    m = (n + 1) // 2
    i = np.arange(1, m + 1, dtype=np.float64)
    xi = np.cos(np.pi * (i - 0.25) / (n + 0.5))  # largest roots first
    for _ in range(100):
        p0, p1 = np.ones_like(xi), xi.copy()
        for k in range(2, n + 1):
            p0, p1 = p1, ((2 * k - 1) * xi * p1 - (k - 1) * p0) / k
        pn = p1 if n >= 1 else p0
        pm1 = p0
        dp = n * (xi * pn - pm1) / (xi * xi - 1.0)
        step = pn / dp
        xi = xi - step
        if np.max(np.abs(step)) < 1e-16:
            break
    p0, p1 = np.ones_like(xi), xi.copy()
    for k in range(2, n + 1):
        p0, p1 = p1, ((2 * k - 1) * xi * p1 - (k - 1) * p0) / k
    dp = n * (xi * p1 - p0) / (xi * xi - 1.0)
    w = 2.0 / ((1.0 - xi * xi) * dp * dp)
    if n % 2:  # the middle root is exactly 0
        xi[-1] = 0.0
    nodes = np.concatenate([-xi, xi[::-1][n % 2:]])
    weights = np.concatenate([w, w[::-1][n % 2:]])
    return nodes, weights


def quadrature(n_steps: int = 50, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights), float64 arrays of n_steps nodes on [0, 1] in ascending order.

    * ``gausslegendre`` (n ≥ 1): α = (1 + ξ)/2, w = ω/2 for the Legendre nodes ξ and weights ω;
      exact for polynomials of degree ≤ 2n − 1 (spectral on smooth models).
    * ``riemann_left``  α_k = k/n, ``riemann_right`` α_k = (k + 1)/n, ``riemann_middle``
      α_k = (k + ½)/n, all with w = 1/n (n ≥ 2, as in Captum).
    * ``riemann_trapezoid`` (n ≥ 2): Captum's widely used variant, α_k = k/(n − 1) with weights
      1/n, the two ends halved, so the weights sum to **(n − 1)/n**, not 1: a linear model gets
      (n − 1)/n of its exact attribution. Kept for compatibility.
    * ``trapezoid`` (n ≥ 2): the true composite trapezoid rule on α_k = k/(n − 1), weights
      1/(n − 1) with the ends halved (sum 1).
    """
    method = _checks.check_choice(method, "method", METHODS)
    n = _checks.check_int(n_steps, "n_steps", lo=1 if method == "gausslegendre" else 2)
    a, w = _quadrature_table(n, method)
    return a.copy(), w.copy()


@functools.lru_cache(maxsize=64)
def _quadrature_table(n: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The tables of :func:`quadrature` (validated arguments), cached read-only: Newton's method
    for Gauss–Legendre costs ~1 ms of Python at n = 50, more than a small IG call."""
    a, w = _quadrature_compute(n, method)
    a.setflags(write=False)
    w.setflags(write=False)
    return a, w


def _quadrature_compute(n: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(n, dtype=np.float64)
    if method == "gausslegendre":
        xi, om = _gauss_legendre(n)
        return (1.0 + xi) / 2.0, om / 2.0
    if method == "riemann_left":
        return k / n, np.full(n, 1.0 / n)
    if method == "riemann_right":
        return (k + 1.0) / n, np.full(n, 1.0 / n)
    if method == "riemann_middle":
        return (2.0 * k + 1.0) / (2.0 * n), np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        w = np.full(n, 1.0 / n)
        w[0] = w[-1] = 1.0 / (2.0 * n)
        return k / (n - 1), w
    w = np.full(n, 1.0 / (n - 1))
    w[0] = w[-1] = 1.0 / (2.0 * (n - 1))
    return k / (n - 1), w


# --------------------------------------------------------------------------------------------
# Results and shared validation
# --------------------------------------------------------------------------------------------

@dataclass
class IGResult:
    """Result of :func:`integrated_gradients`.

    attributions: (N, *features) in x's dtype and array kind.
    delta: (N,) float64, Σ attributions − (F(x) − F(x')) (signed, per example), or None.
    relative_delta: (N,) float64, |delta| / |F(x) − F(x')| (inf where F(x) = F(x') ≠ Σ attr, 0 where
        both are 0), or None.
    f_input, f_baseline: (N,) float64 F(x) and F(x'), or None (when no delta was asked for).
    alphas, weights: the quadrature used (float64 NumPy arrays; None for method="exact").
    n_evaluations: gradient evaluations (path rows) made, plus forward rows for the delta.
    """

    attributions: Any
    delta: Any = None
    relative_delta: Any = None
    f_input: Any = None
    f_baseline: Any = None
    alphas: np.ndarray | None = None
    weights: np.ndarray | None = None
    n_evaluations: int = 0


def _check_x(x: Any) -> Any:
    x = _checks.check_array(x, "x", dtypes=_checks.FLOAT_DTYPES, min_ndim=1)
    if not x.flags.c_contiguous:
        x = x.copy(order="C") if _backend.is_cupy_array(x) else np.ascontiguousarray(x)
    return x


def _check_baselines(baselines: Any, x: Any, xp: Any) -> Any:
    """(1, D) or (N, D) C-contiguous array of x's dtype (converted), from None / a scalar / an
    array broadcastable to x.shape."""
    N = x.shape[0]
    D = int(np.prod(x.shape[1:], dtype=np.int64))
    if baselines is None:
        return xp.zeros((1, D), dtype=x.dtype)
    if isinstance(baselines, (bool, np.bool_)):
        raise TypeError("baselines: expected None, a real number or an array, got bool")
    if isinstance(baselines, (int, float, np.integer, np.floating)):
        v = _checks.check_scalar(baselines, "baselines")
        with np.errstate(over="ignore"):  # the overflow is reported below, not warned about
            overflows = not np.isfinite(np.asarray(v).astype(x.dtype))
        if overflows:
            raise ValueError(f"baselines: {v} overflows x's dtype {x.dtype}")
        return xp.full((1, D), v, dtype=x.dtype)
    b = baselines if _checks._is_array(baselines) else _checks.as_array(baselines, "baselines")
    if _backend.is_cupy_array(b) != _backend.is_cupy_array(x):
        _backend.device_of(x=x, baselines=b)  # ValueError naming the CPU/GPU mix
    if b.dtype.kind not in "fiu":
        raise TypeError(f"baselines: expected a real array, got dtype {b.dtype}")
    if b.ndim > x.ndim:
        raise ValueError(f"baselines: shape {tuple(b.shape)} does not broadcast to x's {tuple(x.shape)}")
    shape = (1,) * (x.ndim - b.ndim) + tuple(b.shape)
    try:
        np.broadcast_shapes(shape, tuple(x.shape))
    except ValueError:
        raise ValueError(f"baselines: shape {tuple(b.shape)} does not broadcast to x's {tuple(x.shape)}") from None
    if shape != tuple(x.shape) and tuple(np.broadcast_shapes(shape, x.shape)) != tuple(x.shape):
        raise ValueError(f"baselines: shape {tuple(b.shape)} does not broadcast to x's {tuple(x.shape)}")
    rows = 1 if shape[0] == 1 else N
    b = b.reshape(shape)
    finite = bool(xp.isfinite(b).all()) if _backend.is_cupy_array(b) else bool(np.isfinite(b).all())
    if not finite:
        raise ValueError("baselines: expected finite values")
    with np.errstate(over="ignore"):  # an overflow is reported below, not warned about
        out = xp.broadcast_to(b, (rows,) + tuple(x.shape[1:])).astype(x.dtype)
    if b.dtype != x.dtype and not bool(xp.isfinite(out).all()):
        raise ValueError(f"baselines: values overflow x's dtype {x.dtype} (finite in {b.dtype})")
    return xp.ascontiguousarray(out.reshape(rows, D))


def _to_host(a: Any) -> np.ndarray:
    return a.get() if _backend.is_cupy_array(a) else np.asarray(a)


def _check_target(target: Any, N: int, n_classes: int | None) -> np.ndarray | None:
    """None, or an int64 NumPy array (N,). n_classes: the valid range [0, n_classes) when known."""
    if target is None:
        return None
    if isinstance(target, (bool, np.bool_)):
        raise TypeError("target: expected None, an integer or an integer array (N,), got bool")
    if isinstance(target, (int, np.integer)):
        t = np.full(N, int(target), dtype=np.int64)
    else:
        t = _to_host(target) if _backend.is_cupy_array(target) else _checks.as_array(target, "target")
        if t.dtype.kind not in "iu":
            raise TypeError(f"target: expected an integer or an integer array, got dtype {t.dtype}")
        if t.shape != (N,):
            raise ValueError(f"target: expected shape ({N},) (one class per example) or a scalar, got {tuple(t.shape)}")
        t = t.astype(np.int64)
    if t.size:
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or (n_classes is not None and hi >= n_classes):
            bad = lo if lo < 0 else hi
            rng = f"[0, {n_classes})" if n_classes is not None else ">= 0"
            raise ValueError(f"target: expected class indices in {rng}, got {bad}")
    return t


def _progress(progress: Any, total: int) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(update(rows_done), close()) for progress=None/True/callable(done, total)."""
    if progress is None or progress is False:
        return (lambda done: None), (lambda: None)
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:  # no bar without tqdm (documented)
            return (lambda done: None), (lambda: None)
        bar = tqdm(total=total, unit="row", desc="integrated gradients")
        state = {"done": 0}

        def update(done: int) -> None:
            bar.update(done - state["done"])
            state["done"] = done

        return update, bar.close
    if callable(progress):
        return (lambda done: progress(done, total)), (lambda: None)
    raise TypeError(f"progress: expected None, True or a callable(done, total), got {type(progress).__name__}")


def _backend_module(x: Any):
    return _backend.cuda() if _backend.is_cupy_array(x) else _backend.cpu()


# --------------------------------------------------------------------------------------------
# Low-level building blocks (validated)
# --------------------------------------------------------------------------------------------

def interpolate(x: Any, baselines: Any, alphas: Any, r0: int, out: Any) -> Any:
    """Writes path rows r0 .. r0 + len(out) − 1 (step-major: row r = k·N + i holds
    (1 − α_k)·x'_i + α_k·x_i) into ``out`` (shape (M, *x.shape[1:]), x's dtype). ``baselines``:
    (1, *features) or (N, *features) of x's dtype. Returns out."""
    x = _check_x(x)
    N = x.shape[0]
    D = int(np.prod(x.shape[1:], dtype=np.int64))
    xb = _checks.check_array(baselines, "baselines", dtypes=(x.dtype,))
    if xb.shape[0] not in (1, N) or tuple(xb.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(f"baselines: expected shape (1 or {N}, *{tuple(x.shape[1:])}), got {tuple(xb.shape)}")
    a = np.ascontiguousarray(_checks.check_array(alphas, "alphas", ndim=1, convert=True), dtype=np.float64)
    S = a.shape[0]
    _checks.check_array(out, "out", dtypes=(x.dtype,), contiguous=True, writeable=True)
    if tuple(out.shape[1:]) != tuple(x.shape[1:]) or out.ndim != x.ndim:
        raise ValueError(f"out: expected shape (M, *{tuple(x.shape[1:])}), got {tuple(out.shape)}")
    r0 = _checks.check_int(r0, "r0", lo=0, hi=max(0, S * N - out.shape[0]))
    _backend.device_of(x=x, baselines=xb, out=out)
    _checks.check_no_overlap(out, "out", x, "x")
    _checks.check_no_overlap(out, "out", xb, "baselines")
    _checks.check_no_overlap(out, "out", a, "alphas")  # a is alphas itself when float64 and contiguous
    if N == 0 or out.shape[0] == 0:
        return out
    if not xb.flags.c_contiguous:
        xb = xb.copy()  # NumPy and CuPy alike
    _run_interpolate(x.reshape(N, D), xb.reshape(xb.shape[0], D), a, r0, out.reshape(out.shape[0], D))
    return out


def accumulate(acc: Any, grads: Any, weights: Any, r0: int) -> Any:
    """acc_i += w_k · grads[r − r0] for the path rows r = k·N + i covered by ``grads`` (rows
    r0 .. r0 + M − 1; ``acc`` float64 of shape (N, *features)), in ascending step order. Raises
    ValueError naming the step and example of the first non-finite gradient. Returns acc."""
    _checks.check_array(acc, "acc", dtypes=(np.float64,), min_ndim=1, contiguous=True, writeable=True)
    g = _checks.check_array(grads, "grads", dtypes=_checks.FLOAT_DTYPES, ndim=acc.ndim)
    if tuple(g.shape[1:]) != tuple(acc.shape[1:]):
        raise ValueError(f"grads: expected shape (M, *{tuple(acc.shape[1:])}), got {tuple(g.shape)}")
    w = np.ascontiguousarray(_checks.check_array(weights, "weights", ndim=1, convert=True), dtype=np.float64)
    N = acc.shape[0]
    r0 = _checks.check_int(r0, "r0", lo=0, hi=max(0, w.shape[0] * N - g.shape[0]))
    _backend.device_of(acc=acc, grads=g)
    _checks.check_no_overlap(acc, "acc", g, "grads")
    _checks.check_no_overlap(acc, "acc", w, "weights")  # w is weights itself when float64 and contiguous
    if N == 0 or g.shape[0] == 0:
        return acc
    D = int(np.prod(acc.shape[1:], dtype=np.int64))
    g2 = g.reshape(g.shape[0], D)
    if not g2.flags.c_contiguous:
        g2 = g2.copy()
    _run_accumulate(acc.reshape(N, D), g2, w, r0, N, None)
    return acc


def _run_interpolate(x2, xb2, alphas, r0, out2):
    if _backend.is_cupy_array(x2):
        _cuda_generic().interpolate(x2, xb2, alphas, r0, out2)
    else:
        _backend.cpu().ig.interpolate(x2, xb2, alphas, r0, out2)


def _run_accumulate(acc2, g2, weights, r0, N, alphas, flag=None):
    """acc += w·g for rows r0..; raises on a non-finite gradient (on the GPU with ``flag`` the
    check is deferred to _check_flag, so the loop never waits for the device)."""
    if _backend.is_cupy_array(acc2):
        bad = _cuda_generic().accumulate(acc2, g2, weights, r0, flag)
    else:
        bad = _backend.cpu().ig.accumulate(acc2, g2, weights, r0)
    if bad >= 0:
        D = acc2.shape[1]
        row, col = divmod(int(bad), D)
        _raise_non_finite(r0 + row, col, N, alphas, _to_host(g2[row, col:col + 1])[0])


def _raise_non_finite(r, col, N, alphas, value=None):
    k, i = divmod(int(r), N)
    at = "" if alphas is None else f" (alpha={float(alphas[k]):.6g})"
    shown = "" if value is None else f" ({value})"
    raise ValueError(f"f returned a non-finite gradient{shown} at step {k}{at}, example {i}, "
                     f"feature {col} (flat index)")


def _check_flag(flag, D, N, alphas):
    if flag is None:
        return
    bad = _cuda_generic().read_flag(flag)
    if bad >= 0:
        r, col = divmod(bad, D)
        _raise_non_finite(r, col, N, alphas)


def _cuda_generic():
    from . import _ig_cuda  # the CuPy/CUDA driver (imported only for CuPy arrays)

    return _ig_cuda


# --------------------------------------------------------------------------------------------
# integrated_gradients
# --------------------------------------------------------------------------------------------

def _validate_grads(g: Any, m: int, x: Any, r0: int, N: int) -> Any:
    expected = (m,) + tuple(x.shape[1:])
    if not _checks._is_array(g):
        raise TypeError(f"f: expected it to return an array of shape {expected}, got {type(g).__name__}")
    if _backend.is_cupy_array(g) != _backend.is_cupy_array(x):
        kind = "CuPy" if _backend.is_cupy_array(x) else "NumPy"
        raise TypeError(f"f: returned a {type(g).__module__.split('.')[0]} array for {kind} points "
                        f"(steps starting at row {r0}); expected a {kind} array")
    if tuple(g.shape) != expected:
        raise ValueError(f"f: returned shape {tuple(g.shape)} for {m} path rows; expected {expected}")
    if g.dtype != x.dtype:
        raise TypeError(f"f: returned dtype {g.dtype}; expected x's dtype {x.dtype}")
    return g


def integrated_gradients(
    f: Any,
    x: Any,
    baselines: Any = None,
    *,
    target: Any = None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    chunk_size: int | None = None,
    multiply_by_inputs: bool = True,
    return_delta: bool = False,
    forward_fn: Callable[[Any, Any], Any] | None = None,
    progress: Any = None,
) -> IGResult:
    """Integrated gradients of F along the straight path from ``baselines`` (α = 0) to ``x`` (α = 1).

    f: a built-in model (:class:`Linear`, :class:`MLP`: the whole computation is compiled), or a
        callable ``f(points, target) -> grads``: ``points`` has shape (M, *x.shape[1:]) in x's
        dtype and array kind (a reused buffer: copy it if you keep it; on the GPU, f must work on
        the current CuPy stream or synchronise before returning), ``target`` is None or an
        int64 array (M,) (the example's target repeated per step); ``grads`` must have the shape,
        dtype and array kind of ``points`` (checked; NaN/Inf raise ValueError naming the step and
        example). Rows must not interact (no batch statistics), as in every batched IG.
    x: (N, *features) float32/float64 (a non-contiguous x is copied).
    baselines: None (zeros), a real scalar, or an array broadcastable to x (converted to x's dtype).
    target: None, an int (all examples) or an int array (N,).
    n_steps, method: the quadrature (see :func:`quadrature`); method="exact" for built-in models
        with an exact form (Linear with output="logit": closed form; ReLU MLPs with output="logit":
        breakpoints along the path).
    chunk_size: path rows per call of f (any integer ≥ 1; default: about 8 MiB of rows for NumPy
        arrays, 64 MiB for CuPy).
    multiply_by_inputs: False returns the path-averaged gradient Σ_k w_k ∇F (no × (x − x')).
    return_delta: compute F(x), F(x') and delta = Σ attributions − (F(x) − F(x')) (needs
        multiply_by_inputs; for a callable also ``forward_fn(points, target) -> (M,)``).
    progress: None, True (a tqdm bar when tqdm is installed, otherwise nothing) or a callable
        ``progress(rows_done, rows_total)`` called after each chunk.
    """
    x = _check_x(x)
    xp = _backend.array_module("cuda" if _backend.is_cupy_array(x) else "cpu")
    is_model = isinstance(f, _Model)
    if not is_model and not callable(f):
        raise TypeError(f"f: expected a built-in model (ig.Linear, ig.MLP) or a callable, got {type(f).__name__}")
    _checks.check_bool(multiply_by_inputs, "multiply_by_inputs")
    _checks.check_bool(return_delta, "return_delta")
    if return_delta and not multiply_by_inputs:
        raise ValueError("return_delta=True needs multiply_by_inputs=True: completeness "
                         "(Σ attributions = F(x) − F(x')) does not hold for the path-averaged gradient")
    if forward_fn is not None and not callable(forward_fn):
        raise TypeError(f"forward_fn: expected a callable, got {type(forward_fn).__name__}")
    if return_delta and not is_model and forward_fn is None:
        raise ValueError("return_delta=True with a callable f needs forward_fn(points, target) -> (M,)")
    exact = method == "exact"
    if exact:
        if not is_model:
            raise ValueError("method='exact' is available only for built-in models (ig.Linear, ig.MLP)")
        n_steps = 1  # unused
        alphas = weights = None
    else:
        alphas, weights = quadrature(n_steps, method)
    if chunk_size is not None:
        chunk_size = _checks.check_int(chunk_size, "chunk_size", lo=1)
    N = x.shape[0]
    D = int(np.prod(x.shape[1:], dtype=np.int64))
    xb = _check_baselines(baselines, x, xp)
    t = _check_target(target, N, f.n_outputs if is_model else None)
    update, close = _progress(progress, 0 if exact else len(alphas) * N)

    if is_model:
        f._check_input(x, "x")
        if t is None and f.n_outputs != 1:
            raise ValueError(f"target: required for a model with {f.n_outputs} outputs")
        try:
            attr64, fx, fb = f._integrated_gradients(x, xb, t, alphas, weights, multiply_by_inputs,
                                                      return_delta, exact)
        finally:
            update(0 if exact else len(alphas) * N)
            close()
        n_eval = (0 if exact else len(alphas) * N) + (2 * N if return_delta else 0)
        attributions = attr64
    else:
        S = len(alphas)
        total = S * N
        if chunk_size is None:
            chunk_size = _default_chunk_rows(xp, total, D * x.dtype.itemsize)
        m_max = max(1, min(chunk_size, total))
        buf = xp.empty((m_max,) + tuple(x.shape[1:]), dtype=x.dtype)
        acc = xp.zeros((N, D), dtype=np.float64)
        x2 = x.reshape(N, D)
        t_dev = None if t is None else (xp.asarray(t) if xp is not np else t)
        on_gpu = xp is not np
        flag = _cuda_generic().new_flag() if on_gpu and D else None
        a_arg, w_arg = (xp.asarray(alphas), xp.asarray(weights)) if on_gpu else (alphas, weights)
        try:
            for r0 in range(0, total, m_max):
                m = min(m_max, total - r0)
                P = buf[:m]
                if D:
                    _run_interpolate(x2, xb, a_arg, r0, P.reshape(m, D))
                tt = None if t_dev is None else t_dev[(xp.arange(r0, r0 + m) % N)]
                g = _validate_grads(f(P, tt), m, x, r0, N)
                if D:
                    g2 = g.reshape(m, D)
                    if not g2.flags.c_contiguous:
                        g2 = xp.ascontiguousarray(g2)
                    _run_accumulate(acc, g2, w_arg, r0, N, alphas, flag)
                update(r0 + m)
        finally:
            close()
        _check_flag(flag, D, N, alphas)
        n_eval = total
        if multiply_by_inputs:
            attributions = acc * (x2.astype(np.float64) - xb.astype(np.float64))
        else:
            attributions = acc
        fx = fb = None
        if return_delta:
            fx = _call_forward(forward_fn, x, t_dev, N, "x")
            base_pts = xp.broadcast_to(xb.reshape((xb.shape[0],) + tuple(x.shape[1:])), x.shape)
            fb = _call_forward(forward_fn, xp.ascontiguousarray(base_pts), t_dev, N, "baselines")
            n_eval += 2 * N
    result = IGResult(attributions=attributions.reshape(x.shape).astype(x.dtype, copy=False),
                      alphas=alphas, weights=weights, n_evaluations=n_eval)
    if return_delta:
        total_attr = _to_host(attributions.reshape(N, D).astype(np.float64).sum(axis=1))  # float64 sum
        fx, fb = _to_host(fx).astype(np.float64), _to_host(fb).astype(np.float64)
        diff = fx - fb
        delta = total_attr - diff
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(diff != 0, np.abs(delta) / np.abs(diff), np.where(delta == 0, 0.0, np.inf))
        result.delta, result.relative_delta, result.f_input, result.f_baseline = delta, rel, fx, fb
    return result


def _call_forward(forward_fn, pts, t, N, what):
    out = forward_fn(pts, t)
    if not _checks._is_array(out):
        out = np.asarray(out)
    if tuple(out.shape) != (N,):
        raise ValueError(f"forward_fn: returned shape {tuple(out.shape)} for the {N} rows of {what}; expected ({N},)")
    if out.dtype.kind not in "fiu":
        raise TypeError(f"forward_fn: returned dtype {out.dtype}; expected a real array")
    host = _to_host(out).astype(np.float64)
    if not np.all(np.isfinite(host)):
        raise ValueError(f"forward_fn: returned a non-finite value for {what} (example {int(np.argmin(np.isfinite(host)))})")
    return host



# --------------------------------------------------------------------------------------------
# expected_gradients
# --------------------------------------------------------------------------------------------

def expected_gradients(
    f: Any,
    x: Any,
    background: Any,
    n_samples: int = 200,
    rng: Any = None,
    *,
    target: Any = None,
    chunk_size: int | None = None,
) -> tuple[Any, np.ndarray]:
    """Expected gradients (Erion et al., 2021): the Monte Carlo estimate of
    E_{x' ~ background, α ~ U(0, 1)} [(x − x') ⊙ ∇F(x' + α (x − x'))], i.e. IG averaged over
    baselines drawn from a data set with a random point on each path.

    For sample j and example i a background row b_ji (uniform) and α_ji ~ U(0, 1) are drawn from
    ``rng`` (a numpy Generator, a seed or None), φ_ji = (x_i − x'_b) ⊙ ∇F((1 − α) x'_b + α x_i).
    Returns ``(mean, standard_error)``: the mean of φ over the n_samples draws (x's dtype and array
    kind) and its standard error std(φ, ddof=1)/√n_samples (float64, NumPy), per feature (sums of
    the deviations from each example's first draw: no cancellation when the mean dwarfs the spread).
    Completeness holds in expectation only. Rows (j, i) are evaluated sample-major in chunks of
    ``chunk_size`` rows; sums are accumulated in float64 in ascending sample order (bitwise
    independent of chunk_size). ``f``: a built-in model or a callable as in
    :func:`integrated_gradients`; background: (B, *x.shape[1:]) (converted to x's dtype).
    """
    x = _check_x(x)
    xp = _backend.array_module("cuda" if _backend.is_cupy_array(x) else "cpu")
    if isinstance(f, _Model):
        f._check_input(x, "x")
        model = f
        f = lambda p, t: model.grad(p, t)  # noqa: E731
        n_classes = model.n_outputs
        if target is None and n_classes != 1:
            raise ValueError(f"target: required for a model with {n_classes} outputs")
    elif callable(f):
        n_classes = None
    else:
        raise TypeError(f"f: expected a built-in model (ig.Linear, ig.MLP) or a callable, got {type(f).__name__}")
    bg = background if _checks._is_array(background) else _checks.as_array(background, "background")
    _backend.device_of(x=x, background=bg)
    if bg.dtype.kind not in "fiu":
        raise TypeError(f"background: expected a real array, got dtype {bg.dtype}")
    if bg.ndim != x.ndim or tuple(bg.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(f"background: expected shape (B, *{tuple(x.shape[1:])}), got {tuple(bg.shape)}")
    if bg.shape[0] == 0:
        raise ValueError("background: expected at least one row")
    if not bool(xp.isfinite(bg).all()):
        raise ValueError("background: expected finite values")
    n = _checks.check_int(n_samples, "n_samples", lo=2)
    if chunk_size is not None:
        chunk_size = _checks.check_int(chunk_size, "chunk_size", lo=1)
    if rng is None or isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(rng)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")
    N = x.shape[0]
    D = int(np.prod(x.shape[1:], dtype=np.int64))
    t = _check_target(target, N, n_classes)
    B = bg.shape[0]
    # All draws up front (n x N each), sample-major like the rows.
    idx = rng.integers(0, B, size=(n, N))
    alpha = rng.random((n, N))
    bg2 = xp.ascontiguousarray(bg.reshape(B, D).astype(np.float64))
    x2 = x.reshape(N, D).astype(np.float64)
    total = n * N
    if chunk_size is None:
        chunk_size = _default_chunk_rows(xp, total, D * 8)
    ones = np.ones(n)
    # Sums of the deviations from each example's first draw (sample 0): the one-pass variance of
    # raw sums, s2 - n mean^2, cancels to nothing when |mean| >> spread (a standard error of 0 for
    # φ ~ 1e5 ± 1e-4); about a sample it is exact for constant φ and well conditioned otherwise.
    shift = xp.zeros((N, D))
    s1 = xp.zeros((N, D))
    s2 = xp.zeros((N, D))
    t_dev = None if t is None else (xp.asarray(t) if xp is not np else t)
    flag = _cuda_generic().new_flag() if xp is not np and D else None
    if xp is not np:
        ones = xp.asarray(ones)
    for r0 in range(0, total, chunk_size):
        m = min(chunk_size, total - r0)
        rows = np.arange(r0, r0 + m)
        j, i = np.divmod(rows, N)
        a = xp.asarray(alpha[j, i])[:, None]
        xb_rows = bg2[xp.asarray(idx[j, i])]
        xi = x2[xp.asarray(i)]
        P = ((1.0 - a) * xb_rows + a * xi).astype(x.dtype).reshape((m,) + tuple(x.shape[1:]))
        tt = None if t_dev is None else t_dev[xp.asarray(i)]
        g = _validate_grads(f(P, tt), m, x, r0, N).reshape(m, D).astype(np.float64)
        phi = g * (xi - xb_rows)
        first = np.flatnonzero(j == 0)  # rows of sample 0 come first (sample-major)
        if first.size:
            shift[xp.asarray(i[first])] = phi[xp.asarray(first)]
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: reported by accumulate
            dev = xp.ascontiguousarray(phi - shift[xp.asarray(i)])
        if D:
            _run_accumulate(s1, dev, ones, r0, N, None, flag)
            _run_accumulate(s2, xp.ascontiguousarray(dev * dev), ones, r0, N, None, flag)
    if flag is not None:
        bad = _cuda_generic().read_flag(flag)
        if bad >= 0:
            r, col = divmod(bad, D)
            j, i = divmod(r, N)
            raise ValueError(f"f returned a non-finite gradient at sample {j}, example {i}, feature {col} (flat index)")
    mean = shift + s1 / n
    var = xp.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1)
    se = _to_host(xp.sqrt(var / n)).reshape(x.shape)
    return mean.reshape(x.shape).astype(x.dtype), se


# --------------------------------------------------------------------------------------------
# Built-in models
# --------------------------------------------------------------------------------------------

ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "tanh")
OUTPUTS = ("logit", "softmax", "log_softmax")


class _Model:
    """A feed-forward network F(x) = output(W_L act(… act(W_1 x + b_1) …) + b_L)[target], weights
    (out, in) as in common deep-learning layers. Its IG runs entirely in compiled code; ``forward``
    and ``grad`` (also compiled) make it usable as a plain callable too."""

    def __init__(self, layers: Any, activation: str, output: str):
        self.activation = _checks.check_choice(activation, "activation", ACTIVATIONS)
        self.output = _checks.check_choice(output, "output", OUTPUTS)
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__") or len(layers) == 0:
            raise TypeError("layers: expected a non-empty list of (W, b) pairs")
        if len(layers) > 16:
            raise ValueError(f"layers: at most 16 layers, got {len(layers)}")
        Ws, bs = [], []
        prev = None
        for li, layer in enumerate(layers):
            if not isinstance(layer, (tuple, list)) or len(layer) != 2:
                raise TypeError(f"layers[{li}]: expected a (W, b) pair")
            W, b = layer
            W = _checks.check_array(W, f"layers[{li}] W", dtypes=_checks.FLOAT_DTYPES, ndim=2,
                                    allow_empty=False, finite=True, convert=True)
            if _backend.is_cupy_array(W):
                W = W.get()  # kept on the host (float64 master copy); device copies are cached per dtype
            if b is not None and _backend.is_cupy_array(b):
                b = b.get()
            if prev is not None and W.shape[1] != prev:
                raise ValueError(f"layers[{li}] W: expected {prev} input columns (the previous layer's outputs), "
                                 f"got shape {tuple(W.shape)}")
            if b is not None:
                b = _checks.check_array(b, f"layers[{li}] b", dtypes=_checks.FLOAT_DTYPES, shape=(W.shape[0],),
                                        finite=True, convert=True)
            Ws.append(np.array(W, dtype=np.float64))
            bs.append(np.zeros(W.shape[0]) if b is None else np.array(b, dtype=np.float64))
            prev = W.shape[0]
        self._W64, self._b64 = Ws, bs
        self._cache: dict[np.dtype, tuple[list, list, list]] = {}
        self.n_inputs = Ws[0].shape[1]
        self.n_outputs = Ws[-1].shape[0]

    @property
    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W, b) pairs in float64 (copies)."""
        return [(W.copy(), b.copy()) for W, b in zip(self._W64, self._b64)]

    def _params(self, dtype: np.dtype):
        if dtype not in self._cache:
            Ws = [np.ascontiguousarray(W, dtype=dtype) for W in self._W64]
            self._cache[dtype] = (Ws, [np.ascontiguousarray(W.T) for W in Ws],
                                  [np.ascontiguousarray(b, dtype=dtype) for b in self._b64])
        return self._cache[dtype]

    def _check_input(self, x: Any, name: str) -> Any:
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"{name}: expected shape (N, {self.n_inputs}), got {tuple(x.shape)}")
        return x

    def _prepare(self, x: Any, target: Any):
        x = _check_x(x)
        self._check_input(x, "x")
        t = _check_target(target, x.shape[0], self.n_outputs)
        if t is None and self.n_outputs != 1:
            raise ValueError(f"target: required for a model with {self.n_outputs} outputs")
        return x, t

    def _call(self, x, xb, t, alphas, weights, multiply, attr, f_ends):
        """The fused kernel on NumPy arrays (attr / f_ends filled in place)."""
        Ws, WTs, bs = self._params(x.dtype)
        _backend.cpu().ig.mlp(Ws, WTs, bs, ACTIVATIONS.index(self.activation) if len(Ws) > 1 else 0,
                              OUTPUTS.index(self.output), x, xb, t, np.ascontiguousarray(alphas, np.float64),
                              np.ascontiguousarray(weights, np.float64), multiply, attr, f_ends)

    def forward(self, x: Any, target: Any = None) -> np.ndarray:
        """F per row, shape (M,), in x's dtype: the target's logit, softmax probability or
        log-probability. target: None (single-output models), an int or an int array (M,)."""
        x, t = self._prepare(x, target)
        if _backend.is_cupy_array(x):
            f_ends = _cuda_generic().mlp(self, x, None, t, np.empty(0), np.empty(0), True, False, True)[1]
            return _backend.array_module("cuda").asarray(f_ends[:, 1].astype(x.dtype))
        f_ends = np.empty((x.shape[0], 2))
        empty = np.empty(0)
        self._call(x, None, t, empty, empty, True, None, f_ends)
        return f_ends[:, 1].astype(x.dtype)

    def grad(self, x: Any, target: Any = None) -> np.ndarray:
        """∂F/∂x per row, shape (M, n_inputs), in x's dtype (the ``f`` contract of
        :func:`integrated_gradients`)."""
        x, t = self._prepare(x, target)
        if _backend.is_cupy_array(x):
            return _cuda_generic().mlp(self, x, None, t, np.ones(1), np.ones(1), False, True, False)[0]
        out = np.empty(x.shape, x.dtype)
        one = np.ones(1)
        self._call(x, None, t, one, one, False, out, None)
        return out

    __call__ = grad

    def _integrated_gradients(self, x, xb, t, alphas, weights, multiply, want_f, exact):
        N = x.shape[0]
        if _backend.is_cupy_array(x):
            if exact:
                cp = _backend.array_module("cuda")
                attr = cp.asarray(self._exact(cp.asnumpy(x), cp.asnumpy(xb), t, multiply))
                _, f_ends = _cuda_generic().mlp(self, x, xb, t, np.empty(0), np.empty(0), True, False, want_f)
            else:
                attr, f_ends = _cuda_generic().mlp(self, x, xb, t, alphas, weights, multiply, True, want_f)
            return attr, (None if f_ends is None else f_ends[:, 1].copy()), \
                (None if f_ends is None else f_ends[:, 0].copy())
        f_ends = np.empty((N, 2)) if want_f else None
        if exact:
            attr = self._exact(x, xb, t, multiply)
            if want_f:
                empty = np.empty(0)
                self._call(x, xb, t, empty, empty, True, None, f_ends)
        else:
            attr = np.empty(x.shape, x.dtype)
            self._call(x, xb, t, alphas, weights, multiply, attr, f_ends)
        fx = fb = None
        if want_f:
            fb, fx = f_ends[:, 0].copy(), f_ends[:, 1].copy()
        return attr, fx, fb

    def _exact(self, x, xb, t, multiply):
        L = len(self._W64)
        if self.output != "logit" or (L > 1 and self.activation != "relu"):
            raise ValueError("method='exact' needs output='logit' and, for an MLP, activation='relu' "
                             f"(got output={self.output!r}, activation={self.activation!r})")
        N = x.shape[0]
        x64 = x.astype(np.float64)
        xb64 = np.broadcast_to(xb.astype(np.float64), x64.shape)
        tt = np.zeros(N, np.int64) if t is None else t
        if L == 1:  # F = W[c]·x + b[c]: the gradient is W[c] everywhere (closed form)
            g = self._W64[0][tt]
        else:
            g = _relu_exact_path_gradient(self._W64, self._b64, x64, xb64, tt)
        out = g * (x64 - xb64) if multiply else g
        return out.astype(x.dtype)


def _relu_exact_path_gradient(Ws, bs, x, xb, target) -> np.ndarray:
    """∫₀¹ ∇F(x' + α(x − x')) dα exactly for a ReLU MLP with a logit target (float64): the network
    is affine between the breakpoints where a pre-activation crosses zero along the path (notes §7d,
    exact mode). Trace segment by segment: on [lo, hi] every layer's pre-activation is p + α q; the
    next breakpoint is the smallest root −p/q in (lo, hi) over the layers, the activation pattern
    is the one at the segment's midpoint, and the gradient w.r.t. a₁ is constant on the segment."""
    L = len(Ws)
    H1 = Ws[0].shape[0]
    A1 = x @ Ws[0].T + bs[0]
    A1b = xb @ Ws[0].T + bs[0]
    dbar = np.zeros((x.shape[0], H1))
    for i in range(x.shape[0]):
        p1, q1 = A1b[i], A1[i] - A1b[i]
        lo = 0.0
        for _ in range(1_000_000):
            if lo >= 1.0:
                break
            hi = 1.0
            masks = []
            p, q = p1, q1
            for li in range(L - 1):
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = -p / q
                cand = r[(q != 0) & (r > lo) & (r < hi)]
                if cand.size:
                    hi = float(cand.min())
                mid = 0.5 * (lo + hi)
                m = (p + mid * q) > 0
                masks.append(m)
                p = Ws[li + 1] @ np.where(m, p, 0.0) + bs[li + 1]
                q = Ws[li + 1] @ np.where(m, q, 0.0)
            d = Ws[-1][target[i]].copy()
            for li in range(L - 2, -1, -1):
                d = d * masks[li]
                if li > 0:
                    d = d @ Ws[li]
            dbar[i] += (hi - lo) * d
            lo = hi
        else:  # pragma: no cover - would need ~10^6 kinks on one path
            raise RuntimeError("method='exact': too many linear pieces along the path")
    return dbar @ Ws[0]


class Linear(_Model):
    """F(x) = output(W x + b)[target] with W of shape (out, in). output: "logit" (the target's
    logit; IG has a closed form, method="exact"), "softmax" (its probability) or "log_softmax"."""

    def __init__(self, W: Any, b: Any = None, output: str = "logit"):
        super().__init__([(W, b)], "relu", output)

    def __repr__(self) -> str:
        return f"ig.Linear(in={self.n_inputs}, out={self.n_outputs}, output={self.output!r})"


class MLP(_Model):
    """A multi-layer perceptron: layers = [(W1, b1), (W2, b2), …] with W_l of shape (out, in),
    the activation ("relu", "gelu" (erf), "gelu_tanh", "tanh") after every layer but the last,
    and the output ("logit", "softmax", "log_softmax") of the target class."""

    def __init__(self, layers: Any, activation: str = "relu", output: str = "logit"):
        super().__init__(layers, activation, output)

    def __repr__(self) -> str:
        dims = [self.n_inputs] + [W.shape[0] for W in self._W64]
        return f"ig.MLP({'→'.join(map(str, dims))}, activation={self.activation!r}, output={self.output!r})"


from ._interop import export_dlpack  # noqa: E402  (torch / JAX arrays in, the same kind out)

export_dlpack(globals(), [n for n in __all__ if n not in ("METHODS", "IGResult")])
del export_dlpack
