"""Tiger optimizer (Su Jianlin, bojone/tiger; kexue.fm/archives/9512): one fused, multi-tensor,
in-place update step with hidden gradient accumulation, LAMB-like RMS step sizes and a
non-finite guard, on the CPU (NumPy float32/float64) and on CUDA (CuPy float32/float16/bfloat16
parameters, float32 or bfloat16 momentum, float32 arithmetic).

The update, for micro-step t (0-based) with accumulation k::

    b1 = beta if t % k == 0 else 1          b2 = (1 - beta) / k
    m <- b1*m + b2*g                                            (every micro-step)
    theta <- theta - eta*(sign(m) + wd*theta)                   (only when (t + 1) % k == 0)
    eta = (lr * lr_mult) * max(RMS(theta), rms_floor)   RMS per tensor, per row, or 1 ("none")

``sign(0) = 0``; RMS is of the parameters before the update. Every backend evaluates exactly
these operations in this order, each rounded once (no FMA contraction), so CPU, CUDA and the
reference (``fastcore.reference.tiger``, same form) agree tightly; the CPU results are bitwise
identical for any thread count and SIMD level, and a multi-tensor call equals a loop of
single-tensor calls bitwise.

Non-finite gradients (``detect``: "nonfinite" = NaN or ±Inf, "nan" = NaN only; ``scope``:
"tensor" or "global"; ``found_inf``: the caller's answer, skipping the check): the flagged
tensor's micro-batch gradient is dropped (m unchanged, except that the cycle's decay m <- beta*m
is kept on the first micro-step when k > 1) and, on the last micro-step of a cycle, ``nonfinite``
= "shrink" sets theta <- (theta - c)*s + c (c = ``centre``, s = ``shrink_ratio``), "skip" leaves
theta alone; "ignore" does no check at all (Inf/NaN then propagate as in plain arithmetic).
Micro-steps that are not the last of their cycle neither read nor write the parameters.

``strict_reference=True`` reproduces the published tiger.py instead: NaN only, per tensor; a NaN
tensor keeps m (b1 = 1, g = 0) and is shrunk on *every* micro-step (also within a cycle); other
tensors also evaluate (and write) theta - 0*(...) on non-final micro-steps; Inf passes through.

Memory traffic per float32 parameter (floors, notes/tiger.md §9): full step 20 B + 4 B for the
RMS pre-pass over theta + 4 B for the non-finite pre-pass over g (skipped with ``found_inf`` or
``nonfinite="ignore"``; the two share one pass); micro-step 12 B (+4 B for the check).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _backend, _checks
from .reference.tiger import options_from_names as _options_from_names
from .reference.tiger import piecewise_linear

__all__ = ["tiger_step", "Tiger", "options_from_names", "piecewise_linear"]

_CPU_DTYPES = ("float32", "float64")
_GPU_PARAM_DTYPES = ("float32", "float16", "bfloat16")
_GPU_MOM_DTYPES = ("float32", "bfloat16")
_RMS_MODES = ("none", "tensor", "row")
_ACTIONS = ("shrink", "skip", "ignore")
_DTYPE_CODE = {"float32": 0, "float16": 1, "bfloat16": 2}


def options_from_names(names: Sequence[str], weight_decay: float = 0.01) -> dict[str, list]:
    """Per-tensor options (``lr_mult``, ``weight_decays``, ``rms_mode``, ``centre``) from variable
    names, with the published rules of tiger.py: a name containing 'bias', 'beta' or 'gamma' gets
    half the learning rate, no weight decay and no RMS scaling ('gamma', a normalisation scale,
    also gets shrink centre 1); otherwise a name containing 'embeddings' gets a row-wise RMS; any
    other tensor a whole-tensor RMS. Explicit metadata is preferable (PyTorch calls a LayerNorm
    scale 'weight', which these rules treat as a kernel)."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"names: expected a sequence of strings, got {type(names).__name__}")
    weight_decay = _checks.check_scalar(weight_decay, "weight_decay", lo=0.0)
    return _options_from_names(list(names), weight_decay)


