"""With fetch_full_vectors, a candidate id the store returns twice is answered with its first Document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore

from langchain_matryo import MatryoEmbeddings, MatryoTwoStageRetriever


class TwiceStore(VectorStore):
    """A store that returns document 'a' twice (e.g. two rows of one id), the first copy being the current one."""

    def __init__(self, embeddings: MatryoEmbeddings) -> None:
        self._emb = embeddings

    @property
    def embeddings(self) -> MatryoEmbeddings:
        return self._emb

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return [
            Document(id="a", page_content="the cat and the dog", metadata={"version": "first"}),
            Document(id="b", page_content="a bird in a tree", metadata={"version": "b"}),
            Document(id="a", page_content="the cat and the dog", metadata={"version": "second"}),
        ][:k]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        raise NotImplementedError

    @classmethod
    def from_texts(cls, texts, embedding, metadatas=None, **kwargs):  # noqa: ANN001, ANN206
        raise NotImplementedError


def test_first_occurrence_of_a_repeated_id_is_returned(tiny_model_dir: Path) -> None:
    first = MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16)
    full = MatryoEmbeddings(model=str(tiny_model_dir))
    texts = {"a": "the cat and the dog", "b": "a bird in a tree"}

    def fetch(ids: list[str]) -> dict[str, list[float]]:
        return {i: full.embed_query(texts[i]) for i in ids}

    retriever = MatryoTwoStageRetriever(
        vectorstore=TwiceStore(first), k=1, rescore_multiplier=3, fetch_full_vectors=fetch
    )
    [doc] = retriever.invoke("the cat and the dog")
    assert doc.id == "a" and doc.metadata["version"] == "first"
