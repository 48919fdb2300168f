"""`--queries` splits lines at \\n, \\r\\n and a lone \\r (classic Mac line endings)."""

from __future__ import annotations

import json
from pathlib import Path


def test_lone_cr_separates_queries(run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    questions = tmp_path / "q.txt"
    questions.write_bytes(b"the cat\rread a gzip file\r\na bird\n")
    code, out, err = run("search", "--queries", questions, "--db", db, "-k", "1", "--json")
    assert code == 0, err
    assert [json.loads(line)["query"] for line in out.splitlines()] == ["the cat", "read a gzip file", "a bird"]
