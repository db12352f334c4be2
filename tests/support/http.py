"""Real HTTP servers on free ports: a recording receiver and a one-handler server."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP basic auth."""
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

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.fail_with is not None and (self.fail_paths is None or request.path in self.fail_paths):
            return web.Response(status=self.fail_with, text="receiver unavailable")
        body = await request.read()
        self.received.append(json.loads(body))
        self.headers.append(dict(request.headers))
        self.paths.append(request.path)
        self._event.set()
        return web.Response(text="ok")


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A started Receiver; its `url` ends in /hook, any POST path is recorded."""
    rec = Receiver(url="")
    async with http_server(rec.handle) as base:
        rec.url = f"{base}/hook"
        yield rec


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
