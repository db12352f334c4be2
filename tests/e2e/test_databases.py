"""The real daemon on the three real databases, and a ClickHouse outage in the middle."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiomysql
import asyncpg
import pytest

from tests.support.clickhouse_server import ClickHouseServer, remove, start_server
from tests.support.files import write
from tests.support.http import Receiver
from tests.support.process import DaemonProcess

STEP = 2


@pytest.fixture
def own_clickhouse() -> Iterator[ClickHouseServer]:
    """A server of this test's own: the test stops and restarts it."""
    server = start_server()
    yield server
    remove(server)


@pytest.fixture
async def databases() -> AsyncIterator[dict[str, str]]:
    name = f"dtk_e2e_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}_src")
    await admin.execute(f"CREATE DATABASE {name}_store")
    my = await aiomysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    async with my.cursor() as cur:
        await cur.execute(f"CREATE DATABASE {name}")
    yield {"pg_src": f"{name}_src", "pg_store": f"{name}_store", "mysql": name, "ch": name}
    await admin.execute(f"DROP DATABASE {name}_src WITH (FORCE)")
    await admin.execute(f"DROP DATABASE {name}_store WITH (FORCE)")
    await admin.close()
    async with my.cursor() as cur:
        await cur.execute(f"DROP DATABASE {name}")
    my.close()


