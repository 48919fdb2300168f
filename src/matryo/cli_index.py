"""DB folders for the command line: index passages into one, open one for two-stage search, print hits.

Used by ``matryo index``, ``matryo search`` and ``matryo demo``. The DB folder's ``matryo.json`` pins the
model (by fingerprint), its width, the first-pass width and the SOURCE indexed into it (document ids are
relative to SOURCE: row numbers, relative paths); a run with anything else is refused.
"""

# ruff: noqa: T201  # a command line prints its results

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from matryo.cache import model_key
from matryo.errors import MatryoError
from matryo.formats import expand_user

if TYPE_CHECKING:
    from matryo.encoder import StaticEncoder
    from matryo.sources import Passage
    from matryo.stores import DbMeta, Hit, IndexStats

__all__ = [
    "BATCH_SIZE",
    "CHROMA_SEARCH_WAIT",
    "DEMO_SOURCE",
    "LOCK_FILE",
    "CliError",
    "check_db",
    "cut_note",
    "index_into",
    "open_search",
    "print_hits",
    "printable",
    "source_key",
    "writing",
]

BATCH_SIZE = 512
DEMO_SOURCE = "matryo demo: the Python standard library's docstrings"
"""The SOURCE ``matryo demo`` records, so a demo DB and a DB of a real SOURCE are never mixed."""
LOCK_FILE = ".matryo-index.lock"
"""Held (``fcntl.flock``) by the run writing a DB folder, and by a search of a Chroma DB; see :func:`writing`."""
CHROMA_SEARCH_WAIT = 10.0
"""Seconds ``matryo search`` on a Chroma DB waits for the DB's lock (held by an index run or another search)."""
# Called after each committed batch of `matryo index` with the batch number (tests inject a Ctrl-C here).
after_batch: Callable[[int], None] | None = None


class CliError(MatryoError, ValueError):
    """An expected problem with the command line's input."""


def _load(model: str | None) -> StaticEncoder:
    # The per-process cache: the adapters load the same model through it, so it is read only once.
    from matryo.cache import load_encoder

    return load_encoder(model)


def _load_recorded(model: str | None, db: Path, *, moved: bool = False) -> StaticEncoder:
    """Load the model a DB records, saying where the name came from when it no longer loads.

    ``moved``: the run was given another path (``--model``) to the same model, which cannot relocate the DB.
    """
    from matryo.cache import load_recorded
    from matryo.stores import META_FILE

    advice = "A DB keeps using its model's path: put the model back there, or index SOURCE again into a new --db."
    if moved:
        advice += " (--model with another copy of the model does not change the path the DB records.)"
    return load_recorded(model, owner=str(db), where=f"in {db / META_FILE} and in the store", advice=advice)


def _progress(quiet: bool) -> Any:
    if quiet:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(unit=" passages", desc="Indexing", file=sys.stderr, disable=None, mininterval=0.5)


def source_key(source: str | os.PathLike[str] | None) -> str | None:
    """How a SOURCE is recorded in ``matryo.json``: its absolute path, or :data:`DEMO_SOURCE` for the demo."""
    if source is None:
        return None
    if isinstance(source, str) and source == DEMO_SOURCE:
        return DEMO_SOURCE
    return str(expand_user(source).resolve())


