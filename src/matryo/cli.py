"""The ``matryo`` command line: index, search, eval, bench, info, demo (and train, with ``matryo[train]``).

Every command is a function of parsed arguments returning an exit code; :func:`main` turns expected
errors into one line on stderr (``matryo: error: ...``) and a non-zero exit code. Set ``MATRYO_DEBUG=1``
for the full traceback. Heavy modules (stores, torch, matplotlib) are imported only by the command using them.
"""

# ruff: noqa: T201  # a command line prints its results

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matryo.errors import MatryoError

if TYPE_CHECKING:
    pass

__all__ = ["build_parser", "main"]

DEFAULT_DB = "matryo-demo-db"


def _eprint(message: str) -> None:
    print(message, file=sys.stderr)


def _warn(message: str) -> None:
    try:
        from tqdm import tqdm

        tqdm.write(f"matryo: warning: {message}", file=sys.stderr)
    except ImportError:
        _eprint(f"matryo: warning: {message}")


def _count(n: int, noun: str) -> str:
    """``"1 passage"``, ``"2 passages"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cmd_index(args: argparse.Namespace) -> int:
    from matryo.cli_index import index_into
    from matryo.sources import read_source

    start = time.perf_counter()
    skipped: list[str] = []

    def warn(message: str) -> None:
        skipped.append(message)
        _warn(message)

    def prune() -> bool:
        if skipped:  # an unreadable file is not a deleted one: keep what the DB holds for it
            were, them = ("was", "it") if len(skipped) == 1 else ("were", "them")
            _warn(
                f"--prune: nothing pruned because {_count(len(skipped), 'file')} {were} skipped; fix {them}, or leave "
                f"{them} out with --exclude, and re-run"
            )
        return not skipped

    emptied: set[str] = set()
    passages = read_source(
        args.source,
        text_field=args.text_field,
        title_field=args.title_field,
        chunk_size=args.chunk_size,
        exclude=args.exclude or (),
        warn=warn,
        note=_warn,  # repeated ids, symlinked folders: shown even with --quiet, but they do not stop --prune
        on_empty=emptied.add,
    )
    db = Path(args.db)
    stats, meta, total = index_into(
        db,
        passages,
        model=args.model,
        store=args.store,
        truncate_dim=args.truncate_dim,
        quiet=args.quiet,
        prune=prune if args.prune else None,
        source=args.source,
        empty_docs=emptied,
        note=_warn,
        replace_source=args.replace_source,
    )
    seconds = time.perf_counter() - start
    if stats.repaired:
        _warn(
            f"{db} held {stats.repaired} passage id(s) more than once (two runs wrote it at once); each now has one row"
        )
    if stats.repeated:  # a passage was dropped: say which, even with --quiet
        named = "; ".join(
            f"{pid!r} of document {doc!r} (already used by document {first!r})" for pid, doc, first in stats.repeated
        )
        more = f" and {stats.duplicates - len(stats.repeated)} more" if stats.duplicates > len(stats.repeated) else ""
        _warn(
            f"{stats.duplicates} passage(s) skipped because their id was already used: {named}{more}. Chunks of "
            "document DOC are named DOC#0, DOC#1, ...: rename the document whose id looks like a chunk id."
        )
    if stats.kept and not args.prune:
        _warn(
            f"{stats.kept} stored passage(s) of documents not in SOURCE this run were kept; pass --prune to remove "
            "the passages of documents deleted from SOURCE."
        )
    if not args.quiet:
        extra = f", {_count(stats.duplicates, 'repeated id')} skipped" if stats.duplicates else ""
        print(
            f"{_count(stats.added, 'new or changed passage')} indexed, {stats.unchanged} unchanged, "
            f"{stats.removed} removed{extra}; {_count(total, 'passage')} in {db} ({meta.store}, {meta.dim} dims, "
            f"first pass {meta.truncate_dim}) in {seconds:.1f} s"
        )
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from matryo.cli_index import open_search, print_hits, printable

    interactive = not args.query and args.queries is None  # main() allows that only with a terminal on stdin
    given = None if interactive else _search_queries(args)
    start = time.perf_counter()
    search, meta, count = open_search(Path(args.db), latest=interactive)  # a prompt sees what is indexed meanwhile
    loaded = time.perf_counter()
    opened = f"{args.db}: {_count(count, 'passage')}, opened in {loaded - start:.1f} s."
    if meta.store == "chroma":  # open_search holds the DB's lock for as long as the searcher lives
        opened += " Other matryo commands cannot use this Chroma DB until the prompt ends (one process at a time)."
    queries: Iterable[str] = _typed_queries(opened) if given is None else given
    # a prompt whose answers go to a file or a pipe heads each with its query, as several queries do
    headed = (given is not None and len(given) > 1) or (interactive and not sys.stdout.isatty())
    several = given is not None and len(given) > 1
    found = False
    asked = 0
    for query in queries:
        asked += 1
        began = time.perf_counter()
        hits = search(query, args.k, args.rescore_multiplier)
        ms = (time.perf_counter() - began) * 1000
        found = found or bool(hits)
        if args.json:
            for rank, hit in enumerate(hits, 1):
                record = {"query": query, "rank": rank, "id": hit.id, "doc": hit.doc, "score": round(hit.score, 6)}
                print(json.dumps({**record, "text": hit.text}), flush=interactive)
            continue
        if headed:
            print(f"{printable(json.dumps(query, ensure_ascii=False))}  ({ms:.1f} ms)")
        if hits:
            print_hits(hits)
        else:
            print("no hits (the DB is empty)" if count == 0 and not interactive else "no hits")
        if interactive and hits and not headed:  # a heading shows the time already
            print(f"search {ms:.1f} ms (first pass at {meta.truncate_dim} dims, rescored at {meta.dim})")
        if several or interactive:
            print(flush=True)
    if args.json or interactive or not (found or several):
        return 0
    searched = time.perf_counter() - loaded
    timing = (
        f"{asked} queries in {searched:.2f} s ({searched * 1000 / asked:.1f} ms each)"
        if several
        else f"search {searched * 1000:.1f} ms"
    )
    print(
        f"two-stage: first pass at {meta.truncate_dim} dims, rescored at {meta.dim}; "
        f"{timing} (opening the DB and model {loaded - start:.1f} s)"
    )
    return 0


def _typed_queries(opened: str) -> Iterator[str]:
    """Queries typed at a ``query>`` prompt (``matryo search --db DB`` in a terminal), until Ctrl-D or Ctrl-C.

    The prompt and the banner go to standard error when standard output is not the terminal (``--json > file``),
    so the output holds only results. A line that is not UTF-8 text (a terminal set to another encoding) is
    refused with a note, and the prompt asks again.
    """
    from matryo.texts import SURROGATE

    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input(), where the platform has it)
    on_terminal = sys.stdout.isatty()
    _eprint(f"{opened} Type a query and press Enter; Ctrl-D (or Ctrl-C) ends.")
    while True:
        try:
            if on_terminal:
                line = input("query> ")
            else:
                sys.stderr.write("query> ")
                sys.stderr.flush()
                line = sys.stdin.readline()
                if not line:
                    raise EOFError
        except (EOFError, KeyboardInterrupt):
            _eprint("")
            return
        except UnicodeDecodeError:  # a strict standard input (PYTHONIOENCODING, a UTF-8 locale)
            line = "\udcff"
        if SURROGATE.search(line):  # undecodable bytes, kept as lone surrogates (surrogateescape: a C locale)
            _eprint("matryo: that line is not UTF-8 text (is the terminal set to another encoding?); type it again")
            continue
        if line.strip():
            yield line.strip()


def _search_queries(args: argparse.Namespace) -> list[str]:
    """The queries of ``matryo search``: the QUERY arguments, then the lines of ``--queries`` (blank lines skipped)."""
    from matryo.cli_index import CliError

    queries = list(args.query)
    for position, query in enumerate(queries, 1):
        if not query.strip():
            where = f"QUERY {position} of {len(queries)}" if len(queries) > 1 else "QUERY"
            msg = f'{where} is empty; pass the words to search for, e.g. matryo search "read a gzip file" --db DB.'
            raise CliError(msg)
    if args.queries is not None:
        queries += _query_lines(args.queries)
    if not queries:  # main() refuses a search without QUERY and --queries, so the file was blank
        msg = f"--queries {args.queries} has no query; write one query per line (blank lines are skipped)."
        raise CliError(msg)
    return queries


def _stdin_text() -> str:
    """Standard input as UTF-8 text (a BOM dropped), or a UnicodeDecodeError for other bytes."""
    from matryo.cli_index import CliError

    if sys.stdin is None or sys.stdin.closed:
        msg = "--queries -: there is no standard input; pipe the queries in (one per line) or pass --queries FILE."
        raise CliError(msg)
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return bytes(buffer.read()).decode("utf-8-sig")
    text = sys.stdin.read()  # a text stream (a caller's StringIO): the bytes were decoded already
    return text.encode("utf-8").decode("utf-8-sig")  # a lone surrogate (an undecodable byte) raises here


def _query_lines(name: str) -> list[str]:
    """The non-blank lines of a query file (``-``: standard input), stripped."""
    from matryo.cli_index import CliError

    try:
        # bytes, decoded here: a text stdin decodes with the locale's error handler (surrogateescape for C.UTF-8),
        # so a Latin-1 byte reached the encoder mid-run; a BOM is not part of the first query
        text = _stdin_text() if name == "-" else Path(name).read_bytes().decode("utf-8-sig")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError:
        msg = f"--queries {name}: no such file; pass a text file with one query per line, or - for standard input."
        raise CliError(msg) from None
    except IsADirectoryError:
        msg = f"--queries {name} is a folder; pass a text file with one query per line, or - for standard input."
        raise CliError(msg) from None
    except PermissionError:
        msg = f"--queries {name}: permission denied; make the file readable, or pass the queries on standard input."
        raise CliError(msg) from None
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        fix = "send UTF-8 text" if name == "-" else "save it as UTF-8"
        msg = f"--queries {name} is not UTF-8 text (byte {exc.start}); {fix}."
        raise CliError(msg) from None
    # one query per line; splitlines() would also cut at \x0c, \x85 or U+2028
    return [line.strip() for line in text.split("\n") if line.strip()]


def _cmd_eval(args: argparse.Namespace) -> int:
    from matryo.cli_eval import run_eval

    return run_eval(args)


def _cmd_info(args: argparse.Namespace) -> int:
    from matryo.encoder import StaticEncoder
    from matryo.formats import expand_user, find_model_files

    encoder = StaticEncoder.from_pretrained(args.model)
    folder = expand_user(args.model) if args.model and expand_user(args.model).exists() else None
    if folder is None:
        from matryo.encoder import DEFAULT_MODEL_PATH

        folder = DEFAULT_MODEL_PATH if args.model is None else None
    weights = find_model_files(folder).weights if folder is not None else None
    info = {
        "model": encoder.name_or_path,
        "dims": encoder.dim,
        "vocab_size": encoder.vocab_size,
        "layout": encoder.layout,
        "dtype": encoder.stored_dtype,
        "max_length": encoder.max_length,
        "file_size_mb": round(weights.stat().st_size / 1e6, 1) if weights is not None else None,
        "fingerprint": encoder.fingerprint,
    }
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            print(f"{key:<13}{'none' if value is None else value}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from matryo.bench import run

    print(run(args.model, quick=args.quick))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from matryo.demo import run

    return run(Path(args.db), model=args.model, quiet=args.quiet)


_INDEX_NOTES = """\
Text files are split into passages of at most --chunk-size words (and 20 characters per word, so text
without spaces is cut too), packing whole paragraphs; ids are relative paths (path#0, path#1, ... when a
file has several passages). Table rows are documents (id from _id/id, else the row number; a repeated id
is warned about and only its first row is indexed); a BEIR folder keeps its corpus ids. In a folder,
hidden files and folders (names starting with '.': .git, .venv, ...) and --exclude matches are not read;
files that cannot be read, are not UTF-8 or are broken symbolic links are skipped with a warning naming
them; symbolic links to folders are not followed (a warning). A table with a bad line (not UTF-8, JSON or
CSV) stops the run with an error naming the file and line.

