"""The web UI's pages and the chart's series endpoint, served by the daemon (presentation:
`detectkd.ui.pages`). `/api/v1/metrics/{name}/series?since=&until=` is what the chart
draws (documented in docs/http.md). The pages sit behind the same edge (TLS, basic auth,
the write rule, the cross-site guard) as the API."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict

from aiohttp import web

from detectkd.config.calendars import shown
from detectkd.durations import parse_duration
from detectkd.http import shadow
from detectkd.http.api import outbox_row
from detectkd.http.feedback import labels_of
from detectkd.http.paging import page, page_args
from detectkd.http.port import DAEMON
from detectkd.storage.base import OutboxStatus
from detectkd.ui import pages as ui

MAX_AHEAD_S = 366 * 86400  # a series request may reach this far into the future


def html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html")


async def overview(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    q = request.query
    name, tag, state = q.get("name") or None, q.get("tag") or None, q.get("state") or None
    names = daemon.metric_names(name, tag, state)
    try:
        limit, offset = page_args({"limit": "100", **q})
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    listing = page(names, len(names), offset, limit)
    listing["metrics"] = [daemon.metric_entry(n) for n in listing["metrics"]]  # only the page's
    return html(
        ui.render(
            "overview.html",
            page=listing,
            counts=daemon.state_counts(),
            states=ui.STATES,
            filters={"name": name or "", "tag": tag or "", "state": state or ""},
            reload=daemon.last_reload,
            running=daemon.running_metrics(),
            outbox=await daemon.store.outbox_stats(),
            lag=daemon.telemetry.recent_lag.value(time.time()),
        )
    )


async def metric_page(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    name = request.match_info["name"]
    if name not in daemon.metric_names(name):
        raise web.HTTPNotFound(text=f"no metric {name!r}")
    chosen = request.query.get("range", "1d")
    chosen = chosen if chosen in ui.RANGES else "1d"
    spec, until = daemon.metric_spec(name), math.ceil(time.time())
    since = until - int(parse_duration(chosen).total_seconds())
    compared = await shadow.report(daemon, name, since, until) if spec is not None and spec.shadows else None
    return html(
        ui.render(
            "metric.html",
            m=daemon.metric_entry(name),
            ranges=ui.RANGES,
            chosen=chosen,
            shadow=ui.shadow_view(compared) if compared is not None else None,
            config_text=json.dumps(daemon.metric_config(name), indent=2),  # autoescaped as text
            writable=ui.writable(daemon.settings.lifecycle_api, "feedback and backtests are"),
        )
    )


async def series(request: web.Request) -> web.Response:
    """`?since=&until=` (epoch seconds; default: the last day) or `?range=6h`: per series
    the stored periods and values, the expected value and band, and which were anomalies."""
    daemon = request.app[DAEMON]
    name = request.match_info["name"]
    now = math.ceil(time.time())  # `until` is exclusive: what began this second is in the range
    try:
        if "range" in request.query:
            until = now
            since = now - int(parse_duration(request.query["range"]).total_seconds())
        else:
            until = int(request.query.get("until", now))
            since = int(request.query.get("since", until - 86400))
        if not (0 <= since < until <= now + MAX_AHEAD_S):
            raise ValueError(f"need 0 <= since < until <= now + {MAX_AHEAD_S} s (epoch seconds)")
        data = await daemon.series_data(name, since, until)
    except (ValueError, OverflowError) as exc:  # RangeTooLong is a ValueError
        return web.json_response({"error": f"bad range: {exc}"}, status=400)
    if data is None:
        raise web.HTTPNotFound(text=f"no metric {name!r}")
    data = await asyncio.to_thread(ui.thin, data)
    feedback = [asdict(f) for f in await labels_of(daemon.store, name, since, until)]
    spec = daemon.metric_spec(name)  # its calendars' events in the range (config.calendars)
    events = await asyncio.to_thread(shown, spec.calendar if spec is not None else None, since, until)
    return web.json_response(
        {
            "metric": name,
            "since": since,
            "until": until,
            "series": data,
            "feedback": feedback,
            "alerts": await daemon.alert_episodes(name, since, until),
            "silences": daemon.silence_spans(name, since, until),
            "shadow": await shadow.chart_spans(daemon, name, since, until),
            "events": events,
        }
    )


async def alerts_page(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return html(ui.alerts_html(daemon.alert_rows(), daemon.settings.lifecycle_api))


async def silences_page(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return html(ui.silences_html(list(daemon.silences.items.values()), daemon.settings.lifecycle_api))


async def outbox_page(request: web.Request) -> web.Response:
    store = request.app[DAEMON].store
    pending, dead = await store.outbox_pending(), await store.outbox_pending(OutboxStatus.DEAD)
    rows = [outbox_row(i) for i in pending[:500]], [outbox_row(i) for i in dead[:500]]
    return html(ui.outbox_html(*rows, await store.outbox_stats()))


def routes(app: web.Application) -> None:
    app.router.add_get("/", overview)
    app.router.add_get("/ui/metrics/{name}", metric_page)
    app.router.add_get("/ui/alerts", alerts_page)
    app.router.add_get("/ui/silences", silences_page)
    app.router.add_get("/ui/outbox", outbox_page)
    app.router.add_get("/api/v1/metrics/{name}/series", series)
    app.router.add_static("/ui/static", ui.STATIC, append_version=False)
