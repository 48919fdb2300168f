"""The training loop: contrastive MultipleNegativesRankingLoss inside a Matryoshka loss, in plain torch.

The model is one ``nn.EmbeddingBag(vocab, dim, mode="mean", sparse=True)``; a text's embedding is the
mean of its token rows, exactly what matryo's numpy encoder and sentence-transformers'
``StaticEmbedding`` compute at inference.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matryo.errors import InvalidArgumentError
from matryo.train._torch import log, require_torch
from matryo.train.crops import crop_pairs, croppable_rows
from matryo.train.data import (
    PairSet,
    TokenizedTexts,
    no_duplicate_batches,
    single_source_batches,
    source_factors,
    weighted_rows,
)
from matryo.train.relational import TeacherTargets, relational_kl

__all__ = ["TrainConfig", "encode_rows", "train_contrastive"]


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_contrastive`.

    Attributes:
        dims: Matryoshka prefix widths, each trained with weight 1 (the last must be the full width).
        batch_size: Pairs per batch (in-batch negatives: batch_size - 1 per query).
        lr: Peak learning rate.
        optimizer: ``"adam"`` (dense gradients; the fastest here), ``"sparse_adam"`` (sparse gradients,
            only the rows in the batch move) or ``"adagrad"``.
        epochs: Passes over the training rows (fractions allowed).
        warmup: Fraction of steps with a linear warm-up.
        schedule: ``"linear"`` decay to zero, ``"cosine"``, or ``"constant"`` after warm-up.
        scale: Inverse temperature of the cosine logits (sentence-transformers uses 20).
        symmetric: Add the positive-to-query direction to the loss.
        same_side_negatives: ``"none"`` (the default), ``"positives"`` or ``"both"``: besides the other
            positives, each positive's softmax (positive to query) also ranks it against the other positives
            of the batch, and with ``"both"`` each query's softmax also against the other queries (the
            "improved contrastive loss" of GTE, Li et al. 2023). Texts of the batch that are the same bag of
            tokens as the anchor (cosine above 0.999) are left out as negatives. Needs ``symmetric`` for
            ``"positives"``.
        seed: Seed of the batch order.
        threads: torch intra-op threads.
        time_budget: Stop after this many seconds (None: no limit); the learning-rate schedule then
            follows elapsed time when that runs out before the planned steps (not reproducible run to run).
        log_every: Print every this many steps (0: never).
        crop_share: Share of every batch made of inverse-cloze crop pairs (a span of a training
            positive as the query, the rest of it as the positive; see :mod:`matryo.train.crops`), in [0, 1).
        crop_min_tokens: Shortest positive that is cut into a crop pair.
        single_source: Draw each batch's pairs from one source file (see
            :func:`matryo.train.data.single_source_batches`) instead of from all of them.
        source_temperature: Each source's share of an epoch (its pairs and the positives its crops are cut
            from) in proportion to its size to this power (1: as is; 0.5: small sources drawn more, large ones
            less; see :func:`matryo.train.data.source_factors`); an epoch keeps its size unless a source is capped.
        max_repeat: Most times a source's pairs are drawn in one epoch when the temperature is below 1.
        distill_weight: Weight of the relational distillation term (used when ``train_contrastive`` gets
            teacher targets; see :mod:`matryo.train.relational`).
        distill_batch: Teacher passages drawn for that term at every step.
        distill_dims: Narrower widths at which the term is taken besides the full width (which always is).
        mask_duplicates: Leave out of each softmax the in-batch texts that equal the anchor's own match: a
            query's other positives that are the same token sequence as its positive (OpenTriviaQA's "True",
            WordNet's gloss shared by synonyms), and for the positive-to-query direction the queries of those
            pairs. Without it they are false negatives, pushed away from a query they answer.
    """

    dims: Sequence[int] = (32, 64, 128, 256, 512)
    batch_size: int = 2048
    lr: float = 0.05
    optimizer: str = "adam"
    epochs: float = 1.0
    warmup: float = 0.05
    schedule: str = "linear"
    scale: float = 20.0
    symmetric: bool = True
    same_side_negatives: str = "none"
    seed: int = 12
    threads: int = 2
    time_budget: float | None = None
    log_every: int = 20
    crop_share: float = 0.0
    crop_min_tokens: int = 32
    single_source: bool = False
    source_temperature: float = 1.0
    max_repeat: float = 4.0
    distill_weight: float = 1.0
    distill_batch: int = 512
    distill_dims: Sequence[int] = (128,)
    mask_duplicates: bool = False
    history: list[tuple[int, float]] = field(default_factory=list)


