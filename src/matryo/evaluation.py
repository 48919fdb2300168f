"""Retrieval evaluation in plain numpy: BEIR loading, dense top-k search, NDCG@k, MRR@k and recall@k.

Runs are ``{query_id: {doc_id: score}}`` and qrels ``{query_id: {doc_id: relevance}}``, the layout
of BEIR and pytrec_eval. Conventions follow BEIR/MTEB so numbers compare with published ones:
linear gain, the ideal DCG taken over every judged relevant document, documents ranked by score
(ties broken by descending id, as trec_eval does), and every judged query in the mean: one whose
judgments are all 0 (or negative) scores 0, as pytrec_eval scores it and BEIR averages it.
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
    "run_from_scores",
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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _qrels_score(fields: list[str], path: Path, number: int, line: str) -> int:
    """The relevance of a qrels row, or a SourceError naming the line and the layout expected."""
    found = f"found {line.rstrip(chr(10)).rstrip(chr(13))[:80]!r}"
    if len(fields) != 3:
        msg = (
            f"{path} line {number} has {len(fields)} tab-separated fields; a BEIR qrels file has 3: "
            f"query-id<TAB>corpus-id<TAB>score (an integer); {found}."
        )
        words = len(line.split())
        if words == 4:
            msg += (
                " A TREC qrels file (query-id 0 doc-id relevance) has 4 columns: convert it with "
                "`awk -v OFS='\\t' '{print $1, $3, $4}' qrels.trec > qrels.tsv`."
            )
        elif words == 3:
            msg += " Separate the three fields with tabs."
        raise SourceError(msg)
    try:
        return int(fields[2])
    except ValueError as exc:
        msg = f"{path} line {number} is not 'query-id<TAB>corpus-id<TAB>score' with an integer score; {found}."
        raise SourceError(msg) from exc


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
        warn: Called with a one-line message when qrels name queries the queries file does not hold, and
            when more than half of the relevant documents are not in the corpus (usually an id mismatch;
            BEIR's ArguAna legitimately lacks 5 of 1,406).

    Returns:
        ``(corpus, queries, qrels)``: doc id -> text, query id -> text (only queries that have
        qrels), and query id -> {doc id: relevance} (only queries in the queries file).

    Raises:
        FileNotFoundError: If a file is missing.
        SourceError: If a file is a truncated ``.gz``, not UTF-8, or has a bad line (invalid JSON, a row
            without ``_id``, a qrels row without exactly three tab-separated fields and an integer relevance,
            e.g. a 4-column TREC qrels row). Line 1 is a header only when its last field is not a number.
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
    first = True
    for number, line in read_lines(qrel_path):
        fields = next(csv.reader([line], delimiter="\t"), [])
        if not any(field.strip() for field in fields):
            continue  # a blank line
        while len(fields) > 3 and not fields[-1].strip():
            fields.pop()  # trailing tabs
        if first and not _is_number(line.split()[-1]):
            first = False
            continue  # the header (BEIR's query-id<TAB>corpus-id<TAB>score): its last field is not a number
        first = False
        qrels.setdefault(fields[0], {})[fields[1]] = _qrels_score(fields, qrel_path, number, line)
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        if warn is not None:
            warn(
                f"{len(missing)} of {len(qrels)} judged queries in {qrel_path.name} are not in {queries_path.name} "
                f"(e.g. {missing[0]!r}); they are left out of the scores, as BEIR does."
            )
        qrels = {qid: rels for qid, rels in qrels.items() if qid in all_queries}
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    relevant = {did for rels in qrels.values() for did, rel in rels.items() if rel > 0}
    absent = sorted(did for did in relevant if did not in corpus)
    if warn is not None and corpus and 2 * len(absent) > len(relevant):
        warn(
            f"{len(absent)} of {len(relevant)} relevant documents in {qrel_path.name} are not in {corpus_path.name} "
            f"(e.g. {absent[0]!r}); they can never be retrieved. Check that the qrels' corpus-id column holds the "
            "corpus's _id values."
        )
    return corpus, queries, qrels


def _ranked(docs: Mapping[str, float], k: int) -> list[str]:
    # Score descending, ties by doc id descending (trec_eval's order).
    return [d for d, _ in sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)[:k]]


def _relevant(rels: Mapping[str, int]) -> dict[str, int]:
    return {d: r for d, r in rels.items() if r > 0}


def ndcg_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean NDCG@k over the queries of ``qrels``.

    Gain is the relevance itself (linear), discount ``1 / log2(rank + 1)``, and the ideal DCG
    uses all judged relevant documents. A query missing from ``run``, or without a relevant document
    (judgments all ``<= 0``), scores 0, as in pytrec_eval.

    Args:
        run: Retrieved scores per query.
        qrels: Judged relevance per query.
        k: Cut-off.

    Returns:
        The mean NDCG@k (0.0 when ``qrels`` is empty).
    """
    scores: list[float] = []
    for qid, rels in qrels.items():
        relevant = _relevant(rels)
        if not relevant:
            scores.append(0.0)
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
        The mean MRR@k over the queries of ``qrels`` (a query without a relevant document scores 0).
    """
    scores: list[float] = []
    for qid, rels in qrels.items():
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
        The mean recall@k over the queries of ``qrels`` (a query without a relevant document scores 0, as
        trec_eval's ``recall`` does).
    """
    scores: list[float] = []
    for qid, rels in qrels.items():
        relevant = _relevant(rels)
        if not relevant:
            scores.append(0.0)
            continue
        ranked = set(_ranked(run.get(qid, {}), k))
        scores.append(len(ranked & relevant.keys()) / len(relevant))
    return float(np.mean(scores)) if scores else 0.0


