"""`shadow:` variants in the in-process daemon on a SQLite source: a variant with a tighter
threshold would alert where the metric does not; its would-be alert is stored and listed
(API, metric entry, /metrics), never reaches the outbox nor the webhook; its state survives
a restart, and a reload that changes only the shadow keeps the metric's own alert state."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from detectkd.alerting.alert import Alert
from detectkd.errors import StorageError
from detectkd.runtime.daemon import Daemon
from tests.support.files import write
from tests.support.inprocess import firing_alerts, running, served, within
from tests.support.metrics import shadow_metric

FAR = 4_000_000_000
URL = "http://127.0.0.1:9/hook"  # never called: an in-process daemon that does not serve() sends nothing


def setup(tmp_path: Path, url: str, tight: float = 20, a: str = "a") -> None:
    db = tmp_path / "src.db"
    sqlite3.connect(db).close()
    write(tmp_path / "metrics.d" / "m.yaml", shadow_metric(db, url, tight=tight, a=a))


async def until_true(check: object, what: str, seconds: float = 30) -> None:
    async def wait() -> None:
        while not await check():  # type: ignore[operator]
            await asyncio.sleep(0.05)

    await within(wait(), seconds, what)


async def would_be(d: Daemon, variant: str) -> list[Alert]:
    return [
        Alert.from_json(r.payload)
        for r in await d.store.shadow_alerts("m", 0, FAR, 1000)
        if r.variant == variant
    ]


async def test_a_tighter_variant_alerts_beside_the_metric_and_sends_nothing(tmp_path: Path) -> None:
    setup(tmp_path, URL)
    async with running(tmp_path) as d, served(d) as (http, base):

        async def both() -> bool:
            return {a.series for a in await would_be(d, "tight")} == {"series=a", "series=b"}

        await until_true(both, "the variant's would-be alerts")
        rt = d.slots["m"].runtime
        firing_since = rt.states["series=b"].since
        # The metric's own alert (b) is in the outbox (this daemon does not `serve()`: nothing
        # is delivered; tests/e2e/test_shadow.py sends through a webhook); the variant's is not.
        sent = [Alert.from_json(i.payload) for i in await d.store.outbox_history("m", 0)]
        assert {(a.series, a.detector) for a in sent} == {("series=b", "threshold")}
        tight = await would_be(d, "tight")
        assert all(a.detector == "tight" and a.status == "firing" for a in tight)
        assert await would_be(d, "same") == []
        assert {(a.series, a.status) for a in await would_be(d, "")} == {("series=b", "firing")}

        async with http.get(f"{base}/api/v1/metrics/m/shadow?range=1h") as r:
            assert r.status == 200
            got = await r.json()
        assert got["live"]["alerts"] == 1 and not got["truncated"]
        by = {v["name"]: v for v in got["variants"]}
        assert list(by) == ["tight", "same"]
        assert (by["tight"]["alerts"], by["tight"]["agreed"], by["tight"]["only_variant"]) == (2, 1, 1)
        assert (by["same"]["alerts"], by["same"]["missed"]) == (0, 1)
        assert by["tight"]["now"] == {"name": "tight", "firing": 2, "alerts": 2, "error": None}
        async with http.get(f"{base}/api/v1/metrics/m/shadow?range=100d") as r:
            assert r.status == 400
        async with http.get(f"{base}/api/v1/metrics/nope/shadow") as r:
            assert r.status == 404
        async with http.get(f"{base}/metrics") as r:
            text = await r.text()
        assert 'detectk_shadow_alerts_total{metric="m",variant="tight"} 2' in text
        async with http.get(f"{base}/ui/metrics/m?range=1h") as r:
            page = await r.text()
        assert "Shadow variants" in page and "tight" in page

        # A variant removed from the file: its state and its /metrics samples go.
        write(
            tmp_path / "metrics.d" / "m.yaml",
            shadow_metric(tmp_path / "src.db", URL).replace("name: tight", "name: tight2"),
        )
        assert (await d.reload())["successful"]
        rt2 = d.slots["m"].runtime

        async def dropped() -> bool:
            return "tight" not in await d.store.shadow_load("m") and rt2.status.runs >= 1

        await until_true(dropped, "the removed variant's state dropped")
        async with http.get(f"{base}/metrics") as r:
            assert 'variant="tight"}' not in await r.text()
        # A reload that changes only the shadow keeps the metric's alert state (no new FIRING).
        setup(tmp_path, URL, tight=25)
        result = await d.reload()
        assert result["successful"], result
        rt = d.slots["m"].runtime
        assert rt.states["series=b"].since == firing_since
        runs = rt.status.runs

        async def ran() -> bool:
            return rt.status.runs >= runs + 3

        await until_true(ran, "three runs after the reload")
        outbox = [Alert.from_json(i.payload) for i in await d.store.outbox_history("m", 0)]
        assert [(a.series, a.status) for a in outbox] == [("series=b", "firing")]
        # The changed variant started afresh: a new episode, the unchanged one kept its state.
        assert len(await would_be(d, "tight")) == 4
        assert [v["firing"] for v in rt.shadows.api()] == [2, 0]


async def test_a_variant_s_state_survives_a_restart(tmp_path: Path) -> None:
    setup(tmp_path, URL)
    async with running(tmp_path) as d:

        async def fired() -> bool:
            return len(await would_be(d, "tight")) == 2

        await until_true(fired, "the variant's would-be alerts")
    async with running(tmp_path) as d:
        rt = d.slots["m"].runtime
        runs = rt.status.runs

        async def ran() -> bool:
            return rt.status.runs >= runs + 3

        await until_true(ran, "three runs after the restart")
        assert len(await would_be(d, "tight")) == 2  # still the same episodes: nothing re-fired
        assert [v["firing"] for v in rt.shadows.api()] == [2, 0]


async def test_a_failing_variant_never_fails_the_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refuses the variant's writes: the metric runs and alerts as before, the
    variant's error is shown and counted; once the store takes them again, it recovers."""
    setup(tmp_path, URL)
    async with running(tmp_path) as d, served(d) as (http, base):
        real = d.store.shadow_commit
        broken = True

        async def refusing(metric: str, variant: str, state: str | None, alerts: Any) -> None:
            if broken and variant == "tight":
                raise StorageError("sqlite store: disk I/O error (a test)")
            await real(metric, variant, state, alerts)

        monkeypatch.setattr(d.store, "shadow_commit", refusing)
        rt = d.slots["m"].runtime

        async def failed_twice() -> bool:
            return rt.shadows.variants[0].error is not None and rt.status.runs >= 3

        await until_true(failed_twice, "the variant failing")
        assert rt.status.failures == 0 and rt.status.last_error is None
        assert [a.series for a in await firing_alerts(d)] == ["series=b"]  # the metric alerted
        async with http.get(f"{base}/api/v1/metrics/m/shadow") as r:
            tight = (await r.json())["variants"][0]
        assert "disk I/O error" in tight["now"]["error"] and tight["alerts"] == 0
        async with http.get(f"{base}/metrics") as r:
            assert 'detectk_shadow_errors_total{metric="m",variant="tight"}' in await r.text()
        async with http.get(f"{base}/ui/metrics/m") as r:
            assert "disk I/O error" in await r.text()
        broken = False

        async def recovered() -> bool:
            return len(await would_be(d, "tight")) == 2 and rt.shadows.variants[0].error is None

        await until_true(recovered, "the variant recovering")


