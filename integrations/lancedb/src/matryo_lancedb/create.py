"""Create and open two-stage tables."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Literal

import numpy as np
import pyarrow as pa
from lancedb.db import DBConnection
from lancedb.embeddings import EmbeddingFunctionConfig

from matryo import DimensionMismatchError
from matryo.cache import load_encoder
from matryo.errors import InvalidArgumentError
from matryo.search import DEFAULT_TRUNCATE_DIM
from matryo_lancedb.embedding import MatryoEmbeddings, ModelMismatchError, _absolute, matryo_embeddings
from matryo_lancedb.layout import META_KEY, TableLayout, metadata_fields
from matryo_lancedb.registry import connect, open_table
from matryo_lancedb.table import TwoStageTable

__all__ = ["create_two_stage_table", "open_two_stage_table", "table_exists"]


def create_two_stage_table(
    db: DBConnection | str | os.PathLike[str],
    name: str,
    model: str | os.PathLike[str] | None = None,
    *,
    truncate_dim: int | None = DEFAULT_TRUNCATE_DIM,
    revision: str | None = None,
    normalize: bool = True,
    max_length: int | None = None,
    metadata: Mapping[str, pa.DataType] | Sequence[pa.Field] | None = None,
    id_type: pa.DataType | str | None = None,
    exist_ok: bool = False,
    mode: Literal["create", "overwrite"] = "create",
) -> TwoStageTable:
    """Create a two-stage table (text, truncated vectors, full vectors, metadata columns).

    Args:
        db: A LanceDB connection or database path/URI.
        name: Table name.
        model: Local folder or hub id; ``None`` = matryo's embedded default model.
        truncate_dim: Width of the first-pass column (capped at the model's width; ``None`` = full width). The
            full column is always the model's full width (``encoder.dim``), also for a model folder that
            stores a default ``truncate_dim``.
        revision: Hub revision.
        normalize: L2-normalise stored vectors.
        max_length: Token cut-off override.
        metadata: Extra columns, e.g. ``{"source": pa.string(), "year": pa.int32()}``.
        id_type: Arrow type of the ``id`` column, or its name (``"int64"``): a string or integer type (default
            ``pa.string()``; with ``exist_ok``, ``None`` takes the existing table's).
        exist_ok: Open the table if it exists (its model settings, and its metadata columns when ``metadata``
            is given, must match these).
        mode: ``"create"`` or ``"overwrite"`` (replaces an existing table: its rows are lost).

    Returns:
        The table.

    Raises:
        ValueError: If the table exists (and not ``exist_ok``), a metadata column name is reserved, or
            ``exist_ok`` and ``metadata`` names other columns than the existing table has, or ``id_type`` is
            not a string or integer type or not the existing table's (:class:`matryo.errors.InvalidArgumentError`).
        DimensionMismatchError: If ``exist_ok`` and the existing table's vectors have other widths.
        ModelMismatchError: If ``exist_ok`` and the existing table was built with another model or settings.
    """
    if isinstance(id_type, str):  # pyarrow's names ("int64", "string") work, as they did before this check
        try:
            id_type = pa.type_for_alias(id_type)
        except ValueError as exc:
            msg = f"id_type {id_type!r} is not an Arrow type name; pass e.g. pa.string() or 'int64'."
            raise InvalidArgumentError(msg) from exc
    if id_type is not None and not (
        pa.types.is_integer(id_type) or pa.types.is_string(id_type) or pa.types.is_large_string(id_type)
    ):
        msg = (
            f"id_type must be a string or integer Arrow type (pa.string(), pa.int64(), ...), found {id_type}: "
            "delete() and upserts match ids by value. Store other keys in a metadata column."
        )
        raise InvalidArgumentError(msg)
    connection = connect(db)
    # the full column is the model's full width even when its folder stores a default truncate_dim
    dim = load_encoder(_absolute(model), revision=revision, max_length=max_length).dim
    full = matryo_embeddings(model, revision=revision, truncate_dim=dim, normalize=normalize, max_length=max_length)
    if isinstance(truncate_dim, np.integer):
        truncate_dim = int(truncate_dim)  # stored in the schema's JSON
    width = dim if truncate_dim is None else min(truncate_dim, dim)
    first = matryo_embeddings(model, revision=revision, truncate_dim=width, normalize=normalize, max_length=max_length)

    def open_existing() -> TwoStageTable:
        existing = open_two_stage_table(connection, name)
        _check_same(existing, full, first, dim, width)
        _check_same_id_type(existing, id_type)
        if metadata is not None:
            _check_same_columns(existing, metadata_fields(metadata, existing.layout, creating=False))
        return existing

    if exist_ok and mode == "create" and table_exists(connection, name):
        return open_existing()
    layout = TableLayout("id", "text", f"vector_{width}", "vector_full", width, dim)
    extra = metadata_fields(metadata, layout)
    layout = TableLayout(**{**asdict(layout), "metadata_columns": tuple(field.name for field in extra)})
    fields = [
        pa.field(layout.id_column, id_type or pa.string(), nullable=False),
        pa.field(layout.text_column, pa.string()),
        *extra,
        pa.field(layout.first_pass_column, pa.list_(pa.float32(), width)),
        pa.field(layout.full_column, pa.list_(pa.float32(), dim)),
    ]
    schema = pa.schema(fields, metadata={META_KEY: json.dumps(asdict(layout)).encode()})
    functions = [
        EmbeddingFunctionConfig(source_column="text", vector_column=layout.first_pass_column, function=first),
        EmbeddingFunctionConfig(source_column="text", vector_column=layout.full_column, function=full),
    ]
    # Lance logs a WARN line ("No existing dataset ... it will be created") for an overwrite of a missing table:
    # a new table is created in "create" mode, and overwritten only if another writer made it meanwhile.
    fresh = mode == "overwrite" and not table_exists(connection, name)
    try:
        table = connection.create_table(
            name, schema=schema, mode="create" if fresh else mode, embedding_functions=functions
        )
    except ValueError as exc:  # another process created it after the check above (workers starting together)
        if "already exists" not in str(exc) or not (fresh or (exist_ok and mode == "create")):
            raise
        if not fresh:
            return open_existing()
        table = connection.create_table(name, schema=schema, mode="overwrite", embedding_functions=functions)
    return TwoStageTable(table)


def open_two_stage_table(db: DBConnection | str | os.PathLike[str], name: str) -> TwoStageTable:
    """Open a table made by :func:`create_two_stage_table` (registering ``"matryo"`` first).

    Args:
        db: A LanceDB connection or database path/URI.
        name: Table name.

    Returns:
        The table.
    """
    return TwoStageTable(open_table(db, name))


def table_exists(connection: DBConnection, name: str) -> bool:
    """Whether ``connection`` has a table ``name`` (``list_tables`` pages; ``table_names`` is deprecated)."""
    token = None
    while True:
        page = connection.list_tables(page_token=token)
        if name in page.tables:
            return True
        token = page.page_token
        if not token:
            return False


def _check_same_columns(existing: TwoStageTable, wanted: list[pa.Field]) -> None:
    schema = existing.table.schema
    stored = [(name, str(schema.field(name).type)) for name in existing.layout.metadata_columns]
    requested = [(field.name, str(field.type)) for field in wanted]
    if sorted(stored) != sorted(requested):
        msg = (
            f"Table {existing.table.name!r} exists with metadata columns {stored}; {requested} were requested. "
            "Use another table name, or pass the table's own columns (or metadata=None to take them as they are); "
            "the existing rows are untouched."
        )
        raise InvalidArgumentError(msg)


def _check_same_id_type(existing: TwoStageTable, id_type: pa.DataType | None) -> None:
    stored = existing.table.schema.field(existing.layout.id_column).type
    if id_type is not None and stored != id_type:
        msg = (
            f"Table {existing.table.name!r} exists with a {stored} id column; id_type={id_type} was requested. Use "
            f"another table name, or pass the table's own id_type (or id_type=None to take it as it is); the existing "
            "rows are untouched."
        )
        raise InvalidArgumentError(msg)


def _check_same(existing: TwoStageTable, full: MatryoEmbeddings, first: MatryoEmbeddings, dim: int, width: int) -> None:
    if (existing.dim, existing.truncate_dim) != (dim, width):
        # same model width, other first pass: the fix is the table's truncate_dim (the default is 128), not a model
        fix = (
            f"pass truncate_dim={existing.truncate_dim} (the table's), or open it with open_two_stage_table(db, name)"
            if existing.dim == dim
            else "use the table's own model"
        )
        msg = (
            f"Table {existing.table.name!r} exists with {existing.dim}-d vectors (first pass {existing.truncate_dim}); "
            f"the requested model gives {dim}-d (first pass {width}). Use another table name, or {fix}; the "
            "existing rows are untouched."
        )
        raise DimensionMismatchError(msg)
    stored, wanted = existing.embedding_function.safe_model_dump(), full.safe_model_dump()
    diff = {key: (stored.get(key), wanted.get(key)) for key in wanted if stored.get(key) != wanted.get(key)}
    if diff:
        msg = f"Table {existing.table.name!r} exists with other model settings (stored, requested): {diff}."
        raise ModelMismatchError(msg)
