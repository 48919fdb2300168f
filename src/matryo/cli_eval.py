"""``matryo eval``: retrieval quality per Matryoshka width and for two-stage search, on a BEIR folder.

Metrics come from :mod:`matryo.evaluation` (BEIR/MTEB conventions: NDCG@10 with linear gain and the
ideal DCG over all judged documents, MRR@10, Recall@100). Exact brute-force search at each width; the
two-stage row takes ``ceil(k * rescore_multiplier)`` candidates at the first-pass width and rescores them
at full width, with ``k = 10`` for NDCG@10/MRR@10 and ``k = 100`` for Recall@100, like ``matryo search``.

ArguAna's convention (a document whose id equals the query id is never retrieved, BEIR's ``ignore_identical_ids``)
is applied with ``--ignore-identical-ids`` (``ignore_identical_ids=True``), and by default when the folder's name
as given, or the name of the folder it resolves to (a symbolic link, ``.``), contains ``arguana``, or when the data
shows it: at least half of the judged queries are their own document (a corpus row with the query's ``_id`` holds
the query's text), as in a renamed copy of ArguAna. ``ignore_identical_ids=False`` turns it off.

A query with empty text (or no token the model knows) encodes to a zero vector: it retrieves nothing and scores 0
on every metric, stays in the means (so numbers remain comparable), and a note counts such queries.
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

from matryo.errors import DataNotFoundError, InvalidArgumentError, MatryoError, missing_extra

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
        InvalidArgumentError: If an item is neither a positive integer nor ``full``.
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
            raise InvalidArgumentError(msg)
    return sorted(set(dims))


def _metrics(run: Any, qrels: Any) -> tuple[float, float, float]:
    from matryo.evaluation import mrr_at_k, ndcg_at_k, recall_at_k

    return ndcg_at_k(run, qrels, 10), mrr_at_k(run, qrels, 10), recall_at_k(run, qrels, 100)


def _own_documents(queries: dict[str, str], corpus: dict[str, str]) -> list[str]:
    """Judged queries that are their own document: a corpus row with the query's id holds the query's text."""
    own = []
    for qid, text in queries.items():
        doc = corpus.get(qid)
        if doc is not None and text.strip() and text.strip() in doc:
            own.append(qid)
    return own


def _dataset_name(folder: Path) -> str:
    """The folder's name as the user gave it (a symbolic link keeps its own name), else the resolved one (``.``)."""
    return folder.name if folder.name not in ("", "..") else folder.resolve().name


def _identical_ids_default(
    folder: Path, corpus: dict[str, str], queries: dict[str, str], qrels: dict[str, dict[str, int]], notes: list[str]
) -> bool:
    """Whether ArguAna's rule applies when neither asked for nor refused: by the folder's name, or by the data.

    The data says so when most judged queries are their own document and none of those documents is judged
    relevant to its query (in ArguAna none is; where they are, as in a set of queries made from titles, leaving
    them out would score 0).
    """
    if any("arguana" in name.lower() for name in (folder.name, folder.resolve().name)):
        return True
    own = _own_documents(queries, corpus)
    if any(qrels.get(qid, {}).get(qid, 0) > 0 for qid in own):
        return False
    if own and 2 * len(own) >= len(queries):
        notes.append(
            f"{len(own)} of {len(queries)} judged queries are their own document (a corpus row with the query's "
            f"_id holds its text, e.g. {own[0]!r}), as in ArguAna: as BEIR does, a query's own document is never "
            "retrieved for it (keeping it would lower every score by about a quarter)."
        )
        return True
    return False


def _zero_queries_note(qids: list[str], queries: dict[str, str], vectors: NDArray[np.float32]) -> str | None:
    """A note counting the judged queries that encode to a zero vector (they retrieve nothing and score 0)."""
    zero = [qid for qid, vector in zip(qids, vectors, strict=True) if not vector.any()]
    if not zero:
        return None
    empty = [qid for qid in zero if not queries[qid].strip()]
    unknown = [qid for qid in zero if queries[qid].strip()]
    parts = []
    if empty:
        parts.append(f"{len(empty)} with empty text, e.g. {empty[0]!r}")
    if unknown:
        parts.append(f"{len(unknown)} with no token the model knows, e.g. {unknown[0]!r}")
    return (
        f"{len(zero)} of {len(qids)} judged queries encode to a zero vector ({'; '.join(parts)}): they retrieve "
        "nothing and score 0 on every metric, and stay in the means so scores remain comparable. Fix or remove "
        "them in the queries file (and its qrels) to evaluate without them."
    )


