"""A backward step of the wall clock must not stop the checks.

APScheduler decides when a job runs by the wall clock: after the clock steps back by S
seconds (NTP correcting a clock that ran ahead, a restored VM, an operator), every job's
next run time lies S seconds further away than its interval, and every check stops for S.
The daemon's health loop (which waits on the monotonic clock) asks `ClockWatch` each tick
whether the wall clock went back against the monotonic one; when it did, every metric's job
is put back on its grid from the new time (`reanchor`) and the step is logged once.
A forward step needs nothing: the missed runs are coalesced into one, which catches up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from detectkd.runtime.scheduler import GridTrigger

log = structlog.get_logger("detectkd")

TOLERANCE_S = 1.0  # smaller moves are slewing and scheduling jitter, not a step


class ClockWatch:
    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        tolerance_s: float = TOLERANCE_S,
    ) -> None:
        self._wall, self._mono, self.tolerance_s = wall, mono, tolerance_s
        self._offset = wall() - mono()

    def now(self) -> float:
        return self._wall()

    def stepped_back(self) -> float:
        """Seconds the wall clock went back since the last call; 0.0 when it did not."""
        offset = self._wall() - self._mono()
        step, self._offset = self._offset - offset, offset
        return step if step > self.tolerance_s else 0.0


def reanchor(scheduler: Any, now: float) -> int:
    """Move every grid job's next run to its next time on the grid from `now` (an
    APScheduler `BaseScheduler`). Returns how many jobs moved."""
    at = datetime.fromtimestamp(now, UTC)
    moved = 0
    for job in scheduler.get_jobs():
        if isinstance(job.trigger, GridTrigger) and job.next_run_time is not None:
            nxt = job.trigger.get_next_fire_time(None, at)
            if nxt is not None and nxt < job.next_run_time:
                job.modify(next_run_time=nxt)
                moved += 1
    return moved


class ClockGuard:
    """What the health loop calls each tick: a step back is logged once and re-anchors."""

    def __init__(self, scheduler: Any, watch: ClockWatch | None = None) -> None:
        self.scheduler, self.watch = scheduler, watch or ClockWatch()

    def check(self) -> float:
        """The step back noticed now (0.0: none)."""
        if step := self.watch.stepped_back():
            moved = reanchor(self.scheduler, self.watch.now())
            log.warning("wall clock stepped back", seconds=round(step, 1), jobs_rescheduled=moved)
        return step
