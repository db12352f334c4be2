"""Work that must not hold the event loop: a function run in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
OFF_LOOP_POINTS = 5_000  # a batch that notifies nothing (history) judges this many points in a thread


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread. Cancelled, it still waits for `fn` to return: what `fn`
    mutates (memory) is rolled back by the caller, never while it is still being changed."""
    fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        await asyncio.wait([fut])
        raise
