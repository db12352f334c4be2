"""The judging core: points + memory + alert states -> an `Outcome`.

`judge(points, memory, states, ctx)` detects every point against its
series' window, classifies anomalies against peers, steps each series'
alert state and builds the notifications, the rows to store and the series
to forget. It touches no store, clock, log or telemetry: the runner commits
the outcome and only then replaces its alert states (and rolls `memory`
back when the commit fails, see `SeriesMemory`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from itertools import groupby
from operator import attrgetter
from typing import Any

import jinja2

from detectkd.alerting import resend
from detectkd.alerting.alert import Alert
from detectkd.alerting.state import Notice, Rules, SeriesState, Verdict, decide, step
from detectkd.alerting.why import basis
from detectkd.collectors.points import Point, parse_series_key
from detectkd.config.calendars import during, excluded
from detectkd.detectors.base import BatchDetector, Current, Detector, ManySeriesDetector, Result
from detectkd.durations import format_duration
from detectkd.runtime.memory import SeriesMemory
from detectkd.runtime.peers import Classification, classify, deviation, passes
from detectkd.specs.loader import MetricSpec, source_key
from detectkd.storage.base import NewOutboxItem, RunRecord, StoredDetection
from detectkd.templating import compile_template
from detectkd.timegrid import Grid


@dataclass(slots=True)
class PointReport:
    point: Point
    results: list[Result]
    verdict: Verdict
    state: SeriesState
    notices: list[Notice] = field(default_factory=list)
    peers: Classification | None = None  # peer verification of an anomalous point


def charted(results: list[Result], primary: Result | None) -> Result | None:
    """The result whose band a chart shows: the verdict's, else the first with bounds."""
    if primary is not None and primary.expected is not None:
        return primary
    return next((r for r in results if r.expected is not None), None)


@dataclass(frozen=True)
class JudgeContext:
    """What judging a metric needs besides its points, memory and states: fixed per runtime,
    except the run's own fields (`run()`)."""

    spec: MetricSpec
    detectors: list[Detector]
    rules: Rules
    grid: Grid
    link: jinja2.Template | None = None
    silenced: Callable[[str, float], bool] = lambda series, ts: False
    replay: bool = False  # every period may notify (backtest)
    resend_every: int = 0  # seconds between re-sends to Alertmanager alerters (0: none)
    source: str = ""  # the metric's source (`source_key`)
    # The run's own: the newest due period, whether it may notify, series judged without a row.
    last: int = 0
    notify: bool = False
    absent: frozenset[tuple[str, int]] = frozenset()

    @staticmethod
    def of(
        spec: MetricSpec,
        detectors: list[Detector],
        grid: Grid,
        link_template: str | None = None,
        silenced: Callable[[str, float], bool] | None = None,
        replay: bool = False,
    ) -> JudgeContext:
        return JudgeContext(
            spec,
            detectors,
            Rules.of(spec.conditions, spec.config.schedule.interval),
            grid,
            compile_template(link_template) if link_template else None,
            silenced or (lambda series, ts: False),
            replay,
            0 if replay else resend.every(spec.alerters, spec.config.schedule.interval),
            source_key(spec.collector),
        )

    def run(self, last: int, notify: bool, absent: Sequence[Point] = ()) -> JudgeContext:
        return replace(self, last=last, notify=notify, absent=frozenset((p.series, p.period) for p in absent))


@dataclass
class Outcome:
    reports: list[PointReport] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    states: dict[str, SeriesState] = field(default_factory=dict)  # every series' state after the run
    touched: dict[str, SeriesState] = field(default_factory=dict)  # the states that changed
    forget: set[str] = field(default_factory=set)  # series gone for `forget_after`
    record: RunRecord = field(default_factory=lambda: RunRecord(""))  # what to commit
    anomalies: int = 0


def judge(
    points: Sequence[Point], memory: SeriesMemory, states: Mapping[str, SeriesState], ctx: JudgeContext
) -> Outcome:
    """Judge `points` (ordered by period). Mutates `memory` only (see `SeriesMemory.begin`)."""
    spec = ctx.spec
    out = Outcome(states=dict(states))
    record = out.record = RunRecord(spec.name, save_points=spec.storage.enabled)
    prejudged = _prejudge(points, memory, ctx.detectors)
    gone, absent = out.forget, ctx.absent
    # Asked once, not per point (a replay judges a year of points in one call):
    save_detections, forgets = spec.storage.save_detections, _forgets(spec)
    # Every series of a period is judged before any is decided: peers compare deviations.
    for period, same_period in groupby(points, key=_PERIOD):
        newest = ctx.notify and (period == ctx.last or ctx.replay)
        group = [p for p in same_period if not (p.series in gone and (p.series, p.period) in absent)]
        for pr in _decide_period(group, out.states, newest, memory, prejudged, ctx):
            point, state = pr.point, pr.state
            out.anomalies += pr.verdict.anomalous
            out.reports.append(pr)
            # A known series without a row (`absent`): not stored.
            if not absent or (point.series, point.period) not in absent:
                record.points.append(point)
                if save_detections:
                    record.detections.extend(
                        [StoredDetection(point.series, point.period, r) for r in pr.results]
                    )
            if state is not out.states.get(point.series):
                out.states[point.series] = out.touched[point.series] = state
            for notice in pr.notices:
                alert = alert_for(point, pr, notice, ctx)
                out.alerts.append(alert)
                record.outbox.extend(outbox_rows(alert, spec))
            if newest and ctx.resend_every:
                resend_due(point, pr, ctx, out)
            if forgets and _stale(spec, pr.state, period):
                gone.add(point.series)
                out.states.pop(point.series, None)
                out.touched.pop(point.series, None)
    gone -= set(out.touched)  # forgotten, then back later in the same batch: a new series
    record.states = dict(out.touched)
    record.forget = sorted(gone)
    return out


