"""The http collector's byte limit and its errors, against a real HTTP server: a big answer is
refused early (on its Content-Length, or once `max_body_bytes` arrived), and a failed parse keeps
neither the body alive nor a fragment of it in the error."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from detectkd.collectors import http
from detectkd.collectors.base import Build, Window
from detectkd.errors import CollectError
from detectkd.resources import Resources
from tests.support.http import http_server

W = Window(1_795_000_200, 1_795_000_800, timedelta(minutes=10), ZoneInfo("UTC"))
MIB = 1024 * 1024
SECRET = "internal-Zq81-not-for-last-error"
PAGE = f"<html>{SECRET}{'y' * (8 * MIB)}</html>".encode()  # an internal page, 8 MiB, not JSON


def hc(resources: Resources, **params: Any) -> http.HttpCollector:
    return http.build(Build(http.Params.model_validate(params), resources))


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    sent = {"endless": 0}
    done = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        kind = request.match_info["tail"]
        if kind == "declared":  # says 100 MiB, sends a little, then waits: refused on the header
            resp = web.StreamResponse(headers={"Content-Length": str(100 * MIB)})
            await resp.prepare(request)
            await resp.write(b"x" * 1024)
            await done.wait()
            return resp
        if kind == "endless":  # chunked, no length, never ends: refused after the limit
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            chunk = b"1" * 65536
            while True:
                await resp.write(chunk)
                sent["endless"] += len(chunk)
        if kind == "html":
            return web.Response(body=PAGE, content_type="text/html")
        if kind == "csvhtml":
            return web.Response(text=f"<html><title>{SECRET}</title>\n<p>1</p>\n")
        if kind == "keys":
            return web.json_response({"data": {SECRET: 1}})
        return web.json_response({"value": 1})

    async with http_server(handle, method="GET") as base:
        yield base, sent
        done.set()


async def test_an_answer_declared_above_the_limit_is_refused_at_once(
    server: tuple[str, dict[str, int]], resources: Resources
) -> None:
    base, _ = server
    c = hc(resources, url=f"{base}/declared", max_body_bytes=MIB)
    async with asyncio.timeout(10):  # the server never ends this answer: nothing is read to its end
        with pytest.raises(
            CollectError, match=r"larger than max_body_bytes \(1,048,576 bytes\): Content-Length 104,857,600"
        ):
            await c.collect(W)


async def test_an_endless_answer_is_refused_after_the_limit(
    server: tuple[str, dict[str, int]], resources: Resources
) -> None:
    base, sent = server
    c = hc(resources, url=f"{base}/endless", max_body_bytes=2 * MIB)
    async with asyncio.timeout(20):
        with pytest.raises(
            CollectError, match=r"larger than max_body_bytes \(2,097,152 bytes\): refused after"
        ):
            await c.collect(W)
    assert sent["endless"] < 32 * MIB  # the client stopped reading: the server could not go on
    assert await hc(resources, url=f"{base}/ok").collect(W) == [{"value": 1}]  # the session still works
    assert http.Params.model_validate({"url": "x"}).max_body_bytes == 16 * MIB  # the default


async def test_a_failed_parse_keeps_no_body_alive_and_quotes_none(
    server: tuple[str, dict[str, int]], resources: Resources
) -> None:
    """Errors kept (as a run's last error, a retry's last failure) do not hold 8 MiB each."""
    base, _ = server
    c = hc(resources, url=f"{base}/html")
    kept: list[BaseException] = []
    tracemalloc.start()
    try:
        for _ in range(4):
            with pytest.raises(CollectError) as err:
                await c.collect(W)
            kept.append(err.value)
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 8 * MIB, f"{held / MIB:.1f} MiB still held by {len(kept)} errors"
    text = str(kept[0])
    assert text.startswith(f"response is not JSON ({len(PAGE):,} characters)") and SECRET not in text
    assert kept[0].__context__ is None and kept[0].__cause__ is None


async def test_errors_name_what_is_wrong_without_the_content(
    server: tuple[str, dict[str, int]], resources: Resources
) -> None:
    from detectkd.collectors.points import PointSpec, rows_to_points
    from detectkd.timegrid import Grid

    base, _ = server
    spec = PointSpec("period_time", "value", (), ())
    for url, fmt in ((f"{base}/csvhtml", "csv"), (f"{base}/keys", "json")):
        rows = await hc(
            resources, url=url, response_format=fmt, value_path="data" if fmt == "json" else None
        ).collect(W)
        with pytest.raises(CollectError, match="no value column 'value'") as err:
            rows_to_points(rows, spec, W, Grid(W.interval))
        assert SECRET not in str(err.value) and "other(s) not shown" in str(err.value)
