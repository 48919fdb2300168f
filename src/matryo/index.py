"""A small brute-force numpy index for two-stage search: no database needed.

:class:`NumpyIndex` keeps a first-pass code per document (a truncated vector as float32, int8 or binary)
and a rescoring store (full vectors as float32, float16 or int8, or nothing: the texts are re-encoded on
the fly). It is exact brute force, so it is also the reference the database adapters are measured against.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matryo.errors import (
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidTypeError,
    StoreFormatError,
    StoreWriteError,
)
from matryo.files import write_replacing
from matryo.quantize import CODEC_NAMES, Codec, Int8Codec, codec_from_config, make_codec
from matryo.search import (
    DEFAULT_K,
    DEFAULT_RESCORE_MULTIPLIER,
    DEFAULT_TRUNCATE_DIM,
    Encoder,
    OnMissing,
    SearchHits,
    candidate_count,
    check_on_missing,
    query_texts,
    rescore,
    row_scores,
    top_k,
)
from matryo.vectors import as_finite, as_numbers, block_rows, normalize, truncate, unit_rows

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

_ROW_ARRAYS = ("_first_codes", "_store_codes", "_store_norms", "_empty")  # one row per document
_FILE_FORMAT = "matryo.NumpyIndex"
_FILE_VERSION = 1
_QUERY_CHUNK = 256  # at most this many queries scored at once against the whole index (fewer: vectors.block_rows)
_SCORE_BLOCK = 1 << 22  # rows x dim decoded at once to measure stored vectors' lengths (16 MB as float32)
_EXACT_BAND = 1e-4  # exact mode also rescores rows this close to the k-th score (float32 rounding is far below)
_RESCORE_BLOCK = 1 << 22  # candidates x dim fetched for rescoring at once (16 MB as float32); splits a query batch


def _save_npz(target: Path, payload: dict[str, NDArray[Any]]) -> None:
    """Write ``payload`` as an .npz file at ``target``, through :func:`matryo.files.write_replacing`.

    A temporary file is renamed over ``target``, a link is written through, the replaced file's mode is kept; on
    failure ``target`` is as it was.
    """
    if target.is_symlink():
        try:
            target = target.resolve(strict=False)
        except (RuntimeError, OSError) as exc:  # a link loop
            msg = f"Cannot save the index to {target}: it is a symbolic link loop ({exc}). Fix or delete the link."
            raise StoreWriteError(msg) from exc
    if target.is_dir():
        msg = f"Cannot save the index to {target}: it is a folder. Pass a file path, e.g. {target / 'index.npz'}."
        raise InvalidArgumentError(msg)
    try:
        write_replacing(target, lambda file: np.savez(file, **payload))  # type: ignore[arg-type]  # resolved above
    except OSError as exc:
        msg = (
            f"Cannot save the index to {target}: {exc.strerror or exc}. Check that the folder exists and is writable "
            "and that the disk has room; the file there (if any) is unchanged."
        )
        raise StoreWriteError(msg) from exc


def _file_id(doc_id: object) -> bool:
    """Whether :meth:`NumpyIndex.save` keeps ``doc_id`` exactly: a str or an int (JSON's), never a bool."""
    return isinstance(doc_id, str) or (isinstance(doc_id, (int, np.integer)) and not isinstance(doc_id, bool))


def _check_encoder(meta: dict[str, Any], encoder: Encoder, path: str | os.PathLike[str]) -> None:
    """Refuse an encoder of another width or, when both have fingerprints, other weights than the saved index's."""
    built = f"model {meta.get('model') or '(unnamed)'} (fingerprint {meta.get('fingerprint')}, {meta.get('dim')} dims)"
    if int(encoder.dim) != meta.get("dim"):
        msg = (
            f"{path} was built with {built}, but the encoder is {int(encoder.dim)} dims wide. Load it with the model "
            "it was built with."
        )
        raise DimensionMismatchError(msg)
    fingerprint = getattr(encoder, "fingerprint", None)
    if fingerprint is not None and meta.get("fingerprint") is not None and fingerprint != meta["fingerprint"]:
        msg = (
            f"{path} was built with {built}, but the encoder's weights have fingerprint {fingerprint}: its queries "
            "would not match the stored vectors. Load it with the model it was built with, or build it again."
        )
        raise DimensionMismatchError(msg)


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


def _query_step(n_rows: int) -> int:
    """Queries scored per block against ``n_rows`` stored rows (the block's score matrix stays bounded)."""
    return min(_QUERY_CHUNK, block_rows(n_rows))


def _top_rows(
    codec: Codec, queries: NDArray[np.float32], codes: NDArray[Any], n: int, empty: NDArray[np.bool_]
) -> list[tuple[NDArray[np.intp], NDArray[np.float32]]]:
    """For each query, the rows of the ``n`` best codes by ``codec.similarity`` and their scores, best first.

    Rows marked in ``empty`` (documents whose vector is all zeros) are never returned.
    """
    out: list[tuple[NDArray[np.intp], NDArray[np.float32]]] = []
    step = _query_step(codes.shape[0])
    for start in range(0, queries.shape[0], step):
        scores = codec.similarity(queries[start : start + step], codes)
        scores[:, empty] = -np.inf
        for row in scores:
            top = _top_n(row, n)
            top = top[np.isfinite(row[top])]
            out.append((top, np.asarray(row[top], dtype=np.float32)))
        del scores, row  # freed before the next block's scores are allocated
    return out


def _exact_rows(
    codec: Codec,
    queries: NDArray[np.float32],
    codes: NDArray[Any],
    norms: NDArray[np.float32],
    empty: NDArray[np.bool_],
    k: int,
) -> list[NDArray[np.intp]]:
    """For each query, in row order, every row that may be in its exact top ``k``.

    Scores are cosines with the decoded vectors re-normalised, as :func:`matryo.search.rescore` computes them
    (an int8 or float16 code does not decode to a unit vector). Rows within :data:`_EXACT_BAND` of the k-th best
    score are kept too, so that rescoring the shortlist (float32 rounding differs between the two matrix
    products) gives exactly the top ``k`` a two-stage search with a shortlist of the whole index gives.
    """
    out: list[NDArray[np.intp]] = []
    step = _query_step(codes.shape[0])
    for start in range(0, queries.shape[0], step):
        scores = codec.similarity(queries[start : start + step], codes)
        np.divide(scores, norms, out=scores, where=norms > 0)
        scores[:, empty] = -np.inf  # empty documents are never returned
        for row in scores:
            kth = -np.partition(-row, k - 1)[k - 1] if k < row.shape[0] else row.min()
            out.append(np.flatnonzero(row >= kth - _EXACT_BAND))
        del scores, row
    return out


def _check_mode(mode: object, on_missing: object) -> None:
    if mode not in ("two_stage", "exact", "first_pass"):
        msg = f"Unknown mode {mode!r}; expected 'two_stage', 'exact' or 'first_pass'."
        raise InvalidArgumentError(msg)
    check_on_missing(on_missing)


def _decoded_norms(codec: Codec, codes: NDArray[Any]) -> NDArray[np.float32]:
    """Lengths of the vectors ``codes`` decode to, a block at a time (an int8 code is not unit length)."""
    out = np.empty(codes.shape[0], dtype=np.float32)
    rows = max(1, _SCORE_BLOCK // max(1, codec.dim))
    for start in range(0, codes.shape[0], rows):
        decoded = codec.decode(codes[start : start + rows])
        out[start : start + rows] = np.sqrt(np.einsum("ij,ij->i", decoded, decoded))
    return out


def _codec(name: str, sample: NDArray[np.float32]) -> Codec:
    """A codec for ``sample``'s width; int8 ranges from ``sample``, widened later by :func:`_covering`."""
    if name == "int8":
        return Int8Codec.calibrate(sample, warn=False)
    return make_codec(name, sample.shape[1])


def _covering(
    codec: Codec, vectors: NDArray[np.float32], codes: NDArray[Any] | None
) -> tuple[Codec, NDArray[Any] | None]:
    """``codec``, or for int8 a wider one holding ``vectors``, and the stored ``codes`` (re-encoded if it widened).

    ``codes`` is None before the first batch (whose codec may come from a calibration sample that does not cover
    it). Nothing is modified in place: a widened codec comes with a new array, so snapshots of the old one stay valid.
    """
    if not isinstance(codec, Int8Codec):
        return codec, codes
    wider = codec.covering(vectors)
    if wider is codec:
        return codec, codes
    return wider, wider.recode(codes, codec) if codes is not None and codes.shape[0] else codes


def _appended(buffer: NDArray[Any] | None, used: int, rows: NDArray[Any]) -> NDArray[Any]:
    """A buffer whose rows ``[:used]`` are ``buffer``'s and ``[used:used + len(rows)]`` are ``rows``.

    Rows past ``used`` are spare capacity that no snapshot reads, so ``rows`` are written there in place when
    they fit; otherwise the buffer grows by half (amortised O(len(rows)) per append, at most 1.5x the rows).
    """
    need = used + rows.shape[0]
    if buffer is None or buffer.shape[0] < need or buffer.dtype != rows.dtype:
        capacity = need if buffer is None or not used else max(need, buffer.shape[0] + buffer.shape[0] // 2)
        grown = np.empty((capacity, *rows.shape[1:]), dtype=rows.dtype)
        if used:
            assert buffer is not None  # used > 0 means a buffer exists
            grown[:used] = buffer[:used]
        buffer = grown
    buffer[used:need] = rows
    return buffer


@dataclass(frozen=True)
class _Snapshot:
    """What a search reads: the first ``n`` rows of the code arrays, with the codecs that wrote them."""

    n: int
    first_codec: Codec | None
    first_codes: NDArray[Any]
    store_codec: Codec | None
    store_codes: NDArray[Any]
    store_norms: NDArray[np.float32]
    empty: NDArray[np.bool_]
    ids: list[Any]  # row -> id; add() appends past ``n``, delete() publishes new lists and dicts, never edits these
    texts: list[str]  # row -> text (store="none" only)
    row_of: dict[Any, int]  # id -> row (rows >= ``n`` were added after the snapshot)


class NumpyIndex(Generic[IdT]):
    """Brute-force two-stage index held in numpy arrays.

    Example:
        >>> from matryo import StaticEncoder
        >>> index = NumpyIndex(StaticEncoder.from_pretrained(), truncate_dim=128, first_pass="binary")
        >>> index.add(["d1", "d2"], ["Read and write gzip-compressed files.", "Parse command-line arguments."])
        >>> index.search("decompress a .gz file", k=1).ids
        ['d1']

    Args:
        encoder: Encodes documents and queries (:class:`matryo.StaticEncoder` or any :class:`Encoder`).
        truncate_dim: Width of the first-pass vectors; ``None`` (or any value ``>=`` the encoder's width)
            keeps full vectors. Defaults to :data:`matryo.search.DEFAULT_TRUNCATE_DIM`.
        first_pass: First-pass codec: ``"float32"``, ``"int8"`` or ``"binary"``.
        store: Rescoring store: ``"float32"``, ``"float16"``, ``"int8"`` or ``"none"`` (keep the texts and
            re-encode candidates at search time; needs texts in :meth:`add`).
        calibration: Full-width ``(n, dim)`` sample vectors for the int8 ranges (unused by other codecs). When
            omitted, int8 codecs calibrate on the first :meth:`add` batch. Either way a batch with values outside
            the ranges (the first one too, when a sample is given) widens them
            (:meth:`matryo.quantize.Int8Codec.covering`) and the stored codes are re-encoded, so nothing is clipped.

    Empty documents (an empty text, or an all-zero vector) are kept, but no search returns them: a zero vector
    has no direction, so its cosine with every query is 0 and would rank it above every document with a negative
    score. The Chroma and LanceDB adapters leave them out of cosine search too.

    Thread safety:
        :meth:`add`, :meth:`delete` and searches may run at the same time in different threads. An add encodes
        outside the lock, then publishes the whole batch in one short locked step, so a search sees all of a
        batch or none of it; adds and deletes are serialised. Each search takes a snapshot (the arrays' first
        ``n`` rows, their codecs and ids) under the lock and scores it without holding the lock and without
        copying the index. A failed or interrupted add (an exception, ``KeyboardInterrupt``, ``MemoryError``)
        leaves the index as it was.

    Persistence:
        :meth:`save` writes one ``.npz`` file (codes, codecs, ids, widths, the encoder's fingerprint; no
        pickle) and :meth:`load` reads it back with the same model's encoder. The index also pickles (the
        lock is rebuilt on unpickling), encoder included.

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
        if calibration is not None:
            calibration = as_finite(calibration, "calibration vectors", fix="Pass finite calibration vectors.")
            if calibration.ndim != 2 or calibration.shape[0] < 1 or calibration.shape[1] != self.dim:
                msg = (
                    f"calibration must be a (n, {self.dim}) array of full vectors (n >= 1); found shape "
                    f"{calibration.shape}. Pass a sample of the full-width vectors you will add, or omit it."
                )
                raise DimensionMismatchError(msg)
        self._calibration = calibration
        self._first_codec: Codec | None = None
        self._store_codec: Codec | None = None
        self._ids: list[IdT] = []
        self._row_of: dict[IdT, int] = {}
        self._n = 0  # committed rows: the code arrays below have spare capacity past it
        self._first_codes: NDArray[Any] | None = None
        self._store_codes: NDArray[Any] | None = None
        self._store_norms: NDArray[np.float32] | None = None  # lengths of the decoded store vectors (exact mode)
        self._empty: NDArray[np.bool_] | None = None  # rows whose vector is all zeros (never returned)
        self._texts: list[str] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n

    @property
    def ids(self) -> list[IdT]:
        """Document ids in insertion order."""
        return self._ids[: self._n]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the committed rows only (no spare capacity) and no lock."""
        with self._lock:
            state = dict(self.__dict__)
            n = self._n
            state["_ids"], state["_texts"], state["_row_of"] = self._ids[:n], self._texts[:n], dict(self._row_of)
            for key in ("_first_codes", "_store_codes", "_store_norms", "_empty"):
                state[key] = None if state[key] is None else state[key][:n].copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled index (also one pickled before the code arrays replaced lists of chunks)."""
        for old, new in (("_first_chunks", "_first_codes"), ("_store_chunks", "_store_codes")):
            if old in state:
                chunks = state.pop(old)
                state[new] = np.concatenate(chunks) if chunks else None
        state.setdefault("_n", len(state["_ids"]))
        if "_store_norms" not in state:
            codes, codec = state.get("_store_codes"), state.get("_store_codec")
            state["_store_norms"] = None if codes is None or codec is None else _decoded_norms(codec, codes)
        if "_empty" not in state:  # pickled before empty documents were marked: none is
            state["_empty"] = np.zeros(state["_n"], dtype=np.bool_) if state["_n"] else None
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _snapshot(self) -> _Snapshot:
        """The committed rows as views (no copy), taken under the lock."""
        with self._lock:
            n = self._n
            first = self._first_codes[:n] if self._first_codes is not None else np.zeros((0, 0), dtype=np.float32)
            store = self._store_codes[:n] if self._store_codes is not None else np.zeros((0, 0), dtype=np.float32)
            norms = self._store_norms[:n] if self._store_norms is not None else np.zeros(0, dtype=np.float32)
            empty = self._empty[:n] if self._empty is not None else np.zeros(0, dtype=np.bool_)
            return _Snapshot(
                n,
                self._first_codec,
                first,
                self._store_codec,
                store,
                norms,
                empty,
                self._ids,
                self._texts,
                self._row_of,
            )

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
        """The codecs for a batch (built on the first one); widening is left to :meth:`_encoded`."""
        if self._first_codec is not None:
            return self._first_codec, self._store_codec
        sample = vectors if self._calibration is None else self._calibration
        if sample.ndim != 2 or sample.shape[1] != self.dim:
            msg = f"calibration must be a (n, {self.dim}) array of full vectors; found shape {sample.shape}."
            raise DimensionMismatchError(msg)
        needs = self.first_pass_codec_name == "int8" or self.store_name == "int8"
        sample = normalize(sample) if needs else sample
        # Both codecs are built before either is kept (by _commit): a failure leaves the index as it was (empty).
        first_codec = _codec(self.first_pass_codec_name, truncate(sample, self.truncate_dim))
        store_codec = None if self.store_name == "none" else _codec(self.store_name, sample)
        return first_codec, store_codec

    def _encoded(self, full: NDArray[np.float32]) -> dict[str, Any]:
        """Codecs and arrays (by attribute name) holding the committed rows plus ``full``; ``self`` is unchanged.

        Called under the lock. Rows are appended past ``self._n`` (never read by a snapshot) or into new arrays.
        """
        n = self._n
        first_codec, store_codec = self._codecs(full)
        prefix = truncate(full, self.truncate_dim)
        first_codes = self._first_codes[:n] if self._first_codes is not None else None
        first_codec, widened = _covering(first_codec, prefix, first_codes)
        first_codes = widened if widened is not first_codes else self._first_codes
        empty: NDArray[np.bool_] = np.logical_not(full.any(axis=1))
        out = {
            "_first_codec": first_codec,
            "_first_codes": _appended(first_codes, n, first_codec.encode(prefix)),
            "_empty": _appended(self._empty, n, empty),
        }
        if store_codec is None:
            return out
        store_codes, store_norms = self._store_codes, self._store_norms
        current = store_codes[:n] if store_codes is not None else None
        store_codec, widened = _covering(store_codec, full, current)
        if widened is not current:  # an int8 store re-encoded into a new array (rare: its ranges widened)
            assert widened is not None  # only given codes are re-encoded
            store_codes, store_norms = widened, _decoded_norms(store_codec, widened)
        new_codes = store_codec.encode(full)
        return {
            **out,
            "_store_codec": store_codec,
            "_store_codes": _appended(store_codes, n, new_codes),
            "_store_norms": _appended(store_norms, n, _decoded_norms(store_codec, new_codes)),
        }

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
            NonFiniteVectorError: If a vector holds NaN or inf (a ``ValueError``).

        Nothing is added when it raises (or is interrupted): the batch is published in one step at the end.
        """
        if isinstance(ids, (str, bytes)):
            msg = (
                f"ids must be a sequence of ids, not one {type(ids).__name__} (each character would be an id); "
                "wrap it in a list."
            )
            raise InvalidTypeError(msg)
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
        if vectors is not None and self.store_name == "none":
            # rescoring re-encodes the texts: given vectors would rank the first pass by something else, and a
            # document with a vector but an empty text was returned with score 0
            msg = (
                "store='none' re-encodes the texts to rescore, so the first pass is built from them too; vectors= "
                "would disagree with them. Pass texts= only, or keep your vectors with store='float32'."
            )
            raise InvalidArgumentError(msg)
        self._check_new_ids(ids)
        if not ids:
            given = np.asarray(vectors if vectors is not None else ())
            if given.size:
                msg = f"Expected one vector per id: found 0 ids and vectors of shape {given.shape}."
                raise InvalidArgumentError(msg)
            return
        if vectors is None:
            assert texts is not None  # checked above
            full = np.asarray(self.encoder.encode(list(texts), truncate_dim=self.dim, normalize=True), dtype=np.float32)
        else:
            full = as_numbers(vectors)  # converted once, in its own dtype (unit_rows normalises float64 as such)
            full = full.reshape(1, -1) if full.ndim == 1 else full
        if full.shape != (len(ids), self.dim):
            msg = (
                f"Expected {len(ids)} vectors of the encoder's width {self.dim}; found shape {full.shape}. "
                "Pass full-dimension vectors from the same model."
            )
            raise DimensionMismatchError(msg)
        # a float64 row too small for float32 keeps its direction (it was an all-zero, never returned document)
        full = unit_rows(full, "document vectors", labels=ids, fix="Drop or fix those documents; nothing was added.")
        new_texts = [str(text) for text in texts] if self.store_name == "none" and texts is not None else []
        with self._lock:
            self._check_new_ids(ids)  # again: another thread may have added one meanwhile
            self._commit(ids, new_texts, self._encoded(full))

    def _check_new_ids(self, ids: list[IdT]) -> None:
        seen: set[IdT] = set()
        clash: list[IdT] = []
        for doc_id in ids:
            if doc_id in self._row_of or doc_id in seen:
                clash.append(doc_id)
            seen.add(doc_id)
        if clash:
            msg = (
                f"Document ids must be unique; found {len(clash)} repeated or already-added id(s), e.g. "
                f"{clash[:3]!r}. Remove the duplicates (to update a document, delete() it first)."
            )
            raise InvalidArgumentError(msg)

    def _commit(self, ids: list[IdT], texts: list[str], arrays: dict[str, Any]) -> None:
        """Publish a batch computed by :meth:`_encoded` (under the lock); on any exception, put everything back."""
        n = self._n
        before = {name: getattr(self, name) for name in arrays}
        try:
            for name, value in arrays.items():
                setattr(self, name, value)
            self._texts.extend(texts)
            self._row_of.update(zip(ids, range(n, n + len(ids)), strict=True))
            self._ids.extend(ids)
            self._n = n + len(ids)
        except BaseException:
            for name, value in before.items():
                setattr(self, name, value)
            del self._texts[n:], self._ids[n:]
            for doc_id in ids:
                self._row_of.pop(doc_id, None)
            self._n = n
            raise

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
        what = "first-pass query vectors"
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            msg = f"n (candidates per query) must be an integer >= 1; found {n!r}."
            raise InvalidArgumentError(msg)
        queries = as_numbers(query_vectors, what)
        if queries.ndim == 1 and not queries.size:
            return []  # no queries
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.shape[1] != self.truncate_dim:
            msg = (
                f"First-pass query vectors have {queries.shape[1]} dimensions; this index expects "
                f"(q, {self.truncate_dim}). Search with truncate_dim={self.truncate_dim}."
            )
            raise DimensionMismatchError(msg)
        queries = unit_rows(queries, what, fix=f"Pass finite {what}.")  # a tiny float64 query keeps its direction
        # a zero query (an empty text's) ranks nothing, as in every other search; it returned the first rows added
        snap = self._snapshot()
        return [
            self._ids_of(snap, rows) if query.any() else []
            for query, (rows, _) in zip(queries, self._first_rows(queries, n, snap), strict=True)
        ]

    def _first_rows(
        self, queries: NDArray[np.float32], n: int, snap: _Snapshot | None = None
    ) -> list[tuple[NDArray[np.intp], NDArray[np.float32]]]:
        """Per query, the first pass's best ``n`` rows (best first, ties by row) and their first-pass scores."""
        snap = self._snapshot() if snap is None else snap
        if not snap.n or n <= 0:
            return [(np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)) for _ in range(queries.shape[0])]
        assert snap.first_codec is not None  # set with the first row
        return _top_rows(snap.first_codec, queries, snap.first_codes, int(n), snap.empty)

    def _rescored(self, snap: _Snapshot, query: NDArray[np.float32], rows: NDArray[np.intp], k: int) -> SearchHits[IdT]:
        """The best ``k`` of the stored vectors at ``rows`` by full-dimension cosine with ``query`` (ties by row).

        The scores are those :func:`matryo.search.rescore` reports (cosine with the decoded vectors, whose lengths
        ``snap.store_norms`` holds), computed by row without looking ids up one by one; a zero query ranks nothing.
        """
        if not rows.size or not query.any():
            return SearchHits()
        assert snap.store_codec is not None  # only called with stored full vectors
        rows = np.sort(rows[~snap.empty[rows]])
        if not rows.size:
            return SearchHits()
        decoded = snap.store_codec.decode(snap.store_codes[rows])
        norms = snap.store_norms[rows]

        def exact(near: NDArray[np.intp]) -> NDArray[np.float32]:  # row by row: equal vectors score equal
            out = row_scores(decoded, query, near)
            np.divide(out, norms[near], out=out, where=norms[near] > 0)
            return out

        scores = decoded @ query
        np.divide(scores, norms, out=scores, where=norms > 0)
        order, best = top_k(scores, k, exact)
        return SearchHits(self._ids_of(snap, rows[order]), best)

    @staticmethod
    def _ids_of(snap: _Snapshot, rows: NDArray[np.intp]) -> list[IdT]:
        ids = snap.ids
        return [ids[row] for row in rows.tolist()]

    def delete(self, ids: Sequence[IdT]) -> int:
        """Remove documents by id; ids not in the index are ignored.

        Args:
            ids: The ids to remove (a list; one str id is refused, as in :meth:`add`).

        Returns:
            How many documents were removed.

        The remaining rows are copied into new arrays and published in one locked step, so a search running
        meanwhile sees the index before or after the delete. That copy is the cost of a call (about 50 ms for
        50,000 documents of 512 dimensions), so delete many ids in one call. A removed id can be added again.
        """
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            wrap = "" if ids is None else f"; wrap it in a list: delete([{ids!r}])"
            msg = f"ids must be a sequence of ids, not {'None' if ids is None else 'one ' + type(ids).__name__}{wrap}."
            raise InvalidTypeError(msg)
        wanted = list(ids)
        with self._lock:
            n = self._n
            rows = sorted({self._row_of[doc_id] for doc_id in wanted if doc_id in self._row_of})
            if not rows:
                return 0
            keep = np.ones(n, dtype=np.bool_)
            keep[rows] = False
            arrays = {name: getattr(self, name) for name in _ROW_ARRAYS}
            kept = {name: None if value is None else value[:n][keep] for name, value in arrays.items()}
            ids_kept = [doc_id for doc_id, keep_row in zip(self._ids[:n], keep.tolist(), strict=True) if keep_row]
            texts_kept = [t for t, keep_row in zip(self._texts[:n], keep.tolist(), strict=False) if keep_row]
            self._set_rows(kept, ids_kept, texts_kept)  # nothing in it can fail: never left half changed
        return len(rows)

    def _set_rows(self, arrays: dict[str, NDArray[Any] | None], ids: list[IdT], texts: list[str]) -> None:
        """Replace the row arrays, ids, texts and id map with new ones (no spare capacity), as one state."""
        for name, value in arrays.items():
            setattr(self, name, value)
        self._ids, self._texts, self._n = ids, texts, len(ids)
        self._row_of = {doc_id: row for row, doc_id in enumerate(ids)}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to one file that :meth:`load` reads back (numpy's ``.npz``, no pickle).

        The file holds the codes, the codecs, the ids, the texts kept for ``store="none"``, the widths and the
        encoder's fingerprint, but not the encoder: :meth:`load` takes one. It is written to a temporary file
        beside ``path`` and renamed over it, so an interrupted save leaves ``path`` as it was.

        Args:
            path: The file to write (``.npz`` is the usual suffix; none is added).

        Raises:
            InvalidTypeError: If an id is not a str or an int (JSON keeps those exactly; pickle the index to keep
                other ids).
            InvalidArgumentError: If ``path`` is a folder.
            StoreWriteError: If the file cannot be written (a missing folder, no permission, a full disk; an
                ``OSError``). ``path`` is then as it was.
        """
        with self._lock:
            n = self._n
            ids, texts = self._ids[:n], self._texts[:n]
            arrays = {name: getattr(self, name) for name in _ROW_ARRAYS}
            first_codec, store_codec = self._first_codec, self._store_codec
        saved_ids: list[str | int] = []
        for doc_id in ids:
            if not _file_id(doc_id):
                msg = (
                    f"save() keeps str and int ids; found {doc_id!r} ({type(doc_id).__name__}). Use str ids, or "
                    "pickle the index to keep other ids."
                )
                raise InvalidTypeError(msg)
            saved_ids.append(doc_id if isinstance(doc_id, str) else int(doc_id))  # type: ignore[call-overload]
        meta = {
            "format": _FILE_FORMAT,
            "version": _FILE_VERSION,
            "dim": self.dim,
            "truncate_dim": self.truncate_dim,
            "first_pass": self.first_pass_codec_name,
            "store": self.store_name,
            "fingerprint": getattr(self.encoder, "fingerprint", None),
            "model": str(getattr(self.encoder, "name_or_path", "")) or None,
            "first_codec": None if first_codec is None else first_codec.to_config(),
            "store_codec": None if store_codec is None else store_codec.to_config(),
            "ids": saved_ids,
            "texts": texts,
        }
        payload: dict[str, NDArray[Any]] = {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
        payload.update({name.lstrip("_"): value[:n] for name, value in arrays.items() if value is not None})
        if self._calibration is not None:
            payload["calibration"] = self._calibration
        _save_npz(Path(path), payload)

    @classmethod
    def load(cls, path: str | os.PathLike[str], encoder: Encoder) -> NumpyIndex[Any]:
        """Read an index written by :meth:`save`.

        Args:
            path: The file.
            encoder: The encoder of the model the index was built with (queries are encoded with it).

        Raises:
            OSError: If ``path`` cannot be read as it is (missing, a folder, no permission: Python's own errors).
            StoreFormatError: If the file is not an index written by :meth:`save`, or is damaged (a ValueError).
            DimensionMismatchError: If ``encoder`` is not the model the index was built with (another width, or,
                for encoders with a ``fingerprint`` such as :class:`matryo.StaticEncoder`, other weights).
        """
        not_ours = f"{path} is not a NumpyIndex file written by NumpyIndex.save"
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:  # missing, a folder, no permission: as it is
                raise
            msg = f"{not_ours} ({exc}); save the index again."
            raise StoreFormatError(msg) from exc
        if not isinstance(data, np.lib.npyio.NpzFile):  # a .npy array
            msg = (
                f"{not_ours} (it holds one {type(data).__name__}, not the .npz archive save() writes). Pass the file "
                "NumpyIndex.save wrote."
            )
            raise StoreFormatError(msg)
        try:
            with data:
                files = {name: data[name] for name in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            msg = f"{not_ours} or is damaged ({exc}); save the index again."
            raise StoreFormatError(msg) from exc
        try:
            meta = json.loads(files.pop("meta").tobytes().decode("utf-8"))
        except (KeyError, ValueError):
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != _FILE_FORMAT:
            msg = f"{not_ours} (no header); save the index again."
            raise StoreFormatError(msg)
        if meta.get("version") != _FILE_VERSION:
            msg = (
                f"{path} is a NumpyIndex file of format version {meta.get('version')!r}; this matryo reads version "
                f"{_FILE_VERSION}. Load it with the matryo that saved it, or build the index again."
            )
            raise StoreFormatError(msg)
        if not all(
            isinstance(meta.get(key), int) and not isinstance(meta.get(key), bool) for key in ("dim", "truncate_dim")
        ):
            msg = (
                f"{path} is a damaged NumpyIndex file (its header has no integer 'dim' and 'truncate_dim'); save the "
                "index again."
            )
            raise StoreFormatError(msg)
        _check_encoder(meta, encoder, path)
        return cls._from_file(meta, files, encoder, path)

    @classmethod
    def _from_file(
        cls, meta: dict[str, Any], files: dict[str, NDArray[Any]], encoder: Encoder, path: str | os.PathLike[str]
    ) -> NumpyIndex[Any]:
        damaged = f"{path} is a damaged NumpyIndex file"
        try:
            index: NumpyIndex[Any] = cls(
                encoder,
                truncate_dim=int(meta["truncate_dim"]),
                first_pass=str(meta["first_pass"]),
                store=str(meta["store"]),
                calibration=files.pop("calibration", None),
            )
            ids, texts = list(meta["ids"]), [str(text) for text in meta["texts"]]
            first = None if meta["first_codec"] is None else codec_from_config(meta["first_codec"])
            store = None if meta["store_codec"] is None else codec_from_config(meta["store_codec"])
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"{damaged} ({type(exc).__name__}: {exc}); save the index again."
            raise StoreFormatError(msg) from exc
        n = len(ids)
        arrays = {name: files.get(name.lstrip("_")) for name in _ROW_ARRAYS}
        expected = {
            "_first_codes": (first, index.truncate_dim),
            "_store_codes": (store, index.dim),
            "_store_norms": (store, None),
            "_empty": (first, None),
        }
        problems = []
        if len(set(ids)) != n or not all(_file_id(doc_id) for doc_id in ids):
            problems.append("its ids are not unique strs and ints")
        if len(texts) != (n if index.store_name == "none" else 0):  # only store="none" keeps the texts
            problems.append(f"{len(texts)} texts for {n} ids with store={index.store_name!r}")
        for name, (codec, width) in expected.items():
            value = arrays[name]
            if (codec is None) != (value is None) or (value is not None and value.shape[0] != n):
                problems.append(f"{name.lstrip('_')} does not hold {n} rows")
            elif codec is not None and value is not None and width is not None:
                if codec.dim != width or value.shape[1:] != (codec.code_width,) or value.dtype != codec.code_dtype:
                    problems.append(f"{name.lstrip('_')} does not fit its codec {codec!r}")
            elif value is not None and (
                value.ndim != 1 or value.dtype != (np.bool_ if name == "_empty" else np.float32)
            ):
                problems.append(f"{name.lstrip('_')} is not one value per id of the type save() writes")
        if n and first is None:
            problems.append(f"no codes for {n} ids")
        if problems:
            msg = f"{damaged}: {'; '.join(problems)}. Save the index again."
            raise StoreFormatError(msg)
        index._first_codec, index._store_codec = first, store
        index._set_rows(arrays, ids, texts)
        return index

    def fetch_full_vectors(self, ids: Sequence[IdT]) -> tuple[list[IdT], NDArray[np.float32]]:
        """Full-width vectors for the known ids among ``ids`` (a :data:`matryo.search.FetchVectors`).

        With ``store="none"`` the texts are re-encoded; with float16/int8 the vectors are decoded.

        Args:
            ids: Ids to look up; unknown ids are left out of the result.

        Returns:
            ``(found_ids, matrix)`` with one ``dim``-wide row per found id.
        """
        return self._fetch(self._snapshot(), ids)

    def _fetch(self, snap: _Snapshot, ids: Sequence[IdT]) -> tuple[list[IdT], NDArray[np.float32]]:
        row_of, n = snap.row_of, snap.n
        found = [doc_id for doc_id in ids if row_of.get(doc_id, n) < n]  # rows past the snapshot are not there yet
        rows = np.fromiter((row_of[doc_id] for doc_id in found), dtype=np.intp, count=len(found))
        if snap.store_codec is None:
            if not found:
                return found, np.zeros((0, self.dim), dtype=np.float32)
            texts = [snap.texts[row] for row in rows.tolist()]
            return found, np.asarray(
                self.encoder.encode(texts, truncate_dim=self.dim, normalize=True), dtype=np.float32
            )
        vectors = snap.store_codec.decode(snap.store_codes[rows])
        vectors[snap.empty[rows]] = 0.0  # an empty document's int8 code decodes to bin centres, not to zero
        return found, vectors

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
        single, texts = query_texts(queries)
        _ = candidate_count(k, rescore_multiplier)  # validates k and the multiplier even with no queries
        _check_mode(mode, on_missing)
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
        _check_mode(mode, on_missing)
        queries = as_numbers(query_vectors, "query vectors")
        if queries.ndim == 1 and not queries.size:
            return []  # no queries, as first_pass([]) answers
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.shape[1] != self.dim:
            msg = f"Query vectors must be (q, {self.dim}) (the encoder's full width); found shape {queries.shape}."
            raise DimensionMismatchError(msg)
        queries = unit_rows(queries, "query vectors", fix="Pass finite query vectors.")  # tiny float64: kept
        if mode == "two_stage":
            prefix = truncate(queries, self.truncate_dim)
            # A query whose prefix is all zero has no first pass (first_pass and the LanceDB table find nothing for
            # it): its shortlist was the first rows added.
            live = [bool(row.any()) for row in prefix]
            if self.store_name != "none":  # stored full vectors: rescore each shortlist by row, in one snapshot
                snap = self._snapshot()
                if n_candidates >= snap.n:  # the shortlist is the whole index: exact search, the same hits, faster
                    exact = self._exact(snap, queries, k)
                    return [hits if ok else SearchHits() for hits, ok in zip(exact, live, strict=True)]
                first = self._first_rows(prefix, n_candidates, snap)
                return [
                    self._rescored(snap, q, rows, k) if ok else SearchHits()
                    for q, ok, (rows, _) in zip(queries, live, first, strict=True)
                ]
            # In row order: rescore's stable sort then breaks ties by insertion order, as exact mode does.
            snap = self._snapshot()  # the first pass and the fetch read the same rows, whatever a delete does
            first_rows = self._first_rows(prefix, n_candidates, snap)
            candidates = [
                self._ids_of(snap, np.sort(rows)) if ok else [] for ok, (rows, _) in zip(live, first_rows, strict=True)
            ]
            # Rescored a few queries at a time: a large batch never fetches the union of all its shortlists at once.
            step = max(1, _RESCORE_BLOCK // (n_candidates * self.dim))
            hits: list[SearchHits[IdT]] = []
            for start in range(0, queries.shape[0], step):
                chunk, shortlists = queries[start : start + step], candidates[start : start + step]
                fetch = partial(self._fetch, snap)
                hits.extend(rescore(chunk, shortlists, k=k, fetch_full_vectors=fetch, on_missing=on_missing))
            return hits
        if mode == "first_pass":
            prefix = truncate(queries, self.truncate_dim)
            snap = self._snapshot()
            return [
                SearchHits(self._ids_of(snap, rows), scores) if query.any() and rows.size else SearchHits()
                for query, (rows, scores) in zip(prefix, self._first_rows(prefix, k, snap), strict=True)
            ]
        # mode == "exact" (checked up front)
        if self.store_name == "none":
            msg = "mode='exact' needs stored full vectors; this index has store='none'. Use mode='two_stage'."
            raise InvalidArgumentError(msg)
        return self._exact(self._snapshot(), queries, k)

    def _exact(self, snap: _Snapshot, queries: NDArray[np.float32], k: int) -> list[SearchHits[IdT]]:
        """Exact full-dimension search of normalised full-width ``queries`` over the stored vectors."""
        if not snap.n:
            return [SearchHits() for _ in range(queries.shape[0])]
        assert snap.store_codec is not None  # set with the first row
        # Ranked by the scores rescore reports (cosine with the decoded, re-normalised vectors), ties by row.
        rows = _exact_rows(snap.store_codec, queries, snap.store_codes, snap.store_norms, snap.empty, k)
        return [self._rescored(snap, q, shortlist, k) for q, shortlist in zip(queries, rows, strict=True)]
