"""fastai's unrelated ``fastcore`` distribution installs a package with the same import name.

Installing both into one environment makes one overwrite the other's files. ``import fastcore``
warns when the other distribution's metadata is present, so the clash is seen at once rather
than as a strange AttributeError later.
"""

from __future__ import annotations

import warnings
from importlib import metadata


def fastai_fastcore_version() -> str | None:
    """Version of fastai's 'fastcore' distribution when it is installed, else None."""
    try:
        dist = metadata.distribution("fastcore")
    except metadata.PackageNotFoundError:
        return None
    # Our own distribution is 'fastcore-kernels'; normalisation never maps it to 'fastcore'.
    return dist.version


def warn_if_fastai_fastcore_installed() -> None:
    version = fastai_fastcore_version()
    if version is not None:
        warnings.warn(
            f"fastai's 'fastcore' distribution ({version}) is installed in this environment and "
            "uses the same import name as fastcore-kernels; their files overwrite each other. "
            "Use separate virtual environments (pip uninstall fastcore removes fastai's).",
            RuntimeWarning,
            stacklevel=3,
        )
