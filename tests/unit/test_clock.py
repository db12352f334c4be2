"""A backward step of the wall clock: noticed once against the monotonic clock, and every
metric's job put back on its grid instead of waiting for the step's length (issue 26)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from detectkd.runtime.clock import ClockWatch, reanchor
from detectkd.runtime.scheduler import GridTrigger
from detectkd.timegrid import Grid


class FakeClock:
    def __init__(self) -> None:
        self.wall, self.mono = 1_800_000_000.0, 500.0

    def tick(self, seconds: float, wall_step: float = 0.0) -> None:
        self.mono += seconds
        self.wall += seconds + wall_step


def test_only_a_backward_step_is_reported_and_only_once() -> None:
    c = FakeClock()
    watch = ClockWatch(lambda: c.wall, lambda: c.mono)
    c.tick(5)
    assert watch.stepped_back() == 0.0
    c.tick(5, wall_step=0.3)  # slewing, jitter
    assert watch.stepped_back() == 0.0
    c.tick(5, wall_step=600)  # forward: APScheduler coalesces the missed runs itself
    assert watch.stepped_back() == 0.0
    c.tick(5, wall_step=-3600)
    assert watch.stepped_back() == 3600.0
    c.tick(5)
    assert watch.stepped_back() == 0.0  # the same step is not reported again


async def noop() -> None:
    return None


async def test_reanchor_brings_every_grid_job_back_from_a_clock_that_went_back() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start(paused=True)
    try:
        now = 1_800_000_000.0
        at = datetime.fromtimestamp(now, UTC)
        trigger = GridTrigger(Grid(timedelta(seconds=60)), timedelta(seconds=5), 0.0)
        # Scheduled by the clock before it stepped back an hour: an hour too far away.
        late = scheduler.add_job(noop, trigger, id="late", next_run_time=at + timedelta(seconds=3605))
        fine = scheduler.add_job(noop, trigger, id="fine", next_run_time=at + timedelta(seconds=5))
        daily = scheduler.add_job(
            noop, "interval", hours=24, id="@retention", next_run_time=at + timedelta(hours=2)
        )
        assert reanchor(scheduler, now) == 1
        assert scheduler.get_job("late").next_run_time == at + timedelta(seconds=5)  # next grid time
        assert scheduler.get_job("fine").next_run_time == fine.next_run_time
        assert scheduler.get_job("@retention").next_run_time == daily.next_run_time
        assert late.id == "late"
    finally:
        scheduler.shutdown(wait=False)
