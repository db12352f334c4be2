"""History loading: a metric's `schedule.start_time` past, in the background.

On a metric's first start (no watermark) with `schedule.start_time`, a job is
recorded when the metric is installed: the periods from start_time up to the
newest due one. The metric's first live run extends it up to the period it
judges itself (before it commits anything), and judges only that period.
A `HistoryLoader` task works through the job oldest first, in
`batch_load_days` batches, on a runtime of its own (its own collector and
windows, no alert state): it never notifies, and moves the watermark only to say
where a job's judging ended (`loading.judged_until`).
Each batch has `history.batch_timeout` on its source and store (not its judging,
`offloop.budget`; the run timeout does not apply) and
stores its points and detections, then the job's progress. After a crash, a
restart, a reload or a failed batch the job resumes after the last batch
stored; a batch done twice is harmless (rows are upserts). Live runs never
wait for a job; when it is done, the periods they judged and committed meanwhile
(without the history: a cold skip) are judged again with it, detections only,
and the live runtime re-reads its windows from the store, with the history in
them.

A first start without `start_time` (a warm-up longer than `max_catch_up`) is a job too, but
small and never stored: its live runs wait for it (they commit nothing, so after a crash the
next start warms up again), up to `history.warmup_concurrency` of them load at once, and the
metric is judged as soon as it is done (`Runs.judge_warmed`). Every job's queries are paced
to `history.source_qps` per source (`runtime.pace`).

A staged warm-up (`auto`: only what its level baseline judges from, `runtime.coldstart`) is
followed by a fill job for the rest of the detectors' window: stored (resumed after a
crash), points only, newest first (the level's window completes first, then the seasonal
cycles one after another), one batch per turn among all filling metrics, and only while no
warm-up is waiting (first judgements come first), at most `history.fill_qps` queries a second
per source. After each batch the live runtime re-reads
its windows, so each baseline switches on as soon as its history is in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from detectkd.collectors.base import Collector
from detectkd.collectors.points import Point
from detectkd.config.settings import HistorySettings
from detectkd.errors import StorageError, error_line
from detectkd.runtime.coldjudge import judge_range
from detectkd.runtime.coldstart import fill_range
from detectkd.runtime.historybook import JobBook
from detectkd.runtime.historyjob import Job, iso
from detectkd.runtime.loading import Gate, PointsLoad, judged_until, store_points
from detectkd.runtime.offloop import budget
from detectkd.runtime.pace import Paces, halting
from detectkd.runtime.runner import MetricRuntime
from detectkd.runtime.serieswarm import SeriesLoads
from detectkd.runtime.slot import MetricSlot, Wrap
from detectkd.storage.base import StateStore
from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd.history")


# (metric, wrap): a slot of the metric's own for loading, its collector wrapped; None: not running
Build = Callable[[str, Wrap], MetricSlot | None]
# (metric, wrap): what a points-only load needs (`runtime.loading`); None: not running
BuildPoints = Callable[[str, Wrap], PointsLoad | None]


class HistoryLoader:
    def __init__(
        self,
        store: StateStore,
        settings: HistorySettings,
        build: Build,
        loaded: Callable[[str, int | None], asyncio.Task[None] | None],
        telemetry: Telemetry | None = None,
        may_run: Callable[[], bool] = lambda: True,
        points: BuildPoints | None = None,
    ) -> None:
        """`build` makes a loading slot for a metric; `loaded(metric, again)` is called when
        its job is done (the live runtime re-reads its windows on its next run, and judges
        again the periods live runs committed from `again` on, `coldjudge`). While `may_run()`
        is false (an HA standby) no job is worked on: the leader loads, a standby's commits
        would be fenced. `points` builds what a points-only load needs (a warm-up, a fill)
        without a runtime of its own (None: a `build` slot's runtime is used)."""
        self.may_run = may_run
        self.points = points
        self.store = store
        self.settings = settings
        self.build = build
        self.loaded = loaded
        self.book = JobBook(store, settings, telemetry)
        self.jobs = self.book.jobs  # by metric: stored, gauged (`JobBook`)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._warm_sem = asyncio.Semaphore(settings.warmup_concurrency)
        self._warm: set[str] = set()  # metrics whose first start is a warm-up: jobs not stored
        self._warming: set[str] = set()  # metrics whose task works on a warm-up: fills wait for them
        self._many: set[str] = set()  # metrics with `series_columns`: a warm-up counts their series
        self._idle = asyncio.Event()  # no warm-up is waiting
        self._idle.set()
        self.paces = Paces(settings.source_qps)
        self.fill_paces = Paces(settings.fill_qps)  # fills: within source_qps, and at most this
        self._stopped = False
        self._halting: set[str] = set()  # metrics whose task was cancelled and is not done yet
        self.clock: Callable[[], float] = time.time  # when a first start's history ends
        timeout = settings.batch_timeout.total_seconds
        # Late series' history (`serieswarm`): paced and halted as the jobs, beside the warm-ups.
        self.series = SeriesLoads(build, lambda m: self._wrap(m, False), self._warm_sem, timeout)

    async def open(self) -> None:
        """Read the jobs an earlier process left unfinished (each starts when its metric is
        installed, `start`)."""
        await self.book.open()

    async def begin(self, metric: str, start: int, until: int) -> bool:
        """A live run's first start: record the history before `until` (or extend the job an
        earlier, uncommitted first run recorded), then work on it. Stored before the live run
        commits, so a crash in between leaves a job, never a gap. True: the live run waits
        for it (a warm-up whose loading has not failed; once it has, the live runs judge
        what they can meanwhile, and the job is stored)."""
        wait = metric in self._warm and not (metric in self.jobs and self.jobs[metric].failures)
        if not wait:
            self._warm.discard(metric)
            if metric in self.jobs:  # a failed warm-up: judged and stored like any history job
                self.jobs[metric].warm = False
        await self.book.record(metric, start, until, warm=metric in self._warm, many=metric in self._many)
        self.kick(metric)
        return wait

    def load_series(self, live: MetricRuntime, series: Mapping[str, int]) -> None:
        """Late series' history (`serieswarm`), unless the loader is stopped or a standby."""
        if self._stopped or not self.may_run():
            live.fresh.loaded(set(series), ok=False)
        else:
            self.series.request(live, series)

    def start(self, live: MetricRuntime) -> None:
        """A metric was installed: work on its job, or record one if this is its first start
        (so history loads from now on, not from its first scheduled run)."""
        if live.start_time() is None:
            self._warm.add(live.name)
        else:
            self._warm.discard(live.name)
        (self._many.add if live.spec.collector.points.series_columns else self._many.discard)(live.name)
        self.kick(live.name, live)

    def kick(self, metric: str, live: MetricRuntime | None = None) -> None:
        """Work on the metric's job, if it has one (or `live` may record one) and nobody
        works on it yet."""
        if not self.may_run() or self._stopped:
            return
        if (metric in self.jobs or live is not None) and metric not in self._tasks:
            self._tasks[metric] = asyncio.create_task(self._work(metric, live), name=f"history:{metric}")

    async def cancel(self, metric: str) -> None:
        """Stop working on the metric's job (reload, removal); the job stays stored."""
        await self._halt([metric])

    async def settled(self) -> None:
        """Wait until no job is being worked on (each done, or waiting for a metric to run)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    async def stop(self) -> None:
        self._stopped = True
        await self.pause()

    async def pause(self) -> None:
        """Stop working on every job (deposed leader, SIGTERM); `kick` resumes them."""
        await self._halt(list(self._tasks | self.series.tasks))

    async def _halt(self, metrics: list[str]) -> None:
        """Cancel the metrics' tasks, all at once (a thousand warm-ups stop together, not
        one after the other), and wait until they ended. A cancellation lost below (see
        `Halting`) is honoured at the task's next query or batch (issue 28: SIGTERM did not
        stop a daemon whose warm-ups were loading)."""
        tasks = [t for m in metrics if (t := self._tasks.pop(m, None)) is not None] + self.series.halt(
            metrics
        )
        self._halting.update(metrics)
        try:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
        finally:
            self._halting.difference_update(metrics)
        for task in tasks:
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.warning("history job stopped", task=task.get_name(), error=error_line(exc))

    def _go_on(self, metric: str) -> None:
        """Between batches: the task was cancelled and a library lost it; end now."""
        if metric in self._halting:
            raise asyncio.CancelledError

    def api(self, metric: str, step: float = 0) -> dict[str, Any] | None:
        return self.book.api(metric, step)

    # -- work -------------------------------------------------------------------------

    async def _work(self, metric: str, live: MetricRuntime | None) -> None:
        try:
            if metric not in self.jobs and live is not None and not await self._first_start(live):
                return
            while metric in self.jobs:
                self._go_on(metric)
                if self.jobs[metric].warm and not self.jobs[metric].failures:  # (a failed one: see below)
                    self._warming.add(metric)
                    self._idle.clear()
                else:
                    self._warmed(metric)
                job = self.jobs[metric]
                if self._light(metric, job) and job.warm:  # its slot held while it asks its source only
                    retry_in = await self._load(metric, Gate(self._warm_sem))
                else:
                    async with self._warm_sem if job.warm else self._sem:  # not held while waiting to retry
                        retry_in = await self._load(metric)
                if retry_in is None:
                    return
                if retry_in > 0:  # a failed batch: its back-off (up to 10 min) holds no fill (issue 28),
                    self._warmed(metric)  # nor does its retry: its live runs stopped waiting (`begin`)
                await asyncio.sleep(retry_in)  # 0: a fill's next batch, after the others
        finally:
            self._warmed(metric)
            if self._tasks.get(metric) is asyncio.current_task():
                del self._tasks[metric]

    async def _first_start(self, live: MetricRuntime) -> bool:
        """Record the job of a metric with `start_time` and no watermark; False: none due."""
        try:
            due = await live.history_due(self.clock())
        except StorageError as exc:  # the live run's own first start records it then
            log.warning("history not started", metric=live.name, error=error_line(exc))
            return False
        if due is not None:  # (the live run may have recorded it meanwhile: then it is extended)
            name = live.name
            await self.book.record(name, *due, warm=name in self._warm, many=name in self._many)
        return live.name in self.jobs

    def _wrap(self, metric: str, fill: bool) -> Wrap:
        """The metric's loading queries: paced per source (a fill's within `fill_qps` too),
        none once its task is told to stop (`Halting`)."""

        def wrap(source: str, collector: Collector) -> Collector:
            paced = self.paces.wrap(source, collector)
            paced = self.fill_paces.wrap(source, paced) if fill else paced
            return halting(paced, lambda: metric in self._halting)

        return wrap

    def _light(self, metric: str, job: Job) -> bool:
        """Points only (`runtime.loading`): a fill, and a warm-up that has not failed (a
        failed one is judged and stored like any history job once its live runs stop
        waiting)."""
        return self.points is not None and (
            job.fill or (job.warm and not job.failures and metric in self._warm)
        )

    async def _load(self, metric: str, gate: Gate | None = None) -> float | None:
        """Load batches until the job is done (None) or one fails (seconds to wait). `gate`:
        a points-only warm-up's slot among `warmup_concurrency`, held while it asks its
        source (from before its collector is built), not while it stores: the bound is on
        what a source is asked at once, and a store commit and its hop back to the loop ask
        it nothing."""
        if gate is None:
            return await self._load_with(metric, None)
        try:
            await gate.acquire()  # (released after its first batch's query, or below)
            return await self._load_with(metric, gate)
        finally:
            gate.release()

    async def _load_with(self, metric: str, gate: Gate | None) -> float | None:
        job = self.jobs[metric]
        if job.fill:
            await self._idle.wait()  # first judgements first
        if job.seen is None:  # the pace of its loading, from here (`Job.eta`)
            job.seen = (time.monotonic(), job.progress)
        try:
            built = self._build(metric, job.fill, self._light(metric, job))
        except Exception as exc:
            return self.book.failed(job, exc, 0)
        if built is None:  # not running (disabled, failed to build): kicked when it is installed
            return None
        rt, runtime, stop = built
        size = rt.spec.config.schedule.batch_load_days * 86400
        timeout = self.settings.batch_timeout.total_seconds()
        started = time.monotonic()
        again: int | None = None  # where the live runtime's next run takes over judging again
        if job.fill:
            return await self._fill_batch(job, rt, stop)
        try:
            while not job.done:
                self._go_on(metric)
                lo, hi = rt.grid.batches(job.start, job.until, size)[0]
                stored: list[Point] = []
                try:
                    last = hi >= job.until  # the last batch: see `loading.judged_until`
                    async with budget(timeout):  # the source and the store; not the judge (`offloop`)
                        if job.warm:  # (its last batch's points and watermark: one commit)
                            done = (self.store, rt.grid.prev(hi)) if last else None
                            stored = await store_points(rt, lo, hi, done, gate)
                            points = len(stored)
                        else:
                            assert runtime is not None  # (`light`: a warm-up, until it fails)
                            points = len((await runtime.check(lo, hi, notify=False, commit=True)).points)
                    if last and not job.warm:
                        await judged_until(self.store, metric, rt.grid.prev(hi))
                    job.start = hi  # stored: a failed save below only means the next one says it
                    await self.book.save(job)
                except Exception as exc:
                    return self.book.failed(job, exc, timeout)
                self.book.succeeded(job, {p.series for p in stored} if job.many else ())
                log.info(
                    "history batch loaded",
                    metric=metric,
                    progress=round(job.progress, 3),
                    until=iso(hi),
                    points=points,
                )
            if metric not in self._warm:  # (a warm-up's live runs judged nothing meanwhile)
                try:
                    assert runtime is not None
                    again = await self._rejudged(runtime, job, size, timeout)
                except Exception as exc:
                    return self.book.failed(job, exc, timeout)
            fill = fill_range(rt.spec, rt.grid, rt.span - rt.grid.step, job.until - job.total, job.until)
        finally:
            await stop()
        del self.jobs[metric]
        self._warmed(metric)
        first = self.loaded(metric, again)
        log.info("history loaded", metric=metric, seconds=round(time.monotonic() - started, 1))
        if fill is not None and rt.start_time() is None:  # staged: the rest of the window, later
            if first is not None:  # first judgements first: its own fill after its first judgement
                await asyncio.wait({first})
            self._warm.discard(metric)
            self.jobs[metric] = job = Job(metric, fill[0], fill[1], fill[1] - fill[0], fill=True)
            await self.book.save(job)
            self.book.gauge(job)
            return 0.0
        return None

    def _build(
        self, metric: str, fill: bool, light: bool
    ) -> tuple[PointsLoad | MetricRuntime, MetricRuntime | None, Callable[[], Awaitable[None]]] | None:
        """What loads the metric's job: (what `store_points` reads, the runtime that judges
        when it is not points only, what releases it); None: the metric is not running."""
        wrap = self._wrap(metric, fill)
        if light:
            assert self.points is not None
            load = self.points(metric, wrap)
            return None if load is None else (load, None, load.stop)
        slot = self.build(metric, wrap)
        return None if slot is None else (slot.runtime, slot.runtime, slot.stop)

    def _warmed(self, metric: str) -> None:
        self._warming.discard(metric)
        if not self._warming:
            self._idle.set()

    async def _fill_batch(
        self, job: Job, rt: PointsLoad | MetricRuntime, stop: Callable[[], Awaitable[None]]
    ) -> float | None:
        """One batch of a fill job, the newest not loaded yet (points only); then the live
        runtime re-reads its windows. 0: more to load, after the other filling metrics."""
        size = max(rt.grid.step, min(86400, 8 * rt.judge_span))
        lo = max(job.start, rt.grid.floor(job.until - size))
        try:
            async with budget(self.settings.batch_timeout.total_seconds()):
                points = len(await store_points(rt, lo, job.until))
            job.until = lo
            await self.book.save(job)
        except Exception as exc:
            return self.book.failed(job, exc, self.settings.batch_timeout.total_seconds())
        finally:
            await stop()
        self.book.succeeded(job)
        log.info(
            "history fill loaded",
            metric=job.metric,
            progress=round(job.progress, 3),
            loaded_from=iso(lo),
            points=points,
        )
        if job.done:
            del self.jobs[job.metric]
        self.loaded(job.metric, None)
        return None if job.done else 0.0

    async def _rejudged(self, rt: MetricRuntime, job: Job, size: int, seconds: float) -> int:
        """The periods live runs judged while the job loaded (from its `until` to the stored
        watermark), judged again with the history: their stored detections become those of a
        start whose history was there at once (a cold skip at most). Nothing notified, no
        alert state or watermark changed (the loader's runtime keeps none). Returns the first
        period not judged again: a live run in flight commits it later (`coldjudge`)."""
        wm = await self.store.watermark(job.metric)
        if wm is None or wm < job.until:
            return job.until
        await judge_range(rt, job.until, rt.grid.next(wm), size, seconds)
        return rt.grid.next(wm)

    async def judge_again(self, metric: str, start: int, finish: int) -> None:
        """[start, finish) judged again with the history on a loading slot of the metric's
        own: a live run's, for the periods committed after `_rejudged` read the watermark
        (paced, not `Halting`: the live run is not the loader's task to stop)."""
        slot = self.build(metric, self.paces.wrap)
        if slot is None:
            return
        try:
            size = slot.spec.config.schedule.batch_load_days * 86400
            await judge_range(slot.runtime, start, finish, size, self.settings.batch_timeout.total_seconds())
        finally:
            await slot.stop()
