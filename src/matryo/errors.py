"""Errors raised by matryo.

Every error matryo raises on purpose (a bad argument, file or model, a missing extra) derives from
:class:`MatryoError`, and each child also derives from the builtin it refines, so ``except ValueError`` and
``except MatryoError`` both work::

    MatryoError
    ├── ModelFormatError(ValueError)        a model folder or file matryo cannot read
    │   └── IncompleteFolderError           no layout's weights and tokenizer in the folder (interrupted download)
    ├── ModelNotFoundError(FileNotFoundError)  a path or hub id that does not resolve
    ├── ModelAccessError(PermissionError)   a model folder or file that exists but cannot be read (permissions)
    ├── DimensionMismatchError(ValueError)  widths that do not fit: mixed vectors, truncate_dim > the model's dim
    │   └── ModelMismatchError              another model than the one stored vectors were made with (fingerprint)
    ├── InvalidArgumentError(ValueError)    an argument matryo cannot use (k <= 0, an unknown codec, a repeated id)
    │   └── NonFiniteVectorError            vectors holding NaN or inf (or values beyond float32's range)
    ├── InvalidTypeError(TypeError)         an argument of the wrong type (bytes or None as texts, a float width)
    ├── StoreFormatError(ValueError)        a DB folder matryo cannot read (damaged metadata or store files)
    ├── StoreWriteError(OSError)            writing a DB failed outside it (full disk, quota, permissions)
    ├── MissingVectorError(LookupError)     a first-pass candidate has no full vector to rescore with
    └── MissingExtraError(ImportError)      an optional dependency is not installed
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

__all__ = [
    "DataNotFoundError",
    "DimensionMismatchError",
    "IncompleteFolderError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "MatryoError",
    "MissingExtraError",
    "MissingVectorError",
    "ModelAccessError",
    "ModelFormatError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NonFiniteVectorError",
    "PickleWeightsError",
    "StoreFormatError",
    "StoreWriteError",
]


class MatryoError(Exception):
    """Base class of every error matryo raises on purpose."""


class ModelFormatError(MatryoError, ValueError):
    """A model folder or file does not match any layout matryo can read."""


class IncompleteFolderError(ModelFormatError):
    """No layout's weights and tokenizer are in the folder (an empty folder, or an interrupted download)."""


class PickleWeightsError(ModelFormatError):
    """The model's weights are only pickle files (``pytorch_model.bin``), which matryo never loads: convert them."""


class ModelNotFoundError(MatryoError, FileNotFoundError):
    """A local path or hub id does not resolve to a model."""


class ModelAccessError(MatryoError, PermissionError):
    """A model folder or file exists but cannot be read (its permissions); the message names it."""


class DimensionMismatchError(MatryoError, ValueError):
    """Vectors (or models) of different dimensions were combined."""


class ModelMismatchError(DimensionMismatchError):
    """The model found under a stored name or path is not the one stored vectors were made with (fingerprint).

    Raised by the Chroma and LanceDB adapters when a collection or table is used with another model, even of
    the same width: its vectors would not be comparable with the stored ones.
    """


class InvalidArgumentError(MatryoError, ValueError):
    """An argument matryo cannot use: ``k <= 0``, an unknown mode or codec name, a repeated id, a bad config."""


class NonFiniteVectorError(InvalidArgumentError):
    """Vectors holding NaN or inf (or float64 values too large for float32), which would rank as garbage."""


class InvalidTypeError(MatryoError, TypeError):
    """An argument of the wrong type, e.g. one string where a sequence of texts is expected."""


class StoreFormatError(MatryoError, ValueError):
    """A DB folder is damaged or unreadable: its metadata (``matryo.json``) or its store's files."""


class StoreWriteError(MatryoError, OSError):
    """Writing a DB failed for a reason outside it (full disk, quota, permissions); what was committed is kept."""


class MissingVectorError(MatryoError, LookupError):
    """The first pass returned ids for which no full vector (or text) could be fetched.

    Attributes:
        ids: The ids without a full vector, in first-pass order (empty when unknown).
    """

    def __init__(self, message: str, ids: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.ids: list[object] = list(ids)

    def __reduce__(self) -> tuple[type[MissingVectorError], tuple[str, list[object]]]:
        return type(self), (str(self.args[0]) if self.args else "", self.ids)


class DataNotFoundError(MatryoError, FileNotFoundError):
    """A dataset folder, or a file it must hold (a BEIR corpus, queries or qrels), does not exist."""


class MissingExtraError(MatryoError, ImportError):
    """An optional dependency is missing; the message names the ``pip install`` line."""


def missing_extra(package: str, install: str, feature: str, cause: ImportError | None = None) -> MissingExtraError:
    """Build the error for a missing optional dependency.

    Args:
        package: The import name that failed (e.g. ``"torch"``).
        install: The exact install line (e.g. ``"pip install 'matryo[train]'"``).
        feature: What the user tried to do.
        cause: The ImportError. When ``package`` is installed but its import failed, the message says so: it
            names a missing module the package imports (and gives the package's own install line, as a module's
            pip name can differ), or says the installed versions may not fit (a name missing from another version
            of a package, a compiled library that failed to load).

    Returns:
        A :class:`MissingExtraError` to raise ``from`` the original ImportError.
    """
    top = package.partition(".")[0]
    if cause is None or not _installed(top):
        msg = f"{feature} needs the optional package {package!r}, which is not installed. Install it with: {install}"
        return MissingExtraError(msg)
    missing = (cause.name or "").partition(".")[0]
    if isinstance(cause, ModuleNotFoundError) and missing not in ("", "matryo", top) and not _installed(missing):
        # a module's pip name can differ from its import name (yaml: PyYAML): the package's own line installs it
        fix = f"the module {missing!r} it imports is missing; reinstall {package!r} with its dependencies: {install}"
    else:  # a name missing from an installed package, or a library that failed to load: versions that differ
        fix = f"matryo, {package} and its dependencies may be of versions that do not fit; reinstall them: {install}"
    msg = (
        f"{feature} needs the optional package {package!r}, which is installed but cannot be imported ({cause}); {fix}"
    )
    return MissingExtraError(msg)


def _installed(module: str) -> bool:
    """Whether a top-level module can be found (a ``None`` in ``sys.modules``, as tests block imports, is not)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: the module is in sys.modules with no spec
        return False
