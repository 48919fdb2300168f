r"""Read what ``matryo index`` indexes: text folders, JSONL/CSV/Parquet tables and BEIR folders.

Every source becomes a stream of :class:`Passage` objects, each with a stable id and a content hash, so
indexing can be incremental (a passage whose id and hash are already stored is skipped).

* **A folder of ``.txt``/``.md``/``.rst`` files** (searched recursively, in sorted order; hidden files and folders,
  whose names start with ``.`` such as ``.git`` or ``.venv``, are left out, as are ``exclude`` globs). Each
  file is split into passages of at most ``chunk_size`` words: paragraphs (separated by blank lines) are packed together
  until the next one would overflow, and a paragraph longer than ``chunk_size`` is cut into pieces of
  ``chunk_size`` words. A passage also holds at most ``chunk_size * 20`` characters, so text without
  whitespace (base64, minified lines) is cut too. Ids are ``relative/path.md#0``, ``#1``, ... (no suffix
  when the file is one passage).
* **A ``.jsonl``/``.csv``/``.parquet`` file**: one document per row, text from ``text_field``, id from
  ``_id`` or ``id`` when present and not blank (else the row number); long texts are chunked as above. With a
  ``title_field``, every passage of a row starts with its title (on one line, cut to a quarter of ``chunk_size``)
  and a blank line, the title's words counting toward ``chunk_size``, so each passage says what document it comes
  from; a row with a title and no text is one passage of its title.
* **A BEIR folder** (holding ``corpus.jsonl`` or ``corpus.jsonl.gz``): one passage per document,
  text ``title + " " + text`` and the corpus id as the passage id (so ``matryo eval`` qrels match).

In a folder source, bad files never stop a run: a file that cannot be read, that is not valid UTF-8, or that
is a broken symbolic link is **skipped** and named in a warning (``warn`` callback); symbolic links to folders
are not followed, a symbolic link to a file the folder indexes under its own name is skipped (so one text is
not stored under two ids), and files of other types are counted by suffix (each a ``note``). A table or BEIR
file with a bad line (not UTF-8, not valid JSON/CSV, a truncated ``.gz``, a row without the text field) stops
the run with a :class:`SourceError` naming the file and line. A document id repeated within a table is a
``note`` naming both lines: the first row wins, later ones are skipped (a row without an id is named by its
row number, so it can clash with an explicit id; the note says so). Documents that yield no passage (empty
text) are reported to ``on_empty``, so an index can drop the passages they had. Nothing is decoded with
replacement characters; a UTF-8 byte-order mark is ignored. A file whose *name* is not UTF-8 (e.g. Latin-1
from an old archive) is skipped with a warning, as it cannot be an id. A JSON string may hold a lone UTF-16
surrogate (``"\ud83d"``, half of an emoji: valid JSON, not text): in a text it becomes U+FFFD with a note
naming the line; in an id it stops the run with a :class:`SourceError`, since a changed id would no longer
match the caller's records.
"""

from __future__ import annotations

import codecs
import csv
import errno
import fnmatch
import gzip
import hashlib
import json
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matryo.errors import MatryoError, missing_extra
from matryo.formats import expand_user

__all__ = [
    "CHARS_PER_WORD",
    "DEFAULT_CHUNK_SIZE",
    "TEXT_SUFFIXES",
    "Passage",
    "SourceError",
    "chunk_text",
    "content_hash",
    "is_beir",
    "read_jsonl",
    "read_lines",
    "read_source",
]

DEFAULT_CHUNK_SIZE = 200
"""Maximum words per passage (whitespace-separated) when a document is chunked."""

CHARS_PER_WORD = 20
"""A passage holds at most ``chunk_size * CHARS_PER_WORD`` characters (4000 at the default chunk size)."""

TEXT_SUFFIXES = (".txt", ".md", ".rst")
"""File types read from a folder source."""

_TITLE_LOOKAHEAD = 1000  # rows read to find the --title-field column before calling its name misspelt

TABLE_SUFFIXES = (".jsonl", ".csv", ".parquet")

Warn = Callable[[str], None]
OnEmpty = Callable[[str], None]

_CSV_FIELD_LIMIT = 2**31 - 1
"""csv's default field limit (128 KiB) is smaller than a long document; this is the largest a C long allows."""

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
"""A blank line, whatever spaces or tabs it holds (in a text whose line endings are ``\n``)."""
_WORD = re.compile(r"\S+")
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")

