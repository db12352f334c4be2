"""A start after a crash: the memory snapshot written in the background, then more runs, then
the process gone (the store as it was at that moment). The restarted runtime takes the
snapshot and judges the points stored after it into memory (`runtime.catchup`), and from
then on judges exactly as a runtime that never stopped: same verdicts, scores, bands, alert
states and detector state. Real SQLite source and store."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from detectkd.resources import Resources
from detectkd.runtime import snapshot
from detectkd.runtime.runner import MetricRuntime, RunReport
from detectkd.specs.loader import MetricSpec
from detectkd.storage.base import StoredPoint
from detectkd.storage.sqlite import SqliteStore
from detectkd.storage.window import WindowRows
from tests.support import crashstart
from tests.support.crashstart import DAY, STEP, T0, t
from tests.support.files import sqlite_copy
from tests.support.inprocess import within


class CountingStore(SqliteStore):
    """The real SQLite store, recording the point reads (ranges) and failing some on demand."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[tuple[int, int]] = []
        self.fail = 0

    async def read_points(
        self, metric: str, series: str | None, since: int, until: int
    ) -> dict[str, list[StoredPoint]]:
        self.reads.append((since, until))
        if self.fail:
            self.fail -= 1
            raise OSError("disk I/O error (injected)")
        return await super().read_points(metric, series, since, until)

    async def read_window(self, metric: str, since: int, until: int) -> dict[str, WindowRows]:
        self.reads.append((since, until))
        if self.fail:
            self.fail -= 1
            raise OSError("disk I/O error (injected)")
        return await super().read_window(metric, since, until)


class Env(crashstart.Env):
    async def store(self, name: str) -> CountingStore:
        store = CountingStore(self.tmp / name)
        await store.open()
        return store


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    db = tmp_path / "src.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    conn.execute("CREATE TABLE multi (period_time TEXT, series TEXT, value REAL)")
    noise = np.random.default_rng(11).normal(0, 3, 5 * DAY)
    rows, multi = [], []
    for i in range(5 * DAY):
        v = 100 + 40 * math.sin(2 * math.pi * i / DAY) + float(noise[i])
        # a spike of two points, then a greater one while `auto` rests after it: the rest
        # period is state that only an exact catch-up carries over
        spike = 400.0 if i in (4 * DAY, 4 * DAY + 1) else 900.0 if i == 4 * DAY + 50 else None
        rows.append((T0 + i * STEP, v if spike is None else spike))
        multi.append((T0 + i * STEP, "a", v + (300.0 if i == 4 * DAY + 45 else 0.0)))
        if not 4 * DAY + 5 <= i < 4 * DAY + 30:  # "b" has no rows for a while after the snapshot
            multi.append((T0 + i * STEP, "b", 50 + float(noise[i]) + (80.0 if i == 4 * DAY + 44 else 0.0)))
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", rows)
    conn.executemany("INSERT INTO multi VALUES (datetime(?, 'unixepoch'), ?, ?)", multi)
    conn.commit()
    conn.close()
    resources = Resources()
    yield Env(tmp_path, db, resources)
    await resources.close()


Verdict = tuple[str, int, bool, float, float | None, str | None]


def verdicts(report: RunReport) -> list[Verdict]:
    return [
        (p.point.series, p.point.period, p.verdict.anomalous, p.results[0].score, p.results[0].upper,
         p.results[0].skipped)
        for p in report.points
    ]  # fmt: skip


async def crashed(
    env: Env, spec: MetricSpec, snap_at: int, crash_at: int, store_at: int | None = None
) -> tuple[MetricRuntime, MetricRuntime]:
    """A runtime that ran until `t(crash_at)` with a background snapshot after `t(snap_at)`,
    and the runtime started after it was killed there (on a copy of its store as it was
    after `t(store_at)`, default the crash)."""
    running = await env.runtime(spec, "a.db")
    await running.run(t(0))  # the first start: history, then live
    for k in range(1, crash_at + 1):
        await running.run(t(k))
        if k == snap_at:
            written = await env.snapshots([running]).write()
            assert written is not None and written["metrics"] == 1
        if k == (crash_at if store_at is None else store_at):
            sqlite_copy(env.tmp / "a.db", env.tmp / "b.db")
    restarted = await env.runtime(spec, "b.db")
    snaps = env.snapshots([restarted])
    await snaps.load()
    snaps.offer(restarted)
    assert restarted.memory.saved is not None and restarted.memory.saved.watermark == t(snap_at) - STEP
    return running, restarted


