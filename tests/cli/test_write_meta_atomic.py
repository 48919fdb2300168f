"""write_meta replaces matryo.json atomically: a write the disk refuses half-way keeps the DB's previous
matryo.json intact (and leaves no temporary file)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from matryo.stores import DbMeta, StoreWriteError, read_meta, write_meta


def test_a_refused_rewrite_keeps_the_previous_matryo_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "db"
    old = DbMeta("lancedb", None, "abc123", 64, 16, source=str(tmp_path / "src"))
    write_meta(db, old)
    assert read_meta(db) == old
    real = Path.write_text

    def disk_full(self: Path, data: str, *args: object, **kwargs: object) -> int:
        real(self, data[: len(data) // 2], *args, **kwargs)  # half of it reached the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(StoreWriteError, match="matryo.json could not be written"):
        write_meta(db, DbMeta("lancedb", None, "abc123", 64, 16, source=str(tmp_path / "other")))
    monkeypatch.undo()
    assert read_meta(db) == old  # neither truncated nor deleted
    assert sorted(p.name for p in db.iterdir()) == ["matryo.json"]
