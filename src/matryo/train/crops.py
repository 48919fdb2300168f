"""Inverse-cloze crop pairs: a span of a passage as the query, the rest of the passage as its positive.

The training pairs have short queries (six tokens on average: titles, headwords, questions), while
retrieval with a sentence or a whole paragraph as the query (a scientific claim, an argument) needs
long-text to long-text similarity. Cutting a random span out of a training passage and asking the
model to find the passage it came from (the inverse cloze task of ORQA, Lee et al. 2019) teaches
exactly that, from the same text, with a fresh cut every time a passage is drawn.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from matryo.train.data import TokenizedTexts

__all__ = ["crop_pairs", "croppable_rows"]


def croppable_rows(texts: TokenizedTexts, rows: NDArray[np.int64], min_tokens: int = 32) -> NDArray[np.int64]:
    """Keep the rows whose text has at least ``min_tokens`` tokens.

    Args:
        texts: Tokenized passages.
        rows: Candidate row indices.
        min_tokens: Shortest passage worth cutting.

    Returns:
        The qualifying rows, in the given order.
    """
    lengths = texts.offsets[rows + 1] - texts.offsets[rows]
    kept: NDArray[np.int64] = rows[lengths >= min_tokens]
    return kept


def crop_pairs(
    texts: TokenizedTexts,
    rows: NDArray[np.int64],
    rng: np.random.Generator,
    span: tuple[float, float] = (0.1, 0.5),
    min_query_tokens: int = 4,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Cut one contiguous span out of each passage: the span is the query, the remainder the positive.

    Args:
        texts: Tokenized passages.
        rows: Which passages to cut (each should be several times longer than ``min_query_tokens``).
        rng: Random generator for the span lengths and positions.
        span: Range of the span's share of the passage length, drawn uniformly.
        min_query_tokens: Shortest span.

    Returns:
        ``(query_ids, query_offsets, positive_ids, positive_offsets)`` in the ``EmbeddingBag`` layout
        (flat int64 ids and the start of each text inside them).
    """
    starts = texts.offsets[rows]
    lengths = texts.offsets[rows + 1] - starts
    share = rng.uniform(span[0], span[1], size=rows.shape[0])
    q_len = np.clip(np.rint(share * lengths).astype(np.int64), min_query_tokens, np.maximum(lengths - 1, 1))
    q_len = np.minimum(q_len, lengths)
    q_start = (rng.random(rows.shape[0]) * (lengths - q_len + 1)).astype(np.int64)

    # Every token of every passage, with its position inside the passage.
    total = int(lengths.sum())
    bag = np.zeros(rows.shape[0], dtype=np.int64)
    np.cumsum(lengths[:-1], out=bag[1:])
    local = np.arange(total, dtype=np.int64) - np.repeat(bag, lengths)
    source = np.repeat(starts, lengths) + local
    lo = np.repeat(q_start, lengths)
    in_span = (local >= lo) & (local < lo + np.repeat(q_len, lengths))
    ids = texts.ids[source].astype(np.int64)

    q_off = np.zeros(rows.shape[0], dtype=np.int64)
    np.cumsum(q_len[:-1], out=q_off[1:])
    p_len = lengths - q_len
    p_off = np.zeros(rows.shape[0], dtype=np.int64)
    np.cumsum(p_len[:-1], out=p_off[1:])
    # Boolean selection keeps the passage order, so each text's tokens stay contiguous.
    return ids[in_span], q_off, ids[~in_span], p_off
