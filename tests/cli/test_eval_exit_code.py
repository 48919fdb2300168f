"""`matryo eval` exits 1 when a score is not finite (a broken model), 0 otherwise."""

from __future__ import annotations

import math

import pytest

import matryo.cli_eval as cli_eval


@pytest.mark.parametrize(("score", "code"), [(0.5, 0), (math.nan, 1)])
def test_non_finite_score_exit_code(run, monkeypatch: pytest.MonkeyPatch, tmp_path, score: float, code: int) -> None:
    row = {"name": "64", "dim": 64, "ndcg@10": score, "mrr@10": 0.5, "recall@100": 0.5}
    info = {"dataset": "x", "documents": 1, "queries": 1, "model": "m", "dim": 64, "seconds": 0.0, "notes": []}
    monkeypatch.setattr(cli_eval, "evaluate", lambda *a, **k: ([row, {**row, "name": "two-stage"}], info))
    assert run("eval", tmp_path, "--dims", "64")[0] == code
