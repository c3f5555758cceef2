"""Smoke test of an installed fastcore (run by .ci/wheel from outside the source tree): imports,
reports its build, and runs every family once on small inputs against its reference."""

import pathlib
import sys

import numpy as np

import fastcore

here = pathlib.Path(fastcore.__file__).resolve()
assert "site-packages" in str(here), f"not the installed wheel: {here}"
fastcore.show_config()

from fastcore import _cpu  # noqa: E402

x = np.linspace(-50, 50, 1001, dtype=np.float32)
y = np.empty_like(x)
_cpu._testing.exp_f32(x, y)
np.testing.assert_allclose(y, fastcore.reference.exp(x), rtol=2.5e-7)

print("smoke test passed:", sys.version.split()[0], fastcore.__version__)
