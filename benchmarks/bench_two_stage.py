# ruff: noqa: E402  (BLAS thread variables must be set before numpy is imported)
"""Two-stage Matryoshka search: quality, size and latency of every first-pass configuration.

Usage:
    python benchmarks/bench_two_stage.py [--model PATH] [--data ../shared/data] [--sets arguana scifact]
                                         [--dims 64 128 256 512] [--codecs float32 int8 binary]
                                         [--multipliers 1 2 4 8 16 32] [--latency-queries 100]
                                         [--stores float32 float16 int8 none]
                                         [--out benchmarks/results/two_stage.md]

For each BEIR set (documents = corpus, title + " " + text; test queries) and each first-pass
configuration (Matryoshka prefix width x codec x rescore_multiplier), :class:`matryo.index.NumpyIndex`
runs the two-stage search and reports:

* recall@10 against the exact full-dimension top-10 (float32 brute force, same run);
* NDCG@10 against the qrels (linear gain, ideal DCG over all judged relevant documents), next to
  single-stage full-dimension and single-stage first-pass-only search;
* bytes per document in the first-pass index and in the rescoring store;
* per-query latency (one query at a time, vectors already encoded) as a ratio to plain full-dimension
  brute force over the float32 matrix (``docs @ q`` + ``argpartition`` top-k, ids and scores returned),
  timed in alternation with it in the same process, one BLAS thread for both: the median and the range of
  7 paired rounds (each round times both, back to back, in alternating order).

A run of part of the grid (other --sets, --dims, ... than the defaults) writes its report only with --out, so it
never replaces the committed report of the whole grid.

Tie rule (the one of ``matryo eval`` and ``benchmarks/eval_default_model.py``, i.e. trec_eval's): every
top-10 is cut from a ranking by score, then doc id, descending, with every document tied at rank 10 ranked
before the cut. The exact top-10 and the full-dimension NDCG come from :func:`matryo.evaluation.dense_run`;
a two-stage configuration is scored on its whole rescored shortlist (the same ``ceil(k * multiplier)``
first-pass candidates, asked for as ``k = shortlist, rescore_multiplier = 1``), and a first-pass-only
search on a ranking deep enough to hold every tie at rank 10. NumpyIndex itself returns tied hits in
insertion order; only which of a tied group make the top 10 differs.

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
from matryo.evaluation import dense_run, load_beir, ndcg_at_k, run_from_scores
from matryo.index import DEFAULT_FIRST_PASS, STORES, NumpyIndex
from matryo.search import DEFAULT_RESCORE_MULTIPLIER, DEFAULT_TRUNCATE_DIM, SearchHits, candidate_count

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


def _top10(hits: SearchHits[str], qid: str, ignore_identical: bool) -> dict[str, float]:
    """The top 10 of ``hits`` in trec_eval's order (score, then doc id, descending), the query's own id dropped."""
    keep = [i for i, doc_id in enumerate(hits.ids) if not (ignore_identical and doc_id == qid)]
    ids = [hits.ids[i] for i in keep]
    return run_from_scores(np.asarray(hits.scores)[keep][None, :], [qid], ids, K)[qid]


def _complete(hits: SearchHits[str], depth: int, kk: int) -> bool:
    """Whether ``hits`` (asked for ``depth``) holds every document tied with its ``kk``-th score."""
    return len(hits) < depth or len(hits) <= kk or bool(hits.scores[-1] < hits.scores[kk - 1])


class Evaluator:
    """Turns hits into recall@10 (vs the exact top-10) and NDCG@10 (vs qrels), both cut by trec_eval's tie rule."""

    def __init__(
        self, qids: list[str], qrels: dict[str, dict[str, int]], ignore_identical: bool, exact: dict[str, dict]
    ) -> None:
        self.qids = qids
        self.qrels = qrels
        self.ignore = ignore_identical
        self.exact = [set(exact[q]) for q in qids]

    def scores(self, hits: Sequence[SearchHits[str]]) -> tuple[float, float]:
        run = {qid: _top10(h, qid, self.ignore) for qid, h in zip(self.qids, hits, strict=True)}
        recall = float(
            np.mean([len(set(run[q]) & ex) / len(ex) for q, ex in zip(self.qids, self.exact, strict=True) if ex])
        )
        return recall, ndcg_at_k(run, self.qrels, K)


