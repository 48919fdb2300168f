"""`matryo eval`, `info`, `bench`, `demo`, `train`, `--help`, and the imports each command may pay for."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.cli.conftest import Run
from tests.cli.test_bad_input import one_line_error

from matryo import StaticEncoder, cli
from matryo.cli_eval import evaluate, parse_dims
from matryo.search import DEFAULT_RESCORE_MULTIPLIER

COMMANDS = ["index", "search", "eval", "bench", "info", "demo", "train"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"matryo {command}" in out.split("example:")[1]


def test_train_help_is_plain_text_and_its_errors_are_one_matryo_line(capsys: pytest.CaptureFixture[str]) -> None:
    # `matryo train --help` printed the module docstring's Sphinx markup (``--data``, :mod:`...`), and its errors
    # were a bare "error: ..." where every other command prints "matryo: error: ..."
    pytest.importorskip("matryo.train")
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":mod:" not in out and "python -m matryo.train / matryo train" in out
    assert cli.main(["train", "--out", "unused", "--crop-share", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("matryo: error: --crop-share 2.0: expected a share") and err.count("\n") == 1


def write_beir(root: Path, corpus: dict[str, str], queries: dict[str, str], qrels: list[tuple[str, str, int]]) -> Path:
    root.mkdir(parents=True)
    with gzip.open(root / "corpus.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in corpus.items())
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (root / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in qrels))
    return root


CORPUS = {
    "d1": "the cat and the dog",
    "d2": "a bird in a tree",
    "d3": "the car on the road to the city",
    "d4": "fish in the river water",
    "d5": "python code to parse a file",
    "d6": "read and write data fast",
}


def hand_ndcg10(encoder: StaticEncoder, dim: int, queries: dict[str, str], qrels: dict[str, dict[str, int]]) -> float:
    """NDCG@10 written out from the definition (linear gain, ideal DCG over all judged relevant docs)."""
    ids = list(CORPUS)
    docs = encoder.encode([CORPUS[d] for d in ids], truncate_dim=dim)
    scores = []
    for qid, rels in qrels.items():
        sims = docs @ encoder.encode(queries[qid], truncate_dim=dim)
        ranked = [ids[i] for i in np.argsort(-sims, kind="stable")[:10]]
        dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
        ideal = sorted(rels.values(), reverse=True)
        scores.append(dcg / sum(r / math.log2(i + 2) for i, r in enumerate(ideal)))
    return float(np.mean(scores))


def test_eval_metrics_on_hand_made_qrels(model: Path, tmp_path: Path) -> None:
    # q1 and q2 repeat a document's text: rank 1 at every width, so every metric is exactly 1.
    queries = {"q1": "the cat and the dog", "q2": "fish in the river water"}
    beir = write_beir(tmp_path / "easy", CORPUS, queries, [("q1", "d1", 1), ("q2", "d4", 1)])
    rows, info = evaluate(beir, str(model), "32,128,full")
    assert [r["name"] for r in rows] == ["32", "128", "256", f"two-stage 128->256 (x{DEFAULT_RESCORE_MULTIPLIER:g})"]
    assert info["documents"] == 6 and info["queries"] == 2
    for row in rows:
        assert (row["ndcg@10"], row["mrr@10"], row["recall@100"]) == pytest.approx((1.0, 1.0, 1.0))

    # Graded relevance, several relevant docs per query: compare with NDCG@10 written out by hand.
    queries = {"q1": "bird tree river", "q2": "parse data file fast", "q3": "city road"}
    qrels = [("q1", "d2", 2), ("q1", "d4", 1), ("q2", "d5", 1), ("q2", "d6", 2), ("q3", "d3", 1), ("q3", "d1", 0)]
    beir = write_beir(tmp_path / "graded", CORPUS, queries, qrels)
    rows, _ = evaluate(beir, str(model), "32,full")
    encoder = StaticEncoder.from_pretrained(model)
    judged = {"q1": {"d2": 2, "d4": 1}, "q2": {"d5": 1, "d6": 2}, "q3": {"d3": 1, "d1": 0}}
    for row, dim in zip(rows[:2], (32, 256), strict=True):
        assert row["ndcg@10"] == pytest.approx(hand_ndcg10(encoder, dim, queries, judged), abs=1e-6)
        assert row["recall@100"] == pytest.approx(1.0)  # six documents: everything is in the top 100
    # Oversampling 10 hits out of 6 documents: the two-stage run rescores everything: it equals full width.
    assert rows[2]["ndcg@10"] == pytest.approx(rows[1]["ndcg@10"])


def test_eval_two_stage_row_cuts_rescored_ties_as_trec_eval_ranks() -> None:
    # Three candidates with equal full-width scores: trec_eval ranks the highest id first, so a top-1 keeps "c";
    # the rescoring step used to keep the first-pass order ("a") and its NDCG@1 was 0 instead of 1.
    from matryo.evaluation import two_stage_runs

    full_d = np.ones((3, 4), dtype=np.float32) / 2
    first_d = np.array([[0.9], [0.8], [0.7]], dtype=np.float32)  # first pass: a, b, c
    first_q = np.ones((1, 1), dtype=np.float32)
    top1, top1_of_2 = two_stage_runs(first_q, first_d, full_d[:1], full_d, ["q"], ["a", "b", "c"], [(3, 1), (2, 1)])
    assert list(top1["q"]) == ["c"]
    assert list(top1_of_2["q"]) == ["b"]


def test_eval_scores_a_query_judged_only_0_as_0(run: Run, model: Path, tmp_path: Path) -> None:
    # BEIR keeps q2 (its one judgment is 0) and pytrec_eval scores it 0: the mean over the 2 queries is 0.5.
    # `matryo eval` used to report "2 queries" but average over q1 alone (NDCG 1.0).
    queries = {"q1": "the cat and the dog", "q2": "fish in the river water"}
    beir = write_beir(tmp_path / "zero", CORPUS, queries, [("q1", "d1", 1), ("q2", "d4", 0)])
    rows, info = evaluate(beir, str(model), "32,full")
    assert info["queries"] == 2
    for row in rows:
        assert (row["ndcg@10"], row["mrr@10"], row["recall@100"]) == pytest.approx((0.5, 0.5, 0.5))


def test_eval_command_prints_a_table_and_json(run: Run, model: Path, tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "b", CORPUS, {"q1": "cat dog"}, [("q1", "d1", 1)])
    code, out, err = run("eval", beir, "--model", model, "--dims", "64,full")
    assert code == 0, err
    assert "| dims | NDCG@10 | MRR@10 | Recall@100 |" in out and "| 64 |" in out
    assert f"| two-stage 128->256 (x{DEFAULT_RESCORE_MULTIPLIER:g}) |" in out
    code, out, _ = run("eval", beir, "--model", model, "--dims", "full", "--json", "--first-pass-dim", "32")
    data = json.loads(out)
    assert code == 0 and [r["name"] for r in data["rows"]] == [
        "256",
        f"two-stage 32->256 (x{DEFAULT_RESCORE_MULTIPLIER:g})",
    ]


def test_eval_leaves_out_qrels_of_queries_that_were_not_loaded(run: Run, model: Path, tmp_path: Path) -> None:
    queries = {"q1": "bird tree river", "q2": "parse data file fast"}
    qrels = [("q1", "d2", 1), ("q2", "d6", 1)]
    rows, info = evaluate(write_beir(tmp_path / "ok", CORPUS, queries, qrels), str(model), "32,full")
    assert info["notes"] == []
    # q3 is judged but not in queries.jsonl: it was never run, so it must not score 0 (BEIR averages over runs).
    beir = write_beir(tmp_path / "extra", CORPUS, queries, [*qrels, ("q3", "d3", 1)])
    rows_extra, info_extra = evaluate(beir, str(model), "32,full")
    assert [r["ndcg@10"] for r in rows_extra] == pytest.approx([r["ndcg@10"] for r in rows])
    assert info_extra["queries"] == 2 and "1 of 3 judged queries" in info_extra["notes"][0]
    code, _, err = run("eval", beir, "--model", model, "--dims", "full")
    assert code == 0 and "matryo: warning: 1 of 3 judged queries" in err


def test_eval_error_for_no_judged_queries_says_why(run: Run, model: Path, tmp_path: Path) -> None:
    # Every qrels query id differs from queries.jsonl (case): the error used to be the generic one alone, and
    # load_beir's note naming the mismatch was dropped.
    beir = write_beir(tmp_path / "b", CORPUS, {"q1": "cat dog"}, [("Q1", "d1", 1)])
    code, _, err = run("eval", beir, "--model", model)
    line = one_line_error(code, err)
    assert "has no judged queries; nothing to evaluate" in line
    assert "1 of 1 judged queries in qrels.tsv are not in queries.jsonl (e.g. 'Q1')" in line


def test_eval_notes_relevant_documents_missing_from_the_corpus(run: Run, model: Path, tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "b", CORPUS, {"q1": "cat dog"}, [("q1", "D1", 1)])
    code, out, err = run("eval", beir, "--model", model, "--dims", "full")
    assert code == 0 and "| 0.0000 |" in out
    assert "matryo: warning: 1 of 1 relevant documents in qrels.tsv are not in corpus.jsonl.gz (e.g. 'D1')" in err


def test_eval_bad_dims_and_plot_without_matplotlib(run: Run, model: Path, tmp_path: Path) -> None:
    assert parse_dims("32,full,9999,64", 256) == [32, 64, 256]
    beir = write_beir(tmp_path / "b", CORPUS, {"q1": "cat"}, [("q1", "d1", 1)])
    code, _, err = run("eval", beir, "--model", model, "--dims", "32,abc")
    assert code == 2 and "--dims" in err
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        code, _, err = run("eval", beir, "--model", model, "--plot", tmp_path / "x.png")
        assert code == 1 and "pip install matplotlib" in err and len(err.strip().splitlines()) == 1
    else:
        code, _, err = run("eval", beir, "--model", model, "--plot", tmp_path / "x.png")
        assert code == 0 and (tmp_path / "x.png").stat().st_size > 0


def test_info(run: Run, model: Path) -> None:
    code, out, _ = run("info", model, "--json")
    info = json.loads(out)
    encoder = StaticEncoder.from_pretrained(model)
    assert code == 0 and info["dims"] == 256 and info["vocab_size"] == encoder.vocab_size
    assert info["fingerprint"] == encoder.fingerprint and info["dtype"] == "F32"
    assert info["file_size_mb"] == round((model / "model.safetensors").stat().st_size / 1e6, 1)
    code, out, _ = run("info", model)
    assert code == 0 and "fingerprint" in out and encoder.fingerprint in out
    assert run("info", "--model", model) == (code, out, "")  # as index, eval and bench take a model
    assert run("info", model, "--model", model)[0] == 0
    assert run("info", model, "--model", f"{model}/../{model.name}")[0] == 0  # the same folder, spelled otherwise
    code, _, err = run("info", model, "--model", model.parent)
    assert code == 2 and err.strip().splitlines()[-1].endswith("differ; pass one of them"), err


def test_bench_runs_with_a_tiny_model(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matryo import bench

    monkeypatch.setattr(bench, "_texts", lambda quick: (["cat dog"] * 300, ["the cat and the dog in the house"] * 300))
    monkeypatch.setattr(bench, "_peers", lambda folder, width: [("model2vec", None, None, "not installed")])
    report = bench.run(str(model), quick=True)
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")}
    assert set(rows) == {"encoder", "matryo", "tokenizer floor", "model2vec"}
    assert "queries 256-d" in rows["encoder"] and "queries 128-d" in rows["encoder"]
    assert "x)" in rows["tokenizer floor"] and "not installed" in rows["model2vec"]


def test_demo_corpus_rules(tmp_path: Path) -> None:
    from matryo.demo import iter_docstrings

    lib = tmp_path / "lib"
    (lib / "pkg").mkdir(parents=True)
    (lib / "test").mkdir()
    (lib / "gzipish.py").write_text(
        '"""Functions that read and write gzipped files, like gzip."""\n'
        'def open(path):\n    """Open a gzip-compressed file in binary or text mode."""\n'
        'def _hidden():\n    """A private helper that is never shown to anyone."""\n'
        'def short():\n    """Too short."""\n'
    )
    (lib / "pkg" / "__init__.py").write_text(
        'class Parser:\n    """Parse command line arguments into a namespace of options."""\n'
        '    def parse(self):\n        """Return the parsed options as a namespace object, please."""\n'
        '    @property\n    def daemon(self):\n        """Return whether the process is a daemon, in a word."""\n'
        '    @daemon.setter\n    def daemon(self, value):\n        """Set whether it is a daemon, in words."""\n'
    )
    (lib / "_private.py").write_text('"""A private module that the demo corpus leaves out entirely."""\n')
    (lib / "test" / "test_x.py").write_text('"""A test module that the demo corpus leaves out entirely."""\n')
    (lib / "broken.py").write_text("def (:\n")
    passages = list(iter_docstrings(lib))
    ids = [p.id for p in passages]
    assert ids == ["gzipish", "gzipish.open", "pkg.Parser", "pkg.Parser.parse", "pkg.Parser.daemon"]  # one per name
    assert passages[-1].text.startswith("pkg.Parser.daemon: Return whether")  # the getter's docstring
    assert passages[1].text == "gzipish.open: Open a gzip-compressed file in binary or text mode."


def test_demo_run_indexes_and_answers(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from matryo import demo
    from matryo.sources import Passage, content_hash

    texts = {"gzip.open": "gzip.open: read a gzip file", "argparse": "argparse: parse command line argument"}
    texts |= {f"m{i}": f"m{i}: the cat and the dog {i}" for i in range(30)}
    corpus = [Passage(k, k, t, content_hash(t)) for k, t in texts.items()]
    monkeypatch.setattr(demo, "iter_docstrings", lambda: iter(corpus))
    db = tmp_path / "demo-db"
    questions = ("read a gzip file", "parse command line argument")
    assert demo.run(db, model=str(model), quiet=True, questions=questions) == 0
    out = capsys.readouterr().out
    assert "corpus: 32 passages" in out and "32 new, 0 unchanged" in out
    blocks = out.split('"read a gzip file"')[1]
    assert blocks.splitlines()[2].split()[2] == "gzip.open"
    assert (db / "stdlib-corpus.json.gz").is_file()
    monkeypatch.setattr(demo, "iter_docstrings", lambda: pytest.fail("the cached corpus should be used"))
    assert demo.run(db, model=str(model), quiet=True, questions=questions) == 0
    assert "0 new, 32 unchanged" in capsys.readouterr().out
    # a cache of passages cut another way (an older chunker) is not used
    monkeypatch.setattr(demo, "_CORPUS_FORMAT", demo._CORPUS_FORMAT + 1)
    read: list[int] = []
    monkeypatch.setattr(demo, "iter_docstrings", lambda: read.append(1) or iter(corpus))
    assert demo.run(db, model=str(model), quiet=True, questions=questions) == 0
    out = capsys.readouterr().out
    assert read == [1] and "0 new, 32 unchanged" in out
    assert out.rstrip().endswith(f"or type them at a prompt: {demo._command()} search --db {db}")  # noqa: SLF001


def test_demo_names_the_matryo_command_this_shell_can_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `make demo` ran .venv/bin/matryo and then said "Try your own: matryo search ...": not on the shell's PATH
    from matryo import demo

    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "matryo").write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert demo._command() == str(Path(".venv") / "bin" / "matryo")  # noqa: SLF001
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert demo._command() == str(bin_dir / "matryo")  # noqa: SLF001
    monkeypatch.setattr(shutil, "which", lambda name: str(bin_dir / "matryo"))  # activated: the same script
    assert demo._command() == "matryo"  # noqa: SLF001


def test_python_dash_m_matryo_runs_the_command_line() -> None:
    out = subprocess.run([sys.executable, "-m", "matryo", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("matryo ")


def test_light_imports() -> None:
    code = (
        "import sys, matryo, matryo.cli; matryo.cli.build_parser(); "
        "import matryo.sources, matryo.stores, matryo.demo, matryo.bench, matryo.cli_eval; "
        "heavy = {'lancedb', 'chromadb', 'torch', 'matplotlib', 'sentence_transformers', 'model2vec', 'pyarrow'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"
    out = subprocess.run(
        [sys.executable, "-c", "import sys, matryo; print(sorted(m for m in sys.modules if m.startswith('matryo.')))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "matryo.cli" not in out and "matryo.stores" not in out and "matryo.demo" not in out


def test_demo_without_the_lancedb_adapter_fails_before_building_the_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    import matryo.demo as demo
    from matryo.errors import MissingExtraError

    real_import = importlib.import_module

    def no_lancedb_adapter(name: str, package: str | None = None) -> Any:
        if name == "matryo_lancedb":
            raise ImportError(name)
        return real_import(name, package)

    def corpus_built(db: Path) -> list[Any]:
        raise AssertionError("the corpus was built before the missing adapter was reported")

    monkeypatch.setattr(importlib, "import_module", no_lancedb_adapter)
    monkeypatch.setattr(demo, "load_corpus", corpus_built)
    with pytest.raises(MissingExtraError, match=r"pip install -e integrations/lancedb  \(from a matryo checkout\)"):
        demo.run(tmp_path / "db", quiet=True)


@pytest.fixture
def tiny_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    """A three-passage demo corpus, so demo.run is fast."""
    from matryo import demo
    from matryo.sources import Passage, content_hash

    texts = {"gzip.open": "gzip.open: read a gzip file", "argparse": "argparse: parse command line argument"}
    texts["shutil"] = "shutil: copy a directory tree"
    corpus = [Passage(k, k, t, content_hash(t)) for k, t in texts.items()]
    monkeypatch.setattr(demo, "iter_docstrings", lambda: iter(corpus))


def test_demo_and_index_refuse_each_others_db(
    run: Run, model: Path, docs: Path, tmp_path: Path, tiny_demo: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Demo DBs recorded no SOURCE: `matryo demo --db X` mixed the docstrings into a DB of a SOURCE, and
    # `matryo index SOURCE --db DEMO` adopted the SOURCE.
    from matryo import demo

    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    with monkeypatch.context() as patch:  # undoes only this patch (monkeypatch.undo() also undid tiny_demo's)
        patch.setattr(demo, "load_corpus", lambda _db: pytest.fail("the DB is checked before the corpus is built"))
        code, _, err = run("demo", "--db", db, "--quiet")
    assert "matryo demo would mix" in one_line_error(code, err) and str(docs) in err
    demo_db = tmp_path / "demo-db"
    assert demo.run(demo_db, model=str(model), quiet=True, questions=("gzip",)) == 0
    code, _, err = run("index", docs, "--db", demo_db)
    assert "holds the passages of matryo demo" in one_line_error(code, err)
    assert demo.run(demo_db, model=str(model), quiet=True, questions=("gzip",)) == 0, "the demo re-runs on its DB"


def test_demo_on_a_chroma_db_does_not_suggest_a_store_option(
    run: Run, model: Path, docs: Path, tmp_path: Path, tiny_demo: None
) -> None:
    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--store", "chroma", "--quiet")[0] == 0
    from matryo.stores import read_meta, write_meta

    meta = read_meta(db)
    assert meta is not None
    write_meta(db, replace(meta, source=None))  # an older DB with no SOURCE recorded: only the store differs
    code, _, err = run("demo", "--db", db, "--quiet")
    line = one_line_error(code, err)
    assert "holds a chroma store" in line and "keeps its DB in LanceDB" in line and "--store" not in line


def test_eval_notes_widths_wider_than_the_model_and_refuses_a_too_wide_first_pass(
    run: Run, model: Path, tmp_path: Path
) -> None:
    # `--dims 1024` on a 512-d model was dropped silently and `--first-pass-dim 1000` silently capped.
    beir = write_beir(tmp_path / "b", CORPUS, {"q1": "cat dog"}, [("q1", "d1", 1)])
    code, out, err = run("eval", beir, "--model", model, "--dims", "64,1024,512")
    assert code == 0 and "| 64 |" in out and "| 1024 |" not in out
    assert "matryo: warning: --dims 512, 1024 left out: wider than the model (256 dims" in err
    assert evaluate(beir, str(model))[1]["notes"] == [], "the default widths are not reported"
    code, _, err = run("eval", beir, "--model", model, "--first-pass-dim", "1000")
    assert "--first-pass-dim must be at most the model width 256, got 1000" in one_line_error(code, err)


def test_search_says_no_hits_without_calling_a_full_db_empty(
    run: Run, model: Path, docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matryo.stores import _LanceStore

    db = tmp_path / "db"
    assert run("index", docs, "--db", db, "--model", model, "--quiet")[0] == 0
    monkeypatch.setattr(_LanceStore, "search", lambda *_args: [])  # as for a query of only unknown words
    code, out, _ = run("search", "cat", "--db", db)
    assert code == 0 and out == "no hits\n"
    monkeypatch.setattr(_LanceStore, "count", lambda _self: 0)
    code, out, _ = run("search", "cat", "--db", db)
    assert code == 0 and out == "no hits (the DB is empty)\n"


def test_an_unknown_option_prints_the_commands_usage(run: Run) -> None:
    # parse_args reported it with the top-level usage ("usage: matryo [-h] [--version] COMMAND ...")
    for argv, command in ((("search", "q", "--db", "d", "--model", "m"), "search"), (("info", "--bogus", "m"), "info")):
        code, _, err = run(*argv)
        assert code == 2 and err.startswith(f"usage: matryo {command} "), err
        assert err.strip().splitlines()[-1].startswith(f"matryo {command}: error: unrecognized arguments: "), err
    code, _, err = run("train", "--out", "x", "--bogus")
    assert code == 2 and "usage: matryo train " in err and "unrecognized arguments: --bogus" in err
