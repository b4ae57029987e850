"""The examples in the library's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["learnedidx", "learnedidx.arrays", "learnedidx.rmi", "learnedidx.pgm", "learnedidx.radix_spline", "learnedidx.dynamic.index",
           "learnedidx.persist", "learnedidx.interface", "learnedidx.testing.conformance", "learnedidx.testing.stateful",
           "learnedidx.testing.strategies"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples any more: drop it from MODULES"
    assert result.failed == 0
