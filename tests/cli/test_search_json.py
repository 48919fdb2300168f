"""`matryo search --json` prints every documented field (query, rank, id, doc, score, text)."""

from __future__ import annotations

import json
from pathlib import Path


def test_json_hit_has_every_documented_field(run, model: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    # a long document chunked into several passages: doc differs from id
    text = " ".join(f"gzip word{i}" for i in range(30))
    rows.write_text(json.dumps({"id": "guide", "text": text}) + "\n", encoding="utf-8")
    db = tmp_path / "db"
    code, _, err = run("index", rows, "--db", db, "--model", model, "--chunk-size", "10", "--quiet")
    assert code == 0, err
    code, out, err = run("search", "gzip", "--db", db, "--json", "-k", "2")
    assert code == 0, err
    hits = [json.loads(line) for line in out.splitlines()]
    assert len(hits) == 2
    for hit in hits:
        assert set(hit) == {"query", "rank", "id", "doc", "score", "text"}
        assert hit["doc"] == "guide" and hit["id"].startswith("guide#")
