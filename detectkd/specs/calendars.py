"""A metric file's `calendars:` compiled for its timezone (`detectkd.config.calendars`).

Event files are read here, at load, relative to the metric file; every problem is an issue
with the file, line and key (the event file's own line for a bad event).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from detectkd.config.calendars import Calendar, CalendarRef, Source, digest_of, time_ranges, weekday_index
from detectkd.config.events import (
    EventFileError,
    EventSource,
    HolidaySource,
    RecurringSource,
    read_event_file,
)
from detectkd.config.yamlsource import Document
from detectkd.errors import ConfigIssue


def compile_calendars(
    refs: Sequence[CalendarRef],
    tz_name: str,
    doc: Document,
    issues: list[ConfigIssue],
    inherited: bool = False,
) -> Calendar | None:
    """The metric's calendar (None without `calendars:`); problems are appended to `issues`.
    `inherited`: the daemon's `calendars` setting (the metric's file has none)."""
    if not refs:
        return None
    whose = " (the daemon's `calendars` setting)" if inherited else ""
    tz = ZoneInfo(tz_name)
    sources: list[Source] = []
    parts: list[object] = [tz_name]
    for i, ref in enumerate(refs):
        mode = ref.effective_mode
        like = weekday_index(ref.like) if ref.like is not None else None
        at = ("calendars", i)
        if ref.holidays is not None:
            try:
                sources.append(HolidaySource(ref.holidays, ref.subdiv, mode, like))
            except (NotImplementedError, KeyError, ValueError) as exc:
                why = f"no holidays for {ref.holidays!r}" + (f" / {ref.subdiv!r}" if ref.subdiv else "")
                issues.append(doc.issue((*at, "holidays"), f"{why}: {str(exc)[:200]}{whose}"))
                continue
            parts.append(("holidays", ref.holidays, ref.subdiv, mode, like))
        elif ref.file is not None:
            path = Path(ref.file)
            if not path.is_absolute():
                path = Path(doc.file).parent / path
            try:
                events = read_event_file(path, tz, mode, like)
            except EventFileError as exc:
                issues.extend(exc.issues)
                issues.append(
                    doc.issue((*at, "file"), f"the event file {ref.file} is invalid (above){whose}")
                )
                continue
            sources.append(EventSource(events, tz))
            parts.append(("file", ref.file, [(e.name, e.start, e.end, e.mode, e.like) for e in events]))
        else:
            days = tuple(weekday_index(d) for d in ref.weekdays) if ref.weekdays is not None else None
            monthdays = tuple(ref.monthdays) if ref.monthdays is not None else None
            name = ref.name or _recurring_name(ref)
            sources.append(RecurringSource(name, days, monthdays, time_ranges(ref.times), mode, like))
            parts.append(("recurring", name, days, monthdays, ref.times, mode, like))
    return Calendar(tz, sources, digest_of(*parts))


def _recurring_name(ref: CalendarRef) -> str:
    what = []
    if ref.weekdays is not None:
        what.append("/".join(d[:3] for d in ref.weekdays))
    if ref.monthdays is not None:
        what.append("day " + "/".join("last" if d == -1 else str(d) for d in ref.monthdays))
    return " ".join(what + list(ref.times))
