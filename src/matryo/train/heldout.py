"""A held-out slice of the training pairs, used for every model-selection decision.

The BEIR evaluation sets are never used for training or selection; this slice is. Each held-out
query must find its own positive among all held-out positives (about 4k documents). A ``crops``
score does the same for long queries: a span cut out of each long held-out positive must find the
rest of its passage (the inverse-cloze task of :mod:`matryo.train.crops`, with a fixed cut).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from matryo.evaluation import dense_run, ndcg_at_k
from matryo.train.crops import crop_pairs, croppable_rows
from matryo.train.data import PairSet, TokenizedTexts
from matryo.train.loop import encode_rows
from matryo.vectors import truncate

__all__ = ["DEFAULT_HELDOUT_SIZE", "HELDOUT_SIZES", "SELECTION_SOURCES", "split_heldout", "heldout_scores"]

#: Held-out pairs per source (at most a tenth of the source). Changing these changes the shipped model's split.
HELDOUT_SIZES = {
    "wikipedia": 1000,
    "medquad": 500,
    "pubmedqa": 100,
    "debian_desc": 500,
    "opentriviaqa": 500,
    "wordnet": 500,
    "gcide": 500,
}
#: Held-out pairs of a source not named in :data:`HELDOUT_SIZES` (at most a tenth of it, too).
DEFAULT_HELDOUT_SIZE = 500
#: Sources whose held-out score drives model selection (dictionary sources have many equally valid senses).
#: Sources not named in :data:`HELDOUT_SIZES` (a user's own pair files) count towards selection too.
SELECTION_SOURCES = ("wikipedia", "medquad", "pubmedqa", "debian_desc", "opentriviaqa")


def split_heldout(pairs: PairSet, seed: int = 12) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Split pair indices into training and held-out rows.

    Each source holds out ``HELDOUT_SIZES[name]`` pairs, or :data:`DEFAULT_HELDOUT_SIZE` for a name not
    listed there, and never more than a tenth of its pairs (so a source under 10 pairs holds out none).
    Every pair whose (lower-cased) query also occurs among the held-out queries is removed from
    training too, so no held-out query is seen in training.

    Args:
        pairs: Tokenized pairs.
        seed: Seed of the draw.

    Returns:
        ``(train_rows, heldout_rows)``.
    """
    rng = np.random.default_rng(seed)
    held: list[NDArray[np.int64]] = []
    for s, name in enumerate(pairs.source_names):
        rows = np.flatnonzero(pairs.source == s)
        n = min(HELDOUT_SIZES.get(name, DEFAULT_HELDOUT_SIZE), rows.shape[0] // 10)
        if n:
            held.append(np.sort(rng.choice(rows, size=n, replace=False)))
    heldout = np.concatenate(held) if held else np.zeros(0, dtype=np.int64)
    banned = np.isin(pairs.query_group, pairs.query_group[heldout])
    train = np.flatnonzero(~banned).astype(np.int64)
    return train, heldout.astype(np.int64)


def heldout_scores(
    weights: NDArray[np.float32], pairs: PairSet, heldout: NDArray[np.int64], dims: tuple[int, ...] = (128, 512)
) -> dict[str, float]:
    """NDCG@10 of held-out queries against the pool of held-out positives.

    Args:
        weights: The (vocab, dim) table.
        pairs: Tokenized pairs.
        heldout: Held-out pair indices.
        dims: Matryoshka widths to score.

    Returns:
        ``{"<source>@<dim>": ndcg, "select@<dim>": mean over the selection sources, "crops@<dim>": ndcg}``.
        The selection sources are :data:`SELECTION_SOURCES` and any source not named in :data:`HELDOUT_SIZES`.
        A score with nothing to score is left out, never 0.0: ``<source>@<dim>`` when the source has no
        held-out pair, ``select@<dim>`` when no selection source has, ``crops@<dim>`` when no held-out positive
        is long enough to cut; no held-out pair at all gives ``{}``.
    """
    if heldout.shape[0] == 0:
        return {}
    q = encode_rows(weights, pairs.queries, heldout)
    p = encode_rows(weights, pairs.positives, heldout)
    ids = [str(i) for i in heldout.tolist()]
    long_rows = croppable_rows(pairs.positives, heldout)
    cq_ids, cq_off, cp_ids, cp_off = crop_pairs(pairs.positives, long_rows, np.random.default_rng(0))
    every = np.arange(long_rows.shape[0], dtype=np.int64)
    cq = encode_rows(weights, TokenizedTexts(cq_ids.astype(np.int32), np.append(cq_off, cq_ids.shape[0])), every)
    cp = encode_rows(weights, TokenizedTexts(cp_ids.astype(np.int32), np.append(cp_off, cp_ids.shape[0])), every)
    crop_ids = [str(i) for i in every.tolist()]
    out: dict[str, float] = {}
    for d in dims:
        if d > weights.shape[1]:
            continue
        run = dense_run(truncate(q, d), truncate(p, d), ids, ids, k=10)
        sel = []
        for s, name in enumerate(pairs.source_names):
            mask = pairs.source[heldout] == s
            if not mask.any():
                continue
            qrels = {ids[i]: {ids[i]: 1} for i in np.flatnonzero(mask)}
            out[f"{name}@{d}"] = ndcg_at_k(run, qrels, 10)
            if name in SELECTION_SOURCES or name not in HELDOUT_SIZES:
                sel.append(out[f"{name}@{d}"])
        if sel:
            out[f"select@{d}"] = float(np.mean(sel))
        if crop_ids:
            crun = dense_run(truncate(cq, d), truncate(cp, d), crop_ids, crop_ids, k=10)
            out[f"crops@{d}"] = ndcg_at_k(crun, {i: {i: 1} for i in crop_ids}, 10)
    return out
