"""Collect a window of periods into points, and the timezone probe for an empty period.

A query reads `'{{ period_start }}'` as text in the metric's timezone. A database that
reads that text in its own session timezone (PostgreSQL's `timestamptz`, ClickHouse's
server timezone) asks for other hours than the metric means: the newest period comes back
empty and the metric shows NO DATA without a word. When that happens in a metric whose
timezone is not UTC, the probe asks once more for the same instants written as UTC text;
rows there mean the times are read in another timezone, and the log says so.
"""

from __future__ import annotations

import asyncio

from detectkd.collectors.base import Collector, Window, too_many_rows
from detectkd.collectors.points import Conversion, rows_to_points
from detectkd.specs.loader import MetricSpec
from detectkd.timegrid import Grid, fmt_local, to_dt

OFF_LOOP_ROWS = 5_000  # results above this many rows are converted in a worker thread


def windows(spec: MetricSpec, grid: Grid, start: int, finish: int) -> list[Window]:
    interval = spec.config.schedule.interval
    if spec.collector.multi_period:
        return [Window(start, finish, interval, grid.tz)]
    # One query per period, oldest first.
    return [Window(p, grid.next(p), interval, grid.tz) for p in grid.periods(start, finish)]


async def collect(collector: Collector, spec: MetricSpec, grid: Grid, start: int, finish: int) -> Conversion:
    """The points of [start, finish), the warnings converting the rows gave, and how many
    rows were dropped for a timestamp that is no usable time."""
    out = Conversion([], [])
    limit = spec.config.collector.max_rows
    single = not spec.collector.multi_period
    for window in windows(spec, grid, start, finish):
        rows = await collector.collect(window)
        if len(rows) > limit:  # the SQL collectors stop reading at the limit; this is for the others
            raise too_many_rows(limit)
        pspec = spec.collector.points
        if len(rows) > OFF_LOOP_ROWS:  # big results are converted off the event loop
            conv = await asyncio.to_thread(rows_to_points, rows, pspec, window, grid, single)
        else:
            conv = rows_to_points(rows, pspec, window, grid, single=single)
        out.warnings.extend(conv.warnings)
        out.points.extend(conv.points)
        out.bad_times += conv.bad_times
    return out


async def timezone_probe(collector: Collector, spec: MetricSpec, grid: Grid, period: int) -> str | None:
    """Why the period `period` may have come back empty (None: no sign of a timezone mix-up)."""
    tz = grid.tz
    offset = to_dt(period, tz).utcoffset()
    shift = int(offset.total_seconds()) if offset is not None else 0
    if shift == 0 or not spec.collector.period_aware:
        return None
    if getattr(type(spec.collector.params), "EPOCH_TIMES", False):  # no text time to misread
        return None
    finish = grid.next(period)
    # The instants of the period written as UTC text: what a UTC session reads correctly.
    probe = Window(period - shift, finish - shift, spec.config.schedule.interval, tz)
    try:
        rows = await collector.collect(probe)
    except Exception:  # best effort: the probe never fails the run it follows
        return None
    column = spec.collector.points.value_column
    if not any(row.get(column) is not None for row in rows):
        return None
    return (
        f"the query returned no value for {fmt_local(period, tz)} .. {fmt_local(finish, tz)} "
        f"({tz.key}) but does for the same instants written in UTC: the database reads "
        "'{{ period_start }}' in its own session timezone. Compare with period_start_ts / "
        "period_finish_ts (epoch seconds; PostgreSQL: to_timestamp({{ period_start_ts }})), "
        "or set the metric's timezone to the database's"
    )
