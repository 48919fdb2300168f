from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from matryo.errors import DimensionMismatchError, InvalidArgumentError, InvalidTypeError, NonFiniteVectorError
from matryo.evaluation import (
    dense_run,
    dense_top_k,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    run_from_scores,
    two_stage_runs,
)
from matryo.sources import SourceError


def test_ndcg_perfect_and_worst():
    qrels = {"q1": {"a": 1, "b": 1}}
    assert ndcg_at_k({"q1": {"a": 2.0, "b": 1.0, "c": 0.5}}, qrels) == pytest.approx(1.0)
    assert ndcg_at_k({"q1": {"c": 2.0, "d": 1.0}}, qrels) == 0.0
    assert ndcg_at_k({}, qrels) == 0.0  # missing query scores 0


def test_ndcg_hand_computed():
    # relevant docs a (rel 1) and b (rel 2); ranking: c, b, a
    qrels = {"q": {"a": 1, "b": 2, "z": 0}}
    run = {"q": {"c": 3.0, "b": 2.0, "a": 1.0}}
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(run, qrels, 10) == pytest.approx(dcg / idcg)


def test_ndcg_idcg_uses_all_judged_relevant_docs():
    # 3 relevant docs, cut-off 1: the ideal DCG@1 is 1, found doc at rank 1 -> 1.0
    qrels = {"q": {"a": 1, "b": 1, "c": 1}}
    assert ndcg_at_k({"q": {"a": 1.0}}, qrels, 1) == pytest.approx(1.0)
    # at k=10 the ideal counts all three
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k({"q": {"a": 1.0}}, qrels, 10) == pytest.approx(1 / idcg)


def test_cutoff_and_mean_over_queries():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": {f"d{i}": 10.0 - i for i in range(10)} | {"a": -1.0}, "q2": {"b": 1.0}}
    assert ndcg_at_k(run, qrels, 10) == pytest.approx(0.5)
    assert mrr_at_k(run, qrels, 10) == pytest.approx(0.5)
    assert recall_at_k(run, qrels, 10) == pytest.approx(0.5)
    assert recall_at_k(run, qrels, 11) == pytest.approx(1.0)


def test_a_query_judged_only_0_scores_0_and_counts_in_the_mean():
    # pytrec_eval scores q1 (judgments all 0) and q3 (-1) 0 on every measure and BEIR averages them (checked with
    # pytrec_eval 0.5: ndcg_cut_10 0.2103, recip_rank 0.1667, recall_100 0.3333).
    # matryo used to leave q1 out of the mean (0.6309, 0.5, 1.0) while `matryo eval` counted it in "N queries".
    qrels = {"q1": {"a": 0}, "q2": {"b": 1}, "q3": {"c": -1}}
    run = {"q1": {"a": 1.0}, "q2": {"a": 1.0, "b": 0.5}, "q3": {"c": 1.0}}
    assert ndcg_at_k(run, qrels, 10) == pytest.approx(0.6309297535714575 / 3)
    assert mrr_at_k(run, qrels, 10) == pytest.approx(0.5 / 3)
    assert recall_at_k(run, qrels, 100) == pytest.approx(1 / 3)


def test_mrr_and_recall():
    qrels = {"q": {"a": 1, "b": 1}}
    run = {"q": {"x": 3.0, "a": 2.0, "y": 1.0, "b": 0.5}}
    assert mrr_at_k(run, qrels, 10) == pytest.approx(0.5)
    assert mrr_at_k(run, qrels, 1) == 0.0
    assert recall_at_k(run, qrels, 2) == pytest.approx(0.5)
    assert recall_at_k(run, qrels, 4) == pytest.approx(1.0)


def test_ties_break_by_descending_doc_id():
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0, "b": 1.0}}
    assert mrr_at_k(run, qrels, 1) == 0.0  # "b" sorts first among equal scores
    assert mrr_at_k(run, qrels, 2) == pytest.approx(0.5)


