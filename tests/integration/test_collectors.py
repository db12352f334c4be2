"""SQLite and HTTP collectors against a real database file and a real HTTP server."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from detectkd.collectors import http, sqlite
from detectkd.collectors.base import Build, Window
from detectkd.collectors.registry import COLLECTORS, SqlParams
from detectkd.errors import CollectError
from detectkd.resources import Resources

UTC = ZoneInfo("UTC")
W = Window(
    1_795_000_000 - 1_795_000_000 % 600,
    1_795_000_000 - 1_795_000_000 % 600 + 1200,
    timedelta(minutes=10),
    UTC,
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "src.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (ts TEXT, v REAL)")
    conn.executemany(
        "INSERT INTO t VALUES (datetime(?, 'unixepoch'), ?)", [(W.start + i * 60, i) for i in range(20)]
    )
    conn.commit()
    conn.close()
    return path


async def test_sqlite_renders_period_variables_and_returns_rows(db: Path, resources: Resources) -> None:
    query = (
        "SELECT '{{ period_start }}' AS s, '{{ period_finish }}' AS f, '{{ interval }}' AS i, "
        "COUNT(*) AS value FROM t WHERE ts >= '{{ period_start }}' AND ts < '{{ period_finish }}'"
    )
    c = COLLECTORS["sqlite"].build(sqlite.Params(database=str(db), query=query), resources)
    (row,) = await c.collect(W)
    assert row["value"] == 20
    assert row["s"] == W.template_vars()["period_start"] and " " in row["s"] and "T" not in row["s"]
    assert row["i"] == "10m"


async def test_sql_type_routes_sqlite_urls(db: Path, resources: Resources) -> None:
    params = SqlParams(connection_string=f"sqlite:///{db}", query="SELECT 1 AS value")
    c = COLLECTORS["sql"].build(params, resources, "period_time", "value")
    assert await c.collect(W) == [{"value": 1}]


async def test_sqlite_errors_are_one_line_collect_errors(
    db: Path, tmp_path: Path, resources: Resources
) -> None:
    bad_sql = COLLECTORS["sqlite"].build(sqlite.Params(database=str(db), query="SELEC nonsense"), resources)
    with pytest.raises(CollectError, match='sqlite query failed: near "SELEC"'):
        await bad_sql.collect(W)
    missing = COLLECTORS["sqlite"].build(
        sqlite.Params(database=str(tmp_path / "nope.db"), query="SELECT 1"), resources
    )
    with pytest.raises(CollectError, match="cannot open sqlite database|sqlite query failed"):
        await missing.collect(W)


async def test_sqlite_slow_query_is_interrupted_at_the_timeout(db: Path, resources: Resources) -> None:
    slow = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
        "SELECT sum(x) AS value FROM c"
    )
    c = COLLECTORS["sqlite"].build(sqlite.Params(database=str(db), query=slow, timeout="0.3s"), resources)  # type: ignore[arg-type]
    with pytest.raises(CollectError, match="timed out after 0.3s"):
        await c.collect(W)


async def test_sqlite_query_cancelled_as_it_finishes_is_cancelled(db: Path) -> None:
    """The caller cancelled when the query had just finished (its result on the way to the
    loop): the call ends cancelled, not with the rows. Python 3.11's `wait_for` returned the
    rows and lost the cancellation; a history job went on for minutes after SIGTERM."""
    one = Resources(sqlite_threads=1)  # one thread: a job queued after the query ends after it
    try:
        c = COLLECTORS["sqlite"].build(sqlite.Params(database=str(db), query="SELECT 1 AS value"), one)
        call = asyncio.create_task(c.collect(W))
        await asyncio.sleep(0)  # the query is submitted to the pool
        one.sqlite_pool.submit(lambda: None).result()  # (blocks the loop) the query finished
        call.cancel()  # before the loop heard of it
        with pytest.raises(asyncio.CancelledError):
            await call
    finally:
        await one.close()


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": await request.text(),
            }
        )
        kind = request.match_info["kind"]
        if kind == "json":
            return web.json_response({"data": {"value": 42.5}})
        if kind == "series":
            return web.json_response({"result": [[W.start, 1], [W.start + 600, 2]]})
        if kind == "objects":
            return web.json_response([{"ts": W.start, "value": 5, "host": "a"}])
        if kind == "csv":
            return web.Response(text="period_time,value\n2026-01-01 00:00:00,3\n")
        if kind == "text":
            return web.Response(text=" 17\n")
        if kind == "bad":
            return web.Response(text="<html>oops</html>")
        return web.Response(status=500, text="fail")

    app = web.Application()
    app.router.add_route("*", "/{kind}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


def hc(resources: Resources, **params: Any) -> http.HttpCollector:
    return http.build(Build(http.Params.model_validate(params), resources))


async def test_http_json_with_value_path_and_templated_params(
    api: tuple[str, list[dict[str, Any]]], resources: Resources
) -> None:
    base, seen = api
    c = hc(
        resources,
        url=base + "/json",
        params={"from": "{{ period_start }}"},
        headers={"X-Token": "t"},
        value_path="data.value",
    )
    assert await c.collect(W) == [{"value": 42.5}]
    assert seen[0]["query"]["from"] == W.template_vars()["period_start"]
    assert seen[0]["headers"]["X-Token"] == "t"


async def test_http_list_responses_give_many_rows(
    api: tuple[str, list[dict[str, Any]]], resources: Resources
) -> None:
    base, _ = api
    pairs = await hc(resources, url=base + "/series", value_path="result").collect(W)
    assert pairs == [{"period_time": W.start, "value": 1}, {"period_time": W.start + 600, "value": 2}]
    objects = await hc(resources, url=base + "/objects").collect(W)
    assert objects == [{"ts": W.start, "value": 5, "host": "a"}]


async def test_http_csv_text_and_post(api: tuple[str, list[dict[str, Any]]], resources: Resources) -> None:
    base, seen = api
    assert await hc(resources, url=base + "/csv", response_format="csv").collect(W) == [
        {"period_time": "2026-01-01 00:00:00", "value": "3"}
    ]
    assert await hc(resources, url=base + "/text", response_format="text").collect(W) == [{"value": "17"}]
    await hc(
        resources,
        url=base + "/text",
        method="POST",
        response_format="text",
        json={"since": "{{ period_start }}"},
    ).collect(W)
    assert W.template_vars()["period_start"] in seen[-1]["body"]


async def test_http_failures_are_clear_and_retried(
    api: tuple[str, list[dict[str, Any]]], resources: Resources
) -> None:
    base, seen = api
    with pytest.raises(CollectError, match="HTTP 500 from 127.0.0.1"):
        await hc(resources, url=base + "/fail", retry_count=2, retry_delay=0).collect(W)
    assert len(seen) == 3
    with pytest.raises(CollectError, match="not JSON"):
        await hc(resources, url=base + "/bad").collect(W)
    with pytest.raises(CollectError, match="no key 'nope'"):
        await hc(resources, url=base + "/json", value_path="data.nope").collect(W)
    with pytest.raises(CollectError, match="failed: ClientConnectorError"):
        await hc(resources, url="http://user:secret@127.0.0.1:9/x").collect(W)


async def test_http_errors_never_show_credentials(resources: Resources) -> None:
    with pytest.raises(CollectError) as info:
        await hc(resources, url="http://user:secret@127.0.0.1:9/x?token=abc").collect(W)
    assert "secret" not in str(info.value) and "abc" not in str(info.value)


async def test_csv_rows_by_window_rereads_a_changed_file_and_names_bad_lines(tmp_path: Path) -> None:
    import os

    from detectkd.collectors import csvfile
    from detectkd.collectors.points import PointSpec, rows_to_points
    from detectkd.specs.loader import load_metrics
    from detectkd.timegrid import Grid
    from tests.support.files import write

    path = tmp_path / "export.csv"
    lines = ["timestamp,region,value"]
    lines += [f"2026-01-01 00:{m:02d}:00,{r},{m}" for m in range(0, 60, 10) for r in ("eu", "us")]
    path.write_text("\n".join(lines) + "\n")
    c = COLLECTORS["csv"].build(csvfile.Params(path=str(path)), Resources(), "timestamp")
    berlin = ZoneInfo("Europe/Berlin")
    start = 1767222000  # 2026-01-01 00:00 in Berlin (naive CSV times are the metric's timezone)
    w = Window(start + 600, start + 1800, timedelta(minutes=10), berlin)
    rows = await c.collect(w)
    # The times come parsed (epoch seconds, naive text read in the metric's zone), the values
    # as numbers: typed once for every window that reads them (`CsvCollector._typed`).
    assert [(r["timestamp"] - start, r["region"], r["value"]) for r in rows] == [
        (600, "eu", 10.0),
        (600, "us", 10.0),
        (1200, "eu", 20.0),
        (1200, "us", 20.0),
    ]
    write(
        tmp_path / "m" / "exported.yaml",
        f"""\
