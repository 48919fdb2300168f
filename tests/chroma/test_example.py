"""The Chroma example runs offline with the embedded default model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from matryo.encoder import DEFAULT_MODEL_PATH

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "chroma_quickstart.py"


def test_each_use_is_under_40_lines() -> None:
    source = EXAMPLE.read_text().splitlines()
    starts = [i for i, line in enumerate(source) if line.startswith("def ")]
    assert len(starts) == 2
    for start, end in zip(starts, [*starts[1:], len(source)], strict=True):
        assert end - start < 40


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_dir(), reason="the embedded default model has not landed yet")
def test_quickstart_runs_offline() -> None:
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(  # noqa: S603
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("plain Chroma: ['gzip'")
    assert "two-stage:" in proc.stdout and "'pizza'" not in lines[2]  # the where filter held
    assert "4 records" in lines[-1]
