"""The storage behind ``matryo index`` / ``matryo search``: a DB folder holding a two-stage store.

A DB folder holds ``matryo.json`` (the store kind, the model, its fingerprint, its width and the
first-pass width) next to the store's own files. Every passage is stored twice: a truncated,
re-normalised Matryoshka prefix for the first pass, and the full-width vector for rescoring, plus its
text, its document id and its content hash (which makes re-indexing incremental).

* ``lancedb`` (default): one table ``passages`` with columns ``id, doc, hash, text, vector`` (the
  prefix, searched by cosine) and ``full``. Writes are ``merge_insert`` on ``id``: each batch is one
  atomic commit, so an interrupted run loses at most the batch in flight and never duplicates a row.
* ``chroma``: a ``PersistentClient`` with two collections, ``matryo-first-pass`` (prefix vectors,
  texts, metadata) and ``matryo-full`` (full vectors), written with ``upsert`` (full vectors first).

The host libraries are imported inside functions, and only after the adapter distribution
(``matryo-lancedb`` / ``matryo-chroma``) is found, so the error names the right ``pip install`` line.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from matryo.errors import DimensionMismatchError, MatryoError, missing_extra
from matryo.sources import Passage, batched

__all__ = ["META_FILE", "STORES", "DbMeta", "Hit", "IndexStats", "Store", "index_passages", "open_store"]

META_FILE = "matryo.json"
STORES = ("lancedb", "chroma")
_ADAPTERS = {
    "lancedb": ("matryo_lancedb", "pip install matryo-lancedb"),
    "chroma": ("matryo_chroma", "pip install matryo-chroma"),
}
_TABLE = "passages"


@dataclass(frozen=True)
class DbMeta:
    """What a DB folder was built with (saved as ``matryo.json``)."""

    store: str
    model: str | None
    fingerprint: str
    dim: int
    truncate_dim: int

    def describe(self) -> str:
        """One-line description for error messages."""
        return f"model {self.model or 'matryo-default'} (fingerprint {self.fingerprint}, {self.dim} dims, first pass {self.truncate_dim})"


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: str
    doc: str
    score: float
    text: str


@dataclass
class IndexStats:
    """Counts of one indexing run."""

    added: int = 0
    unchanged: int = 0
    removed: int = 0
    duplicates: int = 0


class Store(Protocol):
    """What the CLI needs from a two-stage store."""

    def hashes(self) -> dict[str, tuple[str, str]]:
        """Map every stored passage id to ``(content hash, document id)``."""
        ...

    def upsert(self, passages: list[Passage], prefix: NDArray[np.float32], full: NDArray[np.float32]) -> None:
        """Insert or replace passages with their prefix and full vectors (one atomic batch)."""
        ...

    def delete(self, ids: list[str]) -> None:
        """Remove passages by id."""
        ...

    def count(self) -> int:
        """Number of stored passages."""
        ...

    def first_pass(self, prefix: NDArray[np.float32], n: int) -> list[tuple[str, str, str, NDArray[np.float32]]]:
        """Return up to ``n`` ``(id, doc, text, full vector)`` rows nearest to one prefix vector, best first."""
        ...


def read_meta(db: Path) -> DbMeta | None:
    """Read ``matryo.json`` from a DB folder (``None`` when absent)."""
    path = db / META_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return DbMeta(**{key: raw[key] for key in ("store", "model", "fingerprint", "dim", "truncate_dim")})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{path} is damaged ({exc}); re-create the DB folder with `matryo index SOURCE --db NEW_FOLDER`."
        raise MatryoError(msg) from exc


def write_meta(db: Path, meta: DbMeta) -> None:
    """Write ``matryo.json`` atomically."""
    db.mkdir(parents=True, exist_ok=True)
    tmp = db / f".{META_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(meta), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, db / META_FILE)


def check_meta(stored: DbMeta, wanted: DbMeta, db: Path) -> None:
    """Refuse to mix models or widths in one DB folder.

    Raises:
        DimensionMismatchError: If the fingerprint, width or first-pass width differ.
    """
    if (stored.fingerprint, stored.dim, stored.truncate_dim) != (wanted.fingerprint, wanted.dim, wanted.truncate_dim):
        msg = (
            f"{db} was built with {stored.describe()}, but this run uses {wanted.describe()}; vectors of different "
            f"models or widths are never mixed. Use another --db folder, or drop --model/--truncate-dim to reuse the stored ones."
        )
        raise DimensionMismatchError(msg)


def _adapter(store: str) -> None:
    module, install = _ADAPTERS[store]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(module, install, f"The {store} store") from exc


def open_store(db: Path, meta: DbMeta) -> Store:
    """Open (creating when needed) the store of a DB folder.

    Raises:
        MissingExtraError: If the store's adapter package is not installed.
        ValueError: If ``meta.store`` is unknown.
    """
    if meta.store not in _ADAPTERS:
        msg = f"Unknown store {meta.store!r}; choose one of {', '.join(STORES)}."
        raise ValueError(msg)
    _adapter(meta.store)
    return _LanceStore(db, meta) if meta.store == "lancedb" else _ChromaStore(db, meta)


class _LanceStore:
    def __init__(self, db: Path, meta: DbMeta) -> None:
        os.environ.setdefault("LANCE_LOG", "error")  # keep Rust-side notices off the terminal
        import lancedb
        import pyarrow as pa

        self._pa = pa
        self._schema = pa.schema(
            [
                pa.field("id", pa.string()),
                pa.field("doc", pa.string()),
                pa.field("hash", pa.string()),
                pa.field("text", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), meta.truncate_dim)),
                pa.field("full", pa.list_(pa.float32(), meta.dim)),
            ]
        )
        conn = lancedb.connect(str(db))
        self._table = (
            conn.open_table(_TABLE)
            if _TABLE in conn.list_tables().tables
            else conn.create_table(_TABLE, schema=self._schema)
        )

    def hashes(self) -> dict[str, tuple[str, str]]:
        data = self._table.search().select(["id", "hash", "doc"]).limit(None).to_arrow().to_pydict()
        return {i: (h, d) for i, h, d in zip(data["id"], data["hash"], data["doc"])}

    def upsert(self, passages: list[Passage], prefix: NDArray[np.float32], full: NDArray[np.float32]) -> None:
        pa = self._pa
        rows = pa.table(
            {
                "id": [p.id for p in passages],
                "doc": [p.doc for p in passages],
                "hash": [p.hash for p in passages],
                "text": [p.text for p in passages],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(prefix.ravel()), prefix.shape[1]),
                "full": pa.FixedSizeListArray.from_arrays(pa.array(full.ravel()), full.shape[1]),
            },
            schema=self._schema,
        )
        self._table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(rows)

    def delete(self, ids: list[str]) -> None:
        for group in batched(ids, 500):  # type: ignore[arg-type]
            quoted = ", ".join("'" + str(i).replace("'", "''") + "'" for i in group)
            self._table.delete(f"id IN ({quoted})")

    def count(self) -> int:
        return int(self._table.count_rows())

    def first_pass(self, prefix: NDArray[np.float32], n: int) -> list[tuple[str, str, str, NDArray[np.float32]]]:
        query = self._table.search(prefix, vector_column_name="vector").distance_type("cosine").limit(n)
        data = query.select(["id", "doc", "text", "full", "_distance"]).to_arrow()
        full = np.asarray(data.column("full").combine_chunks().flatten(), dtype=np.float32).reshape(data.num_rows, -1)
        cols = data.select(["id", "doc", "text"]).to_pydict()
        return list(zip(cols["id"], cols["doc"], cols["text"], full))


class _ChromaStore:
    def __init__(self, db: Path, meta: DbMeta) -> None:
        import chromadb

        client = chromadb.PersistentClient(
            path=str(db / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
        )
        self._first = client.get_or_create_collection("matryo-first-pass", embedding_function=None)
        self._full = client.get_or_create_collection("matryo-full", embedding_function=None)

    def hashes(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        step = 5000
        for offset in range(0, self.count(), step):
            got = self._first.get(include=["metadatas"], limit=step, offset=offset)
            for pid, meta in zip(got["ids"], got["metadatas"] or []):
                out[pid] = (str(meta["hash"]), str(meta["doc"]))
        return out

    def upsert(self, passages: list[Passage], prefix: NDArray[np.float32], full: NDArray[np.float32]) -> None:
        ids = [p.id for p in passages]
        self._full.upsert(ids=ids, embeddings=full)
        metadatas: list[Any] = [{"hash": p.hash, "doc": p.doc} for p in passages]
        self._first.upsert(ids=ids, embeddings=prefix, documents=[p.text for p in passages], metadatas=metadatas)

    def delete(self, ids: list[str]) -> None:
        self._first.delete(ids=ids)
        self._full.delete(ids=ids)

    def count(self) -> int:
        return int(self._first.count())

    def first_pass(self, prefix: NDArray[np.float32], n: int) -> list[tuple[str, str, str, NDArray[np.float32]]]:
        got = self._first.query(query_embeddings=prefix[None, :], n_results=n, include=["documents", "metadatas"])
        ids = got["ids"][0]
        if not ids:
            return []
        docs, metas = (got["documents"] or [[]])[0], (got["metadatas"] or [[]])[0]
        full = self._full.get(ids=ids, include=["embeddings"])
        vectors = dict(zip(full["ids"], np.asarray(full["embeddings"], dtype=np.float32)))
        return [(i, str(m["doc"]), t, vectors[i]) for i, t, m in zip(ids, docs, metas) if i in vectors]


def index_passages(
    store: Store,
    encode: Callable[[list[str]], NDArray[np.float32]],
    truncate_dim: int,
    passages: Iterable[Passage],
    *,
    batch_size: int = 512,
    on_batch: Callable[[int, int], None] | None = None,
) -> IndexStats:
    """Add new and changed passages to a store, skip unchanged ones, drop chunks a changed document lost.

    Args:
        store: The target store.
        encode: Full-width, L2-normalised encoder.
        truncate_dim: First-pass width.
        passages: The source's passages (their ids should be unique; repeats are counted and skipped).
        batch_size: Passages encoded and committed at once.
        on_batch: Called after every committed batch with ``(passages written, passages seen)``.

    Returns:
        The counts.
    """
    from matryo.quantize import truncate

    stored = store.hashes()
    stats = IndexStats()
    seen: set[str] = set()
    docs: set[str] = set()

    def fresh() -> Iterable[Passage]:
        for passage in passages:
            if passage.id in seen:
                stats.duplicates += 1
                continue
            seen.add(passage.id)
            docs.add(passage.doc)
            if stored.get(passage.id, ("", ""))[0] == passage.hash:
                stats.unchanged += 1
                continue
            yield passage

    for batch in batched(fresh(), batch_size):
        full = encode([p.text for p in batch])
        store.upsert(batch, truncate(full, truncate_dim) if truncate_dim < full.shape[1] else full, full)
        stats.added += len(batch)
        if on_batch is not None:
            on_batch(len(batch), len(seen))
    stale = [pid for pid, (_, doc) in stored.items() if doc in docs and pid not in seen]
    if stale:
        store.delete(stale)
        stats.removed = len(stale)
    return stats
