"""Relational distillation: the student learns which passages the teacher finds alike.

A sample of training passages is embedded once by the teacher (all-MiniLM-L6-v2). At every step a batch of
them is embedded by the static table too, and a KL term pulls the student's softmax over each passage's
cosine similarities to the others toward the teacher's. Only similarities are matched, so the student keeps
its own space and width (unlike tokenlearn's regression onto PCA-reduced teacher vectors), and a few
thousand teacher passages are enough: the teacher is far too slow on 2 CPU cores to embed every positive.
What the term adds is the teacher's sense of topic beyond the training pairs' domains (see the default
model's card for the out-of-domain measurement).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matryo.train._torch import log, require_torch
from matryo.train.data import TokenizedTexts
from matryo.train.teacher import load_teacher

__all__ = ["TeacherTargets", "cut_texts", "pick_passages", "relational_kl", "teacher_targets"]


@dataclass(frozen=True)
class TeacherTargets:
    """Passages and the teacher's embeddings of them.

    Attributes:
        texts: The passages' token ids (without special tokens), exactly as the teacher saw them.
        vectors: (n, teacher width) float32, L2-normalised teacher embeddings, row i for ``texts`` i.
    """

    texts: TokenizedTexts
    vectors: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.texts)


def pick_passages(
    texts: TokenizedTexts, rows: NDArray[np.int64], n: int, rng: np.random.Generator, min_tokens: int = 16
) -> NDArray[np.int64]:
    """Draw up to ``n`` distinct rows whose text has at least ``min_tokens`` tokens, in ascending order.

    Args:
        texts: Tokenized passages.
        rows: Candidate rows (the training rows).
        n: How many to draw.
        rng: Random generator of the draw.
        min_tokens: Shortest passage worth a teacher pass.

    Returns:
        The drawn rows, sorted.
    """
    lengths = texts.offsets[rows + 1] - texts.offsets[rows]
    eligible = rows[lengths >= min_tokens]
    picked = rng.choice(eligible, size=min(n, eligible.shape[0]), replace=False)
    return np.sort(picked).astype(np.int64)


def cut_texts(texts: TokenizedTexts, rows: NDArray[np.int64], max_tokens: int) -> TokenizedTexts:
    """The leading ``max_tokens`` tokens of some texts, as a new :class:`TokenizedTexts`.

    Args:
        texts: Tokenized texts.
        rows: Which texts, in the order wanted.
        max_tokens: Tokens kept per text.

    Returns:
        The cut texts.
    """
    ids, starts = texts.take(rows, max_tokens)
    return TokenizedTexts(ids=ids.astype(np.int32), offsets=np.append(starts, ids.shape[0]).astype(np.int64))


def teacher_targets(
    teacher_dir: str | Path,
    texts: TokenizedTexts,
    cls_id: int = 101,
    sep_id: int = 102,
    batch_size: int = 64,
    verbose: bool = True,
) -> TeacherTargets:
    """Embed passages with the teacher as sentence-transformers does.

    Each passage runs as ``[CLS] ids [SEP]``; the output states are averaged over all positions and
    L2-normalised (all-MiniLM-L6-v2's own mean pooling and normalisation).

    Args:
        teacher_dir: A local Hugging Face BERT-style model folder (all-MiniLM-L6-v2 by default elsewhere).
        texts: The passages' ids without special tokens (cut them first: :func:`cut_texts`; the teacher reads
            at most 512 positions).
        cls_id: Id placed before each passage.
        sep_id: Id placed after each passage.
        batch_size: Passages per forward pass (passages are batched by length).
        verbose: Print progress.

    Returns:
        The passages and their teacher vectors.
    """
    torch = require_torch()
    model = load_teacher(teacher_dir)
    lengths = texts.offsets[1:] - texts.offsets[:-1]
    order = np.argsort(lengths, kind="stable")
    out: NDArray[np.float32] | None = None
    start = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, order.shape[0], batch_size):
            idx = order[lo : lo + batch_size]
            width = int(lengths[idx].max()) + 2
            ids = torch.zeros((idx.shape[0], width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, row in enumerate(idx.tolist()):
                seq = [cls_id, *texts.ids[texts.offsets[row] : texts.offsets[row + 1]].tolist(), sep_id]
                ids[j, : len(seq)] = torch.tensor(seq)
                mask[j, : len(seq)] = 1
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = (hidden * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)
            vecs = torch.nn.functional.normalize(pooled.float(), dim=1).numpy()
            if out is None:
                out = np.zeros((order.shape[0], vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
            if verbose and (lo // batch_size) % 64 == 0:
                log(f"teacher: {lo + idx.shape[0]}/{order.shape[0]} passages {time.perf_counter() - start:.0f}s")
    vectors = out if out is not None else np.zeros((0, 0), dtype=np.float32)
    return TeacherTargets(texts=texts, vectors=vectors)


def relational_kl(student: Any, teacher: Any, dims: Sequence[int], scale: float) -> Any:  # noqa: ANN401
    """KL divergence from the teacher's to the student's similarity distributions, averaged over widths.

    For each passage, the softmax of ``scale * cosine`` over the other passages of the batch (itself left
    out) is computed from the teacher vectors and from each Matryoshka prefix of the student vectors.

    Args:
        student: (n, dim) student embeddings (a torch tensor, not normalised).
        teacher: (n, t) L2-normalised teacher embeddings (a torch tensor).
        dims: Student prefix widths at which the term is taken.
        scale: Inverse temperature, shared by both sides.

    Returns:
        A 0-d tensor.
    """
    torch = require_torch()
    functional = torch.nn.functional
    self_mask = torch.eye(student.shape[0], dtype=torch.bool)
    # -1e4 rather than -inf: exp() of it is exactly 0, and the KL's (target - input) stays finite
    target = functional.log_softmax((scale * (teacher @ teacher.T)).masked_fill(self_mask, -1e4), dim=1)
    total = student.new_zeros(())
    for d in dims:
        s = functional.normalize(student[:, :d], dim=1)
        logits = functional.log_softmax((scale * (s @ s.T)).masked_fill(self_mask, -1e4), dim=1)
        total = total + functional.kl_div(logits, target, log_target=True, reduction="batchmean")
    return total / len(dims)
