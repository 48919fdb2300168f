"""Training sets torch's thread count for its process (``--threads``); each test gets the count it started with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _torch_threads_restored() -> Iterator[None]:
    try:
        import torch
    except ImportError:  # the tests that need torch skip themselves
        yield
        return
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
