from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
import pytest
from tests.conftest import traced_peak

from matryo.errors import (
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteVectorError,
)
from matryo.search import (
    DEFAULT_RESCORE_MULTIPLIER,
    DEFAULT_TRUNCATE_DIM,
    MissingVectorError,
    SearchHits,
    candidate_count,
    rescore,
    two_stage_search,
)
from matryo.vectors import normalize, truncate


class DictStore:
    """A minimal host: brute-force first pass on truncated vectors, full vectors in a dict."""

    def __init__(self, ids: Sequence[Hashable], vectors: np.ndarray, truncate_dim: int) -> None:
        self.ids = list(ids)
        self.full = {doc_id: vectors[i] for i, doc_id in enumerate(self.ids)}
        self.short = truncate(vectors, truncate_dim) if len(self.ids) else np.zeros((0, truncate_dim))
        self.first_pass_calls: list[tuple[tuple[int, ...], int]] = []
        self.fetch_calls: list[list[Hashable]] = []

    def first_pass(self, queries: np.ndarray, n: int) -> list[list[Hashable]]:
        self.first_pass_calls.append((queries.shape, n))
        if not self.ids:
            return [[] for _ in queries]
        scores = queries @ self.short.T
        return [[self.ids[i] for i in np.argsort(-row, kind="stable")[:n]] for row in scores]

    def fetch(self, ids: list[Hashable]) -> dict[Hashable, np.ndarray]:
        self.fetch_calls.append(list(ids))
        return {doc_id: self.full[doc_id] for doc_id in ids if doc_id in self.full}


@pytest.fixture
def store(encoder, corpus) -> DictStore:
    ids, texts = corpus
    return DictStore(ids, encoder.encode(texts), 16)


def _exact(encoder, store: DictStore, query: str, k: int) -> tuple[list[Hashable], np.ndarray]:
    q = encoder.encode([query])[0]
    matrix = np.stack([store.full[i] for i in store.ids])
    scores = normalize(matrix) @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return [store.ids[i] for i in order], scores[order]


def test_two_stage_equals_exact_with_enough_oversampling(encoder, store) -> None:
    hits = two_stage_search(
        encoder,
        "alpha beta",
        first_pass=store.first_pass,
        fetch_full_vectors=store.fetch,
        k=5,
        rescore_multiplier=60,
        truncate_dim=16,
    )
    assert isinstance(hits, SearchHits)
    exact_ids, exact_scores = _exact(encoder, store, "alpha beta", 5)
    assert hits.ids == exact_ids
    np.testing.assert_allclose(hits.scores, exact_scores, rtol=1e-5)
    assert hits.scores.dtype == np.float32
    assert np.all(np.diff(hits.scores) <= 0)


