"""Building out of parts that hold something (a collector's connection or pool), all or
nothing: when a later part raises, what was built is closed, not left open.

Constructors are synchronous and closing is not: `close_soon` closes in the background on
the running loop (the daemon's), or to the end at once when the thread has none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

import structlog

log = structlog.get_logger("detectkd")

Close = Callable[[], Awaitable[None]]

_closing: set[asyncio.Task[None]] = set()  # closes in flight (the loop keeps weak references)


def close_soon(close: Close, metric: str) -> None:
    """Run `close` from synchronous code: in the background on this thread's loop, or to the
    end at once when the thread has none."""

    async def closing() -> None:
        try:
            await close()
        except Exception as exc:
            log.warning("a part not assembled did not close", metric=metric, error=str(exc))

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(closing())
        return
    task = loop.create_task(closing())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


@contextlib.contextmanager
def all_or_nothing(metric: str) -> Iterator[list[Close]]:
    """A constructor's body: each part that holds something adds its `close` to the list
    once built; when anything in the body raises, those are closed (`close_soon`), the last
    built first, and the exception goes on."""
    built: list[Close] = []
    try:
        yield built
    except BaseException:
        for close in reversed(built):
            close_soon(close, metric)
        raise
