"""matryo.locks.take: the flock helper behind the DB folder locks (writers exclusive, LanceDB readers shared)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from matryo.locks import take

pytest.importorskip("fcntl")


def test_exclusive_and_shared_locks_conflict_as_flock_does(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    writer = take(path)
    assert writer is not None and path.exists()
    with pytest.raises(BlockingIOError, match="locked by another process"):
        take(path)  # a second open file description conflicts, even in one process
    with pytest.raises(BlockingIOError):
        take(path, shared=True)
    writer.close()  # closing releases it
    readers = [take(path, shared=True), take(path, shared=True)]
    assert all(r is not None for r in readers), "readers share"
    start = time.monotonic()
    with pytest.raises(BlockingIOError):
        take(path, wait=0.3)
    assert time.monotonic() - start >= 0.3, "it waited before giving up"
    for reader in readers:
        assert reader is not None
        reader.close()
    assert take(path) is not None


def test_a_lock_file_that_cannot_be_made_means_no_lock(tmp_path: Path) -> None:
    assert take(tmp_path / "missing-folder" / "x.lock") is None
