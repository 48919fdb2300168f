"""Training pairs: reading, tokenizing into flat id arrays, held-out split and batching (numpy only)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from matryo.errors import InvalidArgumentError
from matryo.files import write_replacing
from matryo.texts import SURROGATE

__all__ = [
    "UncheckedCacheWarning",
    "TokenizedTexts",
    "PairSet",
    "cache_file",
    "pair_files",
    "read_pairs",
    "source_name",
    "tokenize_texts",
    "load_pair_set",
    "no_duplicate_batches",
    "single_source_batches",
    "source_factors",
    "weighted_rows",
]


class UncheckedCacheWarning(UserWarning):
    """A pairs cache that does not record enough to be checked against the data folder, used all the same.

    Caches written before they recorded their data folder are not checked at all; those written before they
    recorded the pair files' modification times are checked by file names and sizes only.
    """


@dataclass
class TokenizedTexts:
    """Texts as one flat id array plus offsets (the EmbeddingBag layout).

    Attributes:
        ids: All token ids, int32, concatenated.
        offsets: int64 array of length n + 1; text i is ``ids[offsets[i]:offsets[i + 1]]``.
    """

    ids: NDArray[np.int32]
    offsets: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def take(
        self, rows: NDArray[np.int64], max_tokens: int | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Gather some texts as (flat ids, start offsets) for ``EmbeddingBag``.

        Args:
            rows: Indices of the texts to gather.
            max_tokens: Keep at most this many leading tokens of each text (None: all).

        Returns:
            The flat int64 ids of those texts and the start offset of each inside them.
        """
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        if max_tokens is not None:
            lengths = np.minimum(lengths, max_tokens)
        bag_starts = np.zeros(len(rows), dtype=np.int64)
        np.cumsum(lengths[:-1], out=bag_starts[1:])
        total = int(lengths.sum())
        # position of every output token in the flat source array
        src = np.repeat(starts - bag_starts, lengths) + np.arange(total, dtype=np.int64)
        return self.ids[src].astype(np.int64), bag_starts


@dataclass
class PairSet:
    """Tokenized (query, positive) pairs.

    Attributes:
        queries: Tokenized queries.
        positives: Tokenized positives.
        query_group: int64 id shared by pairs whose lower-cased query text is identical.
        source: int64 index into ``source_names`` for each pair.
        source_names: Name of each source file (without ``_pairs.jsonl.gz`` or ``_pairs.jsonl``).
    """

    queries: TokenizedTexts
    positives: TokenizedTexts
    query_group: NDArray[np.int64]
    source: NDArray[np.int64]
    source_names: list[str]

    def __len__(self) -> int:
        return len(self.queries)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # the only way JSON text holds one: checked first, it is cheap


def _bad_line(path: Path, lineno: int, line: str, problem: str) -> ValueError:
    """The error for a pair line that is not ``{"query": str, "positive": str}``."""
    shown = line.strip()
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    msg = (
        f'{path}:{lineno}: expected a JSON object with string "query" and "positive" values, found {problem}: '
        f"{shown!r}; fix or remove the line"
    )
    return ValueError(msg)


