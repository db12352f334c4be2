"""One metric's pipeline against a real SQLite source and the SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from detectkd.alerting.alert import Alert
from detectkd.errors import CollectError
from detectkd.resources import Resources
from detectkd.runtime.runner import MetricRuntime
from detectkd.specs.loader import MetricSpec, load_metrics
from detectkd.storage.sqlite import SqliteStore
from tests.support.files import write
from tests.support.metrics import MAD, sqlite_metric
from tests.support.runtimes import runtime

STEP = 600
T0 = 1_795_000_000 - 1_795_000_000 % STEP  # a period boundary


MAD4 = MAD.replace("n_sigma: 5", "n_sigma: 4")


def metric(db: Path, consecutive: int = 1, schedule: str = "{interval: 10m, max_catch_up: 50}") -> str:
    """orders: src every 10 minutes, alerts to the log after `consecutive` anomalies."""
    alerter = f"type: log\nconditions: {{consecutive_anomalies: {consecutive}}}"
    return sqlite_metric("orders", db, schedule=schedule, detector=MAD4, alerter=alerter)


@dataclass
class Env:
    tmp: Path
    db: Path
    store: SqliteStore
    resources: Resources

    def spec(self, consecutive: int = 1, extra: str = "") -> MetricSpec:
        write(self.tmp / "m" / "orders.yaml", metric(self.db, consecutive) + extra)
        result = load_metrics([self.tmp / "m"], None, env={})
        assert result.ok, result.all_errors()
        return result.metrics["orders"]

    def put(self, start: int, values: list[float | None]) -> None:
        conn = sqlite3.connect(self.db)
        conn.executemany(
            "INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)",
            [(start + i * STEP, v) for i, v in enumerate(values)],
        )
        conn.commit()
        conn.close()

    async def runtime(self, spec: MetricSpec, link: str | None = None) -> MetricRuntime:
        states = {s: st for (m, s), st in (await self.store.load_states()).items() if m == spec.name}
        return runtime(spec, self.store, self.resources, None, states, link_template=link)

    async def outbox(self) -> list[Alert]:
        return [Alert.from_json(i.payload) for i in await self.store.outbox_pending()]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    db = tmp_path / "src.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    conn.close()
    store = SqliteStore(tmp_path / "dtk.db")
    await store.open()
    resources = Resources()
    yield Env(tmp_path, db, store, resources)
    await resources.close()
    await store.close()


def normal(n: int) -> list[float | None]:
    return [100.0 + (i % 7) - 3 for i in range(n)]


async def test_catch_up_stores_every_period_and_only_the_newest_notifies(env: Env) -> None:
    env.put(T0, normal(40) + [500.0] + normal(5) + [500.0])
    spec = env.spec()
    rt = await env.runtime(spec)
    await rt.run(T0 + 1 * STEP)  # first run: just the newest period, sets the watermark
    report = await rt.run(T0 + 47 * STEP)  # downtime: 46 periods to catch up
    assert len(report.points) == 46
    anomalous = [p.point.period for p in report.points if p.verdict.anomalous]
    assert anomalous == [T0 + 40 * STEP, T0 + 46 * STEP]
    alerts = await env.outbox()
    assert [(a.status, a.period) for a in alerts] == [("firing", T0 + 46 * STEP)]
    assert await env.store.watermark("orders") == T0 + 46 * STEP
    stored = await env.store.read_points("orders", "", T0, T0 + 100 * STEP)
    assert len(stored[""]) == 47


async def test_restart_sends_no_duplicate_and_resolves_later(env: Env) -> None:
    env.put(T0, normal(30) + [500.0, 100.0])
    spec = env.spec()
    rt = await env.runtime(spec)
    await rt.run(T0 + STEP)
    await rt.run(T0 + 30 * STEP)  # catch up 29 normal periods
    await rt.run(T0 + 31 * STEP)
    assert [a.status for a in await env.outbox()] == ["firing"]
    # "Restart": a fresh runtime restored from storage re-runs the same period.
    again = await env.runtime(spec)
    await again.run(T0 + 31 * STEP)
    assert [a.status for a in await env.outbox()] == ["firing"]
    await again.run(T0 + 32 * STEP)
    assert [a.status for a in await env.outbox()] == ["firing", "resolved"]
    alerts = await env.outbox()
    assert alerts[0].key.replace("firing", "resolved") == alerts[1].key


async def test_history_is_loaded_once_then_extended_in_memory(env: Env) -> None:
    env.put(T0, normal(60))
    spec = env.spec()
    first = await env.runtime(spec)
    await first.run(T0 + STEP)
    await first.run(T0 + 60 * STEP)  # catch-up stores 59 more periods
    fresh = await env.runtime(spec)
    reads = 0
    points, window = env.store.read_points, env.store.read_window

    async def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        return await points(*args, **kwargs)

    async def counting_window(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        return await window(*args, **kwargs)

    env.store.read_points = counting  # type: ignore[method-assign]
    env.store.read_window = counting_window  # type: ignore[method-assign]
    for i in range(3):
        await fresh.run(T0 + (61 + i) * STEP)
    assert reads == 1
    assert len(fresh.memory.windows[""]) >= 30


async def test_no_rows_is_missing_data_stored_as_null(env: Env) -> None:
    spec = env.spec()
    rt = await env.runtime(spec)
    report = await rt.run(T0 + STEP)
    # The first start asked for the detectors' window too (warm-up): nothing anywhere.
    assert len(report.points) > 1 and {p.point.value for p in report.points} == {None}
    assert report.points[-1].point.period == T0
    stored = await env.store.read_points("orders", "", T0, T0 + STEP)
    assert stored[""][0].value is None
    assert rt.status.state == "ok"


async def test_garbage_is_an_error_that_keeps_nothing_half_done(env: Env) -> None:
    conn = sqlite3.connect(env.db)
    conn.execute("INSERT INTO src VALUES (datetime(?, 'unixepoch'), 'lots')", (T0,))
    conn.commit()
    conn.close()
    rt = await env.runtime(env.spec())
    with pytest.raises(CollectError, match="holds text, not a number \\(4 characters\\)"):
        await rt.run(T0 + STEP)
    assert rt.status.state == "error" and "holds text" in (rt.status.last_error or "")
    assert (rt.status.last_error or "").startswith("orders: ")
    assert await env.store.watermark("orders") is None


async def test_backfill_from_start_time_loads_history_without_alerts(env: Env) -> None:
    env.put(T0, normal(30) + [900.0] + normal(5))
    import datetime as dt

    start = dt.datetime.fromtimestamp(T0, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    schedule = f"{{interval: 10m, max_catch_up: 5, start_time: '{start}', batch_load_days: 1}}"
    write(env.tmp / "m" / "orders.yaml", metric(env.db, schedule=schedule))
    spec = load_metrics([env.tmp / "m"], None, env={}).metrics["orders"]
    rt = await env.runtime(spec)
    report = await rt.run(T0 + 36 * STEP)
    assert len(report.points) == 36  # not capped by max_catch_up: it is a backfill
    assert any(p.verdict.anomalous for p in report.points)
    assert await env.outbox() == []  # history never notifies


async def test_detectk_style_single_period_query_runs_once_per_period_in_catch_up(env: Env) -> None:
    # DetectK's sql__mysql_orders.yaml shape: one aggregate, labelled with the period's end.
    conn = sqlite3.connect(env.db)
    conn.execute("CREATE TABLE orders (created_at TEXT)")
    conn.executemany(
        "INSERT INTO orders VALUES (datetime(?, 'unixepoch'))",
        [(T0 + i * STEP + 5,) for i in range(6) for _ in range(i + 1)],  # i+1 orders in period i
    )
    conn.commit()
    conn.close()
    text = metric(env.db).replace(
        "SELECT period_time, value FROM src\n      WHERE period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'",
        "SELECT datetime('{{ period_start }}', '+10 minutes') AS period_time, COUNT(*) AS value FROM orders\n"
        "      WHERE created_at >= '{{ period_start }}' AND created_at < '{{ period_finish }}'",
    )
    write(env.tmp / "m" / "orders.yaml", text)
    spec = load_metrics([env.tmp / "m"], None, env={}).metrics["orders"]
    assert spec.collector.multi_period is False  # auto: no GROUP BY on the timestamp column
    rt = await env.runtime(spec)
    await rt.run(T0 + STEP)
    report = await rt.run(T0 + 6 * STEP)  # catch-up over 5 periods: 5 queries
    assert [(p.point.period - T0, p.point.value) for p in report.points] == [
        (i * STEP, float(i + 1)) for i in range(1, 6)
    ]


async def test_a_dead_source_error_names_the_metric_and_profile(env: Env) -> None:
    write(
        env.tmp / "profiles.yaml",
        f"profiles:\n  shop:\n    type: sqlite\n    database: {env.tmp / 'gone.db'}\n",
    )
    write(
        env.tmp / "p" / "orders.yaml",
        "name: orders\ncollector:\n  profile: shop\n  params: {query: 'SELECT 1 AS value'}\n",
    )
    spec = load_metrics([env.tmp / "p"], env.tmp / "profiles.yaml", env={}).metrics["orders"]
    rt = await env.runtime(spec)
    with pytest.raises(CollectError):
        await rt.run(T0 + STEP)
    assert (rt.status.last_error or "").startswith("orders (profile shop): cannot open sqlite database")


async def test_alerts_carry_the_generator_url_link(env: Env) -> None:
    from detectkd.alerting.message import default_text

    env.put(T0, [*normal(30), 500.0])
    rt = await env.runtime(
        env.spec(), link="https://grafana.example/d/x?var-metric={{ metric }}&from={{ period_start }}"
    )
    await rt.run(T0 + STEP)
    await rt.run(T0 + 31 * STEP)
    (alert,) = await env.outbox()
    assert alert.url == f"https://grafana.example/d/x?var-metric=orders&from={T0 + 30 * STEP}"
    assert f"Link: {alert.url}" in default_text(alert)


MULTI = dict(
    columns="period_time, host, value",
    table="multi",
    collector="series_columns: [host]\nmulti_period: true",
    detector="type: mad\nparams: {window_size: 100, n_sigma: 4, min_samples: 20}",
    alerter="type: log\nconditions: {no_data_periods: 3}",
)


async def test_a_series_that_disappears_goes_nodata_then_recovers(env: Env) -> None:
    conn = sqlite3.connect(env.db)
    conn.execute("CREATE TABLE multi (period_time TEXT, host TEXT, value REAL)")
    rows = [
        (T0 + i * STEP, h, 100.0 + i % 5)
        for i in range(40)
        for h in ("a", "b")
        if h == "a" or not 30 <= i < 36
    ]
    conn.executemany("INSERT INTO multi VALUES (datetime(?, 'unixepoch'), ?, ?)", rows)
    conn.commit()
    conn.close()
    write(
        env.tmp / "h" / "hosts.yaml",
        sqlite_metric("hosts", env.db, schedule="{interval: 10m, max_catch_up: 50}", **MULTI),
    )
    result = load_metrics([env.tmp / "h"], None, env={})
    assert result.ok, result.all_errors()
    spec = result.metrics["hosts"]

    rt = await env.runtime(spec)
    await rt.run(T0 + STEP)
    await rt.run(T0 + 31 * STEP)  # b's first empty period is 30
    assert await env.outbox() == []
    # A restart in the middle of the gap: the empty streak is stored, not counted in memory.
    rt = await env.runtime(spec)
    await rt.run(T0 + 32 * STEP)
    assert rt.api()["series"]["host=b"] == "ok" and rt.states["host=b"].empty_streak == 2
    report = await rt.run(T0 + 33 * STEP)
    assert rt.api()["series"] == {"host=a": "ok", "host=b": "nodata"}
    alerts = await env.outbox()
    assert [(a.kind, a.status, a.series, a.started_at) for a in alerts] == [
        ("nodata", "firing", "host=b", T0 + 30 * STEP)
    ]
    assert alerts[0].key == f"hosts|host=b|nodata:firing|{T0 + 30 * STEP}"
    assert [p.point.value for p in report.points if p.point.series == "host=b"] == [None]
    # Judged, not stored: a vanished series does not fill the store with NULLs.
    stored = await env.store.read_points("hosts", "host=b", T0 + 30 * STEP, T0 + 40 * STEP)
    assert stored == {}
    with sqlite3.connect(env.tmp / "dtk.db") as conn:
        counts = dict(
            conn.execute(
                "SELECT series, count(*) FROM dtk_detections WHERE period >= ? AND period < ? GROUP BY series",
                (T0 + 30 * STEP, T0 + 36 * STEP),
            ).fetchall()
        )
    assert counts == {"host=a": 3}  # periods 30-32 were judged; nothing stored for the absent b
    await rt.run(T0 + 37 * STEP)  # b is back at period 36
    alerts = await env.outbox()
    assert [(a.kind, a.status) for a in alerts] == [("nodata", "firing"), ("nodata", "resolved")]
    assert rt.api()["series"] == {"host=a": "ok", "host=b": "ok"}


async def test_a_maintenance_window_holds_alerts_across_the_dst_change(env: Env) -> None:
    """Nightly 01:00-04:00 Europe/Berlin, on the night clocks go forward (2026-03-29).

    That night the window is 00:00-02:00 UTC. An episode inside it is never sent; one
    that outlasts it is sent at 04:00 local (a fixed UTC+1 window would hold it to 03:00
    UTC and swallow it, since it resolves at 02:40 UTC).
    """
    from datetime import UTC, datetime

    from detectkd.alerting.silences import Silences, make_window, new_silence

    def hhmm(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")

    def at(hhmm: str) -> int:
        h, m = map(int, hhmm.split(":"))
        return int(datetime(2026, 3, 29, h, m, tzinfo=UTC).timestamp())

    start = at("00:00") - 48 * STEP  # 8 h of normal history first
    anomalous = {
        at(t) for t in ("00:20", "00:30", "01:30", "01:40", "01:50", "02:00", "02:10", "02:20", "02:30")
    }
    n = (at("03:30") - start) // STEP
    env.put(start, [500.0 if start + i * STEP in anomalous else v for i, v in enumerate(normal(n))])
    silences = Silences()
    nightly = make_window(["mon-sun"], ["01:00-04:00"], "Europe/Berlin")
    silences.replace_all([new_silence(["metric=orders"], start, None, "nightly ETL", window=nightly)])
    spec = env.spec(extra="")
    rt = runtime(spec, env.store, env.resources, None, {}, silences=silences)
    await rt.run(start + STEP)
    await rt.run(start + 40 * STEP)  # history, by catch-up
    sent: list[tuple[str, str, str]] = []
    for period in range(start + 40 * STEP, at("03:30"), STEP):
        report = await rt.run(period + STEP)  # live: one run per period, as the daemon does
        sent.extend((hhmm(period), a.status, hhmm(a.started_at)) for a in report.alerts)
    assert sent == [("01:50", "firing", "01:30"), ("02:40", "resolved", "01:30")]


async def test_a_flapping_series_sends_one_flapping_notice_then_settles(env: Env) -> None:
    values = normal(30)
    for i in range(30, 42):  # spike every other period: enters and leaves FIRING each time
        values.append(900.0 if i % 2 == 0 else 100.0)
    values += normal(30)
    env.put(T0, values)
    spec = env.spec(extra="")
    text = (
        (env.tmp / "m" / "orders.yaml")
        .read_text()
        .replace(
            "conditions: {consecutive_anomalies: 1}",
            "conditions: {consecutive_anomalies: 1, flap_changes: 4}",
        )
    )
    write(env.tmp / "m" / "orders.yaml", text)
    spec = load_metrics([env.tmp / "m"], None, env={}).metrics["orders"]
    rt = await env.runtime(spec)
    await rt.run(T0 + STEP)
    await rt.run(T0 + 30 * STEP)  # history
    sent: list[tuple[int, str, str]] = []
    for i in range(30, 72):
        report = await rt.run(T0 + (i + 1) * STEP)
        sent.extend((i, a.kind, a.status) for a in report.alerts)
    assert sent == [
        (30, "anomaly", "firing"),
        (31, "anomaly", "resolved"),
        (32, "anomaly", "firing"),
        (33, "flapping", "firing"),  # the 4th change: quiet from here
        (60, "flapping", "resolved"),  # the last change (41) is the only one in 20 periods
        (60, "anomaly", "resolved"),  # the RESOLVED it held
    ]
    outbox = await env.outbox()
    assert [(a.kind, a.status) for a in outbox] == [(k, s) for _, k, s in sent]


async def test_a_run_whose_commit_fails_leaves_memory_as_it_was(env: Env, tmp_path: Path) -> None:
    """In-memory state changes only after the commit: the failed run's points left in the
    windows made the redo judge each period against a history that already held it."""
    from detectkd.errors import StorageError

    env.put(T0, normal(40) + [500.0, 130.0, 100.0])
    spec = env.spec()
    rt = await env.runtime(spec)
    await rt.run(T0 + STEP)
    await rt.run(T0 + 40 * STEP)
    before = rt.memory.windows[""].history()
    commit = env.store.commit
    failures = 0

    async def failing(record: object) -> None:
        nonlocal failures
        failures += 1
        raise StorageError("disk full")

    env.store.commit = failing  # type: ignore[method-assign,assignment]
    with pytest.raises(StorageError):
        await rt.run(T0 + 43 * STEP)
    assert failures == 1
    after = rt.memory.windows[""].history()
    assert after.times.tolist() == before.times.tolist() and rt.states == {"": rt.states[""]}
    env.store.commit = commit  # type: ignore[method-assign]
    redone = await rt.run(T0 + 43 * STEP)
    # A twin that never failed, from the same store, judges exactly the same.
    twin_store = SqliteStore(tmp_path / "twin.db")
    await twin_store.open()
    try:
        twin = runtime(spec, twin_store, env.resources, None, {})
        await twin.run(T0 + STEP)
        await twin.run(T0 + 40 * STEP)
        clean = await twin.run(T0 + 43 * STEP)
    finally:
        await twin_store.close()
    assert [p.results for p in redone.points] == [p.results for p in clean.points]
    assert [p.verdict.anomalous for p in redone.points] == [True, True, False]


async def test_a_result_above_max_rows_is_refused_and_big_ones_still_convert(env: Env) -> None:
    from detectkd.errors import CollectError as Refused

    env.put(T0 - 8000 * STEP, normal(8000))
    assert env.spec().config.collector.max_rows == 1_000_000  # the default

    def one_query(limit: str) -> MetricSpec:  # all 8,000 periods in one query
        path = env.tmp / "m" / "orders.yaml"
        path.write_text(
            path.read_text().replace("type: sqlite\n", f"type: sqlite\n  multi_period: true\n{limit}")
        )
        return load_metrics([env.tmp / "m"], None, env={}).metrics["orders"]

    env.spec()
    rt = await env.runtime(one_query("  max_rows: 5000\n"))
    with pytest.raises(Refused, match=r"more than collector.max_rows \(5,000\) rows"):
        await rt.check(T0 - 8000 * STEP, T0, notify=False, commit=False)
    env.spec()
    roomy = await env.runtime(one_query(""))  # 8,000 rows: converted in a worker thread
    report = await roomy.check(T0 - 8000 * STEP, T0, notify=False, commit=False)
    assert len(report.points) == 8000 and all(p.point.value is not None for p in report.points)


async def test_rows_without_a_usable_time_are_dropped_and_the_run_keeps_the_others(env: Env) -> None:
    from detectkd.telemetry import Telemetry

    env.put(T0, normal(3))
    conn = sqlite3.connect(env.db)  # NaN, an absurd number and a year-9999 time among good rows
    conn.executemany("INSERT INTO src VALUES (?, 1)", [("NaN",), ("1e300",), ("9999-12-31 23:00:00",)])
    conn.commit()
    conn.close()
    env.spec()
    path = env.tmp / "m" / "orders.yaml"  # one query for every period, no filter: the bad rows come back
    text = path.read_text().replace("type: sqlite\n", "type: sqlite\n  multi_period: true\n")
    path.write_text(
        text.replace("WHERE period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'", "")
    )
    spec = load_metrics([env.tmp / "m"], None, env={}).metrics["orders"]
    tel = Telemetry()
    rt = runtime(spec, env.store, env.resources, tel, {})
    report = await rt.check(T0, T0 + 3 * STEP, notify=False, commit=False)
    assert [p.point.value for p in report.points] == normal(3)
    assert rt.status.state == "ok" and rt.status.last_error is None
    warning = rt.api()["last_warning"] or ""
    assert "dropped 3 row(s) whose 'period_time' is not a usable time" in warning, warning
    assert 'detectk_rows_dropped_total{metric="orders",reason="bad_timestamp"} 3' in tel.exposition().decode()


async def test_a_run_cancelled_while_it_waits_for_the_lock_leaves_no_work_unawaited(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run cancelled before it got the metric's lock (a reload, a shutdown) never began: no
    work of it is left unawaited for the garbage collector to warn about ("coroutine
    'MetricRuntime._run' was never awaited", seen in the suite's warnings)."""
    import asyncio
    import inspect

    rt = await env.runtime(env.spec())
    made: list[Coroutine[Any, Any, Any]] = []
    real = rt._run

    def kept(*args: Any) -> Coroutine[Any, Any, Any]:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(rt, "_run", kept)
    async with rt.lock:  # a run in flight holds it
        task = asyncio.ensure_future(rt.run(T0 + 4 * STEP))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in made)  # (none made)
    await rt.run(T0 + 4 * STEP)  # and a run that gets the lock makes and runs its work
    assert len(made) == 1 and inspect.getcoroutinestate(made[0]) == inspect.CORO_CLOSED
