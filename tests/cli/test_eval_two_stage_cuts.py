"""The two-stage row's Recall@100 comes from its top 100, taken from ceil(100 * multiplier) candidates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import matryo.evaluation
from matryo.cli_eval import evaluate

WORDS = [
    "cat",
    "dog",
    "bird",
    "fish",
    "car",
    "road",
    "city",
    "river",
    "tree",
    "house",
    "water",
    "data",
    "file",
    "code",
    "fast",
]


def write(root: Path, relevant: int) -> Path:
    root.mkdir()
    corpus = {f"d{i:02}": f"the {w} and the cat" for i, w in enumerate(WORDS)}
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in corpus.items()))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "the cat"}) + "\n")
    (root / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q1\t{d}\t1\n" for d in list(corpus)[:relevant])
    )
    return root


def test_two_stage_recall_at_100_counts_past_rank_10(model: Path, tmp_path: Path) -> None:
    rows, _ = evaluate(write(tmp_path / "b", 12), str(model), "full", ignore_identical_ids=False)
    assert rows[0]["recall@100"] == pytest.approx(1.0)  # every document is in the top 100
    assert rows[-1]["recall@100"] == pytest.approx(1.0)


def test_recall_cut_takes_its_candidates_with_the_multiplier(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    real = matryo.evaluation.two_stage_runs

    def spy(*args, **kwargs):
        seen.append(args[6])
        return real(*args, **kwargs)

    monkeypatch.setattr(matryo.evaluation, "two_stage_runs", spy)
    rows, _ = evaluate(write(tmp_path / "b", 3), str(model), "full", rescore_multiplier=3)
    assert seen == [[(30, 10), (300, 100)]]
    assert rows[-1]["name"].endswith("(x3)")
