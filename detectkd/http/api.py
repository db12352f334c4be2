"""The API's handlers: /metrics, health, /api/v1 (metrics, alerts, outbox, silences), POST /-/reload."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any, TypedDict

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from detectkd import __version__
from detectkd.alerting.silences import Silence, make_window, new_silence
from detectkd.durations import moment_of
from detectkd.errors import error_line
from detectkd.http.auth import user_of
from detectkd.http.paging import page, page_args
from detectkd.http.port import DAEMON
from detectkd.runtime.status import iso
from detectkd.storage.base import OutboxItem, OutboxStatus

log = structlog.get_logger("detectkd.http")


async def metrics(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    # Per-metric lines are pre-rendered; the rest is still formatted: not on the event loop.
    body = await asyncio.to_thread(daemon.telemetry.exposition)
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
    return web.json_response({"status": "ready", "metrics": daemon.running_metrics()})


async def api_metrics(request: web.Request) -> web.Response:
    """`?name=` (substring), `?tag=`, `?state=` filter; `?limit=` (default 500, at most
    10,000) and `?offset=` page, by name. `total` counts the filtered metrics."""
    daemon = request.app[DAEMON]
    q = request.query
    try:
        limit, offset = page_args(q)
    except ValueError:
        return web.json_response({"error": "limit and offset must be integers"}, status=400)
    names = daemon.metric_names(q.get("name"), q.get("tag"), q.get("state"))
    listing = page(names, len(names), offset, limit)
    listing["metrics"] = [daemon.metric_entry(n) for n in listing["metrics"]]  # only the page's are built
    return web.json_response(
        listing
        | {
            "sources": daemon.api_sources(),
            "ha": daemon.api_ha(),
            "config": daemon.last_reload,
            "counts": daemon.state_counts(),
            "running": daemon.running_metrics(),
            "scheduler_lag_seconds": round(daemon.telemetry.recent_lag.value(time.time()), 3),
        }
    )


async def api_alerts(request: web.Request) -> web.Response:
    """Series FIRING, PENDING or NO DATA and failing metrics, newest first (the alerts page)."""
    return web.json_response({"alerts": request.app[DAEMON].alert_rows()})


async def api_outbox(request: web.Request) -> web.Response:
    """Pending deliveries and dead letters (the newest 100 of each)."""
    daemon = request.app[DAEMON]
    try:
        stats = await daemon.store.outbox_stats()
        pending = await daemon.store.outbox_pending()
        dead = await daemon.store.outbox_pending(OutboxStatus.DEAD)
    except Exception as exc:
        return web.json_response({"error": str(exc)}, status=503)
    oldest = stats.oldest_created_at
    return web.json_response(
        {
            "pending": stats.pending,
            "dead": stats.dead,
            "oldest_age_seconds": None if oldest is None else time.time() - oldest,
            "items": [outbox_row(i) for i in pending[-100:]],
            "dead_letters": [outbox_row(i) for i in dead[-100:]],
        }
    )


async def list_silences(request: web.Request) -> web.Response:
    everything = request.query.get("all") in ("1", "true")
    rows = silence_rows(request.app[DAEMON].silences.items.values(), time.time(), everything)
    return web.json_response({"silences": rows})


def silence_rows(silences: Iterable[Silence], now: float, everything: bool) -> list[dict[str, Any]]:
    """`/api/v1/silences`' rows (the daemon's, and a supervisor's merged ones): by start,
    only those not over yet unless `everything`."""
    return [
        {**json.loads(s.to_json()), "active": s.active(now)}
        for s in sorted(silences, key=lambda s: s.starts_at)
        if everything or s.current(now)
    ]


async def add_silence(request: web.Request) -> web.Response:
    """Body: {"matchers": [...], "starts_at"?, "ends_at"? | "duration"?, "comment"?,
    "window"?: {"weekdays": [...], "times": [...], "timezone": ...}} (times: epoch or ISO 8601).
    The silence records the authenticated user as `created_by` (a body's own is ignored)."""
    daemon = request.app[DAEMON]
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise TypeError("the body must be a JSON object")
        silence = silence_from_body(body, time.time(), user_of(request))
        await daemon.save_silence(silence)  # SilenceLimitError (a ValueError): over a cap
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        return web.json_response({"error": f"bad silence: {type(exc).__name__}: {exc}"}, status=400)
    return web.json_response({"id": silence.id, "silence": json.loads(silence.to_json())}, status=201)


async def expire_silence(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    s = daemon.silences.items.get(request.match_info["id"])
    if s is None:
        return web.json_response({"error": "no such silence"}, status=404)
    await daemon.save_silence(s.expire(time.time()))
    return web.json_response({"expired": s.id})


def silence_from_body(body: dict[str, Any], now: float, by: str) -> Silence:
    """`by`: the authenticated user (a body cannot say who created the silence)."""
    start = moment_of(body["starts_at"]) if body.get("starts_at") is not None else now
    end = moment_of(body["ends_at"]) if body.get("ends_at") is not None else None
    duration = str(body["duration"]) if body.get("duration") else None
    w = body.get("window")
    window = make_window(w.get("weekdays", []), w.get("times", []), w.get("timezone", "UTC")) if w else None
    given = str(body["id"]) if body.get("id") is not None else None
    return new_silence(
        body["matchers"], start, end, str(body.get("comment", "")), by, window, duration, given
    )


class OutboxRow(TypedDict):
    """A row of `/api/v1/outbox` (times as ISO 8601 UTC): what the outbox pages show too."""

    id: int
    key: str
    metric: str
    series: str
    channel: str
    attempts: int
    created_at: str | None
    next_attempt_at: str | None
    last_error: str | None
    status: str


def outbox_row(i: OutboxItem) -> OutboxRow:
    return {
        "id": i.id,
        "key": i.key,
        "metric": i.metric,
        "series": i.series,
        "channel": i.channel,
        "attempts": i.attempts,
        "created_at": iso(i.created_at),
        "next_attempt_at": iso(i.next_attempt_at),
        "last_error": i.last_error,
        "status": i.status,
    }


async def reload(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    result = await daemon.reload("http")
    return web.json_response(result, status=200 if result.get("successful") else 500)


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """A handler that fails answers JSON (and logs through structlog), never a traceback page."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except Exception as exc:
        log.error("http handler failed", path=request.path, error=error_line(exc))
        return web.json_response({"error": error_line(exc)}, status=500)
