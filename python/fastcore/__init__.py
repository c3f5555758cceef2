"""fastcore: compiled CPU/CUDA kernels for machine-learning research code.

NumPy arrays run on the C++ kernels (``fastcore._cpu``), CuPy arrays on the CUDA kernels
(``fastcore._cuda``); every kernel has a float64 NumPy reference in ``fastcore.reference``.

Not to be confused with fastai's ``fastcore`` package, which has the same import name: the
distribution of this one is ``fastcore-kernels``, and the two cannot share an environment.
"""

from __future__ import annotations

from ._clash import warn_if_fastai_fastcore_installed as _warn_if_fastai_fastcore_installed
from ._config import (
    __version__,
    available_simd_levels,
    config,
    get_num_threads,
    get_simd_level,
    num_threads,
    set_num_threads,
    set_simd_level,
    show_config,
    simd_level,
)
from ._backend import cuda_available
from ._errors import BackendUnavailableError, CudaError
from . import reference
from . import activations, ig, monarch, s4, tiger
from .activations import entmax15, entmax_bisect, log_softmax, softmax, sparsemax, topk_softmax
from .ig import integrated_gradients
from .monarch import MonarchLinear
from .s4 import fftconv, kernel_diag, kernel_dplr
from .tiger import Tiger, tiger_step

__all__ = [
    "__version__",
    "show_config",
    "config",
    "get_num_threads",
    "set_num_threads",
    "num_threads",
    "get_simd_level",
    "set_simd_level",
    "simd_level",
    "available_simd_levels",
    "cuda_available",
    "CudaError",
    "BackendUnavailableError",
    "reference",
    "activations",
    "softmax",
    "log_softmax",
    "sparsemax",
    "entmax15",
    "entmax_bisect",
    "topk_softmax",
    "monarch",
    "MonarchLinear",
    "s4",
    "kernel_dplr",
    "kernel_diag",
    "fftconv",
    "tiger",
    "Tiger",
    "tiger_step",
    "ig",
    "integrated_gradients",
]

_warn_if_fastai_fastcore_installed()
from ._config import _warn_about_environment  # noqa: E402

_warn_about_environment()
del _warn_about_environment