async def same_from_now_on(running: MetricRuntime, restarted: MetricRuntime, ks: range) -> list[Verdict]:
    out: list[Verdict] = []
    for k in ks:
        want, got = await running.run(t(k)), await restarted.run(t(k))
        assert got.points and verdicts(got) == verdicts(want), k
        assert restarted.states == running.states, k
        out += verdicts(got)
    return out


async def test_a_crash_start_catches_up_from_the_snapshot_and_judges_as_if_it_never_stopped(env: Env) -> None:
    running, restarted = await crashed(env, env.spec(), snap_at=1, crash_at=40)
    store = restarted.store
    assert isinstance(store, CountingStore)
    compared = await same_from_now_on(running, restarted, range(41, 61))
    # One read: the 39 points stored after the snapshot, not the window (4,700 points)
    assert store.reads == [(t(1), t(40))] and restarted.memory.caught_up == 39
    # the greater spike during the rest period alarms, as it did for the daemon that kept running
    assert [k for _, k, anomalous, *_ in compared if anomalous] == [t(50)]
    auto, auto2 = running.detectors[0], restarted.detectors[0]
    a, b = auto.export_state(""), auto2.export_state("")  # type: ignore[attr-defined]
    assert a is not None and b is not None and np.array_equal(a[0], b[0], equal_nan=True) and a[1] == b[1]
    for rt in (running, restarted):
        await rt.store.close()


async def test_a_multi_series_catch_up_judges_the_gaps_a_live_run_judged(env: Env) -> None:
    """ "b" had no rows between the snapshot and the crash: live runs judged those periods as
    missing (a NaN in its window), which the store does not hold; the catch-up judges them
    too, so a count window (`mad`, 100 points) holds what the live one held."""
    mad = "type: mad\nparams: {window_size: 100, n_sigma: 4, use_weighted: false, min_samples: 20}"
    running, restarted = await crashed(env, env.spec(mad, series=True), snap_at=2, crash_at=35)
    compared = await same_from_now_on(running, restarted, range(36, 48))
    assert restarted.memory.caught_up == 33 + 33 - 25  # a every period, b not for 25 of them
    anomalies = {(s, k) for s, k, anomalous, *_ in compared if anomalous}
    assert anomalies == {("series=b", t(44)), ("series=a", t(45))}
    for rt in (running, restarted):
        await rt.store.close()


@pytest.mark.parametrize("case", ["newer than the store", "older than the window", "read fails once"])
async def test_a_snapshot_that_cannot_be_caught_up_reads_the_store_and_still_judges_the_same(
    env: Env, case: str
) -> None:
    mad = "type: mad\nparams: {window_size: 100, n_sigma: 4, use_weighted: false, min_samples: 20}"
    spec = env.spec(mad)
    crash_at = 130 if case == "older than the window" else 20  # the window is 100 points
    store_at = 3 if case == "newer than the store" else None  # e.g. a store restored from a backup
    running, restarted = await crashed(env, spec, snap_at=5, crash_at=crash_at, store_at=store_at)
    store = restarted.store
    assert isinstance(store, CountingStore)
    if store_at is not None:  # compared with a runtime on the same store that has no snapshot
        await running.store.close()
        sqlite_copy(env.tmp / "b.db", env.tmp / "c.db")
        running = await env.runtime(spec, "c.db")
    if case == "read fails once":
        store.fail = 1
        with pytest.raises(OSError, match="injected"):
            await restarted.run(t(crash_at + 1))
        assert restarted.memory.saved is not None  # kept for the next run
    await same_from_now_on(running, restarted, range(crash_at + 1, crash_at + 5))
    if case == "read fails once":
        assert restarted.memory.caught_up == crash_at - 5 and store.reads[-1] == (t(5), t(crash_at))
    else:
        assert restarted.memory.caught_up is None  # the window read from the store, as without one
        first = t(store_at or crash_at)  # the first period the run judges
        assert store.reads[0] == (first - restarted.span, first)
    for rt in (running, restarted):
        await rt.store.close()


# -- the background writer ------------------------------------------------------------------


