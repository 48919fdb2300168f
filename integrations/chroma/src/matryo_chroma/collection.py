"""A Chroma collection searched in two stages: truncated HNSW first pass, full-dimension rescoring.

Scores: :meth:`TwoStageCollection.query` returns Chroma's result shape; ``distances`` are **full-dimension
cosine distances** ``1 - cos(query, document)`` (Chroma's own cosine convention, ascending), computed
by :func:`matryo.search.rescore`, never the first pass's truncated distances.

Consistency: a full vector is only ever scored if its Matryoshka prefix agrees with the record's first-pass
vector (checked on every query). A record that fails the check (a write interrupted between the two
collections of ``store="sibling"``, or a document edited through the raw Chroma collection) is re-encoded
from its document when that reproduces its first-pass vector, and otherwise left out of the hits with a
:class:`StaleVectorWarning`; :meth:`TwoStageCollection.repair` rewrites such records for good.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import SparseVector, Where, WhereDocument, validate_metadata
from chromadb.errors import NotFoundError
from numpy.typing import ArrayLike, NDArray

from matryo.errors import DimensionMismatchError, InvalidArgumentError, InvalidTypeError, MatryoError
from matryo.search import DEFAULT_RESCORE_MULTIPLIER, DEFAULT_TRUNCATE_DIM, candidate_count, rescore
from matryo.texts import SURROGATE, check_texts
from matryo.vectors import as_numbers, truncate, unit_rows
from matryo_chroma.embedding_function import MatryoEmbeddingFunction, ModelMismatchError
from matryo_chroma.full_vectors import TOLERANCE, FullVectors
from matryo_chroma.stores import RESERVED_PREFIX, SIBLING_SUFFIX, STORES, full_codec, full_codec_from_config

__all__ = [
    "DEFAULT_CODEC",
    "DEFAULT_STORE",
    "CollectionExistsError",
    "DuplicateIdError",
    "TwoStageCollection",
    "UnknownIdError",
]

DEFAULT_STORE = "metadata"
"""Full-vector store used when none is given (chosen by ``benchmarks/bench_chroma.py``)."""

DEFAULT_CODEC = "float16"
"""Codec of the full vectors with ``store="metadata"`` (chosen by ``benchmarks/bench_chroma.py``)."""

_WRITE_BATCH = 1000
_SQL_ROWS = 30_000
"""Most ids one Chroma ``get``/``delete`` is given, and most records a first-pass ``query`` asks for: Chroma's SQLite
layer fails with "too many SQL variables" above 32,766 (documents, metadata or ids), so larger calls are split and
the shortlist is capped here."""
_MAX_NAME = 512  # Chroma's longest collection name
_SIBLING_WAIT = 5.0  # seconds create(exist_ok=True) waits for the sibling of a collection another process creates
_DEFAULT_INCLUDE = ("metadatas", "documents", "distances")
_QUERY_INCLUDE = ("documents", "embeddings", "metadatas", "distances", "uris")
"""What ``query(include=...)`` accepts: Chroma's items except ``"data"`` (no data loader here)."""


class UnknownIdError(MatryoError, KeyError):
    """``update`` named ids that are not in the collection (nothing was written)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DuplicateIdError(MatryoError, ValueError):
    """``add`` got an id twice, or an id that already exists (nothing was written)."""


class CollectionExistsError(MatryoError, ValueError):
    """:meth:`TwoStageCollection.create` was given the name of an existing collection (nothing was changed)."""


def _exists(client: ClientAPI, name: str) -> bool:
    try:
        client.get_collection(name)
    except Exception:  # noqa: BLE001  # NotFoundError, or anything else: let the caller's own error stand
        return False
    return True


def _user_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A collection's own metadata, checked.

    Chroma panics in Rust on a list value (a ``PanicException``, which ``except Exception`` does not catch) and
    stores an ``hnsw:`` key that it then ignores.
    """
    user = dict(metadata)
    for key, value in user.items():
        if not isinstance(key, str) or key.startswith(RESERVED_PREFIX):
            msg = (
                f"Collection metadata keys must be strings; those starting with {RESERVED_PREFIX!r} are reserved for "
                f"matryo's settings. Found {key!r}."
            )
            raise InvalidArgumentError(msg)
        if key.startswith("hnsw:"):
            msg = (
                f"Collection metadata key {key!r}: Chroma ignores hnsw: metadata keys (the first-pass index is always "
                'cosine); pass HNSW settings to create() as hnsw= (e.g. hnsw={"ef_search": 100}).'
            )
            raise InvalidArgumentError(msg)
        if not isinstance(value, (str, int, float)):  # bool is an int
            msg = (
                f"Collection metadata {key!r} is {type(value).__name__} {value!r:.40}; expected a str, int, float "
                "or bool."
            )
            raise InvalidArgumentError(msg)
    return user


def _ids(ids: str | Sequence[str]) -> list[str]:
    items = [ids] if isinstance(ids, str) else list(ids)
    for item in items:
        if not isinstance(item, str) or not item:
            msg = f"Ids must be non-empty strings; found {item!r}."
            raise InvalidTypeError(msg)
    return items


def _per_record(values: Any, count: int, what: str) -> list[Any] | None:
    if values is None:
        return None
    items = [values] if isinstance(values, (str, Mapping)) else list(values)
    if len(items) != count:
        msg = f"Expected one {what} per id ({count}); found {len(items)}."
        raise InvalidArgumentError(msg)
    return items


