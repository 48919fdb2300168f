"""Long (> _LONG_TEXT_CHARS) texts mixed with short ones over several batches keep their rows."""

from __future__ import annotations

import numpy as np
from tests.conftest import make_tiny_model

import matryo.encoder as encoder_module
from matryo import StaticEncoder


def test_long_and_short_texts_mixed_over_several_batches_land_in_their_rows(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(encoder_module, "_LONG_TEXT_CHARS", 30)  # texts over 30 characters take the long path
    enc = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "m"))
    texts = ["cat", "the dog read a gzip file by the river bank", "tree", "house", "fish", "bird", "water car"]
    one_by_one = np.stack([enc.encode(t) for t in texts])
    for batch_size in (1, 2, 3, 2048):
        np.testing.assert_allclose(enc.encode(texts, batch_size=batch_size), one_by_one, atol=1e-6)
