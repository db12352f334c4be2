"""Demo source for the embedded default: a SQLite shop whose orders keep arriving.

`python -m detectkd.demo --db PATH` fills two hours of history, then writes new
rows every second: orders per region following a daily curve with noise,
and checkout latency. Anomalies are injected on a fixed timeline so the
first FIRING and RESOLVED show up within two minutes of starting (from the first
10-second boundary at +35 s or after it, so the spike fills whole periods):

    +35s .. +60s    orders in `eu` triple (spike)
    +100s .. +125s  checkout latency quadruples
    +165s .. +195s  orders in `us` drop to a tenth (dip)
    then the same cycle every 5 minutes.

The data is the same at every start: the daily curve follows the demo's own clock, which
starts at `START_HOUR` (the busy afternoon) whatever the wall clock says, and the noise is
`--seed`'s draws. With a curve that followed the wall clock, about one start in a hundred drew
a history whose last minutes broke `eu`'s range: `auto` paged it (silently: history does not
alert) and its rest period held the spike (docs/detectors.md, "a break after a break").
With the default seed, every one of the 120 alignments of a start to `auto`'s 2-minute blocks
alarms on the `eu` spike and the `us` dip (`benchmarks/demo_starts.py`; seeds 1 and 3 miss the
dip at a tenth of them). That is a start on a new database: a run on the database of an earlier
one continues that one's clock (`meta`), and its history holds the earlier run's anomalies, so
within about 17 minutes (`auto`'s rest period) of them its first ones may be held.
"""

from __future__ import annotations

import argparse
import math
import random
import signal
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

REGIONS = {"eu": 6.0, "us": 4.0, "apac": 2.0}  # mean orders per second at the daily peak
HISTORY_S = 2 * 3600
CYCLE_S = 300
PERIOD_S = 10  # demo_orders' interval
START_HOUR = 14.0  # the demo's clock at the feeder's start: the busy afternoon


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def daily(t: float, day0: float) -> float:
    """0.4 .. 1.0 over the demo's day (`day0`: its midnight): quiet at night, busy in the
    afternoon."""
    hour = ((t - day0) % 86400) / 3600
    return 0.7 + 0.3 * math.sin((hour - 9) / 24 * 2 * math.pi)


def day_start(t0: float) -> float:
    """The demo's midnight for a feeder started at t0: its clock starts at `START_HOUR`, so the
    demo's data is the same at every start (the draws of `--seed` at the same levels)."""
    return t0 - START_HOUR * 3600


def factors(t: float, t0: float) -> tuple[dict[str, float], float]:
    """Injected anomalies at time t for a feeder started at t0 (multipliers)."""
    phase = (t - t0) % CYCLE_S if t >= t0 else -1.0
    orders = dict.fromkeys(REGIONS, 1.0)
    latency = 1.0
    if 35 <= phase < 60:
        orders["eu"] = 3.0
    if 100 <= phase < 125:
        latency = 4.0
    if 165 <= phase < 195:
        orders["us"] = 0.1
    return orders, latency


def anomaly_origin(t0: float) -> float:
    """Where the live timeline starts (`factors`' t0), at t0 or up to 9 s after it: so that the
    eu spike begins on a period of `demo_orders` (10 s). A first period only partly spiked
    showed the change at a fraction of its size, and its FIRING's "Where:" could find no
    region standing out (the e2e demo test then waited in vain for the next cycle)."""
    return t0 + (-(t0 + 35)) % PERIOD_S


def second_rows(
    t: float, t0: float, rng: random.Random, day0: float
) -> tuple[list[tuple[str, str, float]], float]:
    mult, lat = factors(t, t0)
    rows: list[tuple[str, str, float]] = []
    stamp = _ts(t)
    for region, peak in REGIONS.items():
        lam = peak * daily(t, day0) * mult[region]
        # Poisson draw by inversion (small lambdas): no numpy needed here.
        n, p, u = 0, math.exp(-lam), rng.random()
        cum = p
        while u > cum and n < 200:
            n += 1
            p *= lam / n
            cum += p
        rows.extend((stamp, region, round(rng.uniform(5, 120), 2)) for _ in range(n))
    latency = max(5.0, rng.gauss(120.0, 12.0)) * lat
    return rows, latency


def open_db(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS orders (ts TEXT NOT NULL, region TEXT NOT NULL, amount REAL);
        CREATE INDEX IF NOT EXISTS orders_ts ON orders (ts);
        CREATE TABLE IF NOT EXISTS checkout_latency (ts TEXT NOT NULL, ms REAL);
        CREATE INDEX IF NOT EXISTS latency_ts ON checkout_latency (ts);
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
        """
    )
    return conn


def clock(conn: sqlite3.Connection, t0: float) -> float:
    """The demo's midnight (`day_start`): a new database's from `t0`, kept in `meta`, so a run
    on an earlier run's database continues that run's daily curve without a jump."""
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('day0', ?)", (day_start(t0),))
    (day0,) = conn.execute("SELECT value FROM meta WHERE key = 'day0'").fetchone()
    return float(day0)


def write(
    conn: sqlite3.Connection, start: float, end: float, t0: float, rng: random.Random, day0: float
) -> None:
    orders: list[tuple[str, str, float]] = []
    latency: list[tuple[str, float]] = []
    t = start
    while t < end:
        rows, ms = second_rows(t, t0, rng, day0)
        orders.extend(rows)
        latency.append((_ts(t), round(ms, 2)))
        t += 1
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO orders VALUES (?,?,?)", orders)
    conn.executemany("INSERT INTO checkout_latency VALUES (?,?)", latency)
    conn.execute("COMMIT")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m detectkd.demo", description=__doc__)
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    conn = open_db(args.db)
    t0 = float(int(time.time()))
    (newest,) = conn.execute("SELECT max(ts) FROM checkout_latency").fetchone()
    since = t0 - HISTORY_S
    if newest:
        since = max(since, datetime.fromisoformat(newest).replace(tzinfo=UTC).timestamp() + 1)
    day0 = clock(conn, t0)
    write(conn, since, t0, t0 + 10 * CYCLE_S, rng, day0)  # history: no injected anomalies
    Path(f"{args.db}.ready").touch()
    print(f"demo source {args.db}: history ready, feeding live data", flush=True)
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    origin = anomaly_origin(t0)
    t = t0
    while running:
        now = time.time()
        if now < t + 1:
            time.sleep(t + 1 - now)
            continue
        write(conn, t, float(int(now)), origin, rng, day0)
        t = float(int(now))
        if int(t) % 60 == 0:
            conn.execute("DELETE FROM orders WHERE ts < ?", (_ts(t - 3 * 3600),))
            conn.execute("DELETE FROM checkout_latency WHERE ts < ?", (_ts(t - 3 * 3600),))
    conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
