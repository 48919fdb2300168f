"""matryo: the fastest encoder for static token-embedding models, with Matryoshka two-stage search."""

from __future__ import annotations

from matryo.encoder import DEFAULT_MODEL_PATH, StaticEncoder
from matryo.errors import (
    DimensionMismatchError,
    MatryoError,
    MissingExtraError,
    ModelFormatError,
    ModelNotFoundError,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL_PATH",
    "DimensionMismatchError",
    "MatryoError",
    "MissingExtraError",
    "ModelFormatError",
    "ModelNotFoundError",
    "StaticEncoder",
    "__version__",
]
