"""Import torch or raise :class:`matryo.errors.MissingExtraError`."""

from __future__ import annotations

import sys
from types import ModuleType

from matryo.errors import missing_extra

__all__ = ["log", "require_torch"]


def require_torch() -> ModuleType:
    """Import and return torch.

    Returns:
        The ``torch`` module.

    Raises:
        MissingExtraError: If torch is not installed.
    """
    try:
        import torch
    except ImportError as exc:
        # PyPI's Linux torch wheels are CUDA builds of several GB; training runs on CPU.
        install = "pip install torch --index-url https://download.pytorch.org/whl/cpu && pip install 'matryo[train]'"
        error = missing_extra("torch", install, "Training", exc)
        raise error from exc
    return torch


def log(message: str) -> None:
    """Print a progress line to stderr (training is a command-line activity).

    Args:
        message: The line.
    """
    print(message, file=sys.stderr, flush=True)  # noqa: T201