_SURROGATE = re.compile("[\ud800-\udfff]")
"""A UTF-16 surrogate code point: in a Python string only a lone one (JSON's ``"\\ud83d"``, half an emoji).

The same pattern as :data:`matryo.texts.SURROGATE`, kept here because this module stays free of numpy and
tokenizers (``matryo --help`` imports it)."""

_MAX_REPEAT_NOTES = 10
"""Repeated document ids named one by one per file; the rest are counted in one closing note."""


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
    r"""Split a text into passages of at most ``chunk_size`` words, packing whole paragraphs.

    Paragraphs are separated by a blank line (one holding only spaces or tabs counts, with ``\n``, ``\r\n`` or
    ``\r`` line endings); a paragraph longer than ``chunk_size`` words is split between words.

    A passage also holds at most ``chunk_size * CHARS_PER_WORD`` characters, and a "word" longer than that
    (base64, a minified line: text without whitespace) is cut into pieces of that length, so such text is
    chunked too instead of becoming one huge passage. Ordinary prose (words well under 20 characters on
    average) is split by words only.

    Args:
        text: The text.
        chunk_size: Maximum words per passage (``>= 1``).

    Returns:
        The passages, each a stretch of the text as it is (line breaks, indentation and blank lines inside it
        kept, so code and lists stay readable; line endings as ``\n``) from its first word to its last; empty
        for a blank text.
    """
    max_chars = chunk_size * CHARS_PER_WORD
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    chunks: list[str] = []
    first = last = words = 0  # the current passage is text[first:last], holding ``words`` words (0: none yet)

    def flush() -> None:
        nonlocal words
        chunks.append(text[first:last])
        words = 0

    starts = [0, *(m.end() for m in _PARAGRAPH_BREAK.finditer(text))]
    ends = [*(m.start() for m in _PARAGRAPH_BREAK.finditer(text)), len(text)]
    for paragraph_start, paragraph_end in zip(starts, ends, strict=True):
        pieces = [
            (i, min(i + max_chars, m.end()))
            for m in _WORD.finditer(text, paragraph_start, paragraph_end)
            for i in range(m.start(), m.end(), max_chars)
        ]
        if not pieces:
            continue
        if words and (words + len(pieces) > chunk_size or pieces[-1][1] - first > max_chars):
            flush()  # the paragraph starts a passage of its own
        for piece_start, piece_end in pieces:
            if words and (words == chunk_size or piece_end - first > max_chars):
                flush()
            if not words:
                first = piece_start
            last = piece_end
            words += 1
    if words:
        flush()
    return chunks


