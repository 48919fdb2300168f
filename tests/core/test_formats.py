"""Loading: every folder layout, dtypes, memory mapping, and clear errors for bad folders."""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save, save_file
from tests.conftest import make_tiny_model, make_tokenizer, traced_peak
from tokenizers import Tokenizer, models, pre_tokenizers

from matryo import ModelFormatError, ModelNotFoundError, StaticEncoder, hub
from matryo.errors import InvalidArgumentError, InvalidTypeError, PickleWeightsError
from matryo.formats import IncompleteFolderError, find_model_files, save_table

TEXTS = ["the cat read a file", "", "zebra dog", "python code search"]


def test_every_layout_loads_and_gives_identical_vectors(tmp_path: Path) -> None:
    results = {}
    for layout in ("st_hub", "st_root", "model2vec"):
        enc = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / layout, layout=layout))
        results[layout] = enc.encode(TEXTS)
    np.testing.assert_array_equal(results["st_hub"], results["st_root"])
    np.testing.assert_array_equal(results["st_hub"], results["model2vec"])


def test_layout_names(tiny_model_any_layout: Path) -> None:
    files = find_model_files(tiny_model_any_layout)
    assert files.weights.is_file() and files.tokenizer.is_file()
    assert "sentence-transformers" in files.layout
    # a folder model2vec saved (config.json says so) is named as model2vec's, though read the sentence-transformers way
    assert files.layout.startswith("model2vec, read as") == (tiny_model_any_layout.name.endswith("model2vec"))


def test_hub_layout_without_modules_json(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m", layout="st_hub")
    (folder / "modules.json").unlink()
    assert find_model_files(folder).layout == "sentence-transformers hub layout"
    assert StaticEncoder.from_pretrained(folder).encode("cat").shape == (64,)


def test_float32_table_is_memory_mapped_not_copied(tiny_model: Path) -> None:
    enc = StaticEncoder.from_pretrained(tiny_model)
    assert not enc.table.flags.owndata
    assert not enc.table.flags.writeable


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_half_and_double_tables_are_pooled_in_float32(tmp_path: Path, dtype: str) -> None:
    f32 = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "f32"))
    other = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / dtype, dtype=dtype))
    assert other.table.dtype == np.float32
    assert other.stored_dtype == {"float16": "F16", "float64": "F64"}[dtype]
    np.testing.assert_allclose(other.encode(TEXTS), f32.encode(TEXTS), atol=2e-3)


def test_bfloat16_table(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "bf", layout="st_root")
    ref = StaticEncoder.from_pretrained(folder)
    # Write the same table as bfloat16 by hand (upper 16 bits of each float32).
    table = np.ascontiguousarray(ref.table)
    bits = (table.view(np.uint32) >> 16).astype(np.uint16)
    header = {"embedding.weight": {"dtype": "BF16", "shape": list(table.shape), "data_offsets": [0, bits.nbytes]}}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    weights = folder / "model.safetensors"
    weights.unlink()  # a new file, never an in-place rewrite of the one `ref` has memory-mapped
    weights.write_bytes(len(raw).to_bytes(8, "little") + raw + bits.tobytes())
    enc = StaticEncoder.from_pretrained(folder)
    assert enc.stored_dtype == "BF16"
    np.testing.assert_allclose(enc.encode(TEXTS), ref.encode(TEXTS), atol=2e-2)


def test_model2vec_mapping_and_weights_are_folded(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m2v", layout="model2vec")
    tokenizer = make_tokenizer()
    vocab = tokenizer.get_vocab_size()
    rng = np.random.default_rng(3)
    codebook = rng.standard_normal((7, 64)).astype(np.float32)
    mapping = rng.integers(0, 7, size=vocab).astype(np.int64)
    weights = rng.uniform(0.5, 2.0, size=vocab).astype(np.float32)
    save_file({"embeddings": codebook, "mapping": mapping, "weights": weights}, str(folder / "model.safetensors"))
    enc = StaticEncoder.from_pretrained(folder)
    np.testing.assert_allclose(enc.table, codebook[mapping] * weights[:, None], rtol=1e-6)


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        (np.linspace(0, 6.9, 10, dtype=np.float32), "must hold integer row numbers, found dtype float32"),
        (np.arange(10, dtype=np.int64) + 3, "index rows 0..6 of 'embeddings', found 3..12"),
    ],
)
def test_model2vec_mapping_that_cannot_be_used_is_refused_saying_what_was_found(
    tmp_path: Path, mapping: np.ndarray, expected: str
) -> None:
    # a float mapping was floored silently; an out-of-range one did not say what it held
    folder = make_tiny_model(tmp_path / "m2v", layout="model2vec")
    vocab = make_tokenizer().get_vocab_size()
    mapping = np.resize(mapping, vocab)
    codebook = np.ones((7, 8), np.float32)
    save_file({"embeddings": codebook, "mapping": mapping}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=re.escape(expected)):
        StaticEncoder.from_pretrained(folder)


def test_modules_json_naming_a_missing_folder_does_not_fall_back_to_root_files(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "hub", layout="st_hub")
    for name in ("model.safetensors", "tokenizer.json"):  # other files at the root: maybe another model
        (folder / name).write_bytes((folder / "0_StaticEmbedding" / name).read_bytes())
    (folder / "0_StaticEmbedding" / "model.safetensors").unlink()
    with pytest.raises(IncompleteFolderError, match="0_StaticEmbedding.*interrupted download or copy"):
        StaticEncoder.from_pretrained(folder)