_PERIOD = attrgetter("period")


def resend_due(point: Point, pr: PointReport, ctx: JudgeContext, out: Outcome) -> None:
    """Re-send the series' active alerts to the Alertmanager alerters when due."""
    state, owed = resend.due(pr.state, pr.notices, point.period, ctx.resend_every)
    if state is not pr.state:
        out.states[point.series] = out.touched[point.series] = state
    targets = [a for a in ctx.spec.alerters if a.type == resend.KIND] if owed else []
    for notice in owed:
        alert = replace(alert_for(point, pr, notice, ctx), resent=point.period)
        payload, name = alert.to_json(), ctx.spec.name
        out.record.outbox.extend(NewOutboxItem(alert.key, name, point.series, a.id, payload) for a in targets)


def _decide_period(
    group: list[Point],
    states: dict[str, SeriesState],
    newest: bool,
    memory: SeriesMemory,
    prejudged: dict[tuple[str, int], list[Result | None]],
    ctx: JudgeContext,
) -> list[PointReport]:
    """Detect every series of one period, classify against peers, then step each state."""
    judged = [_detect(point, memory, prejudged, ctx) for point in group]
    classes = _classify(judged, memory, ctx) if memory.peer_graph is not None else {}
    required = ctx.spec.conditions.peers
    out: list[PointReport] = []
    for point, results, verdict in judged:
        found = classes.get(point.series)
        if verdict.anomalous and not passes(found, required):
            verdict = Verdict(False, verdict.primary)
        # A silenced series advances; what it owes is sent once the silence is over.
        may = newest and not ctx.silenced(point.series, ctx.grid.next(point.period))
        old = states.get(point.series)
        if old is None:  # (not a default argument: that state would be built for every point)
            old = SeriesState()
        new, notices = step(old, point.period, verdict, ctx.rules, may)
        if notices:
            new, verdict = _attribute(old, new, notices, results, verdict)
        out.append(PointReport(point, results, verdict, new, notices, found))
    return out


def _attribute(
    old: SeriesState, new: SeriesState, notices: list[Notice], results: list[Result], verdict: Verdict
) -> tuple[SeriesState, Verdict]:
    """A RESOLVED describes the detector its FIRING named, not whichever scores highest now
    (a threshold's "n/a .. 400" when the z-score fired)."""
    for n in notices:
        if n.kind != "anomaly":
            continue
        if n.status == "firing" and verdict.primary is not None:
            new = replace(new, fired_by=verdict.primary.detector)
        elif n.status == "resolved":
            named = next((r for r in results if r.detector == old.fired_by), None)
            if named is not None:
                verdict = replace(verdict, primary=named)
            new = replace(new, fired_by=None)
    return new, verdict


def _detect(
    point: Point,
    memory: SeriesMemory,
    prejudged: dict[tuple[str, int], list[Result | None]],
    ctx: JudgeContext,
) -> tuple[Point, list[Result], Verdict]:
    window = memory.window(point.series)
    feats = memory.features_at(point.period, point.context) if memory.features else {}
    value = None if point.value is None or point.value != point.value else point.value  # NaN: none
    pre = prejudged.get((point.series, point.period)) if prejudged else None
    if pre is not None and None not in pre:
        results = [r for r in pre if r is not None]  # every detector has judged it
    else:
        history = window.history()
        current = Current(point.period, value, feats, point.series)
        results = [
            r if (r := pre[k] if pre is not None else None) is not None else d.detect(history, current)
            for k, d in enumerate(ctx.detectors)
        ]
    if not window.negative and value is not None and value >= 0:
        # A series never seen below zero (a count) is not expected below zero either.
        for k, r in enumerate(results):  # (`results` is this call's own list)
            if r.lower is not None and r.lower < 0:
                results[k] = replace(r, lower=0.0)
    verdict = decide(results, ctx.spec.conditions)
    if value is None and not verdict.anomalous and not excluded(results):  # no data (unless flagged)
        verdict = Verdict(False, verdict.primary, judged=False, missing=True)
    window.add(point.period, point.value, feats)
    return point, results, verdict


