"""MatryoTwoStageRetriever on InMemoryVectorStore and Chroma: equals core two_stage_search, filters, async, errors."""

from __future__ import annotations

import copy
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.runnables import ConfigurableField
from langchain_core.vectorstores import InMemoryVectorStore
from tests.conftest import TINY_WORDS, make_tiny_model
from tests.langchain.helpers import ticks_during

from langchain_matryo import MatryoEmbeddings, MatryoTwoStageRetriever
from matryo import DimensionMismatchError, ModelMismatchError
from matryo.cache import load_encoder
from matryo.errors import InvalidArgumentError, InvalidTypeError
from matryo.index import NumpyIndex
from matryo.search import DEFAULT_RESCORE_MULTIPLIER, MissingVectorError, candidate_count, two_stage_search

FIRST_DIM = 16
WORDS = [w for w in TINY_WORDS if not w.startswith("##")]
QUERIES = ["cat and dog", "read a gzip file", "fast vector search", "river in the city", "python code data model"]


def _corpus(n: int = 240, seed: int = 3) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    texts = list(dict.fromkeys(" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)))
    ids = [f"d{i}" for i in range(len(texts))]
    metas = [{"group": "ab"[i % 2], "n": i} for i in range(len(texts))]
    return texts, ids, metas


TEXTS, IDS, METAS = _corpus()


def _core(model: Path, texts: list[str], ids: list[str], *, k: int, multiplier: float) -> list[Any]:
    encoder = load_encoder(model)
    index: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=FIRST_DIM)
    index.add(ids, texts)
    return two_stage_search(
        encoder,
        QUERIES,
        first_pass=index.first_pass,
        fetch_full_vectors=index.fetch_full_vectors,
        k=k,
        rescore_multiplier=multiplier,
        truncate_dim=FIRST_DIM,
    )


def _assert_same(results: list[list[Document]], expected: list[Any], score_key: str = "relevance_score") -> None:
    for docs, hits in zip(results, expected, strict=True):
        assert [doc.id for doc in docs] == hits.ids
        np.testing.assert_allclose([doc.metadata[score_key] for doc in docs], hits.scores, rtol=1e-5, atol=1e-6)


def _chroma(tmp_path: Path, embeddings: MatryoEmbeddings, name: str = "docs") -> Chroma:
    return Chroma(collection_name=name, embedding_function=embeddings, persist_directory=str(tmp_path / "chroma"))


@pytest.fixture
def first_pass(tiny_model_dir: Path) -> MatryoEmbeddings:
    return MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=FIRST_DIM)


@pytest.mark.parametrize(("k", "multiplier"), [(5, 4), (3, 1), (10, 2.5)])
def test_in_memory_results_equal_core_two_stage_search(
    tiny_model_dir: Path, first_pass: MatryoEmbeddings, k: int, multiplier: float
) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=k, rescore_multiplier=multiplier)
    _assert_same(retriever.batch(QUERIES), _core(tiny_model_dir, TEXTS, IDS, k=k, multiplier=multiplier))


def test_chroma_results_equal_core_two_stage_search(
    tiny_model_dir: Path, first_pass: MatryoEmbeddings, tmp_path: Path
) -> None:
    store = _chroma(tmp_path, first_pass)
    store.add_texts(TEXTS, metadatas=METAS, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=5, rescore_multiplier=4)
    _assert_same([retriever.invoke(q) for q in QUERIES], _core(tiny_model_dir, TEXTS, IDS, k=5, multiplier=4))


def test_rescoring_changes_the_first_pass_order(tiny_model_dir: Path, first_pass: MatryoEmbeddings) -> None:
    """Guards the test above against a retriever that just returns the first pass."""
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    first = [[doc.id for doc in store.similarity_search(q, k=5)] for q in QUERIES]
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=5)
    assert [[doc.id for doc in docs] for docs in retriever.batch(QUERIES)] != first


def test_reopened_chroma_store_is_picked_up(tiny_model_dir: Path, first_pass: MatryoEmbeddings, tmp_path: Path) -> None:
    built = MatryoTwoStageRetriever.from_texts(
        TEXTS,
        METAS,
        ids=IDS,
        model=str(tiny_model_dir),
        truncate_dim=FIRST_DIM,
        vectorstore_cls=Chroma,
        vectorstore_kwargs={"persist_directory": str(tmp_path / "chroma"), "collection_name": "docs"},
        k=4,
    )
    expected = built.batch(QUERIES)
    reopened = _chroma(tmp_path, MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=FIRST_DIM))
    assert reopened._collection.count() == len(TEXTS)
    assert MatryoTwoStageRetriever(vectorstore=reopened, k=4).batch(QUERIES) == expected


def test_from_texts_uses_the_default_width_clamped_to_the_model(tiny_model_dir: Path) -> None:
    retriever = MatryoTwoStageRetriever.from_texts(TEXTS[:20], model=str(tiny_model_dir))
    assert retriever.embeddings is not None and retriever.embeddings.truncate_dim is None  # 64-d < default 128
    narrow = MatryoTwoStageRetriever.from_texts(TEXTS[:20], model=str(tiny_model_dir), truncate_dim=8)
    assert narrow.embeddings is not None and narrow.embeddings.dim == 8
    assert len(narrow.invoke("cat")) == 4  # LangChain's default k


