"""Silences and maintenance windows.

A silence has matchers (Alertmanager style: `metric=orders`, `tag=shop`,
`region=~eu-.*`, `host!=db1`, `source=clickhouse_prod`), a start, an
optional end, and optionally a recurring window: `weekdays` and `times`
(`"22:00-02:00"`, crossing midnight is fine) in an IANA timezone. The
window is read on the local wall clock at each instant, so it follows DST:
`01:00-04:00` is 01:00 to 04:00 local time before and after the change; a
window inside the skipped hour of a spring-forward night does not happen
that night.

A silenced series still advances its state; its notifications are held and
whatever is still owed when the silence ends is sent then (a FIRING that
ended inside the silence is never sent, nor its RESOLVED).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from detectkd.alerting.matchers import MAX_VALUE_BYTES, Labels, Matcher, SilenceError
from detectkd.collectors.points import parse_series_key
from detectkd.durations import LATEST, parse_duration

__all__ = ["MAX_VALUE_BYTES", "Labels", "Matcher", "SilenceError"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

# Caps of what one can create (a silence is kept, re-read and matched against every series).
MAX_SILENCES = 1000  # silences that are not over yet
MAX_MATCHERS = 32  # per silence (and MAX_VALUE_BYTES per matcher's value)
MAX_COMMENT_BYTES = 4096
MAX_AUTHOR = 256
RETENTION_S = 5 * 86400  # an ended silence is purged from the store after this (as Alertmanager)


class SilenceLimitError(SilenceError):
    """A cap of how many silences there may be."""


def checked_time(what: str, ts: object) -> float:
    """`ts` as epoch seconds in 1970..9999, or SilenceError (NaN, Infinity and 1e308 included)."""
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not 0 <= ts <= LATEST:
        raise SilenceError(f"{what} must be a time between 1970 and 9999, not {ts!r}")
    return float(ts)


def count_current(silences: Iterable[Silence], now: float) -> int:
    return sum(1 for s in silences if s.current(now))


def _no_constant(name: str) -> float:
    raise SilenceError(f"{name} is not a time")


@dataclass(frozen=True)
class Window:
    """A recurring window: on these weekdays, between these local times."""

    weekdays: tuple[str, ...]
    times: tuple[tuple[time, time], ...]
    timezone: str

    def active(self, ts: float) -> bool:
        local = datetime.fromtimestamp(ts, ZoneInfo(self.timezone))
        now, day = local.time(), WEEKDAYS[local.weekday()]
        prev = WEEKDAYS[(local.weekday() - 1) % 7]
        for start, end in self.times or ((time(0), time(0)),):
            if start < end:
                if day in self.weekdays and start <= now < end:
                    return True
            elif (day in self.weekdays and now >= start) or (prev in self.weekdays and now < end):
                return True  # crosses midnight: belongs to the day it started
        return False


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float | None  # None: until expired
    comment: str = ""
    created_by: str = ""
    created_at: float = 0.0
    window: Window | None = None
    expired_at: float | None = None

    def __post_init__(self) -> None:
        """A stored silence is checked as a new one: a NaN start would never end."""
        checked_time("starts_at", self.starts_at)
        checked_time("created_at", self.created_at)
        for what, ts in (("ends_at", self.ends_at), ("expired_at", self.expired_at)):
            if ts is not None:
                checked_time(what, ts)

    @property
    def over_at(self) -> float | None:
        """When it stopped (or will stop) for good: its end, or when it was expired."""
        ends = [t for t in (self.ends_at, self.expired_at) if t is not None]
        return min(ends) if ends else None

    def active(self, ts: float) -> bool:
        if self.expired_at is not None and ts >= self.expired_at:
            return False
        if ts < self.starts_at or (self.ends_at is not None and ts >= self.ends_at):
            return False
        return self.window is None or self.window.active(ts)

    def expire(self, ts: float) -> Silence:
        return replace(self, expired_at=ts)

    def current(self, ts: float) -> bool:
        """Not over yet (active now or later)."""
        over = self.ends_at is not None and ts >= self.ends_at
        return not over and (self.expired_at is None or ts < self.expired_at)

    def matches(self, labels: Labels) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def to_json(self) -> str:
        """Strict JSON (a non-finite number raises rather than writing `NaN`)."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["matchers"] = [str(m) for m in self.matchers]
        if self.window is not None:
            w = self.window
            data["window"] = {
                "weekdays": list(w.weekdays),
                "times": [f"{a:%H:%M}-{b:%H:%M}" for a, b in w.times],
                "timezone": w.timezone,
            }
        return json.dumps(data, sort_keys=True, allow_nan=False)

    @staticmethod
    def from_json(text: str) -> Silence:
        data: dict[str, Any] = json.loads(text, parse_constant=_no_constant)
        if not isinstance(data, dict):
            raise SilenceError("a silence is a JSON object")
        data["matchers"] = tuple(Matcher.parse(m) for m in data["matchers"])
        w = data.get("window")
        if w is not None:
            data["window"] = make_window(w["weekdays"], w["times"], w["timezone"])
        return Silence(**data)


