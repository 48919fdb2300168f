"""Bad input on real LanceDB: each is a clear error or a tested behaviour, and nothing already stored is lost."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pytest
from tests.conftest import make_tiny_model
from tests.lancedb.helpers import make_rows

from matryo import DimensionMismatchError
from matryo.cache import clear_encoder_cache
from matryo.errors import InvalidArgumentError, InvalidTypeError, NonFiniteVectorError
from matryo_lancedb import ModelMismatchError, TwoStageTable, create_two_stage_table, open_two_stage_table


@pytest.fixture
def table(tiny64: Path, tmp_path: Path) -> TwoStageTable:
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    tbl.add(make_rows(100))
    return tbl


def test_empty_strings_are_stored_with_zero_vectors_and_never_returned(table: TwoStageTable) -> None:
    table.add([{"id": "empty", "text": "", "tag": "a"}])
    table.table.add([{"id": "empty-raw", "text": "", "tag": "a"}])  # through LanceDB's own embedding path
    assert table.count() == 102
    stored = table.table.search().where("id LIKE 'empty%'").to_arrow()
    assert stored["text"].to_pylist() == ["", ""]
    assert not np.any(stored["vector_full"].combine_chunks().flatten().to_numpy())
    ids = {h["id"] for h in table.search("cat dog", k=102, rescore_multiplier=1)}
    assert "empty" not in ids and "empty-raw" not in ids  # cosine with a zero vector is undefined: skipped
    assert table.search("", k=5) == []  # an empty query matches nothing
    assert table.search("   ", k=5) == []


def test_none_text_is_refused_and_nothing_is_written(table: TwoStageTable) -> None:
    with pytest.raises(InvalidArgumentError, match=r"id \['bad'\] have no 'text'.*Nothing was written"):
        table.add([{"id": "ok", "text": "cat", "tag": "a"}, {"id": "bad", "text": None, "tag": "a"}])
    with pytest.raises(InvalidArgumentError, match="have no 'id'"):
        table.add([{"text": "cat"}])
    with pytest.raises(TypeError, match="is not a str"):
        table.add([{"id": "num", "text": 42}])
    assert table.count() == 100 and table.count("id = 'ok'") == 0


def test_rows_that_are_not_a_list_of_dicts_are_refused_in_words(table: TwoStageTable) -> None:
    # "dictionary update sequence element #0 has length 1; 2 is required" for all three
    before = table.count()
    for call in (table.add, table.upsert):
        with pytest.raises(InvalidTypeError, match=r"not one dict; wrap a single row in a list"):
            call({"id": "new", "text": "a row"})  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError, match="not a str"):
            call("a text")  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError, match="row 1 is a str: 'hello'"):
            call([{"id": "new", "text": "x"}, "hello"])  # type: ignore[list-item]
    assert table.count() == before


def test_none_text_through_lancedb_follows_on_bad_vectors(table: TwoStageTable) -> None:
    with pytest.raises(Exception, match="on_bad_vectors"):
        table.table.add([{"id": "bad", "text": None, "tag": "a"}])
    assert table.count() == 100
    table.table.add([{"id": "null", "text": None, "tag": "a"}], on_bad_vectors="null")
    assert table.count() == 101 and table.count("vector_full IS NULL") == 1
    assert "null" not in {h["id"] for h in table.search("cat", k=101, rescore_multiplier=1)}


def test_a_one_megabyte_document_is_stored_intact_and_found(table: TwoStageTable) -> None:
    words = ("river water tree " * 90_000)[: 1 << 20]
    table.add([{"id": "big", "text": words, "tag": "b"}])
    row = table.table.search().where("id = 'big'").select(["text"]).to_arrow()
    assert len(row["text"][0].as_py()) == 1 << 20
    hit = table.search("river water tree", k=1)[0]
    assert hit["id"] == "big" and hit["score"] > 0.99 and len(hit["text"]) == 1 << 20


def test_a_query_vector_of_the_wrong_length_is_a_clear_error(table: TwoStageTable) -> None:
    for bad in (np.ones(16, dtype=np.float32), np.ones(65, dtype=np.float32), np.ones((2, 64), dtype=np.float32)):
        with pytest.raises(DimensionMismatchError, match="expected full-width vectors of 64 floats"):
            table.search(bad, k=3)
    vector = table.encoder.encode("cat dog river")
    assert table.search(vector, k=3) == table.search("cat dog river", k=3)
    # the message reports the caller's shape (a (1, 65) array used to be reported as (1, 1, 65))
    with pytest.raises(
        DimensionMismatchError,
        match=r"one query vector of shape \(1, 65\); expected full-width .* shape \(64,\) or \(1, 64\)",
    ):
        table.search(np.ones((1, 65), dtype=np.float32), k=3)
    with pytest.raises(DimensionMismatchError, match=r"shape \(2, 64\)"):
        table.search(np.ones((2, 64), dtype=np.float32), k=3)
    with pytest.raises(
        DimensionMismatchError, match=r"query vectors of shape \(3, 16\); expected full-width .* shape \(q, 64\)"
    ):
        table.search_batch(np.ones((3, 16), dtype=np.float32), k=3)


def test_bad_k_and_multiplier(table: TwoStageTable) -> None:
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        table.search("cat", k=0)
    with pytest.raises(InvalidArgumentError, match="rescore_multiplier must be a number >= 1"):
        table.search("cat", rescore_multiplier=0.5)


def test_unknown_and_reserved_columns(table: TwoStageTable, tiny64: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"Unknown column\(s\) \['colour'\]"):
        table.add([{"id": "x", "text": "cat", "colour": "red"}])
    for write in (table.add, table.upsert):  # an Arrow table with a misspelt column is not silently trimmed
        with pytest.raises(InvalidArgumentError, match=r"Unknown column\(s\) \['colour'\]"):
            write(pa.table({"id": ["x"], "text": ["cat"], "colour": ["red"]}))
    with pytest.raises(InvalidArgumentError, match="reserved"):
        create_two_stage_table(tmp_path / "db", "other", tiny64, metadata={"score": pa.float32()})
    for column in ("query_index", "_relevance_score"):  # query_index broke every later search (IndexError)
        with pytest.raises(InvalidArgumentError, match="reserved"):
            create_two_stage_table(tmp_path / "db", "other", tiny64, metadata={column: pa.int64()})
    assert table.count() == 100


def test_existing_table_with_other_metadata_columns(table: TwoStageTable, tiny64: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    with pytest.raises(InvalidArgumentError, match=r"exists with metadata columns \[\('tag', 'string'\)\].*'other'"):
        create_two_stage_table(db, "docs", tiny64, truncate_dim=16, exist_ok=True, metadata={"other": pa.int32()})
    with pytest.raises(InvalidArgumentError, match="exists with metadata columns"):  # same name, other type
        create_two_stage_table(db, "docs", tiny64, truncate_dim=16, exist_ok=True, metadata={"tag": pa.int32()})
    same = create_two_stage_table(db, "docs", tiny64, truncate_dim=16, exist_ok=True, metadata={"tag": pa.string()})
    as_is = create_two_stage_table(db, "docs", tiny64, truncate_dim=16, exist_ok=True)
    assert same.count() == as_is.count() == 100


def test_exist_ok_with_another_first_pass_width_names_the_tables_truncate_dim(
    table: TwoStageTable, tiny64: Path, tmp_path: Path
) -> None:
    """Same model, truncate_dim left at its default (128 -> 64 here): the advice was "use the table's own model"."""
    for kwargs in ({}, {"truncate_dim": 32}):
        with pytest.raises(DimensionMismatchError, match=r"pass truncate_dim=16 \(the table's\)"):
            create_two_stage_table(tmp_path / "db", "docs", tiny64, exist_ok=True, **kwargs)


def test_non_finite_query_vector_is_refused_by_search_as_by_search_batch(table: TwoStageTable) -> None:
    """LanceDB matches nothing for a NaN query, so search() returned [] (no hits) where search_batch() raised."""
    from matryo.errors import NonFiniteVectorError

    bad = np.full(64, np.nan, dtype=np.float32)
    with pytest.raises(NonFiniteVectorError, match="query vectors"):
        table.search(bad, k=3)
    with pytest.raises(NonFiniteVectorError, match="query vectors"):
        table.search_batch([bad], k=3)


def test_exist_ok_when_another_process_creates_the_table_first(
    table: TwoStageTable, tiny64: Path, tiny32: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers starting together: each saw no table, one created it, the others got LanceDB's "already exists"
    ValueError although they passed exist_ok=True. (The race is forced by hiding the table from the check.)"""
    from matryo_lancedb import create

    monkeypatch.setattr(create, "table_exists", lambda connection, name: False)
    opened = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, exist_ok=True)
    assert opened.count() == 100
    with pytest.raises(DimensionMismatchError):  # the existing table's checks still run
        create_two_stage_table(tmp_path / "db", "docs", tiny32, truncate_dim=16, exist_ok=True)
    with pytest.raises(ValueError, match="already exists"):  # without exist_ok it stays an error
        create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16)


