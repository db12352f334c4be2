"""Calendars: which days (or hours) are special for a metric, and what that means.

A metric file's `calendars:` names public holidays (the `holidays` package), event files
(YAML or CSV: campaigns, releases, migrations, `detectkd.config.events`) and recurring
business calendars (weekdays, local times, days of the month). Each says what a period in
it means (`mode`):

- `alert` (the default): judged as usual; an alert during it names the event.
- `like: sunday`: judged as if the day were that weekday (seasonal baselines use the
  history of that weekday); still alerted, with the event named.
- `exclude`: kept out of the baselines and never alerted (still stored and shown).

Naming a calendar never mutes anything by itself: muting is a choice (`like`, `exclude`).
A `Calendar` is the metric's calendars compiled for its timezone: what a period is
(`at`), and the vectorised questions detection asks (`excluded`, `like_shift`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator, model_validator

from detectkd.config.types import Frozen

Mode = Literal["alert", "like", "exclude"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 86400
MAX_YEARS = 60  # holidays are expanded for at most this many years at once (a page's range)
_TIMES = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def weekday_index(raw: object) -> int:
    """`sunday`, `Sun`, `sun` -> 6 (Monday = 0)."""
    text = str(raw).strip().lower()
    for i, name in enumerate(WEEKDAYS):
        if len(text) >= 3 and name.startswith(text):
            return i
    raise ValueError(f"not a weekday: {raw!r} (use monday ... sunday, or mon ... sun)")


def weekday_list(parts: Sequence[object]) -> tuple[int, ...]:
    """`[mon-fri, sat]` -> (0, 1, 2, 3, 4, 5); a range may wrap (`fri-mon`)."""
    out: list[int] = []
    for part in parts:
        for piece in str(part).split(","):
            piece = piece.strip()
            if "-" in piece:
                a, b = (weekday_index(x) for x in piece.split("-", 1))
                out.extend(k % 7 for k in range(a, b + 1 if b >= a else b + 8))
            elif piece:
                out.append(weekday_index(piece))
    return tuple(dict.fromkeys(out))


def time_ranges(texts: Sequence[str]) -> tuple[tuple[time, time | None], ...]:
    """`["09:00-17:00"]` -> local [start, end) times; an end of 24:00 (or 00:00) is midnight."""
    out: list[tuple[time, time | None]] = []
    for text in texts:
        m = _TIMES.match(str(text))
        if m is None:
            raise ValueError(f"not a time range: {text!r} (use HH:MM-HH:MM)")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"not a time range: {text!r}")
        end = None if (h2, m2) in ((24, 0), (0, 0)) else time(h2, m2)
        if end is not None and end <= time(h1, m1):
            raise ValueError(f"{text!r}: the end is not after the start (a range ends by midnight)")
        out.append((time(h1, m1), end))
    return tuple(out)


class CalendarRef(Frozen):
    """One entry of `calendars:`: exactly one of `holidays`, `file`, `weekdays`/`monthdays`."""

    holidays: str | None = None  # a country's public holidays (ISO 3166 code, e.g. US, DE, GB)
    subdiv: str | None = None  # with `holidays`: a state, province or region (e.g. NY)
    file: str | None = None  # an event file (YAML or CSV), relative to the metric file
    weekdays: list[str] | None = None  # recurring: these weekdays (mon-fri, sat, ...)
    times: list[str] = Field(default_factory=list)  # recurring: only these local times (HH:MM-HH:MM)
    monthdays: list[int] | None = None  # recurring: these days of the month (1..31; -1: the last)
    name: str | None = Field(default=None, max_length=200)  # the events' name (holidays: their own)
    mode: Mode | None = None  # alert (default), like (with `like`) or exclude
    like: str | None = None  # judge its days as this weekday (sunday); implies `mode: like`

    @field_validator("like")
    @classmethod
    def _like(cls, value: str | None) -> str | None:
        return None if value is None else WEEKDAYS[weekday_index(value)]

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [WEEKDAYS[i] for i in weekday_list(value)]

    @field_validator("times")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        time_ranges(value)
        return value

    @field_validator("monthdays")
    @classmethod
    def _monthdays(cls, value: list[int] | None) -> list[int] | None:
        for d in value or []:
            if not (1 <= d <= 31 or d == -1):
                raise ValueError(f"not a day of the month: {d} (1..31, or -1 for the last)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CalendarRef:
        recurring = self.weekdays is not None or self.monthdays is not None
        kinds = [self.holidays is not None, self.file is not None, recurring]
        if sum(kinds) != 1:
            raise ValueError(
                "a calendar is one of: `holidays: US`, `file: events.yaml`, `weekdays:`/`monthdays:`"
            )
        if self.subdiv is not None and self.holidays is None:
            raise ValueError("`subdiv` goes with `holidays`")
        if self.times and not recurring:
            raise ValueError("`times` goes with `weekdays` or `monthdays`")
        if self.mode == "like" and self.like is None:
            raise ValueError("`mode: like` needs `like: WEEKDAY` (e.g. like: sunday)")
        if self.like is not None and self.mode not in (None, "like"):
            raise ValueError(f"`like` goes with `mode: like`, not `mode: {self.mode}`")
        return self

    @property
    def effective_mode(self) -> Mode:
        return self.mode or ("like" if self.like is not None else "alert")


@dataclass(frozen=True)
class Hit:
    """What a period is in the calendars: the strongest mode among the events it is in
    (exclude, then like, then alert), the weekday a `like` judges it as, the events' names."""

    mode: Mode
    names: tuple[str, ...]
    like: int | None = None  # Monday = 0

    @property
    def during(self) -> str:
        return ", ".join(self.names)


