"""A table exactly one row short of the tokenizer's highest id + 1 must be refused at load."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import make_tokenizer

from matryo import StaticEncoder
from matryo.errors import ModelFormatError


def test_a_table_one_row_short_is_refused_at_load_not_at_encode() -> None:
    tokenizer = make_tokenizer()
    rows = max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1
    table = np.ones((rows - 1, 4), np.float32)
    with pytest.raises(ModelFormatError, match=rf"{rows - 1} rows.*at least {rows} rows"):
        StaticEncoder(table, tokenizer)
    StaticEncoder(np.ones((rows, 4), np.float32), tokenizer)  # exactly enough rows loads
