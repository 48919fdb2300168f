"""``matryo eval``: retrieval quality per Matryoshka width and for two-stage search, on a BEIR folder.

Metrics come from :mod:`matryo.evaluation` (BEIR/MTEB conventions: NDCG@10 with linear gain and the
ideal DCG over all judged documents, MRR@10, Recall@100). Exact brute-force search at each width; the
two-stage row takes ``ceil(k * rescore_multiplier)`` candidates at the first-pass width and rescores them
at full width, with ``k = 10`` for NDCG@10/MRR@10 and ``k = 100`` for Recall@100, like ``matryo search``.
ArguAna's convention (a document whose id equals the query id is never retrieved) is applied when the
folder's name contains ``arguana`` or with ``--ignore-identical-ids``.
"""

# ruff: noqa: T201  # a command line prints its results

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matryo.errors import MatryoError, missing_extra

__all__ = ["DEFAULT_DIMS", "evaluate", "parse_dims", "run_eval"]

DEFAULT_DIMS = "32,64,128,256,512,full"
"""Widths ``matryo eval`` reports by default (those above the model width are left out silently)."""

Row = dict[str, Any]


def parse_dims(text: str, full: int, *, dropped: list[int] | None = None) -> list[int]:
    """Parse ``"32,64,full"`` into widths (``full`` = the model width); widths above it are dropped.

    :func:`evaluate` notes the dropped widths unless ``dims`` is :data:`DEFAULT_DIMS`.

    Args:
        text: Comma-separated widths and ``full``.
        full: The model width.
        dropped: When given, the widths above ``full`` are appended to it.

    Raises:
        MatryoError: If an item is neither a positive integer nor ``full``.
    """
    dims: list[int] = []
    for item in text.split(","):
        item = item.strip().lower()
        if item == "full":
            dims.append(full)
        elif item.isdigit() and int(item) > 0:
            if int(item) <= full:
                dims.append(int(item))
            elif dropped is not None:
                dropped.append(int(item))
        else:
            msg = f"--dims takes comma-separated positive widths or 'full' (e.g. 64,128,full); got {item!r}."
            raise MatryoError(msg)
    return sorted(set(dims))


def _metrics(run: Any, qrels: Any) -> tuple[float, float, float]:
    from matryo.evaluation import mrr_at_k, ndcg_at_k, recall_at_k

    return ndcg_at_k(run, qrels, 10), mrr_at_k(run, qrels, 10), recall_at_k(run, qrels, 100)


def _rescored(
    first: dict[str, dict[str, float]],
    full_q: NDArray[np.float32],
    full_d: NDArray[np.float32],
    qids: list[str],
    row_of: dict[str, int],
    n: int,
    k: int,
) -> dict[str, dict[str, float]]:
    """Rescore each query's first ``n`` candidates at full width and keep ``k``, cut in trec_eval's order."""
    from matryo.evaluation import run_from_scores

    run: dict[str, dict[str, float]] = {}
    for qi, qid in enumerate(qids):
        # ``first`` is ranked in trec_eval's order (dense_run), so its first n are the n best.
        ids = list(first.get(qid, {}))[:n]
        scores = full_d[[row_of[d] for d in ids]] @ full_q[qi] if ids else np.zeros(0, dtype=np.float32)
        run.update(run_from_scores(scores[None, :], [qid], ids, k))
    return run


