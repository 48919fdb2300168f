"""Shared fixtures: tiny static models built in code and saved in every folder layout matryo reads."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

T = TypeVar("T")

TINY_WORDS = (
    "the a an of to and in is it for on with as was at by be this that from or are not have has had "
    "cat dog bird fish tree house car road river city water fire earth wind light dark read write file gzip "
    "parse command line argument python code data search vector query document model fast slow big small "
    "##s ##ed ##ing ##er ##ly ##est"
).split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LAYOUTS = ("st_hub", "st_root", "model2vec")


def missing_data(path: Path) -> bool:
    """Whether a test needing the BEIR set at ``path`` (``../shared/data/...``, outside the repository) is skipped.

    A fresh clone has no such folder, so the test is skipped there. In CI (``CI`` set to true, 1 or yes, as
    ``.ci/run`` sets it on the development machines, which hold the data) a missing set is a collection error
    naming the folder, not a skip: the test cannot be turned off unnoticed.
    """
    if path.is_dir():
        return False
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI is set and the BEIR set {path} (../shared/data, outside the repository) is missing", False)
    return True


def load_standin() -> Any:
    """Import ``benchmarks/standin.py`` (stand-in model builder and text sets), once per session."""
    name = "matryo_benchmarks_standin"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "benchmarks" / "standin.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def traced_peak(call: Callable[[], T]) -> tuple[T, int]:
    """Run ``call`` under tracemalloc; return its result and the peak bytes Python allocated meanwhile."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def make_tokenizer(max_length: int | None = None) -> Tokenizer:
    """A tiny lowercase WordPiece tokenizer in the style of bert-base-uncased (plus single characters)."""
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-")
    vocab_list = SPECIALS + TINY_WORDS + [c for c in chars if c not in TINY_WORDS]
    vocab_list += [f"##{c}" for c in chars if c.isalnum()]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.add_special_tokens(SPECIALS)
    if max_length is not None:
        tokenizer.enable_truncation(max_length)
    return tokenizer


def make_default_width_model(folder: Path, *, dim: int = 64, default: int = 24, seed: int = 0) -> Path:
    """Save (with ``save_pretrained``) a tiny model whose config_sentence_transformers.json stores ``truncate_dim``.

    sentence-transformers and matryo then encode at ``default`` dims unless told otherwise; the adapters' tests use
    it to check that a stored default width is honoured and persisted.
    """
    from matryo import StaticEncoder

    source = make_tiny_model(folder.with_name(folder.name + "-source"), dim=dim, seed=seed)
    return StaticEncoder.from_pretrained(source, truncate_dim=default).save_pretrained(folder)


def make_tiny_model(
    path: Path,
    *,
    dim: int = 64,
    layout: str = "st_root",
    dtype: str = "float32",
    max_length: int | None = None,
    seed: int = 0,
) -> Path:
    """Save a tiny random static model to ``path`` in the given layout and return the model folder.

    Layouts: ``st_hub`` (modules.json -> 0_StaticEmbedding/), ``st_root`` (sentence-transformers 6.x, path ""),
    ``model2vec`` (key ``embeddings`` + config.json).
    """
    tokenizer = make_tokenizer(max_length)
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    table = np.random.default_rng(seed).standard_normal((vocab, dim)).astype(dtype)
    path.mkdir(parents=True, exist_ok=True)
    if layout == "st_hub":
        sub = path / "0_StaticEmbedding"
        sub.mkdir(exist_ok=True)
        module = {
            "idx": 0,
            "name": "0",
            "path": "0_StaticEmbedding",
            "type": "sentence_transformers.models.StaticEmbedding",
        }
        key = "embedding.weight"
    elif layout == "st_root":
        sub = path
        module = {
            "idx": 0,
            "name": "0",
            "path": "",
            "type": "sentence_transformers.sentence_transformer.modules.static_embedding.StaticEmbedding",
        }
        key = "embedding.weight"
    elif layout == "model2vec":
        sub = path
        module = {"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"}
        key = "embeddings"
        config = {"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": dim, "normalize": False}
        (path / "config.json").write_text(json.dumps(config))
    else:
        raise ValueError(layout)
    save_file({key: table}, str(sub / "model.safetensors"))
    tokenizer.save(str(sub / "tokenizer.json"))
    (path / "modules.json").write_text(json.dumps([module]))
    return path


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A 64-d tiny model in the sentence-transformers 6.x root layout."""
    return make_tiny_model(tmp_path / "tiny")


@pytest.fixture(params=LAYOUTS)
def tiny_model_any_layout(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The same tiny model saved in each supported layout."""
    return make_tiny_model(tmp_path / request.param, layout=request.param)
