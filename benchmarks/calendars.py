"""What a calendar does to the alerts (issue 31).

    python -m benchmarks.calendars [--days 365] [--seed 7] [--nab PATH]

1. A generated year of business data (`tests.support.calendars.business_year`, seeded):
   orders per hour (and per day) with a weekly pattern (Saturday 45 %, Sunday 35 % of a
   weekday) and, hourly, a daily one; US public holidays (the `holidays` package) behave
   like a Sunday; two campaigns (3 and 4 days) lift their days by 60 %. Each detector is
   replayed (`detectkd backtest`'s engine) without a calendar and with one (holidays
   `like: sunday`, the campaigns' event file `mode: exclude`): FIRING alerts (episodes) on
   holidays, on campaign days and on all other days, and anomalous periods (`points`:
   holidays, campaigns, elsewhere).
2. NAB's `nyc_taxi` (half-hourly taxi passengers, July 2014 - January 2015), whose labelled
   anomalies are the NYC marathon, Thanksgiving, Christmas, New Year and a blizzard: the
   labelled windows caught and the alerts outside them, with `auto`, without a calendar
   and with US/NY holidays judged `like: sunday` or `exclude`d. A calendar mutes what it
   names: on this data set that is three of the five labelled incidents.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.support.calendars import business_year, metric, replay_alerts

DETECTORS = {
    "auto": "auto",
    "mad": "{type: mad, params: {window_size: 84d, seasonal_features: [hour_of_week], min_samples: 8}}",
    "seasonal": "{type: seasonal, params: {season: hour_of_week, window_size: 84d, min_samples: 8}}",
}
DAILY = {  # a daily series has one point per weekday a week: the weekday is the season
    "auto": "auto",
    "mad": "{type: mad, params: {window_size: 84d, seasonal_features: [day_of_week], min_samples: 8}}",
    "seasonal": "{type: seasonal, params: {season: day_of_week, window_size: 84d, min_samples: 8}}",
}
EVENTS = (
    "- {name: Spring sale, start: 2025-04-14, end: 2025-04-16}\n"
    "- {name: Black Friday campaign, start: 2025-11-28, end: 2025-12-01}\n"
)
CALENDAR = "calendars:\n  - {holidays: US, like: sunday}\n  - {file: ../events.yaml, mode: exclude}\n"


def business(tmp: Path, days: int, seed: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    (tmp / "events.yaml").write_text(EVENTS)
    for step, detectors in ((3600, DETECTORS), (86400, DAILY)):
        b = business_year(tmp / f"orders_{step}.csv", seed=seed, step=step, days=days)
        holidays, campaigns = set(b.holidays), set(b.campaigns)
        ordinary = days - len(holidays | campaigns)
        for name, det in detectors.items():
            for with_cal in (False, True):
                where = tmp / f"{step}_{name}_{with_cal}"
                where.mkdir()
                (where / "x.yaml").write_text(metric("x", b.path, step, det, CALENDAR if with_cal else ""))
                t0 = time.process_time()
                alerts, tally = replay_alerts(where, "x", b)
                flagged = [datetime.fromtimestamp(t, UTC).date() for t in tally.flagged.get("", [])]
                cpu = time.process_time() - t0
                on = [datetime.fromtimestamp(a.period, UTC).date() for a in alerts]
                row: dict[str, object] = {
                    "data": "hourly" if step == 3600 else "daily",
                    "detector": name,
                    "calendar": with_cal,
                    "holidays": sum(d in holidays for d in on),
                    "holiday_days": len(holidays),
                    "campaigns": sum(d in campaigns for d in on),
                    "campaign_days": len(campaigns),
                    "elsewhere": sum(d not in holidays and d not in campaigns for d in on),
                    "ordinary_days": ordinary,
                    "named": sum("during" in a.extra for a in alerts),
                    "points": [
                        sum(d in holidays for d in flagged),
                        sum(d in campaigns for d in flagged),
                        sum(d not in holidays and d not in campaigns for d in flagged),
                    ],
                    "cpu_s": round(cpu, 2),
                }
                out.append(row)
                print(json.dumps(row), flush=True)
    return out


NYC = {
    "none": "",
    "like: sunday": "calendars:\n  - {holidays: US, subdiv: NY, like: sunday}\n",
    "exclude": "calendars:\n  - {holidays: US, subdiv: NY, mode: exclude}\n",
}


def nyc_taxi(tmp: Path, nab: Path) -> list[dict[str, object]]:
    import asyncio

    from detectkd.runtime.replay import Tally, replay
    from detectkd.specs.loader import load_metrics

    path = nab / "data" / "realKnownCause" / "nyc_taxi.csv"
    windows = json.loads((nab / "windows.json").read_text())["realKnownCause/nyc_taxi.csv"]
    spans = [tuple(_epoch(datetime.fromisoformat(x)) for x in w) for w in windows]
    start, finish = _epoch(datetime(2014, 7, 1)), _epoch(datetime(2015, 2, 1))
    out: list[dict[str, object]] = []
    for label, cal in NYC.items():
        where = tmp / f"nyc_{label.replace(': ', '_')}"
        where.mkdir()
        (where / "x.yaml").write_text(metric("x", path, 1800, "auto", cal))
        loaded = load_metrics([where], None, env={})
        assert loaded.ok, loaded.all_errors()
        t = Tally()
        asyncio.run(replay(loaded.metrics["x"], start, finish, functools.partial(_count, t)))
        firing = [a.period for a in t.alerts if a.status == "firing" and a.kind == "anomaly"]
        caught = [any(a <= p <= b for p in firing) for a, b in spans]
        row = {
            "calendar": label,
            "caught": [_day(a) for (a, _), c in zip(spans, caught, strict=True) if c],
            "missed": [_day(a) for (a, _), c in zip(spans, caught, strict=True) if not c],
            "windows": len(spans),
            "false_alarms": sum(not any(a <= p <= b for a, b in spans) for p in firing),
        }
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def _count(t: object, report: object) -> None:
    from detectkd.runtime.replay import tally

    tally(report, t)  # type: ignore[arg-type]


def _epoch(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def _day(ts: int) -> str:
    return str(datetime.fromtimestamp(ts, UTC).date())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--nab", type=Path, default=Path("/work/shared/data/nab"))
    args = ap.parse_args()
    from detectkd.logs import configure as configure_logs

    configure_logs(level="error")
    with tempfile.TemporaryDirectory(prefix="dtk-cal-") as tmp:
        business(Path(tmp), args.days, args.seed)
        if (args.nab / "windows.json").exists():
            nyc_taxi(Path(tmp), args.nab)


if __name__ == "__main__":
    main()
