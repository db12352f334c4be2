"""HTTP endpoints: /metrics, /healthz, /readyz, /api/v1/metrics, POST /-/reload."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from detectkd import __version__

if TYPE_CHECKING:
    from detectkd.daemon import Daemon

DAEMON: web.AppKey[Daemon] = web.AppKey("daemon")


async def metrics(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    body = generate_latest(daemon.telemetry.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    # Answering at all proves the event loop is alive.
    return web.json_response({"status": "ok", "version": __version__})


async def readyz(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    if not daemon.ready:
        return web.json_response({"status": "starting"}, status=503)
    try:
        await asyncio.wait_for(daemon.store.ping(), timeout=2)
    except Exception as exc:
        return web.json_response({"status": "storage unreachable", "error": str(exc)}, status=503)
    return web.json_response({"status": "ready", "metrics": len(daemon.runtimes)})


async def api_metrics(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.json_response(
        {
            "metrics": daemon.api_metrics(),
            "config": daemon.last_reload,
        }
    )


async def reload(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    if not daemon.settings.lifecycle_api:
        return web.Response(status=403, text="Lifecycle API is not enabled (lifecycle_api: true).\n")
    result = await daemon.reload("http")
    return web.json_response(result, status=200 if result.get("successful") else 500)


def make_app(daemon: Daemon) -> web.Application:
    app = web.Application()
    app[DAEMON] = daemon
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/metrics", api_metrics)
    app.router.add_post("/-/reload", reload)
    return app


async def start_server(daemon: Daemon) -> web.AppRunner:
    runner = web.AppRunner(make_app(daemon), access_log=None)
    await runner.setup()
    host, port = daemon.settings.listen_host_port()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