def _lr_factor(progress: float, cfg: TrainConfig) -> float:
    if progress < cfg.warmup:
        return max(progress / cfg.warmup, 1e-3)
    if cfg.schedule == "constant":
        return 1.0
    frac = min(1.0, (progress - cfg.warmup) / max(1e-9, 1.0 - cfg.warmup))
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    return max(0.0, 1.0 - frac)


def _matryoshka_mnrl(q: Any, p: Any, cfg: TrainConfig, labels: Any, duplicates: Any = None) -> Any:  # noqa: ANN401
    """MultipleNegativesRankingLoss summed over the Matryoshka prefixes, from one pass of block products.

    The prefix similarity matrices are running sums of per-block products ``q[:, a:b] @ p[:, a:b].T``, so
    all widths together cost one full-width matrix product instead of one per width.

    Args:
        q: (batch, dim) query embeddings.
        p: (batch, dim) positive embeddings.
        cfg: Hyper-parameters (dims, scale, symmetric).
        labels: ``arange(batch)``.
        duplicates: Optional (batch, batch) bool tensor, True where pair ``j``'s positive is the same text as
            pair ``i``'s (``i != j``): those logits are left out of both directions' softmax.

    Returns:
        The loss (a 0-d tensor), averaged over the widths.
    """
    torch = require_torch()
    ce = torch.nn.functional.cross_entropy
    same_q = cfg.same_side_negatives == "both"
    same_p = cfg.same_side_negatives in ("positives", "both")
    loss = q.new_zeros(())
    dot = dot_qq = dot_pp = None
    q2 = q.new_zeros(q.shape[0])
    p2 = p.new_zeros(p.shape[0])
    lo = 0
    for d in sorted(cfg.dims):
        qb, pb = q[:, lo:d], p[:, lo:d]
        block = qb @ pb.T
        dot = block if dot is None else dot + block
        q2 = q2 + (qb * qb).sum(dim=1)
        p2 = p2 + (pb * pb).sum(dim=1)
        q_norm = torch.sqrt(q2).clamp_min(1e-12)
        p_norm = torch.sqrt(p2).clamp_min(1e-12)
        logits = dot / (q_norm[:, None] * p_norm[None, :]) * cfg.scale
        if duplicates is not None:
            logits = logits.masked_fill(duplicates, -1e4)  # symmetric, so logits.T is masked alike
        q_logits = logits
        if same_q:
            block = qb @ qb.T
            dot_qq = block if dot_qq is None else dot_qq + block
            q_logits = torch.cat([logits, _same_side_logits(dot_qq, q_norm, cfg.scale)], dim=1)
        part = ce(q_logits, labels)
        if cfg.symmetric:
            p_logits = logits.T
            if same_p:
                block = pb @ pb.T
                dot_pp = block if dot_pp is None else dot_pp + block
                p_logits = torch.cat([p_logits, _same_side_logits(dot_pp, p_norm, cfg.scale)], dim=1)
            part = 0.5 * (part + ce(p_logits, labels))
        loss = loss + part
        lo = d
    return loss / len(cfg.dims)


def _duplicate_mask(ids: NDArray[np.int64], offsets: NDArray[np.int64]) -> Any:  # noqa: ANN401
    """(batch, batch) bool tensor, True where two different texts of a bag are the same token sequence (None: none)."""
    torch = require_torch()
    bounds = np.append(offsets, ids.shape[0])
    keys = [ids[a:b].tobytes() for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]
    _, inverse = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    if inverse.max() + 1 == len(keys):
        return None
    same = inverse[:, None] == inverse[None, :]
    np.fill_diagonal(same, False)
    return torch.from_numpy(same)


def _same_side_logits(dot: Any, norm: Any, scale: float) -> Any:  # noqa: ANN401
    """Scaled cosine logits among one side's texts, with each text itself and its duplicates masked out."""
    torch = require_torch()
    cosine = dot / (norm[:, None] * norm[None, :])
    own = torch.eye(cosine.shape[0], dtype=torch.bool) | (cosine.detach() > 0.999)
    # -1e4 rather than -inf: exp() of it is exactly 0 and a row of the softmax is never all -inf
    return (cosine * scale).masked_fill(own, -1e4)


