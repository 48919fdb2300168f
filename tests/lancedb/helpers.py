"""Helpers for the LanceDB adapter tests (importable as ``tests.lancedb.helpers``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import TINY_WORDS

from matryo import DEFAULT_MODEL_PATH

WORDS = [w for w in TINY_WORDS if not w.startswith("#")]
ROOT = Path(__file__).resolve().parents[2]


def make_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` rows of 8 random tiny-vocabulary words, ids "0".."n-1", tag "a"/"b" alternating."""
    rng = np.random.default_rng(seed)
    return [{"id": str(i), "text": " ".join(rng.choice(WORDS, 8)), "tag": "ab"[i % 2]} for i in range(n)]


def start_python(code: str) -> subprocess.Popen[str]:
    """Start a fresh Python process running ``code`` (no network, repo root as cwd)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


needs_default_model = pytest.mark.skipif(
    not (DEFAULT_MODEL_PATH / "modules.json").is_file() and not (DEFAULT_MODEL_PATH / "config.json").is_file(),
    reason="the embedded default model is not in src/matryo/default_model yet (trained by another engineer)",
)
