"""The two-stage table on real LanceDB: layout, add, search, where, reranker, index, delete, upsert."""

from __future__ import annotations

import json
import threading
import warnings
from datetime import timedelta
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pytest
from tests.lancedb.helpers import make_rows

from matryo import StaticEncoder
from matryo_lancedb import (
    MIN_INDEX_ROWS,
    ModelMismatchError,
    TwoStageTable,
    create_two_stage_table,
    default_index_params,
    open_two_stage_table,
)


@pytest.fixture
def table(tiny64: Path, tmp_path: Path) -> TwoStageTable:
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    tbl.add(make_rows(400))
    return tbl


def exact_ids(tbl: TwoStageTable, query: str, k: int, rows: list[dict[str, str]]) -> list[str]:
    """Exact full-dimension cosine top-k, straight from the encoder (numpy)."""
    enc = StaticEncoder.from_pretrained(tbl.embedding_function.model)
    docs = enc.encode([r["text"] for r in rows])
    scores = docs @ enc.encode(query)
    order = np.argsort(-scores, kind="stable")[:k]
    return [rows[i]["id"] for i in order]


def test_schema_has_text_two_vector_columns_and_two_configs(table: TwoStageTable) -> None:
    schema = table.table.schema
    assert schema.field("vector_16").type == pa.list_(pa.float32(), 16)
    assert schema.field("vector_full").type == pa.list_(pa.float32(), 64)
    configs = json.loads(schema.metadata[b"embedding_functions"])
    assert [(c["name"], c["source_column"], c["vector_column"]) for c in configs] == [
        ("matryo", "text", "vector_16"),
        ("matryo", "text", "vector_full"),
    ]
    assert configs[0]["model"]["truncate_dim"] == 16 and configs[1]["model"]["truncate_dim"] is None
    assert table.count() == 400 and table.layout.metadata_columns == ("tag",)


def test_stored_vectors_are_the_encoders(table: TwoStageTable) -> None:
    row = table.table.search().where("id = '7'").limit(1).to_arrow().to_pylist()[0]
    enc = table.encoder
    np.testing.assert_allclose(row["vector_full"], enc.encode(row["text"]), atol=1e-6)
    np.testing.assert_allclose(row["vector_16"], enc.encode(row["text"], truncate_dim=16), atol=1e-6)


def test_plain_lancedb_add_fills_both_columns(table: TwoStageTable) -> None:
    table.table.add([{"id": "raw", "text": "water fire light", "tag": "a"}])
    hit = table.search("water fire light", k=1)[0]
    assert hit["id"] == "raw" and hit["score"] == pytest.approx(1.0, abs=1e-5)


def test_search_returns_rows_ranked_by_full_dimension_cosine(table: TwoStageTable) -> None:
    rows = make_rows(400)
    query = "cat dog river fast"
    hits = table.search(query, k=5, rescore_multiplier=400 / 5)  # shortlist = everything: exact
    assert [h["id"] for h in hits] == exact_ids(table, query, 5, rows)
    assert set(hits[0]) == {"id", "text", "tag", "score"}
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    full = table.encoder.encode([query, hits[0]["text"]])
    assert scores[0] == pytest.approx(float(full[0] @ full[1]), abs=1e-5)


def test_where_filters_in_the_first_pass(table: TwoStageTable) -> None:
    hits = table.search("cat dog river", k=10, where="tag = 'a'")
    assert len(hits) == 10 and all(h["tag"] == "a" for h in hits)
    assert table.count("tag = 'a'") == 200


def test_narrow_where_finds_every_match_after_the_index_is_built(tiny64: Path, tmp_path: Path) -> None:
    """LanceDB probes 20 IVF partitions by default and prefilters only inside them: 24 matches among 6,000 rows
    (23 partitions) lost hits. The search must give the same top-10 as before the index, where it was exact."""
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    rows = make_rows(6000)
    for i, row in enumerate(rows):
        row["tag"] = "rare" if i % 250 == 0 else "common"
    tbl.add(rows)
    queries = ("cat dog river", "fast python code", "the big house by the water")
    before = [[h["id"] for h in tbl.search(q, k=10, where="tag = 'rare'")] for q in queries]
    report = tbl.create_index()
    assert report.built and report.num_partitions > 20
    after = [[h["id"] for h in tbl.search(q, k=10, where="tag = 'rare'")] for q in queries]
    assert after == before and all(len(ids) == 10 for ids in after)
    assert [[h["id"] for h in hits] for hits in tbl.search_batch(list(queries), k=10, where="tag = 'rare'")] == before


