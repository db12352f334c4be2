"""Work that must not hold the event loop: a function run in a worker thread.

A batch of more than `OFF_LOOP_POINTS` points is judged in a thread, whether it notifies or
not (issue 28): a 1,000-series metric's check is 0.1-0.4 s of detectors, its first run after a
start seconds (each series' state rebuilt). What such a judge reads or changes is the
metric's own memory and a copy of its alert states, under the metric's run lock; what it
consults of the daemon's (silences) is replaced, never changed in place. Judges have their own
small pool, so a burst of them never queues the loop's other thread work (`/metrics`, silences).

A run's timeout and a history batch's (`budget`) are paused while a judge waits for a thread
and runs: they guard the source query and the store, not CPU work that queues behind other
metrics' judges and cannot be interrupted once begun (a timed-out judge rolled back is redone,
and an `auto` first run's rebuild with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
OFF_LOOP_POINTS = 100  # a judge (or a window load) of more points than this runs in a worker thread
JUDGE_THREADS = 2  # the GIL lets little more run at once; NumPy's big operations release it


@dataclass
class _Budget:
    timeout: asyncio.Timeout
    task: asyncio.Task[Any] | None
    open: bool = True


# The budgets the current code runs under, innermost last (a live run's timeout, and inside
# it the batch timeout of the periods it judges again with a loaded history).
_budgets: contextvars.ContextVar[tuple[_Budget, ...]] = contextvars.ContextVar("detectkd_budgets", default=())


@contextlib.asynccontextmanager
async def budget(seconds: float) -> AsyncIterator[None]:
    """`asyncio.timeout(seconds)` for the current task, except the time its judges spend in
    `sized` (waiting for a thread and running): a run's timeout (`run_timeout`), a history
    batch's (`history.batch_timeout`). Nested, each is paused."""
    async with asyncio.timeout(seconds) as timeout:
        token = _budgets.set((*_budgets.get(), b := _Budget(timeout, asyncio.current_task())))
        try:
            yield
        finally:
            b.open = False
            _budgets.reset(token)


@contextlib.contextmanager
def _paused() -> Any:
    """The current task's budgets, stopped meanwhile (one already expired is left to fire)."""
    task = asyncio.current_task()
    held = [b for b in _budgets.get() if b.open and b.task is task and not b.timeout.expired()]
    if not held:
        yield
        return
    loop = asyncio.get_running_loop()
    paused, whens = loop.time(), [b.timeout.when() for b in held]
    for b in held:
        b.timeout.reschedule(None)
    try:
        yield
    finally:
        resumed = loop.time()
        for b, when in zip(held, whens, strict=True):
            if b.open and not b.timeout.expired() and when is not None:
                b.timeout.reschedule(resumed + (when - paused))


WINDOW_LOADS = JUDGE_THREADS  # many-series window loads between their read and their load, at once
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def window_load(many: bool) -> AsyncIterator[None]:
    """Around a first run's window read and load (`many`: of a many-series metric): at most
    `WINDOW_LOADS` of them at once in the process, the wait outside the run's `budget`. A read
    window waits for a judge thread to load it, behind other metrics' judges (a first run's
    rebuild of 1,000 series, seconds): without the bound every metric starting together read
    its window and held it meanwhile (issue 28: 21 windows of 120,000 points, 500 MiB, whose
    freed pages stayed in the RSS). The judge threads are the bottleneck either way."""
    if not many:
        yield
        return
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(WINDOW_LOADS)
    with _paused():
        await gate.acquire()
    try:
        yield
    finally:
        gate.release()


@functools.cache
def pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(JUDGE_THREADS, thread_name_prefix="detectkd-judge")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a judge thread. Cancelled (a run's timeout) while `fn` waits for a
    thread, it never runs; once begun, the caller still waits for it to return: what `fn`
    mutates (memory) is rolled back by the caller, never while it is still being changed:
    a second cancel meanwhile (a shutdown after a reload stopped the metric) is absorbed, not
    obeyed, and the first is raised once it returned."""
    work = pool().submit(functools.partial(contextvars.copy_context().run, fn, *args))
    fut = asyncio.wrap_future(work)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        if not work.cancel():  # begun (or done): wait for it
            while not fut.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([fut])
        raise


async def sized(size: int, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a judge thread when `size` (its points) is above `OFF_LOOP_POINTS`,
    else right here (a thread's hop costs more than a small judge); either way outside the
    current task's `budget`."""
    with _paused():
        return await in_thread(fn, *args) if size > OFF_LOOP_POINTS else fn(*args)
