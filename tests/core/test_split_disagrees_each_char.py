"""Every character Python's str.split() breaks on but BERT's normalizer deletes (joining the words
around it) keeps a long text off the word-cache path, each one alone (the suite only tests them all together)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import make_tiny_model

import matryo.encoder as encoder_module
from matryo import StaticEncoder


@pytest.mark.parametrize("char", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85"])
def test_a_long_text_joined_by_one_deleted_whitespace_char_matches_the_whole_text(tmp_path, monkeypatch, char) -> None:
    enc = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "m"))
    assert f"cat{char}dog".split() == ["cat", "dog"]  # Python splits here; BERT's clean_text deletes the character
    monkeypatch.setattr(encoder_module, "_LONG_TEXT_CHARS", 40)
    text = f"the cat{char}dog read a file " * 20
    ids = enc.tokenizer.encode(text, add_special_tokens=False).ids
    expected = enc.table[ids].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(enc.encode(text, normalize=False), expected, rtol=1e-5, atol=1e-6)