def test_reranker_with_lancedbs_own_builder_matches_search(table: TwoStageTable) -> None:
    query, k, m = "the big dog read a file", 5, 4
    result = (
        table.table.search(query, vector_column_name="vector_16")
        .distance_type("cosine")
        .limit(k * m)
        .select(["id", "text", "vector_full", "_distance"])
        .rerank(table.reranker(k=k))
        .to_arrow()
    )
    assert "_distance" not in result.column_names
    assert result["id"].to_pylist() == [h["id"] for h in table.search(query, k=k, rescore_multiplier=m)]
    scores = result["_relevance_score"].to_pylist()
    assert scores == sorted(scores, reverse=True)


def test_reranker_needs_the_full_vector_column(table: TwoStageTable) -> None:
    builder = table.table.search("cat", vector_column_name="vector_16").distance_type("cosine").limit(8)
    with pytest.raises(KeyError, match="vector_full"):
        builder.select(["id", "text"]).rerank(table.reranker()).to_arrow()


def test_search_before_and_after_an_ivf_pq_index(table: TwoStageTable) -> None:
    text = make_rows(400)[7]["text"]
    assert table.search(text, k=1)[0]["id"] == "7"  # flat (exact) first pass
    assert not table.has_index
    report = table.create_index()
    assert report.built and report.index_type == "IVF_PQ"
    assert (report.num_partitions, report.num_sub_vectors) == default_index_params(400, 16)
    assert table.has_index
    hits = table.search(text, k=10)
    assert hits[0]["id"] == "7" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5) and len(hits) == 10
    table.add([{"id": "late", "text": "python search vector query", "tag": "b"}])  # unindexed rows still found
    assert table.search("python search vector query", k=1)[0]["id"] == "late"


def test_hnsw_index(table: TwoStageTable) -> None:
    report = table.create_index("IVF_HNSW_SQ")
    assert report.built and report.num_partitions == 1
    assert table.search("fish tree house", k=3, rescore_multiplier=1)[0]["score"] > 0


def test_index_on_a_small_table_is_skipped_or_refused(tiny64: Path, tmp_path: Path) -> None:
    tbl = create_two_stage_table(tmp_path / "db", "small", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    tbl.add(make_rows(MIN_INDEX_ROWS - 1))
    report = tbl.create_index()
    assert not report.built and "fewer than" in report.reason and not tbl.has_index
    with pytest.raises(ValueError, match="fewer than"):
        tbl.create_index(if_too_small="raise")
    assert len(tbl.search("cat", k=3)) == 3  # flat search still works


def test_index_counts_only_non_empty_rows_as_training_rows(tiny64: Path, tmp_path: Path) -> None:
    """Empty texts are stored as zero vectors, which Lance leaves out of cosine training: 260 rows with 10 empty
    raised Lance's bare RuntimeError ("Not enough rows to train PQ") instead of the documented skip or ValueError."""
    tbl = create_two_stage_table(tmp_path / "db", "small", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    rows = make_rows(MIN_INDEX_ROWS + 4)
    for row in rows[:10]:
        row["text"] = ""
    tbl.add(rows)
    report = tbl.create_index()
    assert not report.built and "empty texts" in report.reason and not tbl.has_index
    with pytest.raises(ValueError, match="empty texts"):
        tbl.create_index(if_too_small="raise")
    assert len(tbl.search("cat", k=3)) == 3


def test_default_index_params_scale_with_rows() -> None:
    assert default_index_params(300, 128) == (1, 32)
    assert default_index_params(10_000, 128) == (39, 32)
    assert default_index_params(1_000_000, 128) == (1000, 32)
    assert default_index_params(1_000_000, 100) == (1000, 25)
    assert default_index_params(2_000_000, 128, "IVF_HNSW_SQ") == (4, None)


def test_delete_and_upsert_by_id(table: TwoStageTable) -> None:
    assert table.delete(["1", "2", "nope"]) == 2
    assert table.count() == 398 and table.count("id = '1'") == 0
    table.upsert([{"id": "3", "text": "small bird", "tag": "z"}, {"id": "new", "text": "dark road", "tag": "z"}])
    assert table.count() == 399 and table.count("id = '3'") == 1
    assert table.search("small bird", k=1)[0] == {
        "id": "3",
        "text": "small bird",
        "tag": "z",
        "score": pytest.approx(1.0),
    }


def test_integer_ids_and_arrow_input(tiny64: Path, tmp_path: Path) -> None:
    tbl = create_two_stage_table(tmp_path / "db", "ints", tiny64, truncate_dim=16, id_type=pa.int64())
    tbl.add(pa.table({"id": [1, 2, 3], "text": ["cat", "dog", "fish"]}))
    assert tbl.search("dog", k=1)[0]["id"] == 2
    assert tbl.delete([1, 3]) == 2 and tbl.count() == 1


def test_open_checks_the_layout_and_exist_ok(table: TwoStageTable, tiny64: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, exist_ok=True)
    assert again.count() == 400
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)], [str(w.message) for w in caught]
    with pytest.raises(ValueError, match="already exists"):
        create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16)
    db = lancedb.connect(tmp_path / "db")
    db.create_table("plain", data=[{"x": 1}])
    with pytest.raises(ValueError, match="not created by matryo_lancedb"):
        open_two_stage_table(db, "plain")


