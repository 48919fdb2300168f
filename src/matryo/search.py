"""Two-stage Matryoshka search, independent of any database.

The recipe (Qdrant's prefetch, pgvector "adaptive retrieval", sentence-transformers' rescoring):

1. encode the query once at full width, L2-normalised;
2. **first pass**: hand a truncated, re-normalised prefix of it (``truncate_dim`` dims) to a cheap index
   and ask for ``ceil(k * rescore_multiplier)`` candidate ids;
3. **rescore**: fetch the candidates' full-dimension vectors (or their texts, re-encoded on the fly),
   score them by full-dimension cosine, keep the best ``k``.

The first pass and the fetch are plain callables, so any host plugs in: a Chroma collection, a LanceDB
table, a LangChain store, or :class:`matryo.index.NumpyIndex` (numpy only, the reference the adapters are
measured against).

Contracts the host callables follow:

* ``first_pass(query_vectors, n)`` gets a ``(q, truncate_dim)`` float32 array of unit-length (or zero)
  rows and returns, for each of the ``q`` queries, a sequence of at most ``n`` ids, best first.
* ``fetch_full_vectors(ids)`` gets a list of unique ids and returns either a mapping ``id -> vector`` or a
  pair ``(found_ids, matrix)`` with one row per found id. Ids it does not know are simply left out.
* ``fetch_texts(ids)`` is the same with texts (``id -> str`` or ``(found_ids, texts)``); the texts are
  encoded at full width by the same encoder as the queries (the model is static, so this is cheap). A text
  of ``None`` (a host record without a document) counts as not found.

Results are sorted by full-dimension cosine; ties keep the first pass's order, so results are
deterministic whenever the first pass is. Fewer than ``k`` candidates give fewer than ``k`` hits; an
empty index gives empty hits, and so does a zero query vector (an empty or whitespace-only text has no
tokens, so no document is closer to it than another).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, Literal, Protocol, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matryo.errors import DimensionMismatchError, InvalidArgumentError, InvalidTypeError, MissingVectorError
from matryo.texts import check_texts
from matryo.vectors import _real, as_numbers, check_finite, normalize, truncate, unit_rows

__all__ = [
    "DEFAULT_K",
    "DEFAULT_RESCORE_MULTIPLIER",
    "DEFAULT_TRUNCATE_DIM",
    "Encoder",
    "FetchTexts",
    "FetchVectors",
    "FirstPass",
    "MissingVectorError",
    "OnMissing",
    "SearchHits",
    "candidate_count",
    "rescore",
    "two_stage_search",
]

DEFAULT_TRUNCATE_DIM = 128
"""Width of the first-pass prefix: 128 dims, a first-pass index 4x smaller than the full 512-d float32 vectors of
the default model (8x for a 1024-d model). Chosen with ``benchmarks/bench_two_stage.py``
(``benchmarks/results/two_stage.md``): with :data:`DEFAULT_RESCORE_MULTIPLIER` it keeps recall@10 at 1.0000 (ArguAna)
and 0.9970 (SciFact) against the exact full-dimension top-10 and NDCG@10 within 0.22% of full-dimension search
(ArguAna +0.00%, SciFact -0.22%), while single-stage 128-d search alone loses 7.1% (ArguAna) and 12.1% (SciFact)
NDCG@10. A model narrower than this is searched at its full width."""

DEFAULT_RESCORE_MULTIPLIER = 32
"""The first pass returns ``k * DEFAULT_RESCORE_MULTIPLIER`` candidates (320 for ``k=10``) for full-dimension
rescoring. Chosen with ``benchmarks/bench_two_stage.py`` on the default model (``benchmarks/results/two_stage.md``):
at 128 dims (float32 first pass), x8 and x16 leave recall@10 at 0.961 and 0.987 on SciFact (ArguAna 0.998 and
0.9998); x32 reaches 0.997 (ArguAna 1.0000). Larger than sentence-transformers' 2-4 for quantized vectors because a
4x-shorter Matryoshka prefix reorders more than int8 rounding does; in line with Qdrant's 100-of-10 to 1000-of-100
prefetch recipes. Rescoring 320 candidates is cheap (a 320 x dim matrix-vector product)."""

DEFAULT_K = 10
"""Number of hits returned when ``k`` is not given."""

IdT = TypeVar("IdT", bound=Hashable)
OnMissing = Literal["raise", "skip"]
"""What to do with a candidate id that has no full vector (or text): raise, or drop it from the hits."""

FirstPass = Callable[[NDArray[np.float32], int], Sequence[Sequence[IdT]]]
"""``first_pass(query_vectors, n) -> ids per query`` (best first, at most ``n`` each)."""

FetchVectors = Callable[[list[IdT]], Mapping[IdT, ArrayLike] | tuple[Sequence[IdT], ArrayLike]]
"""``fetch_full_vectors(ids) -> {id: vector}`` or ``(found_ids, (n, dim) matrix)``; unknown ids left out."""

FetchTexts = Callable[[list[IdT]], Mapping[IdT, str] | tuple[Sequence[IdT], Sequence[str]]]
"""``fetch_texts(ids) -> {id: text}`` or ``(found_ids, texts)``; unknown ids left out."""


class Encoder(Protocol):
    """What two-stage search needs from an encoder (:class:`matryo.StaticEncoder` fits)."""

    @property
    def dim(self) -> int:
        """Full embedding width."""
        ...

    def encode(
        self, texts: Sequence[str], *, truncate_dim: int | None = None, normalize: bool = True
    ) -> NDArray[np.float32]:
        """Encode texts into a ``(n, truncate_dim or dim)`` float32 array."""
        ...


@dataclass(frozen=True, eq=False)
class SearchHits(Generic[IdT]):
    """The hits for one query, best first.

    Attributes:
        ids: Document ids, at most ``k`` of them.
        scores: Full-dimension cosine similarities, float32, same length as ``ids``, non-increasing.
    """

    ids: list[IdT] = field(default_factory=list)
    scores: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.ids)


def _check_k(k: int, what: str = "the number of hits per query") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        msg = f"k must be a positive integer ({what}); found {k!r}."
        raise InvalidArgumentError(msg)
    return int(k)


_MAX_CANDIDATES = 1_000_000
"""Cap of :func:`candidate_count` (unless ``k`` itself is larger): more first-pass candidates than this only cost
time, and a host's result limit (LanceDB's, Chroma's) overflows on huge numbers."""


