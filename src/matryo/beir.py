"""Loading a BEIR-format retrieval set: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels`` (TSV), checked line by line.

:func:`load_beir` is what ``matryo eval``, the benchmarks and the recall tests read their sets with; a damaged
line is a :class:`matryo.sources.SourceError` naming the file and line, and repeated ids, lone surrogates and
qrels that name unknown queries are notes passed to ``warn`` (as ``matryo index`` reports them).
:mod:`matryo.evaluation` re-exports it beside the metrics.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matryo.errors import DataNotFoundError
from matryo.sources import SourceError, SurrogateChecks, read_jsonl, read_lines

__all__ = ["load_beir"]

Warn = Callable[[str], None]


_CSV_FIELD_LIMIT = 2**31 - 1
"""csv's default field limit (128 KiB) would turn a long qrels line into a traceback; this is the largest a C long
allows (as :mod:`matryo.sources` reads CSV tables)."""

_MAX_NAMED = 10
"""Repeated ids named one by one per file; the rest are counted in one closing note (as ``matryo index``)."""

_HEADER_NAMES = (
    frozenset({"queryid", "qid", "query", "topic", "topicid"}),
    frozenset({"corpusid", "docid", "doc", "document", "documentid", "did", "corpus", "passageid", "pid"}),
    frozenset({"score", "rel", "relevance", "label", "judgment", "judgement", "grade"}),
)
"""Names a qrels header may give its three columns (lowercase, without ``-``, ``_``), BEIR's ``query-id corpus-id
score`` first."""


def _row_id(row: Mapping[str, Any], path: Path, number: int) -> str:
    value = row.get("_id")
    if value is None or not str(value).strip():
        msg = f"{path} line {number} has no '_id'; every row of a BEIR corpus or queries file needs a non-empty '_id'."
        raise SourceError(msg)
    return str(value)


class _RowChecks:
    """The checks ``matryo index`` runs on the rows of a BEIR corpus, for one corpus or queries file.

    The first row of a repeated ``_id`` wins (later ones are left out with a note naming both lines), a lone
    surrogate in a text becomes U+FFFD (with a note naming the line and ``_id``), and one in an ``_id`` is an error.
    """

    def __init__(self, path: Path, warn: Warn) -> None:
        self._path, self._warn = path, warn
        self._first: dict[str, int] = {}
        self._surrogates = SurrogateChecks(path, warn, use="evaluated")
        self.repeats = 0

    def doc(self, row: Mapping[str, Any], number: int) -> str | None:
        """The row's ``_id``, or None when an earlier row has it (the row is then left out)."""
        doc = self._surrogates.doc(_row_id(row, self._path, number), f"line {number}")
        first = self._first.setdefault(doc, number)
        if first == number:
            return doc
        self.repeats += 1
        if self.repeats <= _MAX_NAMED:
            self._warn(
                f"{self._path} line {number} repeats _id {doc!r} of line {first}; this row is left out (the first "
                "one is used, as `matryo index` does). Give every row its own _id."
            )
        return None

    def text(self, text: str, doc: str, number: int) -> str:
        """``text`` with lone surrogates replaced by U+FFFD (the tokenizer cannot read them)."""
        return self._surrogates.text(text, f"line {number} (_id {doc!r})")

    def close(self) -> None:
        if self.repeats > _MAX_NAMED:
            self._warn(f"{self._path}: {self.repeats} rows in all repeat an earlier _id and were left out.")
        self._surrogates.close()


