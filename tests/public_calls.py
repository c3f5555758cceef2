"""A catalogue of small, valid calls of every public function, with their expected results.

The robustness tests (test_immutability.py, test_concurrency.py, test_memory.py) run every entry:
inputs must not change, concurrent calls must equal serial ones bitwise, and repeated calls must
leave memory flat. Each family contributes a builder ``<family>_calls(rng) -> list[Call]``;
``all_calls`` collects them. Inputs are fresh random draws (odd sizes, both CPU dtypes).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass
class Call:
    """fn(*args, **kwargs). ``mutable`` names the arguments the function documents as modified in
    place (``out``, optimizer state) by position (int) or keyword (str)."""

    name: str
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    mutable: tuple = ()

    def fresh(self) -> "Call":
        """A copy whose array arguments are private copies (for calls that write in place)."""
        return Call(self.name, self.fn, copy.deepcopy(self.args), copy.deepcopy(self.kwargs),
                    self.mutable)

    def invoke(self) -> Any:
        return self.fn(*self.args, **self.kwargs)

    def outcome(self) -> list[np.ndarray]:
        """Run on private copies; every array the call produced or modified, flattened."""
        call = self.fresh()
        result = call.invoke()
        produced = arrays_in(result)
        for key in call.mutable:
            produced += arrays_in(call.args[key] if isinstance(key, int) else call.kwargs[key])
        return produced

    def immutable_inputs(self) -> list[np.ndarray]:
        inputs = [a for i, a in enumerate(self.args) if i not in self.mutable]
        inputs += [v for k, v in self.kwargs.items() if k not in self.mutable]
        return arrays_in(inputs)


def arrays_in(value: Any) -> list[np.ndarray]:
    """Every NumPy array inside value (tuples, lists, dicts, dataclasses, objects' __dict__)."""
    found: list[np.ndarray] = []

    def walk(v, depth=0):
        if depth > 6:
            return
        if isinstance(v, np.ndarray):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            for item in v:
                walk(item, depth + 1)
        elif isinstance(v, dict):
            for item in v.values():
                walk(item, depth + 1)
        elif hasattr(v, "__dataclass_fields__"):
            for name in v.__dataclass_fields__:
                walk(getattr(v, name), depth + 1)

    walk(value)
    return found


def fingerprint(arrays: list[np.ndarray]) -> list[tuple]:
    """Content hash plus layout of each array (a change of values, shape, strides or flags)."""
    return [(a.shape, a.strides, a.dtype.str, a.flags.writeable,
             hashlib.sha256(np.ascontiguousarray(a).view(np.uint8).tobytes()).hexdigest())
            for a in arrays]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and \
        np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


BUILDERS: list[Callable[[np.random.Generator], list[Call]]] = []


def builder(fn):
    BUILDERS.append(fn)
    return fn


def all_calls(seed: int = 20261123) -> list[Call]:
    rng = np.random.default_rng(seed)
    return [call for build in BUILDERS for call in build(rng)]


# --- families ------------------------------------------------------------------------------------

@builder
def activations_calls(rng):
    from fastcore import activations as A

    calls = []
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal((5, 37)) * 2).astype(dtype)
        dy = rng.standard_normal((5, 37)).astype(dtype)
        mask = rng.random((5, 37)) > 0.3
        target = rng.integers(0, 37, size=5)
        tag = np.dtype(dtype).name
        for name in ("softmax", "log_softmax", "sparsemax", "entmax15"):
            fn = getattr(A, name)
            calls.append(Call(f"{name}[{tag}]", fn, (x,), {"scale": 1.3, "mask": mask}))
            calls.append(Call(f"{name}[{tag},axis0]", fn, (x,), {"axis": 0}))
            calls.append(Call(f"{name}_backward[{tag}]", getattr(A, name + "_backward"), (fn(x), dy)))
            out = np.empty_like(x)
            calls.append(Call(f"{name}[{tag},out]", fn, (x,), {"out": out}, mutable=("out",)))
        calls.append(Call(f"entmax_bisect[{tag}]", A.entmax_bisect, (x, 1.7)))
        calls.append(Call(f"entmax_bisect_backward[{tag}]", A.entmax_bisect_backward,
                          (A.entmax_bisect(x, 1.7), dy, 1.7)))
        calls.append(Call(f"topk_softmax[{tag}]", A.topk_softmax, (x, 4)))
        for name in ("softmax_cross_entropy", "sparsemax_loss", "entmax15_loss"):
            calls.append(Call(f"{name}[{tag}]", getattr(A, name), (x, target)))
    return calls


@builder
def tiger_calls(rng):
    from fastcore import tiger

    calls = []
    for dtype in (np.float32, np.float64):
        shapes = [(3, 5), (17,), (1,)]
        params = [rng.standard_normal(s).astype(dtype) for s in shapes]
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        moms = [0.1 * rng.standard_normal(s).astype(dtype) for s in shapes]
        tag = np.dtype(dtype).name
        calls.append(Call(f"tiger_step[{tag}]", tiger.tiger_step, (params, grads, moms),
                          {"step": 0, "lr": 1e-2, "rms_mode": "tensor"}, mutable=(0, 2)))
        calls.append(Call(f"tiger_step[{tag},accumulate]", tiger.tiger_step, (params, grads, moms),
                          {"step": 0, "lr": 1e-2, "grad_accum_steps": 4}, mutable=(0, 2)))
    return calls


