"""Where a :class:`~matryo_chroma.TwoStageCollection` keeps the full-dimension vectors it rescores with.

Chroma allows one dense vector index per collection, so the first-pass collection holds the truncated
vectors and the full vectors live in one of three places (measured in ``benchmarks/bench_chroma.py``):

* ``"metadata"``: each record's full vector as a base64 string of ``float32``/``float16``/``int8`` codes in
  its own metadata (key ``matryo:full``). One Chroma write per record, so the two can never disagree, and
  the first-pass query returns the vectors with the candidates (no second round trip). int8 codes carry their
  own scales (:class:`matryo.quantize.BlockInt8Codec`), so writers share no state.
* ``"sibling"``: a second collection ``<name>__matryo_full`` with the same ids and the full float32 vectors.
  Two writes per batch: the sibling is written first and rolled back if the first-pass write fails.
* ``"documents"``: nothing extra is stored; the candidates' documents are re-encoded at query time (the
  model is static, so this is cheap for ordinary documents). Needs documents, not hand-made embeddings.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matryo.quantize import BlockInt8Codec, Codec, codec_from_config, make_codec

__all__ = [
    "FULL_KEY",
    "RESERVED_PREFIX",
    "SIBLING_SUFFIX",
    "STORES",
    "BlockInt8Codec",
    "decode_b64",
    "codes_b64",
    "encode_b64",
    "full_codec",
    "full_codec_from_config",
]

STORES: tuple[str, ...] = ("metadata", "sibling", "documents")
"""The full-vector stores a two-stage collection can use."""

RESERVED_PREFIX = "matryo:"
"""Record and collection metadata keys starting with this belong to matryo; user metadata may not use them."""

FULL_KEY = "matryo:full"
"""Record metadata key of the base64 full vector (``store="metadata"``)."""

SIBLING_SUFFIX = "__matryo_full"
"""Name suffix of the sibling collection (``store="sibling"``)."""


def encode_b64(codec: Codec, vectors: NDArray[np.float32]) -> list[str]:
    """Encode each row with ``codec`` and return its bytes as base64 text.

    Args:
        codec: The codec (its ``dim`` equals the vectors' width).
        vectors: A ``(n, dim)`` float32 array.

    Returns:
        One ASCII string per row.
    """
    return codes_b64(codec.encode(vectors))


def codes_b64(codes: NDArray[Any]) -> list[str]:
    """Each row of a codec's ``encode`` output as base64 text (see :func:`encode_b64`)."""
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in np.ascontiguousarray(codes)]


def decode_b64(codec: Codec, texts: list[Any]) -> tuple[list[int], NDArray[np.float32]]:
    """Decode base64 codes back to float32 vectors, skipping values that are missing or malformed.

    Args:
        codec: The codec the strings were made with.
        texts: One value per record (``None`` or a non-string when the record has no full vector).

    Returns:
        The positions that decoded, and a ``(len(positions), dim)`` float32 matrix.
    """
    width = codec.bytes_per_vector
    kept: list[int] = []
    chunks: list[bytes] = []
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            continue
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError:
            continue
        if len(raw) == width:
            kept.append(position)
            chunks.append(raw)
    if not kept:
        return [], np.zeros((0, codec.dim), dtype=np.float32)
    codes = np.frombuffer(b"".join(chunks), dtype=codec.code_dtype).reshape(len(kept), -1)
    return kept, np.asarray(codec.decode(codes), dtype=np.float32)


def full_codec(name: str, dim: int) -> Codec:
    """The codec a two-stage collection writes its full vectors with (int8: :class:`~matryo.quantize.BlockInt8Codec`).

    Args:
        name: ``"float32"``, ``"float16"`` or ``"int8"``.
        dim: Width of the full vectors.

    Returns:
        The codec.
    """
    return BlockInt8Codec(dim) if name == "int8" else make_codec(name, dim)


def full_codec_from_config(config: Mapping[str, Any]) -> Codec:
    """Rebuild a codec stored in a collection's ``matryo:codec`` metadata (:func:`matryo.quantize.codec_from_config`).

    Args:
        config: The stored dict.

    Returns:
        The codec; an ``"int8"`` config (per-dimension ranges, written before int8 codes carried their own
        scales) gives a :class:`matryo.quantize.Int8Codec`, used to read the codes written then.
    """
    return codec_from_config(config)