def test_first_pass_gets_truncated_unit_queries_and_candidate_count(encoder, store) -> None:
    seen: list[np.ndarray] = []

    def first_pass(queries: np.ndarray, n: int) -> list[list[Hashable]]:
        seen.append(queries)
        return store.first_pass(queries, n)

    two_stage_search(
        encoder,
        ["alpha", "beta gamma", "delta"],
        first_pass=first_pass,
        fetch_full_vectors=store.fetch,
        k=7,
        rescore_multiplier=2.5,
        truncate_dim=16,
    )
    assert len(seen) == 1  # one batched call
    assert seen[0].shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(seen[0], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(seen[0], encoder.encode(["alpha", "beta gamma", "delta"], truncate_dim=16), atol=1e-6)
    assert store.first_pass_calls[-1][1] == math.ceil(7 * 2.5)
    assert len(store.fetch_calls) == 1  # one fetch for the union of the batch's candidates
    assert len(store.fetch_calls[0]) == len(set(store.fetch_calls[0]))


def test_batched_equals_one_by_one(encoder, store) -> None:
    queries = ["alpha beta", "zeta", "pi rho sigma", ""]
    batch = two_stage_search(
        encoder, queries, first_pass=store.first_pass, fetch_full_vectors=store.fetch, truncate_dim=16
    )
    assert isinstance(batch, list)
    assert len(batch) == 4
    for query, hits in zip(queries, batch, strict=True):
        single = two_stage_search(
            encoder, query, first_pass=store.first_pass, fetch_full_vectors=store.fetch, truncate_dim=16
        )
        assert single.ids == hits.ids
        np.testing.assert_array_equal(single.scores, hits.scores)


def test_truncate_dim_none_or_wider_passes_full_vectors(encoder, store) -> None:
    widths: list[int] = []

    def first_pass(queries: np.ndarray, n: int) -> list[list[Hashable]]:
        widths.append(queries.shape[1])
        return [store.ids[:n] for _ in queries]

    for dim in (None, 64, 1000):
        two_stage_search(encoder, "alpha", first_pass=first_pass, fetch_full_vectors=store.fetch, truncate_dim=dim)
    assert widths == [64, 64, 64]


def test_ties_keep_first_pass_order(encoder) -> None:
    vector = encoder.encode(["alpha beta"])[0]
    other = encoder.encode(["omicron"])[0]
    full = {"a": vector, "b": vector.copy(), "c": other}
    fetch = lambda ids: {i: full[i] for i in ids if i in full}  # noqa: E731
    for order in (["a", "b", "c"], ["b", "a", "c"], ["c", "b", "a"]):
        hits = two_stage_search(
            encoder, "alpha beta", first_pass=lambda q, n, o=order: [o for _ in q], fetch_full_vectors=fetch, k=3
        )
        tied = [i for i in order if i in ("a", "b")]
        assert hits.ids[:2] == tied
        assert hits.ids[2] == "c"
        assert hits.scores[0] == hits.scores[1]


def test_fewer_candidates_than_k(encoder, store) -> None:
    hits = two_stage_search(
        encoder, "alpha", first_pass=lambda q, n: [store.ids[:3] for _ in q], fetch_full_vectors=store.fetch, k=10
    )
    assert len(hits) == 3
    assert sorted(hits.ids) == sorted(store.ids[:3])


def test_duplicate_candidates_are_scored_once(encoder, store) -> None:
    ids = store.ids[:3]
    hits = two_stage_search(
        encoder, "alpha", first_pass=lambda q, n: [[*ids, *ids] for _ in q], fetch_full_vectors=store.fetch, k=10
    )
    assert sorted(hits.ids) == sorted(ids)


def test_empty_corpus_gives_empty_hits(encoder) -> None:
    empty = DictStore([], np.zeros((0, 64), dtype=np.float32), 16)
    hits = two_stage_search(encoder, ["alpha", "beta"], first_pass=empty.first_pass, fetch_full_vectors=empty.fetch)
    assert [len(h) for h in hits] == [0, 0]
    assert hits[0].scores.shape == (0,)
    assert empty.fetch_calls == []


def test_no_queries_gives_empty_list(encoder, store) -> None:
    assert two_stage_search(encoder, [], first_pass=store.first_pass, fetch_full_vectors=store.fetch) == []


@pytest.mark.parametrize("k", [0, -1, True, 2.0])
def test_bad_k_raises(encoder, store, k: object) -> None:
    with pytest.raises(ValueError, match="k must be a positive integer"):
        two_stage_search(encoder, "alpha", first_pass=store.first_pass, fetch_full_vectors=store.fetch, k=k)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be a positive integer"):
        rescore(np.ones((1, 64)), [["doc-1"]], k=k, fetch_full_vectors=store.fetch)  # type: ignore[arg-type]


@pytest.mark.parametrize("multiplier", [0, 0.5, -2])
def test_bad_multiplier_raises(encoder, store, multiplier: float) -> None:
    with pytest.raises(ValueError, match="rescore_multiplier"):
        two_stage_search(
            encoder, "a", first_pass=store.first_pass, fetch_full_vectors=store.fetch, rescore_multiplier=multiplier
        )


def test_exactly_one_fetch_function(encoder, store) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        two_stage_search(encoder, "a", first_pass=store.first_pass)
    with pytest.raises(ValueError, match="exactly one"):
        two_stage_search(
            encoder, "a", first_pass=store.first_pass, fetch_full_vectors=store.fetch, fetch_texts=lambda ids: {}
        )
    with pytest.raises(ValueError, match="needs encoder"):
        rescore(np.ones((1, 64)), [["x"]], fetch_texts=lambda ids: {"x": "alpha"})


def test_missing_vector_raises_by_default(encoder, store) -> None:
    def first_pass(queries: np.ndarray, n: int) -> list[list[Hashable]]:
        return [["ghost", *store.ids[:5]] for _ in queries]

    with pytest.raises(MissingVectorError, match="'ghost'") as info:
        two_stage_search(encoder, "alpha", first_pass=first_pass, fetch_full_vectors=store.fetch)
    assert isinstance(info.value, LookupError)


def test_missing_vector_skip_drops_only_that_id(encoder, store) -> None:
    def first_pass(queries: np.ndarray, n: int) -> list[list[Hashable]]:
        return [["ghost", *store.ids[:5]] for _ in queries]

    hits = two_stage_search(encoder, "alpha", first_pass=first_pass, fetch_full_vectors=store.fetch, on_missing="skip")
    assert "ghost" not in hits.ids
    assert sorted(hits.ids) == sorted(store.ids[:5])
    q = encoder.encode("alpha")
    for doc_id, score in zip(hits.ids, hits.scores, strict=True):
        assert score == pytest.approx(float(store.full[doc_id] @ q), abs=1e-5)


def test_dimension_mismatch_names_both_dims(encoder, store) -> None:
    narrow = {doc_id: vec[:32] for doc_id, vec in store.full.items()}
    with pytest.raises(DimensionMismatchError, match=r"64 dimensions.*32") as info:
        two_stage_search(
            encoder,
            "alpha",
            first_pass=store.first_pass,
            fetch_full_vectors=lambda ids: {i: narrow[i] for i in ids},
            truncate_dim=16,
        )
    assert isinstance(info.value, ValueError)


def test_fetch_texts_re_encodes_candidates(encoder, corpus, store) -> None:
    ids, texts = corpus
    text_of = dict(zip(ids, texts, strict=True))
    by_vector = two_stage_search(
        encoder,
        "alpha beta",
        first_pass=store.first_pass,
        fetch_full_vectors=store.fetch,
        truncate_dim=16,
        rescore_multiplier=4,
    )
    before = encoder.texts_encoded
    by_text = two_stage_search(
        encoder,
        "alpha beta",
        first_pass=store.first_pass,
        truncate_dim=16,
        rescore_multiplier=4,
        fetch_texts=lambda wanted: {i: text_of[i] for i in wanted},
    )
    assert encoder.texts_encoded - before == 1 + 10 * 4  # the query + the candidates
    assert by_text.ids == by_vector.ids
    np.testing.assert_allclose(by_text.scores, by_vector.scores, rtol=1e-5)


def test_fetched_text_none_is_missing_and_other_non_strings_are_refused(encoder) -> None:
    # None (a host record without a document) was encoded as the word "None", and ranked first for "None"
    query = encoder.encode(["None"], normalize=True)
    texts = {"a": "alpha beta", "b": None, "c": "gamma"}
    with pytest.raises(MissingVectorError, match="'b'"):
        rescore(query, [["a", "b", "c"]], fetch_texts=lambda ids: texts, encoder=encoder)
    hits = rescore(query, [["a", "b", "c"]], fetch_texts=lambda ids: texts, encoder=encoder, on_missing="skip")[0]
    assert sorted(hits.ids) == ["a", "c"]
    pairs = rescore(
        query,
        [["a", "b", "c"]],
        fetch_texts=lambda ids: (list(texts), list(texts.values())),
        encoder=encoder,
        on_missing="skip",
    )[0]
    assert pairs.ids == hits.ids
    for bad in (b"alpha", 5):  # str(b"alpha") is "b'alpha'"
        with pytest.raises(InvalidTypeError, match=f"found {type(bad).__name__} for id 'a'"):
            rescore(query, [["a"]], fetch_texts=lambda ids, bad=bad: {"a": bad}, encoder=encoder)
    with pytest.raises(InvalidArgumentError, match="2 ids but 1 texts"):
        rescore(query, [["a", "c"]], fetch_texts=lambda ids: (["a", "c"], ["alpha"]), encoder=encoder)


def test_fetched_vectors_that_are_not_one_real_vector_per_id_are_refused(encoder) -> None:
    query = np.ones((1, 4), dtype=np.float32)
    cases = [
        ({"a": ["x", "y", "z", "w"]}, InvalidArgumentError, "must be numbers"),  # was "different widths [4]"
        (
            (["a"], np.ones((1, 2, 2))),
            DimensionMismatchError,
            r"one vector per id; found an array of shape \(1, 2, 2\)",
        ),
        ({"a": np.ones(4, dtype=np.complex64)}, InvalidTypeError, "real numbers"),  # imaginary part dropped
        ({"a": np.ones(4), "b": np.ones(3)}, DimensionMismatchError, r"different widths \[3, 4\]"),
    ]
    for fetched, error, message in cases:
        with pytest.raises(error, match=message):
            rescore(
                query,
                [list(fetched[0] if isinstance(fetched, tuple) else fetched)],
                fetch_full_vectors=lambda ids, f=fetched: f,
            )


def test_fetch_may_return_pairs_and_unnormalised_vectors(encoder, store) -> None:
    def fetch(ids: list[Hashable]) -> tuple[list[Hashable], np.ndarray]:
        found = [i for i in reversed(ids)]  # any order
        return found, np.stack([store.full[i] * 7.0 for i in found])

    hits = two_stage_search(
        encoder, "alpha beta", first_pass=store.first_pass, fetch_full_vectors=fetch, truncate_dim=16
    )
    reference = two_stage_search(
        encoder, "alpha beta", first_pass=store.first_pass, fetch_full_vectors=store.fetch, truncate_dim=16
    )
    assert hits.ids == reference.ids
    np.testing.assert_allclose(hits.scores, reference.scores, rtol=1e-5)
    assert np.all(hits.scores <= 1.0 + 1e-6)  # cosine, not dot product


def test_any_hashable_ids(encoder) -> None:
    vectors = encoder.encode(["alpha", "beta", "alpha beta"])
    ids: list[Hashable] = [1, ("t", 2), "three"]
    store = DictStore(ids, vectors, 16)
    hits = two_stage_search(
        encoder, "alpha", first_pass=store.first_pass, fetch_full_vectors=store.fetch, k=3, truncate_dim=16
    )
    assert hits.ids[0] == 1
    assert set(hits.ids) == set(ids)


def test_zero_query_matches_nothing(encoder, store) -> None:
    hits = two_stage_search(encoder, "", first_pass=store.first_pass, fetch_full_vectors=store.fetch, truncate_dim=16)
    assert hits.ids == [] and hits.scores.shape == (0,)  # no tokens: no ranking, rather than k arbitrary hits
    both = two_stage_search(
        encoder, ["", "doc 3"], first_pass=store.first_pass, fetch_full_vectors=store.fetch, truncate_dim=16
    )
    assert both[0].ids == [] and len(both[1]) == 10 and np.all(np.isfinite(both[1].scores))


def test_rescore_checks_candidate_lists(store) -> None:
    with pytest.raises(ValueError, match="one candidate list per query"):
        rescore(np.ones((2, 64)), [["doc-1"]], fetch_full_vectors=store.fetch)


def test_candidate_count_and_defaults() -> None:
    assert candidate_count(10, 4) == 40
    assert candidate_count(3, 1.5) == 5
    assert candidate_count(100, 1.1) == 110  # ceil(k * multiplier): 100 * 1.1 is 110.00000000000001 in floats
    assert candidate_count(7, 1.0000001) == 8  # a real fraction still rounds up
    assert isinstance(DEFAULT_TRUNCATE_DIM, int)
    assert DEFAULT_RESCORE_MULTIPLIER >= 1


def test_ragged_fetched_vectors_raise_dimension_mismatch(encoder, store) -> None:
    def fetch(ids: list[Hashable]) -> dict[Hashable, np.ndarray]:
        return {i: (store.full[i] if n % 2 else store.full[i][:10]) for n, i in enumerate(ids)}

    with pytest.raises(DimensionMismatchError, match=r"different widths \[10, 64\]"):
        two_stage_search(encoder, "alpha", first_pass=store.first_pass, fetch_full_vectors=fetch, truncate_dim=16)


def test_rescore_refuses_non_finite_queries_and_fetched_vectors(store) -> None:
    query = np.ones((1, 64))
    with pytest.raises(NonFiniteVectorError, match="query vectors"):
        rescore(np.full((1, 64), np.nan), [store.ids[:3]], fetch_full_vectors=store.fetch)
    with pytest.raises(NonFiniteVectorError, match="query vectors"):
        rescore(np.full((1, 64), 1e39), [store.ids[:3]], fetch_full_vectors=store.fetch)  # overflows float32
    damaged = dict(store.full)
    damaged[store.ids[1]] = np.full(64, np.nan, dtype=np.float32)
    with pytest.raises(NonFiniteVectorError, match=rf"ids \[{store.ids[1]!r}\].*re-add those documents"):
        rescore(query, [store.ids[:3]], fetch_full_vectors=lambda ids: {i: damaged[i] for i in ids})


def test_truncate_and_normalize_make_one_copy_only() -> None:
    # truncate copied the prefix, normalize copied it again and np.linalg.norm squared it: 3x the input at peak
    # (matryo eval held 4.4x the document matrix)
    matrix = np.random.default_rng(0).standard_normal((4096, 256)).astype(np.float32)
    prefix, peak = traced_peak(lambda: truncate(matrix, 128))
    assert peak < prefix.nbytes * 1.1 + 65536, f"peak {peak} bytes for a {prefix.nbytes}-byte result"
    np.testing.assert_allclose(np.linalg.norm(prefix, axis=1), 1.0, rtol=1e-6)
    whole, peak = traced_peak(lambda: normalize(matrix))
    assert peak < whole.nbytes * 1.1 + 65536 and not np.shares_memory(whole, matrix)
    assert truncate(np.zeros((2, 4), np.float32), 2).tolist() == [[0.0, 0.0], [0.0, 0.0]]  # zero rows stay zero


def test_top_k_scores_near_ties_again_row_by_row() -> None:
    # BLAS scores equal vectors a few ulp apart by position: near-ties are scored again and kept in input order
    import numpy as np

    from matryo.search import top_k

    scores = np.array([0.1, 0.5000001, 0.9, 0.5, 0.50000006], dtype=np.float32)
    calls: list[list[int]] = []

    def exact(near: np.ndarray) -> np.ndarray:  # row by row the three ~0.5 scores are equal
        calls.append(sorted(near.tolist()))
        return np.round(scores[near], 5).astype(np.float32)

    order, best = top_k(scores, 1, exact)
    assert order.tolist() == [2] and calls == []  # nothing within 1e-6 of the best: one sort
    order, best = top_k(scores, 2, exact)
    assert calls == [[1, 2, 3, 4]]  # the 2nd best is within 1e-6 of the 4th and 5th: those are scored again
    assert order.tolist() == [2, 1] and best.tolist() == [np.float32(0.9), 0.5]
    order, best = top_k(scores, 3, exact)
    assert order.tolist() == [2, 1, 3]  # equal once scored row by row: by input position, not by BLAS's ulp
    calls.clear()
    clear = np.array([0.3, 0.9, 0.6], dtype=np.float32)
    order, best = top_k(clear, 5, exact)  # no near-tie: BLAS scores kept
    assert order.tolist() == [1, 2, 0] and best.tolist() == clear[[1, 2, 0]].tolist() and calls == []
    assert top_k(np.zeros(0, dtype=np.float32), 3, exact)[0].size == 0


def test_fetched_vectors_of_shape_1_by_dim_and_none_vectors(encoder) -> None:
    # a per-id cache of encode([text]) holds (1, dim) vectors: refused as 3-D by the first version of the check
    docs = {"a": "alpha beta", "b": "gamma"}
    cache = {doc_id: encoder.encode([text], normalize=True) for doc_id, text in docs.items()}
    query = encoder.encode(["alpha beta"], normalize=True)
    hits = rescore(query, [["a", "b"]], fetch_full_vectors=lambda ids: {i: cache[i] for i in ids})[0]
    assert hits.ids == ["a", "b"] and hits.scores[0] == pytest.approx(1.0, abs=1e-6)
    # a host record without a vector (None) is not found, like a text of None ("different widths [1, 64]")
    with_none = {"a": cache["a"][0], "b": None}
    with pytest.raises(MissingVectorError, match="'b'"):
        rescore(query, [["a", "b"]], fetch_full_vectors=lambda ids: with_none)
    assert rescore(query, [["a", "b"]], fetch_full_vectors=lambda ids: with_none, on_missing="skip")[0].ids == ["a"]


def test_fetched_vectors_in_a_series_or_object_array_and_out_of_range_objects(encoder) -> None:
    import pandas as pd

    vec = encoder.encode(["alpha beta"], normalize=True)[0]
    query = vec[None, :]
    for container in (pd.Series([vec, None]), np.array([vec, None], dtype=object)):  # "different widths [1, 64]"
        hits = rescore(
            query, [["a", "b"]], fetch_full_vectors=lambda ids, c=container: (["a", "b"], c), on_missing="skip"
        )
        assert hits[0].ids == ["a"]
    with pytest.raises(InvalidArgumentError, match="3 ids but 2 vectors"):  # a None hid the short answer
        rescore(query, [["a", "b", "c"]], fetch_full_vectors=lambda ids: (["a", "b", "c"], [vec, None]))
    huge = np.array(
        [vec.astype(np.float64) * 1e40], dtype=object
    )  # cast to float32 with a RuntimeWarning (an error under pytest)
    with pytest.raises(NonFiniteVectorError, match="full vectors from the fetch"):
        rescore(query, [["a"]], fetch_full_vectors=lambda ids: (["a"], huge))
    tiny = np.array([vec.astype(np.float64) * 1e-50], dtype=object)  # became zeros: scored 0
    assert rescore(query, [["a"]], fetch_full_vectors=lambda ids: (["a"], tiny))[0].scores[0] == pytest.approx(
        1.0, abs=1e-5
    )
