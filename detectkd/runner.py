"""One metric at runtime: collect -> store -> detect -> decide, for a window of periods.

Built from a `MetricSpec`; never mutates it. In-memory state (windows, alert
states, the cached watermark) only changes after the run's commit succeeded,
so a failed or cancelled run is simply redone by the next one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from detectkd.alerting.alert import Alert
from detectkd.alerting.state import Notice, Rules, SeriesState, Status, Verdict, decide, step
from detectkd.collectors import registry as collector_registry
from detectkd.collectors.base import Collector, Window
from detectkd.collectors.points import SEVERAL_ROWS, Point, parse_series_key, rows_to_points
from detectkd.config.loader import MetricSpec
from detectkd.detectors import registry as detector_registry
from detectkd.detectors.base import BatchDetector, Current, Detector, Result
from detectkd.detectors.features import feature_value
from detectkd.durations import parse_duration
from detectkd.peers import Classification, PeerGraph, classify, deviation, passes
from detectkd.resources import Resources
from detectkd.storage.base import NewOutboxItem, RunRecord, Store, StoredDetection
from detectkd.telemetry import Telemetry
from detectkd.templating import compile_template
from detectkd.timegrid import Grid
from detectkd.window import SeriesWindow

log = structlog.get_logger("detectkd.run")


@dataclass
class PointReport:
    point: Point
    results: list[Result]
    verdict: Verdict
    state: SeriesState
    notices: list[Notice] = field(default_factory=list)
    peers: Classification | None = None  # peer verification of an anomalous point


@dataclass
class RunReport:
    start: int
    finish: int
    points: list[PointReport] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunStatus:
    state: str = "new"  # new | ok | pending | firing | error
    last_run_at: float | None = None
    last_duration: float | None = None
    last_error: str | None = None
    last_value: float | None = None
    last_period: int | None = None
    runs: int = 0
    failures: int = 0
    series_error: str | None = None  # the `max_series` limit refused new series


class MetricRuntime:
    def __init__(
        self,
        spec: MetricSpec,
        store: Store,
        resources: Resources,
        telemetry: Telemetry | None = None,
        states: dict[str, SeriesState] | None = None,
        on_alert: Callable[[], None] | None = None,
        data_store: Callable[[], Awaitable[Store]] | None = None,
        link_template: str | None = None,
        silenced: Callable[[str, float], bool] | None = None,
        replay: bool = False,
    ) -> None:
        """`store` keeps alert state, outbox and watermark; `data_store` (default: `store`)
        returns where this metric's datapoints and detections live. `replay` (backtest):
        every period may notify, as if each had been the newest of a live run."""
        self.spec = spec
        self.name = spec.name
        sched = spec.config.schedule
        self.tz = ZoneInfo(sched.timezone)
        self.interval = sched.interval
        self.grid = Grid(sched.interval, self.tz)
        self.store = store
        self._data_store = data_store
        self._link = compile_template(link_template) if link_template else None
        self.telemetry = telemetry
        self._silenced = silenced or (lambda series, ts: False)
        self.replay = replay
        self.on_alert = on_alert or (lambda: None)
        c = spec.collector
        kind = collector_registry.lookup(c.type)
        assert kind is not None  # validated at load
        self.collector: Collector = kind.build(
            c.params, resources, c.points.timestamp_column, c.points.value_column
        )
        step_s = self.grid.step
        self.detectors: list[Detector] = []
        for d in spec.detectors:
            dtype = detector_registry.lookup(d.type)
            assert dtype is not None
            self.detectors.append(dtype.build(d.params, step_s, d.id))
        self.features = tuple(sorted({f for d in self.detectors for f in d.feature_names()}))
        self.span = max((d.window_seconds(step_s) for d in self.detectors), default=0) + step_s
        self.rules = Rules.of(spec.conditions, self.interval)
        self.states: dict[str, SeriesState] = dict(states or {})
        peers = spec.config.peers
        self.peer_graph = PeerGraph(peers, spec.entities) if peers is not None else None
        self.windows: dict[str, SeriesWindow] = {}
        self._prejudged: dict[tuple[str, int], list[Result | None]] = {}
        self._warned: set[str] = set()  # warnings logged once per runtime (e.g. off-grid rows)
        self._windows_loaded = False
        self._watermark: int | None = None
        self._watermark_known = False
        self.status = RunStatus()
        self.lock = asyncio.Lock()
        self.save_states = True  # False: `load-history`, which must not overwrite the daemon's state
        if telemetry is not None:
            telemetry.metric_interval.labels(self.name).set(self.interval.total_seconds())

    # -- timing -----------------------------------------------------------------------

    def finish_for(self, scheduled: float, delay: timedelta | None = None) -> int:
        """The end of the newest complete period at a scheduled run time."""
        d = self.spec.config.schedule.delay if delay is None else delay
        return self.grid.floor(scheduled - d.total_seconds())

    # -- the run -----------------------------------------------------------------------

    async def run(self, finish: int, notify: bool = True, commit: bool = True) -> RunReport:
        """Check every due period up to `finish` (exclusive). Raises on failure."""
        return await self._guarded(self._run(finish, notify, commit))

    async def check(self, start: int, finish: int, notify: bool, commit: bool) -> RunReport:
        """Check exactly the periods in [start, finish), whatever the watermark says."""
        report = RunReport(start, finish)
        last = self.grid.prev(finish)
        return await self._guarded(self._check(start, finish, last, notify, commit, report))

    async def _check(
        self, start: int, finish: int, last: int, notify: bool, commit: bool, report: RunReport
    ) -> RunReport:
        await self._batch(start, finish, last, notify, commit, report)
        return report

    async def _guarded(self, work: Coroutine[Any, Any, RunReport]) -> RunReport:
        async with self.lock:
            started = time.monotonic()
            try:
                report = await work
            except BaseException as exc:
                if isinstance(exc, Exception):
                    self._failed(exc, started)
                self._watermark_known = False
                raise
            self._succeeded(report, started)
            return report

    async def _run(self, finish: int, notify: bool, commit: bool) -> RunReport:
        last = self.grid.prev(finish)
        start, backfill = await self._start(last)
        report = RunReport(start, finish)
        # A backfill (first start with `start_time`) loads history without notifying.
        for b_start, b_finish in self._batches(start, finish, backfill):
            await self._batch(b_start, b_finish, last, notify and not backfill, commit, report)
            if backfill:
                share = (b_finish - start) / max(1, finish - start)
                log.info("history batch loaded", metric=self.name, progress=round(share, 3),
                         until=datetime.fromtimestamp(b_finish, self.tz).isoformat())  # fmt: skip
        return report

    async def _start(self, last: int) -> tuple[int, bool]:
        if not self._watermark_known:
            self._watermark = await self.store.watermark(self.name)
            self._watermark_known = True
        sched = self.spec.config.schedule
        wm = self._watermark
        if wm is None:
            begin = self.start_time()
            if begin is not None and begin < last:
                return self.grid.floor(begin), True
            return last, False
        if wm >= last:
            return last, False
        start = self.grid.next(wm)
        oldest = self.grid.back(last, sched.max_catch_up - 1)
        return max(start, oldest), False

    def start_time(self) -> int | None:
        raw = self.spec.config.schedule.start_time
        if not raw:
            return None
        try:
            return int(time.time() - parse_duration(raw).total_seconds())
        except ValueError:
            pass
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        return int(moment.timestamp())

    def _batches(self, start: int, finish: int, backfill: bool) -> list[tuple[int, int]]:
        if not backfill:
            return [(start, finish)]
        size = self.spec.config.schedule.batch_load_days * 86400
        out: list[tuple[int, int]] = []
        lo = start
        while lo < finish:
            hi = min(finish, self.grid.floor(lo + size) if lo + size < finish else finish)
            if hi <= lo:
                hi = finish
            out.append((lo, hi))
            lo = hi
        return out

    async def _batch(
        self, start: int, finish: int, last: int, notify: bool, commit: bool, report: RunReport
    ) -> None:
        tel = self.telemetry
        t0 = time.perf_counter()
        known = self._known()
        collected = self._admit(await self._collect(start, finish, report), known, report)
        t1 = time.perf_counter()
        points = self._fill_missing(collected, start, finish)
        absent = self._absent(collected, known, start, finish)
        await self._load_windows(start)
        t2 = time.perf_counter()
        record = RunRecord(
            metric=self.name,
            watermark=self.grid.prev(finish),
            save_points=self.spec.storage.enabled,
        )
        states = dict(self.states)
        touched: dict[str, SeriesState] = {}
        anomalies = 0
        judged_only = {(p.series, p.period) for p in absent}
        ordered = sorted(points + absent, key=lambda p: p.period) if absent else points
        self._prejudged = self._prejudge(ordered)
        gone: set[str] = set()
        # Every series of a period is judged before any is decided: peers compare deviations.
        for period, same_period in groupby(ordered, key=lambda p: p.period):
            newest = notify and (period == last or self.replay)
            group = [p for p in same_period if not (p.series in gone and (p.series, p.period) in judged_only)]
            for pr in self._decide_period(group, states, newest):
                point = pr.point
                anomalies += pr.verdict.anomalous
                report.points.append(pr)
                # A known series without a row is judged, not stored.
                if (point.series, point.period) not in judged_only:
                    record.points.append(point)
                    if self.spec.storage.save_detections:
                        found = (StoredDetection(point.series, point.period, r) for r in pr.results)
                        record.detections.extend(found)
                if pr.state is not states.get(point.series):
                    states[point.series] = touched[point.series] = pr.state
                for notice in pr.notices:
                    alert = self._alert(point, pr, notice)
                    report.alerts.append(alert)
                    record.outbox.extend(
                        NewOutboxItem(alert.key, self.name, point.series, a.index, alert.to_json())
                        for a in self.spec.alerters
                    )
                if self._stale(pr.state, period):
                    gone.add(point.series)
                    states.pop(point.series, None)
                    touched.pop(point.series, None)
        gone -= set(touched)  # forgotten, then back later in the same batch: a new series
        self._prejudged = {}
        record.states = touched if self.save_states else {}
        record.forget = sorted(gone) if self.save_states else []
        t3 = time.perf_counter()
        if commit:
            await self._commit(record)
            self._watermark = max(self._watermark or 0, record.watermark or 0)
            self._watermark_known = True
            self.states = states
            self._forget(gone)
            if record.outbox:
                self.on_alert()
        t4 = time.perf_counter()
        if tel is not None:
            tel.check_duration.labels("collect").observe(t1 - t0)
            tel.check_duration.labels("detect").observe(t3 - t2)
            tel.check_duration.labels("store").observe(t4 - t3)
            tel.points.labels(self.name).inc(len(points))
            if anomalies:
                tel.anomalies.labels(self.name).inc(anomalies)

    def _decide_period(
        self, group: list[Point], states: dict[str, SeriesState], newest: bool
    ) -> list[PointReport]:
        """Detect every series of one period, classify against peers, then step each state."""
        judged = [self._detect(point) for point in group]
        classes = self._classify(judged) if self.peer_graph is not None else {}
        required = self.spec.conditions.peers
        out: list[PointReport] = []
        for point, results, verdict in judged:
            found = classes.get(point.series)
            if verdict.anomalous and not passes(found, required):
                verdict = Verdict(False, verdict.primary)
            # A silenced series advances; what it owes is sent once the silence is over.
            may = newest and not self._silenced(point.series, self.grid.next(point.period))
            old = states.get(point.series, SeriesState())
            new, notices = step(old, point.period, verdict, self.rules, may)
            out.append(PointReport(point, results, verdict, new, notices, found))
        return out

    def _detect(self, point: Point) -> tuple[Point, list[Result], Verdict]:
        window = self._window(point.series)
        feats = self._features(point.period, point.context) if self.features else {}
        value = None if point.value is None or point.value != point.value else point.value  # NaN: none
        pre = self._prejudged.get((point.series, point.period))
        if pre is not None and None not in pre:
            results = [r for r in pre if r is not None]  # every detector has judged it
        else:
            history = window.history()
            current = Current(point.period, value, feats, point.series)
            results = [
                r if (r := pre[k] if pre is not None else None) is not None else d.detect(history, current)
                for k, d in enumerate(self.detectors)
            ]
        verdict = decide(results, self.spec.conditions)
        if value is None and not verdict.anomalous:  # no data (unless `missing_data` flags it)
            verdict = Verdict(False, verdict.primary, judged=False, missing=True)
        window.add(point.period, point.value, feats)
        return point, results, verdict

    def _prejudge(self, points: list[Point]) -> dict[tuple[str, int], list[Result | None]]:
        """Results of the detectors that judge a batch at once (`detect_many`), per series for
        all its points of this batch, each against the history before it: the same answers as
        point by point, in one pass of array operations (replays, catch-up, backfill)."""
        batched = [(k, d) for k, d in enumerate(self.detectors) if isinstance(d, BatchDetector)]
        if not batched or len(points) < 2:
            return {}
        by_series: dict[str, list[Point]] = {}
        for p in points:
            by_series.setdefault(p.series, []).append(p)
        out: dict[tuple[str, int], list[Result | None]] = {}
        for series, pts in by_series.items():
            if len({p.period for p in pts}) != len(pts):
                continue  # not one point per period: judged one at a time
            history = self._window(series).history()
            currents = [
                Current(p.period, None if p.value is None or p.value != p.value else p.value,
                        self._features(p.period, p.context), series)
                for p in pts
            ]  # fmt: skip
            for k, d in batched:
                for p, r in zip(pts, d.detect_many(history, currents), strict=True):
                    out.setdefault((series, p.period), [None] * len(self.detectors))[k] = r
        return out

    def _classify(self, judged: list[tuple[Point, list[Result], Verdict]]) -> dict[str, Classification]:
        graph = self.peer_graph
        assert graph is not None and self.spec.config.peers is not None
        p = self.spec.config.peers
        devs: dict[str, float | None] = {}
        flagged: dict[str, bool] = {}
        for point, results, verdict in judged:
            if point.context:
                graph.observe(point.series, point.context)
            if verdict.judged:
                devs[point.series] = deviation(results)
                flagged[point.series] = verdict.anomalous
        out: dict[str, Classification] = {}
        present = sorted(devs)
        for point, _, verdict in judged:
            if not verdict.anomalous or point.series not in devs:
                continue
            own = devs[point.series]
            peers = [s for s in graph.peers_of(point.series, present) if s in devs]
            if own is None:  # no bounds (e.g. flatline): compare verdicts instead of deviations
                others = [1.0 if flagged[s] else 0.0 for s in peers]
                out[point.series] = classify(1.0, [d * p.deviation for d in others], p)
                continue
            others = [d for s in peers if (d := devs[s]) is not None]
            out[point.series] = classify(own, others, p)
        return out

    def _stale(self, state: SeriesState, period: int) -> bool:
        """A series of a multi-series metric without data for `forget_after` is forgotten."""
        after = self.spec.config.collector.forget_after
        return (
            bool(self.spec.collector.points.series_columns)
            and after is not None
            and state.empty_since is not None
            and period - state.empty_since >= after.total_seconds()
        )

    def _forget(self, gone: set[str]) -> None:
        for series in gone:
            self.windows.pop(series, None)
            for d in self.detectors:
                forget = getattr(d, "forget", None)
                if forget is not None:
                    forget(series)  # derived per-series state goes with the series
            if self.peer_graph is not None:
                self.peer_graph.forget(series)
            log.info("series forgotten", metric=self.name, series=series)

    def _known(self) -> set[str]:
        """Series this runtime already tracks (an alert state or a window)."""
        return set(self.states) | set(self.windows)

    def _admit(self, points: list[Point], known: set[str], report: RunReport) -> list[Point]:
        """Refuse new series beyond `max_series`; known series keep being checked."""
        if not self.spec.collector.points.series_columns:
            return points
        limit = self.spec.config.collector.max_series
        new = sorted({p.series for p in points} - known)
        room = max(0, limit - len(known))
        if len(new) <= room:
            self.status.series_error = None
            return points
        refused = set(new[room:])
        example = new[room]
        self.status.series_error = (
            f"{self.name}: series limit reached: {len(refused)} new series refused "
            f"(collector.max_series is {limit}; first refused: {example!r}). "
            "Raise max_series or aggregate in the query."
        )
        report.warnings.append(self.status.series_error)
        if self.telemetry is not None:
            self.telemetry.series_refused.labels(self.name).inc(len(refused))
        return [p for p in points if p.series not in refused]

    async def _collect(self, start: int, finish: int, report: RunReport) -> list[Point]:
        spec = self.spec.collector
        if spec.multi_period:
            windows = [Window(start, finish, self.interval, self.tz)]
        else:  # one query per period, oldest first
            windows = [
                Window(p, self.grid.next(p), self.interval, self.tz) for p in self.grid.periods(start, finish)
            ]
        points: list[Point] = []
        for window in windows:
            rows = await self.collector.collect(window)
            conv = rows_to_points(rows, spec.points, window, self.grid, single=not spec.multi_period)
            report.warnings.extend(conv.warnings)
            points.extend(conv.points)
        return points

    async def data(self) -> Store:
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

    def _fill_missing(self, points: list[Point], start: int, finish: int) -> list[Point]:
        """A single-series metric with no row for a period gets a NULL point (missing, not 0)."""
        if self.spec.collector.points.series_columns:
            return points
        have = {p.period for p in points}
        missing = [Point("", p, None) for p in self.grid.periods(start, finish) if p not in have]
        return sorted(points + missing, key=lambda p: p.period) if missing else points

    def _absent(self, points: list[Point], known: set[str], start: int, finish: int) -> list[Point]:
        """Known series of a multi-series metric with no row for a period: judged as missing."""
        if not self.spec.collector.points.series_columns:
            return []
        have = {(p.series, p.period) for p in points}
        since = dict.fromkeys(known, start - 1)  # known series: missing from `start` on
        for p in points:  # a series new in this batch is missing only after its first row
            since[p.series] = min(since.get(p.series, p.period), p.period)
        return [
            Point(series, period, None)
            for period in self.grid.periods(start, finish)
            for series in sorted(since)
            if period > since[series] and (series, period) not in have
        ]

    async def _load_windows(self, before: int) -> None:
        if self._windows_loaded:
            return
        stored = (
            await (await self.data()).read_points(self.name, None, before - self.span, before)
            if self.spec.storage.enabled and self.span > self.grid.step
            else {}
        )
        after = self.spec.config.collector.forget_after
        multi = bool(self.spec.collector.points.series_columns)
        for series, pts in stored.items():
            seen = [sp.period for sp in pts if sp.value is not None]
            if multi and after is not None and (not seen or seen[-1] < before - after.total_seconds()):
                continue  # forgotten (or about to be): not brought back by a restart
            w = self._window(series)
            floor = self.grid.floor
            for sp in pts:
                if floor(sp.period) == sp.period:  # points of an earlier grid (another interval) stay out
                    w.add(sp.period, sp.value, self._features(sp.period, sp.context))
        self._windows_loaded = True

    def _window(self, series: str) -> SeriesWindow:
        w = self.windows.get(series)
        if w is None:
            w = self.windows[series] = SeriesWindow(self.span, self.features)
        return w

    def _features(self, period: int, context: dict[str, Any]) -> dict[str, float]:
        return {f: feature_value(f, period, context, self.tz) for f in self.features}

    def _alert(self, point: Point, pr: PointReport, notice: Notice) -> Alert:
        r = pr.verdict.primary if notice.kind == "anomaly" else None
        cfg = self.spec.config
        return Alert(
            metric=self.name,
            series=point.series,
            labels=parse_series_key(point.series),
            status=notice.status,
            period=point.period,
            started_at=notice.episode,
            value=point.value,
            expected=r.expected if r else None,
            lower=r.lower if r else None,
            upper=r.upper if r else None,
            score=r.score if r else None,
            direction=r.direction if r else None,
            detector=r.detector if r else None,
            interval_seconds=self.grid.step,
            timezone=cfg.schedule.timezone,
            description=cfg.description,
            tags=tuple(cfg.tags),
            repeat=pr.state.repeats if notice.status == "firing" and notice.kind == "anomaly" else 0,
            url=self._render_link(point),
            kind=notice.kind,
            extra=pr.peers.as_extra() if pr.peers is not None and notice.kind == "anomaly" else {},
        )

    def _render_link(self, point: Point) -> str | None:
        if self._link is None:
            return None
        return self._link.render(
            metric=self.name,
            series=point.series,
            labels=parse_series_key(point.series),
            period_start=point.period,
            period_finish=self.grid.next(point.period),
        )

    async def judge_failure(self, finish: int) -> list[Alert]:
        """`on_error: ok | alerting | nodata`: a failed run judges the newest due period of
        every known series that way (the period is not judged again by catch-up)."""
        policy = self.spec.conditions.on_error
        verdicts = {
            "ok": Verdict(False, None),
            "alerting": Verdict(True, None),
            "nodata": Verdict(False, None, judged=False, missing=True),
        }
        verdict = verdicts.get(policy)
        if verdict is None:
            return []
        period = self.grid.prev(finish)
        alerts: list[Alert] = []
        async with self.lock:
            known = self._known()
            if not self.spec.collector.points.series_columns:
                known.add("")
            states = dict(self.states)
            record = RunRecord(self.name, save_points=False)
            now = time.time()
            for series in sorted(known):
                may = not self._silenced(series, now)
                new, notices = step(states.get(series, SeriesState()), period, verdict, self.rules, may)
                states[series] = record.states[series] = new
                point = Point(series, period, None)
                for notice in notices:
                    alert = self._alert(point, PointReport(point, [], verdict, new, notices), notice)
                    alerts.append(alert)
                    record.outbox.extend(
                        NewOutboxItem(alert.key, self.name, series, a.index, alert.to_json())
                        for a in self.spec.alerters
                    )
            await self.store.commit(record)
            self.states = states
        if record.outbox:
            self.on_alert()
        return alerts

    # -- status --------------------------------------------------------------------------

    def _succeeded(self, report: RunReport, started: float) -> None:
        s = self.status
        s.runs += 1
        s.last_run_at = time.time()
        s.last_duration = time.monotonic() - started
        s.last_error = None
        if report.points:
            newest = max(report.points, key=lambda p: p.point.period)
            s.last_value = newest.point.value
            s.last_period = newest.point.period
        firing = sum(1 for st in self.states.values() if st.status is Status.FIRING)
        pending = sum(1 for st in self.states.values() if st.status is Status.PENDING)
        nodata = sum(1 for st in self.states.values() if st.status is Status.NODATA)
        s.state = "firing" if firing else "pending" if pending else "ok"
        for w in report.warnings:
            if w.startswith(SEVERAL_ROWS):
                if SEVERAL_ROWS in self._warned:
                    continue  # said once: the rule holds for every later period too
                self._warned.add(SEVERAL_ROWS)
            log.warning("check warning", metric=self.name, warning=w)
        tel = self.telemetry
        if tel is not None:
            tel.checks.labels(self.name, "ok").inc()
            tel.metric_up.labels(self.name).set(1)
            tel.series_firing.labels(self.name).set(firing)
            tel.series_nodata.labels(self.name).set(nodata)
            tel.last_run.labels(self.name).set(s.last_run_at)

    def _failed(self, exc: Exception, started: float) -> None:
        profile = self.spec.collector.profile
        line = error_line(exc)
        self.record_failure(f"{self.name} (profile {profile}): {line}" if profile else f"{self.name}: {line}",
                            started)  # fmt: skip

    def record_failure(self, message: str, started: float) -> None:
        """Count a failed run (also one the caller cancelled, e.g. on its timeout): runs,
        failures, last run time and duration, the error, telemetry. `started`: monotonic."""
        s = self.status
        s.runs += 1
        s.failures += 1
        s.last_run_at = time.time()
        s.last_duration = time.monotonic() - started
        s.last_error = message
        s.state = "error"
        tel = self.telemetry
        if tel is not None:
            tel.checks.labels(self.name, "error").inc()
            tel.metric_up.labels(self.name).set(0)
            tel.last_run.labels(self.name).set(s.last_run_at)

    def api(self) -> dict[str, Any]:
        s = self.status
        return {
            "name": self.name,
            "file": self.spec.file,
            "state": s.state,
            "interval": int(self.interval.total_seconds()),
            "last_run": _iso(s.last_run_at),
            "last_duration_seconds": s.last_duration,
            "last_error": s.last_error,
            "last_value": s.last_value,
            "last_period": _iso(s.last_period),
            "runs": s.runs,
            "failures": s.failures,
            "series_error": s.series_error,
            "series": {series or "": st.status.value for series, st in sorted(self.states.items())},
        }

    async def close(self) -> None:
        await self.collector.close()


def error_line(exc: BaseException) -> str:
    from detectkd.errors import CollectError, StorageError
    from detectkd.redact import redact_text

    text = str(exc) if isinstance(exc, CollectError | StorageError) else f"{type(exc).__name__}: {exc}"
    return redact_text(" ".join(text.split()))[:500]


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()
