"""The ClickHouse collector against a real (Debian 18.16) server over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from zoneinfo import ZoneInfo

import pytest

from detectkd.collectors.base import Window
from detectkd.collectors.clickhouse import Params, ch_endpoint, http_port
from detectkd.collectors.points import PointSpec, rows_to_points
from detectkd.collectors.registry import COLLECTORS
from detectkd.errors import CollectError
from detectkd.resources import Resources
from detectkd.timegrid import Grid
from tests.support.clickhouse_server import ClickHouseServer

UTC = ZoneInfo("UTC")
T0 = 1_795_000_200
W = Window(T0, T0 + 1200, dt.timedelta(minutes=10), UTC)


@pytest.fixture
def db(clickhouse: ClickHouseServer) -> str:
    name = f"dtk_test_{uuid.uuid4().hex[:10]}"
    clickhouse.query(f"CREATE DATABASE {name}")
    clickhouse.query(
        f"CREATE TABLE {name}.sessions (timestamp DateTime('UTC'), country String, user_id UInt64, "
        "revenue Nullable(Decimal(18, 2))) ENGINE = MergeTree() ORDER BY timestamp"
    )
    rows = ",".join(
        f"({T0 + i * 60}, '{'DE' if i % 2 else 'FR'}', {2**63 + i}, {('NULL' if i == 3 else f'{i}.25')})"
        for i in range(20)
    )
    clickhouse.query(f"INSERT INTO {name}.sessions VALUES {rows}")
    return name


def params(server: ClickHouseServer, database: str, query: str, **extra: object) -> Params:
    return Params(host="127.0.0.1", port=server.http_port, database=database, query=query, **extra)  # type: ignore[arg-type]


async def test_grouped_query_many_periods_and_series(
    clickhouse: ClickHouseServer, db: str, resources: Resources
) -> None:
    query = (
        "SELECT toDateTime(intDiv(toUInt32(timestamp), 600) * 600, 'UTC') AS period_time, country, count() AS value "
        "FROM sessions WHERE timestamp >= toDateTime('{{ period_start }}', 'UTC') "
        "AND timestamp < toDateTime('{{ period_finish }}', 'UTC') GROUP BY period_time, country ORDER BY period_time, country"
    )
    c = COLLECTORS["clickhouse"].build(params(clickhouse, db, query), resources, "period_time", "value")
    conv = rows_to_points(
        await c.collect(W), PointSpec("period_time", "value", (), ("country",)), W, Grid(W.interval)
    )
    assert [(p.series, p.period - T0, p.value) for p in conv.points] == [
        ("country=DE", 0, 5.0),
        ("country=FR", 0, 5.0),
        ("country=DE", 600, 5.0),
        ("country=FR", 600, 5.0),
    ]


async def test_types_decimal_uint64_nullable_nan_date(
    clickhouse: ClickHouseServer, db: str, resources: Resources
) -> None:
    query = (
        "SELECT toDate(timestamp) AS day, timestamp AS period_time, user_id AS big, revenue AS value, "
        "nan AS f FROM sessions ORDER BY timestamp LIMIT 5"
    )
    c = COLLECTORS["clickhouse"].build(params(clickhouse, db, query), resources, "period_time", "value")
    rows = await c.collect(W)
    assert rows[0]["big"] == 2**63 and rows[1]["value"] is not None
    spec = PointSpec("period_time", "value", ("big", "day"), ())
    conv = rows_to_points(rows[:4], spec, W, Grid(dt.timedelta(minutes=1)))
    assert [p.value for p in conv.points] == [0.25, 1.25, 2.25, None]  # Decimal, and NULL stays missing
    assert conv.points[0].context == {"big": 2**63, "day": "2026-11-18"}
    nan = rows_to_points(rows[:1], PointSpec("period_time", "f", (), ()), W, Grid(dt.timedelta(minutes=1)))
    assert nan.points[0].value is None


async def test_timeout_kills_the_query_on_the_server(
    clickhouse: ClickHouseServer, resources: Resources
) -> None:
    tag = uuid.uuid4().hex[:8]
    query = f"SELECT count() AS value, '{tag}' AS tag FROM numbers(100000000000) WHERE sipHash64(number) = 1"
    c = COLLECTORS["clickhouse"].build(
        params(clickhouse, "default", query, timeout="1s"), resources, "p", "v"
    )
    started = time.monotonic()
    with pytest.raises(CollectError, match="timed out after 1s|TIMEOUT_EXCEEDED|Timeout exceeded"):
        await c.collect(W)
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 15
    while True:
        running = clickhouse.query(
            f"SELECT count() FROM system.processes WHERE query LIKE '%{tag}%' AND query NOT LIKE '%system.processes%'"
        )
        if running.strip() == "0" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert running.strip() == "0"


async def test_errors_are_one_line_and_name_the_server(
    clickhouse: ClickHouseServer, db: str, resources: Resources
) -> None:
    bad = COLLECTORS["clickhouse"].build(params(clickhouse, db, "SELEC 1"), resources, "p", "v")
    with pytest.raises(
        CollectError, match=rf"clickhouse 127.0.0.1:{clickhouse.http_port}/{db}: .*Syntax error"
    ) as info:
        await bad.collect(W)
    assert "\n" not in str(info.value) and "Stack trace" not in str(info.value)
    auth = COLLECTORS["clickhouse"].build(
        Params(
            host="127.0.0.1", port=clickhouse.http_port, user="nobody", password="s3cr3t-pw", query="SELECT 1"
        ),
        resources,
        "p",
        "v",
    )
    with pytest.raises(CollectError) as info:
        await auth.collect(W)
    assert "s3cr3t-pw" not in str(info.value)
    down = COLLECTORS["clickhouse"].build(
        Params(host="127.0.0.1", port=1, query="SELECT 1"), resources, "p", "v"
    )
    with pytest.raises(CollectError, match="cannot connect"):
        await down.collect(W)


def test_detectk_native_ports_map_to_http() -> None:
    port, note = http_port(Params(host="ch", port=9000, query="SELECT 1"))
    assert port == 8123 and note and "9000" in note
    assert http_port(Params(host="ch", port=9440, secure=True, query="SELECT 1"))[0] == 8443
    assert http_port(Params(host="ch", port=9000, http_port=18123, query="SELECT 1")) == (18123, None)
    assert (
        ch_endpoint(Params(connection_string="clickhouse://u:p@ch:9000/detectk", query="x")).url
        == "http://ch:8123/"
    )
    assert (
        ch_endpoint(Params(connection_string="clickhouse://u:p@ch:9000/detectk", query="x")).database
        == "detectk"
    )
