"""matryo.locks.take: where nothing can be locked it returns None (callers go on unlocked), and in a folder
that refuses writes an existing lock file is opened read-only and still locked."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

fcntl = pytest.importorskip("fcntl")

from matryo.locks import take  # noqa: E402


def test_a_file_system_that_cannot_lock_means_no_lock_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_locks(handle: object, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")  # e.g. an NFS mount without lockd

    monkeypatch.setattr(fcntl, "flock", no_locks)
    start = time.monotonic()
    assert take(tmp_path / "x.lock", wait=0.5) is None
    assert take(tmp_path / "y.lock", shared=True) is None
    assert time.monotonic() - start < 0.4, "no point waiting for a lock that cannot exist"


def test_an_existing_lock_file_in_a_read_only_folder_is_still_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.lock"
    path.write_text("")
    real_open = Path.open

    def read_only(self: Path, mode: str = "r", *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if "a" in mode or "w" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", read_only)
    reader = take(path, shared=True)
    assert reader is not None, "the existing lock file can be locked read-only"
    monkeypatch.undo()
    with pytest.raises(BlockingIOError):
        take(path)  # the reader's shared lock is really held
    reader.close()
    assert take(tmp_path / "missing.lock") is not None
