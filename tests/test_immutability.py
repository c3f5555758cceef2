"""Inputs are never modified unless documented (``out=``, optimizer state): every public call of
the catalogue (public_calls.py) hashes its inputs before and after."""

from __future__ import annotations

import pytest

from public_calls import all_calls, fingerprint

CALLS = [c for c in all_calls() if c.immutable_inputs()]   # calls taking array inputs


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_inputs_are_not_modified(call):
    call = call.fresh()
    inputs = call.immutable_inputs()
    before = fingerprint(inputs)
    call.invoke()
    assert fingerprint(inputs) == before, f"{call.name} modified an input it does not document"
