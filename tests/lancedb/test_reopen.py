"""Close and reopen in fresh Python processes: identical results, config round-trip, the KeyError way out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lancedb
import pyarrow as pa
from lancedb.embeddings import get_registry
from tests.lancedb.helpers import make_rows, start_python

from matryo_lancedb import create_two_stage_table, open_two_stage_table

QUERIES = ["cat dog river", "fast python code", "the big house by the water", "read write file"]

WITH_IMPORT = """
import json, sys
import matryo_lancedb
tbl = matryo_lancedb.open_two_stage_table(sys.argv[1] if len(sys.argv) > 1 else {db!r}, "docs")
configs = {{col: conf.function.safe_model_dump() for col, conf in tbl.table.embedding_functions.items()}}
hits = [tbl.search(q, k=5) for q in {queries!r}]
tbl.add([{{"id": "from-child", "text": "dark light", "tag": "c"}}])
print(json.dumps({{"hits": hits, "configs": configs, "count": tbl.count()}}))
"""

WITHOUT_IMPORT = """
import json, sys
import lancedb
tbl = lancedb.connect({db!r}).open_table("docs")
errors = {{}}
for name, action in [
    ("search", lambda: tbl.search("cat dog river", vector_column_name="vector_16").limit(3).to_list()),
    ("add", lambda: tbl.add([{{"id": "x", "text": "x", "tag": "x"}}])),
]:
    try:
        action()
        errors[name] = None
    except KeyError as exc:
        errors[name] = repr(exc)
imported_early = "matryo_lancedb" in sys.modules
rows_before = tbl.count_rows()
import matryo_lancedb  # the way out: import (or call open_two_stage_table / open_table) before using the table
hits = matryo_lancedb.open_two_stage_table({db!r}, "docs").search("cat dog river", k=5)
plain = matryo_lancedb.open_table({db!r}, "docs").search("cat dog river", vector_column_name="vector_16").limit(1)
print(json.dumps({{"errors": errors, "imported_early": imported_early, "rows": rows_before, "hits": hits,
                  "plain": plain.distance_type("cosine").to_list()[0]["id"]}}))
"""


def test_reopen_in_fresh_processes(tiny64: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    tbl = create_two_stage_table(db, "docs", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    tbl.add(make_rows(300))
    expected = [tbl.search(q, k=5) for q in QUERIES]
    stored = {col: conf.function.safe_model_dump() for col, conf in tbl.table.embedding_functions.items()}
    del tbl  # closed: the children open it from disk

    # both children at once (importing lancedb is the slow part); the writing child gets its own copy
    shutil.copytree(db, tmp_path / "db-copy")
    with_import = start_python(WITH_IMPORT.format(db=str(tmp_path / "db-copy"), queries=QUERIES))
    without_import = start_python(WITHOUT_IMPORT.format(db=db))
    out_with, err_with = with_import.communicate(timeout=120)
    out_without, err_without = without_import.communicate(timeout=120)
    assert with_import.returncode == 0, err_with
    assert without_import.returncode == 0, err_without

    child = json.loads(out_with)
    assert [[h["id"] for h in hits] for hits in child["hits"]] == [[h["id"] for h in hits] for hits in expected]
    for got, want in zip(child["hits"], expected, strict=True):
        assert [h["score"] for h in got] == [h["score"] for h in want]  # same floats, bit for bit
    assert child["configs"] == stored  # the embedding config round-trips through the schema metadata
    assert child["count"] == 301

    # without the import, LanceDB opens the table but cannot embed: KeyError 'matryo' on search AND add
    fresh = json.loads(out_without)
    assert fresh["errors"] == {"search": "KeyError('matryo')", "add": "KeyError('matryo')"}
    assert not fresh["imported_early"] and fresh["rows"] == 300  # nothing lost
    assert [h["id"] for h in fresh["hits"]] == [h["id"] for h in expected[0]]
    assert fresh["plain"] in {str(i) for i in range(300)}  # a plain LanceDB text search works after open_table

    assert open_two_stage_table(tmp_path / "db-copy", "docs").count() == 301  # the child's add is on disk


def test_config_round_trips_through_schema_metadata(tiny64: Path, tmp_path: Path) -> None:
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, max_length=40)
    metadata = lancedb.connect(tmp_path / "db").open_table("docs").schema.metadata
    parsed = get_registry().parse_functions(metadata)
    assert set(parsed) == {"vector_16", "vector_full"}
    for column, conf in parsed.items():
        original = tbl.table.embedding_functions[column].function
        assert conf.function.safe_model_dump() == original.safe_model_dump()
        assert conf.function.safe_model_dump()["max_length"] == 40
        assert conf.source_column == "text"
    layout = json.loads(metadata[b"matryo"])
    assert layout["truncate_dim"] == 16 and layout["dim"] == 64


def test_a_moved_model_is_named_as_the_one_the_table_recorded(tiny64: Path, tmp_path: Path) -> None:
    # The error was a bare "Model path '...' does not exist, and it is not a hub id", not saying where it came from.
    import pytest

    from matryo import ModelNotFoundError
    from matryo.cache import clear_encoder_cache

    model = tmp_path / "my-model"
    shutil.copytree(tiny64, model)
    tbl = create_two_stage_table(tmp_path / "db", "docs", model, truncate_dim=16, metadata={"tag": pa.string()})
    tbl.add(make_rows(5))
    query = tbl.encoder.encode("cat dog river")
    model.rename(tmp_path / "moved")
    clear_encoder_cache()
    with pytest.raises(ModelNotFoundError, match="embedded with the model .*my-model.*recorded in its schema"):
        open_two_stage_table(tmp_path / "db", "docs")
    table = lancedb.connect(tmp_path / "db").open_table("docs")
    rows = table.search(query.tolist(), vector_column_name="vector_full").limit(1).to_list()
    assert len(rows) == 1, "the rows stay readable with a ready-made query vector"
