"""An add interrupted inside the publishing step (KeyboardInterrupt, MemoryError) must leave the index as it was."""

from __future__ import annotations

import pytest

from matryo.index import NumpyIndex


class _ExtendInterrupted(list):
    """An ids list whose next extend is interrupted (Ctrl-C after the row map was updated)."""

    armed = False

    def extend(self, items):  # type: ignore[override]
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        super().extend(items)


def test_an_add_interrupted_while_publishing_leaves_no_trace(encoder, corpus) -> None:
    ids, texts = corpus
    idx: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16)
    idx.add(ids[:10], texts[:10])
    tracked = _ExtendInterrupted(idx._ids)  # noqa: SLF001
    idx._ids = tracked  # noqa: SLF001
    tracked.armed = True
    with pytest.raises(KeyboardInterrupt):
        idx.add(ids[10:20], texts[10:20])
    assert len(idx) == 10 and idx.ids == ids[:10]
    # the user carries on: the same documents can be added again and are found
    idx.add(ids[10:20], texts[10:20])
    assert len(idx) == 20
    found, vectors = idx.fetch_full_vectors(ids[10:20])
    assert found == ids[10:20] and vectors.shape == (10, encoder.dim)
    assert idx.search(texts[15], k=1).ids == [ids[15]]
