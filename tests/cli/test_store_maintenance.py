"""LanceDB DBs stay bounded on re-indexing: compaction and old-version cleanup that spare open readers."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import lancedb
from tests.cli.conftest import Run

from matryo.stores import open_store, read_meta

WORDS = "cat dog bird fish tree house car road river city water fire earth wind light dark".split()


def write_corpus(path: Path, run_number: int, n: int = 600) -> None:
    """``n`` rows whose texts all change from one ``run_number`` to the next."""
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            words = [WORDS[(i * 7 + j * 3 + run_number) % len(WORDS)] for j in range(12)]
            f.write(json.dumps({"id": f"d{i}", "text": f"{' '.join(words)} {run_number}"}) + "\n")


def versions(db: Path) -> int:
    return len(lancedb.connect(str(db)).open_table("passages").list_versions())


def size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db / "passages.lance").rglob("*") if p.is_file())


def test_reindexing_changed_texts_keeps_one_version(run: Run, model: Path, tmp_path: Path) -> None:
    corpus, db = tmp_path / "c.jsonl", tmp_path / "db"
    sizes = []
    for number in range(4):
        write_corpus(corpus, number)
        code, _, err = run("index", corpus, "--db", db, "--model", model, "--quiet")
        assert code == 0, err
        assert versions(db) == 1  # 2 batches, a delete-free upsert each: 3 versions per run before
        sizes.append(size(db))
    assert max(sizes) < 1.3 * min(sizes)  # each run added its whole size before
    code, out, err = run("search", "cat dog", "--db", db, "-k", "1", "--json")
    assert code == 0 and json.loads(out)["text"].endswith(" 3"), err

    code, out, _ = run("index", corpus, "--db", db)  # unchanged: nothing written, not even a compaction
    assert code == 0 and out.startswith("0 new or changed passages indexed, 600 unchanged") and versions(db) == 1


def test_cleanup_spares_the_files_of_an_open_reader(run: Run, model: Path, tmp_path: Path) -> None:
    corpus, db = tmp_path / "c.jsonl", tmp_path / "db"
    write_corpus(corpus, 0)
    assert run("index", corpus, "--db", db, "--model", model, "--quiet")[0] == 0
    meta = read_meta(db)
    assert meta is not None
    reader = open_store(db, meta)  # like a `matryo search` that opened the table just before the next run
    before = reader.hashes()

    write_corpus(corpus, 1)
    code, _, err = run("index", corpus, "--db", db, "--quiet")
    assert code == 0, err
    assert versions(db) > 1  # the reader's version and its files are kept
    assert reader.hashes() == before and reader.count() == 600  # still reads the version it opened
    assert reader.search("cat dog", 1, 4.0)[0].text.endswith(" 0")

    del reader
    gc.collect()  # the reader is gone: the next run deletes every old version
    write_corpus(corpus, 2)
    assert run("index", corpus, "--db", db, "--quiet")[0] == 0
    assert versions(db) == 1


def test_compaction_keeps_an_ann_index_working(run: Run, model: Path, tmp_path: Path) -> None:
    from matryo_lancedb import open_two_stage_table

    corpus, db = tmp_path / "c.jsonl", tmp_path / "db"
    write_corpus(corpus, 0)
    assert run("index", corpus, "--db", db, "--model", model, "--quiet")[0] == 0
    table = open_two_stage_table(str(db), "passages")
    assert table.create_index("IVF_PQ", num_partitions=2).built
    del table
    gc.collect()

    write_corpus(corpus, 1)
    code, _, err = run("index", corpus, "--db", db, "--quiet")
    assert code == 0, err
    table = open_two_stage_table(str(db), "passages")
    assert table.has_index and table.count() == 600 and versions(db) <= 2  # the index update commits after the cleanup
    (index,) = table.table.list_indices()
    stats = table.table.index_stats(index.name)
    assert stats is not None and stats.num_unindexed_rows == 0 and stats.num_indexed_rows == 600
    code, out, err = run("search", "cat dog", "--db", db, "-k", "3", "--json")
    assert (
        code == 0
        and len(out.splitlines()) == 3
        and all(json.loads(line)["text"].endswith(" 1") for line in out.splitlines())
    ), err
