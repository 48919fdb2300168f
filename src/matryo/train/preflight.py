"""Checks of the training pairs against the options, run by ``matryo train`` before the slow teacher pass.

A batch size the pairs cannot fill would otherwise fail only in the training loop, after the teacher has
embedded the whole vocabulary (about a minute); a pair file too small for one batch would be skipped without
a word, and so would the training pairs the held-out split leaves out. The messages name the options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from matryo.errors import InvalidArgumentError
from matryo.train.crops import croppable_rows
from matryo.train.data import PairSet, pair_files, source_factors, source_name
from matryo.train.loop import TrainConfig

__all__ = ["check_batches", "heldout_report", "skipped_sources"]


def skipped_sources(names: list[str], pairs: PairSet, folder: str | Path) -> tuple[list[int], str | None]:
    """Resolve ``--skip-sources`` names to source indices.

    Every name has a pair file (the CLI checks that before reading the data).

    Args:
        names: The names given.
        pairs: The pairs read from ``folder``.
        folder: The data folder.

    Returns:
        The source indices to leave out of training, and a warning for names whose pair file holds no pair
        (there is nothing to skip), or None.
    """
    unknown = sorted(set(names) - set(pairs.source_names))
    files = {source_name(path): path.name for path in pair_files(folder)}
    warning = None
    if unknown:
        shown = ", ".join(files[name] for name in unknown)
        warning = f"--skip-sources {unknown}: {shown} holds no pairs, so there is nothing to skip"
    return [pairs.source_names.index(name) for name in names if name in pairs.source_names], warning


def heldout_report(pairs: PairSet, train_rows: NDArray[np.int64], heldout: NDArray[np.int64]) -> str | None:
    """Say how many pairs the held-out split keeps out of training besides the held-out ones, and why.

    Args:
        pairs: The pairs.
        train_rows: Training rows from :func:`matryo.train.heldout.split_heldout` (before any source is skipped).
        heldout: Held-out rows.

    Returns:
        One log line (``warning: ...`` when it is more than a tenth of the pairs not held out), or None when no
        pair is left out.
    """
    left_out = np.ones(len(pairs), dtype=bool)
    left_out[train_rows] = False
    left_out[heldout] = False
    n = int(left_out.sum())
    if not n:
        return None
    per_file = np.bincount(pairs.source[left_out], minlength=len(pairs.source_names))
    shown = ", ".join(f"{name} {int(k)}" for name, k in zip(pairs.source_names, per_file, strict=True) if k)
    pool = len(pairs) - heldout.shape[0]
    line = (
        f"held-out split: {n} of the {pool} pairs not held out are left out of training too ({shown}): their query "
        "is also the query of a held-out pair, and no held-out query is trained on"
    )
    return f"warning: {line}" if n > pool / 10 else line


@dataclass
class _File:
    """One pair file's training rows, as a batch sees them."""

    name: str
    pairs: int  # training pairs
    queries: int  # distinct queries among them
    usable: int  # most distinct queries one epoch can draw (fewer than ``queries`` when the temperature subsamples)

    def describe(self) -> str:
        text = f"{self.name} {self.pairs}"
        if self.queries < self.pairs:
            text += f" ({self.queries} distinct queries)"
        if self.usable < self.queries:
            text += f" ({self.usable} drawn per epoch)"
        return text


def _largest_batch(limit: int, crop_share: float, croppable: int) -> int:
    """Largest batch size whose pair part is 1 to ``limit`` and whose crop part is at most ``croppable`` (0: none)."""
    bound = (limit + 1) / (1 - crop_share)
    if crop_share > 0:
        bound = min(bound, (croppable + 1) / crop_share)
    size = int(bound) + 2
    while size > 0:
        n_crop = round(crop_share * size)
        if 1 <= size - n_crop <= limit and n_crop <= croppable:
            return size
        size -= 1
    return 0


