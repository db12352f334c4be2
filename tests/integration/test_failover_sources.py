"""Failover of the PostgreSQL and ClickHouse sources over host lists (issue 26), against the real
PostgreSQL and the private ClickHouse: a first host that refuses, one that black-holes, and a
server stopped mid-query (a TCP proxy in front of the real one) — then the way back."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from zoneinfo import ZoneInfo

import pytest

from detectkd.collectors import chhosts, failover
from detectkd.collectors import clickhouse as ch_module
from detectkd.collectors.base import Collector, Row, Window
from detectkd.collectors.clickhouse import Params as ChParams
from detectkd.collectors.params import NetworkParams
from detectkd.collectors.registry import COLLECTORS
from detectkd.errors import CollectError
from detectkd.resources import Resources
from tests.support.clickhouse_server import ClickHouseServer
from tests.support.databases import pg_database
from tests.support.tcp_proxy import TcpProxy, black_hole, dead_port

T0 = 1_795_000_200
W = Window(T0, T0 + 600, dt.timedelta(minutes=10), ZoneInfo("UTC"))
PG_QUERY = "SELECT period_time, value FROM m WHERE period_time >= '{{ period_start }}'"
SLOW_PG = " AND pg_sleep(0.5) IS NOT NULL"
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
async def pg_db() -> AsyncIterator[str]:
    setup = f"CREATE TABLE m (period_time timestamptz, value float8); INSERT INTO m VALUES (to_timestamp({T0}), 7)"
    async with pg_database(setup, "dtk_fo") as name:
        yield name


@pytest.fixture
def ch_db(clickhouse: ClickHouseServer) -> str:
    name = f"dtk_fo_{uuid.uuid4().hex[:10]}"
    clickhouse.query(f"CREATE DATABASE {name}")
    clickhouse.query(f"CREATE TABLE {name}.m (period_time DateTime('UTC'), value Float64) ENGINE = Memory")
    clickhouse.query(f"INSERT INTO {name}.m VALUES ({T0}, 7)")
    return name


async def proxies(port: int, n: int = 2) -> list[TcpProxy]:
    return [await TcpProxy("127.0.0.1", port).start() for _ in range(n)]


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, deadline_s: float = 10) -> None:
    end = time.monotonic() + deadline_s
    while not await check():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        await asyncio.sleep(0.02)


async def timed(c: Collector) -> tuple[float, list[Row]]:
    start = time.monotonic()
    rows = await c.collect(W)
    return time.monotonic() - start, rows


def pg_source(resources: Resources, url: str) -> Collector:
    params = NetworkParams(connection_string=url, query=PG_QUERY)
    return COLLECTORS["postgres"].build(params, resources)


async def test_postgres_source_passes_a_refused_and_a_black_holed_host(
    pg_db: str, resources: Resources
) -> None:
    with black_hole() as hole:
        dead = dead_port()
        url = f"postgresql://postgres@127.0.0.1:{dead},127.0.0.1:{hole},127.0.0.1:5432/{pg_db}?connect_timeout=1"
        c = pg_source(resources, url)
        took, rows = await timed(c)
        assert [r["value"] for r in rows] == [7.0]
        assert 0.9 < took < 3, took  # the refusal costs nothing, the black hole its connect_timeout
        # The two failed hosts are tried last for a minute: a new connection goes straight through.
        pool = next(iter(resources._pools.values()))
        await pool._pool.expire_connections()
        took, _ = await timed(c)
        assert took < 0.5, took

        # No host at all: the error names every host and why it was passed over.
        url = f"postgresql://postgres@127.0.0.1:{dead},127.0.0.1:{hole}/{pg_db}?connect_timeout=1"
        with pytest.raises(CollectError) as err:
            await pg_source(resources, url).collect(W)
    text = str(err.value)
    assert f"postgres 127.0.0.1:{dead},127.0.0.1:{hole}/{pg_db}: cannot connect" in text
    assert (
        f"127.0.0.1:{dead} ConnectionRefusedError" in text
        and f"127.0.0.1:{hole} TimeoutError: no answer in 1s" in text
    )


async def test_postgres_source_stopped_mid_query_goes_to_the_next_host_and_back(
    pg_db: str, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failover, "RETRY_S", 0.0)  # a failed host may be tried again at once
    a, b = await proxies(5432)
    query = PG_QUERY + SLOW_PG
    params = NetworkParams(host=f"{a.address},{b.address}", user="postgres", database=pg_db, query=query)
    c = COLLECTORS["postgres"].build(params, resources)
    assert [r["value"] for r in await c.collect(W)] == [7.0]
    assert (a.accepted, b.accepted) == (1, 0)

    async def sleeping() -> bool:
        import asyncpg

        conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database=pg_db)
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.5)%' "
                "AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return bool(n)

    run = asyncio.create_task(c.collect(W))
    await wait_until(sleeping, "the query to run on the first host")
    await a.stop()  # the first server goes away in the middle of the query
    with pytest.raises(CollectError, match="connection"):
        await run
    assert [r["value"] for r in await c.collect(W)] == [7.0]  # the next run: the second host
    assert b.accepted == 1

    await a.start()  # the first host is back: the pool's connections return to it
    accepted = a.accepted
    assert [r["value"] for r in await c.collect(W)] == [7.0]
    assert a.accepted == accepted + 1
    for p in (a, b):
        await p.stop()


def ch_source(resources: Resources, host: str, db: str, query: str) -> Collector:
    return COLLECTORS["clickhouse"].build(ChParams(host=host, database=db, query=query), resources)


CH_QUERY = "SELECT period_time, value FROM m WHERE period_time >= toDateTime('{{ period_start }}', 'UTC')"


async def test_clickhouse_source_passes_a_refused_and_a_black_holed_host(
    clickhouse: ClickHouseServer, ch_db: str, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chhosts, "CONNECT_TIMEOUT_S", 1.0)
    with black_hole() as hole:
        dead = dead_port()
        host = f"127.0.0.1:{dead},127.0.0.1:{hole},127.0.0.1:{clickhouse.http_port}"
        c = ch_source(resources, host, ch_db, CH_QUERY)
        took, rows = await timed(c)
        assert [r["value"] for r in rows] == [7.0]
        assert 0.9 < took < 3, took
        took, _ = await timed(c)  # the failed hosts are tried last now
        assert took < 0.5, took
        with pytest.raises(CollectError) as err:
            await ch_source(resources, f"127.0.0.1:{dead},127.0.0.1:{hole}", ch_db, CH_QUERY).collect(W)
    text = str(err.value)
    assert (
        f"clickhouse 127.0.0.1:{dead},127.0.0.1:{hole}/{ch_db}: cannot connect: no host could be reached"
        in text
    )
    assert f"127.0.0.1:{hole} no answer" in text and f"127.0.0.1:{dead} refused" in text


async def test_clickhouse_source_stopped_mid_query_goes_to_the_next_host_and_back(
    clickhouse: ClickHouseServer, ch_db: str, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failover, "RETRY_S", 0.0)
    a, b = await proxies(clickhouse.http_port)
    slow = CH_QUERY + " AND sleep(0.5) = 0"
    c = ch_source(resources, f"{a.address},{b.address}", ch_db, slow)
    assert [r["value"] for r in await c.collect(W)] == [7.0]
    assert (a.accepted, b.accepted) == (1, 0)

    async def sleeping() -> bool:
        sql = "SELECT count() FROM system.processes WHERE query LIKE '%sleep(0.5)%' AND query NOT LIKE '%processes%'"
        return int(await asyncio.to_thread(clickhouse.query, sql)) > 0

    run = asyncio.create_task(c.collect(W))
    await wait_until(sleeping, "the query to run through the first host")
    await a.stop()
    with pytest.raises(CollectError, match="cannot connect"):
        await run
    assert [r["value"] for r in await c.collect(W)] == [7.0]
    assert b.accepted == 1
    await a.start()
    accepted = a.accepted
    assert [r["value"] for r in await c.collect(W)] == [7.0]  # back to the first host
    assert a.accepted == accepted + 1
    for p in (a, b):
        await p.stop()


async def test_a_partitioned_first_host_is_left_after_one_failed_run(
    pg_db: str,
    clickhouse: ClickHouseServer,
    ch_db: str,
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A partition: the first host still takes TCP connections but answers nothing (a frozen
    proxy). The run on it times out; the next run goes to the second host, not to it again."""
    monkeypatch.setattr(chhosts, "CONNECT_TIMEOUT_S", 1.0)
    monkeypatch.setattr(ch_module, "KILL_TIMEOUT_S", 1.0)
    pa, pb = await proxies(5432)
    ca, cb = await proxies(clickhouse.http_port)
    url = f"postgresql://postgres@{pa.address},{pb.address}/{pg_db}?connect_timeout=1"
    pg = COLLECTORS["postgres"].build(
        NetworkParams(connection_string=url, query=PG_QUERY, timeout=SECOND), resources
    )
    ch = COLLECTORS["clickhouse"].build(
        ChParams(host=f"{ca.address},{cb.address}", database=ch_db, query=CH_QUERY, timeout=SECOND), resources
    )
    for c in (pg, ch):
        assert [r["value"] for r in await c.collect(W)] == [7.0]
    pa.frozen = ca.frozen = True
    for c in (pg, ch):
        with pytest.raises(CollectError, match="timed out after 1s"):
            await c.collect(W)
        took, rows = await timed(c)
        assert [r["value"] for r in rows] == [7.0]
        assert took < 2.5, took  # at most one connect timeout on the frozen host
    assert (pb.accepted, cb.accepted) == (1, 1)
    for p in (pa, pb, ca, cb):
        await p.stop()


async def test_a_postgres_sources_sslmode_is_applied(pg_db: str, resources: Resources) -> None:
    """`sslmode=verify-full` in the URL was ignored by the source (asyncpg's default `prefer`:
    plain text against this TLS-less server). Now asyncpg applies it, as libpq would: no
    unverified connection."""
    url = f"postgresql://postgres@127.0.0.1:{dead_port()},127.0.0.1:5432/{pg_db}?sslmode=verify-full"
    with pytest.raises(CollectError, match="cannot connect"):
        await pg_source(resources, url).collect(W)
    plain = pg_source(resources, url.replace("verify-full", "disable"))
    assert [r["value"] for r in await plain.collect(W)] == [7.0]
