"""The `prometheus` collector against a real Prometheus (a private server on a free port whose
TSDB is backfilled with known samples by promtool), and the collector contract (timeout,
cancellation, auth, no secret in an error) against a local HTTP server."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from detectkd.collectors.base import Window
from detectkd.collectors.points import Point
from detectkd.collectors.prometheus import Params, PrometheusCollector
from detectkd.collectors.registry import lookup
from detectkd.errors import CollectError
from detectkd.resources import Resources
from detectkd.runtime.collect import collect, timezone_probe
from detectkd.specs.loader import load_metrics
from detectkd.timegrid import Grid
from tests.support.files import write
from tests.support.http import http_server
from tests.support.prometheus_server import PrometheusServer, installed, remove, start_server

pytestmark = pytest.mark.skipif(not installed(), reason="Debian's prometheus package is not installed")

TEN_MIN = dt.timedelta(minutes=10)
UTC = ZoneInfo("UTC")
SECRET = "s3cr3t-Pa55-do-not-print"
# Recent enough for the server's retention, on the hour so that periods are easy to name.
BASE = int(time.time() - 4 * 3600) // 3600 * 3600


def samples() -> str:
    """Minute samples for three hours. eu: 1000 + minute. us: 2000 + minute, with no samples
    in minutes 60..89. ap: 3000 + minute, and none after minute 100 (its target went away)."""
    lines = ["# TYPE orders gauge"]
    for m in range(181):
        t = BASE + 60 * m
        lines.append(f'orders{{region="eu",job="shop"}} {1000 + m} {t}')
        if not 60 <= m < 90:
            lines.append(f'orders{{region="us",job="shop"}} {2000 + m} {t}')
        if m <= 100:
            lines.append(f'orders{{region="ap",job="shop"}} {3000 + m} {t}')
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prom() -> Iterator[PrometheusServer]:
    server = start_server(samples())
    yield server
    remove(server)


def collector(resources: Resources, **params: Any) -> PrometheusCollector:
    entry = lookup("prometheus")
    assert entry is not None
    built = entry.build(entry.params.model_validate(params), resources)
    assert isinstance(built, PrometheusCollector)
    return built


def window(first_minute: int, last_minute: int) -> Window:
    return Window(BASE + 60 * first_minute, BASE + 60 * last_minute, TEN_MIN, UTC)


async def points_of(
    tmp_path: Path, prom: PrometheusServer, query: str, start: int, finish: int
) -> list[Point]:
    """Through the whole path a run takes: the metric file, the resolved spec, `collect`."""
    path = write(
        tmp_path / "m.yaml",
        f"name: orders\ncollector:\n  type: prometheus\n  params:\n    url: {prom.url}\n"
        f"    query: '{query}'\nschedule: {{interval: 10m}}\ndetector: {{type: mad}}\n",
    )
    loaded = load_metrics([path])
    assert not loaded.errors, loaded.errors
    spec = loaded.metrics["orders"]
    entry = lookup(spec.collector.type)
    assert entry is not None
    resources = Resources()
    try:
        c = entry.build(spec.collector.params, resources)
        got = await collect(c, spec, Grid(TEN_MIN, UTC), start, finish)
    finally:
        await resources.close()
    assert not got.warnings
    return got.points


async def test_every_series_is_a_series_keyed_by_its_labels(prom: PrometheusServer, tmp_path: Path) -> None:
    got = await points_of(tmp_path, prom, "orders", BASE, BASE + 3 * 3600)
    by = {(p.series, p.period): p.value for p in got}
    assert {p.series for p in got} == {"job=shop,region=ap", "job=shop,region=eu", "job=shop,region=us"}
    # Period [t, t + 10m) gets the value at its end: the sample of minute (t - BASE)/60 + 10.
    assert by["job=shop,region=eu", BASE] == 1010
    assert by["job=shop,region=eu", BASE + 3000] == 1060
    # The last period ends at minute 180: evaluated at BASE + 3h, inside the data.
    assert by["job=shop,region=eu", BASE + 3 * 3600 - 600] == 1180


async def test_a_gap_is_missing_within_the_lookback_delta_rules(
    prom: PrometheusServer, tmp_path: Path
) -> None:
    got = await points_of(tmp_path, prom, "orders", BASE, BASE + 3 * 3600)
    us = {p.period: p.value for p in got if p.series == "job=shop,region=us"}
    # Ends at minute 60: the sample of minute 59 is within 5 minutes, so it is the value.
    assert us[BASE + 3000] == 2059
    # Ends at minutes 70 and 80: no sample within 5 minutes, no point (missing, not 0).
    assert BASE + 3600 not in us and BASE + 4200 not in us
    assert us[BASE + 4800] == 2090
    # ap stopped at minute 100: the end at 100 has it, none later (a stale series stops).
    ap = {p.period: p.value for p in got if p.series == "job=shop,region=ap"}
    assert ap[BASE + 5400] == 3100
    assert max(ap) == BASE + 5400


async def test_nan_results_are_missing_values_not_data(prom: PrometheusServer, tmp_path: Path) -> None:
    got = await points_of(
        tmp_path, prom, "sum by (region) ((orders - orders) / (orders - orders))", BASE, BASE + 3600
    )
    assert {p.series for p in got} == {"region=ap", "region=eu", "region=us"}
    assert len(got) == 18 and all(p.value is None for p in got)


async def test_an_aggregate_without_labels_is_the_single_series(
    prom: PrometheusServer, tmp_path: Path
) -> None:
    got = await points_of(tmp_path, prom, "sum(orders)", BASE, BASE + 1200)
    assert [(p.series, p.period, p.value) for p in got] == [
        ("", BASE, 1010 + 2010 + 3010),
        ("", BASE + 600, 1020 + 2020 + 3020),
    ]


async def test_series_columns_key_on_the_named_labels(prom: PrometheusServer, resources: Resources) -> None:
    from detectkd.collectors.points import PointSpec, rows_to_points

    rows = await collector(resources, url=prom.url, query="orders").collect(window(0, 20))
    spec = PointSpec("period_time", "value", (), ("region",))
    conv = rows_to_points(rows, spec, window(0, 20), Grid(TEN_MIN, UTC))
    assert {p.series for p in conv.points} == {"region=ap", "region=eu", "region=us"}


async def test_a_gap_in_a_non_utc_metric_is_not_blamed_on_the_timezone(
    prom: PrometheusServer, tmp_path: Path
) -> None:
    """The SQL probe asks for the same instants written in UTC; Prometheus gets epoch
    seconds, so data an hour earlier says nothing about timezones."""
    path = write(
        tmp_path / "m.yaml",
        f"name: us\ncollector:\n  type: prometheus\n  params:\n    url: {prom.url}\n"
        "    query: 'orders{region=\"us\"}'\nschedule: {interval: 10m, timezone: Europe/Berlin}\n",
    )
    spec = load_metrics([path]).metrics["us"]
    resources = Resources()
    try:
        c = collector(resources, url=prom.url, query='orders{region="us"}')
        grid = Grid(TEN_MIN, ZoneInfo("Europe/Berlin"))
        assert (await collect(c, spec, grid, BASE + 3600, BASE + 4200)).points == []  # the gap
        assert (await collect(c, spec, grid, BASE, BASE + 600)).points != []  # an hour earlier: data
        assert await timezone_probe(c, spec, grid, BASE + 3600) is None
    finally:
        await resources.close()


async def test_a_bad_query_names_the_servers_reason(prom: PrometheusServer, resources: Resources) -> None:
    with pytest.raises(CollectError, match=r"127\.0\.0\.1:\d+: HTTP 400: query failed \(bad_data\)"):
        await collector(resources, url=prom.url, query="sum(orders").collect(window(0, 20))


async def test_a_down_server_is_named_by_host_only(resources: Resources) -> None:
    from tests.support.net import free_port

    port = free_port()
    c = collector(
        resources,
        url=f"http://127.0.0.1:{port}/tenant-{SECRET}/prometheus",
        query="up",
        bearer_token=SECRET,
        timeout="5s",
    )
    with pytest.raises(CollectError) as err:
        await c.collect(window(0, 20))
    text = str(err.value)
    assert text == f"prometheus 127.0.0.1:{port}: request failed: ClientConnectorError", text
    assert SECRET not in text


# -- the contract, against a local server that plays Prometheus -------------------------------


def matrix(value: str = "1") -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[BASE + 600, value]]}]},
    }


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, list[web.Request], asyncio.Event]]:
    seen: list[web.Request] = []
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        form = await request.post()
        if request.path.startswith("/slow"):
            await release.wait()
        if request.path.startswith("/big"):
            return web.Response(body=b"x" * 4096, content_type="application/json")
        if request.path.startswith("/proxy"):
            return web.Response(
                status=502, text="<html>bad gateway for " + str(form.get("query")) + "</html>"
            )
        if request.headers.get("Authorization", "").endswith(SECRET):
            return web.json_response({"status": "error", "errorType": "auth", "error": "nope"}, status=401)
        return web.json_response(matrix())

    async with http_server(handle, method="POST") as base_url:
        yield base_url, seen, release
        release.set()


async def test_the_request_is_a_form_post_with_auth_and_server_timeout(
    fake: Any, resources: Resources
) -> None:
    base_url, seen, _ = fake
    c = collector(
        resources,
        url=f"{base_url}/select/0/prometheus",
        query="sum(x[{{ interval }}])",
        basic_auth={"username": "u", "password": "pw"},
        headers={"X-Scope-OrgID": "t1"},
    )
    rows = await c.collect(window(0, 10))
    assert rows == [{"__labels__": {}, "period_time": BASE, "value": 1.0}]
    req = seen[-1]
    form = await req.post()
    assert req.path == "/select/0/prometheus/api/v1/query_range"
    assert dict(form) == {
        "query": "sum(x[10m])",
        "start": str(BASE + 600),
        "end": str(BASE + 600),
        "step": "600",
        "timeout": "30s",
        "nocache": "1",
    }
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"u:pw").decode()
    assert req.headers["X-Scope-OrgID"] == "t1"
    bearer = collector(resources, url=base_url, query="x", bearer_token="tok-123456")
    await bearer.collect(window(0, 10))
    assert seen[-1].headers["Authorization"] == "Bearer tok-123456"


async def test_a_slow_server_stops_at_the_timeout(fake: Any, resources: Resources) -> None:
    base_url, _, _ = fake
    c = collector(resources, url=f"{base_url}/slow", query="x", timeout="0.5s")
    async with asyncio.timeout(20):
        with pytest.raises(CollectError, match=r"no answer within 0\.5s"):
            await c.collect(window(0, 10))
    assert await collector(resources, url=base_url, query="x").collect(window(0, 10))


async def test_cancellation_passes_through(fake: Any, resources: Resources) -> None:
    base_url, seen, _ = fake
    task = asyncio.ensure_future(
        collector(resources, url=f"{base_url}/slow", query="x").collect(window(0, 10))
    )
    async with asyncio.timeout(20):
        while not seen:  # the request reached the server
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await collector(resources, url=base_url, query="x").collect(window(0, 10))


async def test_errors_never_carry_secrets_or_the_body(fake: Any, resources: Resources) -> None:
    base_url, _, _ = fake
    c = collector(resources, url=f"{base_url}/proxy", query=f'x{{t="{SECRET}"}}')
    with pytest.raises(CollectError) as err:
        await c.collect(window(0, 10))
    assert str(err.value).endswith(": HTTP 502") and SECRET not in str(err.value)
    c = collector(resources, url=base_url, query="x", bearer_token=SECRET)
    with pytest.raises(CollectError) as err:
        await c.collect(window(0, 10))
    assert "HTTP 401" in str(err.value) and SECRET not in str(err.value)


async def test_an_answer_above_max_bytes_is_refused(fake: Any, resources: Resources) -> None:
    base_url, _, _ = fake
    c = collector(resources, url=f"{base_url}/big", query="x", max_bytes=1024)
    with pytest.raises(CollectError, match=r"above max_bytes \(1,024 bytes\)"):
        await c.collect(window(0, 10))


def test_params_refuse_two_kinds_of_auth() -> None:
    with pytest.raises(ValueError, match="one of basic_auth, bearer_token"):
        Params.model_validate(
            {
                "url": "http://p:9090",
                "query": "x",
                "bearer_token": "t",
                "basic_auth": {"username": "u", "password": "p"},
            }
        )
    with pytest.raises(ValueError, match="http:// or https://"):
        Params.model_validate({"url": "prom:9090", "query": "x"})
