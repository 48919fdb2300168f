"""Chroma adapter for matryo: a registered embedding function and a two-stage Matryoshka collection.

Importing this package registers :class:`MatryoEmbeddingFunction` with Chroma under the name ``"matryo"``.
Chroma has no plugin discovery, so every process that uses a collection made with it must import
``matryo_chroma`` first (or open the collection with :func:`get_collection`, which does that for you).
"""

from __future__ import annotations

from typing import Any

from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection

from matryo.errors import InvalidArgumentError
from matryo_chroma.collection import (
    DEFAULT_CODEC,
    DEFAULT_STORE,
    CollectionExistsError,
    DuplicateIdError,
    TwoStageCollection,
    UnknownIdError,
)
from matryo_chroma.embedding_function import EF_NAME, MatryoEmbeddingFunction, ModelMismatchError
from matryo_chroma.full_vectors import StaleVectorWarning
from matryo_chroma.stores import STORES

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CODEC",
    "DEFAULT_STORE",
    "EF_NAME",
    "STORES",
    "CollectionExistsError",
    "DuplicateIdError",
    "MatryoEmbeddingFunction",
    "ModelMismatchError",
    "StaleVectorWarning",
    "TwoStageCollection",
    "UnknownIdError",
    "__version__",
    "get_collection",
]


def get_collection(client: ClientAPI, name: str, **kwargs: Any) -> Collection:
    """Open a Chroma collection made with :class:`MatryoEmbeddingFunction`, from any process.

    The way out of Chroma's ``ValueError: Embedding function matryo not found. Add
    @register_embedding_function decorator to the class definition.``, which a process raises on
    ``query(query_texts=...)`` or ``add(documents=...)`` when it has not imported ``matryo_chroma``:
    importing this function registers the embedding function, and the returned collection embeds with it.

    Chroma compares only an embedding function's name with the stored one, so a ``MatryoEmbeddingFunction`` of
    another model (of the same width), ``truncate_dim``, ``normalize`` or ``max_length`` passed as
    ``embedding_function=`` would be taken and would mix two kinds of vectors in one index; this function refuses
    it. Leave ``embedding_function`` out: the stored config rebuilds the right one.

    Args:
        client: Any Chroma client.
        name: The collection name.
        **kwargs: Passed to ``client.get_collection`` (e.g. ``data_loader``).

    Returns:
        The collection, with its stored matryo embedding function rebuilt.

    Raises:
        ModelMismatchError: If ``embedding_function=`` is a MatryoEmbeddingFunction whose config differs from the
            stored one in a setting that changes the vectors.
        InvalidArgumentError: (a ValueError) If ``name`` is a two-stage collection: open it with
            :meth:`TwoStageCollection.open` (its raw Chroma collection answers with first-pass distances only).
    """
    collection = client.get_collection(name, **kwargs)
    store = (collection.metadata or {}).get("matryo:store")
    if store is not None:
        msg = (
            f"Collection {name!r} is a matryo two-stage collection (store {store!r}); open it with "
            f"TwoStageCollection.open(client, {name!r}), which rescores at full width. get_collection would return "
            "its raw first-pass collection, whose distances are first-pass only (client.get_collection(name) "
            "still does, for maintenance)."
        )
        raise InvalidArgumentError(msg)
    given = kwargs.get("embedding_function")
    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    if isinstance(given, MatryoEmbeddingFunction) and stored.get("name") == EF_NAME:
        mine, theirs = given.get_config(), stored.get("config") or {}
        keys = ("fingerprint", "truncate_dim", "normalize", "max_length")
        differ = [
            f"{key} {theirs.get(key)!r} (given: {mine.get(key)!r})" for key in keys if mine.get(key) != theirs.get(key)
        ]
        if differ:
            msg = (
                f"Collection {name!r} was embedded by a matryo function with {', '.join(differ)}; its vectors and "
                "the given function's would not be comparable. Leave embedding_function= out (the stored config "
                "rebuilds the right function), or embed into a new collection."
            )
            raise ModelMismatchError(msg)
    return collection
