"""Store errors: a refused write is not a damaged DB, Chroma's errors are one line, a missing store is no empty DB."""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import chromadb
import pytest
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import Settings
from tests.cli.conftest import Run

from matryo.errors import StoreFormatError
from matryo.stores import StoreWriteError, open_store, read_meta

STORES = ["lancedb", "chroma"]
MAIN = "import sys; from matryo.cli import main; sys.exit(main())"


def one_line_error(code: int, err: str) -> str:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("matryo: error: ") and "Traceback" not in err, err
    return lines[0]


def write_corpus(path: Path, word: str, n: int = 1500) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"d{i}", "text": f"{word} file number {i} " * 8}) + "\n")


def search_text(run: Run, db: Path, query: str) -> str:
    code, out, err = run("search", query, "--db", db, "-k", "1", "--json")
    assert code == 0, err
    return str(json.loads(out)["text"])


def _small_files() -> None:
    """Run in the child: files may not grow past 200 KiB, as on a full disk (EFBIG instead of SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200 * 1024, resource.RLIM_INFINITY))


@pytest.mark.parametrize("store", STORES)
def test_a_refused_write_keeps_the_db_and_says_to_rerun(run: Run, model: Path, tmp_path: Path, store: str) -> None:
    corpus, db = tmp_path / "c.jsonl", tmp_path / "db"
    write_corpus(corpus, "gzip")
    assert run("index", corpus, "--db", db, "--model", model, "--store", store, "--quiet")[0] == 0
    write_corpus(corpus, "write")  # every text changed: the re-run writes more than the size limit allows
    argv = [sys.executable, "-c", MAIN, "index", str(corpus), "--db", str(db), "--quiet"]
    child = subprocess.run(argv, capture_output=True, text=True, preexec_fn=_small_files, check=False, timeout=120)  # noqa: PLW1509, S603
    line = one_line_error(child.returncode, child.stderr)
    assert f"writing {db} failed" in line and ("(os error 27)" in line or "(code: 778) disk I/O error" in line), line
    assert "what was committed is kept" in line and "re-run the same command" in line, line
    assert "damaged" not in line and "NEW_FOLDER" not in line and "usable" in line, line

    assert search_text(run, db, "gzip file").startswith("gzip file")  # the DB is fine
    code, out, err = run("index", corpus, "--db", db)  # the same command without the limit completes the run
    assert code == 0 and "1500 passages in" in out, err
    assert search_text(run, db, "write file").startswith("write file")


def test_store_write_error_is_an_oserror() -> None:
    assert issubclass(StoreWriteError, OSError) and str(StoreWriteError("writing db failed")) == "writing db failed"


def test_damaged_chroma_db_is_one_line_naming_the_db(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    built = tmp_path / "built"
    assert run("index", docs, "--db", built, "--model", model, "--store", "chroma", "--quiet")[0] == 0
    db = tmp_path / "db"  # a copy: the Chroma client of `built` stays cached in this process
    shutil.copytree(built, db)
    sqlite = db / "chroma" / "chroma.sqlite3"
    sqlite.write_bytes(sqlite.read_bytes()[:4096])  # as a bad copy leaves it
    for argv in (("search", "gzip", "--db", db), ("index", docs, "--db", db, "--quiet")):
        SharedSystemClient.clear_system_cache()  # each command is a process of its own; Chroma caches a failed start
        line = one_line_error(*run(*argv)[::2])
        assert f"{db} cannot be read: Chroma failed on its files" in line and "malformed" in line, line
        assert "damaged" in line and "matryo index SOURCE --db NEW_FOLDER" in line, line


@pytest.mark.parametrize("store", STORES)
def test_missing_store_files_are_an_incomplete_db_not_an_empty_one(
    run: Run, model: Path, docs: Path, tmp_path: Path, store: str
) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--store", store, "--quiet")[0] == 0
    meta = read_meta(db)
    assert meta is not None
    shutil.rmtree(db / ("passages.lance" if store == "lancedb" else "chroma"))
    for lock in db.glob(".matryo-*.lock"):
        lock.unlink()
    before = sorted(p.name for p in db.iterdir())
    with pytest.raises(StoreFormatError, match=r"no (LanceDB table|Chroma folder).*incomplete.*matryo index SOURCE"):
        open_store(db, meta, create=False)
    assert sorted(p.name for p in db.iterdir()) == before, "nothing is created"
    SharedSystemClient.clear_system_cache()  # Chroma would reuse the deleted folder's client of this process
    assert open_store(db, meta).count() == 0  # create=True (indexing) still makes it


def test_chroma_folder_without_the_collection_is_incomplete(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    built = tmp_path / "built"
    assert run("index", docs, "--db", built, "--model", model, "--store", "chroma", "--quiet")[0] == 0
    db = tmp_path / "db"
    shutil.copytree(built, db)
    client = chromadb.PersistentClient(path=str(db / "chroma"), settings=Settings(anonymized_telemetry=False))
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    meta = read_meta(db)
    assert meta is not None
    with pytest.raises(StoreFormatError, match=r"no Chroma collection 'matryo-passages'.*incomplete"):
        open_store(db, meta, create=False)
    assert client.list_collections() == []
