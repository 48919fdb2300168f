"""langchain_matryo package hygiene: pinned public API and a light import."""

from __future__ import annotations

import json
import subprocess
import sys

import langchain_matryo


def test_public_api_is_pinned() -> None:
    assert langchain_matryo.__all__ == ["MatryoEmbeddings", "MatryoTwoStageRetriever", "__version__"]
    for name in langchain_matryo.__all__:
        assert hasattr(langchain_matryo, name), name


def test_import_pulls_no_vector_database_or_torch() -> None:
    code = "import json, sys, langchain_matryo; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    forbidden = {"torch", "chromadb", "langchain_chroma", "lancedb", "sentence_transformers", "huggingface_hub"}
    assert not (loaded & forbidden), loaded & forbidden
