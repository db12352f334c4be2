"""A graceful restart through the snapshot, one metric against a real SQLite source and store:
the restarted runtime judges exactly as the one that kept running, without reading its window
from the store; a snapshot the store has moved past, or one for another config, is not used."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import structlog

from detectkd.resources import Resources
from detectkd.runtime import snapshot
from detectkd.runtime.runner import RunReport
from detectkd.specs.loader import MetricSpec, load_metrics
from detectkd.storage.base import StoredPoint
from detectkd.storage.sqlite import SqliteStore
from detectkd.storage.window import WindowRows
from tests.support.files import sqlite_copy, write
from tests.support.metrics import sqlite_metric
from tests.support.runtimes import runtime

STEP = 600
T0 = 1_795_000_000 - 1_795_000_000 % STEP
DAY = 86400 // STEP
START = datetime.fromtimestamp(T0, UTC).isoformat()
SCHEDULE = f"{{interval: 10m, max_catch_up: 1000, start_time: '{START}'}}"


class CountingStore(SqliteStore):
    """The real SQLite store, counting the window reads a restart would do."""

    reads = 0

    async def read_points(
        self, metric: str, series: str | None, since: int, until: int
    ) -> dict[str, list[StoredPoint]]:
        self.reads += 1
        return await super().read_points(metric, series, since, until)

    async def read_window(self, metric: str, since: int, until: int) -> dict[str, WindowRows]:
        self.reads += 1
        return await super().read_window(metric, since, until)


@dataclass
class Env:
    tmp: Path
    db: Path
    resources: Resources

    def spec(self, detector: str | None = None) -> MetricSpec:
        write(
            self.tmp / "m" / "orders.yaml",
            sqlite_metric("orders", self.db, schedule=SCHEDULE, detector=detector),
        )
        result = load_metrics([self.tmp / "m"], None, env={})
        assert result.ok, result.all_errors()
        return result.metrics["orders"]

    async def store(self, name: str) -> CountingStore:
        store = CountingStore(self.tmp / name)
        await store.open()
        return store


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    db = tmp_path / "src.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    rows = []
    noise = np.random.default_rng(11).normal(0, 3, 5 * DAY)
    for i in range(5 * DAY):
        v = 100 + 40 * math.sin(2 * math.pi * i / DAY) + float(noise[i])
        # a spike of two points, then a greater one while `auto` rests after it (a spike no
        # greater than the first would not alarm: the rest period is state the snapshot keeps)
        spike = 400.0 if i in (4 * DAY, 4 * DAY + 1) else 900.0 if i == 4 * DAY + 50 else None
        rows.append((T0 + i * STEP, v if spike is None else spike))
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", rows)
    conn.commit()
    conn.close()
    resources = Resources()
    yield Env(tmp_path, db, resources)
    await resources.close()


def verdicts(report: RunReport) -> list[tuple[int, bool, float, float | None]]:
    return [
        (p.point.period, p.verdict.anomalous, p.results[0].score, p.results[0].upper) for p in report.points
    ]


async def test_a_restart_from_the_snapshot_judges_as_if_the_daemon_had_kept_running(env: Env) -> None:
    spec = env.spec()
    running_store = await env.store("a.db")
    running = runtime(spec, running_store, env.resources)
    await running.run(T0 + 4 * DAY * STEP)  # the first start: history, then live
    await running.run(T0 + (4 * DAY + 1) * STEP)  # the first point of the spike's run
    path = env.tmp / snapshot.FILE
    snapshot.save(path, snapshot.collect([running]))
    sqlite_copy(env.tmp / "a.db", env.tmp / "b.db")
    restarted_store = await env.store("b.db")
    restarted = runtime(spec, restarted_store, env.resources)
    restarted.memory.saved = snapshot.take(snapshot.load(path), restarted)
    assert restarted.memory.saved is not None
    snapshot.save(
        path, {}
    )  # a newer snapshot (the background writer's): the part is read from the file it was in
    compared = []
    for k in (2, 3, 60, 61):  # one period each, then a catch-up of 57
        finish = T0 + (4 * DAY + k) * STEP
        want, got = await running.run(finish), await restarted.run(finish)
        assert verdicts(got) == verdicts(want) and got.points
        compared += verdicts(got)
    assert restarted_store.reads == 0  # the window came from the snapshot, not the store
    assert [t for t, anomalous, _, _ in compared if anomalous] == [T0 + (4 * DAY + k) * STEP for k in (1, 50)]
    assert restarted.settled == running.settled == T0 + (4 * DAY + 60) * STEP
    await running_store.close()
    await restarted_store.close()


async def test_a_snapshot_the_store_has_moved_past_or_of_another_config_is_not_used(env: Env) -> None:
    spec = env.spec()
    store = await env.store("a.db")
    rt = runtime(spec, store, env.resources)
    await rt.run(T0 + 4 * DAY * STEP)
    parts = snapshot.collect([rt])
    assert set(parts) == {"orders"}
    await rt.run(T0 + (4 * DAY + 1) * STEP)  # e.g. another replica ran after the stop
    # Another config (the detector's parameters) does not take the part at all.
    other = runtime(env.spec("type: auto\nparams: {refresh: 6}"), store, env.resources)
    assert snapshot.take(dict(parts), other) is None
    stale = runtime(spec, store, env.resources)
    stale.memory.saved = snapshot.take(parts, stale)
    assert stale.memory.saved is not None
    fresh = runtime(spec, store, env.resources)
    before = store.reads
    got = await stale.run(T0 + (4 * DAY + 2) * STEP)
    assert store.reads == before + 1 and stale.memory.saved is None  # read from the store instead
    # ... and judged as a runtime that never saw a snapshot (on the same store, not committed).
    want = await fresh.check(T0 + (4 * DAY + 1) * STEP, T0 + (4 * DAY + 2) * STEP, notify=False, commit=False)
    assert verdicts(got) == verdicts(want)
    await store.close()


async def test_memory_is_saved_only_once_a_background_history_load_is_taken_in(env: Env) -> None:
    """While `start_time` history loads beside the live runs, memory is not the store's
    (nothing is saved); once it has loaded, it is (this stayed "loading" for good before)."""
    store = await env.store("a.db")
    rt = runtime(env.spec(), store, env.resources)
    jobs: list[tuple[str, int, int]] = []

    async def history(metric: str, begin: int, last: int) -> bool:
        jobs.append((metric, begin, last))
        return False  # `start_time` history: the live runs do not wait for it

    rt.history = history
    await rt.run(T0 + 4 * DAY * STEP)
    assert len(jobs) == 1 and rt.settled is None and snapshot.collect([rt]) == {}
    await rt.run(T0 + (4 * DAY + 1) * STEP)
    assert rt.settled is None  # still loading
    loaded = await rt.check(T0, T0 + (4 * DAY + 1) * STEP, notify=False, commit=True)  # the loader's work
    assert loaded.points
    rt.reload_windows()  # the loader is done
    await rt.run(T0 + (4 * DAY + 2) * STEP)
    assert rt.settled == T0 + (4 * DAY + 1) * STEP and set(snapshot.collect([rt])) == {"orders"}
    await store.close()


async def test_a_metric_whose_run_is_still_in_flight_is_left_out_of_the_stop_snapshot(env: Env) -> None:
    """At a stop, a run cancelled after the grace may still be judging in a worker thread
    (a many-series metric): its memory is changing, so it is not saved (read from the store
    at the next start) rather than saved half-judged."""
    store = await env.store("a.db")
    rt = runtime(env.spec(), store, env.resources)
    await rt.run(T0 + 4 * DAY * STEP)
    assert set(snapshot.collect([rt])) == {"orders"}
    async with rt.lock:  # as a run in flight holds it
        assert snapshot.collect([rt]) == {}
    await store.close()


@pytest.mark.parametrize("damage", ["cut", "garbled"])
async def test_a_part_the_file_no_longer_holds_is_read_from_the_store_instead(env: Env, damage: str) -> None:
    """A part is read at the metric's first run (issue 28), not at the start: if the file
    lost it meanwhile (cut in place) or a value of it is garbled (its checksum disagrees),
    the run says so and reads its window from the store."""
    spec = env.spec()
    store = await env.store("a.db")
    running = runtime(spec, store, env.resources)
    await running.run(T0 + 4 * DAY * STEP)
    path = env.tmp / snapshot.FILE
    snapshot.save(path, snapshot.collect([running]))
    restarted = runtime(spec, store, env.resources)
    restarted.memory.saved = snapshot.take(snapshot.load(path), restarted)
    assert restarted.memory.saved is not None
    with path.open("r+b") as f:
        if damage == "cut":
            f.truncate(64)
        else:  # a byte of a value (the window's times come first: 4 bytes each)
            f.seek(8 + 4 * len(running.memory.windows[""]) + 3)
            f.write(b"\x7f")
    fresh = runtime(spec, store, env.resources)
    before = store.reads
    with structlog.testing.capture_logs() as logs:
        got = await restarted.run(T0 + (4 * DAY + 1) * STEP)
    assert store.reads == before + 1 and restarted.memory.caught_up is None
    (event,) = [e for e in logs if e["event"] == "restart snapshot part not read"]
    assert (
        event["metric"] == "orders"
        and ("shorter than its index" if damage == "cut" else "checksum") in event["error"]
    )
    want = await fresh.check(T0 + 4 * DAY * STEP, T0 + (4 * DAY + 1) * STEP, notify=False, commit=False)
    assert verdicts(got) == verdicts(want) and got.points
    await store.close()
