"""Fixtures for the LanceDB adapter tests: tiny random models saved to a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import make_default_width_model, make_tiny_model


@pytest.fixture(scope="module")
def tiny64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64-d random tiny model (no Matryoshka structure: for mechanics, not recall)."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny64", dim=64, seed=1)


@pytest.fixture(scope="module")
def tiny32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-d random tiny model (another model's dimensions)."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny32", dim=32, seed=2)


@pytest.fixture(scope="module")
def tiny64_default24(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64-d model whose config_sentence_transformers.json stores a default truncate_dim of 24."""
    return make_default_width_model(tmp_path_factory.mktemp("models") / "tiny64_default24", seed=5)
