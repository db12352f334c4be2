"""Late and incomplete periods (issue 31): false alarms and detection delay of each mode.

    .venv/bin/python benchmarks/late_data.py [--days 90] [--history 14] [--seed 31]

A seeded hourly business metric (the sum of one row a minute, daily seasonality, a few %
noise) whose source receives 70 % of each hour's rows by the end of the hour and the rest
at random within the ten minutes after it; now and then (every 110-170 hours,
further apart than the `auto` detector's rest period) an hour really
drops to 40 %. The daemon runs in-process on a simulated clock, exactly as its scheduler
would: a run at each hour's end (`delay: 0`, the default) and, while the completeness gate
holds an hour back, the extra runs it asks for. The metric uses the default detector
(`auto`) with `start_time` history; nothing was tuned on this data.

For each mode (none, `schedule.delay: 10m` for reference, `complete_when` on a loader log
that marks an hour once all its rows are in, `settle: 5m`, `recheck: 2h`) it prints the
FIRING notifications on hours that did not drop (false pages), how many of them were
retracted, the drops detected and missed, and the detection delay (from the end of the
dropped hour to its FIRING, in minutes: median and max).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import logging
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import structlog  # noqa: E402

from detectkd.alerting.alert import Alert  # noqa: E402
from detectkd.runtime.daemon import Daemon  # noqa: E402
from tests.support.inprocess import make_settings  # noqa: E402

HOUR = 3600
T0 = 1_780_000_000 - 1_780_000_000 % 86400  # a midnight (UTC)
ON_TIME = 0.7
LATE_WITHIN = 600
DROP = 0.4
MODES = {
    "none": "",
    "delay 10m": "",
    "complete_when": (
        "completeness:\n  complete_when: \"SELECT count(*) FROM etl WHERE hour = '{{ period_start }}'\""
    ),
    "settle 5m": "completeness:\n  settle: 5m",
    "recheck 2h": "completeness:\n  recheck: 2h",
    "settle 5m + recheck 2h": "completeness:\n  settle: 5m\n  recheck: 2h",
}


@dataclass
class Row:
    arrives: float
    ts: int
    amount: float


@dataclass
class World:
    rows: list[Row]
    loaded: list[tuple[float, int]]  # (when, hour): the loader's log says the hour is complete
    drops: set[int]
    hours: int
    history: int


def world(days: int, history: int, seed: int) -> World:
    rng = random.Random(seed)
    hours = days * 24
    drops: set[int] = set()
    k = history * 24 + rng.randint(110, 170)
    while k < hours - 2:  # further apart than `auto`'s rest period (100 points): each may page
        drops.add(T0 + k * HOUR)
        k += rng.randint(110, 170)
    rows: list[Row] = []
    loaded: list[tuple[float, int]] = []
    for h in range(hours):
        start = T0 + h * HOUR
        daily = 1 + 0.5 * math.sin(2 * math.pi * ((h % 24) - 6) / 24)
        level = 1000 * daily * rng.gauss(1, 0.02) * (DROP if start in drops else 1.0)
        end = start + HOUR
        last: float = end
        for m in range(60):
            live = h < history * 24 or rng.random() < ON_TIME
            arrives = end if live else end + rng.uniform(1, LATE_WITHIN)
            last = max(last, arrives)
            rows.append(Row(arrives, start + m * 60, level / 60 * rng.gauss(1, 0.05)))
        loaded.append((last, start))
    rows.sort(key=lambda r: r.arrives)
    return World(rows, loaded, drops, hours, history)


def metric(db: Path, history_start: int, mode: str) -> str:
    start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(history_start))
    delay = ", delay: 10m" if mode == "delay 10m" else ""
    return f"""\
name: m
schedule: {{interval: 1h, start_time: "{start}"{delay}}}
collector:
  type: sqlite
  params:
    database: {db}
    query: |
      SELECT sum(amount) AS value FROM orders
      WHERE ts >= '{{{{ period_start }}}}' AND ts < '{{{{ period_finish }}}}'