def _first_pass_hits(index: NumpyIndex[str], qvec: np.ndarray, kk: int) -> list[SearchHits[str]]:
    """First-pass-only hits, deep enough that every tie at rank ``kk`` is there (binary codes tie often)."""
    depth = kk + 32
    while True:
        hits = index.search_vectors(qvec, k=depth, mode="first_pass")
        if depth >= len(index) or all(_complete(h, depth, kk) for h in hits):
            return hits
        depth *= 4


def _shortlist_hits(index: NumpyIndex[str], qvec: np.ndarray, kk: int, mult: float) -> list[SearchHits[str]]:
    """The whole rescored shortlist of a two-stage search for ``kk`` hits at ``mult`` (the same candidates)."""
    return index.search_vectors(qvec, k=candidate_count(kk, mult), rescore_multiplier=1.0)


def plain_brute_force(
    docs: np.ndarray, doc_ids: list[str], k: int
) -> Callable[[np.ndarray], tuple[list[str], np.ndarray]]:
    """The latency anchor: plain brute force over the float32 matrix, what a user would write without matryo.

    ``docs @ q``, ``argpartition`` top ``k``, sorted, returned as ids and scores; ``docs`` rows are unit length.
    """
    matrix = np.ascontiguousarray(docs, dtype=np.float32)

    def search(q: np.ndarray) -> tuple[list[str], np.ndarray]:
        sims = matrix @ q[0]
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top])]
        return [doc_ids[i] for i in top], sims[top]

    return search


class Ratio(float):
    """A latency ratio: the median over paired rounds, with the lowest and highest round in ``lo`` and ``hi``."""

    lo: float
    hi: float

    def __new__(cls, rounds: list[float]) -> Ratio:
        ratio = super().__new__(cls, float(np.median(rounds)))
        ratio.lo, ratio.hi = min(rounds), max(rounds)
        return ratio

    def spread(self) -> str:
        return f"{self:.2f} ({self.lo:.2f}-{self.hi:.2f})"