def test_narrow_model_uses_its_full_width_for_the_first_pass(tiny64: Path, tmp_path: Path) -> None:
    tbl = create_two_stage_table(tmp_path / "db", "narrow", tiny64)  # default truncate_dim > 64
    assert tbl.truncate_dim == 64 and tbl.layout.first_pass_column == "vector_64"


def test_search_batch_equals_single_searches(table: TwoStageTable) -> None:
    queries = ["cat dog river", "", "fast python code", "the big house"]
    batch = table.search_batch(queries, k=4, where="tag = 'b'")
    assert batch == [table.search(q, k=4, where="tag = 'b'") for q in queries]
    assert batch[1] == [] and all(len(hits) == 4 for i, hits in enumerate(batch) if i != 1)
    assert table.search_batch([], k=3) == []
    vectors = table.encoder.encode(queries[:2])
    assert table.search_batch(vectors, k=2) == [table.search(q, k=2) for q in queries[:2]]
    with pytest.raises(TypeError, match="use search"):
        table.search_batch("cat", k=1)


def test_search_batch_survives_a_write_between_its_two_reads(tiny64: Path, tmp_path: Path) -> None:
    # a handle reading the latest version fetched the winners by row id after another writer had moved them:
    # a bare KeyError
    db = tmp_path / "db"
    tbl = create_two_stage_table(db, "docs", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    rows = make_rows(60)
    tbl.add(rows[:30])
    tbl.add(rows[30:])  # a second fragment
    live = open_two_stage_table(lancedb.connect(db, read_consistency_interval=timedelta(0)), "docs")
    other = open_two_stage_table(lancedb.connect(db), "docs")
    queries = ["cat dog river", "fast python code"]
    before = live.search_batch(queries, k=3)
    hit_rows = {h["id"]: h for hits in before for h in hits}
    real_take = live.table.take_row_ids
    calls = []

    def racing(ids):  # the other writer rewrites every hit (new row addresses) just before the second read
        if not calls:
            other.upsert([{"id": i, "text": h["text"], "tag": h["tag"]} for i, h in hit_rows.items()])
        calls.append(ids)
        return real_take(ids)

    live.table.take_row_ids = racing
    after = live.search_batch(queries, k=3)
    assert calls, "the two-read path ran"
    assert [[h["id"] for h in hits] for hits in after] == [[h["id"] for h in hits] for hits in before]
    assert all(h["text"] == hit_rows[h["id"]]["text"] for hits in after for h in hits)


def test_a_model_with_a_stored_default_width_keeps_a_full_width_column(tiny64_default24: Path, tmp_path: Path) -> None:
    tbl = create_two_stage_table(
        tmp_path / "db", "docs", tiny64_default24, truncate_dim=16, metadata={"tag": pa.string()}
    )
    assert (tbl.dim, tbl.truncate_dim) == (64, 16)
    configs = json.loads(tbl.table.schema.metadata[b"embedding_functions"])
    assert [c["model"]["truncate_dim"] for c in configs] == [16, None]  # None = full width, as before
    tbl.add(make_rows(20))
    tbl.table.add([{"id": "raw", "text": "fast python code"}])  # LanceDB's own add fills both columns
    raw = tbl.table.search().where("id = 'raw'").limit(1).to_list()[0]
    np.testing.assert_allclose(raw["vector_full"], tbl.encoder.encode("fast python code", truncate_dim=64), atol=1e-6)
    text_hits = tbl.table.search("fast python code", vector_column_name="vector_full").distance_type("cosine")
    assert text_hits.limit(1).to_list()[0]["id"] == "raw"
    assert tbl.search("fast python code", k=1)[0]["id"] == "raw"
    again = create_two_stage_table(tmp_path / "db", "docs", tiny64_default24, truncate_dim=16, exist_ok=True)
    assert again.count() == 21
    full_first = create_two_stage_table(tmp_path / "db", "full", tiny64_default24, truncate_dim=None)
    assert (full_first.dim, full_first.truncate_dim) == (64, 64)


@pytest.mark.parametrize("as_arrow", [False, True])
def test_upsert_replaces_the_whole_row_for_dicts_and_arrow(tiny64: Path, tmp_path: Path, as_arrow: bool) -> None:
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, metadata={"year": pa.int32()})
    tbl.add([{"id": "a", "text": "the cat", "year": 2020}, {"id": "b", "text": "a dog", "year": 2021}])
    new = [{"id": "a", "text": "the big cat"}, {"id": "c", "text": "fast python code"}]  # no year given
    tbl.upsert(pa.Table.from_pylist(new) if as_arrow else new)
    rows = tbl.table.search().select(["id", "text", "year"]).to_list()
    assert sorted((r["id"], r["text"], r["year"]) for r in rows) == [
        ("a", "the big cat", None),  # replaced by id: the omitted column is null, not the old 2020
        ("b", "a dog", 2021),
        ("c", "fast python code", None),
    ]
    assert tbl.search("the big cat", k=1)[0] == {
        "id": "a",
        "text": "the big cat",
        "year": None,
        "score": pytest.approx(1),
    }


