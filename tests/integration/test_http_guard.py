"""The HTTP edge attacked over a real listener of an in-process daemon: the write rule on
every write endpoint, cross-site writes, content types, anti-framing headers, a body that
names another creator, Basic-auth timing, throttling, long passwords, slow headers."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from aiohttp import web

from detectkd.http.auth import FAILURES, MAX_WAITING, BasicAuth, Throttled
from detectkd.http.edge import serve
from detectkd.http.guard import HEADERS
from detectkd.http.webconfig import WebConfig
from tests.support.files import write
from tests.support.http import basic_auth
from tests.support.inprocess import HASH, listening, running

WRITES = [
    ("POST", "/api/v1/silences", {"matchers": ["metric=~.*"], "duration": "720h"}),
    ("DELETE", "/api/v1/silences/abc", None),
    ("POST", "/api/v1/feedback", {"metric": "m", "period": 600, "label": "false_alarm"}),
    ("DELETE", "/api/v1/feedback?metric=m&period=600", None),
    ("POST", "/api/v1/metrics/m/backtest", {"range": "1h"}),
    ("POST", "/-/reload", None),
]


def a_metric(tmp_path: Path) -> None:
    write(
        tmp_path / "metrics.d" / "m.yaml",
        "name: m\ncollector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n",
    )


@pytest.mark.parametrize("lifecycle_api, users", [(True, {}), (False, {"alice": HASH})])
async def test_every_write_endpoint_follows_the_write_rule(
    tmp_path: Path, lifecycle_api: bool, users: dict[str, str]
) -> None:
    a_metric(tmp_path)
    async with (
        running(tmp_path, lifecycle_api=lifecycle_api) as d,
        listening(d, users) as base,
        aiohttp.ClientSession(headers=basic_auth("alice", "pw")) as http,
    ):
        for method, path, body in WRITES:
            async with http.request(method, base + path, json=body) as r:
                assert r.status == 403, (method, path)
                why = "lifecycle API" if not lifecycle_api else "authentication"
                assert why in (await r.json())["error"]
        assert d.silences.items == {}


async def test_cross_site_writes_and_form_bodies_are_refused(tmp_path: Path) -> None:
    a_metric(tmp_path)
    silence = {"matchers": ["metric=~.*"], "duration": "720h", "created_by": "mallory"}
    async with (
        running(tmp_path, lifecycle_api=True) as d,
        listening(d, {"alice": HASH}) as base,
        aiohttp.ClientSession(headers=basic_auth("alice", "pw")) as http,
    ):
        port = base.rsplit(":", 1)[1]
        forged = [
            {"Origin": "http://evil.example"},
            {"Origin": f"http://127.0.0.1.evil.example:{port}"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site", "Origin": base},  # the browser's word wins
            {"Sec-Fetch-Site": "same-site"},
        ]
        for headers in forged:
            for method, path, body in WRITES:
                async with http.request(method, base + path, json=body, headers=headers) as r:
                    assert r.status == 403, (headers, path)
                    assert "cross-site" in (await r.json())["error"]
        text = b'{"matchers": ["metric=~.*"], "duration": "720h"}'
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            async with http.post(base + "/api/v1/silences", data=text, headers={"Content-Type": kind}) as r:
                assert r.status == 415, kind
        assert d.silences.items == {}
        # This server's own page (same origin), and a script without browser headers, may write.
        for headers in ({"Origin": base, "Sec-Fetch-Site": "same-origin"}, {"Origin": base}, {}):
            async with http.post(base + "/api/v1/silences", json=silence, headers=headers) as r:
                assert r.status == 201, headers
                assert (await r.json())["silence"]["created_by"] == "alice"  # never the body's


async def test_every_answer_forbids_framing(tmp_path: Path) -> None:
    a_metric(tmp_path)
    async with running(tmp_path, lifecycle_api=True) as d, listening(d, {"alice": HASH}) as base:
        async with aiohttp.ClientSession() as anonymous, anonymous.get(base + "/") as r:
            assert r.status == 401
            assert r.headers["X-Frame-Options"] == "DENY"
        async with aiohttp.ClientSession(headers=basic_auth("alice", "pw")) as http:
            for path in ("/", "/ui/alerts", "/ui/metrics/m", "/ui/static/ui.js", "/nope", "/api/v1/metrics"):
                async with http.get(base + path) as r:
                    for name, value in HEADERS.items():
                        assert r.headers.get(name) == value, (path, name)
                    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


async def test_unknown_users_cost_a_bcrypt_check_on_the_guards_own_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[bytes, str]] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        seen.append((hashed, threading.current_thread().name))
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    guard = BasicAuth({"alice": HASH})
    try:
        assert await guard.check(basic_auth("mallory", "pw")["Authorization"]) is None
        assert await guard.check(basic_auth("alice", "wrong")["Authorization"]) is None
        assert await guard.check(basic_auth("alice", "pw")["Authorization"]) == "alice"
        assert len(seen) == 3  # the unknown user was checked too: as slow as a wrong password
        assert seen[0][0] not in (HASH.encode(),) and seen[0][0].startswith(b"$2b$04$")  # same cost
        assert all(name.startswith("detectkd-bcrypt") for _, name in seen)
        assert await guard.check(basic_auth("alice", "pw")["Authorization"]) == "alice"
        assert len(seen) == 3  # a credential that passed is remembered
        assert await guard.check(basic_auth("alice", "p" * 73)["Authorization"]) is None
    finally:
        guard.close()


async def test_failures_are_throttled_per_address_and_the_queue_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    guard = BasicAuth({"alice": HASH}, clock=lambda: now[0])
    try:
        good, bad = basic_auth("alice", "pw")["Authorization"], basic_auth("alice", "x")["Authorization"]
        assert await guard.check(good, "10.0.0.1") == "alice"
        for _ in range(FAILURES):
            assert await guard.check(bad, "10.0.0.1") is None
        with pytest.raises(Throttled):
            await guard.check(bad, "10.0.0.1")
        assert await guard.check(good, "10.0.0.1") == "alice"  # a scraper that passed before goes on
        assert await guard.check(bad, "10.0.0.2") is None  # other addresses are not punished
        now[0] += 61
        assert await guard.check(bad, "10.0.0.1") is None  # the window passed

        release = threading.Event()
        monkeypatch.setattr(bcrypt, "checkpw", lambda p, h: release.wait(10) and False)
        waiting = [asyncio.ensure_future(guard.check(bad, f"10.1.0.{i}")) for i in range(MAX_WAITING)]
        await asyncio.sleep(0)
        with pytest.raises(Throttled):
            await guard.check(bad, "10.2.0.1")
        release.set()
        assert await asyncio.gather(*waiting) == [None] * MAX_WAITING
    finally:
        guard.close()


async def test_long_passwords_wrong_logins_and_throttling_over_http(tmp_path: Path) -> None:
    a_metric(tmp_path)
    async with running(tmp_path, lifecycle_api=True) as d, listening(d, {"alice": HASH}) as base:
        long_password = aiohttp.ClientSession(headers=basic_auth("alice", "p" * 100))
        async with long_password as http, http.get(base + "/api/v1/metrics") as r:
            assert r.status == 401  # bcrypt's 72-byte limit: refused, not a 500
        async with aiohttp.ClientSession(headers=basic_auth("alice", "wrong")) as http:
            statuses = []
            for _ in range(FAILURES):  # the long password was the first failure of this address
                async with http.get(base + "/healthz") as r:
                    statuses.append(r.status)
            assert statuses[: FAILURES - 1] == [401] * (FAILURES - 1) and statuses[-1] == 429
            assert int(r.headers["Retry-After"]) >= 1


async def test_a_connection_that_never_finishes_its_headers_is_closed() -> None:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hi")

    app = web.Application()
    app.router.add_get("/", hello)
    config = WebConfig()
    runner = await serve(app, "127.0.0.1", 0, config, None, idle_timeout=0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.addresses[0][1])
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
        await writer.drain()
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed by the server
        assert time.monotonic() - started < 10
        writer.close()
    finally:
        await runner.cleanup()


async def test_the_series_endpoint_refuses_ranges_over_its_budget(tmp_path: Path) -> None:
    write(
        tmp_path / "metrics.d" / "m.yaml",
        "name: m\nschedule: {interval: 1s}\ncollector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n",
    )
    async with (
        running(tmp_path, lifecycle_api=True) as d,
        listening(d, {"alice": HASH}) as base,
        aiohttp.ClientSession(headers=basic_auth("alice", "pw")) as http,
    ):
        now = int(time.time())
        for query in (
            "since=0",
            "range=30d",
            "since=-5",
            "since=nan",
            f"since={now}&until={now}",
            "until=100000000000000000000",
            "since=1e308",
        ):
            async with http.get(f"{base}/api/v1/metrics/m/series?{query}") as r:
                assert r.status == 400, query
                assert "bad range" in (await r.json())["error"]
        async with http.get(f"{base}/api/v1/metrics/m/series?range=1d") as r:
            assert r.status == 200  # 86,400 one-second periods of one series: within it