def test_stored_full_vectors_give_the_same_results(tiny_model_dir: Path, first_pass: MatryoEmbeddings) -> None:
    full = dict(zip(IDS, load_encoder(tiny_model_dir).encode(TEXTS), strict=True))
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, ids=IDS)
    calls: list[list[str]] = []

    def fetch(ids: list[str]) -> dict[str, np.ndarray]:
        calls.append(ids)
        return {i: full[i] for i in ids}

    reencode = MatryoTwoStageRetriever(vectorstore=store, k=5)
    stored = MatryoTwoStageRetriever(vectorstore=store, k=5, fetch_full_vectors=fetch)
    for query in QUERIES:
        a, b = reencode.invoke(query), stored.invoke(query)
        assert [d.id for d in a] == [d.id for d in b]
        np.testing.assert_allclose(
            [d.metadata["relevance_score"] for d in a], [d.metadata["relevance_score"] for d in b], rtol=1e-5
        )
    n = candidate_count(5, DEFAULT_RESCORE_MULTIPLIER)
    assert len(calls) == len(QUERIES) and all(len(ids) == n for ids in calls)


def test_candidate_vectors_are_cached_by_text(
    tiny_model_dir: Path, first_pass: MatryoEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, ids=IDS)
    uncached = MatryoTwoStageRetriever(vectorstore=store, k=5, cache_size=0)
    cached = MatryoTwoStageRetriever(vectorstore=store, k=5)
    small = MatryoTwoStageRetriever(vectorstore=store, k=5, cache_size=7)
    assert cached.batch(QUERIES) == uncached.batch(QUERIES) == small.batch(QUERIES)
    assert len(small._cache) == 7
    encoder = load_encoder(tiny_model_dir)
    encoded: list[int] = []
    original = encoder.encode

    def counting(texts: Any, **kwargs: Any) -> np.ndarray:
        encoded.append(1 if isinstance(texts, str) else len(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(encoder, "encode", counting)
    again = cached.invoke(QUERIES[0])
    assert encoded == [1]  # only the query: every candidate came from the cache
    encoded.clear()
    assert uncached.invoke(QUERIES[0]) == again
    assert encoded == [1, candidate_count(5, DEFAULT_RESCORE_MULTIPLIER)]


def test_cache_memory_does_not_grow_with_document_length(first_pass: MatryoEmbeddings) -> None:
    rng = np.random.default_rng(11)
    long_texts = [" ".join(rng.choice(WORDS, size=3_000)) + f" {i}" for i in range(40)]  # ~20 kB each
    store = InMemoryVectorStore.from_texts(long_texts, first_pass)
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=5, rescore_multiplier=8)
    expected = MatryoTwoStageRetriever(vectorstore=store, k=5, rescore_multiplier=8, cache_size=0).invoke("cat")
    assert retriever.invoke("cat") == expected and retriever.invoke("cat") == expected  # cold, then warm
    assert len(retriever._cache) == 40
    key_bytes = sum(sys.getsizeof(key) for key in retriever._cache)
    vector_bytes = sum(vector.nbytes for vector in retriever._cache.values())
    assert key_bytes < vector_bytes  # 16-byte digests, not the 20 kB texts (the README's memory figure holds)


def test_filter_is_applied_in_the_first_pass(
    tiny_model_dir: Path, first_pass: MatryoEmbeddings, tmp_path: Path
) -> None:
    b_texts = [t for t, m in zip(TEXTS, METAS, strict=True) if m["group"] == "b"]
    b_ids = [i for i, m in zip(IDS, METAS, strict=True) if m["group"] == "b"]
    expected = _core(tiny_model_dir, b_texts, b_ids, k=5, multiplier=2)
    memory = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    in_memory = MatryoTwoStageRetriever(
        vectorstore=memory, k=5, rescore_multiplier=2, filter=lambda doc: doc.metadata["group"] == "b"
    )
    chroma_store = _chroma(tmp_path, first_pass)
    chroma_store.add_texts(TEXTS, metadatas=METAS, ids=IDS)
    chroma = MatryoTwoStageRetriever(vectorstore=chroma_store, k=5, rescore_multiplier=2, filter={"group": "b"})
    for retriever in (in_memory, chroma):
        results = retriever.batch(QUERIES)
        assert all(doc.metadata["group"] == "b" for docs in results for doc in docs)
        _assert_same(results, expected)


class RecordingStore(InMemoryVectorStore):
    """An InMemoryVectorStore that records what the first pass asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[tuple[int, int, dict[str, Any]]] = []

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        self.requests.append((len(embedding), k, kwargs))
        return super().similarity_search_by_vector(embedding, k=k, **kwargs)


def test_first_pass_gets_the_truncated_query_and_oversampled_k(first_pass: MatryoEmbeddings) -> None:
    store = RecordingStore(first_pass)
    store.add_texts(TEXTS, ids=IDS)
    retriever = MatryoTwoStageRetriever(
        vectorstore=store, k=3, rescore_multiplier=2.5, filter=lambda doc: True, search_kwargs={"extra": 1}
    )
    assert len(retriever.invoke("cat")) == 3
    ((width, n, kwargs),) = store.requests
    assert width == FIRST_DIM and n == math.ceil(3 * 2.5)
    assert set(kwargs) == {"filter", "extra"}


def test_scores_are_full_width_cosines_and_the_store_is_not_mutated(
    tiny_model_dir: Path, first_pass: MatryoEmbeddings
) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    docs = MatryoTwoStageRetriever(vectorstore=store, k=6, score_key="cos").invoke(QUERIES[0])
    encoder = load_encoder(tiny_model_dir)
    expected = encoder.encode([d.page_content for d in docs]) @ encoder.encode(QUERIES[0])
    scores = [d.metadata["cos"] for d in docs]
    assert all(type(s) is float for s in scores)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert scores == sorted(scores, reverse=True)
    assert all("cos" not in d.metadata for d in store.get_by_ids([d.id for d in docs if d.id]))


def test_invoke_overrides_k_multiplier_and_filter(first_pass: MatryoEmbeddings) -> None:
    store = RecordingStore(first_pass)
    store.add_texts(TEXTS, metadatas=METAS, ids=IDS)
    retriever = MatryoTwoStageRetriever(
        vectorstore=store, k=4, rescore_multiplier=4, filter=lambda doc: doc.metadata["group"] == "a"
    )
    assert [d.metadata["group"] for d in retriever.invoke("cat")] == ["a"] * 4
    docs = retriever.invoke("cat", k=2, rescore_multiplier=3, filter=lambda doc: doc.metadata["group"] == "b")
    assert [d.metadata["group"] for d in docs] == ["b", "b"]
    assert [n for _, n, _ in store.requests] == [16, 6]
    assert len(retriever.invoke("cat")) == 4  # the fields are unchanged
    with pytest.raises(ValueError, match="k must be"):
        retriever.invoke("cat", k=0)


def test_search_kwargs_k_is_the_number_of_documents(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store, search_kwargs={"k": 3})  # VectorStoreRetriever style
    assert retriever.k == 3 and "k" not in retriever.search_kwargs
    assert len(retriever.invoke("cat")) == 3
    assert len(retriever.invoke("cat", search_kwargs={"k": 1})) == 1  # per call, as well
    assert len(MatryoTwoStageRetriever(vectorstore=store, k=2, search_kwargs={"k": 2}).invoke("cat")) == 2
    with pytest.raises(ValueError, match=r"k=5 and search_kwargs=\{'k': 3\} disagree"):
        MatryoTwoStageRetriever(vectorstore=store, k=5, search_kwargs={"k": 3})


def test_search_kwargs_changed_after_construction_are_read_at_query_time(first_pass: MatryoEmbeddings) -> None:
    store = RecordingStore(first_pass)
    store.add_texts(TEXTS, metadatas=METAS, ids=IDS)
    assigned = MatryoTwoStageRetriever(vectorstore=store, rescore_multiplier=2)
    assigned.search_kwargs = {"k": 2}  # VectorStoreRetriever users' habit
    assert len(assigned.invoke("cat")) == 2
    mutated = MatryoTwoStageRetriever(vectorstore=store, rescore_multiplier=2)
    mutated.search_kwargs["k"] = 3
    assert len(mutated.invoke("cat")) == 3
    copied = MatryoTwoStageRetriever(vectorstore=store).model_copy(update={"search_kwargs": {"k": 1}})
    assert len(copied.invoke("cat")) == 1
    moved = MatryoTwoStageRetriever(vectorstore=store, search_kwargs={"k": 3})  # moved into k at construction ...
    moved.search_kwargs["k"] = 2  # ... so a later search_kwargs k is not a conflict
    assert len(moved.invoke("cat")) == 2
    # a k moved out of search_kwargs stays the retriever's own setting: it can be changed and copied
    moved.k = 6  # now set twice: the README's rule
    with pytest.raises(InvalidArgumentError, match=r"k=6 and search_kwargs=\{'k': 2\} disagree"):
        moved.invoke("cat")
    del moved.search_kwargs["k"]
    assert len(moved.invoke("cat")) == 6
    assert (
        len(
            MatryoTwoStageRetriever(vectorstore=store, search_kwargs={"k": 3})
            .model_copy(update={"rescore_multiplier": 4})
            .invoke("cat")
        )
        == 3
    )
    store.requests.clear()
    # rescore_multiplier in search_kwargs is the retriever's, never a store argument, wherever it is given
    given = MatryoTwoStageRetriever(vectorstore=store, k=2, search_kwargs={"rescore_multiplier": 1, "extra": 1})
    assert given.rescore_multiplier == 1 and given.search_kwargs == {"extra": 1}
    given.invoke("cat")
    given.search_kwargs["rescore_multiplier"] = 3
    given.invoke("cat")
    given.invoke("cat", search_kwargs={"rescore_multiplier": 2})
    assert [(n, kwargs) for _, n, kwargs in store.requests] == [(2, {"extra": 1}), (6, {"extra": 1}), (4, {"extra": 1})]


def test_conflicting_k_raises_wherever_it_is_given_twice(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, ids=IDS)
    explicit = MatryoTwoStageRetriever(vectorstore=store, k=5)
    explicit.search_kwargs["k"] = 3
    with pytest.raises(InvalidArgumentError, match=r"k=5 and search_kwargs=\{'k': 3\} disagree"):
        explicit.invoke("cat")
    retriever = MatryoTwoStageRetriever(vectorstore=store)
    with pytest.raises(InvalidArgumentError, match=r"k=2 and search_kwargs=\{'k': 3\} disagree"):
        retriever.invoke("cat", k=2, search_kwargs={"k": 3})
    assert len(retriever.invoke("cat", k=2, search_kwargs={"k": 2})) == 2  # agreeing values are fine
    with pytest.raises(InvalidArgumentError, match="rescore_multiplier=2 and search_kwargs"):
        MatryoTwoStageRetriever(vectorstore=store, rescore_multiplier=2, search_kwargs={"rescore_multiplier": 3})


def test_configurable_search_kwargs_set_k_as_for_vector_store_retrievers(first_pass: MatryoEmbeddings) -> None:
    # LangChain's documented way to pick k per call: configurable_fields(search_kwargs=...); it rebuilds the
    # retriever from all of its fields plus the configured search_kwargs
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, ids=IDS)
    for retriever in (
        MatryoTwoStageRetriever(vectorstore=store),
        MatryoTwoStageRetriever(vectorstore=store, k=6),
        MatryoTwoStageRetriever(vectorstore=store, search_kwargs={"k": 5}),
    ):
        configurable = retriever.configurable_fields(search_kwargs=ConfigurableField(id="search_kwargs"))
        assert len(configurable.invoke("cat", config={"configurable": {"search_kwargs": {"k": 2}}})) == 2
        assert len(configurable.invoke("cat")) == retriever.k  # unconfigured: the retriever as built
    configurable = MatryoTwoStageRetriever(vectorstore=store).configurable_fields(k=ConfigurableField(id="k"))
    assert len(configurable.invoke("cat", config={"configurable": {"k": 3}})) == 3
    # a moved k is no setting of the user's: a configured k is used (it was k's default 4 that was taken as unset)
    moved = MatryoTwoStageRetriever(vectorstore=store, search_kwargs={"k": 3}).configurable_fields(
        k=ConfigurableField(id="k")
    )
    assert len(moved.invoke("cat", config={"configurable": {"k": 4}})) == 4


def test_filter_given_twice_raises_like_k(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)

    def only_a(doc: Document) -> bool:
        return bool(doc.metadata["group"] == "a")

    def only_b(doc: Document) -> bool:
        return bool(doc.metadata["group"] == "b")

    with pytest.raises(InvalidArgumentError, match="filter=.* and search_kwargs=.* disagree"):
        MatryoTwoStageRetriever(vectorstore=store, filter=only_a, search_kwargs={"filter": only_b})
    same = MatryoTwoStageRetriever(vectorstore=store, k=6, filter=only_a, search_kwargs={"filter": only_a})
    assert {d.metadata["group"] for d in same.invoke("cat")} == {"a"}
    moved = MatryoTwoStageRetriever(vectorstore=store, k=6, search_kwargs={"filter": only_b})
    assert moved.filter is only_b and {d.metadata["group"] for d in moved.invoke("cat")} == {"b"}
    same.search_kwargs["filter"] = only_b
    with pytest.raises(InvalidArgumentError, match="disagree"):
        same.invoke("cat")
    with pytest.raises(InvalidArgumentError, match="disagree"):
        moved.invoke("cat", filter=only_a, search_kwargs={"filter": only_b})
    assert {d.metadata["group"] for d in moved.invoke("cat", filter=only_a)} == {"a"}  # a per-call override
    # search_kwargs is the whole set, as for VectorStoreRetriever: replacing it drops the filter it held (the
    # filter used to move into the field at construction and stay)
    moved.search_kwargs = {"k": 6}
    assert moved.search_kwargs == {"k": 6} and {d.metadata["group"] for d in moved.invoke("cat")} == {"a", "b"}


def test_unknown_or_misleading_arguments_are_refused(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=6)
    with pytest.raises(
        InvalidArgumentError, match=r"Unknown argument\(s\) \['fliter'\].*k, rescore_multiplier, filter"
    ):
        retriever.invoke("cat", fliter=lambda doc: True)  # InMemoryVectorStore would drop it without a word
    with pytest.raises(InvalidArgumentError, match="fliter"):
        retriever.invoke("cat", search_kwargs={"fliter": lambda doc: True})
    with pytest.raises(InvalidArgumentError, match="fliter"):
        MatryoTwoStageRetriever(vectorstore=store, search_kwargs={"fliter": lambda doc: True})
    forwarding = RecordingStore(first_pass)  # a store that does read other arguments still gets them
    forwarding.add_texts(TEXTS, ids=IDS)
    for store_ in (store, forwarding):
        other = MatryoTwoStageRetriever(vectorstore=store_)
        for name, value in (("score_threshold", 0.3), ("search_type", "mmr"), ("lambda_mult", 0.5), ("fetch_k", 50)):
            with pytest.raises(InvalidArgumentError, match=f"does not take {name}="):
                other.invoke("cat", **{name: value})
    assert MatryoTwoStageRetriever(vectorstore=forwarding).invoke("cat", extra=1)


@pytest.mark.parametrize(
    "kwargs",
    [{"kk": 2}, {"k": 0}, {"k": True}, {"search_kwargs": {"score_threshold": 0.5}}, {"embedding": "x"}, {"k": 2.5}],
)
def test_from_documents_checks_the_retriever_arguments_before_writing_the_store(
    tiny_model_dir: Path, tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    # a typo embedded and persisted the whole corpus first; the corrected call then held every document twice
    persist = {"collection_name": "docs", "persist_directory": str(tmp_path / "chroma")}
    with pytest.raises((ValueError, TypeError)):
        MatryoTwoStageRetriever.from_texts(
            TEXTS, model=str(tiny_model_dir), vectorstore_cls=Chroma, vectorstore_kwargs=persist, **kwargs
        )
    built = MatryoTwoStageRetriever.from_texts(
        TEXTS, model=str(tiny_model_dir), vectorstore_cls=Chroma, vectorstore_kwargs=persist, k=2
    )
    assert built.vectorstore._collection.count() == len(TEXTS)  # noqa: SLF001  # nothing left by the failed call
    # store arguments of other stores are not judged by the empty stand-in (Chroma's where_document is fine) ...
    word = TEXTS[0].split()[0]
    where = {"search_kwargs": {"where_document": {"$contains": word}}}
    other = tmp_path / "other"
    docs = MatryoTwoStageRetriever.from_texts(
        TEXTS,
        model=str(tiny_model_dir),
        vectorstore_cls=Chroma,
        vectorstore_kwargs={"persist_directory": str(other)},
        **where,
    ).invoke("cat")
    assert docs and all(word in doc.page_content for doc in docs)
    with pytest.raises(InvalidArgumentError, match="Unknown argument"):  # ... but the in-memory store's are
        MatryoTwoStageRetriever.from_texts(TEXTS, model=str(tiny_model_dir), search_kwargs={"fliter": 1})


def test_from_texts_with_embeddings_as_second_argument_names_the_mix_up(first_pass: MatryoEmbeddings) -> None:
    with pytest.raises(InvalidTypeError, match="got embeddings as its second argument, which is metadatas"):
        MatryoTwoStageRetriever.from_texts(TEXTS, first_pass)  # type: ignore[arg-type]  # VectorStore's habit


def test_chroma_store_arguments_are_forwarded(first_pass: MatryoEmbeddings, tmp_path: Path) -> None:
    store = _chroma(tmp_path, first_pass)
    store.add_texts(TEXTS, metadatas=METAS, ids=IDS)
    word = TEXTS[0].split()[0]
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=3, search_kwargs={"where_document": {"$contains": word}})
    docs = retriever.invoke("cat")
    assert docs and all(word in doc.page_content for doc in docs)
    assert all(word in doc.page_content for doc in retriever.invoke("dog", where_document={"$contains": word}))


def test_store_errors_that_are_not_a_width_mismatch_pass_through(first_pass: MatryoEmbeddings, tmp_path: Path) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store)
    for key in ("shape", "dimension"):  # product metadata keys, missing in the documents
        with pytest.raises(KeyError) as raised:
            retriever.invoke("cat", filter=lambda doc, key=key: doc.metadata[key] == "round")
        assert type(raised.value) is KeyError

    def bad(doc: Document) -> bool:
        raise ValueError("the shape has no dimension")

    with pytest.raises(ValueError, match="the shape has no dimension") as failed:
        retriever.invoke("cat", filter=bad)
    assert type(failed.value) is ValueError
    chroma_store = _chroma(tmp_path, first_pass)
    chroma_store.add_texts(TEXTS[:10], metadatas=METAS[:10])
    with pytest.raises(ValueError, match="where expressions") as invalid:
        MatryoTwoStageRetriever(vectorstore=chroma_store).invoke("cat", filter={"$and": [{"shape": "x"}]})
    assert not isinstance(invalid.value, DimensionMismatchError)


def test_tracing_params_name_the_store_and_the_embeddings(first_pass: MatryoEmbeddings) -> None:
    params = MatryoTwoStageRetriever(vectorstore=InMemoryVectorStore(first_pass))._get_ls_params()
    assert params["ls_retriever_name"] == "matryotwostage"
    assert params["ls_vector_store_provider"] == "InMemoryVectorStore"
    assert params["ls_embedding_provider"] == "MatryoEmbeddings"


def test_retriever_pickles_and_deep_copies(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=4)
    expected = retriever.invoke("cat")  # fills the vector cache, which a copy starts without
    unpickled, deep = pickle.loads(pickle.dumps(retriever)), copy.deepcopy(retriever)
    for clone in (unpickled, deep):
        assert clone.invoke("cat") == expected
    assert unpickled.vectorstore is not store
    assert deep.vectorstore is store  # the index is shared, not copied ...
    assert deep.search_kwargs is not retriever.search_kwargs  # ... while the settings are copied
    store.add_texts(["zebra stripes"], ids=["zebra"])
    assert deep.invoke("zebra stripes", k=1)[0].id == "zebra"  # documents added later are seen


def test_chroma_backed_retriever_deep_copies(first_pass: MatryoEmbeddings, tmp_path: Path) -> None:
    store = _chroma(tmp_path, first_pass)
    store.add_texts(TEXTS, metadatas=METAS, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=3)
    clone = copy.deepcopy(retriever)  # a Chroma store holds a client, which cannot be copied
    assert clone.vectorstore is store and clone.invoke("cat") == retriever.invoke("cat")


@pytest.mark.anyio
async def test_ainvoke_and_abatch_equal_invoke(first_pass: MatryoEmbeddings, tmp_path: Path) -> None:
    memory = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    chroma_store = _chroma(tmp_path, first_pass)
    chroma_store.add_texts(TEXTS, metadatas=METAS, ids=IDS)
    for store in (memory, chroma_store):
        retriever = MatryoTwoStageRetriever(vectorstore=store, k=4)
        expected = [retriever.invoke(q) for q in QUERIES]
        assert [await retriever.ainvoke(q) for q in QUERIES] == expected
        assert await retriever.abatch(QUERIES) == expected
        assert await retriever.ainvoke("") == []


@pytest.mark.anyio
async def test_ainvoke_rescores_off_the_event_loop(first_pass: MatryoEmbeddings) -> None:
    rng = np.random.default_rng(5)
    texts = [" ".join(rng.choice(WORDS, size=60)) for _ in range(1_500)]
    store = InMemoryVectorStore.from_texts(texts, first_pass)
    # No cache and a deep shortlist: each query re-encodes 1,500 long candidates at full width.
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=100, rescore_multiplier=15, cache_size=0)

    async def blocking() -> object:  # the sync path called from a coroutine
        return retriever.invoke("cat and dog")

    blocked_ticks, blocked_seconds = await ticks_during(blocking)
    ticks, seconds = await ticks_during(lambda: retriever.ainvoke("cat and dog"))
    assert blocked_seconds > 0.03 and seconds > 0.03, "the workload is too small to show anything"
    assert blocked_ticks <= 1
    assert ticks >= 5, f"the loop ticked {ticks} times in {seconds:.3f}s while ainvoke ran"


@pytest.mark.anyio
async def test_ainvoke_runs_the_in_memory_first_pass_off_the_event_loop(first_pass: MatryoEmbeddings) -> None:
    # InMemoryVectorStore's async search scans its documents on the event loop; one candidate to rescore, so
    # the first pass is the whole work here
    rng = np.random.default_rng(6)
    store = InMemoryVectorStore.from_texts([" ".join(rng.choice(WORDS, size=4)) for _ in range(80_000)], first_pass)
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=1, rescore_multiplier=1)

    async def blocking() -> object:  # the store's own async first pass, as the retriever called it
        query = first_pass.embed_query("cat and dog")
        return await store.asimilarity_search_by_vector(query, k=1)

    blocked_ticks, blocked_seconds = await ticks_during(blocking)
    ticks, seconds = await ticks_during(lambda: retriever.ainvoke("cat and dog"))
    assert blocked_seconds > 0.03 and seconds > 0.03, "the workload is too small to show anything"
    assert blocked_ticks <= 1
    assert ticks >= 5, f"the loop ticked {ticks} times in {seconds:.3f}s while ainvoke ran"


def test_invoke_takes_langchains_verbose(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=2)
    assert retriever.invoke("cat", verbose=True) == retriever.invoke("cat")  # was "Unknown argument(s) ['verbose']"


# ------------------------------------------------------------------ bad input


def test_empty_query_and_empty_batch(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store)
    assert retriever.invoke("") == [] and retriever.invoke("   ") == []  # no tokens: no meaningful ranking
    assert retriever.batch([]) == []


def test_empty_store_gives_no_documents(first_pass: MatryoEmbeddings, tmp_path: Path) -> None:
    assert MatryoTwoStageRetriever(vectorstore=InMemoryVectorStore(first_pass)).invoke("cat") == []
    assert MatryoTwoStageRetriever(vectorstore=_chroma(tmp_path, first_pass)).invoke("cat") == []


def test_empty_documents_are_indexed_and_rank_last(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(["", "the cat", "a dog"], first_pass, ids=["empty", "cat", "dog"])
    docs = MatryoTwoStageRetriever(vectorstore=store, k=3).invoke("cat")
    assert [d.id for d in docs][0] == "cat" and docs[-1].id == "empty"
    assert docs[-1].metadata["relevance_score"] == 0.0


def test_non_str_query_raises_type_error(first_pass: MatryoEmbeddings) -> None:
    retriever = MatryoTwoStageRetriever(vectorstore=InMemoryVectorStore(first_pass))
    with pytest.raises(TypeError, match="must be a str"):
        retriever.invoke(42)  # type: ignore[arg-type]


def test_bad_fields_raise(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore(first_pass)
    for kwargs in (
        {"k": 0},
        {"rescore_multiplier": 0.5},
        {"kk": 3},
        {"rescore_multiplier": math.inf},  # at construction, not at the first query
        {"rescore_multiplier": math.nan},
        {"search_kwargs": {"rescore_multiplier": math.inf}},
    ):
        with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
            MatryoTwoStageRetriever(vectorstore=store, **kwargs)


def test_relevance_scores_stay_within_the_cosine_range(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=len(TEXTS), rescore_multiplier=1)
    scores = [doc.metadata["relevance_score"] for text in TEXTS[:40] for doc in retriever.invoke(text)]
    assert max(scores) == 1.0 and min(scores) >= -1.0  # a document equal to the query: 1.0, not 1.0000002


def test_from_documents_refuses_the_arguments_it_builds_itself(first_pass: MatryoEmbeddings) -> None:
    for name, value in (("embeddings", first_pass), ("vectorstore", InMemoryVectorStore(first_pass))):
        with pytest.raises(InvalidArgumentError, match=f"takes no {name}="):
            MatryoTwoStageRetriever.from_texts(TEXTS[:5], **{name: value})


def test_store_without_matryo_embeddings_needs_embeddings(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=FIRST_DIM))
    with pytest.raises(ValueError, match="Pass embeddings="):
        MatryoTwoStageRetriever(vectorstore=store)
    assert MatryoTwoStageRetriever(vectorstore=store, embeddings=first_pass).embeddings is first_pass


def test_assigning_a_store_or_embeddings_runs_the_constructors_checks(tiny_model_dir: Path, tmp_path: Path) -> None:
    # assignment and model_copy skipped them: a store of another model was used without a word, and
    # embeddings=None (documented as "use the store's") ended in a bare AssertionError
    first = MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=32)
    store = InMemoryVectorStore.from_texts(TEXTS, first, ids=IDS)
    other = MatryoEmbeddings(model=str(make_tiny_model(tmp_path / "other", dim=64, seed=99)), truncate_dim=32)
    foreign = InMemoryVectorStore.from_texts(TEXTS, other, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store)
    expected = [d.id for d in retriever.invoke("cat")]
    retriever.embeddings = None
    assert retriever.embeddings is first and [d.id for d in retriever.invoke("cat")] == expected
    explicit = MatryoTwoStageRetriever(vectorstore=store, embeddings=first)  # given: kept, and checked
    with pytest.raises(ModelMismatchError, match="same model"):
        explicit.vectorstore = foreign
    assert explicit.vectorstore is store and explicit.embeddings is first  # a refused change changes nothing
    with pytest.raises(ModelMismatchError, match="same model"):
        retriever.embeddings = other
    assert retriever.embeddings is first
    with pytest.raises(ModelMismatchError, match="same model"):
        retriever.model_copy(update={"embeddings": other})
    with pytest.raises(DimensionMismatchError, match="32-d vectors"):
        retriever.model_copy(update={"embeddings": MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16)})
    with pytest.raises(ValueError, match="greater than 0"):
        retriever.model_copy(update={"k": 0})
    copied = retriever.model_copy(update={"vectorstore": foreign, "embeddings": None})
    assert copied.embeddings is other and copied.vectorstore is foreign and retriever.vectorstore is store
    # built without embeddings=, a retriever takes a new store's embeddings when the store is replaced, as a new
    # retriever would (it kept the old store's and refused the new store's width with the wrong advice)
    narrow = InMemoryVectorStore.from_texts(TEXTS, MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16))
    retriever.vectorstore = narrow
    assert retriever.embeddings is narrow.embeddings and len(retriever.invoke("cat")) == 4
    with pytest.raises(DimensionMismatchError, match="32-d first-pass queries"):
        explicit.vectorstore = narrow
    assert explicit.vectorstore is store


def test_mismatched_embeddings_are_rejected_up_front(tiny_model_dir: Path, tmp_path: Path) -> None:
    store = InMemoryVectorStore(MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=32))
    with pytest.raises(DimensionMismatchError, match="32-d vectors"):
        MatryoTwoStageRetriever(
            vectorstore=store, embeddings=MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16)
        )
    other = make_tiny_model(tmp_path / "other", dim=64, seed=99)
    with pytest.raises(ModelMismatchError, match="same model"):  # as the Chroma and LanceDB adapters raise
        MatryoTwoStageRetriever(vectorstore=store, embeddings=MatryoEmbeddings(model=str(other), truncate_dim=32))
    cut = MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=32, max_length=3)  # same folder, other cut-off
    with pytest.raises(ModelMismatchError, match=r"with max_length=None but embeddings= uses .* with max_length=3"):
        MatryoTwoStageRetriever(vectorstore=store, embeddings=cut)


def test_store_holding_vectors_of_another_width_raises(first_pass: MatryoEmbeddings, tmp_path: Path) -> None:
    wide = DeterministicFakeEmbedding(size=48)
    memory = InMemoryVectorStore.from_texts(TEXTS[:10], wide)
    chroma_store = Chroma(collection_name="wide", embedding_function=wide, persist_directory=str(tmp_path / "c"))
    chroma_store.add_texts(TEXTS[:10])
    for store in (memory, chroma_store):
        retriever = MatryoTwoStageRetriever(vectorstore=store, embeddings=first_pass)
        with pytest.raises(DimensionMismatchError, match=f"{FIRST_DIM}-d first-pass query"):
            retriever.invoke("cat")


@pytest.mark.anyio
async def test_store_of_another_width_raises_in_async_too(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS[:10], DeterministicFakeEmbedding(size=48))
    with pytest.raises(DimensionMismatchError):
        await MatryoTwoStageRetriever(vectorstore=store, embeddings=first_pass).ainvoke("cat")


def test_bad_stored_full_vectors_raise(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, ids=IDS)
    narrow = MatryoTwoStageRetriever(vectorstore=store, fetch_full_vectors=lambda ids: {i: np.ones(8) for i in ids})
    with pytest.raises(DimensionMismatchError):
        narrow.invoke("cat")
    missing = MatryoTwoStageRetriever(vectorstore=store, fetch_full_vectors=lambda ids: {})
    n = candidate_count(4, DEFAULT_RESCORE_MULTIPLIER)
    with pytest.raises(MissingVectorError, match=f"no full vector for {n} of the vector store's candidates") as info:
        missing.invoke("cat")
    assert "on_missing" not in str(info.value)  # the retriever has no on_missing: never advise it
    assert len(info.value.ids) == n and set(info.value.ids) <= set(IDS)
    assert pickle.loads(pickle.dumps(info.value)).ids == info.value.ids


def test_plain_fields_are_validated_when_assigned(first_pass: MatryoEmbeddings) -> None:
    retriever = MatryoTwoStageRetriever(vectorstore=InMemoryVectorStore.from_texts(TEXTS, first_pass, ids=IDS))
    for name, value in (("cache_size", -1), ("k", 0), ("rescore_multiplier", math.nan), ("score_key", None)):
        with pytest.raises(ValueError):
            setattr(retriever, name, value)
    assert retriever.cache_size == 4096 and retriever.k == 4
    assert len(retriever.invoke("cat")) == 4


def test_from_texts_refuses_metadatas_or_ids_of_another_length() -> None:
    with pytest.raises(InvalidArgumentError, match="got 3 texts but 2 metadatas"):
        MatryoTwoStageRetriever.from_texts(["a", "b", "c"], [{}, {}])
    with pytest.raises(InvalidArgumentError, match="got 2 texts but 3 ids"):
        MatryoTwoStageRetriever.from_texts(["a", "b"], ids=["1", "2", "3"])


def test_from_texts_with_a_models_stored_default_width(default24_model_dir: Path) -> None:
    full = MatryoTwoStageRetriever.from_texts(TEXTS[:20], model=str(default24_model_dir), truncate_dim=None)
    assert full.embeddings is not None and full.embeddings.dim == 64  # full width, past the folder's 24
    narrow = MatryoTwoStageRetriever.from_texts(TEXTS[:20], model=str(default24_model_dir), truncate_dim=16)
    assert narrow.embeddings is not None and narrow.embeddings.dim == 16
    assert [doc.page_content for doc in full.invoke(TEXTS[5])][:1] == [TEXTS[5]]


def test_fetch_k_is_refused_at_construction_pointing_to_rescore_multiplier(
    first_pass: MatryoEmbeddings, tmp_path: Path
) -> None:
    # VectorStoreRetriever's MMR knob went on to Chroma's query() and failed there with a raw TypeError
    store = _chroma(tmp_path, first_pass)
    with pytest.raises(InvalidArgumentError, match="does not take fetch_k=.*set rescore_multiplier"):
        MatryoTwoStageRetriever(vectorstore=store, search_kwargs={"k": 3, "fetch_k": 50})


def test_a_dict_filter_on_an_in_memory_store_is_refused_with_what_it_takes(first_pass: MatryoEmbeddings) -> None:
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    with pytest.raises(InvalidTypeError, match=r"takes filter= as a callable\(Document\) -> bool.*got dict"):
        MatryoTwoStageRetriever(vectorstore=store, filter={"g": 1})  # a raw "'dict' object is not callable" at query
    retriever = MatryoTwoStageRetriever(vectorstore=store)
    with pytest.raises(InvalidTypeError, match="got dict"):
        retriever.invoke("cat", filter={"g": 1})
    assert retriever.invoke("cat", filter=lambda doc: True)


def test_model_copy_updates_a_setting_given_in_search_kwargs(first_pass: MatryoEmbeddings) -> None:
    # the setting taken out of search_kwargs went back in and "disagreed" with the update
    store = InMemoryVectorStore.from_texts(TEXTS, first_pass, metadatas=METAS, ids=IDS)
    retriever = MatryoTwoStageRetriever(vectorstore=store, search_kwargs={"k": 3, "filter": lambda doc: True})
    copied = retriever.model_copy(update={"k": 5})
    assert copied.k == 5 and len(copied.invoke("cat")) == 5 and retriever.k == 3
    only_a = retriever.model_copy(update={"filter": lambda doc: doc.metadata["group"] == "a"})
    assert only_a.k == 3 and {d.metadata["group"] for d in only_a.invoke("cat")} == {"a"}
    assert len(retriever.model_copy(update={"rescore_multiplier": 2}).invoke("cat")) == 3


def test_embeddings_none_given_or_assigned_means_the_new_stores_on_model_copy(tiny_model_dir: Path) -> None:
    wide = InMemoryVectorStore.from_texts(TEXTS, MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=32))
    narrow = InMemoryVectorStore.from_texts(TEXTS, MatryoEmbeddings(model=str(tiny_model_dir), truncate_dim=16))
    given = MatryoTwoStageRetriever(vectorstore=wide, embeddings=None)
    assigned = MatryoTwoStageRetriever(vectorstore=wide)
    assigned.embeddings = None
    for retriever in (given, assigned):  # both raised DimensionMismatchError: the old store's 32-d embeddings stuck
        copied = retriever.model_copy(update={"vectorstore": narrow})
        assert copied.embeddings is narrow.embeddings and len(copied.invoke("cat")) == 4


class FetchKStore(InMemoryVectorStore):
    """A store whose search by vector takes fetch_k, as FAISS's does (neighbours searched before its filter)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_ks: list[int] = []

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, fetch_k: int = 20, **kwargs: Any
    ) -> list[Document]:
        self.fetch_ks.append(fetch_k)
        hits = super().similarity_search_by_vector(embedding, k=fetch_k)
        return [doc for doc in hits if filter is None or filter(doc)][:k]


