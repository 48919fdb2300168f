# ruff: noqa: E402  (BLAS thread variables must be set before numpy is imported)
"""Two-stage Matryoshka search: quality, size and latency of every first-pass configuration.

Usage:
    python benchmarks/bench_two_stage.py [--model PATH] [--data ../shared/data] [--sets arguana scifact]
                                         [--dims 64 128 256 512] [--codecs float32 int8 binary]
                                         [--multipliers 1 2 4 8 16 32] [--latency-queries 100]
                                         [--out benchmarks/results/two_stage.md]

For each BEIR set (documents = corpus, title + " " + text; test queries) and each first-pass
configuration (Matryoshka prefix width x codec x rescore_multiplier), :class:`matryo.index.NumpyIndex`
runs the two-stage search and reports:

* recall@10 against the exact full-dimension top-10 (float32 brute force, same run);
* NDCG@10 against the qrels (linear gain, ideal DCG over all judged relevant documents), next to
  single-stage full-dimension and single-stage first-pass-only search;
* bytes per document in the first-pass index and in the rescoring store;
* per-query latency (one query at a time, vectors already encoded) as a ratio to exact full-dimension
  brute force over float32 vectors, timed in alternation with it in the same process.

ArguAna: the document whose id equals the query id is never retrieved (BEIR's convention): every search
asks for k + 1 hits and drops it. The model is the embedded default model when it exists, else the
random stand-in of ``benchmarks/standin.py`` (quality numbers are then meaningless; sizes and speed hold).
"""

from __future__ import annotations

import os

# One BLAS thread: per-query latency is a single-threaded brute-force number, and on a shared 2-core box a
# multi-threaded BLAS spin-waits on busy cores (measured: 6.6 ms instead of 0.2 ms per 128-d query).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from matryo.encoder import DEFAULT_MODEL_PATH, StaticEncoder
from matryo.evaluation import load_beir, ndcg_at_k
from matryo.index import DEFAULT_FIRST_PASS, NumpyIndex
from matryo.search import DEFAULT_RESCORE_MULTIPLIER, DEFAULT_TRUNCATE_DIM, SearchHits

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "two_stage.md"
K = 10


def _load_model(path: str | None) -> tuple[StaticEncoder, str]:
    if path:
        return StaticEncoder.from_pretrained(path), path
    if DEFAULT_MODEL_PATH.is_dir() and any(DEFAULT_MODEL_PATH.rglob("*.safetensors")):
        return StaticEncoder.from_pretrained(None), "embedded default model (src/matryo/default_model)"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from standin import build_standin  # noqa: PLC0415

    return StaticEncoder.from_pretrained(str(build_standin())), "RANDOM STAND-IN (benchmarks/standin.py)"


def _top10(hits: SearchHits[str], qid: str, ignore_identical: bool) -> tuple[list[str], list[float]]:
    ids, scores = [], []
    for doc_id, score in zip(hits.ids, hits.scores.tolist(), strict=True):
        if ignore_identical and doc_id == qid:
            continue
        ids.append(doc_id)
        scores.append(score)
    return ids[:K], scores[:K]


class Evaluator:
    """Turns a batch of hits into recall@10 (vs the exact top-10) and NDCG@10 (vs qrels)."""

    def __init__(self, qids: list[str], qrels: dict[str, dict[str, int]], ignore_identical: bool) -> None:
        self.qids = qids
        self.qrels = qrels
        self.ignore = ignore_identical
        self.exact: list[set[str]] = []

    def run(self, hits: Sequence[SearchHits[str]]) -> dict[str, dict[str, float]]:
        out = {}
        for qid, h in zip(self.qids, hits, strict=True):
            ids, scores = _top10(h, qid, self.ignore)
            out[qid] = dict(zip(ids, scores, strict=True))
        return out

    def set_exact(self, hits: Sequence[SearchHits[str]]) -> None:
        self.exact = [set(r) for r in self.run(hits).values()]

    def scores(self, hits: Sequence[SearchHits[str]]) -> tuple[float, float]:
        run = self.run(hits)
        recall = float(
            np.mean([len(set(run[q]) & ex) / len(ex) for q, ex in zip(self.qids, self.exact, strict=True) if ex])
        )
        return recall, ndcg_at_k(run, self.qrels, K)


