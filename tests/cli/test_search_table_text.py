"""The search table shows a passage's line breaks and runs of spaces as single spaces (no U+FFFD)."""

from __future__ import annotations

from pathlib import Path


def test_multiline_passage_is_shown_on_one_clean_line(run, model: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.md").write_text("read a gzip file\nwith   python\n\n  and the gzip module", encoding="utf-8")
    db = tmp_path / "db"
    assert run("index", src, "--db", db, "--model", model, "--quiet")[0] == 0
    code, out, err = run("search", "gzip file", "--db", db, "-k", "1")
    assert code == 0, err
    row = out.splitlines()[1]
    assert row.endswith("notes.md  read a gzip file with python and the gzip module"), row
    assert "\ufffd" not in out