def test_delete_takes_numpy_ids(tiny64: Path, tmp_path: Path) -> None:
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    tbl.add(make_rows(10))
    assert tbl.delete(np.array(["1", "2", "nope"])) == 2
    assert tbl.delete(np.array([], dtype=str)) == 0 and tbl.count() == 8
    ints = create_two_stage_table(tmp_path / "db", "ints", tiny64, truncate_dim=16, id_type=pa.int64())
    ints.add([{"id": 1, "text": "cat"}, {"id": 2, "text": "dog"}])
    assert ints.delete(np.array([1, 5], dtype=np.int64)) == 1 and ints.count() == 1


def test_delete_of_one_id_as_a_string_deletes_that_id_only(tiny64: Path, tmp_path: Path) -> None:
    # delete("123") iterated the string and deleted ids "1", "2" and "3", keeping "123"
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16)
    tbl.add([{"id": i, "text": f"text {i}"} for i in ("1", "123", "2", "3", "abc")])
    assert tbl.delete("123") == 1
    assert sorted(r["id"] for r in tbl.table.search().limit(10).to_list()) == ["1", "2", "3", "abc"]
    assert tbl.delete("nope") == 0 and tbl.count() == 4
    ints = create_two_stage_table(tmp_path / "db", "ints", tiny64, truncate_dim=16, id_type=pa.int64())
    ints.add([{"id": 1, "text": "cat"}, {"id": 12, "text": "dog"}])
    assert ints.delete(12) == 1 and ints.delete(np.int64(1)) == 1 and ints.count() == 0


