"""Model folder layouts: find the token table and tokenizer, read the table without copying it.

Three layouts are understood, tried in this order:

* ``sentence-transformers (modules.json)``: a ``modules.json`` whose StaticEmbedding entry points at
  the folder holding ``model.safetensors`` and ``tokenizer.json``. Covers the hub layout of
  ``sentence-transformers/static-retrieval-mrl-en-v1`` (path ``0_StaticEmbedding``), the 6.x root layout
  (path ``""``) and model2vec's own ``modules.json`` (path ``"."``; named ``model2vec, read as
  sentence-transformers reads it``). Modules other than StaticEmbedding and Normalize (e.g. Dense) are refused:
  matryo cannot apply them.
* ``sentence-transformers hub layout``: ``0_StaticEmbedding/`` without a ``modules.json``.
* ``model2vec / root``: ``model.safetensors`` and ``tokenizer.json`` at the root.

The table may be stored under ``embedding.weight`` (sentence-transformers) or ``embeddings``
(model2vec, with optional ``mapping`` and per-token ``weights`` that are folded in exactly as
sentence-transformers' ``StaticEmbedding.load`` does). Only safetensors files are read: pickle files
(``.bin``, ``.pt``) are never loaded.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from matryo.errors import (
    IncompleteFolderError,
    ModelAccessError,
    ModelFormatError,
    ModelNotFoundError,
    PickleWeightsError,
)
from matryo.files import write_replacing

__all__ = [
    "CONVERT_PICKLES",
    "MODEL2VEC_DEFAULT_MAX_LENGTH",
    "PICKLE_SUFFIXES",
    "IncompleteFolderError",
    "ModelFiles",
    "SafetensorsFile",
    "access_error",
    "expand_user",
    "find_model_files",
    "load_table",
    "load_tokenizer",
    "model2vec_max_length",
    "save_table",
    "stored_truncate_dim",
    "warn_default_prompt",
]

_WEIGHTS = "model.safetensors"
_TOKENIZER = "tokenizer.json"
_STATIC_TYPE_SUFFIX = "StaticEmbedding"
_HUB_SUBFOLDER = "0_StaticEmbedding"
_SUPPORTED_MODULES = {"StaticEmbedding", "Normalize"}  # class names in modules.json "type"
_TABLE_KEYS = ("embedding.weight", "embeddings")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl")
CONVERT_PICKLES = (
    "load the model once in sentence-transformers and save it again (SentenceTransformer(path).save(new_path) "
    "writes model.safetensors), then load new_path."
)
_MODEL2VEC_KEYS = {"max_length", "normalize", "embedding_dtype", "apply_pca", "hidden_dim"}  # config.json keys
# Every dtype the safetensors format defines, with its size in bits (safetensors' Dtype::bitsize). Any of them
# may sit beside the table; only the table's own dtype is restricted (see _TABLE_DTYPES).
_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
# The dtypes numpy can view directly (the others are skipped unless read).
_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # raw bits, widened to float32 on load
    "C64": np.dtype("<c8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
# Table dtypes: floats, and model2vec's int8 (quantize_to="int8": a global scale that it does not store, so its
# encode averages the raw integers; matryo widens them to float32 the same way).
_TABLE_DTYPES = ("F32", "F16", "BF16", "F64", "I8")
_MAX_HEADER = 100 * 1024 * 1024
_KEYS_SHOWN = 8  # tensor names listed when no table is found (a transformer file holds hundreds)


@dataclass(frozen=True)
class ModelFiles:
    """Where a model's pieces live inside a folder.

    Attributes:
        root: The model folder.
        weights: Path to ``model.safetensors``.
        tokenizer: Path to ``tokenizer.json``.
        layout: Human-readable name of the layout that matched.
        config: Parsed model2vec ``config.json`` (empty when absent).
        st_config: Parsed ``config_sentence_transformers.json`` (empty when absent).
        normalized: Whether the source normalises its output: a Normalize module in ``modules.json``
            (sentence-transformers), or ``"normalize": true`` in model2vec's ``config.json``.
    """

    root: Path
    weights: Path
    tokenizer: Path
    layout: str
    config: Mapping[str, Any] = field(default_factory=dict)
    st_config: Mapping[str, Any] = field(default_factory=dict)
    normalized: bool = False


def _module_class(module: Any) -> str:
    """The class name of a ``modules.json`` entry (``"StaticEmbedding"``, ``"Normalize"``, ...)."""
    return str(module.get("type", "")).rsplit(".", 1)[-1] if isinstance(module, dict) else ""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except PermissionError:
        raise  # not a damaged file: find_model_files names it as unreadable
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"Could not read {path}: expected valid UTF-8 JSON, got {type(exc).__name__}: {exc}."
        raise ModelFormatError(msg) from exc


def _pickles(folder: Path) -> list[str]:
    """Names of the pickle weight files in ``folder`` (none when it is not a folder)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))