def test_a_file_passed_as_the_model_folder_is_named_as_a_file(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    with pytest.raises(ModelNotFoundError, match=r"is a file; pass the folder that holds model\.safetensors"):
        StaticEncoder.from_pretrained(folder / "model.safetensors")


def test_table_twice_the_vocabulary_warns_of_another_models_tokenizer(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    vocab = make_tokenizer().get_vocab_size()
    save_file({"embedding.weight": np.ones((3 * vocab, 8), np.float32)}, str(folder / "model.safetensors"))
    with pytest.warns(UserWarning, match=rf"{3 * vocab} rows .* 3\.0x the vocabulary: is tokenizer\.json from another"):
        enc = StaticEncoder.from_pretrained(folder)
    assert enc.vocab_size == vocab


def test_folder_matching_no_layout_lists_what_was_tried(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="Layouts tried") as info:
        StaticEncoder.from_pretrained(tmp_path / "empty")
    for layout in ("modules.json", "0_StaticEmbedding", "root layout"):
        assert layout in str(info.value)


def test_pickle_files_are_never_loaded(tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    make_tokenizer().save(str(folder / "tokenizer.json"))
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelFormatError, match="Pickle files"):
        StaticEncoder.from_pretrained(folder)


def _pickled_subfolder_model(folder: Path) -> Path:
    """sentence-transformers 2.x/3.x saved with safe_serialization=False: modules.json -> 0_StaticEmbedding/*.bin."""
    make_tiny_model(folder, layout="st_hub")
    (folder / "0_StaticEmbedding" / "model.safetensors").unlink()
    (folder / "0_StaticEmbedding" / "pytorch_model.bin").write_bytes(b"not loaded")
    return folder


def test_pickled_weights_in_the_module_folder_are_named_not_called_a_broken_download(tmp_path: Path) -> None:
    folder = _pickled_subfolder_model(tmp_path / "st3")
    with pytest.raises(PickleWeightsError, match=r"only as pickle files \(pytorch_model\.bin\)") as info:
        StaticEncoder.from_pretrained(folder)
    assert not isinstance(info.value, IncompleteFolderError)  # downloading again cannot help
    assert "interrupted" not in str(info.value) and ".save(new_path)" in str(info.value)
    # the same at the root: not an incomplete folder either, and the message says how to convert
    root = tmp_path / "root"
    root.mkdir()
    make_tokenizer().save(str(root / "tokenizer.json"))
    (root / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelFormatError, match="Pickle files") as info:
        StaticEncoder.from_pretrained(root)
    assert not isinstance(info.value, IncompleteFolderError) and ".save(new_path)" in str(info.value)


def test_pickled_weights_in_the_hub_cache_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # sentence-transformers downloaded a .bin-only repo into the shared cache; matryo's offline load finds it
    pytest.importorskip("huggingface_hub")
    snapshot = _partial_hub_cache(tmp_path)
    _pickled_subfolder_model(snapshot)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PickleWeightsError, match="pickle files") as info:
        StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path)
    assert "incomplete" not in str(info.value) and "Load it once online" in str(info.value)