def check_batches(pairs: PairSet, train_rows: NDArray[np.int64], cfg: TrainConfig, skipped: list[int]) -> list[str]:
    """Refuse a batch size the training pairs cannot fill; warn about pair files too small for one batch.

    The training loop drops a batch it cannot fill with pairs of distinct queries (and, with single-source
    batches, from one pair file), so a file with fewer distinct queries than a batch takes is never trained on.

    Args:
        pairs: The pairs.
        train_rows: The training rows (skipped sources removed).
        cfg: The training configuration (batch size, crop share, single source, source temperature).
        skipped: Source indices left out of training (``--skip-sources``).

    Returns:
        Warning lines (without the ``warning:`` prefix) for pair files no batch is drawn from.

    Raises:
        InvalidArgumentError: If not one batch can be filled; the message names each file's training pairs, the
            batch size that would fit and the other ways out.
    """
    n_crop = round(cfg.crop_share * cfg.batch_size)
    pair_batch = cfg.batch_size - n_crop
    factors = None
    if cfg.source_temperature != 1.0 and train_rows.shape[0]:
        factors = source_factors(train_rows, pairs.source, cfg.source_temperature, cfg.max_repeat)
    files: list[_File] = []
    for s, name in enumerate(pairs.source_names):
        if s in skipped:
            continue
        own = train_rows[pairs.source[train_rows] == s]
        queries = int(np.unique(pairs.query_group[own]).shape[0])
        usable = queries
        if factors is not None and factors[s] < 1:  # an epoch draws a random part of the file
            usable = min(queries, round(float(factors[s]) * own.shape[0]))
        files.append(_File(name, int(own.shape[0]), queries, usable))
    mixed = min(int(np.unique(pairs.query_group[train_rows]).shape[0]), sum(f.usable for f in files))
    capacity = max((f.usable for f in files), default=0) if cfg.single_source else mixed
    croppable = int(croppable_rows(pairs.positives, train_rows, cfg.crop_min_tokens).shape[0]) if cfg.crop_share else 0
    if 1 <= pair_batch <= capacity and n_crop <= croppable:
        if not cfg.single_source:
            return []
        short = [f for f in files if f.usable < pair_batch]
        if not short:
            return []
        fits = _largest_batch(min(f.usable for f in short), cfg.crop_share, croppable)
        ways = ([f"--batch-size {fits} or less"] if fits > 1 else []) + ["--batch-sources mixed"]
        names = " ".join(f.name for f in short)
        return [
            f"each batch takes {pair_batch} training pairs with distinct queries from one pair file (--batch-sources "
            "single), so these files, which have fewer, are never trained on: "
            f"{', '.join(f.describe() for f in short)}; pass {' or '.join(ways)} to train on them, or --skip-sources "
            f"{names} to leave them out on purpose"
        ]
    where = "from one pair file (--batch-sources single)" if cfg.single_source else "(--batch-sources mixed)"
    takes = f"--batch-size {cfg.batch_size} takes {pair_batch} training pairs with distinct queries {where}"
    if n_crop:
        takes += (
            f" and {n_crop} crop pairs cut from training positives of {cfg.crop_min_tokens}+ tokens "
            f"(--crop-share {cfg.crop_share})"
        )
    found = []
    if pair_batch < 1:
        found.append("that leaves no room for a training pair")
    elif not any(f.pairs for f in files):
        found.append("no pair file is left to train on")
    elif pair_batch > capacity:
        most = "the largest pair file has" if cfg.single_source else "there are"
        found.append(f"{most} {capacity} such pairs")
    if n_crop > croppable:
        found.append(f"only {croppable} training positives are that long")
    listing = ", ".join(f.describe() for f in files) or "none"
    if skipped:
        listing += f"; skipped: {', '.join(pairs.source_names[s] for s in skipped)}"
    ways = []
    fits = _largest_batch(capacity, cfg.crop_share, croppable)
    if fits > 1:
        ways.append(f"--batch-size {fits} or less")
    if cfg.single_source and pair_batch <= mixed and n_crop <= croppable:
        ways.append("--batch-sources mixed")
    if n_crop > croppable:
        ways.append("--crop-share 0 (no crop pairs)")
    if skipped and not any(f.pairs for f in files):
        ways.append("fewer --skip-sources names")
    fix = (f"pass {' or '.join(ways)}, or " if ways else "") + "add pairs to --data"
    msg = f"{takes}, but {' and '.join(found)} (training pairs per file: {listing}); {fix}"
    raise InvalidArgumentError(msg)
