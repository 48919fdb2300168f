"""`matryo eval` on awkward BEIR folders: lone surrogates, repeated ids, empty queries, ArguAna's rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.conftest import Run
from tests.cli.test_commands import CORPUS, write_beir

from matryo.cli_eval import evaluate
from matryo.errors import DataNotFoundError, InvalidArgumentError


def test_eval_runs_past_a_lone_surrogate_and_names_file_line_and_id(run: Run, model: Path, tmp_path: Path) -> None:
    # The eval used to stop with "texts[1] is not valid Unicode": no file, line or _id to find the row by.
    # (json.dumps writes the lone surrogate as the JSON escape "\ud83d", as such files hold it.)
    queries = {"q1": "cat dog", "q2": "fish \ud83d"}
    beir = write_beir(tmp_path / "b", CORPUS, queries, [("q1", "d1", 1), ("q2", "d4", 1)])
    code, out, err = run("eval", beir, "--model", model, "--dims", "full")
    assert code == 0, err
    assert f"matryo: warning: {beir / 'queries.jsonl'} line 2 (_id 'q2'): the text holds a lone UTF-16 surrogate" in err
    assert "| 256 |" in out


def test_eval_repeated_id_keeps_the_first_row_and_warns(run: Run, model: Path, tmp_path: Path) -> None:
    # The last row of a repeated _id used to replace the first silently (`matryo index` keeps the first).
    beir = write_beir(tmp_path / "b", CORPUS, {"q1": "the cat and the dog"}, [("q1", "d1", 1)])
    with (beir / "queries.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "q1", "text": "fish in the river water"}) + "\n")
    rows, info = evaluate(beir, str(model), "full")
    assert rows[0]["ndcg@10"] == pytest.approx(1.0)  # the first q1, which is d1's text, was evaluated
    assert info["notes"] == [
        f"{beir / 'queries.jsonl'} line 2 repeats _id 'q1' of line 1; this row is left out (the first one is used, "
        "as `matryo index` does). Give every row its own _id."
    ]
    code, _, err = run("eval", beir, "--model", model, "--dims", "full")
    assert code == 0 and "matryo: warning: " in err and "line 2 repeats _id 'q1' of line 1" in err


def test_eval_empty_queries_retrieve_nothing_score_0_and_are_counted(run: Run, model: Path, tmp_path: Path) -> None:
    # An empty query encodes to a zero vector: every document tied at 0 and the highest id (d6) came first, so
    # q1 and q2 "found" d6 and every row scored 1.0 instead of 1/3.
    queries = {"q1": "", "q2": "   ", "q3": "the cat and the dog"}
    beir = write_beir(tmp_path / "b", CORPUS, queries, [("q1", "d6", 1), ("q2", "d6", 1), ("q3", "d1", 1)])
    rows, info = evaluate(beir, str(model), "32,full")
    assert info["queries"] == 3
    for row in rows:
        assert (row["ndcg@10"], row["mrr@10"], row["recall@100"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert info["notes"] == [
        "2 of 3 judged queries encode to a zero vector (2 with empty text, e.g. 'q1'): they retrieve nothing and "
        "score 0 on every metric, and stay in the means so scores remain comparable. Fix or remove them in the "
        "queries file (and its qrels) to evaluate without them."
    ]
    code, _, err = run("eval", beir, "--model", model, "--dims", "full")
    assert code == 0 and "matryo: warning: 2 of 3 judged queries encode to a zero vector" in err


# a1's query shares a1's id but not its text: only the id rule can leave a1 out of a1's results.
ARG_CORPUS = {"a1": "the cat and the dog", "a2": "a bird in a tree", "a3": "fish in the river water"}
ARG_QUERIES = {"a1": "the cat and the dog in a tree", "q2": "fish river"}
ARG_QRELS = [("a1", "a2", 1), ("q2", "a3", 1)]


def test_eval_arguana_rule_follows_the_name_given_not_the_symlink_target(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `arguana -> beir-copy`: the rule was decided on the resolved name ("beir-copy") and silently not applied.
    target = write_beir(tmp_path / "beir-copy", ARG_CORPUS, ARG_QUERIES, ARG_QRELS)
    link = tmp_path / "arguana"
    link.symlink_to(target, target_is_directory=True)
    rows, info = evaluate(link, str(model), "full")
    assert info["ignore_identical_ids"] is True and info["dataset"] == "arguana" and info["notes"] == []
    assert rows == evaluate(target, str(model), "full", ignore_identical_ids=True)[0]
    assert rows != evaluate(target, str(model), "full")[0]  # a1 retrieves itself without the rule
    # A link of another name to a folder named arguana, and the folder reached as ".", apply it too.
    real = write_beir(tmp_path / "sets" / "ArguAna", ARG_CORPUS, ARG_QUERIES, ARG_QRELS)
    (tmp_path / "data").symlink_to(real, target_is_directory=True)
    assert evaluate(tmp_path / "data", str(model), "full")[1]["ignore_identical_ids"] is True
    monkeypatch.chdir(real)
    assert evaluate(".", str(model), "full")[1]["ignore_identical_ids"] is True
    assert evaluate(".", str(model), "full")[1]["dataset"] == "ArguAna"
    # An explicit choice wins over the name.
    assert evaluate(link, str(model), "full", ignore_identical_ids=False)[1]["ignore_identical_ids"] is False


def test_eval_arguana_rule_applies_to_a_renamed_copy_when_queries_are_their_own_documents(
    model: Path, tmp_path: Path
) -> None:
    queries = {"a1": "the cat and the dog", "a3": "fish in the river water"}  # as in ArguAna: a1's text is a1's
    beir = write_beir(tmp_path / "my-copy", ARG_CORPUS, queries, [("a1", "a2", 1), ("a3", "a2", 1)])
    rows, info = evaluate(beir, str(model), "full")
    assert info["ignore_identical_ids"] is True
    assert info["notes"] == [
        "2 of 2 judged queries are their own document (a corpus row with the query's _id holds its text, e.g. "
        "'a1'), as in ArguAna: as BEIR does, a query's own document is never retrieved for it (keeping it would "
        "lower every score by about a quarter)."
    ]
    assert rows == evaluate(beir, str(model), "full", ignore_identical_ids=True)[0]
    kept, info = evaluate(beir, str(model), "full", ignore_identical_ids=False)
    assert info["ignore_identical_ids"] is False and info["notes"] == []
    assert kept[0]["mrr@10"] < rows[0]["mrr@10"]  # each query's own document took rank 1


def test_eval_keeps_own_documents_that_the_qrels_judge_relevant(model: Path, tmp_path: Path) -> None:
    # queries made from documents (each query's relevant document is its own): the ArguAna guess removed every
    # relevant document and reported NDCG 0.0 with exit 0
    queries = {"a1": "the cat and the dog", "a3": "fish in the river water"}
    beir = write_beir(tmp_path / "titles", ARG_CORPUS, queries, [("a1", "a1", 1), ("a3", "a3", 1)])
    rows, info = evaluate(beir, str(model), "full")
    assert info["ignore_identical_ids"] is False and info["notes"] == []
    assert rows[0]["ndcg@10"] > 0.5
    assert evaluate(beir, str(model), "full", ignore_identical_ids=True)[0][0]["ndcg@10"] == 0.0  # when asked for


def test_a_split_missing_beside_a_top_level_qrels_says_that_file_is_the_test_split(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matryo import beir as beir_module

    beir = write_beir(tmp_path / "set", CORPUS, {"q1": "cat and dog"}, [("q1", "d1", 1)])
    read: list[Path] = []
    real = beir_module._read_texts
    monkeypatch.setattr(beir_module, "_read_texts", lambda path, *a: read.append(path) or real(path, *a))
    with pytest.raises(
        DataNotFoundError, match=r"holds none of qrels/dev.tsv.*Its qrels.tsv is read as the test split \(pass --split"
    ):
        evaluate(beir, str(model), "full", split="dev")
    assert read == []  # refused before the corpus and queries were parsed


def test_eval_reads_another_split_and_gzipped_split_qrels(run: Run, model: Path, tmp_path: Path) -> None:
    import gzip
    import shutil

    queries = {"q1": "cat and dog", "q2": "fish in the river"}
    beir = write_beir(tmp_path / "set", CORPUS, queries, [("q1", "d1", 1), ("q2", "d4", 1)])
    (beir / "qrels.tsv").unlink()
    (beir / "qrels").mkdir()
    with gzip.open(beir / "qrels" / "test.tsv.gz", "wt") as fh:  # only the top-level qrels could be gzipped
        fh.write("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (beir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td4\t1\nq1\td3\t1\n")
    _, test = evaluate(beir, str(model), "full")
    _, dev = evaluate(beir, str(model), "full", split="dev")
    assert (test["split"], test["queries"], dev["split"], dev["queries"]) == ("test", 1, "dev", 2)
    code, out, err = run("eval", beir, "--model", model, "--dims", "full", "--split", "dev", "--json")
    assert code == 0 and json.loads(out)["info"]["split"] == "dev", err
    with pytest.raises(
        DataNotFoundError, match=r"holds none of qrels/train.tsv, qrels/train.tsv.gz.*Splits here: dev, test"
    ):
        evaluate(beir, str(model), "full", split="train")
    with pytest.raises(ValueError, match="--dims takes"):  # was a MatryoError that no except ValueError caught
        evaluate(beir, str(model), "12x")
    with pytest.raises(InvalidArgumentError, match=r"--dims 600: every width is wider than the model"):
        evaluate(beir, str(model), "600")  # scored only the two-stage row, exit 0
    shutil.rmtree(beir / "qrels")
    with pytest.raises(FileNotFoundError, match=r"expected a BEIR folder"):  # a DataNotFoundError, a MatryoError
        evaluate(beir, str(model), "full")


def test_eval_metrics_refuse_a_cut_off_below_1() -> None:
    from matryo.evaluation import mrr_at_k, ndcg_at_k, recall_at_k

    run, qrels = {"q": {"d1": 0.9, "d2": 0.5}}, {"q": {"d2": 1}}
    for metric in (ndcg_at_k, mrr_at_k, recall_at_k):
        for k in (0, -1, True, 2.0):  # k=0 divided by zero; k=-1 cut the list's end and scored it
            with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
                metric(run, qrels, k)  # type: ignore[arg-type]
    assert mrr_at_k(run, qrels, 2) == 0.5


def test_eval_command_line_turns_the_arguana_rule_on_and_off(run: Run, model: Path, tmp_path: Path) -> None:
    named = write_beir(tmp_path / "arguana", ARG_CORPUS, ARG_QUERIES, ARG_QRELS)
    other = write_beir(tmp_path / "other", ARG_CORPUS, ARG_QUERIES, ARG_QRELS)
    for folder, flag, expected in (
        (named, [], True),
        (named, ["--no-ignore-identical-ids"], False),  # the name's default can be refused
        (other, [], False),
        (other, ["--ignore-identical-ids"], True),
    ):
        code, out, err = run("eval", folder, "--model", model, "--dims", "full", "--json", *flag)
        assert code == 0, err
        assert json.loads(out)["info"]["ignore_identical_ids"] is expected, (folder.name, flag)


def test_a_missing_beir_folder_is_named_as_missing(tmp_path: Path) -> None:
    # "holds none of corpus.jsonl, ..." pointed at the files when the folder itself was not there
    from matryo.beir import load_beir

    with pytest.raises(DataNotFoundError, match=r"nowhere does not exist \(or is not a folder\): expected a BEIR"):
        load_beir(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataNotFoundError, match="file does not exist"):
        load_beir(tmp_path / "file")
