"""Two-stage table layout (stored in the schema metadata), index sizing, and row checks."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from matryo.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["MIN_INDEX_ROWS", "IndexReport", "IndexType", "TableLayout", "default_index_params"]

MIN_INDEX_ROWS = 256
"""Fewer rows than this cannot train an index (PQ needs 256 training vectors per code book)."""

IndexType = Literal["IVF_PQ", "IVF_HNSW_SQ"]
META_KEY = b"matryo"


class ArrowStream(Protocol):
    """A table that exports the Arrow C stream interface (pandas >= 2.2 and polars DataFrames, ...)."""

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any: ...  # noqa: ANN401


Rows: TypeAlias = "Iterable[Mapping[str, Any]] | pa.Table | pa.RecordBatch | ArrowStream"
"""What ``add`` and ``upsert`` take: dicts, an Arrow table or batch, or a DataFrame."""


@dataclass(frozen=True)
class TableLayout:
    """Column names and widths of a two-stage table (stored as JSON under the ``matryo`` schema key).

    Attributes:
        id_column: Document ids (unique within each write; :meth:`TwoStageTable.upsert` replaces rows by id,
            :meth:`TwoStageTable.add` appends without looking at existing rows, like LanceDB's ``add``).
        text_column: Source texts.
        first_pass_column: The truncated vectors (``truncate_dim`` wide), where the ANN index goes.
        full_column: The full-width vectors used for rescoring.
        truncate_dim: Width of the first-pass column.
        dim: Width of the full column.
        metadata_columns: Extra user columns, returned with every hit.
    """

    id_column: str
    text_column: str
    first_pass_column: str
    full_column: str
    truncate_dim: int
    dim: int
    metadata_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class IndexReport:
    """What :meth:`TwoStageTable.create_index` did.

    Attributes:
        built: Whether an index was built.
        index_type: ``"IVF_PQ"`` or ``"IVF_HNSW_SQ"``.
        rows: Rows in the table at the time.
        num_partitions: IVF partitions (``None`` when nothing was built).
        num_sub_vectors: PQ sub-vectors (IVF_PQ only).
        reason: Why nothing was built (empty when built).
    """

    built: bool
    index_type: str
    rows: int
    num_partitions: int | None = None
    num_sub_vectors: int | None = None
    reason: str = ""


def default_index_params(rows: int, truncate_dim: int, index_type: str = "IVF_PQ") -> tuple[int, int | None]:
    """Pick ``(num_partitions, num_sub_vectors)`` for a table of ``rows`` rows.

    IVF_PQ: ``sqrt(rows)`` partitions, but at least 256 rows per partition on average (k-means needs
    points), and one sub-vector per 4 dimensions (32 bytes for a 128-d prefix; 8-dim sub-vectors lost recall
    at the shortlist sizes two-stage search uses). IVF_HNSW_SQ: one HNSW graph per ~500k rows.

    Args:
        rows: Row count.
        truncate_dim: Width of the indexed column.
        index_type: ``"IVF_PQ"`` or ``"IVF_HNSW_SQ"``.

    Returns:
        The partition count and the sub-vector count (``None`` for HNSW).
    """
    if index_type == "IVF_HNSW_SQ":
        return max(1, rows // 500_000), None
    partitions = max(1, min(round(math.sqrt(rows)), rows // MIN_INDEX_ROWS))
    sub_vectors = next(s for s in (truncate_dim // 4, truncate_dim // 2, truncate_dim) if s and truncate_dim % s == 0)
    return partitions, sub_vectors


def metadata_fields(
    metadata: Mapping[str, pa.DataType] | Sequence[pa.Field] | None, layout: TableLayout, *, creating: bool = True
) -> list[pa.Field]:
    """The metadata columns as Arrow fields, refusing reserved names (and, for a new table, non-nullable fields)."""
    if metadata is None:
        return []
    fields = (
        [pa.field(key, value) for key, value in metadata.items()] if isinstance(metadata, Mapping) else list(metadata)
    )
    reserved = {
        layout.id_column,
        layout.text_column,
        layout.first_pass_column,
        layout.full_column,
        "score",
        "_distance",
        "query_index",  # LanceDB's batch-search output column, which the search reads
        "_relevance_score",  # the reranker's output column
    }
    clash = sorted(reserved & {field.name for field in fields})
    if clash:
        msg = f"Metadata column name(s) {clash} are reserved by the two-stage table; rename them."
        raise InvalidArgumentError(msg)
    required = [field.name for field in fields if not field.nullable]
    if required and creating:  # a row without the column is written with null there, as upsert writes whole rows
        msg = (
            f"Metadata column(s) {required} are declared nullable=False; the two-stage table stores a row that "
            "omits a metadata column with null there. Declare them nullable (the default)."
        )
        raise InvalidArgumentError(msg)
    return fields


def as_arrow(rows: Rows) -> Iterable[Mapping[str, Any]] | pa.Table | pa.RecordBatch:
    """A pandas DataFrame (its index left out) or another Arrow-stream table as an Arrow table; rest unchanged."""
    if isinstance(rows, (pa.Table, pa.RecordBatch)):
        return rows
    if type(rows).__module__.split(".")[0] == "pandas" and hasattr(rows, "columns"):
        return pa.Table.from_pandas(rows, preserve_index=False)
    if hasattr(rows, "__arrow_c_stream__"):
        return pa.table(rows)
    return rows  # dicts


def _fits(values: list[Any] | pa.ChunkedArray, type_: pa.DataType) -> bool:
    """Whether values become ``type_``: Python values as ``from_pylist`` converts them, Arrow ones by cast."""
    try:
        if isinstance(values, pa.ChunkedArray):
            values.cast(type_)
        else:
            pa.array(values, type=type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    # from_pylist truncates 2.7 to 2 in an integer column (an Arrow cast refuses it): so does this check
    return isinstance(values, pa.ChunkedArray) or not pa.types.is_integer(type_) or all(map(_integral, values))


def _integral(value: Any) -> bool:  # noqa: ANN401
    """Whether a Python value is a whole number, or not a float at all (others are Arrow's to judge)."""
    return not isinstance(value, (float, np.floating)) or float(value).is_integer()


def truncated(records: Sequence[Mapping[str, Any]], schema: pa.Schema) -> bool:
    """Whether ``pa.Table.from_pylist(records, schema)`` would cut a fraction off a value of an integer column."""
    return any(
        not _integral(row.get(field.name)) for field in schema if pa.types.is_integer(field.type) for row in records
    )


def misfit(
    rows: Sequence[Mapping[str, Any]] | pa.Table, schema: pa.Schema, id_column: str, exc: Exception
) -> InvalidTypeError:
    """The error for rows that Arrow cannot put into the table's columns, naming the column and a row's id."""
    for field in schema:
        if isinstance(rows, pa.Table):
            column = rows[field.name]
            cells: list[Any] = [column.slice(i, 1) for i in range(len(column))]
            values: list[Any] = column.to_pylist()
            whole: list[Any] | pa.ChunkedArray = column
        else:
            values = [row.get(field.name) for row in rows]
            cells, whole = [[value] for value in values], values
        if _fits(whole, field.type):
            continue
        bad = next((i for i, cell in enumerate(cells) if not _fits(cell, field.type)), None)
        if bad is not None:
            ids = rows[id_column].to_pylist() if isinstance(rows, pa.Table) else [r.get(id_column) for r in rows]
            value = values[bad]
            msg = (
                f"Column {field.name!r} holds {field.type}, but the row with {id_column} {ids[bad]!r} has {value!r} "
                f"({type(value).__name__}); convert the value or fix the row. Nothing was written."
            )
            return InvalidTypeError(msg)
    msg = f"The rows do not fit the table's columns {schema.names} ({exc}). Nothing was written."
    return InvalidTypeError(msg)


def check_rows(ids: list[Any], texts: list[Any], layout: TableLayout) -> None:
    bad_ids = [i for i, value in enumerate(ids) if value is None]
    if bad_ids:
        msg = f"Row(s) {bad_ids[:5]} have no {layout.id_column!r}; every row needs one. Nothing was written."
        raise InvalidArgumentError(msg)
    repeated = [value for value, count in Counter(ids).items() if count > 1]
    if repeated:
        msg = f"Id(s) {repeated[:5]} occur more than once in one batch; keep one row per id. Nothing was written."
        raise InvalidArgumentError(msg)
    null_texts = [ids[i] for i, text in enumerate(texts) if text is None]
    if null_texts:
        msg = (
            f"Row(s) with id {null_texts[:5]} have no {layout.text_column!r} (None); pass a string (an empty "
            "string is allowed). Nothing was written."
        )
        raise InvalidArgumentError(msg)
    not_str = [(ids[i], type(text).__name__) for i, text in enumerate(texts) if not isinstance(text, str)]
    if not_str:
        msg = f"The {layout.text_column!r} of row(s) {not_str[:5]} is not a str. Nothing was written."
        raise InvalidTypeError(msg)


def fixed_list(vectors: NDArray[np.float32]) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def quote(column: str) -> str:
    return f"`{column}`"


def sql_literal(value: Any, type_: pa.DataType) -> str:  # noqa: ANN401
    """An id as an SQL literal of the id column's type.

    Raises:
        InvalidTypeError: If an integer column is given anything but a whole number (``delete([2.2])`` deleted id 2).
        InvalidArgumentError: If ``value`` is None.
    """
    if isinstance(value, pa.Scalar):
        value = value.as_py()
    if value is None:  # str(None) would match a row whose id is "None"
        msg = "An id to delete is None (or an Arrow null); pass the ids of stored rows."
        raise InvalidArgumentError(msg)
    if pa.types.is_integer(type_):
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):  # "1", as int("1") read it before
            value = int(value)
        whole = isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and _integral(value))
        if isinstance(value, bool) or not whole:
            msg = f"This table's ids are {type_}; found {value!r} ({type(value).__name__}). Pass whole-number ids."
            raise InvalidTypeError(msg)
        return str(int(value))
    if isinstance(value, bytes):  # one id: its UTF-8 text, as the id column holds it
        value = value.decode("utf-8", "surrogateescape")
    text = str(value).replace("'", "''")
    return f"'{text}'"
