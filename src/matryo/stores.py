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

Host errors become one-line errors naming the DB: a write the disk or the folder
refused (full disk, quota, file-size limit, permissions, read-only file system) is a :class:`StoreWriteError`
(an ``OSError``: what was committed is kept, fix the cause and re-run), files the host cannot read are a
:class:`~matryo.errors.StoreFormatError` (the DB is damaged or incomplete: re-create it).

After a LanceDB run that changed rows, :func:`index_passages` compacts the table and deletes the versions no
reader can still be using (see :meth:`_LanceStore.optimize`), so re-indexing does not grow the folder without
bound.

The host libraries are imported inside functions, and only after the adapter distribution
(``matryo-lancedb`` / ``matryo-chroma``) is found, so the error names the right ``pip install`` line.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from matryo.errors import (
    DimensionMismatchError,
    InvalidArgumentError,
    MatryoError,
    StoreFormatError,
    StoreWriteError,
    missing_extra,
)
from matryo.files import write_json
from matryo.sources import Passage, batched

__all__ = [
    "META_FILE",
    "STORES",
    "DbMeta",
    "Hit",
    "IndexStats",
    "Store",
    "StoreWriteError",
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
_READERS_LOCK = ".matryo-readers.lock"
"""Shared ``flock`` held by every open LanceDB store; the cleanup after a run deletes old versions at once only
when it can take it exclusively (no other matryo process has the table open)."""
_READERS_WAIT = 10.0
"""Seconds a LanceDB store waits for the (short) exclusive hold of a cleanup before opening anyway."""
CLEANUP_GRACE = timedelta(minutes=1)
"""When other processes have the table open, only versions superseded at least this long ago are deleted."""
_NEVER = timedelta(days=36500)
# errnos of a write the disk or the folder refused: full disk, quota, file-size limit, permissions, read-only FS
_WRITE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", 122), errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS}
# SQLite result codes (Chroma's chroma.sqlite3) of the same: PERM, READONLY, CANTOPEN, FULL (primary codes), and
# the IOERR_WRITE / FSYNC / DIR_FSYNC / TRUNCATE extended codes
_SQLITE_WRITE_CODES = {3, 8, 13, 14, 778, 1034, 1290, 1546}
_WRITE_MESSAGES = tuple(
    m.lower()
    for m in [*(os.strerror(e) for e in _WRITE_ERRNOS), "database or disk is full", "readonly database", "disk quota"]
)


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
    kept: int = 0
    """Stored passages of documents this run did not see (removed from the source, or skipped), left in place."""
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

    def refresh(self) -> None:
        """Read the latest committed state from now on (what other processes wrote since the store was opened)."""
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
        for key in ("store", "model", "fingerprint", "dim", "truncate_dim"):
            value = getattr(meta, key)
            wanted = int if key.endswith("dim") else str
            if (key != "model" or value is not None) and (isinstance(value, bool) or not isinstance(value, wanted)):
                msg = f"{key!r} must be {'an integer' if wanted is int else 'a string'}, found {value!r}"
                raise TypeError(msg)
        if not 1 <= meta.truncate_dim <= meta.dim:  # `matryo search` printed "first pass at -5 dims"
            msg = f"expected 1 <= truncate_dim <= dim, found truncate_dim {meta.truncate_dim} and dim {meta.dim}"
            raise ValueError(msg)
        source = raw.get("source")
        if source is not None and not isinstance(source, str):
            msg = f"'source' must be a path or null, found {source!r}"
            raise TypeError(msg)
        return replace(meta, source=source)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{path} is damaged ({exc}); re-create the DB folder with `matryo index SOURCE --db NEW_FOLDER`."
        raise StoreFormatError(msg) from exc


def write_meta(db: Path, meta: DbMeta) -> None:
    """Write ``matryo.json`` atomically (through a temporary ``.matryo.json.*.tmp``, removed when the write fails).

    Raises:
        StoreWriteError: If the disk or the folder refused the write (full disk, permissions, read-only).
    """
    try:
        db.mkdir(parents=True, exist_ok=True)
        write_json(db / META_FILE, asdict(meta))
    except OSError as exc:
        if not _write_failure(exc):
            raise
        msg = (
            f"writing {db} failed: {META_FILE} could not be written ({_detail(exc)}). The disk or the folder "
            "refused it. Free disk space or fix the folder's permissions, then re-run the same command."
        )
        raise StoreWriteError(msg) from exc


def check_meta(stored: DbMeta, wanted: DbMeta, db: Path, *, writing: bool = True) -> None:
    """Refuse to mix models or widths in one DB folder (``writing``: an index run, else a search).

    Raises:
        DimensionMismatchError: If the fingerprint, width or first-pass width differ.
    """
    if (stored.fingerprint, stored.dim, stored.truncate_dim) != (wanted.fingerprint, wanted.dim, wanted.truncate_dim):
        if stored.model == wanted.model and stored.fingerprint != wanted.fingerprint:
            # the same name with other weights: a matryo upgrade with a new default model, or a folder retrained in
            # place. No option brings the old weights back, so only re-indexing helps.
            if stored.model is None:
                changed = "The weights of this matryo's embedded default model changed (an upgrade shipped new ones)"
            else:
                changed = f"The weights of the model at {stored.model} changed (put the old ones back to use this DB)"
            fix = (
                f"{changed} since the DB was built. Index SOURCE again into a new --db folder, or delete {db} and "
                "run the same `matryo index` command again."
            )
        elif writing:
            fix = "Use another --db folder, or drop --model/--truncate-dim to reuse the stored ones."
        else:
            fix = "Put back the model the DB was built with, or index SOURCE again into a new --db folder."
        msg = (
            f"{db} was built with {stored.describe()}, but this run uses {wanted.describe()}; vectors of different "
            f"models or widths are never mixed. {fix}"
        )
        raise DimensionMismatchError(msg)


def require_store(store: str) -> None:
    """Check that the adapter package behind a store kind is installed.

    Args:
        store: ``"lancedb"`` or ``"chroma"``.

    Raises:
        MissingExtraError: If it is not installed, or a package it needs is not (the message names which, and
            the ``pip install`` line).
    """
    module, install = _ADAPTERS[store]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(module, install, f"The {store} store", cause=exc) from exc


def open_store(db: Path, meta: DbMeta, *, create: bool = True) -> Store:
    """Open the store of a DB folder, creating it when needed (``create=True``).

    Args:
        db: The DB folder.
        meta: Its metadata (``matryo.json``, or what a new DB will be built with).
        create: Create the LanceDB table or Chroma collection when it is missing. ``False`` (searching): a
            missing one is an error, and nothing is written into the folder.

    Raises:
        MissingExtraError: If the store's adapter package is not installed.
        InvalidArgumentError: If ``meta.store`` is unknown (a ValueError).
        StoreFormatError: If ``create`` is False and the table or collection is missing (an incomplete DB), or
            the host cannot read the store's files (a damaged DB).
        StoreWriteError: If creating the store failed for lack of space or permissions (an OSError).
    """
    if meta.store not in _ADAPTERS:
        msg = f"Unknown store {meta.store!r}; choose one of {', '.join(STORES)}."
        raise InvalidArgumentError(msg)
    require_store(meta.store)
    return _LanceStore(db, meta, create=create) if meta.store == "lancedb" else _ChromaStore(db, meta, create=create)


def _incomplete(db: Path, what: str) -> StoreFormatError:
    msg = (
        f"{db} has {META_FILE} but no {what}: the DB is incomplete (a partial copy, or its store files were "
        f"deleted). Re-index it with `matryo index SOURCE --db {db}` (or into a new --db folder)."
    )
    return StoreFormatError(msg)


def _never_committed(table: Path) -> bool:
    """Whether a Lance table folder exists but holds no version and no data: a creation that failed half-way."""
    if not table.is_dir() or any((table / "_versions").glob("*.manifest")):
        return False
    return not any(path.is_file() for path in (table / "data").rglob("*"))


def _unversioned(table: Path) -> bool:
    """Whether a Lance table folder holds data files but no version (manifest) to read them by: a partial copy."""
    return table.is_dir() and not any((table / "_versions").glob("*.manifest")) and not _never_committed(table)


def _detail(exc: BaseException) -> str:
    """A host error on one line for a message: its type and at most 200 characters of its text."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: " + (text if len(text) <= 200 else text[:197] + "...")


def _write_failure(exc: BaseException) -> bool:
    """Whether a host error says the disk or the folder refused a write (space, quota, size limit, permissions)."""
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return True
    text = str(exc)
    if any(int(code) in _WRITE_ERRNOS for code in re.findall(r"os error (\d+)", text)):  # Rust's io::Error
        return True
    if any(int(code) in _SQLITE_WRITE_CODES for code in re.findall(r"\(code: (\d+)\)", text)):  # Chroma's SQLite
        return True
    lowered = text.lower()
    return any(message in lowered for message in _WRITE_MESSAGES)


@contextmanager
def _host_errors(db: Path, host: str, *, writing: bool = False) -> Iterator[None]:
    """Turn a host's errors on the DB's files into one-line MatryoErrors naming the DB.

    A write the disk or the folder refused is a :class:`StoreWriteError`, whatever the call; any other failure is
    a :class:`StoreFormatError`, worded for a failed write when ``writing`` (fixing the disk may be enough) and
    for a damaged DB otherwise. MatryoErrors, ValueErrors of the caller and BrokenPipeError pass through.

    Args:
        db: The DB folder (named in the message).
        host: ``"LanceDB"`` or ``"Chroma"``.
        writing: Whether the call writes the store.
    """
    caught: tuple[type[BaseException], ...] = (RuntimeError, OSError)
    if host == "Chroma":
        from chromadb.errors import ChromaError

        caught = (*caught, ChromaError)
    try:
        yield
    except MatryoError:
        raise
    except caught as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        detail = _detail(exc)
        if _write_failure(exc):
            msg = (
                f"{'writing' if writing else 'opening'} {db} failed: {host} could not "
                f"{'write' if writing else 'open'} its files ({detail}). The disk or the folder refused it, which "
                "leaves the DB usable: what was committed is kept. Free disk space (or raise the quota or file-size "
                "limit) or fix the folder's permissions, then re-run the same command."
            )
            raise StoreWriteError(msg) from exc
        if writing:
            msg = (
                f"writing {db} failed: {host} could not write its files ({detail}); what was committed before is "
                "kept. If the disk is full or the folder is not writable, fix that and re-run the same command; if "
                "the same error comes back, the DB is damaged: re-create it with `matryo index SOURCE --db "
                "NEW_FOLDER` (or delete it and index again)."
            )
        else:
            msg = (
                f"{db} cannot be read: {host} failed on its files ({detail}). The DB is damaged; re-create it "
                "with `matryo index SOURCE --db NEW_FOLDER` (or delete it and index again)."
            )
        raise StoreFormatError(msg) from exc


def _hold_shared(path: Path) -> IO[str] | None:
    """A shared lock on ``path``, waiting :data:`_READERS_WAIT` s for an exclusive holder (a cleanup).

    ``None`` where nothing can be locked (see :func:`matryo.locks.take`) or the holder kept it that long.
    """
    from matryo.locks import take

    try:
        return take(path, shared=True, wait=_READERS_WAIT)
    except BlockingIOError:
        return None


def _try_exclusive(handle: IO[str] | None) -> bool:
    """Turn the shared lock of :func:`_hold_shared` into an exclusive one if nobody else holds it (no waiting)."""
    if handle is None:
        return False  # without a lock nobody's readers can be seen: assume there are some
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        _share(handle)  # a failed conversion drops the shared lock (flock(2)): take it again
        return False
    return True


def _share(handle: IO[str] | None) -> None:
    """Go back to a shared lock after :func:`_try_exclusive` (best effort)."""
    if handle is None:
        return
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        pass


class _LanceStore:
    """``matryo_lancedb.TwoStageTable`` named ``passages``, with ``doc`` and ``hash`` metadata columns.

    Every call turns LanceDB's errors into a :class:`StoreWriteError` (the disk or the folder refused a write)
    or a :class:`StoreFormatError` (damaged files) naming the DB. An open store holds a shared ``flock`` on
    ``DB/.matryo-readers.lock`` (see :meth:`optimize`).
    """

    def __init__(self, db: Path, meta: DbMeta, *, create: bool = True) -> None:
        import lancedb
        import pyarrow as pa

        from matryo_lancedb import create_two_stage_table, open_two_stage_table
        from matryo_lancedb.create import table_exists

        self._db = db
        with _host_errors(db, "LanceDB"):
            if _never_committed(db / f"{_TABLE}.lance"):
                # the first run failed before the table's first commit (a full disk): LanceDB lists the folder as a
                # table but cannot open it. Nothing in it can be read, so a run may make the table again.
                if not create:
                    raise _incomplete(db, f"LanceDB table {_TABLE!r} (its first commit failed)")
                shutil.rmtree(db / f"{_TABLE}.lance")
            elif _unversioned(db / f"{_TABLE}.lance"):  # data files but no version: LanceDB says "not found"
                msg = (
                    f"{db} has {META_FILE} but no version of its LanceDB table ({_TABLE}.lance/_versions/*.manifest): "
                    "the DB is incomplete (a partial copy?) and its data cannot be read. Copy the DB folder again "
                    f"from where it came from, or index SOURCE into a new --db folder (or delete {db} first)."
                )
                raise StoreFormatError(msg)
            if not create and not table_exists(lancedb.connect(str(db)), _TABLE):
                raise _incomplete(db, f"LanceDB table {_TABLE!r} ({_TABLE}.lance)")
            self._readers = _hold_shared(db / _READERS_LOCK)  # taken before the table's version is read
            if not create:
                self._table = open_two_stage_table(str(db), _TABLE)
                return
            self._table = create_two_stage_table(
                str(db),
                _TABLE,
                meta.model,
                truncate_dim=meta.truncate_dim,
                metadata={"doc": pa.string(), "hash": pa.string()},
                exist_ok=True,
            )

    def optimize(self) -> None:
        """Compact the table's files and delete the old versions no reader can still be using.

        Every batch of a run is a commit (a version) and every version keeps its data files, so without this a
        DB grew by its whole size on each re-index of changed texts. If no other process has the store open
        (this process can take the readers' lock exclusively), every version but the latest is deleted;
        otherwise only versions superseded at least :data:`CLEANUP_GRACE` ago are, so a search that opened the
        table a moment ago keeps its files. New readers wait for the exclusive hold (the cleanup only). Any
        ANN index on the table is updated with the rows added since it was built (LanceDB's ``optimize``).
        """
        try:
            with _host_errors(self._db, "LanceDB", writing=True):
                self._optimize()
        except (StoreWriteError, StoreFormatError) as exc:
            cause = exc.__cause__ or exc
            detail = _detail(cause)
            msg = (
                f"every passage of this run was committed to {self._db}, but compacting the table afterwards "
                f"failed ({detail}). The DB is complete, only larger than needed; free disk space (or fix the "
                "folder's permissions), and the next run that changes passages compacts it."
            )
            raise type(exc)(msg) from cause

    def _optimize(self) -> None:
        table = self._table.table
        if _try_exclusive(self._readers):
            try:
                with warnings.catch_warnings():  # "removes every version except the latest": that is the aim
                    warnings.filterwarnings("ignore", r"optimize\(cleanup_older_than=0\)", UserWarning)
                    table.optimize(cleanup_older_than=timedelta(0))
            finally:
                _share(self._readers)
            return
        # compaction (and index update) first, deleting nothing yet: it supersedes the run's last version, and a
        # version committed long ago may have been the latest until this run's first commit
        table.optimize(cleanup_older_than=_NEVER)
        # LanceDB deletes by a version's commit time, but a version may be read as long as it was the latest, up
        # to when the next one was committed: keep every version superseded within the grace period
        now = datetime.now()  # LanceDB's version timestamps are naive local times
        versions = sorted(table.list_versions(), key=lambda v: int(v["version"]))
        keep_from = now
        for version, successor in zip(versions, versions[1:], strict=False):
            if now - successor["timestamp"] < CLEANUP_GRACE:
                keep_from = version["timestamp"]
                break
        table.optimize(cleanup_older_than=max(now - keep_from, timedelta(0)) + timedelta(seconds=1))

    def hashes(self) -> dict[str, tuple[str, str]]:
        with _host_errors(self._db, "LanceDB"):
            data = self._table.table.search().select(["id", "hash", "doc"]).limit(None).to_arrow().to_pydict()
        return {i: (h, d) for i, h, d in zip(data["id"], data["hash"], data["doc"], strict=True)}

    def upsert(self, passages: list[Passage]) -> None:
        with _host_errors(self._db, "LanceDB", writing=True):
            self._table.upsert([{"id": p.id, "text": p.text, "doc": p.doc, "hash": p.hash} for p in passages])

    def repair_duplicates(self) -> int:
        # Two runs that wrote one table at once (merge_insert does not see the other's uncommitted rows) leave
        # the ids both inserted twice, and upserts then keep both copies. Delete every copy and insert one
        # again (the last one read; its hash tells the next index run whether it is current).
        import pyarrow.compute as pc

        with _host_errors(self._db, "LanceDB"):  # reading; delete and upsert report their own write errors
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
        with _host_errors(self._db, "LanceDB", writing=True):
            for start in range(0, len(ids), 500):
                self._table.delete(ids[start : start + 500])

    def count(self) -> int:
        with _host_errors(self._db, "LanceDB"):
            return self._table.count()

    def refresh(self) -> None:
        # an open table reads the version it was opened at; writers keep superseded versions for CLEANUP_GRACE
        # while a reader holds the readers' lock, so the latest one stays readable for a search
        with _host_errors(self._db, "LanceDB"):
            self._table.table.checkout_latest()  # type: ignore[no-untyped-call]

    def search(self, query: str, k: int, rescore_multiplier: float) -> list[Hit]:
        with _host_errors(self._db, "LanceDB"):
            rows = self._table.search(query, k, rescore_multiplier=rescore_multiplier)
        return [Hit(str(r["id"]), str(r["doc"]), float(r["score"]), str(r["text"])) for r in rows]


class _ChromaStore:
    """``matryo_chroma.TwoStageCollection`` named ``matryo-passages`` in a ``PersistentClient`` folder.

    Every call turns Chroma's errors (``chromadb.errors.ChromaError``: SQLite's "database disk image is
    malformed", "disk I/O error", ...) into a :class:`StoreWriteError` or :class:`StoreFormatError` naming the DB.
    """

    def __init__(self, db: Path, meta: DbMeta, *, create: bool = True) -> None:
        import chromadb
        from chromadb.config import Settings

        from matryo_chroma import TwoStageCollection

        self._db = db
        folder = db / "chroma"
        if not create and not folder.is_dir():  # PersistentClient would create it
            raise _incomplete(db, "Chroma folder (chroma/)")
        with _host_errors(db, "Chroma"):
            client = chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))
            if _COLLECTION in [c.name for c in client.list_collections()]:
                self._col = TwoStageCollection.open(client, _COLLECTION)
                return
        if not create:
            raise _incomplete(db, f"Chroma collection {_COLLECTION!r} in chroma/")
        with _host_errors(db, "Chroma", writing=True):
            self._col = TwoStageCollection.create(client, _COLLECTION, model=meta.model, truncate_dim=meta.truncate_dim)

    def hashes(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        step = 2000
        with _host_errors(self._db, "Chroma"):
            for offset in range(0, self._col.count(), step):
                got = self._col.get(include=["metadatas"], limit=step, offset=offset)
                for pid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                    out[pid] = (str(meta["hash"]), str(meta["doc"]))
        return out

    def upsert(self, passages: list[Passage]) -> None:
        metadatas: list[Any] = [{"hash": p.hash, "doc": p.doc} for p in passages]
        with _host_errors(self._db, "Chroma", writing=True):
            self._col.upsert([p.id for p in passages], documents=[p.text for p in passages], metadatas=metadatas)

    def delete(self, ids: list[str]) -> None:
        with _host_errors(self._db, "Chroma", writing=True):
            self._col.delete(ids)

    def repair_duplicates(self) -> int:
        return 0  # Chroma's ids are unique

    def optimize(self) -> None:
        """Nothing to do: Chroma compacts its own files."""

    def refresh(self) -> None:
        """Nothing to do: an open Chroma DB is locked against other matryo processes (see ``open_search``)."""

    def count(self) -> int:
        with _host_errors(self._db, "Chroma"):
            return self._col.count()

    def search(self, query: str, k: int, rescore_multiplier: float) -> list[Hit]:
        with _host_errors(self._db, "Chroma"):
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
    flight; the next run sees which ids and hashes are stored and carries on without duplicates. A run that
    added or removed passages ends with ``store.optimize()`` when the store has one (LanceDB: compaction and
    old-version cleanup).

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
    stats.kept = sum(1 for pid in stored if pid not in seen) - len(stale)
    optimize = getattr(store, "optimize", None)  # optional: compaction and old-version cleanup (LanceDB)
    if (stats.added or stats.removed) and optimize is not None:
        optimize()
    return stats
