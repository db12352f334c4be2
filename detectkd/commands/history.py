"""`detectkd load-history` and `detectkd export`: a metric's stored history, in and out.

load-history collects a range through the metric's own collector in
`schedule.batch_load_days` batches, stores the points and the detections
computed point-in-time (each point judged against the history before it),
and sends nothing. Each batch commits with the watermark, so an interrupted
load resumes after the last stored batch. Alert state is not written: the
running daemon owns it.

export writes the stored points with their detections as CSV.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TextIO
from zoneinfo import ZoneInfo

import structlog

from detectkd.alerting.feedback import Feedback
from detectkd.commands.check import metric_env
from detectkd.commands.csvsafe import SafeWriter
from detectkd.config.settings import Settings
from detectkd.errors import CollectError, StorageError, error_line
from detectkd.runtime.parts import BACKFILL
from detectkd.runtime.slot import MetricSlot, assemble, data_store
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import StoredDetection, StoredPoint
from detectkd.timegrid import fmt_local

log = structlog.get_logger("detectkd.commands.history")

EXPORT_HEADER = (
    "timestamp",
    "series",
    "value",
    "detector",
    "expected",
    "lower",
    "upper",
    "score",
    "anomaly",
    "direction",
    "skipped",
    "feedback",
    "feedback_by",
    "feedback_note",
)


@dataclass
class Progress:
    """A bar on a terminal, a log line per batch otherwise."""

    metric: str
    total: int  # seconds to load
    out: TextIO
    tty: bool

    def update(self, done: int, until: int, points: int, anomalies: int, tz: ZoneInfo) -> None:
        share = min(1.0, done / self.total) if self.total else 1.0
        if self.tty:
            bar = "#" * int(share * 30)
            self.out.write(
                f"\r{self.metric}  [{bar:<30}] {share:4.0%}  up to {fmt_local(until, tz)}  "
                f"{points:,} points, {anomalies:,} anomalous"
            )
            self.out.flush()
        else:
            log.info(
                "history batch loaded",
                metric=self.metric,
                progress=round(share, 3),
                until=fmt_local(until, tz),
                points=points,
                anomalies=anomalies,
            )

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")


async def load_history(
    spec: MetricSpec,
    settings: Settings,
    start: float | None,
    finish: float | None,
    resume: bool = True,
    out: TextIO = sys.stdout,
    progress_out: TextIO = sys.stderr,
) -> int:
    """Exit code: 0 loaded, 1 the source or the store failed, 2 nothing to load from."""
    try:
        async with metric_env(settings) as deps:
            # The daemon owns alert state: a replay must not overwrite it.
            slot = assemble(spec, replace(deps, mode=BACKFILL))
            return await _load(slot, start, finish, resume, out, progress_out)
    except StorageError as exc:
        print(f"error: {exc}", file=out)
        return 1


async def _load(
    slot: MetricSlot,
    start: float | None,
    finish: float | None,
    resume: bool,
    out: TextIO,
    progress_out: TextIO,
) -> int:
    spec, rt = slot.spec, slot.runtime
    begin = start if start is not None else rt.start_time()
    if begin is None:
        print(f"error: {spec.name}: give --from (the metric has no schedule.start_time)", file=out)
        return 2
    end = rt.finish_for(time.time()) if finish is None else rt.grid.floor(finish)
    lo = rt.grid.floor(begin)
    watermark = await rt.store.watermark(spec.name)
    if resume and watermark is not None and lo <= watermark < end:
        lo = rt.grid.next(watermark)
        print(f"resuming after {fmt_local(watermark, rt.tz)} (stored watermark)", file=out)
    if lo >= end:
        print(f"{spec.name}: nothing to load (up to date)", file=out)
        return 0
    bar = Progress(spec.name, end - lo, progress_out, progress_out.isatty())
    points = anomalies = 0
    first = lo
    try:
        for lo, hi in rt.grid.batches(first, end, spec.config.schedule.batch_load_days * 86400):
            try:
                report = await rt.check(lo, hi, notify=False, commit=True)
            except (CollectError, StorageError, ValueError) as exc:
                bar.finish()
                where = fmt_local(lo, rt.tz)
                print(f"error: {error_line(exc)} (batch from {where}; rerun to resume)", file=out)
                return 1
            points += sum(1 for p in report.points if p.point.value is not None)
            anomalies += sum(1 for p in report.points if p.verdict.anomalous)
            bar.update(hi - first, hi, points, anomalies, rt.tz)
    finally:
        await slot.stop()
    bar.finish()
    print(
        f"{spec.name}: loaded {points:,} points ({anomalies:,} anomalous) from "
        f"{fmt_local(first, rt.tz)} to {fmt_local(end, rt.tz)}; no notifications were sent",
        file=out,
    )
    return 0


async def export(
    spec: MetricSpec, settings: Settings, start: float, finish: float, out: TextIO = sys.stdout
) -> int:
    """Stored points and detections as CSV: one row per point and detector (a point without
    detections gets one row with an empty detector)."""
    try:
        async with metric_env(settings) as deps:
            data = await data_store(spec, deps)
            points = await data.read_points(spec.name, None, int(start), int(finish))
            detections = await data.read_detections(spec.name, int(start), int(finish))
            labels = [Feedback.from_json(t) for t in await deps.store.feedback_load(spec.name)]
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    tz = ZoneInfo(spec.config.schedule.timezone)
    writer = SafeWriter(out)  # labels and notes are not formulas for a spreadsheet
    writer.writerow(EXPORT_HEADER)
    writer.writerows(export_rows(points, detections, tz, labels))
    return 0


def export_rows(
    points: dict[str, list[StoredPoint]],
    detections: list[StoredDetection],
    tz: ZoneInfo,
    labels: Sequence[Feedback] = (),
) -> Iterable[tuple[str, ...]]:
    """`labels`: feedback; a point inside a label's span carries its label, who, and note."""
    by_point: dict[tuple[str, int], list[StoredDetection]] = {}
    for d in detections:
        by_point.setdefault((d.series, d.period), []).append(d)
    for series in sorted(points):
        mine = [f for f in labels if f.series == series]
        for p in points[series]:
            stamp = datetime.fromtimestamp(p.period, tz).isoformat()
            value = _n(p.value)
            fb = next((f for f in mine if f.covers(p.period)), None)
            said = (fb.label, fb.by, fb.note) if fb is not None else ("", "", "")
            found = by_point.get((series, p.period), [])
            if not found:
                yield (stamp, series, value, "", "", "", "", "", "", "", "", *said)
            for d in found:
                r = d.result
                yield (
                    stamp,
                    series,
                    value,
                    r.detector,
                    _n(r.expected),
                    _n(r.lower),
                    _n(r.upper),
                    "" if r.skipped else f"{r.score:.6g}",
                    str(int(r.anomaly)),
                    r.direction or "",
                    r.skipped or "",
                    *said,
                )


def _n(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.10g}"
