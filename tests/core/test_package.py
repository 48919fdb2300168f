"""Package hygiene: the public API and what `import matryo` pulls in."""

from __future__ import annotations

import json
import subprocess
import sys

import matryo


def test_public_api_is_pinned() -> None:
    expected = {
        "DEFAULT_MODEL_PATH",
        "DEFAULT_RESCORE_MULTIPLIER",
        "DEFAULT_TRUNCATE_DIM",
        "DataNotFoundError",
        "DimensionMismatchError",
        "IncompleteFolderError",
        "InvalidArgumentError",
        "InvalidTypeError",
        "MatryoError",
        "MissingExtraError",
        "MissingVectorError",
        "ModelAccessError",
        "ModelFormatError",
        "ModelMismatchError",
        "ModelNotFoundError",
        "NonFiniteVectorError",
        "NumpyIndex",
        "PickleWeightsError",
        "SearchHits",
        "StaticEncoder",
        "StoreFormatError",
        "StoreWriteError",
        "__version__",
        "matryoshka_dims",
        "rescore",
        "truncate",
        "two_stage_search",
    }
    assert set(matryo.__all__) == expected
    for name in matryo.__all__:
        assert hasattr(matryo, name), name


def test_import_matryo_pulls_no_heavy_host_library() -> None:
    code = "import json, sys, matryo; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    forbidden = {"torch", "chromadb", "lancedb", "langchain", "langchain_core", "sentence_transformers", "model2vec"}
    forbidden |= {"huggingface_hub", "transformers", "pyarrow", "pandas"}
    assert not (loaded & forbidden), loaded & forbidden
    assert not any(name.startswith(("matryo_", "langchain_matryo", "matryo.train")) for name in loaded)


def test_errors_refine_builtins() -> None:
    assert issubclass(matryo.ModelFormatError, ValueError)
    assert issubclass(matryo.ModelNotFoundError, FileNotFoundError)
    assert issubclass(matryo.DimensionMismatchError, ValueError)
    assert issubclass(matryo.MissingExtraError, ImportError)
    assert issubclass(matryo.MissingVectorError, LookupError)
    for cls in (matryo.ModelFormatError, matryo.MissingExtraError, matryo.DimensionMismatchError):
        assert issubclass(cls, matryo.MatryoError)


def test_every_error_class_is_exported_at_the_top_and_refines_a_builtin() -> None:
    import matryo.errors

    for name in matryo.errors.__all__:
        cls = getattr(matryo.errors, name)
        assert getattr(matryo, name) is cls, f"matryo.{name} is missing"
        assert issubclass(cls, matryo.MatryoError)
        if cls is not matryo.MatryoError:
            assert any(base.__module__ == "builtins" and base is not Exception for base in cls.__mro__), name


def test_missing_beir_data_is_skipped_locally_and_fails_in_ci(tmp_path, monkeypatch) -> None:
    import pytest
    from tests.conftest import missing_data

    assert missing_data(tmp_path) is False  # the folder is there
    for value in ("", "false", "0"):
        monkeypatch.setenv("CI", value)
        assert missing_data(tmp_path / "arguana") is True
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI is set and the BEIR set .*arguana .* is missing"):
        missing_data(tmp_path / "arguana")
