"""PyTorch adapters: autograd functions, modules and an optimizer built on fastcore's kernels.

``import fastcore`` never imports torch; this module does (``import fastcore.torch``). Tensors
cross into fastcore through DLPack without copies (CPU tensors become NumPy views, CUDA tensors
CuPy views on the tensor's current stream) and results come back as tensors the same way.

- maps: :func:`softmax`, :func:`log_softmax`, :func:`sparsemax`, :func:`entmax15`,
  :func:`entmax_bisect` — differentiable in ``x`` (``dim`` instead of NumPy's ``axis``).
- Monarch: :func:`monarch_multiply` (differentiable in x, w1, w2) and :class:`MonarchLinear`
  (an ``nn.Module`` whose ``w1``/``w2`` use the reference layout, so existing weights load).
- S4: :func:`cauchy`, :func:`vandermonde`, :func:`fftconv`, :func:`kernel_diag` (the S4D kernel,
  differentiable in Lambda, B, C and dt) and :func:`kernel_dplr` (the S4 kernel, differentiable
  in Lambda, P, B, Ct and dt).
- :class:`Tiger`: a ``torch.optim.Optimizer`` over :func:`fastcore.tiger.tiger_step`.
- :func:`ig_grad_fn`: turns an ``nn.Module`` into the gradient callable of
  :func:`fastcore.ig.integrated_gradients`.

The Functions are differentiable once: their backward runs the compiled kernels, which record no
graph, so a second derivative through them (Hessians, gradient penalties) raises instead of
silently treating the gradient as a constant; ``create_graph=True`` alone is fine.
"""

from __future__ import annotations

import functools
import itertools
import numbers
import warnings
from typing import Any, Callable

import numpy as np
import torch

from . import _interop
from ._checks import check_int, check_scalar

__all__ = [
    "softmax", "log_softmax", "sparsemax", "entmax15", "entmax_bisect",
    "monarch_multiply", "MonarchLinear",
    "cauchy", "vandermonde", "kernel_diag", "kernel_dplr", "fftconv",
    "Tiger", "ig_grad_fn",
]


# --- tensor <-> fastcore array -------------------------------------------------------------------

def _native(t: torch.Tensor | None, name: str, *, written: bool = False):
    """A NumPy/CuPy view of a tensor (no copy; detached: autograd is handled by the Function).

    A lazily conjugated or negated tensor (torch's conj/neg bits, which DLPack ignores) is resolved
    into a copy first — autograd itself hands such tensors to backward (the gradient of a
    ``.conj()``) — except for arrays the call writes (``written``), which the interop refuses."""
    if t is None:
        return None
    _check_exportable(t, name)
    t = t.detach()
    if not written:
        t = t.resolve_conj().resolve_neg()  # no-ops (the tensor itself) without the bits
    if t.is_cpu and t.dtype in _NUMPY_VIEW_DTYPES and not t.is_conj() and not t.is_neg():
        # the same zero-copy view DLPack gives, in ~1 us instead of ~8 (Tiger converts three
        # tensors per parameter on every step)
        return t.numpy()
    return _interop.to_native(t, name)


# dtypes whose CPU tensors .numpy() views directly (bfloat16 has no NumPy dtype: DLPack's error)
_NUMPY_VIEW_DTYPES = frozenset({torch.float16, torch.float32, torch.float64, torch.complex64, torch.complex128})


def _supported_devices() -> str:
    from . import _backend

    if _backend._cuda_module()[0] is not None:
        return "the CPU or a CUDA GPU"
    return "the CPU (this build of fastcore has no CUDA module)"


