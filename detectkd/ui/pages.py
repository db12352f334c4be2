"""The web UI on the API's listener: server-rendered pages (Jinja2, autoescaped) and a chart
(uPlot, vendored under `static/uplot`, no CDN) fed by a JSON endpoint of the API.

- `/`: every metric with its state, last value, last and next run, last error, tags and
  shard; filtered by name, tag and state, counted per state, paginated; the daemon's own
  health (last reload with its errors, outbox depth).
- `/ui/metrics/{name}`: a chart per series of the stored values with the expected band
  and the anomalies, over a chosen range (drag to zoom, double-click to reset, the legend
  shows the exact values under the cursor), and the config as loaded (secrets redacted).
- `/api/v1/metrics/{name}/series?since=&until=`: what the chart draws (documented in
  docs/http.md).

The pages sit behind the same web config (TLS, basic auth) as the API.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web

from detectkd import __version__
from detectkd.aggregate import page_args
from detectkd.durations import parse_duration
from detectkd.runtime.status import MetricState, iso
from detectkd.storage.base import OutboxItem, OutboxStatus
from detectkd.ui import labels, replay
from detectkd.ui.thin import kept

if TYPE_CHECKING:
    from detectkd.alerting.silences import Silence
    from detectkd.web import DaemonAPI

HERE = Path(__file__).parent
STATES = tuple(s.value for s in MetricState)  # NODATA is a series state: on the metric page
RANGES = ("1h", "6h", "1d", "7d", "30d")
MAX_AHEAD_S = 366 * 86400  # a series request may reach this far into the future
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)


def render(name: str, **context: Any) -> web.Response:
    html = _ENV.get_template(name).render(version=__version__, **context)
    return web.Response(text=html, content_type="text/html")


def daemon_of(request: web.Request) -> DaemonAPI:
    from detectkd.web import DAEMON

    return request.app[DAEMON]


async def overview(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    q = request.query
    name, tag, state = q.get("name") or None, q.get("tag") or None, q.get("state") or None
    names = daemon.metric_names(name, tag, state)
    try:
        limit, offset = page_args({"limit": "100", **q})
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    more = offset + limit < len(names)
    listing = {  # only the shown page's entries are built: a page is fast on 10,000 metrics
        "metrics": [daemon.metric_entry(n) for n in names[offset : offset + limit]],
        "total": len(names), "offset": offset, "limit": limit,
        "next_offset": offset + limit if more else None,
    }  # fmt: skip
    return render(
        "overview.html",
        page=listing,
        counts=daemon.state_counts(),
        states=STATES,
        filters={"name": name or "", "tag": tag or "", "state": state or ""},
        reload=daemon.last_reload,
        running=daemon.running_metrics(),
        outbox=await daemon.store.outbox_stats(),
        lag=daemon.telemetry.recent_lag.value(time.time()),
    )


async def metric_page(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    name = request.match_info["name"]
    if name not in daemon.metric_names(name):
        raise web.HTTPNotFound(text=f"no metric {name!r}")
    entry = daemon.metric_entry(name)
    chosen = request.query.get("range", "1d")
    return render(
        "metric.html",
        m=entry,
        ranges=RANGES,
        chosen=chosen if chosen in RANGES else "1d",
        config_text=json.dumps(daemon.metric_config(name), indent=2),  # autoescaped as text
        writable=_writable(daemon.settings.lifecycle_api, "feedback and backtests are"),
    )


async def series(request: web.Request) -> web.Response:
    """`?since=&until=` (epoch seconds; default: the last day) or `?range=6h`: per series
    the stored periods and values, the expected value and band, and which were anomalies."""
    daemon = daemon_of(request)
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
    data = await asyncio.to_thread(_thin, data)
    feedback = [asdict(f) for f in await labels.labels_of(daemon.store, name, since, until)]
    return web.json_response(
        {"metric": name, "since": since, "until": until, "series": data, "feedback": feedback,
         "alerts": await daemon.alert_episodes(name, since, until),
         "silences": daemon.silence_spans(name, since, until)}
    )  # fmt: skip


async def alerts_page(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    return alerts_html(daemon.alert_rows(), daemon.settings.lifecycle_api)


def alerts_html(rows: list[dict[str, Any]], lifecycle_api: bool) -> web.Response:
    for r in rows:
        r["since_iso"] = iso(r["since"])
        r["matchers"] = [f"{k}={v}" for k, v in sorted(r["labels"].items())]
    return render("alerts.html", rows=rows, writable=_writable(lifecycle_api))


async def silences_page(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    return silences_html(list(daemon.silences.items.values()), daemon.settings.lifecycle_api)


def silences_html(silences: list[Silence], lifecycle_api: bool) -> web.Response:
    now = time.time()
    items = sorted(silences, key=lambda s: s.starts_at, reverse=True)
    shown = [
        {"id": s.id, "matchers": [f"{m.name}{m.op}{m.value}" for m in s.matchers], "starts": iso(s.starts_at),
         "ends": iso(s.ends_at), "comment": s.comment, "by": s.created_by, "active": s.active(now),
         "over": not s.current(now)}
        for s in items
    ]  # fmt: skip
    return render("silences.html", silences=shown, writable=_writable(lifecycle_api))


async def outbox_page(request: web.Request) -> web.Response:
    daemon = daemon_of(request)
    store = daemon.store
    pending, dead = await store.outbox_pending(), await store.outbox_pending(OutboxStatus.DEAD)
    return render("outbox.html", pending=[_row(i) for i in pending[:500]], dead=[_row(i) for i in dead[:500]],
                  stats=await store.outbox_stats())  # fmt: skip


def _row(i: OutboxItem) -> dict[str, Any]:
    return {"metric": i.metric, "series": i.series, "channel": i.channel.partition(":")[0], "key": i.key,
            "attempts": i.attempts, "created": iso(i.created_at), "next": iso(i.next_attempt_at),
            "error": i.last_error or ""}  # fmt: skip


def _writable(lifecycle_api: bool, what: str = "silences are") -> str | None:
    """Why the write buttons would be refused, or None (the API decides: this only says it)."""
    return None if lifecycle_api else f"lifecycle_api is off: {what} read-only here"


def _thin(data: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
    out = {}
    for key, cols in data.items():
        keep = kept(cols["value"], cols["anomaly"])
        if len(keep) == len(cols["t"]):
            out[key] = cols
            continue
        out[key] = {k: v if k == "anomalies" else [v[i] for i in keep] for k, v in cols.items()}
    return out


def routes(app: web.Application) -> None:
    app.router.add_get("/", overview)
    app.router.add_get("/ui/metrics/{name}", metric_page)
    app.router.add_get("/ui/alerts", alerts_page)
    app.router.add_get("/ui/silences", silences_page)
    app.router.add_get("/ui/outbox", outbox_page)
    app.router.add_get("/api/v1/metrics/{name}/series", series)
    app.router.add_static("/ui/static", HERE / "static", append_version=False)
    labels.routes(app)
    replay.routes(app)
