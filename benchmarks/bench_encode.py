"""Encoding speed of matryo against sentence-transformers, model2vec and the tokenizer alone.

Run ``python benchmarks/bench_encode.py`` (about 4 minutes; ``--quick`` for a smoke run of ~1 minute).
It prints a markdown report and writes it to ``benchmarks/results/encode.md`` (full runs only, unless
``--out`` is given). ``run(quick=False) -> str`` returns the markdown. (``matryo bench`` is a separate, lighter
check of the installed package: the embedded 512-d model on stdlib docstrings, best of runs, no stand-in; it does
not reproduce this report.)

Method:
- One stand-in for ``static-retrieval-mrl-en-v1`` (``standin.py``: random 30522x1024 float32 table + the
  bert-base-uncased tokenizer, no truncation, hub layout; model2vec gets the same table in its own layout)
  and one set of 10k queries and 10k passages, shared by every contender.
- Each library runs in its own long-lived worker process (matryo, sentence-transformers, model2vec, the
  bare tokenizer), so no library's side effects reach another: model2vec writes
  ``TOKENIZERS_PARALLELISM=false`` into the environment above 10k texts (not reached at exactly 10k, but
  isolated anyway), and torch's OpenMP pool would otherwise share the process with the tokenizers' rayon pool.
  Only one worker computes at a time; the others sleep on a pipe.
- Before anything is timed, every contender encodes the first 500 texts of each set at both widths and must
  match matryo to 1e-5 (model2vec: on every text without ``[UNK]`` within its 512-token cap, as it drops
  ``[UNK]``), or the run stops; the report says how close they were.
- Every case is warmed up once, then timed in rounds; in each round the cases run back to back in a
  rotating order. Throughput is the median over rounds; ratios are the median of per-round ratios (with their
  min-max), so a slow spell on this shared 2-core machine hits both sides of a ratio alike. The tokenizer floor
  is timed in every width's slot too, so each ratio to it is paired within its round.
- Load time, peak RSS and cold start (interpreter start + import + load + first encode of one query) come
  from a fresh process per library.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

try:  # imported as part of a package (``benchmarks.bench_encode``)
    from . import standin
except ImportError:  # run as a script, or loaded from its file path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import standin

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "encode.md"
_ENCODER_FILES = ("src/matryo/__init__.py", "src/matryo/encoder.py", "src/matryo/formats.py")
SETS = ("queries", "passages")
DIMS = (1024, 256)
# case name -> worker that runs it
CASES = {
    "matryo": "matryo",
    "matryo_warm": "matryo",
    "st": "st",
    "st_b1024": "st",
    "model2vec": "model2vec",
    "tokenizer": "tokenizer",
}
LABELS = {
    "matryo": "matryo (fresh encoder per run: cold word cache)",
    "matryo_warm": "matryo (same encoder again: word cache warm)",
    "st": "sentence-transformers (default batch 32)",
    "st_b1024": "sentence-transformers (batch_size=1024)",
    "model2vec": "model2vec StaticModel (float32)",
    "tokenizer": "tokenizer floor (`encode_batch_fast` + ids)",
}
#: Texts per set whose vectors every contender must agree on before anything is timed (see _check_parity).
PARITY_TEXTS = 500
PARITY_ATOL = 1e-5
MODEL2VEC_MAX_TOKENS = 512
TARGETS = (  # (description, set, numerator case, denominator case, minimum ratio)
    ("queries: matryo >= 3.0x sentence-transformers (default batch)", "queries", "matryo", "st", 3.0),
    ("queries: matryo >= 1.5x model2vec", "queries", "matryo", "model2vec", 1.5),
    ("passages: matryo >= 1.8x sentence-transformers (default batch)", "passages", "matryo", "st", 1.8),
    ("passages: matryo >= 1.2x model2vec", "passages", "matryo", "model2vec", 1.2),
    ("passages: matryo >= 0.8x tokenizer floor", "passages", "matryo", "tokenizer", 0.8),
)


# ------------------------------------------------------------------------------------------ workers
def _load_worker(kind: str, st_folder: str, m2v_folder: str) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Load one library; return ``{(case, dim): fn(texts)}`` and ``{(case, dim): prepare()}`` (run untimed)."""
    if kind == "matryo":
        from matryo import StaticEncoder

        warm = StaticEncoder.from_pretrained(st_folder)
        fresh: dict[int, Any] = {}

        def prepare(d: int) -> None:
            # A new encoder has an empty word cache, like a new process on new texts. Its Matryoshka prefix
            # table is filled lazily, row by row, as tokens are first seen, so the timed runs pay for it.
            fresh[d] = StaticEncoder.from_pretrained(st_folder)
            fresh[d].encode(["warm up"], truncate_dim=d)

        fns: dict[Any, Any] = {}
        preps: dict[Any, Any] = {}
        for d in DIMS:
            fns["matryo", d] = lambda t, d=d: fresh.pop(d).encode(t, truncate_dim=d)
            preps["matryo", d] = lambda d=d: prepare(d)
            fns["matryo_warm", d] = lambda t, d=d: warm.encode(t, truncate_dim=d)
        return fns, preps
    if kind == "st":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(st_folder, device="cpu")
        fns = {}
        for d in DIMS:
            trunc = None if d == 1024 else d
            fns["st", d] = lambda t, trunc=trunc: model.encode(t, normalize_embeddings=True, truncate_dim=trunc)
            fns["st_b1024", d] = lambda t, trunc=trunc: model.encode(
                t, normalize_embeddings=True, truncate_dim=trunc, batch_size=1024
            )
        return fns, {}
    if kind == "model2vec":
        from model2vec import StaticModel

        # model2vec truncates Matryoshka models at load (``dimensionality=``), so each width is its own model.
        models = {d: StaticModel.from_pretrained(m2v_folder, dimensionality=None if d == 1024 else d) for d in DIMS}
        return {("model2vec", d): (lambda t, m=models[d]: m.encode(t, normalize=True)) for d in DIMS}, {}
    if kind == "tokenizer":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(Path(st_folder) / "0_StaticEmbedding" / "tokenizer.json"))
        tok.no_padding()

        def floor(texts: list[str]) -> int:
            return sum(len(e.ids) for e in tok.encode_batch_fast(texts, add_special_tokens=False))

        return {("tokenizer", d): floor for d in DIMS}, {}
    msg = f"unknown worker {kind!r}"
    raise ValueError(msg)


