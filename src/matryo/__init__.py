"""matryo: the fastest encoder for static token-embedding models, with Matryoshka two-stage search."""

from __future__ import annotations

from matryo.encoder import DEFAULT_MODEL_PATH, StaticEncoder
from matryo.errors import (
    DataNotFoundError,
    DimensionMismatchError,
    IncompleteFolderError,
    InvalidArgumentError,
    InvalidTypeError,
    MatryoError,
    MissingExtraError,
    MissingVectorError,
    ModelAccessError,
    ModelFormatError,
    ModelMismatchError,
    ModelNotFoundError,
    NonFiniteVectorError,
    PickleWeightsError,
    StoreFormatError,
    StoreWriteError,
)
from matryo.index import NumpyIndex
from matryo.search import DEFAULT_RESCORE_MULTIPLIER, DEFAULT_TRUNCATE_DIM, SearchHits, rescore, two_stage_search
from matryo.vectors import matryoshka_dims, truncate

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL_PATH",
    "DEFAULT_RESCORE_MULTIPLIER",
    "DEFAULT_TRUNCATE_DIM",
    "DataNotFoundError",
    "DimensionMismatchError",
    "IncompleteFolderError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "MatryoError",
    "MissingExtraError",
    "MissingVectorError",
    "ModelAccessError",
    "ModelFormatError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NonFiniteVectorError",
    "NumpyIndex",
    "PickleWeightsError",
    "SearchHits",
    "StaticEncoder",
    "StoreFormatError",
    "StoreWriteError",
    "__version__",
    "matryoshka_dims",
    "rescore",
    "truncate",
    "two_stage_search",
]
