from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from tests.conftest import traced_peak

from matryo import quantize
from matryo.errors import DimensionMismatchError, NonFiniteVectorError
from matryo.quantize import (
    BinaryCodec,
    BlockInt8Codec,
    Float16Codec,
    Float32Codec,
    Int8Codec,
    codec_from_config,
    make_codec,
)
from matryo.vectors import normalize


def _random(n: int, d: int, seed: int = 0) -> np.ndarray:
    return normalize(np.random.default_rng(seed).standard_normal((n, d)))


# ---------------------------------------------------------------- float codecs


def test_float_codecs_round_trip_and_bytes() -> None:
    vectors = _random(10, 48)
    f32 = Float32Codec(48)
    f16 = Float16Codec(48)
    assert f32.bytes_per_vector == 192
    assert f16.bytes_per_vector == 96
    np.testing.assert_array_equal(f32.decode(f32.encode(vectors)), vectors)
    codes = f16.encode(vectors)
    assert codes.dtype == np.float16
    decoded = f16.decode(codes)
    assert decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, vectors, atol=1e-3)
    np.testing.assert_allclose(f16.similarity(vectors[:2], codes), vectors[:2] @ vectors.T, atol=2e-3)


def test_codec_rejects_wrong_width() -> None:
    codec = Float32Codec(16)
    with pytest.raises(DimensionMismatchError, match=r"17 dimensions.*16"):
        codec.encode(np.zeros((2, 17)))
    with pytest.raises(DimensionMismatchError, match=r"8 dimensions.*16"):
        codec.similarity(np.zeros((1, 8)), codec.encode(np.zeros((2, 16))))


# ---------------------------------------------------------------- int8


def test_int8_round_trip_error_within_half_step() -> None:
    vectors = _random(500, 32)
    codec = Int8Codec.calibrate(vectors)
    codes = codec.encode(vectors)
    assert codes.dtype == np.int8
    assert codec.bytes_per_vector == 32
    error = np.abs(codec.decode(codes) - vectors)
    assert np.all(error <= codec.steps / 2 + 1e-6)


def test_int8_clips_instead_of_wrapping() -> None:
    calibration = _random(200, 8)
    codec = Int8Codec.calibrate(calibration)
    far = np.stack([codec.maximums + 10.0, codec.minimums - 10.0])
    codes = codec.encode(far)
    assert np.all(codes[0] == 127)
    assert np.all(codes[1] == -128)
    np.testing.assert_allclose(codec.decode(codes), np.stack([codec.maximums, codec.minimums]), rtol=1e-5, atol=1e-6)


def test_int8_constant_dimension_never_divides_by_zero() -> None:
    sample = _random(200, 6)
    sample[:, 2] = 0.25  # constant dimension
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codec = Int8Codec.calibrate(sample)
        decoded = codec.decode(codec.encode(sample))
    assert np.all(np.isfinite(decoded))
    np.testing.assert_allclose(decoded[:, 2], 0.25)


def test_int8_small_calibration_warns() -> None:
    with pytest.warns(UserWarning, match=r"only 10 vectors.*100"):
        Int8Codec.calibrate(_random(10, 8))


def test_int8_enough_calibration_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Int8Codec.calibrate(_random(100, 8))


def test_int8_covering_keeps_the_codec_when_nothing_would_clip() -> None:
    sample = _random(200, 8)
    codec = Int8Codec.calibrate(sample)
    assert codec.covering(sample[:50]) is codec
    assert codec.covering(np.zeros((0, 8), dtype=np.float32)) is codec


def test_int8_covering_widens_only_the_sides_that_grow_and_recodes_old_codes() -> None:
    sample = _random(200, 8)
    codec = Int8Codec.calibrate(sample)
    outside = sample[:3].copy()
    outside[0, 2] = codec.maximums[2] + 1.0
    outside[1, 5] = codec.minimums[5] - 2.0
    wider = codec.covering(outside, headroom=0.25)
    assert wider is not codec
    span2 = outside[0, 2] - codec.minimums[2]
    np.testing.assert_allclose(wider.maximums[2], outside[0, 2] + 0.25 * span2, rtol=1e-6)
    assert wider.minimums[2] == codec.minimums[2]
    span5 = codec.maximums[5] - outside[1, 5]
    np.testing.assert_allclose(wider.minimums[5], outside[1, 5] - 0.25 * span5, rtol=1e-6)
    untouched = [j for j in range(8) if j not in (2, 5)]
    np.testing.assert_array_equal(wider.minimums[untouched], codec.minimums[untouched])
    np.testing.assert_array_equal(wider.maximums[untouched], codec.maximums[untouched])
    decoded = wider.decode(wider.encode(outside))  # not clipped any more
    assert np.all(np.abs(decoded - outside) <= wider.steps / 2 + 1e-6)
    recoded = wider.decode(wider.recode(codec.encode(sample), codec))  # old codes: two roundings at most
    assert np.all(np.abs(recoded - sample) <= codec.steps / 2 + wider.steps / 2 + 1e-6)
    with pytest.raises(DimensionMismatchError):
        codec.covering(_random(2, 7))