def _checked_include(include: Sequence[str], method: str) -> list[str]:
    """``include`` as a list, refusing what Chroma refuses (unknown items; ``distances`` in ``get``).

    Chroma's own collection raises ``ValueError`` for these; the wrapper used to ignore them and return nothing
    for the key, so a typo such as ``"metadata"`` silently gave ``None``.
    """
    allowed = _QUERY_INCLUDE if method == "query" else tuple(f for f in _QUERY_INCLUDE if f != "distances")
    if isinstance(include, (str, bytes)) or not isinstance(include, Sequence):
        msg = f"{method}(include=...) expects a list of field names such as {list(allowed[:2])}; found {include!r}."
        raise InvalidArgumentError(msg)
    for item in include:
        if item in allowed:
            continue
        if item == "distances":
            why = "get() has no query to measure distances from; use query() for them"
        elif item == "data":
            why = "a two-stage collection has no data loader; include 'documents' or 'uris' instead"
        else:
            why = "check the spelling (the plural forms: 'metadatas', 'documents', 'embeddings')"
        msg = f"{method}(include=...) items must be among {', '.join(allowed)}; found {item!r}: {why}."
        raise InvalidArgumentError(msg)
    return list(include)


def _strip(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if metadata is None:
        return None
    kept = {key: value for key, value in metadata.items() if not key.startswith(RESERVED_PREFIX)}
    return kept or None


def _chunks(count: int, size: int | None = None) -> Iterator[slice]:
    step = _WRITE_BATCH if size is None else size
    for start in range(0, count, step):
        yield slice(start, min(count, start + step))


def _checked_records(
    mode: str,
    store: str,
    id_list: list[str],
    documents: Any,
    metadatas: Any,
    *,
    has_embeddings: bool,
) -> tuple[list[Any] | None, list[Any] | None]:
    """One document and one metadata per id, or an error before anything is written.

    Rejects repeated ids, reserved metadata keys, non-string documents and missing inputs.
    """
    bad = next((i for i in id_list if SURROGATE.search(i)), None)
    if bad is not None:  # Chroma refuses it only when writing its chunk, after the earlier chunks were stored
        msg = f"Id {bad!r} holds a lone surrogate, which UTF-8 (and Chroma) cannot store. Nothing was written."
        raise InvalidArgumentError(msg)
    seen: set[str] = set()
    repeated = sorted({i for i in id_list if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
    if repeated:
        msg = f"Ids must be unique within one {mode}(); repeated: {repeated[:5]}. Nothing was written."
        raise DuplicateIdError(msg)
    docs = _per_record(documents, len(id_list), "document")
    metas = _per_record(metadatas, len(id_list), "metadata")
    for meta in metas or []:
        if meta is not None and any(str(key).startswith(RESERVED_PREFIX) for key in meta):
            msg = f"Metadata keys starting with {RESERVED_PREFIX!r} are reserved for matryo."
            raise InvalidArgumentError(msg)
    # Chroma checks metadata per write call, and a call is written in chunks: a bad value in a later chunk would
    # fail after the earlier chunks were stored. Checked here, all of it, with Chroma's own rule, plus what only its
    # Rust layer refuses (a string with a lone surrogate, which UTF-8 cannot hold; a SparseVector value).
    merged = store == "metadata" and (has_embeddings or docs is not None)  # the full vector's code is added
    for i, meta in enumerate(metas or []):
        if meta is None:
            continue
        try:
            validate_metadata({**meta, RESERVED_PREFIX + "check": ""} if merged else meta)
            _check_storable(meta)
        except (TypeError, ValueError) as exc:
            msg = f"metadatas[{i}] (id {id_list[i]!r}): {exc}. Nothing was written."
            raise InvalidArgumentError(msg) from exc
    if docs is not None and not all(isinstance(doc, str) for doc in docs):
        msg = "Documents must be strings."
        raise InvalidTypeError(msg)
    if not has_embeddings and docs is None and mode != "update":
        msg = f"{mode}() needs documents= (encoded by the collection's model) or embeddings= (full-dimension)."
        raise InvalidArgumentError(msg)
    if has_embeddings and store == "documents":
        msg = 'store="documents" rescores by re-encoding documents: pass documents=, not embeddings=.'
        raise InvalidArgumentError(msg)
    return docs, metas


def _check_storable(meta: Mapping[str, Any]) -> None:
    """Refuse metadata values that pass Chroma's Python check but not its Rust layer (ValueError)."""
    for key, value in meta.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, SparseVector):
                msg = (
                    f"Expected metadata value of key {key!r} to be a str, int, float, bool or list, got a SparseVector"
                )
                raise ValueError(msg)
            if (isinstance(item, str) and SURROGATE.search(item)) or SURROGATE.search(str(key)):
                msg = f"Metadata key {key!r} or its value holds a lone surrogate, which UTF-8 (and Chroma) cannot store"
                raise ValueError(msg)


_Row = tuple[NDArray[np.float32], Any, Any]
"""A first-pass candidate: its first-pass vector, metadata and document (either may be None)."""


def _candidate_rows(first: Mapping[str, Any]) -> dict[str, _Row]:
    """Every distinct candidate of a first-pass ``QueryResult``, in first-seen order."""
    rows: dict[str, _Row] = {}
    for q, q_ids in enumerate(first["ids"]):
        q_metas = (first["metadatas"] or [None] * (q + 1))[q] or [None] * len(q_ids)
        q_docs = (first["documents"] or [None] * (q + 1))[q] or [None] * len(q_ids)
        for doc_id, emb, meta, doc in zip(q_ids, first["embeddings"][q], q_metas, q_docs, strict=True):
            rows.setdefault(doc_id, (np.asarray(emb, dtype=np.float32), meta, doc))
    return rows


class TwoStageCollection:
    """Two-stage (Matryoshka) search over a Chroma collection, with an API close to Chroma's ``Collection``.

    Create one with :meth:`create` and reopen it with :meth:`open`; the settings (model, ``truncate_dim``,
    store, codec, oversampling) are stored with the collection. The first-pass collection is an ordinary
    Chroma collection (:attr:`collection`) with a :class:`MatryoEmbeddingFunction` at ``truncate_dim``, so
    plain Chroma can still read it.

    Example:
        >>> docs = TwoStageCollection.create(chromadb.PersistentClient("db"), "docs")  # doctest: +SKIP
        >>> docs.add(ids=["a", "b"], documents=["read a gzip file", "parse arguments"])  # doctest: +SKIP
        >>> docs.query(query_texts=["gzip"], n_results=1)["ids"]  # doctest: +SKIP
        [['a']]
    """

    def __init__(self, collection: Collection, full_collection: Collection | None = None) -> None:
        """Wrap an existing first-pass collection; use :meth:`create` or :meth:`open` instead.

        Args:
            collection: The first-pass collection, created by :meth:`create`.
            full_collection: The sibling collection (``store="sibling"`` only).

        Raises:
            ValueError: If the collection was not created by :meth:`create`.
        """
        settings = collection.metadata or {}
        ef = collection.configuration.get("embedding_function")
        if isinstance(ef, MatryoEmbeddingFunction) and settings.get("matryo:store") not in STORES:
            # a plain collection with the embedding function (single-stage), or a two-stage one whose settings
            # Chroma's modify(metadata=) replaced: nothing in the collection tells the two apart
            msg = (
                f"Collection {collection.name!r} has a matryo embedding function but no two-stage settings (no "
                "'matryo:store' metadata key). If it was made with MatryoEmbeddingFunction alone, it is a "
                "single-stage collection: use it through client.get_collection(), or make a two-stage one with "
                "TwoStageCollection.create(). If TwoStageCollection.create() made it, Chroma's "
                "collection.modify(metadata=...) replaced its settings (it replaces all metadata; "
                "TwoStageCollection.modify() keeps them): put back the 'matryo:' keys it had (matryo:store, "
                "matryo:codec_name, matryo:codec, matryo:rescore_multiplier), or re-create it."
            )
            raise InvalidArgumentError(msg)
        if not isinstance(ef, MatryoEmbeddingFunction):
            msg = (
                f"Collection {collection.name!r} is not a matryo two-stage collection (expected a 'matryo' embedding "
                "function and a 'matryo:store' metadata key). Create one with TwoStageCollection.create()."
            )
            raise InvalidArgumentError(msg)
        self.collection = collection
        self.full_collection = full_collection
        self.store: str = str(settings["matryo:store"])
        self.rescore_multiplier = float(settings.get("matryo:rescore_multiplier", DEFAULT_RESCORE_MULTIPLIER))
        self.embedding_function = ef
        self.encoder = ef.encoder
        self.dim = self.encoder.dim
        self.truncate_dim = ef.dim
        codec = settings.get("matryo:codec")
        self.codec_name: str = str(settings.get("matryo:codec_name", "float32"))
        self._full = FullVectors(
            collection,
            full_collection,
            self.store,
            self.codec_name,
            full_codec_from_config(json.loads(str(codec))) if codec else None,
            self.encoder,
            self.truncate_dim,
        )

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        client: ClientAPI,
        name: str,
        *,
        model: str | None = None,
        truncate_dim: int | None = DEFAULT_TRUNCATE_DIM,
        store: str = DEFAULT_STORE,
        codec: str = DEFAULT_CODEC,
        rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
        max_length: int | None = None,
        revision: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        hnsw: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> TwoStageCollection:
        """Create a new two-stage collection (or, with ``exist_ok``, open the one of that name).

        Args:
            client: Any Chroma client (``PersistentClient``, ``HttpClient``, ``EphemeralClient``).
            name: Collection name (Chroma's rules: 3-512 characters ``[a-zA-Z0-9._-]``).
            model: Model folder or hub id; ``None`` = matryo's embedded default model (offline).
            truncate_dim: Width of the first-pass vectors; ``None`` or a value ``>=`` the model's width
                indexes full vectors (the rescoring then changes nothing).
            store: Where the full vectors live: ``"metadata"``, ``"sibling"`` or ``"documents"``
                (see :mod:`matryo_chroma.stores`).
            codec: ``"float32"``, ``"float16"`` or ``"int8"`` for ``store="metadata"`` (int8 codes carry one
                scale per 32 dimensions, :class:`~matryo.quantize.BlockInt8Codec`: nothing to calibrate,
                and safe with concurrent writers).
            rescore_multiplier: The first pass fetches ``ceil(n_results * rescore_multiplier)`` candidates.
            max_length: Token cut-off override for the model.
            revision: Hub revision of ``model``.
            metadata: Extra collection metadata: str, int, float or bool values, keys not starting with
                ``"matryo:"`` or ``"hnsw:"`` (HNSW settings go in ``hnsw``).
            hnsw: Extra HNSW settings for the first-pass collection (the space is always cosine).
            exist_ok: If a collection of this name exists, open it instead (for ingestion scripts that run
                again), provided it was made with these settings: the model's weights (by fingerprint: another
                path or id of the same model is the same), ``max_length``, ``truncate_dim``, ``store``,
                ``codec`` and ``rescore_multiplier``. ``metadata`` and ``hnsw`` are not compared (change
                metadata with :meth:`modify`).

        Returns:
            The new (or, with ``exist_ok``, the existing) collection.

        Raises:
            ValueError: If a setting is invalid.
            CollectionExistsError: If a collection with this name exists (a ``ValueError``; Chroma's own error
                is ``InternalError``) and ``exist_ok`` is false; open it with :meth:`open` instead.
            ModelMismatchError: If ``exist_ok`` and the existing collection was made with other settings (a
                ``ValueError``; the message names them).
        """
        if store not in STORES:
            msg = f"Unknown store {store!r}; expected one of {', '.join(STORES)}."
            raise InvalidArgumentError(msg)
        if not isinstance(exist_ok, bool):
            msg = f"exist_ok must be True or False, got {exist_ok!r}."
            raise InvalidTypeError(msg)
        if store == "sibling" and len(name) + len(SIBLING_SUFFIX) > _MAX_NAME:
            msg = (
                f"store='sibling' keeps the full vectors in a collection named {name!r} + {SIBLING_SUFFIX!r}, and "
                f"Chroma names hold at most {_MAX_NAME} characters: expected a name of at most "
                f"{_MAX_NAME - len(SIBLING_SUFFIX)} characters, found {len(name)}. Use a shorter name."
            )
            raise InvalidArgumentError(msg)
        if codec not in TOLERANCE:
            msg = f"Unknown codec {codec!r} for the full vectors; expected one of {', '.join(TOLERANCE)}."
            raise InvalidArgumentError(msg)
        candidate_count(1, rescore_multiplier)  # validates the multiplier
        probe = MatryoEmbeddingFunction(model, max_length=max_length, revision=revision)
        full_dim = probe.encoder.dim  # the model's full width, also when its folder stores a default truncate_dim
        width = full_dim if truncate_dim is None or truncate_dim >= full_dim else truncate_dim
        ef = MatryoEmbeddingFunction(model, truncate_dim=width, max_length=max_length, revision=revision)
        settings: dict[str, Any] = {
            **_user_metadata(metadata or {}),
            "matryo:store": store,
            "matryo:codec_name": codec if store == "metadata" else "float32",
            "matryo:rescore_multiplier": float(rescore_multiplier),
        }
        if store == "metadata":
            settings["matryo:codec"] = json.dumps(full_codec(codec, ef.encoder.dim).to_config())
        if exist_ok and _exists(client, name):
            return cls._existing(client, name, ef, settings)
        configuration: dict[str, Any] = {"hnsw": {**dict(hnsw or {}), "space": "cosine"}}
        try:
            collection = client.create_collection(
                name,
                embedding_function=ef,  # type: ignore[arg-type]  # Chroma types the parameter for images too
                metadata=settings,
                configuration=configuration,  # type: ignore[arg-type]
            )
        except Exception as exc:
            if _exists(client, name):  # asked after the failure: no race with a concurrent create
                if exist_ok:  # another process created it meanwhile
                    return cls._existing(client, name, ef, settings)
                msg = (
                    f"A collection named {name!r} already exists; nothing was changed. Open it with "
                    f"TwoStageCollection.open(client, {name!r}), choose another name, or delete it first with "
                    f"TwoStageCollection.delete_collection(client, {name!r}) (its records are lost)."
                )
                raise CollectionExistsError(msg) from exc
            raise
        full = None
        if store == "sibling":
            try:
                with contextlib.suppress(NotFoundError):  # a leftover sibling of a deleted collection: only orphans
                    client.delete_collection(name + SIBLING_SUFFIX)
                full = client.create_collection(
                    name + SIBLING_SUFFIX, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
                )
            except BaseException:
                client.delete_collection(name)
                raise
        return cls(collection, full)

    @classmethod
    def _existing(
        cls, client: ClientAPI, name: str, ef: MatryoEmbeddingFunction, settings: Mapping[str, Any]
    ) -> TwoStageCollection:
        """Open the collection ``name`` for ``create(exist_ok=True)``, refusing it if its settings differ.

        A ``store="sibling"`` collection whose sibling is missing may be one another process is creating (it
        makes the two collections one after the other): it is asked again for up to ``_SIBLING_WAIT`` seconds.
        """
        deadline = time.monotonic() + _SIBLING_WAIT
        while True:
            try:
                opened = cls.open(client, name)
                break
            except NotFoundError as exc:
                if _exists(client, name + SIBLING_SUFFIX) or time.monotonic() >= deadline:
                    if not _exists(client, name):  # deleted meanwhile (the other process's create failed)
                        raise
                    msg = (
                        f"Collection {name!r} exists but its full vectors' collection {name + SIBLING_SUFFIX!r} does "
                        f"not (store='sibling'), also after {_SIBLING_WAIT:g} s. Delete it with "
                        f"TwoStageCollection.delete_collection(client, {name!r}) and create it again."
                    )
                    raise CollectionExistsError(msg) from exc
                time.sleep(0.05)
        stored = opened.embedding_function.get_config()
        wanted = ef.get_config()
        same_weights = stored.get("fingerprint") == wanted.get("fingerprint")
        differ = {
            key: (stored.get(key), value)
            for key, value in wanted.items()
            if stored.get(key) != value and not (same_weights and key in ("model", "revision"))  # same model, spelt
        }
        meta = opened.collection.metadata or {}
        for key in ("matryo:store", "matryo:codec_name", "matryo:rescore_multiplier"):
            if meta.get(key) != settings[key]:
                differ[key.removeprefix("matryo:")] = (meta.get(key), settings[key])
        if differ:
            shown = ", ".join(f"{key}: {old!r} (asked: {new!r})" for key, (old, new) in differ.items())
            msg = (
                f"Collection {name!r} exists with other settings: {shown}. Open it as it is with "
                f"TwoStageCollection.open(client, {name!r}), use another name, or delete it first with "
                f"TwoStageCollection.delete_collection(client, {name!r}) (its records are lost)."
            )
            raise ModelMismatchError(msg)
        return opened

    @classmethod
    def open(cls, client: ClientAPI, name: str, *, repair: bool = False) -> TwoStageCollection:
        """Open a collection made by :meth:`create` (in this or any other process).

        Args:
            client: Any Chroma client.
            name: The collection name.
            repair: With ``store="sibling"``, scan once and fix records whose full vector is missing or
                stale (see :meth:`repair`). Off by default: queries already check every candidate, and a scan
                on open could race a writer in another process. The other stores need no repair.

        Returns:
            The collection.

        Raises:
            chromadb.errors.NotFoundError: If there is no such collection.
            ValueError: If the collection was not made by :meth:`create`.
        """
        collection = client.get_collection(name)
        store = (collection.metadata or {}).get("matryo:store")
        full = client.get_collection(name + SIBLING_SUFFIX, embedding_function=None) if store == "sibling" else None
        opened = cls(collection, full)
        if repair and store == "sibling":
            opened.repair()
        return opened

    @staticmethod
    def delete_collection(client: ClientAPI, name: str) -> None:
        """Delete a two-stage collection and, with ``store="sibling"``, its sibling collection.

        Args:
            client: Any Chroma client.
            name: The collection name.
        """
        client.delete_collection(name)
        if any(col.name == name + SIBLING_SUFFIX for col in client.list_collections()):
            client.delete_collection(name + SIBLING_SUFFIX)

    # ------------------------------------------------------------------ reading
    @property
    def name(self) -> str:
        """The first-pass collection's name."""
        return str(self.collection.name)

    def count(self) -> int:
        """Return the number of records."""
        return int(self.collection.count())

    @property
    def metadata(self) -> dict[str, Any]:
        """The collection's own metadata (``create(metadata=)`` or :meth:`modify`), without matryo's settings.

        ``hnsw:`` keys, which older versions let ``create(metadata=)`` store (Chroma ignores them), are left out too;
        :meth:`modify` drops them (Chroma refuses ``hnsw:space`` being written again).
        """
        return {
            k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith((RESERVED_PREFIX, "hnsw:"))
        }

    def modify(self, metadata: Mapping[str, Any]) -> None:
        """Replace the collection's own metadata, keeping matryo's settings.

        Use this instead of ``collection.modify(metadata=...)`` on the first-pass collection: Chroma replaces a
        collection's whole metadata, matryo's settings too, and :meth:`open` then refuses the collection.

        Args:
            metadata: The new metadata: str, int, float or bool values, keys not starting with ``"matryo:"`` or
                ``"hnsw:"``; ``{}`` removes all of it.

        Raises:
            ValueError: If a key starts with ``"matryo:"`` or ``"hnsw:"``, or a value is None, a list or another
                type Chroma cannot store.
        """
        user = _user_metadata(metadata)
        kept = {k: v for k, v in (self.collection.metadata or {}).items() if k.startswith(RESERVED_PREFIX)}
        self.collection.modify(metadata={**user, **kept})

    def __repr__(self) -> str:
        return (
            f"TwoStageCollection(name={self.name!r}, dim={self.dim}, truncate_dim={self.truncate_dim}, "
            f"store={self.store!r}, codec={self.codec_name!r}, rescore_multiplier={self.rescore_multiplier})"
        )

    def peek(self, limit: int = 10) -> dict[str, Any]:
        """The first ``limit`` records with their documents, metadata and full-dimension vectors, as Chroma's ``peek``.

        Args:
            limit: How many records.

        Returns:
            A ``get`` result.
        """
        return self.get(limit=limit, include=["embeddings", "documents", "metadatas"])

    def get(
        self,
        ids: str | Sequence[str] | None = None,
        *,
        where: Where | None = None,
        where_document: WhereDocument | None = None,
        limit: int | None = None,
        offset: int | None = None,
        include: Sequence[str] = ("metadatas", "documents"),
    ) -> dict[str, Any]:
        """Get records like ``Collection.get``; ``embeddings``, if included, are the full-dimension vectors.

        Args:
            ids: Ids to fetch (unknown ids are left out, as in Chroma).
            where: Metadata filter.
            where_document: Document filter.
            limit: At most this many records.
            offset: Skip this many records.
            include: Any of ``"metadatas"``, ``"documents"``, ``"embeddings"``, ``"uris"``.

        Returns:
            Chroma's ``GetResult`` dict; matryo's own metadata keys are removed.

        Raises:
            matryo.errors.InvalidArgumentError: If ``include`` holds another item (a ``ValueError``, as in Chroma).
        """
        wanted = _checked_include(include, "get")
        fetch = {"metadatas", "documents"} | {field for field in ("embeddings", "uris") if field in wanted}
        result = self.collection.get(
            ids=None if ids is None else _ids(ids),
            where=where,
            where_document=where_document,
            limit=limit,
            offset=offset,
            include=sorted(fetch),  # type: ignore[arg-type]
        )
        out: dict[str, Any] = {
            "ids": list(result["ids"]),
            "embeddings": None,
            "documents": list(result["documents"] or []) if "documents" in wanted else None,
            "metadatas": [_strip(m) for m in result["metadatas"] or []] if "metadatas" in wanted else None,
            "uris": list(result["uris"] or []) if "uris" in wanted else None,
            "data": None,
            "included": wanted,
        }
        if "embeddings" in wanted:
            firsts = self._full.firsts(result["embeddings"], len(out["ids"]))
            rows = self._full.lookup(out["ids"], firsts, result["metadatas"] or [], result["documents"] or [])
            out["embeddings"] = [rows.get(doc_id) for doc_id in out["ids"]]
        return out

    def query(
        self,
        query_texts: str | Sequence[str] | None = None,
        *,
        query_embeddings: ArrayLike | None = None,
        n_results: int = 10,
        where: Where | None = None,
        where_document: WhereDocument | None = None,
        include: Sequence[str] = _DEFAULT_INCLUDE,
        rescore_multiplier: float | None = None,
    ) -> dict[str, Any]:
        """Search: a truncated first pass (filters applied there), then full-dimension cosine rescoring.

        Args:
            query_texts: Query text(s); or give ``query_embeddings`` instead.
            query_embeddings: Full-width query vectors, shape ``(q, dim)``.
            n_results: Hits per query. The first pass asks for ``n_results`` x the oversampling, at most 30,000
                records (or ``n_results`` if larger): Chroma cannot return more metadata or documents at once.
            where: Metadata filter, applied in the first pass (a filtered-out record is never a candidate).
            where_document: Document filter, applied in the first pass.
            include: Any of ``"distances"``, ``"metadatas"``, ``"documents"``, ``"embeddings"``
                (full-dimension vectors), ``"uris"``.
            rescore_multiplier: Override the collection's oversampling for this query.

        Returns:
            Chroma's ``QueryResult`` dict, one list per query, best first; ``distances`` are
            ``1 - full-dimension cosine``. Records stored with an all-zero vector (a document that yields no
            tokens) are never returned, as in LanceDB's cosine search.

        Raises:
            ValueError: If not exactly one of ``query_texts`` and ``query_embeddings`` is given, or ``include``
                holds an item Chroma's ``query`` would refuse (or ``"data"``).
            DimensionMismatchError: If ``query_embeddings`` are not the model's full width.
        """
        if isinstance(n_results, bool) or not isinstance(n_results, (int, np.integer)) or n_results < 1:
            msg = f"n_results must be a positive integer (the hits per query); found {n_results!r}."
            raise InvalidArgumentError(msg)
        wanted = _checked_include(include, "query")
        queries = self._query_vectors(query_texts, query_embeddings)
        # Only what rescoring needs comes with the (oversampled) first pass: its vectors for the consistency
        # check, plus the stored full vectors or documents. Documents and metadata of the final hits are
        # fetched afterwards for those few ids.
        fields = ["embeddings"]
        fields += ["metadatas"] if self.store == "metadata" else []
        fields += ["documents"] if self.store == "documents" else []
        n = min(
            candidate_count(n_results, self.rescore_multiplier if rescore_multiplier is None else rescore_multiplier),
            max(n_results, _SQL_ROWS),
        )
        prefixes = truncate(queries, self.truncate_dim)
        # Chroma reads the candidates' metadata for all queries of one call in one SQL statement, which fails past
        # SQLite's variable limit (2,000 queries x 32 candidates did): the queries go in calls of _SQL_ROWS rows.
        first: dict[str, Any] = {"ids": [], "embeddings": [], "metadatas": [], "documents": []}
        for part in _chunks(len(prefixes), max(1, _SQL_ROWS // n)):
            got = self.collection.query(
                query_embeddings=prefixes[part],
                n_results=n,
                where=where,
                where_document=where_document,
                include=fields,  # type: ignore[arg-type]
            )
            for key, values in first.items():
                values.extend(got.get(key) or [None] * len(got["ids"]))
        # A record with an all-zero vector (a document without tokens) has no direction: its cosine with any
        # query is 0, so it would rank above every negative score. LanceDB's cosine search never returns such
        # rows; drop them here too.
        rows = {doc_id: row for doc_id, row in _candidate_rows(first).items() if row[0].any()}
        order = list(rows)
        full = self._full.lookup(
            order,
            self._full.firsts([rows[i][0] for i in order], len(order)),
            [rows[i][1] for i in order],
            [rows[i][2] for i in order] if "documents" in fields else None,
        )
        live = [bool(row.any()) for row in prefixes]  # an all-zero prefix has no first pass (as in NumpyIndex, LanceDB)
        hits = rescore(
            queries,
            [
                [doc_id for doc_id in q_ids if doc_id in rows] if ok else []
                for q_ids, ok in zip(first["ids"], live, strict=True)
            ],
            k=n_results,
            fetch_full_vectors=lambda _ids: full,
            on_missing="skip",
        )
        extra: list[str] = [f for f in ("documents", "metadatas") if f in wanted and f not in fields]
        extra += ["uris"] if "uris" in wanted else []
        hit_ids = list(dict.fromkeys(doc_id for hit in hits for doc_id in hit.ids))
        uri_of = self._fetch_fields(rows, hit_ids, extra)
        out: dict[str, Any] = {key: None for key in ("embeddings", "documents", "metadatas", "distances", "uris")}
        out["ids"] = [list(hit.ids) for hit in hits]
        out["data"] = None
        out["included"] = wanted
        if "distances" in wanted:
            out["distances"] = [[float(1.0 - s) for s in hit.scores] for hit in hits]
        if "documents" in wanted:
            out["documents"] = [[rows[i][2] for i in hit.ids] for hit in hits]
        if "metadatas" in wanted:
            out["metadatas"] = [[_strip(rows[i][1]) for i in hit.ids] for hit in hits]
        if "embeddings" in wanted:
            out["embeddings"] = [np.asarray([full[i] for i in hit.ids], dtype=np.float32) for hit in hits]
        if "uris" in wanted:
            out["uris"] = [[uri_of.get(i) for i in hit.ids] for hit in hits]
        return out

    def _query_vectors(
        self, query_texts: str | Sequence[str] | None, query_embeddings: ArrayLike | None
    ) -> NDArray[np.float32]:
        """The full-width, normalised query vectors of :meth:`query` (from texts or checked vectors)."""
        if (query_texts is None) == (query_embeddings is None):
            msg = "Pass exactly one of query_texts= or query_embeddings= (full-dimension vectors)."
            raise InvalidArgumentError(msg)
        if query_texts is not None:
            texts = check_texts(query_texts, "query_texts")  # None, 3, a dict (its keys): matryo errors
            queries = self.encoder.encode(texts, truncate_dim=self.dim, normalize=True).reshape(len(texts), self.dim)
        else:
            assert query_embeddings is not None  # exactly one of the two, checked above
            queries = self._full_width(query_embeddings, "query_embeddings")
        if queries.shape[0] == 0:
            msg = "query() needs at least one query text or vector."
            raise InvalidArgumentError(msg)
        return queries

    def _fetch_fields(self, rows: dict[str, _Row], ids: list[str], fields: Sequence[str]) -> dict[str, Any]:
        """Fill in ``fields`` (documents and/or metadatas) of the final hits ``ids``, in place in ``rows``.

        Returns:
            Each hit's uri when ``fields`` holds ``"uris"`` (fetched in the same ``get``), else an empty dict.
        """
        if not fields or not ids:
            return {}
        got = self.collection.get(ids=ids, include=list(fields))  # type: ignore[arg-type]
        for j, doc_id in enumerate(got["ids"]):
            emb, meta, doc = rows[doc_id]
            meta = got["metadatas"][j] if got["metadatas"] is not None else meta
            doc = got["documents"][j] if got["documents"] is not None else doc
            rows[doc_id] = (emb, meta, doc)
        if "uris" not in fields:
            return {}
        uris: list[Any] = list(got["uris"] or []) or [None] * len(got["ids"])
        return dict(zip(got["ids"], uris, strict=True))

    # ------------------------------------------------------------------ writing
    def add(
        self,
        ids: str | Sequence[str],
        *,
        documents: str | Sequence[str] | None = None,
        embeddings: ArrayLike | None = None,
        metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new records: documents are encoded once at full width, their prefix goes to the first pass.

        Args:
            ids: Unique new ids.
            documents: Texts (encoded with the collection's model unless ``embeddings`` are given).
            embeddings: Full-dimension vectors made by hand, shape ``(n, dim)``.
            metadatas: One metadata dict (or ``None``) per record.

        Raises:
            DuplicateIdError: If an id repeats or already exists (nothing is written).
            DimensionMismatchError: If ``embeddings`` are not the model's full width.
            ValueError: If neither documents nor embeddings are given, lengths differ, or a metadata value is one
                Chroma refuses (nothing is written). A call is written 1,000 records at a time; when a later
                write fails (a disk error, Ctrl-C), the records already stored are deleted again, so a failed
                ``add`` can be retried as it is.
        """
        self._write("add", ids, documents, embeddings, metadatas)

    def upsert(
        self,
        ids: str | Sequence[str],
        *,
        documents: str | Sequence[str] | None = None,
        embeddings: ArrayLike | None = None,
        metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Insert or replace records (Chroma's semantics: given metadata keys are merged into old ones).

        Args:
            ids: Unique ids.
            documents: Texts.
            embeddings: Full-dimension vectors made by hand.
            metadatas: One metadata dict (or ``None``) per record.

        Raises:
            DuplicateIdError: If an id repeats within the call.
            DimensionMismatchError: If ``embeddings`` are not the model's full width.
            ValueError: If a metadata value is one Chroma refuses (nothing is written).

        A call is written 1,000 records at a time. When a write fails after input checks (a disk error, Ctrl-C),
        the chunks already written stay written (each record's two vectors always agree); upsert the same call
        again to finish it.
        """
        self._write("upsert", ids, documents, embeddings, metadatas)

    def update(
        self,
        ids: str | Sequence[str],
        *,
        documents: str | Sequence[str] | None = None,
        embeddings: ArrayLike | None = None,
        metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Update existing records; new documents or embeddings replace both vectors together.

        Args:
            ids: Existing ids.
            documents: New texts.
            embeddings: New full-dimension vectors.
            metadatas: Metadata keys to set (merged, as in Chroma; a ``None`` value removes a key).

        Raises:
            UnknownIdError: If an id does not exist (nothing is written; Chroma itself would ignore it).
            DuplicateIdError: If an id repeats within the call.
            ValueError: If a metadata value is one Chroma refuses (nothing is written).

        A call is written 1,000 records at a time. When a write fails after input checks (a disk error, Ctrl-C),
        the chunks already written stay updated; run the same update again to finish it.
        """
        self._write("update", ids, documents, embeddings, metadatas)

    def delete(
        self,
        ids: str | Sequence[str] | None = None,
        *,
        where: Where | None = None,
        where_document: WhereDocument | None = None,
    ) -> list[str]:
        """Delete records by id and/or filter; unknown ids are ignored, as in Chroma.

        Args:
            ids: Ids to delete (an empty list deletes nothing and returns ``[]``; Chroma's own ``delete`` raises).
            where: Metadata filter.
            where_document: Document filter.

        Returns:
            The ids that were deleted.

        Raises:
            ValueError: If no ids and no filter are given (that would delete everything).
        """
        if ids is None and where is None and where_document is None:
            msg = "delete() needs ids=, where= or where_document=; to drop everything, delete the collection."
            raise InvalidArgumentError(msg)
        id_list = None if ids is None else _ids(ids)
        spans = [slice(None)] if id_list is None else list(_chunks(len(id_list), _SQL_ROWS))
        found: list[str] = []
        for span in spans:
            found += self.collection.get(
                ids=None if id_list is None else id_list[span], where=where, where_document=where_document, include=[]
            )["ids"]
        for part in _chunks(len(found), _SQL_ROWS):
            self.collection.delete(ids=found[part])
            if self.full_collection is not None:  # an orphan full vector is never scored; repair(drop_orphans=True)
                self.full_collection.delete(ids=found[part])
        return found

    def repair(self, *, drop_orphans: bool = False) -> list[str]:
        """Make every record's full vector agree with its first-pass vector again.

        Rewrites missing or stale full vectors from the stored documents and returns the ids that could not be
        repaired (no document, or one that does not reproduce the first-pass vector: such records stay
        searchable only by plain Chroma).

        Args:
            drop_orphans: Also delete sibling rows whose id is not in the collection. Only when no other process
                is writing: a write stores the sibling row first, so an in-flight record looks like an orphan.
                Orphans are never scored, so keeping them costs only space.

        Returns:
            Ids of records that are still inconsistent.
        """
        unrepaired: list[str] = []
        for ids, firsts, metas, docs in self._full.pages():
            good = self._full.stored(ids, firsts, metas)
            bad = [i for i, doc_id in enumerate(ids) if doc_id not in good]
            fixed = self._full.from_documents([ids[i] for i in bad], firsts[bad], [docs[i] for i in bad])
            unrepaired += [ids[i] for i in bad if ids[i] not in fixed]
            if fixed:
                self._full.rewrite(list(fixed), np.asarray(list(fixed.values()), dtype=np.float32))
        if drop_orphans and self.full_collection is not None:
            orphan_ids = set(self.full_collection.get(include=[])["ids"]) - set(self.collection.get(include=[])["ids"])
            orphans = sorted(orphan_ids)
            for part in _chunks(len(orphans), _SQL_ROWS):
                self.full_collection.delete(ids=orphans[part])
        return unrepaired

    # ------------------------------------------------------------------ internals
    def _full_width(self, vectors: ArrayLike, what: str) -> NDArray[np.float32]:
        """``vectors`` as unit-length ``(n, dim)`` float32 rows, checked (a tiny float64 one keeps its direction)."""
        matrix = as_numbers(vectors, what)  # strings, ragged rows, complex: matryo errors
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.shape[1] != self.dim:
            hint = " (that is the first-pass width: pass full vectors)" if matrix.shape[-1] == self.truncate_dim else ""
            msg = (
                f"{what} must be full-dimension vectors of shape (n, {self.dim}) from the collection's model; "
                f"found shape {matrix.shape}{hint}."
            )
            raise DimensionMismatchError(msg)
        return unit_rows(matrix, what, fix="Pass finite vectors (for instance re-encode their texts).")

    def _write(
        self,
        mode: str,
        ids: str | Sequence[str],
        documents: str | Sequence[str] | None,
        embeddings: ArrayLike | None,
        metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None,
    ) -> None:
        id_list = _ids(ids)
        if not id_list:
            return
        docs, metas = _checked_records(
            mode, self.store, id_list, documents, metadatas, has_embeddings=embeddings is not None
        )
        full = None
        if embeddings is not None:
            # unit length, as documents' vectors are: cosine needs only the direction, and a tiny vector's float16
            # code underflowed, so the record could never be returned
            full = self._full_width(embeddings, "embeddings")
            if full.shape[0] != len(id_list):
                msg = f"Expected one embedding per id ({len(id_list)}); found {full.shape[0]}."
                raise InvalidArgumentError(msg)
            blind = np.flatnonzero(~full[:, : self.truncate_dim].any(axis=1) & full.any(axis=1))
            if blind.size:  # the first pass ranks by the prefix: one without a direction is never a candidate
                msg = (
                    f"Embeddings of ids {[id_list[i] for i in blind[:5]]} are zero in their first "
                    f"{self.truncate_dim} dimensions (the first-pass prefix) but not beyond: the first pass could "
                    "never find them. Expected Matryoshka vectors of this collection's model; nothing was written."
                )
                raise InvalidArgumentError(msg)
            rounded = np.flatnonzero(self._full.rounded_to_zero(full))
            if rounded.size:  # no document to rebuild them from: they would be reported stale on every query
                msg = (
                    f"Embeddings of ids {[id_list[i] for i in rounded[:5]]} have a first-pass prefix so small next to "
                    f"their largest values that its int8 code rounds it to zero, and no document to rebuild them "
                    "from. Use a collection with codec='float16' or a wider truncate_dim; nothing was written."
                )
                raise InvalidArgumentError(msg)
        elif docs is not None:
            full = self.encoder.encode(docs, truncate_dim=self.dim, normalize=True).reshape(len(docs), self.dim)
        if mode != "upsert":
            existing = set()
            for part in _chunks(len(id_list), _SQL_ROWS):
                existing.update(self.collection.get(ids=id_list[part], include=[])["ids"])
            if mode == "add" and existing:
                msg = f"Ids already exist: {sorted(existing)[:5]}. Use upsert() or update(). Nothing was written."
                raise DuplicateIdError(msg)
            if mode == "update" and len(existing) != len(id_list):
                missing = [i for i in id_list if i not in existing]
                msg = f"update() got {len(missing)} unknown id(s): {missing[:5]}. Nothing was written; use upsert()."
                raise UnknownIdError(msg)
        write = partial(self._write_first, getattr(self.collection, mode))
        tried = 0
        try:
            for part in _chunks(len(id_list)):
                tried = part.stop  # before the write: Ctrl-C surfaces only after Chroma committed the chunk
                self._full.write(
                    write,
                    id_list[part],
                    None if docs is None else docs[part],
                    None if full is None else full[part],
                    None if metas is None else metas[part],
                )
        except BaseException:
            # A chunk failed (Chroma refused it, a disk error, Ctrl-C) after earlier chunks were stored. New records
            # are taken out again, so a failed add() stores nothing and can be retried; update()/upsert() cannot
            # put old values back (Chroma merges metadata keys) and keep the chunks already written.
            if mode == "add" and tried and full is not None:
                self._undo_add(id_list[:tried], full[:tried])
            raise

    def _undo_add(self, ids: list[str], full: NDArray[np.float32]) -> None:
        """Delete the records a failed :meth:`add` stored: those of ``ids`` whose first-pass vector is this add's.

        Chroma's ``add`` skips an id that exists, so an id another writer added meanwhile holds that writer's
        vector: it is left alone.
        """
        first = self._full.first_pass(full)  # as written (int8: the decoded code's prefix)
        mine = dict(zip(ids, first, strict=True))
        ours: list[str] = []
        for part in _chunks(len(ids), _SQL_ROWS):
            got = self.collection.get(ids=ids[part], include=["embeddings"])
            for doc_id, emb in zip(got["ids"], got["embeddings"] if got["embeddings"] is not None else [], strict=True):
                if np.allclose(np.asarray(emb, dtype=np.float32), mine[doc_id], atol=1e-6):
                    ours.append(doc_id)
        if ours:
            self.delete(ids=ours)

    def _write_first(self, write: Any, **kwargs: Any) -> None:
        """The first-pass write (a seam: tests inject failures here)."""
        write(**kwargs)
