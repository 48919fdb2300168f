"""The docstring examples of the public classes run, with the embedded default model, and print what they show."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import matryo.encoder
import matryo.index


@pytest.mark.parametrize("module", [matryo.encoder, matryo.index], ids=lambda module: module.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
