"""MatryoEmbeddingFunction against Chroma's real protocol and registry (no mocks)."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.api.types import EmbeddingFunction
from chromadb.utils.embedding_functions import known_embedding_functions
from tests.conftest import make_tiny_model

from matryo.cache import clear_encoder_cache, load_encoder
from matryo.encoder import DEFAULT_MODEL_PATH
from matryo.errors import InvalidArgumentError
from matryo_chroma import MatryoEmbeddingFunction, ModelMismatchError, TwoStageCollection


def test_registered_under_unique_name_on_import() -> None:
    assert MatryoEmbeddingFunction.name() == "matryo"
    assert known_embedding_functions["matryo"] is MatryoEmbeddingFunction
    assert issubclass(MatryoEmbeddingFunction, EmbeddingFunction)


def test_call_signature_matches_protocol() -> None:
    assert list(inspect.signature(MatryoEmbeddingFunction.__call__).parameters) == ["self", "input"]
    assert list(inspect.signature(MatryoEmbeddingFunction.embed_query).parameters) == ["self", "input"]


def test_vectors_are_float32_truncated_and_normalised(tiny_model_path: str) -> None:
    ef = MatryoEmbeddingFunction(tiny_model_path, truncate_dim=16)
    out = ef(["the cat", "a dog and a bird"])
    assert len(out) == 2
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (16,) for v in out)
    np.testing.assert_allclose([np.linalg.norm(v) for v in out], 1.0, rtol=1e-5)
    full = load_encoder(tiny_model_path).encode(["the cat"])[0]
    prefix = full[:16] / np.linalg.norm(full[:16])
    np.testing.assert_allclose(out[0], prefix, atol=1e-6)
    np.testing.assert_array_equal(ef.embed_query(["the cat"])[0], out[0])


def test_empty_document_gives_zero_vector(tiny_model_path: str) -> None:
    out = MatryoEmbeddingFunction(tiny_model_path)([""])
    assert out[0].shape == (64,)
    assert not out[0].any()


def test_config_round_trip_through_json_rebuilds_same_function(tiny_model_path: str) -> None:
    ef = MatryoEmbeddingFunction(tiny_model_path, truncate_dim=32, normalize=False, max_length=5)
    config = json.loads(json.dumps(ef.get_config()))
    assert set(config) == {"model", "revision", "truncate_dim", "normalize", "max_length", "fingerprint"}
    assert config["truncate_dim"] == 32 and config["normalize"] is False and config["max_length"] == 5
    rebuilt = MatryoEmbeddingFunction.build_from_config(config)
    texts = ["the cat sat on the road by the river with a dog"]
    np.testing.assert_array_equal(rebuilt(texts)[0], ef(texts)[0])
    assert rebuilt.get_config() == ef.get_config()
    assert not ef.is_legacy()


def test_rebuilding_reuses_the_cached_model(tiny_model_path: str) -> None:
    ef = MatryoEmbeddingFunction(tiny_model_path, truncate_dim=16)
    again = MatryoEmbeddingFunction.build_from_config(ef.get_config())
    assert again.encoder is ef.encoder


def test_relative_model_path_is_persisted_absolute(tiny_model_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    path = Path(tiny_model_path)
    monkeypatch.chdir(path.parent)
    assert MatryoEmbeddingFunction(path.name).get_config()["model"] == str(path.resolve())


def test_spaces_and_collection_configuration(tiny_model_path: str) -> None:
    ef = MatryoEmbeddingFunction(tiny_model_path, truncate_dim=16)
    assert ef.default_space() == "cosine"
    assert "cosine" in ef.supported_spaces()
    col = chromadb.EphemeralClient().create_collection("ef_config_check", embedding_function=ef)
    stored = col.configuration_json
    assert stored["hnsw"]["space"] == "cosine"
    assert stored["embedding_function"] == {"type": "known", "name": "matryo", "config": ef.get_config()}
    col.add(ids=["a", "b"], documents=["cat and dog", "river water"])
    hit = col.query(query_texts=["cat"], n_results=1)
    assert hit["ids"] == [["a"]]


def test_bad_configs_are_rejected(tiny_model_path: str) -> None:
    with pytest.raises(InvalidArgumentError, match="truncate_dim"):
        MatryoEmbeddingFunction(tiny_model_path, truncate_dim=65)
    with pytest.raises(InvalidArgumentError, match="Unknown keys"):
        MatryoEmbeddingFunction.validate_config({"model": None, "dims": 3})
    with pytest.raises(InvalidArgumentError, match="positive integer"):
        MatryoEmbeddingFunction.validate_config({"truncate_dim": "16"})
    ef = MatryoEmbeddingFunction(tiny_model_path, truncate_dim=16)
    with pytest.raises(InvalidArgumentError, match="Cannot change"):
        ef.validate_config_update(ef.get_config(), {"truncate_dim": 32})


def test_a_different_model_under_the_same_config_raises(tiny_model_path: str) -> None:
    config = {**MatryoEmbeddingFunction(tiny_model_path).get_config(), "fingerprint": "0000000000000000"}
    with pytest.raises(ModelMismatchError, match="fingerprint") as caught:
        MatryoEmbeddingFunction.build_from_config(config)
    assert isinstance(caught.value, ValueError)
    assert "Put the original model back" in str(caught.value)
    assert "re-embed the documents into a new collection" in str(caught.value)


@pytest.mark.filterwarnings("ignore::UserWarning")  # a warning is not enough: the calls must fail
def test_a_replaced_model_stops_text_writes_but_stored_records_stay_readable(tmp_path: Path) -> None:
    """Another model at the stored path used to warn and then mix its vectors in; now Chroma refuses text use."""
    model = tmp_path / "model"
    make_tiny_model(model, dim=64, seed=3)
    client = chromadb.PersistentClient(str(tmp_path / "db"))
    plain = client.create_collection("plain", embedding_function=MatryoEmbeddingFunction(model, truncate_dim=16))
    plain.add(ids=["a", "b"], documents=["the cat", "a dog and a bird"])
    two = TwoStageCollection.create(client, "two", model=str(model), truncate_dim=16)
    two.add(ids=["a", "b"], documents=["the cat", "a dog and a bird"])
    vector = plain.get(ids=["a"], include=["embeddings"])["embeddings"]
    shutil.rmtree(model)
    make_tiny_model(model, dim=64, seed=99)  # same width, other weights, same path
    clear_encoder_cache()  # as in a fresh process

    reopened = client.get_collection("plain")
    for call in (
        lambda: reopened.query(query_texts=["the cat"], n_results=1),
        lambda: reopened.add(ids=["c"], documents=["mixed in"]),
        lambda: TwoStageCollection.open(client, "two"),
    ):
        with pytest.raises(ValueError, match="fingerprint") as caught:
            call()
        assert "re-embed the documents into a new collection" in str(caught.value)
        assert "the Chroma collection (client.get_collection(name)) still answers count()" in str(caught.value)
    assert reopened.count() == 2
    assert reopened.query(query_embeddings=vector, n_results=1)["ids"] == [["a"]]
    assert reopened.get(ids=["c"])["ids"] == []


def test_a_moved_model_is_named_as_the_one_the_collection_recorded(tmp_path: Path) -> None:
    """The error was a bare 'Model path X does not exist, and it is not a hub id', not saying where X came from."""
    model = tmp_path / "model"
    make_tiny_model(model, dim=64, seed=3)
    client = chromadb.PersistentClient(str(tmp_path / "db"))
    plain = client.create_collection("plain", embedding_function=MatryoEmbeddingFunction(model, truncate_dim=16))
    plain.add(ids=["a"], documents=["the cat"])
    TwoStageCollection.create(client, "two", model=str(model), truncate_dim=16).add(ids=["a"], documents=["the cat"])
    model.rename(tmp_path / "moved")
    clear_encoder_cache()  # as in a fresh process
    for call in (
        lambda: client.get_collection("plain").query(query_texts=["the cat"], n_results=1),
        lambda: TwoStageCollection.open(client, "two"),
    ):
        with pytest.raises(ValueError, match="This collection was embedded with the model .*recorded in its config"):
            call()
    assert client.get_collection("plain").count() == 1


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_dir(), reason="the embedded default model has not landed yet")
def test_no_model_argument_uses_the_embedded_default_offline() -> None:
    ef = MatryoEmbeddingFunction()
    assert ef.get_config()["model"] is None
    col = chromadb.EphemeralClient().create_collection("default_model_drop_in", embedding_function=ef)
    col.add(ids=["a", "b"], documents=["how to read a gzip file in python", "the best pizza in naples"])
    assert col.query(query_texts=["decompress gz archive"], n_results=1)["ids"] == [["a"]]


def test_public_api_is_pinned() -> None:
    import matryo_chroma

    assert sorted(matryo_chroma.__all__) == [
        "CollectionExistsError",
        "DEFAULT_CODEC",
        "DEFAULT_STORE",
        "DuplicateIdError",
        "EF_NAME",
        "MatryoEmbeddingFunction",
        "ModelMismatchError",
        "STORES",
        "StaleVectorWarning",
        "TwoStageCollection",
        "UnknownIdError",
        "__version__",
        "get_collection",
    ]
    assert all(hasattr(matryo_chroma, name) for name in matryo_chroma.__all__)


def test_a_models_stored_default_width_is_the_width_and_is_persisted(default24_model_path: str) -> None:
    # sentence-transformers' meaning: a truncate_dim stored in the folder is the model's output width
    ef = MatryoEmbeddingFunction(default24_model_path)
    assert ef.dim == 24 and ef.get_config()["truncate_dim"] == 24  # persisted explicitly
    assert [v.shape for v in ef(["the cat", ""])] == [(24,), (24,)]
    client = chromadb.EphemeralClient()
    col = client.create_collection("stored_default", embedding_function=ef)  # type: ignore[arg-type]
    col.add(ids=["a", "b"], documents=["the cat", "a dog"])
    reopened = client.get_collection("stored_default")  # rebuilt from the stored config
    assert reopened.query(query_texts=["the cat"], n_results=1)["ids"] == [["a"]]
    full = MatryoEmbeddingFunction(default24_model_path, truncate_dim=64)
    assert full.dim == 64 and full.get_config()["truncate_dim"] is None


def test_a_stored_null_width_always_means_the_full_width(default24_model_path: str) -> None:
    # collections created before this change stored null for the full width: they must stay full width
    config = {**MatryoEmbeddingFunction(default24_model_path).get_config(), "truncate_dim": None}
    rebuilt = MatryoEmbeddingFunction.build_from_config(config)
    assert rebuilt.dim == 64 and rebuilt(["the cat"])[0].shape == (64,)
    assert rebuilt.get_config()["truncate_dim"] is None