def test_pickles_another_library_cached_do_not_stop_the_safetensors_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the repo has model.safetensors; sentence-transformers had put only pytorch_model.bin into the shared cache
    huggingface_hub = pytest.importorskip("huggingface_hub")
    snapshot = _pickled_subfolder_model(_partial_hub_cache(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _answering_hub(monkeypatch, huggingface_hub)
    real = huggingface_hub.snapshot_download

    def snapshot_download(**kwargs: object) -> str:
        if kwargs.get("local_files_only") or kwargs["allow_patterns"] == ["*.json"]:
            return str(real(**{**kwargs, "local_files_only": True}))
        make_tiny_model(snapshot, layout="st_hub")  # stands in for the network: the safetensors arrive
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path).dim == 64


def _hub_of_json_files(monkeypatch: pytest.MonkeyPatch, huggingface_hub: Any, files: list[str], configs: Path) -> None:
    """A hub (no network) whose repo lists ``files`` and whose JSON-only download is ``configs``; nothing is cached,
    and any other download fails the test."""

    def repo_info(self: object, repo_id: str, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(sha="0" * 40, siblings=[SimpleNamespace(rfilename=f) for f in files])

    def json_only(**kwargs: object) -> str:
        if kwargs.get("local_files_only"):
            raise FileNotFoundError("not cached")
        assert kwargs["allow_patterns"] == ["*.json"], "nothing but the JSON files may be downloaded"
        return str(configs)

    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", json_only)


def test_a_transformer_repo_with_pickle_weights_is_called_a_transformer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the pickle check ran before the modules.json check and told the user to convert a model matryo cannot run
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    files = ["modules.json", "pytorch_model.bin", "config.json", "tokenizer.json"]
    snapshot = tmp_path / "configs"
    snapshot.mkdir()
    transformer = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
    pooling = {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
    (snapshot / "modules.json").write_text(json.dumps([transformer, pooling]))

    _hub_of_json_files(monkeypatch, huggingface_hub, files, snapshot)
    with pytest.raises(ModelFormatError, match="Transformer") as info:
        StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path)
    assert not isinstance(info.value, PickleWeightsError)


def test_a_hub_repo_with_only_pickle_weights_is_refused_before_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # matryo never downloads .bin files: such a repo was "an interrupted download" after every attempt
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    files = ["modules.json", "0_StaticEmbedding/pytorch_model.bin", "0_StaticEmbedding/tokenizer.json"]

    configs = tmp_path / "configs"
    make_tiny_model(configs, layout="st_hub")
    (configs / "0_StaticEmbedding" / "model.safetensors").unlink()
    _hub_of_json_files(monkeypatch, huggingface_hub, files, configs)
    with pytest.raises(PickleWeightsError, match=r"'owner/name' \(revision main\) holds its weights only as pickle"):
        StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path)


def test_row_count_below_vocab_names_both_numbers(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    vocab = make_tokenizer().get_vocab_size()
    save_file({"embedding.weight": np.zeros((vocab - 3, 8), np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=rf"{vocab - 3} rows.*{vocab} tokens"):
        StaticEncoder.from_pretrained(folder)


def test_padded_table_with_extra_rows_is_accepted(tmp_path: Path) -> None:
    """sentence-transformers accepts a table padded past the vocabulary; the extra rows are never looked up."""
    folder = make_tiny_model(tmp_path / "m")
    plain = StaticEncoder.from_pretrained(folder)
    padded = np.vstack([plain.table, np.full((6, plain.dim), 9.0, np.float32)])
    save_file({"embedding.weight": padded}, str(tmp_path / "padded.safetensors"))
    (folder / "model.safetensors").unlink()  # a new file, never an in-place rewrite of the one `plain` has mapped
    (tmp_path / "padded.safetensors").rename(folder / "model.safetensors")
    enc = StaticEncoder.from_pretrained(folder)
    assert enc.vocab_size == plain.vocab_size and not enc.table.flags.owndata  # still a view of the mapped file
    np.testing.assert_array_equal(enc.encode(TEXTS), plain.encode(TEXTS))
    assert StaticEncoder.from_pretrained(enc.save_pretrained(tmp_path / "saved")).vocab_size == plain.vocab_size


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_non_finite_rows_are_refused_at_load_naming_the_token_ids(tmp_path: Path, dtype: str) -> None:
    """A NaN or infinite row would turn every text using that token into a NaN vector: refused, not loaded."""
    folder = make_tiny_model(tmp_path / "m")
    table = StaticEncoder.from_pretrained(folder).table.astype(dtype)
    table[7, 3] = np.nan
    table[12, 0] = -np.inf
    save_file({"embedding.weight": table}, str(tmp_path / "bad.safetensors"))
    (folder / "model.safetensors").unlink()
    (tmp_path / "bad.safetensors").rename(folder / "model.safetensors")
    with pytest.raises(ModelFormatError, match=r"2 rows holding NaN or infinity \(token ids 7, 12\)"):
        StaticEncoder.from_pretrained(folder)
    with pytest.raises(ModelFormatError, match="token ids 7, 12"):
        StaticEncoder(table.astype(np.float32), make_tokenizer())


def test_save_table_writes_safetensors_own_bytes_without_copying_the_table(tmp_path: Path) -> None:
    # safetensors.numpy.save returns the whole file as bytes (a copy of the table: save_pretrained of a 125 MB
    # table grew RSS by 237 MB); the header and the array's own buffer are written instead
    rng = np.random.default_rng(0)
    for name, table in (
        ("embeddings", rng.random((1024, 1024), dtype=np.float32)),
        ("embedding.weight", rng.random((7, 5)).astype(np.float16)),
    ):
        path = tmp_path / "m.safetensors"
        _, peak = traced_peak(lambda: save_table(path, name, table))  # noqa: B023  # called at once
        assert path.read_bytes() == save({name: table}), name
        assert peak < table.nbytes // 4 + 65536, f"peak {peak} bytes for a {table.nbytes}-byte table"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left


def test_an_in_memory_table_is_read_only_so_widths_and_fingerprint_cannot_disagree(tmp_path: Path) -> None:
    # the encoder kept a writable alias of the caller's array: an edit through it changed full-width vectors but
    # not the cached narrower tables or the fingerprint
    weights = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "m")).table.copy()
    enc = StaticEncoder(weights, make_tokenizer())
    assert not enc.table.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        enc.table[3] = 0.0
    copy = pickle.loads(pickle.dumps(enc))  # noqa: S301  # a round trip of our own object
    assert not copy.table.flags.writeable
    assert weights.flags.writeable  # the caller's array is not changed


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_length": True}, InvalidTypeError, "max_length must be an int >= 1"),  # was 1 token, silently
        ({"max_length": 128.0}, InvalidTypeError, "max_length must be an int >= 1"),
        ({"max_length": "128"}, InvalidTypeError, "max_length must be an int >= 1"),
        ({"max_length": 10**20}, InvalidArgumentError, "max_length must be between 1 and 18446744073709551615"),
        ({"max_length": 0}, InvalidArgumentError, "max_length must be between 1"),
    ],
)
def test_constructor_arguments_of_the_wrong_type_are_named(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    table = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "m")).table
    with pytest.raises(error, match=re.escape(message)):
        StaticEncoder(table, make_tokenizer(), **kwargs)
    assert StaticEncoder(table, make_tokenizer(), max_length=np.int64(4)).max_length == 4
    # "never cut" as model2vec configs and users write it (2**31 and sys.maxsize were refused for a while)
    for huge in (2**31, sys.maxsize, 2**64 - 1):
        assert StaticEncoder(table, make_tokenizer(), max_length=huge).encode("cat").shape == (table.shape[1],)