def test_int8_single_vector_calibration_is_not_all_zero() -> None:
    sample = _random(1, 8)
    with pytest.warns(UserWarning):
        codec = Int8Codec.calibrate(sample)
    np.testing.assert_allclose(codec.decode(codec.encode(sample)), sample, atol=1e-6)


def test_int8_rejects_empty_and_bad_ranges() -> None:
    with pytest.raises(ValueError, match="empty"):
        Int8Codec.calibrate(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="maximums >= minimums"):
        Int8Codec([1.0, 0.0], [0.0, 1.0])
    with pytest.raises(DimensionMismatchError):
        Int8Codec([0.0, 0.0], [1.0])


def test_int8_config_round_trips_through_json() -> None:
    vectors = _random(300, 16)
    codec = Int8Codec.calibrate(vectors)
    restored = codec_from_config(json.loads(json.dumps(codec.to_config())))
    assert isinstance(restored, Int8Codec)
    np.testing.assert_array_equal(restored.encode(vectors), codec.encode(vectors))


def test_int8_similarity_matches_decoded_dot_product() -> None:
    vectors = _random(300, 16)
    codec = Int8Codec.calibrate(vectors)
    codes = codec.encode(vectors)
    queries = _random(3, 16, seed=1)
    np.testing.assert_allclose(codec.similarity(queries, codes), queries @ codec.decode(codes).T, atol=1e-5)


# ---------------------------------------------------------------- binary


@pytest.mark.parametrize("dim", [8, 20, 64, 100])
def test_binary_hamming_matches_bit_count(dim: int) -> None:
    codec = BinaryCodec(dim)
    assert codec.bytes_per_vector == (dim + 7) // 8
    docs = _random(30, dim)
    queries = _random(4, dim, seed=1)
    codes = codec.encode(docs)
    assert codes.shape == (30, (dim + 7) // 8)
    assert codes.dtype == np.uint8
    expected = ((queries[:, None, :] > 0) != (docs[None, :, :] > 0)).sum(axis=2)
    np.testing.assert_array_equal(codec.hamming(codec.encode(queries), codes), expected)
    np.testing.assert_array_equal(codec.similarity(queries, codes), dim - 2 * expected)


def test_binary_padding_bits_count_nowhere() -> None:
    # a 12-d code's last 4 bits are padding: decode ignored them but hamming counted them ([4, -6, -10] vs [12, 2, -2])
    codec = BinaryCodec(12)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3, 12)).astype(np.float32)
    codes = codec.encode(vectors)
    dirty = codes.copy()
    dirty[:, -1] |= 0x0F  # set every padding bit
    np.testing.assert_array_equal(codec.decode(dirty), codec.decode(codes))
    np.testing.assert_array_equal(codec.similarity(vectors[:1], dirty), codec.similarity(vectors[:1], codes))
    np.testing.assert_array_equal(codec.hamming(codes, dirty), codec.hamming(codes, codes))  # one side dirty
    assert np.all(dirty[:, -1] & 0x0F == 0x0F)  # the caller's codes are left as they were


