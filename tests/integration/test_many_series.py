"""A metric of many series (issue 28): its runs judge in a worker thread, notifying or not,
with the verdicts, alerts and peer classes of a judge on the event loop; the loop runs on
meanwhile (a first run's window load included)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import pytest

from detectkd.alerting.alert import Alert
from detectkd.alerting.outage import Outages
from detectkd.collectors.points import Point
from detectkd.resources import Resources
from detectkd.runtime import offloop, runner
from detectkd.runtime.jobs import Runs
from detectkd.runtime.judge import judge
from detectkd.runtime.memory import SeriesMemory
from detectkd.runtime.runner import MetricRuntime
from detectkd.specs.loader import load_metrics
from detectkd.storage.base import RunRecord
from detectkd.storage.sqlite import SqliteStore
from detectkd.telemetry import Telemetry
from tests.support.files import write
from tests.support.inprocess import make_settings
from tests.support.runtimes import runtime

HOUR = 3600
T0 = 1_700_006_400 - 1_700_006_400 % HOUR  # the first stored period
STORED = 40  # periods stored before the live runs
SPIKED = [f"k{j}" for j in range(5)]  # the newest-but-one period: 5 series spike (isolated)

METRIC = """\
name: fleet
schedule: {{interval: 1h, max_catch_up: 10}}
collector:
  type: sqlite
  series_columns: [s]
  max_series: 5000
  params:
    database: {db}
    query: |
      SELECT period_time, s, value FROM src
      WHERE period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
detector:
  type: mad
  params: {{window_size: 30, n_sigma: 4, use_weighted: false, min_samples: 10}}
alerter:
  type: log
  conditions: {{consecutive_anomalies: 1}}
peers:
  mode: all
