"""A small brute-force numpy index for two-stage search: no database needed.

:class:`NumpyIndex` keeps a first-pass code per document (a truncated vector as float32, int8 or binary)
and a rescoring store (full vectors as float32, float16 or int8, or nothing: the texts are re-encoded on
the fly). It is exact brute force, so it is also the reference the database adapters are measured against.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Generic, Literal, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matryo.errors import DimensionMismatchError, InvalidArgumentError, InvalidTypeError
from matryo.quantize import CODEC_NAMES, Codec, Int8Codec, check_finite, make_codec, normalize, truncate
from matryo.search import (
    DEFAULT_K,
    DEFAULT_RESCORE_MULTIPLIER,
    DEFAULT_TRUNCATE_DIM,
    Encoder,
    OnMissing,
    SearchHits,
    candidate_count,
    rescore,
)

__all__ = ["DEFAULT_FIRST_PASS", "DEFAULT_STORE", "FIRST_PASS_CODECS", "STORES", "NumpyIndex", "SearchMode"]

IdT = TypeVar("IdT", bound=Hashable)

DEFAULT_FIRST_PASS = "float32"
"""Codec of the first-pass index (chosen by ``benchmarks/bench_two_stage.py``)."""

DEFAULT_STORE = "float32"
"""Codec of the full-vector rescoring store."""

FIRST_PASS_CODECS: tuple[str, ...] = ("float32", "int8", "binary")
"""Codecs a first-pass index can use."""

STORES: tuple[str, ...] = (*CODEC_NAMES[:3], "none")
"""Rescoring stores: ``"float32"``, ``"float16"``, ``"int8"``, or ``"none"`` (re-encode the texts)."""

SearchMode = Literal["two_stage", "exact", "first_pass"]

_QUERY_CHUNK = 256  # queries scored at once against the whole index (bounds the score matrix)


def _top_n(scores: NDArray[np.float32], n: int) -> NDArray[np.intp]:
    """Indices of the ``n`` best scores, best first; equal scores keep insertion order."""
    if n < scores.shape[0]:
        part = np.argpartition(-scores, n - 1)[:n]
        # Include every index tied with the n-th best so ties resolve by position, not by argpartition.
        threshold = scores[part].min()
        part = np.flatnonzero(scores >= threshold)
    else:
        part = np.arange(scores.shape[0])
    order = np.lexsort((part, -scores[part]))
    return np.asarray(part[order][:n], dtype=np.intp)


def _finite(values: ArrayLike, what: str) -> NDArray[np.float32]:
    """``values`` as float32, refusing NaN, inf and values beyond float32's range (see :func:`check_finite`)."""
    with np.errstate(over="ignore", invalid="ignore"):  # check_finite reports the overflow
        array = np.asarray(values, dtype=np.float32)
    check_finite(array, what, fix=f"Pass finite {what}.")
    return array


def _codec(name: str, sample: NDArray[np.float32]) -> Codec:
    """A codec for ``sample``'s width; int8 ranges from ``sample``, widened later by :func:`_covering`."""
    if name == "int8":
        return Int8Codec.calibrate(sample, warn=False)
    return make_codec(name, sample.shape[1])


def _covering(codec: Codec, vectors: NDArray[np.float32], chunks: list[NDArray[Any]]) -> Codec:
    """``codec``, or for int8 a wider one holding ``vectors``, with the stored ``chunks`` re-encoded for it."""
    if not isinstance(codec, Int8Codec):
        return codec
    wider = codec.covering(vectors)
    if wider is not codec:
        chunks[:] = [wider.recode(chunk, codec) for chunk in chunks]
    return wider


