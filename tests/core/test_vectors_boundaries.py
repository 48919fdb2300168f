"""Mutation-audit tests for vectors.py boundaries: V01 (block_rows never 0), V09 (truncate to width + 1 is refused)."""

from __future__ import annotations

import numpy as np
import pytest

from matryo.errors import DimensionMismatchError
from matryo.vectors import SCORE_BLOCK_BYTES, block_rows, truncate


def test_block_rows_is_at_least_one_however_large_the_corpus() -> None:
    # a corpus over SCORE_BLOCK_BYTES / 4 documents (16.8M at the default budget) still scores one query per block
    assert block_rows(SCORE_BLOCK_BYTES // 4 + 1) == 1
    assert block_rows(10, budget=16) == 1
    assert block_rows(10, budget=400) == 10


def test_truncate_one_past_the_width_is_refused_not_returned_at_full_width() -> None:
    vectors = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    with pytest.raises(DimensionMismatchError, match=r"4-dimensional vectors to 5"):
        truncate(vectors, 5)
    assert truncate(vectors, 4).shape == (2, 4)


def test_matryoshka_dims_start_at_the_first_power_of_two_not_below_min_dim() -> None:
    from matryo.vectors import matryoshka_dims

    assert matryoshka_dims(256, min_dim=48) == [64, 128, 256]
    assert matryoshka_dims(256, min_dim=64) == [64, 128, 256]


@pytest.mark.parametrize("min_dim", [0, -8])
def test_matryoshka_dims_refuses_a_non_positive_min_dim_with_a_matryo_error(min_dim: int) -> None:
    from matryo.errors import InvalidArgumentError
    from matryo.vectors import matryoshka_dims

    with pytest.raises(InvalidArgumentError, match="must be positive"):
        matryoshka_dims(256, min_dim=min_dim)
