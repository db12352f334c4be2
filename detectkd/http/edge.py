"""One way to build and serve the HTTP app, for the daemon and a `workers:` supervisor:
authentication (when users are configured), the write rule and the cross-site guard, the
security headers, then the app's own middlewares; served over TLS when configured."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from detectkd.http.auth import BasicAuth
from detectkd.http.guard import install, make_guard
from detectkd.http.webconfig import WebConfig, ssl_context

# An idle connection, or one that never finishes its request headers, is closed after this
# (aiohttp's keep-alive timer runs from the connection's start): no slow-header hoarding.
IDLE_TIMEOUT_S = 15.0
# Set by a `workers:` supervisor in each worker's environment: the number of an inherited
# socket bound to the worker's port, to listen on instead of binding `listen` itself.
LISTEN_FD_ENV = "DETECTK_WORKER_LISTEN_FD"


def inherited_listener() -> socket.socket | None:
    """The socket a `workers:` supervisor handed this worker (`LISTEN_FD_ENV`), if any; taken
    out of the environment so nothing this process starts inherits a stale number."""
    fd = os.environ.pop(LISTEN_FD_ENV, None)
    return None if fd is None else socket.socket(fileno=int(fd))


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
    sock: socket.socket | None = None,
) -> web.AppRunner:
    """Listen on `host`:`port`, or on `sock` (bound already: a worker's, from its supervisor);
    the runner is the caller's to clean up. Raises OSError (the address is taken)."""
    tls = config.tls_server_config
    context = ssl_context(tls, config_path.parent) if tls is not None and config_path is not None else None
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle_timeout)
    await runner.setup()
    try:
        if sock is not None:
            await web.SockSite(runner, sock, ssl_context=context).start()
        else:
            await web.TCPSite(runner, host, port, ssl_context=context).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner
