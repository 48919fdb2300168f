"""NumpyIndex tie contracts: ties keep insertion order, in the first pass and after rescoring."""

from __future__ import annotations

import numpy as np

from matryo.index import NumpyIndex
from matryo.vectors import truncate


class _Width:
    """An encoder stand-in for tests that add and search by vectors only."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def encode(self, texts: object, *, truncate_dim: int | None = None, normalize: bool = True) -> np.ndarray:
        raise AssertionError("this test searches by vectors")


def test_first_pass_ties_across_the_cut_keep_insertion_order() -> None:
    # 60 identical documents: the n best are a tie that crosses the cut; the first n added must be returned,
    # not whichever members of the tie np.argpartition happens to leave in front.
    rng = np.random.default_rng(3)
    doc = rng.standard_normal(16).astype(np.float32)
    other = -np.abs(rng.standard_normal((20, 16))).astype(np.float32) * np.sign(doc)
    vectors = np.vstack([other[:10], np.tile(doc, (60, 1)), other[10:]])
    ids = [f"d{i}" for i in range(len(vectors))]
    idx: NumpyIndex[str] = NumpyIndex(_Width(16), truncate_dim=8)
    idx.add(ids, vectors=vectors)
    query = truncate(doc[None, :], 8)
    for n in (1, 3, 7, 25):
        assert idx.first_pass(query, n) == [ids[10 : 10 + n]], n
        assert idx.search_vectors(doc[None, :], k=n, mode="first_pass")[0].ids == ids[10 : 10 + n], n


def test_two_stage_breaks_full_dimension_ties_by_insertion_even_when_the_first_pass_orders_them_otherwise() -> None:
    # a and b tie at full width (cosine 1/sqrt(2) with the query) but b is far ahead in the first pass.
    # NumpyIndex.search documents insertion order for full-dimension ties; a shortlist smaller than the index
    # (the usual case) must give what exact mode gives.
    dim = 8
    q = np.zeros(dim, dtype=np.float32)
    q[[0, 2]] = 1.0
    a = np.zeros(dim, dtype=np.float32)
    a[2] = 1.0  # prefix (0, 0): first-pass score 0
    b = np.zeros(dim, dtype=np.float32)
    b[0] = 1.0  # prefix (1, 0): first-pass score 1
    filler = np.zeros((10, dim), dtype=np.float32)
    filler[:, 0] = -1.0  # first-pass score -1, full cosine -1/sqrt(2)
    filler[:, 3 + np.arange(10) % 5] = 0.5
    idx: NumpyIndex[str] = NumpyIndex(_Width(dim), truncate_dim=2)
    idx.add(["a", "b", *(f"f{i}" for i in range(10))], vectors=np.vstack([a, b, filler]))
    exact = idx.search_vectors(q[None, :], k=2, mode="exact")[0]
    assert exact.ids == ["a", "b"]
    for multiplier in (1, 2, 3):  # shortlists of 2, 4, 6 rows out of 12
        hits = idx.search_vectors(q[None, :], k=2, rescore_multiplier=multiplier)[0]
        assert hits.ids == ["a", "b"], multiplier
        np.testing.assert_allclose(hits.scores, exact.scores, rtol=1e-6)
