"""Rows from any source -> typed points on the metric's grid.

Shared by every collector so that typing rules are the same everywhere:
missing or NaN values become None (stored as NULL, never 0), text in the value
column is an error, timestamps snap to the period grid, rows outside the
requested window are dropped with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from detectkd.collectors.base import Row, Window
from detectkd.durations import format_duration
from detectkd.errors import CollectError
from detectkd.timegrid import Grid

SEVERAL_ROWS = "several rows in one period"  # the warning's prefix (logged once per metric)
# A `series_columns` entry (set by the `prometheus` collector when none are given): each
# row's series key is the dict the row holds under this name.
OWN_LABELS = "__labels__"


@dataclass(frozen=True)
class Point:
    series: str
    period: int
    value: float | None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PointSpec:
    timestamp_column: str
    value_column: str
    context_columns: tuple[str, ...]
    series_columns: tuple[str, ...]


@dataclass
class Conversion:
    points: list[Point]
    warnings: list[str]


def coerce_value(raw: Any, column: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise CollectError(f"value column {column!r} holds a boolean, not a number")
    if isinstance(raw, int | float | Decimal):
        number = float(raw)
    elif isinstance(raw, str | bytes):
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            number = float(text)
        except ValueError:
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise CollectError(f"value column {column!r} holds text {shown!r}, not a number") from None
    else:
        raise CollectError(f"value column {column!r} holds {type(raw).__name__}, not a number")
    return number if math.isfinite(number) else None


def coerce_timestamp(raw: Any, tz: ZoneInfo, column: str) -> float:
    """Epoch seconds. Naive datetimes and strings are read in the metric's timezone."""
    if isinstance(raw, datetime):
        moment = raw if raw.tzinfo else raw.replace(tzinfo=tz)
        return moment.timestamp()
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day, tzinfo=tz).timestamp()
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = float(raw)
        return seconds / 1000.0 if seconds > 1e11 else seconds  # milliseconds
    if isinstance(raw, str):
        text = raw.strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            try:
                return coerce_timestamp(float(text), tz, column)
            except ValueError:
                raise CollectError(f"timestamp column {column!r} holds {raw!r}, not a time") from None
        return coerce_timestamp(parsed, tz, column)
    raise CollectError(f"timestamp column {column!r} holds {type(raw).__name__}, not a time")


def jsonable(raw: Any) -> Any:
    if raw is None or isinstance(raw, bool | int | str):
        return raw
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else None
    if isinstance(raw, Decimal):
        return float(raw)
    if isinstance(raw, datetime):
        return raw.astimezone(UTC).isoformat() if raw.tzinfo else raw.isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    if isinstance(raw, bytes):
        return raw.decode(errors="replace")
    return str(raw)


def series_key(labels: dict[str, Any]) -> str:
    """Canonical series id: `country=DE,device=ios`; "" for a single-series metric."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def parse_series_key(key: str) -> dict[str, str]:
    if not key:
        return {}
    out: dict[str, str] = {}
    for part in key.split(","):
        name, _, value = part.partition("=")
        out[name] = value
    return out


def rows_to_points(
    rows: Sequence[Row], spec: PointSpec, window: Window, grid: Grid, single: bool = False
) -> Conversion:
    """Type rows into points.

    `single`: the query described exactly the one period of `window`; rows
    whose timestamp falls outside it (a period-end label, `now()`) belong to
    that period rather than being dropped.
    """
    warnings: list[str] = []
    by_key: dict[tuple[str, int], Point] = {}
    last_period = grid.prev(window.finish)
    dropped = duplicates = 0
    for row in rows:
        if spec.value_column not in row:
            cols = ", ".join(sorted(row)) or "none"
            raise CollectError(f"result has no value column {spec.value_column!r} (columns: {cols})")
        value = coerce_value(row[spec.value_column], spec.value_column)
        raw_ts = row.get(spec.timestamp_column)
        if raw_ts is None:
            period = last_period
        else:
            period = grid.floor(coerce_timestamp(raw_ts, window.tz, spec.timestamp_column))
            if not window.start <= period < window.finish:
                if not single:
                    dropped += 1
                    continue
                period = last_period
        labels: dict[str, Any] = {}
        for col in spec.series_columns:
            if col == OWN_LABELS:  # the row names its series itself (Prometheus's labels)
                labels.update(row.get(OWN_LABELS) or {})
                continue
            if col not in row:
                raise CollectError(f"result has no series column {col!r}")
            labels[col] = jsonable(row[col])
        context = {col: jsonable(row[col]) for col in spec.context_columns if col in row}
        key = (series_key(labels), period)
        if key in by_key:
            duplicates += 1
        by_key[key] = Point(key[0], period, value, context)
    if dropped:
        warnings.append(f"dropped {dropped} row(s) outside the requested periods")
    if duplicates:
        warnings.append(
            f"{SEVERAL_ROWS}: {duplicates} row(s) fell into a period that already had "
            f"one (each row belongs to the period [t, t + {format_duration(window.interval)}) that holds it; "
            "the last row of a period is kept)"
        )
    points = sorted(by_key.values(), key=lambda p: (p.period, p.series))
    return Conversion(points, warnings)