def test_dense_run_topk_and_ignore_identical_ids():
    docs = np.eye(3, dtype=np.float32)
    queries = np.array([[1.0, 0.1, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    run = dense_run(queries, docs, ["d0", "q2"], ["d0", "d1", "d2"], k=2)
    assert list(run["d0"]) == ["d0", "d1"]
    run = dense_run(queries, docs, ["d0", "d2"], ["d0", "d1", "d2"], k=2, ignore_identical_ids=True)
    assert "d0" not in run["d0"] and "d2" not in run["d2"]
    assert list(run["d0"]) == ["d1", "d2"]
    with pytest.raises(ValueError, match="width"):
        dense_run(queries[:, :2], docs, ["a", "b"], ["d0", "d1", "d2"])


def test_dense_run_cut_at_k_keeps_the_ties_trec_eval_ranks_first():
    # d00..d05 tie exactly; trec_eval orders a tie by doc id descending, so d05 (the relevant one) is rank 1.
    # argpartition used to keep an arbitrary member of the tie (d00) and NDCG@1 was 0 instead of 1.
    docs = np.array([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 20, dtype=np.float32)
    ids = [f"d{i:02d}" for i in range(len(docs))]
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    qrels = {"q": {"d05": 1}}
    deep = dense_run(query, docs, ["q"], ids, k=len(ids))
    for k in (1, 3, 5, 10):
        run = dense_run(query, docs, ["q"], ids, k=k)
        assert list(run["q"]) == list(deep["q"])[:k]
        assert ndcg_at_k(run, qrels, k) == ndcg_at_k(deep, qrels, k) == 1.0
    assert list(dense_run(query, docs, ["q"], ids, k=3)["q"]) == ["d05", "d04", "d03"]
    # The self-hit rule removes the query's own id before the cut.
    run = dense_run(query, docs, ["d05"], ids, k=2, ignore_identical_ids=True)
    assert list(run["d05"]) == ["d04", "d03"]


def test_run_from_scores_orders_and_cuts_like_trec_eval():
    scores = np.array([[0.5, 0.9, 0.5, -np.inf, 0.5]], dtype=np.float32)
    run = run_from_scores(scores, ["q"], ["a", "b", "c", "d", "e"], k=3)
    assert list(run["q"]) == ["b", "e", "c"]
    assert list(run_from_scores(scores, ["q"], ["a", "b", "c", "d", "e"], k=10)["q"]) == ["b", "e", "c", "a"]
    with pytest.raises(ValueError, match="scores must be"):
        run_from_scores(scores, ["q", "r"], ["a"], k=1)


def test_load_beir(tmp_path):
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"_id": "d1", "title": "Title", "text": "body"}) + "\n")
        fh.write(json.dumps({"_id": "d2", "title": "", "text": "only body"}) + "\n")
    with gzip.open(tmp_path / "queries.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"_id": "q1", "text": "question"}) + "\n")
        fh.write(json.dumps({"_id": "q9", "text": "no qrels"}) + "\n")
    with gzip.open(tmp_path / "qrels.tsv.gz", "wt") as fh:
        fh.write("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    corpus, queries, qrels = load_beir(tmp_path)
    assert corpus == {"d1": "Title body", "d2": "only body"}
    assert queries == {"q1": "question"}
    assert qrels == {"q1": {"d1": 1}}


def write_plain_beir(root, corpus_lines, query_lines, qrels_text):
    (root / "corpus.jsonl").write_text("".join(line + "\n" for line in corpus_lines))
    (root / "queries.jsonl").write_text("".join(line + "\n" for line in query_lines))
    (root / "qrels.tsv").write_text(qrels_text)


def test_load_beir_skips_blank_qrels_lines_and_ignores_a_bom(tmp_path):
    write_plain_beir(tmp_path, ['{"_id": "d1", "text": "a"}'], ['{"_id": "q1", "text": "x"}'], "")
    (tmp_path / "qrels.tsv").write_text("\nquery-id\tcorpus-id\tscore\n\nq1\td1\t1\n\n   \n")
    (tmp_path / "queries.jsonl").write_bytes(b"\xef\xbb\xbf" + b'{"_id": "q1", "text": "x"}\n')
    assert load_beir(tmp_path) == ({"d1": "a"}, {"q1": "x"}, {"q1": {"d1": 1}})


def test_load_beir_names_file_and_line_of_bad_rows(tmp_path):
    write_plain_beir(
        tmp_path, ['{"_id": "d1", "text": "a"}', '{"text": "b"}'], ['{"_id": "q1", "text": "x"}'], "q1\td1\t1\n"
    )
    with pytest.raises(SourceError, match=r"corpus\.jsonl line 2 has no '_id'"):
        load_beir(tmp_path)
    write_plain_beir(tmp_path, ['{"_id": "d1", "text": "a"}'], ['{"_id": "q1", "text": "x"}'], "q1\td1\t1\nq1\td2\n")
    with pytest.raises(SourceError, match=r"qrels\.tsv line 2"):
        load_beir(tmp_path)


def test_load_beir_refuses_trec_qrels_with_four_columns(tmp_path):
    # With numeric ids a TREC row "10 0 1 1" was read as query 10 judging doc "0" with relevance 1 (the doc id).
    corpus, queries = ['{"_id": "1", "text": "a"}'], ['{"_id": "10", "text": "x"}']
    for text in ("10\t0\t1\t1\n", "query-id\tcorpus-id\tscore\n10\t0\t1\t1\n", "10 0 1 1\n"):
        write_plain_beir(tmp_path, corpus, queries, text)
        line = 2 if text.startswith("query-id") else 1
        with pytest.raises(SourceError, match=rf"qrels\.tsv line {line} has \d tab-separated fields") as exc:
            load_beir(tmp_path)
        assert "query-id<TAB>corpus-id<TAB>score" in str(exc.value) and "TREC qrels file" in str(exc.value)
        assert "awk" in str(exc.value)
    write_plain_beir(tmp_path, corpus, queries, "10\t1\t1\t\n")  # a trailing tab is not a fourth column
    assert load_beir(tmp_path)[2] == {"10": {"1": 1}}


def test_load_beir_first_row_with_a_numeric_score_is_data_not_a_header(tmp_path):
    # "q1 d1 1.0" on line 1 was taken for a header and dropped silently (on line 2 it was refused).
    corpus, queries = ['{"_id": "d1", "text": "a"}'], ['{"_id": "q1", "text": "x"}']
    write_plain_beir(tmp_path, corpus, queries, "q1\td1\t1.0\n")
    with pytest.raises(SourceError, match=r"qrels\.tsv line 1 is not .* with an integer score"):
        load_beir(tmp_path)
    for header in ("query-id\tcorpus-id\tscore", "qid\tdocid\trel", "\ufeffquery-id\tcorpus-id\tscore"):
        write_plain_beir(tmp_path, corpus, queries, f"{header}\nq1\td1\t1\n")
        assert load_beir(tmp_path)[2] == {"q1": {"d1": 1}}


def test_load_beir_truncated_gzip(tmp_path):
    write_plain_beir(tmp_path, [], ['{"_id": "q1", "text": "x"}'], "q1\td1\t1\n")
    (tmp_path / "corpus.jsonl").unlink()
    data = gzip.compress("".join(json.dumps({"_id": f"d{i}", "text": "t"}) + "\n" for i in range(500)).encode())
    (tmp_path / "corpus.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="truncated gzip"):
        load_beir(tmp_path)


def test_load_beir_drops_qrels_of_queries_not_in_the_queries_file(tmp_path):
    write_plain_beir(tmp_path, ['{"_id": "d1", "text": "a"}'], ['{"_id": "q1", "text": "x"}'], "q1\td1\t1\nq2\td1\t1\n")
    notes = []
    corpus, queries, qrels = load_beir(tmp_path, warn=notes.append)
    assert queries == {"q1": "x"} and qrels == {"q1": {"d1": 1}}
    assert len(notes) == 1 and "1 of 2 judged queries" in notes[0] and "'q2'" in notes[0]
    # A run that found the relevant document for q1 scores 1, not the mean with an unrun q2.
    assert ndcg_at_k({"q1": {"d1": 1.0}}, qrels) == 1.0


def test_load_beir_notes_when_most_relevant_documents_are_not_in_the_corpus(tmp_path):
    corpus = ['{"_id": "d1", "text": "a"}', '{"_id": "d2", "text": "b"}']
    queries = ['{"_id": "q1", "text": "x"}', '{"_id": "q2", "text": "y"}', '{"_id": "q3", "text": "z"}']
    notes = []
    write_plain_beir(tmp_path, corpus, queries, "q1\td1\t1\nq2\tx2\t1\nq3\tx3\t1\nq3\td2\t0\n")
    load_beir(tmp_path, warn=notes.append)
    assert notes == [
        "2 of 3 relevant documents in qrels.tsv are not in corpus.jsonl (e.g. 'x2'); they can never be retrieved. "
        "Check that the qrels' corpus-id column holds the corpus's _id values."
    ]
    # A few missing ones (BEIR's ArguAna lacks 5 of 1,406) are normal: no note.
    notes.clear()
    write_plain_beir(tmp_path, corpus, queries, "q1\td1\t1\nq2\td2\t1\nq3\tx3\t1\n")
    load_beir(tmp_path, warn=notes.append)
    assert notes == []


# --- matryo eval review: lone surrogates, repeated ids, qrels header and long lines, zero queries, blocks ---


def test_load_beir_replaces_a_lone_surrogate_in_a_text_and_names_file_line_and_id(tmp_path):
    # A lone surrogate used to reach the tokenizer, and the eval stopped with an error naming only "texts[1]".
    # Now, as in `matryo index`, it becomes U+FFFD with a note naming the file, line and _id (first one only).
    corpus = [
        '{"_id": "d1", "text": "fine"}',
        '{"_id": "d2", "title": "half \\ud83d", "text": "an emoji"}',
        '{"_id": "d3", "text": "again \\udc00"}',
    ]
    write_plain_beir(tmp_path, corpus, ['{"_id": "q1", "text": "odd \\ud800 query"}'], "q1\td2\t1\n")
    notes = []
    corpus_, queries, _ = load_beir(tmp_path, warn=notes.append)
    assert corpus_["d2"] == "half \ufffd an emoji" and corpus_["d3"] == "again \ufffd"
    assert queries == {"q1": "odd \ufffd query"}
    corpus_note, count_note, query_note = notes
    assert f"{tmp_path / 'corpus.jsonl'} line 2 (_id 'd2')" in corpus_note and "lone UTF-16 surrogate" in corpus_note
    assert "U+FFFD" in corpus_note and "Repair the text in the file" in corpus_note
    assert "2 texts in all held lone surrogates" in count_note
    assert f"{tmp_path / 'queries.jsonl'} line 1 (_id 'q1')" in query_note


def test_load_beir_refuses_a_lone_surrogate_in_an_id(tmp_path):
    write_plain_beir(tmp_path, ['{"_id": "d1", "text": "a"}', '{"_id": "d\\ud800", "text": "b"}'], [], "")
    with pytest.raises(SourceError, match=r"corpus\.jsonl line 2: the id 'd\\ud800' holds a lone UTF-16 surrogate"):
        load_beir(tmp_path)


def test_load_beir_keeps_the_first_row_of_a_repeated_id_and_names_both_lines(tmp_path):
    # The last row used to win silently; `matryo index` keeps the first and says so.
    corpus = ['{"_id": "d1", "text": "first"}', '{"_id": "d2", "text": "b"}', '{"_id": "d1", "text": "second"}']
    queries = ['{"_id": "q1", "text": "one"}', '{"_id": "q1", "text": "two"}']
    write_plain_beir(tmp_path, corpus, queries, "q1\td1\t1\n")
    notes = []
    corpus_, queries_, _ = load_beir(tmp_path, warn=notes.append)
    assert corpus_ == {"d1": "first", "d2": "b"} and queries_ == {"q1": "one"}
    assert notes == [
        f"{tmp_path / 'corpus.jsonl'} line 3 repeats _id 'd1' of line 1; this row is left out (the first one is "
        "used, as `matryo index` does). Give every row its own _id.",
        f"{tmp_path / 'queries.jsonl'} line 2 repeats _id 'q1' of line 1; this row is left out (the first one is "
        "used, as `matryo index` does). Give every row its own _id.",
    ]


def test_load_beir_counts_repeats_beyond_ten_in_one_note(tmp_path):
    corpus = ['{"_id": "d1", "text": "a"}'] * 13
    write_plain_beir(tmp_path, corpus, ['{"_id": "q1", "text": "x"}'], "q1\td1\t1\n")
    notes = []
    load_beir(tmp_path, warn=notes.append)
    assert len(notes) == 11 and notes[-1].endswith("12 rows in all repeat an earlier _id and were left out.")


def test_load_beir_a_damaged_first_qrels_line_is_an_error_not_a_header(tmp_path):
    # Any first line whose last field was not a number was dropped as the header, so a damaged first judgment
    # vanished silently. Only a line naming the columns is a header now.
    corpus, queries = ['{"_id": "d1", "text": "a"}', '{"_id": "d2", "text": "b"}'], ['{"_id": "q1", "text": "x"}']
    for first in ("q1\td2\tx", "q1\td2\t1?", "q1\td2\tone", "query-id\tcorpus-id\tscroe", "q1\td2"):
        write_plain_beir(tmp_path, corpus, queries, f"{first}\nq1\td1\t1\n")
        with pytest.raises(SourceError, match=r"qrels\.tsv line 1 ") as exc:
            load_beir(tmp_path)
        assert "If this first line is a header, write it as BEIR does" in str(exc.value)
    for header in ("query-id\tcorpus-id\tscore", "query_id\tdoc_id\trelevance", "query-id corpus-id score"):
        write_plain_beir(tmp_path, corpus, queries, f"\n{header}\nq1\td1\t1\n")
        assert load_beir(tmp_path)[2] == {"q1": {"d1": 1}}
    write_plain_beir(tmp_path, corpus, queries, "q1\td1\t1\nquery-id\tcorpus-id\tscore\n")  # only line 1 may be one
    with pytest.raises(SourceError, match=r"qrels\.tsv line 2 is not .* with an integer score"):
        load_beir(tmp_path)


def test_load_beir_long_qrels_line_and_csv_errors_name_file_and_line(tmp_path):
    # A field over the csv module's 131,072-character limit gave a raw `_csv.Error` traceback.
    corpus, queries = ['{"_id": "d1", "text": "a"}'], ['{"_id": "q1", "text": "x"}']
    long_id = "d" * 140_000
    write_plain_beir(tmp_path, corpus, queries, f"q1\td1\t1\nq1\t{long_id}\t0\n")
    assert load_beir(tmp_path)[2] == {"q1": {"d1": 1, long_id: 0}}
    import csv

    assert csv.field_size_limit() == 131072  # the process-wide limit is restored
    write_plain_beir(tmp_path, corpus, queries, f"q1\td1\t1\nq1\t{long_id}\n")
    with pytest.raises(SourceError, match=r"qrels\.tsv line 2 has 2 tab-separated fields"):
        load_beir(tmp_path)
    write_plain_beir(tmp_path, corpus, queries, "q1\td1\t1\nq1\td1\r1\n")  # a lone CR inside a line
    with pytest.raises(SourceError, match=r"qrels\.tsv line 2 is not a tab-separated line"):
        load_beir(tmp_path)


def test_dense_run_a_zero_query_retrieves_nothing():
    # A zero vector (an empty query) tied every document at 0, so the cut kept the highest ids: a relevant doc
    # with a high id was "found" by chance.
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    queries = np.array([[0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    run = dense_run(queries, docs, ["empty", "q"], ["a", "b", "z"], k=2)
    assert run == {"empty": {}, "q": {"a": 1.0, "b": 0.0}}
    assert ndcg_at_k(run, {"empty": {"z": 1}, "q": {"a": 1}}) == 0.5  # the empty query scores 0, in the mean


def _tied_vectors(rng, n, d):
    """Small integers as float32: exact dot products in any summation order, and many ties."""
    return rng.integers(-2, 3, size=(n, d)).astype(np.float32)


def test_dense_run_in_small_blocks_equals_whole_matrix_scoring():
    rng = np.random.default_rng(0)
    docs, queries = _tied_vectors(rng, 57, 6), _tied_vectors(rng, 23, 6)
    queries[4] = 0  # an empty query
    doc_ids = [f"d{i}" for i in rng.permutation(57)]
    query_ids = [doc_ids[i] for i in range(10)] + [f"q{i}" for i in range(13)]  # some share a doc's id
    for ignore in (False, True):
        whole = run_from_scores(queries @ docs.T, query_ids, doc_ids, k=100, ignore_identical_ids=ignore)
        whole[query_ids[4]] = {}
        for k in (1, 5, 10, 57):
            expected = {q: dict(list(hits.items())[:k]) for q, hits in whole.items()}
            for chunk in (1, 2, 7, None):
                run = dense_run(queries, docs, query_ids, doc_ids, k=k, ignore_identical_ids=ignore, chunk=chunk)
                assert run == expected
                assert [list(run[q]) for q in query_ids] == [list(expected[q]) for q in query_ids]


def test_two_stage_runs_in_small_blocks_equals_rescoring_the_whole_matrix():
    from matryo.evaluation import two_stage_runs

    rng = np.random.default_rng(1)
    full_d, full_q = _tied_vectors(rng, 40, 8), _tied_vectors(rng, 9, 8)
    first_d, first_q = full_d[:, :3], full_q[:, :3]
    doc_ids, query_ids = [f"d{i:02d}" for i in range(40)], ["d03", *(f"q{i}" for i in range(8))]
    cuts = [(6, 2), (20, 10)]
    for ignore in (False, True):
        first = run_from_scores(first_q @ first_d.T, query_ids, doc_ids, k=20, ignore_identical_ids=ignore)
        expected = []
        for n, k in cuts:
            run = {}
            for row, qid in enumerate(query_ids):
                ids = list(first[qid])[:n]
                rows = [doc_ids.index(d) for d in ids]
                run.update(run_from_scores((full_d[rows] @ full_q[row])[None, :], [qid], ids, k))
            expected.append(run)
        for chunk in (1, 4, None):
            runs = two_stage_runs(first_q, first_d, full_q, full_d, query_ids, doc_ids, cuts, ignore, chunk)
            assert runs == expected
            assert [[list(r[q]) for q in query_ids] for r in runs] == [
                [list(r[q]) for q in query_ids] for r in expected
            ]


def test_dense_search_peak_memory_stays_within_the_block_budget(monkeypatch):
    # 1,024 queries were scored against the whole corpus at once (here 12 MB of float32 scores), and the two-stage
    # row kept thousands of candidates per query in dicts. Now one block of at most SCORE_BLOCK_BYTES is held.
    import tracemalloc

    from matryo import evaluation, vectors

    rng = np.random.default_rng(2)
    docs = rng.standard_normal((3000, 4)).astype(np.float32)
    queries = rng.standard_normal((1024, 4)).astype(np.float32)
    doc_ids, query_ids = [f"d{i}" for i in range(3000)], [f"q{i}" for i in range(1024)]
    monkeypatch.setattr(vectors, "SCORE_BLOCK_BYTES", 256 * 1024)  # the budget lives in matryo.vectors
    assert evaluation.block_rows(3000) == 21
    tracemalloc.start()
    try:
        run = evaluation.dense_run(queries, docs, query_ids, doc_ids, k=10)
        single = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        top10, _ = evaluation.two_stage_runs(
            queries[:, :2], docs[:, :2], queries, docs, query_ids, doc_ids, [(320, 10), (2000, 100)]
        )
        two_stage = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(run) == len(top10) == 1024 and all(len(hits) == 10 for hits in top10.values())
    assert single < 4_000_000, single  # was 13 MB: the whole 12.3 MB matrix at once
    assert two_stage < 16_000_000, two_stage  # ~7 MB, mostly the runs' 1,024 x 110 hits; was 116 MB (x 2,000 in dicts)


_Q = np.array([[1.0, 0.0]], dtype=np.float32)
_D = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)


@pytest.mark.parametrize("k", [0, -1, 1.5, "3", True])
def test_search_functions_refuse_a_bad_k(k: object) -> None:
    # k=-1 cut the run's last document silently, k=0 returned nothing, k=1.5 was numpy's TypeError
    ids = ["a", "b", "c", "d"]
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        dense_run(_Q, _D, ["q"], ids, k=k)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        dense_top_k(_Q, _D, ["q"], ids, k=k)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        run_from_scores(_Q @ _D.T, ["q"], ids, k=k)  # type: ignore[arg-type]
    for cut in ((k, 2), (4, k)):
        with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
            two_stage_runs(_Q, _D, _Q, _D, ["q"], ids, cuts=[cut])  # type: ignore[list-item]
    assert two_stage_runs(_Q, _D, _Q, _D, ["q"], ids, cuts=[]) == []


def test_repeated_ids_are_refused_instead_of_overwriting_each_others_scores() -> None:
    # doc "x" at columns 0 and 3: the run kept the second copy's score 0.0, and NDCG@1 of x was 0 instead of 1
    with pytest.raises(InvalidArgumentError, match="doc_ids must be unique; 'x' occurs more than once"):
        dense_run(_Q, _D, ["q"], ["x", "y", "z", "x"], k=4)
    with pytest.raises(InvalidArgumentError, match="doc_ids must be unique"):
        run_from_scores(_Q @ _D.T, ["q"], ["x", "y", "z", "x"])
    with pytest.raises(InvalidArgumentError, match="query_ids must be unique; 'q'"):
        dense_run(np.vstack([_Q, _Q]), _D, ["q", "q"], ["a", "b", "c", "d"])
    with pytest.raises(InvalidArgumentError, match="doc_ids must be unique"):
        two_stage_runs(_Q, _D, _Q, _D, ["q"], ["x", "y", "z", "x"], cuts=[(4, 2)])


def test_vectors_are_checked_like_everywhere_else_in_matryo() -> None:
    ids = ["a", "b", "c", "d"]
    bad = _D.copy()
    bad[2, 0] = np.nan  # was dropped from every run silently
    with pytest.raises(NonFiniteVectorError, match=r"document vectors.*ids \['c'\]"):
        dense_run(_Q, bad, ["q"], ids)
    with pytest.raises(NonFiniteVectorError, match="query vectors"):
        dense_run(np.array([[np.nan, 0.0]]), _D, ["q"], ids)  # was a run with no documents, scored 0
    assert dense_run(_Q.tolist(), _D.tolist(), ["q"], ids, k=1) == {"q": {"a": 1.0}}  # lists: AttributeError
    with pytest.raises(InvalidArgumentError, match="2-D array, one row per id; found shape"):
        dense_run(_Q[0], _D, ["q"], ids)  # one query as a 1-D vector: was "one id per row"
    with pytest.raises(InvalidTypeError, match="real numbers"):
        dense_run(_Q.astype(np.complex64), _D, ["q"], ids)
    big = _D.astype(np.float64)
    big[1, 0] = 1e39  # beyond float32's range: the float32 scoring made it inf and dropped 'b' from the run
    with pytest.raises(NonFiniteVectorError, match=r"ids \['b'\]"):
        dense_run(_Q, big, ["q"], ids)
    # object and bool matrices (DataFrame.to_numpy() of mixed columns) are numbers, as elsewhere in matryo
    assert dense_run(_Q.astype(object), _D.astype(object), ["q"], ids, k=1) == {"q": {"a": 1.0}}
    assert run_from_scores(np.array([[0.9, 0.1]], dtype=object), ["q"], ["a", "b"]) == {"q": {"a": 0.9, "b": 0.1}}
    with pytest.raises(InvalidArgumentError, match="one id per row: found 1 query ids for 1 query vectors and 3"):
        dense_run(_Q, _D, ["q"], ids[:3])
    with pytest.raises(DimensionMismatchError, match="Query width 3 differs from document width 2"):
        dense_run(np.ones((1, 3)), _D, ["q"], ids)
    with pytest.raises(InvalidArgumentError, match="scores must be a rectangular array of numbers"):
        run_from_scores([["high", "low"]], ["q"], ["a", "b"])  # type: ignore[arg-type]


def test_integer_vectors_are_scored_as_floats_in_two_stage_runs_too() -> None:
    # int8 dot products wrapped around in two_stage_runs (dense_run scored in float32)
    q = np.array([[100, 100]], dtype=np.int8)
    d = np.array([[100, 100], [2, 2], [-100, -100]], dtype=np.int8)
    ids = ["a", "b", "c"]
    dense = dense_run(q, d, ["q"], ids, k=3)
    staged = two_stage_runs(q, d, q, d, ["q"], ids, cuts=[(3, 3)])[0]
    assert list(staged["q"]) == list(dense["q"]) == ["a", "b", "c"]
    assert staged["q"]["a"] == pytest.approx(20000.0)
