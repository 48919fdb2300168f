"""Chroma's embedding-function protocol for matryo static models, registered under the name ``"matryo"``.

Chroma 1.5 persists ``{"name": name(), "config": get_config()}`` with a collection and rebuilds the
function with :meth:`MatryoEmbeddingFunction.build_from_config` on every add and query of a reopened
collection, so the config holds every semantic parameter and the model comes from the per-process cache
(:func:`matryo.cache.load_encoder`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from matryo import StaticEncoder
from matryo.cache import load_encoder, load_recorded, model_key
from matryo.errors import InvalidArgumentError, ModelMismatchError

__all__ = ["EF_NAME", "MatryoEmbeddingFunction", "ModelMismatchError"]

EF_NAME = "matryo"
"""The name the function is registered and persisted under (``name()``)."""


_CONFIG_KEYS = ("model", "revision", "truncate_dim", "normalize", "max_length", "fingerprint")


_UNTOUCHED = (
    "The stored records are untouched: the Chroma collection (client.get_collection(name)) still answers count(), "
    "get() and query(query_embeddings=...) with vectors of its width (a TwoStageCollection's first-pass width)."
)


@register_embedding_function
class MatryoEmbeddingFunction(EmbeddingFunction[Documents]):
    """A Chroma embedding function backed by a matryo :class:`~matryo.StaticEncoder`.

    Example:
        >>> import chromadb  # doctest: +SKIP
        >>> col = chromadb.PersistentClient("db").create_collection(  # doctest: +SKIP
        ...     "docs", embedding_function=MatryoEmbeddingFunction(truncate_dim=256)
        ... )

    Args:
        model: A local model folder or hub id; ``None`` (default) uses matryo's embedded default model,
            which needs no download.
        truncate_dim: Keep this many leading (Matryoshka) dimensions; ``None`` = the model's output width, as
            in sentence-transformers: the default ``truncate_dim`` stored in the model folder's
            ``config_sentence_transformers.json`` when there is one (:attr:`StaticEncoder.output_dim`), else its
            full width. The width is resolved here and persisted in :meth:`get_config` (``null`` there means
            the full width), so a reopened collection never changes it.
        normalize: L2-normalise each vector (after truncation). Empty documents give a zero vector.
        max_length: Cut texts at this many tokens (overrides the tokenizer's own setting).
        revision: Hub revision (hub ids only).
        fingerprint: The model fingerprint recorded when the collection was created (set by
            :meth:`build_from_config`; leave it ``None``). A different model found under the same path raises
            :class:`ModelMismatchError` instead of mixing vectors of two models in one collection.

    Raises:
        ModelMismatchError: If ``fingerprint`` is given and the model found has another one (a ``ValueError``;
            Chroma reports it as ``ValueError: Could not build embedding function matryo ...: <this message>``
            on text adds and queries).
        ValueError: If ``truncate_dim`` is outside ``1..model dim``.
        matryo.ModelNotFoundError: If the model cannot be found.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        truncate_dim: int | None = None,
        normalize: bool = True,
        max_length: int | None = None,
        revision: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.model = model_key(model)  # a folder persisted as an absolute path: a fresh process may run elsewhere
        self.revision = revision
        self.max_length = max_length
        self.normalize = bool(normalize)
        self.encoder: StaticEncoder = load_encoder(self.model, revision=revision, max_length=max_length)
        width = self.encoder.output_dim if truncate_dim is None else truncate_dim
        if isinstance(width, bool) or not (isinstance(width, (int, np.integer)) and 1 <= width <= self.encoder.dim):
            msg = f"truncate_dim must be an integer in 1..{self.encoder.dim} (the model width); found {truncate_dim!r}."
            raise InvalidArgumentError(msg)
        self.truncate_dim = None if width == self.encoder.dim else int(width)  # None (persisted) = full width
        if fingerprint is not None and fingerprint != self.encoder.fingerprint:
            where = f"The model at {self.model!r}" if self.model else "matryo's embedded default model"
            restore = (
                f"Put the original model back at {self.model!r} (or pin its revision)"
                if self.model
                else "Install the matryo version that created the collection"
            )
            msg = (
                f"{where} has fingerprint {self.encoder.fingerprint}, but this collection was embedded with "
                f"fingerprint {fingerprint}: new vectors would not be comparable with the stored ones. {restore}, or "
                f"re-embed the documents into a new collection. {_UNTOUCHED}"
            )
            raise ModelMismatchError(msg)

    @property
    def dim(self) -> int:
        """Width of the vectors this function returns."""
        return self.truncate_dim or self.encoder.dim

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002  # Chroma requires the name `input`
        """Embed documents (Chroma calls this for ``add``/``upsert``/``update``).

        Args:
            input: The texts.

        Returns:
            One float32 vector per text (a ``(n, dim)`` array, which Chroma splits into rows).
        """
        texts = [input] if isinstance(input, str) else list(input)
        vectors = self.encoder.encode(texts, truncate_dim=self.dim, normalize=self.normalize)
        return list(vectors)

    def embed_query(self, input: Documents) -> Embeddings:  # noqa: A002
        """Embed query texts (Chroma calls this for ``query(query_texts=...)``); same as documents.

        Args:
            input: The query texts.

        Returns:
            One float32 vector per text.
        """
        return self(input)

    @staticmethod
    def name() -> str:
        """Return the unique registry name, ``"matryo"``."""
        return EF_NAME

    def default_space(self) -> Space:
        """Return ``"cosine"``: the vectors are meant to be compared by cosine."""
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        """Return the spaces that rank like cosine for normalised vectors (``ip`` only if normalised)."""
        return ["cosine", "ip", "l2"] if self.normalize else ["cosine"]

    def get_config(self) -> dict[str, Any]:
        """Return every semantic parameter, JSON-serialisable (what Chroma persists)."""
        return {
            "model": self.model,
            "revision": self.revision,
            "truncate_dim": self.truncate_dim,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "fingerprint": self.encoder.fingerprint,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MatryoEmbeddingFunction:
        """Rebuild the function from :meth:`get_config` output (cheap: the model is cached per process).

        Args:
            config: The stored config.

        Returns:
            An equivalent embedding function.

        Raises:
            ModelMismatchError: If the model found has another fingerprint than the stored one.
            matryo.ModelNotFoundError: If the stored model no longer loads (the message names it; Chroma's
                callers see it as the ``ValueError`` they wrap it in).
        """
        MatryoEmbeddingFunction.validate_config(config)
        advice = (
            "Put that model back at the recorded place (a collection keeps using its model's path), or re-embed "
            f"the documents into a new collection. {_UNTOUCHED}"
        )
        encoder = load_recorded(
            config.get("model"),
            owner="This collection",
            where="in its configuration",
            advice=advice,
            revision=config.get("revision"),
            max_length=config.get("max_length"),
        )
        truncate_dim = config.get("truncate_dim")
        if truncate_dim is None:  # stored null = the model's full width, whatever default width its folder has
            truncate_dim = encoder.dim
        return MatryoEmbeddingFunction(
            config.get("model"),
            truncate_dim=truncate_dim,
            normalize=config.get("normalize", True),
            max_length=config.get("max_length"),
            revision=config.get("revision"),
            fingerprint=config.get("fingerprint"),
        )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Check a config's keys and types.

        Args:
            config: A dict as produced by :meth:`get_config`.

        Raises:
            ValueError: If a key is unknown or a value has the wrong type.
        """
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            msg = f"Unknown keys {unknown} in a matryo embedding-function config; expected only {list(_CONFIG_KEYS)}."
            raise InvalidArgumentError(msg)
        for key in ("model", "revision", "fingerprint"):
            if config.get(key) is not None and not isinstance(config[key], str):
                msg = f"Config key {key!r} must be a string or null; found {config[key]!r}."
                raise InvalidArgumentError(msg)
        for key in ("truncate_dim", "max_length"):
            value = config.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                msg = f"Config key {key!r} must be a positive integer or null; found {value!r}."
                raise InvalidArgumentError(msg)
        if not isinstance(config.get("normalize", True), bool):
            msg = f"Config key 'normalize' must be a boolean; found {config['normalize']!r}."
            raise InvalidArgumentError(msg)

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Refuse config updates that would change the vectors of an existing collection.

        Args:
            old_config: The stored config.
            new_config: The requested changes.

        Raises:
            ValueError: If the update changes any semantic parameter.
        """
        changed = sorted(key for key in new_config if key in _CONFIG_KEYS and new_config[key] != old_config.get(key))
        if changed:
            msg = (
                f"Cannot change {changed} of an existing matryo collection: its stored vectors were made with the old "
                "values. Create a new collection and re-add the documents."
            )
            raise InvalidArgumentError(msg)

    def __repr__(self) -> str:
        return (
            f"MatryoEmbeddingFunction(model={self.model!r}, truncate_dim={self.truncate_dim}, "
            f"normalize={self.normalize}, max_length={self.max_length}, revision={self.revision!r})"
        )
