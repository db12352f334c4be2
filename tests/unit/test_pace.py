"""`history.source_qps`: what the history loader asks of one source is paced (issue 28)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from detectkd.collectors.base import Row, Window
from detectkd.runtime.pace import HaltingMany, Pace, Paced, PacedMany, Paces, halting, paced


class Clock:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_a_pace_allows_one_second_of_burst_then_its_rate() -> None:
    clock = Clock()
    pace = Pace(100.0, clock, clock.sleep)
    for _ in range(100):  # a second's worth at once
        await pace.take()
    assert clock.now == 1000.0
    for _ in range(300):  # then 100 a second
        await pace.take()
    assert abs(clock.now - 1003.0) < 1e-6


async def test_concurrent_waiters_share_the_rate_in_the_order_they_asked() -> None:
    clock = Clock()
    pace = Pace(10.0, clock, clock.sleep)
    await asyncio.gather(*(pace.take() for _ in range(40)))
    assert abs(clock.now - 1003.0) < 1e-6  # 10 at once, then one every 0.1 s


class Source:
    def __init__(self) -> None:
        self.asked = 0
        self.closed = False

    async def collect(self, window: Window) -> list[Row]:
        self.asked += 1
        return []

    async def close(self) -> None:
        self.closed = True


async def test_collectors_of_one_source_share_its_pace_and_zero_means_unpaced() -> None:
    paces = Paces(5.0)
    a, b, other = paces.wrap("db1", Source()), paces.wrap("db1", Source()), paces.wrap("db2", Source())
    assert isinstance(a, Paced) and isinstance(b, Paced) and isinstance(other, Paced)
    assert a.pace is b.pace and a.pace is not other.pace
    await a.close()
    assert isinstance(a.inner, Source) and a.inner.closed
    plain = Source()
    assert Paces(0).wrap("db1", plain) is plain


async def test_several_queries_taken_at_once_wait_for_the_last_of_their_instants() -> None:
    clock = Clock()
    pace = Pace(10.0, clock, clock.sleep)
    await pace.take(10)  # the burst
    assert clock.now == 1000.0
    await pace.take(5)  # instants 1000.1 .. 1000.5: each query runs no earlier than its own
    assert abs(clock.now - 1000.5) < 1e-6
    await pace.take()
    assert abs(clock.now - 1000.6) < 1e-6


class ManySource(Source):
    """A source answering several windows in one call (`ManyWindows`: the SQLite one)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def collect_many(self, windows: Sequence[Window]) -> list[list[Row]]:
        self.calls += 1
        return [await self.collect(w) for w in windows]


async def test_a_paced_chunk_is_paced_as_that_many_queries_and_asked_in_one_call() -> None:
    clock = Clock()
    inner = ManySource()
    chunked = paced(inner, Pace(10.0, clock, clock.sleep))
    assert isinstance(chunked, PacedMany)
    interval = timedelta(minutes=1)
    windows = [Window(60 * k, 60 * k + 60, interval, ZoneInfo("UTC")) for k in range(30)]
    assert await chunked.collect_many(windows) == [[]] * 30
    assert (inner.calls, inner.asked) == (1, 30)
    assert abs(clock.now - 1002.0) < 1e-6  # 10 at once, then 20 at 10 a second


async def test_wrappers_answer_many_windows_in_one_call_only_when_their_collector_does() -> None:
    """`runtime.collect` chunks a collector with `collect_many`: a wrapper that hid it made a
    warm-up one hop per period; one that added it to a collector without would ask a chunk's
    queries one after the other past a lost cancellation (`Halting`)."""
    pace, stop = Pace(10.0), lambda: False
    for wrapped in (
        paced(ManySource(), pace),
        halting(ManySource(), stop),
        halting(paced(ManySource(), pace), stop),
    ):
        assert hasattr(wrapped, "collect_many")
    for wrapped in (paced(Source(), pace), halting(Source(), stop), halting(paced(Source(), pace), stop)):
        assert not hasattr(wrapped, "collect_many")
    halted = halting(ManySource(), lambda: True)
    assert isinstance(halted, HaltingMany)
    with pytest.raises(asyncio.CancelledError):
        await halted.collect_many([Window(0, 60, timedelta(minutes=1), ZoneInfo("UTC"))])
    assert isinstance(halted.inner, ManySource) and halted.inner.calls == 0