def _check_exportable(t: Any, name: str) -> None:
    """TypeError/ValueError naming the argument for a tensor fastcore cannot take: not a tensor;
    nested, sparse, MKL-DNN (non-strided layouts) or quantized tensors, which DLPack cannot
    export (torch's errors there are internal ones); devices other than CPU and CUDA (meta
    tensors hold no data; DLPack knows no 'meta' device). Every tensor fastcore.torch hands to a
    kernel passes here."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.is_nested:
        raise TypeError(f"{name}: expected a dense (strided) tensor, got a nested tensor; pass "
                        f"{name}.to_padded_tensor(0.0) or its components one at a time")
    if t.layout != torch.strided:
        raise TypeError(f"{name}: expected a dense (strided) tensor, got layout {t.layout}; pass "
                        f"{name}.to_dense()")
    if t.is_quantized:
        raise TypeError(f"{name}: expected an unquantized tensor, got dtype {t.dtype}; pass "
                        f"{name}.dequantize()")
    if not (t.is_cpu or t.is_cuda):  # (t.device costs ~0.4 us: only on this path)
        hint = " (meta tensors hold no data)" if t.device.type == "meta" else ""
        raise ValueError(f"{name}: expected a tensor on {_supported_devices()}, got one on device "
                         f"'{t.device}'{hint}")


def _tensor(a) -> torch.Tensor | None:
    """A tensor view of a NumPy/CuPy result (no copy); None stays None (an absent gradient)."""
    return None if a is None else torch.from_dlpack(a)


class _NotTwiceDifferentiable(torch.autograd.Function):
    """Identity on a gradient computed by a compiled backward; differentiating it raises."""

    @staticmethod
    def forward(ctx, grad, *anchors):
        return grad.view_as(grad)

    @staticmethod
    def backward(ctx, *unused):
        raise RuntimeError("fastcore.torch: second derivatives through fastcore's Functions are not "
                           "supported (their backward runs compiled kernels that record no graph); "
                           "use torch's own ops where a gradient is differentiated again")


def _first_order_only(backward: Callable) -> Callable:
    """Wraps a Function's backward. Under create_graph=True (grad mode on in backward) every
    gradient it returns is tied to the tensors it depends on through _NotTwiceDifferentiable, so
    a second derivative raises instead of silently treating these gradients as constants (a
    Hessian came out all zeros). torch's once_differentiable does not cover this: it only looks
    at whether the incoming gradients require grad, not the saved inputs and outputs."""

    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        with torch.no_grad():
            grads = backward(ctx, *grad_outputs)
        if not torch.is_grad_enabled():
            return grads
        anchors = [t for t in (*ctx.saved_tensors, *grad_outputs)
                   if isinstance(t, torch.Tensor) and t.requires_grad]
        if not anchors:
            return grads
        return tuple(_NotTwiceDifferentiable.apply(g, *anchors) if isinstance(g, torch.Tensor) else g
                     for g in grads)

    return wrapper


def _axis(dim: int) -> int:
    return check_int(dim, "dim")  # int or NumPy integer, not bool; the range is the map's check


def _constant(value: Any, name: str) -> float:
    """A float parameter that is not differentiated: a tensor that requires grad is refused (it
    would silently get no gradient)."""
    if isinstance(value, torch.Tensor) and value.requires_grad:
        raise TypeError(f"{name}: a tensor that requires grad is not differentiable here; pass a "
                        f"float (or {name}.item()) for a constant")
    return float(value)


# --- probability maps ----------------------------------------------------------------------------

class _MapFunction(torch.autograd.Function):
    """y = map(scale·x) along dim; the backward kernels take (y, dy) and give dx for the map's own
    input, so d/dx = scale · backward(y, dy)."""

    @staticmethod
    def forward(ctx, x, name, dim, scale, mask, extra):
        from . import activations

        kwargs = dict(extra)
        if scale != 1.0:
            kwargs["scale"] = scale
        if mask is not None:
            kwargs["mask"] = _native(mask, "mask")
        y = getattr(activations, name)(_native(x, "x"), axis=dim, **kwargs)
        y = _tensor(y)
        ctx.save_for_backward(y)
        ctx.name, ctx.dim, ctx.scale, ctx.extra = name, dim, scale, extra
        return y

    @staticmethod
    @_first_order_only
    def backward(ctx, dy):
        from . import activations

        (y,) = ctx.saved_tensors
        backward = getattr(activations, ctx.name + "_backward")
        args = (_native(y, "y"), _native(dy.contiguous(), "dy"))
        if ctx.name == "entmax_bisect":
            dx = backward(*args, ctx.extra["alpha"], axis=ctx.dim)
        else:
            dx = backward(*args, axis=ctx.dim)
        dx = _tensor(dx)
        if ctx.scale != 1.0:
            dx = dx * ctx.scale
        return dx, None, None, None, None, None


def softmax(x: torch.Tensor, dim: int = -1, *, scale: float = 1.0, mask=None) -> torch.Tensor:
    """Differentiable :func:`fastcore.activations.softmax` (masked entries get 0 and 0 gradient;
    fully masked rows give zeros, not NaN)."""
    return _MapFunction.apply(x, "softmax", _axis(dim), _constant(scale, "scale"), mask, {})


def log_softmax(x: torch.Tensor, dim: int = -1, *, scale: float = 1.0, mask=None) -> torch.Tensor:
    """Differentiable :func:`fastcore.activations.log_softmax`."""
    return _MapFunction.apply(x, "log_softmax", _axis(dim), _constant(scale, "scale"), mask, {})


def sparsemax(x: torch.Tensor, dim: int = -1, *, scale: float = 1.0, mask=None) -> torch.Tensor:
    """Differentiable :func:`fastcore.activations.sparsemax` (exact, sort-free)."""
    return _MapFunction.apply(x, "sparsemax", _axis(dim), _constant(scale, "scale"), mask, {})


def entmax15(x: torch.Tensor, dim: int = -1, *, scale: float = 1.0, mask=None) -> torch.Tensor:
    """Differentiable :func:`fastcore.activations.entmax15` (exact, sort-free)."""
    return _MapFunction.apply(x, "entmax15", _axis(dim), _constant(scale, "scale"), mask, {})


def entmax_bisect(x: torch.Tensor, alpha: float = 1.5, dim: int = -1, *, n_iter=None,
                  mask=None) -> torch.Tensor:
    """Differentiable :func:`fastcore.activations.entmax_bisect` in ``x`` (``alpha`` is a
    constant, not a learnable tensor)."""
    extra = {"alpha": _constant(alpha, "alpha")}
    if n_iter is not None:
        extra["n_iter"] = n_iter
    return _MapFunction.apply(x, "entmax_bisect", _axis(dim), 1.0, mask, extra)


# --- Monarch -------------------------------------------------------------------------------------

class _MonarchMultiply(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, w2):
        from . import monarch

        ctx.save_for_backward(x, w1, w2)
        return _tensor(monarch.multiply(_native(x, "x"), _native(w1, "w1"), _native(w2, "w2")))

    @staticmethod
    @_first_order_only
    def backward(ctx, dy):
        from . import monarch

        x, w1, w2 = ctx.saved_tensors
        dx, dw1, dw2 = monarch.multiply_backward(_native(x, "x"), _native(w1, "w1"),
                                                 _native(w2, "w2"), _native(dy.contiguous(), "dy"))
        return _tensor(dx), _tensor(dw1), _tensor(dw2)


def monarch_multiply(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Differentiable :func:`fastcore.monarch.multiply`: y = x @ Mᵀ, M = P·BD(w2)·P·BD(w1), with
    w1 (k, q, p) and w2 (l, s, r) in the reference layout. Real dtypes (torch's complex autograd
    convention is not mapped)."""
    for name, t in (("x", x), ("w1", w1), ("w2", w2)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.is_complex():
            raise TypeError(f"{name}: fastcore.torch.monarch_multiply supports real dtypes; use "
                            f"fastcore.monarch.multiply for complex (no autograd)")
    return _MonarchMultiply.apply(x, w1, w2)


class MonarchLinear(torch.nn.Module):
    """A linear layer with a Monarch weight, y = x Mᵀ + b, in_features → out_features.

    The factors are ``w1`` (k, q, p) and ``w2`` (l, s, r) in the reference layout, so a state dict
    of the reference ``MonarchLinear`` loads as it is. Sizes that are not multiples of ``nblocks``
    are zero-padded on the input and truncated on the output (as the reference does).
    Initialisation: each block uniform in ±1/√(fan-in of that block), the bias uniform in
    ±1/√in_features (the ``nn.Linear`` rule applied per factor)."""

    def __init__(self, in_features: int, out_features: int, nblocks: int = 4, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        from . import monarch

        # Reuse fastcore's layout rules (padding, factor shapes) so both classes agree.
        shapes = monarch.factor_shapes(in_features, out_features, nblocks)
        (w1_shape, w2_shape, self.in_padded, self.out_padded) = shapes
        factory = {"device": device, "dtype": dtype}
        self.in_features, self.out_features, self.nblocks = in_features, out_features, nblocks
        self.w1 = torch.nn.Parameter(torch.empty(w1_shape, **factory))
        self.w2 = torch.nn.Parameter(torch.empty(w2_shape, **factory))
        self.bias = torch.nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for w in (self.w1, self.w2):
                bound = 1.0 / np.sqrt(w.shape[-1])
                w.uniform_(-bound, bound)
            if self.bias is not None:
                bound = 1.0 / np.sqrt(self.in_features)
                self.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_exportable(x, "x")  # before torch's own ops on it (pad, contiguous)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x: last dimension must be in_features={self.in_features}, "
                             f"got {x.shape[-1]}")
        if self.in_padded != self.in_features:
            x = torch.nn.functional.pad(x, (0, self.in_padded - self.in_features))
        y = monarch_multiply(x.contiguous(), self.w1, self.w2)[..., :self.out_features]
        return y + self.bias if self.bias is not None else y

    @classmethod
    def from_dense(cls, weight: torch.Tensor, bias: torch.Tensor | None = None,
                   nblocks: int = 4) -> "MonarchLinear":
        """The best Monarch approximation (Frobenius norm) of a dense (out, in) weight, via
        :func:`fastcore.monarch.project`."""
        _check_exportable(weight, "weight")
        if bias is not None:
            _check_exportable(bias, "bias")
        out_features, in_features = weight.shape
        layer = cls(in_features, out_features, nblocks, bias=bias is not None,
                    device=weight.device, dtype=weight.dtype)
        padded = torch.zeros(layer.out_padded, layer.in_padded, dtype=weight.dtype,
                             device=weight.device)
        padded[:out_features, :in_features] = weight.detach()
        from . import monarch

        w1, w2 = monarch.project(_native(padded, "weight"),
                                 shapes=(tuple(layer.w1.shape), tuple(layer.w2.shape)))
        with torch.no_grad():
            layer.w1.copy_(_tensor(w1))
            layer.w2.copy_(_tensor(w2))
            if bias is not None:
                layer.bias.copy_(bias.detach())
        return layer


# --- S4 ------------------------------------------------------------------------------------------

class _Cauchy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, z, w, conj):
        from . import s4

        ctx.save_for_backward(v, z, w)
        ctx.conj = conj
        return _tensor(s4.cauchy(_native(v, "v"), _native(z, "z"), _native(w, "w"), conj=conj))

    @staticmethod
    @_first_order_only
    def backward(ctx, grad):
        from . import s4

        v, z, w = ctx.saved_tensors
        # torch passes dL/d(conj y) for complex outputs; fastcore's cauchy_backward uses the same
        # convention (documented there), so the result maps through unchanged.
        dv, dw = s4.cauchy_backward(_native(v, "v"), _native(z, "z"), _native(w, "w"),
                                    _native(grad.contiguous(), "grad"), conj=ctx.conj)
        return _tensor(dv), None, _tensor(dw), None