def _complete(folder: Path) -> bool:
    return (folder / _WEIGHTS).is_file() and (folder / _TOKENIZER).is_file()


def _check_no_other_modules(path: Path, modules: list[Any]) -> None:
    """Refuse a pipeline with modules besides StaticEmbedding and Normalize (sentence-transformers would run them)."""
    others = [
        f"{m.get('type')} (path {m.get('path')!r})"
        for m in modules
        if isinstance(m, dict) and _module_class(m) not in _SUPPORTED_MODULES
    ]
    if others:
        msg = (
            f"{str(path)!r} lists modules matryo cannot apply: {', '.join(others)}. matryo encodes only "
            "StaticEmbedding (optionally followed by Normalize); sentence-transformers would run these modules "
            "too and give different vectors. Encode this model with sentence-transformers, or save one whose "
            "modules.json holds only StaticEmbedding [+ Normalize]."
        )
        raise ModelFormatError(msg)


def _refuse_non_static(folder: Path, classes: list[str]) -> None:
    """Raise for a sentence-transformers model that has no StaticEmbedding module (e.g. a transformer)."""
    msg = (
        f"{str(folder)!r} is a sentence-transformers model made of {' -> '.join(classes)} (modules.json), not a "
        "static embedding model: matryo encodes only StaticEmbedding (optionally followed by Normalize). Encode it "
        "with sentence-transformers, or distil a static model from it with model2vec "
        "(pip install 'model2vec[distill]'; model2vec.distill.distill(<its transformer>).save_pretrained(dir)) "
        "and load that folder."
    )
    raise ModelFormatError(msg)


def _is_model2vec(config: Mapping[str, Any]) -> bool:
    """Whether a folder's config.json was written by model2vec."""
    return config.get("model_type") == "model2vec" or bool(_MODEL2VEC_KEYS & config.keys())


def expand_user(path: str | os.PathLike[str]) -> Path:
    """``Path(path).expanduser()``, or the path as typed when its ``~user`` names no user.

    ``Path("~nosuchuser/model").expanduser()`` raises RuntimeError ("Could not determine home directory"); as
    typed, such a path simply does not exist, which callers report in their own words.
    """
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def access_error(exc: PermissionError, folder: str | os.PathLike[str]) -> ModelAccessError:
    """The matryo error for a model file or folder that exists but cannot be read."""
    path = exc.filename if exc.filename is not None else folder
    msg = (
        f"Cannot read {os.fspath(path)!r}: permission denied. Give your user read access to the model folder "
        f"(e.g. chmod -R u+rX {os.fspath(folder)!r}) or copy the model to a folder you can read."
    )
    return ModelAccessError(msg)


def find_model_files(root: str | os.PathLike[str]) -> ModelFiles:
    """Find the weights and tokenizer of a static model folder.

    Args:
        root: A local folder.

    Returns:
        The files and the name of the layout that matched.

    Raises:
        ModelNotFoundError: If ``root`` is not a folder.
        ModelAccessError: If the folder or a file in it cannot be read (permissions).
        IncompleteFolderError: If no known layout's files are there; the message lists every layout tried.
        PickleWeightsError: If the weights are there only as pickle files (``pytorch_model.bin``), never loaded.
        ModelFormatError: If ``modules.json`` or ``config.json`` cannot be read, or ``modules.json`` lists no
            StaticEmbedding (e.g. a transformer model) or modules besides StaticEmbedding and Normalize (e.g. Dense),
            which matryo cannot apply.
    """
    try:
        return _find_model_files(Path(root))
    except PermissionError as exc:
        if isinstance(exc, ModelAccessError):
            raise
        raise access_error(exc, root) from exc


