"""recall@k divides by the number of relevant documents (relevance > 0), as trec_eval does: documents judged 0
(or negative) are in the qrels but are not relevant, so they must not lower the recall."""

from __future__ import annotations

import pytest

from matryo.evaluation import recall_at_k


def test_recall_ignores_documents_judged_not_relevant() -> None:
    qrels = {"q": {"a": 1, "z": 0, "y": -1}, "r": {"b": 2, "c": 1, "x": 0}}
    run = {"q": {"a": 0.9, "d": 0.5}, "r": {"b": 0.8, "e": 0.7, "c": 0.1}}
    assert recall_at_k({"q": run["q"]}, {"q": qrels["q"]}, 10) == pytest.approx(1.0)
    assert recall_at_k(run, qrels, 10) == pytest.approx(1.0)
    assert recall_at_k(run, qrels, 2) == pytest.approx((1.0 + 0.5) / 2)