def _doc_order(doc_ids: Sequence[str]) -> NDArray[np.intp]:
    """Rank of each doc id in ascending string order (trec_eval's tie-break compares ids)."""
    order = np.empty(len(doc_ids), dtype=np.intp)
    order[sorted(range(len(doc_ids)), key=doc_ids.__getitem__)] = np.arange(len(doc_ids))
    return order


def _cut_row(row: NDArray[np.float64], k: int, id_rank: NDArray[np.intp]) -> NDArray[np.intp]:
    """Columns of the top ``k`` finite scores of ``row`` in trec_eval order (score, then doc id, descending).

    Every column tied with the k-th best score is ranked before the cut, so the kept columns are exactly the
    first ``k`` of the full ranking, whatever the depth.
    """
    finite = np.isfinite(row)
    n = int(finite.sum())
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    if k < n:
        masked = np.where(finite, row, -np.inf)
        kth = -np.partition(-masked, k - 1)[k - 1]
        cols = np.flatnonzero(finite & (row >= kth))
    else:
        cols = np.flatnonzero(finite)
    order = np.lexsort((-id_rank[cols], -row[cols]))
    return np.asarray(cols[order][:k], dtype=np.intp)


def run_from_scores(
    scores: NDArray[np.floating],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    k: int = 100,
    ignore_identical_ids: bool = False,
) -> dict[str, dict[str, float]]:
    """Cut a full score matrix into a run of the top ``k`` documents per query, as trec_eval ranks them.

    Documents are ordered by score, then by doc id, both descending (trec_eval's order), and cut at ``k``
    after that order, so NDCG@k, MRR@k and recall@k of the run equal trec_eval's (and pytrec_eval's) on the
    full ranking: a group of tied scores across the cut-off keeps its members with the highest ids.
    Non-finite scores are never returned.

    Args:
        scores: Array (n_queries, n_docs), one row per query.
        query_ids: Id of each row.
        doc_ids: Id of each column.
        k: Documents kept per query.
        ignore_identical_ids: Never return a document whose id equals the query id (BEIR's ArguAna convention).

    Returns:
        The run ``{query_id: {doc_id: score}}``, each query's documents in ranked order.

    Raises:
        ValueError: If the ids and the matrix disagree in shape.
    """
    if scores.ndim != 2 or scores.shape != (len(query_ids), len(doc_ids)):
        msg = f"scores must be (len(query_ids), len(doc_ids)) = ({len(query_ids)}, {len(doc_ids)}); got {scores.shape}"
        raise ValueError(msg)
    id_rank = _doc_order(doc_ids)
    doc_index = {d: i for i, d in enumerate(doc_ids)} if ignore_identical_ids else {}
    run: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(query_ids):
        values = np.array(scores[row], dtype=np.float64)
        if qid in doc_index:
            values[doc_index[qid]] = -np.inf
        cols = _cut_row(values, k, id_rank)
        run[qid] = {doc_ids[int(c)]: float(values[c]) for c in cols}
    return run


def dense_run(
    query_vectors: NDArray[np.floating],
    doc_vectors: NDArray[np.floating],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    k: int = 100,
    ignore_identical_ids: bool = False,
    chunk: int = 1024,
) -> dict[str, dict[str, float]]:
    """Exact top-k search by dot product (cosine for normalised vectors), cut as trec_eval ranks.

    Scores are float32 dot products; documents are cut at ``k`` in trec_eval's order (score, then doc id,
    descending; see :func:`run_from_scores`), so a run of depth ``k`` gives the same metrics at ``k`` as a
    deeper run.

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
    run: dict[str, dict[str, float]] = {}
    for lo in range(0, len(query_ids), chunk):
        sims = np.asarray(query_vectors[lo : lo + chunk], dtype=np.float32) @ docs.T
        run.update(run_from_scores(sims, query_ids[lo : lo + chunk], doc_ids, k, ignore_identical_ids))
    return run
