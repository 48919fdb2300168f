"""Advisory file locks (``fcntl.flock``) that DB folders use to keep writers and readers apart.

``flock`` locks are released by the OS when the holding process dies, so a crash never leaves a DB locked.
Where nothing can be locked (no ``fcntl`` on Windows, a file system that cannot lock, a lock file that cannot
be created or opened), :func:`take` returns ``None`` and callers go on unlocked, as their docs say.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import IO

__all__ = ["take"]

_POLL = 0.05


def take(path: Path, *, shared: bool = False, wait: float = 0.0) -> IO[str] | None:
    """Open ``path`` (created when missing) and hold a ``flock`` on it, waiting up to ``wait`` seconds.

    Args:
        path: The lock file.
        shared: A shared lock (readers) instead of an exclusive one (writers).
        wait: Seconds to keep trying while another process holds a conflicting lock.

    Returns:
        The open file holding the lock (closing it, or its garbage collection, releases it), or ``None`` where
        nothing can be locked (see the module docstring).

    Raises:
        BlockingIOError: If another process still holds a conflicting lock after ``wait`` seconds.
    """
    if importlib.util.find_spec("fcntl") is None:  # Windows
        return None
    try:
        handle = path.open("a")
    except OSError:
        try:
            handle = path.open()  # a read-only folder: an existing lock file can still be locked
        except OSError:
            return None
    deadline = time.monotonic() + wait
    while (got := _try(handle, shared=shared)) is False and time.monotonic() < deadline:
        time.sleep(_POLL)
    if got:
        return handle
    handle.close()
    if got is None:
        return None
    msg = f"{path} is locked by another process"
    raise BlockingIOError(msg)


def _try(handle: IO[str], *, shared: bool) -> bool | None:
    """Try once: True taken, False held by another process, None the file system cannot lock."""
    import fcntl

    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True