@pytest.mark.parametrize("id_type", [pa.binary(), pa.float64(), pa.bool_(), pa.timestamp("s")])
def test_id_type_other_than_string_or_integer_is_refused(tiny64: Path, tmp_path: Path, id_type: pa.DataType) -> None:
    # delete() names ids as SQL literals: a binary or float id could be stored but never deleted
    wanted = f"id_type must be a string or integer Arrow type.*found {re.escape(str(id_type))}:"
    with pytest.raises(InvalidArgumentError, match=wanted):
        create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, id_type=id_type)
    assert not (tmp_path / "db").exists() or not list((tmp_path / "db").iterdir()), "nothing is created"
    with pytest.raises(InvalidArgumentError, match="'int65' is not an Arrow type name"):
        create_two_stage_table(tmp_path / "db", "named", tiny64, truncate_dim=16, id_type="int65")  # type: ignore[arg-type]
    for ok in (pa.large_string(), pa.int32(), pa.uint64(), "int64", "string"):  # pyarrow's names work too
        table = create_two_stage_table(tmp_path / "db", f"t{ok}", tiny64, truncate_dim=16, id_type=ok)
        key = "x" if ok in (pa.large_string(), "string") else 7
        table.add([{"id": key, "text": "a cat"}])
        assert table.delete(key) == 1 and table.count() == 0


