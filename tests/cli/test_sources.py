"""Reading sources: chunking, table formats, BEIR folders, ids and hashes."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import pytest

from matryo import sources
from matryo.sources import DEFAULT_CHUNK_SIZE, SourceError, chunk_text, content_hash, read_source


def test_chunk_text_packs_paragraphs_and_cuts_long_ones() -> None:
    text = "a b c\n\nd e\n\n" + " ".join(["w"] * 9)
    assert chunk_text(text, 5) == ["a b c\n\nd e", "w w w w w", "w w w w"]
    assert chunk_text("one two", 5) == ["one two"]
    assert chunk_text(" \n\n ", 5) == []
    assert all(len(c.split()) <= 3 for c in chunk_text(" ".join(map(str, range(100))), 3))


def test_chunk_text_keeps_the_text_as_it_is_between_a_passages_first_and_last_word() -> None:
    # passages were joined with single spaces: code blocks, lists and tables came back as one line
    text = "Usage:\r\n\r\n```python\n  import gzip\n\tgzip.open(path)\n```\n\n- one\n- two  three\n\n  \n"
    assert chunk_text(text, 50) == ["Usage:\n\n```python\n  import gzip\n\tgzip.open(path)\n```\n\n- one\n- two  three"]
    assert chunk_text(text, 5) == ["Usage:", "```python\n  import gzip\n\tgzip.open(path)\n```", "- one\n- two  three"]
    # the character cap counts the whitespace kept: 5 words of 1 character, 40 spaces apart, are 164 characters
    spaced = (" " * 40).join("abcde")
    assert chunk_text(spaced, 5) == [spaced[:83], spaced[123:]]
    assert all(len(c) <= 5 * sources.CHARS_PER_WORD for c in chunk_text(spaced, 5))


def test_chunk_text_caps_characters_so_text_without_spaces_is_chunked_too() -> None:
    # A 5 MB base64 .md used to become one passage (and searches printed all of it).
    blob = "QUJD" * 2_500  # 10 000 characters, no whitespace
    chunks = chunk_text(blob, 5)
    assert len(chunks) == 100 and all(len(c) == 5 * sources.CHARS_PER_WORD for c in chunks)
    assert "".join(chunks) == blob
    long_words = " ".join(["x" * 30] * 10)  # 10 words, but 309 characters
    assert all(len(c) <= 100 for c in chunk_text(long_words, 5))
    assert chunk_text("a b\n\n" + "y" * 99, 5) == ["a b", "y" * 99], "a paragraph that does not fit starts a new one"


@pytest.mark.parametrize("blank", ["\r\n\r\n", "\r\r", "\n  \n", "\r\n\t \r\n", "\n\n\n"])
def test_a_blank_line_breaks_paragraphs_whatever_its_line_endings_and_spaces(blank: str) -> None:
    assert chunk_text(f"a b{blank}c d", 3) == ["a b", "c d"]
    assert chunk_text("a b\r\nc d", 3) == ["a b\nc", "d"], "a single line break is no paragraph break"


def test_folder_ids_are_relative_paths_with_chunk_numbers(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("one two three\n\nfour five six")
    (tmp_path / "b.txt").write_text("short")
    (tmp_path / "c.RST").write_text("Title\n=====\n\nSphinx docs")  # reStructuredText is prose too
    (tmp_path / "ignored.py").write_text("not a text file")
    passages = list(read_source(tmp_path, chunk_size=3))
    assert [(p.id, p.doc, p.text) for p in passages] == [
        ("b.txt", "b.txt", "short"),
        ("c.RST#0", "c.RST", "Title\n====="),
        ("c.RST#1", "c.RST", "Sphinx docs"),
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
    long = " ".join(["parse"] * (DEFAULT_CHUNK_SIZE + 1))  # longer than a chunk: BEIR documents are kept whole
    rows = [{"_id": "d1", "title": "Gzip", "text": "read files"}, {"_id": "d2", "title": "", "text": long}]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    passages = list(read_source(tmp_path))
    assert [(p.id, p.text) for p in passages] == [("d1", "Gzip read files"), ("d2", long)]


@pytest.mark.parametrize(
    ("kind", "option", "why"),
    [
        ("beir", {"chunk_size": 5}, "--chunk-size does not apply to a BEIR corpus"),
        ("beir", {"text_field": "body"}, "--text-field applies to a table"),
        ("folder", {"text_field": "body"}, "--text-field applies to a table"),
        ("file", {"text_field": "body"}, "--text-field applies to a table"),
        ("table", {"exclude": ["x"]}, "--exclude applies to a folder of text files"),
    ],
)
def test_an_option_that_does_nothing_for_the_source_is_refused(
    tmp_path: Path, kind: str, option: dict[str, object], why: str
) -> None:
    if kind == "beir":
        (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "cat"}\n')
        source = tmp_path
    elif kind == "folder":
        (tmp_path / "a.txt").write_text("cat")
        source = tmp_path
    else:
        source = tmp_path / ("a.txt" if kind == "file" else "t.jsonl")
        source.write_text("cat" if kind == "file" else '{"text": "cat"}\n')
    described = {"beir": "a BEIR corpus", "folder": "a folder", "file": "a text file", "table": "a table"}[kind]
    with pytest.raises(SourceError, match=f"^{why}.*is {described}. Drop it.$"):
        read_source(source, **option)  # type: ignore[arg-type]


def test_unknown_file_type_and_bad_chunk_size(tmp_path: Path) -> None:
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(SourceError, match="Cannot index"):
        read_source(tmp_path / "x.pdf")
    with pytest.raises(SourceError, match="Cannot index 'x.pdf'"):  # the format first, not "drop --text-field"
        read_source(tmp_path / "x.pdf", text_field="body")
    with pytest.raises(SourceError, match="chunk-size"):
        read_source(tmp_path, chunk_size=0)


def collect(path: Path, **kwargs: object) -> tuple[list[tuple[str, str]], list[str], list[str], list[str]]:
    """Read a source; return ``(id, text)`` pairs, warnings, notes and the ids reported empty."""
    warnings: list[str] = []
    notes: list[str] = []
    empty: list[str] = []
    passages = read_source(path, warn=warnings.append, note=notes.append, on_empty=empty.append, **kwargs)  # type: ignore[arg-type]
    return [(p.id, p.text) for p in passages], warnings, notes, empty


def test_csv_field_longer_than_the_csv_default_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    long_text = "word " * 40_000  # 200 000 characters, over csv's 131 072 default
    path.write_text(f"id,text\nbig,{long_text}\n")
    [(pid, text)] = collect(path, chunk_size=100_000)[0]
    assert pid == "big" and len(text.split()) == 40_000


def test_csv_error_is_a_source_error_naming_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Python < 3.11 rejects NUL bytes, every version a field over the limit: both are csv.Error.
    monkeypatch.setattr(sources, "_CSV_FIELD_LIMIT", 10)
    path = tmp_path / "rows.csv"
    path.write_bytes(b"id,text\na,fine\nb,a field longer than ten characters\n")
    limit = csv.field_size_limit()
    with pytest.raises(SourceError, match=r"rows\.csv line 3 is not valid CSV"):
        list(read_source(path))
    assert csv.field_size_limit() == limit, "the process-wide csv limit is restored"


def test_csv_lone_carriage_returns_end_lines(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(b'id,text\ra,one\rb,"two\rlines"\r')
    assert collect(path)[0] == [("a", "one"), ("b", "two\nlines")]


@pytest.mark.parametrize("name", ["rows.jsonl.gz", "corpus.jsonl.gz"])
def test_truncated_gzip_is_a_source_error(tmp_path: Path, name: str) -> None:
    data = gzip.compress("".join(json.dumps({"_id": f"d{i}", "text": f"row {i}"}) + "\n" for i in range(500)).encode())
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    source = tmp_path / name if name.startswith("rows") else tmp_path
    with pytest.raises(SourceError, match="truncated gzip"):
        list(read_source(source))


def test_beir_row_without_id_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n{"text": "no id"}\n')
    with pytest.raises(SourceError, match=r"corpus\.jsonl line 2 has no '_id'"):
        list(read_source(tmp_path))


def test_beir_empty_documents_are_skipped_and_reported(tmp_path: Path) -> None:
    rows = [{"_id": "d1", "title": "", "text": "cat"}, {"_id": "d2", "title": " ", "text": ""}]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    passages, _, _, empty = collect(tmp_path)
    assert passages == [("d1", "cat")] and empty == ["d2"]


def test_blank_or_null_ids_fall_back_to_the_next_id_field_then_the_row_number(tmp_path: Path) -> None:
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("id,text\n,first\n  ,second\nx,third\n")
    assert collect(csv_path)[0] == [("0", "first"), ("1", "second"), ("x", "third")]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"_id": null, "id": "a", "text": "one"}\n{"_id": "", "id": "b", "text": "two"}\n')
    assert collect(jsonl)[0] == [("a", "one"), ("b", "two")]


def test_repeated_document_ids_first_row_wins_with_a_note_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    rows = [{"id": "a", "text": "one two three four"}, {"id": "b", "text": "x"}, {"id": "a", "text": "five six"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    passages, warnings, notes, _ = collect(path, chunk_size=2)
    assert passages == [("a#0", "one two"), ("a#1", "three four"), ("b", "x")], "no mix of the two documents"
    assert warnings == [] and len(notes) == 1
    assert "'a'" in notes[0] and "line 3" in notes[0] and "line 1" in notes[0]


def test_many_repeated_ids_are_summed_up(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("id,text\n" + "".join(f"same,row {i}\n" for i in range(30)))
    passages, _, notes, _ = collect(path)
    assert passages == [("same", "row 0")]
    assert len(notes) == 11 and "29 rows in all" in notes[-1]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_utf8_byte_order_mark_is_ignored(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"bom.{fmt}"
    body = "id,text\nx1,the cat\n" if fmt == "csv" else '{"id": "x1", "text": "the cat"}\n'
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert collect(path)[0] == [("x1", "the cat")]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_non_utf8_table_line_is_named(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"rows.{fmt}"
    lines = ["id,text", "a,fine", "b,also fine"] if fmt == "csv" else ['{"text": "fine"}'] * 3
    data = ("\n".join(lines) + "\n").encode() * 200  # several kilobytes before the bad line
    path.write_bytes(data + "caf\xe9\n".encode("latin-1"))
    line = data.count(b"\n") + 1
    with pytest.raises(SourceError, match=rf"line {line} is not UTF-8"):
        list(read_source(path))


def test_folder_broken_symlink_is_skipped_with_a_warning_and_symlinked_folders_noted(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "own.md").write_text("own text")
    (root / "broken.md").symlink_to(tmp_path / "nowhere.md")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.md").write_text("outside text")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    passages, warnings, notes, _ = collect(root)
    assert passages == [("own.md", "own text")]
    assert len(warnings) == 1 and "broken.md" in warnings[0] and "broken symbolic link" in warnings[0]
    assert len(notes) == 1 and "linked" in notes[0] and "not followed" in notes[0]


def test_folder_symlink_to_an_indexed_file_is_skipped_and_one_to_a_file_outside_is_read(tmp_path: Path) -> None:
    # the same text under two ids came back as two identical top hits
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "own.md").write_text("own text")
    (root / "alias.md").symlink_to(root / "sub" / "own.md")
    (root / "sub" / "relative.txt").symlink_to("own.md")
    (tmp_path / "elsewhere.md").write_text("outside text")
    (root / "outside.md").symlink_to(tmp_path / "elsewhere.md")
    passages, warnings, notes, _ = collect(root)
    assert passages == [("outside.md", "outside text"), ("sub/own.md", "own text")]
    assert warnings == []
    assert notes == [
        f"{root / 'alias.md'} is a symbolic link to sub/own.md, which is indexed under its own name (and 1 more such "
        "link(s)); such links are skipped"
    ]
    passages, _, notes, _ = collect(root, exclude=("sub",))  # an excluded file is not indexed: its link is
    assert passages == [("alias.md", "own text"), ("outside.md", "outside text")] and notes == []


def test_folder_files_of_other_types_are_counted_in_one_note(tmp_path: Path) -> None:
    for name in ("a.md", "b.html", "c.html", "d.py", "Makefile", ".hidden.html", "e.HTML"):
        (tmp_path / name).write_text("text")
    passages, warnings, notes, _ = collect(tmp_path)
    assert [p[0] for p in passages] == ["a.md"] and warnings == []
    assert notes == [
        f"5 file(s) in {tmp_path} are not .txt/.md/.rst files and were not read (.html 3, (none) 1, .py 1); to "
        "index other text, give matryo index a .jsonl/.csv table of id and text as SOURCE"
    ]
    assert collect(tmp_path, exclude=("*.html", "*.HTML", "*.py", "Makefile"))[2] == []


def test_a_file_deleted_while_the_folder_is_read_is_skipped_with_a_warning(tmp_path: Path) -> None:
    # the folder is listed first and the files read afterwards: a file removed in between crashed the run with
    # os.readlink's "[Errno 2]" (taken for a broken link), and the rest of the folder was not indexed
    for name in ("a.md", "b.md", "c.md"):
        (tmp_path / name).write_text(f"text of {name}")
    warnings: list[str] = []
    passages = read_source(tmp_path, warn=warnings.append, note=lambda _: None, on_empty=lambda _: None)
    first = next(passages)
    (tmp_path / "b.md").unlink()
    assert [first.id, *(p.id for p in passages)] == ["a.md", "c.md"]
    assert len(warnings) == 1 and "b.md" in warnings[0] and "deleted or renamed while this run" in warnings[0]


def test_a_symbolic_link_loop_is_not_called_broken(tmp_path: Path) -> None:
    (tmp_path / "own.md").write_text("own text")
    (tmp_path / "loop1.md").symlink_to("loop2.md")
    (tmp_path / "loop2.md").symlink_to("loop1.md")
    passages, warnings, _, _ = collect(tmp_path)
    assert passages == [("own.md", "own text")]
    assert len(warnings) == 2 and all("symbolic link loop" in w and "broken" not in w for w in warnings)


def test_documents_without_passages_are_reported_empty(tmp_path: Path) -> None:
    (tmp_path / "blank.txt").write_text("  \n\n ")
    (tmp_path / "full.txt").write_text("text")
    assert collect(tmp_path)[3] == ["blank.txt"]
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "text": ""}\n{"id": "b", "text": null}\n{"id": "c", "text": "c"}\n')
    assert collect(rows)[3] == ["a", "b"]


def test_csv_stray_quote_stops_the_run_naming_the_line_where_its_record_starts(tmp_path: Path) -> None:
    # Without strict parsing the quote on line 4 swallowed every later line into one document.
    path = tmp_path / "quote.csv"
    path.write_text('id,text\n0,zero\n1,one\n2,"6 inch screen\n3,three\n4,four\n')
    with pytest.raises(SourceError, match=r"quote\.csv line 4 is not valid CSV \(unexpected end of data\)"):
        list(read_source(path))
    path.write_text('id,text\n0,zero\n1,"she said "hi" to me"\n2,two\n')
    with pytest.raises(SourceError, match=r"quote\.csv line 3 is not valid CSV"):
        list(read_source(path))


def test_csv_rows_are_named_by_the_line_where_their_record_starts(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('id,text\n\na,"two\n\nlines"\n\na,again\n')
    passages, _, notes, _ = collect(path)
    assert passages == [("a", "two\n\nlines")]
    assert len(notes) == 1 and notes[0].startswith(f"{path} line 7 uses") and "which line 3 already uses" in notes[0]


def test_utf8_byte_order_mark_is_dropped_from_text_files(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfthe cat")
    (tmp_path / "only-bom.md").write_bytes(b"\xef\xbb\xbf")
    passages, _, _, empty = collect(tmp_path)
    assert passages == [("bom.txt", "the cat")] and empty == ["only-bom.md"]
    assert collect(tmp_path / "bom.txt")[0] == [("bom.txt", "the cat")]


def test_folder_leaves_out_hidden_files_and_folders_and_their_symlinks(tmp_path: Path) -> None:
    # Indexing a project folder used to read .venv (1735 of 1889 passages) and warn about the venv's symlinks.
    (tmp_path / "readme.md").write_text("the project")
    (tmp_path / ".notes.md").write_text("hidden file")
    for hidden in (".venv/lib/site", ".git", ".pytest_cache"):
        (tmp_path / hidden).mkdir(parents=True)
        (tmp_path / hidden / "x.md").write_text("tool file")
    (tmp_path / ".venv" / "lib64").symlink_to(tmp_path / ".venv" / "lib", target_is_directory=True)
    passages, warnings, notes, _ = collect(tmp_path)
    assert passages == [("readme.md", "the project")] and warnings == [] and notes == []


def test_folder_exclude_globs_match_names_and_relative_paths(tmp_path: Path) -> None:
    for rel in ("a.md", "build/b.md", "docs/old/c.md", "docs/new/d.md", "docs/e.draft.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    ids = [pid for pid, _ in collect(tmp_path, exclude=["build", "docs/old/*", "*.draft.md"])[0]]
    assert ids == ["a.md", "docs/new/d.md"]
    # a trailing slash, as shell completion types a folder, matched nothing; it names folders only
    ids = [pid for pid, _ in collect(tmp_path, exclude=["build/", "docs/old/", "a.md/"])[0]]
    assert ids == ["a.md", "docs/e.draft.md", "docs/new/d.md"]
    with pytest.raises(SourceError, match="holds no .txt/.md/.rst files"):
        collect(tmp_path, exclude=["*"])
    (tmp_path / "rows.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(SourceError, match="--exclude applies to a folder"):
        collect(tmp_path / "rows.jsonl", exclude=["x"])


def test_exclude_globs_typed_from_the_current_folder_match_and_a_glob_matching_nothing_is_noted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `matryo index docs --exclude docs/drafts/` (shell completion) or `./drafts` matched nothing, without a word:
    # the drafts were indexed and searchable
    for rel in ("docs/pub.md", "docs/drafts/secret.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    monkeypatch.chdir(tmp_path)
    for glob in ("docs/drafts/", "docs/drafts", "./docs/drafts/*", str(tmp_path / "docs" / "drafts"), "drafts"):
        passages, _, notes, _ = collect(Path("docs"), exclude=[glob])
        assert [pid for pid, _ in passages] == ["pub.md"], glob
        assert notes == [], glob
    monkeypatch.chdir(tmp_path / "docs")
    passages, _, notes, _ = collect(Path("."), exclude=["./drafts", "drafst", ".git"])
    assert [pid for pid, _ in passages] == ["pub.md"]
    assert len(notes) == 2 and all("matched no file or folder in" in n and "check it" in n for n in notes)
    assert "'drafst'" in notes[0] and "'.git'" in notes[1]


def test_exclude_globs_are_not_matched_against_the_path_above_source(tmp_path: Path, monkeypatch) -> None:
    # the first version matched every glob against SOURCE's full path too: '*test*' (every pytest folder holds
    # "test") or '.*' with SOURCE '.' excluded every file
    notes_dir = tmp_path / "old-notes"
    for rel in ("a.md", "test_plan.md", "old/b.md", "scan.pdf"):
        (notes_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (notes_dir / rel).write_text(rel)
    ids = lambda *globs: [pid for pid, _ in collect(notes_dir, exclude=list(globs))[0]]  # noqa: E731
    assert ids("*test*") == ["a.md", "old/b.md"]
    assert ids("*old*") == ["a.md", "test_plan.md"]
    assert ids(str(notes_dir / "old")) == ["a.md", "test_plan.md"]  # the full path of a folder in SOURCE still works
    (notes_dir / "keep" / "old").mkdir(parents=True)
    (notes_dir / "keep" / "old" / "c.md").write_text("c")
    assert ids(str(notes_dir / "old"), "./nothing") == ["a.md", "keep/old/c.md", "test_plan.md"]  # anchored: only
    assert ids("./old") == ["a.md", "keep/old/c.md", "test_plan.md"]  # SOURCE's own old/, not every old/
    assert ids("old") == ["a.md", "test_plan.md"]  # a bare name still matches at any depth
    monkeypatch.chdir(notes_dir)
    assert [pid for pid, _ in collect(Path("."), exclude=[".*"])[0]] == [
        "a.md",
        "keep/old/c.md",
        "old/b.md",
        "test_plan.md",
    ]
    _, _, notes, _ = collect(notes_dir, exclude=["*.pdf"])
    assert notes == []  # it matched scan.pdf (which is not read anyway): no "matched nothing" note


def test_row_number_of_a_row_without_id_clashing_with_an_explicit_id_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1, "text": "one"}\n{"text": "no id"}\n{"text": "no id either"}\n{"id": 2, "text": "two"}\n')
    passages, _, notes, _ = collect(path)
    assert passages == [("1", "one"), ("2", "no id either")]
    assert len(notes) == 3
    assert "line 2 has no _id or id, so its rows are named by row number" in notes[0]
    assert "line 2 has no id, so it is named by its row number '1'" in notes[1] and "line 1 uses" in notes[1]
    assert "line 4 uses document id '2', which line 3 already has as its row number" in notes[2]


def test_rows_named_by_number_are_noted_once_per_file(tmp_path: Path) -> None:
    # deleting a row renamed every row after it, which left the old last id's text twice in a DB, unexplained
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "apples"}\n{"text": "bananas"}\n{"text": "cherries"}\n')
    passages, warnings, notes, _ = collect(path)
    assert passages == [("0", "apples"), ("1", "bananas"), ("2", "cherries")] and warnings == []
    assert len(notes) == 1 and "line 1 has no _id or id" in notes[0] and "--prune" in notes[0]
    path.write_text('{"id": "a", "text": "apples"}\n')
    assert collect(path)[2] == []


def test_folder_file_whose_name_is_not_utf8_is_skipped_with_a_warning(tmp_path: Path) -> None:
    # A Latin-1 name became a surrogate-escaped id that no store could write: every run stopped at that batch
    # with an error naming no file, and the files after it were never indexed.
    import os

    (tmp_path / "a.md").write_text("first file")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.md"), "wb") as fh:
        fh.write(b"latin-1 named file")
    (tmp_path / "z.md").write_text("last file")
    passages, warnings, _, _ = collect(tmp_path)
    assert passages == [("a.md", "first file"), ("z.md", "last file")]
    assert len(warnings) == 1 and "caf\\xe9.md" in warnings[0] and "not UTF-8" in warnings[0]
    single = tmp_path / os.fsdecode(b"caf\xe9.md")
    passages, warnings, _, _ = collect(single)
    assert passages == [] and len(warnings) == 1 and "convmv" in warnings[0]


@pytest.mark.parametrize("name", ["rows.jsonl", "corpus.jsonl"])
def test_lone_surrogate_in_a_json_text_becomes_u_fffd_with_a_note(tmp_path: Path, name: str) -> None:
    # '"\\ud83d"' (half an emoji) is valid JSON; content hashing failed on it mid-run, naming no file or line.
    path = tmp_path / name
    rows = [{"_id": f"d{i}", "text": f"row {i} \ud83d" if i in (1, 3) else f"row {i}"} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    passages, warnings, notes, _ = collect(tmp_path if name == "corpus.jsonl" else path)
    assert [p[1] for p in passages] == ["row 0", "row 1 \ufffd", "row 2", "row 3 \ufffd"] and warnings == []
    assert len(notes) == 2 and "line 2" in notes[0] and "'\\ud83d'" in notes[0] and "2 texts in all" in notes[1]
    assert all(content_hash(p[1]) for p in passages)


def test_lone_surrogate_in_an_id_stops_the_run_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"id": "ok", "text": "one"}, {"id": "x\udc00", "text": "two"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SourceError, match=r"rows\.jsonl line 2: the id 'x\\udc00' holds a lone UTF-16 surrogate"):
        collect(path)


def test_row_without_the_text_field_after_the_first_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1, "text": "one"}\n\n{"id": 5, "body": "no text field"}\n')
    with pytest.raises(SourceError, match=r"rows\.jsonl line 3 has no 'text' field") as info:
        list(read_source(path))
    assert "--text-field" not in str(info.value) and "unlike the rows before it" in str(info.value)
    path.write_text('{"id": 5, "body": "no text field"}\n')
    with pytest.raises(SourceError, match=r"rows\.jsonl line 1 has no 'text' field .*pass --text-field NAME"):
        list(read_source(path))


def test_text_that_is_an_object_list_or_boolean_is_refused_naming_the_line(tmp_path: Path) -> None:
    # {"en": ..., "de": ...} was indexed as its Python repr "{'en': 'parse arguments', ...}", true as "True"
    path = tmp_path / "odd.jsonl"
    for value, kind in (({"en": "parse"}, "an object"), (["open", "socket"], "a list"), (True, "a boolean (true)")):
        path.write_text(json.dumps({"id": "a", "text": "fine", "n": 1}) + "\n" + json.dumps({"id": "b", "text": value}))
        with pytest.raises(SourceError, match=rf"odd\.jsonl line 2: the 'text' field is {re.escape(kind)}, not text"):
            collect(path)
    path.write_text(json.dumps({"id": "n", "text": 42}) + "\n")
    assert collect(path)[0] == [("n", "42")], "a number is still indexed as its text"


def test_damaged_parquet_file_is_named(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "bad.parquet"
    path.write_bytes(bytes(range(256)) + b"not parquet")
    with pytest.raises(SourceError, match=r"bad\.parquet is not a readable Parquet file"):
        collect(path)


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from matryo.errors import MissingExtraError

    path = tmp_path / "rows.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails as when pyarrow is not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingExtraError, match=r"which is not installed. Install it with: pip install pyarrow  \(or"):
        list(read_source(path))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        # an unquoted line break split a record: its second line became a phantom document and the text was lost
        (
            "id,text\nr1,first line of the note\nthe second line was lost\nr2,another row\n",
            r"line 3 has fewer fields than the header and no 'text' field: a record cut by a line break",
        ),
        # an unquoted comma cut the text there (the rest went to DictReader's restkey)
        ("id,text\nr1,hello, world\n", r"line 2 has text in 1 field\(s\) past the header .*a comma inside a text"),
        # a comma that spills a text into Excel's unnamed trailing columns
        ("id,text,,\nr1,hello, world,\n", r"line 2 has text under a column without a name \(' world'\)"),
        # a repeated column: only the last one was read
        ("id,text,text\n1,first,second\n", r"line 1: the header names the column\(s\) \['text'\] more than once"),
        # a semicolon-separated export was told to pass --text-field (or, with a comma in a text, to quote it)
        ("id;text\n1;hello\n", r"the header is one column 'id;text'; matryo reads comma-separated CSV"),
        ("id;text\n1;hello, world\n", r"the header is one column 'id;text'; matryo reads comma-separated CSV"),
        # the first record cut by a line break was told to pass --text-field
        ("id,title,text\n1,A title with a\nbreak,body text\n", r"line 2 has fewer fields than the header"),
    ],
)
def test_malformed_csv_rows_stop_the_run_instead_of_losing_text(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "notes.csv"
    path.write_text(content)
    with pytest.raises(SourceError, match=match):
        collect(path)


def test_csv_rows_that_lose_no_text_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("id,text,source\n1,has no source\n2,has one,web\n")
    assert collect(path)[0] == [("1", "has no source"), ("2", "has one")]
    # Excel's trailing empty columns, a repeated column matryo does not read, a trailing comma: all loaded before
    path.write_text("id,text,,,tag,tag\n1,hello,,,a,b\n2,world,\n3,again,,,,,\n")
    assert collect(path)[0] == [("1", "hello"), ("2", "world"), ("3", "again")]


def test_parquet_binary_columns_are_read_as_utf8_text_and_nan_is_missing(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    table = pa.table({"id": pa.array([b"d1", b"d2"], pa.binary()), "text": pa.array([b"how to bake", b"caf\xc3\xa9"])})
    pq.write_table(table, path)
    assert collect(path)[0] == [("d1", "how to bake"), ("d2", "café")]  # were "b'd1'" and "b'how to bake'"
    bad = pa.table({"id": pa.array(["x"]), "text": pa.array([b"\xff\xfe"], pa.binary())})
    pq.write_table(bad, path)
    with pytest.raises(SourceError, match=r"row 1: the 'text' field holds bytes that are not UTF-8"):
        collect(path)
    uuids = [bytes.fromhex("00112233445566778899aabbccddeeff"), bytes.fromhex("41424344" * 3 + "0001ff00")]
    ids = pa.table({"id": pa.array(uuids, pa.binary(16)), "text": pa.array(["one", "two"])})
    pq.write_table(ids, path)  # binary UUID ids: the whole file was refused; printable-or-hex now
    assert collect(path)[0] == [("0x" + uuids[0].hex(), "one"), ("0x" + uuids[1].hex(), "two")]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"id": "a", "text": NaN}\n{"id": NaN, "text": "b"}\n')  # pandas' to_json of missing values
    passages, _, _, empty = collect(jsonl)
    assert passages == [("1", "b")] and empty == ["a"]  # "nan" was indexed as a word, and as an id
