"""The retriever's vector cache is not reused after it is pointed at a store of another model."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.vectorstores import InMemoryVectorStore
from tests.conftest import make_tiny_model

from langchain_matryo import MatryoEmbeddings, MatryoTwoStageRetriever

TEXTS = ["the cat and the dog", "a bird in a tree", "the car on the road", "fish in the river water"]


def test_switching_stores_to_another_model_rescores_with_the_new_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    other_dir = make_tiny_model(tmp_path / "other64", dim=64, seed=99)
    store_a = InMemoryVectorStore.from_texts(TEXTS, MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16))
    store_b = InMemoryVectorStore.from_texts(TEXTS, MatryoEmbeddings(model=str(other_dir), truncate_dim=16))
    retriever = MatryoTwoStageRetriever(vectorstore=store_a, k=4, rescore_multiplier=1)
    retriever.invoke("the cat")  # fills the cache with model A's vectors of TEXTS
    retriever.vectorstore = store_b  # the embeddings (and model) are now store B's
    fresh = MatryoTwoStageRetriever(vectorstore=store_b, k=4, rescore_multiplier=1)
    got = {d.page_content: d.metadata["relevance_score"] for d in retriever.invoke("the cat")}
    want = {d.page_content: d.metadata["relevance_score"] for d in fresh.invoke("the cat")}
    assert got.keys() == want.keys()
    for text in want:
        assert got[text] == pytest.approx(want[text], abs=1e-6)
