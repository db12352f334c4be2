"""Collect a window of periods into points, the many-periods probe, and the timezone probe
for an empty period.

A query that describes one period (`multi_period` false or left to its default) is asked
once per period: a first start's warm-up of 100 periods is 100 queries. Many such queries
can answer a whole range at once all the same (they select rows by `period_start` ..
`period_finish` and return each row's own time). With `multi_period` left unset, a range of
`PROBE_MIN_PERIODS` or more is asked once (`ManyPeriods`); the answer is used when a series
has values in two or more periods and the range's newest period (and the newest period with
a value) come back the same when asked alone. Otherwise, and from then on for the metric,
one query per period. `multi_period: false` never probes.

Period by period, a collector that answers many windows in one call (`ManyWindows`, the
SQLite source) is asked `MANY_WINDOWS` periods at a time, still one query each: a warm-up of
62 periods is four hops to the source's thread instead of 62.

A query reads `'{{ period_start }}'` as text in the metric's timezone. A database that
reads that text in its own session timezone (PostgreSQL's `timestamptz`, ClickHouse's
server timezone) asks for other hours than the metric means: the newest period comes back
empty and the metric shows NO DATA without a word. When that happens in a metric whose
timezone is not UTC, the probe asks once more for the same instants written as UTC text;
rows there mean the times are read in another timezone, and the log says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from detectkd.collectors.base import Collector, Row, Window, too_many_rows
from detectkd.collectors.points import Conversion, Point, rows_to_points
from detectkd.errors import CollectError
from detectkd.specs.loader import MetricSpec
from detectkd.timegrid import Grid, fmt_local, to_dt

OFF_LOOP_ROWS = 500  # results above this many rows are converted in a worker thread (1,000 series: 10 ms)
PROBE_MIN_PERIODS = 3  # a one-period query is asked once for a range of at least this many periods
MANY_WINDOWS = 16  # periods asked in one call of a collector that can (`ManyWindows`)


class ManyPeriods:
    """Whether a one-period query may be asked once for many periods (None: not probed yet),
    decided once per runtime (see the module's docstring)."""

    def __init__(self, spec: MetricSpec) -> None:
        multi = spec.config.collector.multi_period
        self.known: bool | None = False if multi is False or not spec.collector.period_aware else None
        self.probes = 0  # queries spent on the probe (tests, telemetry)

    def wanted(self, spec: MetricSpec, grid: Grid, start: int, finish: int) -> bool:
        if spec.collector.multi_period or self.known is False:
            return False
        return len(grid.periods(start, finish)) >= PROBE_MIN_PERIODS


def windows(spec: MetricSpec, grid: Grid, start: int, finish: int) -> list[Window]:
    interval = spec.config.schedule.interval
    if spec.collector.multi_period:
        return [Window(start, finish, interval, grid.tz)]
    # One query per period, oldest first.
    return [Window(p, grid.next(p), interval, grid.tz) for p in grid.periods(start, finish)]


async def collect(
    collector: Collector,
    spec: MetricSpec,
    grid: Grid,
    start: int,
    finish: int,
    many: ManyPeriods | None = None,
) -> Conversion:
    """The points of [start, finish), the warnings converting the rows gave, and how many
    rows were dropped for a timestamp that is no usable time. `many`: a one-period query
    may be asked once for the range (probed the first time)."""
    if many is not None and many.wanted(spec, grid, start, finish):
        conv = await _ask_once(collector, spec, grid, start, finish, many)
        if conv is not None:
            return conv
    out = Conversion([], [])
    single = not spec.collector.multi_period
    asked = windows(spec, grid, start, finish)
    size = MANY_WINDOWS if hasattr(collector, "collect_many") else 1
    for at in range(0, len(asked), size):
        chunk = asked[at : at + size]
        for window, rows in zip(chunk, await _rows(collector, chunk), strict=True):
            conv = await _ask(collector, spec, grid, window, single, rows)
            out.warnings.extend(conv.warnings)
            out.points.extend(conv.points)
            out.bad_times += conv.bad_times
    return out


async def collect_range(
    collector: Collector, spec: MetricSpec, grid: Grid, start: int, finish: int, many: ManyPeriods
) -> Conversion | None:
    """[start, finish) in one query, or None when the metric's query cannot answer a range at
    once (`multi_period: false`, or a one-period query the probe does not confirm): a load
    that is worth one query only (`runtime.serieswarm`)."""
    if spec.collector.multi_period:
        return await collect(collector, spec, grid, start, finish)
    if many.known is False:
        return None
    return await _ask_once(collector, spec, grid, start, finish, many)


async def _rows(c: Collector, chunk: Sequence[Window]) -> Sequence[list[Row] | None]:
    """The rows of each window of `chunk` in one call when the collector can (None: ask it
    when converting)."""
    many = getattr(c, "collect_many", None)
    if many is None or len(chunk) < 2:
        return [None] * len(chunk)
    rows: list[list[Row]] = await many(chunk)
    return rows


async def _ask(
    c: Collector, spec: MetricSpec, grid: Grid, window: Window, single: bool, rows: list[Row] | None = None
) -> Conversion:
    """The points of `window`: its rows (`rows`: asked already) typed."""
    if rows is None:
        rows = await c.collect(window)
    limit = spec.config.collector.max_rows
    if len(rows) > limit:  # the SQL collectors stop reading at the limit; this is for the others
        raise too_many_rows(limit)
    pspec = spec.collector.points
    if len(rows) > OFF_LOOP_ROWS:  # big results are converted off the event loop
        return await asyncio.to_thread(rows_to_points, rows, pspec, window, grid, single)
    return rows_to_points(rows, pspec, window, grid, single=single)


async def _ask_once(
    collector: Collector, spec: MetricSpec, grid: Grid, start: int, finish: int, many: ManyPeriods
) -> Conversion | None:
    """[start, finish) in one query of a one-period query; None: ask period by period."""
    wide = Window(start, finish, spec.config.schedule.interval, grid.tz)
    try:
        conv = await _ask(collector, spec, grid, wide, single=False)
    except CollectError:  # e.g. more rows than max_rows for the range: one period at a time
        if many.known is None:
            many.known = False
        return None
    if many.known is None:
        many.known = await _confirmed(collector, spec, grid, conv.points, grid.prev(finish), many)
    return conv if many.known else None


async def _confirmed(
    collector: Collector, spec: MetricSpec, grid: Grid, points: list[Point], newest: int, many: ManyPeriods
) -> bool:
    """The range's answer holds values in two or more periods of one series, and its newest
    period, and its newest period with a value, are what the query says of each alone."""
    periods: dict[str, set[int]] = {}
    for p in points:
        if p.value is not None:
            periods.setdefault(p.series, set()).add(p.period)
    if not any(len(v) >= 2 for v in periods.values()):
        return False
    valued = max(p.period for p in points if p.value is not None)
    for period in sorted({newest, valued}):
        window = Window(period, grid.next(period), spec.config.schedule.interval, grid.tz)
        many.probes += 1
        alone = await _ask(collector, spec, grid, window, single=True)
        if _values(alone.points, period) != _values(points, period):
            return False
    return True


def _values(points: list[Point], period: int) -> dict[str, float | None]:
    return {p.series: p.value for p in points if p.period == period}


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