def test_add_and_upsert_take_a_pandas_dataframe(tiny64: Path, tmp_path: Path) -> None:
    # LanceDB's own add takes a DataFrame; the wrapper iterated its column names ("dictionary update sequence")
    pd = pytest.importorskip("pandas")
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["cat dog", "red fish"], "tag": ["x", "y"]}, index=[7, 9])
    assert tbl.add(frame) == 2
    assert tbl.upsert(pd.DataFrame({"id": ["b"], "text": ["blue fish"]})) == 1
    rows = sorted(tbl.table.search().limit(10).to_list(), key=lambda r: r["id"])
    assert [(r["id"], r["text"], r["tag"]) for r in rows] == [("a", "cat dog", "x"), ("b", "blue fish", None)]
    assert "__index_level_0__" not in tbl.table.schema.names


@pytest.mark.parametrize("arrow", [False, True])
def test_a_value_that_does_not_fit_its_column_is_named_with_the_row(tiny64: Path, tmp_path: Path, arrow: bool) -> None:
    # pyarrow said only "Could not convert 'not a number' with type str: tried to convert to int32"
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, metadata={"year": pa.int32()})
    rows = [{"id": "a", "text": "cat", "year": 2020}, {"id": "b", "text": "dog", "year": "not a number"}]
    given: object = pa.table({k: [str(r[k]) for r in rows] for k in rows[0]}) if arrow else rows  # "2020" casts
    with pytest.raises(TypeError, match=r"Column 'year' holds int32, but the row with id 'b' has 'not a number'"):
        tbl.add(given)  # type: ignore[arg-type]
    assert tbl.count() == 0


@pytest.mark.parametrize(
    ("column", "values", "found"),
    [("text", [42], "int64"), ("text", [True], "bool"), ("text", [1.5], "double"), ("id", [7], "int64")],
)
def test_arrow_rows_with_a_non_string_text_or_id_are_refused_as_dicts_are(
    tiny64: Path, tmp_path: Path, column: str, values: list[object], found: str
) -> None:
    # Arrow cast them silently: a numeric or boolean column in the text slot was embedded as "42" or "true"
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16)
    data = {"id": ["n"], "text": ["cat"], column: values}
    for write in (tbl.add, tbl.upsert):
        with pytest.raises(TypeError, match=rf"Column '{column}' holds {found} values, but this table's '{column}'"):
            write(pa.table(data))
        with pytest.raises(TypeError):
            write([{"id": data["id"][0], "text": data["text"][0]}])
    assert tbl.count() == 0
    ints = create_two_stage_table(tmp_path / "db", "ints", tiny64, truncate_dim=16, id_type=pa.int64())
    with pytest.raises(TypeError, match="Column 'id' holds string values, but this table's 'id' column is int64"):
        ints.add(pa.table({"id": ["7"], "text": ["cat"]}))
    assert ints.add(pa.table({"id": pa.array([7], pa.int32()), "text": pa.array(["cat"], pa.large_string())})) == 1
    # dictionary-encoded strings (a pandas category, Parquet read_dictionary) are strings, not refused
    encoded = pa.table(
        {"id": pa.array(["d1", "d2"]).dictionary_encode(), "text": pa.array(["a", "b"]).dictionary_encode()}
    )
    assert tbl.add(encoded) == 2 and sorted(r["text"] for r in tbl.table.search().limit(5).to_list()) == ["a", "b"]


def test_a_second_handle_sees_writes_as_the_readme_says(tiny64: Path, tmp_path: Path) -> None:
    writer = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16)
    pinned = open_two_stage_table(str(tmp_path / "db"), "docs")
    fresh = open_two_stage_table(lancedb.connect(tmp_path / "db", read_consistency_interval=timedelta(0)), "docs")
    writer.add([{"id": "x", "text": "cat"}])
    assert (pinned.count(), fresh.count(), [h["id"] for h in fresh.search("cat", k=1)]) == (0, 1, ["x"])
    pinned.table.checkout_latest()
    assert pinned.count() == 1 and [h["id"] for h in pinned.search("cat", k=1)] == ["x"]


