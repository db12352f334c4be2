"""One way to build and serve the HTTP app, for the daemon and a `workers:` supervisor:
authentication (when users are configured), the write rule and the cross-site guard, the
security headers, then the app's own middlewares; served over TLS when configured."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from detectkd.http.auth import BasicAuth
from detectkd.http.guard import install, make_guard
from detectkd.http.webconfig import WebConfig, ssl_context

# An idle connection, or one that never finishes its request headers, is closed after this
# (aiohttp's keep-alive timer runs from the connection's start): no slow-header hoarding.
IDLE_TIMEOUT_S = 15.0


def edge_app(config: WebConfig, lifecycle_api: bool, *more: Middleware) -> web.Application:
    auth = BasicAuth(config.basic_auth_users) if config.auth else None
    first = [auth.middleware] if auth is not None else []
    app = web.Application(middlewares=[*first, make_guard(lifecycle_api, auth is not None), *more])
    install(app)
    if auth is not None:

        async def close(_: web.Application) -> None:
            auth.close()

        app.on_cleanup.append(close)
    return app


async def serve(
    app: web.Application,
    host: str,
    port: int,
    config: WebConfig,
    config_path: Path | None,
    idle_timeout: float = IDLE_TIMEOUT_S,
) -> web.AppRunner:
    """Listen; the runner is the caller's to clean up. Raises OSError (the address is taken)."""
    tls = config.tls_server_config
    context = ssl_context(tls, config_path.parent) if tls is not None and config_path is not None else None
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner
