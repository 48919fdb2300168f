"""Retrieval evaluation in plain numpy: BEIR loading, dense top-k search, NDCG@k, MRR@k and recall@k.

Runs are ``{query_id: {doc_id: score}}`` and qrels ``{query_id: {doc_id: relevance}}``, the layout
of BEIR and pytrec_eval. Conventions follow BEIR/MTEB so numbers compare with published ones:
linear gain, the ideal DCG taken over every judged relevant document, documents ranked by score
(ties broken by descending id, as trec_eval does), and queries without any relevant document
skipped.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matryo.sources import SourceError, read_jsonl, read_lines

__all__ = [
    "Qrels",
    "Run",
    "dense_run",
    "load_beir",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
]

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _row_id(row: Mapping[str, Any], path: Path, number: int) -> str:
    value = row.get("_id")
    if value is None or not str(value).strip():
        msg = f"{path} line {number} has no '_id'; every row of a BEIR corpus or queries file needs a non-empty '_id'."
        raise SourceError(msg)
    return str(value)


def _first_existing(folder: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    msg = f"None of {list(names)} found in {folder}"
    raise FileNotFoundError(msg)


def load_beir(
    folder: str | Path, *, warn: Callable[[str], None] | None = None
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """Load a BEIR-format folder.

    Reads ``corpus.jsonl(.gz)``, ``queries.jsonl(.gz)`` and ``qrels.tsv(.gz)`` (or ``qrels/test.tsv``).
    Document text is ``title + " " + text`` (stripped), as BEIR's dense models see it. Blank lines are
    skipped. Qrels of queries missing from the queries file are left out (BEIR and pytrec_eval average over
    the queries that were run), and ``warn`` is told how many.

    Args:
        folder: The dataset folder.
        warn: Called with a one-line message when qrels name queries the queries file does not hold.

    Returns:
        ``(corpus, queries, qrels)``: doc id -> text, query id -> text (only queries that have
        qrels), and query id -> {doc id: relevance} (only queries in the queries file).

    Raises:
        FileNotFoundError: If a file is missing.
        SourceError: If a file is a truncated ``.gz``, not UTF-8, or has a bad line (invalid JSON, a row
            without ``_id``, a qrels row without three tab-separated fields and an integer relevance).
    """
    root = Path(folder)
    corpus: dict[str, str] = {}
    corpus_path = _first_existing(root, ["corpus.jsonl.gz", "corpus.jsonl"])
    for number, row in read_jsonl(corpus_path):
        text = (str(row.get("title") or "") + " " + str(row.get("text") or "")).strip()
        corpus[_row_id(row, corpus_path, number)] = text
    all_queries: dict[str, str] = {}
    queries_path = _first_existing(root, ["queries.jsonl.gz", "queries.jsonl"])
    for number, row in read_jsonl(queries_path):
        all_queries[_row_id(row, queries_path, number)] = str(row.get("text") or "")
    qrels: dict[str, dict[str, int]] = {}
    qrel_path = _first_existing(root, ["qrels.tsv.gz", "qrels.tsv", "qrels/test.tsv"])
    header = True
    for number, line in read_lines(qrel_path):
        fields = next(csv.reader([line], delimiter="\t"), [])
        if not any(field.strip() for field in fields):
            continue  # a blank line
        if header and not fields[-1].strip().lstrip("-").isdigit():
            header = False
            continue
        header = False
        try:
            qid, did, rel = fields[0], fields[1], int(fields[2])
        except (IndexError, ValueError) as exc:
            msg = (
                f"{qrel_path} line {number} is not 'query-id<TAB>corpus-id<TAB>score' with an integer score; "
                f"found {line[:80]!r}."
            )
            raise SourceError(msg) from exc
        qrels.setdefault(qid, {})[did] = rel
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        if warn is not None:
            warn(
                f"{len(missing)} of {len(qrels)} judged queries in {qrel_path.name} are not in {queries_path.name} "
                f"(e.g. {missing[0]!r}); they are left out of the scores, as BEIR does."
            )
        qrels = {qid: rels for qid, rels in qrels.items() if qid in all_queries}
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    return corpus, queries, qrels


def _ranked(docs: Mapping[str, float], k: int) -> list[str]:
    # Score descending, ties by doc id descending (trec_eval's order).
    return [d for d, _ in sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)[:k]]


def _relevant(rels: Mapping[str, int]) -> dict[str, int]:
    return {d: r for d, r in rels.items() if r > 0}


def ndcg_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean NDCG@k over the queries of ``qrels`` that have a relevant document.

    Gain is the relevance itself (linear), discount ``1 / log2(rank + 1)``, and the ideal DCG
    uses all judged relevant documents. A query missing from ``run`` scores 0.

    Args:
        run: Retrieved scores per query.
        qrels: Judged relevance per query.
        k: Cut-off.

    Returns:
        The mean NDCG@k (0.0 when no query has a relevant document).
    """
    scores: list[float] = []
    for qid, rels in qrels.items():
        relevant = _relevant(rels)
        if not relevant:
            continue
        ranked = _ranked(run.get(qid, {}), k)
        dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked) if rels.get(d, 0) > 0)
        ideal = sorted(relevant.values(), reverse=True)[:k]
        idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
        scores.append(dcg / idcg)
    return float(np.mean(scores)) if scores else 0.0