def test_binary_decode_is_unit_sign_vector() -> None:
    codec = BinaryCodec(20)
    docs = _random(5, 20)
    decoded = codec.decode(codec.encode(docs))
    np.testing.assert_allclose(np.linalg.norm(decoded, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(decoded > 0, docs > 0)


# ---------------------------------------------------------------- factory


def test_make_codec_and_config_round_trip() -> None:
    sample = _random(200, 16)
    for name in quantize.CODEC_NAMES:
        codec = make_codec(name, 16, calibration=sample if name == "int8" else None)
        assert codec.name == name
        restored = codec_from_config(json.loads(json.dumps(codec.to_config())))
        assert type(restored) is type(codec)
        assert restored.dim == 16


def test_block_int8_codes_carry_their_scales_and_keep_the_block_through_the_config() -> None:
    vectors = _random(50, 70) * np.linspace(0.01, 100, 70, dtype=np.float32)  # scales differ by block
    codec = BlockInt8Codec(70, block=16)
    codes = codec.encode(vectors)
    assert codes.shape == (50, 4 * 5 + 70) and codec.bytes_per_vector == 90
    # each row decodes alone: no state beyond dim and block
    one = BlockInt8Codec(70, block=16).decode(codes[7:8])
    np.testing.assert_array_equal(one, codec.decode(codes)[7:8])
    # the rounding error of each value is at most half of its own block's step (max |x| of the block / 127)
    padded = np.pad(np.abs(vectors), ((0, 0), (0, 10))).reshape(50, 5, 16)
    half_step = np.repeat(padded.max(axis=2) / 127 / 2, 16, axis=1)[:, :70]
    assert np.all(np.abs(codec.decode(codes) - vectors) <= half_step * (1 + 1e-5))
    restored = codec_from_config(json.loads(json.dumps(codec.to_config())))
    assert isinstance(restored, BlockInt8Codec) and restored.block == 16 and restored.dim == 70
    np.testing.assert_array_equal(restored.decode(codes), codec.decode(codes))
    with pytest.raises(DimensionMismatchError, match="expects 70"):
        codec.encode(_random(2, 64))
    with pytest.raises(ValueError, match="block"):
        BlockInt8Codec(70, block=0)
    with pytest.raises(ValueError, match="'block' must be an integer"):
        codec_from_config({"codec": "int8-blocks", "dim": 70, "block": "16"})


def test_make_codec_errors() -> None:
    with pytest.raises(ValueError, match="Unknown codec 'int4'"):
        make_codec("int4", 8)
    with pytest.raises(ValueError, match="calibration"):
        make_codec("int8", 8)
    with pytest.raises(DimensionMismatchError):
        make_codec("int8", 8, calibration=_random(200, 16))
    with pytest.raises(ValueError, match="Not a matryo codec config"):
        codec_from_config({"codec": "nope"})


def test_int8_encode_refuses_nan_instead_of_casting_it_to_a_code() -> None:
    codec = Int8Codec.calibrate(_random(300, 8))
    vectors = _random(3, 8)
    vectors[1, 2] = np.nan
    with pytest.raises(NonFiniteVectorError, match=r"rows \[1\]"):
        codec.encode(vectors)


def test_float16_similarity_decodes_block_by_block(monkeypatch) -> None:
    codec = Float16Codec(64)
    codes = codec.encode(_random(20_000, 64))
    queries = _random(2, 64, seed=1)
    expected = queries @ codes.astype(np.float32).T
    monkeypatch.setattr(quantize, "_SCORE_CHUNK", 1 << 12)  # 64 rows per block
    scores, peak = traced_peak(lambda: codec.similarity(queries, codes))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert peak < 20_000 * 64 * 4 / 4  # scores and one decoded block, not the decoded store (5 MB)


def test_binary_hamming_bounds_its_temporary_on_the_corpus_axis_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # One query against a large corpus: the XOR temporary must stay within _SCORE_CHUNK elements (it used to
    # span the whole corpus whatever the bound), and the blocked result must equal the unblocked one.
    sizes: list[int] = []
    real = quantize._bit_count

    def spy(words: np.ndarray) -> np.ndarray:
        sizes.append(words.size)
        return real(words)

    codec = BinaryCodec(100)  # 13 bytes, padded to two uint64 words
    docs, queries = _random(30, 100), _random(3, 100, seed=1)
    expected = codec.hamming(codec.encode(queries), codec.encode(docs))
    monkeypatch.setattr(quantize, "_SCORE_CHUNK", 16)
    monkeypatch.setattr(quantize, "_bit_count", spy)
    np.testing.assert_array_equal(codec.hamming(codec.encode(queries), codec.encode(docs)), expected)
    assert sizes and max(sizes) <= 16


# ---------------------------------------------------------------- review 12


@pytest.mark.parametrize("dim", [40, 64])
def test_block_int8_similarity_scores_the_decoded_vectors(dim: int) -> None:
    # It inherited a similarity that reshaped its (scales + levels) codes to dim columns: it always raised.
    codec, docs, queries = BlockInt8Codec(dim), _random(50, dim), _random(3, dim, seed=1)
    codes = codec.encode(docs)
    scores = codec.similarity(queries, codes)
    assert scores.shape == (3, 50) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, queries @ codec.decode(codes).T, rtol=1e-5, atol=1e-6)


def test_binary_similarity_builds_no_float64_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quantize, "_SCORE_CHUNK", 1 << 12)  # small XOR blocks: the score matrices dominate
    codec = BinaryCodec(64)
    codes = codec.encode(_random(20_000, 64))
    queries = _random(64, 64, seed=1)
    scores, peak = traced_peak(lambda: codec.similarity(queries, codes))
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(scores, 64 - 2 * codec.hamming(codec.encode(queries), codes))
    pairs = 64 * 20_000
    assert peak < 10 * pairs  # int32 distances + the float32 scores; a float64 matrix made it 16+ bytes a pair


