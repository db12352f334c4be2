"""The Daemon object in-process: reload keeps or drops state; busy runs are skipped and counted."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from detectkd.alerting.state import Status
from detectkd.runtime.daemon import Daemon
from tests.support.files import write
from tests.support.http import Receiver, basic_auth, http_server
from tests.support.inprocess import firing_alerts, http_metric, make_settings, running
from tests.support.metrics import sqlite_metric

HOUR = 3600
T0 = 1_795_000_000 - 1_795_000_000 % HOUR

MAD = "type: mad\nparams: {window_size: 100, n_sigma: 5, use_weighted: false, min_samples: 10}"


def metric(name: str, db: Path, start: str | None = None, window: str = "100") -> str:
    """An hourly metric on src (no series column), from `start` if given."""
    start_time = f', start_time: "{start}"' if start else ""
    detector = MAD.replace("window_size: 100", f"window_size: {window}")
    return sqlite_metric(name, db, schedule=f"{{interval: 1h{start_time}}}", detector=detector)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    db = tmp_path / "src.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    rows = [(T0 + i * HOUR, 100.0 + i % 5) for i in range(30)] + [
        (T0 + 30 * HOUR, 900.0),
        (T0 + 31 * HOUR, 950.0),
    ]
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", rows)
    conn.commit()
    conn.close()
    start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(T0))
    write(tmp_path / "metrics.d" / "orders.yaml", metric("orders", db, start))
    d = Daemon(make_settings(tmp_path))
    await d.start()
    d.scheduler.pause()  # the test drives runs itself, at explicit times
    yield d
    d.scheduler.shutdown(wait=False)
    await d.close()


async def test_changed_metric_keeps_state_unless_its_detectors_changed(
    daemon: Daemon, tmp_path: Path
) -> None:
    # Backfill up to period 30 (no alerts), then the spike at 30 fires when judged live.
    # `at` is a minute past the hour: beyond any per-metric offset (at most 30 s).
    await daemon.run_metric("orders", at=T0 + 30 * HOUR + 60)
    await daemon.history.settled()  # the first start's history loads beside the live run
    await daemon.run_metric("orders", at=T0 + 31 * HOUR + 60)
    assert daemon.slots["orders"].runtime.states[""].status is Status.FIRING
    assert len(await firing_alerts(daemon)) == 1

    path = tmp_path / "metrics.d" / "orders.yaml"
    path.write_text(path.read_text().replace("type: log", "type: log\n  params: {level: error}"))
    result = await daemon.reload("test")
    assert result["changed"] == 1
    assert daemon.slots["orders"].runtime.states[""].status is Status.FIRING  # carried over
    await daemon.run_metric("orders", at=T0 + 32 * HOUR + 60)  # still anomalous
    assert len(await firing_alerts(daemon)) == 1  # no second FIRING

    path.write_text(path.read_text().replace("n_sigma: 5", "n_sigma: 6"))
    result = await daemon.reload("test")
    assert result["changed"] == 1
    assert daemon.slots["orders"].runtime.states == {}
    assert ("orders", "") not in await daemon.store.load_states()


async def test_a_new_interval_or_timezone_resets_the_alert_state(daemon: Daemon, tmp_path: Path) -> None:
    """Issue 12, bug 5: a state judged on the old grid must not carry to a new one."""
    await daemon.run_metric("orders", at=T0 + 30 * HOUR + 60)
    await daemon.history.settled()  # the first start's history loads beside the live run
    await daemon.run_metric("orders", at=T0 + 31 * HOUR + 60)
    assert daemon.slots["orders"].runtime.states[""].status is Status.FIRING
    path = tmp_path / "metrics.d" / "orders.yaml"
    for old, new in (
        ("interval: 1h", "interval: 45m"),
        ("interval: 45m,", "interval: 45m, timezone: Europe/Berlin,"),
    ):
        path.write_text(path.read_text().replace(old, new))
        assert new in path.read_text()
        result = await daemon.reload("test")
        assert result["changed"] == 1 and result["successful"], result
        assert daemon.slots["orders"].runtime.states == {}
        assert ("orders", "") not in await daemon.store.load_states()
    # Stored hourly points off the 45-minute grid do not enter the new grid's windows.
    rt = daemon.slots["orders"].runtime
    await rt._load_windows(T0 + 40 * HOUR)
    times = rt.memory.windows[""].history().times
    assert times.size > 0 and all(rt.grid.floor(int(t)) == int(t) for t in times)


async def test_a_busy_run_is_skipped_and_counted(tmp_path: Path) -> None:
    release = asyncio.Event()
    requests = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        await release.wait()
        return web.json_response({"value": 1})

    async with http_server(slow, method="GET", path="/") as base:
        http_metric(tmp_path, "slow", f"{base}/")
        try:
            async with running(tmp_path, run_timeout="20s") as d:
                async with asyncio.timeout(20):
                    while d.telemetry.missed.labels("slow").get() < 2:
                        await asyncio.sleep(0.05)
                assert requests == 1  # never stacked: one run in flight, later ones skipped
                release.set()
                async with asyncio.timeout(20):
                    while d.slots["slow"].runtime.status.runs < 1:
                        await asyncio.sleep(0.05)
                assert d.slots["slow"].runtime.status.state == "ok"
        finally:
            release.set()


async def test_a_run_cancelled_by_its_timeout_is_counted_as_a_failed_run(tmp_path: Path) -> None:
    """Issue 12, bug 1: the timeout cancelled the run before its bookkeeping, so the API
    showed an error with 0 runs and 0 failures."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"value": 1})

    async with http_server(hang, method="GET", path="/") as base:
        http_metric(tmp_path, "hang", f"{base}/")
        try:
            async with running(tmp_path, run_timeout="1s") as d:
                status = d.slots["hang"].runtime.status
                async with asyncio.timeout(20):
                    while status.failures < 1:
                        await asyncio.sleep(0.05)
                assert status.runs >= 1 and status.state == "error"
                assert status.last_run_at is not None and (status.last_duration or 0) >= 0.9
                assert "exceeded 1s" in (status.last_error or "")
                api = d.slots["hang"].runtime.api()
                assert api["failures"] >= 1 and api["runs"] >= api["failures"]
        finally:
            release.set()


