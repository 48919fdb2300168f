"""Mean pooling of token rows into text vectors, and the batching around it."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["batch_bounds", "normalize_rows", "pool_into", "sum_rows"]

SHORT_MAX = 32  # texts up to this many tokens are pooled in length buckets, longer ones one by one
BUCKET_BYTES = 4 << 20  # cap on the gather temporary of one bucket step
BATCH_CHARS = 256_000  # a batch also ends here: ~250 passages or ~2,000 queries per tokenizer call
NORM_EPS = 1e-12  # torch.nn.functional.normalize's eps, for parity


def pool_into(ids: list[list[int]], table: NDArray[np.float32], out: NDArray[np.float32]) -> None:
    """Write the mean of each id list's rows of ``table`` into ``out`` (empty lists stay zero)."""
    lengths = np.fromiter(map(len, ids), dtype=np.intp, count=len(ids))
    dim = table.shape[1]
    order = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[order]
    bounds = np.flatnonzero(np.diff(sorted_lengths)) + 1
    groups = np.split(order, bounds)
    for group in groups:
        length = int(lengths[group[0]])
        if length == 0:
            continue
        if length <= SHORT_MAX:
            step = max(1, BUCKET_BYTES // (length * dim * 4))
            for s in range(0, len(group), step):
                rows = group[s : s + step]
                id_matrix = np.array([ids[r] for r in rows], dtype=np.intp)
                out[rows] = table[id_matrix].sum(axis=1) / length
        else:
            for r in group:
                out[r] = table.take(ids[r], axis=0).sum(axis=0) / length


def sum_rows(ids: list[int], table: NDArray[np.float32], *, block: int = 2048) -> NDArray[np.float64]:
    """The float64 sum of ``table``'s rows over ``ids`` (repeats counted), as counts times distinct rows.

    A long text repeats its tokens, so its rows are summed once per distinct id, weighted by its count: the
    temporaries scale with the distinct ids (in blocks of ``block`` rows), not with the text's length, and the
    sum is exact to float64 rounding.
    """
    unique, counts = np.unique(np.asarray(ids, dtype=np.intp), return_counts=True)
    total = np.zeros(table.shape[1], dtype=np.float64)
    for start in range(0, unique.shape[0], block):
        rows = table[unique[start : start + block]].astype(np.float64)
        total += counts[start : start + block].astype(np.float64) @ rows
    return total


def batch_bounds(texts: list[str], batch_size: int) -> list[int]:
    """Start offsets of the batches (plus the end): ``batch_size`` texts, fewer when they pass ``BATCH_CHARS``."""
    bounds = [0]
    chars = 0
    for i, text in enumerate(texts):
        if i - bounds[-1] >= batch_size or (chars >= BATCH_CHARS and i > bounds[-1]):
            bounds.append(i)
            chars = 0
        chars += len(text)
    if len(texts) > bounds[-1]:
        bounds.append(len(texts))
    return bounds


def normalize_rows(vectors: NDArray[np.float32]) -> None:
    """L2-normalise rows in place; an all-zero row stays zero (``NORM_EPS`` as in torch's ``normalize``)."""
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    np.maximum(norms, NORM_EPS, out=norms)
    vectors /= norms[:, None]
