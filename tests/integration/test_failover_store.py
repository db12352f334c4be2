"""Failover of the PostgreSQL and ClickHouse state stores over host lists (issue 26): a first host
where nothing listens, and a server stopped between two runs' commits (a TCP proxy in front of
the real one) — nothing committed is lost, and every run lands on a host that answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from detectkd.collectors import failover
from detectkd.collectors.points import Point
from detectkd.config.connection import StoreParams
from detectkd.errors import StorageError
from detectkd.storage.base import RunRecord, Store
from detectkd.storage.clickhouse import ClickhouseStore
from detectkd.storage.clickhouse import build as build_ch
from detectkd.storage.postgres import PostgresStore
from tests.support.clickhouse_server import ClickHouseServer
from tests.support.databases import pg_database
from tests.support.tcp_proxy import TcpProxy, dead_port

T0 = 1_795_000_200


@pytest.fixture
async def pg_db() -> AsyncIterator[str]:
    async with pg_database("SELECT 1", "dtk_fo") as name:
        yield name


@pytest.fixture
def ch_db(clickhouse: ClickHouseServer) -> Iterator[str]:
    name = f"dtk_fo_{uuid.uuid4().hex[:10]}"
    yield name
    clickhouse.query(f"DROP DATABASE IF EXISTS {name}")


def run(period: int) -> RunRecord:
    return RunRecord("m", points=[Point("", T0 + period * 600, float(period))], watermark=T0 + period * 600)


async def periods(store: Store) -> list[float | None]:
    got = await store.read_points("m", "", 0, T0 + 10**6)
    return [p.value for p in got.get("", [])]


async def commit_through_a_stop(store: Store, first: TcpProxy) -> list[float | None]:
    """Commit run 0 (through the first host), stop it, commit runs 1 and 2: read all three back.

    A commit on a pooled connection the stop cut may fail once; the daemon's next run
    commits it again (from the watermark), as here. Never more than once."""
    await store.open()
    failures = 0
    try:
        await store.commit(run(0))
        await first.stop()
        for period in (1, 2):
            try:
                await store.commit(run(period))
            except StorageError:
                failures += 1
                await store.commit(run(period))
        assert failures <= 1
        assert await store.watermark("m") == T0 + 1200
        return await periods(store)
    finally:
        await store.close()


async def test_postgres_store_skips_a_dead_first_host(pg_db: str) -> None:
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{dead_port()},127.0.0.1:5432/{pg_db}")
    await store.open()
    try:
        await store.commit(run(0))
        assert await periods(store) == [0.0]
        assert store.path == f"postgres 127.0.0.1:{store._ep.hosts[0][1]},127.0.0.1:5432/{pg_db}"
    finally:
        await store.close()


async def test_postgres_store_server_stopped_between_commits(
    pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failover, "RETRY_S", 0.0)
    a, b = [await TcpProxy("127.0.0.1", 5432).start() for _ in range(2)]
    dsn = f"postgresql://postgres@{a.address},{b.address}/{pg_db}?target_session_attrs=read-write"
    assert await commit_through_a_stop(PostgresStore(dsn), a) == [0.0, 1.0, 2.0]
    assert b.accepted >= 1
    await b.stop()


async def test_postgres_store_without_a_matching_host_says_so(pg_db: str) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{dead_port()},127.0.0.1:5432/{pg_db}?target_session_attrs=standby"
    with pytest.raises(
        StorageError, match=r"no host could be used \(.*ConnectionRefusedError.*; 127.0.0.1:5432 not standby"
    ):
        await PostgresStore(dsn).open()


async def test_prefer_standby_takes_the_primary_when_no_host_is_a_standby(pg_db: str) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{dead_port()},127.0.0.1:5432/{pg_db}?target_session_attrs=prefer-standby"
    store = PostgresStore(dsn)
    await store.open()
    try:
        assert store._pool is not None and store._pool.on == 1
    finally:
        await store.close()


async def test_clickhouse_store_skips_a_dead_first_host(clickhouse: ClickHouseServer, ch_db: str) -> None:
    params = StoreParams(
        host=f"127.0.0.1:{dead_port()},127.0.0.1", http_port=clickhouse.http_port, database=ch_db
    )
    store = build_ch(params)
    await store.open()
    try:
        await store.commit(run(0))
        assert await periods(store) == [0.0]
    finally:
        await store.close()


async def test_clickhouse_store_server_stopped_between_commits(
    clickhouse: ClickHouseServer, ch_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failover, "RETRY_S", 0.0)
    a, b = [await TcpProxy("127.0.0.1", clickhouse.http_port).start() for _ in range(2)]
    store = ClickhouseStore((f"http://{a.address}/", f"http://{b.address}/"), ch_db)
    assert store.path == f"http://{a.address},{b.address}/{ch_db}"
    assert await commit_through_a_stop(store, a) == [0.0, 1.0, 2.0]
    assert b.accepted >= 1
    await b.stop()


async def test_postgres_store_reads_libpq_keywords_and_hands_the_rest_to_asyncpg(pg_db: str) -> None:
    """libpq's keyword/value form with a host list; sslmode and server settings reach asyncpg."""
    dsn = (
        f"host=127.0.0.1:{dead_port()},127.0.0.1 port=5432 dbname={pg_db} user=postgres "
        "sslmode=disable application_name=dtk-failover target_session_attrs=read-write"
    )
    store = PostgresStore(dsn)
    await store.open()
    try:
        await store.commit(run(0))
        assert await periods(store) == [0.0]
        assert store._pool is not None
        async with store._pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "dtk-failover"
    finally:
        await store.close()
