"""One contract for every source: a slow source stops at its timeout with a `CollectError`,
a cancelled collect lets cancellation through and leaves the collector usable, no error
ever carries a secret, and a SQL result above `max_rows` is refused while it is read (a
billion-row query stops after max_rows + 1 rows). Each source runs against a real server (SQLite file, PostgreSQL,
MariaDB, ClickHouse, a local HTTP server; CSV reads a local file)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from detectkd.collectors.base import Collector, Window
from detectkd.collectors.registry import COLLECTORS, lookup
from detectkd.errors import CollectError
from detectkd.resources import Resources
from tests.support.clickhouse_server import ClickHouseServer
from tests.support.http import http_server

T0 = 1_795_000_200
W = Window(T0, T0 + 600, dt.timedelta(minutes=10), ZoneInfo("UTC"))
SECRET = "s3cr3t-Pa55-do-not-print"
SOURCES = ["sqlite", "postgres", "mysql", "sql", "clickhouse", "http", "csv"]
SLOW_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
    "SELECT sum(x) AS value FROM c"
)


@dataclass
class Source:
    """How to reach one source type: params for a fast query, a slow one, and bad credentials."""

    kind: str
    fast: dict[str, Any]
    slow: dict[str, Any] | None  # None: the source cannot be slow (a local file)
    secret: dict[str, Any] | None  # wrong credentials that carry SECRET (None: it has none)

    def build(self, params: dict[str, Any], resources: Resources, max_rows: int | None = None) -> Collector:
        entry = lookup(self.kind)
        assert entry is not None and entry is COLLECTORS[self.kind]
        return entry.build(entry.params.model_validate(params), resources, max_rows=max_rows)

    def rows(self, n: int) -> dict[str, Any]:
        """Params of a query that yields the rows 1..n as `value`, computed lazily."""
        query = {
            "sqlite": f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
            "SELECT x AS value FROM c",
            "postgres": f"SELECT generate_series(1, {n}) AS value",
            "sql": f"SELECT generate_series(1, {n}) AS value",
            "mysql": f"SELECT seq AS value FROM seq_1_to_{n}",  # MariaDB's sequence engine
            "clickhouse": f"SELECT number + 1 AS value FROM numbers({n})",
        }[self.kind]
        return {**self.fast, "query": query}


@pytest.fixture
async def source(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Source]:
    kind: str = request.param
    if kind == "sqlite":
        db = str(tmp_path / "src.db")
        sqlite3.connect(db).close()
        yield Source(
            kind, {"database": db, "query": "SELECT 1 AS value"}, {"database": db, "query": SLOW_SQLITE}, None
        )
    elif kind in ("postgres", "sql"):
        base = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"}
        if kind == "sql":
            url = "postgresql://postgres@127.0.0.1:5432/postgres"
            yield Source(
                kind,
                {"connection_string": url, "query": "SELECT 1 AS value"},
                {"connection_string": url, "query": "SELECT pg_sleep(30) AS value"},
                {"connection_string": f"postgresql://nobody:{SECRET}@127.0.0.1:5432/x", "query": "SELECT 1"},
            )
        else:
            yield Source(
                kind,
                {**base, "query": "SELECT 1 AS value"},
                {**base, "query": "SELECT pg_sleep(30) AS value"},
                {**base, "user": "nobody", "password": SECRET, "query": "SELECT 1"},
            )
    elif kind == "mysql":
        base = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "mysql"}
        yield Source(
            kind,
            {**base, "query": "SELECT 1 AS value"},
            {**base, "query": "SELECT SLEEP(30) AS value"},
            {**base, "user": "nobody", "password": SECRET, "query": "SELECT 1"},
        )
    elif kind == "clickhouse":
        server: ClickHouseServer = request.getfixturevalue("clickhouse")
        host, port = server.url.removeprefix("http://").rstrip("/").split(":")
        base = {"host": host, "port": int(port), "database": "default"}
        # sleep() is capped at 3 s per block: several blocks make a long query.
        slow = "SELECT sum(sleepEachRow(0.5)) AS value FROM numbers(60) SETTINGS max_block_size = 1"
        yield Source(
            kind,
            {**base, "query": "SELECT 1 AS value"},
            {**base, "query": slow},
            {**base, "user": "nobody", "password": SECRET, "query": "SELECT 1"},
        )
    elif kind == "http":
        release = asyncio.Event()

        async def handle(request: web.Request) -> web.Response:
            if request.path == "/slow":
                await release.wait()
            if request.query.get("token"):
                return web.Response(status=401, text=f"bad token {request.query['token']}")
            return web.json_response({"value": 1})

        async with http_server(handle, method="GET") as base_url:
            yield Source(
                kind,
                {"url": f"{base_url}/fast"},
                {"url": f"{base_url}/slow"},
                {"url": f"{base_url}/fast?token={SECRET}"},
            )
            release.set()
    else:
        path = tmp_path / "data.csv"
        path.write_text("period_time,value\n2026-11-20T10:10:00Z,1\n")
        yield Source(kind, {"path": str(path)}, None, None)


SLOW = [s for s in SOURCES if s != "csv"]  # a local file has nothing to wait for or cancel
WITH_CREDENTIALS = [s for s in SOURCES if s not in ("sqlite", "csv")]


@pytest.mark.parametrize("source", SLOW, indirect=True)
async def test_a_slow_source_stops_at_its_timeout(source: Source, resources: Resources) -> None:
    assert source.slow is not None
    c = source.build({**source.slow, "timeout": "0.5s"}, resources)
    try:
        async with asyncio.timeout(20):  # a deadline for the test, far beyond the source's own
            with pytest.raises(CollectError, match="time"):
                await c.collect(W)
    finally:
        await c.close()
    fast = source.build(source.fast, resources)
    try:
        assert await fast.collect(W)
    finally:
        await fast.close()


@pytest.mark.parametrize("source", SLOW, indirect=True)
async def test_cancellation_passes_through_and_the_collector_stays_usable(
    source: Source, resources: Resources
) -> None:
    assert source.slow is not None
    slow = source.build(source.slow, resources)
    task = asyncio.ensure_future(slow.collect(W))
    await asyncio.sleep(0.3)  # let the query reach the server
    task.cancel()
    async with asyncio.timeout(20):
        with pytest.raises(asyncio.CancelledError):
            await task
    await slow.close()
    fast = source.build(source.fast, resources)  # same pools and threads after the cancellation
    try:
        async with asyncio.timeout(20):
            assert await fast.collect(W)
    finally:
        await fast.close()


@pytest.mark.parametrize("source", WITH_CREDENTIALS, indirect=True)
async def test_errors_never_carry_secrets(source: Source, resources: Resources) -> None:
    assert source.secret is not None
    c = source.build(source.secret, resources)
    try:
        async with asyncio.timeout(30):
            with pytest.raises(CollectError) as err:
                await c.collect(W)
    finally:
        await c.close()
    text = str(err.value)
    assert SECRET not in text and text.strip(), text
    assert "\n" not in text  # one line: it is shown in the API, logs and alerts


SQL = [s for s in SOURCES if s not in ("http", "csv")]  # http answers are bounded in bytes


@pytest.mark.parametrize("source", SQL, indirect=True)
async def test_a_result_above_max_rows_is_refused_while_it_is_read(
    source: Source, resources: Resources
) -> None:
    """A billion rows: only a reader that stops after max_rows + 1 finishes (in well under a
    second here); exactly max_rows rows pass; the source stays usable."""
    huge = source.build({**source.rows(1_000_000_000), "timeout": "20s"}, resources, max_rows=1000)
    exact = source.build(source.rows(1000), resources, max_rows=1000)
    try:
        async with asyncio.timeout(30):
            with pytest.raises(CollectError, match=r"more than collector.max_rows \(1,000\) rows"):
                await huge.collect(W)
            rows = await exact.collect(W)
            assert [int(r["value"]) for r in rows] == list(range(1, 1001))
            with pytest.raises(CollectError, match=r"more than collector.max_rows \(1,000\) rows"):
                await huge.collect(W)  # again, on the same pool
    finally:
        await huge.close()
        await exact.close()
    fast = source.build(source.fast, resources)
    try:
        assert await fast.collect(W)
    finally:
        await fast.close()
