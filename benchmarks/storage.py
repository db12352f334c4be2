"""Storage and collector benchmark against the real servers on this machine.

    .venv/bin/python benchmarks/storage.py

Stores (SQLite, PostgreSQL, ClickHouse): insert throughput (points/s, in runs
of 1,000 points as the daemon commits them) and window-read latency (one
series, one day of 1-minute points, as a metric loads its window).
Collectors (SQLite, PostgreSQL, MariaDB, ClickHouse): time to load 30 days of
1-minute history for one metric in one query, typed into points.
Needs PostgreSQL on 127.0.0.1:5432 and MariaDB on :3306 (scripts/test starts
them); starts a private ClickHouse server itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiomysql  # noqa: E402
import asyncpg  # noqa: E402

from detectkd.collectors.base import Window  # noqa: E402
from detectkd.collectors.points import Point, PointSpec, rows_to_points  # noqa: E402
from detectkd.collectors.registry import COLLECTORS  # noqa: E402
from detectkd.resources import Resources  # noqa: E402
from detectkd.storage.base import RunRecord, Store  # noqa: E402
from detectkd.storage.clickhouse import ClickhouseStore  # noqa: E402
from detectkd.storage.postgres import PostgresStore  # noqa: E402
from detectkd.storage.sqlite import SqliteStore  # noqa: E402
from detectkd.timegrid import Grid  # noqa: E402
from tests.support.clickhouse_server import ClickHouseServer, remove, start_server  # noqa: E402

MINUTE = 60
DAYS = 30
N_POINTS = DAYS * 1440
END = 1_795_000_000 - 1_795_000_000 % 86400
START = END - DAYS * 86400


def values() -> list[tuple[int, float]]:
    return [(START + i * MINUTE, 100.0 + (i % 1440) / 10 + (i % 7)) for i in range(N_POINTS)]


async def bench_store(name: str, store: Store) -> tuple[str, float, float]:
    await store.open()
    metric = f"bench_{uuid.uuid4().hex[:6]}"
    pts = [Point("", t, v) for t, v in values()]
    t0 = time.perf_counter()
    for i in range(0, len(pts), 1000):
        await store.commit(RunRecord(metric, points=pts[i : i + 1000], watermark=pts[i].period))
    inserted = len(pts) / (time.perf_counter() - t0)
    reads = []
    for k in range(30):
        until = END - k * 3600
        t1 = time.perf_counter()
        got = await store.read_points(metric, "", until - 86400, until)
        reads.append(time.perf_counter() - t1)
        assert len(got[""]) == 1440, (name, len(got.get("", [])))
    await store.close()
    return name, inserted, statistics.median(reads) * 1000


async def bench_collector(
    name: str, kind: str, params: object, resources: Resources
) -> tuple[str, float, int]:
    collector = COLLECTORS[kind].build(params, resources, "period_time", "value")
    window = Window(START, END, dt.timedelta(minutes=1), ZoneInfo("UTC"))
    t0 = time.perf_counter()
    rows = await collector.collect(window)
    conv = rows_to_points(rows, PointSpec("period_time", "value", (), ()), window, Grid(window.interval))
    return name, time.perf_counter() - t0, len(conv.points)


def stamp(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


async def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="dtk-bench-"))
    ch: ClickHouseServer = start_server()
    db = f"dtk_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {db}")
    my = await aiomysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    resources = Resources()
    try:
        print(f"{N_POINTS} points = {DAYS} days of 1-minute data; stores write in runs of 1,000 points")
        print(f"{'store':<12}{'insert points/s':>18}{'window read ms (1 day)':>26}")
        for name, store in (
            ("sqlite", SqliteStore(tmp / "store.db")),
            ("postgres", PostgresStore(host="127.0.0.1", user="postgres", database=db)),
            ("clickhouse", ClickhouseStore(ch.url, database=db)),
        ):
            n, rate, read_ms = await bench_store(name, store)
            print(f"{n:<12}{rate:>18,.0f}{read_ms:>26.2f}", flush=True)

        data = values()
        src = tmp / "src.db"
        conn = sqlite3.connect(src)
        conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
        conn.executemany("INSERT INTO src VALUES (?, ?)", [(stamp(t), v) for t, v in data])
        conn.execute("CREATE INDEX src_t ON src (period_time)")
        conn.commit()
        conn.close()
        pg = await asyncpg.connect(host="127.0.0.1", user="postgres", database=db)
        await pg.execute("CREATE TABLE src (period_time timestamptz PRIMARY KEY, value double precision)")
        await pg.copy_records_to_table(
            "src", records=[(dt.datetime.fromtimestamp(t, dt.UTC), v) for t, v in data]
        )
        await pg.close()
        async with my.cursor() as cur:
            await cur.execute(f"CREATE DATABASE {db}")
            await cur.execute(f"CREATE TABLE {db}.src (period_time DATETIME PRIMARY KEY, value DOUBLE)")
            for i in range(0, len(data), 5000):
                await cur.executemany(
                    f"INSERT INTO {db}.src VALUES (%s, %s)", [(stamp(t), v) for t, v in data[i : i + 5000]]
                )
        ch.query(
            f"CREATE TABLE {db}.src (period_time DateTime('UTC'), value Float64) "
            "ENGINE = MergeTree ORDER BY period_time"
        )
        ch.query(f"INSERT INTO {db}.src VALUES " + ",".join(f"({t},{v})" for t, v in data))

        q = (
            "SELECT period_time, value FROM src "
            "WHERE period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'"
        )
        pq = q.replace("'{{ period_start }}'", "'{{ period_start }}'::timestamp AT TIME ZONE 'UTC'").replace(
            "'{{ period_finish }}'", "'{{ period_finish }}'::timestamp AT TIME ZONE 'UTC'"
        )
        from detectkd.collectors.clickhouse import Params as ChParams
        from detectkd.collectors.params import NetworkParams
        from detectkd.collectors.sqlite import Params as SqliteParams

        print(f"\n{'collector':<12}{'load 30 days (s)':>18}{'points':>10}")
        for name, kind, params in (
            ("sqlite", "sqlite", SqliteParams(database=str(src), query=q)),
            ("postgres", "postgres", NetworkParams(host="127.0.0.1", user="postgres", database=db, query=pq)),
            ("mariadb", "mysql", NetworkParams(host="127.0.0.1", user="root", database=db, query=q)),
            ("clickhouse", "clickhouse", ChParams(host="127.0.0.1", port=ch.http_port, database=db, query=q)),
        ):
            n, secs, count = await bench_collector(name, kind, params, resources)
            assert count == N_POINTS, (name, count)
            print(f"{n:<12}{secs:>18.2f}{count:>10}", flush=True)
    finally:
        await resources.close()
        await admin.execute(f"DROP DATABASE {db} WITH (FORCE)")
        await admin.close()
        async with my.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS {db}")
        my.close()
        remove(ch)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
