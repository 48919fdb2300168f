"""examples/lancedb_quickstart.py runs end to end (in process) and prints ranked hits for both uses."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest
from tests.lancedb.helpers import needs_default_model

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lancedb_quickstart.py"


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), *args])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    return capsys.readouterr().out


def _scores(out: str) -> list[list[float]]:
    """Scores of each printed result block, in order."""
    blocks: list[list[float]] = []
    for line in out.splitlines():
        if line.rstrip().endswith(":") and not re.match(r"\s+-?\d\.\d{3}", line):
            blocks.append([])
        elif match := re.match(r"\s+(-?\d\.\d{3})  ", line):
            blocks[-1].append(float(match[1]))
    return [b for b in blocks if b]


def test_example_runs_with_a_tiny_model(
    tiny64: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run(monkeypatch, capsys, "--model", str(tiny64), "--db", str(tmp_path / "db"), "read a file")
    assert "single column (64-d)" in out and "two-stage (64-d first pass, 64-d rescoring)" in out
    blocks = _scores(out)
    assert len(blocks) == 3 and all(len(b) == 3 and b == sorted(b, reverse=True) for b in blocks)
    assert all("[shell]" in line for line in out.split("where topic = 'shell':")[1].splitlines()[1:] if line.strip())


@needs_default_model
def test_example_with_the_default_model_finds_tar(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run(monkeypatch, capsys)
    first_hits = [line.split()[1].rstrip(":") for line in out.splitlines() if re.match(r"\s+-?\d\.\d{3}  ", line)]
    assert "tar" in first_hits[:3] or "gzip" in first_hits[:3]


def test_example_reruns_on_one_db_without_duplicates_or_lance_warnings(
    tiny64: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    args = [str(EXAMPLE), "--model", str(tiny64), "--db", str(tmp_path / "db"), "read a file"]
    outputs = []
    for _ in range(2):
        monkeypatch.setattr(sys, "argv", args)
        runpy.run_path(str(EXAMPLE), run_name="__main__")
        out, err = capfd.readouterr()
        assert "WARN" not in err  # Lance's "No existing dataset ... it will be created" for an overwrite
        outputs.append(out)
    assert outputs[0] == outputs[1]  # the second run replaced both tables instead of adding to them
