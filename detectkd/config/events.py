"""The sources of a calendar: public holidays, event files and recurring days.

An event file is YAML (a list of events, or `events:` holding one) or CSV (a header row):

    - name: Black Friday campaign
      start: 2026-11-27          # a date: from the start of that local day
      end: 2026-11-30            # a date: to the end of that local day (inclusive)
    - name: Release 4.2
      date: 2026-12-03           # one whole local day
    - name: Database migration
      start: 2026-12-05T22:00    # a time: from then (the metric's zone unless it has one)
      end: 2026-12-06T02:00      # a time: until then (exclusive)
      mode: exclude              # per event: alert, like (with `like:`) or exclude

    name,date,start,end,mode,like
    Black Friday campaign,,2026-11-27,2026-11-30,,

Bad input is refused with the file, line and key; a file above `MAX_BYTES` or with more
than `MAX_EVENTS` events, or an event longer than `MAX_DAYS`, is refused as a whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from detectkd.config.calendars import Event, Mode, Source, day_bounds, time_ranges, weekday_index
from detectkd.config.yamlsource import parse_yaml_text
from detectkd.errors import ConfigIssue

MAX_BYTES = 1_048_576  # an event file larger than this is refused
MAX_EVENTS = 10_000  # ... and one with more events than this
MAX_DAYS = 366  # ... and an event longer than this
MAX_NAME = 200  # characters of an event's name
MODES = ("alert", "like", "exclude")


class EventFileError(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("; ".join(str(i) for i in issues))
        self.issues = issues


@dataclass
class HolidaySource(Source):
    """A country's (and region's) public holidays, expanded a year at a time."""

    country: str
    subdiv: str | None
    mode: Mode = "alert"
    like: int | None = None

    def __post_init__(self) -> None:
        self._years: dict[int, dict[date, str]] = {}
        self.names(2000)  # an unknown country or region fails here, at load

    def names(self, year: int) -> dict[date, str]:
        got = self._years.get(year)
        if got is None:
            import holidays  # a few ms: only metrics with a holiday calendar pay it

            found = holidays.country_holidays(self.country, subdiv=self.subdiv, years=year)
            got = self._years[year] = {d: str(n) for d, n in found.items()}
        return got

    def on(self, day: date, tz: ZoneInfo) -> list[Event]:
        name = self.names(day.year).get(day)
        if name is None:
            return []
        a, b = day_bounds(day, tz)
        return [Event(name, a, b, self.mode, self.like)]


@dataclass
class RecurringSource(Source):
    """Recurring business days: weekdays and/or days of the month, optionally local times."""

    name: str
    weekdays: tuple[int, ...] | None
    monthdays: tuple[int, ...] | None
    times: tuple[tuple[time, time | None], ...]
    mode: Mode = "alert"
    like: int | None = None

    def on(self, day: date, tz: ZoneInfo) -> list[Event]:
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return []
        if self.monthdays is not None:
            following = date.fromordinal(day.toordinal() + 1)
            last = following.month != day.month
            if day.day not in self.monthdays and not (last and -1 in self.monthdays):
                return []
        a, b = day_bounds(day, tz)
        if not self.times:
            return [Event(self.name, a, b, self.mode, self.like)]
        out = []
        for start, end in self.times:
            s = int(datetime.combine(day, start, tz).timestamp())
            e = b if end is None else int(datetime.combine(day, end, tz).timestamp())
            out.append(Event(self.name, s, e, self.mode, self.like))
        return out


@dataclass
class EventSource(Source):
    """The events of an event file, indexed by the local days they touch."""

    events: list[Event]
    tz: ZoneInfo

    def __post_init__(self) -> None:
        self.modes = {e.mode for e in self.events}
        self.index: dict[date, list[Event]] = {}
        for e in self.events:
            first = datetime.fromtimestamp(e.start, self.tz).date().toordinal()
            last = datetime.fromtimestamp(e.end - 1, self.tz).date().toordinal()
            for o in range(first, last + 1):
                self.index.setdefault(date.fromordinal(o), []).append(e)

    def on(self, day: date, tz: ZoneInfo) -> list[Event]:
        return self.index.get(day, [])


def read_event_file(path: Path, tz: ZoneInfo, mode: Mode, like: int | None) -> list[Event]:
    """The events of a YAML or CSV file; `mode` and `like` are the calendar's defaults."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise EventFileError(
                [
                    ConfigIssue(
                        str(path), None, "", f"event file is {size:,} bytes, above the limit of {MAX_BYTES:,}"
                    )
                ]
            )
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV starts with a BOM
    except OSError as exc:
        raise EventFileError(
            [ConfigIssue(str(path), None, "", f"cannot read the event file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise EventFileError([ConfigIssue(str(path), None, "", "the event file is not UTF-8 text")]) from None
    rows = _csv_rows(str(path), text) if path.suffix.lower() == ".csv" else _yaml_rows(str(path), text)
    if len(rows) > MAX_EVENTS:
        raise EventFileError(
            [ConfigIssue(str(path), None, "", f"{len(rows):,} events, above the limit of {MAX_EVENTS:,}")]
        )
    issues: list[ConfigIssue] = []
    out: list[Event] = []
    for row, where in rows:
        try:
            out.append(_event(row, tz, mode, like))
        except ValueError as exc:
            key, _, message = str(exc).partition("|")
            issues.append(where(key, message))
    if issues:
        raise EventFileError(issues)
    return sorted(out, key=lambda e: (e.start, e.name))


Where = Callable[[str, str], ConfigIssue]


def _yaml_rows(file: str, text: str) -> list[tuple[dict[str, Any], Where]]:
    doc = parse_yaml_text(text, file, {})
    if doc.issues:
        raise EventFileError(list(doc.issues))
    data, base = doc.data, cast(tuple[str | int, ...], ())
    if isinstance(data, dict) and set(data) == {"events"}:
        data, base = data["events"], ("events",)
    if data is None:
        return []
    if not isinstance(data, list):
        raise EventFileError([doc.issue((), "an event file is a list of events (or `events:` holding one)")])
    out: list[tuple[dict[str, Any], Where]] = []
    for i, item in enumerate(data):
        path: tuple[str | int, ...] = (*base, i)
        if not isinstance(item, dict):
            raise EventFileError([doc.issue(path, "an event is a mapping with `name` and `date` or `start`")])

        def where(key: str, message: str, path: tuple[str | int, ...] = path) -> ConfigIssue:
            return doc.issue((*path, key) if key else path, message)

        out.append((item, where))
    return out


def _csv_rows(file: str, text: str) -> list[tuple[dict[str, Any], Where]]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    unknown = [h for h in header if h not in ("name", "date", "start", "end", "mode", "like")]
    if "name" not in header or unknown:
        what = f"unknown column {unknown[0]!r}" if unknown else "no `name` column"
        raise EventFileError(
            [ConfigIssue(file, 1, "", f"{what}: the header is name,date,start,end,mode,like")]
        )
    out: list[tuple[dict[str, Any], Where]] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(out) > MAX_EVENTS:
            break  # counted as too many by the caller

        def where(key: str, message: str, line: int = line) -> ConfigIssue:
            return ConfigIssue(file, line, key, message)

        row = {h: c.strip() for h, c in zip(header, cells, strict=False) if c.strip()}
        out.append((row, where))
    return out


def _event(row: dict[str, Any], tz: ZoneInfo, mode: Mode, like: int | None) -> Event:
    unknown = [k for k in row if k not in ("name", "date", "start", "end", "mode", "like")]
    if unknown:
        raise ValueError(f"{unknown[0]}|unknown key (name, date, start, end, mode, like)")
    name = row.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name|an event needs a `name`")
    if len(name) > MAX_NAME:
        raise ValueError(f"name|longer than {MAX_NAME} characters")
    name = " ".join(name.split())  # no control characters or line breaks in messages
    if ("date" in row) == ("start" in row) or ("date" in row and "end" in row):
        raise ValueError("date|give `date`, or `start` (and optionally `end`)")
    if "date" in row:
        a, b = _moment(row["date"], tz, "date")
        if b <= a:
            raise ValueError("date|a day, not a time (a time goes in `start` and `end`)")
    else:
        a, b = _moment(row["start"], tz, "start")  # a date: its day; a time: (t, t)
        if "end" in row:
            b = _moment(row["end"], tz, "end")[1]
        elif b <= a:
            raise ValueError("end|a start time needs an `end`")
        if b <= a:
            raise ValueError("end|the end is not after the start")
    if b - a > MAX_DAYS * 86400 + 7200:
        raise ValueError(f"end|an event lasts at most {MAX_DAYS} days")
    m = str(row["mode"]).strip().lower() if "mode" in row else None
    if m is not None and m not in MODES:
        raise ValueError(f"mode|{m[:20]!r} is not a mode (alert, like, exclude)")
    lk = like
    if "like" in row:
        try:
            lk = weekday_index(row["like"])
        except ValueError as exc:
            raise ValueError(f"like|{exc}") from None
    final: Mode = m or ("like" if "like" in row else mode)  # type: ignore[assignment]
    if final == "like" and lk is None:
        raise ValueError("like|`mode: like` needs `like: WEEKDAY`")
    return Event(name, a, b, final, lk if final == "like" else None)


def _moment(raw: Any, tz: ZoneInfo, key: str) -> tuple[int, int]:
    """A date's local day [start, end), or a time as (t, t)."""
    if isinstance(raw, datetime):
        t = int((raw if raw.tzinfo else raw.replace(tzinfo=tz)).timestamp())
        return t, t
    if isinstance(raw, date):
        return day_bounds(raw, tz)
    text = str(raw).strip()
    try:
        if len(text) <= 10:
            return day_bounds(date.fromisoformat(text), tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{key}|not a date or time: {text[:40]!r} (use 2026-11-27 or 2026-11-27T10:00)"
        ) from None
    t = int((moment if moment.tzinfo else moment.replace(tzinfo=tz)).timestamp())
    return t, t


__all__ = [
    "EventFileError",
    "EventSource",
    "HolidaySource",
    "RecurringSource",
    "read_event_file",
    "time_ranges",
]