def cauchy(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, *, conj: bool = True) -> torch.Tensor:
    """Differentiable :func:`fastcore.s4.cauchy` in v and w (z is treated as a constant)."""
    return _Cauchy.apply(v, z, w, conj)  # fastcore.s4 checks conj


class _Vandermonde(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, x, L, conj):
        from . import s4

        ctx.save_for_backward(v, x)
        ctx.conj = conj
        return _tensor(s4.vandermonde(_native(v, "v"), _native(x, "x"), L, conj=conj))

    @staticmethod
    @_first_order_only
    def backward(ctx, grad):
        from . import s4

        v, x = ctx.saved_tensors
        # same complex-gradient convention as torch (documented in s4.vandermonde_backward)
        dv, dx = s4.vandermonde_backward(_native(v, "v"), _native(x, "x"),
                                         _native(grad.contiguous(), "grad"), conj=ctx.conj)
        return _tensor(dv), _tensor(dx), None, None


def vandermonde(v: torch.Tensor, x: torch.Tensor, L: int, *, conj: bool = True) -> torch.Tensor:
    """Differentiable :func:`fastcore.s4.vandermonde` in v and x (CPU and CUDA tensors)."""
    return _Vandermonde.apply(v, x, L, conj)  # fastcore.s4 checks L and conj


