"""Resolve a Hugging Face hub id to a local folder. The only module that imports ``huggingface_hub``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matryo.errors import ModelFormatError, ModelNotFoundError, PickleWeightsError, missing_extra
from matryo.formats import CONVERT_PICKLES, PICKLE_SUFFIXES, IncompleteFolderError, find_model_files

__all__ = ["looks_like_hub_id", "snapshot"]

# Everything a static model folder can need; never pickles.
_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.md", "*.txt"]
_CONFIG_PATTERNS = ["*.json"]  # fetched first, to refuse a model that is not static before its weights
_OFFLINE_VALUES = {"1", "on", "yes", "true"}
_HUB_TIMEOUT = 10.0
"""Seconds to wait for the hub's first answer: a proxy or firewall that accepts connections and never answers
would otherwise block forever (huggingface_hub's repo lookup has no timeout)."""


def looks_like_hub_id(name: str) -> bool:
    """Whether ``name`` has the shape of a hub repository id (``owner/name`` or ``name``)."""
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name


def _refuse_pickle_only(repo_id: str, revision: str | None, siblings: list[Any] | None) -> None:
    """Refuse a repo whose weights are only pickle files, before a download that could never complete the model."""
    names = [str(getattr(sibling, "rfilename", "")) for sibling in siblings or []]
    pickles = [name for name in names if name.endswith(PICKLE_SUFFIXES)]
    if pickles and not any(name.endswith(".safetensors") for name in names):
        msg = (
            f"{repo_id!r} (revision {revision or 'main'}) holds its weights only as pickle files "
            f"({', '.join(pickles[:3])}), which matryo never loads (and never downloads); {CONVERT_PICKLES}"
        )
        raise PickleWeightsError(msg)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _OFFLINE_VALUES


def snapshot(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> Path:
    """Download (or find in the cache) the files of a static model on the hub.

    The local cache is tried first, so a cached model loads with no network call at all. A cached snapshot
    that lacks the model files (an interrupted download) counts as a miss. When the cache misses and the
    machine is offline (``HF_HUB_OFFLINE=1``, ``local_files_only=True``, or no route to the hub), this fails
    at once with :class:`ModelNotFoundError`, without retries; a hub that does not answer within 10 seconds
    fails the same way. Online, the repo's JSON files come first, so a model that is not static is refused before
    its weights are downloaded.

    Args:
        repo_id: A hub id such as ``"sentence-transformers/static-retrieval-mrl-en-v1"``.
        revision: A branch, tag or commit hash.
        cache_dir: The hub cache folder (default: huggingface_hub's).
        token: A hub token for private models.
        local_files_only: Never touch the network.

    Returns:
        The local snapshot folder.

    Raises:
        MissingExtraError: If ``huggingface_hub`` is not installed.
        ModelNotFoundError: If the model is not cached (or only partly) and cannot be downloaded.
        ModelFormatError: If the repo's ``modules.json`` shows a model that is not static (nothing more is
            downloaded).
    """
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError as exc:
        raise missing_extra("huggingface_hub", "pip install huggingface-hub", "Loading a model by hub id", exc) from exc  # noqa: EM101

    kwargs = {
        "repo_id": repo_id,
        "revision": revision,
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "token": token,
        "allow_patterns": _ALLOW_PATTERNS,
    }
    offline = local_files_only or _offline()
    partial = ""  # names an incomplete cached copy in the error when the hub cannot complete it
    try:
        cached = Path(snapshot_download(local_files_only=True, **kwargs))  # type: ignore[arg-type]
    except Exception as cached_miss:  # noqa: BLE001 - any miss falls through to a download attempt
        if offline:
            msg = (
                f"Model {repo_id!r} (revision {revision or 'main'}) is not in the local hub cache and the hub is "
                "offline (HF_HUB_OFFLINE or local_files_only). Download it once on a machine with internet, "
                "or pass the path of a local model folder."
            )
            raise ModelNotFoundError(msg) from cached_miss
    else:
        try:
            find_model_files(cached)
        except (IncompleteFolderError, PickleWeightsError) as incomplete:
            # A snapshot folder without the model files: a download was interrupted (e.g. Ctrl-C during the
            # weights), or another library (sentence-transformers) fetched only its pickle weights into the shared
            # cache. Online, download again (huggingface_hub fetches only the missing files).
            if offline and isinstance(incomplete, PickleWeightsError):
                msg = (
                    f"The cached copy of {repo_id!r} (revision {revision or 'main'}) in {str(cached)!r} holds its "
                    "weights only as pickle files (fetched by another library, e.g. sentence-transformers), which "
                    "matryo never loads. Load it once online (without HF_HUB_OFFLINE or local_files_only) to fetch "
                    f"model.safetensors, if the repo has it; otherwise {CONVERT_PICKLES}"
                )
                raise PickleWeightsError(msg) from incomplete
            if offline:
                repo_cache = cached.parent.parent
                msg = (
                    f"The cached copy of {repo_id!r} (revision {revision or 'main'}) in {str(cached)!r} is incomplete "
                    "(an interrupted download?): it holds no model.safetensors + tokenizer.json. Load it once "
                    "online (without HF_HUB_OFFLINE or local_files_only) to finish the download, or delete "
                    f"{str(repo_cache)!r} and download it again."
                )
                raise ModelNotFoundError(msg) from incomplete
            partial = f" The cached copy in {str(cached)!r} is incomplete (an interrupted download?)."
        else:
            return cached
    # The small JSON files first: a repo that is not a static model (a transformer id passed by mistake) is
    # refused by its modules.json before its weights (often GBs) are downloaded.
    try:
        # Ask the hub first, with a timeout: the answer proves it is reachable (snapshot_download's own lookup has
        # none, so a silent connection would block it forever). The revision is passed on as given, not as the
        # commit hash the answer holds, so that the cache records the branch (refs/main) for offline loads.
        info = HfApi(token=token).repo_info(repo_id, revision=revision, timeout=_HUB_TIMEOUT)
        configs = Path(snapshot_download(**{**kwargs, "allow_patterns": _CONFIG_PATTERNS}))  # type: ignore[arg-type]
        try:
            find_model_files(configs)  # raises ModelFormatError for a transformer or unsupported modules
        except (IncompleteFolderError, PickleWeightsError):
            pass  # expected: the weights are not there yet (pickles another library fetched are never used)
        # a static model (its modules.json passed above) whose weights are only pickles: no download can help
        _refuse_pickle_only(repo_id, revision, getattr(info, "siblings", None))
        return Path(snapshot_download(**kwargs))  # type: ignore[arg-type]
    except ModelFormatError:
        raise
    except Exception as exc:
        if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower():
            msg = (
                f"Could not load {repo_id!r} (revision {revision or 'main'}): the Hugging Face hub did not answer "
                f"within {_HUB_TIMEOUT:g} s (a proxy or firewall holding the connection?). Check your network, set "
                f"HF_HUB_OFFLINE=1 to use only the local cache, or pass a local model folder.{partial}"
            )
            raise ModelNotFoundError(msg) from exc
        msg = (
            f"Could not load {repo_id!r} (revision {revision or 'main'}) from the Hugging Face hub: "
            f"{type(exc).__name__}: {str(exc).rstrip('.')}. Check the id and your network, or pass a local model "
            f"folder.{partial}"
        )
        raise ModelNotFoundError(msg) from exc
