"""matryo + Chroma: an offline embedding function, and two-stage Matryoshka search.

Run: python examples/chroma_quickstart.py
(needs `pip install -e . -e integrations/chroma` from this checkout; no download, no GPU)
"""

import tempfile

import chromadb

from matryo_chroma import MatryoEmbeddingFunction, TwoStageCollection, get_collection

DOCS = {
    "gzip": "Use the gzip module to read a compressed .gz file line by line in Python.",
    "argparse": "argparse parses command line arguments and prints a help message.",
    "pizza": "Neapolitan pizza is baked for about ninety seconds in a wood-fired oven.",
    "vectors": "Vector databases index embeddings for fast nearest-neighbour search.",
}


def embedding_function_demo(path: str) -> None:
    """Use 1: a drop-in embedding function for any Chroma collection (the embedded model, offline)."""
    client = chromadb.PersistentClient(path)
    docs = client.create_collection("docs", embedding_function=MatryoEmbeddingFunction(truncate_dim=256))
    docs.add(ids=list(DOCS), documents=list(DOCS.values()), metadatas=[{"topic": k} for k in DOCS])
    hits = docs.query(query_texts=["how do I open a .gz archive?"], n_results=2)
    print("plain Chroma:", hits["ids"][0], [round(d, 3) for d in hits["distances"][0]])

    # Another process must import matryo_chroma before it reopens the collection (Chroma has no plugin
    # discovery); matryo_chroma.get_collection is the explicit way to do that.
    again = get_collection(chromadb.PersistentClient(path), "docs")
    print("reopened:    ", again.query(query_texts=["parsing CLI flags"], n_results=1)["ids"][0])


def two_stage_demo(path: str) -> None:
    """Use 2: index short Matryoshka prefixes in HNSW, rescore the shortlist at full dimension."""
    client = chromadb.PersistentClient(path)
    col = TwoStageCollection.create(client, "two_stage")  # 128-d HNSW first pass, full-dim rescoring
    col.add(ids=list(DOCS), documents=list(DOCS.values()), metadatas=[{"food": k == "pizza"} for k in DOCS])
    hits = col.query(query_texts=["nearest neighbour search"], n_results=2, where={"food": False})
    # distances are full-dimension cosine distances (1 - cos), best first
    print("two-stage:   ", hits["ids"][0], [round(d, 3) for d in hits["distances"][0]])

    reopened = TwoStageCollection.open(chromadb.PersistentClient(path), "two_stage")
    print("reopened:    ", reopened, reopened.count(), "records")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        embedding_function_demo(tmp + "/ef")
        two_stage_demo(tmp + "/two_stage")