def candidate_count(k: int, rescore_multiplier: float) -> int:
    """Return how many first-pass candidates a search for ``k`` hits asks for: ``ceil(k * multiplier)``.

    The count is capped at ``max(k, 1_000_000)``: more candidates only cost time, and hosts overflow on huge limits.

    Args:
        k: Hits wanted per query (``> 0``).
        rescore_multiplier: Oversampling factor (a finite number ``>= 1``).

    Returns:
        The candidate count.

    Raises:
        ValueError: If ``k <= 0`` or ``rescore_multiplier`` is below 1, infinite or NaN.
    """
    k = _check_k(k)
    cap = max(k, _MAX_CANDIDATES)
    if isinstance(rescore_multiplier, int) and not isinstance(rescore_multiplier, bool) and rescore_multiplier > 1e308:
        return cap  # an int past float's range: float() would raise OverflowError
    if isinstance(rescore_multiplier, bool) or not (
        isinstance(rescore_multiplier, (int, float, np.number))
        and rescore_multiplier >= 1
        and math.isfinite(float(rescore_multiplier))
    ):
        found = f"found {rescore_multiplier!r}. Use 1 for no oversampling."
        msg = f"rescore_multiplier must be a number >= 1 and finite; {found}"
        raise InvalidArgumentError(msg)
    if k > _MAX_CANDIDATES:
        return cap  # k itself past the cap (k * multiplier could overflow a float)
    wanted = k * float(rescore_multiplier)
    if wanted >= cap:  # compared as floats: 10 * 1e308 is inf
        return cap
    # Rounded first: 100 * 1.1 is 110.00000000000001 in floats, whose ceiling would fetch one candidate more.
    return max(k, math.ceil(round(wanted, 6)))


def query_texts(queries: str | Sequence[str]) -> tuple[bool, list[str]]:
    """Whether ``queries`` is one query, and the query texts as a list (bytes refused: iterating gives ints)."""
    single = isinstance(queries, str) or (isinstance(queries, np.ndarray) and queries.ndim == 0)  # as encode reads it
    return single, check_texts(queries, "queries")  # None, 3, a dict: a matryo error


def shown_ids(ids: Sequence[object], limit: int = 5) -> str:
    """The first ``limit`` ids for a message, then how many more: ``'a', 'b' and 3 more``."""
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(repr(doc_id) for doc_id in ids[:limit]) + more


