"""What the history loader asks of a source: at most `history.source_qps` queries a second
per source (issue 28), so a first start of thousands of metrics never floods the user's
database. Live runs are not paced: they ask one period per interval each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

from detectkd.collectors.base import Collector, ManyWindows, Row, Window


class Pace:
    """At most `rate` queries a second, with a burst of one second's worth. Waiters are
    served in the order they asked (each reserves the next free instant)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.step = 1.0 / rate
        self.burst = 1.0  # seconds of unused rate that may be spent at once
        self.clock, self.sleep = clock, sleep
        self._next = -float("inf")

    async def take(self, n: int = 1) -> None:
        """Wait for `n` queries' instants (consecutive ones), until the last of them: each
        query then runs no earlier than its own instant, as n takes of one would."""
        now = self.clock()
        at = max(now - self.burst + self.step, self._next) + (n - 1) * self.step
        self._next = at + self.step
        if at > now:
            await self.sleep(at - now)


class Paced:
    """A collector whose queries wait for their source's `Pace` (closing it closes the inner)."""

    def __init__(self, inner: Collector, pace: Pace) -> None:
        self.inner = inner
        self.pace = pace

    async def collect(self, window: Window) -> list[Row]:
        await self.pace.take()
        return await self.inner.collect(window)

    async def close(self) -> None:
        await self.inner.close()


class PacedMany(Paced):
    """A `Paced` collector whose inner answers several windows in one call (`ManyWindows`):
    so does it, paced as that many queries. Only then: a collector that can not is asked
    period by period, each query its own (`runtime.collect` chunks what can be chunked)."""

    async def collect_many(self, windows: Sequence[Window]) -> list[list[Row]]:
        await self.pace.take(len(windows))
        return await _many(self.inner, windows)


class Halting:
    """A collector that asks nothing once `halted()` (its loader was told to stop): raises
    `CancelledError` instead. A library below may lose a cancellation (Python 3.11's
    `wait_for` returns the result of a query that finished as its task was cancelled, cpython
    gh-86296); the loader's task then ends at its next query, not at the end of its job."""

    def __init__(self, inner: Collector, halted: Callable[[], bool]) -> None:
        self.inner = inner
        self.halted = halted

    async def collect(self, window: Window) -> list[Row]:
        if self.halted():
            raise asyncio.CancelledError
        return await self.inner.collect(window)

    async def close(self) -> None:
        await self.inner.close()


class HaltingMany(Halting):
    """A `Halting` collector whose inner answers several windows in one call: so does it
    (hiding that made every warm-up one hop per period again, issue 28), halted before each
    call (the SQLite source's hop starts no further query once its caller gave up)."""

    async def collect_many(self, windows: Sequence[Window]) -> list[list[Row]]:
        if self.halted():
            raise asyncio.CancelledError
        return await _many(self.inner, windows)


def paced(inner: Collector, pace: Pace) -> Paced:
    """`inner` paced; answering many windows in one call when it does."""
    return PacedMany(inner, pace) if hasattr(inner, "collect_many") else Paced(inner, pace)


def halting(inner: Collector, halted: Callable[[], bool]) -> Halting:
    """`inner`, asking nothing once `halted()`; answering many windows in one call when it does."""
    return HaltingMany(inner, halted) if hasattr(inner, "collect_many") else Halting(inner, halted)


async def _many(inner: Collector, windows: Sequence[Window]) -> list[list[Row]]:
    rows: list[list[Row]] = await cast(ManyWindows, inner).collect_many(windows)
    return rows


class Paces:
    """One `Pace` per source key (`MetricSlot.source`); 0 or less: not paced."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._paces: dict[str, Pace] = {}

    def wrap(self, source: str, collector: Collector) -> Collector:
        if self.rate <= 0:
            return collector
        pace = self._paces.get(source)
        if pace is None:
            pace = self._paces[source] = Pace(self.rate)
        return paced(collector, pace)
