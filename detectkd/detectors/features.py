"""Seasonal features derived from a period's timestamp in the metric's timezone.

Used when a detector names a feature that the query did not return as a
context column. Numbering follows ClickHouse (which DetectK queries used):
day_of_week 1 = Monday ... 7 = Sunday.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

_FROM_TIME: dict[str, Callable[[datetime], int]] = {
    "hour_of_day": lambda d: d.hour,
    "hour": lambda d: d.hour,
    "minute_of_hour": lambda d: d.minute,
    "day_of_week": lambda d: d.isoweekday(),
    "dow": lambda d: d.isoweekday(),
    "day_of_month": lambda d: d.day,
    "month": lambda d: d.month,
    "hour_of_week": lambda d: (d.isoweekday() - 1) * 24 + d.hour,
    "is_weekend": lambda d: int(d.isoweekday() >= 6),
}


# A calendar's `like: sunday` day: its weekday features as that weekday's (ISO: Monday = 1).
_AS_WEEKDAY: dict[str, Callable[[datetime, int], int]] = {
    "day_of_week": lambda d, w: w,
    "dow": lambda d, w: w,
    "hour_of_week": lambda d, w: (w - 1) * 24 + d.hour,
    "is_weekend": lambda d, w: int(w >= 6),
}


def feature_value(
    name: str, period: int, context: dict[str, Any], tz: ZoneInfo, weekday: int | None = None
) -> float:
    """The feature as a float: from the context if present, else from the time, else NaN.
    `epoch:COLUMN` is the context column read as a time (epoch seconds). `weekday` (ISO)
    stands in for the period's own in the weekday features (a calendar's `like` day)."""
    if name.startswith("epoch:"):
        return as_epoch(context.get(name[6:]), tz)
    if name in context:
        return as_float(context[name])
    if weekday is not None and name in _AS_WEEKDAY:
        return float(_AS_WEEKDAY[name](datetime.fromtimestamp(period, tz), weekday))
    fn = _FROM_TIME.get(name)
    if fn is None:
        return float("nan")
    return float(fn(datetime.fromtimestamp(period, tz)))


def as_epoch(raw: Any, tz: ZoneInfo) -> float:
    """A time from a row: epoch seconds, a datetime or an ISO text (naive: the metric's zone)."""
    if raw is None or isinstance(raw, bool):
        return float("nan")
    if isinstance(raw, int | float):
        return float(raw)
    try:
        moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    except ValueError:
        return float("nan")
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).timestamp()


def as_float(raw: Any) -> float:
    """Context values may be text (`weekday`): compare them by a stable hash."""
    if raw is None:
        return float("nan")
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, int | float):
        return float(raw)
    try:
        return float(raw)
    except (TypeError, ValueError):
        return float(zlib.crc32(str(raw).encode()))
