"""cpp/common: the vectorised exp against NumPy's exp (memory floor: 4 B read + 4 B written per
float32 element)."""

from __future__ import annotations

import numpy as np

from fastcore import _cpu
from harness import Case, max_rel_error


def cases(ctx):
    out = []
    n = ctx.size(1 << 24, 1 << 20)
    rng = np.random.default_rng(0)
    for dtype, fn in ((np.float32, _cpu._testing.exp_f32), (np.float64, _cpu._testing.exp_f64)):
        x = rng.uniform(-80, 80, n).astype(dtype)
        y = np.empty_like(x)
        y_np = np.empty_like(x)
        out.append(Case(
            family="core",
            name=f"exp {np.dtype(dtype).name} n={n}",
            compiled=lambda fn=fn, x=x, y=y: fn(x, y),
            peers={"numpy.exp": lambda x=x, y_np=y_np: np.exp(x, out=y_np)},
            bytes=2 * x.nbytes,
            check=lambda x=x, y=y: max_rel_error(y, np.exp(x.astype(np.float64))),
        ))
    return out
