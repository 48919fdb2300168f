"""The checks and shapes every vector goes through: 2-D float32, finite, L2-normalised, Matryoshka prefixes.

These helpers are shared by the encoder's callers, the codecs of :mod:`matryo.quantize`, the search layer and the
adapters: ``truncate`` cuts a Matryoshka prefix and re-normalises it, ``normalize`` never turns a zero row into NaN,
and ``check_finite`` / ``as_finite`` refuse NaN and inf before they reach an index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matryo.errors import DimensionMismatchError, InvalidArgumentError, InvalidTypeError, NonFiniteVectorError

__all__ = [
    "SCORE_BLOCK_BYTES",
    "as_finite",
    "as_finite_matrix",
    "as_matrix",
    "as_numbers",
    "block_rows",
    "check_finite",
    "matryoshka_dims",
    "normalize",
    "truncate",
    "unit_rows",
]

_SAFE_NORM_LOW, _SAFE_NORM_HIGH = 1e-18, 1e18  # float32 norms computed exactly enough between these
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_WIDE_BLOCK_BYTES = 2**20  # float64 rows normalised per block before their cast to float32

SCORE_BLOCK_BYTES = 64 * 2**20
"""Largest query x document score block (float32) a search holds at once (:mod:`matryo.evaluation`'s dense search
and :class:`matryo.NumpyIndex`'s first pass): 64 MiB, e.g. 1,934 queries against ArguAna's 8,674 documents, or one
query at a time from 16.8M documents on."""


def block_rows(n_docs: int, budget: int | None = None) -> int:
    """Queries scored per block so that the block's float32 score matrix stays under ``budget`` bytes.

    Args:
        n_docs: Documents each query is scored against.
        budget: Bytes for one block (default :data:`SCORE_BLOCK_BYTES`).

    Returns:
        At least 1 (one query's row is always scored, however large the corpus).
    """
    limit = SCORE_BLOCK_BYTES if budget is None else budget
    return max(1, limit // (4 * max(n_docs, 1)))


def _real(values: Any, what: str) -> Any:  # noqa: ANN401
    """``values``, refused if complex: numpy's cast to float32 would drop the imaginary part with only a warning.

    A list or tuple is converted here (once: the caller's own conversion of the array is then a cheap cast).
    """
    if isinstance(values, (list, tuple)):  # e.g. a list of complex arrays: look at what it holds
        try:
            values = np.asarray(values)
        except (TypeError, ValueError):  # ragged or not numbers: the caller's conversion says so
            return values
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind == "c":
        msg = f"{what} must be real numbers; found an array of dtype {dtype}. Pass e.g. np.real(x) or abs(x)."
        raise InvalidTypeError(msg)
    return values


def as_matrix(vectors: ArrayLike, what: str = "vectors") -> NDArray[np.float32]:
    """Return ``vectors`` as a 2-D float32 array (a 1-D input becomes one row)."""
    array = np.asarray(_real(vectors, what), dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        msg = f"{what} must be a 1-D vector or a 2-D (n, dim) array; found an array with shape {array.shape}."
        raise InvalidArgumentError(msg)
    return array


def check_finite(
    vectors: NDArray[np.floating[Any]],
    what: str = "vectors",
    *,
    labels: Sequence[object] | None = None,
    fix: str = "Drop or fix those vectors (for instance re-encode their texts) and try again.",
) -> None:
    """Refuse vectors holding NaN or inf, naming the first bad rows.

    Two reductions over the array (no temporary of its size) when everything is finite, which is the
    common case; the bad rows are only looked for when there are some.

    Args:
        vectors: A ``(n, d)`` float array (or one ``(d,)`` vector). A float64 value beyond float32's range (which
            every store holds) counts as infinite, whether it is still float64 or already cast (to inf).
        what: How the message names the vectors.
        labels: Optional names of the rows (e.g. document ids) to quote instead of row numbers.
        fix: The last sentence of the message: how to fix it.

    Raises:
        NonFiniteVectorError: If any value is NaN or infinite (a ``ValueError``).
    """
    if vectors.size == 0:
        return
    wide = vectors.dtype.kind == "f" and vectors.dtype.itemsize > 4
    low, high = vectors.min(), vectors.max()
    if np.isfinite(low) and np.isfinite(high) and (not wide or (low >= -_FLOAT32_MAX and high <= _FLOAT32_MAX)):
        return
    rows = vectors.reshape(1, -1) if vectors.ndim == 1 else vectors.reshape(vectors.shape[0], -1)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(np.abs(rows) <= _FLOAT32_MAX).all(axis=1))
    shown = [labels[i] for i in bad[:5]] if labels is not None else bad[:5].tolist()
    more = f" and {bad.size - 5} more" if bad.size > 5 else ""
    where = "ids" if labels is not None else "rows"
    msg = (
        f"Expected finite {what}; found NaN or inf (or a value beyond float32's range, about 3.4e38) in "
        f"{bad.size} of {rows.shape[0]} vector(s), {where} {shown!r}{more}. {fix}"
    )
    raise NonFiniteVectorError(msg)


def as_finite(
    values: ArrayLike,
    what: str = "vectors",
    *,
    fix: str = "Drop or fix those vectors (for instance re-encode their texts) and try again.",
) -> NDArray[np.float32]:
    """``values`` as a float32 array, refusing NaN, inf and values beyond float32's range (see :func:`check_finite`).

    Args:
        values: An array-like of floats, of any shape.
        what: How the error message names the values.
        fix: The last sentence of that message: how to fix it.

    Returns:
        A float32 array (not a copy when ``values`` already is one).

    Raises:
        NonFiniteVectorError: If a value is NaN or infinite, or too large for float32.
    """
    array = as_float32(values, what)
    check_finite(array, what, fix=fix)
    return array


def as_float32(values: ArrayLike, what: str = "vectors") -> NDArray[np.float32]:
    """``values`` as a float32 array of one or more dimensions, leaving NaN and inf to :func:`check_finite`.

    Args:
        values: An array-like of real numbers.
        what: How the error message names the values.

    Returns:
        A float32 array (not a copy when ``values`` already is one); a float64 value beyond float32's range
        becomes inf.

    Raises:
        InvalidTypeError: If ``values`` is None or complex.
        InvalidArgumentError: If it is a single number, or not a rectangular array of numbers (ragged rows, strings).
    """
    if values is None:
        msg = f"{what} must be an array of numbers; found None."
        raise InvalidTypeError(msg)
    values = _real(values, what)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # check_finite reports an overflowing cast (inf)
            array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:  # ragged rows, strings: numpy's own words name neither
        msg = f"{what} must be a rectangular array of numbers; {exc}."
        raise InvalidArgumentError(msg) from exc  # a ValueError, as numpy's own error was
    if array.ndim == 0:
        msg = f"{what} must be a vector or a matrix of numbers; found a single number {values!r}."
        raise InvalidArgumentError(msg)
    return array


def as_finite_matrix(vectors: ArrayLike, what: str = "vectors") -> NDArray[np.float32]:
    """``vectors`` as a 2-D float32 array (one row for a 1-D input), refusing NaN, inf and float32 overflow.

    Args:
        vectors: A ``(n, d)`` array or one ``(d,)`` vector.
        what: How error messages name the vectors.

    Returns:
        A float32 array (not a copy when ``vectors`` already is one).

    Raises:
        NonFiniteVectorError: If a value is NaN or infinite, or too large for float32.
    """
    return as_matrix(as_finite(vectors, what), what)


def normalize(vectors: ArrayLike) -> NDArray[np.float32]:
    """L2-normalise each row; all-zero rows stay zero (never NaN).

    Args:
        vectors: A ``(n, d)`` array or one ``(d,)`` vector.

    Returns:
        A new float32 array of the same shape with unit-length (or zero) rows.

    Raises:
        InvalidTypeError: If ``vectors`` is None or complex.
        InvalidArgumentError: If it is not a 1-D or 2-D array of numbers (a scalar, 3-D, strings, ragged rows).
    """
    return _normalized(as_numbers(vectors))


def unit_rows(
    values: ArrayLike,
    what: str = "vectors",
    *,
    labels: Sequence[object] | None = None,
    fix: str = "Drop or fix those vectors (for instance re-encode their texts) and try again.",
) -> NDArray[np.float32]:
    """``values`` L2-normalised row by row as float32, refusing NaN, inf and values beyond float32's range.

    The check and the normalisation read the caller's array once, in its own dtype: a float64 row too small for
    float32 (1e-50) keeps its direction instead of becoming an all-zero, never-returned vector.

    Args:
        values: A ``(n, d)`` array or one ``(d,)`` vector of real numbers (converted once, see :func:`as_numbers`).
        what: How error messages name the values.
        labels: Optional names of the rows (e.g. document ids) for the message; one per row.
        fix: The last sentence of the non-finite message.

    Returns:
        A new float32 array of the same shape with unit-length (or zero) rows.

    Raises:
        InvalidTypeError: If ``values`` is None or complex.
        InvalidArgumentError: If it is not a 1-D or 2-D array of numbers.
        NonFiniteVectorError: If a value is NaN, infinite or beyond float32's range.
    """
    array = as_numbers(values, what)
    check_finite(array, what, labels=labels, fix=fix)
    return _normalized(array)


def as_numbers(values: ArrayLike, what: str = "vectors") -> NDArray[Any]:
    """``values`` as a numeric array of 1 or 2 dimensions, in its own dtype, not copied when it is one already.

    Lists are converted once; bools, objects and strings are cast to float64 (strings that are not numbers fail).

    Raises:
        InvalidTypeError: If ``values`` is None or complex.
        InvalidArgumentError: If it is not a 1-D or 2-D array of numbers (a scalar, 3-D, strings, ragged rows).
    """
    if values is None:
        msg = f"{what} must be an array of numbers; found None."
        raise InvalidTypeError(msg)
    values = _real(values, what)
    try:
        array = np.asarray(values)
        if array.dtype.kind not in "fiu":  # strings, objects, bools: float64 keeps an object array's float scores
            array = array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        msg = f"{what} must be a rectangular array of numbers; {exc}."
        raise InvalidArgumentError(msg) from exc
    if array.ndim == 0:
        msg = f"{what} must be a vector or a matrix of numbers; found a single number {values!r}."
        raise InvalidArgumentError(msg)
    if array.ndim > 2:
        msg = f"{what} must be a 1-D vector or a 2-D (n, dim) array; found an array with shape {array.shape}."
        raise InvalidArgumentError(msg)
    return array


def _fits_float32(array: NDArray[Any]) -> bool:
    """Whether every row's largest magnitude is zero or within the range float32 normalises exactly."""
    if array.size == 0:
        return True
    rows = array.reshape(1, -1) if array.ndim == 1 else array
    with np.errstate(invalid="ignore"):
        largest = np.maximum(rows.max(axis=1), -rows.min(axis=1))
    return bool(np.all((largest == 0) | ((largest > _SAFE_NORM_LOW) & (largest < _SAFE_NORM_HIGH))))


def _normalized(array: NDArray[Any]) -> NDArray[np.float32]:
    """A new float32 array holding the L2-normalised rows of a numeric ``array``.

    A float64 array is normalised before it is cast (with each row first divided by its largest magnitude), so a
    row beyond float32's range, or one so small it would underflow to zero, still becomes a unit vector.
    """
    if array.dtype.kind != "f" or array.dtype.itemsize <= 4 or _fits_float32(array):
        result = np.array(array, dtype=np.float32)
        _normalize_in_place(result)
        return result
    result = np.empty(array.shape, dtype=np.float32)
    rows, out = (array.reshape(1, -1), result.reshape(1, -1)) if array.ndim == 1 else (array, result)
    step = max(1, _WIDE_BLOCK_BYTES // (8 * max(1, rows.shape[1])))  # float64 temporaries stay small
    for start in range(0, rows.shape[0], step):
        block = np.array(rows[start : start + step], dtype=np.float64)
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            largest = np.maximum(block.max(axis=1, initial=0.0), -block.min(axis=1, initial=0.0))[:, None]
            np.divide(block, largest, out=block, where=largest > 0)
            norms = np.linalg.norm(block, axis=1)[:, None]
            np.divide(block, norms, out=block, where=norms > 0)
        out[start : start + step] = block
    return result


def _normalize_in_place(array: NDArray[np.float32]) -> None:
    """L2-normalise the rows of a float32 array in place (no temporary as large as the array)."""
    matrix = array.reshape(1, -1) if array.ndim == 1 else array
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # handled below
        norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))[:, None]
    # float32 squares overflow from about 1.8e19 (the row would divide by inf and become zeros) and lose
    # precision below about 1e-19; such rows (and zero rows) are measured again in float64, which holds both.
    redo = np.flatnonzero(~((norms[:, 0] > _SAFE_NORM_LOW) & (norms[:, 0] < _SAFE_NORM_HIGH)))
    if redo.size:
        wide = matrix[redo].astype(np.float64)
        wide_norms = np.linalg.norm(wide, axis=-1, keepdims=True)
        np.divide(wide, wide_norms, out=wide, where=wide_norms > 0)
        matrix[redo] = wide
        norms[redo] = 1.0  # already divided
    np.divide(matrix, norms, out=matrix, where=norms > 0)


def truncate(vectors: ArrayLike, dim: int | None, *, normalize: bool = True) -> NDArray[np.float32]:
    """Keep the first ``dim`` dimensions (a Matryoshka prefix) and re-normalise.

    A truncated unit vector is no longer unit length, so cosine and dot product disagree until it is
    re-normalised (the Supabase adaptive-retrieval notes make the same point). Zero rows stay zero.

    Args:
        vectors: A ``(n, d)`` array or one ``(d,)`` vector.
        dim: How many leading dimensions to keep, ``1 <= dim <= d``; ``None`` keeps all of them.
        normalize: L2-normalise the kept prefix (the sentence-transformers order: truncate, then
            normalise).

    Returns:
        A new float32 array of shape ``(n, dim)`` (or ``(dim,)`` for a 1-D input).

    Raises:
        ValueError: If ``dim`` is not a positive integer, or ``vectors`` is not a 1-D or 2-D array of numbers
            (an :class:`~matryo.errors.InvalidArgumentError`).
        InvalidTypeError: If ``vectors`` is None or complex.
        DimensionMismatchError: If ``dim`` is larger than the vectors' width.
    """
    array = as_numbers(vectors)  # numbers are converted after the cut (below): a float64 matrix is not copied
    width = array.shape[-1]
    if dim is None:
        dim = width
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        msg = f"truncate_dim must be a positive integer; found {dim!r}. Pass e.g. 128 or None for the full width."
        raise InvalidArgumentError(msg)
    if dim > width:
        msg = (
            f"Cannot truncate {width}-dimensional vectors to {dim} dimensions: expected truncate_dim <= {width}. "
            f"Pass a smaller truncate_dim or None."
        )
        raise DimensionMismatchError(msg)
    if normalize:
        return _normalized(array[..., :dim])
    return np.array(array[..., :dim], dtype=np.float32)


def matryoshka_dims(full_dim: int, *, min_dim: int = 32) -> list[int]:
    """Return the Matryoshka prefix widths worth trying for a model of width ``full_dim``.

    These are the powers of two from ``min_dim`` up to (not including) ``full_dim``, then ``full_dim``
    itself: ``matryoshka_dims(1024) == [32, 64, 128, 256, 512, 1024]``. Matryoshka models are trained on
    such nested prefixes (static-retrieval-mrl-en-v1 on 32..1024).

    Args:
        full_dim: The model's full embedding width.
        min_dim: The smallest prefix to list.

    Returns:
        Increasing widths, always ending with ``full_dim``.

    Raises:
        ValueError: If ``full_dim`` or ``min_dim`` is not positive.
        InvalidTypeError: If either is not an int.
    """
    for name, value in (("full_dim", full_dim), ("min_dim", min_dim)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            msg = f"{name} must be an int; found {value!r}. Pass e.g. matryoshka_dims(1024)."
            raise InvalidTypeError(msg)
    full_dim, min_dim = int(full_dim), int(min_dim)
    if full_dim < 1 or min_dim < 1:
        msg = f"full_dim and min_dim must be positive; found full_dim={full_dim}, min_dim={min_dim}."
        raise InvalidArgumentError(msg)
    dims: list[int] = []
    width = 1 << max(0, math.ceil(math.log2(min_dim)))
    while width < full_dim:
        dims.append(width)
        width *= 2
    dims.append(full_dim)
    return dims
