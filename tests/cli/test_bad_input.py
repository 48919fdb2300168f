"""Bad input gives one line on stderr, saying what to do, and a non-zero exit code."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli.conftest import Run, usage_error

from matryo.search import candidate_count
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
    assert "no .txt/.md/.rst files" in one_line_error(code, err)
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
    assert "-k: expected a positive integer, got '0'" in usage_error(code, err)


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
    # Nothing is on PyPI yet, so the line is the one that works today: an editable install from a checkout.
    assert f"pip install -e integrations/{store}" in one_line_error(code, err)
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize(
    ("store", "package", "dependency"),
    [("lancedb", "matryo_lancedb", "pyarrow"), ("chroma", "matryo_chroma", "chromadb")],
)
def test_an_adapter_without_its_dependency_names_the_dependency(
    run: Run,
    model: Path,
    docs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: str,
    package: str,
    dependency: str,
) -> None:
    # said "'matryo_lancedb' ... is not installed" when the adapter was there but pyarrow was not (pip --no-deps)
    import importlib
    import importlib.util

    real_import = importlib.import_module

    def without_dependency(name: str, package_: str | None = None) -> object:
        if name == package:
            raise ModuleNotFoundError(f"No module named {dependency!r}", name=dependency)
        return real_import(name, package_)

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib, "import_module", without_dependency)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == dependency else real_find_spec(name, *a)
    )
    code, _, err = run("index", docs, "--db", tmp_path / "db", "--model", model, "--store", store)
    line = one_line_error(code, err)
    assert f"{package!r}, which is installed but cannot be imported (No module named {dependency!r})" in line
    assert f"the module {dependency!r} it imports is missing; reinstall {package!r}" in line
    assert f"pip install -e integrations/{store}" in line
    assert not (tmp_path / "db").exists()


@pytest.mark.parametrize(
    "error",
    [
        ImportError("cannot import name 'as_numbers' from 'matryo.vectors'", name="matryo.vectors"),  # old core
        ImportError("cannot import name 'EmbeddingFunctionConfig' from 'lancedb.embeddings'", name="lancedb"),
        ImportError("libarrow.so: cannot open shared object file"),  # a compiled library, no module name
        ModuleNotFoundError("No module named 'lancedb.embeddings.registry'", name="lancedb.embeddings.registry"),
    ],
)
def test_an_adapter_that_fails_to_import_says_the_versions_may_not_fit(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: ImportError
) -> None:
    # said "pip install matryo" / "pip install lancedb" (both installed), or "is not installed" with no module name
    import importlib

    real_import = importlib.import_module

    def failing(name: str, package_: str | None = None) -> object:
        if name == "matryo_lancedb":
            raise error
        return real_import(name, package_)

    monkeypatch.setattr(importlib, "import_module", failing)
    code, _, err = run("index", docs, "--db", tmp_path / "db", "--model", model)
    line = one_line_error(code, err)
    assert f"'matryo_lancedb', which is installed but cannot be imported ({error})" in line
    assert "versions that do not fit; reinstall them: pip install -e integrations/lancedb" in line
    assert "pip install matryo" not in line and "pip install lancedb" not in line


def test_truncated_gzip_table_is_one_line(run: Run, model: Path, tmp_path: Path) -> None:
    data = gzip.compress("".join(json.dumps({"id": f"r{i}", "text": f"row {i}"}) + "\n" for i in range(500)).encode())
    rows = tmp_path / "rows.jsonl.gz"
    rows.write_bytes(data[: len(data) // 2])
    code, _, err = run("index", rows, "--db", tmp_path / "db", "--model", model)
    line = one_line_error(code, err)
    assert "rows.jsonl.gz" in line and "truncated gzip" in line


def write_small_beir(root: Path) -> Path:
    root.mkdir()
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "cat"}\n{"_id": "d2", "text": "dog"}\n')
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "cat"}\n')
    (root / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return root


def test_eval_damaged_beir_files_are_one_line(run: Run, model: Path, tmp_path: Path) -> None:
    beir = write_small_beir(tmp_path / "beir")
    data = gzip.compress("".join(json.dumps({"_id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(500)).encode())
    (beir / "corpus.jsonl").unlink()
    (beir / "corpus.jsonl.gz").write_bytes(data[: len(data) // 2])
    code, _, err = run("eval", beir, "--model", model)
    assert "truncated gzip" in one_line_error(code, err)
    (beir / "corpus.jsonl.gz").unlink()
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "text": "cat"}\n{"text": "no id"}\n')
    code, _, err = run("eval", beir, "--model", model)
    line = one_line_error(code, err)
    assert "corpus.jsonl line 2" in line and "'_id'" in line
    code, _, err = run("index", beir, "--db", tmp_path / "db", "--model", model)
    line = one_line_error(code, err)
    assert "corpus.jsonl line 2" in line and "'_id'" in line


@pytest.mark.parametrize("multiplier", ["inf", "nan", "1e12", "1e308"])
def test_huge_or_infinite_rescore_multiplier(
    run: Run, model: Path, docs: Path, tmp_path: Path, multiplier: str
) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    code, out, err = run("search", "cat", "--db", db, "--rescore-multiplier", multiplier, "--json")
    if multiplier in ("inf", "nan"):
        assert "--rescore-multiplier: expected a finite number >= 1" in usage_error(code, err)
    else:
        assert code == 0 and len(out.splitlines()) == 5, err


def test_candidate_count_is_finite_and_capped() -> None:
    assert candidate_count(10, 1e12) == candidate_count(10, 1e308) == 1_000_000
    assert candidate_count(2_000_000, 1) == 2_000_000, "never fewer candidates than hits"
    assert candidate_count(10, 32) == 320
    for bad in (math.inf, math.nan, 0.5):
        with pytest.raises(ValueError, match="finite"):
            candidate_count(10, bad)


def test_blank_query_is_refused(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    code, _, err = run("search", "   ", "--db", db)
    assert "QUERY is empty" in one_line_error(code, err)


def test_zero_widths_are_refused_not_replaced_by_the_default(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    code, _, err = run("index", docs, "--db", tmp_path / "db", "--model", model, "--truncate-dim", "0")
    assert "--truncate-dim: expected a positive integer, got '0'" in usage_error(code, err)
    assert not (tmp_path / "db").exists()
    beir = write_small_beir(tmp_path / "beir")
    code, _, err = run("eval", beir, "--model", model, "--first-pass-dim", "0")
    assert "--first-pass-dim: expected a positive integer" in usage_error(code, err)


def test_bad_row_among_the_first_ones_creates_no_db_folder(run: Run, model: Path, tmp_path: Path) -> None:
    table = tmp_path / "rows.jsonl"
    table.write_text('{"id": 1, "text": "cat"}\n{"id": 2, "text": "dog"}\n{"id": 5, "body": "no text"}\n')
    db = tmp_path / "db"
    code, _, err = run("index", table, "--db", db, "--model", model)
    line = one_line_error(code, err)
    assert "rows.jsonl line 3 has no 'text' field" in line and "--text-field" not in line
    assert not db.exists(), "the DB folder is made only once the first rows are read"


def test_damaged_lancedb_files_are_one_line_naming_the_db(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    for data in (db / "passages.lance" / "data").glob("*.lance"):
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # as a full disk or a bad copy leaves it
    for argv in (("search", "gzip", "--db", db), ("index", docs, "--db", db, "--quiet")):
        line = one_line_error(*run(*argv)[::2])
        assert f"{db} cannot be read" in line and "damaged" in line and "matryo index SOURCE --db NEW_FOLDER" in line


@pytest.mark.parametrize(
    "argv",
    [
        ("search", "cat", "--db", "db", "-k", "abc"),
        ("index", "docs", "--db", "db", "--chunk-size", "0"),
        ("index", "docs", "--db", "db", "--truncate-dim", "-3"),
        ("eval", "beir", "--dims", "64,abc"),
        ("eval", "beir", "--first-pass-dim", "0"),
        ("search", "cat", "--db", "db", "--rescore-multiplier", "0.5"),
    ],
)
def test_bad_option_values_are_usage_errors(run: Run, argv: tuple[str, ...]) -> None:
    # `-k abc` exited 2 but `-k 0`, `--chunk-size 0`, `--truncate-dim 0` and `--dims abc` exited 1.
    assert f"argument {argv[-2]}" in usage_error(*run(*argv)[::2])


def test_db_that_is_a_file_is_named_clearly(run: Run, model: Path, docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("a file")
    for argv in (("index", docs, "--db", db, "--model", model), ("search", "cat", "--db", db), ("demo", "--db", db)):
        line = one_line_error(*run(*argv)[::2])
        assert f"--db {db} is a file" in line and "Errno" not in line
    assert db.read_text() == "a file"


def test_version(run: Run) -> None:
    from matryo import __version__

    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"matryo {__version__}"


def test_closed_stdout_pipe_exits_quietly(model: Path, tmp_path: Path) -> None:
    # `matryo search ... --json | head -1` printed "matryo: error: [Errno 32] Broken pipe" and exited 1.
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before matryo writes anything
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from matryo.cli import main; sys.exit(main())", "info", str(model)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == "", proc.stderr