def _save_with_number(ctx, tensors, value):
    """save_for_backward of the tensor inputs and of ``value`` (dt, D) when it is a tensor or None
    (a number is kept on ctx): saved tensors get autograd's in-place-modification check and no
    reference cycle."""
    ctx.number = None if value is None or isinstance(value, torch.Tensor) else value
    ctx.save_for_backward(*tensors, value if ctx.number is None else None)


def _saved_with_number(ctx):
    *tensors, value = ctx.saved_tensors
    return tensors, (value if ctx.number is None else ctx.number)


def _dt_arg(dt):
    """dt for fastcore.s4: a float for a Python number or a 0-d tensor, else a native array."""
    if isinstance(dt, torch.Tensor):
        _check_exportable(dt, "dt")
        return float(dt) if dt.dim() == 0 else _native(dt, "dt")
    return dt


def _dt_grad(ctx, index, dt, ddt):
    """dt's gradient when autograd wants one (dt a tensor input at position `index`)."""
    if not ctx.needs_input_grad[index]:
        return None
    return torch.as_tensor(ddt, dtype=dt.dtype, device=dt.device).reshape(dt.shape)


class _KernelDiag(torch.autograd.Function):
    @staticmethod
    def forward(ctx, Lambda, B, C, dt, L, method):
        from . import s4

        _save_with_number(ctx, (Lambda, B, C), dt)
        ctx.method = method
        return _tensor(s4.kernel_diag(_native(Lambda, "Lambda"), _native(B, "B"), _native(C, "C"),
                                      _dt_arg(dt), L, method))

    @staticmethod
    @_first_order_only
    def backward(ctx, grad):
        from . import s4

        (Lambda, B, C), dt = _saved_with_number(ctx)
        dl, dB, dC, ddt = s4.kernel_diag_backward(_native(Lambda, "Lambda"), _native(B, "B"), _native(C, "C"),
                                                  _dt_arg(dt), _native(grad.contiguous(), "grad"), ctx.method)
        return _tensor(dl), _tensor(dB), _tensor(dC), _dt_grad(ctx, 3, dt, ddt), None, None