def _first_existing(folder: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (folder / name).exists():
            return folder / name
    if not folder.is_dir():
        msg = (
            f"{folder} does not exist (or is not a folder): expected a BEIR folder (corpus.jsonl, queries.jsonl and "
            "qrels.tsv or qrels/<split>.tsv, each optionally .gz), e.g. a set of the BEIR benchmark unzipped."
        )
        raise DataNotFoundError(msg)
    msg = (
        f"{folder} holds none of {', '.join(names)}: expected a BEIR folder (corpus.jsonl, queries.jsonl and "
        "qrels.tsv or qrels/<split>.tsv, each optionally .gz)."
    )
    if any(name.startswith("qrels") for name in names):
        splits = sorted({path.name.split(".")[0] for path in folder.glob("qrels/*.tsv*")})
        msg += f" Splits here: {', '.join(splits)} (pass --split NAME)." if splits else ""
        top = [name for name in ("qrels.tsv.gz", "qrels.tsv") if (folder / name).is_file()]
        msg += f" Its {top[0]} is read as the test split (pass --split test, the default)." if top else ""
    raise DataNotFoundError(msg)


def _is_header(line: str) -> bool:
    """Whether a qrels line is a header: three names like ``query-id corpus-id score`` (never an integer score)."""
    names = [re.sub("[-_]", "", word.lower()) for word in line.split()]
    return len(names) == 3 and all(name in known for name, known in zip(names, _HEADER_NAMES, strict=True))


def _qrels_score(fields: list[str], path: Path, number: int, line: str, *, first: bool = False) -> int:
    """The relevance of a qrels row, or a SourceError naming the line and the layout expected."""
    found = f"found {line.rstrip(chr(10)).rstrip(chr(13))[:80]!r}"
    header = (
        " If this first line is a header, write it as BEIR does: query-id<TAB>corpus-id<TAB>score." if first else ""
    )
    if len(fields) != 3:
        msg = (
            f"{path} line {number} has {len(fields)} tab-separated fields; a BEIR qrels file has 3: "
            f"query-id<TAB>corpus-id<TAB>score (an integer); {found}."
        )
        words = len(line.split())
        if words == 4:
            msg += (
                " A TREC qrels file (query-id 0 doc-id relevance) has 4 columns: convert it with "
                "`awk -v OFS='\\t' '{print $1, $3, $4}' qrels.trec > qrels.tsv`."
            )
        elif words == 3:
            msg += " Separate the three fields with tabs."
        raise SourceError(msg + header)
    try:
        return int(fields[2])
    except ValueError as exc:
        msg = f"{path} line {number} is not 'query-id<TAB>corpus-id<TAB>score' with an integer score; {found}."
        raise SourceError(msg + header) from exc


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels file: an optional header line, then ``query-id<TAB>corpus-id<TAB>score`` rows."""
    qrels: dict[str, dict[str, int]] = {}
    first = True
    limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        for number, line in read_lines(path):
            try:
                fields = next(csv.reader([line], delimiter="\t"), [])
            except csv.Error as exc:  # e.g. a lone carriage return inside the line
                msg = (
                    f"{path} line {number} is not a tab-separated line ({exc}); expected "
                    f"query-id<TAB>corpus-id<TAB>score; found {line[:80]!r}. Fix or remove that line."
                )
                raise SourceError(msg) from exc
            if not any(field.strip() for field in fields):
                continue  # a blank line
            while len(fields) > 3 and not fields[-1].strip():
                fields.pop()  # trailing tabs
            if first and _is_header(line):
                first = False
                continue  # BEIR's query-id<TAB>corpus-id<TAB>score
            qrels.setdefault(fields[0], {})[fields[1]] = _qrels_score(fields, path, number, line, first=first)
            first = False
    finally:
        csv.field_size_limit(limit)
    return qrels


def _read_texts(path: Path, report: Warn, text_of: Callable[[Mapping[str, Any]], str]) -> dict[str, str]:
    """``{_id: text}`` of a corpus or queries file, through the repeated-id and surrogate checks."""
    texts: dict[str, str] = {}
    checks = _RowChecks(path, report)
    for number, row in read_jsonl(path):
        key = checks.doc(row, number)
        if key is not None:
            texts[key] = checks.text(text_of(row), key, number)
    checks.close()
    return texts


def load_beir(
    folder: str | Path, *, split: str = "test", warn: Callable[[str], None] | None = None
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    r"""Load a BEIR-format folder.

    Reads ``corpus.jsonl(.gz)``, ``queries.jsonl(.gz)`` and the qrels of ``split``: ``qrels/<split>.tsv(.gz)``,
    or for ``"test"`` also a top-level ``qrels.tsv(.gz)``.
    Document text is ``title + " " + text`` (stripped), as BEIR's dense models see it. Blank lines are
    skipped. As in ``matryo index``: when an ``_id`` is repeated in the corpus or queries file, the first row
    is used and later ones are left out (with a note naming both lines), and a lone UTF-16 surrogate in a text
    (``"\ud83d"``, half an emoji: valid JSON, but not text the tokenizer can read) is replaced with U+FFFD
    (with a note naming the file, line and ``_id``). Qrels of queries missing from the queries file are left
    out (BEIR and pytrec_eval average over the queries that were run), and ``warn`` is told how many.

    Args:
        folder: The dataset folder.
        split: Which qrels to read (``"test"``, ``"dev"``, ``"train"``, ...): tune on a dev split, report on test.
        warn: Called with a one-line message when qrels name queries the queries file does not hold, when
            more than half of the relevant documents are not in the corpus (usually an id mismatch; BEIR's
            ArguAna legitimately lacks 5 of 1,406), for a repeated ``_id`` and for a text holding a lone
            surrogate (each note names the file and line).

    Returns:
        ``(corpus, queries, qrels)``: doc id -> text, query id -> text (only queries that have
        qrels), and query id -> {doc id: relevance} (only queries in the queries file).

    Raises:
        DataNotFoundError: If a file is missing (a ``FileNotFoundError``; the message names the files looked for).
        SourceError: If a file is a truncated ``.gz``, not UTF-8, or has a bad line (invalid JSON, a row
            without ``_id``, a qrels row without exactly three tab-separated fields and an integer relevance,
            e.g. a 4-column TREC qrels row, or a line the csv module cannot split), or an ``_id`` holds a lone
            surrogate. The first line is skipped as a header only when it names the columns, like BEIR's
            ``query-id<TAB>corpus-id<TAB>score``; any other first line is read (and checked) as data.
    """
    root = Path(folder)
    report: Warn = warn if warn is not None else (lambda _message: None)
    corpus_path = _first_existing(root, ["corpus.jsonl.gz", "corpus.jsonl"])
    queries_path = _first_existing(root, ["queries.jsonl.gz", "queries.jsonl"])
    split_files = [f"qrels/{split}.tsv", f"qrels/{split}.tsv.gz"]
    # every file is found before any is read: a missing split fails at once, not after parsing the corpus
    qrel_path = _first_existing(root, ["qrels.tsv.gz", "qrels.tsv", *split_files] if split == "test" else split_files)
    corpus = _read_texts(
        corpus_path, report, lambda row: (str(row.get("title") or "") + " " + str(row.get("text") or "")).strip()
    )
    all_queries = _read_texts(queries_path, report, lambda row: str(row.get("text") or ""))
    qrels = _read_qrels(qrel_path)
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        if warn is not None:
            warn(
                f"{len(missing)} of {len(qrels)} judged queries in {qrel_path.name} are not in {queries_path.name} "
                f"(e.g. {missing[0]!r}); they are left out of the scores, as BEIR does."
            )
        qrels = {qid: rels for qid, rels in qrels.items() if qid in all_queries}
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    relevant = {did for rels in qrels.values() for did, rel in rels.items() if rel > 0}
    absent = sorted(did for did in relevant if did not in corpus)
    if warn is not None and corpus and 2 * len(absent) > len(relevant):
        warn(
            f"{len(absent)} of {len(relevant)} relevant documents in {qrel_path.name} are not in {corpus_path.name} "
            f"(e.g. {absent[0]!r}); they can never be retrieved. Check that the qrels' corpus-id column holds the "
            "corpus's _id values."
        )
    return corpus, queries, qrels
