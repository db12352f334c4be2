"""A metric's run status, its telemetry and its `/api/v1/metrics` entry."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Required, TypedDict

from detectkd.alerting.state import SeriesState, Status
from detectkd.collectors.points import parse_series_key
from detectkd.exposition import Sample
from detectkd.runtime.judge import PointReport, charted
from detectkd.runtime.where import where_lines_of
from detectkd.telemetry import Telemetry


class MetricState(StrEnum):
    """What `/api/v1/metrics` says about a metric as a whole."""

    NEW = "new"  # not run yet
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    ERROR = "error"
    DISABLED = "disabled"


class MetricEntry(TypedDict, total=False):
    """A metric in `/api/v1/metrics`: built by the view (`runtime.view.metric_entry`, from
    `api_entry`), served by the API, drawn by the pages, merged by a `workers:` supervisor.
    A metric that is not running (disabled, or failed to build) has only the required keys,
    its tags and, when it failed, `last_error`."""

    name: Required[str]
    file: Required[str]
    state: Required[str]  # a `MetricState` value
    tags: list[str]
    interval: int  # seconds
    last_run: str | None  # ISO 8601, as every time here
    last_duration_seconds: float | None
    last_error: str | None
    last_value: float | None
    last_period: str | None
    runs: int
    failures: int
    series_error: str | None
    last_warning: str | None
    last_warning_at: str | None
    judging: bool | None
    not_judging: str | None
    judging_series: dict[str, int]  # the newest period's series: judging, cold, no_data, total
    series_not_judging: dict[str, str]  # the first few series not judged -> why, until when
    completeness: str | None
    revised_periods: int
    series: dict[str, str]  # series key -> its alert state
    where: dict[str, list[str]]  # the FIRING series' "Where:" lines (`explain:`)
    next_run: str | None
    source: str  # the SOURCE DOWN grouping key
    error_notified: bool
    silenced_by: list[str]  # silence ids
    history: dict[str, Any]  # a history job's progress (`runtime.historyjob.Job.api`)
    warming: str  # what a staged first start still loads (the history job's note)
    shard: str
    shadow: list[dict[str, Any]]  # `shadow:` variants (`runtime.shadow.ShadowSet.api`)
    late_series: str  # why a late series' history is not loaded (`runtime.freshseries`)


@dataclass
class RunStatus:
    state: MetricState = MetricState.NEW
    last_run_at: float | None = None
    last_duration: float | None = None
    last_error: str | None = None
    last_value: float | None = None
    last_period: int | None = None
    runs: int = 0
    failures: int = 0
    series_error: str | None = None  # the `max_series` limit refused new series
    last_warning: str | None = None  # the newest warning converting rows gave (kept until the next)
    last_warning_at: float | None = None
    judging: bool | None = None  # a series' newest period was judged (None: no run yet)
    not_judging: str | None = None  # why not: warming up, a cold start, no data in the source
    judging_series: dict[str, int] | None = None  # `watch.Watch.counts`
    series_not_judging: dict[str, str] | None = None  # the first few series not judged -> why
    completeness: str | None = None  # the newest period waits to be complete, or was judged incomplete
    revised: int = 0  # judged periods re-judged after late rows changed them (`completeness.recheck`)


class StatusBook:
    """Counts one metric's runs and mirrors them into telemetry."""

    def __init__(self, name: str, telemetry: Telemetry | None, interval_s: float, many: bool = False) -> None:
        """`many`: the metric has `series_columns` (`detectk_metric_series_not_judging`)."""
        self.name = name
        self.telemetry = telemetry
        self.many = many
        self.status = RunStatus()
        if telemetry is not None:
            telemetry.metric_interval.labels(name).set(interval_s)
            if not many:  # (a reload took its `series_columns` away: no count of an earlier runtime)
                with suppress(KeyError):
                    telemetry.series_not_judging.remove(name)

    def judged(
        self,
        judging: bool,
        why: str | None,
        counts: dict[str, int] | None = None,
        series: dict[str, str] | None = None,
    ) -> None:
        """Whether the newest run judged the newest period (of a series, `runtime.watch`), and
        if not why; `counts`: its series by outcome, `series`: the first few not judged."""
        s = self.status
        s.judging, s.not_judging = judging, None if judging else why
        s.judging_series, s.series_not_judging = counts, series or None
        if self.telemetry is not None:
            self.telemetry.metric_judging.labels(self.name).set(1 if judging else 0)
            if self.many and counts is not None:  # (a run waiting for its warm-up saw no series)
                self.telemetry.series_not_judging.labels(self.name).set(counts["total"] - counts["judging"])

    def succeeded(
        self,
        started: float,
        newest: tuple[int, float | None] | None,
        states: Mapping[str, SeriesState],
        exported: Sequence[PointReport] = (),
    ) -> None:
        """`started`: monotonic; `newest`: the newest judged (period, value); `exported`: the
        run's points, for a metric with `export: true` (`detectk_series_*`)."""
        if exported and self.telemetry is not None:
            self.telemetry.export_series(self.name, export_samples(exported))
        s = self.status
        s.runs += 1
        s.last_run_at = time.time()
        s.last_duration = time.monotonic() - started
        s.last_error = None
        if newest is not None:
            s.last_period, s.last_value = newest
        count = {st: 0 for st in Status}
        for st in states.values():
            count[st.status] += 1
        s.state = (
            MetricState.FIRING
            if count[Status.FIRING]
            else MetricState.PENDING
            if count[Status.PENDING]
            else MetricState.OK
        )
        tel = self.telemetry
        if tel is not None:
            tel.checks.labels(self.name, "ok").inc()
            tel.metric_up.labels(self.name).set(1)
            tel.series_firing.labels(self.name).set(count[Status.FIRING])
            tel.series_nodata.labels(self.name).set(count[Status.NODATA])
            tel.last_run.labels(self.name).set(s.last_run_at)

    def failed(self, message: str, started: float) -> None:
        """A failed run (also one the caller cancelled, e.g. on its timeout): runs, failures,
        last run time and duration, the error, telemetry. `started`: monotonic."""
        s = self.status
        s.runs += 1
        s.failures += 1
        s.last_run_at = time.time()
        s.last_duration = time.monotonic() - started
        s.last_error = message
        s.state = MetricState.ERROR
        tel = self.telemetry
        if tel is not None:
            tel.checks.labels(self.name, "error").inc()
            tel.metric_up.labels(self.name).set(0)
            tel.last_run.labels(self.name).set(s.last_run_at)

    def observe(self, collect_s: float, detect_s: float, store_s: float, points: int, anomalies: int) -> None:
        tel = self.telemetry
        if tel is None:
            return
        stage = tel.stage_duration
        stage["collect"].observe(collect_s)
        stage["detect"].observe(detect_s)
        stage["store"].observe(store_s)
        tel.points.labels(self.name).inc(points)
        if anomalies:
            tel.anomalies.labels(self.name).inc(anomalies)

    def converted(self, warnings: list[str], bad_times: int) -> None:
        """What converting a run's rows said: the newest warning, and rows dropped for a
        timestamp that is no usable time (NaN, infinite, absurd)."""
        if warnings:
            self.status.last_warning, self.status.last_warning_at = warnings[-1], time.time()
        if bad_times and self.telemetry is not None:
            self.telemetry.rows_dropped.labels(self.name, "bad_timestamp").inc(bad_times)

    def refused(self, count: int) -> None:
        if self.telemetry is not None:
            self.telemetry.series_refused.labels(self.name).inc(count)


