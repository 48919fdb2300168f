"""A folder SOURCE reads .MD/.TXT files whatever the case of their suffix."""

from __future__ import annotations

from pathlib import Path

from matryo.sources import read_source


def test_uppercase_suffix_is_read(tmp_path: Path) -> None:
    (tmp_path / "README.MD").write_text("upper case markdown file", encoding="utf-8")
    (tmp_path / "notes.Txt").write_text("mixed case text file", encoding="utf-8")
    notes: list[str] = []
    ids = [p.id for p in read_source(tmp_path, note=notes.append)]
    assert ids == ["README.MD", "notes.Txt"]
    assert notes == []