def _array_list(x: Any, name: str) -> list:
    if isinstance(x, (list, tuple)):
        return list(x)
    raise TypeError(f"{name}: expected a list or tuple of arrays, got {type(x).__name__}")


def _per_tensor(value: Any, n: int, name: str, default: Any, kind: str) -> list:
    """A per-tensor option: None -> default for all, a scalar -> the same for all, else a
    sequence of n values. kind: 'float', 'bool' or 'mode'."""
    if value is None:
        return [default] * n
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()  # a 0-d array is one value for all tensors, like a scalar
    if (kind == "mode" and isinstance(value, str)) or (
            kind != "mode" and isinstance(value, (bool, np.bool_, int, float, np.integer, np.floating))):
        return _per_tensor([value], 1, name, default, kind) * n  # validated once
    if isinstance(value, (list, tuple, np.ndarray)):
        values = list(value)
        if len(values) != n:
            raise ValueError(f"{name}: expected {n} values (one per tensor), got {len(values)}")
    else:
        raise TypeError(f"{name}: expected a {'string' if kind == 'mode' else 'scalar'} or a sequence of "
                        f"{n}, got {type(value).__name__}")
    out = []
    for i, v in enumerate(values):
        item = f"{name}[{i}]"
        if kind == "float":
            out.append(_checks.check_scalar(v, item))
        elif kind == "bool":
            out.append(_checks.check_bool(v, item))
        else:
            out.append(_checks.check_choice(v, item, _RMS_MODES))
    return out


_NATIVE_CPU_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64_MAX = 2**63 - 1


def _check_schedule(schedule: Any, name: str) -> Any:
    """None, a callable, or a validated copy of a non-empty {micro_step: multiplier} dict."""
    if schedule is None or callable(schedule):
        return schedule
    if not isinstance(schedule, Mapping) or not schedule:
        raise TypeError(f"{name}: expected None, a callable or a non-empty dict {{micro_step: multiplier}}")
    for key, val in schedule.items():
        _checks.check_int(key, f"{name} key", lo=0, hi=_INT64_MAX)
        _checks.check_scalar(val, f"{name}[{key}]", lo=0.0)
    return {int(key): float(val) for key, val in schedule.items()}


def _cpu_triple_ok(p: Any, g: Any, m: Any) -> bool:
    """True when (p, g, m) certainly pass the CPU checks: NumPy arrays of one native float32 or
    float64 dtype and one shape, C-contiguous, p and m writeable. False sends the triple through
    the general checks, which raise with the precise message."""
    if type(p) is not np.ndarray or type(g) is not np.ndarray or type(m) is not np.ndarray:
        return False
    d = p.dtype
    if not (d == _NATIVE_CPU_DTYPES[0] or d == _NATIVE_CPU_DTYPES[1]) or g.dtype != d or m.dtype != d:
        return False
    if g.shape != p.shape or m.shape != p.shape:
        return False
    fp, fg, fm = p.flags, g.flags, m.flags
    return fp.c_contiguous and fg.c_contiguous and fm.c_contiguous and fp.writeable and fm.writeable


def _gpu_triple_ok(p: Any, g: Any, m: Any) -> bool:
    """The CuPy counterpart of _cpu_triple_ok: parameters float32/float16/bfloat16, grads of
    the same dtype, momenta float32/bfloat16, one shape, all C-contiguous (CuPy arrays are always
    writeable and in native byte order)."""
    if not (_backend.is_cupy_array(p) and _backend.is_cupy_array(g) and _backend.is_cupy_array(m)):
        return False
    if p.dtype.name not in _GPU_PARAM_DTYPES or g.dtype != p.dtype or m.dtype.name not in _GPU_MOM_DTYPES:
        return False
    if not (p.dtype.isnative and m.dtype.isnative) or g.shape != p.shape or m.shape != p.shape:
        return False
    return p.flags.c_contiguous and g.flags.c_contiguous and m.flags.c_contiguous


