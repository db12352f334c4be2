"""The daemon's history loader in-process, on a real SQLite source and store: a failed or
timed-out batch is retried with its error shown, a reload pauses a job without losing it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from detectkd.config.settings import HistorySettings
from detectkd.runtime import offloop
from detectkd.runtime.daemon import Daemon
from detectkd.runtime.status import MetricEntry
from detectkd.storage.base import RunRecord
from tests.support.files import write
from tests.support.inprocess import running, within
from tests.support.metrics import Source, fill, sqlite_metric

HOUR = 3600
SPIN = "(WITH RECURSIVE spin(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM spin WHERE n < 3000000) SELECT count(*) FROM spin)"


def metric(tmp_path: Path, where: str = "") -> Path:
    """orders: hourly, loading 3 days of history a day per batch, from src WHERE `where`."""
    text = sqlite_metric(
        "orders",
        tmp_path / "src.db",
        schedule="{interval: 1h, start_time: 3d, batch_load_days: 1}",
        where=where,
        collector="multi_period: true",
        detector="type: mad\nparams: {window_size: 1d, n_sigma: 5, min_samples: 10}",
    )
    return write(tmp_path / "metrics.d" / "orders.yaml", text)


def source(tmp_path: Path) -> None:
    now = int(time.time())
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    rows = [(t, 100.0 + t // HOUR % 3) for t in range(now - now % HOUR - 4 * 86400, now, HOUR)]
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", rows)
    conn.commit()
    conn.close()


async def until(check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.02)


def entry(d: Daemon) -> MetricEntry:
    return next(m for m in d.api_metrics() if m["name"] == "orders")


def stored(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "data" / "dtk.db") as conn:
        return conn.execute(sql).fetchall()


async def test_a_failed_batch_is_retried_shown_and_a_reload_pauses_the_job_without_losing_it(
    tmp_path: Path,
) -> None:
    sqlite3.connect(tmp_path / "src.db").close()  # no table yet: every batch fails
    path = metric(tmp_path)
    fast = HistorySettings(retry_after=timedelta(seconds=0.05))
    async with running(tmp_path, history=fast) as d:
        await until(lambda: "orders" in d.history.jobs and d.history.jobs["orders"].failures >= 2)
        shown = entry(d)["history"]
        assert isinstance(shown, dict) and "no such table: src" in str(shown["error"])
        assert shown["progress"] == 0.0
        errors = d.telemetry.history_errors.labels("orders").get()
        assert errors >= 2
        assert stored(tmp_path, "SELECT count(*) FROM dtk_history") == [(1,)]

        path.unlink()  # removed by a reload: the work stops, the job stays stored
        await d.reload("test")
        assert "orders" not in d.history._tasks
        assert stored(tmp_path, "SELECT count(*) FROM dtk_history") == [(1,)]

        source(tmp_path)
        metric(tmp_path)  # back: it resumes, now with a source that answers
        await d.reload("test")
        await asyncio.wait_for(d.history.settled(), 30)
        assert "orders" not in d.history.jobs and "history" not in entry(d)
        assert stored(tmp_path, "SELECT count(*) FROM dtk_history") == [(0,)]
        ((count, first, last),) = stored(
            tmp_path, "SELECT count(*), min(period), max(period) FROM dtk_datapoints"
        )
        assert count == (last - first) // HOUR + 1 and count >= 71  # three days, no gap
        assert stored(tmp_path, "SELECT period FROM dtk_watermarks") == [(last,)]
        assert d.telemetry.history_progress.labels("orders").get() == 1.0
        assert await d.store.outbox_pending() == []


async def test_a_batch_over_its_own_timeout_is_cut_and_retried_not_the_run_timeout(tmp_path: Path) -> None:
    source(tmp_path)
    metric(tmp_path, where=f"{SPIN} > 0")
    slow = HistorySettings(batch_timeout=timedelta(seconds=0.05), retry_after=timedelta(seconds=0.05))
    async with running(tmp_path, history=slow, run_timeout=timedelta(seconds=0.01)) as d:
        await until(lambda: "orders" in d.history.jobs and d.history.jobs["orders"].failures >= 1)
        assert d.history.jobs["orders"].error == "batch exceeded history.batch_timeout (0.05s)"
        assert stored(tmp_path, "SELECT count(*) FROM dtk_datapoints") == [(0,)]


async def test_a_batch_whose_judge_waits_for_a_thread_past_the_batch_timeout_is_stored(
    tmp_path: Path,
) -> None:
    """history.batch_timeout guards the source and the store, not the judging: with both
    judge threads taken past it, a batch of more than 100 points waits for one, judges and
    is stored, neither failed nor retried (it was cut and retried until the threads freed)."""
    now = int(time.time()) // HOUR * HOUR
    fill(src := Source(tmp_path / "src.db"), "m", now - 3 * 86400, now + HOUR, 600)
    text = sqlite_metric("m", src.path, schedule="{interval: 10m, start_time: 2d, batch_load_days: 3}",
                         series="m", detector="type: mad\nparams: {window_size: 1d, n_sigma: 5, min_samples: 10}")  # fmt: skip
    write(tmp_path / "metrics.d" / "m.yaml", text)
    release = threading.Event()
    begun = [threading.Event() for _ in range(offloop.JUDGE_THREADS)]

    def busy(k: int) -> None:
        begun[k].set()
        release.wait(timeout=60)

    blockers = [asyncio.ensure_future(offloop.in_thread(busy, k)) for k in range(offloop.JUDGE_THREADS)]
    try:
        for b in begun:
            assert await asyncio.to_thread(b.wait, 30)  # every judge thread is taken
        timeout = 3.0  # the source and the store take well under it, even on a loaded machine
        tight = HistorySettings(batch_timeout=timedelta(seconds=timeout), retry_after=timedelta(seconds=0.05))
        async with running(tmp_path, history=tight, clock=lambda: now + 60) as d:
            d.scheduler.pause()
            asyncio.get_running_loop().call_later(timeout + 1, release.set)  # free past the timeout
            await within(d.history.settled(), 60, "the history job")
            assert release.is_set() and "m" not in d.history.jobs
            assert d.telemetry.history_errors.labels("m").get() == 0
            ((count, first, last),) = stored(
                tmp_path, "SELECT count(*), min(period), max(period) FROM dtk_detections"
            )
            assert (
                count == (last - first) // 600 + 1 and count > offloop.OFF_LOOP_POINTS
            )  # judged in a thread
    finally:
        release.set()
        await asyncio.gather(*blockers)


async def test_a_standby_works_on_no_history_job_until_it_leads(tmp_path: Path) -> None:
    """On an HA standby the loader stays idle (its commits would be fenced); leading starts
    the jobs, being deposed pauses them, and the stored jobs stay."""
    sqlite3.connect(tmp_path / "src.db").close()  # no table: the job stays unfinished
    metric(tmp_path)
    async with running(tmp_path) as d:
        await until(lambda: "orders" in d.history.jobs)
        await within(d.history.pause(), 10, "history.pause()")
        leading = False
        d.history.may_run = lambda: leading
        d.history.start(d.slots["orders"].runtime)
        assert not d.history._tasks  # standby: nothing is worked on
        leading = True
        d.history.start(d.slots["orders"].runtime)
        assert "orders" in d.history._tasks
        await within(d.history.pause(), 10, "history.pause()")
        assert not d.history._tasks and "orders" in d.history.jobs


async def _first_start(root: Path, src: Path, order: str, now: int) -> list[tuple[Any, ...]]:
    """A `start_time` first start whose first live run judges before its history job commits
    (`live`), after it (`history`), or before it and commits after the job ended (`in flight`),
    then two more live runs: every stored detection."""
    iso = datetime.fromtimestamp(now - 7 * 86400, UTC).isoformat()
    text = sqlite_metric("visits", src, schedule=f"{{interval: 1h, start_time: '{iso}'}}", series="visits",
                         detector="type: auto\nparams: {refresh: 12}")  # fmt: skip
    write(root / "metrics.d" / "visits.yaml", text)
    async with running(root, clock=lambda: now + 60) as d:
        d.scheduler.pause()
        rt = d.slots["visits"].runtime
        if order == "history":
            await d.history.settled()
        commit = rt._commit
        if order == "in flight":  # judged without the history; committed once the job is done

            async def after_the_job(record: RunRecord) -> None:
                await within(d.history.settled(), 20, "the history job")
                await commit(record)

            rt._commit = after_the_job  # type: ignore[method-assign]
        await rt.run(now)  # the first live run: judges now - 1h
        rt._commit = commit  # type: ignore[method-assign]
        await within(d.history.settled(), 20, "the history job")
        assert d.history.api("visits") is None
        for finish in (now + HOUR, now + 2 * HOUR):
            await rt.run(finish)
    return stored(root, "SELECT period, value, expected, lower, upper, score, anomaly, skipped FROM "
                        "dtk_detections ORDER BY period")  # fmt: skip


async def test_periods_judged_live_while_the_history_loaded_are_judged_again_with_it(tmp_path: Path) -> None:
    """A first live run that wins the race with its history job stores a cold skip (score 0,
    no band) for its period; once the job is done that period is judged again with the
    history, so the stored detections are those of a start whose history came first."""
    now = int(time.time()) // HOUR * HOUR
    src = Source(tmp_path / "src.db")
    fill(src, "visits", now - 8 * 86400, now + 3 * HOUR, HOUR)
    history_first = await _first_start(tmp_path / "a", src.path, "history", now)
    live_first = await _first_start(tmp_path / "b", src.path, "live", now)
    assert [r[0] for r in live_first] == list(range(now - 7 * 86400, now + 2 * HOUR, HOUR))
    assert all(r[-1] is None for r in live_first[-3:])  # none skipped: judged with the history
    assert live_first == history_first


async def test_a_period_a_live_run_in_flight_commits_after_the_history_job_is_judged_again(
    tmp_path: Path,
) -> None:
    """The first live run judged its period without the history and commits it only after
    the job ended (and judged again what was stored then): the live runtime's next run judges
    that period again with the history, under its own lock, before its own."""
    now = int(time.time()) // HOUR * HOUR
    src = Source(tmp_path / "src.db")
    fill(src, "visits", now - 8 * 86400, now + 3 * HOUR, HOUR)
    history_first = await _first_start(tmp_path / "a", src.path, "history", now)
    in_flight = await _first_start(tmp_path / "b", src.path, "in flight", now)
    assert in_flight[-3][0] == now - HOUR and in_flight[-3][-1] is None  # not a cold skip
    assert in_flight == history_first