async def test_the_metric_s_own_alert_is_recorded_before_the_variant_s_of_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A comparison read between the two writes saw the variant's would-be alert on b and not
    the metric's own: `agreed` 0 (tests/e2e/test_shadow.py under load)."""
    setup(tmp_path, URL)
    async with running(tmp_path) as d:
        real = d.store.shadow_commit
        order: list[tuple[str, set[str]]] = []

        async def recording(metric: str, variant: str, state: str | None, alerts: Any) -> None:
            order.append((variant, {Alert.from_json(r.payload).series for r in alerts}))
            await real(metric, variant, state, alerts)

        monkeypatch.setattr(d.store, "shadow_commit", recording)

        async def variant_alerted_b() -> bool:
            return any(v == "tight" and "series=b" in s for v, s in order)

        await until_true(variant_alerted_b, "the variant's would-be alert on b")
        first_variant = next(i for i, (v, s) in enumerate(order) if v == "tight" and "series=b" in s)
        first_live = next(i for i, (v, s) in enumerate(order) if v == "" and "series=b" in s)
        assert first_live < first_variant, order


async def test_the_page_escapes_series_and_caps_what_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detectkd.http import shadow

    setup(tmp_path, URL, a="<img src=x onerror=alert(1)>")
    monkeypatch.setattr(shadow, "MAX_ROWS", 1)
    async with running(tmp_path) as d, served(d) as (http, base):

        async def both() -> bool:
            return len(await would_be(d, "tight")) == 2

        await until_true(both, "the variant's would-be alerts")
        async with http.get(f"{base}/ui/metrics/m?range=1h") as r:
            page = await r.text()
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
        assert "choose a shorter range" in page
        async with http.get(f"{base}/api/v1/metrics/m/shadow?since=0&until=4000000000") as r:
            assert r.status == 400  # over 90 days
        async with http.get(f"{base}/api/v1/metrics/m/shadow?range=1h") as r:
            got = await r.json()
        assert got["truncated"] is True
        for bad in ("range=soon", "since=x", "since=10&until=5", "until=1e400"):
            async with http.get(f"{base}/api/v1/metrics/m/shadow?{bad}") as r:
                assert r.status == 400 and "bad range" in (await r.json())["error"], bad
        async with (
            aiohttp.ClientSession() as anonymous,
            anonymous.get(f"{base}/api/v1/metrics/m/shadow") as r,
        ):
            assert r.status == 401  # behind the same basic auth as every endpoint
