"""The full-dimension vectors of a two-stage collection: writing them, reading them back, and checking them.

A :class:`FullVectors` object knows the collection's store (see :mod:`matryo_chroma.stores`) and codec. It
writes each record's full vector together with its first-pass prefix, and it only ever hands a full vector
to rescoring if that vector's prefix agrees with the record's first-pass vector; a record that fails the
check is re-encoded from its document when that reproduces its first-pass vector, and otherwise left out
with a :class:`StaleVectorWarning`.

int8 full vectors are written as self-describing :class:`~matryo.quantize.BlockInt8Codec` codes, so
concurrent writers (threads, processes, clients of one server) share no mutable state and no write ever
rewrites another record. Collections written before that kept collection-wide per-dimension ranges
(``matryo:codec`` = an ``"int8"`` :class:`~matryo.quantize.Int8Codec` config); their codes are ``dim`` bytes
long, unlike the new ones, and are still read with those ranges, which are no longer changed.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from chromadb.api.models.Collection import Collection
from numpy.typing import NDArray

from matryo import StaticEncoder
from matryo.quantize import Codec, Int8Codec
from matryo.vectors import normalize, truncate
from matryo_chroma.stores import FULL_KEY, codes_b64, decode_b64, encode_b64, full_codec, full_codec_from_config

__all__ = ["TOLERANCE", "FullVectors", "StaleVectorWarning"]

_PAGE_SIZE = 1000

TOLERANCE = {"float32": 5e-6, "float16": 5e-6, "int8": 1e-4}
"""Largest ``1 - cos(stored full vector's prefix, first-pass vector)`` still counted as agreeing, per codec.

Measured: the codec round trip costs at most 3e-7 (float32, float16) on ArguAna and 3e-5 (int8, per-block
scales, SciFact), while a one-word edit of a document moves its vector by 6e-6 to 1e-4."""


class StaleVectorWarning(UserWarning):
    """A candidate's stored full vector did not match its first-pass vector and could not be rebuilt."""


class FullVectors:
    """Where a two-stage collection's full vectors live, and the consistency check applied to them.

    Args:
        collection: The first-pass collection.
        full_collection: The sibling collection (``store="sibling"`` only).
        store: ``"metadata"``, ``"sibling"`` or ``"documents"``.
        codec_name: Codec of ``store="metadata"`` (``"float32"`` for the other stores).
        codec: The stored codec: ``None`` or a legacy :class:`~matryo.quantize.Int8Codec` (ranges) for int8
            collections written before int8 codes carried their own scales; new ones use
            :class:`~matryo.quantize.BlockInt8Codec`.
        encoder: The collection's model (re-encodes documents).
        truncate_dim: First-pass width.
    """

    def __init__(
        self,
        collection: Collection,
        full_collection: Collection | None,
        store: str,
        codec_name: str,
        codec: Codec | None,
        encoder: StaticEncoder,
        truncate_dim: int,
    ) -> None:
        self.collection = collection
        self.full_collection = full_collection
        self.store = store
        self.codec_name = codec_name
        self.legacy: Int8Codec | None = codec if isinstance(codec, Int8Codec) else None
        """Collection-wide int8 ranges of an older collection: only read, never widened any more."""
        self.codec: Codec = codec if codec is not None and self.legacy is None else full_codec(codec_name, encoder.dim)
        self.encoder = encoder
        self.dim = encoder.dim
        self.truncate_dim = truncate_dim

    # ------------------------------------------------------------------ writing
    def write(
        self,
        write: Callable[..., Any],
        ids: list[str],
        docs: list[str] | None,
        full: NDArray[np.float32] | None,
        metas: list[Any] | None,
    ) -> None:
        """Write one chunk of records: first-pass prefixes through ``write``, full vectors to the store.

        Args:
            write: The first-pass write (``add``, ``upsert`` or ``update`` of the first-pass collection,
                possibly wrapped); called once with Chroma's keyword arguments.
            ids: The records' ids.
            docs: Their documents, or ``None``.
            full: Their full normalised vectors, or ``None`` for a metadata-only update.
            metas: Their metadata, or ``None``.
        """
        if full is None:  # metadata-only update: no vector changes
            write(ids=ids, metadatas=metas)
            return
        codes = self.codec.encode(full) if self.store == "metadata" else None  # once: stored, and the first pass
        first = self.first_pass(full, codes)
        if codes is not None:
            pairs = zip(metas or [None] * len(ids), codes_b64(codes), strict=True)
            merged = [{**(meta or {}), FULL_KEY: code} for meta, code in pairs]
            write(ids=ids, embeddings=first, documents=docs, metadatas=merged)
            return
        if self.store == "documents":
            write(ids=ids, embeddings=first, documents=docs, metadatas=metas)
            return
        assert self.full_collection is not None
        before = self.full_collection.get(ids=ids, include=["embeddings"])
        self.full_collection.upsert(ids=ids, embeddings=full)
        try:
            write(ids=ids, embeddings=first, documents=docs, metadatas=metas)
        except BaseException:  # roll the sibling back so it never runs ahead of the first pass
            old = list(before["ids"])
            if old:
                self.full_collection.upsert(ids=old, embeddings=before["embeddings"])
            new = sorted(set(ids) - set(old))
            if new:
                self.full_collection.delete(ids=new)
            raise

    def rewrite(self, ids: list[str], full: NDArray[np.float32]) -> None:
        """Replace the full vectors of existing records (the first pass is left as it is).

        Args:
            ids: The records' ids.
            full: Their full normalised vectors.
        """
        if self.store == "metadata":
            codes = encode_b64(self.codec, full)
            self.collection.update(ids=ids, metadatas=[{FULL_KEY: code} for code in codes])
        elif self.store == "sibling":
            assert self.full_collection is not None
            self.full_collection.upsert(ids=ids, embeddings=full)

    def pages(self) -> Iterator[tuple[list[str], NDArray[np.float32], list[Any], list[Any]]]:
        """Every record of the first-pass collection, a page at a time: ids, first-pass vectors, metadata, documents."""
        offset = 0
        while True:
            page = self.collection.get(
                limit=_PAGE_SIZE, offset=offset, include=["embeddings", "metadatas", "documents"]
            )
            ids = list(page["ids"])
            if not ids:
                return
            offset += len(ids)
            metas: list[Any] = list(page["metadatas"] or []) or [None] * len(ids)
            docs: list[Any] = list(page["documents"] or []) or [None] * len(ids)
            yield ids, self.firsts(page["embeddings"], len(ids)), metas, docs

    def reload_legacy(self) -> bool:
        """Pick up the int8 ranges of an older collection, in case an older matryo-chroma calibrated them since.

        Returns:
            Whether legacy ranges are now known.
        """
        col = self.collection
        fresh = col._client.get_collection(col.name, tenant=col.tenant, database=col.database)  # noqa: SLF001
        stored = (fresh.metadata or {}).get("matryo:codec")
        if stored:
            codec = full_codec_from_config(json.loads(str(stored)))
            if isinstance(codec, Int8Codec) and (self.legacy is None or self.legacy.to_config() != codec.to_config()):
                self.legacy = codec  # keep the object when nothing changed
        return self.legacy is not None

    # ------------------------------------------------------------------ reading
    def firsts(self, vectors: Any, count: int) -> NDArray[np.float32]:  # noqa: ANN401
        """First-pass vectors as a ``(count, truncate_dim)`` float32 matrix (also when ``count`` is 0)."""
        if count == 0:
            return np.zeros((0, self.truncate_dim), dtype=np.float32)
        return np.asarray(vectors, dtype=np.float32).reshape(count, -1)

    def lookup(
        self, ids: list[str], firsts: NDArray[np.float32], metas: list[Any], docs: list[Any] | None
    ) -> dict[str, NDArray[np.float32]]:
        """Full vectors for some records: stored ones that agree with the first pass, else re-encoded documents.

        Args:
            ids: The records' ids.
            firsts: Their first-pass vectors.
            metas: Their metadata (holds the full vectors with ``store="metadata"``).
            docs: Their documents, or ``None`` to fetch the few needed.

        Returns:
            ``{id: full vector}``; records with no trustworthy full vector are left out, with a
            :class:`StaleVectorWarning`.
        """
        full = self.stored(ids, firsts, metas)
        rest = [i for i, doc_id in enumerate(ids) if doc_id not in full]
        if rest:
            if docs is None:  # not fetched with the first pass: get the few documents needed
                got = self.collection.get(ids=[ids[i] for i in rest], include=["documents"])
                text_of = dict(zip(got["ids"], got["documents"] or [], strict=True))
                docs = [text_of.get(doc_id) for doc_id in ids]
            full.update(self.from_documents([ids[i] for i in rest], firsts[rest], [docs[i] for i in rest]))
            lost = [ids[i] for i in rest if ids[i] not in full]
            if lost:
                msg = (
                    f"{len(lost)} record(s) have no full vector that matches their first-pass vector and no document "
                    f"to rebuild it ({lost[:5]}); they are left out of the results. Re-add them or call repair()."
                )
                warnings.warn(msg, StaleVectorWarning, stacklevel=3)
        return full

    def stored(self, ids: list[str], firsts: NDArray[np.float32], metas: list[Any]) -> dict[str, NDArray[np.float32]]:
        """Stored full vectors whose prefix agrees with the first-pass vector (others are left out)."""
        if not ids:
            return {}
        if self.store == "metadata":
            texts = [(m or {}).get(FULL_KEY) for m in metas]
            positions, matrix = decode_b64(self.codec, texts)
            if self.codec_name == "int8":
                return self._with_legacy(ids, firsts, texts, positions, matrix)
        elif self.store == "sibling":
            assert self.full_collection is not None
            got = self.full_collection.get(ids=ids, include=["embeddings"])
            where = {doc_id: row for row, doc_id in enumerate(ids)}
            positions = [where[doc_id] for doc_id in got["ids"]]
            matrix = np.asarray(got["embeddings"], dtype=np.float32).reshape(len(positions), self.dim)
        else:
            return {}
        if not positions:
            return {}
        agree = self.agrees(matrix, firsts[positions])
        return {ids[p]: matrix[j] for j, p in enumerate(positions) if agree[j]}

    def _with_legacy(
        self,
        ids: list[str],
        firsts: NDArray[np.float32],
        texts: list[Any],
        positions: list[int],
        matrix: NDArray[np.float32],
        *,
        retried: bool = False,
    ) -> dict[str, NDArray[np.float32]]:
        """:meth:`stored` for int8: self-describing codes, plus codes of an older collection read with its ranges."""
        agree = self.agrees(matrix, firsts[positions]) if positions else np.zeros(0, dtype=bool)
        out = {ids[p]: matrix[j] for j, p in enumerate(positions) if agree[j]}
        legacy_length = 4 * math.ceil(self.dim / 3)  # base64 length of dim bytes: one old int8 code
        decoded = set(positions)
        old = [i for i, text in enumerate(texts) if i not in decoded and isinstance(text, str)]
        old = [i for i in old if len(texts[i]) == legacy_length]
        if not old or (self.legacy is None and not self.reload_legacy()):
            return out
        assert self.legacy is not None
        found, old_matrix = decode_b64(self.legacy, [texts[i] for i in old])
        rows = [old[j] for j in found]
        agree = self.agrees(old_matrix, firsts[rows]) if rows else np.zeros(0, dtype=bool)
        if not agree.all() and not retried:
            known = self.legacy
            if self.reload_legacy() and self.legacy is not known:  # widened by an older writer: decode again
                return self._with_legacy(ids, firsts, texts, positions, matrix, retried=True)
        out.update({ids[p]: old_matrix[j] for j, p in enumerate(rows) if agree[j]})
        return out

    def first_pass(self, full: NDArray[np.float32], codes: NDArray[Any] | None = None) -> NDArray[np.float32]:
        """The first-pass vectors written for full vectors: their truncated, re-normalised prefixes.

        With int8 full vectors (``store="metadata"``) the prefix is taken from the stored code, decoded: int8
        rounding of a short prefix (a few dims next to a large value in their block) can exceed TOLERANCE, and
        such a record could never be found. A prefix that rounds to zero keeps its exact value (a zero first-pass
        vector is never a candidate; the record is then rebuilt from its document, or reported stale). ``codes``:
        ``full``'s codes when the caller has them already.
        """
        first = truncate(full, self.truncate_dim)
        if self.store != "metadata" or self.codec_name != "int8":
            return first
        codes = self.codec.encode(full) if codes is None else codes
        decoded = truncate(self.codec.decode(codes), self.truncate_dim)
        lost = self.rounded_to_zero(full, decoded)
        decoded[lost] = first[lost]
        return decoded

    def rounded_to_zero(
        self, full: NDArray[np.float32], decoded: NDArray[np.float32] | None = None
    ) -> NDArray[np.bool_]:
        """Rows whose first-pass prefix is not zero but whose int8 code's prefix is (never rows of other stores)."""
        if self.store != "metadata" or self.codec_name != "int8":
            return np.zeros(full.shape[0], dtype=bool)
        if decoded is None:
            decoded = truncate(self.codec.decode(self.codec.encode(full)), self.truncate_dim)
        return np.asarray(~decoded.any(axis=1) & full[:, : self.truncate_dim].any(axis=1), dtype=bool)

    def from_documents(
        self, ids: list[str], firsts: NDArray[np.float32], docs: list[Any]
    ) -> dict[str, NDArray[np.float32]]:
        """Re-encode documents; keep those that reproduce their first-pass vector."""
        usable = [i for i, doc in enumerate(docs) if isinstance(doc, str)]
        if not usable:
            return {}
        full = self.encoder.encode([docs[i] for i in usable], truncate_dim=self.dim, normalize=True)
        full = full.reshape(len(usable), self.dim)
        agree = self.agrees(full, firsts[usable], as_written=True)
        return {ids[i]: full[j] for j, i in enumerate(usable) if agree[j]}

    def agrees(
        self, full: NDArray[np.float32], firsts: NDArray[np.float32], *, as_written: bool = False
    ) -> NDArray[np.bool_]:
        """Whether each full vector's prefix points where its first-pass vector does (zero vectors agree).

        ``as_written``: compare the first-pass vector a write of ``full`` would store (for re-encoded documents:
        with int8 that is the decoded code's prefix) rather than ``full``'s own prefix (for stored full vectors).
        """
        if full.shape[1] != self.dim:
            return np.zeros(full.shape[0], dtype=bool)
        prefix = self.first_pass(full) if as_written else truncate(full, self.truncate_dim)
        first = normalize(firsts)
        cos = np.einsum("ij,ij->i", prefix, first)
        zero = (np.abs(prefix).sum(axis=1) == 0) & (np.abs(first).sum(axis=1) == 0)
        return np.asarray((cos >= 1.0 - TOLERANCE.get(self.codec_name, 1e-4)) | zero, dtype=bool)