def _find_model_files(folder: Path) -> ModelFiles:
    if folder.is_file():
        msg = (
            f"Model path {str(folder)!r} is a file; pass the folder that holds {_WEIGHTS} and {_TOKENIZER} "
            f"({str(folder.parent)!r}?)."
        )
        raise ModelNotFoundError(msg)
    if not folder.is_dir():
        msg = f"Model folder {str(folder)!r} does not exist (or is not a folder)."
        raise ModelNotFoundError(msg)
    tried: list[str] = []
    config_path = folder / "config.json"
    config = _read_json(config_path) if config_path.is_file() else {}
    if not isinstance(config, dict):
        config = {}
    st_config_path = folder / "config_sentence_transformers.json"
    st_config = _read_json(st_config_path) if st_config_path.is_file() else {}
    if not isinstance(st_config, dict):
        st_config = {}

    normalized = config.get("normalize") is True  # model2vec's own flag
    modules_path = folder / "modules.json"
    if modules_path.is_file():
        modules = _read_json(modules_path)
        if not isinstance(modules, list):
            msg = (
                f"{str(modules_path)!r} holds a JSON {type(modules).__name__}; expected a list of module entries "
                'such as [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"}] '
                "(sentence-transformers cannot load it either). Fix or remove that file."
            )
            raise ModelFormatError(msg)
        entries = [m for m in modules if isinstance(m, dict) and str(m.get("type", "")).endswith(_STATIC_TYPE_SUFFIX)]
        if entries:
            _check_no_other_modules(modules_path, modules)
            normalized = normalized or any(_module_class(m) == "Normalize" for m in modules)
            sub = folder / str(entries[0].get("path", ""))
            if _complete(sub):
                layout = "sentence-transformers (modules.json)"
                if _is_model2vec(config):  # saved by model2vec, which writes a modules.json too
                    layout = "model2vec, read as sentence-transformers reads it (modules.json)"
                return ModelFiles(folder, sub / _WEIGHTS, sub / _TOKENIZER, layout, config, st_config, normalized)
            if sub != folder:
                # The folder modules.json names is the model; files elsewhere (the root) may be another one, and
                # a hub snapshot missing it is an interrupted download, so no other layout is tried.
                pickles = _pickles(sub) if not (sub / _WEIGHTS).is_file() else []
                if pickles:  # sentence-transformers 2.x/3.x saved with safe_serialization=False: not a download
                    msg = (
                        f"{str(modules_path)!r} puts the StaticEmbedding module in {str(sub)!r}, which holds its "
                        f"weights only as pickle files ({', '.join(pickles)}); matryo never loads pickles. Convert "
                        f"them to safetensors: {CONVERT_PICKLES}"
                    )
                    raise PickleWeightsError(msg)
                msg = (
                    f"{str(modules_path)!r} puts the StaticEmbedding module in {str(sub)!r}, but there is no "
                    f"{_WEIGHTS} + {_TOKENIZER} there (an interrupted download or copy?). Copy or download the "
                    "model folder again."
                )
                raise IncompleteFolderError(msg)
            tried.append(f"sentence-transformers modules.json -> {str(sub)!r} (no {_WEIGHTS} + {_TOKENIZER} there)")
        elif any(_module_class(m) for m in modules):
            _refuse_non_static(folder, [_module_class(m) for m in modules if _module_class(m)])
        else:
            tried.append("sentence-transformers modules.json (lists no modules)")
    else:
        tried.append("sentence-transformers modules.json (no modules.json)")

    hub = folder / _HUB_SUBFOLDER
    if _complete(hub):
        layout = "sentence-transformers hub layout"
        return ModelFiles(folder, hub / _WEIGHTS, hub / _TOKENIZER, layout, config, st_config, normalized)
    tried.append(f"sentence-transformers hub layout ({_HUB_SUBFOLDER}/{_WEIGHTS} + {_TOKENIZER})")

    if _complete(folder):
        # model2vec's config.json: model_type "model2vec" before 0.10, a max_length/normalize/... block since
        layout = "model2vec" if _is_model2vec(config) else "root"
        return ModelFiles(folder, folder / _WEIGHTS, folder / _TOKENIZER, layout, config, st_config, normalized)
    tried.append(f"model2vec / root layout ({_WEIGHTS} + {_TOKENIZER} at the root)")

    found = sorted(p.name for p in folder.iterdir())[:20]
    msg = f"{str(folder)!r} is not a static embedding model folder. Layouts tried: {'; '.join(tried)}. Found: {found}."
    pickles = _pickles(folder)
    if pickles:  # weights saved as pickles (safe_serialization=False), not an interrupted download
        msg += f" Pickle files ({', '.join(pickles)}) are never loaded: convert them to safetensors: {CONVERT_PICKLES}"
        raise PickleWeightsError(msg)
    raise IncompleteFolderError(msg)


