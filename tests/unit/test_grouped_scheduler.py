"""`GroupedScheduler`: the scheduler's wake-ups fall on a grid of the loop's clock, so runs
due within the same grain start at one wake-up (issue 28), never before their time."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from detectkd.runtime.scheduler import WAKE_GRAIN_S, GroupedScheduler


async def noop() -> None:
    return None


async def settled() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def on_grid(when: float, grain: float) -> bool:
    k = when / grain
    return abs(k - round(k)) < 1e-6


async def test_the_next_wake_up_is_the_first_grid_point_at_or_after_the_due_job() -> None:
    loop = asyncio.get_running_loop()
    sched = GroupedScheduler(grain=0.25, timezone="UTC")
    sched.start()
    try:
        before = loop.time()
        sched.add_job(noop, "date", run_date=datetime.now(UTC) + timedelta(seconds=30))
        await settled()  # (add_job wakes the scheduler with call_soon_threadsafe)
        when = sched._timeout.when()
        assert on_grid(when, 0.25)
        assert before + 30 - 0.01 <= when < loop.time() + 30 + 0.25
    finally:
        sched.shutdown(wait=False)
    assert GroupedScheduler().grain == WAKE_GRAIN_S == 0.02


async def test_a_grain_of_zero_is_apschedulers_own_timer() -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = GroupedScheduler(grain=0.0, timezone="UTC"), AsyncIOScheduler(timezone="UTC")
    for sched in (ours, theirs):
        sched.start()
    try:
        at = datetime.now(UTC) + timedelta(seconds=30.0123)
        for sched in (ours, theirs):
            sched.add_job(noop, "date", run_date=at)
        await settled()
        assert abs(ours._timeout.when() - theirs._timeout.when()) < 0.005
        assert abs(ours._timeout.when() - (loop.time() + 30.0123)) < 0.05
    finally:
        for sched in (ours, theirs):
            sched.shutdown(wait=False)


async def test_jobs_due_within_one_grain_run_together_and_none_before_its_time() -> None:
    loop = asyncio.get_running_loop()
    grain = 0.2
    sched = GroupedScheduler(grain=grain, timezone="UTC")
    ran: list[tuple[float, float, float]] = []  # (due, wall time at start, loop time at start)
    done = asyncio.Event()

    async def job(due: float) -> None:
        ran.append((due, time.time(), loop.time()))
        if len(ran) == 3:
            done.set()

    # Three jobs 10 ms apart, inside one grain (the first grid point after the last one)
    base = time.time() + 0.05
    start = loop.time() + 0.05
    if math.ceil(start / grain) - math.ceil((start + 0.03) / grain):  # straddles a grid point
        base += grain / 2
    sched.start()
    try:
        for k in range(3):
            due = base + 0.01 * k
            sched.add_job(job, "date", run_date=datetime.fromtimestamp(due, UTC), args=[due])
        await asyncio.wait_for(done.wait(), 10)
    finally:
        sched.shutdown(wait=False)
    assert all(wall >= due - 0.002 for due, wall, _ in ran)  # never early
    starts = [mono for _, _, mono in ran]
    assert max(starts) - min(starts) < 0.01  # one wake-up started all three (due 20 ms apart)
