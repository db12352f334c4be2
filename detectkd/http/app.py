"""The daemon's HTTP app: one route table (the API, the feedback and backtest endpoints,
the web UI's pages) behind the shared edge (`detectkd.http.edge`)."""

from __future__ import annotations

from aiohttp import web

from detectkd.http import api, backtest, feedback, pages, shadow
from detectkd.http.edge import edge_app, inherited_listener, serve
from detectkd.http.port import DAEMON, WEB, DaemonAPI
from detectkd.http.webconfig import WebConfig, load_web_config


def make_app(daemon: DaemonAPI, config: WebConfig | None = None) -> web.Application:
    """`config`: the web config file's TLS and users (basic auth guards every endpoint; writes
    follow `detectkd.http.guard`'s rule)."""
    config = config or WebConfig()
    app = edge_app(config, daemon.settings.lifecycle_api, api.json_errors)
    app[DAEMON] = daemon
    app[WEB] = config
    app.router.add_get("/metrics", api.metrics)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/api/v1/metrics", api.api_metrics)
    app.router.add_get("/api/v1/outbox", api.api_outbox)
    app.router.add_get("/api/v1/alerts", api.api_alerts)
    app.router.add_get("/api/v1/silences", api.list_silences)
    app.router.add_post("/api/v1/silences", api.add_silence)
    app.router.add_delete("/api/v1/silences/{id}", api.expire_silence)
    app.router.add_post("/-/reload", api.reload)
    pages.routes(app)  # the web UI: presentation in detectkd.ui
    feedback.routes(app)
    backtest.routes(app)
    shadow.routes(app)
    return app


async def start_server(daemon: DaemonAPI) -> web.AppRunner:
    """Listen on `listen` (a worker: on the socket its supervisor bound to its port), over TLS
    and behind basic auth as the web config file says. Raises ConfigError (a broken web
    config) or OSError (the address is taken)."""
    path = daemon.settings.web_config_file
    config = load_web_config(path)
    host, port = daemon.settings.listen_host_port()
    return await serve(make_app(daemon, config), host, port, config, path, sock=inherited_listener())
