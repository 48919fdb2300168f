"""--title-field: a table row's title starts every passage of the row (sources.read_source and `matryo index`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.conftest import Run
from tests.cli.test_index_search import search_json

from matryo.sources import SourceError, content_hash, read_source


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _texts(path: Path, **kwargs: object) -> list[tuple[str, str]]:
    return [(p.id, p.text) for p in read_source(path, **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_every_passage_of_a_row_starts_with_its_title(tmp_path: Path, fmt: str) -> None:
    rows = [
        {"id": "d1", "title": "Gzip", "text": "one two three\n\nfour five six"},
        {"id": "d2", "title": "Tar", "text": "seven"},
    ]
    path = tmp_path / f"rows.{fmt}"
    if fmt == "jsonl":
        _jsonl(path, rows)
    elif fmt == "csv":
        path.write_text('id,title,text\nd1,Gzip,"one two three\n\nfour five six"\nd2,Tar,seven\n', encoding="utf-8")
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    passages = list(read_source(path, title_field="title", chunk_size=4))
    assert [(p.id, p.doc, p.text) for p in passages] == [
        ("d1#0", "d1", "Gzip\n\none two three"),  # the title's word counts toward --chunk-size
        ("d1#1", "d1", "Gzip\n\nfour five six"),
        ("d2", "d2", "Tar\n\nseven"),
    ]
    assert all(p.hash == content_hash(p.text) for p in passages)  # a changed title re-embeds the passage
    assert _texts(path, chunk_size=4)[0] == ("d1#0", "one two three")  # without the option, no title


def test_rows_without_a_title_or_without_text(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "rows.jsonl",
        [
            {"id": "a", "title": "  Spaced title \n", "text": "body"},
            {"id": "b", "title": None, "text": "no title"},
            {"id": "c", "text": "title field missing in a later row"},
            {"id": "d", "title": "   ", "text": "blank title"},
            {"id": "e", "title": "Only a title", "text": ""},
            {"id": "f", "title": 1984, "text": "a number"},
            {"id": "g", "title": "", "text": None},
        ],
    )
    empty: list[str] = []
    passages = [(p.id, p.text) for p in read_source(path, title_field="title", on_empty=empty.append)]
    assert passages == [
        ("a", "Spaced title\n\nbody"),
        ("b", "no title"),
        ("c", "title field missing in a later row"),
        ("d", "blank title"),
        ("e", "Only a title"),  # as a BEIR document of a title alone
        ("f", "1984\n\na number"),
    ]
    assert empty == ["g"]


def test_a_title_column_no_early_row_has_is_a_misspelt_name(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "rows.jsonl", [{"id": "a", "name": "x", "text": "t"}])
    with pytest.raises(
        SourceError, match=r"its one row has no 'title' field \(line 1 has \['id', 'name', 'text'\]\); pass"
    ):
        list(read_source(path, title_field="title"))
    many = _jsonl(tmp_path / "many.jsonl", [{"id": str(i), "text": "t"} for i in range(1001)] + [{"title": "late"}])
    with pytest.raises(SourceError, match=r"none of its first 1000 rows has a 'title' field \(line 1 has"):
        list(read_source(many, title_field="title"))
    csv = tmp_path / "rows.csv"
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SourceError, match=r"holds no rows"):
        list(read_source(empty, title_field="title"))
    csv.write_text("id,text\na,t\nb,u\n", encoding="utf-8")  # a CSV header says it at once
    with pytest.raises(SourceError, match=r"line 1: the header has no 'Title' column \(found \['id', 'text'\]\)"):
        list(read_source(csv, title_field="Title"))


def test_rows_may_leave_out_the_title_when_a_later_row_has_it(tmp_path: Path) -> None:
    # an exporter that drops null fields, and a CSV row that drops its empty trailing title with its comma
    path = _jsonl(tmp_path / "rows.jsonl", [{"id": "a", "text": "intro"}, {"id": "b", "title": "Gzip", "text": "read"}])
    assert _texts(path, title_field="title") == [("a", "intro"), ("b", "Gzip\n\nread")]
    csv = tmp_path / "rows.csv"
    csv.write_text("id,text,title\na,body one\nb,body two,Second\n", encoding="utf-8")
    assert _texts(csv, title_field="title") == [("a", "body one"), ("b", "Second\n\nbody two")]
    csv.write_text("id,text,title\na,body one\n", encoding="utf-8")  # the header names it: no row needs to
    assert _texts(csv, title_field="title") == [("a", "body one")]


def test_a_title_is_one_line_cut_to_a_quarter_of_the_chunk_size(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "rows.jsonl",
        [
            {"id": "a", "title": "Part 1\r\n\r\nPart   2", "text": "body"},
            {"id": "b", "title": " ".join(f"w{i}" for i in range(30)), "text": "one two three"},
            {"id": "c", "title": "x" * 500, "text": "body"},
        ],
    )
    texts = dict(_texts(path, title_field="title", chunk_size=40))
    assert texts["a"] == "Part 1 Part 2\n\nbody"  # a blank line in a title would blur where the text starts
    assert texts["b"] == " ".join(f"w{i}" for i in range(9)) + " ...\n\none two three"  # 10 = 40 // 4 words
    assert texts["c"] == "x" * 196 + " ...\n\nbody"  # and 10 x 20 characters
    long_text = " ".join(["word"] * 100)
    rows = _jsonl(tmp_path / "long.jsonl", [{"id": "d", "title": "A long title of six words", "text": long_text}])
    passages = _texts(rows, title_field="title", chunk_size=40)
    assert all(len(text.split()) <= 40 for _, text in passages) and len(passages) == 3  # 34 words of text each
    one_word = _jsonl(tmp_path / "word.jsonl", [{"id": "e", "title": "y" * 5000, "text": "z" * 8000}])
    passages = _texts(one_word, title_field="title")  # the default 200 words: at most 4,000 characters
    assert all(len(text) <= 200 * 20 for _, text in passages) and len(passages) == 3, [len(t) for _, t in passages]
    for size in (1, 2, 3, 4, 5, 9):  # below 4 there is room for one title word and one word of text
        for _, text in _texts(one_word, title_field="title", chunk_size=size):
            # (and, as "\n\n" is not a word, room for 2 characters more there)
            assert len(text) <= max(size, 2) * 20 + 2 * (size < 4) and len(text.split()) <= max(size, 2), (size, text)
    words = _jsonl(tmp_path / "words.jsonl", [{"id": "f", "title": "Two words", "text": "b1 b2 b3"}])
    assert _texts(words, title_field="title", chunk_size=1)[0] == ("f#0", "Two\n\nb1")


@pytest.mark.parametrize("title", [{"en": "x"}, ["x"], True])
def test_a_title_that_is_not_text_is_refused_naming_the_line(tmp_path: Path, title: object) -> None:
    path = _jsonl(
        tmp_path / "rows.jsonl", [{"id": "a", "title": "ok", "text": "t"}, {"id": "b", "title": title, "text": "t"}]
    )
    with pytest.raises(SourceError, match=r"line 2: the 'title' field is .*, not text.*Pass --title-field NAME"):
        list(read_source(path, title_field="title"))


def test_a_lone_surrogate_in_a_title_becomes_u_fffd_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a", "title": "bad \\ud83d", "text": "body"}\n', encoding="utf-8")
    notes: list[str] = []
    assert [p.text for p in read_source(path, title_field="title", note=notes.append)] == ["bad \ufffd\n\nbody"]
    assert len(notes) == 1 and "line 1" in notes[0]


def test_a_csv_header_naming_the_title_column_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id,title,text,title\na,first,t,second\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"names the column\(s\) \['title'\] more than once"):
        list(read_source(path, title_field="title"))
    assert _texts(path) == [("a", "t")]  # a column matryo does not read may repeat


def test_title_field_is_only_for_tables_and_not_the_text_column(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("cat", encoding="utf-8")
    with pytest.raises(SourceError, match=r"^--title-field applies to a table .* is a folder. Drop it.$"):
        read_source(tmp_path, title_field="title")
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "cat"}\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"a BEIR corpus always uses its titles; SOURCE .* is a BEIR corpus"):
        read_source(beir, title_field="title")
    table = _jsonl(tmp_path / "t.jsonl", [{"body": "x"}])
    for kwargs in ({"title_field": "text"}, {"text_field": "body", "title_field": "body"}):
        with pytest.raises(SourceError, match=r"--title-field and the text field are the same column"):
            read_source(table, **kwargs)  # type: ignore[arg-type]


def test_index_with_a_title_field_stores_and_finds_the_titled_passages(run: Run, model: Path, tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "rows.jsonl",
        [
            {"id": "d1", "title": "Gzip", "text": "read compressed files"},
            {"id": "d2", "title": "Tar", "text": "archives"},
        ],
    )
    db = tmp_path / "db"
    code, _out, err = run("index", path, "--db", db, "--model", model, "--title-field", "title", "--quiet")
    assert code == 0, err
    hits = search_json(run, db, "Gzip", "-k", "2")
    assert sorted(str(h["text"]) for h in hits) == ["Gzip\n\nread compressed files", "Tar\n\narchives"]
    code, _out, err = run("index", path, "--db", db, "--title-field", "nope")
    assert code != 0 and "none of its first 2 rows has a 'nope' field" in err and "pass --title-field" in err