async def test_a_sighup_reload_that_fails_while_applying_is_kept_logged_and_counted(tmp_path: Path) -> None:
    """Issue 12, bug 3: the SIGHUP task was not kept, so an exception raised while applying
    (past the load's own error handling) was never retrieved and reload success stayed 1."""
    write(
        tmp_path / "metrics.d" / "m.yaml",
        "name: m\ncollector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n",
    )
    async with running(tmp_path) as d:
        assert d.telemetry.reload_ok._value.get() == 1

        async def broken_apply(*args: object) -> None:
            raise RuntimeError("a bug half-way through applying")

        d.metrics.apply = broken_apply  # type: ignore[method-assign,assignment]
        task = d.reload_soon()
        assert task in d.reloads.tasks
        with pytest.raises(RuntimeError):
            await task
        await asyncio.sleep(0)  # the done callback runs on the next loop turn
        assert task not in d.reloads.tasks and task.exception() is not None
        assert d.telemetry.reload_ok._value.get() == 0


async def test_a_metric_whose_runtime_fails_to_build_shows_the_error_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12, bug 4: it showed as "disabled" and was never retried until its file changed."""
    from detectkd.runtime.runner import MetricRuntime as real

    attempts = 0

    def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("resource temporarily unavailable")
        return real(*args, **kwargs)

    monkeypatch.setattr("detectkd.runtime.slot.MetricRuntime", flaky)
    write(
        tmp_path / "metrics.d" / "m.yaml",
        "name: m\ncollector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n",
    )
    async with running(tmp_path) as d:
        (item,) = d.api_metrics()
        assert item["state"] == "error" and "resource temporarily unavailable" in (item["last_error"] or "")
        assert "m" not in d.slots
        assert d.metrics.retry_unbuilt(now=0.0) == []  # not before its retry time
        assert d.metrics.retry_unbuilt(now=time.monotonic() + 3600) == ["m"]
        assert "m" in d.slots and d.scheduler.get_job("m") is not None
        assert d.api_metrics()[0]["state"] != "error"


async def test_daily_retention_deletes_old_rows_but_never_inside_a_window(tmp_path: Path) -> None:
    from detectkd.collectors.points import Point
    from detectkd.detectors.base import Result
    from detectkd.storage.base import RunRecord, StoredDetection

    day = 86400
    now = T0 + 100 * day
    retention = "storage:\n  retention_days: 10\n  params: {detections_retention_days: 5}\n"
    write(tmp_path / "metrics.d" / "short.yaml", metric("short", tmp_path / "none.db") + retention)
    write(tmp_path / "metrics.d" / "wide.yaml", metric("wide", tmp_path / "none.db", window="60d"))
    d = Daemon(make_settings(tmp_path, retention_days=30))
    await d.start()
    d.scheduler.pause()
    try:
        assert d.scheduler.get_job("@retention") is not None  # the daily job is scheduled
        periods = [now - k * day for k in (90, 40, 20, 8, 3, 1)]
        for name in ("short", "wide"):
            points = [Point("", p, 1.0) for p in periods]
            dets = [StoredDetection("", p, Result("mad", 1.0, False, 0.1, 1.0, 0.0, 2.0)) for p in periods]
            await d.store.commit(RunRecord(name, points=points, detections=dets))
        deleted = await d.retention_pass(now)
        kept = {
            n: [p.period for p in (await d.store.read_points(n, None, 0, now + 1)).get("", [])]
            for n in ("short", "wide")
        }
        # short: its own 10 days for points, 5 days for detections.
        assert kept["short"] == [now - 8 * day, now - 3 * day, now - day]
        det_short = [x.period for x in await d.store.read_detections("short", 0, now + 1)]
        assert det_short == [now - 3 * day, now - day]
        # wide: the daemon's 30 days, but its mad window is 60 days: nothing inside it goes.
        assert kept["wide"] == [now - k * day for k in (40, 20, 8, 3, 1)]
        assert deleted == (3 + 4) + (1 + 1)
        assert d.telemetry.retention_deleted._value.get() == deleted
    finally:
        d.scheduler.shutdown(wait=False)
        await d.close()


async def test_reordered_alerters_deliver_pending_rows_to_their_own_channel(
    daemon: Daemon, tmp_path: Path, receiver: Receiver
) -> None:
    """Issue 12, bug 6: rows named the alerter by index; reordering sent them to the other one."""
    hook = receiver.url.rsplit("/", 1)[0]
    path = tmp_path / "metrics.d" / "orders.yaml"
    alerters = [f"  - {{type: webhook, params: {{url: '{hook}/{n}'}}}}" for n in ("first", "second")]
    path.write_text(
        path.read_text().replace("alerter:\n  type: log\n", "alerters:\n" + "\n".join(alerters) + "\n")
    )
    assert (await daemon.reload("test"))["successful"]
    receiver.fail_with, receiver.fail_paths = 503, {"/second"}  # its FIRING stays pending
    await daemon.run_metric("orders", at=T0 + 30 * HOUR + 60)
    await daemon.history.settled()  # the first start's history loads beside the live run
    await daemon.run_metric("orders", at=T0 + 31 * HOUR + 60)
    await daemon.dispatcher.deliver_due()
    pending = await daemon.store.outbox_pending()
    assert len(pending) == 1 and receiver.paths == ["/first"]
    path.write_text(path.read_text().replace("\n".join(alerters), "\n".join(reversed(alerters))))
    assert (await daemon.reload("test"))["changed"] == 1
    receiver.fail_with = None
    for item in pending:  # due now, not after the back-off
        await daemon.store.outbox_retry(item.id, "test", 0.0, dead=False)
    await daemon.dispatcher.deliver_due()
    assert receiver.paths == ["/first", "/second"]  # once each, never /first twice
    assert not await daemon.store.outbox_pending()


async def test_a_rotated_webhook_url_takes_its_pending_rows_along(
    daemon: Daemon, tmp_path: Path, receiver: Receiver
) -> None:
    hook = receiver.url.rsplit("/", 1)[0]
    path = tmp_path / "metrics.d" / "orders.yaml"
    path.write_text(path.read_text().replace("type: log", f"type: webhook\n  params: {{url: '{hook}/old'}}"))
    assert (await daemon.reload("test"))["successful"]
    receiver.fail_with = 401  # the old URL's token was revoked
    await daemon.run_metric("orders", at=T0 + 30 * HOUR + 60)
    await daemon.history.settled()  # the first start's history loads beside the live run
    await daemon.run_metric("orders", at=T0 + 31 * HOUR + 60)
    (item,) = await daemon.store.outbox_pending()
    path.write_text(path.read_text().replace(f"{hook}/old", f"{hook}/new"))
    assert (await daemon.reload("test"))["changed"] == 1
    receiver.fail_with = None
    await daemon.store.outbox_retry(item.id, "test", 0.0, dead=False)
    await daemon.dispatcher.deliver_due()
    assert receiver.paths == ["/new"] and not await daemon.store.outbox_pending()


async def test_a_reload_that_fails_to_reset_state_leaves_the_previous_set_running(
    daemon: Daemon, tmp_path: Path
) -> None:
    """Issue 12, bug 3: a StorageError half-way left a half-applied metric set."""
    from detectkd.errors import StorageError

    write(tmp_path / "metrics.d" / "visits.yaml", metric("visits", tmp_path / "src.db"))
    assert (await daemon.reload("test"))["added"] == 1
    before = dict(daemon.slots)
    path = tmp_path / "metrics.d" / "orders.yaml"
    path.write_text(path.read_text().replace("n_sigma: 5", "n_sigma: 6"))  # resets orders' state
    (tmp_path / "metrics.d" / "visits.yaml").unlink()  # removes visits

    async def failing_drop(metric: str) -> None:
        raise StorageError("store went away")

    daemon.store.drop_states = failing_drop  # type: ignore[method-assign]
    result = await daemon.reload("test")
    assert not result["successful"] and "store went away" in result["errors"][0]
    assert daemon.slots == before  # the same slots: nothing removed, nothing swapped
    assert (
        daemon.specs["orders"].fingerprint == before["orders"].spec.fingerprint and "visits" in daemon.specs
    )
    assert daemon.scheduler.get_job("visits") is not None
    assert daemon.telemetry.reload_ok._value.get() == 0


async def test_a_sighup_storm_is_one_reload_after_the_one_running(tmp_path: Path) -> None:
    """Issue 13: 50 SIGHUPs in a second ran 50 full reloads one after another."""
    write(
        tmp_path / "metrics.d" / "m.yaml",
        "name: m\ncollector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n",
    )
    async with running(tmp_path) as d:
        loads = 0
        release = asyncio.Event()
        load = d._load

        async def slow_load() -> Any:
            nonlocal loads
            loads += 1
            await release.wait()
            return await load()

        d._load = slow_load  # type: ignore[method-assign]
        first = d.reload_soon()
        async with asyncio.timeout(5):  # the first reload holds the lock and waits in its load
            while loads < 1:
                await asyncio.sleep(0)
        storm = [d.reload_soon() for _ in range(50)]
        assert len(set(storm)) == 1 and storm[0] is not first  # merged into one waiting reload
        release.set()
        results = await asyncio.gather(first, *storm)
        assert loads == 2 and all(r["successful"] for r in results)
        assert d.telemetry.reloads_merged._value.get() == 49


async def test_bad_silences_over_http_are_400_with_a_json_error(tmp_path: Path) -> None:
    """Issue 13: `"duration": "99999999999d"` gave HTTP 500 with a plain-text traceback."""
    import aiohttp

    from detectkd.http.app import make_app

    write(
        tmp_path / "metrics.d" / "m.yaml",
        "name: m\ncollector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n",
    )
    import bcrypt

    from detectkd.http.webconfig import WebConfig

    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    async with running(tmp_path, lifecycle_api=True) as d:
        runner = web.AppRunner(make_app(d, WebConfig(basic_auth_users={"ops": hashed})))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession(headers=basic_auth("ops", "pw")) as http:
                for body in (
                    {"matchers": ["metric=m"], "duration": "99999999999d"},
                    {"matchers": ["metric=m"], "ends_at": "1e400"},
                    {"no": "matchers"},
                    [1, 2],
                ):
                    async with http.post(f"{base}/api/v1/silences", json=body) as resp:
                        assert resp.status == 400, body
                        assert resp.content_type == "application/json" and "error" in await resp.json()
                json_type = {"Content-Type": "application/json"}
                async with http.post(f"{base}/api/v1/silences", data=b"{not json", headers=json_type) as resp:
                    assert resp.status == 400 and "error" in await resp.json()
                async with http.post(f"{base}/api/v1/silences", data=b"{not json") as resp:
                    assert resp.status == 415 and "application/json" in (await resp.json())["error"]
        finally:
            await runner.cleanup()
        assert d.silences.items == {}


async def test_the_metrics_api_filters_and_pages(tmp_path: Path) -> None:
    import aiohttp

    from detectkd.http.app import make_app

    for i in range(7):
        tags = "[shop]" if i % 2 else "[ops]"
        write(
            tmp_path / "metrics.d" / f"m{i}.yaml",
            f"name: m{i}\ntags: {tags}\nenabled: {str(i != 6).lower()}\n"
            "collector: {type: http, params: {url: 'http://127.0.0.1:9/'}}\n",
        )
    async with running(tmp_path) as d:
        runner = web.AppRunner(make_app(d))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/metrics"
        try:
            async with aiohttp.ClientSession() as http:

                async def get(query: str) -> dict[str, Any]:
                    async with http.get(f"{base}?{query}") as resp:
                        assert resp.status == 200
                        data: dict[str, Any] = await resp.json()
                        return data

                page = await get("limit=3")
                assert [m["name"] for m in page["metrics"]] == ["m0", "m1", "m2"]
                assert page["total"] == 7 and page["next_offset"] == 3
                last = await get("limit=3&offset=6")
                assert [m["name"] for m in last["metrics"]] == ["m6"] and last["next_offset"] is None
                shop = await get("tag=shop")
                assert [m["name"] for m in shop["metrics"]] == ["m1", "m3", "m5"]
                assert [m["name"] for m in (await get("state=disabled"))["metrics"]] == ["m6"]
                assert [m["name"] for m in (await get("name=m4"))["metrics"]] == ["m4"]
                async with http.get(f"{base}?limit=x") as resp:
                    assert resp.status == 400
        finally:
            await runner.cleanup()


async def test_a_stop_gives_runs_in_flight_their_grace(tmp_path: Path) -> None:
    """Issue 13: SIGTERM cancelled runs in flight at once (the scheduler's executor cancelled
    them before the drain) instead of letting them finish within `shutdown_grace`."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.json_response({"value": 1})

    async with http_server(slow, method="GET", path="/") as base:
        http_metric(tmp_path, "slow", f"{base}/")
        d = Daemon(make_settings(tmp_path, shutdown_grace="20s", run_timeout="30s"))
        await d.start()
        serving = asyncio.create_task(d.serve())
        try:
            async with asyncio.timeout(20):
                await arrived.wait()  # a run is in flight
            d.stop_event.set()
            await asyncio.sleep(0.2)  # shutdown has begun; the run must still be alive
            release.set()
            async with asyncio.timeout(20):
                await serving
        finally:
            release.set()
        status = d.slots["slow"].runtime.status if "slow" in d.slots else None
        assert status is not None and status.failures == 0 and status.runs >= 1, status
