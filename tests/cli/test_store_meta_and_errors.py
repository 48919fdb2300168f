"""check_meta refuses a DB built with another first-pass width even with the same model, and a write the disk
refused inside a store call is a StoreWriteError (an OSError), not a StoreFormatError (a damaged DB)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from matryo.errors import DimensionMismatchError, StoreFormatError
from matryo.stores import DbMeta, StoreWriteError, _host_errors, check_meta


def test_same_model_other_first_pass_width_is_refused(tmp_path: Path) -> None:
    stored = DbMeta("lancedb", "/models/m", "fp1", 256, 128)
    check_meta(stored, DbMeta("lancedb", "/models/m", "fp1", 256, 128), tmp_path)  # same: accepted
    for writing in (True, False):
        with pytest.raises(DimensionMismatchError, match="first pass 128.*first pass 64"):
            check_meta(stored, DbMeta("lancedb", "/models/m", "fp1", 256, 64), tmp_path, writing=writing)


@pytest.mark.parametrize("writing", [True, False])
@pytest.mark.parametrize(
    "error",
    [OSError(errno.ENOSPC, "No space left on device"), RuntimeError("LanceError(IO): write failed, os error 28")],
)
def test_a_refused_write_is_a_store_write_error(tmp_path: Path, error: BaseException, writing: bool) -> None:
    with pytest.raises(StoreWriteError) as info:
        with _host_errors(tmp_path, "LanceDB", writing=writing):
            raise error
    assert isinstance(info.value, OSError) and not isinstance(info.value, StoreFormatError)
    assert "re-run the same command" in str(info.value)
    with pytest.raises(StoreFormatError):  # a damaged file is not a refused write
        with _host_errors(tmp_path, "LanceDB", writing=writing):
            raise RuntimeError("LanceError(IO): corrupt manifest")