@dataclass(frozen=True)
class Event:
    """One occurrence: [start, end) in epoch seconds."""

    name: str
    start: int
    end: int
    mode: Mode
    like: int | None = None


RANK = {"alert": 0, "like": 1, "exclude": 2}


class Source:
    """A compiled calendar entry: the events of one local day."""

    mode: Mode = "alert"
    like: int | None = None

    def on(self, day: date, tz: ZoneInfo) -> list[Event]:
        raise NotImplementedError


@dataclass(eq=False)
class Calendar:
    """A metric's calendars, compiled for its timezone."""

    tz: ZoneInfo
    sources: list[Source]
    digest: str = ""  # what the calendars are (files' contents included): part of the fingerprint
    _days: dict[date, list[Event]] = field(default_factory=dict, repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Calendar) and other.digest == self.digest

    __hash__ = None  # type: ignore[assignment]

    @cached_property
    def modes(self) -> set[Mode]:
        """The modes any of its events can have (asked per point: computed once)."""
        return {s.mode for s in self.sources} | {m for s in self.sources for m in getattr(s, "modes", ())}

    def day(self, day: date) -> list[Event]:
        got = self._days.get(day)
        if got is None:
            if len(self._days) > 20_000:
                self._days.clear()
            got = self._days[day] = [e for s in self.sources for e in s.on(day, self.tz)]
        return got

    def at(self, ts: float) -> Hit | None:
        """The calendars' view of the period starting at `ts` (its local day in the metric's zone)."""
        local = datetime.fromtimestamp(ts, self.tz)
        found = [e for e in self.day(local.date()) if e.start <= ts < e.end]
        if not found:
            return None
        top = max(found, key=lambda e: RANK[e.mode])
        names = tuple(dict.fromkeys(e.name for e in found))
        return Hit(top.mode, names, top.like if top.mode == "like" else None)

    def excluded(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Per time: in an `exclude` event."""
        if "exclude" not in self.modes:
            return np.zeros(times.size, bool)
        rank, _, _ = self._ranked(times)
        out: npt.NDArray[np.bool_] = rank == RANK["exclude"]
        return out

    def excluded_at(self, ts: int) -> bool:
        """One time: in an `exclude` event."""
        h = self.at(ts) if "exclude" in self.modes else None
        return h is not None and h.mode == "exclude"

    def weekday(self, ts: float) -> int | None:
        """The ISO weekday (Monday = 1) a `like` day is judged as; None: its own."""
        if "like" not in self.modes:
            return None
        h = self.at(ts)
        return None if h is None or h.like is None else h.like + 1

    def like_shift(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Per time: how many seconds back the named weekday of its `like` day was (0: none),
        so a seasonal baseline looks up that weekday's history at the same time of day."""
        if "like" not in self.modes:
            return np.zeros(times.size, np.int64)
        rank, like, weekday = self._ranked(times)
        back = (weekday.astype(np.int64) - like) % 7 * DAY
        return np.where(rank == RANK["like"], back, 0).astype(np.int64)

    def _ranked(self, times: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int8], ...]:
        """Per time: the strongest mode's rank (-1: in no event), the `like` weekday and the
        local weekday, as `at` answers one time; for sorted times, per local day and event
        with array operations (a year of minutes: milliseconds, not a second)."""
        n = times.size
        rank, like, weekday = np.full(n, -1, np.int8), np.zeros(n, np.int8), np.zeros(n, np.int8)
        if n == 0:
            return rank, like, weekday
        first = datetime.fromtimestamp(int(times[0]), self.tz).date().toordinal()
        last = datetime.fromtimestamp(int(times[-1]), self.tz).date().toordinal()
        if n <= 4 or last - first > 2 * n + 2 or bool((np.diff(times) < 0).any()):  # one by one
            for k, t in enumerate(times.tolist()):
                local = datetime.fromtimestamp(t, self.tz)
                weekday[k] = local.weekday()
                if (h := self.at(t)) is not None:
                    rank[k], like[k] = RANK[h.mode], h.like or 0
            return rank, like, weekday
        for o in range(first, last + 1):
            day = date.fromordinal(o)
            d0, d1 = day_bounds(day, self.tz)
            lo, hi = np.searchsorted(times, [d0, d1], side="left").tolist()
            weekday[lo:hi] = day.weekday()
            for e in self.day(day) if hi > lo else ():
                a, b = np.searchsorted(times, [max(e.start, d0), min(e.end, d1)], side="left").tolist()
                better = np.flatnonzero(rank[a:b] < RANK[e.mode]) + a  # the first of equals wins, as in `at`
                rank[better], like[better] = RANK[e.mode], e.like or 0
        return rank, like, weekday

    def between(self, start: float, end: float, limit: int = 500) -> list[Event]:
        """Events that overlap [start, end), oldest first, at most `limit` (a chart's range)."""
        first = datetime.fromtimestamp(start, self.tz).date()
        last = datetime.fromtimestamp(max(start, end - 1), self.tz).date()
        if (last - first).days > MAX_YEARS * 366:
            last = date.fromordinal(first.toordinal() + MAX_YEARS * 366)
        seen: dict[tuple[str, int, int], Event] = {}
        for o in range(first.toordinal(), last.toordinal() + 1):
            for e in self.day(date.fromordinal(o)):
                if e.start < end and e.end > start:
                    seen.setdefault((e.name, e.start, e.end), e)
            if len(seen) >= limit:
                break
        return sorted(seen.values(), key=lambda e: (e.start, e.name))[:limit]


