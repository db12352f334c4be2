"""Rows from any source -> typed points on the metric's grid.

Shared by every collector so that typing rules are the same everywhere:
missing or NaN values become None (stored as NULL, never 0), text in the value
column is an error, timestamps snap to the period grid, rows outside the
requested window are dropped with a warning, and so are rows whose timestamp is
NaN, infinite or absurd (before 1900, from 2200 on): counted and named, the other
rows are kept. Errors say what is wrong with a cell without quoting it (a cell may
be a fragment of a file or of an internal HTTP answer).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from detectkd.collectors.base import Row, Window
from detectkd.collectors.fastrows import typed
from detectkd.durations import format_duration
from detectkd.errors import CollectError
from detectkd.timegrid import Grid

SEVERAL_ROWS = "several rows in one period"  # the warning's prefix (logged once per metric)
# The epoch seconds a row's time may have: 1900-01-01 to 2200-01-01 (UTC).
MIN_TIME, MAX_TIME = -2_208_988_800.0, 7_258_118_400.0
# A `series_columns` entry (set by the `prometheus` collector when none are given): each
# row's series key is the dict the row holds under this name.
OWN_LABELS = "__labels__"


@dataclass(frozen=True, slots=True)  # slots: a 30-day batch holds hundreds of thousands
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
    bad_times: int = 0  # rows dropped: NaN, infinite or absurd timestamp


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
            raise CollectError(f"value column {column!r} holds text, not a number ({_size(text)})") from None
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
                raise CollectError(
                    f"timestamp column {column!r} holds text, not a time ({_size(raw)})"
                ) from None
        return coerce_timestamp(parsed, tz, column)
    raise CollectError(f"timestamp column {column!r} holds {type(raw).__name__}, not a time")


def _size(text: str) -> str:
    """How much text a cell holds: what an error may say of it (not the text itself)."""
    return f"{len(text):,} characters" if len(text) != 1 else "1 character"


_NAME = re.compile(r"[A-Za-z_]\w{0,31}")


def _names(row: Row) -> str:
    """A row's column names for an error: names that look like names (at most 10); the
    others (an HTML line as a CSV header, a data value as a JSON key) only counted."""
    names = sorted(str(k) for k in row)
    shown = [n for n in names if _NAME.fullmatch(n)][:10]
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" and {rest} other(s) not shown" if rest else "") if names else "none"


def _shown_time(raw: Any) -> str:
    """A dropped timestamp, as the warning names it: numbers as they are, text by its size."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return f"{raw:g}" if isinstance(raw, float) else str(raw)
    if isinstance(raw, date):
        return raw.isoformat()
    return f"text of {_size(str(raw))}"


def usable_time(raw: Any, tz: ZoneInfo, column: str) -> float | None:
    """Epoch seconds of `raw`, or None when it is NaN, infinite or absurd (outside
    1900..2200). Text that is not a time at all is an error (CollectError)."""
    try:
        seconds = coerce_timestamp(raw, tz, column)
    except (OverflowError, OSError):  # year 1 in a zone west of UTC, 10**400 ...
        return None
    return seconds if MIN_TIME <= seconds < MAX_TIME else None  # NaN fails both


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


_NAME_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\="})
_VALUE_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,"})


def series_key(labels: dict[str, Any]) -> str:
    """Canonical series id: `country=DE,device=ios`; "" for a single-series metric.

    A `\\` or `,` in a value (and a `=` in a name) is escaped with a backslash, so distinct
    label sets have distinct keys and a value cannot add a label (`DE,severity=critical`
    stays one value). Keys of other values are what they always were: the alert states and
    windows stored under them still match.
    """
    return ",".join(
        f"{str(k).translate(_NAME_ESCAPES)}={str(v).translate(_VALUE_ESCAPES)}" for k, v in labels.items()
    )


def parse_series_key(key: str) -> dict[str, str]:
    """The labels of `series_key`: split at unescaped `,`, each part at its first unescaped `=`."""
    out: dict[str, str] = {}
    if not key:
        return out
    name: str | None = None
    text: list[str] = []
    escaped = False
    for ch in key + ",":
        if escaped:
            text.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "=" and name is None:
            name, text = "".join(text), []
        elif ch == ",":
            out[name if name is not None else "".join(text)] = "".join(text) if name is not None else ""
            name, text = None, []
        else:
            text.append(ch)
    return out


def rows_to_points(
    rows: Sequence[Row], spec: PointSpec, window: Window, grid: Grid, single: bool = False
) -> Conversion:
    """Type rows into points.

    `single`: the query described exactly the one period of `window`; rows
    whose timestamp falls outside it (a period-end label, `now()`) belong to
    that period rather than being dropped.
    """
    last_period = grid.prev(window.finish)
    if not spec.series_columns and not grid.days:  # a long result of the common shape: numpy
        fast = typed(rows, spec.value_column, spec.timestamp_column, window, grid.step, last_period, single)
        if fast is not None:
            cols = spec.context_columns
            points = [
                Point("", p, v, {c: jsonable(rows[i][c]) for c in cols if c in rows[i]})
                for i, p, v in zip(fast.rows, fast.periods, fast.values, strict=True)
            ]
            return Conversion(points, _warnings(spec, window, 0, "", fast.dropped, fast.duplicates))
    by_key: dict[tuple[str, int], Point] = {}
    dropped = duplicates = bad = 0
    first_bad = ""
    for n, row in enumerate(rows, start=1):
        if spec.value_column not in row:
            raise CollectError(f"result has no value column {spec.value_column!r} (columns: {_names(row)})")
        value = coerce_value(row[spec.value_column], spec.value_column)
        raw_ts = row.get(spec.timestamp_column)
        if raw_ts is None:
            period = last_period
        else:
            seconds = usable_time(raw_ts, window.tz, spec.timestamp_column)
            if seconds is None:  # one bad row does not fail the run: dropped, counted, named
                bad += 1
                first_bad = first_bad or f"row {n}: {_shown_time(raw_ts)}"
                continue
            period = grid.floor(seconds)
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
    points = sorted(by_key.values(), key=lambda p: (p.period, p.series))
    return Conversion(points, _warnings(spec, window, bad, first_bad, dropped, duplicates), bad)


def _warnings(
    spec: PointSpec, window: Window, bad: int, first_bad: str, dropped: int, duplicates: int
) -> list[str]:
    """What a conversion says of the rows it dropped or replaced."""
    warnings: list[str] = []
    if bad:
        warnings.append(
            f"dropped {bad} row(s) whose {spec.timestamp_column!r} is not a usable time "
            f"(NaN, infinite, before 1900 or from 2200 on; first: {first_bad})"
        )
    if dropped:
        warnings.append(f"dropped {dropped} row(s) outside the requested periods")
    if duplicates:
        warnings.append(
            f"{SEVERAL_ROWS}: {duplicates} row(s) fell into a period that already had "
            f"one (each row belongs to the period [t, t + {format_duration(window.interval)}) that holds it; "
            "the last row of a period is kept)"
        )
    return warnings
