"""two_stage_runs(..., ignore_identical_ids=True) (BEIR's ArguAna convention): a query never gets back the document
that has its own id, in every cut, even when that document is its best match in both stages."""

from __future__ import annotations

import numpy as np

from matryo.evaluation import dense_run, two_stage_runs


def test_two_stage_runs_never_return_the_query_own_id() -> None:
    rng = np.random.default_rng(5)
    docs = rng.standard_normal((30, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    doc_ids = [f"d{i:02d}" for i in range(30)]
    query_ids = ["d00", "d07", "d29"]  # ArguAna: the queries are corpus documents
    queries = docs[[0, 7, 29]]
    cuts = [(5, 2), (30, 10)]
    prefix = docs[:, :4] / np.linalg.norm(docs[:, :4], axis=1, keepdims=True)  # what a first pass scores
    runs = two_stage_runs(prefix[[0, 7, 29]], prefix, queries, docs, query_ids, doc_ids, cuts, True)
    full = dense_run(queries, docs, query_ids, doc_ids, k=10, ignore_identical_ids=True)
    for run, (n, k) in zip(runs, cuts, strict=True):
        for qid in query_ids:
            assert qid not in run[qid], (qid, n, k)
            assert len(run[qid]) == k
    # 30 candidates of 30 documents: the two-stage run is the exact one
    assert [list(runs[1][q]) for q in query_ids] == [list(full[q]) for q in query_ids]
    # without the rule each query finds itself first
    plain = two_stage_runs(prefix[[0, 7, 29]], prefix, queries, docs, query_ids, doc_ids, cuts, False)
    assert all(next(iter(plain[0][qid])) == qid for qid in query_ids)
