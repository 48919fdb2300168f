"""An unexpected OSError is one `matryo: error:` line and exit 1, not a traceback."""

from __future__ import annotations

from pathlib import Path


def test_queries_path_through_a_file_is_an_error_line(run, tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x", encoding="utf-8")
    code, out, err = run("search", "--queries", plain / "inside.txt", "--db", tmp_path / "db")
    assert code == 1 and out == ""
    assert err.startswith("matryo: error:") and err.count("\n") == 1, err
