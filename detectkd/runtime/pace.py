"""What the history loader asks of a source: at most `history.source_qps` queries a second
per source (issue 28), so a first start of thousands of metrics never floods the user's
database. Live runs are not paced: they ask one period per interval each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from detectkd.collectors.base import Collector, Row, Window


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

    async def collect_many(self, windows: Sequence[Window]) -> list[list[Row]]:
        """Several windows, one query each, paced as that many queries (`ManyWindows`)."""
        await self.pace.take(len(windows))
        many = getattr(self.inner, "collect_many", None)
        if many is not None:
            rows: list[list[Row]] = await many(windows)
            return rows
        return [await self.inner.collect(w) for w in windows]

    async def close(self) -> None:
        await self.inner.close()


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
        return Paced(collector, pace)