def test_existing_table_with_another_id_type(table: TwoStageTable, tiny64: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="exists with a string id column; id_type=int64 was requested"):
        create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, exist_ok=True, id_type=pa.int64())
    same = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, exist_ok=True, id_type=pa.string())
    assert same.count() == 100 and isinstance(InvalidArgumentError("x"), ValueError)


def test_existing_table_with_another_models_dims(table: TwoStageTable, tiny32: Path, tmp_path: Path) -> None:
    with pytest.raises(DimensionMismatchError, match="exists with 64-d vectors.*requested model gives 32-d"):
        create_two_stage_table(tmp_path / "db", "docs", tiny32, truncate_dim=16, exist_ok=True)
    assert open_two_stage_table(tmp_path / "db", "docs").count() == 100  # nothing lost


def test_model_replaced_by_another_width_or_other_weights(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "model", dim=64, seed=5)
    tbl = create_two_stage_table(tmp_path / "db", "docs", model, truncate_dim=16, metadata={"tag": pa.string()})
    tbl.add(make_rows(50))
    del tbl
    shutil.move(model, tmp_path / "old-64")  # the old memory map stays valid
    make_tiny_model(model, dim=32, seed=5)
    clear_encoder_cache()  # as a new process would
    with pytest.raises(DimensionMismatchError, match="holds 64-d vectors but the model .* now gives 32-d"):
        open_two_stage_table(tmp_path / "db", "docs")
    shutil.move(model, tmp_path / "old-32")
    make_tiny_model(model, dim=64, seed=6)  # same width, other weights
    clear_encoder_cache()
    with pytest.raises(ModelMismatchError, match="fingerprint"):
        open_two_stage_table(tmp_path / "db", "docs")
    raw = lancedb.connect(tmp_path / "db").open_table("docs")
    assert raw.count_rows() == 50 and raw.to_arrow()["text"].to_pylist() == [r["text"] for r in make_rows(50)]


def test_an_id_repeated_within_one_write_is_refused(table: TwoStageTable) -> None:
    rows = [{"id": "dup", "text": "cat", "tag": "a"}, {"id": "dup", "text": "dog", "tag": "b"}]
    for write in (table.add, table.upsert):
        with pytest.raises(InvalidArgumentError, match=r"Id\(s\) \['dup'\] occur more than once in one batch.*Nothing"):
            write(rows)
        with pytest.raises(InvalidArgumentError, match="occur more than once"):
            write(pa.Table.from_pylist(rows))
    assert table.count() == 100 and table.count("id = 'dup'") == 0
    table.upsert(rows[:1])
    table.upsert(rows[1:])  # across writes, upsert replaces by id
    assert table.table.search().where("id = 'dup'").to_arrow()["text"].to_pylist() == ["dog"]