def test_fetch_k_goes_to_a_store_whose_search_takes_it(first_pass: MatryoEmbeddings) -> None:
    # FAISS filters only its first fetch_k neighbours: refusing fetch_k there left filtered searches short
    store = FetchKStore(first_pass)
    store.add_texts(TEXTS, metadatas=METAS, ids=IDS)
    only_a = lambda doc: doc.metadata["group"] == "a"  # noqa: E731
    retriever = MatryoTwoStageRetriever(vectorstore=store, k=10, filter=only_a, search_kwargs={"fetch_k": 200})
    hits = retriever.invoke("cat")
    assert len(hits) == 10 and {d.metadata["group"] for d in hits} == {"a"} and store.fetch_ks == [200]
    built = MatryoTwoStageRetriever.from_texts(  # its early argument check ran on a store without fetch_k
        TEXTS,
        METAS,
        vectorstore_cls=FetchKStore,
        model=first_pass.model,
        truncate_dim=first_pass.truncate_dim,
        k=10,
        filter=only_a,
        search_kwargs={"fetch_k": 200},
    )
    assert {d.metadata["group"] for d in built.invoke("cat")} == {"a"}
    with pytest.raises(InvalidArgumentError, match="does not take fetch_k="):  # a store without it still refuses
        MatryoTwoStageRetriever.from_texts(TEXTS, k=3, search_kwargs={"fetch_k": 200}, model=first_pass.model)


class DictFilterStore(InMemoryVectorStore):
    """An InMemoryVectorStore subclass whose private scorer takes a dict filter."""

    def _similarity_search_with_score_by_vector(self, embedding, k=4, filter=None):  # type: ignore[no-untyped-def]
        wanted = filter if isinstance(filter, dict) else None
        results = super()._similarity_search_with_score_by_vector(embedding, k=len(self.store), filter=None)
        kept = [r for r in results if wanted is None or all(r[0].metadata.get(a) == b for a, b in wanted.items())]
        return kept[:k]


def test_a_dict_filter_is_left_to_an_in_memory_subclass_that_scores_it(first_pass: MatryoEmbeddings) -> None:
    store = DictFilterStore(first_pass)
    store.add_texts(TEXTS, metadatas=METAS, ids=IDS)
    hits = MatryoTwoStageRetriever(vectorstore=store, k=5, filter={"group": "b"}).invoke("cat")
    assert len(hits) == 5 and {d.metadata["group"] for d in hits} == {"b"}
