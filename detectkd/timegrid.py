"""The interval grid every metric's periods sit on.

Intervals shorter than a day (and not a whole number of days) align to the
Unix epoch in UTC; whole-day intervals align to local midnight in the metric's
timezone, so a daily period is a calendar day there (23 or 25 hours across a
DST change). Periods are keyed by the UTC epoch second of their start.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_EPOCH_DAY = date(1970, 1, 1)


class Grid:
    __slots__ = ("days", "step", "tz")

    def __init__(self, interval: timedelta, tz: ZoneInfo | str = "UTC") -> None:
        self.step = int(interval.total_seconds())
        if self.step < 1:
            raise ValueError("interval must be at least one second")
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self.days = self.step // 86400 if self.step % 86400 == 0 else 0

    def floor(self, ts: float) -> int:
        """Start of the period containing `ts` (epoch seconds)."""
        if not self.days:
            t = int(ts // 1)
            return t - t % self.step
        day = datetime.fromtimestamp(ts, self.tz).date()
        n = (day - _EPOCH_DAY).days
        return self._midnight(n - n % self.days)

    def next(self, period: int) -> int:
        """Start of the period after the one starting at `period`."""
        if not self.days:
            return period + self.step
        n = (datetime.fromtimestamp(period, self.tz).date() - _EPOCH_DAY).days
        return self._midnight(n + self.days)

    def prev(self, period: int) -> int:
        if not self.days:
            return period - self.step
        n = (datetime.fromtimestamp(period, self.tz).date() - _EPOCH_DAY).days
        return self._midnight(n - self.days)

    def back(self, period: int, count: int) -> int:
        """The period `count` steps before `period`."""
        if not self.days:
            return period - count * self.step
        n = (datetime.fromtimestamp(period, self.tz).date() - _EPOCH_DAY).days
        return self._midnight(n - count * self.days)

    def periods(self, start: int, finish: int) -> list[int]:
        """Every period start in [start, finish)."""
        out: list[int] = []
        p = self.floor(start)
        if p < start:
            p = self.next(p)
        while p < finish:
            out.append(p)
            p = self.next(p)
        return out

    def batches(self, start: int, finish: int, size_s: float) -> list[tuple[int, int]]:
        """[start, finish) in consecutive pieces of about `size_s` seconds, on the grid, of
        at least one period each: how history is collected (`schedule.batch_load_days`)."""
        out: list[tuple[int, int]] = []
        lo = start
        while lo < finish:
            hi = min(finish, max(self.floor(lo + size_s), self.next(lo)))
            out.append((lo, hi))
            lo = hi
        return out

    def _midnight(self, day_number: int) -> int:
        day = _EPOCH_DAY + timedelta(days=day_number)
        return int(datetime.combine(day, time(), self.tz).timestamp())


def to_dt(ts: float, tz: ZoneInfo | None = None) -> datetime:
    return datetime.fromtimestamp(ts, tz or UTC)


class LocalTime(datetime):
    """A timezone-aware datetime whose text is `YYYY-MM-DD HH:MM:SS` in its own timezone.

    Templates write `'{{ execution_time }}'` into SQL as DetectK users do; the default
    `str()` of an aware datetime ends in `+00:00`, which ClickHouse's `toDateTime` and
    SQLite's string comparisons reject. Methods (`strftime`, `timestamp`, `isoformat`)
    are datetime's."""

    __slots__ = ()

    def __str__(self) -> str:
        return self.strftime("%Y-%m-%d %H:%M:%S")


def local_time(ts: float, tz: ZoneInfo) -> LocalTime:
    return LocalTime.fromtimestamp(ts, tz)


@functools.lru_cache(maxsize=4096)  # a first start renders the same periods for every metric
def fmt_local(ts: float, tz: ZoneInfo) -> str:
    """`YYYY-MM-DD HH:MM:SS` in `tz`: the form query templates receive."""
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")