def _passages(doc: str, text: str, chunk_size: int, on_empty: OnEmpty, title: str = "") -> Iterator[Passage]:
    title = _short_title(title, chunk_size)
    # the title and its blank line count toward the caps, in words and in characters (as words of CHARS_PER_WORD);
    # below --chunk-size 4 a titled passage still holds one word of text
    cost = max(len(title.split()), -(-(len(title) + 2) // CHARS_PER_WORD)) if title else 0
    chunks = chunk_text(text, max(1, chunk_size - cost))
    if title:
        chunks = [f"{title}\n\n{chunk}" for chunk in chunks] or [title]
    if not chunks:
        on_empty(doc)
    for i, chunk in enumerate(chunks):
        pid = doc if len(chunks) == 1 else f"{doc}#{i}"
        yield Passage(pid, doc, chunk, content_hash(chunk))


def _short_title(title: str, chunk_size: int) -> str:
    """``title`` on one line, cut to a quarter of ``chunk_size`` (words and characters) with ``...`` when longer.

    Every passage of a row repeats its title: a longer one would crowd out the text it heads (with a model that
    truncates, a passage of title alone).
    """
    words = title.split()
    limit = max(1, chunk_size // 4)
    chars = limit * CHARS_PER_WORD
    short = " ".join(words)
    if limit == 1:  # room for one word only: the first, no "..."
        short = words[0][:chars] if words else ""
    elif len(words) > limit or len(short) > chars:  # "..." is one of the limit's words
        short = " ".join(words[: limit - 1])[: chars - 4].rstrip() + " ..."
    return short


def _read_utf8(path: Path, warn: Warn) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        warn(f"skipped {path}: cannot read it ({exc.strerror or exc})")
        return None
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is not text (a file holding only one is empty)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        warn(f"skipped {path}: not UTF-8 (line {line}); convert it with e.g. `iconv -t utf-8`")
        return None


class _Exclusions:
    """Hidden names (``.git``, ``.venv``) and names or paths matching an ``--exclude`` glob; remembers which matched.

    A glob is matched against a file's name and its path relative to SOURCE. A glob that starts with ``./`` or with
    SOURCE's path as typed from the current folder or in full (``docs/drafts`` for SOURCE ``docs``, as shell
    completion types it) is anchored: the rest is matched against the path relative to SOURCE only. A folder also
    matches with a trailing ``/`` (``sub/``; as in .gitignore, such a glob matches folders only).
    """

    def __init__(self, root: Path, globs: tuple[str, ...]) -> None:
        self.globs = globs
        typed = os.path.normpath(root).replace(os.sep, "/")
        prefixes = (
            [f"{typed}/", f"{root.absolute().as_posix()}/"] if typed != "." else [f"{root.absolute().as_posix()}/"]
        )
        # a glob that starts with ./ or SOURCE's path (as typed, or in full) is anchored: it is matched against the
        # path relative to SOURCE only, so docs/drafts leaves out SOURCE's drafts folder, not every drafts folder
        self._anchored: list[str | None] = []
        for glob in globs:
            anchored = glob[2:] if glob.startswith("./") and len(glob) > 2 else None
            given = glob if anchored is None else anchored
            for prefix in prefixes:
                if given.startswith(prefix) and len(given) > len(prefix):
                    anchored = given[len(prefix) :]
                    break
            self._anchored.append(anchored)
        self.matched: set[str] = set()

    def _hit(self, glob: str, anchored: str | None, name: str, rel: str, folder: bool) -> bool:
        if anchored is not None:
            paths = (rel, f"{rel}/") if folder else (rel,)
            return any(fnmatch.fnmatchcase(path, anchored) for path in paths)
        names = (name, rel, f"{name}/", f"{rel}/") if folder else (name, rel)
        return any(fnmatch.fnmatchcase(n, glob) for n in names)

    def __call__(self, name: str, rel: str, *, folder: bool = False) -> bool:
        hits = [
            g
            for g, anchored in zip(self.globs, self._anchored, strict=True)
            if self._hit(g, anchored, name, rel, folder)
        ]
        self.matched.update(hits)
        return name.startswith(".") or bool(hits)

    def unmatched(self) -> list[str]:
        return [g for g in dict.fromkeys(self.globs) if g not in self.matched]


def _folder(
    root: Path, chunk_size: int, exclude: tuple[str, ...], warn: Warn, note: Warn, on_empty: OnEmpty
) -> Iterator[Passage]:
    files: list[Path] = []
    other: Counter[str] = Counter()  # files left out for their suffix, by suffix
    excluded = _Exclusions(root, exclude)

    def unlistable(exc: OSError) -> None:  # through warn, so --prune is not applied: its files were not seen
        warn(f"skipped {exc.filename}: cannot list the folder ({exc.strerror}); fix its permissions or mount")

    # symbolic links to folders are listed in ``dirs``, not followed; a folder that cannot be listed is warned about
    for top, dirs, names in os.walk(root, onerror=unlistable):
        here = Path(top)
        rel_top = here.relative_to(root).as_posix()
        prefix = "" if rel_top == "." else f"{rel_top}/"
        kept = []
        for name in dirs:
            path = here / name
            if excluded(name, prefix + name, folder=True):
                continue  # nothing inside is read or warned about
            if path.is_symlink():
                note(
                    f"{path} is a symbolic link to a folder and is not followed; put the folder itself here to index it"
                )
            else:
                kept.append(name)
        dirs[:] = kept
        for name in names:
            path = here / name
            if excluded(name, prefix + name):  # globs first: counted
                continue
            if path.suffix.lower() not in TEXT_SUFFIXES:
                other[path.suffix.lower() or "(none)"] += 1
                continue
            if path.is_file() or (path.is_symlink() and not path.exists()):
                files.append(path)  # a broken link is reported as skipped below, so --prune keeps what the DB holds
    if other:
        common = sorted(other.items(), key=lambda item: (-item[1], item[0]))
        counts = ", ".join(f"{suffix} {n}" for suffix, n in common[:5]) + (", ..." if len(common) > 5 else "")
        note(
            f"{sum(other.values())} file(s) in {root} are not {'/'.join(TEXT_SUFFIXES)} files and were not read "
            f"({counts}); to index other text, give matryo index a .jsonl/.csv table of id and text as SOURCE"
        )
    own = {path.resolve() for path in files if not path.is_symlink()}
    twins = {path for path in files if path.is_symlink() and path.exists() and path.resolve() in own}
    if twins:  # their files are indexed under their own names: the same text twice would fill the top hits
        first = min(twins)
        target = first.resolve().relative_to(root.resolve()).as_posix()
        more = f" (and {len(twins) - 1} more such link(s))" if len(twins) > 1 else ""
        note(
            f"{first} is a symbolic link to {target}, which is indexed under its own name{more}; such links are skipped"
        )
        files = [path for path in files if path not in twins]
    for glob in excluded.unmatched():  # a typo or a path from elsewhere would index what was meant to stay out
        note(
            f"--exclude {glob!r} matched no file or folder in {root}; globs are matched against names and paths "
            "relative to SOURCE (e.g. 'drafts', 'drafts/', 'notes/*.md'): check it"
        )
    if not files:
        msg = (
            f"{root} holds no {'/'.join(TEXT_SUFFIXES)} files (hidden files and folders, whose names start with "
            "'.', and --exclude matches are not read); point SOURCE at a folder of text files or a table."
        )
        raise SourceError(msg)
    for path in sorted(files):
        if not path.exists():
            warn(f"skipped {path}: {_why_missing(path)}")
            continue
        rel = path.relative_to(root).as_posix()
        if not _utf8_name(rel, path, warn):
            continue
        text = _read_utf8(path, warn)
        if text is not None:
            yield from _passages(rel, text, chunk_size, on_empty)


def _why_missing(path: Path) -> str:
    """Why a listed file cannot be opened: a broken link, a link loop, or a file removed since the folder was listed."""
    try:
        target = os.readlink(path)
    except OSError:  # not a link (or no longer one): the file itself went away while this run went on
        return "it was deleted or renamed while this run read the folder; the next run indexes the folder as it is then"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symbolic link loop (to {target}, which leads back to it); fix or delete the link"
    return f"broken symbolic link (to {target}); fix or delete the link"


def _utf8_name(name: str, path: Path, warn: Warn) -> bool:
    """Whether a file's name (its future id) is UTF-8; if not, warn that it is skipped."""
    if _SURROGATE.search(name) is None:
        return True
    shown = os.fsencode(path).decode("utf-8", "backslashreplace")
    warn(
        f"skipped {shown}: its name is not UTF-8 (so it cannot be an id); rename it, e.g. "
        "`convmv -f latin1 -t utf8 --notest FILE`"
    )
    return False


class SurrogateChecks:
    """Lone surrogates in a table's JSON strings: U+FFFD in a text (with a note), an error in an id.

    Shared by ``matryo index`` (this module) and ``matryo eval`` (:mod:`matryo.evaluation`); ``use`` says what
    happens to the text in the note ("indexed", "evaluated").
    """

    def __init__(self, path: Path, note: Warn, use: str = "indexed") -> None:
        self._path, self._note, self._use = path, note, use
        self.count = 0

    def text(self, text: str, where: str) -> str:
        found = _SURROGATE.search(text)
        if found is None:
            return text
        self.count += 1
        if self.count == 1:  # the first one is named, the rest counted in close()
            self._note(
                f"{self._path} {where}: the text holds a lone UTF-16 surrogate ({found.group()!a}, half of a "
                f"character such as an emoji: valid JSON, but not text); it is {self._use} with U+FFFD in its place. "
                "Repair the text in the file (e.g. re-export it from the original UTF-8 source) to silence this."
            )
        return _SURROGATE.sub("\ufffd", text)

    def doc(self, doc: str, where: str) -> str:
        found = _SURROGATE.search(doc)
        if found is not None:
            msg = (
                f"{self._path} {where}: the id {doc!a} holds a lone UTF-16 surrogate ({found.group()!a}, half of a "
                "character such as an emoji), which is not text; fix the id in the file."
            )
            raise SourceError(msg)
        return doc

    def close(self) -> None:
        if self.count > 1:
            self._note(f"{self._path}: {self.count} texts in all held lone surrogates (replaced with U+FFFD).")


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` of a UTF-8 text file (gzipped when named ``.gz``), without a BOM.

    Raises:
        SourceError: If a line is not UTF-8 (named by its number) or the ``.gz`` file is damaged or truncated.
    """
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    msg = (
                        f"{path} line {number} is not UTF-8 (byte {exc.start + 1} of the line); convert the file "
                        "with e.g. `iconv -t utf-8`."
                    )
                    raise SourceError(msg) from exc
                yield number, line
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        msg = f"{path} is a damaged or truncated gzip file ({exc}); download or compress it again."
        raise SourceError(msg) from exc


def _rows(path: Path, text_field: str = "text", title_field: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, row)`` for every row of a table file, ``where`` being ``"line N"`` or ``"row N"``.

    ``text_field`` is the column a CSV file must give every row, ``title_field`` one more it reads (see
    :func:`_csv_rows`).
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            name, install = "pyarrow", "pip install pyarrow  (or 'matryo[parquet]')"
            raise missing_extra(name, install, "Reading Parquet files", cause=exc) from exc
        number = 0
        try:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
                for row in batch.to_pylist():
                    number += 1
                    yield f"row {number}", row
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
            msg = f"{path} is not a readable Parquet file (after {number} rows: {exc}); write or copy it again."
            raise SourceError(msg) from exc
    elif suffix == ".csv":
        yield from _csv_rows(path, text_field, title_field)
    else:
        for number, row in read_jsonl(path):
            yield f"line {number}", row


def _csv_rows(
    path: Path, text_field: str = "text", title_field: str | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a CSV file, each named by the line where its record starts (a quoted field may span lines).

    ``strict=True`` makes a quote the csv module cannot close (a stray ``"`` that would otherwise swallow
    every following line into one field) an error naming the line where that record starts. Text is never lost
    without an error: a header of one column holding ``;`` or a tab (another separator), a header naming
    ``text_field``, ``title_field``, ``id`` or ``_id`` twice, a row with non-empty fields past the header (an
    unquoted comma) and a row too short to reach ``text_field`` (a record cut by a line break) are refused.
    """
    record: list[int] = []  # numbers of the non-blank lines the record being read has consumed

    def lines() -> Iterator[str]:
        # A lone \r ends a line too, as in a file opened with newline="" (what the csv module expects).
        for number, line in read_lines(path):
            for piece in _LONE_CR.split(line):
                if piece:
                    if piece.strip("\r\n") or record:
                        record.append(number)
                    yield piece

    reader = csv.reader(lines(), strict=True)
    limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    start = 1
    try:
        header = next(reader, [])  # read first, so the first record is numbered by its own line
        if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            msg = (
                f"{path} line 1: the header is one column {header[0]!r}; matryo reads comma-separated CSV. "
                "Export the table with commas as separators (or as .jsonl)."
            )
            raise SourceError(msg)
        # the columns matryo reads; a repeated one would be read from its last copy
        read = (text_field, "id", "_id") if title_field is None else (text_field, title_field, "id", "_id")
        if title_field is not None and header and title_field not in header:  # an empty file: "holds no rows"
            msg = (
                f"{path} line 1: the header has no {title_field!r} column (found {header[:10]}); pass --title-field "
                "with the title column's name, or drop it."
            )
            raise SourceError(msg)
        repeated = sorted({name for name in header if name in read and header.count(name) > 1})
        if repeated:
            msg = (
                f"{path} line 1: the header names the column(s) {repeated} more than once, so all but the last "
                "would be lost; rename them."
            )
            raise SourceError(msg)
        reach = header.index(text_field) + 1 if text_field in header else 0  # fields a row needs to hold its text
        while True:
            record.clear()
            try:
                values = next(reader)
            except StopIteration:
                return
            if not values:  # a blank line
                continue
            start = record[0] if record else reader.line_num
            # text past the header, or under a column without a name (Excel's trailing empty columns): an unquoted
            # comma cut a text there; empty ones are a trailing comma
            spilled = [v for i, v in enumerate(values) if (i >= len(header) or not header[i]) and v.strip()]
            if spilled:
                msg = (
                    f"{path} line {start} has text in {len(values) - len(header)} field(s) past the header or "
                    "under a column without a name: a comma inside a text would cut it there. Quote that field "
                    '("a, b"), or remove the extra fields.'
                    if len(values) > len(header)
                    else f"{path} line {start} has text under a column without a name ({spilled[0]!r:.40}): a comma "
                    'inside a text would cut it there. Quote that field ("a, b"), or name the column.'
                )
                raise SourceError(msg)
            if len(values) < reach:
                msg = (
                    f"{path} line {start} has fewer fields than the header and no {text_field!r} field: a record "
                    "cut by a line break (this one, or the one before it, continued here)? Quote a text holding "
                    "line breaks in double quotes, or fill in the row."
                )
                raise SourceError(msg)
            # a short row's missing trailing fields are left out; a repeated name keeps its last value (as DictReader)
            row = {name: value for name, value in zip(header, values, strict=False) if name}
            if title_field in header:  # a trailing empty title is often left off with its comma
                row.setdefault(title_field, "")
            yield f"line {start}", row
    except csv.Error as exc:
        start = record[0] if record else reader.line_num
        msg = (
            f"{path} line {start} is not valid CSV ({exc}); fix or remove that line (a field that opens a quote "
            'must close it; write a quote inside a quoted field as "").'
        )
        raise SourceError(msg) from exc
    finally:
        csv.field_size_limit(limit)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for every non-blank line of a JSON-lines file (gzipped when ``.gz``).

    Raises:
        SourceError: If a line is not UTF-8 or not a JSON object, or the ``.gz`` file is truncated (the
            message names the file and line).
    """
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = f"{path} line {number} is not valid JSON ({exc.msg}); expected one object per line."
            raise SourceError(msg) from exc
        if not isinstance(row, dict):
            msg = f"{path} line {number} is not a JSON object; expected one object per line."
            raise SourceError(msg)
        yield number, row


def _plain(value: Any, path: Path, where: str, field: str, *, is_id: bool = False) -> Any:  # noqa: ANN401
    """A table value as matryo reads it: UTF-8 bytes (a Parquet ``binary`` column) as text, NaN as missing.

    An id whose bytes are not printable UTF-8 text (a binary UUID or hash) is written in hex after ``0x``.

    Raises:
        SourceError: If a text's bytes are not UTF-8.
    """
    if isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            if is_id:
                return "0x" + bytes(value).hex()
            msg = f"{path} {where}: the {field!r} field holds bytes that are not UTF-8 text ({exc.reason}); fix it."
            raise SourceError(msg) from exc
        return text if text.isprintable() or not is_id else "0x" + bytes(value).hex()
    if isinstance(value, float) and value != value:  # NaN: a missing value (pandas writes it for one)
        return None
    return value


def _row_id(row: dict[str, Any], fields: tuple[str, ...], path: Path, where: str) -> str | None:
    """The first of ``fields`` that is present and not blank (``None``, NaN, ``""`` and spaces count as missing)."""
    for field in fields:
        value = _plain(row.get(field), path, where, field, is_id=True)
        if value is not None and str(value).strip():
            return str(value)
    return None


class _Repeats:
    """Finds document ids used twice in one file: the first row wins, later ones are skipped with a note.

    A row without an id is named by its row number (counted from 0), which can equal another row's explicit
    id; the note then says so, rather than blaming a repeated id the file does not hold.
    """

    def __init__(self, path: Path, note: Warn) -> None:
        self._path, self._note = path, note
        self._first: dict[str, tuple[str, bool]] = {}
        self.count = 0

    def repeated(self, doc: str, where: str, *, numbered: bool = False) -> bool:
        """Whether ``doc`` was used before (``numbered``: ``doc`` is the row number of a row without an id)."""
        first, first_numbered = self._first.setdefault(doc, (where, numbered))
        if first == where:
            return False
        self.count += 1
        if self.count <= _MAX_REPEAT_NOTES:
            if numbered:
                what = f"has no id, so it is named by its row number {doc!r} (counted from 0), which {first} uses"
            elif first_numbered:
                what = f"uses document id {doc!r}, which {first} already has as its row number (that row has no id)"
            else:
                what = f"uses document id {doc!r}, which {first} already uses"
            self._note(
                f"{self._path} {where} {what}; this row is skipped (the first one is indexed). "
                "Give every row its own id."
            )
        return True

    def close(self) -> None:
        if self.count > _MAX_REPEAT_NOTES:
            self._note(f"{self._path}: {self.count} rows in all repeat an earlier document id and were skipped.")


def _table(
    path: Path, text_field: str, title_field: str | None, chunk_size: int, note: Warn, on_empty: OnEmpty
) -> Iterator[Passage]:
    empty = True
    numbered = False  # a row without an id was noted
    repeats = _Repeats(path, note)
    surrogates = SurrogateChecks(path, note)
    rows = _rows(path, text_field, title_field)
    for number, (where, row) in enumerate(rows if title_field is None else _named_somewhere(rows, title_field, path)):
        if text_field not in row:
            found = sorted(map(str, row))[:10]
            if number == 0:
                msg = f"{path} {where} has no {text_field!r} field (found {found}); pass --text-field NAME."
            else:
                msg = (
                    f"{path} {where} has no {text_field!r} field (found {found}), unlike the rows before it; add it "
                    '(null or "" for a row without text) or remove the row.'
                )
            raise SourceError(msg)
        empty = False
        explicit = _row_id(row, ("_id", "id"), path, where)
        doc = surrogates.doc(explicit, where) if explicit else str(number)
        if explicit is None and not numbered:
            numbered = True
            note(
                f"{path} {where} has no _id or id, so its rows are named by row number (counted from 0): inserting "
                "or deleting a row renames every row after it. Add an id column, or re-index with --prune."
            )
        if repeats.repeated(doc, where, numbered=explicit is None):
            continue
        text = _text_value(row, text_field, path, where, "--text-field")
        title = "" if title_field is None else _text_value(row, title_field, path, where, "--title-field").strip()
        yield from _passages(
            doc, surrogates.text(text, where), chunk_size, on_empty, surrogates.text(title, where) if title else ""
        )
    repeats.close()
    surrogates.close()
    if empty:
        msg = f"{path} holds no rows; nothing to index."
        raise SourceError(msg)


def _named_somewhere(
    rows: Iterator[tuple[str, dict[str, Any]]], field: str, path: Path
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``rows``, once one of the first :data:`_TITLE_LOOKAHEAD` has ``field`` (a row may leave out its title).

    When none has it, the name is taken as misspelt: a :class:`SourceError`, before any row is used.
    """
    seen: list[tuple[str, dict[str, Any]]] = []
    for item in rows:
        seen.append(item)
        if field in item[1]:
            yield from seen
            yield from rows
            return
        if len(seen) == _TITLE_LOOKAHEAD:
            break
    if seen:
        where, first = seen[0]
        found = sorted(map(str, first))[:10]
        what = f"none of its first {len(seen)} rows has a" if len(seen) > 1 else "its one row has no"
        msg = (
            f"{path}: {what} {field!r} field ({where} has {found}); pass --title-field with the title column's "
            "name, or drop it."
        )
        raise SourceError(msg)


def _text_value(row: dict[str, Any], field: str, path: Path, where: str, option: str) -> str:
    """The text of ``row[field]`` (a missing field or null: ``""``; a number as written), or a :class:`SourceError`."""
    value = _plain(row.get(field), path, where, field)
    if isinstance(value, (dict, list, bool)):
        msg = (
            f"{path} {where}: the {field!r} field is {_kind(value)}, not text; expected a string (or null "
            f"for a row without one). Pass {option} NAME for the field that holds it."
        )
        raise SourceError(msg)
    return "" if value is None else str(value)


def _kind(value: object) -> str:
    """How a non-text value reads in an error message."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    return "an object" if isinstance(value, dict) else "a list"


def _beir(root: Path, note: Warn, on_empty: OnEmpty) -> Iterator[Passage]:
    path = root / "corpus.jsonl.gz" if (root / "corpus.jsonl.gz").is_file() else root / "corpus.jsonl"
    repeats = _Repeats(path, note)
    surrogates = SurrogateChecks(path, note)
    for where, row in _rows(path):
        doc = _row_id(row, ("_id",), path, where)
        if doc is None:
            msg = f"{path} {where} has no '_id'; every row of a BEIR corpus needs a non-empty '_id'."
            raise SourceError(msg)
        doc = surrogates.doc(doc, where)
        if repeats.repeated(doc, where):
            continue
        text = surrogates.text((str(row.get("title") or "") + " " + str(row.get("text") or "")).strip(), where)
        if not text:
            on_empty(doc)
            continue
        yield Passage(doc, doc, text, content_hash(text))
    repeats.close()
    surrogates.close()


def is_beir(path: Path) -> bool:
    """Whether ``path`` is a BEIR folder (it holds ``corpus.jsonl`` or ``corpus.jsonl.gz``)."""
    return path.is_dir() and ((path / "corpus.jsonl").is_file() or (path / "corpus.jsonl.gz").is_file())


def read_source(
    source: str | os.PathLike[str],
    *,
    text_field: str | None = None,
    title_field: str | None = None,
    chunk_size: int | None = None,
    exclude: Iterable[str] = (),
    warn: Warn | None = None,
    note: Warn | None = None,
    on_empty: OnEmpty | None = None,
) -> Iterator[Passage]:
    """Stream the passages of a source (see the module docstring for the formats).

    Args:
        source: A folder of text files, a BEIR folder, or a ``.jsonl``/``.csv``/``.parquet`` file.
        text_field: Column holding the text in a table source (default ``"text"``); given for another source,
            where it would do nothing, it is an error.
        title_field: Column of a table source whose value starts every passage of its row, followed by a blank
            line (default: none); its whitespace is collapsed to single spaces, it is cut (ending ``...``) to a
            quarter of ``chunk_size`` words and characters, and its words count toward ``chunk_size``. A row
            without the field, or with null or blank, has no title; when none of the first 1,000 rows has it,
            the name is taken as misspelt. Only for a table (a BEIR corpus always uses its titles).
        chunk_size: Maximum words per passage of a text file or table (default :data:`DEFAULT_CHUNK_SIZE`); given
            for a BEIR folder, whose documents are kept whole, it is an error.
        exclude: Globs of files and folders a folder source leaves out, matched against each name and each
            path relative to ``source`` (``fnmatch``: ``*`` also matches ``/``), e.g. ``build``, ``*.log.md``,
            ``docs/old/*``, or the path as typed from the current folder (``SOURCE/drafts``) or in full; a glob
            that matches nothing gets a ``note``. Hidden files and folders (names starting with ``.``) are always
            left out.
        warn: Called with a one-line message for every skipped file (default: ignore); a skipped file is
            not a deleted one, so callers should not prune after it.
        note: Called with a one-line message for problems that skip no file: a document id repeated in a
            table (the first row wins), a table without ids (rows named by number), a lone surrogate replaced
            in a text, a symbolic link to a folder (not followed) or to a file indexed under its own name
            (skipped), files of other types in a folder (counted). Default: ``warn``.
        on_empty: Called with the id of every document that yields no passage (empty or blank text).

    Yields:
        Passages in a deterministic order; empty texts produce no passage (only an ``on_empty`` call).

    Raises:
        SourceError: If the source does not exist, is empty, or has an unknown format or no text column, an option
            was given that does nothing for its kind (``exclude``, ``text_field``, ``title_field``, ``chunk_size``),
            ``title_field`` names the text column, or (while iterating) a table or BEIR file has a line that is not
            UTF-8, JSON or CSV, a row without a BEIR ``_id``, an id holding a lone surrogate, a text or title that is
            an object, list or boolean, no ``title_field`` in the first 1,000 rows, or is a truncated ``.gz`` or
            unreadable Parquet file.
    """
    if chunk_size is not None and chunk_size < 1:
        msg = f"--chunk-size must be >= 1 word, got {chunk_size}."
        raise SourceError(msg)
    path = expand_user(source)
    if not path.exists():
        msg = (
            f"SOURCE {str(path)!r} does not exist; pass a folder of .txt/.md/.rst files, a BEIR folder or a table file."
        )
        raise SourceError(msg)
    report: Warn = warn if warn is not None else (lambda _message: None)
    notes: Warn = note if note is not None else report
    empties: OnEmpty = on_empty if on_empty is not None else (lambda _doc: None)
    globs = tuple(exclude)
    beir = is_beir(path)
    name = path.name.lower()
    table = not path.is_dir() and (name.endswith(TABLE_SUFFIXES) or name.endswith(".jsonl.gz"))
    if not (path.is_dir() or table or name.endswith(TEXT_SUFFIXES)):  # before any option: its format is the problem
        msg = f"Cannot index {path.name!r}: expected a folder, .txt/.md/.rst, .jsonl, .csv or .parquet."
        raise SourceError(msg)
    kind = "a BEIR corpus" if beir else "a table" if table else "a folder" if path.is_dir() else "a text file"
    useless = [
        (globs and (beir or not path.is_dir()), "--exclude applies to a folder of text files"),
        (text_field is not None and not table, "--text-field applies to a table (.jsonl, .csv, .parquet)"),
        (
            title_field is not None and not table,
            "--title-field applies to a table (.jsonl, .csv, .parquet); a BEIR corpus always uses its titles",
        ),
        (
            chunk_size is not None and beir,
            "--chunk-size does not apply to a BEIR corpus (its documents are kept whole"
            ", so that their ids match the qrels)",
        ),
    ]
    for given, why in useless:
        if given:
            msg = f"{why}; SOURCE {str(path)!r} is {kind}. Drop it."
            raise SourceError(msg)
    words = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
    if beir:
        return _beir(path, notes, empties)
    if path.is_dir():
        return _folder(path, words, globs, report, notes, empties)
    if table:
        field = "text" if text_field is None else text_field
        if title_field == field:
            msg = f"--title-field and the text field are the same column {field!r}; name the title column."
            raise SourceError(msg)
        return _table(path, field, title_field, words, notes, empties)
    text = _read_utf8(path, report) if _utf8_name(path.name, path, report) else None
    return iter(()) if text is None else _passages(path.name, text, words, empties)


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