def make_window(weekdays: Iterable[str], times: Iterable[str], timezone: str) -> Window:
    days: list[str] = []
    for part in weekdays:
        for piece in str(part).lower().split(","):
            piece = piece.strip()
            if "-" in piece:
                a, b = (x.strip()[:3] for x in piece.split("-", 1))
                if a not in WEEKDAYS or b not in WEEKDAYS:
                    raise SilenceError(f"bad weekday range {piece!r}: use mon-fri")
                i, j = WEEKDAYS.index(a), WEEKDAYS.index(b)
                days.extend(WEEKDAYS[k % 7] for k in range(i, j + 1 if j >= i else j + 8))
            elif piece:
                if piece[:3] not in WEEKDAYS:
                    raise SilenceError(f"bad weekday {piece!r}: use mon, tue, ... sun")
                days.append(piece[:3])
    ranges: list[tuple[time, time]] = []
    for text in times:
        m = _RANGE.match(text)
        if m is None:
            raise SilenceError(f"bad time range {text!r}: use HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
            raise SilenceError(f"bad time range {text!r}")
        ranges.append((time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2)))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SilenceError(
            f"unknown timezone {timezone!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return Window(tuple(dict.fromkeys(days or WEEKDAYS)), tuple(ranges), timezone)


def new_silence(
    matchers: Iterable[str],
    starts_at: float,
    ends_at: float | None,
    comment: str = "",
    created_by: str = "",
    window: Window | None = None,
    duration: str | None = None,
    silence_id: str | None = None,
) -> Silence:
    """`duration` (`2h`) sets the end when `ends_at` is not given. `silence_id`: given by a
    `workers:` supervisor, so that every worker keeps the same silence under one id."""
    if silence_id is not None and not re.fullmatch(r"[0-9a-f]{12}", silence_id):
        raise SilenceError("a silence id is 12 lowercase hex digits")
    starts_at = checked_time("starts_at", starts_at)
    if ends_at is None and duration:
        try:
            ends_at = starts_at + parse_duration(duration).total_seconds()
        except OverflowError:
            raise SilenceError(f"the duration {duration!r} is too long") from None
    if ends_at is not None:
        ends_at = checked_time("ends_at", ends_at)
    texts = [matchers] if isinstance(matchers, str) else list(matchers)
    if len(texts) > MAX_MATCHERS:
        raise SilenceError(f"a silence has at most {MAX_MATCHERS} matchers, not {len(texts)}")
    parsed = tuple(Matcher.parse(str(m)) for m in texts)
    if not parsed:
        raise SilenceError("a silence needs at least one matcher (e.g. metric=orders)")
    if len(comment.encode()) > MAX_COMMENT_BYTES:
        raise SilenceError(f"a silence's comment is limited to {MAX_COMMENT_BYTES} bytes")
    if len(created_by) > MAX_AUTHOR:
        raise SilenceError(f"a silence's author is limited to {MAX_AUTHOR} characters")
    if ends_at is not None and ends_at <= starts_at:
        raise SilenceError("the silence ends before it starts")
    if ends_at is None and window is None:
        raise SilenceError("a one-off silence needs an end (--for or --until)")
    sid = silence_id or secrets.token_hex(6)
    return Silence(sid, parsed, starts_at, ends_at, comment, created_by, starts_at, window)


@dataclass
class Silences:
    """The silences the daemon knows, by id."""

    items: dict[str, Silence] = field(default_factory=dict)  # replaced, never changed in place

    def replace_all(self, silences: Iterable[Silence]) -> None:
        self.items = {s.id: s for s in silences}

    def put(self, s: Silence) -> None:
        """Add or replace one (a new dict: a judge thread may be iterating the old one)."""
        self.items = {**self.items, s.id: s}

    def admit(self, s: Silence, now: float) -> None:
        """Raises SilenceLimitError when `s` is new and MAX_SILENCES are not over yet."""
        if s.id not in self.items and count_current(self.items.values(), now) >= MAX_SILENCES:
            raise SilenceLimitError(f"too many silences: {MAX_SILENCES} are not over yet; expire some first")

    def matching(self, labels: Labels, ts: float) -> list[str]:
        return [s.id for s in self.items.values() if s.active(ts) and s.matches(labels)]

    def silenced(self, labels: Labels, ts: float) -> bool:
        return any(s.active(ts) and s.matches(labels) for s in self.items.values())

    def predicate(self, base: Labels) -> Callable[[str, float], bool]:
        """`silenced(series, ts)` for one metric; `base`: its metric, tag and source labels."""

        def silenced(series: str, ts: float) -> bool:
            return bool(self.items) and self.silenced(series_labels(base, series), ts)

        return silenced


def active_spans(s: Silence, since: float, until: float, step: float) -> list[tuple[float, float]]:
    """When `s` is active within [since, until), sampled every `step` seconds (a recurring
    window's edges are found to within a step): (from, to) spans, oldest first."""
    lo = max(since, s.starts_at)
    hi = min([until, *(t for t in (s.ends_at, s.expired_at) if t is not None)])
    spans: list[tuple[float, float]] = []
    t, begun = lo, None
    while t < hi:
        if s.active(t):
            begun = t if begun is None else begun
        elif begun is not None:
            spans.append((begun, t))
            begun = None
        t += step
    if begun is not None:
        spans.append((begun, hi))
    return spans


def metric_labels(metric: str, tags: Iterable[str], source: str) -> dict[str, str | tuple[str, ...]]:
    return {"metric": metric, "tag": tuple(tags), "source": source}


def series_labels(base: Labels, series: str) -> Labels:
    return {**parse_series_key(series), **base}


def load_silences(texts: Iterable[str]) -> tuple[list[Silence], list[str]]:
    """Parsed silences and the problems of those that could not be read."""
    loaded: list[Silence] = []
    problems: list[str] = []
    for text in texts:
        try:
            loaded.append(Silence.from_json(text))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(str(exc))
    return loaded, problems
