"""examples/langchain_rag.py runs end to end (in process, for speed) and prints scored passages."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest
from tests.conftest import make_tiny_model
from tests.langchain.helpers import needs_default_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "langchain_rag.py"


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), *args])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    return capsys.readouterr().out


def _passages(out: str) -> dict[str, list[tuple[float, str]]]:
    """question -> [(score, source)] parsed from the example's output."""
    result: dict[str, list[tuple[float, str]]] = {}
    question = ""
    for line in out.splitlines():
        if line.startswith("Q: "):
            question = line[3:]
            result[question] = []
        elif match := re.match(r"\s+\d+\. \[(-?[\d.]+)\] (\S+):", line):
            result[question].append((float(match[1]), match[2]))
    return result


def test_example_runs_with_a_tiny_model_in_memory_and_in_chroma(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run(monkeypatch, capsys, "--model", str(tiny_model_dir), "-k", "2", "read a gzip file", "parse a line")
    passages = _passages(out)
    assert list(passages) == ["read a gzip file", "parse a line"]
    assert all(len(hits) == 2 for hits in passages.values())
    assert all(a >= b for hits in passages.values() for (a, _), (b, _) in zip(hits, hits[1:], strict=False))
    persist = ["--model", str(tiny_model_dir), "--persist-dir", str(tmp_path / "chroma"), "read a gzip file"]
    first_out = _run(monkeypatch, capsys, *persist)
    again_out = _run(monkeypatch, capsys, *persist)  # reopens the existing Chroma store
    first, again = _passages(first_out), _passages(again_out)
    assert first == again and len(first["read a gzip file"]) == 3
    assert "indexed in" in first_out and "reused" not in first_out
    assert "indexed in" not in again_out  # the second run indexes nothing
    assert re.search(r"reused \d+ records from ", again_out)
    # another model of the same width over the same index: its queries would be compared with the stored
    # vectors of the first model, returning unrelated passages with confident scores
    other = make_tiny_model(tmp_path / "other", dim=64, seed=99)
    with pytest.raises(SystemExit, match=r"was built with another model .*Run with the --model it was built with"):
        _run(monkeypatch, capsys, "--model", str(other), "--persist-dir", str(tmp_path / "chroma"), "read a gzip file")
    # an index written before the model was recorded is taken as this run's, and recorded from then on
    import chromadb

    client = chromadb.PersistentClient(str(tmp_path / "chroma"))
    collection = client.get_collection("stdlib_docs")
    collection.modify(metadata={"note": "old"})  # what the previous example wrote: no model recorded
    out = _run(monkeypatch, capsys, *persist)
    assert "does not record its model; taking it to be this run's" in out and _passages(out) == first
    with pytest.raises(SystemExit, match=r"was built with another model"):
        _run(monkeypatch, capsys, "--model", str(other), "--persist-dir", str(tmp_path / "chroma"), "read a gzip file")


@needs_default_model
def test_example_with_the_default_model_finds_the_right_modules(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    passages = _passages(_run(monkeypatch, capsys))
    assert len(passages) == 4
    sources = {question: [source.split(".")[0] for _, source in hits] for question, hits in passages.items()}
    assert "gzip" in sources["how do I read a compressed gzip file"]
    assert "argparse" in sources["parse command line options and flags"]
    assert "subprocess" in sources["run an external program and capture its output"]
    assert "statistics" in sources["find the median of a list of numbers"]


@pytest.mark.parametrize(
    ("missing", "args"), [("langchain_text_splitters", []), ("langchain_chroma", ["--persist-dir", "unused"])]
)
def test_a_missing_optional_package_names_the_install_line(
    missing: str,
    args: list[str],
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # import raises ModuleNotFoundError, as when not installed
    with pytest.raises(SystemExit, match=r"Install it with: pip install .*langchain-text-splitters"):
        _run(monkeypatch, capsys, "--model", str(tiny_model_dir), *args)


@pytest.mark.parametrize("k", ["0", "-2"])
def test_example_refuses_a_k_below_one_with_a_usage_error(
    k: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:  # -k 0 ended in a raw pydantic ValidationError traceback
        _run(monkeypatch, capsys, "-k", k, "read a gzip file")
    assert exit_info.value.code == 2
    assert f"argument -k: expected 1 or more passages per question, got {k}" in capsys.readouterr().err
