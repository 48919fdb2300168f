"""``MatryoEmbeddings``: LangChain ``Embeddings`` backed by a matryo static encoder.

A static model is a lookup table averaged over tokens, so embedding is pure numpy (no torch, no GPU)
and cheap enough to re-encode texts during search. The async methods run the numpy work in a worker
thread, so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from matryo import DimensionMismatchError, StaticEncoder
from matryo.cache import load_encoder
from matryo.errors import InvalidTypeError

__all__ = ["MatryoEmbeddings"]


class MatryoEmbeddings(BaseModel, Embeddings):
    """Embed texts with a static (token-table) model, optionally truncated to a Matryoshka prefix.

    The encoder is loaded once per process (``matryo.cache.load_encoder``) and shared by every instance
    with the same ``model``, ``revision`` and ``max_length``, so building many instances is cheap.

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

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    _encoder: StaticEncoder = PrivateAttr()

    @field_validator("model", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

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
            self.truncate_dim = encoder.output_dim  # the folder's default width, as sentence-transformers uses it
        self._encoder = encoder

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
