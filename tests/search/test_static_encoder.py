"""Two-stage search with a real (tiny, random) StaticEncoder from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from matryo.encoder import StaticEncoder
from matryo.index import NumpyIndex
from matryo.search import Encoder, two_stage_search
from matryo.vectors import truncate

WORDS = "cat dog bird fish tree house car road river city water fire earth wind light dark".split()


@pytest.fixture
def static_encoder(tiny_model: Path) -> StaticEncoder:
    return StaticEncoder.from_pretrained(str(tiny_model))


def _corpus(n: int = 200) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 6)))) for _ in range(n)]
    return [f"d{i}" for i in range(n)], texts


def test_static_encoder_satisfies_protocol(static_encoder: StaticEncoder) -> None:
    encoder: Encoder = static_encoder  # checked by mypy as well
    assert encoder.dim == 64


def test_truncated_query_equals_encoder_truncation(static_encoder: StaticEncoder) -> None:
    full = static_encoder.encode(["cat dog river"], truncate_dim=64)
    np.testing.assert_allclose(
        truncate(full, 16), static_encoder.encode(["cat dog river"], truncate_dim=16), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("first_pass", ["float32", "int8", "binary"])
def test_two_stage_matches_exact_on_a_real_encoder(static_encoder: StaticEncoder, first_pass: str) -> None:
    ids, texts = _corpus()
    index: NumpyIndex[str] = NumpyIndex(static_encoder, truncate_dim=16, first_pass=first_pass)
    index.add(ids, texts)
    queries = ["cat river", "dark wind light", "house"]
    exact = index.search(queries, k=5, mode="exact")
    wide = index.search(queries, k=5, rescore_multiplier=len(ids))
    assert [h.ids for h in wide] == [h.ids for h in exact]
    docs = static_encoder.encode(texts, truncate_dim=64)
    for query, hits in zip(queries, exact, strict=True):
        scores = docs @ static_encoder.encode(query, truncate_dim=64)
        np.testing.assert_allclose(hits.scores, np.sort(scores)[::-1][:5], rtol=1e-5, atol=1e-6)


def test_encoder_default_truncate_dim_does_not_leak_into_rescoring(tiny_model: Path) -> None:
    short_default = StaticEncoder.from_pretrained(str(tiny_model), truncate_dim=16)
    ids, texts = _corpus(50)
    index: NumpyIndex[str] = NumpyIndex(short_default, truncate_dim=16)
    index.add(ids, texts)
    hits = two_stage_search(
        short_default,
        "cat dog",
        first_pass=index.first_pass,
        fetch_full_vectors=index.fetch_full_vectors,
        truncate_dim=16,
    )
    full = StaticEncoder.from_pretrained(str(tiny_model))
    reference: NumpyIndex[str] = NumpyIndex(full, truncate_dim=16)
    reference.add(ids, texts)
    expected = reference.search("cat dog")
    assert hits.ids == expected.ids
    np.testing.assert_allclose(hits.scores, expected.scores, rtol=1e-5)
