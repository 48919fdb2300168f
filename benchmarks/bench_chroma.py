"""Chroma: the two-stage collection's full-vector stores against a plain full-width Chroma collection.

Usage:
    python benchmarks/bench_chroma.py [--model PATH] [--data ../shared/data/arguana] [--docs N]
                                      [--queries 200] [--rounds 3] [--configs ...] [--out FILE]
    (the committed report: --queries 150 --rounds 2; a run of part of the configs or documents is written only
    with --out)

Every configuration gets a fresh ``PersistentClient`` folder, adds the ArguAna corpus (title + " " + text,
encoded by matryo in every case, so add time = encoding + Chroma's write), then runs the test queries one at
a time (``n_results=10``, Chroma's default ``include``: documents, metadatas, distances). Reported:

* add time, and the size of the Chroma folder on disk after the queries;
* per-query latency (median and 95th percentile over ``--rounds`` rounds, query encoding included);
* recall@10 against exact full-dimension search (numpy brute force over float32 vectors, same run).

Configurations: ``plain full`` is an ordinary collection of full-width vectors (one HNSW pass);
``first pass only`` is the truncated collection without rescoring; the rest are
:class:`matryo_chroma.TwoStageCollection` with each full-vector store (``metadata`` with float32/float16/int8
base64 codes, ``sibling`` collection, ``documents`` re-encoded at query time), at the default
``truncate_dim`` and ``rescore_multiplier``. The model is the embedded default when it exists, else the
random stand-in of ``benchmarks/standin.py`` (recall is then meaningless; sizes and speed hold).
"""

from __future__ import annotations

import argparse
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import chromadb
import numpy as np

from matryo.cache import load_encoder
from matryo.encoder import DEFAULT_MODEL_PATH
from matryo.evaluation import load_beir
from matryo.search import DEFAULT_RESCORE_MULTIPLIER, DEFAULT_TRUNCATE_DIM
from matryo_chroma import MatryoEmbeddingFunction, TwoStageCollection

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    ("plain full", None, None),
    ("first pass only", None, None),
    ("metadata float32", "metadata", "float32"),
    ("metadata float16", "metadata", "float16"),
    ("metadata int8", "metadata", "int8"),
    ("sibling", "sibling", "float32"),
    ("documents", "documents", "float32"),
]


def _model(path: str | None) -> tuple[str | None, str]:
    if path:
        return path, path
    if DEFAULT_MODEL_PATH.is_dir():
        return None, "embedded default model"
    sys.path.insert(0, str(Path(__file__).parent))
    from standin import build_standin  # noqa: PLC0415

    return str(build_standin()), "RANDOM STAND-IN (benchmarks/standin.py): recall is meaningless"


