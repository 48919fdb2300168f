"""The ``"matryo"`` embedding function for LanceDB.

LanceDB stores an embedding function in the table's schema metadata as its registry alias plus the
keyword arguments that were passed to ``create()`` (class defaults are *not* stored). Build instances with
:func:`matryo_embeddings`, which always passes every semantic parameter, so a table reopened after a
matryo upgrade still embeds exactly as when it was created.

The alias is registered when this module is imported: a process that opens a table written with it must
``import matryo_lancedb`` first, or LanceDB raises ``KeyError: 'matryo'`` on ``search``/``add``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from lancedb.embeddings import TextEmbeddingFunction, register
from numpy.typing import NDArray
from pydantic import PrivateAttr

from matryo import StaticEncoder
from matryo.cache import load_encoder
from matryo.cache import load_recorded as _load_recorded
from matryo.errors import InvalidArgumentError, ModelMismatchError

__all__ = ["ALIAS", "MatryoEmbeddings", "ModelMismatchError", "matryo_embeddings"]

ALIAS = "matryo"
"""The name under which the embedding function is registered (and stored in table metadata)."""


def load_recorded(model: str | None, *, revision: str | None, max_length: int | None) -> StaticEncoder:
    """Load the model a table's schema records (:func:`matryo.cache.load_recorded`: a missing one is named)."""
    advice = (
        "Put that model back at the recorded place (a table keeps using its model's path), or re-embed the texts "
        "into a new table. The stored rows are untouched: vector searches with ready-made query vectors still work."
    )
    return _load_recorded(
        model, owner="This table", where="in its schema", advice=advice, revision=revision, max_length=max_length
    )


