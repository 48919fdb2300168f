"""``MatryoEmbeddings``: LangChain ``Embeddings`` backed by a matryo static encoder.

A static model is a lookup table averaged over tokens, so embedding is pure numpy (no torch, no GPU)
and cheap enough to re-encode texts during search. The async methods run the numpy work in a worker
thread, so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator

from matryo import DimensionMismatchError, StaticEncoder
from matryo.cache import load_encoder
from matryo.errors import InvalidTypeError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MatryoEmbeddings"]


def refuse_bool(value: Any, info: ValidationInfo) -> Any:
    """A ``mode="before"`` validator for integer fields: ``True`` is no width or count (pydantic takes it as 1)."""
    if isinstance(value, bool):
        msg = f"{info.field_name} must be a positive integer; found {value!r}."
        raise InvalidTypeError(msg)
    return value


_ENCODER_FIELDS = frozenset({"model", "revision", "max_length", "truncate_dim"})
"""Fields the encoder (or the default ``truncate_dim``) depends on: changing one rebuilds the instance."""


class MatryoEmbeddings(BaseModel, Embeddings):
    """Embed texts with a static (token-table) model, optionally truncated to a Matryoshka prefix.

    The encoder is loaded once per process (``matryo.cache.load_encoder``) and shared by every instance
    with the same ``model``, ``revision`` and ``max_length``, so building many instances is cheap.

    The fields may be changed after construction, as on other LangChain embeddings: assigning ``model``,
    ``revision``, ``max_length`` or ``truncate_dim`` (or ``model_copy(update=...)`` with them) validates the new
    settings and loads their encoder exactly as the constructor does, so the object, its copies and its pickles
    always embed alike. Invalid settings raise and leave the object unchanged.

    Example:
        >>> from langchain_matryo import MatryoEmbeddings
        >>> embeddings = MatryoEmbeddings()  # the embedded default model, offline
        >>> vector = embeddings.embed_query("how do I read a gzip file")
        >>> short = MatryoEmbeddings(truncate_dim=128)  # 128-d vectors for a cheap first-pass index

    Raises:
        matryo.ModelNotFoundError: If ``model`` is neither an existing folder nor a hub id.
        matryo.ModelFormatError: If the folder holds no readable static model.
        matryo.DimensionMismatchError: If ``truncate_dim`` is larger than the model's width.
    """

    model: str | None = None
    """A local model folder, a hub id (e.g. ``"sentence-transformers/static-retrieval-mrl-en-v1"``), or
    ``None`` for matryo's embedded default model."""

    revision: str | None = None
    """Hub revision (branch, tag or commit); hub ids only."""

    truncate_dim: int | None = Field(default=None, ge=1)
    """Keep only the first ``truncate_dim`` dimensions (a Matryoshka prefix, re-normalised). ``None`` = the
    model's output width, as in sentence-transformers: when the model folder's
    ``config_sentence_transformers.json`` stores a default ``truncate_dim`` (:attr:`StaticEncoder.output_dim`),
    the constructor sets this field to it, so copies and pickles keep the width; otherwise ``None`` stays and
    means the full width. Build a two-stage retriever's first-pass store with a truncated instance."""

    normalize: bool = True
    """L2-normalise each vector (after truncation). Empty texts always give an all-zero vector."""

    max_length: int | None = Field(default=None, ge=1)
    """Cut every text at this many tokens, overriding the truncation stored in the model's tokenizer."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), validate_assignment=True)

    _encoder: StaticEncoder = PrivateAttr()

    @field_validator("model", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    _no_bool = field_validator("truncate_dim", "max_length", mode="before")(refuse_bool)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Loaded here rather than in a validator so that matryo's own errors reach the caller unwrapped.
        encoder = load_encoder(self.model, revision=self.revision, max_length=self.max_length)
        if self.truncate_dim is not None and self.truncate_dim > encoder.dim:
            msg = (
                f"truncate_dim={self.truncate_dim} is larger than the model's {encoder.dim} dimensions "
                f"({encoder.name_or_path}). Pass truncate_dim <= {encoder.dim}, or None for the full width."
            )
            raise DimensionMismatchError(msg)
        if self.truncate_dim is None and encoder.output_dim != encoder.dim:
            # The folder's default width, as sentence-transformers uses it. Written past __setattr__ (which would
            # rebuild) and not marked as set (an explicit None neither), so that a later change of model derives
            # the new model's default instead of keeping this one.
            self.__dict__["truncate_dim"] = encoder.output_dim
            self.__pydantic_fields_set__.discard("truncate_dim")  # also when given as truncate_dim=None
        self._encoder = encoder

    def _rebuilt(self, update: Mapping[str, Any]) -> Self:
        """A new instance from the explicitly set fields plus ``update``, validated and loaded by ``__init__``."""
        settings = {name: getattr(self, name) for name in self.model_fields_set}
        return type(self)(**{**settings, **update})

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning a setting the encoder depends on rebuilds the instance (validation and encoder included)."""
        if name not in _ENCODER_FIELDS:
            super().__setattr__(name, value)
            return
        fresh = self._rebuilt({name: value})  # raises (and changes nothing) on invalid settings
        self.__dict__.update(fresh.__dict__)
        object.__setattr__(self, "__pydantic_fields_set__", set(fresh.model_fields_set))
        self._encoder = fresh._encoder

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Copy; an ``update`` is validated and its encoder loaded as by the constructor (pydantic's does neither).

        Args:
            update: New field values; unknown names and invalid values raise as in the constructor.
            deep: Ignored when ``update`` is given (the settings are plain values and the encoder is shared).

        Returns:
            The copy.
        """
        if update:
            return self._rebuilt(update)
        return super().model_copy(deep=deep)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle the settings only; the encoder is loaded again (once per process) on unpickling."""
        state = super().__getstate__()
        private = {k: v for k, v in (state.get("__pydantic_private__") or {}).items() if k != "_encoder"}
        return {**state, "__pydantic_private__": private}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._encoder = load_encoder(self.model, revision=self.revision, max_length=self.max_length)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> MatryoEmbeddings:
        """A copy sharing the (read-only, thread-safe) encoder; the settings are plain values."""
        return self.model_copy()

    @property
    def encoder(self) -> StaticEncoder:
        """The shared :class:`matryo.StaticEncoder` (full width; truncation is applied per call)."""
        return self._encoder

    @property
    def dim(self) -> int:
        """Width of the vectors this instance returns (``truncate_dim``, else the model's full width)."""
        return self.truncate_dim or self._encoder.dim

    def _embed(self, texts: list[str]) -> list[list[float]]:
        if isinstance(texts, str):
            msg = "embed_documents expects a list of str, got a single str; use embed_query for one text."
            raise InvalidTypeError(msg)
        items = list(texts)
        if not items:
            return []
        vectors = self._encoder.encode(items, truncate_dim=self.dim, normalize=self.normalize)
        rows: list[list[float]] = vectors.tolist()
        return rows

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents.

        Args:
            texts: The texts; an empty list gives an empty list, an empty text an all-zero vector.

        Returns:
            One list of ``dim`` Python floats per text.

        Raises:
            TypeError: If ``texts`` is a single str or an item is not a str (the message names its index).
        """
        return self._embed(texts)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query.

        Args:
            text: The query; an empty query gives an all-zero vector.

        Returns:
            ``dim`` Python floats.

        Raises:
            TypeError: If ``text`` is not a str.
        """
        if not isinstance(text, str):
            msg = f"embed_query expects a str, got {type(text).__name__}: {text!r:.60}."
            raise InvalidTypeError(msg)
        return self._embed([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents in a worker thread (the event loop keeps running).

        Args:
            texts: As for :meth:`embed_documents`.

        Returns:
            As for :meth:`embed_documents`.
        """
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed one query in a worker thread (the event loop keeps running).

        Args:
            text: As for :meth:`embed_query`.

        Returns:
            As for :meth:`embed_query`.
        """
        return await asyncio.to_thread(self.embed_query, text)
