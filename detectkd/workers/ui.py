"""The web UI and its API through a `workers:` supervisor (the pool: `detectkd.workers.pool`).

The supervisor has no metrics of its own; each worker has a shard of them, its own store
and its own UI. So:

- a metric's page and its endpoints (`/ui/metrics/NAME`, `/api/v1/metrics/NAME/...`,
  `/api/v1/feedback`) are proxied to the worker that owns the metric (the shard hash);
- the overview, the alerts, the silences and the outbox are the workers' JSON merged and
  rendered with the same templates;
- a silence is written to every worker under one id (each worker's store keeps it, as
  each worker's metrics may match it); expiring one expires it everywhere.

The supervisor authenticates people (its web config); it talks to the workers as
`SUPERVISOR_USER` with a password made at each start, and forwards who the user is.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import urllib.parse
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from detectkd.alerting.silences import Silence
from detectkd.http.api import silence_rows
from detectkd.http.auth import FORWARDED_USER, USER
from detectkd.http.pages import html
from detectkd.http.paging import page, page_args
from detectkd.ui import pages
from detectkd.workers.merge import merge_api
from detectkd.workers.pool import DOWN, Worker, WorkerPool


class WorkersUI:
    def __init__(self, pool: WorkerPool, lifecycle_api: bool) -> None:
        self.pool = pool
        self.lifecycle_api = lifecycle_api

    async def _send(
        self, w: Worker, method: str, path: str, request: web.Request, body: bytes
    ) -> web.Response:
        """`path`: as the worker must see it, still percent-encoded (never the decoded path,
        whose `..%2F` would become another endpoint). The person is forwarded only when this
        supervisor's own middleware authenticated them."""
        headers = {}
        if (user := request.get(USER)) is not None:
            headers[FORWARDED_USER] = user
        if request.content_type and body:
            headers["Content-Type"] = request.content_type
        url, data, wait = URL(w.base + path, encoded=True), body or None, aiohttp.ClientTimeout(total=330)
        try:
            async with self.pool.session.request(method, url, data=data, headers=headers, timeout=wait) as r:
                return web.Response(
                    body=await r.read(), status=r.status, content_type=r.content_type, charset=r.charset
                )
        except DOWN as exc:
            return web.json_response(
                {"error": f"worker {w.index} did not answer: {type(exc).__name__}"}, status=503
            )

    async def metric(self, request: web.Request) -> web.Response:
        """A metric's page or endpoint, answered by the worker that runs it."""
        w = self.pool.owner(request.match_info["name"])
        return await self._send(w, request.method, request.raw_path, request, await request.read())

    async def feedback(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            name = request.query["metric"] if request.method == "DELETE" else str(json.loads(body)["metric"])
        except (KeyError, ValueError, TypeError):
            return web.json_response({"error": "bad feedback: give the metric"}, status=400)
        return await self._send(self.pool.owner(name), request.method, request.raw_path, request, body)

    async def _json(self, path: str) -> list[dict[str, Any]]:
        """Every worker's answer to GET `path` (the ones that answered)."""
        return [json.loads(body) for status, body in await self.pool.all_workers(path) if status == 200]

    async def overview(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            limit, offset = page_args({"limit": "100", **q})
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        filters = {k: v for k, v in q.items() if k in ("name", "tag", "state") and v}
        got = await asyncio.gather(
            *(self.pool.first_entries(w, filters, offset + limit) for w in self.pool.workers)
        )
        answers = [a for a in got if a is not None]
        merged = merge_api(answers)
        counts: dict[str, int] = {}
        for a in answers:
            for state, n in (a.get("counts") or {}).items():
                counts[state] = counts.get(state, 0) + n
        outbox = _totals(await self._json("/api/v1/outbox"))
        return html(
            pages.render(
                "overview.html",
                page=page(merged["metrics"], merged["total"], offset, limit),
                counts=counts,
                states=pages.STATES,
                filters={k: filters.get(k, "") for k in ("name", "tag", "state")},
                reload=merged["config"],
                running=sum(int(a.get("running", 0)) for a in answers),
                outbox=outbox,
                lag=max((float(a.get("scheduler_lag_seconds") or 0) for a in answers), default=0.0),
            )
        )

    async def alerts(self, _: web.Request) -> web.Response:
        rows = [r for a in await self._json("/api/v1/alerts") for r in a["alerts"]]
        rows.sort(key=lambda r: -(r["since"] or 0))
        return html(pages.alerts_html(rows, self.lifecycle_api))

    async def _silences(self) -> list[Silence]:
        found: dict[str, Silence] = {}
        for a in await self._json("/api/v1/silences?all=1"):
            for item in a["silences"]:
                item.pop("active", None)
                found.setdefault(item["id"], Silence.from_json(json.dumps(item)))
        return list(found.values())

    async def silences(self, _: web.Request) -> web.Response:
        return html(pages.silences_html(await self._silences(), self.lifecycle_api))

    async def list_silences(self, request: web.Request) -> web.Response:
        everything = request.query.get("all") in ("1", "true")
        return web.json_response({"silences": silence_rows(await self._silences(), time.time(), everything)})

    async def add_silence(self, request: web.Request) -> web.Response:
        """To every worker, under one id: the first refusal is the answer."""
        try:
            body = await request.json()
            body = {**body, "id": body.get("id") or secrets.token_hex(6)}
        except (ValueError, AttributeError, TypeError):
            return web.json_response({"error": "bad silence: the body must be a JSON object"}, status=400)
        data = json.dumps(body).encode()
        answers = await asyncio.gather(
            *(self._send(w, "POST", "/api/v1/silences", request, data) for w in self.pool.workers)
        )
        return next((a for a in answers if a.status != 201), answers[0])

    async def expire_silence(self, request: web.Request) -> web.Response:
        path = "/api/v1/silences/" + urllib.parse.quote(request.match_info["id"], safe="")
        answers = await asyncio.gather(
            *(self._send(w, "DELETE", path, request, b"") for w in self.pool.workers)
        )
        return next((a for a in answers if a.status == 200), answers[0])

    async def outbox(self, _: web.Request) -> web.Response:
        boxes = await self._json("/api/v1/outbox")
        pending = [row for b in boxes for row in b["items"]]
        dead = [row for b in boxes for row in b["dead_letters"]]
        return html(pages.outbox_html(pending, dead, _totals(boxes)))

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/", self.overview)
        r.add_get("/ui/alerts", self.alerts)
        r.add_get("/ui/silences", self.silences)
        r.add_get("/ui/outbox", self.outbox)
        r.add_get("/ui/metrics/{name}", self.metric)
        r.add_route("*", "/api/v1/metrics/{name}/{what}", self.metric)
        r.add_route("*", "/api/v1/feedback", self.feedback)
        r.add_get("/api/v1/silences", self.list_silences)
        r.add_post("/api/v1/silences", self.add_silence)
        r.add_delete("/api/v1/silences/{id}", self.expire_silence)
        r.add_static("/ui/static", pages.STATIC, append_version=False)


def _totals(boxes: list[dict[str, Any]]) -> SimpleNamespace:
    """The workers' outbox counts, summed (what the pages show of `OutboxStats`)."""
    return SimpleNamespace(pending=sum(b["pending"] for b in boxes), dead=sum(b["dead"] for b in boxes))