class SafetensorsFile:
    """A safetensors file opened for zero-copy reads (arrays are memory-mapped views).

    The header is parsed and checked against the file size up front, so a corrupt or truncated file
    raises :class:`ModelFormatError` instead of crashing later.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                prefix = fh.read(8)
                if len(prefix) < 8:
                    self._fail(f"the file is {size} bytes, shorter than the 8-byte header length")
                (header_len,) = struct.unpack("<Q", prefix)
                if header_len > min(_MAX_HEADER, size - 8):
                    self._fail(f"header length {header_len} does not fit in a file of {size} bytes")
                header = json.loads(fh.read(header_len).decode("utf-8"))
                self._mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except PermissionError as exc:  # a readable file would be fine: no advice to download it again
            raise access_error(exc, self.path.parent) from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, struct.error) as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        if not isinstance(header, dict):
            self._fail("the header is not a JSON object")
        self._data_start = 8 + header_len
        self._size = size
        self.metadata: dict[str, str] = header.pop("__metadata__", None) or {}
        self._entries: dict[str, dict[str, Any]] = header
        for name, entry in header.items():
            self._check(name, entry)

    def _fail(self, why: str) -> None:
        msg = f"{str(self.path)!r} is not a valid safetensors file ({why}). Re-download or re-save the model."
        raise ModelFormatError(msg)

    def _check(self, name: str, entry: Any) -> None:
        try:
            bits = _BITS[entry["dtype"]]
            shape = [int(s) for s in entry["shape"]]
            start, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            self._fail(f"tensor {name!r} has an unreadable entry {entry!r}")
        nbits = int(np.prod(shape, dtype=np.int64)) * bits
        nbytes = nbits // 8
        if nbits % 8 or end - start != nbytes or start < 0 or self._data_start + end > self._size:
            self._fail(
                f"tensor {name!r} needs {nbytes} bytes at offsets {start}..{end}, "
                f"but the file has {self._size - self._data_start} data bytes"
            )

    def keys(self) -> list[str]:
        """Names of the tensors in the file."""
        return list(self._entries)

    def dtype_name(self, name: str) -> str:
        """The safetensors dtype string of a tensor (``"F32"``, ``"F16"``, ``"BF16"``, ...)."""
        return str(self._entries[name]["dtype"])

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of a tensor."""
        return tuple(int(d) for d in self._entries[name]["shape"])

    def get(self, name: str) -> NDArray[Any]:
        """A read-only array viewing the tensor's bytes in the mapped file (BF16 as raw uint16).

        Raises:
            ModelFormatError: If numpy cannot hold the tensor's dtype (float8, float6, float4).
        """
        entry = self._entries[name]
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            msg = (
                f"{str(self.path)!r}: tensor {name!r} has dtype {entry['dtype']}, which numpy (and so matryo) cannot "
                f"read; expected one of {sorted(_DTYPES)}. Re-save it in float32 or float16."
            )
            raise ModelFormatError(msg)
        shape = tuple(int(s) for s in entry["shape"])
        start = self._data_start + int(entry["data_offsets"][0])
        count = int(np.prod(shape, dtype=np.int64))
        if self._mmap is None or count == 0:
            return np.zeros(shape, dtype=dtype)
        view: NDArray[Any] = np.frombuffer(self._mmap, dtype=dtype, count=count, offset=start).reshape(shape)
        # An unaligned view works in numpy but is slow and unusual: copy it once instead.
        return view.copy() if start % dtype.itemsize else view


def _as_float32(array: NDArray[Any], dtype_name: str) -> NDArray[np.float32]:
    if dtype_name == "F32":
        return array  # the memory-mapped view itself: no copy
    if dtype_name == "BF16":
        widened: NDArray[np.float32] = (array.astype(np.uint32) << 16).view(np.float32)
        return widened
    return array.astype(np.float32)


