"""PostgreSQL (asyncpg) and MariaDB (aiomysql) sources over real connections."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import aiomysql
import asyncpg
import pytest

from detectkd.collectors.base import Window
from detectkd.collectors.params import NetworkParams
from detectkd.collectors.points import PointSpec, rows_to_points
from detectkd.collectors.registry import COLLECTORS, SqlParams
from detectkd.errors import CollectError
from detectkd.resources import Resources
from detectkd.timegrid import Grid

UTC = ZoneInfo("UTC")
T0 = 1_795_000_200
W = Window(T0, T0 + 1200, dt.timedelta(minutes=10), UTC)
SECRET = "hunter2-very-secret"


@pytest.fixture
async def pg_db() -> AsyncIterator[str]:
    name = f"dtk_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=name)
    await conn.execute(
        """
        CREATE TABLE m (period_time timestamptz, naive timestamp, day date, country text,
                        num numeric, big bigint, f double precision, txt text);
        """
    )
    rows = [
        (dt.datetime.fromtimestamp(T0, dt.UTC), "DE", Decimal("12.50"), 2**62, 1.5, "7"),
        (dt.datetime.fromtimestamp(T0 + 600, dt.UTC), "DE", None, 3, float("nan"), "oops"),
        (dt.datetime.fromtimestamp(T0 + 600, dt.UTC), "FR", Decimal("3"), 4, float("inf"), "8"),
    ]
    for ts, country, num, big, f, txt in rows:
        await conn.execute(
            "INSERT INTO m VALUES ($1::timestamptz, ($1::timestamptz AT TIME ZONE 'UTC'), "
            "($1::timestamptz AT TIME ZONE 'UTC')::date, $2, $3, $4, $5, $6)",
            ts,
            country,
            num,
            big,
            f,
            txt,
        )
    await conn.close()
    yield name
    await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    await admin.close()


def pg(db: str, query: str, **extra: Any) -> NetworkParams:
    return NetworkParams(host="127.0.0.1", port=5432, user="postgres", database=db, query=query, **extra)


async def test_postgres_types_periods_and_series(pg_db: str, resources: Resources) -> None:
    query = (
        "SELECT period_time, country, num AS value FROM m "
        "WHERE period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'"
    )
    c = COLLECTORS["postgres"].build(pg(pg_db, query), resources, "period_time", "value")
    rows = await c.collect(W)
    conv = rows_to_points(rows, PointSpec("period_time", "value", (), ("country",)), W, Grid(W.interval))
    got = [(p.series, p.period - T0, p.value) for p in conv.points]
    assert got == [("country=DE", 0, 12.5), ("country=DE", 600, None), ("country=FR", 600, 3.0)]


@pytest.mark.parametrize(
    ("column", "expected"),
    [("big", [float(2**62), 3.0, 4.0]), ("f", [1.5, None, None])],
)
async def test_postgres_bigint_nan_and_inf(
    pg_db: str, resources: Resources, column: str, expected: list[Any]
) -> None:
    c = COLLECTORS["postgres"].build(
        pg(pg_db, f"SELECT naive AS period_time, {column} AS value, country FROM m"),
        resources,
        "period_time",
        "value",
    )
    conv = rows_to_points(
        await c.collect(W), PointSpec("period_time", "value", (), ("country",)), W, Grid(W.interval)
    )
    assert sorted(conv.points, key=lambda p: (p.period, p.series)) == conv.points
    assert [p.value for p in conv.points] == expected


async def test_postgres_text_in_value_column_is_a_clear_error(pg_db: str, resources: Resources) -> None:
    c = COLLECTORS["postgres"].build(
        pg(pg_db, "SELECT day AS period_time, txt AS value FROM m"), resources, "p", "v"
    )
    with pytest.raises(CollectError, match="holds text, not a number \\(4 characters\\)"):
        rows_to_points(await c.collect(W), PointSpec("period_time", "value", (), ()), W, Grid(W.interval))


async def test_postgres_timeout_cancels_the_query_on_the_server(pg_db: str, resources: Resources) -> None:
    tag = uuid.uuid4().hex[:8]
    c = COLLECTORS["postgres"].build(
        pg(pg_db, f"SELECT pg_sleep(30) AS value, '{tag}' AS tag", timeout="0.5s"), resources, "p", "v"
    )
    started = time.monotonic()
    with pytest.raises(CollectError, match="timed out after 0.5s"):
        await c.collect(W)
    assert time.monotonic() - started < 5
    conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    try:
        deadline = time.monotonic() + 10
        while True:
            running = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1", f"%{tag}%"
            )
            if running == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert running == 0
    finally:
        await conn.close()


async def test_postgres_failures_name_the_source_never_the_password(pg_db: str, resources: Resources) -> None:
    syntax = COLLECTORS["postgres"].build(pg(pg_db, "SELEC 1"), resources, "p", "v")
    with pytest.raises(CollectError, match=r"postgres 127.0.0.1:5432/dtk_test_\w+: PostgresSyntaxError"):
        await syntax.collect(W)
    url = f"postgresql://nobody_{uuid.uuid4().hex[:6]}:{SECRET}@127.0.0.1:5432/{pg_db}"
    auth = COLLECTORS["sql"].build(SqlParams(connection_string=url, query="SELECT 1"), resources, "p", "v")
    with pytest.raises(CollectError) as info:
        await auth.collect(W)
    assert SECRET not in str(info.value) and "127.0.0.1:5432" in str(info.value)
    refused = COLLECTORS["postgres"].build(
        NetworkParams(host="127.0.0.1", port=1, user="postgres", password=SECRET, query="SELECT 1"),
        resources,
        "p",
        "v",
    )
    with pytest.raises(CollectError, match="cannot connect") as info:
        await refused.collect(W)
    assert SECRET not in str(info.value)


async def test_identical_settings_share_one_pool(pg_db: str, resources: Resources) -> None:
    a = COLLECTORS["postgres"].build(pg(pg_db, "SELECT 1 AS value"), resources, "p", "v")
    b = COLLECTORS["sql"].build(
        SqlParams(
            connection_string=f"postgresql://postgres@127.0.0.1:5432/{pg_db}", query="SELECT 2 AS value"
        ),
        resources,
        "p",
        "v",
    )
    assert await a.collect(W) == [{"value": 1}]
    assert await b.collect(W) == [{"value": 2}]
    assert len(resources._pools) == 1


@pytest.fixture
async def my_db() -> AsyncIterator[str]:
    name = f"dtk_test_{uuid.uuid4().hex[:10]}"
    conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    async with conn.cursor() as cur:
        await cur.execute(f"CREATE DATABASE {name}")
        await cur.execute(
            f"CREATE TABLE {name}.orders (created_at DATETIME, status VARCHAR(20), amount DECIMAL(10,2), n BIGINT UNSIGNED)"
        )
        await cur.executemany(
            f"INSERT INTO {name}.orders VALUES (%s, %s, %s, %s)",
            [
                (
                    dt.datetime.fromtimestamp(T0 + 60, dt.UTC).replace(tzinfo=None),
                    "paid",
                    Decimal("10.5"),
                    2**63,
                ),
                (dt.datetime.fromtimestamp(T0 + 120, dt.UTC).replace(tzinfo=None), "paid", Decimal("4.5"), 1),
                (dt.datetime.fromtimestamp(T0 + 700, dt.UTC).replace(tzinfo=None), "paid", None, 1),
            ],
        )
    yield name
    async with conn.cursor() as cur:
        await cur.execute(f"DROP DATABASE {name}")
    conn.close()


def my(db: str, query: str, **extra: Any) -> NetworkParams:
    return NetworkParams(host="127.0.0.1", port=3306, user="root", database=db, query=query, **extra)


async def test_mysql_detectk_example_query_shape(my_db: str, resources: Resources) -> None:
    # The shape of DetectK's sql__mysql_orders.yaml, over many periods at once.
    query = (
        "SELECT FROM_UNIXTIME(FLOOR(UNIX_TIMESTAMP(created_at) / 600) * 600) AS period_time, "
        "SUM(amount) AS value, COUNT(*) AS cnt FROM orders "
        "WHERE created_at >= '{{ period_start }}' AND created_at < '{{ period_finish }}' GROUP BY 1 ORDER BY 1"
    )
    c = COLLECTORS["sql"].build(
        SqlParams(connection_string=f"mysql://root@127.0.0.1:3306/{my_db}", query=query), resources, "p", "v"
    )
    async with asyncio.timeout(10):
        rows = await c.collect(W)
    conv = rows_to_points(rows, PointSpec("period_time", "value", ("cnt",), ()), W, Grid(W.interval))
    assert [(p.period - T0, p.value, p.context) for p in conv.points] == [
        (0, 15.0, {"cnt": 2}),
        (600, None, {"cnt": 1}),
    ]


async def test_mysql_unsigned_bigint_value(my_db: str, resources: Resources) -> None:
    c = COLLECTORS["mysql"].build(my(my_db, "SELECT MAX(n) AS value FROM orders"), resources, "p", "v")
    conv = rows_to_points(await c.collect(W), PointSpec("period_time", "value", (), ()), W, Grid(W.interval))
    assert conv.points[0].value == float(2**63)


async def test_mysql_timeout_kills_the_query_on_the_server(my_db: str, resources: Resources) -> None:
    tag = uuid.uuid4().hex[:8]
    c = COLLECTORS["mysql"].build(
        my(my_db, f"SELECT SLEEP(30) AS value, '{tag}' AS tag", timeout="0.5s"), resources, "p", "v"
    )
    with pytest.raises(CollectError, match="timed out after 0.5s"):
        await c.collect(W)
    conn = await aiomysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            async with conn.cursor() as cur:
                await cur.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND INFO NOT LIKE %s",
                    (f"%{tag}%", "%PROCESSLIST%"),
                )
                (running,) = await cur.fetchone()
            if running == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert running == 0
    finally:
        conn.close()
    assert await COLLECTORS["mysql"].build(my(my_db, "SELECT 1 AS value"), resources, "p", "v").collect(
        W
    ) == [{"value": 1}]


async def test_mysql_failures_are_clear_and_secret_free(my_db: str, resources: Resources) -> None:
    with pytest.raises(CollectError, match=r"mysql 127.0.0.1:3306/dtk_test_\w+: .*1064"):
        await COLLECTORS["mysql"].build(my(my_db, "SELEC 1"), resources, "p", "v").collect(W)
    auth = COLLECTORS["mysql"].build(
        NetworkParams(
            host="127.0.0.1", port=3306, user="nobody_x", password=SECRET, database=my_db, query="SELECT 1"
        ),
        resources,
        "p",
        "v",
    )
    with pytest.raises(CollectError) as info:
        await auth.collect(W)
    assert SECRET not in str(info.value) and "1045" in str(info.value)
