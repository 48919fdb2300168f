"""``matryo demo`` (what ``make demo`` runs): search the Python standard library's docstrings.

The corpus exists on every machine and needs no network: the docstrings of the standard library's
modules, classes and functions, read from its source files with :mod:`ast` (nothing is imported, so no
module's side effects run). Each docstring becomes one passage, ``"gzip.open: Open a gzip-compressed
file ..."``, chunked like a text file into passages of at most 60 words (a static model averages its
tokens, so a long text blurs). Private and test modules, IDLE, tkinter, the codecs and the deprecated
distutils are left out, as are docstrings of fewer than 4 words. The extracted corpus is cached in the
DB folder, so re-runs skip the parsing; indexing is incremental as for ``matryo index``. The DB records
:data:`matryo.cli_index.DEMO_SOURCE` as its SOURCE, so the demo refuses a DB indexed from a SOURCE and
``matryo index`` refuses a demo DB (their passages would mix).
"""

# ruff: noqa: T201  # a command line prints its results

from __future__ import annotations

import ast
import gzip
import json
import shutil
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

from matryo.sources import Passage, chunk_text, content_hash

__all__ = ["QUESTIONS", "iter_docstrings", "load_corpus", "run"]

QUESTIONS = (
    "how do I read a gzip file",
    "parse command line arguments",
    "run a shell command and capture its output",
    "copy a directory tree recursively",
    "send an email with SMTP",
    "create a temporary directory",
    "serialize an object to JSON",
    "compute the SHA-256 hash of some bytes",
)
_SKIP = {"test", "tests", "idlelib", "lib2to3", "tkinter", "turtledemo", "ensurepip", "encodings", "pydoc_data"}
_SKIP |= {"site-packages", "dist-packages", "venv", "distutils"}  # distutils: deprecated, gone in 3.12
_CACHE = "stdlib-corpus.json.gz"
_CORPUS_FORMAT = 2  # 2: passages keep the docstrings' line breaks and indentation (sources.chunk_text)
_MIN_WORDS = 4
_CHUNK_WORDS = 60


def _module_name(rel: Path) -> str | None:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or any(p in _SKIP or p.startswith(("_", "config-")) or "-" in p for p in parts):
        return None
    return ".".join(parts)


def _walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, str]]:
    doc = (
        ast.get_docstring(node, clean=True)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        else None
    )
    if doc:
        yield prefix, doc
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and not child.name.startswith("_"):
            yield from _walk(child, f"{prefix}.{child.name}")


def iter_docstrings(stdlib: Path | None = None) -> Iterator[Passage]:
    """Yield one passage per public docstring of the standard library (chunked when long).

    Args:
        stdlib: The standard library folder (default: this interpreter's).

    Yields:
        Passages with ids like ``gzip.open`` (``gzip.open#1`` for a second chunk), in a stable order.
    """
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        name = _module_name(path.relative_to(root))
        if name is None:
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError):
            continue
        seen: set[str] = set()
        for qualname, doc in _walk(tree, name):
            if len(doc.split()) < _MIN_WORDS or qualname in seen:  # a property's setter repeats its getter's name
                continue
            seen.add(qualname)
            chunks = chunk_text(doc, _CHUNK_WORDS)
            for i, chunk in enumerate(chunks):
                pid = qualname if len(chunks) == 1 else f"{qualname}#{i}"
                text = f"{qualname}: {chunk}"
                yield Passage(pid, qualname, text, content_hash(text))


def load_corpus(db: Path) -> list[Passage]:
    """Return the standard-library passages, from the cache in ``db`` when it matches this Python.

    Args:
        db: The demo's DB folder (the cache is written there by :func:`run` after indexing).

    Returns:
        The passages.
    """
    key = _corpus_key()
    cache = db / _CACHE
    if cache.is_file():
        try:
            with gzip.open(cache, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
            if data["key"] == key:
                return [Passage(*row) for row in data["passages"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return list(iter_docstrings())


def _corpus_key() -> str:
    """What the cached corpus depends on: this Python's standard library, and how passages are cut."""
    return f"{_CORPUS_FORMAT} {sys.version} {sysconfig.get_paths()['stdlib']}"


def _save_corpus(db: Path, passages: list[Passage]) -> None:
    key = _corpus_key()
    rows = [[p.id, p.doc, p.text, p.hash] for p in passages]
    try:
        with gzip.open(db / _CACHE, "wt", encoding="utf-8") as fh:
            json.dump({"key": key, "passages": rows}, fh)
    except OSError:
        pass  # the cache is an optimisation only


def run(db: Path, *, model: str | None = None, quiet: bool = False, questions: tuple[str, ...] = QUESTIONS) -> int:
    """Build the corpus, index it into ``db`` (two-stage, LanceDB) and answer the demo questions.

    Args:
        db: The DB folder (created when missing; re-runs are incremental).
        model: Model name or path (default: the embedded model).
        quiet: No progress bar.
        questions: What to ask.

    Returns:
        Exit code 0.
    """
    from matryo.cli_index import DEMO_SOURCE, check_db, index_into, open_search, print_hits
    from matryo.stores import require_store

    require_store("lancedb")  # before the corpus is built (~7 s), not after
    check_db(db, source=DEMO_SOURCE, store="lancedb")  # a DB of another SOURCE or store is refused, as by index
    start = time.perf_counter()
    passages = load_corpus(db)
    built = time.perf_counter()
    print(
        f"corpus: {len(passages)} passages from the docstrings of the Python {sys.version.split()[0]} standard library "
        f"({built - start:.1f} s)"
    )
    stats, meta, total = index_into(db, passages, model=model, store="lancedb", quiet=quiet, source=DEMO_SOURCE)
    indexed = time.perf_counter()
    print(
        f"index:  {stats.added} new, {stats.unchanged} unchanged -> {total} passages in {db} "
        f"(LanceDB, two-stage: {meta.truncate_dim}-d first pass, {meta.dim}-d rescoring; "
        f"{indexed - built:.1f} s including opening LanceDB and the model)"
    )
    _save_corpus(db, passages)
    search, _, _ = open_search(db)
    search(questions[0], 3, None)  # warm-up: the first query pays for opening the table
    print(f"model:  {meta.model or 'matryo-default (embedded)'}, fingerprint {meta.fingerprint}")
    for question in questions:
        t0 = time.perf_counter()
        hits = search(question, 3, None)
        ms = (time.perf_counter() - t0) * 1000
        print(f'\n"{question}"  ({ms:.1f} ms)')
        print_hits(hits)
    print(f'\nTry your own: {_command()} search "how do I ..." --db {db}')
    print(f"or type them at a prompt: {_command()} search --db {db}")
    return 0


def _command() -> str:
    """How this shell calls matryo: ``matryo`` when that is this environment's script, else the script's path.

    ``make demo`` runs ``.venv/bin/matryo`` in a shell whose PATH does not hold ``.venv/bin``.
    """
    script = Path(sys.executable).parent / "matryo"
    found = shutil.which("matryo")
    if not script.is_file() or (found is not None and Path(found).resolve() == script.resolve()):
        return "matryo"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
