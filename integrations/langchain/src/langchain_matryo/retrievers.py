"""``MatryoTwoStageRetriever``: a truncated first pass in any LangChain vector store, then full-width rescoring.

1. The query is encoded once at the model's full width.
2. **First pass**: its Matryoshka prefix (the width of the store's vectors) goes to the store's
   ``similarity_search_by_vector`` for ``ceil(k * rescore_multiplier)`` candidates (``filter`` passed through).
3. **Rescore** (:func:`matryo.search.rescore`): the candidates are scored by full-dimension cosine and the
   best ``k`` are returned, each with its score in ``metadata["relevance_score"]``.

By default the full-width candidate vectors are made by re-encoding the candidates' ``page_content``: the
model is a static lookup table, so this needs no second store, cannot drift out of sync with the store, and works
on any existing store built with a truncated :class:`MatryoEmbeddings`; a cold shortlist costs about 0.1 s at
``k=10`` on 2 cores (320 passages of up to 600 characters; recently rescored texts are cached). Pass
``fetch_full_vectors`` to read stored full vectors by document id instead (faster for long documents).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import inspect
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever, LangSmithRetrieverParams
from langchain_core.vectorstores import InMemoryVectorStore, VectorStore
from numpy.typing import NDArray
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from langchain_matryo.embeddings import MatryoEmbeddings, refuse_bool
from matryo import DimensionMismatchError, ModelMismatchError, StaticEncoder
from matryo.errors import InvalidArgumentError, InvalidTypeError, MissingVectorError
from matryo.search import (
    DEFAULT_RESCORE_MULTIPLIER,
    DEFAULT_TRUNCATE_DIM,
    FetchVectors,
    candidate_count,
    rescore,
    shown_ids,
)
from matryo.vectors import truncate

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MatryoTwoStageRetriever"]

_PLAN_KEYS = ("k", "rescore_multiplier", "filter")
"""Retriever settings that may also be given in ``search_kwargs`` (VectorStoreRetriever's habit); never sent as
store arguments (``filter`` is sent as ``filter=`` once resolved)."""

_NOT_SUPPORTED = {
    "score_threshold": (
        "the store would apply it (if at all) to first-pass scores of truncated vectors; keep the documents whose "
        "metadata[score_key] (the full-width cosine) is high enough instead"
    ),
    "search_type": "the retriever always runs a similarity first pass; for MMR use vectorstore.as_retriever()",
    "lambda_mult": "the retriever does no MMR; for MMR use vectorstore.as_retriever(search_type='mmr')",
    "fetch_k": (
        "the first pass fetches ceil(k * rescore_multiplier) candidates; set rescore_multiplier (for MMR's fetch_k "
        "use vectorstore.as_retriever(search_type='mmr')). It is passed on to stores whose search by vector takes "
        "fetch_k, such as FAISS"
    ),
}
"""VectorStoreRetriever settings this retriever does not have: refused instead of being forwarded (``fetch_k`` only
for stores whose search by vector does not name it)."""


def _text_key(text: str) -> bytes:
    """The cache key of a text: a 16-byte digest, so an entry costs the same for a word or a whole book."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _same(a: Any, b: Any) -> bool:
    """Whether two settings agree (identity for callables, equality otherwise)."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays: ambiguous truth value
        return False


def _disagree(name: str, value: Any, where: str, other: Any) -> InvalidArgumentError:
    msg = (
        f"{name}={value!r} and {where}={{{name!r}: {other!r}}} disagree; pass {name} in one place only "
        f"(as {name}= or in {where})."
    )
    return InvalidArgumentError(msg)


def _describe(encoder: StaticEncoder, *, cutoff: bool) -> str:
    """The model's name, with its token cut-off when two encoders of one folder must be told apart."""
    name = repr(encoder.name_or_path)
    return f"{name} with max_length={encoder.max_length}" if cutoff else name


def _ignores_store_kwargs(store: VectorStore) -> bool:
    """InMemoryVectorStore's search by vector accepts any keyword but uses only ``filter``."""
    cls = type(store)
    return isinstance(store, InMemoryVectorStore) and all(
        getattr(cls, name) is getattr(InMemoryVectorStore, name)
        for name in (
            "similarity_search_by_vector",
            "similarity_search_with_score_by_vector",
            "_similarity_search_with_score_by_vector",
        )
    )


def _takes_fetch_k(store: VectorStore | type[VectorStore]) -> bool:
    """Whether a store's (or store class's) search by vector names ``fetch_k`` (FAISS: neighbours before its filter)."""
    try:
        return "fetch_k" in inspect.signature(store.similarity_search_by_vector).parameters
    except (TypeError, ValueError):
        return False


class _AnyArguments(InMemoryVectorStore):
    """An empty store taking any search argument: checks a retriever's own arguments before a real store exists."""

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return []


class _AnyArgumentsFetchK(_AnyArguments):
    """The same, for a store class whose search by vector takes ``fetch_k`` (FAISS)."""

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, **kwargs: Any
    ) -> list[Document]:
        return []


