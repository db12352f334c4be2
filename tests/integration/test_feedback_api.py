"""Feedback over the real HTTP API of an in-process daemon: validation, who wrote it,
replace and delete, the write rules, and the series endpoint that the chart reads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web

from tests.support.files import write
from tests.support.inprocess import running, served


def a_metric(tmp_path: Path) -> None:
    write(
        tmp_path / "metrics.d" / "m.yaml",
        "name: m\ntags: [shop]\ncollector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n",
    )


async def test_feedback_is_validated_stored_replaced_and_deleted(tmp_path: Path) -> None:
    a_metric(tmp_path)
    async with running(tmp_path, lifecycle_api=True) as d, served(d, "alice") as (http, base):
        bad = [
            {"series": "", "period": 600, "label": "incident"},  # no metric
            {"metric": "m", "period": 600, "label": "maybe"},
            {"metric": "m", "period": "yesterday-ish", "label": "incident"},
            {"metric": "m", "period": 600, "until": 300, "label": "incident"},
            {"metric": "m", "period": 600, "until": 600 + 91 * 86400, "label": "incident"},
            {"metric": "m", "period": 600, "label": "incident", "note": "x" * 501},
            [1, 2],
        ]
        for body in bad:
            async with http.post(f"{base}/api/v1/feedback", json=body) as r:
                assert r.status == 400, body
                assert "bad feedback" in (await r.json())["error"]
        async with http.post(
            f"{base}/api/v1/feedback", json={"metric": "nope", "period": 1, "label": "incident"}
        ) as r:
            assert r.status == 404
        body = {
            "metric": "m",
            "series": "",
            "period": "2026-11-30T10:00:00Z",
            "until": 1796032800 + 600,
            "label": "incident",
            "note": "checkout down",
        }
        async with http.post(f"{base}/api/v1/feedback", json=body) as r:
            assert r.status == 201
            made = (await r.json())["feedback"]
        assert (made["period"], made["until"], made["by"], made["note"]) == (
            1796032800,
            1796033400,
            "alice",
            "checkout down",
        )
        again = {"metric": "m", "series": "", "period": 1796032800, "label": "false_alarm"}
        async with http.post(f"{base}/api/v1/feedback", json=again) as r:
            assert r.status == 201
        async with http.get(f"{base}/api/v1/metrics/m/feedback") as r:
            (only,) = (await r.json())["feedback"]
        assert only["label"] == "false_alarm" and only["until"] == 1796032800  # replaced, not added
        async with http.get(f"{base}/api/v1/metrics/m/series?since=1796032000&until=1796040000") as r:
            assert [f["label"] for f in (await r.json())["feedback"]] == ["false_alarm"]
        async with http.get(f"{base}/api/v1/metrics/m/series?since=1796040000&until=1796050000") as r:
            assert (await r.json())["feedback"] == []  # outside the range
        async with http.delete(f"{base}/api/v1/feedback?metric=m&series=&period=1796032800") as r:
            assert r.status == 200
        async with http.get(f"{base}/api/v1/metrics/m/feedback") as r:
            assert (await r.json())["feedback"] == []
        async with http.get(f"{base}/api/v1/metrics/nope/feedback") as r:
            assert r.status == 404
        async with http.get(f"{base}/api/v1/metrics") as r:  # what the overview shows of it
            listing = await r.json()
        assert listing["metrics"][0]["tags"] == ["shop"] and listing["scheduler_lag_seconds"] >= 0
        assert listing["counts"] == {listing["metrics"][0]["state"]: 1} and listing["running"] == 1


async def test_feedback_writes_follow_the_lifecycle_api_rule(tmp_path: Path) -> None:
    a_metric(tmp_path)
    async with running(tmp_path) as d, served(d, "alice") as (http, base):
        async with http.post(
            f"{base}/api/v1/feedback", json={"metric": "m", "period": 1, "label": "incident"}
        ) as r:
            assert r.status == 403 and "lifecycle_api" in (await r.json())["error"]
        async with http.delete(f"{base}/api/v1/feedback?metric=m&period=1") as r:
            assert r.status == 403
        assert await d.store.feedback_load("m") == []


def http_source(tmp_path: Path, url: str) -> None:
    write(
        tmp_path / "metrics.d" / "m.yaml",
        f"""\
name: m
schedule: {{interval: 1m}}
collector:
  type: http
  params: {{url: '{url}', params: {{from: '{{{{ period_start_ts }}}}', to: '{{{{ period_finish_ts }}}}'}}, timeout: 60s}}
detector: {{type: mad, params: {{window_size: 1h, n_sigma: 5, min_samples: 10, use_weighted: false}}}}
""",
    )


async def test_a_backtest_from_the_page_replays_the_source_once_at_a_time(tmp_path: Path) -> None:
    """The replay runs in a thread with its own loop: this loop serves the source meanwhile,
    and a second request while one runs is refused (429), not queued."""
    from tests.support.http import http_server

    gate, asked = asyncio.Event(), asyncio.Event()
    now = int(time.time())
    spike = now - now % 60 - 20 * 60

    async def source(request: web.Request) -> web.Response:
        """One point per request (the http collector asks period by period)."""
        lo = int(float(request.query["from"]))
        # Only the backtest (2h) asks this far back, oldest first: the metric's own warm-up
        # loads its window (1h) too, and under load it used to set `asked` before the first
        # backtest was received, so the second request ran the backtest and the first got 429.
        if lo < now - 90 * 60:
            asked.set()
            await gate.wait()
        return web.json_response([[lo, 900.0 if lo == spike else 100.0 + lo % 7]])

    async with http_server(source, "GET") as url:
        http_source(tmp_path, url)
        async with running(tmp_path, lifecycle_api=True) as d, served(d, "alice") as (http, base):
            for body, status in (({"range": "31d"}, 400), ({"range": "soon"}, 400)):
                async with http.post(f"{base}/api/v1/metrics/m/backtest", json=body) as r:
                    assert r.status == status, body
            async with http.post(f"{base}/api/v1/metrics/nope/backtest", json={"range": "1h"}) as r:
                assert r.status == 404
            first = asyncio.ensure_future(
                http.post(f"{base}/api/v1/metrics/m/backtest", json={"range": "2h"})
            )
            async with asyncio.timeout(30):
                await asked.wait()
            async with http.post(f"{base}/api/v1/metrics/m/backtest", json={"range": "1h"}) as r:
                assert r.status == 429
            gate.set()
            async with await first as r:
                assert r.status == 200, await r.text()
                answer = await r.json()
    assert answer["points"] >= 100 and spike in answer["anomalies"][""]
    (episode,) = answer["alerts"]  # fired at the spike, resolved after it
    assert (episode["fired_at"], episode["deliveries"]) == (spike, {"backtest": 2}) and episode[
        "resolved_at"
    ] > spike


async def test_a_backtest_needs_the_write_rules(tmp_path: Path) -> None:
    a_metric(tmp_path)
    async with (
        running(tmp_path) as d,
        served(d, "alice") as (http, base),
        http.post(f"{base}/api/v1/metrics/m/backtest", json={"range": "1h"}) as r,
    ):
        assert r.status == 403