alerter:
  type: log
{MODES[mode]}
"""


@dataclass
class Tally:
    fired: dict[int, float] = field(default_factory=dict)  # episode start -> when its FIRING was sent
    retracted: set[int] = field(default_factory=set)
    late: set[int] = field(default_factory=set)


class Feed:
    """The source's rows as they arrive on the simulated clock."""

    def __init__(self, db: Path, w: World) -> None:
        self.conn = sqlite3.connect(db)
        self.conn.execute("CREATE TABLE orders (ts TEXT, amount REAL)")
        self.conn.execute("CREATE INDEX orders_ts ON orders (ts)")
        self.conn.execute("CREATE TABLE etl (hour TEXT)")
        self.w, self.i, self.j = w, 0, 0

    def until(self, now: float) -> None:
        rows, k = self.w.rows, self.i
        while k < len(rows) and rows[k].arrives <= now:
            k += 1
        fmt = "INSERT INTO orders VALUES (datetime(?, 'unixepoch'), ?)"
        self.conn.executemany(fmt, [(r.ts, r.amount) for r in rows[self.i : k]])
        self.i = k
        log = self.w.loaded
        while self.j < len(log) and log[self.j][0] <= now:
            self.conn.execute("INSERT INTO etl VALUES (datetime(?, 'unixepoch'))", (log[self.j][1],))
            self.j += 1
        self.conn.commit()


async def simulate(w: World, mode: str, root: Path) -> Tally:
    db = root / "src.db"
    feed = Feed(db, w)
    (root / "metrics.d").mkdir(parents=True)
    (root / "metrics.d" / "m.yaml").write_text(metric(db, T0, mode))
    live_from = T0 + w.history * 24 * HOUR
    d = Daemon(make_settings(root))
    d.history.clock = lambda: live_from + 30
    await d.start()
    d.scheduler.pause()
    tally = Tally()
    seen: set[int] = set()
    try:
        slot = d.slots["m"]
        delay = 600 if mode == "delay 10m" else 0
        events = [(float(T0 + h * HOUR + delay + 5), "slot") for h in range(w.history * 24, w.hours + 1)]
        heapq.heapify(events)
        first = True

        async def nothing() -> None:
            return None

        while events:
            now, _ = heapq.heappop(events)
            feed.until(now)
            finish = slot.runtime.finish_for(now)
            held = await slot.late.run(finish, now, nothing)
            slot.late.cancel()  # the simulation asks again itself, on its own clock
            if first:
                await d.history.settled()
                first = False
            if held.retry is not None:
                heapq.heappush(events, (now + held.retry, "retry"))
            for item in await d.store.outbox_history("m", 0):
                if item.id in seen:
                    continue
                seen.add(item.id)
                a = Alert.from_json(item.payload)
                if a.kind != "anomaly" or a.repeat:
                    continue
                if a.status == "firing":
                    tally.fired.setdefault(a.started_at, now)
                    if a.revised == "late":
                        tally.late.add(a.started_at)
                elif a.revised == "retracted":
                    tally.retracted.add(a.started_at)
    finally:
        d.scheduler.shutdown(wait=False)
        await d.close()
        feed.conn.close()
    return tally


def report(mode: str, w: World, t: Tally) -> str:
    false = [s for s in t.fired if not any(abs(s - dp) <= HOUR for dp in w.drops)]
    delays: list[float] = []
    for dp in sorted(w.drops):
        hit = [when for s, when in t.fired.items() if abs(s - dp) <= HOUR]
        if hit:
            delays.append((min(hit) - (dp + HOUR)) / 60)
    med = f"{statistics.median(delays):.0f}" if delays else "-"
    top = f"{max(delays):.0f}" if delays else "-"
    retracted = len([s for s in false if s in t.retracted])
    return (
        f"| {mode} | {len(false)} | {retracted} | {len(delays)}/{len(w.drops)} | {med} | {top} "
        f"| {len(t.late)} |"
    )


async def main_async(args: argparse.Namespace) -> None:
    w = world(args.days, args.history, args.seed)
    live = (args.days - args.history) * 24
    print(f"{live} live hours, {len(w.drops)} drops, seed {args.seed}")
    print("| mode | false pages | of them retracted | drops detected | delay median (min) | max | late |")
    print("|---|---|---|---|---|---|---|")
    for mode in args.modes or list(MODES):
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="dtk-late-") as tmp:
            tally = await simulate(w, mode, Path(tmp))
        print(report(mode, w, tally), f"<!-- {time.monotonic() - started:.0f}s -->", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=90, help="days of data in all")
    ap.add_argument("--history", type=int, default=14, help="of them loaded as history (start_time)")
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--modes", nargs="*", choices=list(MODES))
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