def test_floats_with_a_fraction_are_refused_for_integer_ids_and_columns(tiny64: Path, tmp_path: Path) -> None:
    # pyarrow's from_pylist cut 2.7 to 2: a duplicate id on add, row 1 replaced by upsert(1.5), delete([2.2]) deleted 2
    from matryo.errors import InvalidTypeError

    tbl = create_two_stage_table(
        tmp_path / "db", "ints", tiny64, truncate_dim=16, id_type=pa.int64(), metadata={"year": pa.int32()}
    )
    tbl.add([{"id": 1, "text": "cat dog", "year": 2020}, {"id": 2, "text": "fire water", "year": 2021}])
    with pytest.raises(InvalidTypeError, match=r"Column 'id' holds int64, but the row with id 2.7 has 2.7"):
        tbl.add([{"id": 2.7, "text": "river city", "year": 2022}])
    with pytest.raises(InvalidTypeError, match=r"Column 'id' holds int64, but the row with id 1.5 has 1.5"):
        tbl.upsert([{"id": 1.5, "text": "python code"}])
    with pytest.raises(InvalidTypeError, match=r"Column 'year' holds int32, but the row with id 3 has 2020.7"):
        tbl.add([{"id": 3, "text": "river city", "year": 2020.7}])
    with pytest.raises(InvalidTypeError, match=r"ids are int64; found 2.2 \(float\)"):
        tbl.delete([2.2])
    with pytest.raises(InvalidTypeError, match=r"ids are int64; found 'abc'"):
        tbl.delete(["abc"])  # a raw "invalid literal for int()"
    stored = tbl.table.to_arrow().select(["id", "text", "year"]).to_pylist()
    rows = sorted((r["id"], r["text"], r["year"]) for r in stored)
    assert rows == [(1, "cat dog", 2020), (2, "fire water", 2021)]  # nothing was written or deleted
    tbl.add([{"id": np.int64(3), "text": "river city", "year": 2022.0}])  # whole numbers stay fine
    assert tbl.delete(np.float64(3.0)) == 1 and tbl.delete(x for x in [1]) == 1  # a generator was a TypeError
    column = tbl.table.search().where("id = 2").to_arrow()["id"]  # an Arrow column of ids, as a search returns
    assert tbl.delete(column) == 1  # its Int64Scalars were refused by the first version of the float check
    tbl.add([{"id": 4, "text": "tree house", "year": 2023}])
    assert tbl.delete(["4"]) == 1  # a string holding a whole number, as int("4") read it before


def test_delete_takes_a_bytes_id_as_its_text(table: TwoStageTable) -> None:
    rows = make_rows(2)
    assert table.delete(rows[0]["id"].encode()) == 1  # matched "b'...'" and deleted nothing
    assert table.delete(pa.scalar(rows[1]["id"])) == 1  # one Arrow scalar: a raw TypeError
    table.add([{"id": "None", "text": "a row whose id is the word None"}])
    for ids in ([None], pa.array([None], pa.string())):  # str(None) matched the id "None"
        with pytest.raises(InvalidArgumentError, match="An id to delete is None"):
            table.delete(ids)
    assert table.delete("None") == 1


def test_creation_arguments_numpy_widths_non_nullable_metadata_and_if_too_small(tiny64: Path, tmp_path: Path) -> None:
    from matryo_lancedb import matryo_embeddings

    # a numpy int width was refused as "must be an int ... found np.int64(16)", then failed to serialise
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=np.int64(16))
    assert tbl.truncate_dim == 16 and type(tbl.truncate_dim) is int
    assert matryo_embeddings(tiny64, truncate_dim=np.int32(32)).ndims() == 32
    # a row omitting a non-nullable column failed with a raw Arrow RuntimeError holding a Python traceback
    required = [pa.field("year", pa.int32(), nullable=False)]
    with pytest.raises(InvalidArgumentError, match=r"\['year'\] are declared nullable=False"):
        create_two_stage_table(tmp_path / "db", "other", tiny64, metadata=required)
    create_two_stage_table(tmp_path / "db", "years", tiny64, metadata={"year": pa.int32()})
    # reopening an existing table with the same call stays allowed (tables made before the check was added)
    assert create_two_stage_table(tmp_path / "db", "years", tiny64, metadata=required, exist_ok=True).count() == 0
    with pytest.raises(InvalidArgumentError, match=r"if_too_small must be 'skip' or 'raise'; found 'skp'"):
        tbl.create_index(if_too_small="skp")  # type: ignore[arg-type]  # behaved as "skip"