def load_table(weights: str | os.PathLike[str]) -> tuple[NDArray[np.float32], str]:
    """Load the token-embedding table of a static model as float32.

    float32 tables are memory-mapped (no copy); float16/bfloat16/float64 tables are widened to float32 in
    memory, since numpy has no fast half-precision arithmetic. model2vec's int8 tables (``quantize_to="int8"``)
    are widened as they are, without a scale, which is what model2vec itself averages. model2vec's optional
    ``mapping`` and ``weights`` tensors are folded in: ``row[t] = embeddings[mapping[t]] * weights[t]``.

    Args:
        weights: Path to a ``model.safetensors`` file.

    Returns:
        The (vocab, dim) float32 table and the stored dtype name (``"F32"``, ``"F16"``, ...).

    Raises:
        ModelFormatError: If the file is corrupt or holds no 2-D float (or int8) table under a known key.
    """
    st = SafetensorsFile(weights)
    keys = st.keys()
    key = next((k for k in _TABLE_KEYS if k in keys), None)
    if key is None:
        shown = ", ".join(repr(k) for k in keys[:_KEYS_SHOWN])
        more = f" and {len(keys) - _KEYS_SHOWN} more" if len(keys) > _KEYS_SHOWN else ""
        msg = (
            f"{str(weights)!r} holds no token table: expected a tensor named one of {list(_TABLE_KEYS)}, found "
            f"{len(keys)} tensors: {shown}{more}. Is this a static embedding model (sentence-transformers "
            "StaticEmbedding or model2vec)?"
        )
        raise ModelFormatError(msg)
    dtype_name = st.dtype_name(key)
    shape = st.shape(key)
    if len(shape) != 2 or dtype_name not in _TABLE_DTYPES:
        msg = (
            f"{str(weights)!r}: tensor {key!r} must be a 2-D table (vocab x dim) of dtype {', '.join(_TABLE_DTYPES)}, "
            f"found shape {shape} of dtype {dtype_name}. Re-save the model with a float32 or float16 table."
        )
        raise ModelFormatError(msg)
    raw = st.get(key)
    table = _as_float32(raw, dtype_name)
    if key == "embeddings" and ("mapping" in keys or "weights" in keys):
        if "mapping" in keys:
            raw = st.get("mapping")
            if raw.dtype.kind not in "iu":
                msg = (
                    f"{str(weights)!r}: 'mapping' must hold integer row numbers, found dtype {raw.dtype}; re-save the "
                    "model with model2vec, which writes an int64 mapping."
                )
                raise ModelFormatError(msg)
            mapping = raw.astype(np.int64)
            if mapping.ndim != 1 or (mapping.size and (mapping.min() < 0 or mapping.max() >= table.shape[0])):
                found = f"shape {mapping.shape}" if mapping.ndim != 1 else f"{mapping.min()}..{mapping.max()}"
                msg = (
                    f"{str(weights)!r}: 'mapping' must be 1-D and index rows 0..{table.shape[0] - 1} of 'embeddings', "
                    f"found {found}; the file is damaged or the two tensors come from different models."
                )
                raise ModelFormatError(msg)
            table = table[mapping]
        if "weights" in keys:
            token_weights = _as_float32(st.get("weights"), st.dtype_name("weights")).reshape(-1)
            if token_weights.shape[0] != table.shape[0]:
                msg = (
                    f"{str(weights)!r}: 'weights' has {token_weights.shape[0]} entries "
                    f"but the table has {table.shape[0]} rows."
                )
                raise ModelFormatError(msg)
            table = table * token_weights[:, None]
        table = np.ascontiguousarray(table, dtype=np.float32)
    return table, dtype_name


def save_table(path: Path, name: str, table: NDArray[Any]) -> None:
    """Write ``{name: table}`` (float32 or float16) as safetensors, through a temporary file renamed over ``path``.

    The header and the table's bytes are written by this process, straight from the array: no copy of the table
    is made, and the file gets the umask's mode like every other file of the folder, or the mode of the file it
    replaces (safetensors' ``save_file`` writes through a private 0600 temporary file, which other accounts cannot
    read). The bytes are those safetensors writes (a JSON header padded with spaces to a multiple of 8). The rename
    (:func:`matryo.files.write_replacing`) keeps a model loaded from this very folder working: it still maps the
    old file (overwriting a mapped file in place would crash it with SIGBUS).
    """
    array = np.ascontiguousarray(table)
    dtype = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}[array.dtype.newbyteorder("=")]
    entry = {name: {"dtype": dtype, "shape": list(array.shape), "data_offsets": [0, array.nbytes]}}
    header = json.dumps(entry, separators=(",", ":")).encode("utf-8")
    header += b" " * (-len(header) % 8)

    def write(fh: BinaryIO) -> None:
        fh.write(len(header).to_bytes(8, "little"))
        fh.write(header)
        fh.write(array.astype(array.dtype.newbyteorder("<"), copy=False).data)

    write_replacing(path, write)


