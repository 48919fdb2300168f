"""Recall@10 of two-stage search (default settings) against exact full-dimension search, on ArguAna.

Deterministic subset, to keep the module fast on a 2-core machine: every 4th corpus document (2,169 of
8,674, in file order) and all 1,406 test queries (searched with ``search_batch``: one LanceDB multi-vector
query, the same first pass and rescoring as ``search``). Recall here is agreement with exact full-dimension
cosine top-10 over the same documents (not relevance). Measured with the preview default model at the core
defaults (128-d prefix, x16): 0.9999 flat, 1.0 with IVF_PQ, 0.9999 with IVF_HNSW_SQ (x4 gave only 0.990 flat
and 0.980 with IVF_PQ, so these tests do catch a too-small multiplier).
Needs the embedded default model (a Matryoshka-trained static model); random tiny models have no
Matryoshka structure. ``MATRYO_LANCEDB_RECALL_MODEL=<folder or hub id>`` runs it with another model.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import missing_data
from tests.lancedb.helpers import needs_default_model

from matryo_lancedb import TwoStageTable, create_two_stage_table

ARGUANA = Path(__file__).resolve().parents[3] / "shared" / "data" / "arguana"
DOC_STEP, K = 4, 10
MODEL = os.environ.get("MATRYO_LANCEDB_RECALL_MODEL") or None

pytestmark = [
    *([needs_default_model] if MODEL is None else []),
    pytest.mark.skipif(missing_data(ARGUANA), reason=f"ArguAna (BEIR) is not at {ARGUANA}"),
]


def _read(name: str) -> list[dict[str, str]]:
    with gzip.open(ARGUANA / name, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def arguana(tmp_path_factory: pytest.TempPathFactory) -> tuple[TwoStageTable, list[str], list[set[str]]]:
    docs = _read("corpus.jsonl.gz")[::DOC_STEP]
    queries = [q["text"] for q in _read("queries.jsonl.gz")]
    rows = [{"id": d["_id"], "text": f"{d.get('title', '')} {d['text']}".strip()} for d in docs]
    table = create_two_stage_table(tmp_path_factory.mktemp("lance"), "arguana", MODEL)  # default settings
    table.add(rows)
    # exact reference: numpy brute force over the stored full vectors (test_two_stage_table checks that they
    # are the encoder's), so the documents are not encoded twice
    stored = table.table.to_arrow().select(["id", "vector_full"])
    ids = np.array(stored["id"].to_pylist())
    full = stored["vector_full"].combine_chunks().flatten().to_numpy().reshape(len(ids), -1)
    exact = [set(ids[np.argsort(-(full @ q), kind="stable")[:K]]) for q in table.encoder.encode(queries)]
    return table, queries, exact


def _recall(table: TwoStageTable, queries: list[str], exact: list[set[str]]) -> float:
    found = [{hit["id"] for hit in hits} for hits in table.search_batch(queries, k=K)]
    assert all(len(f) == K for f in found)
    return float(np.mean([len(f & e) / K for f, e in zip(found, exact, strict=True)]))


def test_recall_without_index(arguana: tuple[TwoStageTable, list[str], list[set[str]]]) -> None:
    table, queries, exact = arguana
    for index in table.table.list_indices():
        table.table.drop_index(index.name)
    assert not table.has_index and table.count() == 2169 and len(queries) == 1406
    assert _recall(table, queries, exact) >= 0.99


@pytest.mark.parametrize("index_type", ["IVF_PQ", "IVF_HNSW_SQ"])
def test_recall_with_ann_index(arguana: tuple[TwoStageTable, list[str], list[set[str]]], index_type: str) -> None:
    table, queries, exact = arguana
    report = table.create_index(index_type)  # type: ignore[arg-type]
    assert report.built and table.has_index
    assert _recall(table, queries, exact) >= 0.99