def test_a_table_whose_schema_metadata_was_overwritten_says_how_to_recover(tiny64: Path, tmp_path: Path) -> None:
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    tbl.add(make_rows(5))
    tbl.table.add(tbl.table.to_arrow().replace_schema_metadata(None), mode="overwrite")  # LanceDB drops it here
    with pytest.raises(InvalidArgumentError, match=r"table.add\(mode='overwrite'\) drops it; table.restore\(version\)"):
        open_two_stage_table(tmp_path / "db", "docs")


def test_a_query_that_is_neither_a_text_nor_a_vector_is_refused_in_words(table: TwoStageTable) -> None:
    # search(None) said "Found one query vector of shape ()"; search(["a", "b"]) was numpy's "could not convert"
    with pytest.raises(InvalidTypeError, match="query must be a text"):
        table.search(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="use search_batch"):
        table.search(["cat", "dog"])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="rectangular array of numbers"):
        table.search([[0.1] * 64, [0.2] * 63])
    with pytest.raises(InvalidTypeError, match=r"queries\[0\] must be a str, got NoneType"):
        table.search_batch([None])  # type: ignore[list-item]  # was a dimension error about shape (1,)
    with pytest.raises(InvalidTypeError, match=r"queries\[1\] must be a str, got int"):
        table.search_batch(["cat", 5])  # type: ignore[list-item]


def test_lancemodel_rows_and_key_value_pairs_are_rows_too(tiny64: Path, tmp_path: Path) -> None:
    # the single-dict refusal first refused every non-dict row; LanceDB itself takes LanceModel rows
    from lancedb.pydantic import LanceModel

    class Doc(LanceModel):
        id: str
        text: str

    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16)
    tbl.add([Doc(id="a", text="the cat"), [("id", "b"), ("text", "a dog")]])
    assert tbl.count() == 2 and tbl.search("cat", k=1)[0]["id"] == "a"


def test_tiny_float64_query_vectors_keep_their_direction(table: TwoStageTable) -> None:
    # cast to float32 before normalising, a 1e-50 query became all zeros: no hits
    vector = table.encoder.encode("cat", truncate_dim=table.dim).astype(np.float64)
    want = [hit["id"] for hit in table.search(vector, k=3)]
    assert [hit["id"] for hit in table.search(vector * 1e-50, k=3)] == want
    assert [[hit["id"] for hit in hits] for hits in table.search_batch(np.stack([vector * 1e-50]), k=3)] == [want]
    with pytest.raises(NonFiniteVectorError, match="query vectors"):
        table.search(vector * 1e300)  # beyond float32's range: refused as before, not normalised away


def test_search_batch_refuses_what_is_not_a_list_of_queries(table: TwoStageTable) -> None:
    for bad, kind in (({"cat": 1}, "dict"), (None, "NoneType"), (3, "int")):  # a dict's keys were searched
        with pytest.raises(
            InvalidTypeError, match=f"sequence of query texts or an array of query vectors; found {kind}"
        ):
            table.search_batch(bad)  # type: ignore[arg-type]
    vector = table.encoder.encode("cat", truncate_dim=table.dim)
    with pytest.raises(InvalidTypeError, match=r"queries\[1\] is None; expected a full-width query vector"):
        table.search_batch([vector, None])  # type: ignore[list-item]  # blamed queries[0], asked for strings
    assert len(table.search_batch(iter(["cat", "dog"]), k=2)) == 2  # a generator of texts


def test_query_batches_in_other_containers(table: TwoStageTable) -> None:
    import pandas as pd

    # a text column whose first value is missing: the dropna advice, not numpy's "could not convert"
    with pytest.raises(InvalidTypeError, match=r"queries\[0\] must be a str, got float: nan.*dropna"):
        table.search_batch(pd.Series([float("nan"), "cat"]))
    vectors = table.encoder.encode(["cat", "dog"], truncate_dim=table.dim)
    by_frame = table.search_batch(pd.DataFrame(vectors), k=2)  # iterating a DataFrame gave its column names
    assert [[h["id"] for h in hits] for hits in by_frame] == [
        [h["id"] for h in hits] for hits in table.search_batch(vectors, k=2)
    ]
    with pytest.raises(InvalidTypeError, match="found ndarray"):
        table.search_batch(np.array(5.0))  # a 0-d array: Python's "len() of unsized object"
    assert [h["id"] for h in table.search(np.array("cat"), k=2)] == [h["id"] for h in table.search("cat", k=2)]
    with pytest.raises(InvalidTypeError, match=r"row 0 is a tuple"):
        table.add([("d1", "hi")])  # type: ignore[list-item]  # was "Unknown column(s) ['d', 'h']"
