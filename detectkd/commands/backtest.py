"""`detectkd backtest`: replay history through a metric's own collector, detectors and
alert state machine, exactly as the daemon would have run it live, and report.

Nothing is sent and nothing is stored: the runtime runs on an in-memory store
and every period is judged as if it had been the newest of a live run (so
an alert fires at the period it would have fired). History is collected in
`schedule.batch_load_days` batches.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from detectkd.commands.assertions import Figures
from detectkd.commands.csvsafe import SafeWriter
from detectkd.commands.labelled import Labelled, compare
from detectkd.commands.report import SeriesTrace, render
from detectkd.config.calendars import shown
from detectkd.errors import CollectError, error_line
from detectkd.runtime.judge import charted
from detectkd.runtime.replay import Tally, replay, tally
from detectkd.runtime.runner import RunReport
from detectkd.specs.loader import MetricSpec

# One row per period, series and detector. `state`: the series' alert state after that period;
# `notified`: 1 where the alert rules send a FIRING for that period (first or repeat).
CSV_HEADER = (
    "timestamp",
    "series",
    "detector",
    "value",
    "expected",
    "lower",
    "upper",
    "score",
    "anomaly",
    "state",
    "notified",
)


@dataclass
class Summary(Tally):
    seconds: float = 0.0
    traces: dict[str, SeriesTrace] | None = None  # kept only for --report


async def backtest(
    spec: MetricSpec,
    start: float,
    finish: float,
    output: Path | None = None,
    out: TextIO = sys.stdout,
    report: Path | None = None,
    labels: Labelled | None = None,
) -> int:
    """Exit code: 0 done, 1 the source failed. `labels`: the feedback given on this metric,
    to say how this config meets it."""
    return (await measure(spec, start, finish, output, out, report, labels))[0]


async def measure(
    spec: MetricSpec,
    start: float,
    finish: float,
    output: Path | None = None,
    out: TextIO = sys.stdout,
    report: Path | None = None,
    labels: Labelled | None = None,
) -> tuple[int, Figures]:
    """`backtest`, with what it measured against the labels (for `--assert`)."""
    summary = Summary(traces={} if report is not None else None)
    t0 = time.perf_counter()
    sink = output.open("w", newline="") if output is not None else None
    writer = SafeWriter(sink) if sink is not None else None
    if writer is not None:
        writer.writerow(CSV_HEADER)
    tz = ZoneInfo(spec.config.schedule.timezone)
    try:
        await replay(spec, start, finish, lambda run: account(run, summary, writer, tz))
    except (CollectError, ValueError) as exc:
        print(f"error: {error_line(exc)}", file=out)
        return 1, Figures()
    finally:
        if sink is not None:
            sink.close()
    summary.seconds = time.perf_counter() - t0
    print_summary(spec, summary, tz, start, finish, out)
    got = compare(labels, summary.flagged, tz, out) if labels is not None else None
    if report is not None and summary.traces is not None:
        detectors = [f"{d.id} ({d.type})" for d in spec.detectors]
        events = shown(spec.calendar, start, finish)
        page = render(spec.name, summary.traces, summary.alerts, tz, start, finish, detectors, events)
        report.write_text(page, encoding="utf-8")  # noqa: ASYNC240 (once, at the end of the replay)
        print(f"report: {report} ({len(page.encode()) / 1024:,.0f} KiB)", file=out)
    fired = sum(1 for a in summary.alerts if a.status == "firing" and a.kind == "anomaly" and a.repeat == 0)
    if got is None:
        return 0, Figures(alerts=fired, seconds=finish - start)
    return 0, Figures(got.incidents, got.hits, got.false_alarms, got.raised, fired, finish - start)


def account(report: RunReport, s: Summary, writer: Any, tz: ZoneInfo) -> None:
    """Count one batch of a replay into `s` (and the CSV `writer`, when there is one)."""
    tally(report, s)
    for pr in report.points:
        series = pr.point.series
        if s.traces is not None:
            r = charted(pr.results, pr.verdict.primary)
            trace = s.traces.get(series) or s.traces.setdefault(series, SeriesTrace())
            trace.add(
                pr.point.period,
                pr.point.value,
                r.expected if r else None,
                r.lower if r else None,
                r.upper if r else None,
                pr.verdict.anomalous,
            )
        if writer is None:
            continue
        stamp = datetime.fromtimestamp(pr.point.period, tz).isoformat()
        state = pr.state.status.value
        fired = int(any(n.kind == "anomaly" and n.status == "firing" for n in pr.notices))
        for r in pr.results:
            writer.writerow(
                (
                    stamp,
                    series,
                    r.detector,
                    _n(pr.point.value),
                    _n(r.expected),
                    _n(r.lower),
                    _n(r.upper),
                    "" if r.skipped else f"{r.score:.4f}",
                    int(r.anomaly),
                    state,
                    fired,
                )
            )


def _n(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def print_summary(
    spec: MetricSpec, s: Summary, tz: ZoneInfo, start: float, finish: float, out: TextIO
) -> None:
    def when(ts: float) -> str:
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")

    total = sum(s.points.values())
    firing = [a for a in s.alerts if a.status == "firing" and a.kind == "anomaly" and a.repeat == 0]
    print(f"backtest {spec.name}: {when(start)} .. {when(finish)} ({tz.key})", file=out)
    print(
        f"  {total} points in {len(s.points)} series, {sum(s.anomalous.values())} anomalous, "
        f"{sum(s.missing.values())} without a value; {len(firing)} alerts would have fired "
        f"({total / max(s.seconds, 1e-9):,.0f} points/s)",
        file=out,
    )
    for series in sorted(s.points):
        fired = sum(1 for a in firing if a.series == series)
        label = series or "(single series)"
        print(
            f"  {label}: {s.points[series]} points, {s.anomalous[series]} anomalous, {fired} alerts", file=out
        )
    if s.alerts:
        print("timeline:", file=out)
    for a in s.alerts:
        name = f" {{{a.series}}}" if a.series else ""
        line = f"  {when(a.period)}  {a.headline:<9}{name}"
        if a.kind == "anomaly" and a.status == "firing":
            band = f"[{_n(a.lower)} .. {_n(a.upper)}]"
            line += f"  value {_n(a.value)}, expected {_n(a.expected)} {band} ({a.detector})"
        if a.status == "resolved":
            line += f"  (since {when(a.started_at)})"
        print(line, file=out)
