"""`from_texts` keeps the ids it is given (they are the documents' ids in results)."""

from __future__ import annotations

from pathlib import Path

from langchain_matryo import MatryoTwoStageRetriever


def test_from_texts_ids_reach_the_results(tiny_model_dir: Path) -> None:
    texts = ["the cat and the dog", "a bird in a tree", "the car on the road"]
    retriever = MatryoTwoStageRetriever.from_texts(
        texts, [{"n": i} for i in range(3)], ids=["cat", "bird", "car"], model=str(tiny_model_dir), truncate_dim=16, k=3
    )
    docs = retriever.invoke("the cat")
    assert {d.id: d.metadata["n"] for d in docs} == {"cat": 0, "bird": 1, "car": 2}
    assert sorted(retriever.vectorstore.get_by_ids(["cat", "car"]), key=lambda d: d.id)[0].id == "car"
