"""Fixtures for the langchain-matryo tests: a tiny model built in code, shared by the session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import make_default_width_model, make_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64-d random tiny model shared by the whole session (read-only)."""
    return make_tiny_model(tmp_path_factory.mktemp("langchain") / "tiny64", dim=64, seed=7)


@pytest.fixture(scope="session")
def default24_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64-d tiny model whose config_sentence_transformers.json stores a default truncate_dim of 24."""
    return make_default_width_model(tmp_path_factory.mktemp("langchain") / "tiny64_default24", seed=8)
