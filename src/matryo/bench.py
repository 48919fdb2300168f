"""``matryo bench``: encoding speed on this machine, against the tokenizer alone and the usual peers.

A short, self-contained version of the project's ``benchmarks/bench_encode.py`` that works from an
installed package: the texts are the standard library's docstrings (:mod:`matryo.demo`), as passages and
as short queries (their first eight words). Contenders: matryo at full width and at a truncated width,
the tokenizer alone (``encode_batch_fast``: a floor no static encoder can beat), and, when they are
installed, sentence-transformers and model2vec on the same model folder. matryo gets a new encoder for each
timed run, so its word cache never holds the texts from a previous run. Each case is warmed up, then
timed in rounds that run every case back to back; the best run counts (the least disturbed by other processes).
"""

# ruff: noqa: T201  # a command line prints its results

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

__all__ = ["run"]

Encode = Callable[[list[str]], Any]


def _texts(quick: bool) -> tuple[list[str], list[str]]:
    from matryo.demo import iter_docstrings

    limit = 2000 if quick else 8000
    passages: list[str] = []
    for passage in iter_docstrings():
        passages.append(passage.text)
        if len(passages) == limit:
            break
    queries = [" ".join(p.split(":", 1)[-1].split()[:8]) for p in passages]
    return queries, passages


class _FreshMatryo:
    """matryo with a new encoder for every timed run: caches start cold, as on a first call in a new process."""

    def __init__(self, model: str | None, width: int | None) -> None:
        self._model, self._width = model, width
        self.reset()

    def reset(self) -> None:
        from matryo.encoder import StaticEncoder

        self._encoder = StaticEncoder.from_pretrained(self._model)
        self._encoder.encode(["warm up"], truncate_dim=self._width)

    def __call__(self, texts: list[str]) -> Any:
        return self._encoder.encode(texts, truncate_dim=self._width)


def _time_all(
    jobs: dict[tuple[str, str, str], tuple[Encode, list[str]]], rounds: int
) -> dict[tuple[str, str, str], float]:
    """Texts/s of each job: warm up once, then ``rounds`` rounds over all jobs back to back, best run kept."""
    for fn, texts in jobs.values():
        fn(texts[:200])
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(rounds):
        for key, (fn, texts) in jobs.items():
            reset = getattr(fn, "reset", None)
            if reset is not None:
                reset()
            start = time.perf_counter()
            fn(texts)
            best[key] = min(best[key], time.perf_counter() - start)
    return {key: len(jobs[key][1]) / seconds for key, seconds in best.items()}


def _peers(folder: str, width: int) -> list[tuple[str, Encode | None, Encode | None, str]]:
    """(label, full-width encode, truncated encode, note) for each installed peer."""
    peers: list[tuple[str, Encode | None, Encode | None, str]] = []
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        peers.append(("sentence-transformers", None, None, "not installed"))
    else:
        try:
            st = SentenceTransformer(folder, device="cpu")
            peers.append(
                (
                    "sentence-transformers",
                    lambda t: st.encode(t, normalize_embeddings=True),
                    lambda t: st.encode(t, normalize_embeddings=True, truncate_dim=width),
                    "batch 32 (default)",
                )
            )
        except Exception as exc:  # noqa: BLE001  # any load failure is reported in the table, not raised
            peers.append(("sentence-transformers", None, None, f"cannot load the model: {type(exc).__name__}"))
    try:
        from model2vec import StaticModel
    except ImportError:
        peers.append(("model2vec", None, None, "not installed"))
    else:
        try:
            m2v = StaticModel.from_pretrained(folder, normalize=True)
            peers.append(("model2vec", lambda t: m2v.encode(t), None, "full width only"))
        except Exception as exc:  # noqa: BLE001
            peers.append(("model2vec", None, None, f"cannot load the model: {type(exc).__name__}"))
    return peers


def run(model: str | None = None, *, quick: bool = False) -> str:
    """Time the contenders and return a markdown report.

    Args:
        model: Model folder or hub id (default: the embedded model).
        quick: 2,000 texts and two timed rounds instead of 8,000 and five.

    Returns:
        The report: texts per second for queries and passages at full and truncated width, and how many
        times faster matryo is (for the tokenizer floor: what fraction of its speed matryo reaches).
    """
    from matryo.encoder import DEFAULT_MODEL_PATH, StaticEncoder
    from matryo.search import DEFAULT_TRUNCATE_DIM

    encoder = StaticEncoder.from_pretrained(model)
    folder = str(DEFAULT_MODEL_PATH) if model is None else model
    width = min(DEFAULT_TRUNCATE_DIM, encoder.dim)
    queries, passages = _texts(quick)
    rounds = 2 if quick else 5
    tokenizer = encoder.tokenizer
    fast = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    cases: list[tuple[str, Encode | None, Encode | None, str]] = [
        ("matryo", _FreshMatryo(model, None), _FreshMatryo(model, width), "new encoder per run (cold caches)"),
        ("tokenizer floor", lambda t: fast(t, add_special_tokens=False), None, "tokenize only, no vectors"),
        *_peers(folder, width),
    ]
    jobs = {
        (label, set_name, kind): (fn, texts)
        for label, full, short, _ in cases
        for set_name, texts in (("queries", queries), ("passages", passages))
        for kind, fn in (("full", full), ("short", short))
        if fn is not None
    }
    speeds = _time_all(jobs, rounds)

    def cell(label: str, set_name: str, kind: str) -> str:
        value = speeds.get((label, set_name, kind))
        if value is None:
            return "-"
        mine = speeds[("matryo", set_name, kind)]
        ratio = f" ({mine / value:.2f}x)" if label != "matryo" else ""
        return f"{value:,.0f}{ratio}"

    lines = [
        f"matryo bench: {encoder.name_or_path} ({encoder.dim} dims, {encoder.stored_dtype}); "
        f"{len(queries)} queries and {len(passages)} passages from the stdlib docstrings; best of {rounds}",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "",
        "texts/s; in brackets: matryo's speed / this row's (>1: matryo is faster)",
        "",
        f"| encoder | queries {encoder.dim}-d | queries {width}-d | passages {encoder.dim}-d | passages {width}-d "
        "| note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, _, _, note in cases:
        cells = [cell(label, s, k) for s in ("queries", "passages") for k in ("full", "short")]
        if label == "tokenizer floor":
            cells = [
                cell(label, s, "full") if k == "full" else ""
                for s in ("queries", "passages")
                for k in ("full", "short")
            ]
        lines.append(f"| {label} | {' | '.join(cells)} | {note} |")
    return "\n".join(lines)
