"""index_passages compacts the store (store.optimize()) after every run that changed rows: one that only removed
passages too, otherwise re-indexing a source that lost documents never frees the old versions' files."""

from __future__ import annotations

from matryo.sources import Passage, content_hash
from matryo.stores import Hit, index_passages


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, Passage] = {}
        self.optimized = 0

    def hashes(self) -> dict[str, tuple[str, str]]:
        return {pid: (p.hash, p.doc) for pid, p in self.rows.items()}

    def upsert(self, passages: list[Passage]) -> None:
        self.rows.update((p.id, p) for p in passages)

    def repair_duplicates(self) -> int:
        return 0

    def delete(self, ids: list[str]) -> None:
        for pid in ids:
            del self.rows[pid]

    def count(self) -> int:
        return len(self.rows)

    def optimize(self) -> None:
        self.optimized += 1

    def search(self, query: str, k: int, rescore_multiplier: float) -> list[Hit]:
        raise NotImplementedError


def _passage(doc: str, text: str) -> Passage:
    return Passage(doc, doc, text, content_hash(text))


def test_a_run_that_only_removes_passages_compacts_the_store() -> None:
    store = MemoryStore()
    first = [_passage("a", "cat dog"), _passage("b", "bird fish")]
    stats = index_passages(store, first)
    assert stats.added == 2 and store.optimized == 1
    stats = index_passages(store, first)  # nothing changed: nothing to compact
    assert stats.added == stats.removed == 0 and store.optimized == 1
    stats = index_passages(store, first[:1], prune=lambda: True)  # b left the source
    assert stats.added == 0 and stats.removed == 1 and set(store.rows) == {"a"}
    assert store.optimized == 2
