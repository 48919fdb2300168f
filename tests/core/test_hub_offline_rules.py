"""Mutation-audit tests for hub.py: H01 (a path of three or more parts is never a hub id) and H03 (a repo that has
model.safetensors is downloaded even when it also holds pickle weights). No network: the hub is mocked."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.conftest import make_tiny_model

from matryo import ModelNotFoundError, StaticEncoder, hub


def test_a_missing_three_part_path_is_not_looked_up_on_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    def no_hub(*args: object, **kwargs: object) -> Path:
        raise AssertionError("a path of three parts is not a hub id: the hub must not be asked")

    monkeypatch.setattr(hub, "snapshot", no_hub)
    assert not hub.looks_like_hub_id("models/owner/name")
    with pytest.raises(ModelNotFoundError, match=r"'models/owner/name' does not exist, and it is not a hub id"):
        StaticEncoder.from_pretrained("models/owner/name")


def test_a_repo_with_safetensors_and_pickles_is_downloaded_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    files = [
        "modules.json",
        "0_StaticEmbedding/model.safetensors",
        "0_StaticEmbedding/pytorch_model.bin",  # an older export kept beside the safetensors
        "0_StaticEmbedding/tokenizer.json",
    ]
    configs = tmp_path / "configs"
    make_tiny_model(configs, layout="st_hub")
    (configs / "0_StaticEmbedding" / "model.safetensors").unlink()  # the JSON-only download
    full = make_tiny_model(tmp_path / "full", layout="st_hub")

    def repo_info(self: object, repo_id: str, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(sha="0" * 40, siblings=[SimpleNamespace(rfilename=f) for f in files])

    def snapshot_download(**kwargs: object) -> str:
        if kwargs.get("local_files_only"):
            raise FileNotFoundError("not cached")
        return str(configs if kwargs["allow_patterns"] == ["*.json"] else full)

    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    enc = StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path / "cache")
    assert enc.dim == 64 and json.loads((full / "modules.json").read_text())


@pytest.mark.parametrize("name", ["./not-here", "../not/here"])
def test_a_missing_dotted_relative_path_is_not_looked_up_on_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)

    def no_hub(*args: object, **kwargs: object) -> Path:
        raise AssertionError("a path starting with '.' is not a hub id: the hub must not be asked")

    monkeypatch.setattr(hub, "snapshot", no_hub)
    assert not hub.looks_like_hub_id(name)
    with pytest.raises(ModelNotFoundError, match="does not exist, and it is not a hub id"):
        StaticEncoder.from_pretrained(name)


@pytest.mark.parametrize("value", ["true", "True", " YES ", "on"])
def test_hf_hub_offline_spelled_as_huggingface_hub_accepts_it_means_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", value)

    def repo_info(*args: object, **kwargs: object) -> None:
        raise AssertionError("offline: the hub must not be asked")

    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)
    with pytest.raises(ModelNotFoundError, match=r"not in the local hub cache and the hub is offline"):
        StaticEncoder.from_pretrained("someone/not-a-cached-model", cache_dir=tmp_path)