def _leftover(name: str) -> bool:
    """Whether a file may sit in a folder that is not a DB yet.

    matryo's locks and the temporary file of a failed ``matryo.json`` write (a run that failed before its first
    commit), or a desktop's ``.DS_Store``.
    """
    from matryo.stores import META_FILE

    patterns = (LOCK_FILE, ".DS_Store", ".matryo-*.lock", f".{META_FILE}.*.tmp")
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def check_db(
    db: Path,
    *,
    source: str | os.PathLike[str] | None = None,
    store: str | None = None,
    busy: bool = True,
    replace_source: bool = False,
) -> DbMeta | None:
    """Refuse a DB folder this run must not write, before any slow work (reading SOURCE, loading a model).

    Args:
        db: The DB folder (it may not exist yet).
        source: The SOURCE about to be indexed (``None``: not checked); :data:`DEMO_SOURCE` for the demo.
        store: The store kind asked for (``None``: not checked).
        busy: Also refuse a DB another run is writing now (its lock is tried and let go at once; the run takes
            it for good in :func:`writing`). ``False`` when the caller holds the lock itself.
        replace_source: Accept a DB that holds another SOURCE (moved, renamed, a new export): the run records
            ``source`` instead. Never for the demo's DB or into it.

    Returns:
        The DB's metadata, ``None`` for a new (missing or empty) folder.

    Raises:
        CliError: If ``db`` is a file, a folder that is not a matryo DB, a DB holding another SOURCE or store, or
            one another run is writing.
        StoreFormatError: If its ``matryo.json`` is damaged.
    """
    from matryo.stores import read_meta

    if db.exists() and not db.is_dir():
        msg = f"--db {db} is a file; expected a DB folder (a new or empty folder for a new DB). Use another --db path."
        raise CliError(msg)
    # refused before the slow work (the demo builds its corpus first): a DB that cannot be made or written
    nearest = next(folder for folder in (db, *db.absolute().parents) if folder.exists())
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        why = f"{nearest} is a file" if not nearest.is_dir() else f"{nearest} is not writable"
        msg = f"--db {db} cannot be {'written' if nearest == db else 'created'}: {why}. Use another --db folder."
        raise CliError(msg)
    stored = read_meta(db)
    if stored is None and db.is_dir() and not all(_leftover(p.name) for p in db.iterdir()):
        msg = f"{db} exists and is not a matryo DB folder (no matryo.json); choose a new or empty --db folder."
        raise CliError(msg)
    if busy and db.is_dir():  # at once, not after building the demo's corpus or reading SOURCE and the model
        handle = _lock(db, _busy(db))
        if handle is not None:
            handle.close()
    if stored is None:
        return None
    where = source_key(source)
    demo = where == DEMO_SOURCE
    replacing = replace_source and not demo and stored.source != DEMO_SOURCE
    if stored.source is not None and where is not None and where != stored.source and not replacing:
        if demo:
            msg = (
                f"{db} holds the documents of SOURCE {stored.source}; matryo demo would mix the standard library's "
                "docstrings into them. Run the demo with another --db folder (default ./matryo-demo-db)."
            )
        elif stored.source == DEMO_SOURCE:
            msg = (
                f"{db} holds the passages of matryo demo (the standard library's docstrings); indexing {where} into "
                "it would mix two corpora. Use another --db folder."
            )
        else:
            msg = (
                f"{db} holds the documents of SOURCE {stored.source}, not {where}; document ids are relative to "
                "SOURCE (row numbers, file paths), so indexing another SOURCE here would overwrite them. Use another "
                "--db folder, or index the same SOURCE; if the corpus was moved, renamed or exported again, pass "
                "--replace-source to record the new SOURCE (passages whose id and text match are kept; add --prune "
                "to remove the documents it no longer has)."
            )
        raise CliError(msg)
    if store is not None and store != stored.store:
        if demo:
            msg = (
                f"{db} holds a {stored.store} store, and matryo demo keeps its DB in LanceDB; use another --db folder."
            )
        else:
            msg = f"{db} holds a {stored.store} store; drop --store {store} or use another --db folder."
        raise CliError(msg)
    return stored


def _lock(db: Path, busy: str, *, wait: float = 0.0) -> IO[str] | None:
    """Take the exclusive lock on ``DB/.matryo-index.lock`` (:func:`matryo.locks.take`; ``None``: cannot lock here).

    Raises:
        CliError: With the message ``busy`` if another process still holds the lock after ``wait`` seconds.
    """
    from matryo.locks import take

    try:
        return take(db / LOCK_FILE, wait=wait)
    except BlockingIOError as exc:
        raise CliError(busy) from exc


def _busy(db: Path) -> str:
    return (
        f"another matryo command (an index run, the demo, or a search of a Chroma DB, maybe a query> prompt left "
        f"open) is using {db}; wait for it to finish (or end the prompt), then run this command again."
    )


@contextmanager
def writing(db: Path) -> Iterator[None]:
    """Hold an exclusive lock on a DB folder (created when missing) while one run writes it.

    Two runs writing one LanceDB table at once both insert the ids that are new to them, which leaves
    permanent duplicate rows; so a second ``matryo index`` or ``matryo demo`` on the same DB fails at once
    instead (and so does ``matryo search`` on a Chroma DB, see :func:`open_search`). The lock is
    ``fcntl.flock`` on ``DB/.matryo-index.lock`` (released by the OS if the process dies; the empty file
    stays). Without ``fcntl`` (Windows), or on a file system that cannot lock, nothing is locked: do not run
    two indexing commands on one DB at once there.

    Raises:
        CliError: If another process holds the lock.
    """
    db.mkdir(parents=True, exist_ok=True)
    handle = _lock(db, _busy(db))
    try:
        yield
    finally:
        if handle is not None:
            handle.close()  # releases the lock


