"""StaticEncoder semantics: mean pooling, truncation, normalisation, bad input."""

from __future__ import annotations

import copy
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import make_tiny_model, make_tokenizer, traced_peak

import matryo.encoder as encoder_module
from matryo import StaticEncoder, pooling
from matryo.errors import MissingExtraError
from matryo.texts import SPLIT_DISAGREES

TEXTS = [
    "The cat and the dog",
    "read a gzip file in python",
    "parse command line arguments",
    "",
    "   \t\n ",
    "Zebra \u03a9mega",  # unknown words -> [UNK], kept like sentence-transformers
    "[CLS] written in the text [SEP]",
    "Crème brûlée à la mode",
    "emoji 🙂 and 中文 characters",
    "fast " * 300,
]


def reference(model_dir: Path, texts: list[str], *, dim: int | None = None, normalize: bool = True) -> np.ndarray:
    """Straight-line numpy version of sentence-transformers StaticEmbedding semantics."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    table = load_file(str(model_dir / "model.safetensors"))["embedding.weight"].astype(np.float32)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    rows = []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        vec = table[ids].mean(axis=0) if ids else np.zeros(table.shape[1], np.float32)
        vec = vec[:dim] if dim else vec
        if normalize:
            vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
        rows.append(vec)
    return np.stack(rows)


@pytest.fixture
def encoder(tiny_model: Path) -> StaticEncoder:
    return StaticEncoder.from_pretrained(tiny_model)


def test_matches_reference_raw_and_normalised(tiny_model: Path, encoder: StaticEncoder) -> None:
    for normalize in (False, True):
        got = encoder.encode(TEXTS, normalize=normalize)
        assert got.dtype == np.float32
        assert got.shape == (len(TEXTS), 64)
        np.testing.assert_allclose(got, reference(tiny_model, TEXTS, normalize=normalize), atol=1e-6)


def test_truncation_happens_before_normalisation(tiny_model: Path, encoder: StaticEncoder) -> None:
    got = encoder.encode(TEXTS, truncate_dim=16)
    assert got.shape == (len(TEXTS), 16)
    np.testing.assert_allclose(got, reference(tiny_model, TEXTS, dim=16), atol=1e-6)
    norms = np.linalg.norm(got, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 2]], 1.0, atol=1e-6)
    raw = encoder.encode(TEXTS, truncate_dim=16, normalize=False)
    np.testing.assert_allclose(raw, encoder.encode(TEXTS, normalize=False)[:, :16], atol=1e-6)


def test_truncated_encoding_pools_only_the_prefix_columns(
    encoder: StaticEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, ...]] = []
    original = pooling.pool_into

    def spy(ids: list[list[int]], table: np.ndarray, out: np.ndarray) -> None:
        seen.append(table.shape)
        original(ids, table, out)

    monkeypatch.setattr(pooling, "pool_into", spy)
    encoder.encode(TEXTS, truncate_dim=8)
    assert seen and all(shape[1] == 8 for shape in seen)


def test_default_truncate_dim_and_override(tiny_model: Path) -> None:
    enc = StaticEncoder.from_pretrained(tiny_model, truncate_dim=32)
    assert enc.output_dim == 32 and enc.dim == 64
    assert enc.encode(TEXTS).shape == (len(TEXTS), 32)
    assert enc.encode(TEXTS, truncate_dim=64).shape == (len(TEXTS), 64)


def test_single_string_returns_a_vector(encoder: StaticEncoder) -> None:
    vec = encoder.encode("the cat")
    assert vec.shape == (64,)
    np.testing.assert_array_equal(vec, encoder.encode(["the cat"])[0])


def test_empty_and_whitespace_give_zero_vectors_not_nan(encoder: StaticEncoder) -> None:
    for normalize in (True, False):
        got = encoder.encode(["", "  \n\t", "cat"], normalize=normalize)
        assert np.isfinite(got).all()
        assert not got[0].any() and not got[1].any()
        assert got[2].any()


def test_empty_list_gives_empty_matrix(encoder: StaticEncoder) -> None:
    assert encoder.encode([]).shape == (0, 64)
    assert encoder.encode([], truncate_dim=8).shape == (0, 8)
    assert encoder.encode(iter([])).dtype == np.float32


def test_accepts_tuples_generators_and_numpy_string_arrays(encoder: StaticEncoder) -> None:
    expected = encoder.encode(["cat", "dog"])
    np.testing.assert_array_equal(encoder.encode(("cat", "dog")), expected)
    np.testing.assert_array_equal(encoder.encode(t for t in ["cat", "dog"]), expected)
    np.testing.assert_array_equal(encoder.encode(np.array(["cat", "dog"])), expected)


def test_zero_d_string_array_is_one_text(encoder: StaticEncoder) -> None:
    vec = encoder.encode(np.array("the cat read"))
    assert vec.shape == (64,)
    np.testing.assert_array_equal(vec, encoder.encode("the cat read"))
    assert encoder.tokenize(np.array("cat dog")) == encoder.tokenize(["cat dog"])  # type: ignore[arg-type]


@pytest.mark.parametrize("batch_size", [1, 2048])
def test_text_that_is_not_valid_unicode_is_named(encoder: StaticEncoder, batch_size: int) -> None:
    texts = ["the cat", "a dog", "bad \ud800 text", "fish"]
    with pytest.raises(ValueError, match=r"texts\[2\] is not valid Unicode.*'\\ud800' at character 4"):
        encoder.encode(texts, batch_size=batch_size)
    with pytest.raises(ValueError, match=r"texts\[1\] is not valid Unicode"):
        encoder.encode(["cat", "tree " * 30_000 + "\udc80"])  # the long-text path
    with pytest.raises(ValueError, match=r"texts\[0\] is not valid Unicode"):
        encoder.encode("\udfff")
    with pytest.raises(ValueError, match=r"texts\[2\] is not valid Unicode"):
        encoder.tokenize(texts)


@pytest.mark.parametrize(
    ("texts", "needle"),
    [
        (None, "NoneType"),
        (b"bytes", "not bytes; decode them first"),
        (42, "int"),
        (["ok", None], "texts[1]"),
        (["ok", "fine", b"raw"], "texts[2]"),
        ([3.5], "texts[0]"),
    ],
)
def test_bad_input_raises_type_error_naming_index_and_type(encoder: StaticEncoder, texts: object, needle: str) -> None:
    with pytest.raises(TypeError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        encoder.encode(texts)  # type: ignore[arg-type]


@pytest.mark.parametrize("dim", [0, -1, 65, 1000])
def test_truncate_dim_out_of_range(encoder: StaticEncoder, dim: int) -> None:
    with pytest.raises(ValueError, match="between 1 and the model's dim 64"):
        encoder.encode("cat", truncate_dim=dim)
    with pytest.raises(ValueError, match="between 1 and"):
        StaticEncoder.from_pretrained(encoder.name_or_path, truncate_dim=dim)


def test_truncate_dim_must_be_an_int(encoder: StaticEncoder) -> None:
    with pytest.raises(TypeError, match="truncate_dim"):
        encoder.encode("cat", truncate_dim=True)
    with pytest.raises(TypeError, match="truncate_dim"):
        encoder.encode("cat", truncate_dim=8.0)  # type: ignore[arg-type]


def test_batch_size_does_not_change_results(encoder: StaticEncoder) -> None:
    texts = [f"the cat {i} read file " * (i % 40) for i in range(500)]
    expected = encoder.encode(texts, batch_size=10_000)
    for batch_size in (1, 7, 64):
        np.testing.assert_allclose(encoder.encode(texts, batch_size=batch_size), expected, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(texts, batch_size=0)


def test_tokenizer_truncation_is_honoured_and_max_length_overrides(tmp_path: Path) -> None:
    stored = make_tiny_model(tmp_path / "cut5", max_length=5)
    long_text = "cat dog bird fish tree house car road river"
    enc = StaticEncoder.from_pretrained(stored)
    assert enc.max_length == 5
    np.testing.assert_allclose(enc.encode(long_text), enc.encode("cat dog bird fish tree"), atol=1e-6)
    override = StaticEncoder.from_pretrained(stored, max_length=3)
    assert override.max_length == 3
    np.testing.assert_allclose(override.encode(long_text), override.encode("cat dog bird"), atol=1e-6)
    uncut = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "uncut"))
    assert uncut.max_length is None
    with pytest.raises(ValueError, match="max_length"):
        StaticEncoder.from_pretrained(stored, max_length=0)


def test_tokenize_shows_ids_without_special_tokens(encoder: StaticEncoder) -> None:
    (ids,) = encoder.tokenize(["cat \u03a9\u03a9"])  # no such characters in the vocab
    vocab = encoder.tokenizer.get_vocab()
    assert ids == [vocab["cat"], vocab["[UNK]"]]
    assert vocab["[CLS]"] in encoder.tokenize(["[CLS] cat"])[0]


def test_long_text_pieces_match_whole_text_tokenization(encoder: StaticEncoder) -> None:
    words = ["cat", "dog,", "tree.", "gzip", "zebra", "Crème", "🙂", "the\n", "x" * 120]
    rng = np.random.default_rng(1)
    text = " ".join(rng.choice(words, size=60_000).tolist())  # > _LONG_TEXT_CHARS characters
    assert len(text) > encoder_module._LONG_TEXT_CHARS
    ids = encoder.tokenizer.encode(text, add_special_tokens=False).ids
    expected = encoder.table[ids].astype(np.float64).mean(axis=0)  # float64: 10^5 float32 adds drift by 1e-4
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(encoder.encode(text), expected, atol=1e-6)


def test_long_text_memory_scales_with_its_distinct_tokens_not_its_length(tmp_path: Path) -> None:
    # each ~100k-character piece gathered a row per token (tokens x dim x 4 bytes: 44 MB here at 512-d);
    # rows are now summed once per distinct id, times its count
    enc = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "wide", dim=512))
    text = "cat dog tree gzip " * 15_000  # 270k characters, 60k tokens, 4 distinct ids
    ids = enc.tokenizer.encode(text, add_special_tokens=False).ids
    exact = enc.table[ids].astype(np.float64).mean(axis=0)
    enc.encode(text)  # fills the word cache and the prefix tables outside the measurement
    vector, peak = traced_peak(lambda: enc.encode(text, normalize=False))
    np.testing.assert_allclose(vector, exact, rtol=1e-6, atol=1e-7)
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB"


def test_long_text_respects_stored_truncation(tmp_path: Path) -> None:
    enc = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "cut", max_length=4))
    text = "cat dog bird fish " + "tree " * 50_000
    np.testing.assert_allclose(enc.encode(text), enc.encode("cat dog bird fish"), atol=1e-6)


def test_ten_megabyte_string_has_bounded_memory(tiny_model: Path) -> None:
    import subprocess
    import sys

    code = f"""