def _worker_main(kind: str, st_folder: str, m2v_folder: str, texts_file: str) -> None:
    """Serve timing requests on stdin/stdout (JSON lines); library chatter goes to stderr."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    start = time.perf_counter()
    fns, preps = _load_worker(kind, st_folder, m2v_folder)
    proto.write(json.dumps({"ready": True, "load_s": time.perf_counter() - start}) + "\n")
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        items = texts[req["set"]][: req["n"]]
        fn = fns[req["case"], req["dim"]]
        if (req["case"], req["dim"]) in preps:
            preps[req["case"], req["dim"]]()
        start = time.perf_counter()
        out = fn(items)
        seconds = time.perf_counter() - start
        if req.get("op") == "vectors":  # the parity check before timing: send the output itself
            import numpy as np

            vecs = np.ascontiguousarray(out, dtype=np.float32)
            reply = {"shape": list(vecs.shape), "data": base64.b64encode(vecs.tobytes()).decode("ascii")}
            proto.write(json.dumps(reply) + "\n")
        else:
            proto.write(json.dumps({"seconds": seconds}) + "\n")


class _Worker:
    def __init__(self, kind: str, st_folder: Path, m2v_folder: Path, texts_file: Path) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(st_folder), str(m2v_folder)]
        self.kind = kind
        self.proc = subprocess.Popen(
            [*cmd, str(texts_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.load_s = float(self._read()["load_s"])

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            msg = f"benchmark worker {self.kind!r} died (exit code {self.proc.wait()}); see its stderr above."
            raise RuntimeError(msg)
        return dict(json.loads(line))

    def time(self, case: str, texts: str, dim: int, n: int) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": "time", "case": case, "set": texts, "dim": dim, "n": n}) + "\n")
        self.proc.stdin.flush()
        return float(self._read()["seconds"])

    def vectors(self, case: str, texts: str, dim: int, n: int) -> Any:  # noqa: ANN401 (numpy is imported late)
        import numpy as np

        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": "vectors", "case": case, "set": texts, "dim": dim, "n": n}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        return np.frombuffer(base64.b64decode(reply["data"]), dtype=np.float32).reshape(reply["shape"])

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ------------------------------------------------------------------------------------------ cold start
_COLD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
kind, st_folder, m2v_folder = sys.argv[1:4]
if kind == "matryo":
    from matryo import StaticEncoder
    t1 = time.perf_counter(); model = StaticEncoder.from_pretrained(st_folder)
    encode = lambda t: model.encode(t)
elif kind == "st":
    from sentence_transformers import SentenceTransformer
    t1 = time.perf_counter(); model = SentenceTransformer(st_folder, device="cpu")
    encode = lambda t: model.encode(t, normalize_embeddings=True)
else:
    from model2vec import StaticModel
    t1 = time.perf_counter(); model = StaticModel.from_pretrained(m2v_folder)
    encode = lambda t: model.encode(t, normalize=True)
t2 = time.perf_counter()
def peak_mb():
    # VmHWM is this process's own high-water mark; ru_maxrss can carry the parent's RSS across fork/exec.
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
rss_load = peak_mb()
encode(["how do I read a gzip file in python"])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_ms": 1000 * (t3 - t2),
                  "rss_load_mb": rss_load, "rss_peak_mb": peak_mb()}))
"""


