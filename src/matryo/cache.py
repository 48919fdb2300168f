"""A per-process cache of loaded encoders, for hosts that rebuild embedding functions often.

Chroma rebuilds an embedding function from its config on every add and query of a reopened collection,
and LanceDB builds one per vector column when a table is opened: loading the model each time would
dominate. :func:`load_encoder` returns the same :class:`StaticEncoder` for the same semantic config.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from matryo.encoder import StaticEncoder
from matryo.errors import MatryoError, ModelNotFoundError
from matryo.formats import expand_user, find_model_files

__all__ = ["clear_encoder_cache", "load_encoder", "load_recorded", "model_key"]

_Stamp = tuple[tuple[int, int, int] | None, ...]
_CACHE: dict[tuple[str | None, str | None, int | None], tuple[StaticEncoder, tuple[Path, ...], _Stamp]] = {}
_LOCK = threading.Lock()
_MAX_ENTRIES = 8
_CONFIGS = ("modules.json", "config.json", "config_sentence_transformers.json")


def model_key(name_or_path: str | os.PathLike[str] | None) -> str | None:
    """A model reference that names the same model from any directory.

    A local folder becomes its resolved absolute path, a hub id (or a path that does not exist) stays as given,
    ``None`` (the embedded default) stays ``None``. The key of this module's encoder cache, and what the CLI's
    DB folders and the Chroma adapter record.
    """
    if name_or_path is None:
        return None
    text = os.fspath(name_or_path)
    path = expand_user(text)
    return str(path.resolve()) if path.exists() else text


def _watched(name_or_path: str | os.PathLike[str] | None) -> tuple[Path, ...]:
    """The files a local model folder is loaded from (none for the embedded model or a hub id, which do not change)."""
    if name_or_path is None:
        return ()
    folder = expand_user(name_or_path)
    if not folder.is_dir():
        return ()
    folder = folder.resolve()  # the key is the resolved path: a later chdir must not look like a change
    try:
        files = find_model_files(folder)
    except (MatryoError, OSError):
        return ()  # from_pretrained raises its own error for this folder
    return (files.weights, files.tokenizer, *(folder / name for name in _CONFIGS))


def _stamp(paths: tuple[Path, ...]) -> _Stamp:
    """Identity of each file (inode, size, modification time; None when absent): a re-saved model changes it."""
    return tuple(_file_stamp(path) for path in paths)


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def load_encoder(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    revision: str | None = None,
    max_length: int | None = None,
) -> StaticEncoder:
    """Load an encoder once per process and return the cached instance afterwards.

    The key is the full semantic config (resolved path or hub id, revision, max_length); the encoder's
    default ``truncate_dim`` is the model's own (from its ``config_sentence_transformers.json``, usually
    none), and callers pass ``truncate_dim=`` to ``encode`` for other widths, so one loaded table serves
    every Matryoshka width. A local folder whose model files were replaced since (a model saved again to the
    same path, e.g. retrained in a notebook) is loaded again: a hit compares the files' inode, size and
    modification time, a few ``stat`` calls. Encoders handed out earlier keep the model they loaded, and while
    the changed folder does not load (a save still writing it, or its model files removed) the earlier model is
    returned (a folder removed altogether is a miss for a relative path, which is then read as a hub id). A
    Chroma collection reopened in this process then embeds with the new model, and refuses it
    (ModelMismatchError) when its vectors were made with the old one, as a new process would.

    Args:
        name_or_path: As for :meth:`StaticEncoder.from_pretrained` (``None`` = the embedded default model).
        revision: Hub revision.
        max_length: Token cut-off override.

    Returns:
        The shared encoder (thread-safe to use).
    """
    key = (model_key(name_or_path), revision, max_length)
    entry = _CACHE.get(key)
    if entry is not None and _stamp(entry[1]) == entry[2]:
        return entry[0]
    with _LOCK:
        entry = _CACHE.get(key)
        if entry is not None and _stamp(entry[1]) == entry[2]:
            return entry[0]
        watched = _watched(name_or_path)
        stamp = _stamp(watched)  # taken before loading: a file replaced during the load is seen at the next hit
        try:
            encoder = StaticEncoder.from_pretrained(name_or_path, revision=revision, max_length=max_length)
        except MatryoError:
            if entry is None:
                raise
            # The folder changed but does not load now: a save in progress (a half-written file), or the folder
            # was removed. Keep serving the model loaded before, and try again once the files change again (not
            # on every call: a full load attempt under the lock costs tens of milliseconds).
            files = watched or entry[1]  # a removed folder lists nothing: watch the files it had
            _CACHE[key] = (entry[0], files, _stamp(files))
            return entry[0]
        _CACHE.pop(key, None)
        if len(_CACHE) >= _MAX_ENTRIES:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (encoder, watched, stamp)
    return encoder


def load_recorded(
    name_or_path: str | None,
    *,
    owner: str,
    where: str,
    advice: str,
    revision: str | None = None,
    max_length: int | None = None,
) -> StaticEncoder:
    """:func:`load_encoder` for a model that stored vectors record, saying where the name came from.

    A DB folder, a LanceDB table or a Chroma collection records its model's path; when that folder moved, the
    plain "Model path ... does not exist" does not say which stored thing asked for it, or what to do.

    Args:
        name_or_path: The recorded model (path or hub id; ``None`` = the embedded default model).
        owner: What recorded it, as the message's subject (``"This table"``, a DB folder).
        where: Where it is recorded (``"in its schema"``).
        advice: What to do about it (put the model back, or re-embed into a new store).
        revision: Hub revision.
        max_length: Token cut-off override.

    Returns:
        The shared encoder.

    Raises:
        ModelNotFoundError: If the model cannot be found; the message names ``owner``, the model and ``advice``.
    """
    try:
        return load_encoder(name_or_path, revision=revision, max_length=max_length)
    except ModelNotFoundError as exc:
        msg = (
            f"{owner} was embedded with the model {name_or_path!r} (recorded {where}), which no longer loads: "
            f"{exc} {advice}"
        )
        raise ModelNotFoundError(msg) from exc


def clear_encoder_cache() -> None:
    """Forget every cached encoder (their memory is freed once no one else holds them)."""
    with _LOCK:
        _CACHE.clear()
