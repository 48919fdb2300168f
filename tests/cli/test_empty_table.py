"""A table without rows is a SourceError naming the file (read_source documents it), not an empty stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from matryo.sources import SourceError, read_source


@pytest.mark.parametrize(("name", "content"), [("t.jsonl", "\n  \n"), ("t.csv", "id,text\n")])
def test_table_without_rows_is_refused(tmp_path: Path, name: str, content: str) -> None:
    table = tmp_path / name
    table.write_text(content, encoding="utf-8")
    with pytest.raises(SourceError, match="holds no rows"):
        list(read_source(table))


def test_cli_names_the_empty_table(run, model: Path, tmp_path: Path) -> None:
    table = tmp_path / "t.jsonl"
    table.write_text("", encoding="utf-8")
    code, out, err = run("index", table, "--db", tmp_path / "db", "--model", model, "--quiet")
    assert code == 1 and "holds no rows" in err, err