"""


def base(j: int, period: int) -> float:
    return 100.0 + (j + period // HOUR) % 5


def stamp(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


@dataclass
class Fleet:
    tmp: Path
    series: int

    @property
    def last(self) -> int:
        return T0 + (STORED + 1) * HOUR  # the newest live period

    def source(self) -> None:
        """The live periods: the first one with 5 series far off (isolated), the next one with
        two thirds of the series far off (shared)."""
        conn = sqlite3.connect(self.tmp / "src.db")
        conn.execute("CREATE TABLE src (period_time TEXT, s TEXT, value REAL)")
        rows = []
        for p in (T0 + STORED * HOUR, self.last):
            for j in range(self.series):
                off = f"k{j}" in SPIKED if p < self.last else j % 3 != 0
                rows.append((stamp(p), f"k{j}", base(j, p) + (1000.0 if off else 0.0)))
        conn.executemany("INSERT INTO src VALUES (?,?,?)", rows)
        conn.commit()
        conn.close()

    async def store(self, name: str) -> SqliteStore:
        store = SqliteStore(self.tmp / f"{name}.db")
        await store.open()
        periods = [T0 + k * HOUR for k in range(STORED)]
        pts = [Point(f"s=k{j}", p, base(j, p)) for j in range(self.series) for p in periods]
        await store.commit(RunRecord("fleet", points=pts, watermark=periods[-1]))
        return store

    def runtime(self, store: SqliteStore, resources: Resources) -> MetricRuntime:
        write(self.tmp / "m" / "fleet.yaml", METRIC.format(db=self.tmp / "src.db"))
        result = load_metrics([self.tmp / "m"], None, env={})
        assert result.ok, result.all_errors()
        return runtime(result.metrics["fleet"], store, resources)


@pytest.fixture
async def resources() -> AsyncIterator[Resources]:
    res = Resources()
    yield res
    await res.close()


def judged_in(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads the runner's judges ran in, from now on."""
    threads: list[str] = []

    def recorded(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return judge(*args)

    monkeypatch.setattr(runner, "judge", recorded)
    return threads


def summary(alerts: list[Alert]) -> list[tuple[str, str, int, str, Any]]:
    return sorted((a.series, a.status, a.period, a.kind, a.extra.get("peers")) for a in alerts)


async def live(
    fleet: Fleet, name: str, resources: Resources
) -> tuple[list[Alert], dict[str, Any], list[Any]]:
    """Two live runs (one period each), then what was committed."""
    store = await fleet.store(name)
    try:
        rt = fleet.runtime(store, resources)
        alerts: list[Alert] = []
        for finish in (fleet.last, fleet.last + HOUR):
            alerts += (await rt.run(finish)).alerts
        states = {s: (st.status, st.fired_by) for s, st in rt.states.items()}
        outbox = sorted((o.series, o.key, o.channel, o.payload) for o in await store.outbox_pending())
        return alerts, states, outbox
    finally:
        await store.close()


async def test_a_many_series_run_judges_in_a_thread_with_the_verdicts_of_the_loop(
    tmp_path: Path, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(tmp_path, 300)
    fleet.source()
    threads = judged_in(monkeypatch)
    with monkeypatch.context() as m:
        m.setattr(offloop, "OFF_LOOP_POINTS", 10**9)  # as before: on the loop
        on_loop = await live(fleet, "loop", resources)
    assert set(threads) == {threading.current_thread().name}
    threads.clear()
    off_loop = await live(fleet, "thread", resources)
    assert threads and all(t.startswith("detectkd-judge") for t in threads)

    alerts = on_loop[0]
    firing = [a for a in alerts if a.status == "firing"]
    classes = {a.series: a.extra.get("peers") for a in firing}
    assert {s for s, c in classes.items() if c == "isolated"} == {f"s={k}" for k in SPIKED}
    assert sum(c == "shared" for c in classes.values()) == 200 - len([j for j in range(5) if j % 3])
    assert summary(off_loop[0]) == summary(alerts)
    assert off_loop[1:] == on_loop[1:]


async def test_the_loop_runs_while_a_big_metric_loads_and_judges(
    tmp_path: Path, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 series: the window load (first run) and the judge each wait, in their thread, for
    a coroutine on the loop to answer; judged on the loop, they would wait in vain."""
    fleet = Fleet(tmp_path, 2000)
    fleet.source()
    store = await fleet.store("big")
    loop = asyncio.get_running_loop()
    answered: list[str] = []

    def waiting(what: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any) -> Any:
            pinged, done = asyncio.Event(), threading.Event()

            async def answer() -> None:
                await pinged.wait()
                done.set()

            asyncio.run_coroutine_threadsafe(answer(), loop)
            loop.call_soon_threadsafe(pinged.set)
            if done.wait(timeout=10):
                answered.append(what)
            return fn(*args)

        return wrapped

    monkeypatch.setattr(runner, "judge", waiting("judge", judge))
    monkeypatch.setattr(SeriesMemory, "load", waiting("load", SeriesMemory.load))
    try:
        rt = fleet.runtime(store, resources)
        report = await rt.run(fleet.last)
    finally:
        await store.close()
    assert len(report.points) == 2000
    assert answered == ["load", "judge"]


@contextlib.asynccontextmanager
async def judge_threads_taken() -> AsyncIterator[threading.Event]:
    """Every judge thread of the process busy until the event yielded is set (or the block ends)."""
    release = threading.Event()
    begun = [threading.Event() for _ in range(offloop.JUDGE_THREADS)]

    def busy(k: int) -> None:
        begun[k].set()
        release.wait(timeout=30)

    blockers = [asyncio.ensure_future(offloop.in_thread(busy, k)) for k in range(offloop.JUDGE_THREADS)]
    try:
        for b in begun:
            assert await asyncio.to_thread(b.wait, 30)  # every judge thread is taken
        yield release
    finally:
        release.set()
        await asyncio.gather(*blockers)


async def test_a_run_whose_judge_waits_for_a_thread_past_its_timeout_still_commits(
    tmp_path: Path, resources: Resources
) -> None:
    """The run timeout guards the source and the store, not the wait for a judge thread:
    with both judge threads taken past the timeout, the run waits, judges and commits, and
    is not counted as failed (it was cancelled, its judge never run, before)."""
    fleet = Fleet(tmp_path, 300)
    fleet.source()
    store = await fleet.store("queued")
    loop = asyncio.get_running_loop()
    try:
        async with judge_threads_taken() as release:
            rt = fleet.runtime(store, resources)
            slot = SimpleNamespace(
                runtime=rt,
                trigger=SimpleNamespace(latest_at_or_before=lambda now: now),
                late=SimpleNamespace(run=lambda finish, now, again: rt.run(fleet.last)),
            )
            timeout = 3.0  # the source and the store take well under it, even on a loaded machine
            runs = Runs(
                {"fleet": slot},  # type: ignore[dict-item]
                make_settings(tmp_path, run_timeout=timedelta(seconds=timeout)),
                Telemetry(),
                Outages(60.0, 2),
                None,
                lambda: asyncio.sleep(0),
            )
            loop.call_later(timeout + 1, release.set)  # the threads free up past the timeout
            await runs.run_metric("fleet", at=float(fleet.last))
            assert release.is_set()
            assert rt.status.failures == 0 and rt.status.runs == 1, rt.status.last_error
            assert await store.watermark("fleet") == fleet.last - HOUR
            firing = {s for s, st in rt.states.items() if st.status == "firing"}
            assert firing == {f"s={k}" for k in SPIKED}
            assert len(await store.outbox_pending()) == len(SPIKED)
    finally:
        await store.close()


class CountingGate(asyncio.Semaphore):
    """The window loads' gate, counting the runs that asked for it."""

    def __init__(self, value: int, changed: asyncio.Event) -> None:
        super().__init__(value)
        self.asked, self.changed = 0, changed

    async def acquire(self) -> Literal[True]:
        self.asked += 1
        self.changed.set()
        return await super().acquire()


async def test_first_runs_waiting_for_a_judge_thread_hold_few_windows_read(
    tmp_path: Path, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28: many-series metrics starting together while the judge threads are busy read
    their windows a few at a time (`offloop.WINDOW_LOADS`), not all at once to hold them until
    a thread loads them; once the threads free up every run loads, judges and commits."""
    fleet = Fleet(tmp_path, 200)
    fleet.source()
    n = offloop.WINDOW_LOADS + 3
    stores = [await fleet.store(f"s{i}") for i in range(n)]
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    gate = CountingGate(offloop.WINDOW_LOADS, changed)
    monkeypatch.setitem(offloop._gates, loop, gate)
    reads = 0
    read_window = SqliteStore.read_window

    async def counted(self: SqliteStore, *args: Any) -> Any:
        nonlocal reads
        got = await read_window(self, *args)
        reads += 1
        changed.set()
        return got

    monkeypatch.setattr(SqliteStore, "read_window", counted)
    async with judge_threads_taken() as release:
        runtimes = [fleet.runtime(store, resources) for store in stores]
        runs = [asyncio.ensure_future(rt.run(fleet.last)) for rt in runtimes]
        async with asyncio.timeout(30):  # every run asked for the gate, or (unbounded) read
            while not (gate.asked == n and reads == offloop.WINDOW_LOADS) and reads < n:
                changed.clear()
                await changed.wait()
        assert reads == offloop.WINDOW_LOADS  # the others wait before reading
        release.set()
        reports = await asyncio.gather(*runs)
    try:
        assert reads == n and all(len(r.points) == 200 for r in reports)
        for store in stores:
            assert await store.watermark("fleet") == fleet.last - HOUR
        firing = [sorted(s for s, st in rt.states.items() if st.status == "firing") for rt in runtimes]
        assert firing == [sorted(f"s={k}" for k in SPIKED)] * n
    finally:
        for store in stores:
            await store.close()