def kernel_diag(Lambda, B, C, dt, L: int, method: str = "zoh") -> torch.Tensor:
    """Differentiable :func:`fastcore.s4.kernel_diag` (the S4D kernel) in Lambda, B, C and dt (a
    tensor dt gets a gradient; a Python float is a constant). Complex gradients follow PyTorch's
    convention; the backward is :func:`fastcore.s4.kernel_diag_backward`."""
    return _KernelDiag.apply(Lambda, B, C, dt, L, method)  # L, method: checked by fastcore.s4


class _KernelDplr(torch.autograd.Function):
    @staticmethod
    def forward(ctx, Lambda, P, B, Ct, dt, L):
        from . import s4

        _save_with_number(ctx, (Lambda, P, B, Ct), dt)
        return _tensor(s4.kernel_dplr(_native(Lambda, "Lambda"), _native(P, "P"), _native(B, "B"),
                                      _native(Ct, "Ct"), _dt_arg(dt), L))

    @staticmethod
    @_first_order_only
    def backward(ctx, grad):
        from . import s4

        (Lambda, P, B, Ct), dt = _saved_with_number(ctx)
        dl, dP, dB, dCt, ddt = s4.kernel_dplr_backward(
            _native(Lambda, "Lambda"), _native(P, "P"), _native(B, "B"), _native(Ct, "Ct"), _dt_arg(dt),
            _native(grad.contiguous(), "grad"))
        return _tensor(dl), _tensor(dP), _tensor(dB), _tensor(dCt), _dt_grad(ctx, 4, dt, ddt), None


def kernel_dplr(Lambda, P, B, Ct, dt, L: int) -> torch.Tensor:
    """Differentiable :func:`fastcore.s4.kernel_dplr` (the S4 kernel) in Lambda, P, B, Ct and dt (a
    tensor dt gets a gradient; a Python float is a constant). Complex gradients follow PyTorch's
    convention; the backward is :func:`fastcore.s4.kernel_dplr_backward`."""
    return _KernelDplr.apply(Lambda, P, B, Ct, dt, L)  # L: checked by fastcore.s4


