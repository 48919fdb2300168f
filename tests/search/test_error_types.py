"""Errors of the search layer are MatryoError subclasses that keep the builtin they refine."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from matryo.errors import (
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidTypeError,
    MatryoError,
    NonFiniteVectorError,
    StoreFormatError,
)
from matryo.index import NumpyIndex
from matryo.quantize import Int8Codec, codec_from_config, make_codec
from matryo.search import candidate_count, rescore
from matryo.stores import META_FILE, read_meta


@pytest.fixture
def small(encoder) -> NumpyIndex[str]:
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(["a"], ["alpha"])
    return idx


def _cases(encoder, small: NumpyIndex[str]) -> dict[str, tuple[Callable[[], object], type[Exception]]]:
    return {
        "duplicate id": (lambda: small.add(["a"], ["beta"]), ValueError),
        "k=0": (lambda: small.search("alpha", k=0), ValueError),
        "rescore k=0": (lambda: rescore(np.ones((1, 64)), [["a"]], k=0, fetch_full_vectors=dict), ValueError),
        "multiplier 0.5": (lambda: candidate_count(10, 0.5), ValueError),
        "unknown mode": (lambda: small.search("alpha", mode="fast"), ValueError),  # type: ignore[call-overload]
        "unknown first pass": (lambda: NumpyIndex(encoder, first_pass="pq"), ValueError),
        "unknown store": (lambda: NumpyIndex(encoder, store="pq"), ValueError),
        "unknown codec": (lambda: make_codec("pq", 8), ValueError),
        "texts is one str": (lambda: small.add(["b"], "beta"), TypeError),  # type: ignore[arg-type]
        "exact without store": (
            lambda: NumpyIndex(encoder, store="none").search("alpha", mode="exact"),
            ValueError,
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "duplicate id",
        "k=0",
        "rescore k=0",
        "multiplier 0.5",
        "unknown mode",
        "unknown first pass",
        "unknown store",
        "unknown codec",
        "texts is one str",
        "exact without store",
    ],
)
def test_user_errors_are_matryo_errors_and_keep_their_builtin(encoder, small, case: str) -> None:
    call, builtin = _cases(encoder, small)[case]
    with pytest.raises(MatryoError) as info:
        call()
    assert isinstance(info.value, builtin)
    assert isinstance(info.value, InvalidTypeError if builtin is TypeError else InvalidArgumentError)
    assert len(small) == 1  # nothing was added by a refused call


@pytest.mark.parametrize(
    "config",
    [
        {"codec": "int8", "dim": 4},
        {"codec": "int8", "minimums": [0.0]},
        {"codec": "float32"},
        {"codec": "float32", "dim": "wide"},
        {"dim": 4},
        ["int8"],
        None,
    ],
)
def test_codec_from_config_refuses_bad_configs_with_value_error(config: object) -> None:
    with pytest.raises(InvalidArgumentError, match="codec config") as info:
        codec_from_config(config)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_codec_from_config_refuses_dim_disagreeing_with_int8_ranges() -> None:
    config = {"codec": "int8", "dim": 512, "minimums": [0.0] * 4, "maximums": [1.0] * 4}
    with pytest.raises(DimensionMismatchError, match=r"dim=512 but holds 4 ranges"):
        codec_from_config(config)
    del config["dim"]  # configs without a dim keep working: the ranges give it
    assert codec_from_config(config).dim == 4


def test_int8_calibrate_on_non_finite_says_to_drop_or_fix_them() -> None:
    sample = np.zeros((200, 2))
    sample[7, 0] = np.inf
    with pytest.raises(NonFiniteVectorError, match=r"rows \[7\].*Drop or fix") as info:
        Int8Codec.calibrate(sample)
    assert "Int8Codec.calibrate()" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_read_meta_damaged_file_is_a_store_format_error(tmp_path: Path) -> None:
    (tmp_path / META_FILE).write_text(json.dumps({"store": "lancedb"}), encoding="utf-8")
    with pytest.raises(StoreFormatError, match="damaged") as info:
        read_meta(tmp_path)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MatryoError)


def test_read_meta_refuses_fields_of_the_wrong_type(tmp_path: Path) -> None:
    # "dim": "512" was read, and the mismatch error then said "512 dims ... but this run uses 512 dims"
    meta = {"store": "lancedb", "model": None, "fingerprint": "ab", "dim": "512", "truncate_dim": 128}
    (tmp_path / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(StoreFormatError, match="'dim' must be an integer, found '512'"):
        read_meta(tmp_path)
    (tmp_path / META_FILE).write_text(json.dumps({**meta, "dim": 512}), encoding="utf-8")
    assert read_meta(tmp_path) is not None and read_meta(tmp_path).dim == 512  # type: ignore[union-attr]


def test_search_layer_input_edges_from_the_search_review(small: NumpyIndex[str]) -> None:
    q = np.ones((1, small.dim), dtype=np.float32)
    # a flat list of ids for one query: each id was split into its characters ('d', 'o', 'c', '1')
    with pytest.raises(InvalidTypeError, match=r"one list of ids per query.*found a string"):
        rescore(q, ["doc1"], k=1, fetch_full_vectors=small.fetch_full_vectors)  # type: ignore[arg-type]
    # an int multiplier past float's range: OverflowError from float()
    assert candidate_count(10, 10**400) == candidate_count(10, 1e308)
    assert candidate_count(10**400, 2) == 10**400  # k past the cap: k itself, no float overflow
    with pytest.raises(InvalidArgumentError, match="rescore_multiplier must be a number >= 1"):
        candidate_count(10, -(10**400))
    # no query, None and a single number: a shape never passed, IndexError
    assert small.search_vectors(np.zeros((0,), dtype=np.float32)) == []
    with pytest.raises(InvalidTypeError, match="query vectors must be an array of numbers; found None"):
        small.search_vectors(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="found a single number"):
        small.search_vectors(np.float32("nan"))
    with pytest.raises(InvalidArgumentError, match="rectangular array of numbers"):
        small.search_vectors([[1.0, 2.0], [1.0]])  # type: ignore[list-item]
    # first_pass with n <= 0 answered [[]]
    for n in (0, -5):
        with pytest.raises(InvalidArgumentError, match=r"n \(candidates per query\) must be an integer >= 1"):
            small.first_pass(q[:, : small.truncate_dim], n)


def test_two_stage_search_checks_its_queries_like_numpy_index_search(small: NumpyIndex[str], encoder) -> None:
    # bytes were iterated as ints into the encoder (AttributeError), and a bad on_missing passed with no query
    from matryo.search import two_stage_search

    kwargs = {"first_pass": small.first_pass, "fetch_full_vectors": small.fetch_full_vectors, "truncate_dim": 16}
    for search in (lambda q, **kw: small.search(q, **kw), lambda q, **kw: two_stage_search(encoder, q, **kwargs, **kw)):
        with pytest.raises(InvalidTypeError, match="not bytes; decode them first"):
            search(b"alpha")
        with pytest.raises(InvalidArgumentError, match="on_missing must be 'raise' or 'skip'"):
            search([], on_missing="x")
        assert search([]) == [] and search("alpha").ids == ["a"]


def test_codec_and_two_stage_inputs_from_review_17_get_matryo_errors(encoder) -> None:
    from matryo.search import two_stage_search

    for dim in (1e400, float("inf")):  # JSON's 1e400 is inf: int(inf) was an uncaught OverflowError
        with pytest.raises(InvalidArgumentError, match="'dim' must be an integer"):
            codec_from_config({"codec": "float32", "dim": dim})
    with pytest.raises(InvalidArgumentError, match="minimums must be a rectangular array of numbers"):
        Int8Codec(["a"], [1.0])  # numpy's "could not convert string to float"
    with pytest.raises(InvalidArgumentError, match="minimums must be a rectangular array of numbers"):
        Int8Codec([[0.0], [0.0, 1.0]], [1.0, 1.0])  # numpy's "inhomogeneous shape"
    with pytest.raises(DimensionMismatchError, match=r"one bound per dimension \(a 1-D array\); found shape \(2, 2\)"):
        Int8Codec([[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]])  # was flattened into a 4-d codec
    sample = np.random.default_rng(0).standard_normal((200, 2)).astype(np.float32)
    keepdims = Int8Codec(sample.min(axis=0, keepdims=True), sample.max(axis=0, keepdims=True))  # (1, dim) bounds
    np.testing.assert_array_equal(keepdims.encode(sample), Int8Codec.calibrate(sample).encode(sample))
    assert Int8Codec(-1.0, 1.0).dim == 1  # a number is one dimension
    with pytest.raises(InvalidArgumentError, match=r"Unknown codec \['float32'\]"):
        make_codec(["float32"], 4)  # type: ignore[arg-type]  # was "unhashable type: 'list'"
    store = {"a": np.ones(encoder.dim, dtype=np.float32)}
    for width in ("8", 0, 2.5):
        with pytest.raises(InvalidArgumentError, match="truncate_dim must be a positive integer"):
            two_stage_search(
                encoder, "q", first_pass=lambda q, n: [["a"]], fetch_full_vectors=store.get, truncate_dim=width
            )  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"what a first_pass callable returns\); found NoneType"):
        two_stage_search(encoder, "q", first_pass=lambda q, n: None, fetch_full_vectors=store.get)  # type: ignore[arg-type,return-value]