def _prejudge(
    points: Sequence[Point], memory: SeriesMemory, detectors: list[Detector]
) -> dict[tuple[str, int], list[Result | None]]:
    """Results of the detectors that judge a batch at once (`detect_many`), per series for
    all its points of this batch, each against the history before it: the same answers as
    point by point, in one pass of array operations (replays, catch-up, backfill)."""
    if len(points) < 2:  # a live check's one point (before the Protocol checks: they cost)
        return {}
    batched = [(k, d) for k, d in enumerate(detectors) if isinstance(d, BatchDetector)]
    if not batched:
        return {}
    by_series: dict[str, list[Point]] = {}
    for p in points:
        by_series.setdefault(p.series, []).append(p)
    out: dict[tuple[str, int], list[Result | None]] = {}
    ours = [s for s, pts in by_series.items() if len({p.period for p in pts}) == len(pts)]  # else
    currents = {
        series: [
            Current(
                p.period,
                None if p.value is None or p.value != p.value else p.value,
                memory.features_at(p.period, p.context) if memory.features else {},
                series,
            )
            for p in by_series[series]
        ]
        for series in ours
    }
    for _, d in batched:  # one at a time. Many series' state at once (`auto`'s first run's rebuild,
        if len(ours) > 1 and isinstance(d, ManySeriesDetector):  # its new blocks' fits)
            d.prepare([(s, memory.window(s).history) for s in ours], currents)
    for series in ours:
        pts, history = by_series[series], memory.window(series).history()
        for k, d in batched:
            for p, r in zip(pts, d.detect_many(history, currents[series]), strict=True):
                out.setdefault((series, p.period), [None] * len(detectors))[k] = r
    return out


def _classify(
    judged: list[tuple[Point, list[Result], Verdict]], memory: SeriesMemory, ctx: JudgeContext
) -> dict[str, Classification]:
    graph = memory.peer_graph
    p = ctx.spec.config.peers
    assert graph is not None and p is not None
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


def _forgets(spec: MetricSpec) -> bool:
    """A multi-series metric with a `forget_after`: its series may go stale (`_stale`)."""
    return bool(spec.collector.points.series_columns) and spec.config.collector.forget_after is not None


def _stale(spec: MetricSpec, state: SeriesState, period: int) -> bool:
    """A series of a multi-series metric without data for `forget_after` is forgotten."""
    after = spec.config.collector.forget_after
    return (
        _forgets(spec)
        and after is not None
        and state.empty_since is not None
        and period - state.empty_since >= after.total_seconds()
    )


def outbox_rows(alert: Alert, spec: MetricSpec) -> list[NewOutboxItem]:
    """One row per alerter, named by the alerter's stable id."""
    payload = alert.to_json()
    return [NewOutboxItem(alert.key, spec.name, alert.series, a.id, payload) for a in spec.alerters]


def alert_for(point: Point, pr: PointReport, notice: Notice, ctx: JudgeContext) -> Alert:
    r = pr.verdict.primary if notice.kind == "anomaly" else None
    cfg = ctx.spec.config
    return Alert(
        metric=ctx.spec.name,
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
        interval_seconds=ctx.grid.step,
        timezone=cfg.schedule.timezone,
        description=cfg.description,
        tags=tuple(cfg.tags),
        repeat=pr.state.repeats if notice.status == "firing" and notice.kind == "anomaly" else 0,
        url=_render_link(point, ctx),
        kind=notice.kind,
        extra=_extra(pr, ctx, r) if notice.kind == "anomaly" else {},
        detector_params=_params_of(ctx.spec, r.detector) if r else {},
        source=ctx.source,
    )


def _extra(pr: PointReport, ctx: JudgeContext, r: Result | None) -> dict[str, Any]:
    """An anomaly alert's extras: the baseline in words (`alerting.why`), the peers' view."""
    d = next((d for d in ctx.spec.detectors if r is not None and d.id == r.detector), None)
    said = (r.basis if r else None) or (basis(d.type, d.params.model_dump(), ctx.grid.step) if d else None)
    peers = pr.peers.as_extra() if pr.peers is not None else {}
    return ({"basis": said} if said else {}) | peers | during(ctx.spec.calendar, pr.point.period)


def _params_of(spec: MetricSpec, detector: str) -> dict[str, Any]:
    """A detector's parameters as a message shows them (DetectK's `metadata`)."""
    d = next((d for d in spec.detectors if d.id == detector), None)
    if d is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in d.params.model_dump(exclude_none=True).items():
        if isinstance(value, timedelta):
            out[key] = format_duration(value)
        elif isinstance(value, str | int | float | bool):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def _render_link(point: Point, ctx: JudgeContext) -> str | None:
    if ctx.link is None:
        return None
    return ctx.link.render(
        metric=ctx.spec.name,
        series=point.series,
        labels=parse_series_key(point.series),
        period_start=point.period,
        period_finish=ctx.grid.next(point.period),
    )