class _FFTConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, K, D, bidirectional):
        from . import s4

        _save_with_number(ctx, (u, K), D)  # D: an (H,) tensor, a number (a constant) or None
        ctx.bidirectional = bidirectional
        y = s4.fftconv(_native(u, "u"), _native(K, "K"), _d_arg(D), bidirectional=bidirectional)
        return _tensor(y)

    @staticmethod
    @_first_order_only
    def backward(ctx, dy):
        from . import s4

        (u, K), D = _saved_with_number(ctx)
        du, dK, dD = s4.fftconv_backward(_native(u, "u"), _native(K, "K"), _d_arg(D),
                                         _native(dy.contiguous(), "dy"),
                                         bidirectional=ctx.bidirectional)
        dD = _tensor(dD) if isinstance(D, torch.Tensor) else None  # a number is a constant
        return _tensor(du), _tensor(dK), dD, None


def _d_arg(D):
    """D for fastcore.s4.fftconv: a native view of a tensor; a number or None as it is."""
    return _native(D, "D") if isinstance(D, torch.Tensor) else D


def fftconv(u: torch.Tensor, K: torch.Tensor, D: torch.Tensor | float | None = None, *,
            bidirectional: bool = False) -> torch.Tensor:
    """Differentiable :func:`fastcore.s4.fftconv`: y = u ∗ K + D·u along the last axis.

    D, as in the NumPy API: None, an (H,) tensor, or one number for every channel — a Python
    (or NumPy) real number is a constant (no gradient; cast to u's dtype), a 0-d tensor is
    broadcast to the H channels and gets a 0-d gradient."""
    _check_exportable(u, "u")
    if isinstance(D, torch.Tensor):
        _check_exportable(D, "D")
        if D.dim() == 0 and u.dim() == 3:
            D = D.expand(u.shape[1])  # autograd sums the (H,) gradient back to 0-d
    elif D is not None:
        if not isinstance(D, (numbers.Real, np.generic)):
            raise TypeError(f"D: expected a torch.Tensor, a real number or None, got {type(D).__name__}")
        D = check_scalar(D, "D")  # the NumPy API's check (bool, complex, NaN and Inf refused)
    return _FFTConv.apply(u, K, D, bidirectional)  # fastcore.s4 checks bidirectional is a bool


# --- Tiger ---------------------------------------------------------------------------------------

