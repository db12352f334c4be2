"""Feedback in the API: label an anomaly or an alert "real incident" or "false alarm".

- `GET /api/v1/metrics/{name}/feedback`: the metric's labels, by series and period.
- `POST /api/v1/feedback`: {metric, series, period, label, until?, note?} (times: epoch
  seconds or ISO 8601); replaces the label on that (metric, series, period). 201.
- `DELETE /api/v1/feedback?metric=&series=&period=`: removes it.

Writes follow the API's rules (`detectkd.http.guard`); the label records
the authenticated user as `by`. Labels live in the state store (see
`detectkd.alerting.feedback`), so every replica sharing it sees them.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from aiohttp import web

from detectkd.alerting.feedback import Feedback, FeedbackError, make_feedback
from detectkd.durations import moment_of
from detectkd.http.auth import user_of
from detectkd.http.port import DAEMON

if TYPE_CHECKING:
    from detectkd.http.port import DaemonAPI
    from detectkd.storage.base import StateStore


def _known(daemon: DaemonAPI, metric: str) -> bool:
    return metric in daemon.metric_names(metric)


async def labels_of(
    store: StateStore, metric: str, since: int | None = None, until: int | None = None
) -> list[Feedback]:
    """The metric's labels whose span meets [since, until)."""
    found = [Feedback.from_json(t) for t in await store.feedback_load(metric)]
    return [f for f in found if (since is None or f.until >= since) and (until is None or f.period < until)]


async def list_feedback(request: web.Request) -> web.Response:
    daemon, name = request.app[DAEMON], request.match_info["name"]
    if not _known(daemon, name):
        return web.json_response({"error": f"no metric {name!r}"}, status=404)
    return web.json_response({"feedback": [asdict(f) for f in await labels_of(daemon.store, name)]})


async def add_feedback(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise FeedbackError("the body must be a JSON object")
        fb = make_feedback(body, user_of(request), time.time(), moment_of)
    except (ValueError, FeedbackError) as exc:
        return web.json_response({"error": f"bad feedback: {exc}"}, status=400)
    if not _known(daemon, fb.metric):
        return web.json_response({"error": f"no metric {fb.metric!r}"}, status=404)
    await daemon.store.feedback_save(fb.metric, fb.series, fb.period, fb.to_json())
    return web.json_response({"feedback": asdict(fb)}, status=201)


async def delete_feedback(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    q = request.query
    try:
        metric, series, period = q["metric"], q.get("series", ""), int(moment_of(q["period"]))
    except (KeyError, ValueError, OverflowError) as exc:
        return web.json_response({"error": f"give metric, series and period: {exc}"}, status=400)
    await daemon.store.feedback_save(metric, series, period, None)
    return web.json_response({"deleted": {"metric": metric, "series": series, "period": period}})


def routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/metrics/{name}/feedback", list_feedback)
    app.router.add_post("/api/v1/feedback", add_feedback)
    app.router.add_delete("/api/v1/feedback", delete_feedback)