def test_search_takes_a_one_row_matrix_as_one_query(table: TwoStageTable) -> None:
    matrix = table.encoder.encode(["cat dog river"])  # (1, 64): what encode([q]) returns
    assert matrix.shape == (1, 64)
    assert table.search(matrix, k=3) == table.search("cat dog river", k=3)
    assert table.search(matrix.tolist(), k=3) == table.search("cat dog river", k=3)


def test_an_add_that_fails_part_way_commits_nothing(tiny64: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # add() embeds and writes in chunks (16,384 rows; 5 here): it committed each chunk, so an error while embedding
    # the third left ten rows stored, and the retried add stored them twice (every hit returned twice)
    from matryo_lancedb import table as table_module

    monkeypatch.setattr(table_module, "_ADD_CHUNK", 5)
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, metadata={"tag": pa.string()})
    tbl.add(make_rows(3))
    versions = len(tbl.table.list_versions())
    rows = [{**row, "id": f"n{row['id']}"} for row in make_rows(23)]
    encode, calls = tbl.encoder.encode, []

    def fails_third(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("injected while embedding the third chunk")
        return encode(*args, **kwargs)

    monkeypatch.setattr(tbl.encoder, "encode", fails_third)
    with pytest.raises(MemoryError):
        tbl.add(rows)
    assert tbl.count() == 3 and len(tbl.table.list_versions()) == versions
    monkeypatch.setattr(tbl.encoder, "encode", encode)
    bad = [dict(row) for row in rows]
    bad[17]["text"] = "a lone surrogate \ud800 in the fourth chunk"  # found only when that chunk is embedded
    with pytest.raises(ValueError, match="surrogate"):
        tbl.add(bad)
    assert tbl.count() == 3 and len(tbl.table.list_versions()) == versions
    assert tbl.add(rows) == 23
    assert tbl.count() == 26 and len(tbl.table.list_versions()) == versions + 1  # one commit for all five chunks
    hits = tbl.search(rows[7]["text"], k=3)
    assert hits[0]["id"] == "n7" and len({hit["id"] for hit in hits}) == 3
    stored = tbl.table.search().where("id = 'n22'").limit(1).to_list()[0]
    want = encode([rows[22]["text"]], truncate_dim=tbl.dim, normalize=tbl.embedding_function.normalize)[0]
    np.testing.assert_allclose(stored[tbl.layout.full_column], want, atol=1e-6)


def test_overwrite_replaces_the_rows_and_a_new_table_is_created_without_lances_warning(
    tiny64: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    meta = {"tag": pa.string()}
    tbl = create_two_stage_table(db, "docs", tiny64, truncate_dim=16, metadata=meta, mode="overwrite")  # no table yet
    tbl.add(make_rows(5))
    assert "No existing dataset" not in capfd.readouterr().err  # Lance's WARN line for overwriting nothing
    again = create_two_stage_table(db, "docs", tiny64, truncate_dim=16, metadata=meta, mode="overwrite")
    assert again.count() == 0
    again.add(make_rows(3))
    assert open_two_stage_table(db, "docs").count() == 3


def test_ids_with_quotes_are_deleted_and_upserted_exactly(tiny64: Path, tmp_path: Path) -> None:
    # delete and upsert name ids in SQL: a quote must be escaped, or the statement fails or hits another row
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16)
    tbl.add(
        [{"id": "o'brien", "text": "a cat"}, {"id": "obrien", "text": "a dog"}, {"id": "x' OR '1'='1", "text": "z"}]
    )
    tbl.upsert([{"id": "o'brien", "text": "a bird"}])
    assert tbl.count() == 3 and tbl.count("text = 'a bird'") == 1
    assert tbl.delete(["x' OR '1'='1"]) == 1 and tbl.count() == 2
    assert tbl.delete("o'brien") == 1 and [r["id"] for r in tbl.table.to_arrow().to_pylist()] == ["obrien"]


def test_upserts_of_one_process_never_store_an_id_twice(tiny64: Path, tmp_path: Path) -> None:
    # a handle merged against the version it had read: an id another handle had just inserted was inserted again
    tbl = create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16)
    other = open_two_stage_table(lancedb.connect(tmp_path / "db"), "docs")  # reads the empty version
    tbl.upsert([{"id": "x", "text": "a cat"}])
    other.upsert([{"id": "x", "text": "a dog"}, {"id": "y", "text": "a bird"}])
    tbl.table.checkout_latest()
    assert sorted(tbl.table.to_arrow().column("id").to_pylist()) == ["x", "y"]
    assert tbl.count("text = 'a dog'") == 1

    # threads sharing one handle, and threads with a handle each: three threads upserting 30 shared ids stored 90
    errors: list[BaseException] = []

    def write(handle: TwoStageTable, who: str) -> None:
        try:
            for round_ in range(4):
                handle.upsert([{"id": f"s{i}", "text": f"{who} {round_} cat {i}"} for i in range(30)])
        except BaseException as exc:  # noqa: BLE001  # reported below
            errors.append(exc)

    for own_handle in (False, True):
        name = f"threads{int(own_handle)}"
        shared = create_two_stage_table(tmp_path / "db", name, tiny64, truncate_dim=16)
        handles = [open_two_stage_table(tmp_path / "db", name) if own_handle else shared for _ in range(3)]
        threads = [threading.Thread(target=write, args=(h, w)) for h, w in zip(handles, "ABC", strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        shared.table.checkout_latest()
        ids = shared.table.to_arrow().column("id").to_pylist()
        assert len(ids) == len(set(ids)) == 30, (own_handle, len(ids))


def test_exist_ok_refuses_other_vector_settings_of_the_same_model(tiny64: Path, tmp_path: Path) -> None:
    create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16)
    for other in ({"normalize": False}, {"max_length": 8}):  # same widths, other vectors
        with pytest.raises(ModelMismatchError, match="other model settings"):
            create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, exist_ok=True, **other)
    assert create_two_stage_table(tmp_path / "db", "docs", tiny64, truncate_dim=16, exist_ok=True).count() == 0