def test_float_codecs_refuse_what_they_cannot_store() -> None:
    bad = np.ones((2, 8), dtype=np.float32)
    bad[1, 3] = np.nan
    for codec in (Float32Codec(8), Float16Codec(8), BinaryCodec(8)):
        with pytest.raises(NonFiniteVectorError):
            codec.encode(bad)  # NaN was kept (float32, float16) or became a 0 bit (binary)
    with pytest.raises(NonFiniteVectorError, match="beyond float16's range"):
        Float16Codec(8).encode(np.full((1, 8), 1e5))  # was stored as inf


def test_codes_of_another_width_are_refused_not_reshaped() -> None:
    for codec in (Float32Codec(8), Float16Codec(8), Int8Codec.calibrate(_random(300, 8), warn=False)):
        codes = np.zeros((4, 4), dtype=codec.code_dtype)
        with pytest.raises(DimensionMismatchError, match=r"found shape \(4, 4\)"):
            codec.decode(codes)  # was decoded as two 8-wide vectors
        with pytest.raises(DimensionMismatchError):
            codec.similarity(np.ones((1, 8)), codes)
    with pytest.raises(DimensionMismatchError):
        BinaryCodec(64).decode(np.zeros((2, 4), dtype=np.uint8))
    assert Float32Codec(8).decode(np.zeros(16, dtype=np.float32)).shape == (2, 8)  # whole codes in 1-D still read


def test_config_dim_must_be_an_integer() -> None:
    for dim in (1.7, True, "x"):
        with pytest.raises(ValueError, match="'dim' must be an integer"):
            codec_from_config({"codec": "float32", "dim": dim})
    assert codec_from_config({"codec": "float32", "dim": 8.0}).dim == 8


def test_int8_ranges_whose_span_overflows_float32_are_refused() -> None:
    # finite ends, but max - min overflowed to inf: every code then decoded to NaN/inf with only numpy warnings
    from matryo.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=r"span less than float32's largest value"):
        Int8Codec([-2e38, 0.0], [2e38, 1.0])
    with pytest.raises(InvalidArgumentError, match=r"span less than float32's largest value"):
        Int8Codec.calibrate(np.array([[-2e38, 0.0], [2e38, 1.0]] * 8, dtype=np.float32), warn=False)
    codec = Int8Codec([-1e38, 0.0], [1e38, 1.0])  # wide but within range: codes round-trip to finite values
    assert np.isfinite(codec.decode(codec.encode(np.array([[5e37, 0.5]], dtype=np.float32)))).all()


def test_int8_codes_read_back_as_uint8_decode_as_int8_and_other_types_are_checked() -> None:
    # np.frombuffer(blob, np.uint8) decoded every negative code 256 steps off, with no error
    from matryo.errors import InvalidArgumentError, InvalidTypeError

    rng = np.random.default_rng(0)
    vectors = normalize(rng.standard_normal((50, 16)).astype(np.float32))
    codec = Int8Codec.calibrate(vectors, warn=False)
    codes = codec.encode(vectors)
    as_bytes = np.frombuffer(codes.tobytes(), dtype=np.uint8).reshape(codes.shape)
    np.testing.assert_array_equal(codec.decode(as_bytes), codec.decode(codes))
    np.testing.assert_array_equal(codec.similarity(vectors[:3], as_bytes), codec.similarity(vectors[:3], codes))
    np.testing.assert_array_equal(codec.decode(codes.tolist()), codec.decode(codes))  # a JSON list: int64 values
    with pytest.raises(InvalidArgumentError, match=r"int8 codes \(-128..127\).*found int64 values from 0 to 200"):
        codec.decode(np.full((1, 16), 200) * np.eye(1, 16, dtype=np.int64))
    np.testing.assert_array_equal(codec.decode(codes.astype(np.float32)), codec.decode(codes))  # a float column
    for bad in (
        codes.astype(np.float32) + 0.5,
        np.full((1, 16), np.inf),
        np.full((1, 16), np.nan),
        np.full((1, 16), 1e30),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no RuntimeWarning from the check
            with pytest.raises(InvalidTypeError, match="holding other values"):
                codec.decode(bad)


def test_int8_range_whose_step_underflows_float32_encodes_its_minimum_without_warnings() -> None:
    codec = Int8Codec([0.0], [1e-44])  # span / 255 is below float32's smallest subnormal: the step was 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # divide by zero / invalid cast warnings before
        codes = codec.encode(np.array([[0.0], [1e-44], [1.0]], dtype=np.float32))
        decoded = codec.decode(codes)
    assert codes[0, 0] == -128  # the minimum was code 0
    assert np.isfinite(decoded).all() and codec.steps[0] > 0