def _cold_start(kind: str, st_folder: Path, m2v_folder: Path, repeats: int) -> dict[str, float]:
    """Best of ``repeats`` fresh processes (the first run also warms the page cache)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", _COLD, kind, str(st_folder), str(m2v_folder)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["wall_s"] = time.perf_counter() - start
        runs.append(result)
    return min(runs, key=lambda r: r["wall_s"])


# ------------------------------------------------------------------------------------------ driver
def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(quick: bool = False, *, n: int | None = None, rounds: int | None = None) -> str:
    """Run the benchmark and return the markdown report.

    Args:
        quick: A smoke run (2,000 texts per set, 2 rounds, one cold start each) in about a minute.
        n: Texts per set (default 10,000; 2,000 when quick).
        rounds: Timed rounds (default 5; 2 when quick).

    Returns:
        The report as markdown (throughput, ratios, targets, load and cold start).
    """
    n = n or (2_000 if quick else 10_000)
    rounds = rounds or (2 if quick else 5)
    started = time.perf_counter()
    source, load_start = _source_state(), os.getloadavg()[0]
    cache = standin.cache_dir()
    st_folder = standin.build_standin(cache)
    m2v_folder = standin.build_standin(cache, model2vec_layout=True)
    texts = {kind: standin.load_texts(kind, max(n, 10_000), cache=cache)[:n] for kind in SETS}
    texts_file = cache / f"bench-texts-{n}.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    ids, unk = _token_ids(st_folder, texts)
    tokens = {kind: round(statistics.fmean(map(len, rows)), 1) for kind, rows in ids.items()}
    _log(f"stand-in {st_folder}; {n} texts per set; mean tokens {tokens}")

    workers: dict[str, _Worker] = {}
    try:
        for kind in dict.fromkeys(CASES.values()):
            workers[kind] = _Worker(kind, st_folder, m2v_folder, texts_file)
            _log(f"worker {kind} loaded in {workers[kind].load_s:.2f} s")
        parity = _check_parity(workers, texts, ids, unk, min(n, PARITY_TEXTS))
        _log(f"parity: {parity}")
        keys = [(case, kind, dim) for kind in SETS for dim in DIMS for case in CASES]
        warm = min(n, 1_000)
        for case, kind, dim in keys:
            workers[CASES[case]].time(case, kind, dim, warm)
        times: dict[tuple[str, str, int], list[float]] = {key: [] for key in keys}
        for r in range(rounds):
            for kind in SETS:
                for dim in DIMS:
                    cases = list(CASES)
                    cases = cases[r % len(cases) :] + cases[: r % len(cases)]
                    for case in cases:  # the floor too: a ratio to it is only paired if timed in the same slot
                        times[case, kind, dim].append(workers[CASES[case]].time(case, kind, dim, n))
            _log(f"round {r + 1}/{rounds} done ({time.perf_counter() - started:.0f} s)")
    finally:
        for worker in workers.values():
            worker.close()

    cold = {}
    for kind in ("matryo", "st", "model2vec"):
        cold[kind] = _cold_start(kind, st_folder, m2v_folder, repeats=1 if quick else 2)
        _log(f"cold start {kind}: {cold[kind]['wall_s']:.2f} s")
    load = {kind: workers[kind].load_s for kind in ("matryo", "st", "model2vec")}
    context = f"{source}; load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    report = _report(n, rounds, tokens, times, cold, load, time.perf_counter() - started, context, parity)
    _log(f"total {time.perf_counter() - started:.0f} s")
    return report


def _check_parity(
    workers: dict[str, _Worker], texts: dict[str, list[str]], ids: dict[str, list[list[int]]], unk: int, n: int
) -> str:
    """Check, before any timing, that the contenders compute the same vectors; return the report's sentence.

    sentence-transformers (both batch sizes) and matryo's fresh encoder must match matryo to ``PARITY_ATOL`` on
    every text, or the run stops: a ratio between different computations is no speed comparison. model2vec
    differs by design on texts with ``[UNK]`` (it drops that token) or over its 512-token cap; it must match
    on every other text, and the texts it differs on are counted in the report.
    """
    import numpy as np

    worst = 0.0
    differ: dict[str, int] = {}
    for kind in SETS:
        explained = np.array([unk in row or len(row) > MODEL2VEC_MAX_TOKENS for row in ids[kind][:n]])
        for dim in DIMS:
            ref = workers["matryo"].vectors("matryo_warm", kind, dim, n)
            for case in ("matryo", "st", "st_b1024", "model2vec"):
                got = workers[CASES[case]].vectors(case, kind, dim, n)
                diff = np.abs(got - ref).max(axis=1) if got.shape == ref.shape else np.full(n, np.inf)
                bad = diff > PARITY_ATOL
                if case == "model2vec":
                    differ[kind] = int(bad.sum())
                    bad &= ~explained
                else:
                    worst = max(worst, float(diff.max()))
                if bad.any():
                    row = int(np.flatnonzero(bad)[0])
                    msg = (
                        f"{LABELS[case]} and matryo encode {kind} text {row} differently at {dim} dims (max |diff| "
                        f"{diff[row]:.2e}, expected <= {PARITY_ATOL:g}): the timings would compare different "
                        f"computations, so the benchmark stops. Text: {texts[kind][row][:200]!r}"
                    )
                    raise RuntimeError(msg)
    return (
        f"Output parity, checked before timing on the first {n:,} texts of each set at both widths: "
        f"sentence-transformers (both batch sizes) matches matryo to {worst:.1e} (max |diff|); model2vec matches on "
        f"every text without `[UNK]` within its {MODEL2VEC_MAX_TOKENS}-token cap and differs on "
        + " and ".join(f"{differ[kind]} {kind}" for kind in SETS)
        + " (it drops `[UNK]` and cuts at the cap)."
    )


def _token_ids(st_folder: Path, texts: dict[str, list[str]]) -> tuple[dict[str, list[list[int]]], int]:
    """Every text's token ids (no special tokens, no padding) and the id of ``[UNK]``."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(st_folder / "0_StaticEmbedding" / "tokenizer.json"))
    tok.no_padding()
    encoded = {kind: tok.encode_batch_fast(items, add_special_tokens=False) for kind, items in texts.items()}
    return {kind: [e.ids for e in rows] for kind, rows in encoded.items()}, tok.token_to_id("[UNK]")


