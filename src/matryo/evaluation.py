"""Retrieval evaluation in plain numpy: dense top-k search, NDCG@k, MRR@k and recall@k.

BEIR-format sets are read by :func:`matryo.beir.load_beir`, re-exported here.

Runs are ``{query_id: {doc_id: score}}`` and qrels ``{query_id: {doc_id: relevance}}``, the layout
of BEIR and pytrec_eval. Conventions follow BEIR/MTEB so numbers compare with published ones:
linear gain, the ideal DCG taken over every judged relevant document, documents ranked by score
(ties broken by descending id, as trec_eval does), and every judged query in the mean: one whose
judgments are all 0 (or negative) scores 0, as pytrec_eval scores it and BEIR averages it. A query whose
vector is all zeros (an empty text) retrieves nothing, so it scores 0 too instead of hitting documents by id.

Dense search scores queries in blocks whose float32 score matrix stays under :data:`SCORE_BLOCK_BYTES`, and keeps
only each query's top ``k`` columns, so memory does not grow with the number of queries.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from matryo.beir import load_beir
from matryo.errors import DimensionMismatchError, InvalidArgumentError
from matryo.search import _check_k
from matryo.vectors import SCORE_BLOCK_BYTES, as_numbers, block_rows, check_finite

__all__ = [
    "SCORE_BLOCK_BYTES",
    "Qrels",
    "Run",
    "block_rows",
    "dense_run",
    "dense_top_k",
    "load_beir",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "run_from_scores",
    "two_stage_runs",
]

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _ranked(docs: Mapping[str, float], k: int) -> list[str]:
    # Score descending, ties by doc id descending (trec_eval's order).
    return [d for d, _ in sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)[:k]]


def _relevant(rels: Mapping[str, int]) -> dict[str, int]:
    return {d: r for d, r in rels.items() if r > 0}


def ndcg_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean NDCG@k over the queries of ``qrels``.

    Gain is the relevance itself (linear), discount ``1 / log2(rank + 1)``, and the ideal DCG
    uses all judged relevant documents. A query without a relevant document (judgments all ``<= 0``) scores 0,
    as in pytrec_eval. A query missing from ``run`` scores 0 too and counts in the mean, where pytrec_eval leaves
    it out of its results and BEIR's mean skips it (the runs of :func:`dense_run` hold every query).

    Args:
        run: Retrieved scores per query.
        qrels: Judged relevance per query.
        k: Cut-off.

    Returns:
        The mean NDCG@k (0.0 when ``qrels`` is empty).
    """
    k = _check_k(k, "the metric's cut-off")  # k=0 divided by zero, k<0 cut the list's end
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
    k = _check_k(k, "the metric's cut-off")  # k=0 divided by zero, k<0 cut the list's end
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
    k = _check_k(k, "the metric's cut-off")  # k=0 divided by zero, k<0 cut the list's end
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
        InvalidArgumentError: (a ValueError) If the ids and the matrix disagree in shape, ``scores`` is not a
            matrix of numbers, an id repeats, or ``k < 1``.
    """
    k = _check_k(k, "documents kept per query")
    scores = _matrix(scores, "scores")
    if scores.shape != (len(query_ids), len(doc_ids)):
        msg = f"scores must be (len(query_ids), len(doc_ids)) = ({len(query_ids)}, {len(doc_ids)}); got {scores.shape}"
        raise InvalidArgumentError(msg)
    _check_unique(query_ids, "query_ids")
    _check_unique(doc_ids, "doc_ids")
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


def _matrix(values: NDArray[np.floating], what: str) -> NDArray[np.floating]:
    """``values`` as a 2-D numeric array (lists converted once, the dtype kept; see :func:`as_numbers`)."""
    array = as_numbers(values, what)
    if array.ndim != 2:
        msg = f"{what} must be a 2-D array, one row per id; found shape {array.shape}."
        raise InvalidArgumentError(msg)
    return array


def _check_unique(ids: Sequence[str], what: str) -> None:
    """Refuse a repeated id: a run keyed by id would keep one of its rows' results and drop the other's."""
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            msg = f"{what} must be unique; {item!r} occurs more than once. Drop or rename the repeats."
            raise InvalidArgumentError(msg)
        seen.add(item)


def _vectors(
    query_vectors: NDArray[np.floating],
    doc_vectors: NDArray[np.floating],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Both matrices as arrays, checked: one row per (unique) id, one width, finite values."""
    queries, docs = _matrix(query_vectors, "query_vectors"), _matrix(doc_vectors, "doc_vectors")
    if len(query_ids) != queries.shape[0] or len(doc_ids) != docs.shape[0]:
        msg = (
            f"Expected one id per row: found {len(query_ids)} query ids for {queries.shape[0]} query vectors and "
            f"{len(doc_ids)} doc ids for {docs.shape[0]} document vectors."
        )
        raise InvalidArgumentError(msg)
    if queries.shape[1] != docs.shape[1]:
        msg = f"Query width {queries.shape[1]} differs from document width {docs.shape[1]}"
        raise DimensionMismatchError(msg)
    _check_unique(query_ids, "query_ids")
    _check_unique(doc_ids, "doc_ids")
    check_finite(queries, "query vectors", labels=query_ids)
    check_finite(docs, "document vectors", labels=doc_ids)
    # integers and bools are scored as float32, as the first pass scores them (int8 dot products wrapped around)
    return _floats(queries), _floats(docs)


