"""A FIRING's why (runtime.explain) through the real pipeline: a SQLite source, the SQLite
store, the runner. Change, rarity and the last similar episode with its label; a restart
reads them back; a failing label lookup costs the line, never the alert."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from detectkd.alerting.alert import Alert
from detectkd.alerting.feedback import Feedback
from detectkd.alerting.message import default_text
from detectkd.errors import StorageError
from detectkd.resources import Resources
from detectkd.runtime.daemon import Daemon
from detectkd.runtime.replay import replay
from detectkd.runtime.runner import MetricRuntime
from detectkd.specs.loader import MetricSpec, load_metrics
from detectkd.storage.sqlite import SqliteStore
from tests.support.files import write
from tests.support.inprocess import running, served
from tests.support.metrics import MAD, sqlite_metric
from tests.support.runtimes import runtime

STEP = 600
T0 = 1_795_000_000 - 1_795_000_000 % 86400  # a UTC midnight
FIRST, SECOND = 200, 230  # the spikes' periods (200 periods: 33 hours of history before the first)


def normal(n: int) -> list[float]:
    return [100.0 + (i % 7) - 3 for i in range(n)]


class Env:
    def __init__(self, tmp: Path, store: SqliteStore, resources: Resources) -> None:
        self.tmp, self.store, self.resources = tmp, store, resources
        db = tmp / "src.db"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
        values = normal(260)
        values[FIRST] = values[SECOND] = 900.0
        conn.executemany(
            "INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)",
            [(T0 + i * STEP, v) for i, v in enumerate(values)],
        )
        conn.commit()
        conn.close()
        schedule = "{interval: 10m, max_catch_up: 500}"
        write(tmp / "m" / "orders.yaml", sqlite_metric("orders", db, schedule=schedule, detector=MAD))
        result = load_metrics([tmp / "m"], None, env={})
        assert result.ok, result.all_errors()
        self.spec: MetricSpec = result.metrics["orders"]

    async def runtime(self) -> MetricRuntime:
        states = {s: st for (m, s), st in (await self.store.load_states()).items() if m == "orders"}
        return runtime(self.spec, self.store, self.resources, None, states)

    async def firing(self) -> list[Alert]:
        rows = await self.store.outbox_pending()
        return [a for r in rows if (a := Alert.from_json(r.payload)).status == "firing"]

    async def label(self, period: int, label: str) -> None:
        fb = Feedback("orders", "", period, label, period, "ops", time.time())
        await self.store.feedback_save("orders", "", period, fb.to_json())


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    store = SqliteStore(tmp_path / "dtk.db")
    await store.open()
    resources = Resources()
    yield Env(tmp_path, store, resources)
    await resources.close()
    await store.close()


async def until(rt: MetricRuntime, first: int, last: int) -> None:
    """Scheduled runs, one period each, for periods first..last."""
    for i in range(first, last + 1):
        await rt.run(T0 + (i + 1) * STEP)


async def test_the_second_spike_says_how_rare_and_names_the_labelled_first(env: Env) -> None:
    rt = await env.runtime()
    await rt.run(T0 + STEP)  # the first start: the detectors' window, loaded without notifying
    await until(rt, 1, FIRST)
    [first] = await env.firing()
    assert first.period == T0 + FIRST * STEP
    assert first.extra["change"] == "value 900, 800 % above expected 100"
    assert first.extra["rarity"] == "larger than any of its deviations in the last day"
    assert (first.extra["rarity_percent"], first.extra["rarity_days"]) == (100.0, 1)
    assert "precedent" not in first.extra  # nothing before it
    await env.label(first.started_at, "incident")
    await until(rt, FIRST + 1, SECOND)
    second = (await env.firing())[-1]
    assert second.period == T0 + SECOND * STEP
    assert second.extra["precedent"] == "last similar: 2026-11-19 09:20, marked real incident"
    assert (
        second.extra["precedent_at"] == "2026-11-19T09:20:00Z"
        and second.extra["precedent_label"] == "incident"
    )
    # 230 earlier scores, one of them (the first spike) in the same bin: beyond 229 of 230.
    assert second.extra["rarity"] == "beyond 99.5 % of its deviations in the last day"
    text = default_text(second)
    assert (
        "Why: value 900, 800 % above expected 100; beyond 99.5 % of its deviations in the last day; "
        "last similar: 2026-11-19 09:20, marked real incident" in text
    )


async def test_a_restart_reads_the_scores_and_the_precedent_back(env: Env) -> None:
    rt = await env.runtime()
    await rt.run(T0 + STEP)
    await until(rt, 1, FIRST + 5)
    await env.label(T0 + FIRST * STEP, "false_alarm")
    again = await env.runtime()  # a restart: memory empty, states and detections stored
    await until(again, FIRST + 6, SECOND)
    second = (await env.firing())[-1]
    assert second.extra["precedent"] == "last similar: 2026-11-19 09:20, marked false alarm"
    assert (
        second.extra["rarity"] == "beyond 99.5 % of its deviations in the last day"
    )  # the same as without it


async def test_a_failing_label_lookup_costs_the_line_not_the_alert(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await env.runtime()
    await rt.run(T0 + STEP)
    await until(rt, 1, SECOND - 1)

    async def broken(metric: str, series: str, since: int, until: int, limit: int) -> list[str]:
        raise StorageError("sqlite store: database is locked")

    monkeypatch.setattr(env.store, "feedback_near", broken)
    await until(rt, SECOND, SECOND)
    second = (await env.firing())[-1]
    assert second.period == T0 + SECOND * STEP and "change" in second.extra and "rarity" in second.extra
    assert "precedent" not in second.extra and rt.status.state != "error"


async def test_too_little_history_says_no_rarity(env: Env) -> None:
    rt = await env.runtime()
    await rt.run(T0 + 181 * STEP)  # a first start at 180: the detectors' window before it, 100 periods
    await until(rt, 181, FIRST)
    [first] = await env.firing()
    assert "change" in first.extra and "rarity" not in first.extra  # 120 scores, but 20 hours


HOUR = 3600
H0 = 1_795_000_000 - 1_795_000_000 % 86400


async def test_the_daemon_names_the_first_spike_labelled_over_the_api_in_the_second(tmp_path: Path) -> None:
    """The in-process daemon: history from `start_time`, a spike, its label POSTed to the
    feedback API, a second spike whose FIRING says how rare it is and names the first."""
    db = tmp_path / "src.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    values = normal(200)
    values[150] = values[180] = 10.0  # two drops
    conn.executemany(
        "INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)",
        [(H0 + i * HOUR, v) for i, v in enumerate(values)],
    )
    conn.commit()
    conn.close()
    start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(H0))
    write(
        tmp_path / "metrics.d" / "orders.yaml",
        sqlite_metric("orders", db, schedule=f'{{interval: 1h, start_time: "{start}"}}'),
    )
    clock = lambda: H0 + 150 * HOUR + 60  # noqa: E731  # the history loader's NOW: the first run's
    async with running(tmp_path, clock, lifecycle_api=True) as d, served(d, "alice") as (http, base):
        d.scheduler.pause()  # the test drives the runs, a minute past each hour
        await d.run_metric("orders", at=H0 + 150 * HOUR + 60)
        await d.history.settled()  # the first start's history (periods 0..149) loads beside it
        await d.run_metric("orders", at=H0 + 151 * HOUR + 60)
        [first] = [a for a in await fired(d)]
        assert first.period == H0 + 150 * HOUR and "precedent" not in first.extra
        assert first.extra["change"] == "value 10, 90 % below expected 100"
        body = {"metric": "orders", "series": "", "period": first.started_at, "label": "incident"}
        async with http.post(f"{base}/api/v1/feedback", json=body) as r:
            assert r.status == 201
        for i in range(152, 182):
            await d.run_metric("orders", at=H0 + i * HOUR + 60)
        second = (await fired(d))[-1]
        # The metric page's data: every anomaly says its change, each episode its FIRING's why.
        query = f"since={H0 + 140 * HOUR}&until={H0 + 190 * HOUR}"
        async with http.get(f"{base}/api/v1/metrics/orders/series?{query}") as r:
            page = await r.json()
        changes = [(a["t"], a["change"]) for a in page["series"][""]["anomalies"]]
        assert changes == [(H0 + t * HOUR, "value 10, 90 % below expected 100") for t in (150, 180)]
        whys = {e["started_at"]: e["why"] for e in page["alerts"]}
        assert whys[H0 + 180 * HOUR] == {k: second.extra[k] for k in ("change", "rarity", "precedent")}
        assert set(whys[H0 + 150 * HOUR]) == {"change", "rarity"}
    assert second.period == H0 + 180 * HOUR
    assert second.extra["precedent"] == "last similar: 2026-11-24 06:00, marked real incident"
    assert (
        second.extra["rarity"] == "beyond 99.3 % of its deviations in the last 6 days"
    )  # 160 judged hours (20..179): the first 20 warm MAD up


async def fired(d: Daemon) -> list[Alert]:
    """The FIRING notifications the daemon's outbox holds, sent or not, oldest first."""
    rows = await d.store.outbox_history("orders", 0)
    return [a for r in rows if (a := Alert.from_json(r.payload)).status == "firing"]


