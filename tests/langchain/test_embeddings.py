"""MatryoEmbeddings: fields, vectors, bad input, and async that does not block the event loop."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from tests.conftest import TINY_WORDS
from tests.langchain.helpers import ticks_during

from langchain_matryo import MatryoEmbeddings
from matryo import DimensionMismatchError, ModelNotFoundError
from matryo.cache import load_encoder
from matryo.errors import InvalidTypeError

TEXTS = ["the cat and the dog", "read a gzip file", "parse command line arguments", "fast vector search"]


def test_documents_and_query_match_the_core_encoder(tiny_model_dir: Path) -> None:
    embeddings = MatryoEmbeddings(model=str(tiny_model_dir))
    encoder = load_encoder(tiny_model_dir)
    docs = embeddings.embed_documents(TEXTS)
    assert isinstance(docs, list) and all(isinstance(row, list) for row in docs)
    assert all(type(value) is float for row in docs for value in row)
    np.testing.assert_array_equal(np.asarray(docs, dtype=np.float32), encoder.encode(TEXTS))
    query = embeddings.embed_query(TEXTS[1])
    assert len(query) == embeddings.dim == encoder.dim == 64
    np.testing.assert_array_equal(np.asarray(query, dtype=np.float32), encoder.encode(TEXTS[1]))


def test_truncate_dim_gives_a_renormalised_prefix(tiny_model_dir: Path) -> None:
    full = np.asarray(MatryoEmbeddings(model=str(tiny_model_dir)).embed_documents(TEXTS))
    short = np.asarray(MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16).embed_documents(TEXTS))
    assert short.shape == (len(TEXTS), 16)
    expected = full[:, :16] / np.linalg.norm(full[:, :16], axis=1, keepdims=True)
    np.testing.assert_allclose(short, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1.0, rtol=1e-5)


def test_normalize_false_gives_the_raw_mean(tiny_model_dir: Path) -> None:
    raw = np.asarray(MatryoEmbeddings(model=str(tiny_model_dir), normalize=False).embed_documents(TEXTS))
    np.testing.assert_array_equal(raw, load_encoder(tiny_model_dir).encode(TEXTS, normalize=False))
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_fields_and_shared_encoder(tiny_model_dir: Path) -> None:
    a = MatryoEmbeddings(model=tiny_model_dir, truncate_dim=8)  # a Path is accepted and stored as str
    b = MatryoEmbeddings(model=str(tiny_model_dir), max_length=None)
    assert a.model == str(tiny_model_dir)
    assert a.encoder is b.encoder  # loaded once per process
    assert a.dim == 8 and b.dim == 64
    assert MatryoEmbeddings(model=str(tiny_model_dir), max_length=2).encoder.max_length == 2


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"modle": "x"}, ValidationError),  # extra="forbid" catches typos
        ({"truncate_dim": 0}, ValidationError),
        ({"max_length": 0}, ValidationError),
        ({"truncate_dim": 65}, DimensionMismatchError),
        ({"truncate_dim": True}, InvalidTypeError),  # pydantic took True as 1: 1-d vectors
        ({"max_length": True}, InvalidTypeError),
    ],
)
def test_bad_settings_raise(tiny_model_dir: Path, kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        MatryoEmbeddings(**{"model": str(tiny_model_dir), **kwargs})


def test_missing_model_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        MatryoEmbeddings(model=str(tmp_path / "nope"))


def test_empty_list_gives_empty_list(tiny_model_dir: Path) -> None:
    assert MatryoEmbeddings(model=str(tiny_model_dir)).embed_documents([]) == []


def test_empty_strings_give_zero_vectors_of_the_right_width(tiny_model_dir: Path) -> None:
    embeddings = MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=32)
    docs = embeddings.embed_documents(["", "the cat", "   "])
    assert [len(row) for row in docs] == [32, 32, 32]
    assert docs[0] == [0.0] * 32 and docs[2] == [0.0] * 32
    assert any(docs[1]) and not np.isnan(docs).any()
    assert embeddings.embed_query("") == [0.0] * 32


def test_non_str_items_raise_type_error_naming_the_index(tiny_model_dir: Path) -> None:
    embeddings = MatryoEmbeddings(model=str(tiny_model_dir))
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        embeddings.embed_documents(["ok", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        embeddings.embed_documents([b"bytes"])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError, match="single str"):
        embeddings.embed_documents("not a list")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="expects a str"):
        embeddings.embed_query(3)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_async_equals_sync(tiny_model_dir: Path) -> None:
    embeddings = MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16)
    assert await embeddings.aembed_documents(TEXTS) == embeddings.embed_documents(TEXTS)
    assert await embeddings.aembed_query("cat") == embeddings.embed_query("cat")
    assert await embeddings.aembed_documents([]) == []
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        await embeddings.aembed_documents([1])  # type: ignore[list-item]


@pytest.mark.anyio
async def test_async_embedding_does_not_block_the_event_loop(tiny_model_dir: Path) -> None:
    embeddings = MatryoEmbeddings(model=str(tiny_model_dir))
    words = list(TINY_WORDS)
    texts = [" ".join(words[i % 40 : i % 40 + 40]) for i in range(2_000)]

    async def blocking() -> object:  # what a naive "async def" around the sync call would do
        return embeddings.embed_documents(texts)

    blocked_ticks, blocked_seconds = await ticks_during(blocking)
    ticks, seconds = await ticks_during(lambda: embeddings.aembed_documents(texts))
    assert blocked_seconds > 0.05 and seconds > 0.05, "the workload is too small to show anything"
    assert blocked_ticks <= 1  # the probe does detect a blocked loop
    print(f"ticks: blocked {blocked_ticks} in {blocked_seconds:.3f}s, async {ticks} in {seconds:.3f}s")
    assert ticks >= 5, f"the loop ticked {ticks} times in {seconds:.3f}s while aembed_documents ran"


def test_pickle_and_deep_copies_keep_the_settings_and_share_the_encoder(tiny_model_dir: Path) -> None:
    emb = MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16)
    expected = emb.embed_query("cat dog")
    for copy_ in (pickle.loads(pickle.dumps(emb)), copy.deepcopy(emb), emb.model_copy(deep=True)):
        assert isinstance(copy_, MatryoEmbeddings) and copy_.truncate_dim == 16
        assert copy_.encoder is emb.encoder  # the process's cached encoder, not a second table
        assert copy_.embed_query("cat dog") == expected


def test_a_models_stored_default_width_is_the_width_and_survives_copies(default24_model_dir: Path) -> None:
    # sentence-transformers' meaning: a truncate_dim stored in the folder is the model's output width
    embeddings = MatryoEmbeddings(model=str(default24_model_dir))
    assert embeddings.dim == 24 and embeddings.truncate_dim == 24
    assert len(embeddings.embed_query("the cat")) == 24 and len(embeddings.embed_documents(["x"])[0]) == 24
    for copied in (pickle.loads(pickle.dumps(embeddings)), MatryoEmbeddings(**embeddings.model_dump())):
        assert copied.dim == 24
    full = MatryoEmbeddings(model=str(default24_model_dir), truncate_dim=64)
    assert full.dim == 64 and len(full.embed_query("the cat")) == 64


def test_changing_a_setting_rebuilds_the_encoder_and_copies_agree(tiny_model_dir: Path) -> None:
    text = "the cat and the dog read a gzip file fast"
    cut = MatryoEmbeddings(model=str(tiny_model_dir), max_length=2).embed_query(text)
    emb = MatryoEmbeddings(model=str(tiny_model_dir))
    assert emb.embed_query(text) != cut
    emb.max_length = 2  # a LangChain user's habit: the field is mutable, and the change takes effect
    assert emb.max_length == 2 and emb.encoder.max_length == 2
    assert emb.embed_query(text) == cut
    assert pickle.loads(pickle.dumps(emb)).embed_query(text) == cut  # the pickle agrees with the original
    emb.truncate_dim = 8
    assert emb.dim == 8 and len(emb.embed_query(text)) == 8
    updated = MatryoEmbeddings(model=str(tiny_model_dir)).model_copy(update={"max_length": 2, "truncate_dim": 8})
    assert updated.encoder is emb.encoder and updated.embed_query(text) == emb.embed_query(text)
    emb.normalize = False  # a per-call setting: plain assignment
    assert emb.embed_query(text) == MatryoEmbeddings(**emb.model_dump()).embed_query(text)


def test_invalid_changes_raise_and_leave_the_instance_unchanged(tiny_model_dir: Path) -> None:
    emb = MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16)
    expected = emb.embed_query("cat dog")
    with pytest.raises(DimensionMismatchError, match="truncate_dim=65 is larger"):
        emb.truncate_dim = 65  # fails here, not at embed time
    with pytest.raises(ValidationError):
        emb.max_length = 0
    with pytest.raises(ModelNotFoundError):
        emb.model = str(tiny_model_dir / "nope")
    with pytest.raises(ValidationError):
        emb.model_copy(update={"modle": "x"})  # a typo is caught, as in the constructor
    with pytest.raises(DimensionMismatchError):
        emb.model_copy(update={"truncate_dim": 65})
    assert emb.truncate_dim == 16 and emb.max_length is None and emb.model == str(tiny_model_dir)
    assert emb.embed_query("cat dog") == expected


def test_a_new_model_brings_its_own_default_width(default24_model_dir: Path, tiny_model_dir: Path) -> None:
    emb = MatryoEmbeddings(model=str(default24_model_dir))
    assert emb.dim == 24
    emb.model = str(tiny_model_dir)  # the 24 was the old folder's default, not a setting of the user's
    assert emb.truncate_dim is None and emb.dim == 64
    assert emb.embed_query("the cat") == MatryoEmbeddings(model=str(tiny_model_dir)).embed_query("the cat")
    chosen = MatryoEmbeddings(model=str(default24_model_dir), truncate_dim=24)
    assert chosen.model_copy(update={"model": str(tiny_model_dir)}).dim == 24  # the user's own choice is kept
    explicit_none = MatryoEmbeddings(model=str(default24_model_dir), truncate_dim=None)  # None: "the model's width"
    assert explicit_none.dim == 24
    explicit_none.model = str(tiny_model_dir)  # so the new model's width, not the old folder's 24
    assert explicit_none.truncate_dim is None and explicit_none.dim == 64


def test_plain_settings_are_validated_when_assigned(tiny_model_dir: Path) -> None:
    emb = MatryoEmbeddings(model=str(tiny_model_dir))
    with pytest.raises(ValidationError):
        emb.normalize = "sometimes"  # type: ignore[assignment]
    assert emb.normalize is True
    emb.normalize = "false"  # type: ignore[assignment]  # coerced as the constructor does
    assert emb.normalize is False
