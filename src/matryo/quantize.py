"""The vector codecs used by two-stage search (Matryoshka truncation itself is in :mod:`matryo.vectors`).

Two kinds of storage meet in a two-stage search (see :mod:`matryo.search`):

* the **first-pass index** holds a short, cheap code per document: a Matryoshka prefix of the
  embedding (``truncate``) kept as ``"float32"``, ``"int8"`` or ``"binary"``;
* the **rescoring store** holds the full-dimension vector as ``"float32"``, ``"float16"`` or
  ``"int8"`` (or nothing at all: the texts are re-encoded on the fly, see
  :class:`matryo.index.NumpyIndex`).

Every codec has the same small surface: ``encode`` (float vectors to codes), ``decode`` (codes back to
approximate float vectors), ``similarity`` (float queries against codes; higher is closer),
``bytes_per_vector``, and ``to_config``/:func:`codec_from_config` (a JSON-serialisable dict, so
int8 ranges travel with the data they quantized).

int8 uses per-dimension ranges measured on a calibration sample and **clips before the cast**, so a
value outside the calibrated range saturates instead of wrapping around (sentence-transformers
issue #3159); a dimension whose calibration values are all equal maps to a single code and never
divides by zero (issue #2837). Binary keeps the sign of each dimension, packed 8 per byte with
``np.packbits``, and compares codes by Hamming distance. ``"int8-blocks"`` (:class:`BlockInt8Codec`) is int8
with one scale per 32 dimensions stored in each code, so it needs no calibration and codes written by
different processes never disagree (the Chroma adapter stores its int8 full vectors this way).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matryo.errors import (
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteVectorError,
)
from matryo.vectors import as_finite_matrix, as_float32, as_matrix

__all__ = [
    "CODEC_NAMES",
    "MIN_CALIBRATION_SIZE",
    "BinaryCodec",
    "BlockInt8Codec",
    "Codec",
    "CodecName",
    "Float16Codec",
    "Float32Codec",
    "Int8Codec",
    "codec_from_config",
    "make_codec",
]

CodecName = Literal["float32", "float16", "int8", "binary", "int8-blocks"]
"""Names accepted by :func:`make_codec`."""

CODEC_NAMES: tuple[str, ...] = ("float32", "float16", "int8", "binary", "int8-blocks")
"""Every codec name: the four of the first-pass and rescoring stores, cheapest-to-compute first, then
``"int8-blocks"`` (self-describing int8 codes, used by the Chroma adapter's full vectors)."""

MIN_CALIBRATION_SIZE = 100
"""Fewer calibration vectors than this make :meth:`Int8Codec.calibrate` warn: the ranges are noisy."""

COVER_TOLERANCE = 1e-6
"""Fraction of a dimension's span by which :meth:`Int8Codec.covering` lets values pass its ranges unwidened."""
_SCORE_CHUNK = 1 << 22  # elements of a (queries x corpus x width) temporary kept in memory at once


def _check_width(array: NDArray[Any], dim: int, what: str) -> None:
    if array.shape[1] != dim:
        msg = (
            f"{what} have {array.shape[1]} dimensions but this codec expects {dim}. "
            f"Encode them with the same model and truncate_dim ({dim}) as the stored vectors."
        )
        raise DimensionMismatchError(msg)


class Codec:
    """Base class of the vector codecs: float vectors in, compact codes out.

    Attributes:
        name: The codec's name, as accepted by :func:`make_codec`.
        dim: The width of the float vectors this codec encodes.
    """

    name: ClassVar[str] = ""
    code_dtype: ClassVar[type[np.generic]] = np.float32

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            msg = f"A codec's dim must be a positive integer; found {dim!r}."
            raise InvalidArgumentError(msg)
        self.dim = int(dim)

    @property
    def bytes_per_vector(self) -> int:
        """Bytes one encoded vector takes (the payload only, no ids or index overhead)."""
        return self.dim * np.dtype(self.code_dtype).itemsize

    @property
    def code_width(self) -> int:
        """Values (of ``code_dtype``) in one code: ``dim``, or the packed bytes of binary and int8-blocks codes."""
        return self.bytes_per_vector // np.dtype(self.code_dtype).itemsize

    def _code_matrix(self, codes: ArrayLike) -> NDArray[Any]:
        """``codes`` as a ``(n, code_width)`` array: one code per row (a 1-D input is one or more whole codes)."""
        array = np.asarray(codes)
        width = self.code_width
        if array.ndim == 1 and array.shape[0] % width == 0:
            return array.reshape(-1, width)
        if array.ndim != 2 or array.shape[1] != width:
            msg = (
                f"Expected {type(self).__name__} codes of {width} values each, a (n, {width}) array as encode() "
                f"returns; found shape {array.shape}. Decode codes with the codec (and dim) that wrote them."
            )
            raise DimensionMismatchError(msg)
        return array

    def encode(self, vectors: ArrayLike) -> NDArray[Any]:
        """Encode float vectors into codes.

        Args:
            vectors: A ``(n, dim)`` float array (or one ``(dim,)`` vector, encoded as one row).

        Returns:
            A ``(n, code_width)`` array of codes.

        Raises:
            DimensionMismatchError: If the vectors are not ``dim`` wide.
            NonFiniteVectorError: If a value is NaN or infinite, or beyond the code type's range (float16).
        """
        matrix = as_finite_matrix(vectors, "vectors to encode")
        _check_width(matrix, self.dim, "The vectors to encode")
        with np.errstate(over="ignore"):
            codes = matrix.astype(self.code_dtype)
        if not np.isfinite(codes).all():
            rows = np.flatnonzero(~np.isfinite(codes).all(axis=1))
            largest = float(np.finfo(np.dtype(self.code_dtype)).max)
            msg = (
                f"{rows.size} vector(s) to encode (rows {rows[:5].tolist()}) hold values beyond {self.name}'s range "
                f"(+-{largest:g}); normalise the vectors first (cosine needs only their direction) or use the "
                "float32 codec."
            )
            raise NonFiniteVectorError(msg)
        return codes

    def decode(self, codes: ArrayLike) -> NDArray[np.float32]:
        """Decode codes back into (approximate) float32 vectors of width ``dim``.

        Args:
            codes: What :meth:`encode` returned.

        Returns:
            A ``(n, dim)`` float32 array.
        """
        return self._code_matrix(codes).astype(np.float32, copy=False)

    def similarity(self, queries: ArrayLike, codes: ArrayLike) -> NDArray[np.float32]:
        """Score float queries against stored codes (higher is closer).

        For float and int8 codes this is the dot product with the decoded vectors (cosine when both
        sides are unit length); for binary codes it is ``dim - 2 * hamming``.

        Args:
            queries: A ``(q, dim)`` float array (or one ``(dim,)`` vector).
            codes: A ``(n, code_width)`` array from :meth:`encode`.

        Returns:
            A ``(q, n)`` float32 score matrix.

        Raises:
            DimensionMismatchError: If the queries are not ``dim`` wide.
        """
        matrix = as_matrix(queries, "queries")
        _check_width(matrix, self.dim, "The query vectors")
        code_matrix = self._code_matrix(codes)
        out = np.empty((matrix.shape[0], code_matrix.shape[0]), dtype=np.float32)
        rows = max(1, _SCORE_CHUNK // max(1, self.dim))  # decode a block at a time, not the whole store
        for start in range(0, code_matrix.shape[0], rows):
            out[:, start : start + rows] = matrix @ self.decode(code_matrix[start : start + rows]).T
        return out

    def to_config(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict that :func:`codec_from_config` turns back into this codec."""
        return {"codec": self.name, "dim": self.dim}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class Float32Codec(Codec):
    """Plain float32 vectors: exact, 4 bytes per dimension."""

    name = "float32"
    code_dtype = np.float32

    def similarity(self, queries: ArrayLike, codes: ArrayLike) -> NDArray[np.float32]:
        """Dot products of float queries with the stored float32 vectors (one matrix product, no copy).

        Args:
            queries: A ``(q, dim)`` float array (or one ``(dim,)`` vector).
            codes: A ``(n, dim)`` float32 array from :meth:`encode`.

        Returns:
            A ``(q, n)`` float32 score matrix.

        Raises:
            DimensionMismatchError: If the queries are not ``dim`` wide.
        """
        matrix = as_matrix(queries, "queries")
        _check_width(matrix, self.dim, "The query vectors")
        return np.asarray(matrix @ self.decode(codes).T, dtype=np.float32)


class Float16Codec(Codec):
    """float16 vectors: 2 bytes per dimension, ~3 significant digits; scored in float32."""

    name = "float16"
    code_dtype = np.float16


def _int8_codes(codes: ArrayLike) -> NDArray[Any]:
    """``codes`` as int8 codes, reading uint8 as int8 bytes.

    uint8 codes are int8 codes read back from a byte buffer; other integer arrays (e.g. from a JSON list) and float
    arrays of whole numbers (codes kept in a float vector column) must hold values in -128..127.

    Raises:
        InvalidTypeError: If the codes are not integers.
        InvalidArgumentError: If an integer code is outside -128..127.
    """
    array = np.asarray(codes)
    if array.dtype == np.int8:
        return array
    if array.dtype == np.uint8:
        return array.view(np.int8)
    if array.dtype.kind == "f":  # codes kept in a float vector column: whole numbers in range decode
        with np.errstate(invalid="ignore"):
            whole = bool(np.isfinite(array).all()) and np.array_equal(array, np.rint(array))
        if whole and (array.size == 0 or (array.min() >= -128 and array.max() <= 127)):
            array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        other = " holding other values (fractions, NaN, inf or out of range)" if array.dtype.kind == "f" else ""
        msg = (
            f"Expected int8 codes from Int8Codec.encode() (whole numbers in -128..127); found an array of dtype "
            f"{array.dtype}{other}."
        )
        raise InvalidTypeError(msg)
    if array.size and (array.min() < -128 or array.max() > 127):
        msg = (
            f"Expected int8 codes (-128..127) from Int8Codec.encode(); found {array.dtype} values from {array.min()} "
            f"to {array.max()}. Read stored codes back as int8 (e.g. np.frombuffer(blob, dtype=np.int8))."
        )
        raise InvalidArgumentError(msg)
    return array


def _bounds(values: ArrayLike, what: str) -> NDArray[np.float32]:
    """Per-dimension int8 bounds as a 1-D float32 array: a number is one dimension, ``(1, dim)`` is ``(dim,)``.

    Strings and ragged lists get matryo errors; a ``(2, 2)`` table is refused (it was flattened into 4 dimensions).
    """
    array = as_float32(np.atleast_1d(values) if isinstance(values, (int, float, np.number)) else values, what)
    if array.ndim > 1 and any(size != 1 for size in array.shape[:-1]):
        msg = f"{what} must hold one bound per dimension (a 1-D array); found shape {array.shape}."
        raise DimensionMismatchError(msg)
    return array.reshape(-1)


class Int8Codec(Codec):
    """int8 codes with per-dimension ranges: 1 byte per dimension.

    Each dimension ``j`` maps ``[minimums[j], maximums[j]]`` linearly onto ``[-128, 127]``; values outside
    the range are clipped first, so they saturate and never wrap. A constant dimension (``min == max``)
    uses a step of 1 and decodes back to its constant.

    Build one with :meth:`calibrate` on a sample of the vectors it will store (a few thousand is plenty),
    and keep :meth:`to_config` with the codes: the ranges are needed to decode them.

    Args:
        minimums: Per-dimension lower bounds, shape ``(dim,)``.
        maximums: Per-dimension upper bounds, shape ``(dim,)``, each ``>=`` its minimum.
    """

    name = "int8"
    code_dtype = np.int8

    def __init__(self, minimums: ArrayLike, maximums: ArrayLike) -> None:
        low, high = _bounds(minimums, "minimums"), _bounds(maximums, "maximums")
        if low.shape != high.shape:
            msg = f"minimums and maximums must have the same length; found {low.shape[0]} and {high.shape[0]}."
            raise DimensionMismatchError(msg)
        with np.errstate(over="ignore", invalid="ignore"):
            span = high - low  # finite ends can still be too far apart: [-2e38, 2e38] spans past float32's range
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))) or np.any(high < low):
            msg = (
                "int8 ranges must be finite with maximums >= minimums; found other ranges. Measure them with "
                "Int8Codec.calibrate() on finite document vectors."
            )
            raise InvalidArgumentError(msg)
        if not np.all(np.isfinite(span)):
            msg = (
                "int8 ranges must span less than float32's largest value (3.4e38); found a maximum minus minimum "
                "beyond it. Normalise the vectors (matryo.vectors.normalize) before calibrating."
            )
            raise InvalidArgumentError(msg)
        super().__init__(low.shape[0])
        self.minimums = low
        self.maximums = high
        with np.errstate(under="ignore"):
            step = (span / np.float32(255.0)).astype(np.float32)
        # a constant dimension, or one so narrow its step underflows float32: one level, decoded to its minimum
        self.steps = np.where(step > 0, step, np.float32(1.0)).astype(np.float32)

    @classmethod
    def calibrate(cls, sample: ArrayLike, *, warn: bool = True) -> Int8Codec:
        """Measure per-dimension ranges on a sample of the vectors to be stored.

        Args:
            sample: A ``(n, dim)`` float array; use the documents (not one query: a single vector gives
                zero-width ranges).
            warn: Warn about a small sample (off for stores that widen the ranges with :meth:`covering`).

        Returns:
            A calibrated codec.

        Raises:
            ValueError: If the sample is empty.
            NonFiniteVectorError: If the sample holds NaN or inf (a ``ValueError``).

        Warns:
            UserWarning: If the sample has fewer than :data:`MIN_CALIBRATION_SIZE` vectors.
        """
        matrix = as_finite_matrix(sample, "calibration sample")
        if matrix.shape[0] == 0:
            msg = "Cannot calibrate int8 ranges on an empty sample: pass at least one vector (ideally >= 100)."
            raise InvalidArgumentError(msg)
        if warn and matrix.shape[0] < MIN_CALIBRATION_SIZE:
            msg = (
                f"int8 ranges calibrated on only {matrix.shape[0]} vectors (expected >= {MIN_CALIBRATION_SIZE}); "
                "values outside the sampled ranges will be clipped. Calibrate on more documents."
            )
            warnings.warn(msg, UserWarning, stacklevel=2)
        return cls(matrix.min(axis=0), matrix.max(axis=0))

    def covering(self, vectors: ArrayLike, *, headroom: float = 0.25) -> Int8Codec:
        """A codec whose ranges also hold ``vectors``: this one if none of them would be clipped.

        "Clipped" means by more than ``COVER_TOLERANCE`` of a dimension's span: a value past a range by float32
        rounding (e.g. from a sample normalised at another scale) is clipped by that much and widens nothing.
        Stores that calibrate on their first batch call this before writing each later batch, so a value
        outside the first batch's ranges widens them instead of saturating; codes written under the old
        ranges must then be re-encoded (:meth:`recode`). Each dimension that grows gets ``headroom`` times
        its new span on the side it grew, so that later batches rarely widen it again.

        Args:
            vectors: A ``(n, dim)`` float array about to be encoded.
            headroom: Extra margin on a widened side, as a fraction of the dimension's new span.

        Returns:
            ``self`` or a wider codec.

        Raises:
            DimensionMismatchError: If the vectors are not ``dim`` wide.
        """
        matrix = as_matrix(vectors)
        _check_width(matrix, self.dim, "The vectors to cover")
        if matrix.shape[0] == 0:
            return self
        low, high = matrix.min(axis=0), matrix.max(axis=0)
        slack = np.float32(COVER_TOLERANCE) * (self.maximums - self.minimums)
        grew_low, grew_high = low < self.minimums - slack, high > self.maximums + slack
        if not (grew_low.any() or grew_high.any()):
            return self
        new_low, new_high = np.minimum(self.minimums, low), np.maximum(self.maximums, high)
        pad = np.float32(headroom) * (new_high - new_low)
        return Int8Codec(np.where(grew_low, new_low - pad, new_low), np.where(grew_high, new_high + pad, new_high))

    def recode(self, codes: ArrayLike, old: Int8Codec) -> NDArray[np.int8]:
        """Re-encode codes written under ``old`` ranges with this codec's (after :meth:`covering`).

        Args:
            codes: A ``(n, dim)`` int8 array encoded by ``old``.
            old: The codec that wrote them.

        Returns:
            A ``(n, dim)`` int8 array for this codec.
        """
        return self.encode(old.decode(codes))

    def encode(self, vectors: ArrayLike) -> NDArray[np.int8]:
        """Quantize float vectors to int8, clipping to the calibrated ranges first.

        Args:
            vectors: A ``(n, dim)`` float array (or one ``(dim,)`` vector).

        Returns:
            A ``(n, dim)`` int8 array.

        Raises:
            DimensionMismatchError: If the vectors are not ``dim`` wide.
            NonFiniteVectorError: If a value is NaN or infinite (it has no int8 code).
        """
        matrix = as_finite_matrix(vectors, "vectors to encode")
        _check_width(matrix, self.dim, "The vectors to encode")
        clipped = np.clip(matrix, self.minimums, self.maximums)
        levels = np.rint((clipped - self.minimums) / self.steps) - 128.0
        return np.asarray(np.clip(levels, -128, 127), dtype=np.int8)

    def decode(self, codes: ArrayLike) -> NDArray[np.float32]:
        """Map int8 codes back to the centre of their float bins.

        Args:
            codes: A ``(n, dim)`` int8 array from :meth:`encode`.

        Returns:
            A ``(n, dim)`` float32 array.
        """
        levels = self._code_matrix(_int8_codes(codes)).astype(np.float32) + np.float32(128.0)
        return np.asarray(levels * self.steps + self.minimums, dtype=np.float32)

    def similarity(self, queries: ArrayLike, codes: ArrayLike) -> NDArray[np.float32]:
        """Dot product of float queries with the decoded codes, without materialising the decoded matrix.

        Args:
            queries: A ``(q, dim)`` float array.
            codes: A ``(n, dim)`` int8 array.

        Returns:
            A ``(q, n)`` float32 score matrix.

        Raises:
            DimensionMismatchError: If the queries are not ``dim`` wide.
        """
        matrix = as_matrix(queries, "queries")
        _check_width(matrix, self.dim, "The query vectors")
        code_matrix = self._code_matrix(_int8_codes(codes))
        # q . (c * step + low') == (q * step) . c + q . low'   with low' = low + 128 * step
        scaled = matrix * self.steps
        offset = matrix @ (self.minimums + np.float32(128.0) * self.steps)
        out = np.empty((matrix.shape[0], code_matrix.shape[0]), dtype=np.float32)
        rows = max(1, _SCORE_CHUNK // max(1, self.dim))
        for start in range(0, code_matrix.shape[0], rows):
            block = code_matrix[start : start + rows].astype(np.float32)
            out[:, start : start + rows] = scaled @ block.T
        out += offset[:, None]
        return out

    def to_config(self) -> dict[str, Any]:
        """Return the codec, including its ranges, as a JSON-serialisable dict."""
        return {
            "codec": self.name,
            "dim": self.dim,
            "minimums": self.minimums.tolist(),
            "maximums": self.maximums.tolist(),
        }


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
        if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
            msg = f"BlockInt8Codec's block (dimensions per scale, 32 by default) must be an integer >= 1: {block!r}."
            raise InvalidArgumentError(msg)
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
        _check_width(matrix, self.dim, "The vectors to encode")
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
        raw = np.ascontiguousarray(self._code_matrix(np.asarray(codes, dtype=np.uint8)))
        scales = np.ascontiguousarray(raw[:, : 4 * self.blocks]).view("<f4").astype(np.float32)
        levels = raw[:, 4 * self.blocks :].view(np.int8).astype(np.float32)
        per_dim = np.repeat(scales, self.block, axis=1)[:, : self.dim]
        return np.asarray(levels * per_dim, dtype=np.float32)

    def to_config(self) -> dict[str, Any]:
        """Return the codec as a JSON-serialisable dict (:func:`codec_from_config` reads it back)."""
        return {"codec": self.name, "dim": self.dim, "block": self.block}

    def __repr__(self) -> str:
        return f"BlockInt8Codec(dim={self.dim}, block={self.block})"


def _popcount_table() -> NDArray[np.uint8]:
    return np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


_POPCOUNT = _popcount_table()


class BinaryCodec(Codec):
    """One bit per dimension (the sign), packed with ``np.packbits``: ``ceil(dim / 8)`` bytes.

    :meth:`similarity` binarises the query the same way and returns ``dim - 2 * hamming``, which ranks
    exactly like Hamming distance (ties included) and approximates ``dim * cosine``.
    """

    name = "binary"
    code_dtype = np.uint8

    @property
    def bytes_per_vector(self) -> int:
        """Bytes one packed code takes: ``ceil(dim / 8)``."""
        return (self.dim + 7) // 8

    def encode(self, vectors: ArrayLike) -> NDArray[np.uint8]:
        """Pack the sign bits (``value > 0``) of each vector.

        Args:
            vectors: A ``(n, dim)`` float array (or one ``(dim,)`` vector).

        Returns:
            A ``(n, ceil(dim / 8))`` uint8 array.

        Raises:
            DimensionMismatchError: If the vectors are not ``dim`` wide.
        """
        matrix = as_finite_matrix(vectors, "vectors to encode")
        _check_width(matrix, self.dim, "The vectors to encode")
        return np.packbits(matrix > 0, axis=1)

    def decode(self, codes: ArrayLike) -> NDArray[np.float32]:
        """Unpack codes to ``+-1 / sqrt(dim)`` vectors (unit length, the sign pattern only).

        Args:
            codes: A ``(n, ceil(dim / 8))`` uint8 array from :meth:`encode`.

        Returns:
            A ``(n, dim)`` float32 array.
        """
        packed = self._code_matrix(np.asarray(codes, dtype=np.uint8))
        bits = np.unpackbits(packed, axis=1, count=self.dim).astype(np.float32)
        return np.asarray((bits * 2.0 - 1.0) / np.float32(math.sqrt(self.dim)), dtype=np.float32)

    def hamming(self, query_codes: ArrayLike, codes: ArrayLike) -> NDArray[np.int32]:
        """Hamming distances between packed query codes and packed stored codes.

        Args:
            query_codes: A ``(q, ceil(dim / 8))`` uint8 array from :meth:`encode`.
            codes: A ``(n, ceil(dim / 8))`` uint8 array from :meth:`encode`.

        Returns:
            A ``(q, n)`` int32 distance matrix.
        """
        width = self.bytes_per_vector
        left = self._code_matrix(np.asarray(query_codes, dtype=np.uint8))
        right = self._code_matrix(np.asarray(codes, dtype=np.uint8))
        # Compare 8 bytes at a time: pad to a multiple of 8 and view as uint64.
        pad = (-width) % 8
        if pad:
            left = np.pad(left, ((0, 0), (0, pad)))
            right = np.pad(right, ((0, 0), (0, pad)))
        left64 = np.ascontiguousarray(left).view(np.uint64)
        right64 = np.ascontiguousarray(right).view(np.uint64)
        mask = None
        if self.dim % 8:  # the last byte's padding bits, which decode ignores, must not count: masked in each XOR
            byte_mask = np.full(width + pad, 0xFF, dtype=np.uint8)
            byte_mask[width - 1] = (0xFF << (8 - self.dim % 8)) & 0xFF
            mask = byte_mask.view(np.uint64)
        out = np.empty((left64.shape[0], right64.shape[0]), dtype=np.int32)
        # The XOR temporary is (queries x corpus x words): bound it on both axes, so one query over a large
        # corpus stays within _SCORE_CHUNK elements too.
        words = left64.shape[1]
        block = max(1, min(right64.shape[0], _SCORE_CHUNK // words))
        rows = max(1, _SCORE_CHUNK // (block * words))
        for start in range(0, left64.shape[0], rows):
            for first in range(0, right64.shape[0], block):
                xor = left64[start : start + rows, None, :] ^ right64[None, first : first + block, :]
                if mask is not None:
                    np.bitwise_and(xor, mask, out=xor)
                out[start : start + rows, first : first + block] = _bit_count(xor).sum(axis=2, dtype=np.int32)
        return out

    def similarity(self, queries: ArrayLike, codes: ArrayLike) -> NDArray[np.float32]:
        """Binarise float queries and score them by ``dim - 2 * hamming`` (higher is closer).

        Args:
            queries: A ``(q, dim)`` float array.
            codes: A ``(n, ceil(dim / 8))`` uint8 array.

        Returns:
            A ``(q, n)`` float32 score matrix.

        Raises:
            DimensionMismatchError: If the queries are not ``dim`` wide.
        """
        scores = self.hamming(self.encode(queries), codes).astype(np.float32)  # in place from here: no float64
        scores *= np.float32(-2.0)
        scores += np.float32(self.dim)
        return scores


def _bit_count(words: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """Population count of each uint64 (numpy >= 2 has ``np.bitwise_count``; older numpy uses a table)."""
    bitwise_count = getattr(np, "bitwise_count", None)
    if bitwise_count is not None:
        return np.asarray(bitwise_count(words), dtype=np.uint8)
    as_bytes = words.view(np.uint8).reshape(*words.shape, 8)
    return np.asarray(_POPCOUNT[as_bytes].sum(axis=-1, dtype=np.uint8), dtype=np.uint8)


_CODECS: dict[str, type[Codec]] = {
    "float32": Float32Codec,
    "float16": Float16Codec,
    "binary": BinaryCodec,
    "int8-blocks": BlockInt8Codec,
}


def make_codec(name: str, dim: int, *, calibration: ArrayLike | None = None) -> Codec:
    """Build a codec by name.

    Args:
        name: One of :data:`CODEC_NAMES`: ``"float32"``, ``"float16"``, ``"int8"``, ``"binary"``,
            ``"int8-blocks"`` (:class:`BlockInt8Codec` with 32 dimensions per scale).
        dim: Width of the float vectors it will encode.
        calibration: For ``"int8"`` only (and required there): a ``(n, dim)`` sample of the vectors to be
            stored, to measure the per-dimension ranges.

    Returns:
        The codec.

    Raises:
        ValueError: If the name is unknown, or ``"int8"`` is asked for without a calibration sample.
        DimensionMismatchError: If the calibration sample is not ``dim`` wide.
    """
    if name == "int8":
        if calibration is None:
            msg = "The int8 codec needs a calibration sample: pass calibration=<(n, dim) array of document vectors>."
            raise InvalidArgumentError(msg)
        sample = as_matrix(calibration, "calibration sample")
        _check_width(sample, dim, "The calibration vectors")
        return Int8Codec.calibrate(sample)
    if not isinstance(name, str) or name not in _CODECS:  # a list was "unhashable type"
        msg = f"Unknown codec {name!r}; expected one of {', '.join(CODEC_NAMES)}."
        raise InvalidArgumentError(msg)
    return _CODECS[name](dim)


def codec_from_config(config: Mapping[str, Any]) -> Codec:
    """Rebuild a codec from :meth:`Codec.to_config` output.

    Args:
        config: The dict (possibly after a JSON round trip).

    Returns:
        An equivalent codec.

    Raises:
        ValueError: If the dict does not describe a known codec (:class:`matryo.errors.InvalidArgumentError`), or
            an int8 config's ``dim`` disagrees with its number of ranges (:class:`DimensionMismatchError`).
    """
    expected = (
        f"expected a dict with keys 'codec' (one of {', '.join(CODEC_NAMES)}) and 'dim', plus 'minimums' and "
        "'maximums' for int8. Pass what Codec.to_config() returned"
    )
    if not isinstance(config, Mapping):
        msg = f"Not a matryo codec config: {expected}; found a {type(config).__name__}."
        raise InvalidArgumentError(msg)
    name = config.get("codec")
    required = ("minimums", "maximums") if name == "int8" else ("dim",)
    if name not in CODEC_NAMES or any(key not in config for key in required):
        msg = f"Not a matryo codec config: {expected}; found keys {sorted(map(str, config))}."
        raise InvalidArgumentError(msg)
    dim: int | None = None
    if "dim" in config:
        raw = config["dim"]
        try:
            dim = int(raw)
            if isinstance(raw, bool) or (isinstance(raw, float) and raw != dim):
                raise ValueError(raw)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: JSON's 1e400 is inf
            msg = f"Not a matryo codec config: 'dim' must be an integer; found {raw!r}."
            raise InvalidArgumentError(msg) from exc
    if name == BlockInt8Codec.name:
        assert dim is not None  # required above
        block = config.get("block", 32)
        if isinstance(block, bool) or not isinstance(block, int):
            msg = f"Not a matryo codec config: 'block' must be an integer; found {block!r}."
            raise InvalidArgumentError(msg)
        return BlockInt8Codec(dim, block)
    if name == "int8":
        codec = Int8Codec(config["minimums"], config["maximums"])
        if dim is not None and dim != codec.dim:
            msg = (
                f"The int8 codec config says dim={dim} but holds {codec.dim} ranges; expected one minimum and one "
                "maximum per dimension. Rebuild the config with Int8Codec.to_config()."
            )
            raise DimensionMismatchError(msg)
        return codec
    assert dim is not None  # required above
    return _CODECS[str(name)](dim)
