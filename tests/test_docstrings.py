"""The Examples in the public docstrings run: every ``>>>`` line of the public modules is executed
by doctest and its printed output compared (so a docstring cannot drift from the behaviour it
shows). Every public function and class must also carry a docstring."""

from __future__ import annotations

import doctest
import importlib
import inspect

import numpy as np
import pytest

MODULES = ["fastcore", "fastcore.activations", "fastcore.monarch", "fastcore.s4", "fastcore.tiger",
           "fastcore.ig", "fastcore.torch"]


def _load(name):
    if name == "fastcore.torch":
        pytest.importorskip("torch")
    return importlib.import_module(name)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = _load(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    # ELLIPSIS for addresses and long reprs; NORMALIZE_WHITESPACE for NumPy's line wrapping.
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name) if t.examples
             and (t.name == name or t.name.startswith(name + "."))]
    # Printing at a fixed precision keeps the shown digits independent of NumPy's defaults.
    with np.printoptions(precision=4, suppress=True, legacy=False):
        for test in tests:
            test.globs.setdefault("np", np)
            runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} docstring examples in {name} failed"


@pytest.mark.parametrize("name", MODULES)
def test_public_names_are_documented(name):
    module = _load(name)
    undocumented = [attr for attr in getattr(module, "__all__", [])
                    if (inspect.isfunction(getattr(module, attr)) or inspect.isclass(getattr(module, attr)))
                    and not inspect.getdoc(getattr(module, attr))]
    assert not undocumented, f"{name}: no docstring for {undocumented}"
