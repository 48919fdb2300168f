"""Recall@10 of the two-stage retriever against exact full-dimension search on SciFact, default settings.

Default settings: ``MatryoTwoStageRetriever.from_documents`` with the embedded default model, the core's
``DEFAULT_TRUNCATE_DIM`` first pass in an ``InMemoryVectorStore`` (exact, so only the two-stage recipe is
measured) and ``DEFAULT_RESCORE_MULTIPLIER``; ``k=10``. The whole corpus (5,183 documents) is indexed;
the first ``N_QUERIES`` test queries in file order are searched (InMemoryVectorStore rebuilds a numpy
matrix from Python lists on every search, which dominates the run time). For speed the bulk of the queries
rescore with the full vectors already computed for the exact search (``fetch_full_vectors``); the default
path (re-encoding the candidates) is checked to give the same documents on the first ``N_REENCODE`` queries.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from tests.langchain.helpers import HAS_DEFAULT_MODEL

from langchain_matryo import MatryoTwoStageRetriever
from matryo.cache import load_encoder
from matryo.evaluation import load_beir
from matryo.search import DEFAULT_RESCORE_MULTIPLIER, DEFAULT_TRUNCATE_DIM

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact"
N_QUERIES = 100
N_REENCODE = 10
K = 10
# MATRYO_TEST_MODEL lets a developer point this test at another model folder before the default lands.
MODEL = os.environ.get("MATRYO_TEST_MODEL") or None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact is not at {SCIFACT}"),
    pytest.mark.skipif(MODEL is None and not HAS_DEFAULT_MODEL, reason="the embedded default model is not there yet"),
]


def recall_against_exact(model: str | None, n_queries: int = N_QUERIES) -> float:
    """Mean |two-stage top-K ∩ exact full-dimension top-K| / K over the first ``n_queries`` SciFact queries."""
    corpus, queries, _ = load_beir(SCIFACT)
    ids = list(corpus)
    texts = [corpus[i] for i in ids]
    query_texts = list(queries.values())[:n_queries]
    encoder = load_encoder(model)
    doc_vectors = encoder.encode(texts, truncate_dim=encoder.dim)
    exact_scores = encoder.encode(query_texts, truncate_dim=encoder.dim) @ doc_vectors.T
    exact = [{ids[j] for j in np.argsort(-row, kind="stable")[:K]} for row in exact_scores]

    documents = [Document(page_content=text, id=doc_id) for doc_id, text in zip(ids, texts, strict=True)]
    retriever = MatryoTwoStageRetriever.from_documents(documents, model=model, k=K)
    assert retriever.embeddings is not None
    assert retriever.embeddings.dim == min(DEFAULT_TRUNCATE_DIM, encoder.dim)
    assert retriever.rescore_multiplier == DEFAULT_RESCORE_MULTIPLIER
    row_of = {doc_id: row for row, doc_id in enumerate(ids)}
    stored = retriever.model_copy(
        update={"fetch_full_vectors": lambda wanted: (wanted, doc_vectors[[row_of[i] for i in wanted]])}
    )
    found = stored.batch(query_texts, config={"max_concurrency": 1})
    for query, docs in zip(query_texts[:N_REENCODE], found, strict=False):
        assert [d.id for d in retriever.invoke(query)] == [d.id for d in docs]
    return float(np.mean([len({d.id for d in docs} & want) / K for docs, want in zip(found, exact, strict=True)]))


def test_two_stage_recall_at_10_against_exact_search_on_scifact() -> None:
    recall = recall_against_exact(MODEL)
    print(f"recall@{K} vs exact full-dimension search, {N_QUERIES} SciFact queries: {recall:.4f}")
    assert recall >= 0.99
