"""Work that must not hold the event loop: a function run in a worker thread.

A batch of more than `OFF_LOOP_POINTS` points is judged in a thread, whether it notifies or
not (issue 28): a 1,000-series metric's check is 0.1-0.4 s of detectors, its first run after a
start seconds (each series' state rebuilt). What such a judge reads or changes is the
metric's own memory and a copy of its alert states, under the metric's run lock; what it
consults of the daemon's (silences) is replaced, never changed in place. Judges have their own
small pool, so a burst of them never queues the loop's other thread work (`/metrics`, silences).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
OFF_LOOP_POINTS = 100  # a judge (or a window load) of more points than this runs in a worker thread
JUDGE_THREADS = 2  # the GIL lets little more run at once; NumPy's big operations release it


@functools.cache
def pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(JUDGE_THREADS, thread_name_prefix="detectkd-judge")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a judge thread. Cancelled (a run's timeout) while `fn` waits for a
    thread, it never runs; once begun, the caller still waits for it to return: what `fn`
    mutates (memory) is rolled back by the caller, never while it is still being changed."""
    work = pool().submit(functools.partial(contextvars.copy_context().run, fn, *args))
    fut = asyncio.wrap_future(work)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        if not work.cancel():  # begun (or done): wait for it
            await asyncio.wait([fut])
        raise


async def sized(size: int, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a judge thread when `size` (its points) is above `OFF_LOOP_POINTS`,
    else right here (a thread's hop costs more than a small judge)."""
    return await in_thread(fn, *args) if size > OFF_LOOP_POINTS else fn(*args)