import resource, sys
from matryo import StaticEncoder
enc = StaticEncoder.from_pretrained({str(tiny_model)!r})
enc.encode("warm up")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
text = "the cat read a gzip file by the river " * (10_000_000 // 38)
vec = enc.encode(text)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert vec.shape == (64,) and abs(float((vec ** 2).sum()) - 1) < 1e-4
print((after - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grown_mib = int(out.stdout.strip().splitlines()[-1])
    # The text itself is 10 MB; tokenizing it whole would take several hundred MiB more.
    assert grown_mib < 120, f"peak RSS grew by {grown_mib} MiB"


def test_thread_safe_encoding(encoder: StaticEncoder) -> None:
    texts = [f"{w} cat read file number {i}" for i, w in enumerate(["dog", "tree", "car", "gzip"] * 300)]
    expected = encoder.encode(texts, batch_size=64)
    expected_16 = encoder.encode(texts, truncate_dim=16)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(slot: int) -> None:
        try:
            for _ in range(5):
                if slot % 2:
                    results[slot] = encoder.encode(texts, batch_size=64)
                else:
                    results[slot] = encoder.encode(texts, truncate_dim=16)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for slot, got in results.items():
        np.testing.assert_allclose(got, expected if slot % 2 else expected_16, atol=1e-6)


def test_progress_bar(encoder: StaticEncoder) -> None:
    pytest.importorskip("tqdm")
    assert encoder.encode(["cat"] * 10, show_progress_bar=True).shape == (10, 64)


def test_progress_bar_without_tqdm_names_an_install_line_that_works(
    encoder: StaticEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # matryo is not on PyPI yet, so 'matryo[progress]' alone would not install; the plain package line does.
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(MissingExtraError, match=r"show_progress_bar=True needs .*'tqdm'.*pip install tqdm"):
        encoder.encode(["cat"], show_progress_bar=True)


def test_fingerprint_identifies_the_weights(tmp_path: Path) -> None:
    a = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "a", seed=0))
    b = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "b", seed=0, layout="model2vec"))
    c = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "c", seed=1))
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 16