def series(start: int, end: int) -> list[tuple[int, float]]:
    return [(t, 100.0 + (t // STEP) % 5) for t in range(start, end, STEP)]


def metric(name: str, collector: str, storage: str) -> str:
    return f"""\
name: {name}
schedule: {{interval: {STEP}s, start_time: 120s, max_catch_up: 200}}
collector:
{collector}
detector:
  type: mad
  params: {{window_size: 100, n_sigma: 6, use_weighted: false, min_samples: 20}}
alerter:
  type: webhook
  params: {{url: "${{HOOK}}"}}
{storage}
"""


async def test_three_databases_alert_once_and_survive_a_clickhouse_outage(
    daemon: DaemonProcess, receiver: Receiver, own_clickhouse: ClickHouseServer, databases: dict[str, str]
) -> None:
    ch = own_clickhouse
    now = int(time.time()) - int(time.time()) % STEP
    start, end = now - 400, now + 900

    pg = await asyncpg.connect(host="127.0.0.1", user="postgres", database=databases["pg_src"])
    await pg.execute("CREATE TABLE src (period_time timestamptz, value double precision)")
    await pg.executemany("INSERT INTO src VALUES (to_timestamp($1), $2)", series(start, end))
    await pg.close()
    my = await aiomysql.connect(
        host="127.0.0.1", user="root", password="", db=databases["mysql"], autocommit=True
    )
    async with my.cursor() as cur:
        await cur.execute("CREATE TABLE src (period_time DATETIME, value DOUBLE)")
        await cur.executemany(
            "INSERT INTO src VALUES (FROM_UNIXTIME(%s), %s)",
            series(start, end),
        )
        await cur.execute("SET time_zone = '+00:00'")
    my.close()
    ch.query(f"CREATE DATABASE {databases['ch']}")
    ch.query(
        f"CREATE TABLE {databases['ch']}.src (period_time DateTime('UTC'), value Float64) ENGINE = MergeTree() ORDER BY period_time"
    )
    ch.query(
        f"INSERT INTO {databases['ch']}.src VALUES " + ",".join(f"({t}, {v})" for t, v in series(start, end))
    )

    where = "WHERE period_time >= {s} AND period_time < {f}"
    d = daemon.root / "metrics.d"
    write(
        d / "m_pg.yaml",
        metric(
            "m_pg",
            "  type: postgres\n  params:\n    host: 127.0.0.1\n    user: postgres\n"
            f"    database: {databases['pg_src']}\n"
            '    query: "SELECT period_time, value FROM src '
            + where.format(
                s="'{{ period_start }}'::timestamp AT TIME ZONE 'UTC'",
                f="'{{ period_finish }}'::timestamp AT TIME ZONE 'UTC'",
            )
            + '"',
            f"storage:\n  type: clickhouse\n  params: {{host: 127.0.0.1, port: {ch.http_port}, database: dtk_store}}",
        ),
    )
    write(
        d / "m_my.yaml",
        metric(
            "m_my",
            "  type: sql\n  params:\n"
            f"    connection_string: mysql://root@127.0.0.1:3306/{databases['mysql']}\n"
            '    query: "SELECT period_time, value FROM src '
            + where.format(s="'{{ period_start }}'", f="'{{ period_finish }}'")
            + '"',
            f"storage:\n  type: sql\n  params: {{connection_string: 'postgresql://postgres@127.0.0.1:5432/{databases['pg_store']}'}}",
        ),
    )
    write(
        d / "m_ch.yaml",
        metric(
            "m_ch",
            f"  type: clickhouse\n  params:\n    host: 127.0.0.1\n    port: {ch.http_port}\n    database: {databases['ch']}\n"
            '    query: "SELECT period_time, value FROM src '
            + where.format(s="'{{ period_start }}'", f="'{{ period_finish }}'")
            + '"',
            "",
        ),
    )
    await daemon.start(env={"HOOK": receiver.url})
    # One spike per source just ahead of the running daemon, so it judges them live however
    # long it took to start (points it catches up on are history: they never notify).
    ahead = int(time.time()) // STEP * STEP + 3 * STEP
    spikes = {"m_pg": ahead, "m_my": ahead + STEP, "m_ch": ahead + 2 * STEP}
    pg = await asyncpg.connect(host="127.0.0.1", user="postgres", database=databases["pg_src"])
    await pg.execute("UPDATE src SET value = 900 WHERE period_time = to_timestamp($1)", spikes["m_pg"])
    await pg.close()
    my = await aiomysql.connect(
        host="127.0.0.1", user="root", password="", db=databases["mysql"], autocommit=True
    )
    async with my.cursor() as cur:  # the session time zone the rows were inserted in
        await cur.execute("UPDATE src SET value = 900 WHERE period_time = FROM_UNIXTIME(%s)", spikes["m_my"])
    my.close()
    at = f"period_time = toDateTime({spikes['m_ch']})"
    ch.query(f"ALTER TABLE {databases['ch']}.src UPDATE value = 900 WHERE {at}")  # a mutation: async

    async def applied() -> bool:
        return ch.query(f"SELECT value FROM {databases['ch']}.src WHERE {at}").strip() == "900"

    await daemon.until(applied, timeout=5, what="the ClickHouse spike written")

    # Every anomaly is detected and alerted, FIRING then RESOLVED.
    for name in spikes:
        await receiver.wait_for(lambda b, n=name: b["metric"] == n and b["status"] == "resolved", timeout=60)

    async def state(name: str) -> dict[str, Any]:
        m = await daemon.metric(name)
        assert m is not None
        return m

    # ClickHouse goes away: only the metrics that need it go to ERROR.
    ch.stop()
    my_runs = (await state("m_my"))["runs"]

    async def outage_seen() -> bool:
        states = [(await state(n))["state"] for n in ("m_pg", "m_ch")]
        return states == ["error", "error"]

    await daemon.until(outage_seen, timeout=30, what="ClickHouse metrics in ERROR")

    async def my_ran() -> bool:  # its next run may come after the others failed: wait for it
        return bool((await state("m_my"))["runs"] > my_runs)

    await daemon.until(my_ran, timeout=30, what="m_my running during the outage")
    assert (await state("m_my"))["state"] == "ok"
    assert "clickhouse" in (await state("m_ch"))["last_error"]
    outage_start = time.time()
    await daemon.until(lambda: time.time() - outage_start > 6, what="a few periods of outage")

    ch.start()

    async def recovered() -> bool:
        states = [(await state(n))["state"] for n in ("m_pg", "m_ch")]
        return states == ["ok", "ok"]

    await daemon.until(recovered, timeout=60, what="recovery after ClickHouse is back")
    assert await daemon.stop() == 0

    # Alerts: exactly one FIRING and one RESOLVED per metric, nothing else.
    got = sorted((b["metric"], b["status"]) for b in receiver.received)
    assert got == sorted((n, s) for n in spikes for s in ("firing", "resolved")), got

    # Catch-up filled the outage: every period from the first to the watermark, once.
    pg_store = await asyncpg.connect(host="127.0.0.1", user="postgres", database=databases["pg_store"])
    my_points = [
        r["p"]
        for r in await pg_store.fetch(
            "SELECT extract(epoch FROM period)::bigint AS p FROM dtk_datapoints WHERE metric = 'm_my' ORDER BY period"
        )
    ]
    await pg_store.close()
    ch_points = [
        int(x)
        for x in ch.query(
            "SELECT toUInt32(period) FROM dtk_store.dtk_datapoints FINAL WHERE metric = 'm_pg' ORDER BY period"
        ).split()
    ]
    lite = sqlite3.connect(daemon.root / "data" / "detectkd.db")
    lite_points = [
        r[0] for r in lite.execute("SELECT period FROM dtk_datapoints WHERE metric = 'm_ch' ORDER BY period")
    ]
    marks = dict(lite.execute("SELECT metric, period FROM dtk_watermarks"))
    lite.close()
    for name, points in (("m_my", my_points), ("m_pg", ch_points), ("m_ch", lite_points)):
        assert points, name
        assert points == list(range(points[0], marks[name] + STEP, STEP)), f"{name}: gap or duplicate"
        assert points[-1] > outage_start  # data after the outage arrived
    raw_pg = int(ch.query("SELECT count() FROM dtk_store.dtk_datapoints FINAL WHERE metric = 'm_pg'"))
    assert raw_pg == len(ch_points)
    assert dt.datetime.now(dt.UTC).timestamp() - marks["m_pg"] < 60
