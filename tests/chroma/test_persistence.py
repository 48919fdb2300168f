"""Reopening in fresh processes, over a real Chroma server, and without importing matryo_chroma."""

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

N_DOCS = 1500
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
    import matryo_chroma
    from matryo_chroma import TwoStageCollection

    kind, where = sys.argv[1], sys.argv[2]
    if kind == "persistent":
        client = chromadb.PersistentClient(where)
    else:
        client = chromadb.HttpClient(host="127.0.0.1", port=int(where))
    queries = json.loads(sys.argv[3])
    plain = client.get_collection("plain").query(query_texts=queries, n_results=10, include=["distances"])
    two = TwoStageCollection.open(client, "two_stage")
    staged = two.query(query_texts=queries, n_results=10, where={"i": {"$gte": 100}}, include=["distances"])
    print(json.dumps({"plain": [plain["ids"], plain["distances"]], "two": [staged["ids"], staged["distances"]],
                      "count": two.count(), "store": two.store}))
"""


def check_same(reopened: dict[str, Any], plain: dict[str, Any], two: dict[str, Any]) -> None:
    assert reopened["count"] == N_DOCS
    assert reopened["plain"][0] == plain["ids"]
    np.testing.assert_allclose(reopened["plain"][1], plain["distances"], atol=1e-6)
    assert reopened["two"][0] == two["ids"]
    np.testing.assert_allclose(reopened["two"][1], two["distances"], atol=1e-6)
    assert all(len(ids) == 10 for ids in two["ids"])


def test_persistent_reopen_in_a_fresh_process(tmp_path: Path, tiny_model_path: str) -> None:
    path = tmp_path / "db"
    client = chromadb.PersistentClient(str(path))
    plain, two = fill(client, tiny_model_path)
    del client
    reopened = run_python(REOPEN, "persistent", str(path), json.dumps(QUERIES))
    check_same(reopened, plain, two)


def test_http_server_round_trip(chroma_server: int, tiny_model_path: str) -> None:
    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server)
    plain, two = fill(client, tiny_model_path)
    stored = client.get_collection("plain").configuration_json["embedding_function"]
    assert stored["name"] == "matryo" and stored["config"]["truncate_dim"] == 16
    reopened = run_python(REOPEN, "http", str(chroma_server), json.dumps(QUERIES))
    check_same(reopened, plain, two)


NO_IMPORT = """
    import json, sys
    import chromadb

    client = chromadb.PersistentClient(sys.argv[1])
    col = client.get_collection("plain")  # succeeds: Chroma only rebuilds the function when it needs it
    out = {}
    try:
        col.query(query_texts=["cat dog river"], n_results=3)
    except ValueError as exc:
        out["error"] = str(exc)
    vector = col.get(ids=["doc0"], include=["embeddings"])["embeddings"][0].tolist()
    out["by_vector"] = col.query(query_embeddings=[vector], n_results=1, include=[])["ids"]
    out["imported_before"] = "matryo_chroma" in sys.modules

    from matryo_chroma import TwoStageCollection, get_collection  # the way out

    out["after"] = get_collection(client, "plain").query(query_texts=["cat dog river"], n_results=3, include=[])["ids"]
    out["two"] = TwoStageCollection.open(client, "two_stage").query(query_texts=["cat dog river"], n_results=3)["ids"]
    print(json.dumps(out))
"""


def test_reopen_without_importing_matryo_chroma(tmp_path: Path, tiny_model_path: str) -> None:
    path = tmp_path / "db"
    client = chromadb.PersistentClient(str(path))
    fill(client, tiny_model_path)
    plain = client.get_collection("plain").query(query_texts=["cat dog river"], n_results=3, include=[])
    two = TwoStageCollection.open(client, "two_stage").query(query_texts=["cat dog river"], n_results=3)
    del client
    out = run_python(NO_IMPORT, str(path))
    assert out["imported_before"] is False
    assert out["error"].startswith(  # Chroma 1.5.9 appends " in query."
        "Embedding function matryo not found. Add @register_embedding_function decorator to the class definition."
    )
    assert out["by_vector"] == [["doc0"]]
    assert out["after"] == plain["ids"]
    assert out["two"] == two["ids"]
