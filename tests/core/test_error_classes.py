"""The encoder's argument errors are matryo's classes, as matryo.errors promises, and still the builtins."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from matryo import StaticEncoder
from matryo.errors import DimensionMismatchError, InvalidArgumentError, InvalidTypeError, MatryoError

Call = Callable[[StaticEncoder, Path], object]

CASES: list[tuple[str, Call, type[MatryoError], type[Exception]]] = [
    ("item not a str", lambda enc, _: enc.encode(["a", 3]), InvalidTypeError, TypeError),  # type: ignore[list-item]
    ("None", lambda enc, _: enc.encode(None), InvalidTypeError, TypeError),  # type: ignore[arg-type]
    ("bytes", lambda enc, _: enc.tokenize(b"raw"), InvalidTypeError, TypeError),  # type: ignore[arg-type]
    ("lone surrogate", lambda enc, _: enc.encode("bad \ud800"), InvalidArgumentError, ValueError),
    ("truncate_dim=0", lambda enc, _: enc.encode("a", truncate_dim=0), InvalidArgumentError, ValueError),
    ("truncate_dim too wide", lambda enc, _: enc.encode("a", truncate_dim=65), DimensionMismatchError, ValueError),
    ("truncate_dim not int", lambda enc, _: enc.encode("a", truncate_dim="x"), InvalidTypeError, TypeError),  # type: ignore[arg-type]
    ("batch_size=0", lambda enc, _: enc.encode("a", batch_size=0), InvalidArgumentError, ValueError),
    (
        "max_length=0",
        lambda _, path: StaticEncoder.from_pretrained(path, max_length=0),
        InvalidArgumentError,
        ValueError,
    ),
    (
        "from_pretrained truncate_dim too wide",
        lambda _, path: StaticEncoder.from_pretrained(path, truncate_dim=1000),
        DimensionMismatchError,
        ValueError,
    ),
]


@pytest.mark.parametrize(("case", "call", "error", "builtin"), CASES, ids=[case[0] for case in CASES])
def test_encoder_argument_errors_derive_from_matryo_error(
    tiny_model: Path, case: str, call: Call, error: type[MatryoError], builtin: type[Exception]
) -> None:
    encoder = StaticEncoder.from_pretrained(tiny_model)
    with pytest.raises(error) as info:
        call(encoder, tiny_model)
    assert isinstance(info.value, MatryoError), case
    assert isinstance(info.value, builtin), case  # `except TypeError/ValueError` keeps working


def test_both_adapters_raise_the_one_core_model_mismatch_error() -> None:
    import matryo

    chroma = pytest.importorskip("matryo_chroma")
    lance = pytest.importorskip("matryo_lancedb")
    assert chroma.ModelMismatchError is lance.ModelMismatchError is matryo.ModelMismatchError
    assert issubclass(matryo.ModelMismatchError, matryo.DimensionMismatchError)
    assert issubclass(matryo.ModelMismatchError, ValueError)


def test_pandas_missing_values_are_named_as_missing(tiny_model: Path) -> None:
    pd = pytest.importorskip("pandas")
    encoder = StaticEncoder.from_pretrained(tiny_model)
    for missing in (pd.NA, pd.NaT):
        with pytest.raises(InvalidTypeError, match=r"texts\[1\] must be a str, .*It is a missing value"):
            encoder.encode(pd.Series(["a", missing], dtype=object))


def test_a_dataframe_or_a_dict_is_refused_not_embedded_as_its_column_names(tiny_model: Path) -> None:
    # iterating them gives the column names or keys: encode(df) returned one vector of the word "text"
    pd = pytest.importorskip("pandas")
    encoder = StaticEncoder.from_pretrained(tiny_model)
    frame = pd.DataFrame({"text": ["the cat", "a dog"]})
    for texts, what in ((frame, "DataFrame, a 2-D table"), ({"the cat": 1}, "dict, a mapping")):
        with pytest.raises(InvalidTypeError, match=rf"got {what}.*Pass one column \(df\['text'\]\)"):
            encoder.encode(texts)  # type: ignore[arg-type]
    assert encoder.encode(frame["text"]).shape == (2, encoder.dim)  # one column is a flat iterable of texts


@pytest.mark.parametrize(
    ("texts", "fix"),
    [
        (["a", None], "It is a missing value: drop the rows without text (series.dropna()) or fill them with ''"),
        (["a", float("nan")], "It is a missing value"),  # str() would embed the word "nan" for every missing row
        (["a", b"bytes"], "Decode bytes first"),
        ([["a", "b"]], "Pass a flat list of strings"),
        ([np.array(["a", "b"])], "Pass a flat list of strings"),  # a row of a 2-D array
        (["a", 3], "Convert it with str() if it is text."),
    ],
)
def test_a_non_str_item_gets_the_fix_that_fits_it(tiny_model: Path, texts: list[object], fix: str) -> None:
    # a nested list was told to "decode bytes and drop None first"
    with pytest.raises(InvalidTypeError, match=re.escape(fix)):
        StaticEncoder.from_pretrained(tiny_model).encode(texts)  # type: ignore[arg-type]


def test_missing_extra_tells_a_missing_package_from_an_installed_one_that_fails_to_import() -> None:
    from matryo.errors import missing_extra

    install = "pip install numpy"  # numpy stands in for an optional package that is installed
    absent = missing_extra("surely_not_a_package_xyz", "pip install xyz", "Reading XYZ", ModuleNotFoundError("x"))
    assert "which is not installed. Install it with: pip install xyz" in str(absent)
    # an installed package whose import fails is not "not installed" (sources.py and cli_eval.py said so)
    broken = missing_extra("numpy.linalg", install, "Solving", ImportError("libopenblas.so: cannot open"))
    assert "'numpy.linalg', which is installed but cannot be imported (libopenblas.so: cannot open)" in str(broken)
    assert f"may be of versions that do not fit; reinstall them: {install}" in str(broken)
    dependency = ModuleNotFoundError("No module named 'surely_not_xyz'", name="surely_not_xyz")  # no pip line guessed
    needs = missing_extra("numpy", install, "Solving", dependency)
    assert (
        "the module 'surely_not_xyz' it imports is missing; reinstall 'numpy' with its dependencies: pip install numpy"
        in str(needs)
    )
    assert "which is not installed" in str(missing_extra("numpy", install, "Solving"))  # no cause
