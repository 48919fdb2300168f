"""Shared helpers for the langchain-matryo tests."""

from __future__ import annotations

import pytest

from matryo import DEFAULT_MODEL_PATH

HAS_DEFAULT_MODEL = any((DEFAULT_MODEL_PATH / name).exists() for name in ("modules.json", "config.json"))
needs_default_model = pytest.mark.skipif(
    not HAS_DEFAULT_MODEL, reason="the embedded default model (src/matryo/default_model/) is not there yet"
)
