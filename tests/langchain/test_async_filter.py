"""`ainvoke` and `abatch` apply the filter on an InMemoryVectorStore exactly as invoke does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from langchain_core.vectorstores import InMemoryVectorStore

from langchain_matryo import MatryoEmbeddings, MatryoTwoStageRetriever

TEXTS = ["the cat and the dog", "a cat in the house", "a bird in a tree", "the car on the road", "fish in the river"]
GROUPS = ["a", "b", "a", "b", "b"]


def test_async_filter_equals_sync_filter(tiny_model_dir: Path) -> None:
    first = MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16)
    store = InMemoryVectorStore.from_texts(TEXTS, first, metadatas=[{"g": g} for g in GROUPS], ids=list("abcde"))
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=5, filter=lambda doc: doc.metadata["g"] == "b")
    sync = retriever.invoke("the cat")
    assert [d.id for d in sync] and all(d.metadata["g"] == "b" for d in sync)
    async_ = asyncio.run(retriever.ainvoke("the cat"))
    assert [d.id for d in async_] == [d.id for d in sync]
    # a per-call filter too
    per_call = asyncio.run(retriever.ainvoke("the cat", filter=lambda doc: doc.metadata["g"] == "a"))
    assert {d.id for d in per_call} == {"a", "c"}
