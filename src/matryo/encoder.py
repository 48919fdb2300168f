"""StaticEncoder: tokenize -> flat ids -> mean of token rows -> Matryoshka truncation -> L2 normalisation.

The semantics are those of sentence-transformers' ``StaticEmbedding`` on the same folder: no special
tokens, no padding, the truncation stored in ``tokenizer.json`` honoured, ``[UNK]`` kept, mean pooling,
an empty text gives a zero vector, truncation happens before normalisation.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import warnings
from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from matryo import pooling
from matryo.errors import (
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidTypeError,
    ModelFormatError,
    ModelNotFoundError,
    missing_extra,
)
from matryo.files import write_json, write_replacing
from matryo.formats import (
    expand_user,
    find_model_files,
    load_table,
    load_tokenizer,
    model2vec_max_length,
    save_table,
    stored_truncate_dim,
    warn_default_prompt,
)
from matryo.texts import SPLIT_DISAGREES, check_texts, check_unicode, piece_boundaries, spans, splits_on_whitespace

__all__ = ["DEFAULT_MODEL_PATH", "StaticEncoder"]

#: Largest max_length (the tokenizers library stores it as a 64-bit usize; model2vec configs use huge values for
#: "never cut").
_MAX_TOKENS = 2**64 - 1

#: Rows per block of the load-time finite check (a few MB of temporaries for any width).
_FINITE_BLOCK = 8192
#: Token ids a non-finite table error names before counting the rest.
_IDS_SHOWN = 5

DEFAULT_MODEL_PATH = Path(__file__).parent / "default_model"
"""The embedded default model that ships inside the package (loaded when no model is named)."""

_LONG_TEXT_CHARS = 100_000  # longer texts are tokenized in whitespace-aligned pieces (bounded memory)
# The word cache (token ids of whitespace-separated words, for very long texts) is emptied when its estimated
# size passes _WORD_CACHE_BYTES. The estimate is per entry: _WORD_ENTRY_BYTES of dict slot, str and tuple headers,
# one byte per character and _WORD_ID_BYTES per id (an int object and a tuple slot); measured within 15% of
# tracemalloc for 7- and 100-character words, so the cache stays near 32 MB (~200k typical words).
_WORD_CACHE_BYTES = 32 << 20
_WORD_ENTRY_BYTES = 100
_WORD_ID_BYTES = 40
# Longer words are tokenized on every call instead of cached (the ids are the same either way): a long text
# without whitespace (minified JSON, base64) would otherwise store each of its 100k-character pieces, with all
# their ids, as one entry. 100 is WordPiece's usual max_input_chars_per_word; the bound is for memory only.
_WORD_CACHE_MAX_CHARS = 100


class StaticEncoder:
    """A static token-embedding model: a (vocab x dim) table averaged over a text's tokens.

    Load one with :meth:`from_pretrained`; encode with :meth:`encode`. ``encode`` is thread-safe.

    Attributes:
        name_or_path: Where the model came from.
        layout: The folder layout it was read from.
        stored_dtype: The table's dtype on disk (``"F32"``, ``"F16"``, ...).
        normalized: Whether the source normalises its output (a Normalize module in ``modules.json``, or
            model2vec's ``normalize: true``). Informational: :meth:`encode`'s ``normalize`` flag decides.

    Example:
        >>> enc = StaticEncoder.from_pretrained()  # the embedded default model, offline
        >>> vectors = enc.encode(["how do I read a gzip file", "parse command line arguments"])
        >>> short = enc.encode("a query", truncate_dim=128)  # a Matryoshka prefix, re-normalised
    """

    def __init__(
        self,
        table: NDArray[np.floating[Any]],
        tokenizer: Tokenizer,
        *,
        truncate_dim: int | None = None,
        max_length: int | None = None,
        name_or_path: str = "<in-memory>",
        layout: str = "in-memory",
        stored_dtype: str = "F32",
        normalized: bool = False,
        st_config: Mapping[str, Any] | None = None,
    ) -> None:
        """Wrap a token table and its tokenizer.

        Args:
            table: The (vocab, dim) token table; float32 is used as is (a memory map stays one).
            tokenizer: The tokenizer (a ``tokenizers.Tokenizer``, or a transformers fast tokenizer, whose inner one is
                used, as sentence-transformers does); a private copy is made with padding turned off.
            truncate_dim: Default Matryoshka width for :meth:`encode` (``None`` = full width).
            max_length: Cut every text at this many tokens, overriding the truncation stored in the tokenizer.
            name_or_path: Where the model came from (for display and configs).
            layout: The folder layout the model was read from.
            stored_dtype: The dtype of the table on disk (``"F32"``, ``"F16"``, ...).
            normalized: Whether the source model normalises its output (a Normalize module, or model2vec's
                ``normalize: true``); :meth:`save_pretrained` writes it back. It does not change :meth:`encode`.
            st_config: The source's ``config_sentence_transformers.json``; :meth:`save_pretrained` keeps its
                prompts, ``default_prompt_name`` and ``similarity_fn_name``.

        Raises:
            InvalidTypeError: If the table is not a numpy array of real numbers (a torch tensor: pass
                ``weight.detach().cpu().numpy()``), the tokenizer is neither a ``tokenizers.Tokenizer`` nor wraps
                one, or ``max_length`` or ``truncate_dim`` is not an int.
            ModelFormatError: If the table is not 2-D, has fewer rows than the tokenizer's highest token id + 1
                (extra rows, as in a padded table, are ignored), or holds NaN or infinity in a row a token uses.
            InvalidArgumentError: If ``max_length`` is not in ``1..2**64-1`` or ``truncate_dim < 1``.
            DimensionMismatchError: If ``truncate_dim`` is larger than the table's width.

        Warns:
            UserWarning: If the table has at least twice the rows the tokenizer uses (another model's tokenizer?).
        """
        if not isinstance(table, np.ndarray):
            hint = " (from torch: weight.detach().cpu().numpy())" if hasattr(table, "detach") else ""
            msg = f"table must be a 2-D numpy array (vocab x dim), got {type(table).__name__}{hint}."
            raise InvalidTypeError(msg)
        if table.dtype.kind not in "fiu":
            msg = f"table must hold real numbers (a float array), got dtype {table.dtype}."
            raise InvalidTypeError(msg)
        if table.ndim != 2 or table.shape[1] == 0:
            msg = f"The token table must be 2-D (vocab x dim) with dim >= 1, found shape {table.shape}."
            raise ModelFormatError(msg)
        if not isinstance(tokenizer, Tokenizer):
            inner = getattr(tokenizer, "_tokenizer", None)  # a transformers fast tokenizer wraps one, as ST unwraps
            if not isinstance(inner, Tokenizer):
                msg = (
                    f"tokenizer must be a tokenizers.Tokenizer (e.g. Tokenizer.from_file('tokenizer.json')), got "
                    f"{type(tokenizer).__name__}."
                )
                raise InvalidTypeError(msg)
            tokenizer = inner
        # Ids can have gaps (removed tokens) or added tokens past the base vocabulary: size by the highest id.
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        rows = max(vocab.values(), default=-1) + 1
        if table.shape[0] < rows:
            msg = (
                f"The token table has {table.shape[0]} rows but the tokenizer has {len(vocab)} tokens with ids up "
                f"to {rows - 1}; it needs at least {rows} rows (one per id). Was the table saved with another "
                "tokenizer? Load the tokenizer.json the table was built with."
            )
            raise ModelFormatError(msg)
        if rows and table.shape[0] >= 2 * rows:
            msg = (
                f"The token table has {table.shape[0]} rows but the tokenizer's ids stop at {rows - 1}: rows "
                f"{rows}..{table.shape[0] - 1} are never looked up. A padded table has a few spare rows, not "
                f"{table.shape[0] / rows:.1f}x the vocabulary: is tokenizer.json from another model?"
            )
            warnings.warn(msg, UserWarning, stacklevel=2)
        table = table[:rows]  # rows past the highest id (a padded table) are never looked up
        # A read-only view: the per-width prefix copies and the fingerprint are taken from it once, so an edit
        # through the table would make the widths disagree (the caller's own array stays theirs to change, and
        # must not be changed while this encoder is used).
        with np.errstate(over="ignore"):  # a float64 value beyond float32's range becomes inf: named below
            self._table: NDArray[np.float32] = (table if table.dtype == np.float32 else table.astype(np.float32)).view()
        self._table.flags.writeable = False
        _check_finite(self._table, wider=table.dtype.kind == "f" and table.dtype.itemsize > 4)
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_padding()
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
                msg = f"max_length must be an int >= 1 (or None to keep the tokenizer's setting), got {max_length!r}."
                raise InvalidTypeError(msg)
            if not 1 <= max_length <= _MAX_TOKENS:
                msg = (
                    f"max_length must be between 1 and {_MAX_TOKENS} (or None to keep the tokenizer's setting), "
                    f"got {max_length}."
                )
                raise InvalidArgumentError(msg)
            max_length = int(max_length)
            # Keep the stored direction and strategy ("left" keeps a text's end). The stride only shapes overflow
            # windows, which encode never reads; it must stay below max_length.
            stored = self._tokenizer.truncation or {}
            self._tokenizer.enable_truncation(
                max_length,
                stride=min(int(stored.get("stride", 0)), max_length - 1),
                strategy=stored.get("strategy", "longest_first"),
                direction=stored.get("direction", "right"),
            )
        self._word_tokenizer: Tokenizer | None = None
        if splits_on_whitespace(self._tokenizer):
            self._word_tokenizer = Tokenizer.from_str(self._tokenizer.to_str())
            self._word_tokenizer.no_truncation()
        self._word_cache: dict[str, tuple[int, ...]] = {}
        self._word_cache_bytes = 0  # estimated size of _word_cache (approximate under concurrent encodes)
        self._boundaries = piece_boundaries(self._tokenizer)
        self.name_or_path = name_or_path
        self.layout = layout
        self.stored_dtype = stored_dtype
        self.normalized = normalized
        self._st_config = dict(st_config or {})
        self._truncate_dim = None if truncate_dim is None else self._check_dim(truncate_dim)
        # Contiguous copies of the first d columns, filled row by row as tokens are first seen.
        self._prefix_tables: dict[int, tuple[NDArray[np.float32], NDArray[np.bool_]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str] | None = None,
        *,
        truncate_dim: int | None = None,
        max_length: int | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> StaticEncoder:
        """Load a static model from a local folder, the hub, or the embedded default.

        Args:
            name_or_path: A local folder (sentence-transformers or model2vec layout), a hub id such as
                ``"sentence-transformers/static-retrieval-mrl-en-v1"``, or ``None`` for the embedded default model.
            truncate_dim: Default Matryoshka width for :meth:`encode`. ``None`` takes the ``truncate_dim`` stored
                in ``config_sentence_transformers.json``, as sentence-transformers does (else full width).
            max_length: Cut texts at this many tokens, overriding the truncation stored in ``tokenizer.json``.
            revision: Hub revision (branch, tag or commit); hub ids only.
            cache_dir: Hub cache folder; hub ids only.
            token: Hub token; hub ids only.
            local_files_only: Never touch the network for hub ids.

        Returns:
            The loaded encoder. A float32 table is memory-mapped, not copied.

        Raises:
            ModelNotFoundError: If the path does not exist or the hub id cannot be resolved.
            ModelFormatError: If the folder matches no known layout or its files are corrupt.
            InvalidArgumentError: If ``max_length < 1`` or ``truncate_dim < 1`` (InvalidTypeError if not an int).
            InvalidTypeError: If ``name_or_path`` is not a str or path-like object.
            DimensionMismatchError: If ``truncate_dim`` is larger than the model's width.

        Warns:
            UserWarning: If ``config_sentence_transformers.json`` sets a non-empty default prompt, which
                sentence-transformers prepends to every text, or non-empty ``query``/``document`` prompts, which
                its ``encode_query``/``encode_document`` prepend; matryo applies no prompts.
        """
        if name_or_path is None:
            folder = DEFAULT_MODEL_PATH
            if not folder.is_dir():
                msg = f"The embedded default model is missing from {folder}; reinstall matryo."
                raise ModelNotFoundError(msg)
            display = "matryo-default"
        else:
            if not isinstance(name_or_path, (str, os.PathLike)):
                msg = (
                    f"name_or_path must be a model folder (str or pathlib.Path) or a hub id (str); found "
                    f"{type(name_or_path).__name__} {name_or_path!r}. Pass None for the embedded default model."
                )
                raise InvalidTypeError(msg)
            display = os.fspath(name_or_path)
            if not isinstance(display, str):
                msg = f"name_or_path must be a str path; found {type(display).__name__} {display!r}. Decode it first."
                raise InvalidTypeError(msg)
            if not display.strip():
                msg = (
                    f"The model name is empty ({display!r}); pass None (or nothing) for the embedded default model, "
                    "or a model folder or hub id."
                )
                raise InvalidArgumentError(msg)
            folder = expand_user(display)
            if not folder.exists():
                from matryo import hub

                if not hub.looks_like_hub_id(display):
                    msg = f"Model path {display!r} does not exist, and it is not a hub id (owner/name) either."
                    raise ModelNotFoundError(msg)
                try:
                    folder = hub.snapshot(
                        display, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only
                    )
                except ModelNotFoundError as exc:  # e.g. a mistyped relative path that looks like owner/name
                    local = str(folder.absolute())
                    msg = f"{exc} No local folder {local!r} exists either: check the path if you meant one."
                    raise ModelNotFoundError(msg) from exc
        files = find_model_files(folder)
        tokenizer = load_tokenizer(files.tokenizer)
        if files.layout == "model2vec" and max_length is None:
            max_length = model2vec_max_length(files, tokenizer)
        elif files.layout == "model2vec":  # model2vec applies an explicit cut to a text's start as well
            tokenizer.no_truncation()
        table, stored_dtype = load_table(files.weights)
        if truncate_dim is None:
            truncate_dim = stored_truncate_dim(files.st_config, int(table.shape[1]), files.root)
        warn_default_prompt(files.st_config, display)
        return cls(
            table,
            tokenizer,
            truncate_dim=truncate_dim,
            max_length=max_length,
            name_or_path=display,
            layout=files.layout,
            stored_dtype=stored_dtype,
            normalized=files.normalized,
            st_config=files.st_config,
        )

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Save the model so that matryo, sentence-transformers and model2vec all load it back.

        The folder uses model2vec's layout (``model.safetensors`` with key ``embeddings``, ``config.json``)
        plus sentence-transformers' ``modules.json`` (StaticEmbedding at path ``"."``), which both libraries
        read. A float16 table is saved as float16; everything else as float32. The tokenizer is saved with
        padding off and this encoder's truncation; a default ``truncate_dim`` is saved in
        ``config_sentence_transformers.json``, next to the source's prompts, ``default_prompt_name`` and
        ``similarity_fn_name``. When the source normalises (:attr:`normalized`), a Normalize module and
        model2vec's ``normalize: true`` are written, so both libraries keep returning unit vectors.

        Args:
            path: The folder to write (created if missing).

        Returns:
            The folder path.

        Raises:
            InvalidArgumentError: If ``path`` is a file.

        Warns:
            UserWarning: If the tokenizer truncates on the left (keeps a text's end): sentence-transformers and
                matryo honour that, but model2vec's loader resets truncation to the right (keeps the start).
        """
        truncation = self._tokenizer.truncation
        if truncation is not None and truncation.get("direction") == "left":
            msg = (
                f"Saving {self.name_or_path} to {os.fspath(path)!r}: its tokenizer truncates on the left (keeps the "
                f"last {truncation['max_length']} tokens). sentence-transformers and matryo keep that, but "
                "model2vec's loader resets truncation to the right, so model2vec will embed the first "
                f"{truncation['max_length']} tokens of longer texts instead. Encode this folder with matryo or "
                "sentence-transformers, or cut texts yourself before model2vec sees them."
            )
            warnings.warn(msg, UserWarning, stacklevel=2)

        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            msg = (
                f"Cannot save to {os.fspath(path)!r}: it is a file; expected a (new or existing) folder. "
                "Use another path."
            )
            raise InvalidArgumentError(msg)
        folder.mkdir(parents=True, exist_ok=True)
        table = self._table.astype(np.float16) if self.stored_dtype == "F16" else np.ascontiguousarray(self._table)
        save_table(folder / "model.safetensors", "embeddings", table)
        tokenizer = self._tokenizer.to_str(pretty=True).encode("utf-8")  # the bytes Tokenizer.save writes
        write_replacing(folder / "tokenizer.json", lambda file: file.write(tokenizer))
        config = {
            "model_type": "model2vec",
            "architectures": ["StaticModel"],
            "tokenizer_name": self.name_or_path,
            "apply_pca": None,
            "hidden_dim": self.dim,
            "seq_length": 1000000,
            "normalize": self.normalized,
            "pooling": "mean",
            "max_length": self.max_length,  # model2vec cuts at 512 tokens when absent; null = never
            "embedding_dtype": str(table.dtype),
        }
        modules = [{"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"}]
        files: list[tuple[Path, Any]] = []
        if self.normalized:  # the entry model2vec writes; the folder and its config.json as sentence-transformers 6.2
            normalize = {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"}
            modules.append(normalize)
            (folder / "1_Normalize").mkdir(exist_ok=True)
            io_names = {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"}
            files.append((folder / "1_Normalize" / "config.json", io_names))
        # The source's settings (prompts, similarity function, ...) are kept; its version stamp and width are not.
        st_config: dict[str, Any] = {
            "model_type": "SentenceTransformer",
            "prompts": {"query": "", "document": ""},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        }
        st_config.update((k, v) for k, v in self._st_config.items() if k not in {"__version__", "truncate_dim"})
        if self.truncate_dim is not None:
            st_config["truncate_dim"] = self.truncate_dim
        files += [
            (folder / "config.json", config),
            (folder / "modules.json", modules),
            (folder / "config_sentence_transformers.json", st_config),
        ]
        for file, content in files:  # replaced, not written into: a link into a cache keeps its file
            write_json(file, content)
        return folder

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Full width of the token table."""
        return int(self._table.shape[1])

    @property
    def truncate_dim(self) -> int | None:
        """Default Matryoshka width of :meth:`encode` (``None``: full width); fixed when the encoder is made."""
        return self._truncate_dim

    @truncate_dim.setter
    def truncate_dim(self, value: object) -> None:
        # A loaded encoder is shared (matryo.cache hands one object to every adapter in the process), so a width
        # set on it would change every other user's vectors; and an unchecked value failed only at encode time.
        msg = (
            f"StaticEncoder.truncate_dim is fixed when the encoder is made (got an assignment of {value!r}): pass "
            "truncate_dim= to encode() for one call, or load with StaticEncoder.from_pretrained(..., truncate_dim=N)."
        )
        raise AttributeError(msg)

    @property
    def output_dim(self) -> int:
        """Width of :meth:`encode`'s output by default (``truncate_dim`` or ``dim``)."""
        return self.truncate_dim or self.dim

    @property
    def vocab_size(self) -> int:
        """Rows of the token table: the tokenizer's highest token id + 1 (its vocabulary size unless ids have gaps)."""
        return int(self._table.shape[0])

    @property
    def max_length(self) -> int | None:
        """Tokens kept per text (the tokenizer's truncation), or ``None`` when texts are never cut."""
        truncation = self._tokenizer.truncation
        return None if truncation is None else int(truncation["max_length"])

    @property
    def tokenizer(self) -> Tokenizer:
        """The encoder's private tokenizer (padding off). Do not change its settings while encoding."""
        return self._tokenizer

    @property
    def table(self) -> NDArray[np.float32]:
        """The float32 token table (read-only; a memory map when the file allowed it)."""
        return self._table

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of the table and tokenizer: equal fingerprints mean identical vectors."""
        digest = hashlib.blake2b(digest_size=8)
        digest.update(self._tokenizer.to_str().encode("utf-8"))
        digest.update(repr(self._table.shape).encode())
        step = 4096
        for start in range(0, self._table.shape[0], step):
            digest.update(np.ascontiguousarray(self._table[start : start + step]).data)
        return digest.hexdigest()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the table, tokenizers and settings; the lock and the lazily filled caches are rebuilt empty."""
        state = dict(self.__dict__)
        state.pop("_lock")
        state["truncate_dim"] = self._truncate_dim  # what an older matryo (a plain attribute) reads
        state["_word_cache"], state["_word_cache_bytes"], state["_prefix_tables"] = {}, 0, {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "truncate_dim" in state:  # pickled before truncate_dim became a read-only property
            state["_truncate_dim"] = state.pop("truncate_dim")
        self.__dict__.update(state)
        self._table.flags.writeable = False  # an unpickled array is writable again
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"StaticEncoder(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, dim={self.dim}, "
            f"truncate_dim={self.truncate_dim}, max_length={self.max_length})"
        )

    # ------------------------------------------------------------------ encoding
    @overload
    def encode(
        self,
        texts: str,
        *,
        truncate_dim: int | None = ...,
        normalize: bool = ...,
        batch_size: int = ...,
        show_progress_bar: bool = ...,
    ) -> NDArray[np.float32]: ...

    @overload
    def encode(
        self,
        texts: Iterable[str],
        *,
        truncate_dim: int | None = ...,
        normalize: bool = ...,
        batch_size: int = ...,
        show_progress_bar: bool = ...,
    ) -> NDArray[np.float32]: ...

    def encode(
        self,
        texts: str | Iterable[str],
        *,
        truncate_dim: int | None = None,
        normalize: bool = True,
        batch_size: int = 2048,
        show_progress_bar: bool = False,
    ) -> NDArray[np.float32]:
        """Embed texts.

        Args:
            texts: One text or an iterable of texts.
            truncate_dim: Keep only the first ``truncate_dim`` dimensions (a Matryoshka prefix). Only those
                columns of the table are read. Defaults to the encoder's ``truncate_dim`` (else full width).
            normalize: L2-normalise each vector (after truncation). Empty texts stay all-zero. ``False``
                gives the raw mean of the token rows, whatever the model: that is sentence-transformers' output
                with ``normalize_embeddings=False`` only for a model without a Normalize module. For a model
                whose source normalises (:attr:`normalized`: a Normalize module, or model2vec's
                ``normalize: true``), sentence-transformers and model2vec always return unit vectors (with
                ``truncate_dim``, ST normalises before truncating); ``True`` gives the same directions.
            batch_size: Texts tokenized per call; the next batch is tokenized while the current one is pooled.
            show_progress_bar: Show a tqdm progress bar (needs ``tqdm``).

        Returns:
            float32 array of shape ``(n, d)``, or ``(d,)`` when ``texts`` is a single string (or a 0-d array).

        Raises:
            InvalidTypeError: (a TypeError) If ``texts`` is None, bytes, a mapping or a 2-D table (a DataFrame),
                or an item is not a ``str`` (the message names its index), ``truncate_dim`` or ``batch_size`` is
                not an int, or ``normalize`` is not a bool.
            InvalidArgumentError: (a ValueError) If ``truncate_dim < 1`` or ``batch_size < 1``, or a text is not
                valid Unicode, e.g. holds a lone surrogate (the message names its index).
            DimensionMismatchError: (a ValueError) If ``truncate_dim`` is larger than the model's :attr:`dim`.
        """
        single = isinstance(texts, str) or (isinstance(texts, np.ndarray) and texts.ndim == 0)
        items = check_texts(texts)
        dim = self._check_dim(truncate_dim) if truncate_dim is not None else self.output_dim
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            msg = f"batch_size must be an int >= 1 (texts tokenized per call), got {batch_size!r}."
            raise InvalidTypeError(msg)
        if batch_size < 1:
            msg = f"batch_size must be >= 1, got {batch_size}."
            raise InvalidArgumentError(msg)
        if not isinstance(normalize, (bool, np.bool_)):  # "no" or 0.0 read as truthiness normalised silently
            msg = f"normalize must be True or False, got {normalize!r}."
            raise InvalidTypeError(msg)
        out = np.zeros((len(items), dim), dtype=np.float32)
        table = self._prefix_table(dim)
        bar = _progress(len(items)) if show_progress_bar else None
        long_rows = [i for i, text in enumerate(items) if len(text) > _LONG_TEXT_CHARS]
        try:
            if long_rows:
                for i in long_rows:
                    out[i] = self._encode_long(items[i], table)
                    if bar is not None:
                        bar.update(1)
                long_set = set(long_rows)
                rest = [i for i in range(len(items)) if i not in long_set]
                rows = np.asarray(rest, dtype=np.intp)
                self._encode_many([items[i] for i in rest], table, out, rows, batch_size, bar)
            else:
                self._encode_many(items, table, out, None, batch_size, bar)
        except TypeError as exc:  # the tokenizer refuses a str it cannot convert to UTF-8, without an index
            check_unicode(items, exc)
            raise
        finally:
            if bar is not None:
                bar.close()
        if normalize:
            pooling.normalize_rows(out)
        return out[0] if single else out

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text exactly as :meth:`encode` sees them (no special tokens, truncation applied)."""
        items = check_texts(texts)
        try:
            return self._token_ids(items)
        except TypeError as exc:
            check_unicode(items, exc)
            raise

    # ------------------------------------------------------------------ internals
    def _check_dim(self, dim: int) -> int:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            msg = f"truncate_dim must be an int between 1 and {self.dim}, got {dim!r}."
            raise InvalidTypeError(msg)
        if dim < 1:
            msg = f"truncate_dim must be between 1 and the model's dim {self.dim}, got {dim}."
            raise InvalidArgumentError(msg)
        if dim > self.dim:
            msg = (
                f"truncate_dim must be between 1 and the model's dim {self.dim}, got {dim}: the model has only "
                f"{self.dim} dimensions. Pass truncate_dim <= {self.dim}, or None for the full width."
            )
            raise DimensionMismatchError(msg)
        return int(dim)

    def _prefix_table(self, dim: int) -> NDArray[np.float32]:
        """The first ``dim`` columns of the table as a contiguous array (fast gathers), cached per width.

        Rows are copied from the (memory-mapped) table lazily by :meth:`_fill_rows`, so a truncated encode
        never reads the rows of tokens it has not met, and the first call does not page in the whole file.
        """
        if dim == self.dim:
            return self._table
        entry = self._prefix_tables.get(dim)
        if entry is None:
            with self._lock:
                entry = self._prefix_tables.get(dim)
                if entry is None:
                    entry = (np.zeros((self.vocab_size, dim), np.float32), np.zeros(self.vocab_size, np.bool_))
                    self._prefix_tables[dim] = entry
        return entry[0]

    def _fill_rows(self, table: NDArray[np.float32], ids: list[list[int]]) -> None:
        """Copy into a prefix ``table`` the rows of the tokens in ``ids`` that it does not hold yet."""
        if table is self._table:
            return
        filled = self._prefix_tables[table.shape[1]][1]
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.intp)
        need = flat[~filled[flat]]
        if need.size:
            need = np.unique(need)
            table[need] = self._table[need, : table.shape[1]]
            filled[need] = True  # after the copy: a concurrent reader that sees True sees the row

    def _token_ids(self, texts: list[str], *, word_cache: bool = False) -> list[list[int]]:
        """Token ids of each text, without special tokens, with the tokenizer's truncation applied.

        Batches go to the Rust tokenizer, which spreads one call over every core. ``word_cache=True`` (used
        for the pieces of very long texts, which the tokenizer handles on one core) assembles the ids from
        the word cache instead where that is exact: measured on a quiet 2-core machine, the single-threaded
        word cache was slower than the tokenizer's own parallelism for batches (0.5-0.75x), faster only when
        the tokenizer cannot use more than one core.
        """
        if word_cache and self._word_tokenizer is not None and not SPLIT_DISAGREES.search("\n".join(texts)):
            return self._word_ids(texts)
        return [e.ids for e in self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)]

    def _word_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids assembled from a cache of whitespace-separated words.

        With BERT's normalizer, pre-tokenizer and WordPiece, a text's tokens are exactly the concatenation of
        the tokens of its whitespace-separated words, so each distinct word is tokenized once (in one batched
        call for the words not seen before) and the ids are assembled from the cache, which is fast for one
        long text that repeats its words. The tokenizer's truncation is applied to the assembled ids. Words
        longer than ``_WORD_CACHE_MAX_CHARS`` are tokenized in the same call but not kept, and the cache is
        emptied once its estimated size passes ``_WORD_CACHE_BYTES``.
        """
        assert self._word_tokenizer is not None
        cache = self._word_cache
        if self._word_cache_bytes > _WORD_CACHE_BYTES:  # start afresh; threads still using the old dict keep it
            cache = self._word_cache = {}
            self._word_cache_bytes = 0
        splits = [text.split() for text in texts]
        missing = list({word for words in splits for word in words if word not in cache})
        lookup = cache.__getitem__
        if missing:
            encodings = self._word_tokenizer.encode_batch_fast(missing, add_special_tokens=False)
            fresh = dict(zip(missing, (tuple(e.ids) for e in encodings), strict=True))
            long_words = {word: fresh.pop(word) for word in missing if len(word) > _WORD_CACHE_MAX_CHARS}
            cache.update(fresh)
            self._word_cache_bytes += sum(
                _WORD_ENTRY_BYTES + len(word) + _WORD_ID_BYTES * len(word_ids) for word, word_ids in fresh.items()
            )
            if long_words:  # kept for this call only
                lookup = ChainMap(long_words, cache).__getitem__
        ids = [list(chain.from_iterable(map(lookup, words))) for words in splits]
        truncation = self._tokenizer.truncation
        if truncation is not None:
            limit = int(truncation["max_length"])
            if truncation.get("direction", "right") == "left":
                ids = [row[-limit:] if len(row) > limit else row for row in ids]
            else:
                ids = [row[:limit] if len(row) > limit else row for row in ids]
        return ids

    def _encode_many(
        self,
        texts: list[str],
        table: NDArray[np.float32],
        out: NDArray[np.float32],
        rows: NDArray[np.intp] | None,
        batch_size: int,
        bar: Any,
    ) -> None:
        """Pool ``texts`` into ``out`` (at ``rows``, or in order), tokenizing batch i+1 while pooling batch i."""
        bounds = pooling.batch_bounds(texts, batch_size)
        if len(bounds) <= 2:
            batches: Iterator[tuple[int, list[list[int]]]] = (
                (s, self._token_ids(texts[s:e])) for s, e in itertools.pairwise(bounds)
            )
            self._pool_batches(batches, table, out, rows, bar)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="matryo-tokenize") as pool:

            def pipelined() -> Iterator[tuple[int, list[list[int]]]]:
                spans = list(itertools.pairwise(bounds))
                future = pool.submit(self._token_ids, texts[spans[0][0] : spans[0][1]])
                for i, (start, _) in enumerate(spans):
                    ids = future.result()
                    if i + 1 < len(spans):
                        future = pool.submit(self._token_ids, texts[spans[i + 1][0] : spans[i + 1][1]])
                    yield start, ids

            self._pool_batches(pipelined(), table, out, rows, bar)

    def _pool_batches(
        self,
        batches: Iterator[tuple[int, list[list[int]]]],
        table: NDArray[np.float32],
        out: NDArray[np.float32],
        rows: NDArray[np.intp] | None,
        bar: Any,
    ) -> None:
        for start, ids in batches:
            n = len(ids)
            target = out[start : start + n] if rows is None else np.zeros((n, out.shape[1]), dtype=np.float32)
            self._fill_rows(table, ids)
            pooling.pool_into(ids, table, target)
            if rows is not None:
                out[rows[start : start + n]] = target
            if bar is not None:
                bar.update(n)

    def _encode_long(self, text: str, table: NDArray[np.float32]) -> NDArray[np.float32]:
        """Mean of a very long text's token rows, tokenized in pieces so memory stays bounded.

        Pieces end where :func:`matryo.texts.piece_boundaries` allows (after whitespace, punctuation or CJK
        characters for BERT-style tokenizers; before a run of spaces for others, so sentencepiece- and GPT-2-style
        words keep their space marker), so the ids are those of tokenizing the whole text. A tokenizer whose tokens
        span spaces in other ways can differ at the cuts. A stored truncation stops the loop once ``max_length`` ids
        are seen; with direction ``"left"`` the pieces are read from the end, so the last ``max_length`` ids are kept.
        """
        truncation = self._tokenizer.truncation
        limit = None if truncation is None else int(truncation["max_length"])
        left = truncation is not None and truncation.get("direction", "right") == "left"
        pieces: Iterable[tuple[int, int]] = spans(text, _LONG_TEXT_CHARS, self._boundaries)
        if left:
            pieces = reversed(list(pieces))
        total = np.zeros(table.shape[1], dtype=np.float64)
        count = 0
        for start, end in pieces:
            # Each piece is already cut to max_length by the tokenizer, from the same side.
            ids = self._token_ids([text[start:end]], word_cache=True)[0]
            if limit is not None:
                keep = limit - count  # >= 1: the loop stops once count reaches limit
                ids = ids[-keep:] if left else ids[:keep]
            if ids:
                self._fill_rows(table, [ids])
                total += pooling.sum_rows(ids, table)
                count += len(ids)
            if limit is not None and count >= limit:
                break
        return (total / count).astype(np.float32) if count else np.zeros(table.shape[1], dtype=np.float32)


def _progress(total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise missing_extra("tqdm", "pip install tqdm  (or 'matryo[progress]')", "show_progress_bar=True", exc) from exc  # noqa: EM101
    return tqdm(total=total, unit="text", desc="Encoding")


def _check_finite(table: NDArray[np.float32], *, wider: bool = False) -> None:
    """Refuse a table with NaN or infinity in any row: each text using such a token would embed to NaN.

    Checked in row blocks, so a memory-mapped table is read once and never copied whole. ``wider``: the table was
    cast from a wider float type, where a finite value beyond float32's range became infinity.
    """
    bad: list[NDArray[np.intp]] = []
    for lo in range(0, table.shape[0], _FINITE_BLOCK):
        block = table[lo : lo + _FINITE_BLOCK]
        if not np.isfinite(block).all():
            bad.append(lo + np.flatnonzero(~np.isfinite(block).all(axis=1)))
    if not bad:
        return
    ids = np.concatenate(bad)
    shown = ", ".join(str(i) for i in ids[:_IDS_SHOWN].tolist())
    more = f" and {ids.shape[0] - _IDS_SHOWN} more" if ids.shape[0] > _IDS_SHOWN else ""
    msg = (
        f"The token table has {ids.shape[0]} rows holding NaN or infinity"
        f"{' (or values beyond float32 range, about 3.4e38, which matryo computes in)' if wider else ''} "
        f"(token ids {shown}{more}); every text "
        "with one of those tokens would embed to NaN, which no index can rank. Expected finite values in every "
        "row: re-export the model from its source weights (NaN rows usually come from a diverged training run "
        "or a broken conversion)."
    )
    raise ModelFormatError(msg)
