"""Boundaries of formats.py boundaries: F14 (mapping index == row count), F22 (stored truncate_dim == the width)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from safetensors.numpy import save_file
from tests.conftest import make_tiny_model, make_tokenizer

from matryo import ModelFormatError, StaticEncoder


def test_a_mapping_one_past_the_last_codebook_row_is_a_format_error(tmp_path) -> None:
    folder = make_tiny_model(tmp_path / "m2v", layout="model2vec")
    vocab = make_tokenizer().get_vocab_size()
    mapping = np.zeros(vocab, np.int64)
    mapping[5] = 7  # the codebook has rows 0..6
    save_file({"embeddings": np.ones((7, 8), np.float32), "mapping": mapping}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"index rows 0\.\.6 of 'embeddings', found 0\.\.7"):
        StaticEncoder.from_pretrained(folder)


def test_a_stored_truncate_dim_equal_to_the_width_is_kept_without_a_warning(tmp_path) -> None:
    folder = make_tiny_model(tmp_path / "m", dim=64)
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"truncate_dim": 64}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = StaticEncoder.from_pretrained(folder)
    assert enc.truncate_dim == 64 and enc.encode("the cat").shape == (64,)
    saved = enc.save_pretrained(tmp_path / "saved")
    assert json.loads((saved / "config_sentence_transformers.json").read_text())["truncate_dim"] == 64


def test_a_negative_mapping_entry_is_a_format_error_not_the_last_row(tmp_path) -> None:
    folder = make_tiny_model(tmp_path / "m2v", layout="model2vec")
    vocab = make_tokenizer().get_vocab_size()
    mapping = np.zeros(vocab, np.int64)
    mapping[5] = -1  # numpy would read it as the last codebook row
    save_file({"embeddings": np.ones((7, 8), np.float32), "mapping": mapping}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"index rows 0\.\.6 of 'embeddings', found -1\.\.0"):
        StaticEncoder.from_pretrained(folder)


def test_a_model2vec_config_max_length_of_zero_is_a_format_error_naming_config_json(tmp_path) -> None:
    folder = tmp_path / "m2v"
    make_tiny_model(folder, layout="model2vec")
    (folder / "modules.json").unlink()  # a folder only model2vec loads: its config.json max_length is the cut
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "max_length": 0}))
    with pytest.raises(ModelFormatError, match=r"config\.json'? sets max_length 0; expected a positive int"):
        StaticEncoder.from_pretrained(folder)


@pytest.mark.parametrize("content", ["[1, 2]", '"a string"', "null"])
def test_a_config_json_that_is_not_an_object_is_ignored_not_a_crash(tmp_path, content) -> None:
    folder = make_tiny_model(tmp_path / "m")  # sentence-transformers layout: config.json is not its file
    (folder / "config.json").write_text(content)
    (folder / "config_sentence_transformers.json").write_text(content)
    enc = StaticEncoder.from_pretrained(folder)
    assert enc.layout == "sentence-transformers (modules.json)" and enc.encode("the cat").shape == (64,)
