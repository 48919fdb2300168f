"""The LanceDB store deletes ids in batches of 500: every id must go, also past the first batch (a run that prunes
a source which lost more than 500 passages)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matryo_lancedb")

from tests.conftest import make_tiny_model  # noqa: E402

from matryo import StaticEncoder  # noqa: E402
from matryo.sources import Passage, content_hash  # noqa: E402
from matryo.stores import DbMeta, index_passages, open_store  # noqa: E402


def test_deleting_more_than_one_batch_of_ids_deletes_them_all(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny", dim=64)
    encoder = StaticEncoder.from_pretrained(model)
    meta = DbMeta("lancedb", str(model), encoder.fingerprint, encoder.dim, 32)
    store = open_store(tmp_path / "db", meta)
    texts = [f"cat dog {i}" for i in range(1203)]
    passages = [Passage(f"p{i}", f"p{i}", text, content_hash(text)) for i, text in enumerate(texts)]
    index_passages(store, passages, batch_size=2000)
    assert store.count() == 1203
    store.delete([p.id for p in passages[:1101]])
    assert store.count() == 102
    assert set(store.hashes()) == {p.id for p in passages[1101:]}
