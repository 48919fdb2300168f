"""Store errors: a refused write is not a damaged DB, Chroma's errors are one line, a missing store is no empty DB."""

from __future__ import annotations

import json
import os
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


def _limited_run(limit: int, *argv: str | Path) -> subprocess.CompletedProcess[str]:
    """``matryo *argv`` in a child whose files may not grow past ``limit`` bytes."""

    def small() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    command = [sys.executable, "-c", MAIN, *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, preexec_fn=small, check=False, timeout=120)  # noqa: PLW1509, S603


@pytest.mark.parametrize("store", STORES)
def test_a_refused_write_keeps_the_db_and_says_to_rerun(run: Run, model: Path, tmp_path: Path, store: str) -> None:
    corpus, db = tmp_path / "c.jsonl", tmp_path / "db"
    write_corpus(corpus, "gzip")
    assert run("index", corpus, "--db", db, "--model", model, "--store", store, "--quiet")[0] == 0
    write_corpus(corpus, "write")  # every text changed: the re-run writes more than the size limit allows
    child = _limited_run(200 * 1024, "index", corpus, "--db", db, "--quiet")  # EFBIG, as on a full disk
    line = one_line_error(child.returncode, child.stderr)
    assert f"writing {db} failed" in line and ("(os error 27)" in line or "(code: 778) disk I/O error" in line), line
    assert "what was committed is kept" in line and "re-run the same command" in line, line
    assert "damaged" not in line and "NEW_FOLDER" not in line and "usable" in line, line

    assert search_text(run, db, "gzip file").startswith("gzip file")  # the DB is fine
    code, out, err = run("index", corpus, "--db", db)  # the same command without the limit completes the run
    assert code == 0 and "1500 passages in" in out, err
    assert search_text(run, db, "write file").startswith("write file")


def test_a_first_lancedb_commit_refused_is_redone_by_the_rerun(
    run: Run, model: Path, docs: Path, tmp_path: Path
) -> None:
    db = tmp_path / "db"
    # 600 bytes: matryo.json fits, the table's first manifest does not (a disk that fills as the DB is made)
    child = _limited_run(600, "index", docs, "--db", db, "--model", model, "--quiet")
    line = one_line_error(child.returncode, child.stderr)
    assert "(os error 27)" in line and "re-run the same command" in line, line
    assert (db / "passages.lance").is_dir() and not list(db.glob("passages.lance/_versions/*.manifest"))

    line = one_line_error(*run("search", "gzip", "--db", db)[::2])  # an incomplete DB, said so, nothing written
    assert "no LanceDB table 'passages' (its first commit failed)" in line and "incomplete" in line, line
    assert (db / "passages.lance").is_dir()
    code, out, err = run("index", docs, "--db", db, "--model", model)  # the same command makes the table again
    assert code == 0 and "5 passages in" in out, err
    assert search_text(run, db, "gzip file").startswith("how to read a gzip file")


def test_a_lancedb_table_without_its_versions_is_called_incomplete_and_kept(
    run: Run, model: Path, docs: Path, tmp_path: Path
) -> None:
    # a partial copy (rsync of the data but not _versions/): a bare "Table 'passages' was not found"
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    shutil.rmtree(db / "passages.lance" / "_versions")
    data = sorted((db / "passages.lance" / "data").iterdir())
    for argv in (("search", "gzip", "--db", db), ("index", docs, "--db", db, "--quiet")):
        line = one_line_error(*run(*argv)[::2])
        assert "has matryo.json but no version of its LanceDB table (passages.lance/_versions/*.manifest)" in line
        assert "incomplete" in line and "into a new --db folder" in line and "Re-index it" not in line, line
    assert sorted((db / "passages.lance" / "data").iterdir()) == data  # the data files are left alone


def test_a_refused_matryo_json_leaves_no_temp_file_and_the_rerun_completes(
    run: Run, model: Path, docs: Path, tmp_path: Path
) -> None:
    db = tmp_path / "db"
    db.mkdir()
    (db / ".DS_Store").write_bytes(b"")  # a desktop's file does not make the folder foreign
    child = _limited_run(0, "index", docs, "--db", db, "--model", model, "--quiet")
    line = one_line_error(child.returncode, child.stderr)
    assert f"writing {db} failed: matryo.json could not be written" in line and "(OSError: [Errno 27]" in line, line
    assert "re-run the same command" in line, line
    assert not list(db.glob(".matryo.json.*")), "the temporary file is removed"
    assert not (db / "matryo.json").exists()
    (db / f".matryo.json.{os.getpid() + 1}.tmp").write_text("{", encoding="utf-8")  # one left by a killed run
    code, out, err = run("index", docs, "--db", db, "--model", model)
    assert code == 0 and "5 passages in" in out, err


def test_a_db_folder_that_cannot_be_made_is_refused_before_any_work(
    run: Run, model: Path, docs: Path, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("x")
    db = tmp_path / "afile" / "db"
    for argv in (("index", docs, "--db", db, "--model", model), ("demo", "--db", db, "--model", model)):
        line = one_line_error(*run(*argv)[::2])  # was a bare "[Errno 20] Not a directory", after the corpus was built
        assert f"--db {db} cannot be created: {tmp_path / 'afile'} is a file. Use another --db folder." in line, line


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
