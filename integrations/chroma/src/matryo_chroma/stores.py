"""Where a :class:`~matryo_chroma.TwoStageCollection` keeps the full-dimension vectors it rescores with.

Chroma allows one dense vector index per collection, so the first-pass collection holds the truncated
vectors and the full vectors live in one of three places (measured in ``benchmarks/bench_chroma.py``):

* ``"metadata"``: each record's full vector as a base64 string of ``float32``/``float16``/``int8`` codes in
  its own metadata (key ``matryo:full``). One Chroma write per record, so the two can never disagree, and
  the first-pass query returns the vectors with the candidates (no second round trip). int8 codes carry their
  own scales (:class:`BlockInt8Codec`), so writers share no state.
* ``"sibling"``: a second collection ``<name>__matryo_full`` with the same ids and the full float32 vectors.
  Two writes per batch: the sibling is written first and rolled back if the first-pass write fails.
* ``"documents"``: nothing extra is stored; the candidates' documents are re-encoded at query time (the
  model is static, so this is cheap for ordinary documents). Needs documents, not hand-made embeddings.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matryo.errors import DimensionMismatchError
from matryo.quantize import Codec, codec_from_config, make_codec
from matryo.vectors import as_finite_matrix

__all__ = [
    "FULL_KEY",
    "RESERVED_PREFIX",
    "SIBLING_SUFFIX",
    "STORES",
    "BlockInt8Codec",
    "decode_b64",
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
    codes = np.ascontiguousarray(codec.encode(vectors))
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in codes]


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


class BlockInt8Codec(Codec):
    """Self-describing int8 codes: one float32 scale per block of 32 dimensions, stored in front of the codes.

    Each block of ``block`` dimensions is scaled by its own ``max |x| / 127`` and rounded to ``-127..127``
    (the ``Q8_0`` layout of GGML). A code is ``4 * ceil(dim / block)`` bytes of little-endian float32 scales
    followed by ``dim`` int8 values, so it decodes on its own: there are no collection-wide ranges to
    calibrate, widen, share between writers or re-encode. Measured on SciFact with the default 512-d model, the
    round trip costs at most ``1 - cos = 2e-5`` (full vector) and ``3e-5`` (a 64-d prefix), less than the
    per-dimension ranges of :class:`matryo.quantize.Int8Codec` (``3e-5``/``4e-5``), for 12.5% more bytes.

    Args:
        dim: Width of the vectors.
        block: Dimensions per scale.
    """

    name: ClassVar[str] = "int8-blocks"
    code_dtype: ClassVar[type[np.generic]] = np.uint8

    def __init__(self, dim: int, block: int = 32) -> None:
        super().__init__(dim)
        self.block = int(block)
        self.blocks = math.ceil(self.dim / self.block)

    @property
    def bytes_per_vector(self) -> int:
        """Bytes of one code: the float32 scales, then one int8 per dimension."""
        return 4 * self.blocks + self.dim

    def _blocked(self, matrix: NDArray[np.float32]) -> NDArray[np.float32]:
        pad = self.blocks * self.block - self.dim
        padded = np.pad(matrix, ((0, 0), (0, pad))) if pad else matrix
        return padded.reshape(matrix.shape[0], self.blocks, self.block)

    def encode(self, vectors: ArrayLike) -> NDArray[np.uint8]:
        """Encode float vectors as scales + int8 codes.

        Args:
            vectors: A ``(n, dim)`` float array (or one ``(dim,)`` vector).

        Returns:
            A ``(n, bytes_per_vector)`` uint8 array.

        Raises:
            DimensionMismatchError: If the vectors are not ``dim`` wide.
            NonFiniteVectorError: If a value is NaN or infinite.
        """
        matrix = as_finite_matrix(vectors, "vectors to encode").astype(np.float32, copy=False)
        if matrix.shape[1] != self.dim:
            msg = f"The vectors to encode have {matrix.shape[1]} dimensions but this codec expects {self.dim}."
            raise DimensionMismatchError(msg)
        blocked = self._blocked(matrix)
        scales = (np.abs(blocked).max(axis=2) / np.float32(127.0)).astype("<f4")
        safe = np.where(scales > 0, scales, np.float32(1.0))[:, :, None]
        levels = np.clip(np.rint(blocked / safe), -127, 127).astype(np.int8).reshape(matrix.shape[0], -1)
        out = np.empty((matrix.shape[0], self.bytes_per_vector), dtype=np.uint8)
        out[:, : 4 * self.blocks] = scales.view(np.uint8).reshape(matrix.shape[0], -1)
        out[:, 4 * self.blocks :] = levels[:, : self.dim].view(np.uint8)
        return out

    def decode(self, codes: ArrayLike) -> NDArray[np.float32]:
        """Decode scales + int8 codes back to float32 vectors.

        Args:
            codes: A ``(n, bytes_per_vector)`` uint8 array from :meth:`encode`.

        Returns:
            A ``(n, dim)`` float32 array.
        """
        raw = np.ascontiguousarray(np.asarray(codes, dtype=np.uint8).reshape(-1, self.bytes_per_vector))
        scales = np.ascontiguousarray(raw[:, : 4 * self.blocks]).view("<f4").astype(np.float32)
        levels = raw[:, 4 * self.blocks :].view(np.int8).astype(np.float32)
        per_dim = np.repeat(scales, self.block, axis=1)[:, : self.dim]
        return np.asarray(levels * per_dim, dtype=np.float32)

    def to_config(self) -> dict[str, Any]:
        """Return the codec as a JSON-serialisable dict (:func:`full_codec_from_config` reads it back)."""
        return {"codec": self.name, "dim": self.dim, "block": self.block}

    def __repr__(self) -> str:
        return f"BlockInt8Codec(dim={self.dim}, block={self.block})"


def full_codec(name: str, dim: int) -> Codec:
    """The codec a two-stage collection writes its full vectors with (``int8`` = :class:`BlockInt8Codec`).

    Args:
        name: ``"float32"``, ``"float16"`` or ``"int8"``.
        dim: Width of the full vectors.

    Returns:
        The codec.
    """
    return BlockInt8Codec(dim) if name == "int8" else make_codec(name, dim)


def full_codec_from_config(config: Mapping[str, Any]) -> Codec:
    """Rebuild a codec stored in a collection's ``matryo:codec`` metadata, including :class:`BlockInt8Codec`.

    Args:
        config: The stored dict.

    Returns:
        The codec; an ``"int8"`` config (per-dimension ranges, written before int8 codes carried their own
        scales) gives a :class:`matryo.quantize.Int8Codec`, used to read the codes written then.
    """
    if isinstance(config, Mapping) and config.get("codec") == BlockInt8Codec.name:
        return BlockInt8Codec(int(config["dim"]), int(config.get("block", 32)))
    return codec_from_config(config)