def mrr_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant document within the top k.

    Args:
        run: Retrieved scores per query.
        qrels: Judged relevance per query.
        k: Cut-off.

    Returns:
        The mean MRR@k over queries with a relevant document.
    """
    scores: list[float] = []
    for qid, rels in qrels.items():
        if not _relevant(rels):
            continue
        ranked = _ranked(run.get(qid, {}), k)
        scores.append(next((1.0 / (i + 1) for i, d in enumerate(ranked) if rels.get(d, 0) > 0), 0.0))
    return float(np.mean(scores)) if scores else 0.0


def recall_at_k(run: Run, qrels: Qrels, k: int = 100) -> float:
    """Mean fraction of relevant documents found in the top k.

    Args:
        run: Retrieved scores per query.
        qrels: Judged relevance per query.
        k: Cut-off.

    Returns:
        The mean recall@k over queries with a relevant document.
    """
    scores: list[float] = []
    for qid, rels in qrels.items():
        relevant = _relevant(rels)
        if not relevant:
            continue
        ranked = set(_ranked(run.get(qid, {}), k))
        scores.append(len(ranked & relevant.keys()) / len(relevant))
    return float(np.mean(scores)) if scores else 0.0


def dense_run(
    query_vectors: NDArray[np.floating],
    doc_vectors: NDArray[np.floating],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    k: int = 100,
    ignore_identical_ids: bool = False,
    chunk: int = 1024,
) -> dict[str, dict[str, float]]:
    """Exact top-k search by dot product (cosine for normalised vectors).

    Args:
        query_vectors: Array (n_queries, d).
        doc_vectors: Array (n_docs, d).
        query_ids: Id of each query row.
        doc_ids: Id of each document row.
        k: Documents kept per query.
        ignore_identical_ids: Never return a document whose id equals the query id (BEIR's
            ArguAna convention).
        chunk: Queries scored per matrix product.

    Returns:
        The run ``{query_id: {doc_id: score}}``.

    Raises:
        ValueError: If ids and rows disagree in number or the widths differ.
    """
    if len(query_ids) != query_vectors.shape[0] or len(doc_ids) != doc_vectors.shape[0]:
        msg = "query_ids/doc_ids must have one id per row of query_vectors/doc_vectors"
        raise ValueError(msg)
    if query_vectors.shape[1] != doc_vectors.shape[1]:
        msg = f"Query width {query_vectors.shape[1]} differs from document width {doc_vectors.shape[1]}"
        raise ValueError(msg)
    docs = np.asarray(doc_vectors, dtype=np.float32)
    doc_index = {d: i for i, d in enumerate(doc_ids)}
    kk = min(k + (1 if ignore_identical_ids else 0), len(doc_ids))
    run: dict[str, dict[str, float]] = {}
    for lo in range(0, len(query_ids), chunk):
        sims = np.asarray(query_vectors[lo : lo + chunk], dtype=np.float32) @ docs.T
        if ignore_identical_ids:
            for row, qid in enumerate(query_ids[lo : lo + chunk]):
                if qid in doc_index:
                    sims[row, doc_index[qid]] = -np.inf
        top = (
            np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
            if kk < sims.shape[1]
            else np.tile(np.arange(sims.shape[1]), (sims.shape[0], 1))
        )
        for row, qid in enumerate(query_ids[lo : lo + chunk]):
            cols = top[row]
            vals = sims[row, cols]
            keep = np.isfinite(vals)
            order = np.argsort(-vals[keep], kind="stable")[:k]
            run[qid] = {doc_ids[int(c)]: float(v) for c, v in zip(cols[keep][order], vals[keep][order], strict=True)}
    return run
