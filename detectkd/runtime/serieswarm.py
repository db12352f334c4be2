"""A series that first appears in a many-series metric after the metric's first start: its
history loaded from the source once, so it judges on the run after the load instead of
counting its own points for hours (issue 28).

A live run that commits a series with no stored history (no window in memory after the
store was read, no alert state) asks for it here (`SeriesLoads.request`): the history its
detectors judge from (`judge_span`, at most `schedule.warmup`) before the first period the
run judged of it. The live runtime asks at most one load per `freshseries.spacing` of its
periods, and `freshseries.BUDGET` per window of periods a load reads (`runtime.freshseries`).
Per metric one load at a time: series asked for meanwhile wait and go together in the next
one (one query for all of them). A load is one query for the whole range, paced with the
history loader's (`history.source_qps`, its collector wrapped by the loader), at most
`history.warmup_concurrency` loads at once beside the warm-ups, within `history.batch_timeout`.
Of its answer only the new series' points before their first judged period are stored: their
later periods are the live runs' (rows are upserts anyway).
The live runtime then reads those series' windows from the store at its next run
(`runtime.freshseries`), which judges them with their history.

A query that cannot answer a range in one query (`multi_period: false`, or a one-period
query whose range answer the probe did not confirm, `runtime.collect`) is not asked period
by period: the series fills by its own runs, as before. So is a series whose load failed.
A load that got no range answer (that, more rows than `collector.max_rows`, or a query that
failed: an error, a timeout, a refusal) is the runtime's last (`late_series` says why, logged
once), until a reload or restart. A failure is not retried later, transient or not: the load
reads the whole window of every series (up to `max_rows` rows), a source that failed or
timed out on it is not asked it again at each new series; the series fill by their own runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import structlog

from detectkd.collectors.base import TooManyRows
from detectkd.errors import error_line
from detectkd.runtime.coldstart import warmup_seconds
from detectkd.runtime.collect import collect_range
from detectkd.runtime.offloop import budget
from detectkd.runtime.runner import MetricRuntime
from detectkd.runtime.slot import MetricSlot, Wrap
from detectkd.storage.base import RunRecord

log = structlog.get_logger("detectkd.history")

Build = Callable[[str, Wrap], MetricSlot | None]


class SeriesLoads:
    def __init__(
        self, build: Build, wrap: Callable[[str], Wrap], sem: asyncio.Semaphore, timeout: Callable[[], float]
    ) -> None:
        """`build(metric, wrap)`: a loading slot of the metric's own (None: not running);
        `wrap(metric)`: its collector paced (and halted with the loader's tasks); `sem`: the
        warm-ups' concurrency; `timeout()`: seconds a load may take on the source and the store."""
        self.build = build
        self.wrap = wrap
        self.sem = sem
        self.timeout = timeout
        self._pending: dict[str, dict[str, int]] = {}  # metric -> series -> first period judged live
        self._live: dict[str, MetricRuntime] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.loads = 0  # loads tried (tests)

    def request(self, live: MetricRuntime, series: Mapping[str, int]) -> None:
        """Load `series` (each: the first period the live run judged of it) for `live`."""
        pending = self._pending.setdefault(live.name, {})
        for s, until in series.items():
            pending[s] = min(until, pending.get(s, until))
        self._live[live.name] = live
        if live.name not in self.tasks:
            self.tasks[live.name] = asyncio.create_task(
                self._work(live.name), name=f"series-history:{live.name}"
            )

    async def settled(self) -> None:
        """Wait until no load is running or waiting."""
        while self.tasks:
            await asyncio.wait(list(self.tasks.values()))

    def halt(self, metrics: list[str]) -> list[asyncio.Task[None]]:
        """Cancel the metrics' loads (their runtimes' series fill by their own runs)."""
        tasks = [t for m in metrics if (t := self.tasks.pop(m, None)) is not None]
        for m in metrics:
            self._pending.pop(m, None)
            live = self._live.pop(m, None)
            if live is not None:
                live.fresh.loaded(set(live.fresh.loading), ok=False)
        for t in tasks:
            t.cancel()
        return tasks

    async def _work(self, metric: str) -> None:
        try:
            while pending := self._pending.pop(metric, None):
                live = self._live[metric]
                ok = False
                if not live.fresh.worth:  # an earlier load was the last (`stop`): no query
                    live.fresh.loaded(set(pending), ok)
                    continue
                try:
                    async with self.sem:
                        ok = await self._load(metric, live, pending)
                except Exception as exc:  # the series fill by their own runs; no more loads
                    live.fresh.stop(failed(exc))
                    log.warning(
                        "series history not loaded; no more loads until a reload or restart",
                        metric=metric,
                        series=len(pending),
                        error=error_line(exc),
                    )
                live.fresh.loaded(set(pending), ok)
        finally:
            if self.tasks.get(metric) is asyncio.current_task():
                del self.tasks[metric]
                self._live.pop(metric, None)

    async def _load(self, metric: str, live: MetricRuntime, pending: dict[str, int]) -> bool:
        """One query for the pending series' history; their points stored. False: the query
        cannot answer a range at once (nothing stored)."""
        slot = self.build(metric, self.wrap(metric))
        if slot is None:
            return False
        rt = slot.runtime
        try:
            rt.many.known = live.many.known  # (probed once per runtime: the live one's answer)
            span = warmup_seconds(rt.spec, live.judge_span)
            start, finish = rt.grid.floor(min(pending.values()) - span), max(pending.values())
            async with budget(self.timeout()):
                self.loads += 1
                conv = await collect_range(rt.collector, rt.spec, rt.grid, start, finish, rt.many)
                if rt.many.known:  # (not a "no": it may come from this range's size, not the query)
                    live.many.known = True
                if conv is None:  # no range at once, or too many rows: not asked again by this runtime
                    live.fresh.stop("off: no range in one query (one period at a time, or above max_rows)")
                    log.warning("series history not loaded: no range in one query", metric=metric)
                    return False
                points = [
                    p
                    for p in conv.points
                    if (until := pending.get(p.series)) is not None and until - span <= p.period < until
                ]
                if points and rt.spec.storage.enabled:
                    await (await rt.data()).commit(RunRecord(metric, points=points, save_points=True))
            log.info("series history loaded", metric=metric, series=len(pending), points=len(points))
            return True
        finally:
            await slot.stop()


def failed(exc: Exception) -> str:
    """The API's `late_series` after a load that raised `exc`."""
    if isinstance(exc, TooManyRows):
        return "off: the range's answer is above collector.max_rows"
    if isinstance(exc, TimeoutError):
        return "off: the load took longer than history.batch_timeout"
    return f"off: the load failed: {error_line(exc)}"
