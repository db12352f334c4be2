"""`GET /api/v1/metrics/{name}/shadow?range=7d` (or `since=&until=`, epoch seconds): the
metric's `shadow:` variants compared with it over the range (`runtime.shadow_compare`):
per variant the alerts it would have sent, its agreements with the metric's alerts, the
labelled incidents it caught and the labelled false alarms it raised, and its state now.
A range is at most `MAX_RANGE_S`; at most `MAX_ROWS` stored notifications are read
(`truncated` says when the range held more: ask for a shorter one)."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from aiohttp import web

from detectkd.durations import parse_duration
from detectkd.http.feedback import labels_of
from detectkd.http.port import DAEMON, DaemonAPI
from detectkd.runtime import shadow_compare
from detectkd.runtime.shadow_compare import compare

MAX_RANGE_S = 90 * 86400
MAX_ROWS = 20_000


def _range(q: Any, now: int) -> tuple[int, int]:
    if "since" in q or "until" in q:
        until = int(q.get("until", now))
        since = int(q.get("since", until - 7 * 86400))
    else:
        until = now
        since = now - int(parse_duration(q.get("range", "7d")).total_seconds())
    if not (0 <= since < until) or until - since > MAX_RANGE_S:
        raise ValueError(f"need 0 <= since < until, at most {MAX_RANGE_S // 86400} days apart (epoch s)")
    return since, until


async def report(daemon: DaemonAPI, name: str, since: int, until: int) -> dict[str, Any]:
    """The comparison the API and the metric page show (the metric exists)."""
    spec = daemon.metric_spec(name)
    configured = [v.name for v in spec.shadows] if spec is not None else []
    rows = await daemon.store.shadow_alerts(name, since, until, MAX_ROWS + 1)
    truncated = len(rows) > MAX_ROWS
    labels = await labels_of(daemon.store, name, since, until)
    out = await asyncio.to_thread(compare, rows[:MAX_ROWS], labels, configured, until)
    now = {v["name"]: v for v in daemon.metric_entry(name).get("shadow", [])}
    for v in out["variants"]:
        v["now"] = now.get(v["name"])  # firing series, alerts since start, last error
    return {"metric": name, "since": since, "until": until, "truncated": truncated, **out}


async def chart_spans(daemon: DaemonAPI, name: str, since: int, until: int) -> list[dict[str, Any]]:
    """The variants' would-be alert episodes the chart draws (none without variants)."""
    spec = daemon.metric_spec(name)
    if spec is None or not spec.shadows:
        return []
    rows = await daemon.store.shadow_alerts(name, since, until, MAX_ROWS)
    return await asyncio.to_thread(shadow_compare.chart_spans, rows, [v.name for v in spec.shadows])


async def shadow(request: web.Request) -> web.Response:
    daemon, name = request.app[DAEMON], request.match_info["name"]
    if name not in daemon.metric_names(name):
        return web.json_response({"error": f"no metric {name!r}"}, status=404)
    try:
        since, until = _range(request.query, math.ceil(time.time()))
    except (ValueError, OverflowError) as exc:
        return web.json_response({"error": f"bad range: {exc}"}, status=400)
    return web.json_response(await report(daemon, name, since, until))


def routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/metrics/{name}/shadow", shadow)