name: exported
schedule: {{interval: 10m, timezone: Europe/Berlin}}
collector:
  type: csv
  params: {{path: {path}}}
  series_columns: [region]
detector: {{type: mad}}
""",
    )
    spec = load_metrics([tmp_path / "m"], None, env={}).metrics["exported"]
    assert spec.collector.multi_period is True and spec.collector.points.timestamp_column == "timestamp"
    conv = rows_to_points(rows, spec.collector.points, w, Grid(timedelta(minutes=10), berlin))
    assert sorted((p.series, p.period - start, p.value) for p in conv.points)[:2] == [
        ("region=eu", 600, 10.0),
        ("region=eu", 1200, 20.0),
    ]

    path.write_text("timestamp,region,value\n1767222600,eu,99\nnot-a-time,eu,1\n")
    os.utime(path, (1, 1))  # a different mtime, whatever the clock's resolution
    with pytest.raises(
        CollectError,
        match=r"export\.csv:3: timestamp column .timestamp. holds text, not a time \(10 characters\)",
    ):
        await c.collect(w)
    path.write_text("timestamp,region,value\n1767222600,eu,99\n")
    os.utime(path, (2, 2))
    assert [(r["timestamp"], r["value"]) for r in await c.collect(w)] == [
        (1767222600, 99.0)
    ]  # epoch text too
    path.write_text("timestamp,region,value\n1767222600,eu,n/a\n")  # no number: text, its error later
    os.utime(path, (3, 3))
    assert [r["value"] for r in await c.collect(w)] == ["n/a"]
    # A context column that is also the timestamp column holds the parsed epoch seconds (the
    # file's text before 2026-12-07): what a feature read from it sees.
    path.write_text("timestamp,region,value\n2026-01-01 00:10:00,eu,5\n")
    os.utime(path, (4, 4))
    spec_ctx = PointSpec("timestamp", "value", ("timestamp",), ())
    got = rows_to_points(await c.collect(w), spec_ctx, w, Grid(timedelta(minutes=10), berlin))
    assert [p.context for p in got.points] == [{"timestamp": float(start + 600)}]
    path.unlink()
    with pytest.raises(CollectError, match="No such file"):
        await c.collect(w)
