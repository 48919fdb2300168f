"""A LanceDB table with two vector columns: a truncated first pass and full-dimension rescoring.

Layout (one row per document)::

    id | text | <metadata columns...> | vector_<d> (first pass, ANN index, cosine) | vector_full (rescoring)

Both vector columns are declared with a ``"matryo"`` embedding function in the schema metadata, so a plain
``tbl.add([{"id": ..., "text": ...}])`` through LanceDB fills them too; :meth:`TwoStageTable.add` encodes
each text once at full width and derives the prefix itself (half the tokenizing). A ``matryo`` key in the
schema metadata records the column names and widths, so :func:`open_two_stage_table` needs nothing else.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from lancedb.index import HnswSq, IvfPq
from lancedb.table import Table
from numpy.typing import ArrayLike, NDArray

from matryo import DimensionMismatchError, StaticEncoder
from matryo.errors import InvalidArgumentError, InvalidTypeError
from matryo.search import DEFAULT_K, DEFAULT_RESCORE_MULTIPLIER, candidate_count, rescore
from matryo.texts import check_texts
from matryo.vectors import as_numbers, truncate, unit_rows
from matryo_lancedb.embedding import ALIAS, MatryoEmbeddings, load_recorded
from matryo_lancedb.layout import (
    META_KEY,
    MIN_INDEX_ROWS,
    IndexReport,
    IndexType,
    Rows,
    TableLayout,
    as_arrow,
    check_rows,
    default_index_params,
    fixed_list,
    misfit,
    quote,
    sql_literal,
    truncated,
)
from matryo_lancedb.registry import ensure_registered
from matryo_lancedb.rerank import MatryoReranker, full_vectors

__all__ = ["TwoStageTable"]

_ADD_CHUNK = 16_384  # rows encoded and written per LanceDB add()
_UPSERT_LOCKS: dict[str, threading.Lock] = {}  # per table location: one merge at a time in this process
_UPSERT_LOCKS_GUARD = threading.Lock()


def _upsert_lock(table: Table) -> threading.Lock:
    """The lock that serialises this process's upserts into ``table`` (every handle on the same location shares it).

    Two merges running at once each check the ids against the version they read, so both insert a new id and
    it is stored twice; threads of one process (three threads upserting 30 shared ids stored 90 rows) take turns
    here. Other processes are not covered: keep one writing process per table.
    """
    key = str(getattr(table, "uri", None) or f"{id(table)}:{table.name}")
    with _UPSERT_LOCKS_GUARD:
        return _UPSERT_LOCKS.setdefault(key, threading.Lock())


_QUERY_CHUNK = 128  # queries per LanceDB multi-vector query in search_batch


def _record(row: object, index: int) -> dict[str, Any]:
    """One row as a plain dict: a dict, a LanceModel (pydantic) or (key, value) pairs; a bare text is refused."""
    if isinstance(row, Mapping):
        return dict(row)
    strings = isinstance(row, (list, tuple, set)) and any(isinstance(item, str) for item in row)  # ("d1", "hi")
    if not isinstance(row, (str, bytes)) and not strings:
        try:
            return dict(row)  # type: ignore[call-overload]  # a LanceModel iterates as (field, value) pairs
        except (TypeError, ValueError):
            pass
    kind = type(row).__name__
    msg = f"Each row must be a dict such as {{'id': ..., 'text': ...}}; row {index} is a {kind}: {row!r:.80}."
    raise InvalidTypeError(msg)


def _kind(type_: pa.DataType) -> str:
    """A column type's family for the id and text checks: string, integer, null, or the type itself.

    A dictionary-encoded column (a pandas category, a Parquet column read with ``read_dictionary``) is its values.
    """
    if pa.types.is_dictionary(type_):
        return _kind(type_.value_type)
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
        return "string"
    if pa.types.is_integer(type_):
        return "integer"
    return "null" if pa.types.is_null(type_) else str(type_)


class TwoStageTable:
    """A LanceDB table searched with a truncated first pass and full-dimension rescoring.

    Get one from :func:`create_two_stage_table` or :func:`open_two_stage_table`.

    Example:
        >>> db = lancedb.connect("data/lance")  # doctest: +SKIP
        >>> docs = create_two_stage_table(db, "docs")  # doctest: +SKIP
        >>> docs.add([{"id": "1", "text": "how to read a gzip file in python"}])  # doctest: +SKIP
        >>> docs.search("gzip", k=5)  # [{"id": "1", "text": ..., "score": 0.71}]  # doctest: +SKIP
    """

    def __init__(self, table: Table) -> None:
        """Wrap an opened LanceDB table that was made by :func:`create_two_stage_table`.

        Args:
            table: The LanceDB table.

        Raises:
            ValueError: If the table has no two-stage layout in its schema metadata.
            DimensionMismatchError: If the stored model now has another width than the table's vectors.
            ModelMismatchError: If a different model is found where the table's model was.
        """
        metadata = table.schema.metadata or {}
        if META_KEY not in metadata:
            msg = (
                f"Table {table.name!r} was not created by matryo_lancedb.create_two_stage_table (no 'matryo' key in "
                "its schema metadata), or its schema metadata was replaced (LanceDB's table.add(mode='overwrite') "
                "drops it; table.restore(version) brings back an earlier version). Open it with lancedb directly, "
                "or create a two-stage table."
            )
            raise InvalidArgumentError(msg)
        raw = json.loads(metadata[META_KEY])
        raw["metadata_columns"] = tuple(raw.get("metadata_columns", ()))
        self._layout = TableLayout(**raw)
        ensure_registered()
        self._table = table
        layout = self._layout
        # widths first, from the stored config (building the functions would check the fingerprint first, and
        # a model of another width is better reported as such)
        stored = {conf.get("vector_column"): conf for conf in json.loads(metadata.get(b"embedding_functions", b"[]"))}
        for column, width in ((layout.full_column, layout.dim), (layout.first_pass_column, layout.truncate_dim)):
            conf = stored.get(column)
            if conf is None:
                msg = f"Table {table.name!r} lacks the embedding function config of column {column!r}."
                raise InvalidArgumentError(msg)
            if conf.get("name") != ALIAS:
                msg = f"Column {column!r} is embedded by {conf.get('name')!r}, expected {ALIAS!r} (MatryoEmbeddings)."
                raise InvalidTypeError(msg)
            kwargs = conf.get("model") or {}
            model, truncate_dim = kwargs.get("model"), kwargs.get("truncate_dim")
            model_dim = load_recorded(model, revision=kwargs.get("revision"), max_length=kwargs.get("max_length")).dim
            found = model_dim if truncate_dim is None else min(truncate_dim, model_dim)
            if found != width:
                msg = (
                    f"Column {column!r} holds {width}-d vectors but the model {model or 'matryo-default'!r} now "
                    f"gives {found}-d ones. Restore the model the table was built with; the rows are untouched."
                )
                raise DimensionMismatchError(msg)
        functions = table.embedding_functions  # MatryoEmbeddings.create checks the fingerprints
        checked: list[MatryoEmbeddings] = []
        for column in (layout.full_column, layout.first_pass_column):
            func = functions[column].function
            if not isinstance(func, MatryoEmbeddings):
                msg = f"Column {column!r} is embedded by {type(func).__name__}, expected MatryoEmbeddings."
                raise InvalidTypeError(msg)
            func.encoder  # noqa: B018  # checks the fingerprint (also of a function made without one at create)
            checked.append(func)
        self._full, self._first = checked

    # ------------------------------------------------------------------ properties
    @property
    def table(self) -> Table:
        """The underlying LanceDB table (for anything this wrapper does not cover)."""
        return self._table

    @property
    def layout(self) -> TableLayout:
        """Column names and widths."""
        return self._layout

    @property
    def encoder(self) -> StaticEncoder:
        """The shared encoder of the table's model."""
        return self._full.encoder

    @property
    def embedding_function(self) -> MatryoEmbeddings:
        """The full-width embedding function (the first-pass one is ``table.embedding_functions``)."""
        return self._full

    @property
    def dim(self) -> int:
        """Width of the full vectors."""
        return self._layout.dim

    @property
    def truncate_dim(self) -> int:
        """Width of the first-pass vectors."""
        return self._layout.truncate_dim

    @property
    def has_index(self) -> bool:
        """Whether the first-pass column has a vector index (asks LanceDB)."""
        return any(self._layout.first_pass_column in index.columns for index in self._table.list_indices())

    def count(self, where: str | None = None) -> int:
        """Count rows, optionally matching a SQL filter.

        Args:
            where: A LanceDB SQL filter such as ``"tag = 'faq'"``.

        Returns:
            The row count.
        """
        return self._table.count_rows(where)

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        lay = self._layout
        return (
            f"TwoStageTable(name={self._table.name!r}, rows={self.count()}, dim={lay.dim}, "
            f"truncate_dim={lay.truncate_dim}, model={self._full.model or 'matryo-default'!r})"
        )

    # ------------------------------------------------------------------ writing
    def add(self, rows: Rows) -> int:
        """Append rows; both vector columns are computed from the text (one encode per text).

        Like LanceDB's ``add``, this does not look up existing rows: adding an id that is already stored
        gives two rows with that id. Use :meth:`upsert` to insert or replace by id. The rows are embedded
        16,384 at a time as LanceDB writes them and committed once: when embedding fails part-way (a text the
        tokenizer refuses, Ctrl-C), nothing is added and the call can be retried.

        Args:
            rows: Dicts, an Arrow table, or a pandas DataFrame (or any table with ``__arrow_c_stream__``, e.g.
                polars) with the id and text columns, plus any metadata columns.
                Empty texts are stored with all-zero vectors; cosine search (:meth:`search`, or LanceDB's with
                ``distance_type("cosine")``) never returns them, LanceDB's default squared L2 does.

        Returns:
            The number of rows added.

        Raises:
            ValueError: If a row has no id or no text (``None``), an id repeats within ``rows``, or a column
                is not the table's; nothing is written.
            TypeError: If a text is not a string, or a value does not fit its column's type (the error names
                the column and the row's id); nothing is written.
        """
        batch = self._prepare(rows)
        if batch.num_rows == 0:
            return 0
        # One LanceDB add of a stream of chunks: each is embedded as the write reaches it (memory stays bounded by
        # the chunk) and the rows are committed together, once. An error while embedding a later chunk (or
        # Ctrl-C) commits nothing, so the same add can be retried; one add() per chunk left the earlier chunks
        # stored and the retry stored them twice.
        first = self._with_vectors(batch.slice(0, _ADD_CHUNK))
        failed: list[BaseException] = []

        def rest() -> Iterator[pa.RecordBatch]:
            try:
                for start in range(_ADD_CHUNK, batch.num_rows, _ADD_CHUNK):
                    yield from self._with_vectors(batch.slice(start, _ADD_CHUNK)).to_batches()
            except BaseException as exc:
                failed.append(exc)  # LanceDB reports it as an Arrow RuntimeError; the caller gets the error itself
                raise

        stream = pa.RecordBatchReader.from_batches(first.schema, itertools.chain(first.to_batches(), rest()))
        try:
            self._table.add(stream)
        except Exception:
            if failed:
                raise failed[0] from None
            raise
        return batch.num_rows

    def upsert(self, rows: Rows) -> int:
        """Insert rows, replacing existing rows with the same id.

        A replaced row is replaced whole: a declared metadata column the new row omits becomes null, whether
        the rows are dicts or an Arrow table.

        Args:
            rows: As for :meth:`add`.

        Returns:
            The number of rows given.

        Upserts from threads of one process into the same table take turns (two merges at once could both
        insert a new id). Upserts from two processes at once can still store an id twice: keep one writing
        process per table.

        Raises:
            ValueError: As for :meth:`add`; nothing is written.
            TypeError: As for :meth:`add`.
        """
        batch = self._prepare(rows)
        if batch.num_rows:
            embedded = self._with_vectors(batch)  # outside the lock: threads encode in parallel
            with _upsert_lock(self._table):
                self._table.checkout_latest()  # another handle of this process may have merged since this one read
                (
                    self._table.merge_insert(self._layout.id_column)
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(embedded)
                )
        return batch.num_rows

    def delete(self, ids: Sequence[Any] | str | int) -> int:
        """Delete rows by id.

        Args:
            ids: The ids to delete (a sequence or a 1-D numpy array), or one id (a ``str``, ``bytes`` or int is
                one id, never split into characters; unlike LanceDB's own ``delete``, this takes ids, not an
                SQL predicate: use ``table.table.delete(where)`` for that).

        Returns:
            How many rows were deleted (counted among the given ids just before deleting them).
        """
        if isinstance(ids, (str, bytes, int, float, np.integer, np.floating, pa.Scalar)):
            ids = [ids]
        # a generator too; an Arrow column (a search result's ids) as Python values
        ids = ids.to_pylist() if isinstance(ids, (pa.Array, pa.ChunkedArray)) else list(ids)
        if len(ids) == 0:
            return 0
        id_type = self._table.schema.field(self._layout.id_column).type
        literals = ", ".join(sql_literal(value, id_type) for value in ids)
        where = f"{quote(self._layout.id_column)} IN ({literals})"
        matched = self._table.count_rows(where)
        if matched:
            self._table.delete(where)
        return matched

    def _prepare(self, rows: Rows) -> pa.Table:
        lay = self._layout
        user_columns = [lay.id_column, lay.text_column, *lay.metadata_columns]
        schema = pa.schema([self._table.schema.field(name) for name in user_columns])
        rows = as_arrow(rows)
        if isinstance(rows, (pa.Table, pa.RecordBatch)):
            table = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows
            missing = [name for name in (lay.id_column, lay.text_column) if name not in table.column_names]
            if missing:
                msg = f"The rows lack column(s) {missing}; expected {user_columns}."
                raise InvalidArgumentError(msg)
            unknown = sorted(set(table.column_names) - set(user_columns))
            for name in user_columns:  # an omitted metadata column is null, as for dicts (upsert replaces rows)
                if name not in table.column_names:
                    table = table.append_column(schema.field(name), pa.nulls(table.num_rows, schema.field(name).type))
            for name in (lay.id_column, lay.text_column):  # Arrow casts 42 to "42": refuse it, as for dicts
                found, wanted = _kind(table[name].type), _kind(schema.field(name).type)
                if found not in (wanted, "null"):
                    msg = (
                        f"Column {name!r} holds {table[name].type} values, but this table's {name!r} column is "
                        f"{schema.field(name).type}; convert the column first if that is meant (e.g. "
                        f"df[{name!r}].astype(str)). Nothing was written."
                    )
                    raise InvalidTypeError(msg)
            try:
                table = table.select(user_columns).cast(schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise misfit(table.select(user_columns), schema, lay.id_column, exc) from exc
            ids, texts = table[lay.id_column].to_pylist(), table[lay.text_column].to_pylist()
        else:
            if isinstance(rows, (Mapping, str, bytes)):  # dict(...) of a row's keys: "dictionary update sequence"
                kind = "one dict" if isinstance(rows, Mapping) else f"a {type(rows).__name__}"
                msg = (
                    f"rows must be a list of dicts (or a DataFrame or Arrow table), not {kind}; wrap a single row "
                    'in a list: [{"id": ..., "text": ...}].'
                )
                raise InvalidTypeError(msg)
            records = [_record(row, i) for i, row in enumerate(rows)]
            ids = [row.get(lay.id_column) for row in records]
            texts = [row.get(lay.text_column) for row in records]
            unknown = sorted({key for row in records for key in row} - set(user_columns))
            table = None
        if unknown:
            msg = f"Unknown column(s) {unknown}; this table has {user_columns} (declare metadata at creation)."
            raise InvalidArgumentError(msg)
        check_rows(ids, texts, lay)
        if table is None:
            try:
                if truncated(records, schema):
                    msg = "a float with a fraction for an integer column"
                    raise pa.ArrowInvalid(msg)
                table = pa.Table.from_pylist(records, schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise misfit(records, schema, lay.id_column, exc) from exc
        return table

    def _with_vectors(self, batch: pa.Table) -> pa.Table:
        lay = self._layout
        texts = batch[lay.text_column].to_pylist()
        full = self.encoder.encode(texts, truncate_dim=lay.dim, normalize=self._full.normalize)
        first = truncate(full, lay.truncate_dim, normalize=self._first.normalize)
        batch = batch.append_column(self._table.schema.field(lay.first_pass_column), fixed_list(first))
        return batch.append_column(self._table.schema.field(lay.full_column), fixed_list(full))

    # ------------------------------------------------------------------ searching
    def search(
        self,
        query: str | ArrayLike,
        k: int = DEFAULT_K,
        *,
        rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
        where: str | None = None,
        nprobes: int | None = None,
        refine_factor: int | None = None,
    ) -> list[dict[str, Any]]:
        """Search: cosine over the truncated column for a shortlist, then full-dimension rescoring.

        The first pass asks for ``ceil(k * rescore_multiplier)`` rows together with their full vectors: one
        LanceDB query, no second round trip. Rescoring uses :func:`matryo.search.rescore`.

        Args:
            query: A query text, or a full-width query vector: ``dim`` floats, or a ``(1, dim)`` array (what
                ``encoder.encode([text])`` returns). Use :meth:`search_batch` for several queries.
            k: Hits to return.
            rescore_multiplier: First-pass oversampling (``>= 1``).
            where: A LanceDB SQL filter applied in the first pass (before the limit).
            nprobes: IVF partitions to probe; only with an index. ``None``: LanceDB's 20, and more as long as
                the shortlist is not full (a narrow ``where`` then still finds every match).
            refine_factor: Optional LanceDB ``refine_factor`` for the first pass (exact prefix distances for
                ``refine_factor`` times more index candidates); off by default: the full-dimension rescoring
                of the shortlist already corrects the index's approximate distances.

        Returns:
            Up to ``k`` dicts, best first, each with the id and text columns, ``score`` (full-dimension
            cosine similarity) and the metadata columns.

        Raises:
            DimensionMismatchError: If a query vector is not ``dim`` wide.
            ValueError: If ``k`` or ``rescore_multiplier`` is out of range.
        """
        if isinstance(query, np.ndarray) and query.ndim == 0 and query.dtype.kind in "US":
            query = str(query)  # np.array("cat"): one text, as NumpyIndex and Chroma read it
        if isinstance(query, str):
            full = self._query_vectors([query])
        else:
            if query is None or isinstance(query, (bytes, bytearray, Mapping)):
                kind = type(query).__name__
                msg = f"query must be a text (str) or one full-width query vector; found {kind}."
                raise InvalidTypeError(msg)
            if isinstance(query, (list, tuple)) and any(isinstance(item, str) for item in query):
                msg = "search() takes one query; use search_batch() for a list of query texts."
                raise InvalidTypeError(msg)
            vector = as_numbers(query, "the query vector")  # its own dtype: _search normalises float64 as such
            one = vector.ndim == 1 or (vector.ndim == 2 and vector.shape[0] == 1)  # (dim,) or encode([q])'s (1, dim)
            if not one or vector.shape[-1] != self.dim:
                raise DimensionMismatchError(self._shape_message(vector.shape, "one query vector"))
            full = vector.reshape(1, self.dim)
        return self._search(full, k, rescore_multiplier, where, nprobes, refine_factor)[0]

    def search_batch(
        self,
        queries: Sequence[str] | ArrayLike,
        k: int = DEFAULT_K,
        *,
        rescore_multiplier: float = DEFAULT_RESCORE_MULTIPLIER,
        where: str | None = None,
        nprobes: int | None = None,
        refine_factor: int | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Search many queries at once (one LanceDB multi-vector query, one rescoring step).

        Args:
            queries: Query texts, or a ``(q, dim)`` array of full-width query vectors.
            k: Hits per query.
            rescore_multiplier: As for :meth:`search`.
            where: As for :meth:`search`.
            nprobes: As for :meth:`search`.
            refine_factor: As for :meth:`search`.

        Returns:
            One list of hits per query, as :meth:`search` returns them.

        Raises:
            DimensionMismatchError: If query vectors are not ``dim`` wide.
            ValueError: If ``k`` or ``rescore_multiplier`` is out of range.
        """
        if isinstance(queries, str):
            msg = "search_batch() takes a sequence of queries; use search() for a single query text."
            raise InvalidTypeError(msg)
        if (
            queries is None
            or isinstance(queries, (Mapping, bytes, bytearray))
            or not hasattr(queries, "__iter__")
            or (isinstance(queries, np.ndarray) and queries.ndim == 0)
        ):
            kind = type(queries).__name__  # a dict's keys were searched; None and 3 were Python's TypeError
            msg = f"queries must be a sequence of query texts or an array of query vectors; found {kind}."
            raise InvalidTypeError(msg)
        if getattr(queries, "ndim", 1) == 2 and hasattr(queries, "to_numpy"):
            queries = queries.to_numpy()  # a DataFrame of vectors (iterating it gives its column names)
        items: Any = queries if isinstance(queries, np.ndarray) else list(queries)  # type: ignore[arg-type]
        if len(items) == 0:
            return []
        full = self._query_vectors(items)
        out: list[list[dict[str, Any]]] = []
        for start in range(0, len(full), _QUERY_CHUNK):  # bounded (chunk x shortlist x dim) temporaries
            chunk = full[start : start + _QUERY_CHUNK]
            out += self._search(chunk, k, rescore_multiplier, where, nprobes, refine_factor)
        return out

    def _search(
        self,
        full: NDArray[Any],
        k: int,
        rescore_multiplier: float,
        where: str | None,
        nprobes: int | None,
        refine_factor: int | None,
        *,
        rows_in_first_read: bool = False,
    ) -> list[list[dict[str, Any]]]:
        lay = self._layout
        n = candidate_count(k, rescore_multiplier)
        # before LanceDB sees it: a NaN query matched no row, so it read as "no hits" (search_batch raised); a tiny
        # float64 query is normalised before the float32 cast (it became all zeros: no hits)
        full = unit_rows(full, "query vectors", fix="Pass finite query vectors.")
        first = truncate(full, lay.truncate_dim)
        out: list[list[dict[str, Any]]] = [[] for _ in range(len(full))]
        live = np.flatnonzero(np.any(first, axis=1))  # an empty query matches nothing (cosine skips zeros)
        if len(live) == 0:
            return out
        single = len(live) == 1
        inline = single or rows_in_first_read
        keep = [lay.id_column, lay.text_column, *lay.metadata_columns]
        query: Any = first[live[0]] if single else list(first[live])
        builder: Any = self._table.search(query, vector_column_name=lay.first_pass_column, query_type="vector")
        builder = builder.distance_type("cosine").limit(n)
        # one query: fetch the rows with their full vectors in one trip; many: vectors first, then only the winners'
        # rows (reading every candidate's text for a large batch was 10x slower)
        builder = builder.select([*keep, lay.full_column, "_distance"]) if inline else builder.with_row_id(True)
        if not inline:
            builder = builder.select([lay.full_column, "_distance"])
        if where:
            builder = builder.where(where, prefilter=True)
        if nprobes is not None:
            builder = builder.nprobes(nprobes)
        else:
            # An IVF index probes 20 partitions by default and applies the prefilter only inside them, so a narrow
            # `where` on a table of more than 20 partitions (5k+ rows) missed matching rows. 0: probe on until the
            # shortlist is full (LanceDB's documented setting for narrow filters).
            builder = builder.maximum_nprobes(0)
        if refine_factor:
            builder = builder.refine_factor(refine_factor)
        result = builder.to_arrow()
        if result.num_rows == 0:
            return out
        owner = (
            result["query_index"].to_numpy()
            if "query_index" in result.column_names
            else np.zeros(result.num_rows, dtype=np.int64)
        )
        candidates: list[list[int]] = [[] for _ in live]
        for position, query_number in enumerate(owner.tolist()):
            candidates[query_number].append(position)
        matrix = full_vectors(result[lay.full_column], repr(lay.full_column))
        everything = list(range(len(matrix)))

        def fetch(ids: list[int]) -> tuple[list[int], NDArray[np.float32]]:
            return (ids, matrix) if ids == everything else (ids, matrix[ids])  # usually all rows, in order

        hits = rescore(full[live], candidates, k=k, fetch_full_vectors=fetch)
        if inline:
            positions = sorted({p for query_hits in hits for p in query_hits.ids})
            rows = result.select(keep).take(pa.array(positions, type=pa.int64())).to_pylist()
            row_of = dict(zip(positions, rows, strict=True))
        else:
            row_ids = result["_rowid"].to_pylist()
            wanted = sorted({row_ids[p] for query_hits in hits for p in query_hits.ids})
            fetched = self._table.take_row_ids(wanted).with_row_id().select(keep).to_arrow()
            by_row_id = dict(
                zip(fetched["_rowid"].to_pylist(), fetched.drop_columns(["_rowid"]).to_pylist(), strict=True)
            )
            if len(by_row_id) < len(wanted):
                # another writer moved a hit between the two reads (an upsert or a compaction on a handle that
                # reads the latest version): search once more, reading the rows with the vectors
                return self._search(full, k, rescore_multiplier, where, nprobes, refine_factor, rows_in_first_read=True)
            row_of = {p: by_row_id[row_ids[p]] for query_hits in hits for p in query_hits.ids}
        for query_hits, i in zip(hits, live.tolist(), strict=True):
            scores = query_hits.scores.tolist()
            out[i] = [{**row_of[p], "score": score} for p, score in zip(query_hits.ids, scores, strict=True)]
        return out

    def reranker(self, k: int | None = None, *, return_score: str = "relevance") -> MatryoReranker:
        """A :class:`MatryoReranker` for this table, for use with LanceDB's own query builder.

        Args:
            k: Keep the best ``k`` rows.
            return_score: ``"relevance"`` or ``"all"``.

        Returns:
            The reranker (select ``layout.full_column`` in the query).
        """
        return MatryoReranker(self._full, vector_column=self._layout.full_column, k=k, return_score=return_score)

    def _query_vectors(self, queries: Sequence[str] | ArrayLike) -> NDArray[Any]:
        items: Any = list(queries) if not isinstance(queries, np.ndarray) else queries  # type: ignore[arg-type]
        texts = isinstance(items, np.ndarray) and items.dtype.kind in "US"
        texts = texts or (not isinstance(items, np.ndarray) and any(isinstance(q, str) for q in items))
        if texts or (len(items) and all(q is None for q in items)):  # texts: a None, NaN or 5 among them is named
            return self.encoder.encode(check_texts(items, "queries"), truncate_dim=self.dim, normalize=True)
        missing = [i for i, q in enumerate(items) if q is None] if not isinstance(items, np.ndarray) else []
        if missing:
            msg = f"queries[{missing[0]}] is None; expected a full-width query vector (or pass texts only)."
            raise InvalidTypeError(msg)
        vectors = as_numbers(items, "query vectors")  # its own dtype: _search normalises float64 as such
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise DimensionMismatchError(self._shape_message(np.shape(queries), "query vectors"))
        return vectors

    def _shape_message(self, shape: tuple[int, ...], what: str) -> str:
        single = what == "one query vector"
        wanted = f"({self.dim},) or (1, {self.dim})" if single else f"(q, {self.dim})"
        return (
            f"Found {what} of shape {tuple(shape)}; expected full-width vectors of {self.dim} floats (this table's "
            f"model), shape {wanted}. Truncated {self.truncate_dim}-d vectors are derived from them; pass texts to let "
            "the table encode them" + ("." if single else ", or use search() for one query.")
        )

    # ------------------------------------------------------------------ index
    def create_index(
        self,
        index_type: IndexType = "IVF_PQ",
        *,
        num_partitions: int | None = None,
        num_sub_vectors: int | None = None,
        replace: bool = True,
        if_too_small: Literal["skip", "raise"] = "skip",
    ) -> IndexReport:
        """Build the ANN index (cosine) on the first-pass column, sized for the table.

        Rows added afterwards are still found (LanceDB scans unindexed rows); rebuild now and then.

        Args:
            index_type: ``"IVF_PQ"`` (compact) or ``"IVF_HNSW_SQ"`` (graph, larger, faster at high recall).
            num_partitions: Override the default from :func:`default_index_params`.
            num_sub_vectors: Override the default PQ sub-vector count (IVF_PQ).
            replace: Replace an existing index.
            if_too_small: With fewer than :data:`MIN_INDEX_ROWS` rows, ``"skip"`` returns a report with
                ``built=False`` (search stays exact and flat), ``"raise"`` raises ``ValueError``.

        Returns:
            An :class:`IndexReport`.

        Raises:
            ValueError: If ``index_type`` is unknown, or the table is too small and ``if_too_small="raise"``.
        """
        if index_type not in ("IVF_PQ", "IVF_HNSW_SQ"):
            msg = f"index_type must be 'IVF_PQ' or 'IVF_HNSW_SQ'; found {index_type!r}."
            raise InvalidArgumentError(msg)
        if if_too_small not in ("skip", "raise"):
            msg = f"if_too_small must be 'skip' or 'raise'; found {if_too_small!r}."
            raise InvalidArgumentError(msg)
        rows = self.count(f"{quote(self._layout.first_pass_column)} IS NOT NULL")
        if rows < MIN_INDEX_ROWS:
            reason = (
                f"{rows} rows with vectors is fewer than the {MIN_INDEX_ROWS} an index needs to train; "
                "search stays exact (flat) until then."
            )
            if if_too_small == "raise":
                raise InvalidArgumentError(reason)
            return IndexReport(built=False, index_type=index_type, rows=rows, reason=reason)
        partitions, sub_vectors = default_index_params(rows, self.truncate_dim, index_type)
        partitions = num_partitions or partitions
        if index_type == "IVF_PQ":
            sub_vectors = num_sub_vectors or sub_vectors
            config: IvfPq | HnswSq = IvfPq(
                distance_type="cosine", num_partitions=partitions, num_sub_vectors=sub_vectors
            )
        else:
            config = HnswSq(distance_type="cosine", num_partitions=partitions)
        try:
            self._table.create_index(self._layout.first_pass_column, config=config, replace=replace)
        except RuntimeError as exc:  # Lance trains on non-zero vectors only: empty texts do not count
            if "Not enough rows to train" not in str(exc):
                raise
            reason = (
                f"{rows} rows with vectors, but fewer than the {MIN_INDEX_ROWS} an index needs to train are non-zero "
                "(empty texts are stored as zero vectors, which cosine training leaves out); search stays exact "
                "(flat) until then."
            )
            if if_too_small == "raise":
                raise InvalidArgumentError(reason) from exc
            return IndexReport(built=False, index_type=index_type, rows=rows, reason=reason)
        return IndexReport(True, index_type, rows, partitions, sub_vectors)
