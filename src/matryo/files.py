"""Write a file so that a reader sees the old bytes or the new ones, never half of them."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_json", "write_replacing"]


def write_replacing(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` with a temporary file next to ``target``, then rename that file over ``target``.

    The bytes are flushed to disk before the rename, so a crash leaves the old file or the new one. The new file
    gets the mode of the file it replaces (a new name, or a link to nothing readable, gets the mode the umask gives
    any new file). A symbolic link at ``target`` is replaced by the new file, leaving the file it points to alone
    (a Hugging Face cache blob keeps the bytes its name promises); to write through a link, resolve it first. A
    process that mapped or opened the old file keeps reading the old bytes. On any failure (an exception in
    ``write`` too, or Ctrl-C) the temporary file is removed, ``target`` is as it was, and the exception propagates:
    the caller words the error for its user.

    Raises:
        OSError: If the folder or the disk refused the write, or the rename failed (e.g. ``target`` is a folder).
    """
    # a short random name: two writers never share one, and any target name that fits, fits
    temporary = target.with_name(f".{target.name[:64]}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to any new file
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(OSError):  # nothing there, a dangling link or a link loop: the new file's mode
            os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_json(target: Path, content: object) -> None:
    """Write ``content`` as indented JSON and a newline through :func:`write_replacing` (config and meta files)."""
    data = (json.dumps(content, indent=2) + "\n").encode("utf-8")
    write_replacing(target, lambda file: file.write(data))