def evaluate(
    beir_dir: str | Path,
    model: str | None = None,
    dims: str = DEFAULT_DIMS,
    *,
    first_pass_dim: int | None = None,
    rescore_multiplier: float | None = None,
    ignore_identical_ids: bool | None = None,
) -> tuple[list[Row], dict[str, Any]]:
    """Evaluate a model on a BEIR folder at several widths and with two-stage search.

    Returns:
        ``(rows, info)``: one row per width plus the two-stage row (``name``, ``dim``, ``ndcg@10``,
        ``mrr@10``, ``recall@100``), and a description of the run (``notes``: what was left out, e.g.
        qrels of queries missing from the queries file).

    Raises:
        MatryoError: If the folder is missing or empty, or a width is invalid.
        SourceError: If a BEIR file is damaged (see :func:`matryo.evaluation.load_beir`).
    """
    from matryo.encoder import StaticEncoder
    from matryo.evaluation import dense_run, load_beir
    from matryo.search import DEFAULT_RESCORE_MULTIPLIER, DEFAULT_TRUNCATE_DIM, candidate_count
    from matryo.vectors import truncate

    folder = Path(beir_dir)
    if not folder.is_dir():
        msg = (
            f"BEIR_DIR {str(folder)!r} is not a folder; expected corpus.jsonl(.gz), queries.jsonl(.gz), qrels.tsv(.gz)."
        )
        raise MatryoError(msg)
    if first_pass_dim is not None and first_pass_dim < 1:
        msg = f"--first-pass-dim must be a positive width (at most the model width), got {first_pass_dim}."
        raise MatryoError(msg)
    start = time.perf_counter()
    notes: list[str] = []
    corpus, queries, qrels = load_beir(folder, warn=notes.append)
    if not corpus or not queries:
        # The notes say why (e.g. no qrels query id is in queries.jsonl): they would never be printed otherwise.
        what = "no documents" if not corpus else "no judged queries"
        msg = f"{folder} has {what}; nothing to evaluate."
        msg = " ".join([msg, *notes])
        raise MatryoError(msg)
    encoder = StaticEncoder.from_pretrained(model)
    wider: list[int] = []
    widths = parse_dims(dims, encoder.dim, dropped=wider)
    if wider and dims != DEFAULT_DIMS:
        listed = ", ".join(map(str, sorted(set(wider))))
        notes.append(f"--dims {listed} left out: wider than the model ({encoder.dim} dims; 'full' is its width)")
    if first_pass_dim is not None and first_pass_dim > encoder.dim:
        msg = f"--first-pass-dim must be at most the model width {encoder.dim}, got {first_pass_dim}."
        raise MatryoError(msg)
    fp = min(DEFAULT_TRUNCATE_DIM if first_pass_dim is None else first_pass_dim, encoder.dim)
    mult = DEFAULT_RESCORE_MULTIPLIER if rescore_multiplier is None else rescore_multiplier
    ignore = "arguana" in folder.resolve().name.lower() if ignore_identical_ids is None else ignore_identical_ids
    doc_ids, qids = list(corpus), list(queries)
    docs = encoder.encode([corpus[d] for d in doc_ids], truncate_dim=encoder.dim, normalize=False)
    qs = encoder.encode([queries[q] for q in qids], truncate_dim=encoder.dim, normalize=False)
    encoded = time.perf_counter()
    rows: list[Row] = []
    for d in widths:
        run = dense_run(truncate(qs, d), truncate(docs, d), qids, doc_ids, k=100, ignore_identical_ids=ignore)
        ndcg, mrr, recall = _metrics(run, qrels)
        rows.append({"name": str(d), "dim": d, "ndcg@10": ndcg, "mrr@10": mrr, "recall@100": recall})
    n10, n100 = candidate_count(10, mult), candidate_count(100, mult)
    first = dense_run(truncate(qs, fp), truncate(docs, fp), qids, doc_ids, k=n100, ignore_identical_ids=ignore)
    full_q, full_d = truncate(qs, encoder.dim), truncate(docs, encoder.dim)
    row_of = {d: i for i, d in enumerate(doc_ids)}
    top10 = _rescored(first, full_q, full_d, qids, row_of, n10, 10)
    top100 = _rescored(first, full_q, full_d, qids, row_of, n100, 100)
    ndcg, mrr, _recall10 = _metrics(top10, qrels)
    recall = _metrics(top100, qrels)[2]
    name = f"two-stage {fp}->{encoder.dim} (x{mult:g})"
    rows.append({"name": name, "dim": fp, "ndcg@10": ndcg, "mrr@10": mrr, "recall@100": recall})
    info = {
        "dataset": folder.resolve().name,
        "documents": len(doc_ids),
        "queries": len(qids),
        "model": encoder.name_or_path,
        "dim": encoder.dim,
        "ignore_identical_ids": ignore,
        "encode_seconds": round(encoded - start, 2),
        "seconds": round(time.perf_counter() - start, 2),
        "notes": notes,
    }
    return rows, info


def _plot(rows: list[Row], info: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [r for r in rows if not r["name"].startswith("two-stage")]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["dim"] for r in widths], [r["ndcg@10"] for r in widths], marker="o", label="single pass")
    two = rows[-1]
    ax.scatter([two["dim"]], [two["ndcg@10"]], marker="*", s=160, color="C3", label=two["name"], zorder=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("embedding width (dims)")
    ax.set_ylabel("NDCG@10")
    ax.set_title(f"{info['dataset']}: {info['model']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_eval(args: argparse.Namespace) -> int:
    """Run ``matryo eval`` from parsed arguments and print the table (or JSON).

    Raises:
        MissingExtraError: If ``--plot`` is given and matplotlib is not installed (checked before any work).
    """
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            name, install = "matplotlib", "pip install matplotlib  (or 'matryo[plot]')"
            raise missing_extra(name, install, "--plot") from exc
    rows, info = evaluate(
        args.beir_dir,
        args.model,
        args.dims,
        first_pass_dim=args.first_pass_dim,
        rescore_multiplier=args.rescore_multiplier,
        ignore_identical_ids=True if args.ignore_identical_ids else None,
    )
    for note in info["notes"]:
        print(f"matryo: warning: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"info": info, "rows": rows}))
    else:
        print(
            f"{info['dataset']}: {info['documents']} documents, {info['queries']} queries; model {info['model']} "
            f"({info['dim']} dims); {info['seconds']:.1f} s"
        )
        print("\n| dims | NDCG@10 | MRR@10 | Recall@100 |\n|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['name']} | {r['ndcg@10']:.4f} | {r['mrr@10']:.4f} | {r['recall@100']:.4f} |")
    if args.plot:
        _plot(rows, info, args.plot)
        if not args.json:
            print(f"\nplot written to {args.plot}")
    return 0 if all(math.isfinite(r["ndcg@10"]) for r in rows) else 1
