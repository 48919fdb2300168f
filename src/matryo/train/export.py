"""Write a trained table as a sentence-transformers 6.x StaticEmbedding folder (root layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from matryo import __version__
from matryo.formats import save_table

__all__ = ["save_static_model"]

# The class path every sentence-transformers release with StaticEmbedding resolves (3.x-5.x define it, 6.x maps it
# to its new module without a warning); the 6.x path would not load before 6.0. StaticEncoder.save_pretrained writes it.
_MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"}]
_CONFIG = {
    # the sentence-transformers version whose format the folder follows (not an installed one), and matryo's
    "__version__": {"sentence_transformers": "6.2.0", "matryo": __version__},
    "model_type": "SentenceTransformer",
    "prompts": {"query": "", "document": ""},
    "default_prompt_name": None,
    "similarity_fn_name": "cosine",
}


_CARD = """---
library_name: sentence-transformers
tags:
- sentence-transformers
- static-embeddings
- matryo
---

# Static embedding model trained with matryo

A static token-embedding table ({rows:,} tokens x {dim} dimensions, stored in {dtype}) in the sentence-transformers
`StaticEmbedding` layout, written by `matryo.train` (`python -m matryo.train`): a text's embedding is the mean of
its tokens' rows. This card is a stub written with the weights; edit it to describe the model.

When the folder was written by `python -m matryo.train`, `training_info.json` next to this file records the
training options, the trained Matryoshka widths (`trained_dims`) and the held-out scores.

```python
from matryo import StaticEncoder

encoder = StaticEncoder.from_pretrained("path/to/this/folder")
vectors = encoder.encode(["a query", "a passage"])
```
{st_note}"""
_ST_FLOAT16 = """
With sentence-transformers, call `.float()` after loading: the table is stored in float16, and pooled in
float16 an empty text gives NaN instead of a zero vector (matryo pools in float32).

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("path/to/this/folder", device="cpu").float()
```
"""
_DATA = """
## Training data

{data}

Credit each source, and follow its licence, wherever this model is published: the licences are those of the pair
files (for matryo's own data, see the README of the folder they came from).
"""
_ST_FLOAT32 = """
With sentence-transformers: `SentenceTransformer("path/to/this/folder", device="cpu")`.
"""


def save_static_model(
    folder: str | Path,
    weights: NDArray[np.floating],
    tokenizer: Tokenizer,
    dtype: str = "float16",
    *,
    data: str | None = None,
) -> Path:
    """Save ``modules.json``, ``config_sentence_transformers.json``, ``model.safetensors`` and ``tokenizer.json``.

    The tokenizer is saved with padding and truncation cleared, as bert-base-uncased ships.
    A short model card stub (``README.md``: what the folder is, a pointer to ``training_info.json``, and for
    float16 the ``.float()`` call sentence-transformers users need) is written only when the folder has no
    ``README.md``: an existing card (a user's, or the shipped default model's hand-written one) is kept.

    Args:
        folder: Output folder (created if needed).
        weights: The (vocab, dim) table.
        tokenizer: The tokenizer (its padding/truncation are cleared on a copy).
        dtype: ``"float16"`` or ``"float32"``.
        data: What the model was trained on (a sentence or two), written into a new card's "Training data"
            section with a reminder to credit the sources; ``None`` writes no such section.

    Returns:
        The folder path.

    Raises:
        ValueError: If the table's height differs from the vocabulary size, it holds NaN or infinity, its values
            do not fit float16 (when asked for), or dtype is unknown.
    """
    out = Path(folder)
    if weights.shape[0] != tokenizer.get_vocab_size(with_added_tokens=True):
        msg = f"Table has {weights.shape[0]} rows, tokenizer {tokenizer.get_vocab_size()} tokens"
        raise ValueError(msg)
    if dtype not in ("float16", "float32"):
        msg = f"dtype must be 'float16' or 'float32', got {dtype!r}"
        raise ValueError(msg)
    if not np.isfinite(weights).all():
        msg = "The table holds NaN or infinity (a diverged training run); nothing was written"
        raise ValueError(msg)
    largest = float(np.abs(weights).max(initial=0.0))
    if dtype == "float16" and largest > float(np.finfo(np.float16).max):
        msg = f"The table's largest value {largest:.6g} overflows float16 (max 65504); save it in float32"
        raise ValueError(msg)
    tensor = np.ascontiguousarray(weights, dtype=np.dtype(dtype))
    out.mkdir(parents=True, exist_ok=True)
    save_table(out / "model.safetensors", "embedding.weight", tensor)
    tok = Tokenizer.from_str(tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(out / "tokenizer.json"))
    (out / "modules.json").write_text(json.dumps(_MODULES, indent=2) + "\n")
    (out / "config_sentence_transformers.json").write_text(json.dumps(_CONFIG, indent=2) + "\n")
    card = out / "README.md"
    if not card.exists():
        note = _ST_FLOAT16 if dtype == "float16" else _ST_FLOAT32
        text = _CARD.format(rows=tensor.shape[0], dim=tensor.shape[1], dtype=dtype, st_note=note)
        if data is not None:
            text += _DATA.format(data=data)
        card.write_text(text)
    return out