def _run_encoder(db: Path, stored: DbMeta | None, model: str | None) -> StaticEncoder:
    """The encoder a run uses: ``model`` when given, else the one the DB recorded, else the embedded default."""
    if model is not None or stored is None:
        return _load(model_key(model) if model is not None else None)
    return _load_recorded(stored.model, db)


def cut_note(encoder: StaticEncoder, texts: list[str], *, chunked: bool = True) -> str | None:
    """Say when a model's tokenizer cuts some of these passages (their ends would not be embedded), else None.

    Models whose ``tokenizer.json`` stores a truncation (``encoder.max_length``) embed only a passage's first
    ``max_length`` tokens, as sentence-transformers does; the embedded default model never cuts. The texts are a
    sample (the run's first batch), tokenized once more without the cut. ``chunked``: whether ``--chunk-size``
    applies to the source (not to a BEIR corpus, whose documents are kept whole), so the note may suggest one.
    """
    from tokenizers import Tokenizer

    limit = encoder.max_length
    if limit is None or not texts:
        return None
    whole = Tokenizer.from_str(encoder.tokenizer.to_str())
    whole.no_truncation()
    lengths = [len(e.ids) for e in whole.encode_batch(texts, add_special_tokens=False)]
    long = [(n, len(text.split())) for n, text in zip(lengths, texts, strict=True) if n > limit]
    if not long:
        return None
    tokens_per_word = sum(n for n, _ in long) / max(sum(w for _, w in long), 1)
    fits = max(1, int(limit / tokens_per_word * 0.9))
    fix = (
        f"Pass --chunk-size {fits} (words per passage; about {tokens_per_word:.1f} tokens per word here) to cut "
        "passages that fit, or use a model without a truncation (the default has none)."
        if chunked
        else "A BEIR corpus's documents are kept whole: use a model without a truncation (the default has none)."
    )
    return (
        f"{len(long)} of the first {len(texts)} passages are longer than the {limit} tokens this model embeds "
        f"(the truncation in its tokenizer.json; the longest has {max(n for n, _ in long)}), so their ends are not "
        f"searchable. {fix}"
    )


def _wanted(
    db: Path,
    stored: DbMeta | None,
    *,
    model: str | None,
    store: str | None,
    truncate_dim: int | None,
    where: str | None,
    replace_source: bool = False,
) -> DbMeta:
    """What this run writes (model, widths, store, SOURCE), checked against what the DB holds."""
    from matryo.search import DEFAULT_TRUNCATE_DIM
    from matryo.stores import STORES, DbMeta, check_meta, require_store

    key = model_key(model) if model is not None else (stored.model if stored else None)
    encoder = _run_encoder(db, stored, model)
    dim = encoder.dim
    if truncate_dim is not None:
        width = truncate_dim
    else:
        width = stored.truncate_dim if stored else min(DEFAULT_TRUNCATE_DIM, dim)
    if not 1 <= width <= dim:
        msg = f"--truncate-dim must be between 1 and the model width {dim}, got {width}."
        raise CliError(msg)
    kind = store or (stored.store if stored else "lancedb")
    if kind in STORES:
        require_store(kind)  # before the DB folder is made
    keep = stored is not None and stored.source is not None and not (replace_source and where is not None)
    recorded = stored.source if keep and stored is not None else where
    wanted = DbMeta(kind, key, encoder.fingerprint, dim, width, recorded)
    if stored is not None:
        check_meta(stored, wanted, db)
        if key != stored.model:
            # The same weights (check_meta compared fingerprints) under another path: a copy of the model. The store
            # opens the model it recorded, so that one must still load, and the DB keeps recording it.
            _load_recorded(stored.model, db, moved=True)
            wanted = replace(wanted, model=stored.model)
    return wanted


