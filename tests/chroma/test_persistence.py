"""Reopening in fresh processes (embedded and over a real Chroma server), without and then with the import.

Each fresh process first tries the collection without importing matryo_chroma (Chroma's ValueError, vector
queries still work), then imports it (``get_collection`` / ``TwoStageCollection.open``) and must reproduce
the first process's results exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from tests.chroma.conftest import word_corpus

from matryo_chroma import MatryoEmbeddingFunction, TwoStageCollection

N_DOCS = 1000
QUERIES = ["cat dog river", "fire water light", "the big slow car", "search vector query model"]
ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (cwd = repo root) and return the JSON it prints last."""
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fill(client: chromadb.ClientAPI, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create a plain collection with the embedding function and a two-stage one; return their results."""
    docs = word_corpus(N_DOCS, seed=1)
    ids = [f"doc{i}" for i in range(N_DOCS)]
    plain = client.create_collection("plain", embedding_function=MatryoEmbeddingFunction(model, truncate_dim=16))
    plain.add(ids=ids, documents=docs, metadatas=[{"i": i} for i in range(N_DOCS)])
    two = TwoStageCollection.create(client, "two_stage", model=model, truncate_dim=16)
    two.add(ids=ids, documents=docs, metadatas=[{"i": i} for i in range(N_DOCS)])
    return (
        plain.query(query_texts=QUERIES, n_results=10, include=["distances"]),
        two.query(query_texts=QUERIES, n_results=10, where={"i": {"$gte": 100}}, include=["distances"]),
    )


REOPEN = """
    import json, sys
    import chromadb

    kind, where, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if kind == "persistent":
        client = chromadb.PersistentClient(where)
    else:
        client = chromadb.HttpClient(host="127.0.0.1", port=int(where))
    out = {"imported_before": "matryo_chroma" in sys.modules}
    raw = client.get_collection("plain")  # succeeds: Chroma only rebuilds the function when it needs it
    try:
        raw.query(query_texts=queries[:1], n_results=3)
    except ValueError as exc:
        out["error"] = str(exc)
    vector = raw.get(ids=["doc0"], include=["embeddings"])["embeddings"][0].tolist()
    out["by_vector"] = raw.query(query_embeddings=[vector], n_results=1, include=[])["ids"]

    from matryo_chroma import TwoStageCollection, get_collection  # the way out

    plain = get_collection(client, "plain").query(query_texts=queries, n_results=10, include=["distances"])
    two = TwoStageCollection.open(client, "two_stage")
    staged = two.query(query_texts=queries, n_results=10, where={"i": {"$gte": 100}}, include=["distances"])
    out.update({"plain": [plain["ids"], plain["distances"]], "two": [staged["ids"], staged["distances"]],
                "count": two.count(), "store": two.store})
    print(json.dumps(out))
"""


def check_same(reopened: dict[str, Any], plain: dict[str, Any], two: dict[str, Any]) -> None:
    # Without importing matryo_chroma, Chroma cannot rebuild the embedding function (only vectors work):
    assert reopened["imported_before"] is False
    assert reopened["error"].startswith(  # Chroma 1.5.9 appends " in query."
        "Embedding function matryo not found. Add @register_embedding_function decorator to the class definition."
    )
    assert reopened["by_vector"] == [["doc0"]]
    # ...and after `from matryo_chroma import get_collection` the results are identical to the first process:
    assert reopened["count"] == N_DOCS
    assert reopened["plain"][0] == plain["ids"]
    np.testing.assert_allclose(reopened["plain"][1], plain["distances"], atol=1e-6)
    assert reopened["two"][0] == two["ids"]
    np.testing.assert_allclose(reopened["two"][1], two["distances"], atol=1e-6)
    assert all(len(ids) == 10 for ids in two["ids"])


def test_persistent_reopen_in_a_fresh_process_with_and_without_the_import(tmp_path: Path, tiny_model_path: str) -> None:
    path = tmp_path / "db"
    client = chromadb.PersistentClient(str(path))
    plain, two = fill(client, tiny_model_path)
    del client
    reopened = run_python(REOPEN, "persistent", str(path), json.dumps(QUERIES))
    check_same(reopened, plain, two)


def test_http_server_reopen_in_a_fresh_process(chroma_server: int, tiny_model_path: str) -> None:
    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server)
    plain, two = fill(client, tiny_model_path)
    stored = client.get_collection("plain").configuration_json["embedding_function"]
    assert stored["name"] == "matryo" and stored["config"]["truncate_dim"] == 16
    reopened = run_python(REOPEN, "http", str(chroma_server), json.dumps(QUERIES))
    check_same(reopened, plain, two)