def test_a_table_that_is_not_a_numpy_array_of_reals_is_named(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    table = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "m")).table
    with pytest.raises(InvalidTypeError, match=r"got Tensor \(from torch: weight.detach\(\).cpu\(\).numpy\(\)\)"):
        StaticEncoder(torch.from_numpy(table.copy()), make_tokenizer())  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="table must be a 2-D numpy array .*got list"):
        StaticEncoder(table.tolist(), make_tokenizer())  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="got dtype complex64"):  # the imaginary part was dropped, warned only
        StaticEncoder(table.astype(np.complex64), make_tokenizer())
    enc = StaticEncoder(table, make_tokenizer())
    for bad in (None, "64", 2.5, float("nan"), True):
        with pytest.raises(InvalidTypeError, match="batch_size must be an int >= 1"):
            enc.encode(TEXTS, batch_size=bad)  # type: ignore[arg-type]
    np.testing.assert_array_equal(enc.encode(TEXTS, batch_size=np.int64(2)), enc.encode(TEXTS))
    for bad in ("no", 0.0, None):  # read as truthiness: "no" normalised
        with pytest.raises(InvalidTypeError, match="normalize must be True or False"):
            enc.encode(TEXTS, normalize=bad)  # type: ignore[call-overload]
    np.testing.assert_array_equal(enc.encode(TEXTS, normalize=np.bool_(False)), enc.encode(TEXTS, normalize=False))


