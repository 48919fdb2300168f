"""LangChain's standard suites (langchain-tests) on MatryoEmbeddings and MatryoTwoStageRetriever.

The Embeddings unit suite only constructs the class; the integration suite embeds (sync and async) and is
run too, since a local static model needs no network. Both run on a tiny model built in code and on the
embedded default model with no arguments at all. The retriever runs the standard Retrievers suite over an
InMemoryVectorStore.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests
from tests.langchain.helpers import needs_default_model

from langchain_matryo import MatryoEmbeddings, MatryoTwoStageRetriever

_TINY: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _tiny_path(tiny_model_dir: Path) -> None:
    _TINY["path"] = tiny_model_dir


class _TinyParams:
    @property
    def embeddings_class(self) -> type[MatryoEmbeddings]:
        return MatryoEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": str(_TINY["path"]), "truncate_dim": 32}


class TestMatryoEmbeddingsUnitTiny(_TinyParams, EmbeddingsUnitTests):
    pass


@pytest.mark.anyio
class TestMatryoEmbeddingsIntegrationTiny(_TinyParams, EmbeddingsIntegrationTests):
    pass


class _DefaultParams:
    @property
    def embeddings_class(self) -> type[MatryoEmbeddings]:
        return MatryoEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {}


@needs_default_model
class TestMatryoEmbeddingsUnitDefault(_DefaultParams, EmbeddingsUnitTests):
    pass


@needs_default_model
@pytest.mark.anyio
class TestMatryoEmbeddingsIntegrationDefault(_DefaultParams, EmbeddingsIntegrationTests):
    pass


@pytest.mark.anyio
class TestMatryoTwoStageRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[MatryoTwoStageRetriever]:
        return MatryoTwoStageRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        texts = ["the cat", "a dog", "read a gzip file", "parse command line", "fast car", "big river", "python"]
        embeddings = MatryoEmbeddings(model=str(_TINY["path"]), truncate_dim=16)
        return {"vectorstore": InMemoryVectorStore.from_texts(texts, embeddings)}

    @property
    def retriever_query_example(self) -> str:
        return "cat and dog"
