"""A re-run without --truncate-dim keeps the first-pass width the DB was built with."""

from __future__ import annotations

from pathlib import Path

from matryo.stores import read_meta


def test_rerun_without_truncate_dim_uses_the_dbs_width(run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    code, _, err = run("index", docs, "--db", db, "--model", model, "--truncate-dim", "64", "--quiet")
    assert code == 0, err
    (docs / "new.md").write_text("a new file about a fast model", encoding="utf-8")
    code, out, err = run("index", docs, "--db", db)
    assert code == 0, err
    assert out.startswith("1 new or changed passage indexed, 5 unchanged") and "first pass 64)" in out, out
    meta = read_meta(db)
    assert meta is not None and meta.truncate_dim == 64
