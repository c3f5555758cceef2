"""Float64 NumPy reference implementations: the oracle for tests and benchmarks.

Each family has a module here (``fastcore.reference.<family>``) written directly from the
formulas in the papers, favouring clarity and accuracy over speed: float64 (complex128)
arithmetic whatever the input dtype, no fused tricks. Compiled kernels are tested against these.
"""

from __future__ import annotations

import numpy as np

from . import activations, monarch, s4, tiger  # noqa: E402,F401

__all__ = ["exp", "activations", "monarch", "s4", "tiger"]


def exp(x):
    """Reference for the vectorised exp of cpp/common/vmath.hpp: NumPy's (C library) exp in
    float64."""
    return np.exp(np.asarray(x, dtype=np.float64))
from . import ig  # noqa: E402,F401

__all__ += ["ig"]
