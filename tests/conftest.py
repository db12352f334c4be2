"""Shared fixtures: temp config dirs, a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from detectkd.resources import Resources
from tests.clickhouse_server import ClickHouseServer, remove, start_server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REPO = Path(__file__).resolve().parent.parent
# The team's shared data sits beside the checkout; CI may clone elsewhere.
SHARED = next(
    (p for p in (REPO.parent / "shared", Path("/work/shared")) if (p / "data").is_dir()),
    REPO.parent / "shared",
)


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP basic auth."""
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass
class Receiver:
    """A real HTTP server that records every JSON body it is sent."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # the request path of each received body
    fail_with: int | None = None  # answer this status instead of 200
    fail_paths: set[str] | None = None  # only on these paths (None: every path)
    attempts: int = 0
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until a received payload matches `predicate`; return it."""
        async with asyncio.timeout(timeout):
            while True:
                for item in self.received:
                    if predicate(item):
                        return item
                self._event.clear()
                await self._event.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(url="")

    async def handle(request: web.Request) -> web.Response:
        rec.attempts += 1
        if rec.fail_with is not None and (rec.fail_paths is None or request.path in rec.fail_paths):
            return web.Response(status=rec.fail_with, text="receiver unavailable")
        body = await request.read()
        rec.received.append(json.loads(body))
        rec.headers.append(dict(request.headers))
        rec.paths.append(request.path)
        rec._event.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    yield rec
    await runner.cleanup()


@asynccontextmanager
async def http_server(handler: Handler, method: str = "POST", path: str = "/{tail:.*}") -> AsyncIterator[str]:
    """A real HTTP server on a free port for one handler; yields its base URL."""
    app = web.Application()
    app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
async def resources() -> AsyncIterator[Resources]:
    """Shared HTTP session, pools and threads, closed after the test."""
    r = Resources()
    yield r
    await r.close()


@pytest.fixture(scope="session")
def clickhouse() -> Iterator[ClickHouseServer]:
    """One private ClickHouse server for the whole test session."""
    server = start_server()
    yield server
    remove(server)


@asynccontextmanager
async def pg_database(setup: str, prefix: str = "dtk_test") -> AsyncIterator[str]:
    """A fresh PostgreSQL database on the machine's server, `setup` run in it (UTC session);
    yields its name and drops it afterwards."""
    import uuid

    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=name)
        try:
            await conn.execute("SET TIME ZONE 'UTC'; " + setup)
        finally:
            await conn.close()
        yield name
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
