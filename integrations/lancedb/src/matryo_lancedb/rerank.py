"""A LanceDB ``Reranker`` that rescores a vector search's results by full-dimension cosine.

For users of LanceDB's own query builder: search the truncated column with an oversampled ``limit``,
select the full vector column, and let :class:`MatryoReranker` do the second stage::

    results = (
        tbl.search("a query", vector_column_name="vector_128")
        .distance_type("cosine")
        .limit(40)  # k * rescore_multiplier: LanceDB hands the whole result to the reranker
        .select(["id", "text", "vector_full", "_distance"])  # naming _distance avoids a Lance deprecation warning
        .rerank(reranker)  # MatryoReranker(full_function, k=10)
        .to_arrow()
    )
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from lancedb.rerankers import Reranker

from matryo.errors import InvalidArgumentError, InvalidTypeError
from matryo.search import rescore
from matryo_lancedb.embedding import MatryoEmbeddings

__all__ = ["MatryoReranker", "full_vectors"]


def full_vectors(column: pa.ChunkedArray | pa.Array, what: str = "the full vector column") -> np.ndarray:
    """View a ``fixed_size_list<float>`` column as an ``(n, dim)`` float32 array (zero-copy when possible).

    Args:
        column: The Arrow column.
        what: Its name, for error messages.

    Returns:
        The ``(n, dim)`` float32 matrix.

    Raises:
        TypeError: If the column is not a fixed-size list of floats.
        ValueError: If the column holds null vectors.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_fixed_size_list(array.type):
        msg = f"Expected {what} to be a fixed_size_list of floats; found {array.type}."
        raise InvalidTypeError(msg)
    width = array.type.list_size
    if len(array) == 0:
        return np.zeros((0, width), dtype=np.float32)
    if array.null_count:
        msg = f"{what} holds {array.null_count} null vector(s); expected every row to have one."
        raise InvalidArgumentError(msg)
    values = array.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(len(array), width)


class MatryoReranker(Reranker):
    """Rescore vector-search results with the full-dimension vectors stored next to them.

    The reranker embeds the query string at full width with ``function`` and scores each result's
    ``vector_column`` by cosine; results come back sorted by ``_relevance_score`` (higher is better),
    trimmed to ``k`` when given (LanceDB passes the whole ``limit``-row result and keeps what is returned).

    Args:
        function: The full-width ``"matryo"`` embedding function (``truncate_dim=None``) of the table.
        vector_column: The full vector column; it must be in the query's ``select``.
        k: Keep the best ``k`` rows (``None`` keeps all, re-sorted).
        return_score: ``"relevance"`` drops ``_distance``; ``"all"`` keeps it.
    """

    def __init__(
        self,
        function: MatryoEmbeddings,
        *,
        vector_column: str = "vector_full",
        k: int | None = None,
        return_score: str = "relevance",
    ) -> None:
        super().__init__(return_score)
        self.function = function
        self.vector_column = vector_column
        self.k = k

    def rerank_vector(self, query: str, vector_results: pa.Table) -> pa.Table:
        """Rescore a vector search's results by full-dimension cosine.

        Args:
            query: The query string (LanceDB passes the text of a text search, or ``query_string=``).
            vector_results: The first-pass rows; must include ``vector_column``.

        Returns:
            The rows, best first, with a float32 ``_relevance_score`` column.

        Raises:
            KeyError: If ``vector_column`` was not selected.
        """
        if self.vector_column not in vector_results.column_names:
            msg = (
                f"The results have no {self.vector_column!r} column: add it to the query's .select([...]) so the "
                f"reranker can rescore at full dimension. Found columns: {vector_results.column_names}."
            )
            raise KeyError(msg)
        n = vector_results.num_rows
        if n == 0:
            out = vector_results.append_column("_relevance_score", pa.array([], type=pa.float32()))
            return self._drop_distance(out)
        encoder = self.function.encoder
        query_vector = encoder.encode([query], truncate_dim=encoder.dim, normalize=True)
        matrix = full_vectors(vector_results[self.vector_column], repr(self.vector_column))
        hits = rescore(
            query_vector,
            [list(range(n))],
            k=self.k or n,
            fetch_full_vectors=lambda ids: (ids, matrix[ids]),
        )[0]
        out = vector_results.take(pa.array(hits.ids, type=pa.int64()))
        out = out.append_column("_relevance_score", pa.array(hits.scores, type=pa.float32()))
        return self._drop_distance(out)

    def rerank_hybrid(self, query: str, vector_results: pa.Table, fts_results: pa.Table) -> pa.Table:
        """Not supported: full-dimension rescoring applies to vector search only.

        Args:
            query: The query string.
            vector_results: Vector search results.
            fts_results: Full-text search results.

        Raises:
            NotImplementedError: Always.
        """
        msg = "MatryoReranker rescores vector search results only; use it with a vector (text-embedded) search."
        raise NotImplementedError(msg)

    def _drop_distance(self, table: pa.Table) -> pa.Table:
        if self.score == "relevance" and "_distance" in table.column_names:
            return table.drop_columns(["_distance"])
        return table
