"""The fingerprint ("equal fingerprints mean identical vectors") covers the tokenizer, not only the table.

A DB folder or a LanceDB table compares fingerprints to refuse a model that would embed differently; the same table
with another tokenizer setting (a max_length cut) embeds long texts differently.
"""

from __future__ import annotations

import numpy as np
from tests.conftest import make_tiny_model

from matryo import StaticEncoder


def test_same_table_other_token_cut_has_another_fingerprint(tmp_path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    full = StaticEncoder.from_pretrained(folder)
    cut = StaticEncoder.from_pretrained(folder, max_length=2)
    text = "the cat read a gzip file"
    assert not np.allclose(full.encode(text), cut.encode(text))  # they embed differently...
    assert full.fingerprint != cut.fingerprint  # ...so their fingerprints must differ
    assert StaticEncoder.from_pretrained(folder, max_length=2).fingerprint == cut.fingerprint
