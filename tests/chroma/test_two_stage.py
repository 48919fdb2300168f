"""TwoStageCollection on a real embedded Chroma: API, scores, filters, consistency and bad input."""

from __future__ import annotations

import re
import threading
import warnings
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from tests.chroma.conftest import word_corpus
from tests.conftest import make_tiny_model

from matryo.cache import load_encoder
from matryo.errors import DimensionMismatchError, InvalidArgumentError, InvalidTypeError
from matryo_chroma import (
    CollectionExistsError,
    DuplicateIdError,
    ModelMismatchError,
    StaleVectorWarning,
    TwoStageCollection,
    UnknownIdError,
)
from matryo_chroma.stores import FULL_KEY, SIBLING_SUFFIX

STORES = ("metadata", "sibling", "documents")
N = 200


@pytest.fixture
def client(tmp_path: Path) -> chromadb.ClientAPI:
    return chromadb.PersistentClient(str(tmp_path / "db"))


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory: pytest.TempPathFactory) -> chromadb.ClientAPI:
    return chromadb.PersistentClient(str(tmp_path_factory.mktemp("shared_db")))


@pytest.fixture(scope="module", params=STORES)
def filled(request: pytest.FixtureRequest, shared_client: chromadb.ClientAPI, tiny_model_path: str) -> Any:
    """A populated collection per store, shared by the read-only tests of this module."""
    return make(shared_client, tiny_model_path, request.param)


def make(client: chromadb.ClientAPI, model: str, store: str, **kwargs: Any) -> TwoStageCollection:
    col = TwoStageCollection.create(client, f"docs_{store}", model=model, truncate_dim=16, store=store, **kwargs)
    docs = word_corpus(N)
    col.add(ids=[f"d{i}" for i in range(N)], documents=docs, metadatas=[{"i": i, "even": i % 2 == 0} for i in range(N)])
    return col


def exact_cos(model: str, query: str, docs: list[str]) -> np.ndarray:
    enc = load_encoder(model)
    return enc.encode(docs, truncate_dim=enc.dim) @ enc.encode([query], truncate_dim=enc.dim)[0]


def test_query_returns_chroma_shape_with_full_dimension_cosine_distances(filled, tiny_model_path) -> None:
    col, store = filled, filled.store
    assert col.count() == N
    result = col.query(query_texts=["cat dog river", "fire water"], n_results=5)
    assert set(result) >= {"ids", "distances", "documents", "metadatas", "embeddings", "uris", "data", "included"}
    assert [len(ids) for ids in result["ids"]] == [5, 5]
    docs = word_corpus(N)
    for q, text in enumerate(["cat dog river", "fire water"]):
        rows = [int(i[1:]) for i in result["ids"][q]]
        expected = 1.0 - exact_cos(tiny_model_path, text, [docs[r] for r in rows])
        np.testing.assert_allclose(result["distances"][q], expected, atol=2e-3 if store == "metadata" else 1e-5)
        assert result["distances"][q] == sorted(result["distances"][q])
        assert result["documents"][q] == [docs[r] for r in rows]
        assert result["metadatas"][q] == [{"i": r, "even": r % 2 == 0} for r in rows]


def test_rescoring_beats_first_pass_alone(filled, tiny_model_path) -> None:
    col = filled
    docs = word_corpus(N)
    recalls = []
    for text in word_corpus(10, seed=9, words_per_doc=4):
        exact = {f"d{i}" for i in np.argsort(-exact_cos(tiny_model_path, text, docs), kind="stable")[:10]}
        got = col.query(query_texts=[text], n_results=10, include=[])["ids"][0]
        first = col.collection.query(query_texts=[text], n_results=10, include=[])["ids"][0]
        recalls.append((len(exact & set(got)), len(exact & set(first))))
    two_stage, first_only = np.sum(recalls, axis=0)
    assert two_stage > first_only


def test_filters_apply_in_the_first_pass(filled) -> None:
    col = filled
    best = col.query(query_texts=["cat dog"], n_results=1, include=["metadatas"])["metadatas"][0][0]
    flip = {"even": not best["even"]}
    result = col.query(query_texts=["cat dog"], n_results=20, where=flip, include=["metadatas"])
    assert len(result["ids"][0]) == 20
    assert all(m["even"] == flip["even"] for m in result["metadatas"][0])
    only = {"$contains": "river"}
    by_doc = col.query(query_texts=["cat dog"], n_results=50, where_document=only, include=["documents"])
    assert by_doc["documents"][0] and all("river" in d for d in by_doc["documents"][0])


@pytest.mark.parametrize("store", STORES)
def test_get_update_upsert_delete(client, tiny_model_path, store) -> None:
    col = make(client, tiny_model_path, store)
    got = col.get(ids=["d3", "d1"], include=["documents", "metadatas", "embeddings"])
    assert sorted(got["ids"]) == ["d1", "d3"]
    assert all(m is not None and FULL_KEY not in m for m in got["metadatas"])
    assert all(e.shape == (64,) for e in got["embeddings"])
    col.update(ids=["d1"], documents=["water water water"], metadatas=[{"tag": "x"}])
    assert col.get(ids=["d1"])["metadatas"] == [{"i": 1, "even": False, "tag": "x"}]
    assert col.query(query_texts=["water water water"], n_results=1, include=["distances"])["ids"] == [["d1"]]
    col.upsert(ids=["d1", "new"], documents=["fire fire", "light dark"])
    assert col.count() == N + 1
    hit = col.query(query_texts=["light dark"], n_results=1, include=["distances"])
    assert hit["ids"] == [["new"]] and hit["distances"][0][0] == pytest.approx(0.0, abs=2e-3)
    assert sorted(col.delete(ids=["new", "d2", "nope"])) == ["d2", "new"]
    assert col.count() == N - 1
    assert col.get(ids=["d2", "new"])["ids"] == []
    deleted = col.delete(where={"i": {"$gte": N - 10}})
    assert len(deleted) == 10 and col.count() == N - 11
    if store == "sibling":
        assert col.full_collection is not None and col.full_collection.count() == N - 11


def test_reopen_in_process_gives_identical_results(filled, shared_client) -> None:
    col = filled
    before = col.query(query_texts=["cat dog", "road city"], n_results=10)
    again = TwoStageCollection.open(shared_client, col.name)
    assert (again.store, again.truncate_dim, again.dim) == (col.store, 16, 64)
    assert again.query(query_texts=["cat dog", "road city"], n_results=10) == before


def test_int8_codec_persists(client, tiny_model_path) -> None:
    col = TwoStageCollection.create(client, "int8_docs", model=tiny_model_path, truncate_dim=16, codec="int8")
    opened_early = TwoStageCollection.open(client, "int8_docs")  # before any record exists
    col.add(ids=[f"d{i}" for i in range(N)], documents=word_corpus(N))
    before = col.query(query_texts=["cat dog"], n_results=10)
    assert opened_early.query(query_texts=["cat dog"], n_results=10) == before
    again = TwoStageCollection.open(client, col.name)
    assert again.codec_name == "int8"
    assert again.query(query_texts=["cat dog"], n_results=10) == before
    docs = word_corpus(N)
    expected = 1.0 - exact_cos(tiny_model_path, "cat dog", [docs[int(i[1:])] for i in before["ids"][0]])
    np.testing.assert_allclose(before["distances"][0], expected, atol=0.02)


