"""When each metric runs: on its interval grid, plus `delay`, plus a stable offset.

The offset (a hash of the metric name, up to half the interval and at most
30 s) spreads thousands of metrics over time instead of firing them in the
same millisecond; it never moves a run into the next period.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from detectkd.timegrid import Grid

MAX_SPREAD_S = 30.0


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
