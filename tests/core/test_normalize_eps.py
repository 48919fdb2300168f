"""Normalisation uses torch's eps (1e-12): a vector with a small but non-zero norm is unit length."""

from __future__ import annotations

import numpy as np
from tests.conftest import make_tokenizer

from matryo import StaticEncoder


def test_a_model_with_tiny_values_still_gives_unit_vectors() -> None:
    tokenizer = make_tokenizer()
    rows = tokenizer.get_vocab_size(with_added_tokens=True)
    table = np.random.default_rng(0).standard_normal((rows, 16)).astype(np.float32) * 1e-7  # norms ~4e-7
    vectors = StaticEncoder(table, tokenizer).encode(["the cat", "read a gzip file"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