def test_int8_after_a_small_first_batch_nothing_is_clipped(client, tiny_model_path) -> None:
    docs = word_corpus(60)
    encoder = load_encoder(tiny_model_path)
    by_vectors = TwoStageCollection.create(client, "int8_vec", model=tiny_model_path, truncate_dim=16, codec="int8")
    by_texts = TwoStageCollection.create(client, "int8_txt", model=tiny_model_path, truncate_dim=16, codec="int8")
    other_writer = TwoStageCollection.open(client, "int8_vec")  # a second writer object on the same collection
    full = encoder.encode(docs, normalize=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no StaleVectorWarning, no "calibrated on only 1 vectors"
        by_vectors.add(ids=["d0"], embeddings=full[:1])  # (with per-collection ranges, this alone set them)
        by_texts.add(ids=["d0"], documents=docs[:1])
        for start in range(1, 40, 13):
            by_vectors.add(ids=[f"d{i}" for i in range(start, start + 13)], embeddings=full[start : start + 13])
            by_texts.add(ids=[f"d{i}" for i in range(start, start + 13)], documents=docs[start : start + 13])
        other_writer.add(ids=[f"d{i}" for i in range(40, 60)], embeddings=full[40:60])
        by_texts.add(ids=[f"d{i}" for i in range(40, 60)], documents=docs[40:60])
        for col in (by_vectors, by_texts, other_writer):
            got = col.query(query_texts=["cat dog"], n_results=10)
            assert len(got["ids"][0]) == 10  # nothing dropped for a clipped full vector
            expected = 1.0 - exact_cos(tiny_model_path, "cat dog", [docs[int(i[1:])] for i in got["ids"][0]])
            np.testing.assert_allclose(got["distances"][0], expected, atol=0.02)
    for col in (by_vectors, by_texts):
        page = col.collection.get(include=["embeddings", "metadatas"])
        firsts = col._full.firsts(page["embeddings"], len(page["ids"]))  # noqa: SLF001
        stored = col._full.stored(list(page["ids"]), firsts, list(page["metadatas"]))  # noqa: SLF001
        assert len(stored) == 60  # every stored full vector passes the consistency check
        assert col.repair() == []


def test_create_replaces_a_leftover_sibling_of_a_deleted_collection(client, tiny_model_path, tmp_path) -> None:
    col = TwoStageCollection.create(client, "papers", model=tiny_model_path, truncate_dim=16, store="sibling")
    col.add(ids=["old"], documents=["cat dog"])
    client.delete_collection("papers")  # plain Chroma: the sibling stays behind with 64-d vectors
    narrower = str(make_tiny_model(tmp_path / "tiny32", dim=32, seed=4))
    col = TwoStageCollection.create(client, "papers", model=narrower, truncate_dim=16, store="sibling")
    col.add(ids=["new"], documents=["road city"])
    assert col.full_collection is not None and col.full_collection.get()["ids"] == ["new"]
    assert col.query(query_texts=["road city"], n_results=5)["ids"] == [["new"]]


# ---------------------------------------------------------------------------------------------- consistency
class Boom(RuntimeError):
    pass


def _fail_first_pass(col: TwoStageCollection, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(write: Any, **kwargs: Any) -> None:
        raise Boom("injected failure between the full-vector write and the first-pass write")

    monkeypatch.setattr(col, "_write_first", boom)


def _assert_scores_are_current(col: TwoStageCollection, model: str, text: str) -> None:
    got = col.get(include=["documents"])
    docs = dict(zip(got["ids"], got["documents"], strict=True))
    result = col.query(query_texts=[text], n_results=10)
    expected = 1.0 - exact_cos(model, text, [docs[i] for i in result["ids"][0]])
    np.testing.assert_allclose(result["distances"][0], expected, atol=2e-3)


def test_sibling_write_failure_rolls_back(client, tiny_model_path, monkeypatch) -> None:
    col = make(client, tiny_model_path, "sibling")
    assert col.full_collection is not None
    old = col.full_collection.get(ids=["d0", "d1"], include=["embeddings"])
    with monkeypatch.context() as patch:
        _fail_first_pass(col, patch)
        with pytest.raises(Boom):
            col.upsert(ids=["d0", "d1", "brand_new"], documents=["fire fire", "water", "light"])
        with pytest.raises(Boom):
            col.add(ids=["other_new"], documents=["dark dark"])
    assert col.count() == N
    assert col.full_collection.count() == N  # the new ids were removed again
    after = col.full_collection.get(ids=["d0", "d1"], include=["embeddings"])
    np.testing.assert_array_equal(after["embeddings"], old["embeddings"])  # old vectors restored
    assert col.get(ids=["d0"])["documents"] == [word_corpus(N)[0]]
    _assert_scores_are_current(col, tiny_model_path, "fire fire")
    assert col.repair() == []


def test_crash_between_halves_never_scores_a_stale_vector(client, tiny_model_path) -> None:
    """Simulate a crash after the sibling write (rollback never ran): the query must not use the new vector."""
    col = make(client, tiny_model_path, "sibling")
    assert col.full_collection is not None
    wrong = load_encoder(tiny_model_path).encode(["fire fire fire"], truncate_dim=64)
    col.full_collection.upsert(ids=["d5"], embeddings=wrong)  # sibling written, first pass not
    col.full_collection.delete(ids=["d6"])  # and a full vector lost altogether
    col.full_collection.upsert(ids=["orphan"], embeddings=wrong)
    result = col.query(query_texts=["fire fire fire"], n_results=N)
    assert "orphan" not in result["ids"][0]
    assert {"d5", "d6"} <= set(result["ids"][0])  # nothing lost: rebuilt from the stored documents
    _assert_scores_are_current(col, tiny_model_path, "fire fire fire")
    reopened = TwoStageCollection.open(client, col.name, repair=True)
    assert "orphan" in reopened.full_collection.get(include=[])["ids"]  # type: ignore[union-attr]
    assert reopened.repair(drop_orphans=True) == []  # orphans only when asked: a writer's row looks like one
    full = reopened.full_collection.get(ids=["d5", "d6", "orphan"], include=["embeddings"])  # type: ignore[union-attr]
    assert sorted(full["ids"]) == ["d5", "d6"]
    docs = word_corpus(N)
    enc = load_encoder(tiny_model_path)
    for doc_id, vector in zip(full["ids"], full["embeddings"], strict=True):
        np.testing.assert_allclose(vector, enc.encode([docs[int(doc_id[1:])]], truncate_dim=64)[0], atol=1e-6)


def test_open_in_another_process_never_deletes_a_writers_in_flight_vectors(client, tiny_model_path) -> None:
    """A sibling write stores the full vectors first: open() repaired by default and deleted them as orphans, so
    hand-made vectors added while another process opened the collection were lost from two-stage search."""
    col = make(client, tiny_model_path, "sibling")
    write_first = col._write_first

    def open_meanwhile(write: Any, **kwargs: Any) -> None:
        TwoStageCollection.open(client, col.name)  # e.g. a web worker starting up between the two writes
        write_first(write, **kwargs)

    col._write_first = open_meanwhile  # type: ignore[method-assign]
    vectors = load_encoder(tiny_model_path).encode(["fire water light", "cat dog river"], truncate_dim=64)
    col.add(ids=["h0", "h1"], embeddings=vectors)
    assert col.repair() == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for doc_id, vector in zip(["h0", "h1"], vectors, strict=True):
            assert col.query(query_embeddings=[vector], n_results=1)["ids"][0] == [doc_id]


def test_metadata_store_detects_documents_edited_through_raw_chroma(client, tiny_model_path) -> None:
    col = make(client, tiny_model_path, "metadata")
    col.collection.update(ids=["d7"], documents=["light light light"])  # bypasses matryo: full vector now stale
    hit = col.query(query_texts=["light light light"], n_results=1, include=["distances"])
    assert hit["ids"] == [["d7"]]
    assert hit["distances"][0][0] == pytest.approx(0.0, abs=1e-5)  # scored from the re-encoded document
    assert col.repair() == []
    stored = col.collection.get(ids=["d7"], include=["metadatas"])["metadatas"][0]
    assert stored is not None and FULL_KEY in stored


def test_record_without_document_and_stale_vector_is_never_scored(client, tiny_model_path) -> None:
    col = TwoStageCollection.create(client, "hand_made", model=tiny_model_path, truncate_dim=16, store="sibling")
    enc = load_encoder(tiny_model_path)
    vectors = enc.encode(word_corpus(50), truncate_dim=64)
    col.add(ids=[f"h{i}" for i in range(50)], embeddings=vectors)
    assert col.full_collection is not None
    col.full_collection.upsert(ids=["h0"], embeddings=vectors[1:2])  # stale, and no document to rebuild from
    with pytest.warns(StaleVectorWarning, match="h0"):
        result = col.query(query_embeddings=vectors[0:1], n_results=5)
    assert "h0" not in result["ids"][0]
    assert col.repair() == ["h0"]
    assert col.count() == 50  # the record itself is kept


def test_a_document_that_does_not_reproduce_the_first_pass_vector_is_not_used_to_score(client, tiny_model_path) -> None:
    # The stale full vector of d3 is rebuilt from its document only if that document gives back d3's first-pass
    # vector; here raw Chroma gave d3 another text's first-pass vector, so its document is not its vector's.
    col = make(client, tiny_model_path, "sibling")
    assert col.full_collection is not None
    enc = load_encoder(tiny_model_path)
    other = enc.encode(["light water fire"], truncate_dim=16)
    col.collection.update(ids=["d3"], embeddings=other)  # bypasses matryo: first pass from another text
    col.full_collection.delete(ids=["d3"])  # and its full vector is gone
    with pytest.warns(StaleVectorWarning, match="d3"):
        result = col.query(query_embeddings=enc.encode(["light water fire"], truncate_dim=col.dim), n_results=5)
    assert "d3" not in result["ids"][0]
    assert col.repair() == ["d3"]


def test_metadata_store_is_one_write(client, tiny_model_path, monkeypatch) -> None:
    col = make(client, tiny_model_path, "metadata")
    _fail_first_pass(col, monkeypatch)
    with pytest.raises(Boom):
        col.upsert(ids=["d0", "brand_new"], documents=["fire", "light"])
    assert col.count() == N
    assert col.get(ids=["d0"])["documents"] == [word_corpus(N)[0]]


# ---------------------------------------------------------------------------------------------- bad input
def test_wrong_dimension_embeddings(client, tiny_model_path) -> None:
    col = make(client, tiny_model_path, "metadata")
    with pytest.raises(DimensionMismatchError, match="first-pass width"):
        col.add(ids=["x"], embeddings=np.ones((1, 16), dtype=np.float32))
    with pytest.raises(DimensionMismatchError, match=r"\(n, 64\)"):
        col.upsert(ids=["d0"], embeddings=np.ones((1, 100), dtype=np.float32))
    with pytest.raises(DimensionMismatchError):
        col.query(query_embeddings=np.ones((1, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        col.add(ids=["x"], embeddings=np.full((1, 64), np.nan, dtype=np.float32))
    assert col.count() == N and col.get(ids=["x"])["ids"] == []


def test_unknown_ids_on_update_and_delete(client, tiny_model_path) -> None:
    col = make(client, tiny_model_path, "sibling")
    with pytest.raises(UnknownIdError, match="nope"):
        col.update(ids=["d0", "nope"], documents=["fire", "water"])
    assert col.get(ids=["d0"])["documents"] == [word_corpus(N)[0]]  # nothing written
    assert col.delete(ids=["nope", "nada"]) == []
    assert col.count() == N


def test_duplicate_ids_in_one_add_and_existing_ids(client, tiny_model_path) -> None:
    col = make(client, tiny_model_path, "metadata")
    with pytest.raises(DuplicateIdError, match="dup"):
        col.add(ids=["dup", "dup"], documents=["a", "b"])
    with pytest.raises(DuplicateIdError, match="d0"):
        col.add(ids=["d0"], documents=["fire"])
    with pytest.raises(DuplicateIdError):
        col.upsert(ids=["u", "u"], documents=["a", "b"])
    assert col.count() == N and col.get(ids=["dup", "u"])["ids"] == []
    assert col.get(ids=["d0"])["documents"] == [word_corpus(N)[0]]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("mode", ["add", "upsert", "update"])
def test_a_bad_metadata_value_in_a_later_chunk_writes_nothing(
    client, tiny_model_path, store, mode, monkeypatch
) -> None:
    # a call is written in chunks (1,000 records; 5 here): Chroma checked each chunk's metadata only when writing
    # it, so a bad value in record 12 of 20 left records 0-9 stored and a retried add() was refused as duplicates
    from matryo_chroma import collection as collection_module

    monkeypatch.setattr(collection_module, "_WRITE_BATCH", 5)
    col = TwoStageCollection.create(
        client, f"chunks_{store}_{mode}", model=tiny_model_path, truncate_dim=16, store=store
    )
    ids, docs = [f"d{i}" for i in range(20)], word_corpus(20)
    if mode == "update":
        col.add(ids=ids, documents=docs)
    before = col.get(include=["documents", "metadatas"])
    metas: list[dict[str, Any]] = [{"n": i} for i in range(20)]
    metas[12] = {"nested": {"not": "allowed"}}
    with pytest.raises(ValueError, match=r"metadatas\[12\] \(id 'd12'\).*Nothing was written"):
        getattr(col, mode)(ids=ids, documents=[d.upper() + " fire" for d in docs], metadatas=metas)
    assert col.get(include=["documents", "metadatas"]) == before
    metas[12] = {"n": 12}
    getattr(col, mode)(ids=ids, documents=docs, metadatas=metas)  # the corrected call goes through
    assert col.count() == 20 and col.get(ids=["d19"], include=["metadatas"])["metadatas"] == [{"n": 19}]
    if store == "metadata":  # the full vector's code is merged in: an empty dict is a valid metadata there
        col.upsert(ids=["d0"], documents=["fire"], metadatas=[{}])


@pytest.mark.parametrize(("store", "codec"), [*((store, "float16") for store in STORES), ("metadata", "int8")])
def test_an_add_that_fails_part_way_is_taken_out_again(client, tiny_model_path, store, codec, monkeypatch) -> None:
    # a disk error or Ctrl-C while writing the third chunk: the two chunks already stored are deleted again, so
    # the same add() can be retried (it was refused: "Ids already exist"); with int8, whose first-pass vectors
    # are the decoded codes' prefixes, the rollback first recognised none of its records
    from matryo_chroma import collection as collection_module

    monkeypatch.setattr(collection_module, "_WRITE_BATCH", 5)
    col = TwoStageCollection.create(
        client, f"torn_{store}_{codec}", model=tiny_model_path, truncate_dim=16, store=store, codec=codec
    )
    col.add(ids=["kept"], documents=["cat dog"])
    ids, docs = [f"d{i}" for i in range(20)], word_corpus(20)
    write_first, calls = col._write_first, []

    def fails_third(write: Any, **kwargs: Any) -> None:
        calls.append(len(kwargs["ids"]))
        if len(calls) == 3:
            write_first(write, **kwargs)  # a Ctrl-C during Chroma's call is raised once the chunk is committed
            raise KeyboardInterrupt
        write_first(write, **kwargs)

    monkeypatch.setattr(col, "_write_first", fails_third)
    with pytest.raises(KeyboardInterrupt):
        col.add(ids=ids, documents=docs)
    assert col.get()["ids"] == ["kept"]
    if col.full_collection is not None:
        assert col.full_collection.get()["ids"] == ["kept"]
    monkeypatch.setattr(col, "_write_first", write_first)
    col.add(ids=ids, documents=docs)
    assert col.count() == 21
    assert col.query(query_texts=[docs[7]], n_results=1)["ids"] == [["d7"]]


@pytest.mark.parametrize("store", ["metadata", "sibling"])
def test_a_failed_add_leaves_another_writers_record_alone(client, tiny_model_path, store, monkeypatch) -> None:
    # Chroma's add skips an id that exists: a record another writer added meanwhile under one of this add's ids
    # is that writer's, and the rollback of this add must not delete it
    from matryo_chroma import collection as collection_module

    monkeypatch.setattr(collection_module, "_WRITE_BATCH", 5)
    col = TwoStageCollection.create(client, f"race_{store}", model=tiny_model_path, truncate_dim=16, store=store)
    other = TwoStageCollection.open(client, f"race_{store}")
    ids, docs = [f"d{i}" for i in range(20)], word_corpus(20)
    write_first, calls = col._write_first, []

    def racing(write: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            other.add(ids=["d3"], documents=["fire water light from the other writer"])
        if len(calls) == 3:
            raise OSError("disk full")
        write_first(write, **kwargs)

    monkeypatch.setattr(col, "_write_first", racing)
    with pytest.raises(OSError, match="disk full"):
        col.add(ids=ids, documents=docs)
    assert col.get(include=["documents"])["documents"] == ["fire water light from the other writer"]


@pytest.mark.parametrize("mode", ["upsert", "update"])
@pytest.mark.parametrize("bad", ["lone \ud800 surrogate", ["ok", "x\udfffy"], "sparse"])
def test_metadata_only_chromas_rust_layer_refuses_is_caught_before_writing(
    client, tiny_model_path, mode, bad, monkeypatch
):
    # chromadb's Python check passes these; its Rust layer refused them in a later chunk, after earlier ones were
    # written (a torn upsert/update)
    from chromadb.api.types import SparseVector

    from matryo_chroma import collection as collection_module

    monkeypatch.setattr(collection_module, "_WRITE_BATCH", 5)
    col = TwoStageCollection.create(client, "rust_checks", model=tiny_model_path, truncate_dim=16)
    ids, docs = [f"d{i}" for i in range(20)], word_corpus(20)
    col.add(ids=ids, documents=docs)
    before = col.get(include=["documents", "metadatas"])
    metas: list[dict[str, Any]] = [{"n": i} for i in range(20)]
    metas[12] = {"v": SparseVector(indices=[1], values=[0.5]) if bad == "sparse" else bad}
    if mode == "upsert":  # an id Chroma cannot store, in a later chunk, is refused up front too
        bad_ids = [*ids[:12], "d\ud80012", *ids[13:]]
        with pytest.raises(ValueError, match=r"lone surrogate.*Nothing was written"):
            col.upsert(ids=bad_ids, documents=[d + " fire" for d in docs])
        assert col.get(include=["documents", "metadatas"]) == before
    with pytest.raises(ValueError, match=r"metadatas\[12\].*(surrogate|SparseVector).*Nothing was written"):
        getattr(col, mode)(ids=ids, documents=[d + " fire" for d in docs], metadatas=metas)
    assert col.get(include=["documents", "metadatas"]) == before


@pytest.mark.parametrize("store", STORES)
def test_no_chroma_call_exceeds_sqlites_variable_limit(client, tiny_model_path, store, monkeypatch) -> None:
    """Chroma's SQLite layer fails ("too many SQL variables") above 32,766 ids, documents or metadata in one call:
    query(n_results=1024) asked for 32,768 candidates, and add/update/delete checked every id in one get. Each call
    is now split or capped at _SQL_ROWS (here patched to 7, so 20 records and n_results=3 x 32 exercise it)."""
    from chromadb.api.models.Collection import Collection

    from matryo_chroma import collection as collection_module

    monkeypatch.setattr(collection_module, "_SQL_ROWS", 7)
    monkeypatch.setattr(collection_module, "_WRITE_BATCH", 5)  # write batches (1,000) already stay below it
    sizes: list[tuple[str, int]] = []
    for name in ("get", "query", "delete"):
        original = getattr(Collection, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            ids = kwargs.get("ids")
            if ids is not None:
                sizes.append((_name, len(ids)))
            if "n_results" in kwargs:
                sizes.append((_name, kwargs["n_results"]))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Collection, name, spy)
    col = TwoStageCollection.create(client, f"big_{store}", model=tiny_model_path, truncate_dim=16, store=store)
    ids, docs = [f"d{i}" for i in range(20)], word_corpus(20)
    col.add(ids=ids, documents=docs)
    col.update(ids=ids, metadatas=[{"i": i} for i in range(20)])
    hits = col.query(query_texts=["cat dog river"], n_results=3)["ids"][0]
    assert len(hits) == 3 and hits[0] == ids[int(np.argmin(1.0 - exact_cos(tiny_model_path, "cat dog river", docs)))]
    assert sorted(col.delete(ids=ids)) == sorted(ids) and col.count() == 0
    assert sizes and max(size for _, size in sizes) <= 7, sizes


@pytest.mark.parametrize("store", ["metadata", "sibling"])  # the documents store takes no hand-made vectors
def test_tiny_hand_made_vectors_are_stored_by_direction(client, tiny_model_path, store) -> None:
    """A hand-made vector of length 1e-5 underflowed in float16 codes: add() succeeded and no query returned it."""
    col = TwoStageCollection.create(client, f"tiny_{store}", model=tiny_model_path, truncate_dim=16, store=store)
    unit = load_encoder(tiny_model_path).encode(["fire water light", "cat dog river"], truncate_dim=64)
    col.add(ids=["a", "b"], embeddings=unit * 1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = col.query(query_embeddings=unit[:1], n_results=2)
    assert got["ids"][0][0] == "a" and got["distances"][0][0] == pytest.approx(0.0, abs=2e-3)


def test_rescore_multiplier_zero_is_refused_not_replaced_by_the_default(filled) -> None:
    with pytest.raises(ValueError, match="rescore_multiplier"):
        filled.query(query_texts=["cat"], n_results=3, rescore_multiplier=0)
    for bad in (0, -1, 2.5, True):  # named as the argument the caller gave, not the core's "k"
        with pytest.raises(ValueError, match=r"^n_results must be a positive integer"):
            filled.query(query_texts=["cat"], n_results=bad)
    assert len(filled.query(query_texts=["cat"], n_results=np.int64(2))["ids"][0]) == 2  # numpy integers are fine


@pytest.mark.parametrize("store", STORES)
def test_empty_documents(client, tiny_model_path, store) -> None:
    col = make(client, tiny_model_path, store)
    col.add(ids=["empty"], documents=[""])
    assert col.get(ids=["empty"])["documents"] == [""]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = col.query(query_texts=["", "cat"], n_results=3)  # a zero query vector ranks nothing
    assert result["ids"][0] == [] and result["distances"][0] == [] and result["documents"][0] == []
    assert len(result["ids"][1]) == 3
    assert "empty" not in col.query(query_texts=["cat"], n_results=N + 1, include=[])["ids"][0]


def test_one_megabyte_document(client, tiny_model_path) -> None:
    col = make(client, tiny_model_path, "metadata")
    big = ("river water fire " * 70_000)[: 1 << 20]
    assert len(big) == 1 << 20
    col.add(ids=["big"], documents=[big])
    assert col.get(ids=["big"])["documents"] == [big]
    hit = col.query(query_texts=["river water fire"], n_results=1, include=["distances"])
    assert hit["ids"] == [["big"]]


def test_bad_arguments(client, tiny_model_path) -> None:
    with pytest.raises(ValueError, match="Unknown store"):
        TwoStageCollection.create(client, "bad_store", model=tiny_model_path, store="disk")
    with pytest.raises(ValueError, match="reserved"):
        TwoStageCollection.create(client, "bad_meta", model=tiny_model_path, metadata={"matryo:x": 1})
    col = make(client, tiny_model_path, "documents")
    with pytest.raises(ValueError, match="documents="):
        col.add(ids=["e"], embeddings=np.ones((1, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="reserved"):
        col.add(ids=["e"], documents=["x"], metadatas=[{"matryo:full": "AAAA"}])
    with pytest.raises(ValueError, match="exactly one"):
        col.query()
    with pytest.raises(ValueError, match="delete"):
        col.delete()
    with pytest.raises(ValueError, match="not a matryo two-stage"):
        TwoStageCollection(client.create_collection("plain_one"))
    assert not any(c.name.endswith(SIBLING_SUFFIX) for c in client.list_collections())


@pytest.mark.parametrize("store", STORES)
def test_modify_replaces_the_user_metadata_and_keeps_the_settings(client, tiny_model_path, store) -> None:
    col = TwoStageCollection.create(
        client, f"mod_{store}", model=tiny_model_path, truncate_dim=16, store=store, metadata={"owner": "you"}
    )
    col.add(ids=["a", "b"], documents=["the cat sat", "a dog ran"])
    assert col.metadata == {"owner": "you"}
    col.modify(metadata={"team": "search"})
    assert col.metadata == {"team": "search"}  # replaced, as Chroma's modify does
    with pytest.raises(ValueError, match="reserved"):
        col.modify(metadata={"matryo:store": "x"})
    again = TwoStageCollection.open(client, col.name)
    assert (again.store, again.codec_name, again.metadata) == (col.store, col.codec_name, {"team": "search"})
    assert again.query(query_texts=["the cat sat"], n_results=1)["ids"] == [["a"]]
    col.modify(metadata={})
    assert TwoStageCollection.open(client, col.name).metadata == {}

    col.collection.modify(metadata={"owner": "me"})  # Chroma's own modify drops matryo's settings
    with pytest.raises(ValueError, match=r"no two-stage settings.*collection.modify\(metadata=...\) replaced its"):
        TwoStageCollection.open(client, col.name)
    # the README's single-stage collection (the embedding function alone) is told how to use it
    client.create_collection("plain_matryo", embedding_function=col.embedding_function)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"made with MatryoEmbeddingFunction alone, it is a single-stage collection"):
        TwoStageCollection.open(client, "plain_matryo")


@pytest.mark.parametrize("store", STORES)
def test_empty_collection(client, tiny_model_path, store) -> None:
    col = TwoStageCollection.create(client, f"empty_{store}", model=tiny_model_path, truncate_dim=16, store=store)
    assert col.count() == 0
    assert col.query(query_texts=["cat"], n_results=3)["ids"] == [[]]
    assert col.get(include=["embeddings"])["ids"] == []
    assert col.repair() == []
    with pytest.raises(ValueError, match="at least one"):
        col.query(query_texts=[])


def test_delete_collection_drops_the_sibling(client, tiny_model_path) -> None:
    TwoStageCollection.create(client, "gone", model=tiny_model_path, truncate_dim=16, store="sibling")
    assert sorted(c.name for c in client.list_collections()) == ["gone", "gone" + SIBLING_SUFFIX]
    TwoStageCollection.delete_collection(client, "gone")
    assert client.list_collections() == []


def test_a_model_with_a_stored_default_width_keeps_full_width_rescoring(client, default24_model_path) -> None:
    col = TwoStageCollection.create(client, "stored_default", model=default24_model_path, truncate_dim=16)
    assert (col.dim, col.truncate_dim) == (64, 16)
    docs = word_corpus(30)
    col.add(ids=[f"d{i}" for i in range(30)], documents=docs)
    hits = col.query(query_texts=[docs[3]], n_results=1)
    assert hits["ids"] == [["d3"]]
    full = TwoStageCollection.create(client, "stored_default_full", model=default24_model_path, truncate_dim=None)
    assert (full.dim, full.truncate_dim) == (64, 64)
    full.add(ids=["a"], documents=[docs[0]])
    reopened = TwoStageCollection.open(client, "stored_default_full")
    assert (reopened.dim, reopened.truncate_dim) == (64, 64)
    assert reopened.query(query_texts=[docs[0]], n_results=1)["ids"] == [["a"]]


@pytest.mark.parametrize("store", STORES)
def test_create_with_an_existing_name_is_a_value_error_and_changes_nothing(client, tiny_model_path, store) -> None:
    col = TwoStageCollection.create(client, "taken", model=tiny_model_path, truncate_dim=16, store=store)
    col.add(ids=["a"], documents=["cat dog"])
    with pytest.raises(CollectionExistsError, match=r"'taken' already exists.*TwoStageCollection.open") as info:
        TwoStageCollection.create(client, "taken", model=tiny_model_path, truncate_dim=32, store=store)
    assert isinstance(info.value, ValueError)
    reopened = TwoStageCollection.open(client, "taken")
    assert reopened.truncate_dim == 16 and reopened.get()["ids"] == ["a"]
    assert reopened.query(query_texts=["cat dog"], n_results=1)["ids"] == [["a"]]  # full vectors intact (sibling too)
    client.create_collection("plain_taken")
    with pytest.raises(CollectionExistsError):
        TwoStageCollection.create(client, "plain_taken", model=tiny_model_path, store=store)


@pytest.mark.parametrize("store", STORES)
def test_create_exist_ok_opens_a_collection_made_with_the_same_settings_only(client, tiny_model_path, store) -> None:
    first = TwoStageCollection.create(client, "again", model=tiny_model_path, truncate_dim=16, store=store)
    first.add(ids=["a"], documents=["cat dog"])
    again = TwoStageCollection.create(
        client, "again", model=tiny_model_path, truncate_dim=16, store=store, exist_ok=True
    )
    assert again.get()["ids"] == ["a"] and again.query(query_texts=["cat dog"], n_results=1)["ids"] == [["a"]]
    again.add(ids=["b"], documents=["bird tree"])
    assert first.count() == 2
    other_store = "documents" if store != "documents" else "metadata"
    for changes, named in (
        ({"truncate_dim": 32}, "truncate_dim: 16 (asked: 32)"),
        ({"store": other_store}, f"store: {store!r} (asked: {other_store!r})"),
        ({"rescore_multiplier": 8}, "rescore_multiplier: 32.0 (asked: 8.0)"),
        ({"max_length": 4}, "max_length: None (asked: 4)"),
    ):
        settings = {"model": tiny_model_path, "truncate_dim": 16, "store": store, **changes}
        with pytest.raises(ModelMismatchError, match=re.escape(named)) as info:
            TwoStageCollection.create(client, "again", exist_ok=True, **settings)
        assert isinstance(info.value, ValueError) and "TwoStageCollection.open(client, 'again')" in str(info.value)
    if store == "metadata":
        with pytest.raises(ModelMismatchError, match="codec_name: 'float16' \\(asked: 'int8'\\)"):
            TwoStageCollection.create(
                client, "again", model=tiny_model_path, truncate_dim=16, codec="int8", exist_ok=True
            )
    assert first.count() == 2 and TwoStageCollection.open(client, "again").truncate_dim == 16
    fresh = TwoStageCollection.create(client, "new_one", model=tiny_model_path, truncate_dim=16, exist_ok=True)
    assert fresh.count() == 0 and fresh.store == "metadata"


def test_create_exist_ok_knows_the_model_by_its_weights_and_waits_for_a_sibling(
    client, tiny_model_path, monkeypatch
) -> None:
    from matryo import DEFAULT_MODEL_PATH, ModelNotFoundError
    from matryo_chroma import collection as collection_module

    TwoStageCollection.create(client, "default", truncate_dim=16)
    for model in (str(DEFAULT_MODEL_PATH), DEFAULT_MODEL_PATH / ".." / DEFAULT_MODEL_PATH.name):  # the same weights
        assert TwoStageCollection.create(client, "default", model=model, truncate_dim=16, exist_ok=True).count() == 0
    with pytest.raises(ModelMismatchError, match="fingerprint"):
        TwoStageCollection.create(client, "default", model=tiny_model_path, truncate_dim=16, exist_ok=True)
    with pytest.raises(InvalidTypeError, match="exist_ok must be True or False"):
        TwoStageCollection.create(client, "default", truncate_dim=16, exist_ok="no")
    with pytest.raises(ModelNotFoundError, match="does not exist"):  # not a bare RuntimeError from expanduser
        TwoStageCollection.create(client, "tilde", model="~matryo_no_such_user_zz/model")

    # another process made the first-pass collection and is about to make its sibling: wait for it
    TwoStageCollection.create(client, "sib", model=tiny_model_path, truncate_dim=16, store="sibling")
    client.delete_collection("sib" + SIBLING_SUFFIX)
    monkeypatch.setattr(collection_module, "_SIBLING_WAIT", 0.3)
    with pytest.raises(CollectionExistsError, match="its full vectors' collection 'sib__matryo_full' does not"):
        TwoStageCollection.create(client, "sib", model=tiny_model_path, truncate_dim=16, store="sibling", exist_ok=True)
    monkeypatch.setattr(collection_module, "_SIBLING_WAIT", 30.0)
    timer = threading.Timer(
        0.2,
        lambda: client.create_collection(
            "sib" + SIBLING_SUFFIX, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        ),
    )
    timer.start()
    opened = TwoStageCollection.create(
        client, "sib", model=tiny_model_path, truncate_dim=16, store="sibling", exist_ok=True
    )
    timer.join()
    opened.add(ids=["a"], documents=["cat dog"])
    assert opened.query(query_texts=["cat dog"], n_results=1)["ids"] == [["a"]]


def test_include_is_checked_as_chroma_checks_it(client, tiny_model_path) -> None:
    """Unknown include items (a typo such as 'metadata') used to be ignored: that key then came back None."""
    col = make(client, tiny_model_path, "metadata")
    for bad in (["bogus"], ["metadata"], ["data"], "documents"):
        with pytest.raises(ValueError, match="include"):
            col.query(query_texts=["cat dog"], n_results=1, include=bad)
        with pytest.raises(ValueError, match="include"):
            col.get(ids=["d0"], include=bad)
    with pytest.raises(ValueError, match="distances"):
        col.get(ids=["d0"], include=["distances"])
    with pytest.raises(ValueError, match="distances"):  # what Chroma's own get does
        col.collection.get(ids=["d0"], include=["distances"])
    col.collection.update(ids=["d0"], uris=["file:///d0.txt"])  # set through plain Chroma
    d0 = col.get(ids=["d0"], include=["embeddings"])["embeddings"]
    hits = col.query(query_embeddings=d0, n_results=2, include=["uris"])
    assert hits["ids"][0][0] == "d0"
    assert hits["uris"] == [["file:///d0.txt", None]]  # Chroma's shape: one uri (or None) per hit
    assert col.get(ids=["d0", "d1"], include=["uris"])["uris"] == ["file:///d0.txt", None]


def test_embeddings_with_an_all_zero_first_pass_prefix_are_refused(client, tiny_model_path) -> None:
    # stored and counted but never a first-pass candidate, without a word
    col = TwoStageCollection.create(client, "zeroprefix", model=tiny_model_path, truncate_dim=16)
    vectors = np.random.default_rng(0).standard_normal((3, col.dim)).astype(np.float32)
    vectors[1, :16] = 0.0
    with pytest.raises(ValueError, match=r"ids \['b'\] are zero in their first 16 dimensions .*nothing was written"):
        col.add(ids=["a", "b", "c"], embeddings=vectors)
    assert col.count() == 0
    vectors[1] = 0.0  # a zero vector (a text without tokens) stays allowed, as documents yielding no token are
    col.add(ids=["a", "b", "c"], embeddings=vectors)
    assert col.count() == 3


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"tags": ["a", "b"]}, r"'tags' is list .*expected a str, int, float or bool"),  # a Rust PanicException
        ({"x": None}, r"'x' is NoneType"),  # a raw TypeError
        ({"hnsw:space": "l2"}, r"'hnsw:space': Chroma ignores hnsw: metadata keys .*pass HNSW settings to create"),
        ({"matryo:store": "x"}, r"starting with 'matryo:' are reserved"),
    ],
)
def test_collection_metadata_is_checked_before_chroma_sees_it(
    client, tiny_model_path, metadata: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        TwoStageCollection.create(client, "meta", model=tiny_model_path, metadata=metadata)
    assert [c.name for c in client.list_collections()] == []
    col = TwoStageCollection.create(client, "meta", model=tiny_model_path, metadata={"ok": True, "n": 2.5})
    with pytest.raises(ValueError, match=match):
        col.modify(metadata=metadata)
    assert col.metadata == {"ok": True, "n": 2.5}


def test_a_sibling_store_name_too_long_for_its_full_collection_is_refused_up_front(client, tiny_model_path) -> None:
    name = "a" * (512 - len(SIBLING_SUFFIX) + 1)  # a valid Chroma name, but name + suffix is not
    with pytest.raises(ValueError, match=rf"at most {512 - len(SIBLING_SUFFIX)} characters, found {len(name)}"):
        TwoStageCollection.create(client, name, model=tiny_model_path, store="sibling")
    assert client.list_collections() == []
    assert TwoStageCollection.create(client, name[:-1], model=tiny_model_path, store="sibling").count() == 0


def test_peek_returns_the_first_records_with_full_vectors(client, tiny_model_path) -> None:
    col = make(client, tiny_model_path, "metadata")
    peeked = col.peek(3)
    assert len(peeked["ids"]) == 3 and len(peeked["embeddings"][0]) == col.dim
    assert peeked["documents"][0] and peeked["metadatas"][0]["i"] in range(N)


def test_get_collection_refuses_an_embedding_function_that_differs_from_the_stored_one(
    client, tiny_model_path, tmp_path
) -> None:
    from matryo_chroma import MatryoEmbeddingFunction, ModelMismatchError, get_collection

    client.create_collection("plain", embedding_function=MatryoEmbeddingFunction(tiny_model_path, truncate_dim=16))
    other = str(make_tiny_model(tmp_path / "other", dim=load_encoder(tiny_model_path).dim, seed=7))
    for given, named in (
        (MatryoEmbeddingFunction(other, truncate_dim=16), "fingerprint"),  # Chroma took it and mixed the vectors
        (MatryoEmbeddingFunction(tiny_model_path, truncate_dim=16, normalize=False), "normalize True"),
        (MatryoEmbeddingFunction(tiny_model_path, truncate_dim=8), r"truncate_dim 16 \(given: 8\)"),
    ):
        with pytest.raises(ModelMismatchError, match=named):
            get_collection(client, "plain", embedding_function=given)
    same = MatryoEmbeddingFunction(tiny_model_path, truncate_dim=16)
    assert get_collection(client, "plain", embedding_function=same).name == "plain"
    assert get_collection(client, "plain").name == "plain"


def test_get_collection_refuses_a_two_stage_collection(client, tiny_model_path) -> None:
    # returned the raw first-pass collection: first-pass distances, and the full vectors' codes in every metadata
    from matryo_chroma import get_collection

    name = make(client, tiny_model_path, "metadata").name
    with pytest.raises(InvalidArgumentError, match=rf"TwoStageCollection.open\(client, '{name}'\)"):
        get_collection(client, name)
    assert TwoStageCollection.open(client, name).count() == N


def test_int8_prefix_that_rounds_to_zero_is_refused_or_rebuilt_from_its_document(client, tiny_model_path) -> None:
    # a short prefix far below its block's largest value decodes to zeros: a zero first-pass vector is never a
    # candidate, so the record vanished without a warning (and repair() saw nothing wrong)
    from matryo_chroma.full_vectors import FullVectors

    col = TwoStageCollection.create(client, "int8zero", model=tiny_model_path, truncate_dim=2, codec="int8")
    vector = np.zeros(col.dim, dtype=np.float32)
    vector[:2], vector[5] = 1e-4, 1.0  # one block of 32: the step is 1/127, so 1e-4 rounds to 0
    with pytest.raises(ValueError, match=r"ids \['tiny'\] have a first-pass prefix so small .*int8 code rounds it"):
        col.add(ids=["tiny"], embeddings=vector[None, :])  # no document: it would be stale on every query
    assert col.count() == 0
    full_vectors: FullVectors = col._full
    first = full_vectors.first_pass(vector[None, :] / np.linalg.norm(vector))
    np.testing.assert_allclose(first, [[2**-0.5, 2**-0.5]], rtol=1e-5)  # the exact prefix, not zeros
    # documents whose re-encoded vector rounds differently are still rebuilt: compared as they would be written
    docs = word_corpus(300, seed=4)
    col4 = TwoStageCollection.create(client, "int8four", model=tiny_model_path, truncate_dim=4, codec="int8")
    col4.add(ids=[f"d{i}" for i in range(300)], documents=docs)
    got = col4.collection.get(include=["embeddings", "documents"])
    firsts = np.asarray(got["embeddings"], dtype=np.float32)
    assert len(col4._full.from_documents(got["ids"], firsts, got["documents"])) == 300


def test_modify_works_on_collections_whose_metadata_holds_hnsw_keys_an_older_version_stored(
    client, tiny_model_path
) -> None:
    col = TwoStageCollection.create(client, "oldhnsw", model=tiny_model_path, metadata={"note": "a"})
    col.collection.modify(metadata={**(col.collection.metadata or {}), "hnsw:search_ef": 50})  # as create() once did
    assert col.metadata == {"note": "a"}  # hidden: Chroma ignores such keys
    col.modify({**col.metadata, "added": 1})  # refused: "pass hnsw=", which modify() does not take
    assert col.metadata == {"note": "a", "added": 1}
    assert "hnsw:search_ef" not in col.collection.metadata  # dropped: Chroma refuses hnsw:space written again
    assert TwoStageCollection.open(client, "oldhnsw").metadata == {"note": "a", "added": 1}


def test_tiny_float64_embeddings_keep_their_direction_and_query_texts_are_checked(client, tiny_model_path) -> None:
    # cast to float32 before normalising, a 1e-50 float64 vector became zeros: never returned / no hits
    col = TwoStageCollection.create(client, "tiny_vectors", model=tiny_model_path, truncate_dim=16)
    enc = load_encoder(tiny_model_path)
    vectors = enc.encode(["the cat sat", "a dog ran"], truncate_dim=enc.dim).astype(np.float64)
    col.add(ids=["tiny", "normal"], embeddings=[vectors[0] * 1e-50, vectors[1]])
    assert col.query(query_embeddings=[vectors[0]], n_results=1)["ids"] == [["tiny"]]
    assert col.query(query_embeddings=[vectors[0] * 1e-50], n_results=1)["ids"] == [["tiny"]]
    for bad, found in (({"the cat": 1}, "got dict, a mapping"), (3, "got int")):  # a dict's keys were searched
        with pytest.raises(
            InvalidTypeError, match=f"query_texts must be a str or (a flat|an) iterable of str, {found}"
        ):
            col.query(query_texts=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"query_texts\[0\] must be a str"):
        col.query(query_texts=[None])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="embeddings must be a rectangular array of numbers"):
        col.add(ids=["s"], embeddings=[["x"] * enc.dim])  # numpy's "could not convert string to float"


def test_query_embeddings_are_the_full_vectors_and_the_candidate_count_is_exact(
    client, tiny_model_path, monkeypatch
) -> None:
    from matryo.search import candidate_count

    col = make(client, tiny_model_path, "metadata")
    asked: list[int] = []
    real = col.collection.query
    monkeypatch.setattr(col.collection, "query", lambda *a, **kw: asked.append(kw["n_results"]) or real(*a, **kw))
    got = col.query(query_texts=["cat dog"], n_results=3, include=["embeddings", "documents"])
    assert asked == [candidate_count(3, col.rescore_multiplier)]
    enc = load_encoder(tiny_model_path)
    vectors = np.asarray(got["embeddings"][0])
    assert vectors.shape == (3, enc.dim)  # full width, not the 16-d first-pass vectors
    np.testing.assert_allclose(vectors, enc.encode(got["documents"][0], truncate_dim=enc.dim), atol=2e-3)


def test_open_with_repair_rebuilds_a_missing_sibling_vector_and_delete_honours_where_document(
    client, tiny_model_path
) -> None:
    col = make(client, tiny_model_path, "sibling")
    assert col.full_collection is not None
    col.full_collection.delete(ids=["d3"])  # a write interrupted between the two collections
    TwoStageCollection.open(client, col.name)  # no repair: still missing
    assert col.full_collection.get(ids=["d3"])["ids"] == []
    reopened = TwoStageCollection.open(client, col.name, repair=True)
    assert reopened.full_collection is not None and reopened.full_collection.get(ids=["d3"])["ids"] == ["d3"]
    page = col.get(include=["documents"])
    docs = dict(zip(page["ids"], page["documents"], strict=True))
    word = docs["d5"].split()[0]
    with_word = {i for i, d in docs.items() if word in d}  # $contains: a substring
    deleted = col.delete(where_document={"$contains": word})
    assert set(deleted) == with_word and col.count() == N - len(with_word)


def test_a_query_with_an_all_zero_prefix_finds_nothing(client, tiny_model_path) -> None:
    # Chroma ranked a zero first-pass vector anyway, and its shortlist was rescored (NumpyIndex, LanceDB: no hits)
    col = make(client, tiny_model_path, "metadata")
    query = load_encoder(tiny_model_path).encode(["cat dog"], truncate_dim=col.dim)
    assert len(col.query(query_embeddings=query, n_results=3)["ids"][0]) == 3
    query[:, : col.truncate_dim] = 0.0
    assert col.query(query_embeddings=query, n_results=3)["ids"] == [[]]


def test_rescore_multiplier_per_call_and_after_reopen_and_get_where_document(
    client, tiny_model_path, monkeypatch
) -> None:
    from matryo.search import candidate_count

    col = TwoStageCollection.create(client, "multiplier", model=tiny_model_path, truncate_dim=16, rescore_multiplier=4)
    docs = word_corpus(N)
    col.add(ids=[f"d{i}" for i in range(N)], documents=docs)
    reopened = TwoStageCollection.open(client, "multiplier")  # in another process: the stored multiplier
    asked: list[int] = []
    real = reopened.collection.query
    monkeypatch.setattr(reopened.collection, "query", lambda *a, **kw: asked.append(kw["n_results"]) or real(*a, **kw))
    reopened.query(query_texts=["cat dog"], n_results=3)
    reopened.query(query_texts=["cat dog"], n_results=3, rescore_multiplier=10)
    assert asked == [candidate_count(3, 4), candidate_count(3, 10)]
    word = docs[5].split()[0]
    got = col.get(where_document={"$contains": word})
    assert set(got["ids"]) == {f"d{i}" for i, d in enumerate(docs) if word in d} != set(col.get()["ids"])


def test_metadata_store_upsert_writes_the_new_full_vector(client, tiny_model_path) -> None:
    # an upsert that kept the old full-vector code left the record stale (rebuilt from its document on every query)
    col = make(client, tiny_model_path, "metadata")
    col.upsert(ids=["d0"], documents=["light water fire light"])
    col.update(ids=["d1"], documents=["river road city"])
    page = col.collection.get(ids=["d0", "d1"], include=["embeddings", "metadatas"])
    firsts = col._full.firsts(page["embeddings"], len(page["ids"]))  # noqa: SLF001
    stored = col._full.stored(list(page["ids"]), firsts, list(page["metadatas"]))  # noqa: SLF001
    enc = load_encoder(tiny_model_path)
    texts = {"d0": "light water fire light", "d1": "river road city"}
    assert set(stored) == {"d0", "d1"}  # both codes agree with the new first-pass vectors
    for doc_id, text in texts.items():
        np.testing.assert_allclose(stored[doc_id], enc.encode(text, truncate_dim=enc.dim), atol=2e-3)


def test_a_slightly_moved_first_pass_vector_is_stale(client, tiny_model_path) -> None:
    # the consistency check is tight (5e-6 for float16): loosening it 2000x passed every test (mutation audit C12)
    col = TwoStageCollection.create(client, "tight", model=tiny_model_path, truncate_dim=16)
    enc = load_encoder(tiny_model_path)
    vectors = enc.encode(word_corpus(20), truncate_dim=64)
    col.add(ids=[f"h{i}" for i in range(20)], embeddings=vectors)  # no documents: nothing to rebuild from
    first = vectors[0, :16] / np.linalg.norm(vectors[0, :16])
    noise = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    noise -= (noise @ first) * first
    moved = first + 0.045 * noise / np.linalg.norm(noise)  # 1 - cos ~ 1e-3
    moved /= np.linalg.norm(moved)
    assert 5e-4 < 1 - float(moved @ first) < 5e-3
    col.collection.update(ids=["h0"], embeddings=[moved.tolist()])  # raw Chroma: first pass edited, full kept
    with pytest.warns(StaleVectorWarning, match="h0"):
        result = col.query(query_embeddings=vectors[:1], n_results=5)
    assert "h0" not in result["ids"][0]


def test_hnsw_settings_reach_chroma(client, tiny_model_path) -> None:
    # create(hnsw=...) could be dropped without a failing test (mutation audit C52)
    TwoStageCollection.create(client, "tuned", model=tiny_model_path, hnsw={"ef_search": 77})
    hnsw = client.get_collection("tuned").configuration.get("hnsw") or {}
    assert hnsw.get("ef_search") == 77 and hnsw.get("space") == "cosine"
