"""The daemon over failover host lists (issue 26): the source and the state store each behind two
TCP proxies in front of the real server (PostgreSQL, then ClickHouse). The first proxy of each is
stopped while the run's query is on the wire; the next run goes to the second hosts and catches
up the period the broken run lost, so every collected period ends up stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from detectkd.collectors import failover
from detectkd.config.settings import Settings, StorageSettings
from detectkd.runtime.daemon import Daemon
from tests.support.clickhouse_server import ClickHouseServer
from tests.support.databases import pg_database
from tests.support.files import write
from tests.support.tcp_proxy import TcpProxy

HOUR = 3600
T0 = 1_795_000_000 - 1_795_000_000 % HOUR

METRIC = """\
name: orders
schedule: {{interval: 1h}}
collector:
  type: {kind}
  params:
    host: "{hosts}"
    user: {user}
    database: {db}
    query: |
      SELECT period_time, value FROM src
      WHERE period_time >= {start} AND period_time < {finish}
detector:
  type: threshold
  params: {{operator: greater_than, threshold: 1000}}
alerter:
  type: log
"""
PG_WINDOW = {"start": "'{{{{ period_start }}}}'", "finish": "'{{{{ period_finish }}}}'"}
CH_WINDOW = {
    "start": "toDateTime('{{{{ period_start }}}}', 'UTC')",
    "finish": "toDateTime('{{{{ period_finish }}}}', 'UTC')",
}


@pytest.fixture
async def pg_db() -> AsyncIterator[str]:
    rows = ",".join(f"(to_timestamp({T0 + i * HOUR}), {10 + i})" for i in range(6))
    setup = f"CREATE TABLE src (period_time timestamptz, value float8); INSERT INTO src VALUES {rows}"
    async with pg_database(setup, "dtk_fo") as name:
        yield name


async def scenario(
    tmp_path: Path, kind: str, port: int, db: str, metric: str, store: dict[str, object]
) -> None:
    src_a, src_b, store_a, store_b = [await TcpProxy("127.0.0.1", port).start() for _ in range(4)]
    text = metric.format(kind=kind, hosts=f"{src_a.address},{src_b.address}", db=db)
    write(tmp_path / "metrics.d" / "orders.yaml", text)
    settings = Settings(
        metrics_dir=tmp_path / "metrics.d",
        profiles_file=None,
        data_dir=tmp_path / "data",
        storage=StorageSettings.model_validate(
            {"type": kind, "host": f"{store_a.address},{store_b.address}", **store}
        ),
        listen="127.0.0.1:0",
    )
    d = Daemon(settings)
    await d.start()
    d.scheduler.pause()  # the test drives the runs, at explicit times
    stopping: list[asyncio.Task[None]] = []
    try:
        await d.run_metric("orders", at=T0 + 1 * HOUR + 60)
        assert d.slots["orders"].runtime.status.last_error is None
        assert (src_a.accepted, src_b.accepted) == (1, 0)

        # Both first servers go away while the next run's query is on the wire.
        src_a.trip = (
            b"FROM src",
            lambda: stopping.extend(asyncio.create_task(p.stop()) for p in (src_a, store_a)),
        )
        await d.run_metric("orders", at=T0 + 2 * HOUR + 60)
        await asyncio.gather(*stopping)
        assert stopping and d.slots["orders"].runtime.status.last_error is not None

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


async def test_postgres_source_and_store_stopped_mid_run_lose_nothing(
    pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failover, "RETRY_S", 0.0)
    metric = METRIC.replace("{start}", PG_WINDOW["start"]).replace("{finish}", PG_WINDOW["finish"])
    await scenario(
        tmp_path,
        "postgres",
        5432,
        pg_db,
        metric.replace("{user}", "postgres"),
        {"user": "postgres", "database": pg_db},
    )


async def test_clickhouse_source_and_store_stopped_mid_run_lose_nothing(
    clickhouse: ClickHouseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failover, "RETRY_S", 0.0)
    db = f"dtk_fo_{uuid.uuid4().hex[:10]}"
    clickhouse.query(f"CREATE DATABASE {db}")
    clickhouse.query(f"CREATE TABLE {db}.src (period_time DateTime('UTC'), value Float64) ENGINE = Memory")
    clickhouse.query(
        f"INSERT INTO {db}.src VALUES " + ",".join(f"({T0 + i * HOUR}, {10 + i})" for i in range(6))
    )
    metric = METRIC.replace("{start}", CH_WINDOW["start"]).replace("{finish}", CH_WINDOW["finish"])
    try:
        await scenario(
            tmp_path,
            "clickhouse",
            clickhouse.http_port,
            db,
            metric.replace("{user}", "default"),
            {"database": f"{db}_store"},
        )
    finally:
        clickhouse.query(f"DROP DATABASE IF EXISTS {db}")
        clickhouse.query(f"DROP DATABASE IF EXISTS {db}_store")