async def test_a_backtest_explains_as_the_live_runs_did_without_labels(env: Env) -> None:
    """`detectkd backtest`'s engine (runtime.replay) on the same source: the same change and
    rarity as the live runs above, the precedent without a label (a replay reads none)."""
    await env.label(T0 + FIRST * STEP, "incident")  # in the daemon's store: not the replay's
    alerts: list[Alert] = []
    await replay(
        env.spec, T0 - 100 * STEP, T0 + 240 * STEP, lambda run: alerts.extend(run.alerts), quiet_gc=False
    )
    fired = [a for a in alerts if a.status == "firing" and a.kind == "anomaly"]
    assert [a.period for a in fired] == [T0 + FIRST * STEP, T0 + SECOND * STEP]
    assert fired[0].extra["rarity"] == "larger than any of its deviations in the last day"
    second = fired[1].extra
    assert second["change"] == "value 900, 800 % above expected 100"
    assert second["rarity"] == "beyond 99.5 % of its deviations in the last day"
    assert second["precedent"] == "last similar: 2026-11-19 09:20" and second["precedent_label"] == ""


async def test_stored_scores_that_cannot_be_read_cost_the_rarity_only(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await env.runtime()
    await rt.run(T0 + STEP)
    await until(rt, 1, FIRST + 5)

    async def broken(metric: str, since: int, until: int) -> list[object]:
        raise StorageError("sqlite store: disk I/O error")

    monkeypatch.setattr(env.store, "read_detections", broken)
    again = await env.runtime()  # a restart whose read of the stored scores fails
    await until(again, FIRST + 6, SECOND)
    second = (await env.firing())[-1].extra
    assert second["change"] == "value 900, 800 % above expected 100"
    assert second["precedent"] == "last similar: 2026-11-19 09:20, not labelled"
    assert "rarity" not in second  # 25 scores counted since the restart: too few to say
