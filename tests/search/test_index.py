from __future__ import annotations

import pickle
import sys
import threading
import warnings

import numpy as np
import pytest
from tests.conftest import traced_peak

from matryo import index as index_module
from matryo import vectors as vectors_module
from matryo.errors import DimensionMismatchError, InvalidArgumentError, InvalidTypeError, NonFiniteVectorError
from matryo.index import FIRST_PASS_CODECS, STORES, NumpyIndex
from matryo.quantize import Codec, Int8Codec
from matryo.search import SearchHits, rescore, two_stage_search
from matryo.vectors import normalize, truncate


class _Width:
    """An encoder stand-in for tests that add and search by vectors only."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def encode(self, texts: object, *, truncate_dim: int | None = None, normalize: bool = True) -> np.ndarray:
        raise AssertionError("this test searches by vectors")


def _exact_ids(encoder, texts, ids, query: str, k: int) -> list[str]:
    docs = encoder.encode(texts)
    scores = docs @ encoder.encode(query)
    return [ids[i] for i in np.argsort(-scores, kind="stable")[:k]]


@pytest.fixture
def index(encoder, corpus) -> NumpyIndex[str]:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(ids, texts)
    return idx


def test_exact_mode_is_brute_force_cosine(encoder, corpus, index) -> None:
    ids, texts = corpus
    hits = index.search("alpha beta", k=10, mode="exact")
    assert hits.ids == _exact_ids(encoder, texts, ids, "alpha beta", 10)
    assert np.all(np.diff(hits.scores) <= 0)


@pytest.mark.parametrize("first_pass", FIRST_PASS_CODECS)
@pytest.mark.parametrize("store", STORES)
def test_two_stage_with_full_oversampling_matches_exact(encoder, corpus, first_pass: str, store: str) -> None:
    ids, texts = corpus
    sample = encoder.encode(texts)
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass=first_pass, store=store, calibration=sample)
    idx.add(ids, texts)
    # Half the corpus as candidates: the first pass must keep the exact top 8 among its best 150 (a multiplier
    # of len(ids) took the exact path, so no first pass was ever scored here).
    hits = idx.search(["alpha beta", "pi"], k=8, rescore_multiplier=len(ids) / 2 / 8)
    for query, got in zip(["alpha beta", "pi"], hits, strict=True):
        expected = _exact_ids(encoder, texts, ids, query, 8)
        if store in ("int8",):  # decoded int8 vectors may swap near-ties; the set still matches closely
            assert len(set(got.ids) & set(expected)) >= 7
        else:
            assert got.ids == expected


def test_bytes_per_vector(encoder) -> None:
    sizes = {}
    for first_pass in FIRST_PASS_CODECS:
        for store in STORES:
            idx = NumpyIndex(encoder, truncate_dim=32, first_pass=first_pass, store=store)
            sizes[first_pass, store] = (idx.first_pass_bytes_per_vector, idx.store_bytes_per_vector)
    assert sizes["float32", "float32"] == (128, 256)
    assert sizes["int8", "float16"] == (32, 128)
    assert sizes["binary", "int8"] == (4, 64)
    assert sizes["binary", "none"] == (4, 0)


def test_store_none_re_encodes_candidates(encoder, corpus) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, store="none")
    idx.add(ids, texts)
    before = encoder.texts_encoded
    hits = idx.search("alpha beta", k=5, rescore_multiplier=3)
    assert encoder.texts_encoded - before == 1 + 15
    reference: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    reference.add(ids, texts)
    expected = reference.search("alpha beta", k=5, rescore_multiplier=3)
    assert hits.ids == expected.ids
    np.testing.assert_allclose(hits.scores, expected.scores, rtol=1e-5)
    with pytest.raises(ValueError, match="store='none'"):
        idx.search("alpha", mode="exact")


def test_store_none_needs_texts(encoder) -> None:
    idx = NumpyIndex(encoder, store="none")
    with pytest.raises(ValueError, match="texts"):
        idx.add(["a"], vectors=np.ones((1, 64)))
    # with texts too, the vectors built the first pass while rescoring re-encoded the texts: a document whose text
    # was empty came back with score 0, another scored -0.16 for its vector's -1.0
    with pytest.raises(ValueError, match=r"store='none' re-encodes the texts.*Pass texts= only"):
        idx.add(["a", "b"], ["alpha", ""], vectors=np.ones((2, 64)))
    assert len(idx) == 0


def test_vectors_without_ids_are_refused_not_dropped(encoder) -> None:
    idx: NumpyIndex[str] = NumpyIndex(encoder)
    with pytest.raises(ValueError, match=r"found 0 ids and vectors of shape \(1, 64\)"):
        idx.add([], vectors=np.ones((1, 64)))
    idx.add([], vectors=np.zeros((0, 64)))  # nothing to add: fine
    idx.add([], [])
    assert len(idx) == 0


def test_first_pass_mode_is_single_stage_truncated(encoder, corpus, index) -> None:
    ids, texts = corpus
    hits = index.search("alpha beta", k=5, mode="first_pass")
    short = truncate(encoder.encode(texts), 16)
    scores = short @ truncate(encoder.encode("alpha beta"), 16)
    expected = [ids[i] for i in np.argsort(-scores, kind="stable")[:5]]
    assert hits.ids == expected
    np.testing.assert_allclose(hits.scores, np.sort(scores)[::-1][:5], rtol=1e-5)


def test_first_pass_ties_keep_insertion_order(encoder) -> None:
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="binary")
    idx.add(["z", "y", "x", "w"], ["alpha beta", "alpha beta", "omicron pi", "alpha beta"])
    query = truncate(encoder.encode(["alpha beta"]), 16)
    assert idx.first_pass(query, 2) == [["z", "y"]]
    assert idx.first_pass(query, 3) == [["z", "y", "w"]]


@pytest.mark.parametrize("store", ["float32", "float16", "int8"])
def test_identical_documents_rank_by_insertion_whatever_the_batch(store: str) -> None:
    # BLAS sums a matrix's last rows in another order: 23 copies of one vector scored 1 ulp apart by position, so
    # the copies came back as d16, d17, d18 in a batch of queries and as d0, d1, d2 for the same query alone
    rng = np.random.default_rng(1)
    doc = rng.standard_normal(32).astype(np.float32)
    queries = rng.standard_normal((5, 32)).astype(np.float32)
    idx: NumpyIndex[str] = NumpyIndex(_Width(32), truncate_dim=16, store=store)
    idx.add([f"d{i}" for i in range(23)], vectors=np.tile(doc, (23, 1)))
    for mode in ("exact", "two_stage"):
        batch = idx.search_vectors(queries, k=3, mode=mode)
        alone = [idx.search_vectors(q[None], k=3, mode=mode)[0] for q in queries]
        assert [h.ids for h in batch] == [h.ids for h in alone] == [["d0", "d1", "d2"]] * 5, mode
    fetch = idx.fetch_full_vectors
    ids = [f"d{i}" for i in range(22, -1, -1)]  # rescore keeps the candidates' order among equal scores
    assert rescore(queries, [ids] * 5, k=3, fetch_full_vectors=fetch)[1].ids == ["d22", "d21", "d20"]


def test_index_is_a_first_pass_and_fetch_for_two_stage_search(encoder, corpus, index) -> None:
    hits = two_stage_search(
        encoder,
        ["alpha", "beta"],
        first_pass=index.first_pass,
        fetch_full_vectors=index.fetch_full_vectors,
        truncate_dim=index.truncate_dim,
    )
    direct = index.search(["alpha", "beta"])
    assert [h.ids for h in hits] == [h.ids for h in direct]


def test_single_query_returns_hits_and_list_returns_list(index) -> None:
    assert isinstance(index.search("alpha"), SearchHits)
    batch = index.search(["alpha"])
    assert isinstance(batch, list)
    assert len(batch) == 1
    assert index.search([]) == []


def test_empty_index(encoder) -> None:
    idx: NumpyIndex[str] = NumpyIndex(encoder, first_pass="int8")
    for mode in ("two_stage", "exact", "first_pass"):
        hits = idx.search(["alpha", "beta"], mode=mode)
        assert [len(h) for h in hits] == [0, 0]
    assert len(idx) == 0


def test_fewer_docs_than_k(encoder) -> None:
    idx: NumpyIndex[str] = NumpyIndex(encoder)
    idx.add(["a", "b"], ["alpha", "beta"])
    hits = idx.search("alpha", k=10)
    assert hits.ids == ["a", "b"]


def test_incremental_adds_equal_one_add(encoder, corpus) -> None:
    ids, texts = corpus
    one: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="binary")
    one.add(ids, texts)
    many: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="binary")
    for start in range(0, len(ids), 70):
        many.add(ids[start : start + 70], texts[start : start + 70])
        many.search("warm up the merge")  # searching between adds must not lose documents
    assert len(many) == len(ids)
    assert many.ids == ids
    assert many.search("alpha beta", rescore_multiplier=5).ids == one.search("alpha beta", rescore_multiplier=5).ids


def test_add_by_vectors(encoder, corpus) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(ids, vectors=encoder.encode(texts) * 3.0)  # normalised on the way in
    assert idx.search("alpha beta", mode="exact").ids == _exact_ids(encoder, texts, ids, "alpha beta", 10)


def test_add_rejects_bad_input(encoder, index) -> None:
    with pytest.raises(ValueError, match="unique"):
        index.add(["doc-1"], ["again"])
    with pytest.raises(ValueError, match=r"unique; found 1 .*\['a'\]"):
        NumpyIndex(encoder).add(["a", "b", "a"], ["x", "y", "z"])
    with pytest.raises(DimensionMismatchError, match=r"Expected 2 vectors.*\(1, 64\)"):
        index.add(["new1", "new2"], vectors=np.ones((1, 64)))
    with pytest.raises(ValueError, match="one text per id"):
        index.add(["new"], ["x", "y"])
    with pytest.raises(TypeError, match="not one string"):
        index.add(["new"], "text")  # type: ignore[arg-type]
    with pytest.raises(DimensionMismatchError, match=r"width 64.*\(1, 32\)"):
        index.add(["new"], vectors=np.ones((1, 32)))
    assert "new" not in index.ids


def test_query_width_mismatch(encoder, index) -> None:
    with pytest.raises(DimensionMismatchError, match=r"32 dimensions.*16"):
        index.first_pass(np.ones((1, 32), dtype=np.float32), 5)
    with pytest.raises(DimensionMismatchError, match="64"):
        index.search_vectors(np.ones((1, 32)))


def test_bad_arguments(encoder, index) -> None:
    with pytest.raises(ValueError, match="k must be"):
        index.search("alpha", k=0)
    with pytest.raises(ValueError, match="k must be"):
        index.search([], k=-1)
    with pytest.raises(ValueError, match="Unknown mode"):
        index.search("alpha", mode="fast")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="Unknown first_pass"):
        NumpyIndex(encoder, first_pass="float16")
    with pytest.raises(ValueError, match="Unknown store"):
        NumpyIndex(encoder, store="int4")
    with pytest.raises(ValueError, match="positive integer"):
        NumpyIndex(encoder, truncate_dim=0)


def test_truncate_dim_wider_than_model_means_full(encoder) -> None:
    assert NumpyIndex(encoder, truncate_dim=4096).truncate_dim == 64
    assert NumpyIndex(encoder, truncate_dim=None).truncate_dim == 64


def test_int8_ranges_widen_when_documents_arrive_one_at_a_time(encoder, corpus) -> None:
    ids, texts = corpus
    exact: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="float32", store="float32")
    exact.add(ids, texts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "calibrated on only 1 vectors" warning: nothing is clipped
        single: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="int8", store="int8")
        for doc_id, text in zip(ids, texts, strict=True):
            single.add([doc_id], [text])  # the first document alone sets the first ranges
    assert isinstance(single._store_codec, Int8Codec)  # noqa: SLF001
    full = encoder.encode(texts, normalize=True)
    assert np.all(full >= single._store_codec.minimums) and np.all(full <= single._store_codec.maximums)  # noqa: SLF001
    for query in ("alpha", "beta gamma", texts[3]):
        got, want = single.search(query, k=5), exact.search(query, k=5)
        assert got.ids[:3] == want.ids[:3]
        np.testing.assert_allclose(got.scores, want.scores, atol=0.02)  # not one collapsed value for all
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet: NumpyIndex[str] = NumpyIndex(
            encoder, truncate_dim=16, first_pass="int8", store="int8", calibration=encoder.encode(texts)
        )
        quiet.add(ids[:20], texts[:20])
        quiet.add(ids[20:], texts[20:])
    assert len(quiet.search("alpha").ids) == 10


def test_a_calibration_sample_that_does_not_cover_the_first_batch_is_widened(encoder, corpus) -> None:
    # The ranges of a 20-document sample clipped the first add of all 300 (worst round-trip cosine 0.97).
    ids, texts = corpus
    sample = encoder.encode(texts[:20])
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="int8", store="int8", calibration=sample)
    idx.add(ids, texts)
    full = encoder.encode(texts, normalize=True)
    for codec, vectors in ((idx._store_codec, full), (idx._first_codec, truncate(full, 16))):  # noqa: SLF001
        assert isinstance(codec, Int8Codec)
        assert np.all(vectors >= codec.minimums - 1e-6) and np.all(vectors <= codec.maximums + 1e-6)  # rounding
    _, decoded = idx.fetch_full_vectors(ids)
    assert np.min(np.sum(normalize(decoded) * full, axis=1)) > 0.999


def test_calibration_width_is_checked(encoder, corpus) -> None:
    # at construction: the index used to accept it, and then every add failed
    for calibration in (np.ones((200, 16)), np.ones(64), np.ones((0, 64))):
        with pytest.raises(DimensionMismatchError, match=r"\(n, 64\)"):
            NumpyIndex(encoder, first_pass="int8", calibration=calibration)


@pytest.mark.parametrize("mode", ["two_stage", "exact", "first_pass"])
def test_empty_query_matches_nothing_in_every_mode(encoder, corpus, mode) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(ids, texts)
    hits = idx.search(["", "   ", texts[0]], k=5, mode=mode)
    assert hits[0].ids == [] and hits[1].ids == [] and len(hits[2]) == 5


@pytest.mark.parametrize(("first_pass", "store"), [("float32", "float32"), ("int8", "int8"), ("binary", "float16")])
def test_add_refuses_non_finite_vectors_and_keeps_the_index(encoder, corpus, first_pass: str, store: str) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass=first_pass, store=store)
    idx.add(ids, texts)
    before = idx.search("alpha beta", k=len(ids))
    bad = np.ones((4, 64))
    bad[0, 5] = np.nan
    bad[1, 0] = np.inf
    bad[3] = 1e39  # a finite float64 that overflows float32
    with pytest.raises(NonFiniteVectorError, match=r"3 of 4 vector\(s\), ids \['nan', 'inf', 'big'\]") as info:
        idx.add(["nan", "inf", "ok", "big"], vectors=bad)
    assert isinstance(info.value, ValueError)
    assert len(idx) == len(ids) and "ok" not in idx.ids
    after = idx.search("alpha beta", k=len(ids))
    assert after.ids == before.ids
    np.testing.assert_array_equal(after.scores, before.scores)
    assert np.all(np.isfinite(after.scores))


def test_non_finite_calibration_is_refused_up_front(encoder) -> None:
    sample = np.ones((10, 64), dtype=np.float32)
    sample[4, 1] = np.nan
    with pytest.raises(NonFiniteVectorError, match=r"calibration vectors.*rows \[4\]"):
        NumpyIndex(encoder, first_pass="int8", calibration=sample)


@pytest.mark.parametrize("mode", ["two_stage", "exact", "first_pass"])
def test_non_finite_queries_are_refused(index, mode) -> None:
    queries = np.ones((3, 64))
    queries[2, 0] = np.nan
    with pytest.raises(NonFiniteVectorError, match=r"query vectors.*rows \[2\]"):
        index.search_vectors(queries, mode=mode)
    with pytest.raises(NonFiniteVectorError, match="first-pass query vectors"):
        index.first_pass(np.full((1, 16), np.inf, dtype=np.float32), 5)


def test_a_failed_store_calibration_leaves_the_index_usable(encoder, corpus, monkeypatch) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, store="int8")
    real = Int8Codec.calibrate.__func__  # type: ignore[attr-defined]

    def failing(cls: type[Int8Codec], sample: np.ndarray, *, warn: bool = True) -> Int8Codec:
        raise MemoryError

    monkeypatch.setattr(Int8Codec, "calibrate", classmethod(failing))
    with pytest.raises(MemoryError):
        idx.add(ids[:10], texts[:10])  # the first-pass codec (float32) is built, the store's calibration fails
    monkeypatch.setattr(Int8Codec, "calibrate", classmethod(real))
    assert len(idx) == 0
    idx.add(ids, texts)
    hits = idx.search("alpha beta", k=5)
    assert len(hits) == 5
    assert idx.search("alpha beta", k=5, mode="exact").ids == hits.ids


@pytest.mark.parametrize(("first_pass", "store"), [("float32", "float16"), ("int8", "int8")])
def test_an_interrupted_add_changes_nothing(encoder, corpus, monkeypatch, first_pass: str, store: str) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass=first_pass, store=store)
    idx.add(ids[:10], texts[:10])
    first_codec = idx._first_codec  # noqa: SLF001
    codec_class = type(idx._store_codec)  # noqa: SLF001
    real = codec_class.encode

    def interrupted(self: Codec, vectors: np.ndarray) -> np.ndarray:
        if self.dim == 64:
            raise KeyboardInterrupt  # Ctrl-C (or a MemoryError) while the store codes are written
        return real(self, vectors)

    monkeypatch.setattr(codec_class, "encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        idx.add(ids[10:200], [f"{text} omicron omicron" for text in texts[10:200]])  # widens int8 ranges
    monkeypatch.setattr(codec_class, "encode", real)
    assert len(idx) == 10 and idx.ids == ids[:10]
    assert idx._first_codec is first_codec  # noqa: SLF001  # not widened by the failed batch
    idx.add(ids[200:], texts[200:])  # the user carries on
    fresh: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass=first_pass, store=store)
    fresh.add(ids[:10], texts[:10])
    fresh.add(ids[200:], texts[200:])
    for mode in ("two_stage", "exact", "first_pass"):
        query = texts[250]
        got, want = idx.search(query, k=5, mode=mode), fresh.search(query, k=5, mode=mode)
        assert got.ids == want.ids and got.ids[0] == ids[250]
        np.testing.assert_array_equal(got.scores, want.scores)


def test_add_concurrent_with_searches_loses_nothing(encoder) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1500, 64)).astype(np.float32)
    idx: NumpyIndex[int] = NumpyIndex(encoder, truncate_dim=16)
    idx.add([0], vectors=vectors[:1])
    stop = threading.Event()
    failures: list[BaseException] = []

    def search() -> None:
        query = rng.standard_normal((2, 64)).astype(np.float32)
        try:
            while not stop.is_set():
                for hits in idx.search_vectors(query, k=5) + idx.search_vectors(query, k=5, mode="exact"):
                    assert len(hits) <= 5
        except BaseException as exc:  # noqa: BLE001  # reported below
            failures.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often so that a race shows
    threads = [threading.Thread(target=search) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for i in range(1, len(vectors)):
            idx.add([i], vectors=vectors[i : i + 1])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        sys.setswitchinterval(interval)
    assert failures == []
    assert len(idx) == len(vectors)
    found, full = idx.fetch_full_vectors(list(range(len(vectors))))
    assert found == list(range(len(vectors)))
    np.testing.assert_allclose(full, normalize(vectors), atol=1e-6)
    tops = idx.search_vectors(vectors[::100], k=1, mode="first_pass")
    assert [hits.ids[0] for hits in tops] == list(range(0, len(vectors), 100))


def test_a_search_after_an_add_copies_nothing(encoder) -> None:
    rng = np.random.default_rng(0)
    idx: NumpyIndex[int] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(list(range(20_000)), vectors=rng.standard_normal((20_000, 64)))
    query = rng.standard_normal((1, 64))
    idx.search_vectors(query)
    index_bytes = 20_000 * (64 + 16) * 4  # 6.4 MB
    for step in range(3):
        idx.add([20_000 + step], vectors=rng.standard_normal((1, 64)))
        _, peak = traced_peak(lambda: idx.search_vectors(query))
        assert peak < index_bytes / 5  # scores and a shortlist, not a copy of the index


@pytest.mark.parametrize(("first_pass", "store"), [("float32", "float32"), ("int8", "int8"), ("binary", "none")])
def test_pickle_round_trip_keeps_results_and_the_index_stays_usable(encoder, corpus, first_pass, store) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass=first_pass, store=store)
    idx.add(ids[:100], texts[:100])
    idx.add(ids[100:200], texts[100:200])
    back = pickle.loads(pickle.dumps(idx))
    for mode in ("two_stage", "first_pass") if store == "none" else ("two_stage", "exact", "first_pass"):
        got, want = back.search(["alpha beta", "pi"], mode=mode), idx.search(["alpha beta", "pi"], mode=mode)
        assert [h.ids for h in got] == [h.ids for h in want]
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a.scores, b.scores)
    for copy in (back, idx):
        copy.add(ids[200:], texts[200:])
    assert back.ids == idx.ids == ids
    assert back.search("alpha beta").ids == idx.search("alpha beta").ids


def test_a_batch_of_queries_is_rescored_a_few_queries_at_a_time(encoder, corpus, monkeypatch) -> None:
    # store="none" rescores through fetch_full_vectors (texts re-encoded); stored vectors are rescored by row.
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, store="none")
    idx.add(ids, texts)
    queries = encoder.encode([f"{a} {b}" for a, b in zip(texts[:40], texts[40:80], strict=True)])
    one_by_one = [idx.search_vectors(query, k=5, rescore_multiplier=8)[0] for query in queries]
    monkeypatch.setattr(index_module, "_RESCORE_BLOCK", 40 * 3 * 64)  # 3 queries' shortlists of 40 per fetch
    fetched: list[int] = []
    fetch = idx._fetch  # what search uses: fetch_full_vectors on the search's own snapshot of the index

    def recording(snap: object, wanted: list[str]) -> tuple[list[str], np.ndarray]:
        fetched.append(len(wanted))
        return fetch(snap, wanted)

    monkeypatch.setattr(idx, "_fetch", recording)
    batch = idx.search_vectors(queries, k=5, rescore_multiplier=8)
    assert max(fetched) <= 120 and len(fetched) == 14
    assert [h.ids for h in batch] == [h.ids for h in one_by_one]
    for got, want in zip(batch, one_by_one, strict=True):
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)


@pytest.mark.parametrize("store", ["float32", "float16", "int8"])
def test_exact_mode_equals_a_two_stage_search_over_the_whole_index(store: str) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 64)).astype(np.float32)
    idx: NumpyIndex[int] = NumpyIndex(_Width(64), truncate_dim=16, store=store)
    idx.add(list(range(1500)), vectors=vectors[:1500])
    idx.add(list(range(1500, 3000)), vectors=vectors[1500:] * 1.5)  # widens the int8 ranges: codes re-encoded
    queries = rng.standard_normal((60, 64)).astype(np.float32)
    exact = idx.search_vectors(queries, k=10, mode="exact")
    # The generic rescore over every document: search_vectors with rescore_multiplier=len(idx) took the exact
    # path too, so this test compared _exact with itself.
    whole = rescore(queries, [idx.ids] * len(queries), k=10, fetch_full_vectors=idx.fetch_full_vectors)
    for got, want in zip(exact, whole, strict=True):
        assert got.ids == want.ids  # int8 codes do not decode to unit vectors: rank by the reported cosine
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-6)  # BLAS rounding


def test_exact_and_two_stage_break_full_dimension_ties_by_insertion_order() -> None:
    a = np.zeros(8)
    a[[0, 1]] = 0.6, 0.8  # prefix [0.6, 0.8]
    b = np.zeros(8)
    b[[0, 5]] = 0.6, 0.8  # prefix [0.6, 0]: first in the first pass
    query = np.eye(8)[:1]  # full cosine 0.6 with both
    idx: NumpyIndex[str] = NumpyIndex(_Width(8), truncate_dim=2)
    idx.add(["a", "b"], vectors=np.stack([a, b]))
    assert idx.first_pass(truncate(query, 2), 2) == [["b", "a"]]
    for hits in (
        idx.search_vectors(query, k=1, mode="exact")[0],
        idx.search_vectors(query, k=1, rescore_multiplier=100)[0],
        idx.search_vectors(query, k=1, rescore_multiplier=2)[0],
    ):
        assert hits.ids == ["a"]
        np.testing.assert_allclose(hits.scores, [0.6], rtol=1e-6)


def test_an_index_pickled_before_the_code_arrays_still_loads(encoder, corpus) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass="int8", store="int8")
    idx.add(ids, texts)
    state = idx.__getstate__()
    old = {key: value for key, value in state.items() if key not in ("_n", "_store_norms")}
    codes = old.pop("_first_codes"), old.pop("_store_codes")
    old["_first_chunks"], old["_store_chunks"] = [codes[0][:100], codes[0][100:]], [codes[1][:100], codes[1][100:]]
    back: NumpyIndex[str] = NumpyIndex.__new__(NumpyIndex)
    back.__setstate__(old)
    for mode in ("two_stage", "exact", "first_pass"):
        got, want = back.search("alpha beta", mode=mode), idx.search("alpha beta", mode=mode)
        assert got.ids == want.ids
        np.testing.assert_array_equal(got.scores, want.scores)


@pytest.mark.parametrize("store", ["float32", "float16", "int8"])
def test_stored_vectors_are_rescored_by_row_as_rescore_scores_the_same_shortlists(store: str, monkeypatch) -> None:
    # The two-stage path scores stored vectors by row (no id look-ups, no fetch); it must give what the generic
    # rescore gives on the same first-pass shortlists.
    rng = np.random.default_rng(2)
    idx: NumpyIndex[str] = NumpyIndex(_Width(64), truncate_dim=16, store=store)
    idx.add([f"d{i}" for i in range(800)], vectors=rng.standard_normal((800, 64)).astype(np.float32))
    queries = normalize(rng.standard_normal((30, 64)).astype(np.float32))
    queries[3] = 0.0  # a zero query ranks nothing in both
    shortlists = idx.first_pass(truncate(queries, 16), 10 * 4)
    expected = rescore(queries, shortlists, k=10, fetch_full_vectors=idx.fetch_full_vectors)
    monkeypatch.setattr(idx, "fetch_full_vectors", None)  # not called
    got = idx.search_vectors(queries, k=10, rescore_multiplier=4)
    assert [h.ids for h in got] == [h.ids for h in expected] and not got[3].ids
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- review 12: empty documents, memory, validation


@pytest.mark.parametrize("first_pass", FIRST_PASS_CODECS)
@pytest.mark.parametrize("store", STORES)
def test_empty_documents_are_never_returned(encoder, corpus, first_pass: str, store: str) -> None:
    # As the Chroma and LanceDB adapters do under cosine: a zero vector scored 0 and ranked above every negative
    # score, and an int8 store scored it from its rounding noise (0.18 on this corpus: ranked 2nd of 9).
    ids, texts = corpus
    with_empty = [*ids[:40], "empty-1", "empty-2"], [*texts[:40], "", "   "]
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass=first_pass, store=store)
    idx.add(*with_empty)
    idx.add(["empty-3", "late"], ["", "alpha beta"])  # also in a later batch (an int8 store may widen)
    modes = ["two_stage", "first_pass"] + (["exact"] if store != "none" else [])
    for mode in modes:
        for k, multiplier in ((len(idx), 50), (5, 4)):  # every document (the exact path), then a real first pass
            for hits in idx.search(["alpha beta", "pi rho", "zeta"], k=k, rescore_multiplier=multiplier, mode=mode):
                assert not {"empty-1", "empty-2", "empty-3"} & set(hits.ids), mode
                assert len(hits.ids) == min(k, len(idx) - 3), mode
    assert len(idx) == 44 and "empty-1" in idx.ids  # kept, just never returned
    found, vectors = idx.fetch_full_vectors(["empty-1", "late"])
    assert found == ["empty-1", "late"] and not vectors[0].any() and vectors[1].any()
    restored = pickle.loads(pickle.dumps(idx))
    assert "empty-1" not in restored.search("alpha", k=len(idx), mode=modes[-1]).ids


def test_an_add_appends_in_place_instead_of_copying_the_store() -> None:
    # Every add used to copy (and re-measure) the whole rescoring store under the lock: O(n) per add.
    idx: NumpyIndex[str] = NumpyIndex(_Width(32), truncate_dim=8, store="float16")
    rng = np.random.default_rng(0)
    buffers = set()
    for i in range(200):
        idx.add([f"d{i}"], vectors=rng.standard_normal((1, 32)))
        buffers.add(id(idx._store_codes))
    assert len(buffers) <= 15  # grown by half when full: about log1.5(200) buffers, not 200


def test_batch_search_scores_a_bounded_block_of_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    # 256 queries were scored against the whole index at once: about 1 GB of scores per million documents.
    n, dim = 20_000, 32
    idx: NumpyIndex[str] = NumpyIndex(_Width(dim), truncate_dim=16)
    rng = np.random.default_rng(1)
    idx.add([f"d{i}" for i in range(n)], vectors=rng.standard_normal((n, dim)))
    queries = rng.standard_normal((256, dim)).astype(np.float32)
    expected = idx.search_vectors(queries[:8], k=5, mode="first_pass")
    monkeypatch.setattr(vectors_module, "SCORE_BLOCK_BYTES", 1 << 18)  # 3 queries per block of 20,000 documents
    got, peak = traced_peak(lambda: idx.search_vectors(queries, k=5, mode="first_pass"))
    assert peak < 4 * 256 * n / 4  # a quarter of the whole score matrix
    assert [h.ids for h in got[:8]] == [h.ids for h in expected]


def test_search_arguments_are_checked_before_any_work(encoder, index) -> None:
    with pytest.raises(ValueError, match="on_missing must be 'raise' or 'skip'"):
        index.search("alpha", on_missing="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown mode 'bogus'"):
        index.search([], mode="bogus")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not bytes"):
        index.search(b"alpha")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not one str"):
        index.add("ab", vectors=np.ones((2, 64)))  # its characters would have been the ids 'a' and 'b'
    assert "a" not in index.ids
    with pytest.raises(ValueError, match="must be an integer"):
        index.first_pass(np.ones((1, 16), dtype=np.float32), 2.5)  # type: ignore[arg-type]
    assert index.first_pass([], 3) == []  # type: ignore[arg-type]


def test_a_shortlist_covering_the_index_is_searched_exactly(encoder, corpus, monkeypatch) -> None:
    # rescore_multiplier 1e9 built every query's whole-index shortlist and rescored it: 35x slower than
    # mode="exact" for the same hits, with memory growing as queries x documents
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(ids, texts)
    want = idx.search(["alpha beta", "gamma"], k=5, mode="exact")
    monkeypatch.setattr(idx, "_first_rows", lambda *a, **k: pytest.fail("no first pass for a whole-index shortlist"))
    for multiplier in (1e9, len(ids) / 5):
        got = idx.search(["alpha beta", "gamma"], k=5, rescore_multiplier=multiplier)
        assert [h.ids for h in got] == [h.ids for h in want]
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a.scores, b.scores)


def test_tiny_float64_vectors_keep_their_direction_and_bad_vectors_get_matryo_errors(encoder) -> None:
    # cast to float32 before normalising, a 1e-50 row became all zeros: an empty document, never returned
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    tiny, other = np.zeros(64), np.zeros(64)
    tiny[:2], other[2] = 1e-50, 1.0
    idx.add(["tiny", "other"], vectors=np.stack([tiny, other]))
    query = np.zeros((1, 64))
    query[0, :2] = 1.0
    for mode in ("exact", "two_stage"):
        assert idx.search_vectors(query, k=1, mode=mode)[0].ids == ["tiny"]
        assert idx.search_vectors(query * 1e-50, k=1, mode=mode)[0].ids == ["tiny"]  # a tiny query too
    hits = rescore(query * 1e-50, [["tiny", "other"]], fetch_full_vectors=idx.fetch_full_vectors)[0]
    assert hits.ids[0] == "tiny" and hits.scores[0] > 0.99
    with pytest.raises(InvalidArgumentError, match="rectangular array of numbers"):
        idx.add(["s"], vectors=[["a"] * 64])  # numpy's "could not convert string to float"
    with pytest.raises(InvalidArgumentError, match="rectangular array of numbers"):
        idx.add(["r1", "r2"], vectors=[[0.1] * 64, [0.1] * 63])  # numpy's "inhomogeneous shape"
    with pytest.raises(InvalidTypeError, match="real numbers"):
        idx.add(["c"], vectors=np.ones((1, 64), dtype=np.complex64))  # imaginary part dropped with a warning
    assert len(idx) == 2


def test_search_refuses_queries_that_are_not_texts(index) -> None:
    # None and 3 were Python's "'NoneType' object is not iterable"; a dict searched for its keys
    for bad, found in ((None, "got NoneType"), (3, "got int"), ({"alpha": 1}, "got dict, a mapping")):
        with pytest.raises(InvalidTypeError, match=f"queries must be a str or (a flat|an) iterable of str, {found}"):
            index.search(bad)
    with pytest.raises(InvalidTypeError, match=r"queries\[1\] must be a str, got int"):
        index.search(["alpha", 5])


def test_first_pass_normalises_tiny_float64_queries_and_a_zero_query_ranks_nothing(encoder, corpus) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(ids, texts)
    prefix = truncate(encoder.encode(["alpha beta"]), 16).astype(np.float64)
    assert idx.first_pass(prefix * 1e-50, 5) == idx.first_pass(prefix, 5)  # was a zero query's answer
    assert idx.first_pass(np.zeros((1, 16)), 5) == [[]]  # returned the first 5 rows added


def test_a_zero_d_string_array_is_one_query_as_encode_reads_it(index) -> None:
    # check_texts read np.array("q") as one text, but search returned a list of one SearchHits
    assert isinstance(index.search(np.array("alpha beta")), SearchHits)
    assert index.search(np.array("alpha beta")).ids == index.search("alpha beta").ids


@pytest.mark.parametrize("store", ["float32", "none"])
def test_a_query_with_an_all_zero_prefix_finds_nothing_in_two_stage_mode(encoder, corpus, store: str) -> None:
    # its shortlist was the first rows added (first_pass, LanceDB and Chroma find nothing for it)
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, store=store)
    idx.add(ids, texts)
    query = encoder.encode(["alpha beta"])
    query[:, :16] = 0.0
    assert idx.search_vectors(query, k=3, rescore_multiplier=2)[0].ids == []
    assert idx.search_vectors(query, k=3, rescore_multiplier=len(ids))[0].ids == []  # the whole-index shortcut too
    assert idx.search_vectors(encoder.encode(["alpha beta"]), k=3)[0].ids  # a normal query still finds
