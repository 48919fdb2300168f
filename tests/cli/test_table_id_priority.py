"""A table row holding both _id and id is named by _id (id only when _id is missing or blank)."""

from __future__ import annotations

import json
from pathlib import Path

from matryo.sources import read_source


def test_underscore_id_wins_over_id(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps(r)
            for r in (
                {"_id": "beir-1", "id": "other-1", "text": "first row"},
                {"_id": " ", "id": "other-2", "text": "second row"},
            )
        ),
        encoding="utf-8",
    )
    assert [p.id for p in read_source(rows)] == ["beir-1", "other-2"]


def test_csv_underscore_id_wins_over_id(tmp_path: Path) -> None:
    table = tmp_path / "rows.csv"
    table.write_text("id,_id,text\nother,beir,some text\n", encoding="utf-8")
    assert [p.id for p in read_source(table)] == ["beir"]