def _check_no_aliasing(params: list, moms: list, grads: list) -> None:
    """ValueError when a written array (param or momentum) overlaps any other array of the call.
    Sorted by start, an array overlaps an earlier one iff it starts before the largest end seen so
    far (of every array, or of the written ones only for a grad, since grads may share memory):
    vectorised over the sorted spans, with the loop below run only to name the first offender."""
    on_cpu = all(type(a) is np.ndarray for a in params)
    kinds = (("params", params, True), ("moms", moms, True), ("grads", grads, False))
    # arrays are C-contiguous here (checked before): [address, address + nbytes)
    if on_cpu:
        spans = np.concatenate([_backend.cpu().tiger.spans(arrays).reshape(-1, 2) for _, arrays, _ in kinds])
    else:
        spans = np.array([(lo, lo + a.nbytes) for _, arrays, _ in kinds
                          for a, lo in ((a, _backend.data_pointer(a)) for a in arrays)],
                         dtype=np.uint64).reshape(-1, 2)
    written = np.concatenate([np.full(len(arrays), w) for _, arrays, w in kinds])
    keep = spans[:, 1] > spans[:, 0]  # empty arrays overlap nothing
    order = np.flatnonzero(keep)[np.argsort(spans[keep, 0], kind="stable")]
    start, end, w = spans[order, 0], spans[order, 1], written[order]
    zero = np.zeros(1, np.uint64)  # (uint64 throughout: addresses must not pass through float64)
    end_before = np.maximum.accumulate(np.concatenate([zero, end[:-1]]))[:len(end)]
    written_end_before = np.maximum.accumulate(np.concatenate([zero, np.where(w, end, zero)[:-1]]))[:len(end)]
    clash = np.where(w, start < end_before, start < written_end_before)
    if not clash.any():
        return
    labels = [(kind, i) for kind, arrays, _ in kinds for i in range(len(arrays))]
    max_all = (0, "", 0)
    max_written = (0, "", 0)
    for j in order:
        lo, hi, is_written = int(spans[j, 0]), int(spans[j, 1]), bool(written[j])
        kind, i = labels[j]
        if is_written and lo < max_all[0]:
            raise ValueError(f"{kind}[{i}]: overlaps {max_all[1]}[{max_all[2]}] in memory; every parameter and "
                             f"momentum must be a separate array (it is updated in place)")
        if not is_written and lo < max_written[0]:
            raise ValueError(f"{kind}[{i}]: overlaps {max_written[1]}[{max_written[2]}] in memory, which is "
                             f"updated in place")
        if hi > max_all[0]:
            max_all = (hi, kind, i)
        if is_written and hi > max_written[0]:
            max_written = (hi, kind, i)