def _ratios(times: dict[tuple[str, str, int], list[float]], num: str, den: str, kind: str, dim: int) -> list[float]:
    """Per-round speed ratios num/den (= time ratios den/num), paired round by round."""
    return [d / m for m, d in zip(times[num, kind, dim], times[den, kind, dim], strict=True)]


def _ratio(times: dict[tuple[str, str, int], list[float]], num: str, den: str, kind: str, dim: int) -> float:
    """Median over rounds of the speed ratio num/den."""
    return statistics.median(_ratios(times, num, den, kind, dim))


def _spread(times: dict[tuple[str, str, int], list[float]], num: str, den: str, kind: str, dim: int) -> str:
    """``median (min-max)`` of the per-round ratios."""
    ratios = _ratios(times, num, den, kind, dim)
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def _report(
    n: int,
    rounds: int,
    tokens: dict[str, float],
    times: dict[tuple[str, str, int], list[float]],
    cold: dict[str, dict[str, float]],
    load: dict[str, float],
    total_s: float,
    context: str,
    parity: str,
) -> str:
    import numpy as np

    versions = _versions()
    command = "python benchmarks/bench_encode.py" + ("" if n == 10_000 else f" -n {n}")
    command += "" if rounds == 5 else f" --rounds {rounds}"
    cols = [(kind, dim) for kind in SETS for dim in DIMS]
    head = " | ".join(f"{kind} {dim}" for kind, dim in cols)
    lines = [
        "## Encoding speed (texts/s, median of rounds)",
        "",
        f"Stand-in for static-retrieval-mrl-en-v1 (random 30522x1024 float32 table, bert-base-uncased tokenizer, "
        f"no truncation); {n:,} queries (mean {tokens['queries']} tokens) and {n:,} passages (mean "
        f"{tokens['passages']} tokens); {rounds} rounds after a warm-up; {os.cpu_count()} CPUs, shared; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {versions}; {context}. Command: "
        f"`{command}` ({total_s:.0f} s).",
        "",
        f"| contender | {head} |",
        "|---|" + "---:|" * len(cols),
    ]
    for case in CASES:
        cells = [f"{n / statistics.median(times[case, kind, dim]):,.0f}" for kind, dim in cols]
        lines.append(f"| {LABELS[case]} | " + " | ".join(cells) + " |")
    lines += ["", "### matryo / anchor (median of per-round ratios, min-max over rounds)", "", f"| anchor | {head} |"]
    lines.append("|---|" + "---:|" * len(cols))
    for case in CASES:
        if case != "matryo":
            cells = [_spread(times, "matryo", case, kind, dim) for kind, dim in cols]
            lines.append(f"| {LABELS[case]} | " + " | ".join(cells) + " |")

    lines += ["", "### Targets (1024 dims)", "", "| target | measured | result |", "|---|---:|---|"]
    for desc, kind, num, den, minimum in TARGETS:
        value = _ratio(times, num, den, kind, 1024)
        lines.append(f"| {desc} | {_spread(times, num, den, kind, 1024)} | {'PASS' if value >= minimum else 'FAIL'} |")
    for kind in SETS:
        value = statistics.median(
            full / short for full, short in zip(times["matryo", kind, 1024], times["matryo", kind, 256], strict=True)
        )
        lines.append(
            f"| {kind}: matryo truncate_dim=256 faster than 1024 | {value:.2f}x | {'PASS' if value > 1.0 else 'FAIL'} |"
        )

    lines += [
        "",
        "### Load and cold start (fresh process per library, best of runs)",
        "",
        "| library | import s | load s | first encode ms | cold start s (process wall) | peak RSS MB "
        "(after load / after first encode) | load s in benchmark worker |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"matryo": "matryo", "st": "sentence-transformers", "model2vec": "model2vec"}
    for kind, c in cold.items():
        lines.append(
            f"| {names[kind]} | {c['import_s']:.2f} | {c['load_s']:.2f} | {c['first_ms']:.1f} | {c['wall_s']:.2f} | "
            f"{c['rss_load_mb']:.0f} / {c['rss_peak_mb']:.0f} | {load[kind]:.2f} |"
        )
    spread = max(
        float(np.max(v) / np.min(v) - 1) for (case, _, dim), v in times.items() if case == "matryo" and dim == 1024
    )
    lines += [
        "",
        "Notes: every library runs in its own worker process (model2vec's `TOKENIZERS_PARALLELISM=false` side "
        "effect and torch's thread pool cannot reach the others); all outputs are L2-normalised; "
        "sentence-transformers encodes with `truncate_dim=256`, model2vec loads with `dimensionality=256`, "
        "matryo encodes with `truncate_dim=256`; model2vec keeps its defaults (512-token cap, [UNK] dropped, "
        "no threads at 10k texts). Torch keeps its default thread count. "
        f"Largest max/min spread of matryo's rounds: {spread:.0%}.",
        "",
        parity,
        "",
    ]
    return "\n".join(lines)


def _source_state() -> str:
    """The git commit of the matryo source being measured, flagging uncommitted changes to the encoder."""
    root = str(HERE.parent)
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", *_ENCODER_FILES],
            capture_output=True,
            text=True,
        )
    except OSError:
        return "matryo source: unknown"
    if head.returncode != 0:
        return "matryo source: not a git checkout"
    flag = " + uncommitted changes to the encoder" if dirty.stdout.strip() else ""
    return f"matryo source at {head.stdout.strip()}{flag}"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    def one(dist: str) -> str:
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            return f"{dist} missing"

    dists = ("matryo", "sentence-transformers", "torch", "model2vec", "tokenizers", "numpy")
    return ", ".join([f"Python {platform.python_version()}", *map(one, dists)])


def main(argv: list[str] | None = None) -> int:
    """Command line entry: run the benchmark, print the report, write it to ``benchmarks/results``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--worker"]:
        _worker_main(*args[1:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 texts, 2 rounds")
    parser.add_argument("-n", type=int, default=None, help="texts per set (default 10,000)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument("--out", type=Path, default=None, help=f"report file (default {RESULTS} on full runs)")
    ns = parser.parse_args(args)
    report = run(ns.quick, n=ns.n, rounds=ns.rounds)
    print(report)
    out = ns.out or (None if ns.quick or (ns.n or 10_000) < 10_000 else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report, encoding="utf-8")
        _log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    standin.run_main(main, hint="")
