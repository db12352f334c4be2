"""One metric at runtime: collect -> judge -> commit -> apply, for a window of periods.

Given its spec, its plug-ins, its links and its run mode (`runtime.parts`, built by
`runtime.slot.assemble`); never mutates the spec. Judging is `runtime.judge`; what the metric
remembers is `runtime.memory`; status and telemetry are `runtime.status`. Alert states,
the cached watermark and forgotten series change only after the run's commit succeeded,
and memory is rolled back when it did not, so a failed or cancelled run is simply redone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from detectkd.alerting.alert import Alert
from detectkd.alerting.state import SeriesState
from detectkd.collectors.base import Collector
from detectkd.collectors.points import SEVERAL_ROWS, Point
from detectkd.detectors.base import Detector
from detectkd.errors import error_line
from detectkd.runtime.batch import absent, admit, fill_missing
from detectkd.runtime.catchup import resume
from detectkd.runtime.closing import all_or_nothing
from detectkd.runtime.coldjudge import ColdPeriods
from detectkd.runtime.coldstart import cold_start_reason, first_start, start_time
from detectkd.runtime.collect import ManyPeriods, collect, timezone_probe
from detectkd.runtime.explain import Explainer
from detectkd.runtime.freshseries import FreshSeries
from detectkd.runtime.judge import JudgeContext, PointReport, judge
from detectkd.runtime.memory import SeriesMemory
from detectkd.runtime.offloop import sized, window_load
from detectkd.runtime.parts import LIVE, Links, Parts, RunMode
from detectkd.runtime.peers import PeerGraph
from detectkd.runtime.shadow import ShadowSet
from detectkd.runtime.status import MetricEntry, RunStatus, StatusBook, api_entry
from detectkd.runtime.unjudged import judge_failed_run
from detectkd.runtime.watch import NOTHING, described, reason, watch
from detectkd.runtime.where import Breakdown, enrich
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import DataStore, RunRecord
from detectkd.storage.window import read_window
from detectkd.timegrid import Grid

log = structlog.get_logger("detectkd.run")
HistoryHook = Callable[[str, int, int], Awaitable[bool]]  # (metric, start, until): load it elsewhere


@dataclass
class RunReport:
    start: int
    finish: int
    points: list[PointReport] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class MetricRuntime:
    def __init__(
        self,
        spec: MetricSpec,
        parts: Parts,
        links: Links,
        states: dict[str, SeriesState] | None = None,
        mode: RunMode = LIVE,
    ) -> None:
        """`links.store` keeps alert state, outbox and watermark; `links.data_store` (default:
        the store) returns where this metric's datapoints and detections live. `mode.replay`
        (backtest): every period may notify, as if each had been the newest of a live run."""
        self.spec = spec
        self.name = spec.name
        self.mode = mode
        sched = spec.config.schedule
        self.tz = ZoneInfo(sched.timezone)
        self.interval = sched.interval
        self.grid = Grid(sched.interval, self.tz)
        self.store = links.store
        self._data_store = links.data_store
        self.on_alert = links.on_alert or (lambda: None)
        self.collector: Collector = parts.collector
        self.detectors: list[Detector] = parts.detectors
        graph = PeerGraph(spec.config.peers, spec.entities) if spec.config.peers is not None else None
        self.memory = SeriesMemory(self.detectors, self.grid, self.tz, graph, spec.calendar)
        self.many = ManyPeriods(spec)  # a one-period query asked once for a range, once confirmed
        self.states: dict[str, SeriesState] = dict(states or {})
        self._warned: set[str] = set()  # warnings logged once per runtime (e.g. off-grid rows)
        self._watermark: int | None = None
        self._watermark_known = False
        self._stale = False  # `reload_windows` was called: re-read windows and watermark
        self._loading = False  # a first start's history is loading in the background
        self.lock = asyncio.Lock()
        self.history: HistoryHook | None = None  # the daemon's loader of a first start's history
        self.cold = ColdPeriods()  # periods judged before that history was in (`coldjudge`)
        self.fresh = FreshSeries(spec, self.memory, self.judge_span)  # late series' history (`serieswarm`)
        # All or nothing: what it builds that holds something (the explain query's collector)
        # is closed when a later part fails; the parts it is given are its caller's (`assemble`).
        with all_or_nothing(self.name) as built:
            self.where = None if mode.replay else Breakdown.of(spec, links.resources, self.memory)
            built.extend([self.where.close] if self.where is not None else [])  # (a replay: none)
            link, silenced = links.link_template, links.silenced
            self.ctx = JudgeContext.of(spec, self.detectors, self.grid, link, silenced, mode.replay)
            self.shadows = ShadowSet(spec, self.grid, self.tz, self.ctx, links.telemetry)  # `shadow:`
            self.why = Explainer(spec, self.tz, self.memory)
            many = bool(spec.collector.points.series_columns)
            self.book = StatusBook(self.name, links.telemetry, self.interval.total_seconds(), many)

    @property
    def status(self) -> RunStatus:
        return self.book.status

    @property
    def settled(self) -> int | None:
        """The stored watermark memory is in step with; None when it may not be."""
        in_step = self.memory.loaded and self._watermark_known and not (self._stale or self._loading)
        return self._watermark if in_step else None

    @property
    def span(self) -> int:
        return self.memory.span

    @property
    def judge_span(self) -> int:  # what a first start loads before it judges (`coldstart`)
        return self.memory.judge_span - self.grid.step

    def finish_for(self, scheduled: float, delay: timedelta | None = None) -> int:
        """The end of the newest complete period at a scheduled run time."""
        d = self.spec.config.schedule.delay if delay is None else delay
        return self.grid.floor(scheduled - d.total_seconds())

    async def run(self, finish: int, notify: bool = True, commit: bool = True) -> RunReport:
        """Check every due period up to `finish` (exclusive). Raises on failure."""
        return await self._guarded(lambda: self._run(finish, notify, commit))

    async def check(self, start: int, finish: int, notify: bool, commit: bool) -> RunReport:
        """Check exactly the periods in [start, finish), whatever the watermark says."""
        return await self._guarded(lambda: self._check(start, finish, notify, commit))

    async def _check(self, start: int, finish: int, notify: bool, commit: bool) -> RunReport:
        report = RunReport(start, finish)
        await self._batch(start, finish, self.grid.prev(finish), notify, commit, report)
        return report

    async def _guarded(self, work: Callable[[], Coroutine[Any, Any, RunReport]]) -> RunReport:
        """`work()` under the lock: made only once it holds it (cancelled before, nothing began)."""
        async with self.lock:
            if self._stale:
                self.memory.reset()
                self.shadows.reset()
                self._watermark_known = self._stale = False
            started = time.monotonic()
            try:
                report = await work()
            except BaseException as exc:
                if isinstance(exc, Exception):
                    self._failed(exc, started)
                self._watermark_known = False
                raise
            self._succeeded(report, started)
            return report

    async def _run(self, finish: int, notify: bool, commit: bool) -> RunReport:
        last = self.grid.prev(finish)
        await self.cold.judge_again(self)
        begun = await self._start(last)
        if begun is None:  # waits for its warm-up: the job now loads up to `last`, then it judges
            return self._cold(RunReport(last, finish), waiting=True)  # (the source not asked)
        start, backfill = begun
        report = RunReport(start, finish)
        # A backfill (first start with `start_time`) loads history without notifying.
        for b_start, b_finish in self._batches(start, finish, backfill):
            await self._batch(b_start, b_finish, last, notify and not backfill, commit, report)
            if backfill:
                share = (b_finish - start) / max(1, finish - start)
                until = datetime.fromtimestamp(b_finish, self.tz).isoformat()
                log.info("history batch loaded", metric=self.name, progress=round(share, 3), until=until)
        if notify:
            self._cold(report)
            await self._probe(report)
        return report

    async def _start(self, last: int) -> tuple[int, bool] | None:
        """Where this run begins and whether it is a backfill; None: it waits for its warm-up."""
        if not self._watermark_known:
            self._watermark = await self.store.watermark(self.name)
            self._watermark_known = True
        wm = self._watermark
        if wm is None:  # a first start: `start_time`, or the detectors' window (warm-up)
            first = first_start(self.spec, self.grid, self.span - self.grid.step, last, self.judge_span)
            if first is None:
                return last, False
            begin, background = first
            if not background:
                return begin, False  # judged by this run, like a catch-up
            if self.history is None:
                return begin, True
            self._loading = True
            wait = await self.history(self.name, begin, last)  # a warm-up: wait for it
            return None if wait else (last, False)
        if wm >= last:
            return last, False
        start = self.grid.next(wm)
        oldest = self.grid.back(last, self.spec.config.schedule.max_catch_up - 1)
        return max(start, oldest), False

    async def history_due(self, now: float) -> tuple[int, int] | None:
        """A first start's history for the daemon's loader, (start, until), if one is due."""
        if await self.store.watermark(self.name) is not None:
            return None
        last = self.grid.prev(self.finish_for(now))
        first = first_start(self.spec, self.grid, self.span - self.grid.step, last, self.judge_span)
        return (first[0], last) if first is not None and first[1] else None

    def start_time(self) -> int | None:
        return start_time(self.spec, self.tz)

    def _cold(self, report: RunReport, waiting: bool = False) -> RunReport:
        """Whether the newest period was judged (`runtime.watch`; `waiting`: for its warm-up);
        a cold start logged once."""
        why = cold_start_reason(self.spec, self.span - self.grid.step, self._loading)
        newest, loading = self.grid.prev(report.finish), self.fresh.loading  # (late series: `serieswarm`)
        w = None if waiting else watch(report.points, newest, loading) or NOTHING
        if w is None:
            self.book.judged(False, f"warming up: {why}")
        else:
            series = described(w, self.memory.filled, 0 if self._loading else self.grid.step)
            self.book.judged(w.judging, reason(w, series, why), w.counts(), series)
        if (w is None or w.cold) and "cold" not in self._warned:
            self._warned.add("cold")
            first = "warming up" if w is None else w.first_cold
            log.info("cold start: not judged yet", metric=self.name, detector=first, why=why)
        return report

    def _batches(self, start: int, finish: int, backfill: bool) -> list[tuple[int, int]]:
        size = self.spec.config.schedule.batch_load_days * 86400
        return self.grid.batches(start, finish, size) if backfill else [(start, finish)]

    async def _batch(
        self, start: int, finish: int, last: int, notify: bool, commit: bool, report: RunReport
    ) -> None:
        """Collect, judge, commit, then apply: alert states and forgotten series change only
        after the commit succeeded; memory is rolled back when it did not."""
        t0 = time.perf_counter()
        known = self._known()
        collected = self._admit(await self._collect(start, finish, report), known, report)
        t1 = time.perf_counter()
        points = fill_missing(collected, self.spec, self.grid, start, finish)
        gaps = absent(collected, known, self.spec, self.grid, start, finish)
        await self._load_windows(start)
        await self.fresh.adopt(self.data, self.name, start, [v.memory for v in self.shadows.variants])
        fresh = self.fresh.seen(collected, self.states) if self._watermark is not None else {}
        ordered = sorted(points + gaps, key=lambda p: p.period) if gaps else points
        t2 = time.perf_counter()
        self.memory.begin(start)
        try:
            ctx = self.ctx.run(last, notify, gaps)
            out = await sized(len(ordered), judge, ordered, self.memory, self.states, ctx)  # many: a thread
            t3 = time.perf_counter()
            record = out.record
            record.watermark = self.grid.prev(finish) if self.mode.save_watermark else None
            if not self.mode.save_states:
                record.states, record.forget = {}, []
            if commit:  # FIRINGs explained before they are kept: why (runtime.explain), where (explain:)
                await self.why.explain(out, ctx, self.states, self.data, self.store)
                await enrich(self.where, record, out)  # bounded by explain.timeout
                await self._commit(record)
        except BaseException:
            self.memory.rollback()
            raise
        if not commit:  # judged only (e.g. `check --no-alert`): nothing of it is kept
            self.memory.rollback()
        else:
            self.memory.commit()
            if record.watermark is not None:
                self._watermark = max(self._watermark or 0, record.watermark)
                self._watermark_known = True
            self.states = out.states
            self._forget(out.forget)
            self.fresh.ask(fresh, self.grid.prev(finish))
            if record.outbox:
                self.on_alert()
        report.points.extend(out.reports)
        report.alerts.extend(out.alerts)
        self.book.observe(t1 - t0, t3 - t2, time.perf_counter() - t3, len(points), out.anomalies)
        if commit and self.mode.save_states and not self.mode.replay:  # judged beside it, never failing it
            await self.shadows.run(self, ordered, gaps, start, last, notify, out)

    def _forget(self, gone: set[str]) -> None:
        for series in gone:
            self.memory.forget(series)
            log.info("series forgotten", metric=self.name, series=series)

    def _known(self) -> set[str]:
        """Series this runtime already tracks (an alert state or a window)."""
        return set(self.states) | self.memory.series()

    def _admit(self, points: list[Point], known: set[str], report: RunReport) -> list[Point]:
        """Refuse new series beyond `max_series`; known series keep being checked."""
        kept, refused, message = admit(points, known, self.spec)
        self.status.series_error = message
        if message is not None:
            self.book.refused(refused)
            report.warnings.append(message)
        return kept

    async def _collect(self, start: int, finish: int, report: RunReport) -> list[Point]:
        conv = await collect(self.collector, self.spec, self.grid, start, finish, self.many)
        self.book.converted(conv.warnings, conv.bad_times)  # the last warning; dropped rows counted
        report.warnings.extend(conv.warnings)
        return conv.points

    async def _probe(self, report: RunReport) -> None:
        """Once per runtime: the newest period is empty; is the timezone the reason?"""
        newest = self.grid.prev(report.finish)
        if "tz" in self._warned or any(
            pr.point.value is not None for pr in report.points if pr.point.period == newest
        ):
            return
        self._warned.add("tz")
        if (why := await timezone_probe(self.collector, self.spec, self.grid, newest)) is not None:
            log.warning("no data, timezone suspected", metric=self.name, why=why)
            report.warnings.append(why)

    async def data(self) -> DataStore:
        return await self._data_store() if self._data_store is not None else self.store

    async def _commit(self, record: RunRecord) -> None:
        data = await self.data()
        if data is self.store:
            await self.store.commit(record)
            return
        # Data first: if it fails, the watermark stays behind and the periods are redone.
        if record.save_points and (record.points or record.detections):
            await data.commit(RunRecord(self.name, record.points, record.detections, save_points=True))
        await self.store.commit(
            RunRecord(
                self.name,
                states=record.states,
                outbox=record.outbox,
                watermark=record.watermark,
                save_points=False,
                forget=record.forget,
            )
        )

    async def _load_windows(self, before: int) -> None:
        if self.memory.loaded:
            return
        span = self.memory.span
        saved, self.memory.saved = self.memory.saved, None
        if saved is not None and self._watermark_known and await resume(self, saved, self._watermark, before):
            return  # the snapshot's memory (runtime.snapshot), caught up with the store (runtime.catchup)
        many = bool(self.spec.collector.points.series_columns)
        async with window_load(many):  # a few many-series loads at once: what waits for a thread is bounded
            stored = (
                await read_window(await self.data(), self.name, before - span, before)
                if self.spec.storage.enabled and span > self.grid.step
                else {}
            )
            after = self.spec.config.collector.forget_after
            if many and after is not None:
                horizon = before - after.total_seconds()
                # Forgotten (or about to be): not brought back by a restart.
                stored = {s: rows for s, rows in stored.items() if rows.last >= horizon}
            await sized(sum(map(len, stored.values())), self.memory.load, stored)  # many: in a thread

    def reload_windows(self) -> None:
        """Read the windows and the watermark from the store again at the start of the next
        run (history was loaded). A flag, not the lock: the caller never waits for a run or
        a reload holding it."""
        self._stale, self._loading = True, False

    async def judge_failure(self, finish: int) -> list[Alert]:
        """`on_error: ok | alerting | nodata`: a failed run judges the newest due period of
        every known series that way (the period is not judged again by catch-up)."""
        async with self.lock:
            known = self._known() | (set() if self.spec.collector.points.series_columns else {""})
            out = judge_failed_run(known, self.states, self.grid.prev(finish), time.time(), self.ctx)
            if out is None:
                return []
            await self.store.commit(out.record)
            self.states = out.states
        if out.record.outbox:
            self.on_alert()
        return out.alerts

    # -- status --------------------------------------------------------------------------

    def _succeeded(self, report: RunReport, started: float) -> None:
        newest = max(report.points, key=lambda p: p.point.period).point if report.points else None
        last, exported = (newest.period, newest.value) if newest else None, self.spec.config.export
        self.book.succeeded(started, last, self.states, report.points if exported else ())
        for w in report.warnings:
            if w.startswith(SEVERAL_ROWS):
                if SEVERAL_ROWS in self._warned:
                    continue  # said once: the rule holds for every later period too
                self._warned.add(SEVERAL_ROWS)
            log.warning("check warning", metric=self.name, warning=w)

    def _failed(self, exc: Exception, started: float) -> None:
        profile = self.spec.collector.profile
        line = error_line(exc)
        self.record_failure(
            f"{self.name} (profile {profile}): {line}" if profile else f"{self.name}: {line}", started
        )

    def record_failure(self, message: str, started: float) -> None:
        """Count a failed run (also one the caller cancelled, e.g. on its timeout)."""
        self.book.failed(message, started)

    def api(self) -> MetricEntry:
        return api_entry(self.name, self.spec.file, self.interval.total_seconds(), self.status, self.states)

    async def close(self) -> None:
        await asyncio.gather(self.collector.close(), *([self.where.close()] if self.where else []))
