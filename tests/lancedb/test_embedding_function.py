"""The "matryo" LanceDB embedding function: registry, persisted config, ndims, LanceModel, fail-fast."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import lancedb
import numpy as np
import pytest
from lancedb.embeddings import get_registry
from lancedb.pydantic import LanceModel, Vector
from tests.conftest import make_tiny_model
from tests.lancedb.helpers import make_rows, needs_default_model

from matryo import ModelNotFoundError, StaticEncoder
from matryo.cache import clear_encoder_cache
from matryo_lancedb import MatryoEmbeddings, ModelMismatchError, matryo_embeddings

SEMANTIC_KEYS = {"model", "revision", "truncate_dim", "normalize", "max_length", "fingerprint"}


def test_registered_under_matryo_and_created_through_the_registry(tiny64: Path) -> None:
    cls = get_registry().get("matryo")
    assert cls is MatryoEmbeddings
    func = cls.create(model=str(tiny64), truncate_dim=16)
    assert func.ndims() == 16
    assert func.max_retries == 0


def test_factory_persists_every_semantic_parameter(tiny64: Path) -> None:
    func = matryo_embeddings(tiny64, truncate_dim=32, max_length=50)
    dump = func.safe_model_dump()
    assert set(dump) == SEMANTIC_KEYS
    assert dump["model"] == str(tiny64.resolve())
    assert dump["truncate_dim"] == 32 and dump["max_length"] == 50 and dump["normalize"] is True
    assert dump["fingerprint"] == StaticEncoder.from_pretrained(tiny64, max_length=50).fingerprint
    json.dumps(dump)  # JSON-serialisable for the schema metadata


def test_ndims_reads_the_model_without_embedding_a_probe(tiny64: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("ndims() must not embed a probe text")

    monkeypatch.setattr(StaticEncoder, "encode", no_encoding)
    assert matryo_embeddings(tiny64).ndims() == 64
    assert matryo_embeddings(tiny64, truncate_dim=8).ndims() == 8


def test_vectors_match_the_encoder_and_none_gives_none(tiny64: Path) -> None:
    func = matryo_embeddings(tiny64, truncate_dim=16)
    out = func.compute_source_embeddings(["the cat", "", None])
    expected = StaticEncoder.from_pretrained(tiny64).encode(["the cat", ""], truncate_dim=16)
    np.testing.assert_allclose(out[0], expected[0], rtol=1e-6)
    np.testing.assert_array_equal(out[1], np.zeros(16, dtype=np.float32))  # empty text -> zero vector
    assert out[2] is None  # LanceDB's on_bad_vectors decides


def test_truncate_dim_wider_than_the_model_is_refused(tiny64: Path) -> None:
    with pytest.raises(ValueError, match="between 1 and the model's width 64"):
        matryo_embeddings(tiny64, truncate_dim=65)


def test_lance_model_single_column(tiny64: Path, tmp_path: Path) -> None:
    func = matryo_embeddings(tiny64)

    class Doc(LanceModel):
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    db = lancedb.connect(tmp_path / "db")
    tbl = db.create_table("docs", schema=Doc)
    tbl.add([{"text": row["text"]} for row in make_rows(50)] + [{"text": "fast python code"}])
    hits = tbl.search("fast python code").distance_type("cosine").limit(1).to_pydantic(Doc)
    assert hits[0].text == "fast python code"
    np.testing.assert_allclose(hits[0].vector, func.encoder.encode("fast python code"), rtol=1e-6)


@needs_default_model
def test_lance_model_with_the_embedded_default_model(tmp_path: Path) -> None:
    func = matryo_embeddings()
    assert func.safe_model_dump()["model"] is None

    class Doc(LanceModel):
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    tbl = lancedb.connect(tmp_path / "db").create_table("docs", schema=Doc)
    tbl.add([{"text": "how to read a gzip file"}, {"text": "the capital of france"}, {"text": ""}])
    hits = tbl.search("decompress gzip").distance_type("cosine").limit(1).to_list()
    assert hits[0]["text"] == "how to read a gzip file"


def test_a_missing_model_fails_fast_without_retries(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "gone")
    func = matryo_embeddings(model)
    shutil.rmtree(model)
    clear_encoder_cache()  # as in a new process
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError):
        func.compute_query_embeddings_with_retry("a query")
    assert time.perf_counter() - start < 1.0  # LanceDB's default 7 retries would take ~2 minutes


def test_other_weights_at_the_same_path_are_detected(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "m", seed=1)
    func = matryo_embeddings(model)
    shutil.move(model, tmp_path / "old")  # keep the old memory map valid
    make_tiny_model(model, seed=2)
    clear_encoder_cache()
    with pytest.raises(ModelMismatchError, match="fingerprint"):  # checked when built from the stored config
        MatryoEmbeddings.create(**func.safe_model_dump())
    unpinned = matryo_embeddings(model, pin_fingerprint=False)
    assert unpinned.safe_model_dump()["fingerprint"] is None
    assert unpinned.compute_source_embeddings(["x"])[0].shape == (64,)


def test_a_models_stored_default_width_is_the_width_and_is_persisted(tiny64_default24: Path, tmp_path: Path) -> None:
    # sentence-transformers' meaning: a truncate_dim stored in the folder is the model's output width
    func = matryo_embeddings(tiny64_default24)
    assert func.ndims() == 24 and func.safe_model_dump()["truncate_dim"] == 24  # persisted explicitly
    assert [len(v) for v in func.compute_source_embeddings(["the cat", ""])] == [24, 24]

    class Doc(LanceModel):
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    tbl = lancedb.connect(tmp_path / "db").create_table("docs", schema=Doc)
    tbl.add([{"text": "the cat"}, {"text": "fast python code"}])  # used to fail: 24-d vectors, 64-d column
    reopened = lancedb.connect(tmp_path / "db").open_table("docs")
    reopened.add([{"text": "dark road"}])
    assert reopened.count_rows() == 3
    assert reopened.search("the cat").distance_type("cosine").limit(1).to_list()[0]["text"] == "the cat"
    full = matryo_embeddings(tiny64_default24, truncate_dim=64)  # the full width, asked for explicitly
    assert full.ndims() == 64 and full.safe_model_dump()["truncate_dim"] is None


def test_a_stored_none_width_always_means_the_full_width(tiny64_default24: Path) -> None:
    # tables written before persisted truncate_dim=None for a full-width column: it must stay full width
    func = MatryoEmbeddings.create(model=str(tiny64_default24), truncate_dim=None)
    assert func.ndims() == 64
    assert [len(v) for v in func.compute_source_embeddings(["the cat", "x"])] == [64, 64]  # encoded at ndims()


def test_lancedbs_own_add_on_a_swapped_model_raises_model_mismatch(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "m", seed=1)
    func = matryo_embeddings(model)

    class Doc(LanceModel):
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    lancedb.connect(tmp_path / "db").create_table("docs", schema=Doc).add([{"text": "the cat"}])
    shutil.move(model, tmp_path / "old")  # keep the old memory map valid
    make_tiny_model(model, seed=2)
    clear_encoder_cache()  # as in a new process
    tbl = lancedb.connect(tmp_path / "db").open_table("docs")
    with pytest.raises(ModelMismatchError, match="fingerprint"):  # used to be LanceDB's RuntimeError wrapper
        tbl.add([{"text": "a dog"}])
    with pytest.raises(ModelMismatchError, match="fingerprint"):
        tbl.search("the cat").limit(1).to_list()
    assert tbl.count_rows() == 1  # nothing written, and the rows stay readable without the model
    assert [row["text"] for row in tbl.search(np.ones(64, dtype=np.float32)).limit(1).to_list()] == ["the cat"]
