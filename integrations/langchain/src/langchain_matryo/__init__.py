"""langchain-matryo: LangChain embeddings and a two-stage Matryoshka retriever backed by matryo.

* :class:`MatryoEmbeddings` - ``Embeddings`` over a static token-embedding model (numpy only, real async).
* :class:`MatryoTwoStageRetriever` - a truncated first pass in any LangChain ``VectorStore``, then
  full-dimension rescoring.
"""

from __future__ import annotations

from langchain_matryo.embeddings import MatryoEmbeddings
from langchain_matryo.retrievers import MatryoTwoStageRetriever

__version__ = "0.1.0"

__all__ = ["MatryoEmbeddings", "MatryoTwoStageRetriever", "__version__"]
