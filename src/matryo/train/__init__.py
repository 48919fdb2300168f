"""Training matryo's static retrieval models (the optional ``matryo[train]`` extra; needs torch).

Importing this package does not import torch; the functions that need it raise
:class:`matryo.errors.MissingExtraError` when it is missing. The core package never imports this one.

Reproduce the embedded default model with ``python -m matryo.train --out DIR`` (see the model card).
"""

from __future__ import annotations

from matryo.train.cli import add_train_arguments, add_train_subparser, main, run

__all__ = ["add_train_arguments", "add_train_subparser", "main", "run"]
