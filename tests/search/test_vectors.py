"""matryo.vectors: Matryoshka truncation, normalisation and the finite checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from matryo.errors import DimensionMismatchError
from matryo.vectors import matryoshka_dims, normalize, truncate


def _random(n: int, d: int, seed: int = 0) -> np.ndarray:
    return normalize(np.random.default_rng(seed).standard_normal((n, d)))


def test_truncate_keeps_prefix_and_renormalises() -> None:
    vectors = _random(5, 64)
    short = truncate(vectors, 16)
    assert short.shape == (5, 16)
    assert short.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1.0, rtol=1e-6)
    # same direction as the raw prefix
    raw = vectors[:, :16]
    np.testing.assert_allclose(short, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5)


def test_truncate_without_normalize_returns_raw_prefix() -> None:
    vectors = _random(3, 32)
    np.testing.assert_array_equal(truncate(vectors, 8, normalize=False), vectors[:, :8])


def test_truncate_zero_rows_stay_zero() -> None:
    vectors = _random(3, 32)
    vectors[1] = 0.0
    vectors[2, :8] = 0.0  # zero prefix, non-zero tail
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short = truncate(vectors, 8)
    assert np.all(short[1] == 0.0)
    assert np.all(short[2] == 0.0)
    assert np.all(np.isfinite(short))


def test_truncate_one_vector_and_none() -> None:
    vector = _random(1, 32)[0] * 3.0
    assert truncate(vector, 4).shape == (4,)
    full = truncate(vector, None)
    np.testing.assert_allclose(np.linalg.norm(full), 1.0, rtol=1e-6)


def test_truncate_does_not_modify_input() -> None:
    vectors = _random(2, 16) * 5.0
    before = vectors.copy()
    truncate(vectors, 8)
    np.testing.assert_array_equal(vectors, before)


@pytest.mark.parametrize("dim", [0, -3, 2.5, True])
def test_truncate_rejects_bad_dim(dim: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        truncate(_random(2, 16), dim)  # type: ignore[arg-type]


def test_truncate_wider_than_vectors_names_both_dims() -> None:
    with pytest.raises(DimensionMismatchError, match=r"16-dimensional.*32"):
        truncate(_random(2, 16), 32)


def test_matryoshka_dims() -> None:
    assert matryoshka_dims(1024) == [32, 64, 128, 256, 512, 1024]
    assert matryoshka_dims(512) == [32, 64, 128, 256, 512]
    assert matryoshka_dims(100) == [32, 64, 100]
    assert matryoshka_dims(16) == [16]
    assert matryoshka_dims(256, min_dim=64) == [64, 128, 256]
    with pytest.raises(ValueError, match="positive"):
        matryoshka_dims(0)


def test_normalize_keeps_huge_and_tiny_finite_rows_unit_length() -> None:
    rows = np.array([[1e20] * 64, [-3e30] + [0.0] * 63, [1e-25] * 64, [0.0] * 64], dtype=np.float32)
    out = normalize(rows)
    np.testing.assert_allclose(np.linalg.norm(out.astype(np.float64), axis=1), [1.0, 1.0, 1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out[0], np.full(64, 0.125), rtol=1e-6)
    assert out[1, 0] == -1.0
    np.testing.assert_allclose(normalize(np.array([1e20, 1e20], dtype=np.float32)), [2**-0.5] * 2, rtol=1e-6)


def test_truncate_converts_only_the_prefix_of_a_float64_matrix() -> None:
    # the whole float64 matrix was converted to float32 first: 44 MiB peak for a 4.9 MiB result
    import numpy as np
    from tests.conftest import traced_peak

    from matryo.vectors import truncate

    wide = np.random.default_rng(0).standard_normal((20_000, 512))  # float64, 78 MiB
    short, peak = traced_peak(lambda: truncate(wide, 64))
    assert short.dtype == np.float32 and short.shape == (20_000, 64)
    np.testing.assert_allclose(short, truncate(wide.astype(np.float32), 64), rtol=1e-6)
    assert peak < 2 * short.nbytes, peak


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_vectors_are_refused_not_cut_to_their_real_part(dtype: type) -> None:
    from matryo.errors import InvalidTypeError
    from matryo.vectors import as_finite, as_matrix

    vectors = np.array([[1 + 2j, 0.5], [0.0, 1j]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning would also fail the test
        for convert in (as_finite, as_matrix, lambda v: truncate(v, 1), normalize):
            with pytest.raises(InvalidTypeError, match=f"real numbers; found an array of dtype {np.dtype(dtype)}"):
                convert(vectors)
            with pytest.raises(InvalidTypeError, match="real numbers"):  # a list of complex rows was cut silently
                convert(list(vectors))


def test_float64_rows_beyond_float32_range_normalise_to_unit_vectors() -> None:
    huge = np.array([[1e200, 1.0, 0.0], [3e-50, 4e-50, 0.0], [0.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or underflow warning either
        cut = truncate(huge, 2)
        whole = normalize(huge)
    np.testing.assert_allclose(cut, [[1.0, 0.0], [0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(whole, [[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 0.0]], rtol=1e-6)
    assert cut.dtype == whole.dtype == np.float32
    np.testing.assert_allclose(normalize(np.array([1e200, 1.0])), [1.0, 0.0])


@pytest.mark.parametrize("bad", [5.0, None, np.ones((2, 3, 4)), ["a", "b"], "x"])
def test_truncate_and_normalize_refuse_what_is_not_a_vector_or_matrix(bad: object) -> None:
    from matryo.errors import MatryoError

    for call in (lambda: truncate(bad, 1), lambda: normalize(bad)):
        with pytest.raises(MatryoError, match="vector or a matrix of numbers|1-D vector or a 2-D|array of numbers"):
            call()


@pytest.mark.parametrize("args", [(None,), (1024.0,), (True,), (1024, 32.0)])
def test_matryoshka_dims_wants_ints(args: tuple[object, ...]) -> None:
    from matryo.errors import InvalidTypeError

    full, *rest = args
    with pytest.raises(InvalidTypeError, match="must be an int"):
        matryoshka_dims(full, **({"min_dim": rest[0]} if rest else {}))  # type: ignore[arg-type]
    assert matryoshka_dims(np.int64(256)) == [32, 64, 128, 256]
    assert all(type(d) is int for d in matryoshka_dims(np.int64(256)))


def test_unit_rows_converts_once_checks_in_float32_terms_and_keeps_tiny_rows() -> None:
    from matryo.errors import NonFiniteVectorError
    from matryo.vectors import as_numbers, check_finite, unit_rows

    rows = np.array([[1e-50, 1e-50, 0.0], [0.0, 3.0, 4.0], [0.0, 0.0, 0.0]])
    out = unit_rows(rows)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.70710677, 0.70710677, 0.0], [0.0, 0.6, 0.8], [0.0, 0.0, 0.0]], rtol=1e-6)
    assert unit_rows([3.0, 4.0]).tolist() == pytest.approx([0.6, 0.8])  # one vector, from a list
    with pytest.raises(NonFiniteVectorError, match=r"ids \['big'\]"):
        unit_rows([[1.0, 0.0], [1e39, 0.0]], "document vectors", labels=["ok", "big"])  # beyond float32's range
    with pytest.raises(NonFiniteVectorError, match=r"rows \[0\]"):
        check_finite(np.array([[-1e39, 0.0]]))  # float64 values beyond float32's range count as non-finite
    check_finite(np.array([[3e38, -3e38]]))  # within range: fine
    assert as_numbers(np.array([[True, False]])).dtype == np.float64  # bools and objects are cast, as float64
    floats = np.ones((2, 3), dtype=np.float32)
    assert as_numbers(floats) is floats  # not copied
