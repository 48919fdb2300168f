"""benchmarks/bench_two_stage.py: its latency anchor and the tie rule of its quality columns."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from matryo import StaticEncoder
from matryo.index import NumpyIndex
from matryo.search import SearchHits, candidate_count

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_two_stage.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    saved = dict(os.environ)  # the script sets BLAS thread variables on import
    try:
        spec = importlib.util.spec_from_file_location("bench_two_stage", SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_two_stage"] = module
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sys.modules.pop("bench_two_stage", None)
    return module


def test_latency_anchor_is_plain_brute_force(bench: ModuleType) -> None:
    # The anchor was NumpyIndex(mode="exact"), which re-normalises and rescores a band: 1.14-1.36x slower than this.
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(200, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    ids = [f"d{i}" for i in range(200)]
    search = bench.plain_brute_force(docs, ids, 11)
    for q in docs[:5]:
        got, scores = search(q[None, :])
        want = np.argsort(-(docs @ q))[:11]
        assert got == [ids[i] for i in want] and np.all(np.diff(scores) <= 0)


def test_quality_columns_cut_ties_as_trec_eval(bench: ModuleType, tiny_model: Path) -> None:
    # NumpyIndex returns tied hits in insertion order (d0 first); the benchmark now scores them as matryo eval does.
    hits = SearchHits([f"d{i}" for i in range(12)], np.ones(12, dtype=np.float32))
    assert list(bench._top10(hits, "q", ignore_identical=False)) == [
        "d9",
        "d8",
        "d7",
        "d6",
        "d5",
        "d4",
        "d3",
        "d2",
        "d11",
        "d10",
    ]
    assert "d9" not in bench._top10(hits, "d9", ignore_identical=True)
    # A two-stage configuration is scored on its whole shortlist: the same candidates as the search it stands for.
    enc = StaticEncoder.from_pretrained(tiny_model)
    texts = [f"text number {i} about cats and dogs {i % 7}" for i in range(60)]
    vecs = enc.encode(texts)
    index: NumpyIndex[str] = NumpyIndex(enc, truncate_dim=32, store="float32")
    index.add([f"d{i}" for i in range(60)], vectors=vecs)
    whole = bench._shortlist_hits(index, vecs[:3], 5, 2.0)
    assert [len(h) for h in whole] == [candidate_count(5, 2.0)] * 3
    for h, top in zip(whole, index.search_vectors(vecs[:3], k=5, rescore_multiplier=2.0), strict=True):
        assert set(top.ids) <= set(h.ids)
