"""Which points a run judges: series admission (`max_series`) and gaps.

Pure functions of the metric's spec, its grid and what was collected.
"""

from __future__ import annotations

from detectkd.collectors.points import Point
from detectkd.specs.loader import MetricSpec
from detectkd.timegrid import Grid


def admit(points: list[Point], known: set[str], spec: MetricSpec) -> tuple[list[Point], int, str | None]:
    """Refuse new series beyond `max_series` (known series keep being checked).
    Returns the points kept, how many series were refused, and the error to show (or None)."""
    if not spec.collector.points.series_columns:
        return points, 0, None
    limit = spec.config.collector.max_series
    new = sorted({p.series for p in points} - known)
    room = max(0, limit - len(known))
    if len(new) <= room:
        return points, 0, None
    refused = set(new[room:])
    message = (
        f"{spec.name}: series limit reached: {len(refused)} new series refused "
        f"(collector.max_series is {limit}; first refused: {new[room]!r}). "
        "Raise max_series or aggregate in the query."
    )
    return [p for p in points if p.series not in refused], len(refused), message


def fill_missing(points: list[Point], spec: MetricSpec, grid: Grid, start: int, finish: int) -> list[Point]:
    """A single-series metric with no row for a period gets a NULL point (missing, not 0)."""
    if spec.collector.points.series_columns:
        return points
    have = {p.period for p in points}
    missing = [Point("", p, None) for p in grid.periods(start, finish) if p not in have]
    return sorted(points + missing, key=lambda p: p.period) if missing else points


def absent(
    points: list[Point], known: set[str], spec: MetricSpec, grid: Grid, start: int, finish: int
) -> list[Point]:
    """Known series of a multi-series metric with no row for a period: judged as missing."""
    if not spec.collector.points.series_columns:
        return []
    have = {(p.series, p.period) for p in points}
    since = dict.fromkeys(known, start - 1)  # known series: missing from `start` on
    for p in points:  # a series new in this batch is missing only after its first row
        since[p.series] = min(since.get(p.series, p.period), p.period)
    return [
        Point(series, period, None)
        for period in grid.periods(start, finish)
        for series in sorted(since)
        if period > since[series] and (series, period) not in have
    ]
