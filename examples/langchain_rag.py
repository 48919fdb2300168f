"""Retrieval for RAG with LangChain and matryo: load, split, index, retrieve in two stages. Offline, no LLM.

The documents are the docstrings of a few standard-library modules (and of their public functions and
classes), so the script runs anywhere. They are split with langchain-text-splitters, indexed as 128-d
Matryoshka prefixes in a LangChain vector store, and searched with ``MatryoTwoStageRetriever``: a cheap
first pass on the short vectors, then rescoring of the shortlist at the model's full width.

Run (needs langchain-matryo and langchain-text-splitters; from a matryo checkout, since it is not on PyPI yet:
``pip install -e . -e "integrations/langchain[chroma]" langchain-text-splitters``, ``[chroma]`` for ``--persist-dir``)::

    python examples/langchain_rag.py                      # in-memory store, embedded default model
    python examples/langchain_rag.py "how do I compress a file"
    python examples/langchain_rag.py --persist-dir /tmp/rag-chroma   # Chroma on disk; reused on the next run
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import time

INSTALL = 'pip install -e . -e "integrations/langchain[chroma]" langchain-text-splitters'
"""What this example needs, installed from a matryo checkout (the packages are not on PyPI yet)."""

try:
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from langchain_matryo import MatryoEmbeddings, MatryoTwoStageRetriever
except ModuleNotFoundError as exc:  # a plain traceback would not say how to get it
    raise SystemExit(f"This example needs {exc.name}, which is not installed. Install it with: {INSTALL}") from None

MODULES = (
    "argparse",
    "asyncio",
    "bisect",
    "collections",
    "csv",
    "datetime",
    "functools",
    "gzip",
    "hashlib",
    "heapq",
    "itertools",
    "json",
    "logging",
    "pathlib",
    "random",
    "re",
    "shutil",
    "sqlite3",
    "statistics",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "urllib.parse",
    "zipfile",
)
QUESTIONS = (
    "how do I read a compressed gzip file",
    "parse command line options and flags",
    "run an external program and capture its output",
    "find the median of a list of numbers",
)


def load_documents() -> list[Document]:
    """One document per docstring of each module and of its public functions and classes."""
    documents = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        objects = [(name, module)]
        objects += [
            (f"{name}.{attr}", value)
            for attr, value in vars(module).items()
            if not attr.startswith("_")
            and (inspect.isfunction(value) or inspect.isclass(value))
            and getattr(value, "__module__", None) == module.__name__
        ]
        for source, obj in objects:
            doc = inspect.getdoc(obj)
            if doc and len(doc) > 40:
                documents.append(Document(page_content=doc, metadata={"source": source}))
    return documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", nargs="*", help="questions to retrieve passages for")
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the embedded model)")
    parser.add_argument("--persist-dir", default=None, help="keep the index in Chroma at this folder")
    parser.add_argument("-k", type=int, default=3, help="passages per question")
    args = parser.parse_args()
    if args.k < 1:
        parser.error(f"argument -k: expected 1 or more passages per question, got {args.k}")
    questions = list(args.questions or QUESTIONS)

    start = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=600, chunk_overlap=80)
    chunks = splitter.split_documents(load_documents())
    loaded = time.perf_counter()

    reused = 0  # records found in an existing store (nothing indexed then)
    if args.persist_dir is None:
        # Index the chunks' 128-d prefixes in an InMemoryVectorStore and wrap it in the retriever.
        retriever = MatryoTwoStageRetriever.from_documents(chunks, model=args.model, k=args.k)
    else:
        # An existing store: build it with a truncated MatryoEmbeddings once, then just point the retriever
        # at it (the store's embeddings are picked up; pass embeddings= if the store does not expose them).
        try:
            from langchain_chroma import Chroma
        except ModuleNotFoundError:
            raise SystemExit(f"--persist-dir needs langchain-chroma. Install it with: {INSTALL}") from None

        width = min(128, MatryoEmbeddings(model=args.model).dim)  # a 128-d prefix (narrower models: all of it)
        first_pass = MatryoEmbeddings(model=args.model, truncate_dim=width)
        # The model is recorded with the collection: nothing else tells a reopened store which model made its
        # vectors, and another model's queries would be compared with them without an error.
        model = {"matryo_fingerprint": first_pass.encoder.fingerprint, "matryo_dim": width}
        store = Chroma(
            collection_name="stdlib_docs",
            embedding_function=first_pass,
            persist_directory=args.persist_dir,
            collection_metadata=model,
        )
        reused = store._collection.count()
        recorded = {key: (store._collection.metadata or {}).get(key) for key in model}
        if reused and recorded != model and any(recorded.values()):
            raise SystemExit(
                f"The index in {args.persist_dir} was built with another model ({recorded}; this run: {model}). "
                "Run with the --model it was built with, or delete the folder to index again."
            )
        if reused and not any(recorded.values()):  # an index from before the model was recorded: record it now
            print(f"note: {args.persist_dir} does not record its model; taking it to be this run's and recording it")
            store._collection.modify(metadata={**(store._collection.metadata or {}), **model})
        if reused == 0:  # first run: index; later runs reuse the stored vectors
            store.add_documents(chunks)
        retriever = MatryoTwoStageRetriever(vectorstore=store, k=args.k)
    indexed = time.perf_counter()

    assert retriever.embeddings is not None
    if reused:
        done = f"reused {reused} records from {args.persist_dir} in {indexed - loaded:.2f}s"
    else:
        done = f"indexed in {indexed - loaded:.2f}s"
    print(
        f"{len(chunks)} chunks from {len(MODULES)} modules: split in {loaded - start:.2f}s, {done} "
        f"({retriever.embeddings.dim}-d first pass, rescored at "
        f"{retriever.embeddings.encoder.dim}-d, {retriever.rescore_multiplier:g}x candidates)"
    )
    for question, docs in zip(questions, retriever.batch(questions), strict=True):
        print(f"\nQ: {question}")
        for rank, doc in enumerate(docs, 1):
            snippet = " ".join(doc.page_content.split())[:160]
            print(f"  {rank}. [{doc.metadata['relevance_score']:.3f}] {doc.metadata['source']}: {snippet}")
    plural = "" if len(questions) == 1 else "s"
    print(f"\nsearched {len(questions)} question{plural} in {time.perf_counter() - indexed:.3f}s")


if __name__ == "__main__":
    main()