def check_on_missing(on_missing: object) -> None:
    """Refuse an ``on_missing`` other than ``"raise"`` and ``"skip"``."""
    if on_missing not in ("raise", "skip"):
        msg = f"on_missing must be 'raise' or 'skip'; found {on_missing!r}."
        raise InvalidArgumentError(msg)


def _unique_in_order(candidates: Sequence[Sequence[IdT]]) -> tuple[list[list[IdT]], list[IdT]]:
    """Deduplicate each query's candidates (first occurrence wins) and collect their union in order."""
    per_query: list[list[IdT]] = []
    union: dict[IdT, None] = {}
    for ids in candidates:
        seen: dict[IdT, None] = dict.fromkeys(ids)
        per_query.append(list(seen))
        union.update(seen)
    return per_query, list(union)


def _found_pairs(result: object, what: str) -> tuple[list[Hashable], object]:
    if isinstance(result, Mapping):
        return list(result.keys()), list(result.values())
    if isinstance(result, tuple) and len(result) == 2:
        return list(result[0]), result[1]
    msg = f"{what} must return a mapping id -> value or a pair (found_ids, values); found {type(result).__name__}."
    raise InvalidTypeError(msg)


def _texts(found: list[Hashable], values: object) -> tuple[list[Hashable], list[str]]:
    """The fetched ids and texts, without those whose text is None (not found); other non-strings are refused."""
    texts = list(values)  # type: ignore[call-overload]
    if len(texts) != len(found):
        msg = f"fetch_texts returned {len(found)} ids but {len(texts)} texts; expected one text per id."
        raise InvalidArgumentError(msg)
    kept = [(doc_id, text) for doc_id, text in zip(found, texts, strict=True) if text is not None]
    for doc_id, text in kept:
        if not isinstance(text, str):  # str(b"x") is "b'x'", str(5) is "5": neither is the document
            kind = type(text).__name__
            msg = f"fetch_texts must return str texts (or None for a missing one); found {kind} for id {doc_id!r}."
            raise InvalidTypeError(msg)
    return [doc_id for doc_id, _ in kept], [text for _, text in kept]


