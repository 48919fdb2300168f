"""`aembed_query` runs the numpy work in a worker thread (as documented), not on the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from langchain_matryo import MatryoEmbeddings


def test_aembed_query_runs_off_the_event_loop(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embeddings = MatryoEmbeddings(model=str(tiny_model_dir))
    threads = []
    real = MatryoEmbeddings.embed_query

    def spy(self, text):
        threads.append(threading.current_thread())
        return real(self, text)

    monkeypatch.setattr(MatryoEmbeddings, "embed_query", spy)
    vector = asyncio.run(embeddings.aembed_query("cat dog"))
    assert vector == real(embeddings, "cat dog")
    assert threads and all(t is not threading.main_thread() for t in threads)
