"""Silences over the real HTTP API of an in-process daemon (issue 26): hostile times and
sizes answer 400, a hostile regex does not freeze the daemon, a stored bad silence does not
break the listing nor the page."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from detectkd.alerting import silences as sil
from detectkd.alerting.silences import new_silence
from tests.support.files import write
from tests.support.inprocess import running, served

LONG_NAME = "orders_checkout_eu_west_total_by_minute"  # `re`: ((.*)*)*z over this never ends


def a_metric(tmp_path: Path) -> None:
    write(
        tmp_path / "metrics.d" / "m.yaml",
        f"name: {LONG_NAME}\ncollector: {{type: http, params: {{url: 'http://127.0.0.1:9/'}}}}\n",
    )


def strict(text: str) -> Any:
    """JSON as a browser reads it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise AssertionError(f"invalid JSON: {name}")

    return json.loads(text, parse_constant=refuse)


async def post(http: aiohttp.ClientSession, url: str, body: object) -> tuple[int, str]:
    """`body` as Python writes JSON: `NaN`, `Infinity` and `1e+308` as an attacker sends them."""
    async with http.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.text()


HOSTILE_TIMES: list[object] = [math.nan, math.inf, -math.inf, 1e308, -1, "1e300", 10**30, True]


async def test_non_finite_and_absurd_times_answer_400_for_silences_and_feedback(tmp_path: Path) -> None:
    a_metric(tmp_path)
    async with running(tmp_path, lifecycle_api=True) as d, served(d) as (http, base):
        for bad in HOSTILE_TIMES:
            for body in (
                {"matchers": ["metric=m"], "starts_at": bad, "duration": "1h"},
                {"matchers": ["metric=m"], "ends_at": bad},
                {"matchers": ["metric=m"], "duration": "900000000 days"},
            ):
                status, text = await post(http, f"{base}/api/v1/silences", body)
                assert status == 400 and "bad silence" in strict(text)["error"], (body, text)
            for body in (
                {"metric": LONG_NAME, "period": bad, "label": "incident"},
                {"metric": LONG_NAME, "period": 600, "until": bad, "label": "incident"},
            ):
                status, text = await post(http, f"{base}/api/v1/feedback", body)
                assert status == 400 and "bad feedback" in strict(text)["error"], (body, text)
        assert d.silences.items == {} and await d.store.silences_load() == []
        assert await d.store.feedback_load(LONG_NAME) == []


async def test_caps_and_regexes_re2_cannot_run_answer_400(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_metric(tmp_path)
    monkeypatch.setattr(sil, "MAX_SILENCES", 2)
    async with running(tmp_path, lifecycle_api=True) as d, served(d) as (http, base):
        for body, says in (
            ({"matchers": [f"l{i}=v" for i in range(33)], "duration": "1h"}, "at most 32 matchers"),
            ({"matchers": ["metric=" + "x" * 1025], "duration": "1h"}, "1024 bytes"),
            ({"matchers": ["metric=m"], "duration": "1h", "comment": "x" * 4097}, "4096 bytes"),
            ({"matchers": [r"metric=~(a)\1"], "duration": "1h"}, "bad regex"),
            ({"matchers": ["metric=~(?!x).*"], "duration": "1h"}, "bad regex"),
        ):
            status, text = await post(http, f"{base}/api/v1/silences", body)
            assert status == 400 and says in strict(text)["error"], (body, text)
        made = []
        for _ in range(2):
            status, text = await post(
                http, f"{base}/api/v1/silences", {"matchers": ["metric=m"], "duration": "1h"}
            )
            assert status == 201
            made.append(strict(text)["id"])
        status, text = await post(
            http, f"{base}/api/v1/silences", {"matchers": ["metric=m"], "duration": "1h"}
        )
        assert status == 400 and "too many silences: 2" in strict(text)["error"]
        async with http.delete(f"{base}/api/v1/silences/{made[0]}") as r:
            assert r.status == 200  # expiring is never refused, and makes room
        status, _ = await post(http, f"{base}/api/v1/silences", {"matchers": ["metric=m"], "duration": "1h"})
        assert status == 201 and len(await d.store.silences_load()) == 3


async def test_a_backtracking_regex_does_not_freeze_the_api(tmp_path: Path) -> None:
    """Issue 26: `metric=~((.*)*)*z` against a 13-character name blocked the daemon 5-6 s on
    every request that matched silences; against this 39-character name `re` never ends."""
    a_metric(tmp_path)
    async with running(tmp_path, lifecycle_api=True) as d, served(d) as (http, base):
        hostile = {"matchers": ["metric=~((.*)*)*z", "tag!~(a|aa)*b"], "duration": "1h"}
        status, _ = await post(http, f"{base}/api/v1/silences", hostile)
        assert status == 201
        started = time.monotonic()
        for _ in range(5):
            async with http.get(f"{base}/api/v1/metrics") as r:
                (item,) = (await r.json())["metrics"]
                assert item["silenced_by"] == []
            async with http.get(f"{base}/ui/silences") as r:
                assert r.status == 200
        assert time.monotonic() - started < 5.0
        assert not d.silences.silenced({"metric": LONG_NAME + "!" * 1000}, time.time())


async def test_a_stored_bad_silence_breaks_neither_the_listing_nor_the_page(tmp_path: Path) -> None:
    """Issue 26: a NaN start was stored; then `/ui/silences` answered 500 for good and
    `/api/v1/silences` wrote `NaN` (not JSON)."""
    a_metric(tmp_path)
    async with running(tmp_path, lifecycle_api=True) as d, served(d) as (http, base):
        good = new_silence(["metric=m"], time.time(), time.time() + 3600, "deploy")
        await d.store.silence_save(good.id, good.to_json(), good.over_at)
        for i, (field, value) in enumerate(
            (("starts_at", math.nan), ("ends_at", math.inf), ("starts_at", 1e308))
        ):
            bad = {**json.loads(good.to_json()), "id": f"{i:012x}", field: value}
            await d.store.silence_save(bad["id"], json.dumps(bad), None)  # as an older build stored it
        await d.store.silence_save("f" * 12, '{"matchers": ["metric=~(a)\\\\1"]}', None)
        await d.silence_sync.refresh(force=True)
        assert list(d.silences.items) == [good.id]
        assert d.telemetry.silences_unreadable._value.get() == 4
        for query in ("", "?all=1"):
            async with http.get(f"{base}/api/v1/silences{query}") as r:
                assert r.status == 200
                assert [s["id"] for s in strict(await r.text())["silences"]] == [good.id]
        async with http.get(f"{base}/ui/silences") as r:
            assert r.status == 200 and "deploy" in await r.text()