def index_into(
    db: Path,
    passages: Iterable[Passage],
    *,
    model: str | None = None,
    store: str | None = None,
    truncate_dim: int | None = None,
    quiet: bool = False,
    prune: Callable[[], bool] | None = None,
    source: str | os.PathLike[str] | None = None,
    empty_docs: Collection[str] = (),
    note: Callable[[str], None] | None = None,
    replace_source: bool = False,
) -> tuple[IndexStats, DbMeta, int]:
    """Index passages into a DB folder, creating it or checking it was built with the same model and widths.

    The writing holds the DB's lock (see :func:`writing`), and starts by rewriting ids a LanceDB table holds
    more than once (left by two runs that wrote at once, before this lock existed) to one row each.

    Args:
        db: The DB folder.
        passages: What to index (ids unique, hashes from :func:`matryo.sources.content_hash`).
        model: Model name or path (``None``: the DB's model, else the embedded default).
        store: ``"lancedb"`` or ``"chroma"`` (``None``: the DB's store, else lancedb).
        truncate_dim: First-pass width (``None``: the DB's, else the search default capped at the model width).
        quiet: No progress bar.
        prune: Asked once the passages are exhausted: True deletes every stored passage they did not
            include (see :func:`matryo.stores.index_passages`).
        source: The SOURCE the passages come from (:data:`DEMO_SOURCE` for the demo). Recorded (as an
            absolute path) by the run that creates the DB, or adopted by a DB that has none recorded; another
            SOURCE is refused, because its document ids would overwrite this one's. ``None``: neither
            recorded nor checked.
        empty_docs: Ids of documents that yield no passage, filled while ``passages`` is read; their stored
            passages are deleted (see :func:`matryo.stores.index_passages`).
        note: Called with :func:`cut_note`'s message when the model cuts some of the first passages.
        replace_source: Index into a DB that holds another SOURCE and record ``source`` instead (see
            :func:`check_db`).

    Returns:
        The counts (``repaired``: ids that were stored more than once), the DB's metadata and the number of
        stored passages.

    Raises:
        CliError: If ``db`` is a file, a folder that is not a matryo DB or one holding another SOURCE or store,
            another run is writing it, the source yields nothing, or a width is invalid.
        DimensionMismatchError: If the DB was built with another model or widths.
    """
    from matryo.stores import index_passages, open_store, read_meta, write_meta

    where = source_key(source)
    stored = check_db(db, source=source, store=store, replace_source=replace_source)
    _wanted(db, stored, model=model, store=store, truncate_dim=truncate_dim, where=where, replace_source=replace_source)
    iterator = iter(passages)
    head = list(islice(iterator, BATCH_SIZE))  # a bad row among the first ones stops the run before DB is made
    if not head and (stored is None or not empty_docs):
        msg = "SOURCE holds no text to index (every file empty or skipped); check the path and --text-field."
        raise CliError(msg)
    if note is not None:
        from matryo.sources import is_beir

        whole = where not in (None, DEMO_SOURCE) and is_beir(Path(str(where)))
        cut = cut_note(_run_encoder(db, stored, model), [p.text for p in head], chunked=not whole)
        if cut is not None:
            note(cut)
    with writing(db):
        if read_meta(db) != stored:  # another run wrote the DB meanwhile: check again
            stored = check_db(db, source=source, store=store, busy=False, replace_source=replace_source)
        wanted = _wanted(
            db, stored, model=model, store=store, truncate_dim=truncate_dim, where=where, replace_source=replace_source
        )
        if stored is None or stored.source != wanted.source:
            # a new DB, or an older one adopting its first SOURCE; written before the store files, so a run
            # interrupted in between leaves a DB the same command continues, not a folder it refuses
            write_meta(db, wanted)
        target = open_store(db, wanted)
        repaired = target.repair_duplicates()
        bar = _progress(quiet)
        batches = 0

        def on_batch(_written: int, seen: int) -> None:
            nonlocal batches
            batches += 1
            if bar is not None:
                bar.update(seen - bar.n)
            if after_batch is not None:
                after_batch(batches)

        def chained() -> Iterator[Passage]:
            yield from head
            yield from iterator

        try:
            stats = index_passages(
                target, chained(), batch_size=BATCH_SIZE, on_batch=on_batch, prune=prune, empty_docs=empty_docs
            )
        finally:
            if bar is not None:
                bar.close()
        stats.repaired = repaired
        return stats, wanted, target.count()


Searcher = Callable[[str, int, "float | None"], "list[Hit]"]