def test_repr_and_properties(encoder: StaticEncoder) -> None:
    assert encoder.vocab_size == encoder.tokenizer.get_vocab_size()
    assert "dim=64" in repr(encoder)


TRICKY = [
    "a\x0bb c\x0cd e\x1cf g\x1fh i\x85j",  # whitespace to Python, deleted by BERT's clean_text
    "zero\u200bwidth joiner\u200djoined soft\xadhyphen",
    "line\u2028sep para\u2029sep nb\xa0sp ideo\u3000space thin\u2009space",
    "[CLS]cat dog[SEP] [MASK] [cls] x[PAD]y",
    "Crème brûlée, naïve café; ÀÉÎÕÜ",
    "東京タワー 中文字符 한국어",
    "emoji 🙂🙂 flags 🇫🇷 and dingbats ✂️",
    "a" * 150 + " " + "b" * 99 + " cat",
    "tabs\tand\nnewlines\r\nand   runs",
    "\x00nul\ufffdreplacement",
    "",
    "   ",
]


def test_word_cache_gives_the_tokenizers_ids(encoder: StaticEncoder) -> None:
    assert encoder._word_tokenizer is not None  # the tiny BERT-style tokenizer takes the word-cache path
    expected = [e.ids for e in encoder.tokenizer.encode_batch(TRICKY, add_special_tokens=False)]
    assert encoder.tokenize(TRICKY) == expected  # batches with \x0b, \x1c, \x85... take the plain path
    clean = [i for i, text in enumerate(TRICKY) if not SPLIT_DISAGREES.search(text)]
    assert len(clean) == len(TRICKY) - 1
    for _ in range(2):  # cold, then warm cache
        assert encoder._word_ids([TRICKY[i] for i in clean]) == [expected[i] for i in clean]