def tiger_step(
    params: Sequence[Any],
    grads: Sequence[Any],
    moms: Sequence[Any],
    *,
    step: int,
    lr: float,
    beta: float = 0.965,
    weight_decay: float = 0.01,
    grad_accum_steps: int = 1,
    lr_mult: Sequence[float] | float | None = None,
    weight_decays: Sequence[float] | float | None = None,
    rms_mode: Sequence[str] | str | None = None,
    rms_floor: float = 0.0,
    centre: Sequence[float] | float | None = None,
    shrink_ratio: float = 0.99,
    nonfinite: str = "shrink",
    detect: str = "nonfinite",
    scope: str = "tensor",
    found_inf: bool | Sequence[bool] | None = None,
    lazy_rows: bool | Sequence[bool] = False,
    beta2: float | None = None,
    maximize: bool = False,
    strict_reference: bool = False,
    stochastic_rounding: bool = False,
    seed: int = 0,
    _chunk: int = 0,
):
    """One Tiger micro-step over lists of parameters, gradients and momenta, in place, in one
    compiled call (CPU: one work table, a pre-pass region when RMS or a non-finite check is
    needed, one update region; CUDA: a reduction launch and an update launch for the whole list).

    params, grads, moms: equally long lists of C-contiguous arrays, same shape per index. CPU:
        NumPy float32/float64, grads and moms of the parameter's dtype. CUDA: CuPy float32/
        float16/bfloat16 parameters with grads of the same dtype, moms float32 or bfloat16.
        Empty arrays are allowed (nothing to do). Params and moms must not overlap anything.
    step: the micro-step counter t (0-based) before this call. lr: alpha * schedule(t) (used on
        the last micro-step of a cycle only). beta in [0, 1). weight_decay: the default of
        ``weight_decays``. grad_accum_steps: k >= 1.
    lr_mult, weight_decays, centre: per-tensor floats (or one for all); rms_mode per tensor:
        "tensor" (default), "row" (RMS of each row along the last axis) or "none" (eta = lr *
        lr_mult). rms_floor: eta uses max(RMS, rms_floor), so zero-initialised tensors move.
    nonfinite, detect, scope, found_inf: the non-finite guard (module docstring). found_inf is a
        bool (all tensors) or a sequence of bools (one per tensor).
    lazy_rows: per tensor; rows (last axis) whose gradient row is all zero keep m and theta
        bit-unchanged (needs grad_accum_steps == 1).
    beta2: Lion mode (k = 1): direction sign(beta*m + (1 - beta)*g), m <- beta2*m + (1-beta2)*g.
    maximize: ascend instead of descend (g -> -g).
    strict_reference: the published tiger.py behaviour (module docstring).
    stochastic_rounding, seed: CUDA only: round bfloat16 parameter writes stochastically with a
        counter-based hash of (seed, step, tensor index, element index): reproducible for a given
        seed; float32/float16 parameters in the same list are written as usual.

    Returns a boolean array (NumPy for CPU input, CuPy for CUDA input, not synchronised) saying
    which tensors were treated as non-finite.
    """
    params = _array_list(params, "params")
    grads = _array_list(grads, "grads")
    moms = _array_list(moms, "moms")
    n = len(params)
    if len(grads) != n or len(moms) != n:
        raise ValueError(f"params, grads, moms: expected lists of the same length, got {n}, {len(grads)}, {len(moms)}")
    # The common case, n well-formed NumPy triples, is recognised in one compiled pass over the
    # metadata; anything else goes through the general checks below, which name the problem.
    regular = _backend.cpu().tiger.regular_prefix(params, grads, moms) if n else 0
    device = "cpu"
    if regular < n and not all(type(a) is np.ndarray for lst in (params, grads, moms) for a in lst):
        device = _backend.device_of(**{f"params[{i}]": p for i, p in enumerate(params)},
                                    **{f"grads[{i}]": g for i, g in enumerate(grads)},
                                    **{f"moms[{i}]": m for i, m in enumerate(moms)})
    on_gpu = device == "cuda"
    for i in range(regular, n):
        p, g, m = params[i], grads[i], moms[i]
        if _gpu_triple_ok(p, g, m) if on_gpu else _cpu_triple_ok(p, g, m):
            continue  # the common case, checked without the (slower) general helpers
        _checks.check_array(p, f"params[{i}]", dtypes=_GPU_PARAM_DTYPES if on_gpu else _CPU_DTYPES,
                            contiguous=True, writeable=True)
        _checks.check_array(g, f"grads[{i}]", dtypes=(p.dtype.name,), shape=p.shape, contiguous=True)
        _checks.check_array(m, f"moms[{i}]", dtypes=_GPU_MOM_DTYPES if on_gpu else (p.dtype.name,),
                            shape=p.shape, contiguous=True, writeable=True)
    _check_no_aliasing(params, moms, grads)

    step = _checks.check_int(step, "step", lo=0, hi=_INT64_MAX)  # the kernels count in int64
    k = _checks.check_int(grad_accum_steps, "grad_accum_steps", lo=1, hi=_INT64_MAX)
    lr = _checks.check_scalar(lr, "lr", lo=0.0)
    beta = _checks.check_scalar(beta, "beta", lo=0.0, hi=1.0, hi_inclusive=False)
    weight_decay = _checks.check_scalar(weight_decay, "weight_decay", lo=0.0)
    rms_floor = _checks.check_scalar(rms_floor, "rms_floor", lo=0.0)
    shrink_ratio = _checks.check_scalar(shrink_ratio, "shrink_ratio", lo=0.0, hi=1.0)
    nonfinite = _checks.check_choice(nonfinite, "nonfinite", _ACTIONS)
    detect = _checks.check_choice(detect, "detect", ("nan", "nonfinite"))
    scope = _checks.check_choice(scope, "scope", ("tensor", "global"))
    for flag_name, flag in (("maximize", maximize), ("strict_reference", strict_reference),
                            ("stochastic_rounding", stochastic_rounding)):
        _checks.check_bool(flag, flag_name)
    seed = _checks.check_int(seed, "seed", lo=0, hi=2**64 - 1)
    if beta2 is not None:
        beta2 = _checks.check_scalar(beta2, "beta2", lo=0.0, hi=1.0, hi_inclusive=False)
        if k != 1:
            raise ValueError(f"beta2: Lion mode needs grad_accum_steps == 1 (its update reads the current "
                             f"gradient), got grad_accum_steps={k}")
    lr_mults = _per_tensor(lr_mult, n, "lr_mult", 1.0, "float")
    wds = _per_tensor(weight_decays, n, "weight_decays", weight_decay, "float")
    modes = _per_tensor(rms_mode, n, "rms_mode", "tensor", "mode")
    centres = _per_tensor(centre, n, "centre", 0.0, "float")
    lazy = _per_tensor(lazy_rows, n, "lazy_rows", False, "bool")
    for i in range(n):
        if lr_mults[i] < 0:
            raise ValueError(f"lr_mult[{i}]: expected a value >= 0, got {lr_mults[i]}")
        if wds[i] < 0:
            raise ValueError(f"weight_decays[{i}]: expected a value >= 0, got {wds[i]}")
    if any(lazy) and k != 1:
        raise ValueError(f"lazy_rows: needs grad_accum_steps == 1 (a row's gradient may be zero in one "
                         f"micro-batch only), got grad_accum_steps={k}")
    if found_inf is not None:
        if nonfinite == "ignore":
            raise ValueError("found_inf: cannot be combined with nonfinite='ignore'")
        found = _per_tensor(found_inf, n, "found_inf", False, "bool")
        found_codes = [int(f) for f in found]
    else:
        found_codes = [-1] * n
    if strict_reference:
        for opt, bad in (("found_inf", found_inf is not None), ("lazy_rows", any(lazy)),
                         ("rms_floor", rms_floor != 0.0), ("beta2", beta2 is not None),
                         ("stochastic_rounding", bool(stochastic_rounding))):
            if bad:
                raise ValueError(f"{opt}: not available with strict_reference=True (the published "
                                 f"algorithm has no such option)")
    if stochastic_rounding and not on_gpu:
        raise ValueError("stochastic_rounding: only for CuPy (CUDA) bfloat16 parameters; CPU parameters are "
                         "float32/float64")
    chunk = _checks.check_int(_chunk, "_chunk", lo=0)

    row_len = [int(p.shape[-1]) if p.ndim and p.shape[-1] > 0 else 1 for p in params]
    mode_codes = [_RMS_MODES.index(mo) for mo in modes]
    action = _ACTIONS.index(nonfinite)
    if on_gpu:
        return _step_cuda(params, grads, moms, row_len, mode_codes, lazy, lr_mults, wds, centres, found_codes,
                          step, k, lr, beta, rms_floor, shrink_ratio, action, detect == "nan",
                          scope == "global", bool(strict_reference), beta2, bool(maximize),
                          bool(stochastic_rounding), seed)
    if chunk and chunk % _backend.cpu().tiger.BLOCK:
        raise ValueError(f"_chunk: expected a multiple of {_backend.cpu().tiger.BLOCK}, got {chunk}")
    flags = _backend.cpu().tiger.step(
        params, grads, moms, row_len, mode_codes, lazy, lr_mults, wds, centres, found_codes,
        step, k, lr, beta, rms_floor, shrink_ratio, action, detect == "nan", scope == "global",
        bool(strict_reference), beta2 is not None, 0.0 if beta2 is None else beta2, bool(maximize), chunk)
    return flags.astype(bool)