def _floats(array: NDArray[np.floating]) -> NDArray[np.floating]:
    return array if array.dtype.kind == "f" else array.astype(np.float32)


def dense_top_k(
    query_vectors: NDArray[np.floating],
    doc_vectors: NDArray[np.floating],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    k: int = 100,
    ignore_identical_ids: bool = False,
    chunk: int | None = None,
) -> Iterator[tuple[NDArray[np.intp], NDArray[np.float64]]]:
    """Exact top-k search by dot product, one query at a time in query order, cut as trec_eval ranks.

    Queries are scored against all documents in blocks of ``chunk`` rows; only each query's top ``k`` columns
    outlive its block, so memory holds one block of scores whatever the number of queries. A query whose vector
    is all zeros (an empty text) retrieves nothing: its scores would all tie at 0 and rank documents by id.

    Args:
        query_vectors: Array (n_queries, d).
        doc_vectors: Array (n_docs, d).
        query_ids: Id of each query row.
        doc_ids: Id of each document row.
        k: Documents kept per query.
        ignore_identical_ids: Never return a document whose id equals the query id (BEIR's ArguAna convention).
        chunk: Queries scored per matrix product (default :func:`block_rows`: a block of at most
            :data:`SCORE_BLOCK_BYTES`). The results do not depend on it, up to float32 rounding of
            the matrix product (which can reorder exact near-ties).

    Returns:
        An iterator of ``(columns, scores)`` per query: the columns of its top ``k`` documents in trec_eval's
        order (score, then doc id, descending; see :func:`run_from_scores`) and their float32 scores as float64.

    Raises:
        InvalidArgumentError: (a ValueError) If ids and rows disagree in number, an id repeats, a matrix is not
            2-D numbers, or ``k < 1`` (raised at once, not when iterating).
        DimensionMismatchError: (a ValueError) If the widths differ.
        NonFiniteVectorError: (a ValueError) If a vector holds NaN or inf.
    """
    k = _check_k(k, "documents kept per query")
    query_vectors, doc_vectors = _vectors(query_vectors, doc_vectors, query_ids, doc_ids)
    rows = block_rows(len(doc_ids)) if chunk is None else max(1, int(chunk))
    own = [-1] * len(query_ids)
    if ignore_identical_ids:
        doc_index = {d: i for i, d in enumerate(doc_ids)}
        own = [doc_index.get(qid, -1) for qid in query_ids]
    return _top_k_blocks(query_vectors, np.asarray(doc_vectors, dtype=np.float32), own, _doc_order(doc_ids), k, rows)


def _top_k_blocks(
    query_vectors: NDArray[np.floating],
    docs: NDArray[np.float32],
    own: list[int],
    id_rank: NDArray[np.intp],
    k: int,
    rows: int,
) -> Iterator[tuple[NDArray[np.intp], NDArray[np.float64]]]:
    nothing = (np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float64))
    for lo in range(0, len(own), rows):
        block = np.asarray(query_vectors[lo : lo + rows], dtype=np.float32)
        sims = block @ docs.T
        for i in range(block.shape[0]):
            if not block[i].any():
                yield nothing  # an empty query: no direction to rank by
                continue
            values = np.array(sims[i], dtype=np.float64)
            if own[lo + i] >= 0:
                values[own[lo + i]] = -np.inf
            cols = _cut_row(values, k, id_rank)
            yield cols, values[cols]
        del sims  # before the next block's product: one block of scores at a time


