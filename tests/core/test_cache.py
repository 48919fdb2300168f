"""The per-process encoder cache (matryo.cache): one load per model, a fresh load when the model files change."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import make_tiny_model

from matryo import StaticEncoder
from matryo.cache import clear_encoder_cache, load_encoder


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    clear_encoder_cache()


def test_same_config_returns_the_same_encoder(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    clear_encoder_cache()
    a = load_encoder(folder)
    assert load_encoder(str(folder)) is a
    assert load_encoder(folder, max_length=4) is not a
    assert load_encoder(folder, max_length=4).max_length == 4
    other = make_tiny_model(tmp_path / "n", seed=1)
    assert load_encoder(other) is not a
    clear_encoder_cache()
    assert load_encoder(folder) is not a


@pytest.mark.parametrize("layout", ["st_root", "st_hub", "model2vec"])
def test_same_folder_gives_the_same_encoder(tmp_path: Path, layout: str) -> None:
    folder = make_tiny_model(tmp_path / "m", layout=layout)
    first = load_encoder(folder)
    assert load_encoder(folder) is first
    assert load_encoder(str(folder) + "/") is first  # the resolved path is the key


@pytest.mark.parametrize("layout", ["st_root", "st_hub", "model2vec"])
def test_a_model_saved_again_to_the_same_folder_is_loaded_again(tmp_path: Path, layout: str) -> None:
    # retrain and save to the same path in one process (a notebook): the cache must not serve the old table
    folder = make_tiny_model(tmp_path / "m", layout=layout, seed=0)
    old = load_encoder(folder)
    old_vector = old.encode("the cat")
    make_tiny_model(folder, layout=layout, seed=1)
    new = load_encoder(folder)
    assert new is not old
    assert new.fingerprint == StaticEncoder.from_pretrained(folder).fingerprint != old.fingerprint
    assert (old.encode("the cat") == old_vector).all()  # an encoder handed out earlier keeps its model
    assert load_encoder(folder) is new  # and the new one is cached in turn


def test_a_changed_config_is_loaded_again(tmp_path: Path) -> None:
    # a default width stored afterwards in config_sentence_transformers.json changes what encode returns
    folder = make_tiny_model(tmp_path / "m", dim=64)
    assert load_encoder(folder).output_dim == 64
    (folder / "config_sentence_transformers.json").write_text('{"truncate_dim": 16}')
    assert load_encoder(folder).output_dim == 16


def test_the_embedded_model_is_loaded_once() -> None:
    assert load_encoder() is load_encoder(None)


def test_a_folder_that_does_not_load_after_a_change_keeps_serving_the_cached_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a save still writing the file, or the folder removed: callers got ModelFormatError / ModelNotFoundError from
    # a hit that had worked before the change; the model loaded before is served until the folder loads again
    import shutil

    folder = make_tiny_model(tmp_path / "m", seed=0)
    old = load_encoder(folder)
    weights = folder / "model.safetensors"
    good = weights.read_bytes()
    half = tmp_path / "half"
    half.write_bytes(good[: len(good) // 2])
    half.replace(weights)  # a new file, half written (never truncate a memory-mapped file in place)
    assert load_encoder(folder) is old
    make_tiny_model(folder, seed=1)  # the save finished
    new = load_encoder(folder)
    assert new is not old and new.fingerprint != old.fingerprint
    shutil.rmtree(folder)
    assert load_encoder(folder) is new
    calls: list[object] = []
    real = StaticEncoder.from_pretrained
    monkeypatch.setattr(StaticEncoder, "from_pretrained", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert load_encoder(folder) is new and load_encoder(folder) is new
    assert calls == []  # a folder that failed to load is not tried again on every call, only once it changes
    make_tiny_model(folder, seed=2)  # put back: loaded again
    assert load_encoder(folder).fingerprint == real(folder).fingerprint != new.fingerprint
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)  # a relative path to the same folder is the same entry, also after a chdir
    relative = load_encoder("m")
    monkeypatch.chdir("/")
    assert load_encoder(folder) is relative
