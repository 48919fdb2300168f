"""Reading sources: chunking, table formats, BEIR folders, ids and hashes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from matryo.sources import SourceError, chunk_text, content_hash, read_source


def test_chunk_text_packs_paragraphs_and_cuts_long_ones() -> None:
    text = "a b c\n\nd e\n\n" + " ".join(["w"] * 9)
    assert chunk_text(text, 5) == ["a b c d e", "w w w w w", "w w w w"]
    assert chunk_text("one two", 5) == ["one two"]
    assert chunk_text(" \n\n ", 5) == []
    assert all(len(c.split()) <= 3 for c in chunk_text(" ".join(map(str, range(100))), 3))


def test_folder_ids_are_relative_paths_with_chunk_numbers(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("one two three\n\nfour five six")
    (tmp_path / "b.txt").write_text("short")
    (tmp_path / "ignored.py").write_text("not a text file")
    passages = list(read_source(tmp_path, chunk_size=3))
    assert [(p.id, p.doc, p.text) for p in passages] == [
        ("b.txt", "b.txt", "short"),
        ("sub/a.md#0", "sub/a.md", "one two three"),
        ("sub/a.md#1", "sub/a.md", "four five six"),
    ]
    assert passages[0].hash == content_hash("short") != content_hash("short ")


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "csv", "parquet"])
def test_table_sources(tmp_path: Path, fmt: str) -> None:
    rows = [{"id": "x1", "body": "the cat"}, {"id": "x2", "body": "the dog"}]
    path = tmp_path / f"rows.{fmt}"
    if fmt.startswith("jsonl"):
        data = "".join(json.dumps(r) + "\n" for r in rows)
        if fmt.endswith("gz"):
            path.write_bytes(gzip.compress(data.encode()))
        else:
            path.write_text(data)
    elif fmt == "csv":
        path.write_text("id,body\nx1,the cat\nx2,the dog\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    passages = list(read_source(path, text_field="body"))
    assert [(p.id, p.text) for p in passages] == [("x1", "the cat"), ("x2", "the dog")]
    with pytest.raises(SourceError, match="--text-field"):
        list(read_source(path))


def test_rows_without_ids_use_row_numbers_and_bad_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"}\n')
    assert [p.id for p in read_source(path)] == ["0", "1"]
    path.write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(SourceError, match="line 2 is not valid JSON"):
        list(read_source(path))


def test_beir_folder_keeps_corpus_ids_and_title_text(tmp_path: Path) -> None:
    rows = [{"_id": "d1", "title": "Gzip", "text": "read files"}, {"_id": "d2", "title": "", "text": "parse"}]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    passages = list(read_source(tmp_path, chunk_size=1))
    assert [(p.id, p.text) for p in passages] == [("d1", "Gzip read files"), ("d2", "parse")]


def test_unknown_file_type_and_bad_chunk_size(tmp_path: Path) -> None:
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(SourceError, match="Cannot index"):
        read_source(tmp_path / "x.pdf")
    with pytest.raises(SourceError, match="chunk-size"):
        read_source(tmp_path, chunk_size=0)
