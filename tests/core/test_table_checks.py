"""Boundaries of the constructor's table checks: E02 (a table of width 0 is refused) and E40 (the non-finite check,
done in row blocks, names the right token ids past the first block)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import make_tokenizer

import matryo.encoder as encoder_module
from matryo import StaticEncoder
from matryo.errors import ModelFormatError


def _rows() -> int:
    return make_tokenizer().get_vocab_size(with_added_tokens=True)


def test_a_table_without_columns_is_refused() -> None:
    with pytest.raises(ModelFormatError, match=r"dim >= 1, found shape \(\d+, 0\)"):
        StaticEncoder(np.zeros((_rows(), 0), np.float32), make_tokenizer())


def test_non_finite_rows_past_the_first_block_are_named_by_their_token_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_module, "_FINITE_BLOCK", 16)  # 8192 in production: a vocabulary of 30k has 4 blocks
    table = np.ones((_rows(), 4), np.float32)
    table[3, 0] = np.nan
    table[37, 2] = np.inf
    with pytest.raises(ModelFormatError, match=r"2 rows holding NaN or infinity \(token ids 3, 37\)"):
        StaticEncoder(table, make_tokenizer())
