"""Read what ``matryo index`` indexes: text folders, JSONL/CSV/Parquet tables and BEIR folders.

Every source becomes a stream of :class:`Passage` objects, each with a stable id and a content hash, so
indexing can be incremental (a passage whose id and hash are already stored is skipped).

* **A folder of ``.txt``/``.md`` files** (searched recursively, in sorted order). Each file is split into
  passages of at most ``chunk_size`` words: paragraphs (separated by blank lines) are packed together
  until the next one would overflow, and a paragraph longer than ``chunk_size`` is cut into pieces of
  ``chunk_size`` words. Ids are ``relative/path.md#0``, ``#1``, ... (no suffix when the file is one passage).
* **A ``.jsonl``/``.csv``/``.parquet`` file**: one document per row, text from ``text_field``, id from
  ``_id`` or ``id`` when present (else the row number); long texts are chunked as above.
* **A BEIR folder** (holding ``corpus.jsonl`` or ``corpus.jsonl.gz``): one passage per document,
  text ``title + " " + text`` and the corpus id as the passage id (so ``matryo eval`` qrels match).

Bad files never stop a run: a file that cannot be read, or that is not valid UTF-8, is **skipped** and
named in a warning (``warn`` callback). Nothing is decoded with replacement characters.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matryo.errors import MatryoError, missing_extra

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "TEXT_SUFFIXES",
    "Passage",
    "SourceError",
    "chunk_text",
    "content_hash",
    "read_source",
]

DEFAULT_CHUNK_SIZE = 200
"""Maximum words per passage (whitespace-separated) when a document is chunked."""

TEXT_SUFFIXES = (".txt", ".md")
"""File types read from a folder source."""

TABLE_SUFFIXES = (".jsonl", ".csv", ".parquet")

Warn = Callable[[str], None]


class SourceError(MatryoError, ValueError):
    """A source that cannot be indexed at all (missing, empty, wrong format, no text column)."""


@dataclass(frozen=True)
class Passage:
    """One unit of indexing.

    Attributes:
        id: Stable id (``document`` or ``document#chunk``).
        doc: The id of the document the passage comes from.
        text: The passage text.
        hash: :func:`content_hash` of ``text``.
    """

    id: str
    doc: str
    text: str
    hash: str


def content_hash(text: str) -> str:
    """Return a short hash of a text (blake2b, 16 hex digits)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def chunk_text(text: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[str]:
    """Split a text into passages of at most ``chunk_size`` words, packing whole paragraphs.

    Args:
        text: The text.
        chunk_size: Maximum words per passage (``>= 1``).

    Returns:
        The passages (whitespace inside each is collapsed to single spaces); empty for a blank text.
    """
    chunks: list[str] = []
    current: list[str] = []
    for paragraph in text.split("\n\n"):
        words = paragraph.split()
        if current and len(current) + len(words) > chunk_size:
            chunks.append(" ".join(current))
            current = []
        while len(words) > chunk_size:
            chunks.append(" ".join(words[:chunk_size]))
            words = words[chunk_size:]
        current.extend(words)
    if current:
        chunks.append(" ".join(current))
    return chunks


def _passages(doc: str, text: str, chunk_size: int) -> Iterator[Passage]:
    chunks = chunk_text(text, chunk_size)
    for i, chunk in enumerate(chunks):
        pid = doc if len(chunks) == 1 else f"{doc}#{i}"
        yield Passage(pid, doc, chunk, content_hash(chunk))


def _read_utf8(path: Path, warn: Warn) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        warn(f"skipped {path}: cannot read it ({exc.strerror or exc})")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        warn(f"skipped {path}: not UTF-8 (byte {exc.start}); convert it with e.g. `iconv -t utf-8`")
        return None


def _folder(root: Path, chunk_size: int, warn: Warn) -> Iterator[Passage]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES and p.is_file())
    if not files:
        msg = f"{root} holds no {'/'.join(TEXT_SUFFIXES)} files; point SOURCE at a folder of text files or a table."
        raise SourceError(msg)
    for path in files:
        text = _read_utf8(path, warn)
        if text is not None:
            yield from _passages(path.relative_to(root).as_posix(), text, chunk_size)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            name, install = "pyarrow", "pip install pyarrow"
            raise missing_extra(name, install, "Reading Parquet files") from exc
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)
    else:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        msg = f"{path} line {number} is not valid JSON ({exc.msg}); expected one object per line."
                        raise SourceError(msg) from exc
                    if not isinstance(row, dict):
                        msg = f"{path} line {number} is not a JSON object; expected one object per line."
                        raise SourceError(msg)
                    yield row


