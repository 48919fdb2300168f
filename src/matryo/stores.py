"""The storage behind ``matryo index`` / ``matryo search``: a DB folder holding a two-stage store.

A DB folder holds ``matryo.json`` (the store kind, the model, its fingerprint, its width, the first-pass
width and the SOURCE indexed into it) next to the store's own files. Every passage is stored twice: a
truncated, re-normalised Matryoshka prefix for the first pass, and the full-width vector for rescoring,
plus its text, its document id and its content hash (which makes re-indexing incremental).

* ``lancedb`` (default): a ``matryo_lancedb`` two-stage table ``passages`` (``id, text, doc, hash``, the
  prefix column and the full column). Writes are upserts (``merge_insert`` on ``id``): each batch is one
  atomic commit, so an interrupted run loses at most the batch in flight and never duplicates a row.
* ``chroma``: a ``matryo_chroma`` two-stage collection ``matryo-passages`` in a ``PersistentClient``
  folder (``DB/chroma``), written with ``upsert``.

The host libraries are imported inside functions, and only after the adapter distribution
(``matryo-lancedb`` / ``matryo-chroma``) is found, so the error names the right ``pip install`` line.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from matryo.errors import DimensionMismatchError, InvalidArgumentError, MatryoError, StoreFormatError, missing_extra
from matryo.sources import Passage, batched

__all__ = [
    "META_FILE",
    "STORES",
    "DbMeta",
    "Hit",
    "IndexStats",
    "Store",
    "index_passages",
    "open_store",
    "require_store",
]

META_FILE = "matryo.json"
STORES = ("lancedb", "chroma")
_ADAPTERS = {
    # The adapters are not on PyPI yet: the line that works is the editable install from a matryo checkout.
    "lancedb": ("matryo_lancedb", "pip install -e integrations/lancedb  (from a matryo checkout)"),
    "chroma": ("matryo_chroma", "pip install -e integrations/chroma  (from a matryo checkout)"),
}
_TABLE = "passages"
_MAX_REPEATS_NAMED = 5
_COLLECTION = "matryo-passages"


@dataclass(frozen=True)
class DbMeta:
    """What a DB folder was built with (saved as ``matryo.json``)."""

    store: str
    model: str | None
    fingerprint: str
    dim: int
    truncate_dim: int
    source: str | None = None
    """Absolute path of the SOURCE indexed into the DB (``None``: not recorded, e.g. a DB from an older matryo)."""

    def describe(self) -> str:
        """One-line description for error messages."""
        model = self.model or "matryo-default"
        return f"model {model} (fingerprint {self.fingerprint}, {self.dim} dims, first pass {self.truncate_dim})"


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
    repaired: int = 0
    """Ids the store held more than once, rewritten to one row each before indexing."""
    repeated: list[tuple[str, str, str]] = field(default_factory=list)
    """The first repeated passage ids skipped, as ``(id, its document, the document that used the id first)``."""


class Store(Protocol):
    """What the CLI needs from a two-stage store (both adapters encode the texts themselves)."""

    def hashes(self) -> dict[str, tuple[str, str]]:
        """Map every stored passage id to ``(content hash, document id)``."""
        ...

    def upsert(self, passages: list[Passage]) -> None:
        """Insert or replace passages (one atomic batch)."""
        ...

    def repair_duplicates(self) -> int:
        """Rewrite every id stored more than once to one row; return how many ids were repaired."""
        ...

    def delete(self, ids: list[str]) -> None:
        """Remove passages by id."""
        ...

    def count(self) -> int:
        """Number of stored passages."""
        ...

    def search(self, query: str, k: int, rescore_multiplier: float) -> list[Hit]:
        """Two-stage search: truncated first pass for ``k * rescore_multiplier`` candidates, full-width rescoring."""
        ...


def read_meta(db: Path) -> DbMeta | None:
    """Read ``matryo.json`` from a DB folder (``None`` when absent)."""
    path = db / META_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        meta = DbMeta(**{key: raw[key] for key in ("store", "model", "fingerprint", "dim", "truncate_dim")})
        source = raw.get("source")
        if source is not None and not isinstance(source, str):
            msg = f"'source' must be a path or null, found {source!r}"
            raise TypeError(msg)
        return replace(meta, source=source)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{path} is damaged ({exc}); re-create the DB folder with `matryo index SOURCE --db NEW_FOLDER`."
        raise StoreFormatError(msg) from exc


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
            "models or widths are never mixed. Use another --db folder, or drop --model/--truncate-dim to reuse "
            "the stored ones."
        )
        raise DimensionMismatchError(msg)


def require_store(store: str) -> None:
    """Check that the adapter package behind a store kind is installed.

    Args:
        store: ``"lancedb"`` or ``"chroma"``.

    Raises:
        MissingExtraError: If it is not installed (the message names the ``pip install`` line).
    """
    module, install = _ADAPTERS[store]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(module, install, f"The {store} store") from exc


def open_store(db: Path, meta: DbMeta) -> Store:
    """Open (creating when needed) the store of a DB folder.

    Raises:
        MissingExtraError: If the store's adapter package is not installed.
        InvalidArgumentError: If ``meta.store`` is unknown (a ValueError).
    """
    if meta.store not in _ADAPTERS:
        msg = f"Unknown store {meta.store!r}; choose one of {', '.join(STORES)}."
        raise InvalidArgumentError(msg)
    require_store(meta.store)
    return _LanceStore(db, meta) if meta.store == "lancedb" else _ChromaStore(db, meta)


@contextmanager
def _host_errors(db: Path) -> Iterator[None]:
    """Turn LanceDB's errors on damaged files (``RuntimeError: lance error: ...``, ``OSError``) into one line."""
    try:
        yield
    except MatryoError:
        raise
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 200 else detail[:197] + "..."
        msg = (
            f"{db} cannot be read: LanceDB failed on its files ({type(exc).__name__}: {detail}). The DB is damaged; "
            "re-create it with `matryo index SOURCE --db NEW_FOLDER` (or delete it and index again)."
        )
        raise StoreFormatError(msg) from exc


