"""Write a trained table as a sentence-transformers 6.x StaticEmbedding folder (root layout)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

__all__ = ["save_static_model"]

_MODULES = [
    {
        "idx": 0,
        "name": "0",
        "path": "",
        "type": "sentence_transformers.sentence_transformer.modules.static_embedding.StaticEmbedding",
    }
]
_CONFIG = {
    "__version__": {"sentence_transformers": "6.2.0", "matryo": "0.1.0"},
    "model_type": "SentenceTransformer",
    "prompts": {"query": "", "document": ""},
    "default_prompt_name": None,
    "similarity_fn_name": "cosine",
}


def save_static_model(
    folder: str | Path, weights: NDArray[np.floating], tokenizer: Tokenizer, dtype: str = "float16"
) -> Path:
    """Save ``modules.json``, ``config_sentence_transformers.json``, ``model.safetensors`` and ``tokenizer.json``.

    The tokenizer is saved with padding and truncation cleared, as bert-base-uncased ships.
    The model card (``README.md``) is not written here.

    Args:
        folder: Output folder (created if needed).
        weights: The (vocab, dim) table.
        tokenizer: The tokenizer (its padding/truncation are cleared on a copy).
        dtype: ``"float16"`` or ``"float32"``.

    Returns:
        The folder path.

    Raises:
        ValueError: If the table's height differs from the vocabulary size, or dtype is unknown.
    """
    from safetensors.numpy import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if weights.shape[0] != tokenizer.get_vocab_size(with_added_tokens=True):
        msg = f"Table has {weights.shape[0]} rows, tokenizer {tokenizer.get_vocab_size()} tokens"
        raise ValueError(msg)
    if dtype not in ("float16", "float32"):
        msg = f"dtype must be 'float16' or 'float32', got {dtype!r}"
        raise ValueError(msg)
    if dtype == "float16" and float(np.abs(weights).max()) > 60000:
        msg = "Table values overflow float16"
        raise ValueError(msg)
    tensor = np.ascontiguousarray(weights, dtype=np.dtype(dtype))
    save_file({"embedding.weight": tensor}, str(out / "model.safetensors"))
    tok = Tokenizer.from_str(tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()
    tok.save(str(out / "tokenizer.json"))
    (out / "modules.json").write_text(json.dumps(_MODULES, indent=2) + "\n")
    (out / "config_sentence_transformers.json").write_text(json.dumps(_CONFIG, indent=2) + "\n")
    return out
