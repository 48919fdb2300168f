from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from matryo.evaluation import dense_run, load_beir, mrr_at_k, ndcg_at_k, recall_at_k, run_from_scores
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
