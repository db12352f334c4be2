"""When each metric runs: on its interval grid, plus `delay`, plus a stable offset.

The offset (a hash of the metric name, up to half the interval and at most
30 s) spreads thousands of metrics over time instead of firing them in the
same millisecond; it never moves a run into the next period.

The scheduler wakes the event loop on a `WAKE_GRAIN_S` grid (`GroupedScheduler`): the runs
due within the same 20 ms start together, up to 20 ms after their time, instead of one
wake-up each (issue 28). A run's periods come from its scheduled time, so nothing it judges
changes; what changes is the CPU: 10,000 one-minute metrics are a run every 3 ms, and a run
that starts after the loop slept cost up to twice the CPU of one that starts right after
another on the benchmark machine (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from detectkd.timegrid import Grid

MAX_SPREAD_S = 30.0
WAKE_GRAIN_S = 0.02  # the scheduler's wake-ups fall on this grid of the loop's clock


def stable_offset(name: str, interval: timedelta) -> float:
    spread = min(interval.total_seconds() / 2, MAX_SPREAD_S)
    return (zlib.crc32(name.encode()) % 1_000_000) / 1_000_000 * spread


class GridTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at period_end + delay + offset for every period on `grid`."""

    def __init__(self, grid: Grid, delay: timedelta, offset: float) -> None:
        self.grid = grid
        self.lead = delay.total_seconds() + offset

    def fire_at(self, finish: int) -> float:
        return finish + self.lead

    def latest_at_or_before(self, ts: float) -> float:
        """The scheduled time of the newest run due at `ts` (what a run derives its period from)."""
        finish = self.grid.floor(ts - self.lead)
        return self.fire_at(finish)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # APScheduler hands back the previous fire time rounded to microseconds;
        # step 1 ms past it so float rounding can never return the same time
        # again (which would make APScheduler loop forever).
        after = previous_fire_time.timestamp() + 0.001 if previous_fire_time is not None else now.timestamp()
        finish = self.grid.floor(after - self.lead)
        fire = self.fire_at(finish)
        while fire < after - 1e-6:
            finish = self.grid.next(finish)
            fire = self.fire_at(finish)
        return datetime.fromtimestamp(fire, UTC)

    def __getstate__(
        self,
    ) -> dict[str, Any]:  # APScheduler may pickle triggers; ours stay in memory
        return {"grid": self.grid, "lead": self.lead}

    def __str__(self) -> str:
        return f"grid[{self.grid.step}s + {self.lead:.3f}s]"


class GroupedScheduler(AsyncIOScheduler):  # type: ignore[misc]
    """APScheduler's asyncio scheduler, its wake-ups rounded up to the next multiple of
    `grain` seconds of the loop's clock: every job due by then runs at that wake-up (each
    still derives its periods from its own scheduled time). `grain` 0: APScheduler's own."""

    def __init__(self, grain: float = WAKE_GRAIN_S, **options: Any) -> None:
        super().__init__(**options)
        self.grain = grain

    def _start_timer(self, wait_seconds: float | None) -> None:
        if not self.grain or wait_seconds is None:
            super()._start_timer(wait_seconds)
            return
        self._stop_timer()
        loop = self._eventloop
        at = math.ceil((loop.time() + wait_seconds) / self.grain) * self.grain
        self._timeout = loop.call_at(at, self.wakeup)