async def test_a_background_snapshot_waits_for_a_run_in_flight_and_records_its_watermark(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run is held at its commit (it holds its lock until it committed) until the write is
    waiting for it: without the gate a fast run could finish while the write opened its file,
    and the write found nothing in flight (it did, in a clean-clone CI run)."""
    rt = await env.runtime(env.spec(), "a.db")
    await rt.run(t(0))
    gate, commit = asyncio.Event(), rt.store.commit

    async def held(record: Any) -> None:
        await gate.wait()
        await commit(record)

    monkeypatch.setattr(rt.store, "commit", held)
    rt.lock = lock = Announced()
    run = asyncio.create_task(rt.run(t(1)))
    await within(lock.waited.wait(), 5, "the run taking its lock")
    lock.waited.clear()
    write = asyncio.create_task(env.snapshots([rt]).write())
    await within(lock.waited.wait(), 5, "the write waiting for the run")
    assert not run.done()
    gate.set()
    written = await within(write, 10, "the write")
    assert run.done() and written is not None and (written["metrics"], written["waited"]) == (1, 1)
    parts = snapshot.load(env.tmp / "data" / snapshot.FILE)
    assert parts["orders"].watermark == rt.settled == t(0)  # what memory held after that run
    await rt.store.close()


class Announced(asyncio.Lock):
    """A runtime's lock that says when someone starts waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = asyncio.Event()

    async def acquire(self) -> Literal[True]:
        self.waited.set()
        return await super().acquire()


async def test_a_stop_ends_a_background_snapshot_waiting_for_a_run_in_flight_at_once(env: Env) -> None:
    """SIGTERM while the background write waits for a busy metric: abandoned now, not after
    the 10 s it would wait for that run (the stop's own snapshot comes after the runs)."""
    rt = await env.runtime(env.spec(), "a.db")
    await rt.run(t(0))
    rt.lock = lock = Announced()
    await lock.acquire()  # a run in flight
    lock.waited.clear()
    stop = asyncio.Event()
    write = asyncio.create_task(env.snapshots([rt]).write(stop))
    await within(lock.waited.wait(), 5, "the write waiting for the run")
    stop.set()
    assert await within(write, 2, "the abandoned write (BUSY_WAIT_S is 10 s)") is None
    assert lock.locked()  # still the run's
    lock.release()
    assert not (env.tmp / "data" / (snapshot.FILE + ".tmp")).exists()
    await rt.store.close()


async def test_a_background_snapshot_is_paced_and_a_stop_abandons_it_keeping_the_previous(env: Env) -> None:
    rt = await env.runtime(env.spec(), "a.db")
    await rt.run(t(0))
    fast = await env.snapshots([rt]).write()
    assert fast is not None
    size = (env.tmp / "data" / snapshot.FILE).stat().st_size
    await rt.run(t(1))
    rate = size / 2**20 / 0.5  # the whole file in half a second
    began = time.monotonic()
    paced = await env.snapshots([rt], rate=rate).write()
    assert paced is not None and time.monotonic() - began >= 0.45  # not at disk speed
    stop = asyncio.Event()
    stop.set()  # e.g. SIGTERM while the background write is paced: SIGTERM writes its own
    assert await env.snapshots([rt], rate=rate).write(stop) is None
    assert not (env.tmp / "data" / (snapshot.FILE + ".tmp")).exists()
    assert snapshot.load(env.tmp / "data" / snapshot.FILE)["orders"].watermark == t(0)  # the paced one
    await rt.store.close()


async def test_a_part_no_run_adopted_yet_is_passed_on_and_read_by_the_final_report(env: Env) -> None:
    """Issue 28: a start reads each part at its metric's first run. One that has not run (a
    daily metric) is read when a background snapshot passes it on, and 10 minutes after the
    start (`report(final=True)`) at the latest, so the file a newer one replaced is closed."""
    rt = await env.runtime(env.spec(), "a.db")
    await rt.run(t(0))
    assert await env.snapshots([rt]).write() is not None
    path = env.tmp / "data" / snapshot.FILE
    written = snapshot.load(path)["orders"].windows[""]
    for final in (False, True):
        restarted = await env.runtime(env.spec(), "a.db")
        snaps = env.snapshots([restarted])
        await snaps.load()
        snaps.offer(restarted)
        snaps.taken()
        part = restarted.memory.saved
        assert part is not None and part.unread
        if final:
            assert snaps.report(final=True) and not part.unread  # read, not run: still pending
        else:
            assert await snaps.write() is not None and not part.unread
            got = snapshot.load(path)["orders"].windows[""]  # passed on as it was
            assert np.array_equal(got[0], written[0]) and np.array_equal(got[1], written[1], equal_nan=True)
        assert restarted.memory.saved is part and not restarted.memory.loaded
        await restarted.store.close()
    await rt.store.close()