def _disk_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def _build(
    label: str, store: str | None, codec: str | None, model: str | None, ids: list[str], docs: list[str], work: Path
) -> dict[str, Any]:
    """Create and fill one configuration; return its add time and a one-query search function."""
    folder = work / label.replace(" ", "_")
    client = chromadb.PersistentClient(str(folder))
    encoder = load_encoder(model)
    start = time.perf_counter()
    if store is None:
        width = None if label == "plain full" else min(DEFAULT_TRUNCATE_DIM, encoder.dim)
        col = client.create_collection("bench", embedding_function=MatryoEmbeddingFunction(model, truncate_dim=width))
        for s in range(0, len(ids), 1000):
            vectors = encoder.encode(docs[s : s + 1000], truncate_dim=width or encoder.dim)
            col.add(ids=ids[s : s + 1000], documents=docs[s : s + 1000], embeddings=vectors)  # type: ignore[arg-type]

        def search(text: str) -> list[str]:
            vector = encoder.encode([text], truncate_dim=width or encoder.dim)
            return list(col.query(query_embeddings=vector, n_results=10)["ids"][0])  # type: ignore[arg-type]
    else:
        ts = TwoStageCollection.create(client, "bench", model=model, store=store, codec=codec or "float32")
        ts.add(ids=ids, documents=docs)

        def search(text: str) -> list[str]:
            return list(ts.query(query_texts=[text], n_results=10)["ids"][0])

    add_s = time.perf_counter() - start
    search(docs[0][:200])  # warm-up
    return {"config": label, "add_s": add_s, "folder": folder, "search": search, "client": client}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "arguana"))
    parser.add_argument("--docs", type=int, default=None, help="first N corpus documents (default: all)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="latency rounds over all queries")
    parser.add_argument("--configs", nargs="*", default=[c[0] for c in CONFIGS])
    default_out = ROOT / "benchmarks" / "results" / "chroma.md"
    parser.add_argument("--out", default=None, help=f"markdown report (default {default_out}, for a whole run)")
    args = parser.parse_args(argv)
    whole = args.docs is None and set(args.configs) == {c[0] for c in CONFIGS} and args.model is None

    model, model_label = _model(args.model)
    encoder = load_encoder(model)
    corpus, all_queries, _ = load_beir(args.data)
    ids = list(corpus)[: args.docs]
    docs = [corpus[i] for i in ids]
    queries = list(all_queries.values())[: args.queries]
    full_docs = encoder.encode(docs, truncate_dim=encoder.dim)
    full_queries = encoder.encode(queries, truncate_dim=encoder.dim)
    top = np.argsort(-(full_queries @ full_docs.T), axis=1, kind="stable")[:, :10]
    exact = [[ids[j] for j in row] for row in top]

    work = Path(tempfile.mkdtemp(prefix="bench-chroma-"))
    rows: list[dict[str, Any]] = []
    try:
        for label, store, codec in CONFIGS:
            if label in args.configs:
                rows.append(_build(label, store, codec, model, ids, docs, work))
                print(label, f"add {rows[-1]['add_s']:.2f} s", flush=True)
        # Latency: every query is run against every configuration in turn (interleaved), so load from other
        # processes on a shared machine hits all configurations alike.
        for row in rows:
            row["latencies"], row["found"] = [], []
        order = random.Random(0)
        for round_ in range(args.rounds):
            for text in queries:
                for row in order.sample(rows, len(rows)):  # a fresh order per query: no position bias
                    t0 = time.perf_counter()
                    found = row["search"](text)
                    row["latencies"].append((time.perf_counter() - t0) * 1e3)
                    if round_ == 0:
                        row["found"].append(found)
        for row in rows:
            row["p50_ms"] = float(np.median(row["latencies"]))
            row["p95_ms"] = float(np.percentile(row["latencies"], 95))
            hits = [len(set(f) & set(e)) / 10 for f, e in zip(row["found"], exact, strict=True)]
            row["recall"] = float(np.mean(hits))
            row["disk_mb"] = _disk_mb(row["folder"])
            print(row["config"], {k: row[k] for k in ("add_s", "disk_mb", "p50_ms", "p95_ms", "recall")}, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    plain = next((r for r in rows if r["config"] == "plain full"), rows[0])
    lines = [
        "# Chroma two-stage collection: full-vector stores vs a plain full-width collection",
        "",
        f"Generated by `{' '.join(['python', 'benchmarks/bench_chroma.py', *sys.argv[1:]])}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"chromadb {chromadb.__version__}, Python {platform.python_version()}, {platform.machine()}.",
        f"Model: {model_label} ({encoder.dim}-d). Data: {Path(args.data).name}, {len(ids)} documents, "
        f"{len(queries)} queries "
        f"one at a time x {args.rounds} rounds, each query against every config in random order, n_results=10. "
        f"Two-stage: truncate_dim={min(DEFAULT_TRUNCATE_DIM, encoder.dim)}, "
        f"rescore_multiplier={DEFAULT_RESCORE_MULTIPLIER}. Shared 2-core machine: compare rows, not absolutes.",
        "",
        "| config | add (s) | disk (MB) | query p50 (ms) | query p95 (ms) | p50 vs plain | recall@10 vs exact |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['config']} | {r['add_s']:.2f} | {r['disk_mb']:.1f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
        f"{r['p50_ms'] / plain['p50_ms']:.2f}x | {r['recall']:.4f} |"
        for r in rows
    ]
    print("\n".join(lines))
    if args.out is None and not whole:  # a partial run must not replace the committed report of a whole run
        print(f"A partial run: not written to {default_out} (pass --out FILE to keep it).", file=sys.stderr)
        return
    out = Path(default_out if args.out is None else args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    from standin import run_main

    run_main(main)