@builder
def monarch_calls(rng):
    from fastcore import monarch as M

    calls = []
    for dtype in (np.float32, np.float64, np.complex64, np.complex128):
        w1 = rng.standard_normal((3, 5, 7)).astype(dtype)
        w2 = rng.standard_normal((5, 2, 3)).astype(dtype)
        x = rng.standard_normal((9, 21)).astype(dtype)
        dy = rng.standard_normal((9, 10)).astype(dtype)
        tag = np.dtype(dtype).name
        calls.append(Call(f"monarch.multiply[{tag}]", M.multiply, (x, w1, w2)))
        calls.append(Call(f"monarch.multiply_adjoint[{tag}]", M.multiply_adjoint, (dy, w1, w2)))
        calls.append(Call(f"monarch.multiply_backward[{tag}]", M.multiply_backward, (x, w1, w2, dy)))
    A = rng.standard_normal((12, 12))
    calls.append(Call("monarch.project", M.project, (A,), {"nblocks": 3}))
    sq1 = rng.standard_normal((3, 4, 4)) + 3 * np.eye(4)
    sq2 = rng.standard_normal((4, 3, 3)) + 3 * np.eye(3)
    calls.append(Call("monarch.solve", M.solve, (sq1, sq2, rng.standard_normal((2, 12)))))
    return calls


@builder
def s4_calls(rng):
    from fastcore import s4

    calls = []
    for cdt, rdt in ((np.complex64, np.float32), (np.complex128, np.float64)):
        tag = np.dtype(rdt).name
        v = (rng.standard_normal((3, 5)) + 1j * rng.standard_normal((3, 5))).astype(cdt)
        w = (-np.abs(rng.standard_normal((3, 5))) + 1j * rng.standard_normal((3, 5))).astype(cdt)
        z = np.exp(1j * np.linspace(0.1, 3.0, 7)).astype(cdt)
        calls.append(Call(f"s4.cauchy[{tag}]", s4.cauchy, (v, z, w)))
        calls.append(Call(f"s4.cauchy_backward[{tag}]", s4.cauchy_backward,
                          (v, z, w, (rng.standard_normal((3, 7)) + 0j).astype(cdt))))
        u = rng.standard_normal((2, 3, 19)).astype(rdt)
        K = rng.standard_normal((3, 11)).astype(rdt)
        D = rng.standard_normal(3).astype(rdt)
        calls.append(Call(f"s4.fftconv[{tag}]", s4.fftconv, (u, K, D)))
        calls.append(Call(f"s4.fftconv_backward[{tag}]", s4.fftconv_backward, (u, K, D, u)))
        Lam = (-0.5 + 1j * np.arange(5.0)).astype(cdt)[None].repeat(3, 0)
        B = np.ones((3, 5), cdt)
        C = (rng.standard_normal((3, 5)) + 1j * rng.standard_normal((3, 5))).astype(cdt)
        dt = np.full(3, 0.05, rdt)
        calls.append(Call(f"s4.kernel_diag[{tag}]", s4.kernel_diag, (Lam, B, C, dt, 33)))
        gK = rng.standard_normal((3, 33)).astype(rdt)
        calls.append(Call(f"s4.kernel_diag_backward[{tag}]", s4.kernel_diag_backward, (Lam, B, C, dt, gK)))
        P = (0.3 * rng.standard_normal((3, 5)) + 0j).astype(cdt)
        calls.append(Call(f"s4.kernel_dplr[{tag}]", s4.kernel_dplr, (Lam, P, B, C, dt, 33)))
        calls.append(Call(f"s4.kernel_dplr_backward[{tag}]", s4.kernel_dplr_backward, (Lam, P, B, C, dt, gK)))
    return calls


@builder
def ig_calls(rng):
    from fastcore import ig

    calls = [Call("ig.quadrature", ig.quadrature, (16, "gausslegendre"))]
    for dtype in (np.float32, np.float64):
        tag = np.dtype(dtype).name
        layers = [(rng.standard_normal((6, 9)).astype(dtype), rng.standard_normal(6).astype(dtype)),
                  (rng.standard_normal((3, 6)).astype(dtype), rng.standard_normal(3).astype(dtype))]
        model = ig.MLP(layers, activation="tanh", output="softmax")
        x = rng.standard_normal((4, 9)).astype(dtype)
        base = rng.standard_normal((4, 9)).astype(dtype)
        target = np.array([0, 2, 1, 2])
        calls.append(Call(f"ig.integrated_gradients[{tag},fused]", ig.integrated_gradients, (model, x, base),
                          {"target": target, "n_steps": 12, "return_delta": True}))
        calls.append(Call(f"ig.integrated_gradients[{tag},generic]", ig.integrated_gradients,
                          (model.grad, x, base), {"target": target, "n_steps": 12, "chunk_size": 5}))
        calls.append(Call(f"ig.expected_gradients[{tag}]", ig.expected_gradients, (model, x, base),
                          {"n_samples": 8, "rng": 7, "target": target}))
    return calls
