"""`matryo index` and `matryo search`: both stores, incremental re-runs, interruption, refusing mixed models."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from tests.cli.conftest import DOCS, Run
from tests.conftest import make_tiny_model

from matryo import DEFAULT_MODEL_PATH, cli_index
from matryo.cache import clear_encoder_cache
from matryo.sources import Passage, read_source
from matryo.stores import Hit, index_passages, open_store, read_meta, write_meta


def stored(db: Path) -> dict[str, tuple[str, str]]:
    meta = read_meta(db)
    assert meta is not None
    return open_store(db, meta).hashes()


def search_json(run: Run, db: Path, query: str, *extra: str) -> list[dict[str, object]]:
    code, out, err = run("search", query, "--db", db, "--json", *extra)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("store", ["lancedb", "chroma"])
def test_index_search_and_incremental_rerun(run: Run, model: Path, docs: Path, tmp_path: Path, store: str) -> None:
    db = tmp_path / "db"
    code, out, err = run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")
    assert (code, out) == (0, ""), err
    ids = set(stored(db))
    assert ids == set(DOCS), "one passage per small file, id = relative path"
    meta = read_meta(db)
    assert meta is not None and (meta.store, meta.dim, meta.truncate_dim) == (store, 256, 128)

    hits = search_json(run, db, "read a gzip file", "-k", "3")
    assert hits[0]["id"] == "gzip.md"
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]

    code, out, _ = run("search", "parse command line argument", "--db", db, "-k", "2")
    assert code == 0 and "args.txt" in out.splitlines()[1] and "two-stage: first pass at 128 dims" in out

    # Re-run: nothing new. Edit one file, add one: exactly those two are written, nothing duplicated.
    code, out, _ = run("index", docs, "--db", db)
    assert code == 0 and out.startswith("0 new or changed passages indexed, 5 unchanged")
    (docs / "city.txt").write_text("the fish in the water", encoding="utf-8")
    (docs / "new.md").write_text("a slow model and a fast model", encoding="utf-8")
    code, out, _ = run("index", docs, "--db", db)
    assert code == 0 and out.startswith("2 new or changed passages indexed, 4 unchanged"), out
    after = stored(db)
    assert set(after) == set(DOCS) | {"new.md"}
    assert search_json(run, db, "fish in the water", "-k", "1")[0]["id"] == "city.txt"


def test_changed_document_drops_chunks_it_no_longer_has(run: Run, model: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.txt").write_text("\n\n".join(["cat dog bird fish"] * 3), encoding="utf-8")
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--chunk-size", "4", "--quiet")[0] == 0
    assert set(stored(db)) == {"long.txt#0", "long.txt#1", "long.txt#2"}
    (docs / "long.txt").write_text("cat dog bird fish\n\ntree house", encoding="utf-8")
    code, out, _ = run("index", docs, "--db", db, "--chunk-size", "4")
    assert code == 0 and "1 removed" in out
    assert set(stored(db)) == {"long.txt#0", "long.txt#1"}


@pytest.mark.parametrize("store", ["lancedb", "chroma"])
def test_prune_removes_deleted_documents_only_when_asked(
    run: Run, model: Path, docs: Path, tmp_path: Path, store: str
) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")[0] == 0
    (docs / "gzip.md").unlink()
    code, out, err = run("index", docs, "--db", db)
    assert code == 0 and "0 removed" in out
    assert set(stored(db)) == set(DOCS), "without --prune a document missing from SOURCE is kept"
    assert "1 stored passage(s) of documents not in SOURCE this run were kept; pass --prune" in err, "and said so"

    # A file that cannot be read this time is not a deleted file: --prune then removes nothing.
    (docs / "city.txt").write_bytes("caf\xe9".encode("latin-1"))
    code, out, err = run("index", docs, "--db", db, "--prune")
    assert code == 0 and "0 removed" in out
    assert "nothing pruned because 1 file was skipped; fix it, or leave it out with --exclude" in err
    assert set(stored(db)) == set(DOCS)

    (docs / "city.txt").write_text("the city at night", encoding="utf-8")
    code, out, err = run("index", docs, "--db", db, "--prune")
    assert code == 0 and out.startswith("1 new or changed passage indexed, 3 unchanged, 1 removed"), out
    assert "were kept" not in err
    assert set(stored(db)) == set(DOCS) - {"gzip.md"}
    assert all(hit["id"] != "gzip.md" for hit in search_json(run, db, "read a gzip file", "-k", "5"))

    (docs / "city.txt").write_bytes("caf\xe9".encode("latin-1"))  # the way out the warning names: --exclude it
    code, out, err = run("index", docs, "--db", db, "--prune", "--exclude", "city.txt")
    assert code == 0 and "3 unchanged, 1 removed" in out and "skipped" not in err, (out, err)
    assert set(stored(db)) == set(DOCS) - {"gzip.md", "city.txt"}


@pytest.mark.parametrize("store", ["lancedb", "chroma"])
def test_interrupted_index_then_rerun_loses_and_duplicates_nothing(
    run: Run, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(23):
        (docs / f"doc{i:02d}.txt").write_text(f"document {i} about the cat " + "dog " * i, encoding="utf-8")
    db = tmp_path / "db"
    monkeypatch.setattr(cli_index, "BATCH_SIZE", 5)

    def ctrl_c(batch: int) -> None:
        if batch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_index, "after_batch", ctrl_c)
    code, out, err = run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")
    assert code == 130 and "re-run" in err and "Traceback" not in err
    assert len(stored(db)) == 10, "the two committed batches are kept"

    monkeypatch.setattr(cli_index, "after_batch", None)
    code, out, _ = run("index", docs, "--db", db)
    assert code == 0 and out.startswith("13 new or changed passages indexed, 10 unchanged"), out
    meta = read_meta(db)
    assert meta is not None
    store = open_store(db, meta)
    assert store.count() == 23 and set(store.hashes()) == {f"doc{i:02d}.txt" for i in range(23)}


def test_db_built_with_another_model_is_refused(
    run: Run, model: Path, other_model: Path, docs: Path, tmp_path: Path
) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    meta = read_meta(db)
    assert meta is not None
    (docs / "extra.txt").write_text("more data", encoding="utf-8")
    code, out, err = run("index", docs, "--db", db, "--model", other_model)
    assert code == 1 and out == ""
    from matryo import StaticEncoder

    other = StaticEncoder.from_pretrained(other_model).fingerprint
    assert meta.fingerprint in err and other in err and len(err.strip().splitlines()) == 1
    assert set(stored(db)) == set(DOCS), "nothing was written"

    code, _, err = run("index", docs, "--db", db, "--truncate-dim", "64")
    assert code == 1 and "first pass 128" in err and "first pass 64" in err


def test_search_refuses_when_the_model_changed_under_the_db(run: Run, tmp_path: Path, docs: Path) -> None:
    path = make_tiny_model(tmp_path / "m", dim=256)
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", path, "--quiet")[0] == 0
    make_tiny_model(path, dim=256, seed=7)  # the folder now holds other weights
    clear_encoder_cache()  # as in a new process
    code, _, err = run("search", "cat", "--db", db)
    assert code == 1 and "never mixed" in err
    # search has no --model/--truncate-dim, so the index run's advice to drop them would not help
    assert f"The weights of the model at {path.resolve()} changed (put the old ones back" in err
    assert "--truncate-dim" not in err
    code, _, err = run("index", docs, "--db", db)  # no option was given, so none is offered to drop
    assert code == 1 and "put the old ones back" in err and "--model" not in err


def test_db_of_an_older_embedded_default_model_says_so(run: Run, tmp_path: Path, docs: Path) -> None:
    """Each release with new default weights makes older default-model DBs unusable; the message said to drop
    --model/--truncate-dim (never given) or to put back a model no option can bring back."""
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--quiet")[0] == 0
    meta = json.loads((db / "matryo.json").read_text())
    meta["fingerprint"] = "0123456789abcdef"  # what an upgrade to new default weights does to an old DB
    (db / "matryo.json").write_text(json.dumps(meta))
    for argv in (("search", "cat", "--db", db), ("index", docs, "--db", db)):
        code, _, err = run(*argv)
        assert code == 1 and "embedded default model changed (an upgrade shipped new ones)" in err, err
        assert "--model" not in err and "Put back" not in err and "Index SOURCE again into a new --db folder" in err


@pytest.mark.parametrize(("store", "files"), [("lancedb", "passages.lance"), ("chroma", "chroma")])
def test_search_of_a_db_whose_store_files_are_gone_is_an_error_not_an_empty_db(
    run: Run, model: Path, docs: Path, tmp_path: Path, store: str, files: str
) -> None:
    # It printed "no hits (the DB is empty)" with exit 0 and created empty store files in the folder.
    import shutil

    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")[0] == 0
    shutil.rmtree(db / files)
    clear_encoder_cache()
    code, out, err = run("search", "gzip", "--db", db)
    assert code == 1 and out == "" and "incomplete" in err and len(err.strip().splitlines()) == 1, err
    assert not (db / files).exists(), "nothing was created"


def test_folder_that_is_not_a_matryo_db_is_refused(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    (db / "precious.txt").write_text("keep me")
    code, _, err = run("index", docs, "--db", db, "--model", model)
    assert code == 1 and "not a matryo DB folder" in err
    assert sorted(p.name for p in db.iterdir()) == ["precious.txt"]
    code, _, err = run("search", "x", "--db", tmp_path / "nowhere")
    assert code == 1 and "matryo index" in err


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_dir(), reason="the embedded default model is not in this checkout")
def test_default_model_end_to_end(run: Run, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    code, out, err = run("index", docs, "--db", db)
    assert code == 0 and "512 dims, first pass 128" in out, err
    meta = read_meta(db)
    assert meta is not None and meta.model is None
    assert search_json(run, db, "how do I open a compressed file", "-k", "1")[0]["id"] == "gzip.md"
    assert search_json(run, db, "parse arguments from the command line", "-k", "1")[0]["id"] == "args.txt"


def test_real_sigint_in_a_process_then_rerun(run: Run, model: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": f"r{i}", "text": f"row {i} cat dog"}) + "\n" for i in range(40)))
    db = tmp_path / "db"
    script = (
        "import os, signal, sys\n"
        "from matryo import cli, cli_index\n"
        # a background job of a non-interactive shell (`bash .ci/run &`) starts with SIGINT ignored, and Python then
        # installs no KeyboardInterrupt handler: restore the terminal's behaviour, which is what this test is about
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "cli_index.BATCH_SIZE = 8\n"
        "cli_index.after_batch = lambda n: os.kill(os.getpid(), signal.SIGINT) if n == 3 else None\n"
        f"sys.exit(cli.main(['index', {str(rows)!r}, '--db', {str(db)!r}, '--model', {str(model)!r}, '--quiet']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130 and "interrupted" in proc.stderr and "Traceback" not in proc.stderr
    assert len(stored(db)) == 24
    code, out, _ = run("index", rows, "--db", db)
    assert code == 0 and out.startswith("16 new or changed passages indexed, 24 unchanged"), out
    assert set(stored(db)) == {f"r{i}" for i in range(40)}


def test_another_source_into_the_same_db_is_refused(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    meta = read_meta(db)
    assert meta is not None and meta.source == str(docs.resolve())
    before = stored(db)
    other = tmp_path / "other"
    other.mkdir()
    (other / "gzip.md").write_text("a different document with the same relative path", encoding="utf-8")
    code, out, err = run("index", other, "--db", db)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and err.startswith("matryo: error: ")
    assert str(docs.resolve()) in err and str(other.resolve()) in err
    assert "another --db" in err and "same SOURCE" in err
    assert stored(db) == before, "nothing was overwritten"
    code, out, err = run("index", docs / ".." / "docs", "--db", db)  # the same SOURCE, spelled differently
    assert code == 0 and out.startswith("0 new or changed passages indexed, 5 unchanged"), err


def test_replace_source_records_a_moved_or_re_exported_source(run: Run, model: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    monday, tuesday = tmp_path / "export-monday.jsonl", tmp_path / "export-tuesday.jsonl"
    rows = [{"id": "a", "text": "read a gzip file"}, {"id": "b", "text": "the cat and the dog"}]
    monday.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert run("index", monday, "--db", db, "--model", model, "--quiet")[0] == 0
    rows = [rows[0], {"id": "c", "text": "a bird in a tree"}]  # b gone, c new
    tuesday.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, _, err = run("index", tuesday, "--db", db)
    assert code == 1 and "--replace-source to record the new SOURCE" in err, err
    code, out, err = run("index", tuesday, "--db", db, "--replace-source", "--prune")
    assert code == 0 and out.startswith("1 new or changed passage indexed, 1 unchanged, 1 removed"), (out, err)
    meta = read_meta(db)
    assert meta is not None and meta.source == str(tuesday.resolve()) and set(stored(db)) == {"a", "c"}
    code, out, _ = run("index", tuesday, "--db", db)  # the new SOURCE is the DB's now, the old one is refused
    assert code == 0 and out.startswith("0 new or changed passages indexed, 2 unchanged")
    assert run("index", monday, "--db", db)[0] == 1
    write_meta(db, replace(meta, source=cli_index.DEMO_SOURCE))  # a demo DB is never taken over
    code, _, err = run("index", tuesday, "--db", db, "--replace-source")
    assert code == 1 and "holds the passages of matryo demo" in err, err


def test_db_without_a_recorded_source_adopts_the_first_one(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    raw = json.loads((db / "matryo.json").read_text())
    del raw["source"]  # as written by an older matryo
    (db / "matryo.json").write_text(json.dumps(raw))
    meta = read_meta(db)
    assert meta is not None and meta.source is None
    assert run("index", docs, "--db", db, "--quiet")[0] == 0
    meta = read_meta(db)
    assert meta is not None and meta.source == str(docs.resolve())
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "cat"}\n')
    assert run("index", rows, "--db", db)[0] == 1


@pytest.mark.parametrize(("truncate_dim", "dim"), [(0, 64), (-5, 64), (100_000, 64), (16, 0)])
def test_matryo_json_with_impossible_widths_is_damaged(
    run: Run, model: Path, docs: Path, tmp_path: Path, truncate_dim: int, dim: int
) -> None:
    # read without error, then `matryo search` printed "two-stage: first pass at -5 dims, rescored at 512"
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    raw = json.loads((db / "matryo.json").read_text())
    raw |= {"truncate_dim": truncate_dim, "dim": dim}
    (db / "matryo.json").write_text(json.dumps(raw))
    code, _, err = run("search", "cat", "--db", db)
    assert code == 1 and "is damaged (expected 1 <= truncate_dim <= dim" in err and "matryo index SOURCE" in err


class MemoryStore:
    """A dict-backed :class:`matryo.stores.Store` (no vectors): enough to test the indexing bookkeeping."""

    def __init__(self) -> None:
        self.rows: dict[str, Passage] = {}

    def hashes(self) -> dict[str, tuple[str, str]]:
        return {pid: (p.hash, p.doc) for pid, p in self.rows.items()}

    def upsert(self, passages: list[Passage]) -> None:
        self.rows.update((p.id, p) for p in passages)

    def delete(self, ids: list[str]) -> None:
        for pid in ids:
            del self.rows[pid]

    def count(self) -> int:
        return len(self.rows)

    def search(self, query: str, k: int, rescore_multiplier: float) -> list[Hit]:
        raise NotImplementedError


def test_index_passages_drops_the_passages_of_emptied_documents(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.txt").write_text("cat dog\n\nbird fish")
    (docs / "short.txt").write_text("tree")
    store = MemoryStore()
    index_passages(store, read_source(docs, chunk_size=2))
    assert set(store.rows) == {"long.txt#0", "long.txt#1", "short.txt"}
    (docs / "long.txt").write_text("  \n")
    emptied: set[str] = set()
    stats = index_passages(store, read_source(docs, chunk_size=2, on_empty=emptied.add), empty_docs=emptied)
    assert set(store.rows) == {"short.txt"} and stats.removed == 2


@pytest.mark.parametrize("store", ["lancedb", "chroma"])
def test_emptied_file_loses_its_passages(run: Run, model: Path, docs: Path, tmp_path: Path, store: str) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")[0] == 0
    (docs / "gzip.md").write_text(" \n\n ", encoding="utf-8")
    code, out, err = run("index", docs, "--db", db)
    assert code == 0 and "1 removed" in out, err
    assert set(stored(db)) == set(DOCS) - {"gzip.md"}


def test_table_row_whose_text_becomes_empty_loses_its_passages(run: Run, model: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "text": "the cat"}\n{"id": "b", "text": "the dog"}\n')
    db = tmp_path / "db"
    assert run("index", rows, "--db", db, "--model", model, "--quiet")[0] == 0
    rows.write_text('{"id": "a", "text": null}\n{"id": "b", "text": "the dog"}\n')
    assert run("index", rows, "--db", db, "--quiet")[0] == 0
    assert set(stored(db)) == {"b"}
    rows.write_text('{"id": "a", "text": ""}\n{"id": "b", "text": "   "}\n')  # every row empty now
    code, out, err = run("index", rows, "--db", db)
    assert code == 0 and "1 removed" in out, err
    assert stored(db) == {}


def test_repeated_ids_warn_even_with_quiet(run: Run, model: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "text": "cat dog bird"}\n{"id": "a", "text": "fish"}\n')
    db = tmp_path / "db"
    code, out, err = run("index", rows, "--db", db, "--model", model, "--quiet", "--chunk-size", "2")
    assert code == 0 and out == ""
    assert "matryo: warning:" in err and "'a'" in err and "line 2" in err
    assert set(stored(db)) == {"a#0", "a#1"}


def test_bad_table_line_stops_the_run_and_keeps_what_is_indexed(run: Run, model: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "text": "cat"}\n{"id": "b", "text": "dog"}\n')
    db = tmp_path / "db"
    assert run("index", rows, "--db", db, "--model", model, "--quiet")[0] == 0
    rows.write_bytes(b'{"id": "a", "text": "cat"}\n' + '{"id": "c", "text": "caf\xe9"}\n'.encode("latin-1"))
    code, _, err = run("index", rows, "--db", db, "--prune")
    assert code == 1 and "line 2 is not UTF-8" in err and "Traceback" not in err
    assert set(stored(db)) == {"a", "b"}


def test_unlistable_subfolder_is_warned_about_and_blocks_prune(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder that cannot be listed (permissions, a dropped mount) was skipped silently, and --prune then deleted its
    passages as if its files were gone. (Root ignores mode 000, so the listing error is injected.)"""
    import os

    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    real_scandir = os.scandir
    locked = str(docs / "animals")

    def scandir(path: object = ".") -> object:
        if os.fspath(path) == locked:  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    code, out, err = run("index", docs, "--db", db, "--prune")
    assert code == 0 and "0 removed" in out, out
    assert f"skipped {locked}: cannot list the folder (Permission denied)" in err
    assert "nothing pruned because 1 file was skipped" in err
    assert set(stored(db)) == set(DOCS)