def load_tokenizer(path: Path) -> Tokenizer:
    """Read a ``tokenizer.json``, or raise :class:`ModelFormatError` naming the file."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for malformed files
        msg = f"Could not read the tokenizer {str(path)!r}: {exc}. Expected a Hugging Face tokenizer.json."
        raise ModelFormatError(msg) from exc


MODEL2VEC_DEFAULT_MAX_LENGTH = 512
"""model2vec's token cut when a folder's ``config.json`` has no ``max_length`` key."""


def model2vec_max_length(files: ModelFiles, tokenizer: Tokenizer) -> int | None:
    """The token cut model2vec applies to a folder only it loads (model2vec layout, no ``modules.json``).

    model2vec ignores the truncation stored in ``tokenizer.json`` and cuts at ``config.json``'s
    ``max_length`` (keeping a text's start, whatever direction ``tokenizer.json`` stores), or at 512 tokens when
    the key is absent (``null``: never). sentence-transformers cannot load such a folder, so model2vec's rule is
    the one to match: ``tokenizer``'s stored truncation is cleared, and the returned cut is applied to the right.

    Returns:
        The cut to apply, or ``None`` when the tokenizer (now without truncation for ``null``) decides.

    Raises:
        ModelFormatError: If ``max_length`` is not a positive int or null.
    """
    value = files.config.get("max_length", MODEL2VEC_DEFAULT_MAX_LENGTH)
    if isinstance(value, bool) or not isinstance(value, (int, type(None))) or (value is not None and value < 1):
        msg = (
            f"{str(files.root / 'config.json')!r} sets max_length {value!r}; expected a positive int (the token "
            "cut model2vec applies) or null (no cut). Fix config.json, or pass max_length= to from_pretrained."
        )
        raise ModelFormatError(msg)
    # model2vec calls enable_truncation(max_length), which also resets the stored direction, stride and strategy to
    # the defaults (keep the start of a text): clearing them here makes the encoder's cut the same.
    tokenizer.no_truncation()
    return value


def stored_truncate_dim(st_config: Mapping[str, Any], dim: int, root: Path) -> int | None:
    """The default ``truncate_dim`` stored in ``config_sentence_transformers.json`` (``None`` when absent)."""
    value = st_config.get("truncate_dim")
    if value is None:
        return None
    if not isinstance(value, bool) and isinstance(value, int) and value > dim:
        # sentence-transformers slices [:, :value], which keeps all columns: it loads such a folder at full width
        msg = (
            f"{str(root / 'config_sentence_transformers.json')!r} sets truncate_dim {value}, wider than the table's "
            f"{dim} columns: the full width is used, as sentence-transformers does. Fix or remove it in that file."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= dim:
        msg = (
            f"{str(root / 'config_sentence_transformers.json')!r} sets truncate_dim {value!r}; expected an int "
            f"between 1 and the table's width {dim}. Fix or remove it in that file (the width matryo index, the "
            "adapters and sentence-transformers use by default), or pass truncate_dim= to from_pretrained."
        )
        raise ModelFormatError(msg)
    return value


def warn_default_prompt(st_config: Mapping[str, Any], display: str) -> None:
    """Warn (once) that prompts sentence-transformers would prepend are not applied by matryo.

    A default prompt is prepended to every text by ``encode``; non-empty ``query``/``document`` prompts are
    prepended by ``encode_query``/``encode_document``. Other named prompts are only used on request.
    """
    prompts = st_config.get("prompts")
    prompts = prompts if isinstance(prompts, dict) else {}
    name = st_config.get("default_prompt_name")
    prompt = prompts.get(name) if isinstance(name, str) else None
    found = []
    if isinstance(prompt, str) and prompt:
        found.append(f"default_prompt_name {name!r}, so sentence-transformers prepends {prompt!r} to every text")
    roles = {role: text for role in ("query", "document") if isinstance(text := prompts.get(role), str) and text}
    if roles:
        listed = ", ".join(f"{role} {text!r}" for role, text in roles.items())
        found.append(f"prompts {listed}, which sentence-transformers' encode_query/encode_document prepend")
    if found:
        example = prompt if isinstance(prompt, str) and prompt else next(iter(roles.values()))
        msg = (
            f"{display}: config_sentence_transformers.json sets {'; and '.join(found)}; matryo does not apply "
            f"prompts. Prepend them yourself (e.g. encode([{example!r} + text for text in texts])) for "
            "sentence-transformers' vectors."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
