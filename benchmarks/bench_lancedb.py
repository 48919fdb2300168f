"""LanceDB: a two-stage table (truncated first pass + full-dimension rescoring) vs one full-dimension column.

Usage:
    python benchmarks/bench_lancedb.py [--model PATH] [--set ../shared/data/arguana] [--index IVF_PQ|IVF_HNSW_SQ]
                                       [--queries 200] [--out benchmarks/results/lancedb.md]

A run writes its report as the ``--index`` type's section of ``--out`` (between marker comments) and keeps
the rest of that file, so the two index types' sections and the hand-written reading live in one file.

Both tables hold the same documents (BEIR corpus, title + " " + text) in a fresh LanceDB database on local
disk and get the same index type on their searched column (cosine):

* **two-stage**: ``matryo_lancedb.create_two_stage_table`` (``vector_<d>`` prefix column with the index,
  ``vector_full`` for rescoring), searched with ``TwoStageTable.search`` at the default settings;
* **single**: one ``vector`` column at full width with the ``"matryo"`` embedding function, searched with
  LanceDB's builder (``.distance_type("cosine").limit(10)``).

Reported: ingest throughput (documents/s, encoding included; the two-stage table also through LanceDB's own
``add``, which runs the embedding function once per vector column), disk size before and after the index,
index build time, per-query latency (text in, top-10 out, encoding included, one query at a time) flat and
with the index, and recall@10 against exact full-dimension search (numpy, same vectors).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.embeddings import EmbeddingFunctionConfig
from lancedb.index import HnswSq, IvfPq

from matryo.encoder import DEFAULT_MODEL_PATH
from matryo.evaluation import load_beir
from matryo.search import DEFAULT_RESCORE_MULTIPLIER
from matryo_lancedb import create_two_stage_table, default_index_params, matryo_embeddings

ROOT = Path(__file__).resolve().parents[1]
K = 10
REFINE = int(DEFAULT_RESCORE_MULTIPLIER)
ROUNDS = 2


def _model(path: str | None) -> tuple[str | None, str]:
    if path:
        return path, path
    if DEFAULT_MODEL_PATH.is_dir() and any(DEFAULT_MODEL_PATH.rglob("*.safetensors")):
        return None, "embedded default model (src/matryo/default_model)"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from standin import build_standin

    return str(build_standin()), "RANDOM STAND-IN (benchmarks/standin.py): recall numbers meaningless"


def _du(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _latency(fns: list[Callable[[str], list[str]]], queries: list[str]) -> list[tuple[float, float, list[list[str]]]]:
    """Median and p95 ms per query, and the hits, of each search; the searches take turns on every query.

    Interleaved (the order alternating from query to query), so a slow spell on a shared machine hits every
    search alike instead of one whole pass.
    """
    for fn in fns:
        fn(queries[0])  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    found: list[list[list[str]]] = [[] for _ in fns]
    for i, q in enumerate(queries):
        for j in range(len(fns)) if i % 2 == 0 else reversed(range(len(fns))):
            start = time.perf_counter()
            found[j].append(fns[j](q))
            times[j].append(time.perf_counter() - start)
    out = []
    for side, hits in zip(times, found, strict=True):
        ms = np.array(side) * 1000
        out.append((float(np.median(ms)), float(np.percentile(ms, 95)), hits))
    return out


def _recall(found: list[list[str]], exact: list[set[str]]) -> float:
    return float(np.mean([len(set(f[:K]) & e) / K for f, e in zip(found, exact, strict=True)]))


TITLE = "# LanceDB: two-stage table vs a single full-dimension column"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--set", default=str(ROOT.parent / "shared" / "data" / "arguana"))
    parser.add_argument("--index", default="IVF_PQ", choices=["IVF_PQ", "IVF_HNSW_SQ"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lancedb.md"))
    args = parser.parse_args()

    model, model_label = _model(args.model)
    corpus, all_queries, _ = load_beir(args.set)
    ids, texts = list(corpus), list(corpus.values())
    queries = list(all_queries.values())[:: max(1, len(all_queries) // args.queries)][: args.queries]
    rows = [{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)]
    work = Path(tempfile.mkdtemp(prefix="bench-lancedb-"))
    db = lancedb.connect(work)
    results: dict[str, dict[str, float]] = {"two-stage": {}, "single": {}}

    # ---- ingest: best of ROUNDS alternating rounds (the machine is shared), fresh tables each round
    full_func = matryo_embeddings(model)
    schema = pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("text", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), full_func.ndims())),
        ]
    )

    def make_two():
        return create_two_stage_table(db, "two", model)

    def make_single():
        config = EmbeddingFunctionConfig(source_column="text", vector_column="vector", function=full_func)
        return db.create_table("single", schema=schema, embedding_functions=[config])

    def make_raw():
        return create_two_stage_table(db, "two_raw", model).table

    encoder = full_func.encoder
    encoder.encode(texts[:200])  # warm the model (memory map, prefix table)
    rates: dict[str, list[float]] = {"two-stage": [], "single": [], "raw": []}
    for _ in range(ROUNDS):
        for name, make in (("two-stage", make_two), ("single", make_single), ("raw", make_raw)):
            old = {"two-stage": "two", "single": "single", "raw": "two_raw"}[name]
            if old in db:
                db.drop_table(old)  # a fresh table: "overwrite" would keep the old version's files on disk
            table = make()
            start = time.perf_counter()
            table.add(rows)  # raw: LanceDB's own add, the embedding function runs once per vector column
            rates[name].append(len(rows) / (time.perf_counter() - start))
    db.drop_table("two_raw")
    two, single = create_two_stage_table(db, "two", model, exist_ok=True), db.open_table("single")
    results["two-stage"]["ingest"], results["single"]["ingest"] = max(rates["two-stage"]), max(rates["single"])
    ingest_raw = max(rates["raw"])
    results["two-stage"]["disk"] = _du(work / "two.lance")
    results["single"]["disk"] = _du(work / "single.lance")

    # ---- exact reference
    full = encoder.encode(texts, truncate_dim=encoder.dim)
    id_array = np.array(ids)
    qv = encoder.encode(queries, truncate_dim=encoder.dim)
    exact = [set(id_array[np.argsort(-(full @ q), kind="stable")[:K]]) for q in qv]

    def two_search(q: str) -> list[str]:
        return [h["id"] for h in two.search(q, k=K)]

    refine = {"on": False}

    def single_search(q: str) -> list[str]:
        vector = encoder.encode(q, truncate_dim=encoder.dim)
        builder = single.search(vector, vector_column_name="vector").distance_type("cosine").limit(K)
        if refine["on"]:
            builder = builder.refine_factor(REFINE)
        return builder.select(["id", "text", "_distance"]).to_arrow()["id"].to_pylist()

    timed = _latency([two_search, single_search], queries)
    for name, (p50, p95, found) in zip(("two-stage", "single"), timed, strict=True):
        results[name] |= {"flat_p50": p50, "flat_p95": p95, "flat_recall": _recall(found, exact)}

    # ---- index
    start = time.perf_counter()
    report = two.create_index(args.index)
    results["two-stage"]["index_s"] = time.perf_counter() - start
    partitions, sub_vectors = default_index_params(len(rows), encoder.dim, args.index)
    if args.index == "IVF_PQ":
        config = IvfPq(distance_type="cosine", num_partitions=report.num_partitions, num_sub_vectors=sub_vectors)
    else:
        config = HnswSq(distance_type="cosine", num_partitions=report.num_partitions)
    start = time.perf_counter()
    single.create_index("vector", config=config)
    results["single"]["index_s"] = time.perf_counter() - start
    refine["on"] = True  # exact full-dim re-ranking of as many candidates as the two-stage search rescores
    results["two-stage"]["disk_indexed"] = _du(work / "two.lance")
    results["single"]["disk_indexed"] = _du(work / "single.lance")
    timed = _latency([two_search, single_search], queries)
    for name, (p50, p95, found) in zip(("two-stage", "single"), timed, strict=True):
        results[name] |= {"ann_p50": p50, "ann_p95": p95, "ann_recall": _recall(found, exact)}

    t, s = results["two-stage"], results["single"]
    single_pq = f", {sub_vectors} sub-vectors" if args.index == "IVF_PQ" else ""
    lines = [
        f"## {args.index}",
        "",
        f"Generated by `benchmarks/bench_lancedb.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"({platform.machine()}, {platform.python_version()}, lancedb {lancedb.__version__}).",
        "",
        f"- model: {model_label}, dim {encoder.dim}; first pass {two.truncate_dim}-d",
        f"- data: `{Path(args.set).name}`, {len(rows):,} documents, {len(queries)} queries (every "
        f"{max(1, len(all_queries) // args.queries)}th test query), k = {K}, default two-stage settings",
        f"- index: {args.index} cosine; two-stage: {report.num_partitions} partitions"
        + (f", {report.num_sub_vectors} sub-vectors" if report.num_sub_vectors else "")
        + f" on the prefix; single: {report.num_partitions} partitions{single_pq} on the full column"
        + f"; with the index, two-stage rescores k x {DEFAULT_RESCORE_MULTIPLIER} candidates at full width, single "
        f"uses LanceDB's refine_factor {REFINE} (the same number of exact full-width distances)",
        "- latency: one query at a time, text in (encoding included), the two searches taking turns on every query "
        "(alternating order), median / p95 in ms; recall@10 is "
        "agreement with exact full-dimension cosine top-10",
        f"- {os.cpu_count()}-CPU machine, load average {os.getloadavg()[0]:.1f} at the end of the run: absolute "
        "times are noisy, compare the rows",
        "",
        "| | two-stage | single full-dim column | ratio |",
        "|---|---|---|---|",
        f"| ingest (docs/s, encoding included, best of {ROUNDS}) | {t['ingest']:,.0f} | {s['ingest']:,.0f} | "
        f"{t['ingest'] / s['ingest']:.2f} |",
        f"| ingest through LanceDB's own `add` (docs/s) | {ingest_raw:,.0f} (2 encodes) | {s['ingest']:,.0f} | "
        f"{ingest_raw / s['ingest']:.2f} |",
        f"| disk, no index (MiB) | {t['disk']:.1f} | {s['disk']:.1f} | {t['disk'] / s['disk']:.2f} |",
        f"| disk with index (MiB) | {t['disk_indexed']:.1f} | {s['disk_indexed']:.1f} | "
        f"{t['disk_indexed'] / s['disk_indexed']:.2f} |",
        f"| index build (s) | {t['index_s']:.1f} | {s['index_s']:.1f} | {t['index_s'] / s['index_s']:.2f} |",
        f"| query, flat: median / p95 (ms) | {t['flat_p50']:.1f} / {t['flat_p95']:.1f} | "
        f"{s['flat_p50']:.1f} / {s['flat_p95']:.1f} | {t['flat_p50'] / s['flat_p50']:.2f} |",
        f"| query, {args.index}: median / p95 (ms) | {t['ann_p50']:.1f} / {t['ann_p95']:.1f} | "
        f"{s['ann_p50']:.1f} / {s['ann_p95']:.1f} | {t['ann_p50'] / s['ann_p50']:.2f} |",
        f"| recall@10 vs exact, flat | {t['flat_recall']:.3f} | {s['flat_recall']:.3f} | |",
        f"| recall@10 vs exact, {args.index} | {t['ann_recall']:.3f} | {s['ann_recall']:.3f} | |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    _write_section(Path(args.out), args.index, text)
    shutil.rmtree(work, ignore_errors=True)


def _write_section(out: Path, index: str, section: str) -> None:
    """Put this index type's report into ``out`` between its markers, keeping the rest of the file.

    The results file holds one generated section per index type plus hand-written text; a run replaces
    only its own section (or appends it, to a new file under the report's title).
    """
    begin = f"<!-- generated by bench_lancedb.py --index {index}: begin -->"
    end = f"<!-- generated by bench_lancedb.py --index {index}: end -->"
    block = f"{begin}\n{section.strip()}\n{end}"
    old = out.read_text(encoding="utf-8") if out.exists() else f"{TITLE}\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    from standin import run_main

    run_main(main)