def test_non_finite_padding_rows_past_the_vocabulary_are_ignored(tmp_path: Path) -> None:
    """Rows no token id reaches are never looked up, so a NaN there does not matter (as with any padding)."""
    folder = make_tiny_model(tmp_path / "m")
    plain = StaticEncoder.from_pretrained(folder)
    padded = np.vstack([plain.table, np.full((3, plain.dim), np.nan, np.float32)])
    enc = StaticEncoder(padded, make_tokenizer())
    np.testing.assert_array_equal(enc.encode(TEXTS), plain.encode(TEXTS))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[: len(b) // 2],  # truncated download
        lambda b: b[:5],  # shorter than the header length
        lambda b: b"\xff" * 8 + b[8:],  # absurd header length
        lambda b: b[:8] + b"{not json" + b[17:],  # corrupt header
        lambda b: b"",  # empty file
    ],
)
def test_corrupt_safetensors_is_a_format_error(tmp_path: Path, mangle: object) -> None:
    folder = make_tiny_model(tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(mangle(weights.read_bytes()))  # type: ignore[operator]
    with pytest.raises(ModelFormatError, match="safetensors"):
        StaticEncoder.from_pretrained(folder)


def test_wrong_tensor_name_or_shape(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    save_file({"something.else": np.zeros((3, 3), np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match="embedding.weight"):
        StaticEncoder.from_pretrained(folder)
    save_file({"embedding.weight": np.zeros(30, np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match="2-D"):
        StaticEncoder.from_pretrained(folder)


def test_corrupt_tokenizer_or_modules_json(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    (folder / "tokenizer.json").write_text("{ nope")
    with pytest.raises(ModelFormatError, match="tokenizer"):
        StaticEncoder.from_pretrained(folder)
    folder = make_tiny_model(tmp_path / "n")
    (folder / "modules.json").write_text("[oops")
    with pytest.raises(ModelFormatError, match="modules.json"):
        StaticEncoder.from_pretrained(folder)


@pytest.mark.parametrize("content", ["null", "5", '{"type": "sentence_transformers.models.StaticEmbedding"}'])
def test_modules_json_that_is_not_a_list_is_a_model_format_error(tmp_path: Path, content: str) -> None:
    folder = make_tiny_model(tmp_path / "m")
    (folder / "modules.json").write_text(content)  # null and 5 raised a raw TypeError, a dict was ignored
    kind = {"null": "NoneType", "5": "int"}.get(content, "dict")
    with pytest.raises(ModelFormatError, match=f"holds a JSON {kind}; expected a list of module entries"):
        StaticEncoder.from_pretrained(folder)


def test_a_float64_table_beyond_float32_range_is_named_as_such(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    table = StaticEncoder.from_pretrained(folder).table.astype(np.float64)
    table[5, 1] = 1e300  # finite in the file
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy "overflow encountered in cast" either
        with pytest.raises(ModelFormatError, match=r"NaN or infinity \(or values beyond float32 range.*token ids 5\)"):
            StaticEncoder(table, make_tokenizer())
    with pytest.raises(ModelFormatError) as plain:
        StaticEncoder(np.where(table > 1e200, np.nan, table).astype(np.float32), make_tokenizer())
    assert "beyond float32" not in str(plain.value)


@pytest.mark.parametrize("name", [5, b"some/folder", 3.5])
def test_from_pretrained_refuses_what_is_not_a_path_or_hub_id(name: object) -> None:
    with pytest.raises(InvalidTypeError, match="name_or_path must be"):
        StaticEncoder.from_pretrained(name)  # type: ignore[arg-type]


def test_save_pretrained_onto_a_file_says_it_is_a_file(tmp_path: Path, tiny_model: Path) -> None:
    target = tmp_path / "model.txt"
    target.write_text("keep me")
    with pytest.raises(InvalidArgumentError, match="it is a file; expected a .*folder"):
        StaticEncoder.from_pretrained(tiny_model).save_pretrained(target)
    assert target.read_text() == "keep me"


def test_modules_after_static_embedding_other_than_normalize_are_refused(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    static = json.loads((folder / "modules.json").read_text())[0]
    normalize = {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"}
    (folder / "modules.json").write_text(json.dumps([static, normalize]))
    assert StaticEncoder.from_pretrained(folder).dim == 64  # Normalize is fine
    dense = {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.base.modules.dense.Dense"}
    (folder / "modules.json").write_text(json.dumps([static, dense, {**normalize, "idx": 2}]))
    with pytest.raises(ModelFormatError, match=r"sentence_transformers\.base\.modules\.dense\.Dense.*1_Dense") as info:
        StaticEncoder.from_pretrained(folder)
    assert "only StaticEmbedding" in str(info.value) and "Normalize (path" not in str(info.value)


def test_missing_path_that_is_not_a_hub_id(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        StaticEncoder.from_pretrained(tmp_path / "nope" / "deeper" / "still")
    with pytest.raises(ModelNotFoundError):
        StaticEncoder.from_pretrained("./not-here")


def test_uncached_hub_id_offline_fails_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not in the local hub cache"):
        StaticEncoder.from_pretrained("someone/not-a-cached-model", cache_dir=tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(ModelNotFoundError, match="local_files_only"):
        StaticEncoder.from_pretrained("someone/not-a-cached-model", cache_dir=tmp_path, local_files_only=True)


def _partial_hub_cache(cache: Path) -> Path:
    """A hub cache entry whose snapshot folder lacks the model files, as after a Ctrl-C during the download."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--owner--name"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "README.md").write_text("model card only")
    return snapshot


def test_partial_hub_cache_offline_says_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    snapshot = _partial_hub_cache(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="incomplete") as info:
        StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path)
    assert str(snapshot.parent.parent) in str(info.value)  # the folder to delete is named
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(ModelNotFoundError, match="incomplete"):
        StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path, local_files_only=True)


def _answering_hub(monkeypatch: pytest.MonkeyPatch, huggingface_hub: Any) -> None:
    """The hub's revision lookup, answered without the network (the first call of a download)."""

    def repo_info(self: object, repo_id: str, **kwargs: object) -> SimpleNamespace:
        assert kwargs["timeout"] == hub._HUB_TIMEOUT  # never a lookup that can wait forever
        return SimpleNamespace(sha="0123456789abcdef0123456789abcdef01234567")

    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)


def test_partial_hub_cache_online_downloads_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    snapshot = _partial_hub_cache(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _answering_hub(monkeypatch, huggingface_hub)
    real = huggingface_hub.snapshot_download
    downloads: list[dict[str, object]] = []

    def snapshot_download(**kwargs: object) -> str:
        if kwargs.get("local_files_only"):
            return str(real(**kwargs))  # the real cache lookup finds the partial snapshot
        if kwargs["allow_patterns"] == ["*.json"]:
            return str(snapshot)  # the JSON files checked before the weights: nothing to add here
        downloads.append(kwargs)  # stands in for the network: the download completes the snapshot
        make_tiny_model(snapshot)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    enc = StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path)
    assert len(downloads) == 1 and enc.dim == 64
    assert downloads[0]["revision"] is None  # as given, not a commit hash: the cache then records refs/main
    StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path)  # now complete: a cache hit, no download
    assert len(downloads) == 1


def _silent_server() -> tuple[socket.socket, list[socket.socket]]:
    """A local server that accepts connections and never answers (a proxy or firewall holding them)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    return server, accepted


def test_a_hub_that_never_answers_fails_within_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # It used to wait forever (huggingface_hub's repo lookup has no timeout): > 400 s, killed.
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    server, accepted = _silent_server()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once, when an earlier test had it set
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setattr(hub, "_HUB_TIMEOUT", 0.5)
    snapshot = _partial_hub_cache(tmp_path)
    start = time.monotonic()
    try:
        with pytest.raises(ModelNotFoundError, match=r"did not answer within 0\.5 s") as info:
            StaticEncoder.from_pretrained("owner/name", cache_dir=tmp_path)
    finally:
        server.close()
        for connection in accepted:
            connection.close()
    assert time.monotonic() - start < 60 and accepted
    assert f"The cached copy in {str(snapshot)!r} is incomplete" in str(info.value)  # what the hub was to finish


def test_hub_id_of_a_transformer_is_refused_before_its_weights_are_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 'BAAI/bge-large-en-v1.5' passed by mistake downloaded its 1.3 GB of weights before modules.json said no.
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _answering_hub(monkeypatch, huggingface_hub)
    snapshot = tmp_path / "snap"
    patterns: list[object] = []

    def snapshot_download(**kwargs: object) -> str:  # stands in for the network
        if kwargs.get("local_files_only"):
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        patterns.append(kwargs["allow_patterns"])
        snapshot.mkdir(exist_ok=True)
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        (snapshot / "modules.json").write_text(json.dumps(modules))
        if "*.safetensors" in kwargs["allow_patterns"]:  # type: ignore[operator]
            (snapshot / "model.safetensors").write_bytes(b"")  # the weights
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(ModelFormatError, match="Transformer -> Pooling"):
        StaticEncoder.from_pretrained("owner/transformer", cache_dir=tmp_path)
    assert patterns == [["*.json"]], "only the JSON files were fetched"


def test_save_pretrained_round_trip(tmp_path: Path, tiny_model: Path) -> None:
    enc = StaticEncoder.from_pretrained(tiny_model, max_length=3)
    saved = enc.save_pretrained(tmp_path / "saved")
    again = StaticEncoder.from_pretrained(saved)
    assert again.max_length == 3
    np.testing.assert_array_equal(again.encode(TEXTS), enc.encode(TEXTS))
    assert json.loads((saved / "config.json").read_text())["model_type"] == "model2vec"


def test_save_pretrained_into_its_own_folder_is_safe(tiny_model: Path) -> None:
    enc = StaticEncoder.from_pretrained(tiny_model)
    before = enc.encode(TEXTS)
    enc.save_pretrained(tiny_model)  # overwrites the file `enc` has memory-mapped
    np.testing.assert_array_equal(enc.encode(TEXTS), before)
    np.testing.assert_array_equal(StaticEncoder.from_pretrained(tiny_model).encode(TEXTS), before)


def test_save_pretrained_keeps_float16(tmp_path: Path) -> None:
    enc = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "h", dtype="float16"))
    again = StaticEncoder.from_pretrained(enc.save_pretrained(tmp_path / "out"))
    assert again.stored_dtype == "F16"
    np.testing.assert_array_equal(again.table, enc.table)


def _write_st_config(folder: Path, **entries: object) -> None:
    config = {
        "model_type": "SentenceTransformer",
        "prompts": {"query": "", "document": ""},
        "default_prompt_name": None,
    }
    (folder / "config_sentence_transformers.json").write_text(json.dumps({**config, **entries}))


def test_truncate_dim_in_st_config_is_the_default_and_survives_save(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    _write_st_config(folder, truncate_dim=16)  # sentence-transformers applies it by default
    enc = StaticEncoder.from_pretrained(folder)
    assert enc.truncate_dim == 16 and enc.encode("cat").shape == (16,)
    assert StaticEncoder.from_pretrained(folder, truncate_dim=32).truncate_dim == 32  # an explicit value wins
    saved = enc.save_pretrained(tmp_path / "saved")
    assert json.loads((saved / "config_sentence_transformers.json").read_text())["truncate_dim"] == 16
    again = StaticEncoder.from_pretrained(saved)
    assert again.truncate_dim == 16
    np.testing.assert_array_equal(again.encode(TEXTS), enc.encode(TEXTS))
    # A width given at load is saved too; no width saves none.
    assert (
        StaticEncoder.from_pretrained(
            StaticEncoder.from_pretrained(folder, truncate_dim=8).save_pretrained(tmp_path / "eight")
        ).truncate_dim
        == 8
    )
    plain = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "plain")).save_pretrained(tmp_path / "plain_out")
    assert "truncate_dim" not in json.loads((plain / "config_sentence_transformers.json").read_text())


@pytest.mark.parametrize("value", [0, -1, "16", 16.0, True])
def test_bad_truncate_dim_in_st_config(tmp_path: Path, value: object) -> None:
    folder = make_tiny_model(tmp_path / "m")
    _write_st_config(folder, truncate_dim=value)
    with pytest.raises(ModelFormatError, match="config_sentence_transformers.json.*truncate_dim"):
        StaticEncoder.from_pretrained(folder)


def test_a_stored_truncate_dim_wider_than_the_table_is_the_full_width(tmp_path: Path) -> None:
    # sentence-transformers saves and loads such a folder (its [:, :65] keeps all 64 columns); matryo refused it
    folder = make_tiny_model(tmp_path / "m", dim=64)
    _write_st_config(folder, truncate_dim=65)
    with pytest.warns(UserWarning, match="sets truncate_dim 65, wider than the table's 64 columns: the full width"):
        enc = StaticEncoder.from_pretrained(folder)
    assert enc.truncate_dim is None and enc.encode("the cat").shape == (64,)
    saved = enc.save_pretrained(tmp_path / "saved")  # the bad value is not carried over
    assert "truncate_dim" not in json.loads((saved / "config_sentence_transformers.json").read_text())


def test_default_prompt_in_st_config_warns_that_it_is_not_applied(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    _write_st_config(folder, prompts={"query": "query: ", "document": ""}, default_prompt_name="query")
    with pytest.warns(UserWarning, match="default_prompt_name 'query'.*'query: '"):
        StaticEncoder.from_pretrained(folder)
    _write_st_config(folder, prompts={"query": "", "title": "title: "}, default_prompt_name="query")
    StaticEncoder.from_pretrained(folder)  # an empty default prompt changes nothing: no warning (warnings are errors)
    _write_st_config(folder, prompts={"query": "", "document": "", "title": "title: "})
    StaticEncoder.from_pretrained(folder)  # other named prompts are only used on request: no warning


@pytest.mark.parametrize("default", [None, "document"])
def test_query_and_document_prompts_warn_once(tmp_path: Path, default: str | None) -> None:
    """sentence-transformers' encode_query/encode_document prepend these even without a default prompt."""
    folder = make_tiny_model(tmp_path / "m")
    _write_st_config(folder, prompts={"query": "query: ", "document": ""}, default_prompt_name=default)
    with pytest.warns(UserWarning) as record:
        StaticEncoder.from_pretrained(folder)
    assert len(record) == 1
    assert "prompts query 'query: ', which sentence-transformers' encode_query/encode_document" in str(
        record[0].message
    )
    _write_st_config(folder, prompts={"query": "query: ", "document": "passage: "}, default_prompt_name="document")
    with pytest.warns(UserWarning) as record:
        StaticEncoder.from_pretrained(folder)
    message = str(record[0].message)
    assert len(record) == 1 and "default_prompt_name 'document'" in message and "query 'query: ', document" in message


@pytest.mark.network
def test_real_hub_model_loads_when_online() -> None:
    import socket

    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
    except OSError:
        pytest.skip("offline: the hub is not reachable")
    enc = StaticEncoder.from_pretrained("sentence-transformers/static-retrieval-mrl-en-v1")
    assert enc.dim == 1024 and enc.vocab_size == 30522


NORMALIZE_MODULE = {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"}


def test_save_pretrained_keeps_a_normalize_module(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps([*modules, NORMALIZE_MODULE]))
    enc = StaticEncoder.from_pretrained(folder)
    assert enc.normalized
    saved = enc.save_pretrained(tmp_path / "saved")
    assert json.loads((saved / "modules.json").read_text())[1] == NORMALIZE_MODULE
    assert json.loads((saved / "config.json").read_text())["normalize"] is True
    assert StaticEncoder.from_pretrained(saved).normalized
    plain = StaticEncoder.from_pretrained(make_tiny_model(tmp_path / "plain"))
    assert not plain.normalized
    out = plain.save_pretrained(tmp_path / "plain_out")
    assert len(json.loads((out / "modules.json").read_text())) == 1
    assert json.loads((out / "config.json").read_text())["normalize"] is False


def test_model2vec_normalize_true_is_kept_by_save_pretrained(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m", layout="model2vec")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "normalize": True}))
    enc = StaticEncoder.from_pretrained(folder)
    assert enc.normalized
    saved = enc.save_pretrained(tmp_path / "saved")
    assert json.loads((saved / "config.json").read_text())["normalize"] is True
    assert NORMALIZE_MODULE in json.loads((saved / "modules.json").read_text())


def test_save_pretrained_keeps_prompts_and_similarity(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    prompts = {"query": "", "document": "", "title": "title: "}  # a named prompt, applied only on request
    _write_st_config(folder, prompts=prompts, similarity_fn_name="dot", __version__={"sentence_transformers": "3.0"})
    enc = StaticEncoder.from_pretrained(folder)
    saved = json.loads((enc.save_pretrained(tmp_path / "saved") / "config_sentence_transformers.json").read_text())
    assert saved == {
        "model_type": "SentenceTransformer",
        "prompts": prompts,
        "default_prompt_name": None,
        "similarity_fn_name": "dot",
    }


def _gappy_tokenizer() -> Tokenizer:
    """Ids 3..5 unused (removed tokens) and an added token: 5 tokens, highest id 7."""
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "cat": 1, "dog": 2, "fish": 7}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_tokens(["zebra"])  # gets id 4 (the token count), inside the gap
    return tokenizer


def test_token_ids_with_gaps_index_the_table_by_id() -> None:
    tokenizer = _gappy_tokenizer()
    assert tokenizer.get_vocab_size(with_added_tokens=True) == 5 and tokenizer.encode("zebra fish").ids == [4, 7]
    table = np.arange(8 * 4, dtype=np.float32).reshape(8, 4)
    enc = StaticEncoder(table, tokenizer)
    assert enc.vocab_size == 8
    expected = [(table[7] + table[1]) / 2, table[4]]
    np.testing.assert_array_equal(enc.encode(["fish cat", "zebra"], normalize=False), expected)
    np.testing.assert_array_equal(enc.encode("fish", truncate_dim=2, normalize=False), table[7, :2])


def test_table_smaller_than_the_highest_token_id_is_refused_at_load(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    _gappy_tokenizer().save(str(folder / "tokenizer.json"))
    save_file({"embedding.weight": np.zeros((6, 4), np.float32)}, str(folder / "model.safetensors"))  # >= 5 tokens
    with pytest.raises(ModelFormatError, match=r"6 rows but the tokenizer has 5 tokens with ids up to 7.*8 rows"):
        StaticEncoder.from_pretrained(folder)


def test_transformer_folder_is_named_as_not_static(tmp_path: Path) -> None:
    """An all-MiniLM-style folder: say at once that it is not a static model, not list its tensor names."""
    folder = tmp_path / "minilm"
    folder.mkdir()
    tensors = {f"encoder.layer.{i}.attention.self.query.weight": np.zeros((4, 4), np.float32) for i in range(30)}
    save_file(tensors, str(folder / "model.safetensors"))
    make_tokenizer().save(str(folder / "tokenizer.json"))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFormatError, match="Transformer -> Pooling -> Normalize.*not a static") as info:
        StaticEncoder.from_pretrained(folder)
    assert "sentence-transformers" in str(info.value) and "model2vec" in str(info.value)
    assert "encoder.layer" not in str(info.value)


def test_missing_table_lists_a_few_tensor_names(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    tensors = {f"layer.{i:02d}.weight": np.zeros((2, 2), np.float32) for i in range(40)}
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"found 40 tensors: 'layer.00.weight'.* and 32 more\.") as info:
        StaticEncoder.from_pretrained(folder)
    assert "layer.39.weight" not in str(info.value)


def _with_raw_tensor(path: Path, name: str, dtype: str, shape: list[int], data: bytes) -> None:
    """Append a tensor of any safetensors dtype (numpy cannot write float8/float4) to a safetensors file."""
    blob = path.read_bytes()
    (size,) = np.frombuffer(blob[:8], dtype="<u8")
    header = json.loads(blob[8 : 8 + int(size)])
    body = blob[8 + int(size) :]
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(data)]}
    raw = json.dumps(header).encode()
    path.write_bytes(np.uint64(len(raw)).tobytes() + raw + body + data)


def test_tensors_of_any_dtype_may_sit_beside_the_table(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    expected = StaticEncoder.from_pretrained(folder).encode(TEXTS)
    table = StaticEncoder.from_pretrained(folder).table.copy()
    extras = {"flags": np.zeros(3, np.bool_), "counts": np.arange(3, dtype=np.uint32), "c": np.ones(2, np.complex64)}
    save_file({"embedding.weight": table, **extras}, str(folder / "model.safetensors"))
    _with_raw_tensor(folder / "model.safetensors", "scale_f8", "F8_E4M3", [3], b"\x01\x02\x03")
    _with_raw_tensor(folder / "model.safetensors", "packed_f4", "F4", [2, 2], b"\x12\x34")
    np.testing.assert_array_equal(StaticEncoder.from_pretrained(folder).encode(TEXTS), expected)


def test_table_dtype_is_restricted_and_odd_sizes_are_corrupt(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    vocab = make_tokenizer().get_vocab_size()
    save_file({"embedding.weight": np.zeros((vocab, 4), np.uint8)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match="of dtype F32, F16, BF16, F64, I8, found shape .* of dtype U8"):
        StaticEncoder.from_pretrained(folder)
    save_file({"embedding.weight": np.zeros((vocab, 4), np.float32)}, str(folder / "model.safetensors"))
    _with_raw_tensor(folder / "model.safetensors", "packed_f4", "F4", [3], b"\x12\x34")  # 12 bits: not whole bytes
    with pytest.raises(ModelFormatError, match="not a valid safetensors file.*packed_f4"):
        StaticEncoder.from_pretrained(folder)


def test_save_pretrained_warns_that_model2vec_drops_left_truncation(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "m")
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(4, direction="left")
    enc = StaticEncoder(StaticEncoder.from_pretrained(folder).table, tokenizer)
    with pytest.warns(UserWarning, match="truncates on the left.*model2vec's loader resets truncation to the right"):
        saved = enc.save_pretrained(tmp_path / "left")
    assert json.loads((saved / "tokenizer.json").read_text())["truncation"]["direction"].lower() == "left"
    StaticEncoder.from_pretrained(folder, max_length=4).save_pretrained(tmp_path / "right")  # no warning


def test_mistyped_relative_path_names_the_missing_local_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'models/my-modle' looks like a hub id: the failure also says that no such local folder exists."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub read HF_HUB_CACHE at its import (sentence-transformers' tests import it first): patch both
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    expected = str(tmp_path / "models" / "my-modle")
    with pytest.raises(ModelNotFoundError, match="not in the local hub cache") as info:
        StaticEncoder.from_pretrained("models/my-modle")
    assert f"No local folder {expected!r} exists either" in str(info.value)


def test_an_unreadable_folder_or_weights_file_is_named_as_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated (tests may run as root, who reads everything): a folder of mode 000 raised a bare PermissionError
    # from a file probe, and unreadable weights were called "not a valid safetensors file ... Re-download".
    from matryo import formats
    from matryo.errors import MatryoError, ModelAccessError

    folder = make_tiny_model(tmp_path / "m")
    real_is_file = Path.is_file

    def is_file(self: Path) -> bool:
        if self.parent == folder and self.name != "m":
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "is_file", is_file)
        with pytest.raises(ModelAccessError, match="permission denied") as info:
            StaticEncoder.from_pretrained(folder)
    assert isinstance(info.value, PermissionError) and isinstance(info.value, MatryoError)
    assert str(folder) in str(info.value) and "chmod" in str(info.value)
    real_open = open

    def unreadable(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).endswith("model.safetensors"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(formats, "open", unreadable, raising=False)
    with pytest.raises(ModelAccessError, match=r"model\.safetensors': permission denied") as info:
        StaticEncoder.from_pretrained(folder)
    assert "Re-download" not in str(info.value)


def test_an_empty_model_name_is_refused_not_read_as_the_current_folder(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tiny_model)  # "" used to load the folder it was run in
    for name in ("", "  "):
        with pytest.raises(ValueError, match="model name is empty.*pass None"):
            StaticEncoder.from_pretrained(name)


def test_a_path_under_an_unknown_users_home_is_a_missing_model_not_a_runtime_error(tmp_path: Path, capsys) -> None:
    # Path("~nosuchuser/model").expanduser() raises RuntimeError("Could not determine home directory")
    from matryo import cli
    from matryo.cache import load_encoder

    missing = "~matryo_no_such_user_zz/model"
    for load in (StaticEncoder.from_pretrained, load_encoder):
        with pytest.raises(ModelNotFoundError, match="does not exist"):
            load(missing)
    assert cli.main(["index", "~matryo_no_such_user_zz/docs", "--db", str(tmp_path / "db")]) == 1
    assert "SOURCE '~matryo_no_such_user_zz/docs' does not exist" in capsys.readouterr().err
