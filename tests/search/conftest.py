"""Fixtures for the two-stage search tests: a tiny deterministic fake encoder (no model files)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

_WORD_CACHE: dict[tuple[str, int], NDArray[np.float32]] = {}


class FakeEncoder:
    """Bag-of-words encoder: each word maps to a fixed random vector; a text is their normalised mean.

    Counts calls and encoded texts so tests can see when candidates are re-encoded.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0
        self.texts_encoded = 0

    def _word(self, word: str) -> NDArray[np.float32]:
        vector = _WORD_CACHE.get((word, self.dim))
        if vector is None:
            rng = np.random.default_rng(zlib.crc32(word.encode()))
            vector = _WORD_CACHE[word, self.dim] = rng.standard_normal(self.dim).astype(np.float32)
        return vector

    def encode(
        self, texts: str | Sequence[str], *, truncate_dim: int | None = None, normalize: bool = True
    ) -> NDArray[np.float32]:
        single = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else list(texts)
        self.calls += 1
        self.texts_encoded += len(batch)
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        for row, text in enumerate(batch):
            words = text.split()
            if words:
                out[row] = np.mean([self._word(w) for w in words], axis=0)
        out = out[:, : truncate_dim or self.dim]
        if normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
        return out[0] if single else out


@pytest.fixture
def encoder() -> FakeEncoder:
    return FakeEncoder(64)


WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def make_corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Return ``n`` string ids and ``n`` random 3-6 word texts."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 7)))) for _ in range(n)]
    return [f"doc-{i}" for i in range(n)], texts


@pytest.fixture
def corpus() -> tuple[list[str], list[str]]:
    return make_corpus(300)