def test_broken_symlink_is_warned_about_and_blocks_prune(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    target = tmp_path / "elsewhere.txt"
    target.write_text("linked text")
    (docs / "city.txt").unlink()
    (docs / "city.txt").symlink_to(target)
    target.unlink()  # the link is now broken: a file that cannot be read, not a deleted document
    code, out, err = run("index", docs, "--db", db, "--prune")
    assert code == 0 and "0 removed" in out and "broken symbolic link" in err and "city.txt" in err
    assert set(stored(db)) == set(DOCS)


def test_index_exclude_option(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    code, out, err = run("index", docs, "--db", db, "--model", model, "--exclude", "animals", "--exclude", "*.md")
    assert code == 0 and err == "" and out.startswith("2 new or changed passages indexed"), (out, err)
    assert set(stored(db)) == {"args.txt", "city.txt"}


def test_chunk_id_equal_to_another_documents_id_is_named_in_a_warning(run: Run, model: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "x", "text": "cat dog bird fish"}\n{"id": "x#1", "text": "a zebra"}\n')
    db = tmp_path / "db"
    code, out, err = run("index", rows, "--db", db, "--model", model, "--quiet", "--chunk-size", "2")
    assert code == 0 and out == ""
    assert "matryo: warning: 1 passage(s) skipped" in err
    assert "'x#1' of document 'x#1' (already used by document 'x')" in err
    assert set(stored(db)) == {"x#0", "x#1"}


def test_second_writer_is_refused_while_a_run_holds_the_db(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    # Two concurrent runs used to leave permanent duplicate rows (6096 rows for 5584 ids).
    fcntl = pytest.importorskip("fcntl")
    db = tmp_path / "db"
    db.mkdir()
    with (db / cli_index.LOCK_FILE).open("a") as held:  # an empty folder holding only the lock file is a new DB
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, _, err = run("index", docs, "--db", db, "--model", model, "--quiet")
        assert code == 1 and "another matryo command (an index run, the demo" in err and str(db) in err
        assert read_meta(db) is None, "nothing was written"
        fcntl.flock(held, fcntl.LOCK_UN)
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    assert set(stored(db)) == set(DOCS)


def test_a_busy_db_is_refused_before_the_slow_work(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the README says a second index or demo "fails at once": the demo built its corpus (34 s) and index read
    # SOURCE and loaded the model before trying the lock
    fcntl = pytest.importorskip("fcntl")
    from matryo import demo

    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    slow: list[str] = []
    monkeypatch.setattr(demo, "load_corpus", lambda db: slow.append("corpus") or [])
    monkeypatch.setattr(cli_index, "_run_encoder", lambda *a, **k: slow.append("model"))
    demo_db = tmp_path / "demo-db"
    demo_db.mkdir()
    for target, argv in ((db, ("index", docs, "--db", db)), (demo_db, ("demo", "--db", demo_db))):
        with (target / cli_index.LOCK_FILE).open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            code, _, err = run(*argv, "--quiet")
            assert code == 1 and "another matryo command" in err and str(target) in err
            fcntl.flock(held, fcntl.LOCK_UN)
    assert slow == []


@pytest.mark.parametrize("store", ["chroma", "lancedb"])
def test_chroma_search_waits_for_a_writer_and_lancedb_search_does_not(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    # A search while `matryo index` wrote a Chroma DB could leave a DB on which every later command segfaulted
    # (Chroma's on-disk client is single-process, and its readers write too); LanceDB readers are safe.
    fcntl = pytest.importorskip("fcntl")
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")[0] == 0
    monkeypatch.setattr(cli_index, "CHROMA_SEARCH_WAIT", 0.3)
    with (db / cli_index.LOCK_FILE).open("a") as held:  # as an index run holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, out, err = run("search", "gzip", "--db", db)
        if store == "chroma":
            assert code == 1 and out == "" and "a Chroma DB cannot be read while another process" in err
            assert str(db) in err
        else:
            assert code == 0 and out
        fcntl.flock(held, fcntl.LOCK_UN)
    code, out, _ = run("search", "gzip", "--db", db)
    assert code == 0 and out
    # ... and an index run cannot start while a Chroma searcher is open (here: in this process)
    search, _, _ = cli_index.open_search(db)
    code, _, err = run("index", docs, "--db", db, "--quiet")
    assert (code == 1 and "another matryo command" in err) if store == "chroma" else code == 0
    del search


def test_ids_stored_twice_are_repaired_by_the_next_run(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    import lancedb
    import pyarrow as pa
    import pyarrow.compute as pc

    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0

    def rows() -> int:
        return int(lancedb.connect(str(db)).open_table("passages").count_rows())

    table = lancedb.connect(str(db)).open_table("passages")
    twice = table.to_arrow()
    table.add(twice.filter(pc.is_in(twice["id"], pa.array(["gzip.md", "city.txt"]))))  # as two runs at once left
    assert rows() == len(DOCS) + 2
    (docs / "city.txt").write_text("the fish in the water", encoding="utf-8")  # one repaired id is also changed
    code, out, err = run("index", docs, "--db", db)
    assert code == 0 and "held 2 passage id(s) more than once" in err, err
    assert f"1 new or changed passage indexed, 4 unchanged, 0 removed; {len(DOCS)} passages" in out
    assert rows() == len(DOCS)
    assert search_json(run, db, "fish in the water", "-k", "1")[0]["id"] == "city.txt"
    code, _, err = run("index", docs, "--db", db, "--quiet")
    assert code == 0 and err == ""


@pytest.mark.parametrize("store", ["lancedb", "chroma"])
def test_interrupt_between_the_db_meta_and_the_store_files_is_continued_by_a_rerun(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    # The store files used to be made before matryo.json, so a Ctrl-C in between left a folder that the
    # re-run the interrupt message asks for refused as "not a matryo DB folder".
    import matryo.stores

    real = matryo.stores.open_store

    def interrupted(db: Path, meta: object, **kwargs: object) -> object:
        real(db, meta, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    db = tmp_path / "db"
    monkeypatch.setattr(matryo.stores, "open_store", interrupted)
    code, _, err = run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")
    assert code == 130 and "re-run the same command" in err
    monkeypatch.setattr(matryo.stores, "open_store", real)
    code, _, err = run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")
    assert code == 0, err
    assert set(stored(db)) == set(DOCS)


def test_search_huge_k_interrupt_and_long_ids(
    run: Run, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = tmp_path / "rows.jsonl"
    long = "handbook/engineering/infrastructure/deployment-checklist.md"
    lines = [json.dumps({"id": f"{long}#{i}", "text": f"release step {i} gzip"}) for i in range(3)]
    rows.write_text("\n".join(lines) + "\n")
    db = tmp_path / "db"
    assert run("index", rows, "--db", db, "--model", model, "--quiet")[0] == 0
    # -k 10**20 ended in "OverflowError: Python int too large to convert to C long"
    code, out, err = run("search", "gzip release", "--db", db, "-k", str(10**20))
    assert code == 0, err
    shown = [line.split()[2] for line in out.splitlines()[1:4]]
    # ids were cut to their first 40 characters, so the three chunks printed the same id
    assert sorted(shown) == [f"...{long[-(40 - 3 - 2) :]}#{i}" for i in range(3)]
    monkeypatch.setattr(cli_index, "open_search", lambda _db, **_kw: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _, err = run("search", "gzip", "--db", db)
    assert code == 130 and err.strip() == "matryo: interrupted", "nothing to re-run or keep in a search"


@pytest.mark.parametrize("store", ["lancedb", "chroma"])
def test_several_queries_open_the_db_once_and_answer_each_as_alone(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")[0] == 0
    queries = ["read a gzip file", "the cat and the dog", "a bird by the river", "the car to the city"]
    alone = {q: search_json(run, db, q, "-k", "2") for q in queries}
    assert all(hit["query"] == q for q in queries for hit in alone[q])
    questions = tmp_path / "questions.txt"
    # a BOM, a CRLF, blank lines and padding around a query are not part of any query
    questions.write_bytes(("\ufeff" + queries[2] + "\r\n\n   \n  " + queries[3] + "  \n").encode())
    opened = []
    real_open = cli_index.open_search
    monkeypatch.setattr(cli_index, "open_search", lambda path, **kw: opened.append(path) or real_open(path, **kw))
    code, out, err = run("search", queries[0], "--queries", questions, "--db", db, queries[1], "-k", "2", "--json")
    assert code == 0, err
    assert len(opened) == 1
    hits = [json.loads(line) for line in out.splitlines()]
    assert hits == [hit for q in queries for hit in alone[q]], "the same hits, in query order"

    # standard input; a form feed or U+2028 inside a line does not cut it, a control character is not printed
    stdin = f"\ufeffthe cat\x0cand\u2028the dog\r\n{queries[0]}\x1b[2J\n".encode()  # a BOM is no part of a query
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    code, out, err = run("search", "--queries", "-", "--db", db, "-k", "1")
    assert code == 0, err
    blocks = out.split("\n\n")
    assert len(blocks) == 3 and "\x1b" not in out
    assert blocks[0].startswith('"the cat\\fand\u2028the dog"  (') and "animals/cat.txt" in blocks[0]
    assert blocks[1].startswith(f'"{queries[0]}\\u001b[2J"  (') and "gzip.md" in blocks[1]
    assert blocks[2].startswith("two-stage: first pass at 128 dims, rescored at 256; 2 queries in ")


def test_search_without_a_query_or_with_a_bad_query_file(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    code, _, err = run("search", "--db", db)
    assert code == 2 and err.strip().splitlines()[-1].endswith("required: QUERY (or --queries FILE)"), err
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n", encoding="utf-8")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    for argv, expected in (
        (("--queries", blank), "has no query"),
        (("--queries", tmp_path / "nope.txt"), "no such file"),
        (("--queries", tmp_path), "is a folder"),
        (("--queries", latin), "is not UTF-8 text (byte 3)"),
        (("cat", " ", "--queries", blank), "QUERY 2 of 2 is empty"),
    ):
        code, out, err = run("search", *argv, "--db", db)
        assert code == 1 and out == "" and expected in err and err.count("\n") == 1, (argv, err)
    # a Latin-1 byte on standard input: refused before any search (it reached the encoder after earlier answers)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"cat\ncaf\xe9\n"), errors="surrogateescape"))
    code, out, err = run("search", "--queries", "-", "--db", db)
    assert code == 1 and out == "" and "--queries - is not UTF-8 text (byte 7); send UTF-8 text" in err, err
    monkeypatch.setattr("sys.stdin", io.StringIO("cat\ncaf\udce9\n"))  # a text stream a caller passed: decoded
    code, out, err = run("search", "--queries", "-", "--db", db)
    assert code == 1 and out == "" and "--queries - is not UTF-8 text" in err, err
    monkeypatch.setattr("sys.stdin", io.StringIO("\ufeffcat\n"))
    code, out, err = run("search", "--queries", "-", "--db", db, "--json", "-k", "1")
    assert code == 0 and json.loads(out.splitlines()[0])["query"] == "cat", err
    monkeypatch.setattr("sys.stdin", None)
    code, out, err = run("search", "--queries", "-", "--db", db)
    assert code == 1 and "there is no standard input" in err, err


def test_search_table_shows_control_characters_as_replacement(run: Run, model: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    text = "release notes \x1b]0;pwned\x07\x1b[31mred\x1b[0m gzip"
    rows.write_text(json.dumps({"id": "two\nlines.txt", "text": text}) + "\n")
    db = tmp_path / "db"
    assert run("index", rows, "--db", db, "--model", model, "--quiet")[0] == 0
    code, out, err = run("search", "gzip", "--db", db)
    assert code == 0, err
    assert out.splitlines()[1].split(None, 3)[2:] == [
        "two\ufffdlines.txt",
        "release notes \ufffd]0;pwned\ufffd\ufffd[31mred\ufffd[0m gzip",
    ]
    assert len(out.splitlines()) == 3 and "\x1b" not in out and "\x07" not in out  # header, hit, timing
    code, out, err = run("search", "gzip", "--db", db, "--json")  # the JSON output keeps them, escaped
    assert code == 0 and json.loads(out)["text"] == text and json.loads(out)["id"] == "two\nlines.txt"


def test_a_moved_model_folder_is_named_as_the_one_the_db_was_built_with(
    run: Run, model: Path, docs: Path, tmp_path: Path
) -> None:
    import shutil

    mine = tmp_path / "my-model"
    shutil.copytree(model, mine)
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", mine, "--quiet")[0] == 0
    mine.rename(tmp_path / "moved")
    clear_encoder_cache()
    for argv in (("search", "gzip", "--db", db), ("index", docs, "--db", db, "--quiet")):
        code, _, err = run(*argv)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert f"{db} was embedded with the model '{mine}' (recorded in {db}/matryo.json" in err
        assert "put the model back there" in err
    for store in ("lancedb", "chroma"):  # --model with the moved copy: the LanceDB adapter's API-worded error before
        other_db = tmp_path / f"db-{store}"
        shutil.copytree(tmp_path / "moved", mine)
        assert run("index", docs, "--db", other_db, "--model", mine, "--store", store, "--quiet")[0] == 0
        mine.rename(tmp_path / f"moved-{store}")
        clear_encoder_cache()
        code, _, err = run("index", docs, "--db", other_db, "--model", tmp_path / f"moved-{store}", "--quiet")
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert f"{other_db} was embedded with the model '{mine}' (recorded in {other_db}/matryo.json" in err, err
        assert "put the model back there" in err and "--model with another copy of the model does not change" in err


@pytest.mark.parametrize("store", ["lancedb", "chroma"])
def test_index_with_a_copy_of_the_model_keeps_the_recorded_path(
    run: Run, model: Path, docs: Path, tmp_path: Path, store: str
) -> None:
    import shutil

    first, copy = tmp_path / "first", tmp_path / "copy"
    shutil.copytree(model, first)
    shutil.copytree(model, copy)
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", first, "--store", store, "--quiet")[0] == 0
    (docs / "new.md").write_text("a slow model and a fast model", encoding="utf-8")
    code, out, err = run("index", docs, "--db", db, "--model", copy)  # the LanceDB adapter's raw refusal before
    assert code == 0 and out.startswith("1 new or changed passage indexed, 5 unchanged"), err
    meta = read_meta(db)
    assert meta is not None and meta.model == str(first)
    assert search_json(run, db, "a fast model", "-k", "1")[0]["id"] == "new.md"


def test_index_warns_when_the_model_cuts_passages_and_its_chunk_size_fits(
    run: Run, model: Path, tmp_path: Path
) -> None:
    cutting = make_tiny_model(tmp_path / "cut8", dim=32, max_length=8)
    docs = tmp_path / "long"
    docs.mkdir()
    (docs / "a.txt").write_text(" ".join(["the cat and the dog in the house"] * 4), encoding="utf-8")  # 32 words
    (docs / "b.txt").write_text("a bird in a tree", encoding="utf-8")
    code, _, err = run("index", docs, "--db", tmp_path / "db", "--model", cutting, "--quiet")
    assert code == 0
    assert "1 of the first 2 passages are longer than the 8 tokens this model embeds" in err, err
    assert "the longest has 32" in err and "--chunk-size 7 " in err, err
    # the suggested chunk size makes passages the model embeds whole
    code, _, err = run("index", docs, "--db", tmp_path / "db7", "--model", cutting, "--quiet", "--chunk-size", "7")
    assert code == 0 and "tokens this model embeds" not in err, err
    # a model that never cuts (the tiny model here, and the embedded default) says nothing
    code, _, err = run("index", docs, "--db", tmp_path / "db-whole", "--model", model, "--quiet")
    assert code == 0 and "tokens this model embeds" not in err, err
    # a BEIR corpus keeps its documents whole: the note does not suggest --chunk-size, which it refuses
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text(json.dumps({"_id": "a", "text": (docs / "a.txt").read_text()}) + "\n")
    code, _, err = run("index", beir, "--db", tmp_path / "db-beir", "--model", cutting, "--quiet")
    assert code == 0 and "1 of the first 1 passages are longer than the 8 tokens" in err, err
    assert "--chunk-size" not in err and "kept whole: use a model without a truncation" in err, err
    code, _, err = run("index", beir, "--db", tmp_path / "db-beir", "--chunk-size", "7")
    assert code == 1 and "--chunk-size does not apply to a BEIR corpus" in err, err


def test_the_summary_counts_one_passage_in_the_singular(run: Run, model: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "text": "cat"}\n')
    code, out, err = run("index", rows, "--db", tmp_path / "db", "--model", model)
    assert code == 0 and out.startswith("1 new or changed passage indexed, 0 unchanged, 0 removed; 1 passage in "), err
