"""The per-process encoder cache holds at most _MAX_ENTRIES encoders (oldest evicted first)."""

from __future__ import annotations

from tests.conftest import make_tiny_model

from matryo import cache
from matryo.cache import clear_encoder_cache, load_encoder


def test_the_encoder_cache_is_bounded_and_evicts_the_oldest(tmp_path) -> None:
    clear_encoder_cache()
    folder = make_tiny_model(tmp_path / "m", dim=8)
    try:
        first = load_encoder(folder, max_length=1)
        for n in range(2, cache._MAX_ENTRIES + 2):  # _MAX_ENTRIES more configs of the same folder
            load_encoder(folder, max_length=n)
        assert len(cache._CACHE) == cache._MAX_ENTRIES
        assert load_encoder(folder, max_length=1) is not first  # the oldest entry was evicted and loaded again
        assert load_encoder(folder, max_length=cache._MAX_ENTRIES + 1) is load_encoder(
            folder, max_length=cache._MAX_ENTRIES + 1
        )
    finally:
        clear_encoder_cache()
