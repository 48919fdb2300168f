"""rescore_multiplier=1 means "no oversampling" (the error message itself says "Use 1"): it must be accepted."""

from __future__ import annotations

from matryo.index import NumpyIndex
from matryo.search import candidate_count


def test_multiplier_one_is_accepted_and_asks_for_exactly_k(encoder, corpus) -> None:
    assert candidate_count(10, 1) == 10
    assert candidate_count(7, 1.0) == 7
    ids, texts = corpus
    index = NumpyIndex(encoder, truncate_dim=16)
    index.add(ids, texts)
    hits = index.search("alpha beta", k=5, rescore_multiplier=1)
    assert len(hits) == 5