def _vectors_found(found: list[Hashable], values: object) -> tuple[list[Hashable], object]:
    """The fetched ids and vectors without those whose vector is None (a host record without one: not found)."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return found, values  # a matrix holds no None
    try:
        rows = list(values)  # type: ignore[call-overload]  # a list, a pandas Series, an object array
    except TypeError:
        return found, values  # _stack names it
    if len(rows) != len(found):
        msg = f"The fetch returned {len(found)} ids but {len(rows)} vectors; expected one vector per id."
        raise InvalidArgumentError(msg)
    kept = [(doc_id, row) for doc_id, row in zip(found, rows, strict=True) if row is not None]
    return [doc_id for doc_id, _ in kept], [row for _, row in kept]


def _stack(values: object, count: int, query_dim: int) -> NDArray[Any]:
    """Stack fetched vectors into a (count, dim) numeric matrix; ragged widths raise DimensionMismatchError.

    Numeric arrays keep their dtype; bools and objects become float64 (a tiny or huge value is judged as such).
    """
    values = _real(values, "The fetched full vectors")
    try:
        matrix = np.asarray(values)
        if matrix.dtype.kind not in "fiu":  # bools, objects; strings fail here
            matrix = matrix.astype(np.float64)
    except (TypeError, ValueError) as exc:  # ragged rows, or not numbers
        rows = list(values)  # type: ignore[call-overload]
        widths = sorted({int(np.size(row)) for row in rows})
        if len(widths) > 1:
            msg = (
                f"The fetched full vectors have different widths {widths}; expected every vector to have the "
                f"query's {query_dim} dimensions."
            )
            raise DimensionMismatchError(msg) from exc
        msg = f"The fetched full vectors must be numbers; {exc}."
        raise InvalidArgumentError(msg) from exc
    if matrix.ndim > 2:
        if any(size != 1 for size in matrix.shape[1:-1]):  # (n, 1, dim): each id's encode([text]), one vector
            msg = f"The fetched full vectors must be one vector per id; found an array of shape {matrix.shape}."
            raise DimensionMismatchError(msg)
        matrix = matrix.reshape(matrix.shape[0], matrix.shape[-1])
    if matrix.ndim != 2:
        matrix = matrix.reshape(count, -1) if matrix.size else np.zeros((count, 0), dtype=np.float32)
    return matrix


def rescore(
    query_vectors: ArrayLike,
    candidates: Sequence[Sequence[IdT]],
    *,
    k: int = DEFAULT_K,
    fetch_full_vectors: FetchVectors[IdT] | None = None,
    fetch_texts: FetchTexts[IdT] | None = None,
    encoder: Encoder | None = None,
    on_missing: OnMissing = "raise",
) -> list[SearchHits[IdT]]:
    """Rescore first-pass candidates by full-dimension cosine and keep the best ``k`` per query.

    Use this directly when the host already has full-width query vectors; :func:`two_stage_search`
    encodes the queries and calls it.

    Args:
        query_vectors: A ``(q, dim)`` array of full-width query vectors (normalised here).
        candidates: For each query, candidate ids best first (duplicates are ignored).
        k: Hits to keep per query.
        fetch_full_vectors: Returns full vectors for ids (see the module docstring). Exactly one of
            this and ``fetch_texts`` must be given.
        fetch_texts: Returns texts for ids, which ``encoder`` re-encodes at full width.
        encoder: Required with ``fetch_texts``.
        on_missing: ``"raise"`` (default) raises :class:`MissingVectorError` when a candidate has no full
            vector/text; ``"skip"`` drops such candidates from the hits (they are never given a score).

    Returns:
        One :class:`SearchHits` per query (empty for a zero query vector, e.g. an empty text's).

    Raises:
        ValueError: If ``k <= 0``, the number of candidate lists differs from the number of queries, or
            not exactly one fetch function is given.
        DimensionMismatchError: If the fetched vectors are not as wide as the query vectors.
        NonFiniteVectorError: If a query vector or a fetched vector holds NaN, inf or a value beyond float32's range.
        InvalidTypeError: If the candidates are not lists of ids, or a fetched text is not a str (None: not found).
        MissingVectorError: If ``on_missing="raise"`` and a candidate cannot be fetched (its vector or text is
            absent or None).
    """
    k = _check_k(k)
    if (fetch_full_vectors is None) == (fetch_texts is None):
        msg = "Pass exactly one of fetch_full_vectors= (stored full vectors) or fetch_texts= (re-encode texts)."
        raise InvalidArgumentError(msg)
    if fetch_texts is not None and encoder is None:
        msg = "fetch_texts= needs encoder= to re-encode the candidate texts at full dimension."
        raise InvalidArgumentError(msg)
    check_on_missing(on_missing)
    queries = as_numbers(query_vectors, "query vectors")  # converted once, in its own dtype
    if queries.ndim == 1:
        queries = queries[None, :]
    if not hasattr(candidates, "__len__"):  # e.g. a first_pass callable that returned None
        msg = (
            "candidates must hold one list of ids per query (what a first_pass callable returns); found "
            f"{type(candidates).__name__}."
        )
        raise InvalidTypeError(msg)
    if isinstance(candidates, str) or any(isinstance(ids, (str, bytes)) for ids in candidates):
        # a flat list of ids for one query: each id was read as a list of its characters
        msg = "candidates must hold one list of ids per query (e.g. [['d1', 'd2']] for one query); found a string."
        raise InvalidTypeError(msg)
    if len(candidates) != queries.shape[0]:
        msg = f"Expected one candidate list per query ({queries.shape[0]}); found {len(candidates)} lists."
        raise InvalidArgumentError(msg)
    queries = unit_rows(queries, "query vectors", fix="Pass finite query vectors.")  # a tiny float64 query: kept
    per_query, union = _unique_in_order(candidates)
    if not union:
        return [SearchHits() for _ in per_query]

    if fetch_full_vectors is not None:
        found, values = _vectors_found(*_found_pairs(fetch_full_vectors(union), "fetch_full_vectors"))
        matrix = _stack(values, len(found), queries.shape[1]) if found else None
    else:
        assert fetch_texts is not None and encoder is not None  # checked above; narrows the types
        found, values = _found_pairs(fetch_texts(union), "fetch_texts")
        found, texts = _texts(found, values)
        matrix = (
            np.asarray(encoder.encode(texts, truncate_dim=encoder.dim, normalize=True), dtype=np.float32)
            if found
            else None
        )
    if matrix is not None:
        if matrix.shape[0] != len(found):
            msg = f"The fetch returned {len(found)} ids but {matrix.shape[0]} vectors; expected one vector per id."
            raise InvalidArgumentError(msg)
        if matrix.shape[1] != queries.shape[1]:
            msg = (
                f"Query vectors have {queries.shape[1]} dimensions but the fetched full vectors have "
                f"{matrix.shape[1]}. Expected the same width: store full-dimension vectors from the same model "
                "as the queries (truncate only the first-pass index)."
            )
            raise DimensionMismatchError(msg)
        check_finite(
            matrix,
            "full vectors from the fetch",
            labels=found,
            fix="The host's full-vector store holds damaged vectors: re-add those documents with finite vectors.",
        )
        matrix = normalize(matrix)
    row_of = {doc_id: row for row, doc_id in enumerate(found)}

    missing = [doc_id for doc_id in union if doc_id not in row_of]
    if missing and on_missing == "raise":
        msg = (
            f"The first pass returned {len(missing)} id(s) with no full vector: {shown_ids(missing)}. Expected every "
            "candidate id to be fetchable; keep the first-pass index and the full-vector store in sync, or pass "
            "on_missing='skip' to drop such candidates."
        )
        raise MissingVectorError(msg, missing)

    hits: list[SearchHits[IdT]] = []
    for query, ids in zip(queries, per_query, strict=True):
        kept = [doc_id for doc_id in ids if doc_id in row_of]
        if not kept or matrix is None or not query.any():  # a zero query ranks nothing
            hits.append(SearchHits())
            continue
        rows = np.fromiter((row_of[doc_id] for doc_id in kept), dtype=np.intp, count=len(kept))
        shortlist: NDArray[np.float32] = matrix[rows]
        order, best = top_k(shortlist @ query, k, partial(row_scores, shortlist, query))
        hits.append(SearchHits([kept[i] for i in order], best))
    return hits


def row_scores(matrix: NDArray[np.float32], query: NDArray[np.float32], near: NDArray[np.intp]) -> NDArray[np.float32]:
    """``matrix[near] @ query`` computed row by row (einsum): equal rows score equal wherever they are."""
    out: NDArray[np.float32] = np.einsum("ij,j->i", matrix[near], query)
    return out


_NEAR_TIE = 1e-6
"""Scores closer than this are checked again by :func:`top_k` (float32 BLAS rounding is ~1e-7 on a cosine)."""


def top_k(
    scores: NDArray[np.float32], k: int, exact: Callable[[NDArray[np.intp]], NDArray[np.float32]]
) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """The ``k`` best of ``scores``, best first, equal vectors in input order, and their scores.

    ``scores`` come from a BLAS matrix product, which sums a matrix's last rows in another order than the others:
    identical vectors can score a few ulp apart by their position, so their order (and which of them make the
    cut) would depend on the rows around them. When scores near the cut or inside the top ``k`` are closer than
    :data:`_NEAR_TIE`, those are scored again with ``exact`` (an einsum, the same arithmetic for every row) and
    ranked by that score, then by input position. Real data rarely has such near-ties, so the common case costs
    one sort.

    Args:
        scores: One score per candidate (float32).
        k: How many to keep.
        exact: Scores of the candidates at the given indices, computed row by row.

    Returns:
        ``(indices, scores)`` of the kept candidates, best first.
    """
    order = np.argsort(-scores, kind="stable")
    head = order[:k]
    if head.size < 2 and order.size <= k:
        return head, np.asarray(scores[head], dtype=np.float32)
    ranked = scores[order]
    kth = ranked[head.size - 1]
    near = order[: int(np.searchsorted(-ranked, -(kth - _NEAR_TIE), side="right"))]
    close = ranked[: near.size]
    if near.size == head.size and np.all(close[:-1] - close[1:] > _NEAR_TIE):
        return head, np.asarray(scores[head], dtype=np.float32)
    again = np.asarray(exact(near), dtype=np.float32)
    pick = np.lexsort((near, -again))[:k]
    return near[pick], again[pick]


@overload
def two_stage_search(  # type: ignore[overload-overlap]  # a str is also a Sequence[str]
    encoder: Encoder,
    queries: str,
    *,
    first_pass: FirstPass[IdT],
    fetch_full_vectors: FetchVectors[IdT] | None = None,
    fetch_texts: FetchTexts[IdT] | None = None,
    k: int = DEFAULT_K,
    rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
    truncate_dim: int | None = DEFAULT_TRUNCATE_DIM,
    on_missing: OnMissing = "raise",
) -> SearchHits[IdT]: ...


@overload
def two_stage_search(
    encoder: Encoder,
    queries: Sequence[str],
    *,
    first_pass: FirstPass[IdT],
    fetch_full_vectors: FetchVectors[IdT] | None = None,
    fetch_texts: FetchTexts[IdT] | None = None,
    k: int = DEFAULT_K,
    rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
    truncate_dim: int | None = DEFAULT_TRUNCATE_DIM,
    on_missing: OnMissing = "raise",
) -> list[SearchHits[IdT]]: ...


def two_stage_search(
    encoder: Encoder,
    queries: str | Sequence[str],
    *,
    first_pass: FirstPass[IdT],
    fetch_full_vectors: FetchVectors[IdT] | None = None,
    fetch_texts: FetchTexts[IdT] | None = None,
    k: int = DEFAULT_K,
    rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
    truncate_dim: int | None = DEFAULT_TRUNCATE_DIM,
    on_missing: OnMissing = "raise",
) -> SearchHits[IdT] | list[SearchHits[IdT]]:
    """Search with a truncated first pass, then rescore the shortlist at full dimension.

    Example:
        >>> index = NumpyIndex(encoder)  # doctest: +SKIP
        >>> index.add(["a", "b"], ["first doc", "second doc"])  # doctest: +SKIP
        >>> hits = two_stage_search(  # doctest: +SKIP
        ...     encoder, "a query", first_pass=index.first_pass, fetch_full_vectors=index.fetch_full_vectors
        ... )

        That is ``index.search("a query")`` up to ties: documents with exactly equal full-dimension scores keep
        the first pass's order here, and insertion order in :meth:`NumpyIndex.search <matryo.index.NumpyIndex.search>`.

    Args:
        encoder: Encodes the queries (and, with ``fetch_texts``, the candidates); see :class:`Encoder`.
        queries: One query text, or a sequence of them (searched as one batch).
        first_pass: ``first_pass(query_vectors, n) -> ids per query``; receives the truncated, re-normalised
            query vectors (``truncate_dim`` wide) and ``n = ceil(k * rescore_multiplier)``.
        fetch_full_vectors: Returns full-dimension vectors for a list of ids (a mapping, or a pair
            ``(found_ids, matrix)``). Called once per batch with the union of all candidates.
        fetch_texts: Alternative to ``fetch_full_vectors``: returns texts, re-encoded at full dimension.
        k: Hits per query (``> 0``).
        rescore_multiplier: Oversampling of the first pass (``>= 1``).
        truncate_dim: Width of the first-pass query vectors; ``None``, or a value ``>=`` the encoder's width,
            means the full width (e.g. a binary first pass over full vectors).
        on_missing: ``"raise"`` or ``"skip"`` a candidate whose full vector/text cannot be fetched.

    Returns:
        :class:`SearchHits` for a single query string, else a list with one per query.

    Raises:
        ValueError: If ``k <= 0``, ``rescore_multiplier < 1``, ``truncate_dim < 1``, or not exactly one fetch
            function is given.
        DimensionMismatchError: If fetched full vectors and query vectors differ in width.
        MissingVectorError: If a candidate cannot be fetched and ``on_missing="raise"``.
    """
    n_candidates = candidate_count(k, rescore_multiplier)
    if (fetch_full_vectors is None) == (fetch_texts is None):
        msg = "Pass exactly one of fetch_full_vectors= (stored full vectors) or fetch_texts= (re-encode texts)."
        raise InvalidArgumentError(msg)
    if truncate_dim is not None and (
        isinstance(truncate_dim, bool) or not isinstance(truncate_dim, (int, np.integer)) or truncate_dim < 1
    ):  # "8" failed in a comparison, 0 in truncate
        msg = f"truncate_dim must be a positive integer (the first pass's width) or None; found {truncate_dim!r}."
        raise InvalidArgumentError(msg)
    check_on_missing(on_missing)  # before the no-query answer, as NumpyIndex.search checks it
    single, texts = query_texts(queries)
    if not texts:
        return []
    full = np.asarray(encoder.encode(texts, truncate_dim=encoder.dim, normalize=True), dtype=np.float32).reshape(
        len(texts), -1
    )
    width = full.shape[1]
    prefix = full if truncate_dim is None or truncate_dim >= width else truncate(full, truncate_dim)
    candidates = first_pass(prefix, n_candidates)
    hits = rescore(
        full,
        candidates,
        k=k,
        fetch_full_vectors=fetch_full_vectors,
        fetch_texts=fetch_texts,
        encoder=encoder,
        on_missing=on_missing,
    )
    return hits[0] if single else hits
