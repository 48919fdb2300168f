"""matryo + LanceDB in two ways, offline with the embedded default model.

1. ``single_column``: the registered ``"matryo"`` embedding function in a ``LanceModel`` (LanceDB embeds on add
   and on search).
2. ``two_stage``: a table with a 128-d Matryoshka prefix column (first pass, ANN index) and a full-width
   column (rescoring), searched by text with a ``where`` filter.

Run::

    python examples/lancedb_quickstart.py                       # temporary database, default model
    python examples/lancedb_quickstart.py --db /tmp/lance "how do I decompress a file"

Reopening the tables in another process needs ``import matryo_lancedb`` first (LanceDB raises
``KeyError: 'matryo'`` otherwise): ``matryo_lancedb.open_two_stage_table(db, "docs")`` does both.
"""

from __future__ import annotations

import argparse
import tempfile

import lancedb
import pyarrow as pa
from lancedb.pydantic import LanceModel, Vector

from matryo_lancedb import create_two_stage_table, matryo_embeddings

DOCS = [
    ("gzip", "python", "Read and write gzip-compressed files with the gzip module."),
    ("argparse", "python", "Parse command line arguments and options with argparse."),
    ("subprocess", "python", "Run an external program and capture its output with subprocess."),
    ("statistics", "python", "Compute the mean, median and standard deviation of a list of numbers."),
    ("tar", "shell", "Create or extract a compressed tar archive: tar -czf and tar -xzf."),
    ("grep", "shell", "Search files for lines matching a regular expression with grep."),
    ("curl", "shell", "Download a file over HTTP from the command line with curl -O."),
    ("cron", "shell", "Schedule a command to run every night with a crontab entry."),
]


def single_column(db: lancedb.DBConnection, query: str, model: str | None) -> None:
    func = matryo_embeddings(model)  # every setting is stored in the table; the model loads once per process

    class Doc(LanceModel):
        name: str
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    db.drop_table("single", ignore_missing=True)  # a rerun with --db starts afresh
    table = db.create_table("single", schema=Doc)
    table.add([{"name": name, "text": text} for name, _, text in DOCS])  # embedded by LanceDB
    hits = table.search(query).distance_type("cosine").limit(3).to_list()
    print(f"single column ({func.ndims()}-d), {query!r}:")
    for hit in hits:
        print(f"  {1 - hit['_distance']:.3f}  {hit['name']}: {hit['text']}")


def two_stage(db: lancedb.DBConnection, query: str, model: str | None) -> None:
    table = create_two_stage_table(db, "docs", model, metadata={"topic": pa.string()}, mode="overwrite")
    table.add([{"id": name, "text": text, "topic": topic} for name, topic, text in DOCS])
    report = table.create_index()  # IVF_PQ on the prefix column; skipped (flat search) below 256 rows
    print(f"\ntwo-stage ({table.truncate_dim}-d first pass, {table.dim}-d rescoring), index built: {report.built}")
    for where in (None, "topic = 'shell'"):
        print(f"  {query!r}" + (f" where {where}" if where else "") + ":")
        for hit in table.search(query, k=3, where=where):
            print(f"    {hit['score']:.3f}  {hit['id']} [{hit['topic']}]: {hit['text']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", nargs="?", default="how do I decompress an archive")
    parser.add_argument("--db", help="database folder (default: a temporary one)")
    parser.add_argument("--model", help="model folder or hub id (default: the embedded default model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="matryo-lance-") as scratch:  # removed afterwards unless --db
        db = lancedb.connect(args.db or scratch)
        single_column(db, args.query, args.model)
        two_stage(db, args.query, args.model)


if __name__ == "__main__":
    main()
