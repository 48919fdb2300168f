"""`matryo search --db DB` in a terminal, without QUERY or --queries: queries typed at a query> prompt."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.cli.conftest import Run


class _Terminal:
    """Standard input as a terminal that holds ``lines`` and then an end of file (Ctrl-D).

    A line may be a function, called when the line is read (something done in another terminal meanwhile), or an
    exception, raised then.
    """

    def __init__(self, lines: list[object]) -> None:
        self.lines = list(lines)

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        while self.lines:
            line = self.lines.pop(0)
            if isinstance(line, BaseException):
                raise line
            if not callable(line):
                return str(line)
            line()
        return ""


@pytest.fixture
def db(run: Run, model: Path, docs: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "db"
    assert run("index", docs, "--db", folder, "--model", model, "--store", "chroma", "--quiet")[0] == 0
    return folder


def test_each_typed_line_is_searched_until_end_of_file(run: Run, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(["gzip file\n", "   \n", "cat and dog\n"]))
    code, out, err = run("search", "--db", db, "-k", "1")
    assert code == 0, err
    blocks = out.strip().split("\n\n")  # a blank line was not a query
    assert len(blocks) == 2, out
    assert "gzip.md" in blocks[0] and "animals/cat.txt" in blocks[1], out
    # stdout is not the terminal (a file): each answer is headed by its query
    assert blocks[0].startswith('"gzip file"  (') and blocks[1].startswith('"cat and dog"  ('), out
    assert all(b.splitlines()[0].endswith(" ms)") and "search " not in b for b in blocks), out  # one time each
    assert f"{db}: 5 passages, opened in " in err and "Ctrl-D" in err, err
    assert "Other matryo commands cannot use this Chroma DB until the prompt ends" in err, err
    assert err.count("query> ") == 4  # one prompt per line read, the last one answered by Ctrl-D


def test_json_output_holds_only_results_and_the_prompt_goes_to_stderr(
    run: Run, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(["gzip file\n"]))
    code, out, err = run("search", "--db", db, "-k", "2", "--json")
    assert code == 0, err
    hits = [json.loads(line) for line in out.splitlines()]
    assert [h["query"] for h in hits] == ["gzip file", "gzip file"] and hits[0]["id"] == "gzip.md"
    assert "query> " in err


def test_a_line_that_is_not_utf8_is_refused_and_the_prompt_goes_on(
    run: Run, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    undecodable = UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte")  # a strict stdin
    # "caf\udce9": a Latin-1 byte as a C locale's surrogateescape reads it
    monkeypatch.setattr(sys, "stdin", _Terminal(["caf\udce9 gzip\n", undecodable, "gzip file\n"]))
    code, out, err = run("search", "--db", db, "-k", "1", "--json")
    assert code == 0, err
    assert [json.loads(line)["query"] for line in out.splitlines()] == ["gzip file"]
    assert err.count("that line is not UTF-8 text (is the terminal set to another encoding?); type it again") == 2


def test_a_prompt_on_a_lancedb_db_sees_what_is_indexed_meanwhile(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "lance-db"
    assert run("index", docs, "--db", folder, "--model", model, "--quiet")[0] == 0

    def index_more() -> None:  # another terminal adds a document while the prompt waits
        (docs / "zebra.txt").write_text("zebra zebra zoo", encoding="utf-8")
        from matryo import cli

        assert cli.main(["index", str(docs), "--db", str(folder), "--quiet"]) == 0

    monkeypatch.setattr(sys, "stdin", _Terminal(["zebra zoo\n", index_more, "zebra zoo\n"]))
    code, out, err = run("search", "--db", folder, "-k", "10", "--json")
    assert code == 0, err
    hits = [json.loads(line) for line in out.splitlines()]
    assert len(hits) == 5 + 6 and "zebra.txt" not in [h["id"] for h in hits[:5]], out
    assert hits[5]["id"] == "zebra.txt", out  # the second answer, from the DB as it is now (6 passages, k=10)


def test_a_prompt_stops_when_the_db_is_rebuilt_with_another_model(
    run: Run, model: Path, other_model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "lance-db"
    assert run("index", docs, "--db", folder, "--model", model, "--quiet")[0] == 0

    def rebuild() -> None:  # another terminal deletes the DB and indexes it again with another model
        from matryo import cli

        shutil.rmtree(folder)
        assert cli.main(["index", str(docs), "--db", str(folder), "--model", str(other_model), "--quiet"]) == 0

    monkeypatch.setattr(sys, "stdin", _Terminal(["gzip\n", rebuild, "gzip\n"]))
    code, out, err = run("search", "--db", folder, "-k", "1", "--json")
    assert code == 1 and len(out.splitlines()) == 1, out  # the first answer, then no answer from the wrong model
    gone = "was deleted, or rebuilt with another store, model or first-pass width (or is being rebuilt), since this"
    assert gone in err and "Traceback" not in err, err
    monkeypatch.setattr(sys, "stdin", _Terminal(["gzip\n", lambda: shutil.rmtree(folder), "gzip\n"]))
    code, out, err = run("search", "--db", folder, "-k", "1", "--json")
    assert code == 1 and len(out.splitlines()) == 1 and gone in err, err  # deleted


def test_without_a_terminal_a_query_is_still_required(run: Run, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal(["gzip\n"])
    monkeypatch.setattr(terminal, "isatty", lambda: False)
    monkeypatch.setattr(sys, "stdin", terminal)
    code, _out, err = run("search", "--db", db)
    assert code == 2 and err.strip().endswith("required: QUERY (or --queries FILE)"), err
    assert terminal.lines == ["gzip\n"]  # nothing was read


def _read(fd: int, until: str, seconds: float = 60) -> str:
    seen = b""
    end = time.monotonic() + seconds
    while until.encode() not in seen and time.monotonic() < end:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
    return seen.decode(errors="replace")


def test_a_real_terminal_prompts_searches_and_ctrl_c_ends_it(db: Path) -> None:
    parent, child = pty.openpty()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", "import sys; from matryo.cli import main; sys.exit(main())", "search", "--db", str(db)],
        stdin=child,
        stdout=child,
        stderr=child,
        close_fds=True,
    )
    os.close(child)
    try:
        assert "query> " in _read(parent, "query> ")
        os.write(parent, b"read a gzip file\n")
        answer = _read(parent, "query> ")
        assert "gzip.md" in answer and "search " in answer, answer
        os.write(parent, b"\x1b[A")  # the up arrow: readline's history brings the last query back
        assert "read a gzip file" in _read(parent, "read a gzip file", seconds=10)
        os.write(parent, b"\x15")  # Ctrl-U: clear the line again
        # Ctrl-C at the prompt ends the session like Ctrl-D. Not at once: a signal between readline's prompt and
        # its select() is only noticed at the next key (CPython's readline loop), which a person never meets; on
        # a starved machine a second Ctrl-C is sent
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=30)
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(parent)