Incremental: each passage's content hash is stored, so a re-run writes only new or changed passages and
removes the passages a changed (or emptied) document no longer has. Documents missing from SOURCE are
kept unless --prune is given (it is not applied when a file was skipped). Every batch is committed on
its own: after Ctrl-C, run the same command again to finish.
The DB folder remembers its model, widths, store and SOURCE; another model or width is refused, and so is
another SOURCE (its ids would overwrite this one's: use another --db). One run writes a DB at a time: a
second run on the same DB fails at once (except on Windows, where nothing is locked)."""


# Option values are checked by argparse (type=), so a bad one is a usage error: exit 2 with the usage line.
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _multiplier(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        msg = f"expected a finite number >= 1 (1: no oversampling), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _dims(text: str) -> str:
    from matryo.cli_eval import parse_dims

    try:
        parse_dims(text, sys.maxsize)  # the items' syntax only; the model width is checked by eval
    except MatryoError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--dims ")) from exc
    return text


def _command(
    sub: Any, name: str, func: Callable[[argparse.Namespace], int], help_: str, example: str, notes: str = ""
) -> Any:
    parser = sub.add_parser(
        name,
        help=help_,
        description=f"{help_}\n\n{notes}" if notes else help_,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func, command_parser=parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """Build the ``matryo`` argument parser."""
    from matryo import __version__
    from matryo.cli_eval import DEFAULT_DIMS
    from matryo.search import DEFAULT_K, DEFAULT_RESCORE_MULTIPLIER, DEFAULT_TRUNCATE_DIM
    from matryo.sources import DEFAULT_CHUNK_SIZE

    parser = argparse.ArgumentParser(
        prog="matryo",
        description="Fast static embeddings with Matryoshka two-stage search.",
        epilog=(
            "examples:\n  matryo demo\n  matryo index docs/ --db my-db\n"
            '  matryo search "how do I parse arguments" --db my-db'
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _command(
        sub, "index", _cmd_index, "index a folder, table or BEIR corpus", "matryo index docs/ --db my-db", _INDEX_NOTES
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="a .txt/.md/.rst file or folder, a .jsonl(.gz)/.csv/.parquet table, or a BEIR folder",
    )
    p.add_argument("--db", required=True, help="DB folder (created when missing)")
    p.add_argument("--store", choices=["lancedb", "chroma"], default=None, help="store of a new DB (default lancedb)")
    p.add_argument("--model", default=None, help="model folder or hub id (default: the DB's, else the embedded model)")
    p.add_argument(
        "--truncate-dim",
        type=_positive_int,
        default=None,
        help=f"first-pass width (default {DEFAULT_TRUNCATE_DIM} or the model width)",
    )
    p.add_argument(
        "--text-field",
        default=None,
        help="text column of a table source (default: text); the id comes from _id or id, and other columns "
        "(metadata) are neither embedded nor stored",
    )
    p.add_argument(
        "--title-field",
        default=None,
        metavar="NAME",
        help="title column of a table source: each passage of a row starts with its title and a blank line, so a "
        "passage cut from a long text still says what it is about; the title counts toward --chunk-size and is cut "
        "to a quarter of it (default: no title)",
    )
    p.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=None,
        help=f"max words per passage of a text file or table (default {DEFAULT_CHUNK_SIZE}; BEIR documents are "
        "kept whole)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        metavar="GLOB",
        help="leave out files and folders of a folder SOURCE whose name or path relative to SOURCE matches GLOB "
        "(repeatable; e.g. build, build/ (folders only), 'drafts/*'; SOURCE/drafts as typed from here works too); "
        "names starting with '.' (.git, .venv) are always left out",
    )
    p.add_argument(
        "--prune", action="store_true", help="also remove passages of documents no longer in SOURCE (default: keep)"
    )
    p.add_argument(
        "--replace-source",
        action="store_true",
        help="index into a DB built from another SOURCE (the same corpus moved, renamed or exported again) and "
        "record this SOURCE; passages whose id and text match are kept",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")

    p = _command(
        sub,
        "search",
        _cmd_search,
        "two-stage search of a DB folder",
        'matryo search "read a gzip file" --db my-db -k 5\n  matryo search --db my-db --queries questions.txt --json',
        "Several queries (QUERY arguments and --queries lines) share one opening of the DB and the model. In a "
        "terminal, without QUERY or --queries, type queries at a query> prompt (Ctrl-D ends).",
    )
    p.add_argument("query", metavar="QUERY", nargs="*", help="words to search for (several: one search each)")
    p.add_argument(
        "--queries",
        metavar="FILE",
        default=None,
        help="also search each non-blank line of FILE (- reads standard input): the DB and model open once",
    )
    p.add_argument("--db", required=True, help="DB folder built by `matryo index`")
    p.add_argument("-k", type=_positive_int, default=DEFAULT_K, help=f"hits to show (default {DEFAULT_K})")
    p.add_argument(
        "--rescore-multiplier",
        type=_multiplier,
        default=None,
        help=f"first-pass candidates per hit (default {DEFAULT_RESCORE_MULTIPLIER})",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per hit and line: query, rank, id, doc, score, text (a query without hits has no line)",
    )

    p = _command(
        sub,
        "eval",
        _cmd_eval,
        "NDCG@10, MRR@10, Recall@100 per Matryoshka width and two-stage",
        "matryo eval ../data/scifact --dims 64,128,full",
    )
    p.add_argument(
        "beir_dir", metavar="BEIR_DIR", help="folder with corpus.jsonl(.gz), queries.jsonl(.gz), qrels.tsv(.gz)"
    )
    p.add_argument("--model", default=None, help="model folder or hub id (default: the embedded model)")
    p.add_argument(
        "--dims",
        type=_dims,
        default=DEFAULT_DIMS,
        help=f"comma-separated widths; 'full' = model width (default {DEFAULT_DIMS})",
    )
    p.add_argument(
        "--split",
        default="test",
        help="qrels to score: qrels/SPLIT.tsv(.gz) (default test, which also reads a top-level qrels.tsv); "
        "tune on dev, report on test",
    )
    p.add_argument(
        "--first-pass-dim",
        type=_positive_int,
        default=None,
        help=f"two-stage first-pass width (default {DEFAULT_TRUNCATE_DIM})",
    )
    p.add_argument(
        "--rescore-multiplier",
        type=_multiplier,
        default=None,
        help=f"two-stage candidates per hit (default {DEFAULT_RESCORE_MULTIPLIER})",
    )
    p.add_argument(
        "--ignore-identical-ids",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="never retrieve a doc whose id is the query id (ArguAna's rule); default: on when BEIR_DIR's name, as "
        "given or resolved, contains 'arguana', or when most queries are their own document (with a note)",
    )
    p.add_argument("--plot", default=None, metavar="FILE.png", help="plot NDCG@10 against width (needs matplotlib)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    p = _command(
        sub,
        "bench",
        _cmd_bench,
        "encoding speed on this machine vs the tokenizer floor and peers",
        "matryo bench --quick",
    )
    p.add_argument("--model", default=None, help="model folder or hub id (default: the embedded model)")
    p.add_argument("--quick", action="store_true", help="fewer texts and rounds")

    p = _command(
        sub,
        "info",
        _cmd_info,
        "describe a model: dims, vocab, layout, dtype, size, fingerprint",
        "matryo info ./my-model",
    )
    p.add_argument("model", nargs="?", default=None, metavar="MODEL", help="model folder or hub id (default: embedded)")
    p.add_argument(
        "--model",
        dest="model_option",
        metavar="MODEL",
        default=None,
        help="the same as MODEL, as index, eval and bench take it",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = _command(
        sub,
        "demo",
        _cmd_demo,
        "index the standard library's docstrings and ask it questions",
        "matryo demo --db /tmp/demo-db",
    )
    p.add_argument("--db", default=DEFAULT_DB, help=f"DB folder (default ./{DEFAULT_DB}; re-runs are incremental)")
    p.add_argument("--model", default=None, help="model folder or hub id (default: the embedded model)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_train(sub)
    return parser


def _add_train(sub: Any) -> None:
    """Register ``matryo train`` (its module imports torch only when training runs)."""
    try:
        from matryo.train import add_train_subparser
    except ImportError:
        return
    parser = add_train_subparser(sub)
    parser.epilog = (
        "example:\n  matryo train --data pairs/ --out my-model --time-budget 600\n"
        '  (pairs/ holds <source>_pairs.jsonl.gz files of {"query": ..., "positive": ...} lines)'
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _drop_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured): nothing to drop
        pass


def _typing(stdin: object) -> bool:
    """Whether standard input is a terminal someone can type queries at."""
    try:
        return bool(stdin is not None and stdin.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def main(argv: list[str] | None = None) -> int:
    """Run the ``matryo`` command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0 on success, 1 on an expected error, 130 when interrupted, 141 when stdout was closed
        by its reader (a pipe into ``head``). Bad options exit with 2 (argparse's ``SystemExit``).
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    command_parser = vars(args).pop("command_parser", parser)  # out of args: a command may record them (train)
    if args.func is _cmd_search:  # `search q1 --db DB q2`: argparse leaves a query after an option unparsed
        args.query += [word for word in unknown if not word.startswith("-")]
        unknown = [word for word in unknown if word.startswith("-")]
    if unknown:  # the command's usage, not the top-level one (parse_args reports it with the main parser)
        command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.func is _cmd_search and not args.query and args.queries is None and not _typing(sys.stdin):
        command_parser.error("the following arguments are required: QUERY (or --queries FILE)")
    if args.func is _cmd_info and args.model_option is not None:
        from matryo.cache import model_key

        if args.model is not None and model_key(args.model) != model_key(args.model_option):
            command_parser.error(f"MODEL {args.model!r} and --model {args.model_option!r} differ; pass one of them")
        args.model = args.model_option
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a reader that went away shows up here, not in the interpreter's last flush
        return code
    except BrokenPipeError:
        # `matryo search ... --json | head -1`: the reader has what it wanted. Stop quietly with the status a
        # shell reports for cat or grep killed by SIGPIPE (128 + 13 = 141; Python ignores SIGPIPE, so it
        # arrives as this exception), and point stdout at devnull so the final flush at exit cannot fail
        # again (the recipe in the signal module's docs, "Note on SIGPIPE").
        _drop_stdout()
        return 141
    except KeyboardInterrupt as exc:
        if str(exc):  # matryo train stopped while writing its model: the message says what is left
            _eprint(f"matryo: {exc}")
        elif args.func in (_cmd_index, _cmd_demo):
            _eprint("matryo: interrupted; work committed so far is kept, re-run the same command to continue")
        else:
            _eprint("matryo: interrupted")
        return 130
    except (MatryoError, OSError, ValueError) as exc:
        if os.environ.get("MATRYO_DEBUG"):
            raise
        _eprint(f"matryo: error: {exc}")
        return 1
    except SystemExit as exc:
        if not isinstance(exc.code, str):
            raise
        # matryo train (also `python -m matryo.train`) stops with SystemExit("error: ..."): one line, in this
        # command's format
        _eprint(f"matryo: {exc.code}" if exc.code.startswith("error: ") else f"matryo: error: {exc.code}")
        return 1
