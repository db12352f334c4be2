"""A generated year of business data with holidays and campaigns, and a replay of a metric
file over it: what the calendar tests and `benchmarks/calendars.py` share."""

from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import holidays
import numpy as np

from detectkd.alerting.alert import Alert
from detectkd.runtime.replay import Tally, replay, tally
from detectkd.specs.loader import load_metrics

WEEKLY = (1.0, 1.02, 1.0, 0.98, 0.95, 0.45, 0.35)  # Monday .. Sunday
HOURLY = tuple(0.25 + 0.75 * max(0.0, float(np.sin(np.pi * (h - 6) / 16))) for h in range(24))
CAMPAIGNS = (("Spring sale", date(2025, 4, 14), 3), ("Black Friday campaign", date(2025, 11, 28), 4))


@dataclass
class Business:
    path: Path
    start: int
    finish: int
    step: int
    holidays: dict[date, str] = field(default_factory=dict)
    campaigns: dict[date, str] = field(default_factory=dict)


def business_year(
    path: Path, seed: int = 7, step: int = 3600, days: int = 365, first: date = date(2025, 1, 1)
) -> Business:
    """Orders per period: a weekly and (hourly data) a daily pattern, Poisson-like noise; US
    public holidays behave like a Sunday, two campaigns lift the days they run by 60 %."""
    rng = np.random.default_rng(seed)
    us = holidays.country_holidays("US", years=range(first.year, first.year + 2))
    campaigns = {date.fromordinal(d0.toordinal() + k): name for name, d0, n in CAMPAIGNS for k in range(n)}
    start = int(datetime.combine(first, datetime.min.time(), UTC).timestamp())
    out = Business(path, start, start + days * 86400, step)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for t in range(start, out.finish, step):
            moment = datetime.fromtimestamp(t, UTC)
            day = moment.date()
            weekday = 6 if day in us else moment.weekday()
            level = 400.0 * WEEKLY[weekday] * (HOURLY[moment.hour] if step < 86400 else 24 * 0.6)
            level *= 1.6 if day in campaigns else 1.0
            w.writerow([moment.strftime("%Y-%m-%d %H:%M:%S"), int(rng.poisson(level))])
    first_day, last_day = first, first + timedelta(days=days)
    out.holidays = {d: str(n) for d, n in us.items() if first_day <= d < last_day}
    out.campaigns = campaigns
    return out


def replay_alerts(metrics_dir: Path, name: str, b: Business) -> tuple[list[Alert], Tally]:
    """The firing anomaly alerts of a backtest of `metrics_dir/name` over the year."""
    loaded = load_metrics([metrics_dir], None, env={})
    assert loaded.ok, loaded.all_errors()
    t = Tally()
    asyncio.run(replay(loaded.metrics[name], b.start, b.finish, lambda r: tally(r, t)))
    firing = [a for a in t.alerts if a.status == "firing" and a.kind == "anomaly"]
    return firing, t


def metric(name: str, csv_path: Path, step: int, detector: str = "auto", calendars: str = "") -> str:
    return (
        f"name: {name}\nschedule: {{interval: {step}s, timezone: UTC}}\n"
        f"collector:\n  type: csv\n  params: {{path: '{csv_path}'}}\n"
        f"detector: {detector if detector.startswith('{') else '{type: ' + detector + '}'}\nalerter: {{type: log}}\n"
        + calendars
    )
