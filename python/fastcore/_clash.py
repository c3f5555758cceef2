"""Distributions that install the same ``fastcore`` import package.

* fastai's unrelated ``fastcore`` has the same import name;
* this project's own variants: ``fastcore-kernels`` (CPU, or CUDA from a source build) and the
  CUDA wheels ``fastcore-kernels-cu12`` / ``fastcore-kernels-cu13``.

Two of them in one environment overwrite each other's files, silently. ``import fastcore`` warns
when it finds more than one, so the clash is seen at once rather than as a strange error later.
"""

from __future__ import annotations

import warnings
from importlib import metadata

# Our own distribution names: the CPU/source build and the CUDA wheel variants (see README,
# "Wheels"). tools/set_variant.py renames the distribution when building a CUDA wheel.
OWN_DISTRIBUTIONS = ("fastcore-kernels", "fastcore-kernels-cu12", "fastcore-kernels-cu13")
FASTAI_DISTRIBUTION = "fastcore"


def _version(name: str) -> str | None:
    try:
        return metadata.distribution(name).version
    except metadata.PackageNotFoundError:
        return None


def fastai_fastcore_version() -> str | None:
    """Version of fastai's 'fastcore' distribution when it is installed, else None."""
    return _version(FASTAI_DISTRIBUTION)


def installed_variants() -> dict[str, str]:
    """{distribution name: version} of this project's variants that are installed."""
    found = {}
    for name in OWN_DISTRIBUTIONS:
        v = _version(name)
        if v is not None:
            found[name] = v
    return found


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
    variants = installed_variants()
    if len(variants) > 1:
        listed = ", ".join(f"{k} {v}" for k, v in variants.items())
        warnings.warn(
            f"several builds of fastcore are installed at once ({listed}); they share the "
            "'fastcore' package directory, so the files of one overwrite the other. Uninstall all "
            "but one (e.g. pip uninstall fastcore-kernels) and reinstall the one you want.",
            RuntimeWarning,
            stacklevel=3,
        )
