from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from matryo.evaluation import dense_run, load_beir, mrr_at_k, ndcg_at_k, recall_at_k


def test_ndcg_perfect_and_worst():
    qrels = {"q1": {"a": 1, "b": 1}}
    assert ndcg_at_k({"q1": {"a": 2.0, "b": 1.0, "c": 0.5}}, qrels) == pytest.approx(1.0)
    assert ndcg_at_k({"q1": {"c": 2.0, "d": 1.0}}, qrels) == 0.0
    assert ndcg_at_k({}, qrels) == 0.0  # missing query scores 0


def test_ndcg_hand_computed():
    # relevant docs a (rel 1) and b (rel 2); ranking: c, b, a
    qrels = {"q": {"a": 1, "b": 2, "z": 0}}
    run = {"q": {"c": 3.0, "b": 2.0, "a": 1.0}}
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(run, qrels, 10) == pytest.approx(dcg / idcg)


def test_ndcg_idcg_uses_all_judged_relevant_docs():
    # 3 relevant docs, cut-off 1: the ideal DCG@1 is 1, found doc at rank 1 -> 1.0
    qrels = {"q": {"a": 1, "b": 1, "c": 1}}
    assert ndcg_at_k({"q": {"a": 1.0}}, qrels, 1) == pytest.approx(1.0)
    # at k=10 the ideal counts all three
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k({"q": {"a": 1.0}}, qrels, 10) == pytest.approx(1 / idcg)


def test_cutoff_and_mean_over_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"x": 0}}  # q3 has no relevant doc: skipped
    run = {"q1": {f"d{i}": 10.0 - i for i in range(10)} | {"a": -1.0}, "q2": {"b": 1.0}}
    assert ndcg_at_k(run, qrels, 10) == pytest.approx(0.5)
    assert mrr_at_k(run, qrels, 10) == pytest.approx(0.5)
    assert recall_at_k(run, qrels, 10) == pytest.approx(0.5)
    assert recall_at_k(run, qrels, 11) == pytest.approx(1.0)


def test_mrr_and_recall():
    qrels = {"q": {"a": 1, "b": 1}}
    run = {"q": {"x": 3.0, "a": 2.0, "y": 1.0, "b": 0.5}}
    assert mrr_at_k(run, qrels, 10) == pytest.approx(0.5)
    assert mrr_at_k(run, qrels, 1) == 0.0
    assert recall_at_k(run, qrels, 2) == pytest.approx(0.5)
    assert recall_at_k(run, qrels, 4) == pytest.approx(1.0)


def test_ties_break_by_descending_doc_id():
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0, "b": 1.0}}
    assert mrr_at_k(run, qrels, 1) == 0.0  # "b" sorts first among equal scores
    assert mrr_at_k(run, qrels, 2) == pytest.approx(0.5)


def test_dense_run_topk_and_ignore_identical_ids():
    docs = np.eye(3, dtype=np.float32)
    queries = np.array([[1.0, 0.1, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    run = dense_run(queries, docs, ["d0", "q2"], ["d0", "d1", "d2"], k=2)
    assert list(run["d0"]) == ["d0", "d1"]
    run = dense_run(queries, docs, ["d0", "d2"], ["d0", "d1", "d2"], k=2, ignore_identical_ids=True)
    assert "d0" not in run["d0"] and "d2" not in run["d2"]
    assert list(run["d0"]) == ["d1", "d2"]
    with pytest.raises(ValueError, match="width"):
        dense_run(queries[:, :2], docs, ["a", "b"], ["d0", "d1", "d2"])


def test_load_beir(tmp_path):
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"_id": "d1", "title": "Title", "text": "body"}) + "\n")
        fh.write(json.dumps({"_id": "d2", "title": "", "text": "only body"}) + "\n")
    with gzip.open(tmp_path / "queries.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"_id": "q1", "text": "question"}) + "\n")
        fh.write(json.dumps({"_id": "q9", "text": "no qrels"}) + "\n")
    with gzip.open(tmp_path / "qrels.tsv.gz", "wt") as fh:
        fh.write("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    corpus, queries, qrels = load_beir(tmp_path)
    assert corpus == {"d1": "Title body", "d2": "only body"}
    assert queries == {"q1": "question"}
    assert qrels == {"q1": {"d1": 1}}
