"""ArguAna's rule found by the data ("at least half" of the judged queries are their own document,
whose corpus row may hold a title before the query's text)."""

from __future__ import annotations

import json
from pathlib import Path

from matryo.cli_eval import evaluate

CORPUS = {
    "a1": ("Cats", "the cat and the dog sleep in the house"),
    "a2": ("Birds", "a bird sings in a tree by the river"),
    "d3": ("Cars", "the car on the road to the city"),
    "d4": ("Fish", "fish swim in the river water"),
}


def write(root: Path, queries: dict[str, str], qrels: list[tuple[str, str]]) -> Path:
    root.mkdir()
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in CORPUS.items()), encoding="utf-8"
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()), encoding="utf-8"
    )
    (root / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels))
    return root


def test_own_document_with_a_title_counts(model: Path, tmp_path: Path) -> None:
    # each query's own corpus row is "title text": it holds the query's text without being equal to it
    beir = write(tmp_path / "copy", {"a1": CORPUS["a1"][1], "a2": CORPUS["a2"][1]}, [("a1", "d3"), ("a2", "d4")])
    _, info = evaluate(beir, str(model), "full")
    assert info["ignore_identical_ids"] is True
    assert any("2 of 2 judged queries are their own document" in n for n in info["notes"])


def test_exactly_half_of_the_queries_being_their_own_document_applies_the_rule(model: Path, tmp_path: Path) -> None:
    queries = {"a1": CORPUS["a1"][1], "q2": "fish in the water"}
    beir = write(tmp_path / "copy", queries, [("a1", "d3"), ("q2", "d4")])
    _, info = evaluate(beir, str(model), "full")
    assert info["ignore_identical_ids"] is True
    assert any("1 of 2 judged queries are their own document" in n for n in info["notes"])