class Tiger(torch.optim.Optimizer):
    """The Tiger optimizer (sign momentum, Lion with β1 = β2) as a ``torch.optim.Optimizer``.

    Every step updates all parameters of all groups that have a gradient in one call of
    :func:`fastcore.tiger.tiger_step` per group. ``grad_accum_steps = k`` hides gradient
    accumulation: ``step()`` is called every micro-step and the parameters change on every k-th.
    Group options: ``lr``, ``beta``, ``weight_decay``, ``grad_accum_steps``, ``shrink_ratio``,
    ``rms_mode``, ``nonfinite``, ``maximize``. The momentum lives in ``state[p]["momentum"]``; the
    micro-step counter in each group's ``"step"`` (saved by ``state_dict``)."""

    def __init__(self, params, lr: float = 1e-3, beta: float = 0.965, weight_decay: float = 0.01,
                 grad_accum_steps: int = 1, shrink_ratio: float = 0.99, rms_mode: str = "tensor",
                 nonfinite: str = "shrink", maximize: bool = False):
        defaults = dict(lr=lr, beta=beta, weight_decay=weight_decay,
                        grad_accum_steps=grad_accum_steps, shrink_ratio=shrink_ratio,
                        rms_mode=rms_mode, nonfinite=nonfinite, maximize=maximize, step=0)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """torch's add_param_group, then the group's options checked by tiger_step's own
        validation (so a bad lr fails here, not at the first step)."""
        from . import tiger

        super().add_param_group(param_group)
        group = self.param_groups[-1]
        tiger.tiger_step([], [], [], **self._step_options(group))

    _OPTION_KEYS = ("lr", "beta", "weight_decay", "grad_accum_steps", "shrink_ratio", "rms_mode",
                    "nonfinite", "maximize", "step")

    def __setstate__(self, state: dict) -> None:
        """torch's load_state_dict (and unpickling) ends here with the new groups and state: each
        group's options (missing ones from the defaults) are checked by tiger_step's validation
        and each momentum's shape against its parameter *before* anything is replaced — torch
        itself loads any values, so a saved maximize="no" was only refused at the next step."""
        from . import tiger

        defaults = state.get("defaults", getattr(self, "defaults", None)) or {}
        per_param = state.get("state", {})
        for gi, group in enumerate(state.get("param_groups", ())):
            for key in self._OPTION_KEYS:
                if key in defaults:
                    group.setdefault(key, defaults[key])
            where = f"state_dict['param_groups'][{gi}]"
            try:
                tiger.tiger_step([], [], [], **self._step_options(group))
            except KeyError as exc:
                raise ValueError(f"{where}: missing option {exc}") from None
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{where}: {exc}") from None
            for i, p in enumerate(group.get("params", ())):
                momentum = per_param.get(p, {}).get("momentum")
                if momentum is not None and (not isinstance(momentum, torch.Tensor)
                                             or momentum.shape != p.shape):
                    got = tuple(momentum.shape) if isinstance(momentum, torch.Tensor) else type(momentum).__name__
                    raise ValueError(f"state_dict['state']: the momentum of {where}['params'][{i}] must be a "
                                     f"tensor of the parameter's shape {tuple(p.shape)}, got {got}")
        super().__setstate__(state)

    @staticmethod
    def _step_options(group: dict) -> dict:
        return dict(step=group["step"], lr=group["lr"], beta=group["beta"],
                    weight_decay=group["weight_decay"], grad_accum_steps=group["grad_accum_steps"],
                    shrink_ratio=group["shrink_ratio"], rms_mode=group["rms_mode"],
                    nonfinite=group["nonfinite"], maximize=group["maximize"])

    def _check_step_inputs(self) -> None:
        """Every group's options (an lr scheduler may have written a bad one) and every parameter
        and gradient to be stepped, before any group is updated or any momentum is created."""
        from . import tiger

        for gi, group in enumerate(self.param_groups):
            tiger.tiger_step([], [], [], **self._step_options(group))
            for i, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                name = f"param_groups[{gi}]['params'][{i}]"
                if p.grad.is_sparse:
                    raise TypeError(f"{name}.grad: sparse gradients are not supported by Tiger (densify "
                                    f"them, or use torch.optim.SparseAdam for sparse embeddings)")
                _check_exportable(p, name)
                _check_exportable(p.grad, f"{name}.grad")

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        from . import tiger

        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_step_inputs()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                group["step"] += 1
                continue
            moms = []
            for p in params:
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p, memory_format=torch.contiguous_format)
                moms.append(state["momentum"])
            # The kernels update C-contiguous arrays in place; other layouts (channels_last conv
            # weights, transposed or strided views) go through a contiguous copy written back after.
            staged = [p if p.is_contiguous() else p.contiguous() for p in params]
            tiger.tiger_step(
                [_native(q, "params", written=True) for q in staged],
                [_native(p.grad.contiguous(), "grads") for p in params],
                [_native(m, "moms", written=True) for m in moms],
                **self._step_options(group))
            for p, q in zip(params, staged):
                if q is p:
                    # written through a DLPack view, which autograd does not see: bump the version
                    # so a graph that saved p raises (as after torch.optim's in-place updates)
                    torch.autograd.graph.increment_version(p)
                else:
                    p.copy_(q)  # (copy_ bumps the version itself)
            group["step"] += 1
        return loss


# --- integrated gradients ------------------------------------------------------------------------

# Layers whose training mode changes what a model computes row by row (Dropout: random masks;
# BatchNorm: batch statistics, which also mix the rows, and running-statistics updates).
_TRAINING_SENSITIVE = (torch.nn.modules.dropout._DropoutNd, torch.nn.modules.batchnorm._BatchNorm)


def _training_mode_warning(module: Any) -> Callable[[], None]:
    """A function that warns (UserWarning, at most once) when one of the model's Dropout or
    BatchNorm layers is in training mode at the time it is called. The layers are found once;
    each call then costs a look at their ``training`` flags."""
    layers = ([m for m in module.modules() if isinstance(m, _TRAINING_SENSITIVE)]
              if isinstance(module, torch.nn.Module) else [])
    warned = False

    def warn() -> None:
        nonlocal warned
        if warned or not layers:
            return
        training = sorted({type(m).__name__ for m in layers if m.training})
        if training:
            warned = True
            warnings.warn(f"ig_grad_fn: the model's {', '.join(training)} layer(s) are in training mode "
                          f"(their .training is True): Dropout makes the gradients random, BatchNorm "
                          f"uses the statistics of each batch of path points and updates its running "
                          f"statistics; call module.eval() first (ig_grad_fn does not change the mode)",
                          UserWarning, stacklevel=3)

    return warn


