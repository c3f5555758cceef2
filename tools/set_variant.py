#!/usr/bin/env python
"""Rename the distribution for a CUDA wheel variant before building it.

    python tools/set_variant.py cu13     # name = "fastcore-kernels-cu13" (CUDA 13 wheels)
    python tools/set_variant.py cpu      # name = "fastcore-kernels" (the default)

The import package stays `fastcore`; only the distribution name changes, so pip treats the CPU
and CUDA builds as different projects and `import fastcore` warns when two are installed
(python/fastcore/_clash.py). CMake refuses to build a -cuXX variant without the CUDA module.
Used by the cibuildwheel configuration in pyproject.toml (before-build); edits pyproject.toml in
place, so run it on a throw-away checkout.
"""

from __future__ import annotations

import pathlib
import re
import sys

VARIANTS = {"cpu": "fastcore-kernels", "cu12": "fastcore-kernels-cu12", "cu13": "fastcore-kernels-cu13"}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in VARIANTS:
        print(f"usage: set_variant.py {{{'|'.join(VARIANTS)}}}", file=sys.stderr)
        return 2
    path = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
    text = path.read_text()
    new, n = re.subn(r'(?m)^name = "fastcore-kernels(-cu\d+)?"$', f'name = "{VARIANTS[argv[0]]}"', text)
    if n != 1:
        print("pyproject.toml: could not find the [project] name line", file=sys.stderr)
        return 1
    path.write_text(new)
    print(f"distribution name set to {VARIANTS[argv[0]]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
