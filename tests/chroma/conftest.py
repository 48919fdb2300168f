"""Fixtures for the Chroma adapter tests: tiny models, a word corpus, and a real Chroma server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import TINY_WORDS, make_default_width_model, make_tiny_model

VENV_BIN = Path(sys.executable).parent
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "arguana"


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 64-d tiny random model (first pass at 16-d in most tests)."""
    return str(make_tiny_model(tmp_path_factory.mktemp("chroma_models") / "tiny64", dim=64, seed=3))


def word_corpus(n: int, seed: int = 0, words_per_doc: int = 12) -> list[str]:
    """``n`` deterministic documents made of the tiny model's vocabulary."""
    words = [w for w in TINY_WORDS if not w.startswith("##")]
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, words_per_doc)) for _ in range(n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real ``chroma run`` server on 127.0.0.1 (a free port); always terminated. Yields the port."""
    chroma = shutil.which("chroma", path=str(VENV_BIN)) or shutil.which("chroma")
    if chroma is None:
        pytest.fail("The `chroma` CLI (shipped with chromadb) is not installed next to this Python.")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma_server")
    log = (path / "server.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603
        [chroma, "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}: {(path / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200 and "nanosecond heartbeat" in json.loads(resp.read()):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chroma run did not answer its heartbeat within 60 s")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def default24_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 64-d tiny model whose config_sentence_transformers.json stores a default truncate_dim of 24."""
    return str(make_default_width_model(tmp_path_factory.mktemp("chroma_models") / "tiny64_default24", seed=4))
