"""Initial token tables: PCA of teacher token vectors, frequency (SIF) weighting, padding to the width."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from matryo.train.data import PairSet

__all__ = ["token_counts", "sif_weights", "pca_rotate", "build_init", "random_init"]


def token_counts(pairs: PairSet, rows: NDArray[np.int64] | None = None, vocab_size: int = 30522) -> NDArray[np.int64]:
    """Count token ids over queries and positives.

    Args:
        pairs: Tokenized pairs.
        rows: Only count these pairs (None: all).
        vocab_size: Table height.

    Returns:
        int64 counts of length ``vocab_size``.
    """
    counts = np.zeros(vocab_size, dtype=np.int64)
    for texts in (pairs.queries, pairs.positives):
        ids = texts.ids if rows is None else texts.take(rows)[0]
        counts += np.bincount(ids, minlength=vocab_size)[:vocab_size]
    return counts


def sif_weights(counts: NDArray[np.int64], a: float = 1e-3) -> NDArray[np.float32]:
    """Smooth inverse frequency weights ``a / (a + p(token))``.

    Args:
        counts: Token counts.
        a: The SIF coefficient; smaller down-weights frequent tokens harder.

    Returns:
        float32 weights in (0, 1], 1 for unseen tokens.
    """
    p = counts.astype(np.float64) / max(1, int(counts.sum()))
    return (a / (a + p)).astype(np.float32)


def pca_rotate(vectors: NDArray[np.float32], counts: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
    """Center and rotate vectors onto their principal axes, largest variance first.

    Args:
        vectors: (n, d) float32.
        counts: Optional token counts; when given, the mean and covariance are weighted by
            ``log1p(count)`` so that tokens real text uses shape the axes.

    Returns:
        (n, d) float32, columns in decreasing variance order.
    """
    x = vectors.astype(np.float64)
    w = np.ones(x.shape[0]) if counts is None else np.log1p(counts.astype(np.float64)) + 1e-3
    w = w / w.sum()
    mean = w @ x
    xc = x - mean
    cov = (xc * w[:, None]).T @ xc
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    rotated: NDArray[np.float32] = (xc @ evecs[:, order]).astype(np.float32)
    return rotated


def random_init(vocab_size: int, dim: int, seed: int) -> NDArray[np.float32]:
    """N(0, 1) table, what ``nn.EmbeddingBag`` and sentence-transformers start from.

    Args:
        vocab_size: Rows.
        dim: Columns.
        seed: Random seed.

    Returns:
        float32 (vocab_size, dim).
    """
    return np.random.default_rng(seed).standard_normal((vocab_size, dim), dtype=np.float32)


def build_init(
    teacher: NDArray[np.float32],
    dim: int,
    counts: NDArray[np.int64],
    sif_a: float | None = 1e-3,
    pad_std: float = 0.1,
    seed: int = 12,
) -> NDArray[np.float32]:
    """Teacher token vectors -> PCA -> SIF weights folded into rows -> padded to ``dim`` columns.

    The table is scaled so that its entries have RMS 1 over the teacher columns, which puts it on the
    same footing as a N(0, 1) random table for the optimizer. Columns beyond the teacher width are
    N(0, pad_std^2) noise (zeros would be a saddle point that gradients never leave).

    Args:
        teacher: (vocab, t) teacher token vectors.
        dim: Output width (may be smaller or larger than t).
        counts: Token counts on the training text.
        sif_a: SIF coefficient (None: no frequency weighting).
        pad_std: Std of the padding columns.
        seed: Seed of the padding noise.

    Returns:
        float32 (vocab, dim).
    """
    rotated = pca_rotate(teacher, counts)[:, :dim]
    rotated /= np.sqrt(np.mean(rotated**2)) + 1e-12
    # Norm per row = mean-pool weight; fold SIF into rows relative to the mean row norm.
    if sif_a is not None:
        rotated *= sif_weights(counts, sif_a)[:, None]
        rotated /= np.sqrt(np.mean(rotated**2)) + 1e-12
    if rotated.shape[1] < dim:
        rng = np.random.default_rng(seed)
        pad = rng.standard_normal((rotated.shape[0], dim - rotated.shape[1]), dtype=np.float32) * pad_std
        rotated = np.concatenate([rotated, pad], axis=1)
    return np.ascontiguousarray(rotated, dtype=np.float32)