def evaluate(
    beir_dir: str | Path,
    model: str | None = None,
    dims: str = DEFAULT_DIMS,
    *,
    first_pass_dim: int | None = None,
    rescore_multiplier: float | None = None,
    ignore_identical_ids: bool | None = None,
    split: str = "test",
) -> tuple[list[Row], dict[str, Any]]:
    """Evaluate a model on a BEIR folder at several widths and with two-stage search.

    Args:
        beir_dir: The BEIR folder (see :func:`matryo.beir.load_beir`).
        model: Model folder or hub id (default: the embedded model).
        dims: Comma-separated widths and ``full`` (see :func:`parse_dims`).
        first_pass_dim: Two-stage first-pass width (default the search default, capped at the model width).
        rescore_multiplier: Two-stage candidates per hit (default the search default).
        ignore_identical_ids: Never retrieve a document whose id is the query id (ArguAna's rule). ``None``
            (default): applied when the folder's name as given, or the folder it resolves to, contains
            ``arguana``, or when at least half of the judged queries are their own document and none of those
            documents is judged relevant (with a note).
        split: The qrels to score (``qrels/<split>.tsv``; ``"test"`` also reads a top-level ``qrels.tsv``).

    Returns:
        ``(rows, info)``: one row per width plus the two-stage row (``name``, ``dim``, ``ndcg@10``,
        ``mrr@10``, ``recall@100``), and a description of the run (``notes``: what was left out, e.g.
        qrels of queries missing from the queries file).

    Raises:
        DataNotFoundError: If the folder or one of its files is missing (a ``FileNotFoundError``).
        InvalidArgumentError: If a width is invalid (a ``ValueError``).
        MatryoError: If the folder holds no documents or no judged queries.
        SourceError: If a BEIR file is damaged (see :func:`matryo.beir.load_beir`).
    """
    from matryo.encoder import StaticEncoder
    from matryo.evaluation import dense_run, load_beir, two_stage_runs
    from matryo.search import DEFAULT_RESCORE_MULTIPLIER, DEFAULT_TRUNCATE_DIM, candidate_count
    from matryo.vectors import truncate

    folder = Path(beir_dir)
    if not folder.is_dir():
        msg = (
            f"BEIR_DIR {str(folder)!r} is not a folder; expected corpus.jsonl(.gz), queries.jsonl(.gz), qrels.tsv(.gz)."
        )
        raise DataNotFoundError(msg)
    if first_pass_dim is not None and first_pass_dim < 1:
        msg = f"--first-pass-dim must be a positive width (at most the model width), got {first_pass_dim}."
        raise InvalidArgumentError(msg)
    start = time.perf_counter()
    notes: list[str] = []
    corpus, queries, qrels = load_beir(folder, split=split, warn=notes.append)
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
        if not widths:  # nothing but the two-stage row would be scored
            msg = f"--dims {listed}: every width is wider than the model ({encoder.dim} dims); pass e.g. 128,full."
            raise InvalidArgumentError(msg)
        notes.append(f"--dims {listed} left out: wider than the model ({encoder.dim} dims; 'full' is its width)")
    if first_pass_dim is not None and first_pass_dim > encoder.dim:
        msg = f"--first-pass-dim must be at most the model width {encoder.dim}, got {first_pass_dim}."
        raise InvalidArgumentError(msg)
    fp = min(DEFAULT_TRUNCATE_DIM if first_pass_dim is None else first_pass_dim, encoder.dim)
    mult = DEFAULT_RESCORE_MULTIPLIER if rescore_multiplier is None else rescore_multiplier
    if ignore_identical_ids is None:
        ignore = _identical_ids_default(folder, corpus, queries, qrels, notes)
    else:
        ignore = ignore_identical_ids
    doc_ids, qids = list(corpus), list(queries)
    docs = encoder.encode([corpus[d] for d in doc_ids], truncate_dim=encoder.dim, normalize=False)
    qs = encoder.encode([queries[q] for q in qids], truncate_dim=encoder.dim, normalize=False)
    encoded = time.perf_counter()
    zero_note = _zero_queries_note(qids, queries, qs)
    if zero_note is not None:
        notes.append(zero_note)
    rows: list[Row] = []
    for d in widths:
        run = dense_run(truncate(qs, d), truncate(docs, d), qids, doc_ids, k=100, ignore_identical_ids=ignore)
        ndcg, mrr, recall = _metrics(run, qrels)
        rows.append({"name": str(d), "dim": d, "ndcg@10": ndcg, "mrr@10": mrr, "recall@100": recall})
    n10, n100 = candidate_count(10, mult), candidate_count(100, mult)
    # the raw matrix is dropped once its two normalised forms exist: peak memory ~2x the matrix, not 4x
    first_d = truncate(docs, fp)
    full_d = truncate(docs, encoder.dim)
    del docs
    full_q = truncate(qs, encoder.dim)
    top10, top100 = two_stage_runs(
        truncate(qs, fp), first_d, full_q, full_d, qids, doc_ids, [(n10, 10), (n100, 100)], ignore
    )
    ndcg, mrr, _recall10 = _metrics(top10, qrels)
    recall = _metrics(top100, qrels)[2]
    name = f"two-stage {fp}->{encoder.dim} (x{mult:g})"
    rows.append({"name": name, "dim": fp, "ndcg@10": ndcg, "mrr@10": mrr, "recall@100": recall})
    info = {
        "dataset": _dataset_name(folder),
        "split": split,
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
            raise missing_extra(name, install, "--plot", cause=exc) from exc
    rows, info = evaluate(
        args.beir_dir,
        args.model,
        args.dims,
        first_pass_dim=args.first_pass_dim,
        rescore_multiplier=args.rescore_multiplier,
        ignore_identical_ids=args.ignore_identical_ids,
        split=args.split,
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
