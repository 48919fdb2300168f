"""matryo for LanceDB: the ``"matryo"`` embedding function and a two-stage (Matryoshka) table.

Importing this package registers the ``"matryo"`` embedding function with LanceDB. A table created with it
can only be searched or written in a process that imported ``matryo_lancedb`` (LanceDB raises
``KeyError: 'matryo'`` otherwise); :func:`open_table` and :func:`open_two_stage_table` make that explicit.
"""

from __future__ import annotations

from matryo_lancedb.create import create_two_stage_table, open_two_stage_table
from matryo_lancedb.embedding import ALIAS, MatryoEmbeddings, ModelMismatchError, matryo_embeddings
from matryo_lancedb.layout import MIN_INDEX_ROWS, IndexReport, TableLayout, default_index_params
from matryo_lancedb.registry import ensure_registered, open_table
from matryo_lancedb.rerank import MatryoReranker
from matryo_lancedb.table import TwoStageTable

__version__ = "0.1.0"

__all__ = [
    "ALIAS",
    "MIN_INDEX_ROWS",
    "IndexReport",
    "MatryoEmbeddings",
    "MatryoReranker",
    "ModelMismatchError",
    "TableLayout",
    "TwoStageTable",
    "__version__",
    "create_two_stage_table",
    "default_index_params",
    "ensure_registered",
    "matryo_embeddings",
    "open_table",
    "open_two_stage_table",
]
