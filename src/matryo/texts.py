"""Input texts: the checks ``encode`` runs on them, and where a very long text may be cut into pieces.

A text longer than ``matryo.encoder``'s piece size is tokenized piece by piece; :func:`spans` cuts it only where
tokenizing the pieces separately gives exactly the whole text's tokens (:func:`piece_boundaries`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
from tokenizers import Tokenizer

from matryo.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["SPLIT_DISAGREES", "check_texts", "check_unicode", "piece_boundaries", "spans", "splits_on_whitespace"]

# Characters that Python's str.split() treats as whitespace but BERT's normalizer deletes (so they join words):
SPLIT_DISAGREES = re.compile("[\x0b\x0c\x1c-\x1f\x85]")

# Whitespace that BERT's normalizer keeps as a word break (space, \t, \n, \r, Zs, line/paragraph separators).
WHITESPACE = re.compile("[ \t\n\r\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
# Zero-width: the position before a run of spaces (or of other whitespace) that follows a non-whitespace
# character; not after a newline or tab, which GPT-2-style pre-tokenizers join to the indentation after them
# ("\n   " is one pre-token). The lookahead comes first: it rules most positions out faster.
_BEFORE_SPACES = re.compile(r"(?= )(?<=\S)")
_BEFORE_WHITESPACE = re.compile(r"(?=\s)(?<=\S)")

# Where BERT's pre-tokenizer splits besides whitespace: ASCII punctuation and CJK ideographs.
ASCII_PUNCTUATION = "".join(chr(c) for c in range(33, 127) if not chr(c).isalnum())
CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"

# The only code points a Python str can hold that UTF-8 (and so the tokenizer) cannot encode.
SURROGATE = re.compile("[\ud800-\udfff]")


def check_texts(texts: str | Iterable[str], what: str = "texts") -> list[str]:
    """``texts`` as a list of str (one str, a 0-d array or an iterable), or an InvalidTypeError naming the bad item.

    ``what`` names the argument in the messages (``"queries"`` for a search).
    """
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()  # a 0-d array gives its one item
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray, memoryview)):  # iterating bytes gives ints
        kind = type(texts).__name__
        msg = f"{what} must be a str or a sequence of str, not {kind}; decode them first (e.g. .decode('utf-8'))."
        raise InvalidTypeError(msg)
    if texts is None:
        msg = f"{what} must be a str or an iterable of str, got NoneType."
        raise InvalidTypeError(msg)
    if isinstance(texts, Mapping) or getattr(texts, "ndim", 1) >= 2:
        # iterating a dict or a DataFrame gives its keys or column names, which would be embedded without a word
        kind = "a mapping (iterating it gives its keys)" if isinstance(texts, Mapping) else "a 2-D table"
        msg = (
            f"{what} must be a str or a flat iterable of str, got {type(texts).__name__}, {kind}. Pass one column "
            "(df['text']) or list(d.values())."
        )
        raise InvalidTypeError(msg)
    try:
        items = texts if isinstance(texts, list) else list(texts)
    except TypeError as exc:
        msg = f"{what} must be a str or an iterable of str, got {type(texts).__name__}."
        raise InvalidTypeError(msg) from exc
    for i, text in enumerate(items):
        if not isinstance(text, str):
            msg = f"{what}[{i}] must be a str, got {type(text).__name__}: {text!r:.60}. {_fix(text)}"
            raise InvalidTypeError(msg)
    return items


def check_unicode(texts: list[str], exc: Exception) -> None:
    """After the tokenizer failed: raise an InvalidArgumentError naming the first text that is not valid Unicode."""
    for i, text in enumerate(texts):
        bad = SURROGATE.search(text)
        if bad is not None:
            msg = (
                f"texts[{i}] is not valid Unicode (a lone surrogate {bad.group()!r} at character {bad.start()}), so "
                "the tokenizer cannot read it. Repair it first, e.g. "
                "text.encode('utf-8', errors='replace').decode('utf-8'), or decode the source bytes with "
                "errors='replace'."
            )
            raise InvalidArgumentError(msg) from exc


def splits_on_whitespace(tokenizer: Tokenizer) -> bool:
    """Whether a text's tokens are the concatenation of its whitespace-separated words' tokens.

    True for BERT-style tokenizers (BertNormalizer with clean_text and handle_chinese_chars, BertPreTokenizer,
    WordPiece) whose added
    tokens contain no whitespace: the normalizer works per character, the pre-tokenizer splits on whitespace
    (and punctuation) before WordPiece sees a word. Other tokenizers take the plain path.
    """
    config = json.loads(tokenizer.to_str())
    normalizer = config.get("normalizer") or {}
    pre_tokenizer = config.get("pre_tokenizer") or {}
    model = config.get("model") or {}
    added = [token.get("content", "") for token in config.get("added_tokens") or []]
    return (
        normalizer.get("type") == "BertNormalizer"
        and bool(normalizer.get("clean_text", False))
        and bool(normalizer.get("handle_chinese_chars", False))
        and pre_tokenizer.get("type") == "BertPreTokenizer"
        and model.get("type") == "WordPiece"
        and not any(any(ch.isspace() for ch in token) for token in added)
    )


def spans(text: str, size: int, boundaries: Sequence[re.Pattern[str]]) -> Iterator[tuple[int, int]]:
    """Cut ``text`` into (start, end) pieces of about ``size`` characters, each ending where a boundary match ends.

    ``boundaries`` are tried in order of preference (whitespace before punctuation). A piece only ends where
    tokenizing the pieces separately gives the same tokens as the whole text; a stretch with no boundary
    character at all (one enormous "word", which tokenizes to a single [UNK]) stays in one piece.
    """
    start = 0
    while start < len(text):
        end = start + size
        if end >= len(text):
            yield start, len(text)
            return
        cut = None
        for boundary in boundaries:
            for window in (max(start, end - 1024), start):
                for match in boundary.finditer(text, window, end):
                    if match.end() > start:  # a zero-width boundary can match where the piece starts
                        cut = match.end()
                if cut is not None:
                    break
            if cut is not None:
                break
        if cut is None:
            ahead = [m.end() for m in (b.search(text, end) for b in boundaries) if m and m.end() > start]
            cut = min(ahead) if ahead else len(text)
        yield start, cut
        start = cut


def piece_boundaries(tokenizer: Tokenizer) -> tuple[re.Pattern[str], ...]:
    """Where a long text may be cut for ``tokenizer`` (each match's end), in order of preference.

    For BERT-style tokenizers (:func:`splits_on_whitespace`): after whitespace, then after ASCII punctuation and
    CJK ideographs, where BERT's pre-tokenizer splits anyway, unless the character belongs to an added token such
    as "[CLS]" or "東京" (a cut inside one would split it). For others: just before a run of spaces, then before a
    run of other whitespace, so the space stays with the word after it, where sentencepiece-style (Metaspace, "▁word")
    and GPT-2-style (ByteLevel, "Ġword") pre-tokenizers put it; a cut after the space left a piece ending in a
    lone space and the next one starting without its word's marker.
    """
    if not splits_on_whitespace(tokenizer):
        return (_BEFORE_SPACES, _BEFORE_WHITESPACE)
    added = {ch for token in tokenizer.get_added_tokens_decoder().values() for ch in token.content}
    punctuation = re.escape("".join(ch for ch in ASCII_PUNCTUATION if ch not in added))
    cut = f"[{punctuation}{CJK_RANGES}]"
    cjk = re.compile(f"[{CJK_RANGES}]")
    added_cjk = "".join(sorted(ch for ch in added if cjk.fullmatch(ch)))
    if added_cjk:  # an added token of ideographs (a domain word such as "東京"): never cut after one of them
        cut = f"(?![{re.escape(added_cjk)}]){cut}"
    return (WHITESPACE, re.compile(cut))


def _fix(item: object) -> str:
    """What to do about a non-str item in ``texts``."""
    if item is None or (isinstance(item, float) and math.isnan(item)) or type(item).__name__ in ("NAType", "NaTType"):
        # str() would embed the word "nan" for every missing row
        return (
            "It is a missing value: drop the rows without text (series.dropna()) or fill them with '' (an empty "
            "text embeds as a zero vector, which no search returns)."
        )
    if isinstance(item, (bytes, bytearray, memoryview)):
        return "Decode bytes first (e.g. b.decode('utf-8'))."
    if isinstance(item, (list, tuple)) or getattr(item, "ndim", 0) >= 1:
        return "Pass a flat list of strings (a nested list or a 2-D array holds lists, not texts)."
    return "Convert it with str() if it is text."
