from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from matryo.train.data import TokenizedTexts, load_pair_set
from matryo.train.relational import cut_texts, pick_passages

TOPICS = [f"topic{i}" for i in range(12)]
FILLER = ["the", "a", "of", "and", "is"]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *FILLER, *TOPICS]


def _texts(lengths: list[int]) -> TokenizedTexts:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return TokenizedTexts(np.arange(offsets[-1], dtype=np.int32), offsets)


def test_cut_texts_keeps_the_leading_tokens():
    texts = _texts([5, 1, 0, 9])
    rows = np.array([3, 0, 2, 1], dtype=np.int64)
    cut = cut_texts(texts, rows, max_tokens=4)
    assert len(cut) == 4
    for i, row in enumerate(rows.tolist()):
        whole = texts.ids[texts.offsets[row] : texts.offsets[row + 1]]
        assert np.array_equal(cut.ids[cut.offsets[i] : cut.offsets[i + 1]], whole[:4])


def test_pick_passages_draws_distinct_long_rows():
    texts = _texts([20, 3, 16, 40, 15, 30])
    rows = np.arange(6, dtype=np.int64)
    picked = pick_passages(texts, rows, 10, np.random.default_rng(0), min_tokens=16)
    assert picked.tolist() == [0, 2, 3, 5]  # every eligible row once, sorted; n is capped by what is there
    two = pick_passages(texts, rows, 2, np.random.default_rng(0), min_tokens=16)
    assert len(two) == 2 and set(two.tolist()) <= {0, 2, 3, 5} and np.all(np.diff(two) > 0)


def test_relational_kl_is_zero_only_when_similarities_agree():
    torch = pytest.importorskip("torch")
    from matryo.train.relational import relational_kl

    gen = torch.Generator().manual_seed(0)
    teacher = torch.nn.functional.normalize(torch.randn(32, 6, generator=gen), dim=1)
    same = 3.0 * teacher  # the scale of a student vector does not matter, its direction does
    assert float(relational_kl(same, teacher, [6], scale=20.0)) == pytest.approx(0.0, abs=1e-5)
    other = torch.randn(32, 6, generator=gen)
    assert float(relational_kl(other, teacher, [6], scale=20.0)) > 0.1
    # a prefix width is scored on the student's prefix only
    padded = torch.cat([teacher, torch.randn(32, 4, generator=gen)], dim=1)
    assert float(relational_kl(padded, teacher, [6], scale=20.0)) == pytest.approx(0.0, abs=1e-5)
    assert float(relational_kl(padded, teacher, [10], scale=20.0)) > 1e-3


def _tokenizer() -> Tokenizer:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def _tiny_bert(folder):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=len(WORDS),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).eval().save_pretrained(str(folder))
    _tokenizer().save(str(folder / "tokenizer.json"))
    return folder


def test_teacher_targets_match_one_passage_at_a_time(tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import AutoModel

    from matryo.train.relational import teacher_targets

    teacher = _tiny_bert(tmp_path / "teacher")
    tok = _tokenizer()
    ids = [tok.encode(t, add_special_tokens=False).ids for t in ["topic1 the topic2", "a", "topic3 of the topic4 and"]]
    offsets = np.zeros(4, dtype=np.int64)
    np.cumsum([len(x) for x in ids], out=offsets[1:])
    texts = TokenizedTexts(np.concatenate(ids).astype(np.int32), offsets)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    got = teacher_targets(teacher, texts, cls_id, sep_id, batch_size=2, verbose=False)
    assert got.vectors.shape == (3, 8) and len(got) == 3
    assert np.allclose(np.linalg.norm(got.vectors, axis=1), 1.0, atol=1e-5)
    model = AutoModel.from_pretrained(str(teacher)).eval()
    for i, seq in enumerate(ids):  # batching by length (with padding) puts every vector back in its row
        with torch.inference_mode():
            hidden = model(input_ids=torch.tensor([[cls_id, *seq, sep_id]])).last_hidden_state[0]
        want = torch.nn.functional.normalize(hidden.mean(dim=0), dim=0).numpy()
        assert np.allclose(got.vectors[i], want, atol=1e-5)


def _write_topic_pairs(folder, n=240, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    with gzip.open(folder / "wikipedia_pairs.jsonl.gz", "wt") as fh:
        for i in range(n):
            k = int(rng.integers(len(TOPICS)))
            words = [*rng.choice(FILLER, 14).tolist(), TOPICS[k], TOPICS[k]]
            fh.write(json.dumps({"query": f"{TOPICS[k]} q{i}", "positive": " ".join(rng.permutation(words))}) + "\n")


def test_training_with_teacher_targets_moves_the_student_toward_the_teacher(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    import matryo.train.loop as loop
    from matryo.train.data import no_duplicate_batches
    from matryo.train.heldout import split_heldout
    from matryo.train.init import random_init
    from matryo.train.loop import TrainConfig, train_contrastive
    from matryo.train.relational import TeacherTargets, relational_kl

    _write_topic_pairs(tmp_path / "data")
    pairs = load_pair_set(tmp_path / "data", _tokenizer(), max_tokens=32)
    train_rows, _ = split_heldout(pairs)
    rows = pick_passages(pairs.positives, train_rows, 64, np.random.default_rng(0))
    texts = cut_texts(pairs.positives, rows, 32)
    # a teacher with an opinion the pairs do not teach: passages whose topic numbers share parity are alike
    parity = np.array([int(WORDS[texts.ids[texts.offsets[i] : texts.offsets[i + 1]].max()][5:]) % 2 for i in range(64)])
    vectors = np.stack([np.eye(2, dtype=np.float32)[p] for p in parity])
    targets = TeacherTargets(texts, vectors)
    init = random_init(len(WORDS), 8, seed=0)

    def kl(table):
        ids, offs = texts.take(np.arange(64))
        student = torch.nn.functional.embedding_bag(
            torch.from_numpy(ids), torch.from_numpy(table), torch.from_numpy(offs), mode="mean"
        )
        return float(relational_kl(student, torch.from_numpy(vectors), [8], scale=20.0))

    batches: dict[bool, list[list[int]]] = {False: [], True: []}

    def train(teacher):
        def recording(*args, **kwargs):
            for batch in no_duplicate_batches(*args, **kwargs):
                batches[teacher is not None].append(batch.tolist())
                yield batch

        monkeypatch.setattr(loop, "no_duplicate_batches", recording)
        cfg = TrainConfig(dims=(8,), batch_size=16, lr=0.1, epochs=3, log_every=0, threads=1, distill_batch=32)
        return train_contrastive(init, pairs, train_rows, cfg, teacher=teacher)

    without, with_teacher = train(None), train(targets)
    assert kl(with_teacher) < 0.7 * kl(without)
    assert batches[True] and batches[True] == batches[False]  # the teacher's draws leave the batches alone


def test_cli_trains_with_a_teacher_from_the_distilled_init(tmp_path):
    pytest.importorskip("torch")
    from matryo.train import main

    teacher = _tiny_bert(tmp_path / "teacher")
    _write_topic_pairs(tmp_path / "data")
    argv = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--teacher", str(teacher)]
    argv += ["--dim", "8", "--matryoshka-dims", "4", "8", "--batch-size", "16", "--epochs", "1", "--threads", "1"]
    argv += ["--teacher-passages", "40", "--distill-batch", "16", "--crop-share", "0"]
    assert main(argv) == 0
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["args"]["teacher_passages"] == 40 and info["args"]["init"] == "distill"
    assert info["steps"] > 0 and np.isfinite(info["final_loss"])