def ig_grad_fn(module: torch.nn.Module, output: str = "logit", *, device=None,
               dtype=None) -> Callable:
    """A gradient callable ``f(points, target) -> grads`` for
    :func:`fastcore.ig.integrated_gradients` from a PyTorch model.

    ``points`` arrive as NumPy (or CuPy) arrays and are viewed as tensors without copying;
    ``output`` picks the scalar per row whose gradient is taken: the model's output
    ("logit"), its softmax ("softmax") or log-softmax ("log_softmax"), at column ``target``
    (or the only column when target is None). The gradient comes back in the points' kind (and
    on their device when ``device`` runs the model elsewhere). A model whose output does not
    depend on its input (a constant, or only parameters) has a zero gradient: zeros come back.

    The model's mode is not changed: call ``module.eval()`` first. In training mode Dropout makes
    the gradients random and BatchNorm normalises with the statistics of the batch of path points
    (the rows then interact) and updates its running statistics. A ``UserWarning`` is issued,
    once per callable, when the model has Dropout or BatchNorm layers in training mode."""
    if output not in ("logit", "softmax", "log_softmax"):
        raise ValueError(f"output: expected one of 'logit', 'softmax', 'log_softmax', got {output!r}")
    if not callable(module):
        raise TypeError(f"module: expected a torch.nn.Module (or a callable on tensors), got "
                        f"{type(module).__name__}")
    if isinstance(module, torch.nn.Module) and any(
            t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
        raise ValueError("module: has parameters or buffers on the meta device, which hold no data; "
                         "materialize them (module.to_empty(device='cpu')) and load the weights first")
    warn_training = _training_mode_warning(module)
    if device is not None:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda', got {device!r}") from None
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"device: expected a CPU or CUDA device for the model, got '{device}'")

    def scalar_outputs(inputs: torch.Tensor, target) -> torch.Tensor:
        out = module(inputs)
        if output == "softmax":
            out = torch.softmax(out, dim=-1)
        elif output == "log_softmax":
            out = torch.log_softmax(out, dim=-1)
        if out.ndim == 1:
            return out
        if target is None:
            if out.shape[-1] != 1:
                raise ValueError(f"target: the model has {out.shape[-1]} outputs; give a target")
            return out[:, 0]
        index = torch.as_tensor(np.asarray(target) if isinstance(target, np.ndarray) else target,
                                device=out.device, dtype=torch.long)
        if index.ndim == 0:  # one class for every row (gather would take row 0 only)
            index = index.expand(out.shape[0])
        if index.shape != (out.shape[0],):
            raise ValueError(f"target: expected a class index or one per row ({out.shape[0]},), "
                             f"got shape {tuple(index.shape)}")
        return out.gather(1, index.reshape(-1, 1))[:, 0]

    def grad_fn(points, target=None):
        warn_training()
        given = torch.from_dlpack(points)
        inputs = given if device is None and dtype is None else given.to(device=device, dtype=dtype)
        inputs = inputs.detach().requires_grad_(True)
        with torch.enable_grad():
            values = scalar_outputs(inputs, target)
            grads = None
            if values.requires_grad:  # False when no parameter or input reaches the output
                (grads,) = torch.autograd.grad(values.sum(), inputs, allow_unused=True)
        if grads is None:  # the output does not depend on the input: its gradient is zero
            grads = torch.zeros_like(inputs)
        grads = grads.to(device=given.device, dtype=given.dtype)
        return _native(grads.contiguous(), "grads")

    def forward_fn(points, target=None):
        warn_training()
        given = torch.from_dlpack(points)
        with torch.no_grad():
            inputs = given if device is None and dtype is None else given.to(device=device, dtype=dtype)
            values = scalar_outputs(inputs, target).to(device=given.device, dtype=given.dtype)
        return _native(values.contiguous(), "values")

    grad_fn.forward_fn = forward_fn
    return grad_fn
