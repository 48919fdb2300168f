"""Bad input gives one line on stderr, saying what to do, and a non-zero exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli.conftest import Run

from matryo.stores import open_store, read_meta


def one_line_error(code: int, err: str) -> str:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("matryo: error: ") and "Traceback" not in err, err
    return lines[0]


def test_missing_source(run: Run, model: Path, tmp_path: Path) -> None:
    code, _, err = run("index", tmp_path / "nope", "--db", tmp_path / "db", "--model", model)
    assert "does not exist" in one_line_error(code, err)
    assert not (tmp_path / "db").exists()


def test_empty_folder_and_folder_of_empty_files(run: Run, model: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run("index", empty, "--db", tmp_path / "db", "--model", model)
    assert "no .txt/.md files" in one_line_error(code, err)
    (empty / "blank.txt").write_text("  \n\n ")
    code, _, err = run("index", empty, "--db", tmp_path / "db", "--model", model)
    assert "holds no text" in one_line_error(code, err)
    assert not (tmp_path / "db").exists(), "no DB folder is created for nothing"


def test_non_utf8_file_is_skipped_with_a_warning_naming_it(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    (docs / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    db = tmp_path / "db"
    code, _, err = run("index", docs, "--db", db, "--model", model, "--quiet")
    assert code == 0
    assert "skipped" in err and "latin1.txt" in err and "not UTF-8" in err
    meta = read_meta(db)
    assert meta is not None and "latin1.txt" not in open_store(db, meta).hashes()


def test_unreadable_file_is_skipped_with_a_warning(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = docs / "locked.txt"
    locked.write_text("secret cat")
    if os.geteuid() == 0:  # root reads anything: make this one file fail as a mode-000 file would
        original = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self.name == "locked.txt":
                raise PermissionError(13, "Permission denied")
            return original(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    else:
        locked.chmod(0)
    db = tmp_path / "db"
    code, _, err = run("index", docs, "--db", db, "--model", model, "--quiet")
    assert code == 0 and "locked.txt" in err and "cannot read" in err
    meta = read_meta(db)
    assert meta is not None and "locked.txt" not in open_store(db, meta).hashes()


def test_table_without_the_text_column(run: Run, model: Path, tmp_path: Path) -> None:
    table = tmp_path / "rows.jsonl"
    table.write_text('{"id": "1", "body": "cat"}\n')
    code, _, err = run("index", table, "--db", tmp_path / "db", "--model", model)
    line = one_line_error(code, err)
    assert "'text'" in line and "--text-field" in line and "body" in line
    code, _, err = run("index", table, "--db", tmp_path / "db", "--model", model, "--text-field", "body", "--quiet")
    assert code == 0, err


def test_bad_widths_and_k(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    code, _, err = run("index", docs, "--db", tmp_path / "db", "--model", model, "--truncate-dim", "999")
    assert "--truncate-dim" in one_line_error(code, err)
    assert run("index", docs, "--db", tmp_path / "db", "--model", model, "--quiet")[0] == 0
    code, _, err = run("search", "cat", "--db", tmp_path / "db", "-k", "0")
    assert "k must be a positive integer" in one_line_error(code, err)


def test_missing_model(run: Run, docs: Path, tmp_path: Path) -> None:
    code, _, err = run("index", docs, "--db", tmp_path / "db", "--model", tmp_path / "no-model")
    assert "does not exist" in one_line_error(code, err)


def test_entry_point_errors_are_one_line(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("matryo")
    fallback = [sys.executable, "-c", "import sys; from matryo.cli import main; sys.exit(main())"]
    cmd = [str(exe)] if exe.exists() else fallback
    proc = subprocess.run([*cmd, "search", "cat", "--db", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().startswith("matryo: error:") and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([*cmd, "eval", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "BEIR_DIR" in proc.stderr


@pytest.mark.parametrize(("store", "package"), [("lancedb", "matryo_lancedb"), ("chroma", "matryo_chroma")])
def test_missing_adapter_names_the_pip_line(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail as if not installed
    code, _, err = run("index", docs, "--db", tmp_path / "db", "--model", model, "--store", store)
    assert f"pip install {package.replace('_', '-')}" in one_line_error(code, err)
    assert not (tmp_path / "db").exists()