class _LanceStore:
    """``matryo_lancedb.TwoStageTable`` named ``passages``, with ``doc`` and ``hash`` metadata columns.

    Every call turns LanceDB's errors on damaged files into a :class:`StoreFormatError` naming the DB.
    """

    def __init__(self, db: Path, meta: DbMeta) -> None:
        os.environ.setdefault("LANCE_LOG", "error")  # keep Rust-side notices off the terminal
        import pyarrow as pa

        from matryo_lancedb import create_two_stage_table

        self._db = db
        with _host_errors(db):
            self._table = create_two_stage_table(
                str(db),
                _TABLE,
                meta.model,
                truncate_dim=meta.truncate_dim,
                metadata={"doc": pa.string(), "hash": pa.string()},
                exist_ok=True,
            )

    def hashes(self) -> dict[str, tuple[str, str]]:
        with _host_errors(self._db):
            data = self._table.table.search().select(["id", "hash", "doc"]).limit(None).to_arrow().to_pydict()
        return {i: (h, d) for i, h, d in zip(data["id"], data["hash"], data["doc"], strict=True)}

    def upsert(self, passages: list[Passage]) -> None:
        with _host_errors(self._db):
            self._table.upsert([{"id": p.id, "text": p.text, "doc": p.doc, "hash": p.hash} for p in passages])

    def repair_duplicates(self) -> int:
        # Two runs that wrote one table at once (merge_insert does not see the other's uncommitted rows) leave
        # the ids both inserted twice, and upserts then keep both copies. Delete every copy and insert one
        # again (the last one read; its hash tells the next index run whether it is current).
        import pyarrow.compute as pc

        with _host_errors(self._db):
            ids = self._table.table.search().select(["id"]).limit(None).to_arrow()["id"]
            values, counts = pc.value_counts(ids).flatten()
            repeated = [str(v) for v, c in zip(values.to_pylist(), counts.to_pylist(), strict=True) if c > 1]
            for start in range(0, len(repeated), 500):
                part = repeated[start : start + 500]
                literals = ", ".join("'" + pid.replace("'", "''") + "'" for pid in part)
                query = self._table.table.search().where(f"id IN ({literals})").select(["id", "text", "doc", "hash"])
                rows = {r["id"]: r for r in query.limit(None).to_arrow().to_pylist()}
                self.delete(part)
                self.upsert([Passage(r["id"], r["doc"], r["text"], r["hash"]) for r in rows.values()])
        return len(repeated)

    def delete(self, ids: list[str]) -> None:
        with _host_errors(self._db):
            for start in range(0, len(ids), 500):
                self._table.delete(ids[start : start + 500])

    def count(self) -> int:
        with _host_errors(self._db):
            return self._table.count()

    def search(self, query: str, k: int, rescore_multiplier: float) -> list[Hit]:
        with _host_errors(self._db):
            rows = self._table.search(query, k, rescore_multiplier=rescore_multiplier)
        return [Hit(str(r["id"]), str(r["doc"]), float(r["score"]), str(r["text"])) for r in rows]


