"""`POST /api/v1/metrics/{name}/backtest`: replay the metric's config, as loaded, over a
recent range and answer what it would have flagged and alerted, for the metric page to
draw over the stored series.

It is `detectkd backtest` (the same `replay`): the metric's own collector queries its
source for the range, the detectors and alert rules judge each period as a live run
would, nothing is stored or sent. The replay runs in a worker thread with its own event
loop and connections, so the scheduler's loop keeps its pace; one at a time per daemon
(429 while one runs), at most `MAX_RANGE_S`, cut off after `TIMEOUT_S`. Because it runs
queries against the source on demand, it follows the API's write rules.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from detectkd.alerting.episodes import episodes
from detectkd.alerting.feedback import flagged_by, score
from detectkd.durations import parse_duration
from detectkd.errors import CollectError, error_line
from detectkd.http import feedback
from detectkd.http.port import DAEMON
from detectkd.runtime.replay import Tally, replay, tally

if TYPE_CHECKING:
    from detectkd.specs.loader import MetricSpec

MAX_RANGE_S = 30 * 86400
TIMEOUT_S = 300.0


class _Busy:
    running = False  # one replay at a time in this process (checked and set on the loop)


def _done(task: asyncio.Future[Tally]) -> None:
    _Busy.running = False
    if not task.cancelled():
        task.exception()  # retrieved: a replay nobody waits for any more fails quietly


def _run(spec: MetricSpec, start: float, finish: float) -> Tally:
    """In a worker thread: a private event loop for the whole replay (counted as the CLI
    counts it)."""
    found = Tally()
    work = replay(spec, start, finish, lambda run: tally(run, found), quiet_gc=False)
    asyncio.run(asyncio.wait_for(work, TIMEOUT_S))
    return found


async def backtest(request: web.Request) -> web.Response:
    daemon, name = request.app[DAEMON], request.match_info["name"]
    spec = daemon.metric_spec(name)
    if spec is None:
        return web.json_response({"error": f"no metric {name!r}"}, status=404)
    try:
        body = await request.json() if request.can_read_body else {}
        span = parse_duration(str(body.get("range", "1d"))).total_seconds()
    except (ValueError, AttributeError) as exc:
        return web.json_response({"error": f"bad range: {exc}"}, status=400)
    if not 0 < span <= MAX_RANGE_S:
        return web.json_response({"error": "range must be positive and at most 30d"}, status=400)
    if _Busy.running:
        return web.json_response({"error": "a backtest is running; try again when it ends"}, status=429)
    _Busy.running = True
    finish, t0 = time.time(), time.perf_counter()
    # A request that goes away does not stop the thread: the flag is cleared when it ends.
    task = asyncio.ensure_future(asyncio.to_thread(_run, spec, finish - span, finish))
    task.add_done_callback(_done)
    try:
        found = await asyncio.shield(task)
    except (CollectError, ValueError, TimeoutError) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else error_line(exc)
        return web.json_response({"error": f"backtest failed: {why}"}, status=502)
    seconds = time.perf_counter() - t0
    given = await feedback.labels_of(daemon.store, name, int(finish - span), int(finish))
    met = score(given, flagged_by(found.flagged))
    answer: dict[str, Any] = {
        "metric": name,
        "since": int(finish - span),
        "until": int(finish),
        "seconds": round(seconds, 3),
        "points": sum(found.points.values()),
        "anomalies": found.flagged,
        "alerts": [e.api() for e in episodes((a, "backtest") for a in found.alerts)],
        "feedback": {
            "incidents": met.incidents,
            "hits": met.hits,
            "false_alarms": met.false_alarms,
            "raised": met.raised,
        },
    }
    return web.json_response(answer)


def routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/metrics/{name}/backtest", backtest)