def test_word_cache_applies_truncation(tmp_path: Path) -> None:
    enc = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "cut", max_length=3))
    clean = [text for text in TRICKY if not SPLIT_DISAGREES.search(text)]
    expected = [e.ids for e in enc.tokenizer.encode_batch(clean, add_special_tokens=False)]
    assert enc._word_ids(clean) == expected
    assert max(map(len, expected)) == 3


def test_non_bert_tokenizers_take_the_plain_path(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "cat": 1, "dog": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    enc = StaticEncoder(np.eye(3, dtype=np.float32), tokenizer)
    assert enc._word_tokenizer is None
    np.testing.assert_allclose(enc.encode(["cat dog", "cat"], normalize=False), [[0, 0.5, 0.5], [0, 1, 0]])


@pytest.mark.parametrize("piece_chars", [7, 40, 333])
def test_long_text_pieces_are_exact_at_every_cut(
    encoder: StaticEncoder, monkeypatch: pytest.MonkeyPatch, piece_chars: int
) -> None:
    monkeypatch.setattr(encoder_module, "_LONG_TEXT_CHARS", piece_chars)
    texts = [t * 9 for t in TRICKY if t.strip()] + ["hello," * 200, "東京" * 300, "x" * 2000, "cat\u200bdog" * 90]
    for text in texts:
        ids = encoder.tokenizer.encode(text, add_special_tokens=False).ids
        expected = encoder.table[ids].astype(np.float64).mean(axis=0) if ids else np.zeros(encoder.dim)
        np.testing.assert_allclose(
            encoder.encode(text, normalize=False), expected, rtol=1e-5, atol=1e-6, err_msg=repr(text[:40])
        )


@pytest.mark.parametrize("piece_chars", [7, 40])
def test_long_text_is_never_cut_inside_an_added_token_of_ideographs(
    monkeypatch: pytest.MonkeyPatch, piece_chars: int
) -> None:
    # a cut after "東" split the added token "東京" (0.73 off with 7-character pieces)
    from tokenizers import AddedToken

    tokenizer = make_tokenizer()
    tokenizer.add_tokens([AddedToken("東京", normalized=False)])
    rows = tokenizer.get_vocab_size(with_added_tokens=True)
    table = np.random.default_rng(0).standard_normal((rows, 8)).astype(np.float32)
    encoder = StaticEncoder(table, tokenizer)
    monkeypatch.setattr(encoder_module, "_LONG_TEXT_CHARS", piece_chars)
    for text in ("中" + "東京" * 50, "東京中" * 40, "日本" + "東京" * 33 + "。東京"):
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        expected = table[ids].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(encoder.encode(text, normalize=False), expected, rtol=1e-5, atol=1e-6)


def _trained_tokenizer(kind: str) -> Any:
    """A tiny non-BERT tokenizer: sentencepiece-style (Unigram + Metaspace) or GPT-2-style (ByteLevel BPE)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = ["the cat sat on the mat", "a dog ran to the river", "fast code reads a big file", "東京 café naïve"] * 50
    corpus += ["def read(path):\n    with open(path) as f:\n        return f.read()\n"] * 50  # "\n    " tokens
    if kind == "metaspace":
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer: Any = trainers.UnigramTrainer(vocab_size=120, special_tokens=["<unk>"], unk_token="<unk>")
    else:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    return tokenizer


@pytest.mark.parametrize("kind", ["metaspace", "bytelevel"])
@pytest.mark.parametrize("piece_chars", [7, 40, 333])
def test_long_text_pieces_are_exact_for_sentencepiece_and_gpt2_style_tokenizers(
    monkeypatch: pytest.MonkeyPatch, kind: str, piece_chars: int
) -> None:
    # cut after a space, each piece but the first lost its first word's space marker ("▁mat", "Ġmat") and
    # Metaspace added a lone "▁": 1e-5..3e-4 off at every cut of a text over 100k characters
    monkeypatch.setattr(encoder_module, "_LONG_TEXT_CHARS", piece_chars)
    tokenizer = _trained_tokenizer(kind)
    table = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(), 8)).astype(np.float32)
    encoder = StaticEncoder(table, tokenizer)
    texts = [
        "the cat sat on the mat " * 60,
        "a dog  ran   to the river, fast! " * 40,  # runs of spaces
        " leading space and trailing " * 30 + " ",
        "東京 café naïve code " * 50,
        "def read(path):\n    with open(path) as f:\n        return f.read()\n\n" * 30,  # a newline + indentation
    ]
    if kind == "metaspace" and piece_chars < 20:
        # a 7-character window of this code can hold no space after a word: the cut falls back to a newline, to
        # which Metaspace prepends its "▁" (a limit the README states; 100k-character pieces do not meet it)
        texts.pop()
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        expected = table[ids].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(
            encoder.encode(text, normalize=False), expected, rtol=1e-5, atol=1e-6, err_msg=repr(text[:40])
        )


def _model_truncating(folder: Path, max_length: int, direction: str, stride: int = 0) -> Path:
    from tokenizers import Tokenizer

    make_tiny_model(folder)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length, stride=stride, direction=direction)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


@pytest.mark.parametrize("direction", ["left", "right"])
@pytest.mark.parametrize("piece_chars", [9, 50, None])
def test_long_text_truncation_direction_matches_the_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direction: str, piece_chars: int | None
) -> None:
    if piece_chars is not None:  # small pieces make every text "long"; None keeps the real threshold
        monkeypatch.setattr(encoder_module, "_LONG_TEXT_CHARS", piece_chars)
    enc = StaticEncoder.from_pretrained(_model_truncating(tmp_path / "m", 6, direction))
    texts = [
        "first words here " + "filler " * 20 + "the very last words",
        "cat dog, bird. fish tree house car road river city water fire",
        "a b",
        "東京 python " * 30 + "data search vector",
    ]
    if piece_chars is None:
        texts = ["first words here " + "tree " * 25_000 + "the very last cat dog words"]  # > _LONG_TEXT_CHARS
    for text in texts:
        ids = enc.tokenizer.encode(text, add_special_tokens=False).ids  # the tokenizer's own truncation
        assert len(ids) <= 6
        expected = enc.table[ids].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(enc.encode(text, normalize=False), expected, rtol=1e-6, atol=1e-6, err_msg=text[:40])


def test_max_length_override_keeps_the_stored_direction_and_stride(tmp_path: Path) -> None:
    folder = _model_truncating(tmp_path / "left", 5, "left", stride=2)
    enc = StaticEncoder.from_pretrained(folder, max_length=3)
    assert enc.tokenizer.truncation == {"max_length": 3, "stride": 2, "strategy": "longest_first", "direction": "left"}
    np.testing.assert_allclose(enc.encode("cat dog bird fish tree"), enc.encode("bird fish tree"), atol=1e-6)
    assert StaticEncoder.from_pretrained(folder, max_length=2).tokenizer.truncation["stride"] == 1  # < max_length


def test_pickle_and_deepcopy_give_an_equal_working_encoder(encoder: StaticEncoder) -> None:
    texts = ["alpha beta", "", "gamma " * 50]
    expected = encoder.encode(texts, truncate_dim=8)  # fills the prefix table and word cache first
    for clone in (pickle.loads(pickle.dumps(encoder)), copy.deepcopy(encoder)):
        assert clone.fingerprint == encoder.fingerprint and clone.truncate_dim == encoder.truncate_dim
        np.testing.assert_array_equal(clone.encode(texts, truncate_dim=8), expected)
        np.testing.assert_array_equal(clone.encode(texts), encoder.encode(texts))


def _cached_bytes(encoder: StaticEncoder) -> int:
    return sum(
        encoder_module._WORD_ENTRY_BYTES + len(word) + encoder_module._WORD_ID_BYTES * len(ids)
        for word, ids in encoder._word_cache.items()
    )


def test_word_cache_keeps_only_short_words(encoder: StaticEncoder) -> None:
    # A long text without whitespace (minified JSON, base64): each ~100k-character piece is one "word".
    text = ",".join(f'{{"cat":{i},"dog":"x{i}"}}' for i in range(12_000))
    assert len(text) > encoder_module._LONG_TEXT_CHARS and " " not in text
    ids = encoder.tokenizer.encode(text, add_special_tokens=False).ids
    expected = encoder.table[ids].astype(np.float64).mean(axis=0)
    for _ in range(2):  # the long pieces are tokenized again, not looked up
        np.testing.assert_allclose(encoder.encode(text, normalize=False), expected, rtol=1e-5, atol=1e-6)
    assert all(len(word) <= encoder_module._WORD_CACHE_MAX_CHARS for word in encoder._word_cache)
    assert sum(map(len, encoder._word_cache.values())) < 1000
    mixed = ["cat " + "y" * 150 + " dog " + "x" * 101, "y" * 150]
    expected_mixed = [e.ids for e in encoder.tokenizer.encode_batch(mixed, add_special_tokens=False)]
    assert encoder._word_ids(mixed) == expected_mixed
    assert set(encoder._word_cache) >= {"cat", "dog"} and "y" * 150 not in encoder._word_cache


def test_word_cache_is_emptied_past_its_byte_budget(encoder: StaticEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_module, "_WORD_CACHE_BYTES", 20_000)
    words = [f"w{i}x{i * 7}" for i in range(4000)]
    for start in range(0, len(words), 100):
        chunk = words[start : start + 100]
        expected = [e.ids for e in encoder.tokenizer.encode_batch(chunk, add_special_tokens=False)]
        assert encoder._word_ids(chunk) == expected
        assert encoder._word_cache_bytes == _cached_bytes(encoder)
        assert _cached_bytes(encoder) <= 20_000 + 100 * 400  # the budget plus one call's new words


class _Bar:
    def __init__(self, total: int) -> None:
        self.total, self.n, self.closed = total, 0, False

    def update(self, n: int) -> None:
        self.n += n

    def close(self) -> None:
        self.closed = True


def test_progress_bar_counts_long_texts_and_closes_on_errors(
    encoder: StaticEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars: list[_Bar] = []
    monkeypatch.setattr(encoder_module, "_progress", lambda total: bars.append(_Bar(total)) or bars[-1])
    texts = ["cat"] * 5 + ["dog " * 30_000]  # the last one is over _LONG_TEXT_CHARS
    encoder.encode(texts, show_progress_bar=True)
    assert (bars[0].total, bars[0].n, bars[0].closed) == (6, 6, True)
    with pytest.raises(ValueError, match="not valid Unicode"):
        encoder.encode(["cat", "bad \ud800 text"], show_progress_bar=True)
    assert bars[1].closed


def test_truncate_dim_is_fixed_when_the_encoder_is_made(tmp_path: Path) -> None:
    # a cached encoder is shared by every adapter of the process: setting its width changed everyone's vectors,
    # and a bad value (999, -3, "8") failed only at encode time with a numpy error (0 silently gave full width)
    import pickle

    from matryo.cache import clear_encoder_cache, load_encoder

    folder = make_tiny_model(tmp_path / "m", dim=64)
    clear_encoder_cache()
    shared = load_encoder(folder)
    for value in (8, 999, -3, "8", 0, None):
        with pytest.raises(AttributeError, match=r"fixed when the encoder is made.*truncate_dim= to encode\(\)"):
            shared.truncate_dim = value  # type: ignore[misc]
    assert load_encoder(folder).encode("the cat").shape == (64,)
    narrow = StaticEncoder.from_pretrained(folder, truncate_dim=8)
    assert narrow.truncate_dim == 8 and narrow.encode("the cat").shape == (8,)
    copy = pickle.loads(pickle.dumps(narrow))  # noqa: S301  # our own object
    assert copy.truncate_dim == 8 and copy.encode("the cat").shape == (8,)
    # an encoder pickled before truncate_dim was a property kept it in its __dict__, and an older matryo reads it
    # from there in a pickle of this one
    state = copy.__getstate__()
    assert state["truncate_dim"] == 8
    state.pop("_truncate_dim")
    old = StaticEncoder.__new__(StaticEncoder)
    old.__setstate__(state)
    assert old.truncate_dim == 8 and old.encode("the cat").shape == (8,)


def test_a_transformers_fast_tokenizer_is_unwrapped_and_anything_else_refused(tmp_path: Path) -> None:
    # sentence-transformers' StaticEmbedding takes a PreTrainedTokenizerFast; matryo died in get_vocab's TypeError
    from tests.conftest import make_tokenizer

    from matryo.errors import InvalidTypeError

    transformers = pytest.importorskip("transformers")
    tokenizer = make_tokenizer()
    table = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(), 8)).astype(np.float32)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer)
    np.testing.assert_array_equal(
        StaticEncoder(table, fast).encode(["the cat", ""]), StaticEncoder(table, tokenizer).encode(["the cat", ""])
    )
    with pytest.raises(InvalidTypeError, match=r"tokenizers\.Tokenizer.*got str"):
        StaticEncoder(table, "tokenizer.json")  # type: ignore[arg-type]