def api_entry(
    name: str, file: str, interval_s: float, s: RunStatus, states: Mapping[str, SeriesState]
) -> MetricEntry:
    return {
        "name": name,
        "file": file,
        "state": s.state.value,
        "interval": int(interval_s),
        "last_run": iso(s.last_run_at),
        "last_duration_seconds": s.last_duration,
        "last_error": s.last_error,
        "last_value": s.last_value,
        "last_period": iso(s.last_period),
        "runs": s.runs,
        "failures": s.failures,
        "series_error": s.series_error,
        "last_warning": s.last_warning,
        "last_warning_at": iso(s.last_warning_at),
        "judging": s.judging,
        "not_judging": s.not_judging,
        "judging_series": s.judging_series or {},
        "series_not_judging": s.series_not_judging or {},
        "completeness": s.completeness,
        "revised_periods": s.revised,
        "series": {series or "": st.status.value for series, st in sorted(states.items())},
        # the FIRING series' "Where:" lines (`explain:`)
        "where": {k or "": lines for k, st in sorted(states.items()) if (lines := where_lines_of(st))},
    }


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def export_samples(points: Sequence[PointReport]) -> dict[str, tuple[dict[str, str], Sample]]:
    """Per series, its labels and the newest period's value, expected band and score (of the
    detection the chart shows: the verdict's, else the first with bounds)."""
    newest: dict[str, PointReport] = {}
    for pr in points:
        seen = newest.get(pr.point.series)
        if seen is None or pr.point.period >= seen.point.period:
            newest[pr.point.series] = pr
    out: dict[str, tuple[dict[str, str], Sample]] = {}
    for key, pr in newest.items():
        r = charted(pr.results, pr.verdict.primary)
        score = max((x.score for x in pr.results if not x.skipped), default=None)
        band = (r.expected, r.lower, r.upper) if r is not None else (None, None, None)
        out[key] = (parse_series_key(key), (pr.point.value, *band, score))
    return out