def _json_kind(value: object) -> str:
    """How a JSON value reads in an error message (``null``, ``a number``, ...)."""
    if value is None:
        return "null"
    kinds = ((bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"), (list, "an array"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "an object")


#: Endings of the pair files of a data folder, gzipped or plain JSON lines; the rest of the name is the source.
PAIR_SUFFIXES = ("_pairs.jsonl.gz", "_pairs.jsonl")


def source_name(path: Path) -> str:
    """The source a pair file holds: its name without ``_pairs.jsonl.gz`` or ``_pairs.jsonl``.

    Args:
        path: A pair file.

    Returns:
        The source name (``wikipedia`` for ``wikipedia_pairs.jsonl.gz``).
    """
    return path.name.removesuffix(".gz").removesuffix("_pairs.jsonl")


def pair_files(folder: str | Path) -> list[Path]:
    """The pair files of a folder: ``<source>_pairs.jsonl.gz`` and ``<source>_pairs.jsonl``, in file-name order.

    Args:
        folder: The data folder.

    Returns:
        The files (empty when there is none, or no such folder).

    Raises:
        InvalidArgumentError: If one source has both a gzipped and a plain file (which one to read is unclear).
    """
    folder = Path(folder)
    files = sorted(path for suffix in PAIR_SUFFIXES for path in folder.glob("*" + suffix))
    names = [source_name(path) for path in files]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        shown = ", ".join(f"{name}_pairs.jsonl and {name}_pairs.jsonl.gz" for name in twice)
        msg = f"{folder} holds both {shown}; expected one file per source: remove or rename one of each"
        raise InvalidArgumentError(msg)
    return files


def _open_pairs(path: Path) -> IO[bytes]:
    """Open a pair file for reading bytes, through gzip when its name ends with ``.gz``."""
    if path.name.endswith(".gz"):
        return cast("IO[bytes]", gzip.open(path, "rb"))
    return path.open("rb")


def _kind(path: Path) -> str:
    return "gzipped UTF-8" if path.name.endswith(".gz") else "UTF-8"


def _read_file(path: Path, queries: list[str], positives: list[str]) -> int:
    """Append one pair file's pairs to the lists; return how many it held.

    Lines are decoded one by one, so a byte that is not UTF-8 is named by the line holding it (a text reader
    decodes ahead, and its error came up to hundreds of lines early).
    """
    before = len(queries)
    lineno = 0
    try:
        with _open_pairs(path) as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte-order mark is not JSON
                except UnicodeDecodeError as exc:
                    hint = ""
                    if lineno == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                        hint = "; it looks like UTF-16: save it as UTF-8"
                    elif lineno == 1 and raw.startswith(b"\x1f\x8b"):
                        hint = "; it looks gzipped: name it <source>_pairs.jsonl.gz"
                    msg = (
                        f"{path}:{lineno}: expected a readable {_kind(path)} JSON-lines file, but a line is not "
                        f"({exc}){hint}"
                    )
                    raise ValueError(msg) from exc
                try:
                    row = json.loads(line)
                    query, positive = row["query"], row["positive"]
                except json.JSONDecodeError as exc:
                    if not line.strip():
                        continue  # a blank line
                    raise _bad_line(path, lineno, line, f"invalid JSON ({exc.msg})") from exc
                except KeyError as exc:
                    if lineno == 1 and isinstance(row, dict):  # most likely the whole file names its fields otherwise
                        keys = ", ".join(repr(str(key)) for key in list(row)[:6])
                        msg = (
                            f'{path}:1: expected JSON objects with string "query" and "positive" values; the first '
                            f"line has no {exc.args[0]!r} key (its keys: {keys}). Rename the fields in the whole "
                            'file to "query" and "positive" (e.g. sentence-transformers\' "anchor" is the query).'
                        )
                        raise ValueError(msg) from exc
                    raise _bad_line(path, lineno, line, f"no {exc.args[0]!r} key") from exc
                except TypeError as exc:
                    raise _bad_line(path, lineno, line, _json_kind(row)) from exc
                if not (isinstance(query, str) and isinstance(positive, str)):
                    bad = "query" if not isinstance(query, str) else "positive"
                    raise _bad_line(path, lineno, line, f'{_json_kind(row[bad])} as "{bad}"')
                if _SURROGATE_ESCAPE.search(line) and (SURROGATE.search(query) or SURROGATE.search(positive)):
                    raise _bad_line(path, lineno, line, "a lone surrogate escape (half of a character, e.g. \\ud83d)")
                queries.append(query)
                positives.append(positive)
    except (OSError, EOFError) as exc:  # the next line could not be read (a broken gzip stream, a disk error)
        msg = f"{path}:{lineno + 1}: expected a readable {_kind(path)} JSON-lines file, but reading failed ({exc})"
        raise ValueError(msg) from exc
    return len(queries) - before


def read_pairs(folder: str | Path) -> tuple[list[str], list[str], list[str]]:
    """Read every pair file of a folder: ``<source>_pairs.jsonl.gz`` (gzipped) and ``<source>_pairs.jsonl`` (plain).

    Each line must be a JSON object with string ``query`` and ``positive`` values (other keys are
    ignored, blank lines skipped). Other files in the folder are ignored.

    Args:
        folder: Folder of JSON-lines files with ``query`` and ``positive`` keys, gzipped or not.

    Returns:
        Queries, positives, and the source name of each pair, in file-name order.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no pair file.
        ValueError: If a line is not such an object (the message names ``file:line``), a file cannot be
            read, the files hold no pair at all, or one source has both a gzipped and a plain file
            (an :class:`~matryo.errors.InvalidArgumentError`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        msg = (
            f"Data folder {folder} does not exist or is not a folder; expected a folder of <source>_pairs.jsonl.gz "
            "(or .jsonl) files"
        )
        raise FileNotFoundError(msg)
    files = pair_files(folder)
    if not files:
        others = sorted(p.name for p in folder.iterdir() if ".json" in p.name)[:5]
        found = f"; found {', '.join(others)}: rename them to <source>_pairs.jsonl(.gz)" if others else ""
        msg = (
            f"No pair file in {folder}; expected JSON-lines files named <source>_pairs.jsonl.gz (gzipped) or "
            f"<source>_pairs.jsonl{found}"
        )
        raise FileNotFoundError(msg)
    queries: list[str] = []
    positives: list[str] = []
    sources: list[str] = []
    for path in files:
        n = _read_file(path, queries, positives)
        sources.extend([source_name(path)] * n)
    if not queries:
        names = ", ".join(path.name for path in files)
        msg = (
            f"The pair files in {folder} ({names}) hold no pairs; expected lines such as "
            '{"query": "...", "positive": "..."}'
        )
        raise ValueError(msg)
    return queries, positives, sources


def tokenize_texts(tokenizer: Tokenizer, texts: list[str], max_tokens: int | None = None) -> TokenizedTexts:
    """Tokenize texts without special tokens into the flat layout.

    Args:
        tokenizer: A tokenizer with padding and truncation cleared.
        texts: The texts.
        max_tokens: Keep at most this many leading tokens per text (None: all).

    Returns:
        The flat ids and offsets.
    """
    chunks: list[NDArray[np.int32]] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    step = 50_000
    # Cutting long texts to 16 characters per kept token first changes no kept token in practice
    # (English word pieces average under 5 characters) and saves most of the tokenizing time.
    max_chars = None if max_tokens is None else 16 * max_tokens
    for lo in range(0, len(texts), step):
        chunk = texts[lo : lo + step] if max_chars is None else [t[:max_chars] for t in texts[lo : lo + step]]
        encs = tokenizer.encode_batch_fast(chunk, add_special_tokens=False)
        for i, enc in enumerate(encs):
            arr = np.asarray(enc.ids, dtype=np.int32)
            if max_tokens is not None:
                arr = arr[:max_tokens]
            chunks.append(arr)
            lengths[lo + i] = arr.shape[0]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return TokenizedTexts(ids=ids, offsets=offsets)


def cache_file(cache: str | Path) -> Path:
    """The file a pairs cache is written to: the path with ``.npz`` appended unless it ends with ``.npz``.

    This is the name ``np.savez`` gives the file, so a cache named without the suffix is found again.

    Args:
        cache: The cache path as given.

    Returns:
        The path of the ``.npz`` file.
    """
    text = os.fspath(cache)
    return Path(text if text.endswith(".npz") else text + ".npz")


def _data_files(folder: str | Path) -> tuple[str, list[str], list[int], list[int]]:
    """The resolved folder and each pair file's name, byte size and mtime in ns (what a cache is checked against)."""
    resolved = Path(folder).resolve()
    stats = [(f.name, f.stat()) for f in pair_files(resolved)]
    return str(resolved), [n for n, _ in stats], [st.st_size for _, st in stats], [st.st_mtime_ns for _, st in stats]


def _file_change(name: str, then: tuple[int, int | None] | None, now: tuple[int, int | None] | None) -> str:
    """How one pair file differs from what a cache recorded: ``name: then -> now``."""
    if then is None or now is None:
        was = "absent" if then is None else f"{then[0]} bytes"
        return f"{name}: {was} -> {'absent' if now is None else f'{now[0]} bytes'}"
    if then[0] != now[0]:
        return f"{name}: {then[0]} -> {now[0]} bytes"
    times = [
        datetime.fromtimestamp(t / 1e9).isoformat(sep=" ", timespec="milliseconds") for t in (then[1], now[1]) if t
    ]
    return f"{name}: same size ({now[0]} bytes) but modified since ({' -> '.join(times)})"


def _check_cache_data(cache: Path, z: dict[str, NDArray[Any]], folder: str | Path) -> None:
    """Refuse a cache written from another data folder or other pair files; warn on one that cannot be checked."""
    if "data_dir" not in z:
        msg = (
            f"Cache {cache} does not record the data folder it was made from (an older cache), so it is used "
            f"without checking that it holds the pairs of {folder}; delete it to have the next run tokenize the folder "
            "again and write a cache that records it"
        )
        warnings.warn(UncheckedCacheWarning(msg), stacklevel=3)
        return
    was_dir, was_files, was_sizes = str(z["data_dir"]), [str(n) for n in z["data_files"]], z["data_sizes"].tolist()
    has_mtimes = "data_mtimes" in z
    was_mtimes = z["data_mtimes"].tolist() if has_mtimes else [None] * len(was_files)
    now_dir, now_files, now_sizes, mtimes = _data_files(folder)
    now_mtimes: list[int | None] = list(mtimes) if has_mtimes else [None] * len(now_files)  # else: names and sizes
    if was_dir != now_dir:
        found = f"it was made from {was_dir}, not {now_dir}"
    else:
        old = dict(zip(was_files, zip(was_sizes, was_mtimes, strict=True), strict=True))
        new = dict(zip(now_files, zip(now_sizes, now_mtimes, strict=True), strict=True))
        changed = sorted(n for n in old.keys() | new.keys() if old.get(n) != new.get(n))
        if not changed:
            if not has_mtimes:
                msg = (
                    f"Cache {cache} records the names and sizes of the pair files of {folder} but not their "
                    "modification times (a cache from an earlier matryo), so a file edited since without a change in "
                    "size would go unnoticed; delete it to have the next run tokenize the folder again and write a "
                    "cache that records them"
                )
                warnings.warn(UncheckedCacheWarning(msg), stacklevel=3)
            return
        found = "these pair files changed since it was written: " + ", ".join(
            _file_change(n, old.get(n), new.get(n)) for n in changed
        )
    msg = (
        f"Cache {cache} does not hold the pairs of {folder}: {found}; pass the data folder it was made from, or "
        "another cache path (or delete this one) to tokenize this folder"
    )
    raise ValueError(msg)


def load_pair_set(
    folder: str | Path, tokenizer: Tokenizer, max_tokens: int | None = 256, cache: str | Path | None = None
) -> PairSet:
    """Read and tokenize every pair of a folder, optionally caching the arrays in an ``.npz`` file.

    Args:
        folder: The training folder.
        tokenizer: Tokenizer with padding and truncation cleared.
        max_tokens: Cap on tokens per text.
        cache: Optional ``.npz`` path to reuse across runs (``.npz`` is appended when missing, as ``np.savez``
            does: see :func:`cache_file`). It records ``max_tokens``, a digest of the tokenizer, the resolved data
            folder and the name, byte size and modification time of each pair file, and is refused when they do not
            match. It is written under a temporary name and renamed, so an interrupted run leaves no half cache. A
            cache written before it recorded the data folder, the files' modification times or the tokenizer is used
            with an :class:`UncheckedCacheWarning` (checked by what it records).

    Returns:
        The tokenized pairs.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no pair file (see :func:`read_pairs`).
        ValueError: If a pair line is malformed (named by ``file:line``), the files hold no pair, or the cache
            is unreadable or was written with another ``max_tokens`` or tokenizer, or from another data folder or
            other pair files.
    """
    cache = None if cache is None else cache_file(cache)
    digest = hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()
    if cache is not None and cache.exists():
        z = _read_cache(cache)
        if "max_tokens" in z and int(z["max_tokens"]) != (-1 if max_tokens is None else max_tokens):
            cut = int(z["max_tokens"])
            msg = f"Cache {cache} holds texts cut at {cut} tokens, not {max_tokens}; use another path"
            raise ValueError(msg)
        if "tokenizer" in z and str(z["tokenizer"]) != digest:
            msg = (
                f"Cache {cache} was tokenized with another tokenizer (another --teacher) than this run's; use one "
                "cache path per tokenizer, or delete it to tokenize again"
            )
            raise ValueError(msg)
        if "tokenizer" not in z:
            msg = (
                f"Cache {cache} does not record its tokenizer (a cache from an earlier matryo), so it is used without "
                "checking that this run tokenizes alike; delete it to have the next run write one that records it"
            )
            warnings.warn(UncheckedCacheWarning(msg), stacklevel=2)
        _check_cache_data(cache, z, folder)
        return PairSet(
            queries=TokenizedTexts(z["q_ids"], z["q_off"]),
            positives=TokenizedTexts(z["p_ids"], z["p_off"]),
            query_group=z["group"],
            source=z["source"],
            source_names=[str(s) for s in z["source_names"]],
        )
    data_dir, data_files, data_sizes, data_mtimes = _data_files(folder)
    queries, positives, sources = read_pairs(folder)
    names = sorted(set(sources))
    source = np.asarray([names.index(s) for s in sources], dtype=np.int64)
    group_of: dict[str, int] = {}
    group = np.asarray([group_of.setdefault(q.strip().lower(), len(group_of)) for q in queries], dtype=np.int64)
    pairs = PairSet(
        queries=tokenize_texts(tokenizer, queries, max_tokens),
        positives=tokenize_texts(tokenizer, positives, max_tokens),
        query_group=group.astype(np.int64),
        source=source,
        source_names=names,
    )
    if cache is not None:
        # written next to it and renamed: an interrupted write leaves no half cache at the path
        files = (data_dir, data_files, data_sizes, data_mtimes)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_replacing(cache, lambda file: _write_cache(file, pairs, names, max_tokens, digest, files))
        except OSError as exc:  # a full disk: the pairs are tokenized, so train on without a cache
            msg = f"Could not write the cache {cache} ({exc}); training goes on, and the next run tokenizes again"
            warnings.warn(msg, UserWarning, stacklevel=2)
    return pairs


_CACHE_KEYS = ("q_ids", "q_off", "p_ids", "p_off", "group", "source", "source_names")


def _read_cache(cache: Path) -> dict[str, NDArray[Any]]:
    """Every array of a cache file; a ValueError saying so when it is no readable pairs cache."""
    try:
        with np.load(cache, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        # numpy's ValueError for a file that is no .npz advises unpickling it: not passed on
        found = "not an .npz file of arrays" if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    else:
        missing = [key for key in _CACHE_KEYS if key not in arrays]
        if not missing:
            return arrays
        found = f"no {', '.join(missing)}"
    msg = (
        f"Cache {cache} is not a readable matryo pairs cache ({found:.200}): a write an older matryo was interrupted "
        "in, or another file; delete it or pass another --cache path"
    )
    raise ValueError(msg)


def _write_cache(
    file: BinaryIO,
    pairs: PairSet,
    names: list[str],
    max_tokens: int | None,
    tokenizer: str,
    data: tuple[str, list[str], list[int], list[int]],
) -> None:
    data_dir, data_files, data_sizes, data_mtimes = data
    np.savez(
        file,
        q_ids=pairs.queries.ids,
        q_off=pairs.queries.offsets,
        p_ids=pairs.positives.ids,
        p_off=pairs.positives.offsets,
        group=pairs.query_group,
        source=pairs.source,
        source_names=np.asarray(names),
        max_tokens=np.asarray(max_tokens if max_tokens is not None else -1),
        data_dir=np.asarray(data_dir),
        data_files=np.asarray(data_files, dtype=str),
        data_sizes=np.asarray(data_sizes, dtype=np.int64),
        data_mtimes=np.asarray(data_mtimes, dtype=np.int64),
        tokenizer=np.asarray(tokenizer),
    )


def no_duplicate_batches(
    rows: NDArray[np.int64], groups: NDArray[np.int64], batch_size: int, rng: np.random.Generator
) -> Iterator[NDArray[np.int64]]:
    """Shuffle rows into batches in which no query group appears twice.

    A row whose group is already in the batch being filled waits for the next batch, as in
    sentence-transformers' ``NoDuplicatesBatchSampler``. The last, incomplete batch is dropped.

    Args:
        rows: Pair indices to draw from.
        groups: Query group of every pair (indexed by pair index).
        batch_size: Pairs per batch.
        rng: Random generator for the shuffle.

    Yields:
        Arrays of ``batch_size`` pair indices.
    """
    order = rows[rng.permutation(rows.shape[0])]
    pending: list[int] = []
    batch: list[int] = []
    seen: set[int] = set()
    for row in order.tolist():
        g = int(groups[row])
        if g in seen:
            pending.append(row)
            continue
        batch.append(row)
        seen.add(g)
        if len(batch) == batch_size:
            yield np.asarray(batch, dtype=np.int64)
            batch, seen = [], set()
            carry, pending = pending, []
            for r in carry:
                gr = int(groups[r])
                if gr in seen or len(batch) >= batch_size - 1:
                    pending.append(r)
                else:
                    batch.append(r)
                    seen.add(gr)


def single_source_batches(
    rows: NDArray[np.int64],
    groups: NDArray[np.int64],
    sources: NDArray[np.int64],
    batch_size: int,
    rng: np.random.Generator,
) -> Iterator[NDArray[np.int64]]:
    """Batches drawn from one source each, in a shuffled order (one pass over the rows).

    Each source's rows go through :func:`no_duplicate_batches` on their own, and the batches of all
    sources are interleaved at random, so sources appear in proportion to their size (as
    sentence-transformers' ``ProportionalBatchSampler`` does with several datasets). In-batch
    negatives then come from the same kind of text as the positive, not from an easily told-apart
    other source.

    Args:
        rows: Pair indices to draw from.
        groups: Query group of every pair (indexed by pair index).
        sources: Source index of every pair (indexed by pair index).
        batch_size: Pairs per batch.
        rng: Random generator for the shuffles.

    Yields:
        Arrays of ``batch_size`` pair indices, all from one source.
    """
    batches: list[NDArray[np.int64]] = []
    for s in np.unique(sources[rows]).tolist():
        batches.extend(no_duplicate_batches(rows[sources[rows] == s], groups, batch_size, rng))
    for i in rng.permutation(len(batches)).tolist():
        yield batches[i]


def source_factors(
    rows: NDArray[np.int64], sources: NDArray[np.int64], temperature: float, max_repeat: float = 4.0
) -> NDArray[np.float64]:
    """How many times each source's rows are drawn per epoch so that source ``s`` gets a share ``∝ n_s^T``.

    ``temperature`` 1 keeps every source at its size (factor 1); below 1 small sources are drawn more and
    large ones less (0.5: shares in proportion to the square root of the sizes; 0: equal shares), with the
    epoch's expected number of rows unchanged (fewer when a source is capped). No source is repeated more
    than ``max_repeat`` times per epoch, so a tiny file is not memorised.

    Args:
        rows: Training pair indices.
        sources: Source index of every pair (indexed by pair index).
        temperature: Exponent ``T`` of the source sizes.
        max_repeat: Largest factor of any source.

    Returns:
        One factor per source index (0 for sources without training rows).

    Raises:
        ValueError: If ``temperature`` is negative or ``max_repeat`` is not positive.
    """
    if temperature < 0 or max_repeat <= 0:
        msg = f"Expected temperature >= 0 and max_repeat > 0, got {temperature} and {max_repeat}"
        raise ValueError(msg)
    sizes = np.bincount(sources[rows], minlength=int(sources.max()) + 1).astype(np.float64)
    present = sizes > 0
    factors = np.zeros_like(sizes)
    share = sizes[present] ** temperature
    factors[present] = np.minimum(share / share.sum() * sizes.sum() / sizes[present], max_repeat)
    return factors


def weighted_rows(
    rows: NDArray[np.int64], sources: NDArray[np.int64], factors: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.int64]:
    """One epoch's rows: each source's rows ``floor(f)`` times plus a fresh random ``f - floor(f)`` of them.

    Args:
        rows: Training pair indices.
        sources: Source index of every pair (indexed by pair index).
        factors: Factor per source index (see :func:`source_factors`).
        rng: Random generator for the fractional draws.

    Returns:
        The epoch's pair indices (repeats included), grouped by source; batching shuffles them.
    """
    parts: list[NDArray[np.int64]] = []
    for s in np.unique(sources[rows]).tolist():
        own = rows[sources[rows] == s]
        whole, frac = divmod(float(factors[s]), 1.0)
        parts.extend([own] * int(whole))
        extra = round(frac * own.shape[0])
        if extra:
            parts.append(rng.choice(own, size=extra, replace=False))
    return np.concatenate(parts) if parts else rows[:0]