@register(ALIAS)
class MatryoEmbeddings(TextEmbeddingFunction):
    """A LanceDB text embedding function backed by a matryo :class:`~matryo.StaticEncoder`.

    Create it with :func:`matryo_embeddings` (or ``get_registry().get("matryo").create(...)`` passing every
    field), never with the constructor. The loaded model is shared per process (:func:`matryo.cache.load_encoder`),
    so the one instance LanceDB builds per vector column on every ``open_table`` costs nothing.

    Attributes:
        model: Local folder or hub id; ``None`` = matryo's embedded default model.
        revision: Hub revision (hub ids only).
        truncate_dim: Matryoshka width of the vectors; ``None`` = the model's full width (``encoder.dim``),
            whatever default width the model folder stores. :func:`matryo_embeddings` resolves the model's
            default width when it builds the function and persists it here, so reopening never changes it.
        normalize: L2-normalise the vectors (after truncation).
        max_length: Token cut-off override; ``None`` keeps the tokenizer's own setting.
        fingerprint: :attr:`StaticEncoder.fingerprint` of the model the table was built with; when set, a
            different model found at ``model`` raises :class:`ModelMismatchError` instead of silently mixing
            vectors, as soon as LanceDB builds the function from the table's schema (``tbl.add``,
            ``tbl.search("text")``, ``tbl.embedding_functions``); vector queries and scans still read the rows.
    """

    model: str | None = None
    revision: str | None = None
    truncate_dim: int | None = None
    normalize: bool = True
    max_length: int | None = None
    fingerprint: str | None = None
    max_retries: int = 0  # a local model fails the same way every time: fail fast, no backoff
    _checked: bool = PrivateAttr(default=False)

    @classmethod
    def create(cls, **kwargs: Any) -> MatryoEmbeddings:
        """Build the function (LanceDB does this from the table's schema metadata); checks ``fingerprint`` now.

        Checking here rather than on first use makes LanceDB's own ``tbl.add`` raise :class:`ModelMismatchError`
        itself: an error raised while LanceDB embeds a batch reaches the caller as ``RuntimeError``.

        Args:
            **kwargs: The fields.

        Returns:
            The function.

        Raises:
            ModelMismatchError: If ``fingerprint`` is set and the model found is another one.
            matryo.ModelNotFoundError: If ``fingerprint`` is set and the model cannot be found.
        """
        instance: MatryoEmbeddings = super().create(**kwargs)
        if instance.fingerprint is not None:
            instance.encoder  # noqa: B018  # loads the (cached) model and checks its fingerprint
        return instance

    @property
    def encoder(self) -> StaticEncoder:
        """The shared, per-process encoder (checked against ``fingerprint`` on first use)."""
        if self.fingerprint is None:  # not a stored table's function: the caller named the model
            encoder = load_encoder(self.model, revision=self.revision, max_length=self.max_length)
        else:
            encoder = load_recorded(self.model, revision=self.revision, max_length=self.max_length)
        if not self._checked:
            if self.fingerprint is not None and encoder.fingerprint != self.fingerprint:
                msg = (
                    f"The model at {encoder.name_or_path!r} has fingerprint {encoder.fingerprint}, but this table was "
                    f"embedded with fingerprint {self.fingerprint}: its vectors would not be comparable. Restore the "
                    "original model (or pin its revision), or re-embed the texts into a new table. The stored rows are "
                    "untouched and still readable."
                )
                raise ModelMismatchError(msg)
            if self.truncate_dim is not None:
                _check_width(self.truncate_dim, encoder)
            self._checked = True
        return encoder

    def compute_query_embeddings_with_retry(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Embed a query; with ``max_retries=0`` errors propagate as they are (LanceDB would wrap them).

        Args:
            *args: As for ``compute_query_embeddings``.
            **kwargs: As for ``compute_query_embeddings``.

        Returns:
            One vector per query.
        """
        if self.max_retries > 0:
            return super().compute_query_embeddings_with_retry(*args, **kwargs)
        return self.compute_query_embeddings(*args, **kwargs)

    def compute_source_embeddings_with_retry(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Embed source texts; with ``max_retries=0`` errors propagate as they are.

        Args:
            *args: As for ``compute_source_embeddings``.
            **kwargs: As for ``compute_source_embeddings``.

        Returns:
            One vector (or ``None``) per text.
        """
        if self.max_retries > 0:
            return super().compute_source_embeddings_with_retry(*args, **kwargs)
        return self.compute_source_embeddings(*args, **kwargs)

    def ndims(self) -> int:
        """Return the vector width, read from the model (no probe text is embedded).

        Returns:
            ``truncate_dim``, or the model's full width (``encoder.dim``) when it is ``None``.
        """
        return self.truncate_dim or self.encoder.dim

    def generate_embeddings(self, texts: list[str] | NDArray[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Embed texts; a ``None`` text gets a ``None`` vector (handled by LanceDB's ``on_bad_vectors``).

        Args:
            texts: The texts, as LanceDB passes them (a list, possibly holding ``None``).
            *args: Ignored (LanceDB's signature).
            **kwargs: Ignored (LanceDB's signature).

        Returns:
            One float32 vector (or ``None``) per text, exactly :meth:`ndims` wide.
        """
        items = texts.tolist() if isinstance(texts, np.ndarray) else list(texts)
        present = [i for i, text in enumerate(items) if text is not None]
        out: list[Any] = [None] * len(items)
        if present:
            vectors = self.encoder.encode(
                [items[i] for i in present], truncate_dim=self.ndims(), normalize=self.normalize
            )
            for row, i in enumerate(present):
                out[i] = vectors[row]
        return out


def _check_width(truncate_dim: int, encoder: StaticEncoder) -> None:
    whole = isinstance(truncate_dim, (int, np.integer)) and not isinstance(truncate_dim, bool)
    if not whole or not 1 <= truncate_dim <= encoder.dim:
        msg = f"truncate_dim must be an int between 1 and the model's width {encoder.dim}; found {truncate_dim!r}."
        raise InvalidArgumentError(msg)


def matryo_embeddings(
    model: str | os.PathLike[str] | None = None,
    *,
    revision: str | None = None,
    truncate_dim: int | None = None,
    normalize: bool = True,
    max_length: int | None = None,
    pin_fingerprint: bool = True,
) -> MatryoEmbeddings:
    """Create the ``"matryo"`` embedding function with every semantic parameter persisted.

    Example:
        >>> from lancedb.pydantic import LanceModel, Vector
        >>> func = matryo_embeddings()  # the embedded default model, offline
        >>> class Doc(LanceModel):
        ...     text: str = func.SourceField()
        ...     vector: Vector(func.ndims()) = func.VectorField()

    Args:
        model: Local folder or hub id; ``None`` = matryo's embedded default model. A local path is stored
            absolute, so the table works from any working directory.
        revision: Hub revision (pin one for hub ids: a moving branch changes the vectors).
        truncate_dim: Matryoshka width; ``None`` = the model's output width, as in sentence-transformers:
            the default ``truncate_dim`` stored in the model folder's ``config_sentence_transformers.json``
            when there is one (:attr:`StaticEncoder.output_dim`), else its full width. The width is resolved
            here and persisted, so a table reopened later embeds at the same width.
        normalize: L2-normalise the vectors.
        max_length: Token cut-off override (``None`` = the tokenizer's own setting).
        pin_fingerprint: Store the model's fingerprint so that a different model at the same path (or a new
            default model after an upgrade) raises :class:`ModelMismatchError` instead of mixing vectors.

    Returns:
        The embedding function (its model is loaded once per process).

    Raises:
        ValueError: If ``truncate_dim`` is outside ``1..dim``.
        matryo.ModelNotFoundError: If the model cannot be found.
    """
    name = _absolute(model)
    encoder = load_encoder(name, revision=revision, max_length=max_length)
    width = encoder.output_dim if truncate_dim is None else truncate_dim
    _check_width(width, encoder)
    width = int(width)  # a numpy int: the config is stored as JSON
    return MatryoEmbeddings.create(
        model=name,
        revision=revision,
        truncate_dim=None if width == encoder.dim else width,  # None = full width, as tables always stored it
        normalize=normalize,
        max_length=max_length,
        fingerprint=encoder.fingerprint if pin_fingerprint else None,
    )


def _absolute(model: str | os.PathLike[str] | None) -> str | None:
    if model is None:
        return None
    text = os.fspath(model)
    path = os.path.expanduser(text)
    return os.path.abspath(path) if os.path.exists(path) else text