def _ratio(
    search: Callable[[np.ndarray], object], base: Callable[[np.ndarray], object], queries: np.ndarray, rounds: int = 7
) -> Ratio:
    """Latency of ``search`` over latency of ``base``: one ratio per paired round, their median and range.

    Each round times every query (one per call) with both functions back to back, the order alternating between
    rounds, so load drift on a shared box hits both sides of a round alike; one warm-up round is not counted.
    """
    ratios: list[float] = []
    for round_ in range(rounds + 1):
        pair = (search, base) if round_ % 2 else (base, search)
        seconds = {}
        for fn in pair:
            start = time.perf_counter()
            for row in queries:
                fn(row[None, :])
            seconds[fn] = time.perf_counter() - start
        if round_:
            ratios.append(seconds[search] / seconds[base])
    return Ratio(ratios)


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
    print(f"[{name}] {len(doc_ids)} docs, {len(qids)} queries, docs encoded in {doc_seconds:.2f}s", file=sys.stderr)

    # Quality anchor: exact full-dimension top 10 (the run `matryo eval` scores at full width).
    exact_run = dense_run(qvec, docs, qids, doc_ids, k=K, ignore_identical_ids=ignore)
    ev = Evaluator(qids, qrels, ignore, exact_run)
    full_ndcg = ndcg_at_k(exact_run, qrels, K)

    brute = plain_brute_force(docs, doc_ids, kk)
    start = time.perf_counter()
    for row in lat_q:
        brute(row[None, :])
    brute_latency = (time.perf_counter() - start) / len(lat_q)
    exact_index: NumpyIndex[str] = NumpyIndex(enc, truncate_dim=None, store="float32")
    exact_index.add(doc_ids, vectors=docs)
    exact_ratio = _ratio(lambda q: exact_index.search_vectors(q, k=kk, mode="exact"), brute, lat_q)
    result: dict[str, Any] = {
        "docs": len(doc_ids),
        "queries": len(qids),
        "full_ndcg": full_ndcg,
        "brute_ms": brute_latency * 1e3,
        "exact_mode_ratio": exact_ratio,
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
            recall, ndcg = ev.scores(_first_pass_hits(index, qvec, kk))
            lat = _ratio(lambda q, i=index: i.search_vectors(q, k=kk, mode="first_pass"), brute, lat_q)
            result["grid"][dim, codec, 0] = (fp_bytes, recall, ndcg, lat)
            for mult in args.multipliers:
                recall, ndcg = ev.scores(_shortlist_hits(index, qvec, kk, mult))
                lat = _ratio(lambda q, i=index, m=mult: i.search_vectors(q, k=kk, rescore_multiplier=m), brute, lat_q)
                result["grid"][dim, codec, mult] = (fp_bytes, recall, ndcg, lat)
            print(f"[{name}] dim {dim} {codec} done", file=sys.stderr)
    # Rescoring stores, at the default first pass.
    dim = min(args.default_dim, enc.dim)
    for store in args.stores:
        index = NumpyIndex(enc, truncate_dim=dim, first_pass=args.default_codec, store=store, calibration=docs)
        # store="none" re-encodes the texts, so it is built from them (NumpyIndex refuses vectors= there)
        index.add(doc_ids, [corpus[d] for d in doc_ids], vectors=None if store == "none" else docs)
        recall, ndcg = ev.scores(_shortlist_hits(index, qvec, kk, args.default_multiplier))
        lat = _ratio(
            lambda q, i=index: i.search_vectors(q, k=kk, rescore_multiplier=args.default_multiplier),
            brute,
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
            cells.append(f"{recall:.4f} | {_pct(ndcg, results[s]['full_ndcg'])} | {lat.spread()}")
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
        "so a latency ratio is the median (and in the summary the min-max) of 7 paired rounds, each timing the "
        "configuration and plain float32 brute force back to back in alternating order (one query per call, vectors "
        "pre-encoded, one BLAS thread).",
        "",
        "Ties: every top-10 (exact, first pass, two-stage) is cut from a ranking by score, then doc id, descending, "
        "with every document tied at rank 10 ranked before the cut (trec_eval's order, as `matryo eval` and "
        "`benchmarks/eval_default_model.py`); a two-stage configuration is scored on its whole rescored shortlist, "
        "so the rule picks among its own candidates. NumpyIndex itself returns tied hits in insertion order.",
        "",
        *_summary(results, enc, args),
        "Full-dimension baseline: NDCG@10 of exact search (`matryo.evaluation.dense_run`); latency of plain brute "
        "force over the float32 matrix (`docs @ q` + `argpartition` top-k, the `lat` anchor), and for reference "
        "NumpyIndex `mode='exact'` (which also re-normalises decoded vectors and rescores a band) relative to it:",
        "",
        "| set | docs | queries | NDCG@10 full | brute force ms/query | NumpyIndex exact / brute force "
        "| corpus encode s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in sets:
        r = results[s]
        row = f"| {s} | {r['docs']} | {r['queries']} | {r['full_ndcg']:.4f} | {r['brute_ms']:.3f} |"
        lines.append(f"{row} {r['exact_mode_ratio'].spread()} | {r['doc_encode_s']:.2f} |")
    lines += [
        "",
        "Grid: first-pass width x codec x rescore_multiplier (`1-stage` = first pass alone, no rescoring). "
        "Rescoring store: float32 full vectors. `x smaller` = full float32 bytes / first-pass bytes. "
        "recall@10 is against the exact full-dimension top-10; dNDCG is relative to full-dimension NDCG@10; "
        "`lat` is latency / plain full-dimension float32 brute-force latency.",
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
    for store in args.stores:
        cells = []
        store_bytes = 0
        for s in sets:
            store_bytes, recall, ndcg, lat = results[s]["stores"][store]
            cells.append(f"{recall:.4f} | {ndcg:.4f} | {lat.spread()}")
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
    parser.add_argument(
        "--stores",
        nargs="+",
        choices=STORES,
        default=list(STORES),
        help="rescoring stores to compare (drop 'none', which re-encodes per query, for a quick run)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help=f"markdown report (default {DEFAULT_OUT}, for a run of the whole grid)"
    )
    args = parser.parse_args(argv)
    defaults = parser.parse_args([])
    names = ("sets", "dims", "codecs", "multipliers", "stores", "model", "data")
    whole = all(getattr(args, name) == getattr(defaults, name) for name in names)
    enc, label = _load_model(args.model)
    args.dims = [d for d in args.dims if d <= enc.dim]
    results = {name: bench_set(enc, name, args.data / name, args) for name in args.sets}
    text = render(results, enc, label, args)
    print(text)
    if args.out is None and not whole:  # a partial run must not replace the committed report of the whole grid
        print(f"A partial run: not written to {DEFAULT_OUT} (pass --out FILE to keep it).", file=sys.stderr)
        return
    out = DEFAULT_OUT if args.out is None else args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    from standin import run_main

    run_main(main)
