"""Import torch or raise :class:`matryo.errors.MissingExtraError`."""

from __future__ import annotations

from types import ModuleType

from matryo.errors import missing_extra

__all__ = ["require_torch"]


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
        raise missing_extra("torch", "pip install 'matryo[train]'", "Training") from exc
    return torch
