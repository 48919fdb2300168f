from __future__ import annotations

from pathlib import Path

from tests.conftest import make_tiny_model

from matryo.cache import clear_encoder_cache, load_encoder


def test_same_config_returns_the_same_encoder(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    clear_encoder_cache()
    a = load_encoder(folder)
    assert load_encoder(str(folder)) is a
    assert load_encoder(folder, max_length=4) is not a
    assert load_encoder(folder, max_length=4).max_length == 4
    other = make_tiny_model(tmp_path / "n", seed=1)
    assert load_encoder(other) is not a
    clear_encoder_cache()
    assert load_encoder(folder) is not a
