"""Periods a live run judged without its `start_time` history, judged again with it.

A first start with `start_time` loads its history beside the live runs (`runtime.history`);
the periods they judged and committed meanwhile were judged without it (`auto` stores a cold
skip: score 0, no band). When the job is done the loader judges them again, up to the stored
watermark it reads then. A live run still in flight at that moment commits its period after
that read, so the loader also tells the live runtime where its own judging again ended
(`due`), and the runtime's next run has the rest judged again (`judge_again`, through the
loader's hook) before it judges its own periods: under the runtime's own lock, so no run of
it is in flight, and no lock of anyone else held (the loader holding the live runtime's lock
deadlocked against a reload). Usually that is the one period that was in flight.

Detections and points only, as the loader's: nothing notified, no alert state or watermark
changed. One try: a failure is logged and the cold skip stays (a live run never fails or
times out for it again and again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from detectkd.errors import error_line
from detectkd.runtime.offloop import budget

if TYPE_CHECKING:
    from detectkd.runtime.runner import MetricRuntime

log = structlog.get_logger("detectkd.history")
# (metric, start, finish): judge [start, finish) again with the history (the daemon's loader)
JudgeAgain = Callable[[str, int, int], Awaitable[None]]


class ColdPeriods:
    """A live runtime's periods judged before its history was in, still to judge again."""

    def __init__(self) -> None:
        self.start: int | None = None  # the first of them; up to the stored watermark
        self.hook: JudgeAgain | None = None

    def due(self, start: int) -> None:
        """The history is in: the periods from `start` on that live runs committed are to be
        judged again (a flag: the caller never waits for a run)."""
        self.start = start if self.start is None else min(self.start, start)

    async def judge_again(self, rt: MetricRuntime) -> None:
        """On a live run, under its lock, before it judges: the periods due, if any."""
        start, self.start = self.start, None
        if start is None or self.hook is None:
            return
        try:
            watermark = await rt.store.watermark(rt.name)
            if watermark is not None and watermark >= start:
                await self.hook(rt.name, start, rt.grid.next(watermark))
        except Exception as exc:
            log.warning("periods judged cold not judged again", metric=rt.name, error=error_line(exc))


async def judge_range(rt: MetricRuntime, start: int, finish: int, size: int, seconds: float) -> None:
    """[start, finish) judged again and committed in batches of `size` seconds, each within
    `seconds` (as a history batch): nothing notified."""
    for lo, hi in rt.grid.batches(start, finish, size):
        async with budget(seconds):
            await rt.check(lo, hi, notify=False, commit=True)