def _ratio(
    search: Callable[[np.ndarray], object], exact: Callable[[np.ndarray], object], queries: np.ndarray, repeats: int = 3
) -> float:
    """Latency of ``search`` over latency of ``exact``, timed in alternation so load drift on a shared box cancels.

    Each round times every query (one per call) with both functions; the ratio of the best rounds is returned.
    """
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for slot, fn in enumerate((search, exact)):
            start = time.perf_counter()
            for row in queries:
                fn(row[None, :])
            best[slot] = min(best[slot], time.perf_counter() - start)
    return best[0] / best[1]


def bench_set(enc: StaticEncoder, name: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    corpus, queries, qrels = load_beir(folder)
    doc_ids = list(corpus)
    qids = list(queries)
    ignore = name == "arguana"
    kk = K + 1 if ignore else K
    t0 = time.perf_counter()
    docs = enc.encode([corpus[d] for d in doc_ids], truncate_dim=enc.dim)
    doc_seconds = time.perf_counter() - t0
    qvec = enc.encode([queries[q] for q in qids], truncate_dim=enc.dim)
    lat_q = qvec[: args.latency_queries]
    ev = Evaluator(qids, qrels, ignore)
    print(f"[{name}] {len(doc_ids)} docs, {len(qids)} queries, docs encoded in {doc_seconds:.2f}s", file=sys.stderr)

    exact_index: NumpyIndex[str] = NumpyIndex(enc, truncate_dim=None, store="float32")
    exact_index.add(doc_ids, vectors=docs)
    exact_hits = exact_index.search_vectors(qvec, k=kk, mode="exact")
    ev.set_exact(exact_hits)
    full_ndcg = ev.scores(exact_hits)[1]

    def exact(q: np.ndarray) -> object:
        return exact_index.search_vectors(q, k=kk, mode="exact")

    start = time.perf_counter()
    for row in lat_q:
        exact(row[None, :])
    exact_latency = (time.perf_counter() - start) / len(lat_q)
    result: dict[str, Any] = {
        "docs": len(doc_ids),
        "queries": len(qids),
        "full_ndcg": full_ndcg,
        "exact_ms": exact_latency * 1e3,
        "doc_encode_s": doc_seconds,
        "grid": {},
        "stores": {},
    }
    for dim in args.dims:
        for codec in args.codecs:
            index: NumpyIndex[str] = NumpyIndex(
                enc, truncate_dim=dim, first_pass=codec, store="float32", calibration=docs
            )
            index.add(doc_ids, vectors=docs)
            fp_bytes = index.first_pass_bytes_per_vector
            single = index.search_vectors(qvec, k=kk, mode="first_pass")
            recall, ndcg = ev.scores(single)
            lat = _ratio(lambda q, i=index: i.search_vectors(q, k=kk, mode="first_pass"), exact, lat_q)
            result["grid"][dim, codec, 0] = (fp_bytes, recall, ndcg, lat)
            for mult in args.multipliers:
                hits = index.search_vectors(qvec, k=kk, rescore_multiplier=mult)
                recall, ndcg = ev.scores(hits)
                lat = _ratio(lambda q, i=index, m=mult: i.search_vectors(q, k=kk, rescore_multiplier=m), exact, lat_q)
                result["grid"][dim, codec, mult] = (fp_bytes, recall, ndcg, lat)
            print(f"[{name}] dim {dim} {codec} done", file=sys.stderr)
    # Rescoring stores, at the default first pass.
    dim = min(args.default_dim, enc.dim)
    for store in ("float32", "float16", "int8", "none"):
        index = NumpyIndex(enc, truncate_dim=dim, first_pass=args.default_codec, store=store, calibration=docs)
        index.add(doc_ids, [corpus[d] for d in doc_ids], vectors=docs)
        hits = index.search_vectors(qvec, k=kk, rescore_multiplier=args.default_multiplier)
        recall, ndcg = ev.scores(hits)
        lat = _ratio(
            lambda q, i=index: i.search_vectors(q, k=kk, rescore_multiplier=args.default_multiplier),
            exact,
            lat_q[:50] if store == "none" else lat_q,
        )
        result["stores"][store] = (index.store_bytes_per_vector, recall, ndcg, lat)
    return result


def _pct(ndcg: float, full: float) -> str:
    return f"{100 * (ndcg - full) / full:+.2f}%" if full else "n/a"


def _summary(results: dict[str, dict[str, Any]], enc: StaticEncoder, args: argparse.Namespace) -> list[str]:
    """Headline rows: the library defaults and every >= 16x-smaller first pass at its largest multiplier."""
    sets = list(results)
    full_bytes = 4 * enc.dim
    default = (min(DEFAULT_TRUNCATE_DIM, enc.dim), DEFAULT_FIRST_PASS, DEFAULT_RESCORE_MULTIPLIER)
    picks = [("**default**", default)] if default in results[sets[0]]["grid"] else []
    top = max(args.multipliers)
    for dim in args.dims:
        for codec in args.codecs:
            key = (dim, codec, top)
            if key in results[sets[0]]["grid"] and full_bytes / results[sets[0]]["grid"][key][0] >= 16:
                picks.append((">= 16x smaller", key))
    lines = [
        "Summary (`matryo.search.DEFAULT_TRUNCATE_DIM` x `DEFAULT_RESCORE_MULTIPLIER`, "
        "`matryo.index.DEFAULT_FIRST_PASS`;"
        " float32 rescoring store):",
        "",
        "| config | dim | codec | mult | B/doc | x smaller | "
        + " | ".join(f"{s} recall@10 | {s} dNDCG | {s} lat" for s in sets)
        + " |",
        "|---|---|---|---|---|---|" + "---|---|---|" * len(sets),
    ]
    for label, (dim, codec, mult) in picks:
        cells = []
        for s in sets:
            fp_bytes, recall, ndcg, lat = results[s]["grid"][dim, codec, mult]
            cells.append(f"{recall:.4f} | {_pct(ndcg, results[s]['full_ndcg'])} | {lat:.2f}")
        fp_bytes = results[sets[0]]["grid"][dim, codec, mult][0]
        lines.append(
            f"| {label} | {dim} | {codec} | {mult} | {fp_bytes} | {full_bytes / fp_bytes:.0f}x | "
            + " | ".join(cells)
            + " |"
        )
    return [*lines, ""]


def render(results: dict[str, dict[str, Any]], enc: StaticEncoder, label: str, args: argparse.Namespace) -> str:
    sets = list(results)
    full_bytes = 4 * enc.dim
    lines = [
        "# Two-stage Matryoshka search (benchmarks/bench_two_stage.py)",
        "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `{' '.join(['python', *sys.argv])}`.",
        f"Model: {label} (fingerprint {enc.fingerprint}), full width {enc.dim} "
        f"(float32 full vector = {full_bytes} B/doc). "
        f"Machine: {platform.machine()}, {platform.python_version()}, numpy {np.__version__}; shared 2-core box, "
        "so latency ratios are indicative (best of 3 rounds alternating with exact search, one query per call, "
        "vectors pre-encoded, one BLAS thread).",
        "",
        *_summary(results, enc, args),
        "Exact full-dimension baseline (float32 brute force):",
        "",
        "| set | docs | queries | NDCG@10 full | exact latency ms/query | corpus encode s |",
        "|---|---|---|---|---|---|",
    ]
    for s in sets:
        r = results[s]
        row = f"| {s} | {r['docs']} | {r['queries']} | {r['full_ndcg']:.4f} | {r['exact_ms']:.3f} |"
        lines.append(f"{row} {r['doc_encode_s']:.2f} |")
    lines += [
        "",
        "Grid: first-pass width x codec x rescore_multiplier (`1-stage` = first pass alone, no rescoring). "
        "Rescoring store: float32 full vectors. `x smaller` = full float32 bytes / first-pass bytes. "
        "recall@10 is against the exact full-dimension top-10; dNDCG is relative to full-dimension NDCG@10; "
        "`lat` is latency / exact full-dimension latency.",
        "",
        "| dim | codec | mult | B/doc | x smaller | "
        + " | ".join(f"{s} recall@10 | {s} NDCG@10 | {s} dNDCG | {s} lat" for s in sets)
        + " |",
        "|---|---|---|---|---|" + "---|---|---|---|" * len(sets),
    ]
    for dim in args.dims:
        for codec in args.codecs:
            for mult in (0, *args.multipliers):
                cells = []
                fp_bytes = 0
                for s in sets:
                    fp_bytes, recall, ndcg, lat = results[s]["grid"][dim, codec, mult]
                    cells.append(f"{recall:.4f} | {ndcg:.4f} | {_pct(ndcg, results[s]['full_ndcg'])} | {lat:.2f}")
                mult_label = "1-stage" if mult == 0 else str(mult)
                lines.append(
                    f"| {dim} | {codec} | {mult_label} | {fp_bytes} | {full_bytes / fp_bytes:.0f}x | "
                    + " | ".join(cells)
                    + " |"
                )
    lines += [
        "",
        f"Rescoring store at first pass {min(args.default_dim, enc.dim)}-d {args.default_codec}, "
        f"rescore_multiplier {args.default_multiplier} (`none` re-encodes the candidate texts per query):",
        "",
        "| store | B/doc | " + " | ".join(f"{s} recall@10 | {s} NDCG@10 | {s} lat" for s in sets) + " |",
        "|---|---|" + "---|---|---|" * len(sets),
    ]
    for store in ("float32", "float16", "int8", "none"):
        cells = []
        store_bytes = 0
        for s in sets:
            store_bytes, recall, ndcg, lat = results[s]["stores"][store]
            cells.append(f"{recall:.4f} | {ndcg:.4f} | {lat:.2f}")
        lines.append(f"| {store} | {store_bytes} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Configurations meeting the target on every set (recall@10 >= 0.99, NDCG@10 within 0.5% of full, "
        "first pass >= 4x smaller), smallest first:",
        "",
    ]
    passing = []
    for (dim, codec, mult), (fp_bytes, *_rest) in results[sets[0]]["grid"].items():
        if mult == 0 or full_bytes / fp_bytes < 4:
            continue
        ok = all(
            results[s]["grid"][dim, codec, mult][1] >= 0.99
            and results[s]["grid"][dim, codec, mult][2] >= 0.995 * results[s]["full_ndcg"]
            for s in sets
        )
        if ok:
            lat = max(results[s]["grid"][dim, codec, mult][3] for s in sets)
            passing.append((fp_bytes, lat, dim, codec, mult))
    for fp_bytes, lat, dim, codec, mult in sorted(passing):
        lines.append(
            f"- {dim}-d {codec}, x{mult}: {fp_bytes} B/doc ({full_bytes / fp_bytes:.0f}x smaller), worst lat {lat:.2f}"
        )
    if not passing:
        lines.append("- none")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the embedded default model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sets", nargs="+", default=["arguana", "scifact"])
    parser.add_argument("--dims", nargs="+", type=int, default=[64, 128, 256, 512])
    parser.add_argument("--codecs", nargs="+", default=["float32", "int8", "binary"])
    parser.add_argument("--multipliers", nargs="+", type=int, default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--default-dim", type=int, default=DEFAULT_TRUNCATE_DIM)
    parser.add_argument("--default-codec", default=DEFAULT_FIRST_PASS)
    parser.add_argument("--default-multiplier", type=int, default=DEFAULT_RESCORE_MULTIPLIER)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    enc, label = _load_model(args.model)
    args.dims = [d for d in args.dims if d <= enc.dim]
    results = {name: bench_set(enc, name, args.data / name, args) for name in args.sets}
    text = render(results, enc, label, args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