def open_search(db: Path, *, latest: bool = False) -> tuple[Searcher, DbMeta, int]:
    """Open a DB folder for two-stage search with the model it was built with.

    Args:
        db: The DB folder.
        latest: Search the DB as it is at each call (what another process indexed since), not as it was when
            opened: for a searcher kept open, such as the ``query>`` prompt.

    Returns:
        ``(search, meta, count)`` where ``search(query, k, rescore_multiplier)`` returns hits, best first, and
        ``count`` is the number of stored passages.

    A Chroma DB is locked as :func:`writing` locks it for as long as the returned searcher lives (waiting up to
    :data:`CHROMA_SEARCH_WAIT` seconds for it), because Chroma's on-disk client must not be open in two
    processes at once; a LanceDB DB can be searched while it is written.

    Raises:
        CliError: If ``db`` is a file or not a matryo DB folder, or (Chroma) another matryo command keeps it.
        StoreFormatError: If the DB's store files are missing (an incomplete copy).
        DimensionMismatchError: If the model now found under the DB's model name has another fingerprint.
    """
    from matryo.errors import StoreFormatError
    from matryo.search import DEFAULT_RESCORE_MULTIPLIER
    from matryo.stores import DbMeta, check_meta, open_store, read_meta

    if db.exists() and not db.is_dir():
        msg = f"--db {db} is a file; expected a DB folder built by `matryo index SOURCE --db FOLDER`."
        raise CliError(msg)
    meta = read_meta(db)
    if meta is None:
        msg = f"{db} is not a matryo DB folder (no matryo.json); build one with `matryo index SOURCE --db {db}`."
        raise CliError(msg)
    encoder = _load_recorded(meta.model, db)
    check_meta(
        meta, DbMeta(meta.store, meta.model, encoder.fingerprint, encoder.dim, meta.truncate_dim), db, writing=False
    )
    lock = None
    if meta.store == "chroma":
        # Chroma's on-disk client is single-process, and a reader compacts and writes its HNSW files too: a
        # search while `matryo index` wrote the DB failed, and could leave a DB on which every later command
        # crashed. So a Chroma search takes the writers' lock, waiting a little for another search.
        busy = (
            f"another matryo command is using {db}, and a Chroma DB cannot be read while another process has it "
            "open; wait for it to finish (an index run) or end its query> prompt, then search again."
        )
        lock = _lock(db, busy, wait=CHROMA_SEARCH_WAIT)
    store = open_store(db, meta, create=False)  # a DB whose store files are gone is incomplete, not empty

    count = store.count()

    gone = (
        f"{db} was deleted, or rebuilt with another store, model or first-pass width (or is being rebuilt), since "
        "this search opened it; run matryo search again."
    )

    def search(query: str, k: int = 10, rescore_multiplier: float | None = None) -> list[Hit]:
        _ = lock  # the lock is held for as long as this searcher lives
        stored = count
        if latest:
            now = read_meta(db)
            if now is None or (now.store, now.fingerprint, now.dim, now.truncate_dim) != (
                meta.store,
                meta.fingerprint,
                meta.dim,
                meta.truncate_dim,
            ):
                raise CliError(gone)
            try:
                store.refresh()
                stored = store.count()
            except StoreFormatError as exc:  # the table went away under the prompt (a rebuild in progress)
                raise CliError(gone) from exc
        k = min(k, max(stored, 1))  # no more hits than passages (a -k of 10**20 overflowed in the store)
        return store.search(query, k, DEFAULT_RESCORE_MULTIPLIER if rescore_multiplier is None else rescore_multiplier)

    return search, meta, count


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters shown as U+FFFD, so printing it cannot rewrite the terminal."""
    return _CONTROLS.sub("\ufffd", text)


def print_hits(hits: list[Hit], *, width: int = 120) -> None:
    """Print hits as a table: rank, score, id and the start of the text.

    An id longer than 40 characters keeps its end (``...infrastructure/deploy.md#3``): the file name and chunk
    number are what tell hits apart (``--json`` prints whole ids). Control characters left in a text or an id
    (a terminal escape sequence in a document, a newline in a file name) are shown as U+FFFD, so a hit cannot
    rewrite the terminal or break the table.
    """
    ids = [printable(hit.id) for hit in hits]
    id_width = min(max([len(i) for i in ids] + [2]), 40)
    print(f"{'#':>3}  {'score':>6}  {'id':<{id_width}}  text")
    for rank, (hit, hit_id) in enumerate(zip(hits, ids, strict=True), 1):
        text = printable(" ".join(hit.text.split()))
        room = max(20, width - id_width - 16)
        text = text if len(text) <= room else text[: room - 3] + "..."
        shown = hit_id if len(hit_id) <= id_width else "..." + hit_id[-(id_width - 3) :]
        print(f"{rank:>3}  {hit.score:6.3f}  {shown:<{id_width}}  {text}")
