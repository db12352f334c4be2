"""Calendars in the in-process daemon on a SQLite source: a holiday judged like a Sunday does
not fire, while the same drop on a normal weekday (or without the calendar) does."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from detectkd.alerting.state import Status
from detectkd.config.calendars import WEEKDAYS
from tests.support.files import write
from tests.support.inprocess import firing_alerts, running, served

HOUR = 3600
NOW = int(time.time()) // HOUR * HOUR  # the newest complete hour ends here
DROP = NOW - HOUR
TODAY = datetime.fromtimestamp(DROP, UTC).date()
LOW = (TODAY.weekday() + 3) % 7  # the quiet day of the week (a Sunday, for a shop)
LIKE = WEEKDAYS[LOW]


def source(db: Path) -> None:
    """130 days of hourly orders (auto reads about 120), 100 a period and 30 on the quiet weekday; the newest
    period drops to 30 (a holiday's level)."""
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    rows = []
    for t in range(DROP - 130 * 86400, DROP + HOUR, HOUR):
        level = 30.0 if t == DROP or datetime.fromtimestamp(t, UTC).weekday() == LOW else 100.0
        rows.append((t, level + (t // HOUR * 7919) % 11 - 5))
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", rows)
    conn.commit()
    conn.close()


def metric(tmp_path: Path, calendars: str) -> None:
    write(
        tmp_path / "metrics.d" / "orders.yaml",
        f"""\
name: orders
schedule: {{interval: 1h, start_time: 125d}}  # auto reads about 120 days of hourly points
# (all loaded and judged before the newest period: a first start without start_time judges on
# auto's level until its fill job has loaded the weeks a `like` day is judged with)
collector:
  type: sqlite
  params:
    database: {tmp_path / "src.db"}
    query: |
      SELECT period_time, value FROM src
      WHERE period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
alerter:
  type: log
{calendars}""",
    )


def holiday(day: date) -> tuple[str, str]:
    """The metric's `calendars:` and an event file naming `day` a holiday."""
    return (
        f"calendars:\n  - {{file: ../holidays.yaml, like: {LIKE}}}\n",
        f"- {{name: Founders Day, date: {day}}}\n",
    )


@pytest.mark.parametrize(
    ("day", "fires"),
    [(TODAY, False), (TODAY + timedelta(days=1), True), (None, True)],
    ids=["holiday-judged-like-the-quiet-day", "same-drop-on-a-normal-day", "no-calendar"],
)
async def test_a_holiday_judged_like_sunday_does_not_fire(
    tmp_path: Path, day: date | None, fires: bool
) -> None:
    source(tmp_path / "src.db")
    if day is None:
        metric(tmp_path, "")
    else:
        calendars, events = holiday(day)
        write(tmp_path / "holidays.yaml", events)
        metric(tmp_path, calendars)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await d.history.settled()
        await rt.run(NOW)
        firing = await firing_alerts(d)
        assert (rt.states[""].status is Status.FIRING) is fires
        assert len(firing) == int(fires)
        assert all(a.period == DROP for a in firing)


HOSTILE = '<img src=x onerror="alert(1)">'


async def test_the_series_endpoint_gives_the_events_in_range_as_data(tmp_path: Path) -> None:
    """The chart draws what this returns: the events overlapping the range, names verbatim
    (JSON data; the page sets them as text), holidays expanded only for the range asked."""
    events = f"- {{name: '{HOSTILE}', start: 2026-11-27, end: 2026-11-29, mode: exclude}}\n"
    write(tmp_path / "events.yaml", events)
    write(
        tmp_path / "metrics.d" / "m.yaml",
        (
            "name: m\nschedule: {interval: 1h, timezone: America/New_York}\n"
            "collector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n"
            "calendars:\n  - {holidays: US, like: sunday}\n  - {file: ../events.yaml}\n"
        ),
    )
    since = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
    async with running(tmp_path) as d, served(d) as (http, base):
        async with http.get(f"{base}/api/v1/metrics/m/series?since={since}&until={since + 14 * 86400}") as r:
            assert r.status == 200 and r.content_type == "application/json"
            got = (await r.json())["events"]
        async with http.get(f"{base}/api/v1/metrics/m/series?since={since}&until={since + 86400}") as r:
            assert (await r.json())["events"] == []
        async with http.get(f"{base}/api/v1/metrics/m/series?since=0&until={since}") as r:
            many = (await r.json())["events"]  # 56 years of holidays: capped, not all
    ny = ZoneInfo("America/New_York")
    thanksgiving = int(datetime(2026, 11, 26, tzinfo=ny).timestamp())
    campaign = int(datetime(2026, 11, 27, tzinfo=ny).timestamp())
    assert got == [
        {
            "name": "Thanksgiving Day",
            "start": thanksgiving,
            "end": thanksgiving + 86400,
            "mode": "like",
            "like": "sunday",
        },
        {"name": HOSTILE, "start": campaign, "end": campaign + 3 * 86400, "mode": "exclude", "like": None},
    ]
    assert 0 < len(many) <= 500