# Kernel launches made by the last CUDA step (for tests of the multi-tensor launch count).
_last_cuda_launches = 0


def _step_cuda(params, grads, moms, row_len, mode_codes, lazy, lr_mults, wds, centres, found_codes, step, k,
               lr, beta, rms_floor, shrink_ratio, action, nan_only, global_scope, strict, beta2, maximize,
               stochastic_rounding, seed):
    cuda = _backend.cuda()
    cp = _backend.array_module("cuda")
    n = len(params)
    global _last_cuda_launches
    flags = cp.zeros(n, dtype=cp.uint8)
    _last_cuda_launches = 0
    if n:
        ptr = _backend.data_pointer
        _last_cuda_launches = cuda.tiger.step(
            [ptr(p) for p in params], [ptr(g) for g in grads], [ptr(m) for m in moms],
            [int(p.size) for p in params], row_len,
            [_DTYPE_CODE[p.dtype.name] for p in params], [_DTYPE_CODE[m.dtype.name] for m in moms],
            mode_codes, lazy, lr_mults, wds, centres, found_codes,
            step, k, lr, beta, rms_floor, shrink_ratio, action, nan_only, global_scope, strict,
            beta2 is not None, 0.0 if beta2 is None else beta2, maximize, stochastic_rounding, seed,
            ptr(flags), _backend.stream_handle())
    return flags.astype(bool)