class _ChromaStore:
    """``matryo_chroma.TwoStageCollection`` named ``matryo-passages`` in a ``PersistentClient`` folder."""

    def __init__(self, db: Path, meta: DbMeta) -> None:
        import chromadb
        from chromadb.config import Settings

        from matryo_chroma import TwoStageCollection

        client = chromadb.PersistentClient(path=str(db / "chroma"), settings=Settings(anonymized_telemetry=False))
        if _COLLECTION in [c.name for c in client.list_collections()]:
            self._col = TwoStageCollection.open(client, _COLLECTION)
        else:
            self._col = TwoStageCollection.create(client, _COLLECTION, model=meta.model, truncate_dim=meta.truncate_dim)

    def hashes(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        step = 2000
        for offset in range(0, self.count(), step):
            got = self._col.get(include=["metadatas"], limit=step, offset=offset)
            for pid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                out[pid] = (str(meta["hash"]), str(meta["doc"]))
        return out

    def upsert(self, passages: list[Passage]) -> None:
        metadatas: list[Any] = [{"hash": p.hash, "doc": p.doc} for p in passages]
        self._col.upsert([p.id for p in passages], documents=[p.text for p in passages], metadatas=metadatas)

    def delete(self, ids: list[str]) -> None:
        self._col.delete(ids)

    def repair_duplicates(self) -> int:
        return 0  # Chroma's ids are unique

    def count(self) -> int:
        return self._col.count()

    def search(self, query: str, k: int, rescore_multiplier: float) -> list[Hit]:
        got = self._col.query([query], n_results=k, rescore_multiplier=rescore_multiplier)
        ids, docs = got["ids"][0], got["documents"][0]
        metas, dists = got["metadatas"][0], got["distances"][0]
        return [Hit(i, str(m["doc"]), 1.0 - float(d), t) for i, t, m, d in zip(ids, docs, metas, dists, strict=True)]


def index_passages(
    store: Store,
    passages: Iterable[Passage],
    *,
    batch_size: int = 512,
    on_batch: Callable[[int, int], None] | None = None,
    prune: Callable[[], bool] | None = None,
    empty_docs: Collection[str] = (),
) -> IndexStats:
    """Add new and changed passages to a store, skip unchanged ones, drop chunks a changed document lost.

    Every batch is committed before the next is read, so an interruption loses at most the batch in
    flight; the next run sees which ids and hashes are stored and carries on without duplicates.

    Args:
        store: The target store.
        passages: The source's passages (ids should be unique; repeats are skipped, counted and the first
            ones named in the stats: a chunk id ``doc#1`` can equal another document's id).
        batch_size: Passages encoded and committed at once.
        on_batch: Called after every committed batch with ``(passages written, passages seen)``.
        prune: Called once the source is exhausted; if it returns True, every stored passage the source
            did not yield is deleted too (documents removed from the source). ``None``: never prune, only
            the chunks a changed document no longer has are dropped.
        empty_docs: Ids of documents the source holds but that yield no passage (emptied texts); read once
            ``passages`` is exhausted, so a source can fill it while it is read. Their stored passages are
            deleted, like the chunks a changed document lost.

    Returns:
        The counts.
    """
    stored = store.hashes()
    stats = IndexStats()
    seen: dict[str, str] = {}  # passage id -> its document
    docs: set[str] = set()

    def fresh() -> Iterator[Passage]:
        for passage in passages:
            if passage.id in seen:
                stats.duplicates += 1
                if len(stats.repeated) < _MAX_REPEATS_NAMED:
                    stats.repeated.append((passage.id, passage.doc, seen[passage.id]))
                continue
            seen[passage.id] = passage.doc
            docs.add(passage.doc)
            if stored.get(passage.id, ("", ""))[0] == passage.hash:
                stats.unchanged += 1
                continue
            yield passage

    for batch in batched(fresh(), batch_size):
        store.upsert(batch)
        stats.added += len(batch)
        if on_batch is not None:
            on_batch(len(batch), len(seen))
    docs.update(empty_docs)
    everything = prune is not None and prune()
    stale = [pid for pid, (_, doc) in stored.items() if pid not in seen and (everything or doc in docs)]
    if stale:
        store.delete(stale)
        stats.removed = len(stale)
    return stats
