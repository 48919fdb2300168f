"""Registration of the ``"matryo"`` alias and openers that make sure of it (LanceDB's ``KeyError: 'matryo'``)."""

from __future__ import annotations

import os

import lancedb
from lancedb.db import DBConnection
from lancedb.embeddings import get_registry, register
from lancedb.table import Table

from matryo_lancedb.embedding import ALIAS, MatryoEmbeddings

__all__ = ["connect", "ensure_registered", "open_table"]


def ensure_registered() -> None:
    """Make sure the ``"matryo"`` alias is in LanceDB's registry (it is on import, unless someone reset it)."""
    registry = get_registry()
    try:
        registry.get(ALIAS)
    except KeyError:
        register(ALIAS)(MatryoEmbeddings)


def connect(db: DBConnection | str | os.PathLike[str]) -> DBConnection:
    """Return ``db`` if it is a LanceDB connection, else ``lancedb.connect(db)``.

    Args:
        db: A connection, or a database path/URI.

    Returns:
        The connection.
    """
    ensure_registered()
    return db if isinstance(db, DBConnection) else lancedb.connect(os.fspath(db))


def open_table(db: DBConnection | str | os.PathLike[str], name: str) -> Table:
    """Open any LanceDB table that uses the ``"matryo"`` embedding function, registering it first.

    In a fresh process, LanceDB raises ``KeyError: 'matryo'`` on ``search``/``add`` of such a table unless
    ``matryo_lancedb`` was imported; calling this (or just importing the package) is the way out.

    Args:
        db: A LanceDB connection or a database path/URI.
        name: The table name.

    Returns:
        The LanceDB table.
    """
    ensure_registered()
    return connect(db).open_table(name)
