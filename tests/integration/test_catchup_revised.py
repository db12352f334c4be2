"""A late-data revision (`completeness.recheck`) between the background snapshot and a
`kill -9` (issue 28's review): a recheck rewrites the value of a period at or before the
watermark in the store and in memory without moving the watermark, and the catch-up read
only the points after the snapshot's watermark, so the restarted metric kept the value
from before the revision where a rebuild from the store reads the revised one. Now the
catch-up compares the recheck's look-back with the store and rebuilds that metric when a
value there was revised. Real SQLite source and store."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import structlog

from detectkd.resources import Resources
from detectkd.runtime.recheck import Recheck
from detectkd.runtime.runner import MetricRuntime
from tests.support import crashstart
from tests.support.crashstart import DAY, STEP, T0, t
from tests.support.files import sqlite_copy

MAD = "type: mad\nparams: {window_size: 100, n_sigma: 4, use_weighted: false, min_samples: 20}"


class Env(crashstart.Env):
    def revise(self, period: int, value: float) -> None:
        """Late rows changed the source's value of `period`."""
        with sqlite3.connect(self.db) as c:
            c.execute(
                "UPDATE src SET value = ? WHERE period_time = datetime(?, 'unixepoch')", (value, period)
            )


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
        noise = np.random.default_rng(5).normal(0, 3, 5 * DAY)
        rows = [
            (T0 + i * STEP, 100 + 40 * math.sin(2 * math.pi * i / DAY) + float(noise[i]))
            for i in range(5 * DAY)
        ]
        conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", rows)
    resources = Resources()
    yield Env(tmp_path, db, resources)
    await resources.close()


def value_at(rt: MetricRuntime, period: int) -> float:
    h = rt.memory.windows[""].history()
    (i,) = np.flatnonzero(h.times == period)
    return float(h.values[i])


@pytest.mark.parametrize("runs_after", [0, 3], ids=["same watermark", "caught up"])
async def test_a_revision_after_the_snapshot_is_not_lost_by_a_kill_9(env: Env, runs_after: int) -> None:
    """The snapshot is written after `t(3)`; late rows change `t(1)`'s period (judged, before
    the watermark) and the recheck revises it; `runs_after` runs more, then the process is
    killed. The restarted metric holds the revised value, as a rebuild does, and judges as
    the daemon that kept running."""
    spec = env.spec(MAD, extra="completeness: {recheck: 1h}\n")
    running = await env.runtime(spec, "a.db")
    await running.run(t(0))
    for k in range(1, 4):
        await running.run(t(k))
    assert (await env.snapshots([running]).write() or {}).get("metrics") == 1
    revised_period = t(1) - STEP
    before = value_at(running, revised_period)
    env.revise(revised_period, before * 3)
    assert await Recheck(running).run() == 1  # the store and memory hold the revised value
    assert value_at(running, revised_period) == before * 3
    for k in range(4, 4 + runs_after):
        await running.run(t(k))
    sqlite_copy(env.tmp / "a.db", env.tmp / "b.db")  # kill -9: the store as it was

    restarted = await env.runtime(spec, "b.db")
    snaps = env.snapshots([restarted])
    await snaps.load()
    snaps.offer(restarted)
    assert restarted.memory.saved is not None and restarted.memory.saved.watermark == t(3) - STEP
    with structlog.testing.capture_logs() as logs:
        got = await restarted.run(t(4 + runs_after))
    want = await running.run(t(4 + runs_after))
    assert value_at(restarted, revised_period) == value_at(running, revised_period) == before * 3
    (event,) = [e for e in logs if e["event"] == "restart snapshot part revised since"]
    assert event["metric"] == "orders" and event["period"] == revised_period
    assert restarted.memory.caught_up is None  # rebuilt from the store
    assert [(p.point.period, p.results[0].score) for p in got.points] == [
        (p.point.period, p.results[0].score) for p in want.points
    ]
    for rt in (running, restarted):
        await rt.store.close()


async def test_without_a_revision_a_recheck_metric_still_resumes_from_the_snapshot(env: Env) -> None:
    """The comparison finds nothing revised: the metric is caught up as before, with one read
    that starts `recheck` before the snapshot's watermark."""
    spec = env.spec(MAD, extra="completeness: {recheck: 1h}\n")
    running = await env.runtime(spec, "a.db")
    await running.run(t(0))
    for k in range(1, 4):
        await running.run(t(k))
    assert (await env.snapshots([running]).write() or {}).get("metrics") == 1
    assert await Recheck(running).run() == 0
    for k in range(4, 7):
        await running.run(t(k))
    sqlite_copy(env.tmp / "a.db", env.tmp / "b.db")
    restarted = await env.runtime(spec, "b.db")
    snaps = env.snapshots([restarted])
    await snaps.load()
    snaps.offer(restarted)
    got, want = await restarted.run(t(7)), await running.run(t(7))
    assert restarted.memory.caught_up == 3
    assert [p.results[0].score for p in got.points] == [p.results[0].score for p in want.points]
    for rt in (running, restarted):
        await rt.store.close()