def test_the_first_pass_asks_lancedb_for_exactly_the_candidate_count(table: TwoStageTable, monkeypatch) -> None:
    from lancedb.query import LanceVectorQueryBuilder

    limits: list[int] = []
    real = LanceVectorQueryBuilder.limit
    monkeypatch.setattr(LanceVectorQueryBuilder, "limit", lambda self, n: limits.append(n) or real(self, n))
    table.search("alpha", k=3, rescore_multiplier=2.5)
    table.search_batch(["alpha", "beta"], k=4, rescore_multiplier=3)
    assert limits[0] == 8 and 12 in limits  # ceil(3 x 2.5), 4 x 3
    limits.clear()
    assert table.search("", k=3) == [] and table.search_batch(["", "  "], k=3) == [[], []]
    assert limits == []  # an empty query never reaches LanceDB (a zero vector matches nothing under cosine)


def test_index_and_search_options_reach_lancedb(table: TwoStageTable, monkeypatch) -> None:
    # num_partitions, num_sub_vectors, replace, nprobes and refine_factor could be dropped without a failing test
    from lancedb.query import LanceVectorQueryBuilder

    calls: list[dict[str, object]] = []
    real_create = table.table.create_index
    monkeypatch.setattr(table.table, "create_index", lambda *a, **kw: calls.append(kw) or real_create(*a, **kw))
    report = table.create_index(num_partitions=2, num_sub_vectors=2)
    config = calls[-1]["config"]
    assert report.built and (config.num_partitions, config.num_sub_vectors) == (2, 2)  # type: ignore[attr-defined]
    assert calls[-1]["replace"] is True
    with pytest.raises(RuntimeError, match="already exists"):
        table.create_index(replace=False)
    assert calls[-1]["replace"] is False
    seen: dict[str, list[int]] = {"nprobes": [], "refine_factor": []}
    for name in seen:
        real = getattr(LanceVectorQueryBuilder, name)
        monkeypatch.setattr(
            LanceVectorQueryBuilder, name, lambda self, n, name=name, real=real: seen[name].append(n) or real(self, n)
        )
    table.search("alpha", k=3, nprobes=7, refine_factor=3)
    assert seen == {"nprobes": [7], "refine_factor": [3]}
