"""Durations in DetectK's long form ("10 minutes") and the short form ("10m").

Parsed once at the config edge; everything inside the daemon uses `timedelta`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

# A table: one row per unit with its spellings, kept as written.
_UNITS: dict[str, float] = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[a-zA-Z]+\s*)+$")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse "10m", "10 minutes", "1h30m", "1 day" (and plain seconds as a number).

    Raises ValueError with the accepted forms on anything else.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"duration must not be negative: {text!r}")
        return timedelta(seconds=text)
    if not _WHOLE.match(text):
        raise ValueError(
            f"not a duration: {text!r} (use e.g. '30s', '10m', '1h', '1d', '10 minutes', '30 days')"
        )
    total = 0.0
    for number, unit in _PART.findall(text):
        factor = _UNITS.get(unit.lower())
        if factor is None:
            raise ValueError(_unknown_unit(text, unit))
        total += float(number) * factor
    return timedelta(seconds=total)


def _unknown_unit(text: str, unit: str) -> str:
    """`'10 sec0nds'` is read as 10 sec + 0 nds: name the word the user wrote, not `nds`."""
    import difflib

    chunk = next((c for c in text.split() if unit in c), unit)
    word = re.sub(r"^\d+(?:\.\d+)?", "", chunk) or unit
    close = difflib.get_close_matches(word.lower(), list(_UNITS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (
        f"not a duration: {text!r} ({word!r} is not a unit{hint}) "
        "(use s, m, h, d, w or seconds, minutes, hours, days, weeks)"
    )


def format_duration(delta: timedelta) -> str:
    """The shortest short form that round-trips: 600s -> "10m"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def in_words(seconds: float) -> str:
    """A duration in words for people: 90 s, 12 min, 7 h, 3.5 d."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.1f} d"


EARLIEST, LATEST = 0.0, 253402300799.0  # 1970-01-01 .. 9999-12-31T23:59:59Z


def moment_of(v: object) -> float:
    """A time in an API body or query: epoch seconds (a number, or its digits) or ISO 8601.

    Raises ValueError on anything else, and on a time that is not finite or outside
    1970..9999 (`NaN`, `Infinity` and `1e308` are valid JSON numbers to Python)."""
    if isinstance(v, bool):
        raise ValueError(f"not a time: {v!r}")
    if isinstance(v, int | float) or (isinstance(v, str) and v.strip().isdigit()):
        try:
            return _in_range(float(v))
        except OverflowError:
            raise ValueError(f"not a time between 1970 and 9999: {str(v)[:40]}") from None
    return parse_moment(str(v))


def parse_moment(text: str) -> float:
    """An ISO 8601 time (`Z` allowed) as epoch seconds; without an offset it is local time.
    Raises ValueError, for a time outside 1970..9999 too."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    try:
        ts = moment.timestamp() if moment.tzinfo else moment.astimezone().timestamp()
    except (OverflowError, OSError):
        raise ValueError(f"not a time between 1970 and 9999: {text!r}") from None
    return _in_range(ts)


def _in_range(ts: float) -> float:
    if not EARLIEST <= ts <= LATEST:  # NaN compares false
        raise ValueError(f"not a time between 1970 and 9999: {ts!r}")
    return ts
