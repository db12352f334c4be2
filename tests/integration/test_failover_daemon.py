"""The daemon over failover host lists (issue 26): the PostgreSQL source and the PostgreSQL state
store each behind two TCP proxies in front of the real server. The first of each is stopped in
the middle of a run; the next run goes to the second hosts and catches up the period the broken
run lost, so every collected period ends up stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from detectkd.collectors import failover
from detectkd.config.settings import Settings, StorageSettings
from detectkd.runtime.daemon import Daemon
from tests.conftest import pg_database, write
from tests.tcp_proxy import TcpProxy

HOUR = 3600
T0 = 1_795_000_000 - 1_795_000_000 % HOUR

METRIC = """\
name: orders
schedule: {{interval: 1h}}
collector:
  type: postgres
  params:
    host: "{hosts}"
    user: postgres
    database: {db}
    query: |
      SELECT period_time, value FROM src, slow
      WHERE period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
        AND pg_sleep(slow.s) IS NOT NULL
detector:
  type: threshold
  params: {{operator: greater_than, threshold: 1000}}
alerter:
  type: log
"""


@pytest.fixture
async def db() -> AsyncIterator[str]:
    rows = ",".join(f"(to_timestamp({T0 + i * HOUR}), {10 + i})" for i in range(6))
    setup = f"CREATE TABLE src (period_time timestamptz, value float8); INSERT INTO src VALUES {rows};"
    setup += "CREATE TABLE slow (s float8); INSERT INTO slow VALUES (0)"
    async with pg_database(setup, "dtk_fo") as name:
        yield name


async def sql(db: str, query: str) -> object:
    conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database=db)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_a_server_stopped_mid_run_loses_nothing(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failover, "RETRY_S", 0.0)
    src_a, src_b, store_a, store_b = [await TcpProxy("127.0.0.1", 5432).start() for _ in range(4)]
    write(
        tmp_path / "metrics.d" / "orders.yaml", METRIC.format(hosts=f"{src_a.address},{src_b.address}", db=db)
    )
    settings = Settings(
        metrics_dir=tmp_path / "metrics.d",
        profiles_file=None,
        data_dir=tmp_path / "data",
        storage=StorageSettings(
            type="postgres", host=f"{store_a.address},{store_b.address}", user="postgres", database=db
        ),
        listen="127.0.0.1:0",
    )
    d = Daemon(settings)
    await d.start()
    d.scheduler.pause()  # the test drives the runs, at explicit times
    try:
        await d.run_metric("orders", at=T0 + 1 * HOUR + 60)
        assert d.slots["orders"].runtime.status.last_error is None
        assert (src_a.accepted, src_b.accepted) == (1, 0)

        await sql(db, "UPDATE slow SET s = 0.5")
        run = asyncio.create_task(d.run_metric("orders", at=T0 + 2 * HOUR + 60))
        deadline = time.monotonic() + 10
        query = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%FROM src, slow%' AND pid <> pg_backend_pid()"
        while not await sql(db, query):
            assert time.monotonic() < deadline, "the run's query never started"
            await asyncio.sleep(0.02)
        await src_a.stop()  # both first servers go away in the middle of the run
        await store_a.stop()
        await run
        assert "connection" in str(d.slots["orders"].runtime.status.last_error)

        await sql(db, "UPDATE slow SET s = 0")
        await d.run_metric("orders", at=T0 + 3 * HOUR + 60)  # the next run: the second hosts
        assert d.slots["orders"].runtime.status.last_error is None
        assert src_b.accepted >= 1 and store_b.accepted >= 1
        stored = await d.store.read_points("orders", "", 0, T0 + 10 * HOUR)
        assert [(p.period - T0, p.value) for p in stored[""]] == [(0, 10.0), (HOUR, 11.0), (2 * HOUR, 12.0)]
    finally:
        d.scheduler.shutdown(wait=False)
        await d.close()
        for p in (src_a, src_b, store_a, store_b):
            await p.stop()