def dense_run(
    query_vectors: NDArray[np.floating],
    doc_vectors: NDArray[np.floating],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    k: int = 100,
    ignore_identical_ids: bool = False,
    chunk: int | None = None,
) -> dict[str, dict[str, float]]:
    """Exact top-k search by dot product (cosine for normalised vectors), cut as trec_eval ranks.

    Scores are float32 dot products; documents are cut at ``k`` in trec_eval's order (score, then doc id,
    descending; see :func:`run_from_scores`), so a run of depth ``k`` gives the same metrics at ``k`` as a
    deeper run. Queries are scored in blocks (see :func:`dense_top_k`), and a query whose vector is all zeros
    (an empty text) retrieves nothing, so it scores 0 on every metric.

    Args:
        query_vectors: Array (n_queries, d).
        doc_vectors: Array (n_docs, d).
        query_ids: Id of each query row.
        doc_ids: Id of each document row.
        k: Documents kept per query.
        ignore_identical_ids: Never return a document whose id equals the query id (BEIR's
            ArguAna convention).
        chunk: Queries scored per matrix product (default: a block of at most :data:`SCORE_BLOCK_BYTES`).

    Returns:
        The run ``{query_id: {doc_id: score}}``.

    Raises:
        ValueError: As :func:`dense_top_k` (ids and rows disagree, a repeated id, ``k < 1``, other widths, NaN).
    """
    top = dense_top_k(query_vectors, doc_vectors, query_ids, doc_ids, k, ignore_identical_ids, chunk)
    run: dict[str, dict[str, float]] = {}
    for qid, (cols, scores) in zip(query_ids, top, strict=True):
        run[qid] = {doc_ids[c]: s for c, s in zip(cols.tolist(), scores.tolist(), strict=True)}
    return run


def two_stage_runs(
    first_queries: NDArray[np.floating],
    first_docs: NDArray[np.floating],
    full_queries: NDArray[np.floating],
    full_docs: NDArray[np.floating],
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    cuts: Sequence[tuple[int, int]],
    ignore_identical_ids: bool = False,
    chunk: int | None = None,
) -> list[dict[str, dict[str, float]]]:
    """Two-stage search: a first pass on (truncated) vectors, its best candidates rescored with full vectors.

    For each ``(n, k)`` of ``cuts``, each query's first ``n`` first-pass candidates (trec_eval's order, as
    :func:`dense_top_k` ranks them) are rescored with the full vectors and the best ``k`` kept, cut in trec_eval's
    order. The first pass runs once, to the largest ``n``, in blocks; a query's candidates are rescored as soon
    as its block is scored, so only ``k`` ids per query and cut are kept.

    Args:
        first_queries: Array (n_queries, d1), the first-pass query vectors.
        first_docs: Array (n_docs, d1), the first-pass document vectors.
        full_queries: Array (n_queries, d2), the query vectors to rescore with.
        full_docs: Array (n_docs, d2), the document vectors to rescore with.
        query_ids: Id of each query row.
        doc_ids: Id of each document row.
        cuts: ``(candidates, kept)`` pairs, e.g. ``[(320, 10), (3200, 100)]``.
        ignore_identical_ids: Never return a document whose id equals the query id (BEIR's ArguAna convention).
        chunk: Queries per first-pass block (see :func:`dense_top_k`).

    Returns:
        One run ``{query_id: {doc_id: score}}`` per cut, each query's documents in ranked order.

    Raises:
        ValueError: As :func:`dense_top_k`, for either pair of matrices, or a count in ``cuts`` is not a positive
            integer.
    """
    full_queries, full_docs = _vectors(full_queries, full_docs, query_ids, doc_ids)
    cuts = [(_check_k(n, "first-pass candidates of a cut"), _check_k(k, "documents kept by a cut")) for n, k in cuts]
    if not cuts:
        return []
    depth = max(n for n, _ in cuts)
    first = dense_top_k(first_queries, first_docs, query_ids, doc_ids, depth, ignore_identical_ids, chunk)
    id_rank = _doc_order(doc_ids)
    runs: list[dict[str, dict[str, float]]] = [{} for _ in cuts]
    for row, (qid, (candidates, _)) in enumerate(zip(query_ids, first, strict=True)):
        for run, (n, k) in zip(runs, cuts, strict=True):
            cols = candidates[:n]
            scores = np.array(full_docs[cols] @ full_queries[row], dtype=np.float64)
            keep = _cut_row(scores, k, id_rank[cols])
            run[qid] = {doc_ids[c]: s for c, s in zip(cols[keep].tolist(), scores[keep].tolist(), strict=True)}
    return runs