def encode_rows(
    weights: NDArray[np.float32], texts: TokenizedTexts, rows: NDArray[np.int64], chunk: int = 4096
) -> NDArray[np.float32]:
    """Mean-pool token rows of some texts (un-normalised), using torch's ``embedding_bag``.

    Args:
        weights: The (vocab, dim) table.
        texts: Tokenized texts.
        rows: Which texts to encode.
        chunk: Texts per call.

    Returns:
        Float32 array (len(rows), dim); empty texts give zero rows.
    """
    torch = require_torch()
    table = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32))
    out = np.zeros((rows.shape[0], weights.shape[1]), dtype=np.float32)
    with torch.inference_mode():
        for lo in range(0, rows.shape[0], chunk):
            ids, offs = texts.take(rows[lo : lo + chunk])
            vec = torch.nn.functional.embedding_bag(torch.from_numpy(ids), table, torch.from_numpy(offs), mode="mean")
            out[lo : lo + chunk] = vec.numpy()
    return out


def train_contrastive(
    init: NDArray[np.float32],
    pairs: PairSet,
    train_rows: NDArray[np.int64],
    cfg: TrainConfig,
    callback: Callable[[int, NDArray[np.float32]], None] | None = None,
    callback_every: int = 0,
    teacher: TeacherTargets | None = None,
) -> NDArray[np.float32]:
    """Train the token table with in-batch-negative contrastive loss at every Matryoshka width.

    With ``teacher`` targets, every step also draws ``cfg.distill_batch`` of the teacher's passages and adds
    ``cfg.distill_weight`` times their relational distillation term (:func:`matryo.train.relational.relational_kl`);
    those draws use their own random stream, so the batches are the same as without a teacher.

    Args:
        init: Initial (vocab, dim) table (copied, not modified).
        pairs: Tokenized pairs.
        train_rows: Indices of the pairs to train on.
        cfg: Hyper-parameters.
        callback: Called as ``callback(step, weights)`` every ``callback_every`` steps (e.g. a
            held-out evaluation).
        callback_every: Steps between callbacks (0: never).
        teacher: Passages embedded by a teacher, for the relational distillation term (None: no term).

    Returns:
        The trained float32 table.

    Raises:
        ValueError: If the widest Matryoshka dim exceeds the table width, the optimizer or the same-side
            negatives are unknown, the crop share is outside [0, 1), or the training rows cannot fill one batch
            (an :class:`~matryo.errors.InvalidArgumentError` for the last two: crops or pairs).
    """
    torch = require_torch()
    if cfg.same_side_negatives not in ("none", "positives", "both"):
        msg = f"Unknown same_side_negatives {cfg.same_side_negatives!r}; expected 'none', 'positives' or 'both'"
        raise ValueError(msg)
    if cfg.same_side_negatives == "positives" and not cfg.symmetric:
        msg = "same_side_negatives='positives' needs the symmetric loss (the positive-to-query direction)"
        raise ValueError(msg)
    if max(cfg.dims) > init.shape[1]:
        msg = f"Matryoshka dims {list(cfg.dims)} exceed the table width {init.shape[1]}"
        raise ValueError(msg)
    if not 0 <= cfg.crop_share < 1:  # also refuses NaN
        msg = f"crop_share must be in [0, 1) (a share of each batch; 0: no crops), got {cfg.crop_share}"
        raise ValueError(msg)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    emb = torch.nn.EmbeddingBag.from_pretrained(
        torch.tensor(init, dtype=torch.float32), freeze=False, mode="mean", sparse=cfg.optimizer == "sparse_adam"
    )
    params = list(emb.parameters())
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr)
    elif cfg.optimizer == "sparse_adam":
        opt = torch.optim.SparseAdam(params, lr=cfg.lr)
    elif cfg.optimizer == "adagrad":
        opt = torch.optim.Adagrad(params, lr=cfg.lr)
    else:
        msg = f"Unknown optimizer {cfg.optimizer!r}; expected 'adam', 'sparse_adam' or 'adagrad'"
        raise ValueError(msg)
    n_crop = round(cfg.crop_share * cfg.batch_size)
    pair_batch = cfg.batch_size - n_crop
    crop_rows = croppable_rows(pairs.positives, train_rows, cfg.crop_min_tokens) if n_crop else train_rows[:0]
    if n_crop and crop_rows.shape[0] < n_crop:
        msg = (
            f"Only {crop_rows.shape[0]} positives have {cfg.crop_min_tokens}+ tokens; {n_crop} crops per batch "
            "needed (lower the crop share; 0 turns crops off)"
        )
        raise InvalidArgumentError(msg)
    factors = None
    epoch_rows = train_rows.shape[0]
    if cfg.source_temperature != 1.0:
        factors = source_factors(train_rows, pairs.source, cfg.source_temperature, cfg.max_repeat)
        epoch_rows = round(float(factors[pairs.source[train_rows]].sum()))  # each row drawn its source's factor times
    steps_per_epoch = max(1, epoch_rows // pair_batch)
    total = max(1, int(cfg.epochs * steps_per_epoch))
    labels = torch.arange(cfg.batch_size)
    distill_rng = np.random.default_rng([cfg.seed, 1])
    distill_dims = sorted({d for d in cfg.distill_dims if d < init.shape[1]} | {init.shape[1]})
    start = time.perf_counter()
    step = 0
    running = 0.0
    done = False
    while not done:
        step_at_epoch_start = step
        rows = train_rows
        if factors is not None:
            rows = weighted_rows(train_rows, pairs.source, factors, rng)
            if n_crop:
                crop_rows = croppable_rows(pairs.positives, rows, cfg.crop_min_tokens)
        if cfg.single_source:
            batches = single_source_batches(rows, pairs.query_group, pairs.source, pair_batch, rng)
        else:
            batches = no_duplicate_batches(rows, pairs.query_group, pair_batch, rng)
        for batch in batches:
            progress = step / total
            if cfg.time_budget is not None:  # the schedule follows whichever runs out first
                progress = max(progress, (time.perf_counter() - start) / cfg.time_budget)
            factor = _lr_factor(progress, cfg)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * factor
            q_ids, q_off = pairs.queries.take(batch)
            p_ids, p_off = pairs.positives.take(batch)
            if n_crop:
                cut = crop_pairs(pairs.positives, rng.choice(crop_rows, size=n_crop, replace=False), rng)
                q_ids, q_off = np.concatenate([q_ids, cut[0]]), np.concatenate([q_off, cut[1] + q_ids.shape[0]])
                p_ids, p_off = np.concatenate([p_ids, cut[2]]), np.concatenate([p_off, cut[3] + p_ids.shape[0]])
            q = emb(torch.from_numpy(q_ids), torch.from_numpy(q_off))
            p = emb(torch.from_numpy(p_ids), torch.from_numpy(p_off))
            duplicates = _duplicate_mask(p_ids, p_off) if cfg.mask_duplicates else None
            loss = _matryoshka_mnrl(q, p, cfg, labels, duplicates)
            if teacher is not None and cfg.distill_weight:
                pick = distill_rng.choice(len(teacher), size=min(cfg.distill_batch, len(teacher)), replace=False)
                t_ids, t_off = teacher.texts.take(pick)
                student = emb(torch.from_numpy(t_ids), torch.from_numpy(t_off))
                target = torch.from_numpy(teacher.vectors[pick])
                loss = loss + cfg.distill_weight * relational_kl(student, target, distill_dims, cfg.scale)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                msg = (
                    f"The loss became {value} at step {step} (learning rate {cfg.lr * factor:.4g}, scale {cfg.scale}): "
                    "training diverged, and nothing was saved. Lower the learning rate (--lr) and check --scale "
                    "and --distill-batch."
                )
                raise InvalidArgumentError(msg)
            running = value if step == 1 else 0.95 * running + 0.05 * value
            cfg.history.append((step, value))
            elapsed = time.perf_counter() - start
            if cfg.log_every and step % cfg.log_every == 0:
                rate = step * cfg.batch_size / elapsed
                log(
                    f"step {step}/{total} loss {running:.4f} lr {cfg.lr * factor:.4f} {elapsed:.0f}s {rate:.0f} pairs/s"
                )
            if callback is not None and callback_every and step % callback_every == 0:
                callback(step, emb.weight.detach().numpy().copy())
            if step >= total or (cfg.time_budget is not None and elapsed > cfg.time_budget):
                done = True
                break
        if step == step_at_epoch_start:
            scope = " from one source (single_source)" if cfg.single_source else ""
            msg = (
                f"No full batch of {pair_batch} pairs with distinct queries{scope} in {train_rows.shape[0]} training "
                f"rows; expected at least {pair_batch} distinct queries{scope}: lower batch_size"
                f"{', draw from all sources' if scope else ''} or train on more pairs"
            )
            raise InvalidArgumentError(msg)
    trained: NDArray[np.float32] = np.array(emb.weight.detach().numpy(), dtype=np.float32, copy=True)
    return trained