def _table(path: Path, text_field: str, chunk_size: int) -> Iterator[Passage]:
    empty = True
    try:
        for number, row in enumerate(_rows(path)):
            if text_field not in row:
                msg = f"{path} has no {text_field!r} field (found {sorted(row)[:10]}); pass --text-field NAME."
                raise SourceError(msg)
            empty = False
            doc = row.get("_id", row.get("id"))
            text = row[text_field]
            yield from _passages(str(number if doc is None else doc), "" if text is None else str(text), chunk_size)
    except UnicodeDecodeError as exc:
        msg = f"{path} is not UTF-8 (byte {exc.start}); convert it with e.g. `iconv -t utf-8`."
        raise SourceError(msg) from exc
    if empty:
        msg = f"{path} holds no rows; nothing to index."
        raise SourceError(msg)


def _beir(root: Path) -> Iterator[Passage]:
    path = root / "corpus.jsonl.gz" if (root / "corpus.jsonl.gz").is_file() else root / "corpus.jsonl"
    for row in _rows(path):
        text = (str(row.get("title") or "") + " " + str(row.get("text") or "")).strip()
        yield Passage(str(row["_id"]), str(row["_id"]), text, content_hash(text))


def read_source(
    source: str | os.PathLike[str],
    *,
    text_field: str = "text",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    warn: Warn | None = None,
) -> Iterator[Passage]:
    """Stream the passages of a source (see the module docstring for the formats).

    Args:
        source: A folder of text files, a BEIR folder, or a ``.jsonl``/``.csv``/``.parquet`` file.
        text_field: Column holding the text in a table source.
        chunk_size: Maximum words per passage.
        warn: Called with a one-line message for every skipped file (default: ignore).

    Yields:
        Passages in a deterministic order; empty texts produce no passage.

    Raises:
        SourceError: If the source does not exist, is empty, or has an unknown format or no text column.
    """
    if chunk_size < 1:
        msg = f"--chunk-size must be >= 1 word, got {chunk_size}."
        raise SourceError(msg)
    path = Path(source).expanduser()
    if not path.exists():
        msg = f"SOURCE {str(path)!r} does not exist; pass a folder of .txt/.md files, a BEIR folder or a table file."
        raise SourceError(msg)
    report: Warn = warn if warn is not None else (lambda _message: None)
    if path.is_dir():
        if (path / "corpus.jsonl").is_file() or (path / "corpus.jsonl.gz").is_file():
            return _beir(path)
        return _folder(path, chunk_size, report)
    name = path.name.lower()
    if name.endswith(TABLE_SUFFIXES) or name.endswith(".jsonl.gz"):
        return _table(path, text_field, chunk_size)
    if name.endswith(TEXT_SUFFIXES):
        text = _read_utf8(path, report)
        return iter(()) if text is None else _passages(path.name, text, chunk_size)
    msg = f"Cannot index {path.name!r}: expected a folder, .txt/.md, .jsonl, .csv or .parquet."
    raise SourceError(msg)


def batched(items: Iterable[Passage], size: int) -> Iterator[list[Passage]]:
    """Group passages into lists of ``size`` (the last may be shorter)."""
    batch: list[Passage] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