class NumpyIndex(Generic[IdT]):
    """Brute-force two-stage index held in numpy arrays.

    Example:
        >>> index = NumpyIndex(encoder, truncate_dim=128, first_pass="binary")  # doctest: +SKIP
        >>> index.add(["d1", "d2"], ["a document", "another one"])  # doctest: +SKIP
        >>> index.search("a query", k=1).ids  # doctest: +SKIP
        ['d1']

    Args:
        encoder: Encodes documents and queries (:class:`matryo.StaticEncoder` or any :class:`Encoder`).
        truncate_dim: Width of the first-pass vectors; ``None`` (or any value ``>=`` the encoder's width)
            keeps full vectors. Defaults to :data:`matryo.search.DEFAULT_TRUNCATE_DIM`.
        first_pass: First-pass codec: ``"float32"``, ``"int8"`` or ``"binary"``.
        store: Rescoring store: ``"float32"``, ``"float16"``, ``"int8"`` or ``"none"`` (keep the texts and
            re-encode candidates at search time; needs texts in :meth:`add`).
        calibration: Full-width sample vectors for the int8 ranges. When omitted, int8 codecs calibrate on
            the first :meth:`add` batch. Either way a later batch with values outside the ranges widens
            them (:meth:`matryo.quantize.Int8Codec.covering`) and the stored codes are re-encoded, so
            nothing is clipped.

    Raises:
        ValueError: If a codec name is unknown or ``truncate_dim`` is not positive.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        truncate_dim: int | None = DEFAULT_TRUNCATE_DIM,
        first_pass: str = DEFAULT_FIRST_PASS,
        store: str = DEFAULT_STORE,
        calibration: ArrayLike | None = None,
    ) -> None:
        if first_pass not in FIRST_PASS_CODECS:
            msg = f"Unknown first_pass codec {first_pass!r}; expected one of {', '.join(FIRST_PASS_CODECS)}."
            raise InvalidArgumentError(msg)
        if store not in STORES:
            msg = f"Unknown store {store!r}; expected one of {', '.join(STORES)}."
            raise InvalidArgumentError(msg)
        self.encoder = encoder
        self.dim = int(encoder.dim)
        if truncate_dim is None or (isinstance(truncate_dim, (int, np.integer)) and truncate_dim > self.dim):
            truncate_dim = self.dim
        truncate(np.zeros((1, self.dim), dtype=np.float32), truncate_dim)  # validates truncate_dim
        self.truncate_dim = int(truncate_dim)
        self.first_pass_codec_name = first_pass
        self.store_name = store
        self._calibration = None if calibration is None else _finite(calibration, "calibration vectors")
        self._first_codec: Codec | None = None
        self._store_codec: Codec | None = None
        self._ids: list[IdT] = []
        self._row_of: dict[IdT, int] = {}
        self._first_chunks: list[NDArray[Any]] = []
        self._store_chunks: list[NDArray[Any]] = []
        self._texts: list[str] = []

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[IdT]:
        """Document ids in insertion order."""
        return list(self._ids)

    @property
    def first_pass_bytes_per_vector(self) -> int:
        """Bytes per document in the first-pass index (codes only)."""
        if self.first_pass_codec_name == "binary":
            return (self.truncate_dim + 7) // 8
        return self.truncate_dim * (4 if self.first_pass_codec_name == "float32" else 1)

    @property
    def store_bytes_per_vector(self) -> int:
        """Bytes per document in the rescoring store (0 for ``"none"``, which keeps the texts instead)."""
        itemsize = {"float32": 4, "float16": 2, "int8": 1, "none": 0}[self.store_name]
        return itemsize * self.dim

    def _codecs(self, vectors: NDArray[np.float32]) -> tuple[Codec, Codec | None]:
        if self._first_codec is None:
            sample = vectors if self._calibration is None else self._calibration
            if sample.ndim != 2 or sample.shape[1] != self.dim:
                msg = f"calibration must be a (n, {self.dim}) array of full vectors; found shape {sample.shape}."
                raise DimensionMismatchError(msg)
            needs = self.first_pass_codec_name == "int8" or self.store_name == "int8"
            sample = normalize(sample) if needs else sample
            # Both codecs are built before either is kept: a failure leaves the index as it was (empty).
            first_codec = _codec(self.first_pass_codec_name, truncate(sample, self.truncate_dim))
            store_codec = None if self.store_name == "none" else _codec(self.store_name, sample)
            self._first_codec, self._store_codec = first_codec, store_codec
        self._first_codec = _covering(self._first_codec, truncate(vectors, self.truncate_dim), self._first_chunks)
        if self._store_codec is not None:
            self._store_codec = _covering(self._store_codec, vectors, self._store_chunks)
        return self._first_codec, self._store_codec

    def add(self, ids: Sequence[IdT], texts: Sequence[str] | None = None, *, vectors: ArrayLike | None = None) -> None:
        """Add documents by text, by full-width vectors, or both.

        Args:
            ids: One unique id per document (any hashable; hosts use str).
            texts: Document texts, encoded at full width when ``vectors`` is not given. Required for
                ``store="none"``.
            vectors: Full-width ``(n, dim)`` vectors (normalised here).

        Raises:
            ValueError: If lengths differ, an id repeats, or neither texts nor vectors are given.
            DimensionMismatchError: If ``vectors`` are not the encoder's width.
        """
        ids = list(ids)
        if texts is not None and isinstance(texts, str):
            msg = "texts must be a sequence of strings, not one string; wrap it in a list."
            raise InvalidTypeError(msg)
        if texts is not None and len(texts) != len(ids):
            msg = f"Expected one text per id: found {len(ids)} ids and {len(texts)} texts."
            raise InvalidArgumentError(msg)
        if texts is None and (vectors is None or self.store_name == "none"):
            msg = "Pass texts= (and/or vectors=); store='none' always needs the texts to re-encode them."
            raise InvalidArgumentError(msg)
        seen: set[IdT] = set()
        clash: list[IdT] = []
        for doc_id in ids:
            if doc_id in self._row_of or doc_id in seen:
                clash.append(doc_id)
            seen.add(doc_id)
        if clash:
            msg = (
                f"Document ids must be unique; found {len(clash)} repeated or already-added id(s), e.g. "
                f"{clash[:3]!r}. Remove the duplicates (updating a document is not supported: build a new index)."
            )
            raise InvalidArgumentError(msg)
        if not ids:
            return
        if vectors is None:
            assert texts is not None  # checked above
            full = np.asarray(self.encoder.encode(list(texts), truncate_dim=self.dim, normalize=True), dtype=np.float32)
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # check_finite reports float32 overflow
                full = np.asarray(vectors, dtype=np.float32)
            full = full.reshape(1, -1) if full.ndim == 1 else full
        if full.shape != (len(ids), self.dim):
            msg = (
                f"Expected {len(ids)} vectors of the encoder's width {self.dim}; found shape {full.shape}. "
                "Pass full-dimension vectors from the same model."
            )
            raise DimensionMismatchError(msg)
        check_finite(full, "document vectors", labels=ids, fix="Drop or fix those documents; nothing was added.")
        full = normalize(full)
        first_codec, store_codec = self._codecs(full)
        self._first_chunks.append(first_codec.encode(truncate(full, self.truncate_dim)))
        if store_codec is not None:
            self._store_chunks.append(store_codec.encode(full))
        if self.store_name == "none" and texts is not None:
            self._texts.extend(str(text) for text in texts)
        for doc_id in ids:
            self._row_of[doc_id] = len(self._ids)
            self._ids.append(doc_id)

    @staticmethod
    def _merged(chunks: list[NDArray[Any]]) -> NDArray[Any]:
        if len(chunks) > 1:
            chunks[:] = [np.concatenate(chunks)]
        return chunks[0]

    def first_pass(self, query_vectors: NDArray[np.float32], n: int) -> list[list[IdT]]:
        """Brute-force first pass: the ``n`` best ids per query by the first-pass codec's similarity.

        This is a :data:`matryo.search.FirstPass` callable. Ties keep insertion order.

        Args:
            query_vectors: ``(q, truncate_dim)`` query prefixes (re-normalised truncations).
            n: Candidates wanted per query.

        Returns:
            For each query, up to ``n`` ids, best first.

        Raises:
            DimensionMismatchError: If the query vectors are not ``truncate_dim`` wide.
        """
        queries = _finite(query_vectors, "first-pass query vectors").reshape(-1, np.shape(query_vectors)[-1])
        if queries.shape[1] != self.truncate_dim:
            msg = (
                f"First-pass query vectors have {queries.shape[1]} dimensions; this index expects "
                f"{self.truncate_dim}. Search with truncate_dim={self.truncate_dim}."
            )
            raise DimensionMismatchError(msg)
        if not self._ids or n <= 0:
            return [[] for _ in range(queries.shape[0])]
        assert self._first_codec is not None
        codes = self._merged(self._first_chunks)
        return self._top_ids(self._first_codec, queries, codes, n)

    def _top_ids(self, codec: Codec, queries: NDArray[np.float32], codes: NDArray[Any], n: int) -> list[list[IdT]]:
        out: list[list[IdT]] = []
        for start in range(0, queries.shape[0], _QUERY_CHUNK):
            scores = codec.similarity(queries[start : start + _QUERY_CHUNK], codes)
            out.extend([self._ids[i] for i in _top_n(row, n)] for row in scores)
        return out

    def fetch_full_vectors(self, ids: Sequence[IdT]) -> tuple[list[IdT], NDArray[np.float32]]:
        """Full-width vectors for the known ids among ``ids`` (a :data:`matryo.search.FetchVectors`).

        With ``store="none"`` the texts are re-encoded; with float16/int8 the vectors are decoded.

        Args:
            ids: Ids to look up; unknown ids are left out of the result.

        Returns:
            ``(found_ids, matrix)`` with one ``dim``-wide row per found id.
        """
        found = [doc_id for doc_id in ids if doc_id in self._row_of]
        rows = np.fromiter((self._row_of[doc_id] for doc_id in found), dtype=np.intp, count=len(found))
        if self._store_codec is None:
            if not found:
                return found, np.zeros((0, self.dim), dtype=np.float32)
            texts = [self._texts[row] for row in rows]
            return found, np.asarray(
                self.encoder.encode(texts, truncate_dim=self.dim, normalize=True), dtype=np.float32
            )
        return found, self._store_codec.decode(self._merged(self._store_chunks)[rows])

    @overload
    def search(  # type: ignore[overload-overlap]  # a str is also a Sequence[str]
        self,
        queries: str,
        *,
        k: int = DEFAULT_K,
        rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
        mode: SearchMode = "two_stage",
        on_missing: OnMissing = "raise",
    ) -> SearchHits[IdT]: ...

    @overload
    def search(
        self,
        queries: Sequence[str],
        *,
        k: int = DEFAULT_K,
        rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
        mode: SearchMode = "two_stage",
        on_missing: OnMissing = "raise",
    ) -> list[SearchHits[IdT]]: ...

    def search(
        self,
        queries: str | Sequence[str],
        *,
        k: int = DEFAULT_K,
        rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
        mode: SearchMode = "two_stage",
        on_missing: OnMissing = "raise",
    ) -> SearchHits[IdT] | list[SearchHits[IdT]]:
        """Search by query text(s).

        Args:
            queries: One query, or a sequence (one batch).
            k: Hits per query (``> 0``).
            rescore_multiplier: First-pass oversampling for ``mode="two_stage"`` (``>= 1``).
            mode: ``"two_stage"`` (first pass, then full-dimension rescoring), ``"exact"`` (brute-force
                cosine over the whole rescoring store) or ``"first_pass"`` (the first pass alone; scores are
                the first-pass codec's similarities).
            on_missing: Passed to :func:`matryo.search.rescore`.

        Returns:
            :class:`SearchHits` for a single string, else one per query.

        Raises:
            ValueError: If ``k <= 0``, ``rescore_multiplier < 1`` or ``mode`` is unknown.
        """
        single = isinstance(queries, str)
        texts = [queries] if isinstance(queries, str) else list(queries)
        _ = candidate_count(k, rescore_multiplier)  # validates k and the multiplier even with no queries
        if not texts:
            return []
        vectors = np.asarray(self.encoder.encode(texts, truncate_dim=self.dim, normalize=True), dtype=np.float32)
        hits = self.search_vectors(
            vectors, k=k, rescore_multiplier=rescore_multiplier, mode=mode, on_missing=on_missing
        )
        return hits[0] if single else hits

    def search_vectors(
        self,
        query_vectors: ArrayLike,
        *,
        k: int = DEFAULT_K,
        rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
        mode: SearchMode = "two_stage",
        on_missing: OnMissing = "raise",
    ) -> list[SearchHits[IdT]]:
        """Search with full-width query vectors (already encoded); see :meth:`search`.

        Args:
            query_vectors: ``(q, dim)`` full-width query vectors.
            k: Hits per query.
            rescore_multiplier: First-pass oversampling for ``mode="two_stage"``.
            mode: ``"two_stage"``, ``"exact"`` or ``"first_pass"``.
            on_missing: Passed to :func:`matryo.search.rescore`.

        Returns:
            One :class:`SearchHits` per query.

        Raises:
            ValueError: If ``k <= 0``, ``rescore_multiplier < 1``, ``mode`` is unknown, or ``mode="exact"``
                with ``store="none"``.
            DimensionMismatchError: If the query vectors are not the encoder's width.
        """
        n_candidates = candidate_count(k, rescore_multiplier)
        queries = _finite(query_vectors, "query vectors")
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            msg = f"Query vectors must be (q, {self.dim}) (the encoder's full width); found shape {queries.shape}."
            raise DimensionMismatchError(msg)
        queries = normalize(queries)
        if mode == "two_stage":
            candidates = self.first_pass(truncate(queries, self.truncate_dim), n_candidates)
            return rescore(queries, candidates, k=k, fetch_full_vectors=self.fetch_full_vectors, on_missing=on_missing)
        if mode == "first_pass":
            prefix = truncate(queries, self.truncate_dim)
            return [
                SearchHits(ids, self._first_scores(query, ids)) if query.any() else SearchHits()
                for query, ids in zip(prefix, self.first_pass(prefix, k), strict=True)
            ]
        if mode == "exact":
            if self.store_name == "none":
                msg = "mode='exact' needs stored full vectors; this index has store='none'. Use mode='two_stage'."
                raise InvalidArgumentError(msg)
            if not self._ids:
                return [SearchHits() for _ in range(queries.shape[0])]
            assert self._store_codec is not None
            ranked = self._top_ids(self._store_codec, queries, self._merged(self._store_chunks), k)
            return rescore(queries, ranked, k=k, fetch_full_vectors=self.fetch_full_vectors)
        msg = f"Unknown mode {mode!r}; expected 'two_stage', 'exact' or 'first_pass'."
        raise InvalidArgumentError(msg)

    def _first_scores(self, query: NDArray[np.float32], ids: list[IdT]) -> NDArray[np.float32]:
        if not ids or self._first_codec is None:
            return np.zeros(0, dtype=np.float32)
        rows = np.fromiter((self._row_of[doc_id] for doc_id in ids), dtype=np.intp, count=len(ids))
        scores = self._first_codec.similarity(query, self._merged(self._first_chunks)[rows])
        return np.asarray(scores[0], dtype=np.float32)
