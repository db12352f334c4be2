"""Rows -> points without a Python loop per row, for the common shape of a long result
(issue 28: a warm-up of 10,000 metrics spent most of its CPU typing rows one by one, about
8 µs a row, mostly parsing each timestamp's text).

The shape: one series (no `series_columns`), every value a number or None, every timestamp
text of the form `YYYY-MM-DD HH:MM:SS` (or with a `T`) in a timezone of fixed offset (UTC,
`Etc/...`) or every timestamp an epoch number (any zone), on a grid shorter than a day.
Anything else, and anything unusual in such a result (a time that is no date, outside
1900..2200, a value that does not fit a float), returns None: `points.rows_to_points` types
the rows one by one then, with its errors and warnings. So the points, warnings and errors
are the same either way (tested against it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast
from zoneinfo import ZoneInfo

import numpy as np

from detectkd.collectors.base import Row, Window

MIN_ROWS = 8  # fewer rows are typed one by one (as fast: numpy has a fixed cost)
SHAPE = 19  # len("YYYY-MM-DD HH:MM:SS")
_NUMBERS = {float, int, type(None)}
# The epoch seconds a row's time may have (`points.MIN_TIME`, `points.MAX_TIME`).
MIN_TIME, MAX_TIME = -2_208_988_800, 7_258_118_400


class Typed:
    """What a vectorised conversion found: for each point (sorted by period), the index of
    the row it comes from (the last of its period), its period and its value; rows dropped
    outside the window and rows that fell into a period that had one already."""

    __slots__ = ("dropped", "duplicates", "periods", "rows", "values")

    def __init__(
        self, rows: list[int], periods: list[int], values: list[float | None], dropped: int, duplicates: int
    ) -> None:
        self.rows, self.periods, self.values = rows, periods, values
        self.dropped, self.duplicates = dropped, duplicates


def fixed_offset(tz: ZoneInfo) -> int | None:
    """The zone's UTC offset in seconds when it never changes (UTC, `Etc/...`); else None."""
    key = tz.key or ""
    if key != "UTC" and not key.startswith("Etc/"):
        return None
    offset = tz.utcoffset(datetime(2000, 1, 1))
    return int(offset.total_seconds()) if offset is not None else None


def typed(
    rows: Sequence[Row],
    value_column: str,
    timestamp_column: str,
    window: Window,
    step: int,
    last_period: int,
    single: bool,
) -> Typed | None:
    """The rows' points, or None: not this shape (type them one by one)."""
    n = len(rows)
    if n < MIN_ROWS:  # (a live check's row or few: nothing more is looked at)
        return None
    offset = fixed_offset(window.tz)  # (None: only epoch numbers can be typed here)
    try:
        raw_values = [row[value_column] for row in rows]
    except KeyError:  # the one-by-one path names the missing column
        return None
    if not set(map(type, raw_values)) <= _NUMBERS:
        return None
    seconds = _seconds([row.get(timestamp_column) for row in rows], offset)
    if seconds is None:
        return None
    try:
        values = np.array(raw_values, dtype=np.float64)  # None: NaN, then None again below
    except (OverflowError, ValueError, TypeError):
        return None
    if seconds.min() < MIN_TIME or seconds.max() >= MAX_TIME:
        return None
    periods = seconds - seconds % step
    inside = (periods >= window.start) & (periods < window.finish)
    dropped = 0
    index = np.arange(n)
    if single:  # a row outside the one period described belongs to it
        periods[~inside] = last_period
    elif not inside.all():
        dropped = n - int(inside.sum())
        periods, values, index = periods[inside], values[inside], index[inside]
    # The last row of each period: the first one of the reversed rows.
    kept, first = np.unique(periods[::-1], return_index=True)
    picked = index[::-1][first]
    chosen = values[::-1][first]
    finite = np.isfinite(chosen).tolist()
    out = [v if ok else None for v, ok in zip(chosen.tolist(), finite, strict=True)]
    return Typed(picked.tolist(), kept.tolist(), out, dropped, len(periods) - len(kept))


def _seconds(times: list[object], offset: int | None) -> np.ndarray | None:
    """Whole epoch seconds (floored, as `Grid.floor` reads a time) of the rows' times: all
    epoch numbers (milliseconds above 1e11, as `points.coerce_timestamp`; a CSV file's times,
    parsed once by the collector), or all texts of the SQL shape in a zone of fixed `offset`;
    None otherwise (a NaN or infinite number, a bool, text of another shape, a mix)."""
    kinds = set(map(type, times))
    if kinds <= {int, float}:
        try:
            numbers = np.array(times, dtype=np.float64)
        except OverflowError:  # an int beyond a float: one by one
            return None
        if not np.isfinite(numbers).all():
            return None
        numbers = np.where(numbers > 1e11, numbers / 1000.0, numbers)
        if numbers.min() < MIN_TIME or numbers.max() >= MAX_TIME:
            return None
        out: np.ndarray = np.floor(numbers).astype(np.int64)
        return out
    if kinds != {str} or offset is None:
        return None
    texts = cast(list[str], times)
    if set(map(len, texts)) != {SHAPE}:
        return None
    epoch = _epoch(texts)
    return None if epoch is None else epoch - offset


def _epoch(texts: list[str]) -> np.ndarray | None:
    """`YYYY-MM-DD HH:MM:SS` texts (`T` between date and time allowed) as seconds since the
    epoch read as UTC; None: one of them is not of that shape, or no valid time (numpy's
    parser refuses a month 13, a February 30th, an hour 24, a second 60 as
    `datetime.fromisoformat` does)."""
    joined = "".join(texts)
    if not joined.isascii() or not all(joined[at::SHAPE].isdigit() for at in _DIGITS):
        return None
    if any(set(joined[at::SHAPE]) != {char} for at, char in _MARKS):
        return None
    if not set(joined[10::SHAPE]) <= {" ", "T"}:
        return None
    try:
        moments = np.array(texts, dtype="datetime64[s]")
    except ValueError:
        return None
    out: np.ndarray = moments.astype(np.int64)
    return out


_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)
_MARKS = ((4, "-"), (7, "-"), (13, ":"), (16, ":"))
