"""Shared helpers for the langchain-matryo tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from matryo import DEFAULT_MODEL_PATH

HAS_DEFAULT_MODEL = any((DEFAULT_MODEL_PATH / name).exists() for name in ("modules.json", "config.json"))
needs_default_model = pytest.mark.skipif(
    not HAS_DEFAULT_MODEL, reason="the embedded default model (src/matryo/default_model/) is not there yet"
)


async def ticks_during(work: Callable[[], Awaitable[object]]) -> tuple[int, float]:
    """Count event-loop ticks (1 ms sleeps) while ``work`` runs; return (ticks, seconds)."""
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.005)  # the ticker is running
    ticks = 0
    start = time.perf_counter()
    await work()
    seconds = time.perf_counter() - start
    counted = ticks
    running = False
    await task
    return counted, seconds
