"""Exception types of fastcore (importable without any compiled module)."""

__all__ = ["CudaError", "BackendUnavailableError"]


class CudaError(RuntimeError):
    """A CUDA runtime error from fastcore._cuda; the message carries CUDA's error name and text."""


class BackendUnavailableError(RuntimeError):
    """The array's device has no usable fastcore backend (e.g. a CuPy array but no GPU or no
    fastcore._cuda in this build)."""