def shown(calendar: Calendar | None, start: float, end: float) -> list[dict[str, object]]:
    """The events overlapping [start, end) as the series API gives them to the chart (names
    are data: the page draws them as text, never as markup)."""
    if calendar is None:
        return []
    return [
        {
            "name": e.name,
            "start": e.start,
            "end": e.end,
            "mode": e.mode,
            "like": WEEKDAYS[e.like] if e.like is not None else None,
        }
        for e in calendar.between(start, end)
    ]


EXCLUDED = "excluded: "  # a detector result's `skipped` reason in an `exclude` period


def excluded(results: Sequence[Any]) -> bool:
    """Every result skipped for an `exclude` event (`detectors.calendared`): the period is
    neither judged nor missing data (an empty migration window is no NO DATA either)."""
    return bool(results) and all(str(r.skipped or "").startswith(EXCLUDED) for r in results)


def during(calendar: Calendar | None, ts: float) -> dict[str, str]:
    """An alert's extras for the period at `ts`: the events it is in, and the weekday a
    `like` day was judged as."""
    hit = calendar.at(ts) if calendar is not None else None
    if hit is None:
        return {}
    return {"during": hit.during} | ({"judged_like": WEEKDAYS[hit.like]} if hit.like is not None else {})


def day_bounds(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of a local day in epoch seconds (23 or 25 hours across a DST change)."""
    a = datetime.combine(day, time(0), tz).timestamp()
    b = datetime.combine(date.fromordinal(day.toordinal() + 1), time(0), tz).timestamp()
    return int(a), int(b)


def digest_of(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