class Tiger:
    """Stateful Tiger: holds the momenta and the micro-step counter and calls :func:`tiger_step`.

        opt = Tiger(params, lr=1e-3, grad_accum_steps=4, lr_schedule={4000: 1, 40000: 0.1},
                    **Tiger.options_from_names(names))
        for batch in data:
            opt.step(grads_of(batch))        # one call per micro-batch

    params: list of arrays updated in place (NumPy or CuPy). lr_schedule: None, a callable
    t -> multiplier, or the published piecewise-linear dict {micro_step: multiplier} (counted in
    micro-steps, with a (0, 0) point prepended when ``from_zero`` and the first key is not 0);
    it is evaluated at the micro-step counter t of the last micro-step of each cycle, as tiger.py
    does. momentum_dtype: CUDA only, "float32" or "bfloat16" (default: float32 for 16-bit
    parameters, else the parameter dtype). Other keyword options are passed to tiger_step.
    """

    options_from_names = staticmethod(options_from_names)

    def __init__(self, params, lr=1e-3, beta=0.965, weight_decay=0.01, grad_accum_steps=1, lr_schedule=None,
                 shrink_ratio=0.99, *, from_zero=True, momentum_dtype=None, names=None, **options):
        self.params = _array_list(params, "params")
        self.lr = _checks.check_scalar(lr, "lr", lo=0.0)
        self.beta = _checks.check_scalar(beta, "beta", lo=0.0, hi=1.0, hi_inclusive=False)
        self.weight_decay = _checks.check_scalar(weight_decay, "weight_decay", lo=0.0)
        self.grad_accum_steps = _checks.check_int(grad_accum_steps, "grad_accum_steps", lo=1)
        self.shrink_ratio = _checks.check_scalar(shrink_ratio, "shrink_ratio", lo=0.0, hi=1.0)
        self.lr_schedule = _check_schedule(lr_schedule, "lr_schedule")
        self.from_zero = _checks.check_bool(from_zero, "from_zero")
        if names is not None:
            derived = options_from_names(names, self.weight_decay)
            if len(derived["lr_mult"]) != len(self.params):
                raise ValueError(f"names: expected {len(self.params)} names, got {len(derived['lr_mult'])}")
            for key, val in derived.items():
                options.setdefault(key, val)
        _check_option_names(options, "Tiger")
        self.options = options
        self.t = 0
        self.moms = []
        for i, p in enumerate(self.params):
            _checks.check_array(p, f"params[{i}]")
            if momentum_dtype is None:
                md = "float32" if p.dtype.name in ("float16", "bfloat16") else p.dtype.name
            else:
                md = momentum_dtype
            xp = _backend.array_module(_backend.device_of(p=p))
            if xp is np and md != p.dtype.name:
                raise ValueError(f"momentum_dtype: CPU momenta have the parameter's dtype ({p.dtype.name}), got {md!r}")
            if xp is not np and md not in _GPU_MOM_DTYPES:
                raise ValueError(f"momentum_dtype: expected 'float32' or 'bfloat16', got {md!r}")
            dtype = p.dtype if md == p.dtype.name else (np.float32 if md == "float32" else _bf16_dtype(p))
            self.moms.append(xp.zeros(p.shape, dtype=dtype))
        # Validate every option once now (a zero-gradient dry run would move the weight decay, so
        # the check runs on empty stand-ins with the same per-tensor options).
        self._check_options()

    _HYPER_KEYS = ("beta", "weight_decay", "grad_accum_steps", "shrink_ratio")

    def _check_options(self, options: Mapping[str, Any] | None = None,
                       hyper: Mapping[str, Any] | None = None) -> None:
        """Validates options (default: this optimizer's) with the hyper-parameters in ``hyper``
        (beta, weight_decay, grad_accum_steps, shrink_ratio; default: this optimizer's) through
        tiger_step's own checks, on empty stand-ins (a zero-gradient dry run would move the
        weight decay). Raises what tiger_step would raise at the next step."""
        empties = [np.zeros(0, np.float32) for _ in self.params]
        moms = [np.zeros(0, np.float32) for _ in self.params]
        grads = [np.zeros(0, np.float32) for _ in self.params]
        opts = dict(self.options if options is None else options)
        opts.pop("stochastic_rounding", None)
        opts.pop("seed", None)
        values = {key: getattr(self, key) if hyper is None else hyper[key] for key in self._HYPER_KEYS}
        tiger_step(empties, grads, moms, step=0, lr=0.0, **values, **opts)

    def current_lr(self, t: int | None = None) -> float:
        """alpha * schedule at micro-step t (default: the next one)."""
        t = self.t if t is None else t
        if self.lr_schedule is None:
            mult = 1.0
        elif callable(self.lr_schedule):
            mult = _checks.check_scalar(self.lr_schedule(t), "lr_schedule(t)", lo=0.0)
        else:
            mult = piecewise_linear(t, self.lr_schedule, self.from_zero)
        return self.lr * mult

    def step(self, grads, found_inf=None):
        """One micro-step with these gradients (same order as params). Returns the per-tensor
        non-finite flags. The counter advances also when tensors were flagged."""
        flags = tiger_step(self.params, grads, self.moms, step=self.t, lr=self.current_lr(), beta=self.beta,
                           weight_decay=self.weight_decay, grad_accum_steps=self.grad_accum_steps,
                           shrink_ratio=self.shrink_ratio, found_inf=found_inf, **self.options)
        self.t += 1
        return flags

    def state_dict(self) -> dict:
        """{'step': t, 'moms': [copies], 'hyper': {...}}: everything needed to continue bitwise."""
        return {
            "step": self.t,
            "moms": [m.copy() for m in self.moms],
            "hyper": {"lr": self.lr, "beta": self.beta, "weight_decay": self.weight_decay,
                      "grad_accum_steps": self.grad_accum_steps, "shrink_ratio": self.shrink_ratio,
                      "lr_schedule": copy.deepcopy(self.lr_schedule) if not callable(self.lr_schedule) else None,
                      # None above means either no schedule or a callable one (not saved)
                      "lr_schedule_kind": _schedule_kind(self.lr_schedule),
                      "from_zero": self.from_zero, "options": copy.deepcopy(self.options)},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores the counter and momenta (copied into this optimizer's arrays) and the
        hyper-parameters saved with them. Everything is validated before anything changes."""
        if not isinstance(state, Mapping) or "step" not in state or "moms" not in state:
            raise TypeError("state: expected a dict from Tiger.state_dict() with 'step' and 'moms'")
        t = _checks.check_int(state["step"], "state['step']", lo=0)
        moms = _array_list(state["moms"], "state['moms']")
        if len(moms) != len(self.moms):
            raise ValueError(f"state['moms']: expected {len(self.moms)} arrays, got {len(moms)}")
        for i, (src, dst) in enumerate(zip(moms, self.moms)):
            _checks.check_array(src, f"state['moms'][{i}]", dtypes=(dst.dtype.name,), shape=dst.shape)
            _backend.device_of(**{f"state['moms'][{i}]": src, "the optimizer's momenta": dst})
        hyper = state.get("hyper")
        if hyper is not None:
            keys = ("lr", "beta", "weight_decay", "grad_accum_steps", "shrink_ratio", "options")
            missing = [key for key in keys if key not in hyper]
            if missing:
                raise ValueError(f"state['hyper']: missing {missing}")
            new = {"lr": _checks.check_scalar(hyper["lr"], "state['hyper']['lr']", lo=0.0),
                   "beta": _checks.check_scalar(hyper["beta"], "state['hyper']['beta']", lo=0.0, hi=1.0,
                                                hi_inclusive=False),
                   "weight_decay": _checks.check_scalar(hyper["weight_decay"], "state['hyper']['weight_decay']",
                                                        lo=0.0),
                   "grad_accum_steps": _checks.check_int(hyper["grad_accum_steps"],
                                                         "state['hyper']['grad_accum_steps']", lo=1),
                   "shrink_ratio": _checks.check_scalar(hyper["shrink_ratio"], "state['hyper']['shrink_ratio']",
                                                        lo=0.0, hi=1.0)}
            options = hyper["options"]
            if not isinstance(options, Mapping):
                raise TypeError(f"state['hyper']['options']: expected a dict, got {type(options).__name__}")
            _check_option_names(options, "state['hyper']['options']")
            self._check_options(options, new)
            schedule = self._restored_schedule(hyper)
            from_zero = _checks.check_bool(hyper.get("from_zero", True), "state['hyper']['from_zero']")
        for i, (src, dst) in enumerate(zip(moms, self.moms)):
            dst[...] = src
        self.t = t
        if hyper is not None:
            for key, val in new.items():
                setattr(self, key, val)
            self.lr_schedule = schedule
            self.from_zero = from_zero
            self.options = copy.deepcopy(dict(options))

    def _restored_schedule(self, hyper: Mapping[str, Any]) -> Any:
        """The schedule a saved state continues with: its dict, none, or (saved callable, which
        state_dict cannot store) this optimizer's own callable."""
        kind = hyper.get("lr_schedule_kind")
        saved = _check_schedule(hyper.get("lr_schedule"), "state['hyper']['lr_schedule']")
        if callable(saved):
            raise TypeError("state['hyper']['lr_schedule']: expected None or a dict, got a callable")
        if kind is None:  # a state saved before lr_schedule_kind existed: None kept the current one
            return self.lr_schedule if saved is None else saved
        if kind not in ("none", "dict", "callable") or (kind == "dict") != (saved is not None):
            raise ValueError(f"state['hyper']['lr_schedule_kind']: expected 'none', 'dict' or 'callable' "
                             f"matching state['hyper']['lr_schedule'], got {kind!r}")
        if kind == "callable":
            if not callable(self.lr_schedule):
                raise ValueError("state['hyper']: was saved with a callable lr_schedule, which a state dict "
                                 "cannot hold; construct the optimizer with that callable before loading")
            return self.lr_schedule
        return saved


def _schedule_kind(schedule: Any) -> str:
    return "none" if schedule is None else "callable" if callable(schedule) else "dict"


def _check_option_names(options: Mapping[str, Any], name: str) -> None:
    forbidden = {"step", "lr", "found_inf", "params", "grads", "moms"} & set(options)
    if forbidden:
        raise TypeError(f"{name}: unexpected option(s) {sorted(forbidden)}")


def _bf16_dtype(p):
    if p.dtype.name == "bfloat16":
        return p.dtype
    try:
        import ml_dtypes  # CuPy's bfloat16 comes from ml_dtypes
    except ImportError as exc:
        raise TypeError(f"momentum_dtype: bfloat16 needs ml_dtypes: {exc}") from None
    return np.dtype(ml_dtypes.bfloat16)


from ._interop import export_dlpack  # noqa: E402  (DLPack arrays, e.g. torch tensors, in place)

export_dlpack(globals(), __all__)
del export_dlpack