# The exact messages of a width mismatch: InMemoryVectorStore (langchain_core's cosine_similarity) and Chroma.
_WIDTH_MESSAGES = re.compile(
    r"Number of columns in X and Y must be the same|expecting embedding with dimension of \d+, got \d+"
)


class MatryoTwoStageRetriever(BaseRetriever):
    """Two-stage Matryoshka retrieval over a LangChain vector store holding truncated vectors.

    Point it at an existing store built with a truncated :class:`MatryoEmbeddings`; the store's own
    embeddings are picked up (``vectorstore.embeddings``), or pass the same instance as ``embeddings=``
    for stores that do not expose it. :meth:`from_documents` builds a store and the retriever in one call.

    Example:
        >>> from langchain_core.vectorstores import InMemoryVectorStore
        >>> from langchain_matryo import MatryoEmbeddings, MatryoTwoStageRetriever
        >>> first_pass = MatryoEmbeddings(truncate_dim=128)
        >>> store = InMemoryVectorStore.from_texts(["gzip files", "argument parsing"], first_pass)
        >>> retriever = MatryoTwoStageRetriever(vectorstore=store, k=1)
        >>> retriever.invoke("read a compressed file")[0].metadata["relevance_score"]  # doctest: +SKIP
        0.61
    """

    vectorstore: VectorStore
    """The first-pass store; its vectors must come from ``embeddings`` (same model, same ``truncate_dim``)."""

    embeddings: MatryoEmbeddings | None = None
    """The (truncated) embeddings the store was built with; ``None`` = ``vectorstore.embeddings``."""

    k: int = Field(default=4, gt=0)
    """Documents returned per query (LangChain's usual default)."""

    rescore_multiplier: float = Field(default=DEFAULT_RESCORE_MULTIPLIER, ge=1, allow_inf_nan=False)
    """The first pass fetches ``ceil(k * rescore_multiplier)`` candidates for rescoring."""

    filter: Any = None
    """Metadata filter passed as ``filter=`` to the store (a callable for InMemoryVectorStore, a dict for
    Chroma, ...); ``None`` = no filter."""

    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for the store's ``similarity_search_by_vector`` (e.g. Chroma's
    ``where_document``). ``k``, ``rescore_multiplier`` and ``filter`` may be given here too, as for
    ``VectorStoreRetriever`` (``search_kwargs={"k": 3}``, also through ``configurable_fields(search_kwargs=...)``);
    they are the retriever's settings, never store arguments, and must agree with the fields when both are set."""

    fetch_full_vectors: Callable[[list[str]], Any] | None = None
    """Optional ``ids -> {id: vector}`` or ``(found_ids, matrix)`` returning stored full-width vectors (see
    :mod:`matryo.search`); ``None`` = re-encode the candidates' ``page_content`` (no second store needed)."""

    score_key: str = "relevance_score"
    """Metadata key that receives the full-dimension cosine similarity."""

    cache_size: int = Field(default=4096, ge=0)
    """Full-width vectors of this many recently rescored texts are kept in memory (keyed by a 16-byte digest of
    the text, so they can never be stale and long documents cost no more), sparing the re-encoding of candidates
    that come back; 0 turns the cache off. Unused with ``fetch_full_vectors``. 4096 vectors of 512 dims take
    about 9 MiB."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", validate_assignment=True)

    _no_bool = field_validator("k", "cache_size", mode="before")(refuse_bool)

    _cache: OrderedDict[bytes, NDArray[np.float32]] = PrivateAttr(default_factory=OrderedDict)
    _cache_encoder: StaticEncoder | None = PrivateAttr(default=None)
    _cache_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _moved: set[str] = PrivateAttr(default_factory=set)  # settings the constructor took out of search_kwargs
    _from_store: bool = PrivateAttr(default=False)  # embeddings=None was given: they are the store's

    def __init__(self, **kwargs: Any) -> None:
        search = kwargs.get("search_kwargs")
        moved: set[str] = set()
        # Every field given: a rebuild from another instance's state (configurable_fields passes all the old
        # values plus the configured ones), where search_kwargs' k (say) is the new setting, not a second one.
        rebuild = kwargs.keys() >= type(self).model_fields.keys()
        if isinstance(search, dict) and any(name in search for name in _PLAN_KEYS):
            # VectorStoreRetriever's habit: search_kwargs={"k": 3} is the number of documents (and so on).
            search = dict(search)
            for name in _PLAN_KEYS:
                if name not in search:
                    continue
                value = search.pop(name)
                if kwargs.get(name) is not None and not _same(kwargs[name], value) and not rebuild:
                    raise _disagree(name, kwargs[name], "search_kwargs", value)
                if kwargs.get(name) is None or rebuild:
                    kwargs[name] = value
                    moved.add(name)
            kwargs = {**kwargs, "search_kwargs": search}
        super().__init__(**kwargs)
        # A value moved out of search_kwargs was not set by the user as a field: a later search_kwargs["k"] = 2
        # must not "disagree" with it (see _settings), and a new search_kwargs without it drops it (__setattr__).
        self.__pydantic_fields_set__.difference_update(moved)
        self._moved = moved
        self._check_stages()
        self._plan({})  # settings that can only fail at query time fail here already

    def _check_stages(self) -> None:
        """Resolve ``embeddings`` (``None``: the store's) and check it fits the store: width and model.

        Run at construction and whenever ``vectorstore`` or ``embeddings`` is assigned (or changed by
        ``model_copy(update=...)``). Checked here rather than in a validator so that DimensionMismatchError
        reaches the caller unwrapped.
        """
        store_embeddings = getattr(self.vectorstore, "embeddings", None)
        if self.embeddings is None:
            if not isinstance(store_embeddings, MatryoEmbeddings):
                msg = (
                    f"The vector store's embeddings are {type(store_embeddings).__name__}, not MatryoEmbeddings. "
                    "Pass embeddings=MatryoEmbeddings(model=..., truncate_dim=<the width of the store's vectors>) "
                    "with the settings the store was built with."
                )
                raise InvalidArgumentError(msg)
            self.__dict__["embeddings"] = store_embeddings  # past __setattr__: already a validated instance
            self._from_store = True
            # "the store's", not a setting: a model_copy(update={"vectorstore": other}) takes the other store's
            self.__pydantic_fields_set__.discard("embeddings")
        elif isinstance(store_embeddings, MatryoEmbeddings) and store_embeddings is not self.embeddings:
            if store_embeddings.dim != self.embeddings.dim:
                msg = (
                    f"The vector store holds {store_embeddings.dim}-d vectors but embeddings= gives "
                    f"{self.embeddings.dim}-d first-pass queries. Pass the MatryoEmbeddings the store was built "
                    "with (or leave embeddings=None to use it)."
                )
                raise DimensionMismatchError(msg)
            if store_embeddings.encoder.fingerprint != self.embeddings.encoder.fingerprint:
                # Same folder, other token cut-off: the names alone would read "built with 'x' but uses 'x'".
                cutoff = store_embeddings.encoder.name_or_path == self.embeddings.encoder.name_or_path
                store_model = _describe(store_embeddings.encoder, cutoff=cutoff)
                given_model = _describe(self.embeddings.encoder, cutoff=cutoff)
                msg = (
                    f"The vector store was built with model {store_model} but embeddings= uses {given_model}. "
                    "Use the same model (and max_length) for both stages."
                )
                raise ModelMismatchError(msg)

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning ``vectorstore`` or ``embeddings`` runs the constructor's checks; a failing one changes nothing.

        Assigning ``search_kwargs`` replaces the whole set, as for ``VectorStoreRetriever``: a setting the
        constructor took out of the old ``search_kwargs`` (a ``filter``, say) and the new one lacks goes back
        to its default.
        """
        if name == "search_kwargs" and self._moved:
            super().__setattr__(name, value)
            fields = type(self).model_fields
            for key in self._moved - set(self.search_kwargs):
                super().__setattr__(key, fields[key].get_default())
                self.__pydantic_fields_set__.discard(key)
            self._moved = set()
            return
        if name not in ("vectorstore", "embeddings"):
            super().__setattr__(name, value)
            return
        before = {key: self.__dict__[key] for key in ("vectorstore", "embeddings")}
        from_store = self._from_store
        if name == "vectorstore" and from_store:  # embeddings taken from the old store: take the new store's
            self.__dict__["embeddings"] = None
        self._from_store = False
        super().__setattr__(name, value)
        try:
            self._check_stages()
        except Exception:
            self.__dict__.update(before)
            self._from_store = from_store
            raise

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy; an ``update`` is validated and checked as by the constructor (pydantic's does neither).

        Args:
            update: New field values; unknown names and invalid values raise as in the constructor.
            deep: Ignored when ``update`` is given (the copy shares the store, as :meth:`__deepcopy__` does).

        Returns:
            The copy.
        """
        if update:
            settings = {name: getattr(self, name) for name in self.model_fields_set}
            # settings the constructor took out of search_kwargs go back in, to be taken out again
            moved = {key: getattr(self, key) for key in self._moved if key not in update}
            settings["search_kwargs"] = {**self.search_kwargs, **moved}
            return type(self)(**{**settings, **update})
        return super().model_copy(deep=deep)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the lock and the vector cache (both rebuilt empty on unpickling)."""
        state = super().__getstate__()
        private: dict[str, Any] = {
            "_cache": OrderedDict(),
            "_cache_encoder": None,
            "_moved": set(self._moved),
            "_from_store": self._from_store,
        }
        return {**state, "__pydantic_private__": private}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._cache_lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> MatryoTwoStageRetriever:
        """A copy sharing the vector store (an index or a client connection, not a setting) with the original.

        Copying the store would duplicate the whole index (and fail for stores holding a client, like Chroma);
        LangChain's own copies (``with_config``, ``configurable_fields``) share it as well. The vector cache
        starts empty.
        """
        memo = {} if memo is None else memo
        memo[id(self.vectorstore)] = self.vectorstore
        clone = type(self).__new__(type(self))
        clone.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return clone

    def _get_ls_params(self, **kwargs: Any) -> LangSmithRetrieverParams:
        """Tracing parameters: as the store's own ``as_retriever()`` reports them (store and embeddings)."""
        params = super()._get_ls_params(**kwargs)
        params["ls_vector_store_provider"] = type(self.vectorstore).__name__
        params["ls_embedding_provider"] = type(self._first_pass_embeddings).__name__
        return params

    @property
    def _first_pass_embeddings(self) -> MatryoEmbeddings:
        if self.embeddings is None:  # only a model_construct()ed retriever skips _check_stages
            self._check_stages()
        return cast("MatryoEmbeddings", self.embeddings)

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        *,
        model: str | None = None,
        revision: str | None = None,
        max_length: int | None = None,
        truncate_dim: int | None = DEFAULT_TRUNCATE_DIM,
        vectorstore_cls: type[VectorStore] = InMemoryVectorStore,
        vectorstore_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> MatryoTwoStageRetriever:
        """Index documents at ``truncate_dim`` with ``vectorstore_cls.from_documents`` and return a retriever over it.

        The store class decides what "new" means: a persistent store adds to a collection that already exists
        (Chroma: the same ``collection_name``, or its shared default ``"langchain"`` when none is given), so a
        script run twice stores every document twice unless the documents carry ids (Chroma then replaces them).

        Args:
            documents: The documents to index.
            model: As for :class:`MatryoEmbeddings` (``None`` = the embedded default model).
            revision: Hub revision.
            max_length: Token cut-off override.
            truncate_dim: Width of the first-pass vectors kept in the store; a value at least the model's
                width (or ``None``) stores full vectors.
            vectorstore_cls: Any LangChain ``VectorStore`` class (its ``from_documents`` is called).
            vectorstore_kwargs: Extra arguments for ``vectorstore_cls.from_documents`` (e.g. Chroma's
                ``persist_directory``).
            **kwargs: Retriever fields (``k``, ``rescore_multiplier``, ``filter``, ...).

        Returns:
            The retriever; the store is ``retriever.vectorstore``.
        """
        for name in ("embeddings", "embedding", "vectorstore"):
            if name in kwargs:
                msg = (
                    f"from_documents builds the vector store and its embeddings itself, so it takes no {name}=. "
                    "Pass model=, truncate_dim=, max_length= (and vectorstore_cls=, vectorstore_kwargs=), or build "
                    "the store yourself and call MatryoTwoStageRetriever(vectorstore=store, ...)."
                )
                raise InvalidArgumentError(msg)
        settings: dict[str, Any] = {"model": model, "revision": revision, "max_length": max_length}
        encoder = MatryoEmbeddings(**settings).encoder
        width: int | None = truncate_dim
        if truncate_dim is None or truncate_dim >= encoder.dim:  # full width, also past a folder's default width
            width = None if encoder.output_dim == encoder.dim else encoder.dim
        embeddings = MatryoEmbeddings(**settings, truncate_dim=width)
        # The retriever's arguments are checked on an empty store first: a typo must not cost an embedded (and,
        # for a persistent store, written) corpus. Store arguments are checked there only for InMemoryVectorStore.
        if vectorstore_cls is InMemoryVectorStore:
            probe: VectorStore = InMemoryVectorStore(embeddings)
        else:
            probe = (_AnyArgumentsFetchK if _takes_fetch_k(vectorstore_cls) else _AnyArguments)(embeddings)
        cls(vectorstore=probe, embeddings=embeddings, **kwargs)
        store = vectorstore_cls.from_documents(list(documents), embeddings, **(vectorstore_kwargs or {}))
        return cls(vectorstore=store, embeddings=embeddings, **kwargs)

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> MatryoTwoStageRetriever:
        """Like :meth:`from_documents`, from texts (and optional metadatas and ids).

        Args:
            texts: The texts to index.
            metadatas: One metadata dict per text.
            ids: One id per text.
            **kwargs: As for :meth:`from_documents`.

        Returns:
            The retriever.
        """
        if isinstance(metadatas, Embeddings):
            msg = (
                "from_texts got embeddings as its second argument, which is metadatas: the retriever builds its "
                "embeddings itself. Pass model=, truncate_dim= (and max_length=) instead."
            )
            raise InvalidTypeError(msg)
        items = list(texts)
        for name, given in (("metadatas", metadatas), ("ids", ids)):
            if given is not None and len(given) != len(items):
                msg = (
                    f"from_texts got {len(items)} texts but {len(given)} {name}; expected one per text (or "
                    f"{name}=None)."
                )
                raise InvalidArgumentError(msg)
        metas = metadatas if metadatas is not None else [{} for _ in items]
        doc_ids: list[str | None] = list(ids) if ids is not None else [None] * len(items)
        documents = [
            Document(page_content=text, metadata=meta, id=doc_id)
            for text, meta, doc_id in zip(items, metas, doc_ids, strict=True)
        ]
        return cls.from_documents(documents, **kwargs)

    # ------------------------------------------------------------------ the two stages
    def _encode_query(self, query: str) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
        """Return (full-width vector, first-pass vector), or None for a query with no tokens (all-zero)."""
        if not isinstance(query, str):
            msg = f"The query must be a str, got {type(query).__name__}: {query!r:.60}."
            raise InvalidTypeError(msg)
        embeddings = self._first_pass_embeddings
        raw = embeddings.encoder.encode([query], normalize=False, truncate_dim=embeddings.encoder.dim)
        if not raw.any():
            return None
        prefix = truncate(raw, embeddings.dim, normalize=embeddings.normalize)
        return raw, prefix

    def _settings(self) -> dict[str, Any]:
        """The retriever's own settings: the fields, with ``search_kwargs`` read now (it may have changed)."""
        search = dict(self.search_kwargs)
        settings: dict[str, Any] = {}
        for name in _PLAN_KEYS:
            field = getattr(self, name)
            if name not in search:
                settings[name] = field
                continue
            value = search.pop(name)
            if name in self.model_fields_set and field is not None and not _same(field, value):
                raise _disagree(name, field, "search_kwargs", value)
            settings[name] = value
        return {**search, **settings}

    def _plan(self, overrides: dict[str, Any]) -> tuple[int, int, dict[str, Any]]:
        """Per-call settings: (k, candidate count, store kwargs).

        The retriever's settings (fields and ``search_kwargs``), then the call's (``invoke(query, k=...)`` or
        ``invoke(query, search_kwargs={...})``, which must agree where both give a key) are merged; ``k``,
        ``rescore_multiplier`` and ``filter`` are taken out and the rest goes to the store.
        """
        call = dict(overrides)
        call.pop("verbose", None)  # BaseRetriever.invoke reads it for its callbacks and passes it on
        nested = call.pop("search_kwargs", None) or {}
        if not isinstance(nested, dict):
            msg = f"search_kwargs must be a dict of store arguments, got {type(nested).__name__}: {nested!r:.60}."
            raise InvalidTypeError(msg)
        for name in nested.keys() & call.keys():
            if not _same(call[name], nested[name]):
                raise _disagree(name, call[name], "search_kwargs", nested[name])
        merged = {**self._settings(), **nested, **call}
        k = merged.pop("k")
        multiplier = merged.pop("rescore_multiplier")
        filter_ = merged.pop("filter")
        n = candidate_count(k, multiplier)  # validates both
        self._check_store_kwargs(merged)
        if filter_ is not None and not callable(filter_) and _ignores_store_kwargs(self.vectorstore):
            msg = (
                f"InMemoryVectorStore takes filter= as a callable(Document) -> bool, e.g. "
                f"lambda doc: doc.metadata['source'] == 'a.txt'; got {type(filter_).__name__} {filter_!r:.60} (a "
                "dict filter is for stores like Chroma)."
            )
            raise InvalidTypeError(msg)
        if filter_ is not None:
            merged["filter"] = filter_
        return int(k), n, merged

    def _check_store_kwargs(self, store_kwargs: dict[str, Any]) -> None:
        """Refuse arguments that would be dropped without a word instead of doing what their name says."""
        for name in store_kwargs:
            if name == "fetch_k" and _takes_fetch_k(self.vectorstore):
                continue  # FAISS: the neighbours searched before its filter applies, a store argument there
            if name in _NOT_SUPPORTED:
                msg = (
                    f"MatryoTwoStageRetriever does not take {name}=: {_NOT_SUPPORTED[name]}. It takes k, "
                    "rescore_multiplier, filter and search_kwargs (store arguments)."
                )
                raise InvalidArgumentError(msg)
        if store_kwargs and _ignores_store_kwargs(self.vectorstore):
            msg = (
                f"Unknown argument(s) {sorted(store_kwargs)}: InMemoryVectorStore uses no store argument but "
                "filter, so they would be ignored. The retriever takes k, rescore_multiplier, filter and "
                "search_kwargs (per call or as fields); check the spelling."
            )
            raise InvalidArgumentError(msg)

    def _width_error(self, exc: Exception) -> DimensionMismatchError | None:
        """A DimensionMismatchError for the store's own width-mismatch error; None for any other error."""
        if isinstance(exc, LookupError) or not _WIDTH_MESSAGES.search(str(exc)):
            return None
        embeddings = self._first_pass_embeddings
        msg = (
            f"The vector store rejected the {embeddings.dim}-d first-pass query vector ({exc}). Expected the store "
            f"to hold {embeddings.dim}-d vectors from MatryoEmbeddings(model={embeddings.model!r}, "
            f"truncate_dim={embeddings.truncate_dim}). Pass the MatryoEmbeddings the store was built with as "
            "embeddings=, or rebuild the store."
        )
        return DimensionMismatchError(msg)

    def _first_pass(self, query: str, prefix: NDArray[np.float32], n: int, kwargs: dict[str, Any]) -> list[Document]:
        try:
            return self.vectorstore.similarity_search_by_vector(prefix[0].tolist(), k=n, **kwargs)
        except NotImplementedError:  # a store without search by vector embeds the query itself
            return self.vectorstore.similarity_search(query, k=n, **kwargs)
        except Exception as exc:
            error = self._width_error(exc)
            if error is None:
                raise
            raise error from exc

    async def _afirst_pass(
        self, query: str, prefix: NDArray[np.float32], n: int, kwargs: dict[str, Any]
    ) -> list[Document]:
        if _ignores_store_kwargs(self.vectorstore):
            # InMemoryVectorStore's async search runs its numpy scan on the event loop (tenths of a second at
            # 20k documents): run the sync one in a worker thread, as the encoding and rescoring are
            return await asyncio.to_thread(self._first_pass, query, prefix, n, kwargs)
        try:
            return await self.vectorstore.asimilarity_search_by_vector(prefix[0].tolist(), k=n, **kwargs)
        except NotImplementedError:
            return await self.vectorstore.asimilarity_search(query, k=n, **kwargs)
        except Exception as exc:
            error = self._width_error(exc)
            if error is None:
                raise
            raise error from exc

    def _full_vectors(self, texts: list[str]) -> NDArray[np.float32]:
        """Full-width, normalised vectors of ``texts``: from the cache, the rest encoded in one call."""
        encoder = self._first_pass_embeddings.encoder
        if self.cache_size == 0:
            return encoder.encode(texts, truncate_dim=encoder.dim)
        keys = [_text_key(text) for text in texts]
        with self._cache_lock:
            if self._cache_encoder is not encoder:  # a copy of this retriever with other embeddings
                self._cache, self._cache_encoder = OrderedDict(), encoder
            cache = self._cache
            known = {key: cache[key] for key in keys if key in cache}
            for key in known:
                cache.move_to_end(key)
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in known}
        if missing:
            encoded = encoder.encode(list(missing.values()), truncate_dim=encoder.dim)
            with self._cache_lock:
                for key, vector in zip(missing, encoded, strict=True):
                    known[key] = cache[key] = vector.copy()
                while len(cache) > self.cache_size:
                    cache.popitem(last=False)
        return np.stack([known[key] for key in keys])

    def _rescore(self, full: NDArray[np.float32], candidates: list[Document], k: int) -> list[Document]:
        if not candidates:
            return []
        if self.fetch_full_vectors is None:
            matrix = self._full_vectors([doc.page_content for doc in candidates])
            by_position = rescore(
                full,
                [list(range(len(candidates)))],
                k=k,
                fetch_full_vectors=lambda wanted: (wanted, matrix[wanted]),
            )[0]
            picked = [candidates[i] for i in by_position.ids]
            scores = by_position.scores
        else:
            ids = [doc.id for doc in candidates if doc.id is not None]
            if len(ids) < len(candidates):
                msg = (
                    "fetch_full_vectors needs document ids, but the vector store returned documents without one "
                    "(Document.id is None). Add the documents with ids, or leave fetch_full_vectors=None to "
                    "re-encode the candidates."
                )
                raise InvalidArgumentError(msg)
            fetch: FetchVectors[str] = self.fetch_full_vectors
            try:
                by_id = rescore(full, [ids], k=k, fetch_full_vectors=fetch)[0]
            except MissingVectorError as exc:
                msg = (
                    f"fetch_full_vectors returned no full vector for {len(exc.ids)} of the vector store's "
                    f"candidates: {shown_ids(exc.ids)}. Expected one for every document in the store: add the missing "
                    "documents' full vectors where fetch_full_vectors reads them (it is out of sync with the store), "
                    "or leave fetch_full_vectors=None to re-encode the candidates' page_content."
                )
                raise MissingVectorError(msg, exc.ids) from exc
            first = {doc.id: doc for doc in reversed(candidates) if doc.id is not None}  # first occurrence wins
            picked = [first[doc_id] for doc_id in by_id.ids]
            scores = by_id.scores
        return [  # clipped: float32 rounding gives 1.0000002 for a document equal to the query
            doc.model_copy(update={"metadata": {**doc.metadata, self.score_key: min(1.0, max(-1.0, float(score)))}})
            for doc, score in zip(picked, scores, strict=True)
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """Two-stage search for one query; ``k``, ``rescore_multiplier`` and store kwargs may be overridden."""
        k, n, store_kwargs = self._plan(kwargs)
        encoded = self._encode_query(query)
        if encoded is None:
            return []
        full, prefix = encoded
        return self._rescore(full, self._first_pass(query, prefix, n, store_kwargs), k)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """Async :meth:`_get_relevant_documents`; encoding and rescoring run in a worker thread."""
        k, n, store_kwargs = self._plan(kwargs)
        encoded = await asyncio.to_thread(self._encode_query, query)
        if encoded is None:
            return []
        full, prefix = encoded
        candidates = await self._afirst_pass(query, prefix, n, store_kwargs)
        return await asyncio.to_thread(self._rescore, full, candidates, k)
