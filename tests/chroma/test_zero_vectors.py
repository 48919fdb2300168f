"""Records with an all-zero vector (documents without tokens) are never hits, as in LanceDB's cosine search."""

from __future__ import annotations

from pathlib import Path

import chromadb
import pytest
from tests.chroma.conftest import word_corpus

from matryo_chroma import TwoStageCollection

STORES = ("metadata", "sibling", "documents")
N = 60


@pytest.mark.parametrize("store", STORES)
def test_zero_vector_records_are_never_hits(tmp_path: Path, tiny_model_path: str, store: str) -> None:
    client = chromadb.PersistentClient(str(tmp_path / "db"))
    col = TwoStageCollection.create(client, "docs", model=tiny_model_path, truncate_dim=16, store=store)
    col.add(ids=[f"d{i}" for i in range(N)], documents=word_corpus(N))
    # no tokens at all: empty, zero-width characters, control characters
    col.add(ids=["empty", "zw", "ctl"], documents=["", "\u200b\u200b", "\x01\x02"])

    got = col.query(query_texts=["cat"], n_results=N + 3, include=["distances"])
    ids, distances = got["ids"][0], got["distances"][0]
    # plain Chroma ranks them at cosine distance 1, above every record with a negative cosine
    assert not {"empty", "zw", "ctl"} & set(ids)
    assert sorted(ids) == sorted(f"d{i}" for i in range(N)) and distances == sorted(distances)
    assert any(d > 1.0 for d in distances)  # negative cosines are still returned, after the positive ones
    assert col.count() == N + 3  # stored, and readable by get()
    assert col.get(ids=["empty"])["documents"] == [""]
