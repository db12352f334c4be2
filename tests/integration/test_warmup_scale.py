"""A first start that scales (issue 28), in-process on a real SQLite source and store: a
one-period query is asked once for a warm-up when its answer proves it can be, and a metric
whose newest period found too little history judges it as soon as its warm-up is loaded,
not at its next slot."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from detectkd.alerting.state import Status
from detectkd.runtime.scheduler import stable_offset
from detectkd.storage.base import RunRecord
from tests.support.inprocess import firing_alerts, running
from tests.support.metrics import hourly_orders as metric
from tests.support.runtimes import count_queries

HOUR = 3600
ROWS = """SELECT period_time, value FROM src
        WHERE period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'"""
# DetectK's style: one aggregate of the period, no time of its own: only one period per query
AGGREGATE = """SELECT avg(value) AS value FROM src
        WHERE period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'"""


def newest_finish() -> int:
    """The end of the newest period a run of `orders` at this moment judges."""
    lead = stable_offset("orders", timedelta(hours=1))
    return int(time.time() - lead) // HOUR * HOUR


def source(tmp_path: Path, spike_at: int, every: int = HOUR) -> None:
    """Ten days of values every `every` seconds, 4x in the hour starting at `spike_at`."""
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    end = spike_at + 2 * HOUR
    rows = [
        (t, 400.0 if spike_at <= t < spike_at + HOUR else 100.0 + t // HOUR % 3)
        for t in range(end - 10 * 86400, end, every)
    ]
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", rows)
    conn.commit()
    conn.close()


async def test_a_one_period_query_answers_a_warm_up_in_one_query_once_its_answer_is_confirmed(
    tmp_path: Path,
) -> None:
    finish = newest_finish()
    source(tmp_path, spike_at=finish - HOUR, every=600)  # six rows per period: the last one counts
    metric(tmp_path, "2d", ROWS)  # 48 periods: loaded by the first run itself
    async with running(tmp_path) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        assert not rt.spec.collector.multi_period  # no GROUP BY: one period per query by default
        asked = count_queries(rt)
        report = await rt.run(finish)
        assert len(report.points) == 49 and all(p.point.value is not None for p in report.points)
        # One query for the 49 periods, and the newest period asked alone to confirm it.
        assert [(w.finish - w.start) // HOUR for w in asked] == [49, 1]
        assert rt.states[""].status is Status.FIRING
        assert len(await firing_alerts(d)) == 1  # only the newest period notifies


async def test_an_aggregate_of_one_period_is_asked_period_by_period_and_judges_the_same(
    tmp_path: Path,
) -> None:
    finish = newest_finish()
    source(tmp_path, spike_at=finish - HOUR)
    metric(tmp_path, "2d", AGGREGATE)
    async with running(tmp_path) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        asked = count_queries(rt)
        report = await rt.run(finish)
        # The range asked once comes back as one row (one period): refused, then 49 queries.
        assert [(w.finish - w.start) // HOUR for w in asked] == [49] + [1] * 49
        assert len([p for p in report.points if p.point.value is not None]) == 49
        assert rt.states[""].status is Status.FIRING
        asked.clear()
        await rt.run(finish + 3 * HOUR)  # a catch-up later: never probed again
        assert [(w.finish - w.start) // HOUR for w in asked] == [1, 1, 1]


async def test_a_range_answer_that_differs_from_the_periods_alone_is_not_used(tmp_path: Path) -> None:
    finish = newest_finish()
    source(tmp_path, spike_at=finish - HOUR)
    metric(tmp_path, "2d", ROWS + "\n        ORDER BY period_time LIMIT 5")  # a range gets 5 rows
    async with running(tmp_path) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        asked = count_queries(rt)
        report = await rt.run(finish)
        # The range's newest period with a value, then its newest: missing from the range's
        # answer, so period by period.
        assert [(w.finish - w.start) // HOUR for w in asked] == [49, 1, 1] + [1] * 49
        assert len([p for p in report.points if p.point.value is not None]) == 49
        assert rt.states[""].status is Status.FIRING


async def test_multi_period_false_is_never_probed(tmp_path: Path) -> None:
    finish = newest_finish()
    source(tmp_path, spike_at=finish - HOUR)
    metric(tmp_path, "2d", ROWS, "\n  multi_period: false")
    async with running(tmp_path) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        asked = count_queries(rt)
        await rt.run(finish)
        assert [(w.finish - w.start) // HOUR for w in asked] == [1] * 49


async def test_a_warm_up_loaded_after_the_first_run_judges_its_newest_period_without_another_slot(
    tmp_path: Path,
) -> None:
    finish = newest_finish()
    source(tmp_path, spike_at=finish - HOUR)
    metric(tmp_path, "7d", ROWS)  # 168 periods: loaded in the background
    async with running(tmp_path) as d:
        d.scheduler.pause()
        d.history.may_run = lambda: False  # held back until the first run found too little
        await d.history.pause()
        rt = d.slots["orders"].runtime
        report = await rt.run(finish)  # waits for its warm-up: nothing collected nor stored
        assert report.points == [] and rt.states == {} and rt.status.judging is False
        assert str(d.metric_entry("orders")["not_judging"]).startswith("warming up: its history is loading")
        assert await d.store.history_load() == {}  # a warm-up job is not stored: redone after a crash
        assert await d.store.watermark("orders") is None
        d.history.may_run = lambda: True
        d.history.kick("orders")
        await d.history.settled()
        stored = await d.store.read_points("orders", None, finish - 169 * HOUR, finish - HOUR)
        assert len(stored[""]) == 168  # the window, stored (not judged: no marks to compute)
        async with asyncio.timeout(10):  # no scheduled run: the loader's end judges it
            while rt.status.judging is not True:
                await asyncio.sleep(0.01)
        assert rt.status.runs == 2
        assert rt.states[""].status is Status.FIRING
        assert len(await firing_alerts(d)) == 1
        assert d.metric_entry("orders")["judging"] is True


async def test_a_warm_up_stores_its_window_and_its_watermark_in_one_commit(tmp_path: Path) -> None:
    """Not the points, then the watermark in a second transaction: one store call fewer
    for each of 10,000 warm-ups, and a crash leaves both or neither."""
    finish = newest_finish()
    source(tmp_path, spike_at=finish - HOUR)
    metric(tmp_path, "7d", ROWS)  # 168 periods: loaded in the background
    async with running(tmp_path) as d:
        d.scheduler.pause()
        d.history.may_run = lambda: False
        await d.history.pause()
        await d.slots["orders"].runtime.run(finish)  # waits for its warm-up
        commits: list[tuple[int, int | None]] = []
        commit = d.store.commit

        async def recorded(run: RunRecord) -> None:
            commits.append((len(run.points), run.watermark))
            await commit(run)

        d.store.commit = recorded  # type: ignore[method-assign]
        d.history.may_run = lambda: True
        d.history.kick("orders")
        await d.history.settled()
        assert commits[0] == (168, finish - 2 * HOUR)  # the window, and the watermark at its end
        stored = await d.store.read_points("orders", None, finish - 169 * HOUR, finish - HOUR)
        assert len(stored[""]) == 168


async def test_a_warm_up_holds_its_slot_while_it_asks_its_source_not_while_it_stores(tmp_path: Path) -> None:
    """`warmup_concurrency` bounds what a first start asks of a source at once; a warm-up
    held its slot through its store commit too, and 10,000 warm-ups waited for that."""
    finish = newest_finish()
    source(tmp_path, spike_at=finish - HOUR)
    metric(tmp_path, "7d", ROWS)
    orders = (tmp_path / "metrics.d" / "orders.yaml").read_text()
    (tmp_path / "metrics.d" / "visits.yaml").write_text(orders.replace("name: orders", "name: visits"))
    async with running(tmp_path, history={"warmup_concurrency": 1}) as d:
        d.scheduler.pause()
        d.history.may_run = lambda: False
        await d.history.pause()
        for name in ("orders", "visits"):
            await d.slots[name].runtime.run(finish)  # waits for its warm-up (recorded now)
        storing: list[str] = []
        stored = asyncio.Event()
        commit = d.store.commit

        async def held(run: RunRecord) -> None:
            if run.points:  # a warm-up's window: held until both asked their source
                storing.append(run.metric)
                await stored.wait()
            await commit(run)

        d.store.commit = held  # type: ignore[method-assign]
        d.history.may_run = lambda: True
        d.history.kick("orders")
        d.history.kick("visits")
        async with asyncio.timeout(10):  # one slot: the second asks while the first stores
            while len(storing) < 2:
                await asyncio.sleep(0.01)
        stored.set()
        await d.history.settled()
        for name in ("orders", "visits"):
            points = await d.store.read_points(name, None, finish - 169 * HOUR, finish - HOUR)
            assert len(points[""]) == 168


async def test_a_warm_up_loaded_before_the_metrics_first_slot_judges_at_once(tmp_path: Path) -> None:
    finish = newest_finish()
    source(tmp_path, spike_at=finish - HOUR)
    metric(tmp_path, "7d", ROWS)
    async with running(tmp_path) as d:
        d.scheduler.pause()  # its slot never comes: the end of the warm-up runs it
        rt = d.slots["orders"].runtime
        await d.history.settled()
        async with asyncio.timeout(10):
            while rt.status.judging is not True:
                await asyncio.sleep(0.01)
        assert rt.status.runs == 1
        assert rt.states[""].status is Status.FIRING


async def test_a_warm_up_that_fails_no_longer_holds_the_live_runs_back(tmp_path: Path) -> None:
    finish = newest_finish()
    source(tmp_path, spike_at=finish - HOUR)
    # Periods before the newest two fail (SQLite: integer overflow); the newest do not.
    edge = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(finish - 2 * HOUR))
    failing = (
        ROWS
        + f"\n        AND (CASE WHEN '{{{{ period_start }}}}' < '{edge}' THEN abs(-9223372036854775808) ELSE 1 END)"
    )
    metric(tmp_path, "7d", failing)
    async with running(tmp_path) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        async with asyncio.timeout(10):  # the loader's first batch fails at install
            while "orders" not in d.history.jobs or d.history.jobs["orders"].error is None:
                await asyncio.sleep(0.01)
        assert "integer overflow" in str(d.history.jobs["orders"].error)
        report = await rt.run(finish)  # judges what it can meanwhile (cold start)
        assert [p.point.period for p in report.points] == [finish - HOUR]
        assert rt.status.judging is False and "fewer than 10 points" in str(rt.status.not_judging)
        assert "orders" in await d.store.history_load()  # stored now: the live run committed


async def test_a_run_waiting_for_its_warm_up_asks_nothing_and_loses_no_period(tmp_path: Path) -> None:
    """The live runs of a metric still warming up ask the source nothing (at 10,000 metrics,
    some 60,000 queries in a warm-up): the job is extended to the newest period each of them
    would have asked, so the periods they left are loaded by it and the first judging run
    takes over from its end, every period in the store once, each the source's value."""
    lead = stable_offset("orders", timedelta(hours=1))
    first = (int(time.time()) // HOUR - 2) * HOUR  # the first run's finish: two hours ago
    now = [first + lead + 60.0]
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    value = {t: 100.0 + t // HOUR % 7 for t in range(first - 10 * 86400, first + 6 * HOUR, HOUR)}
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", value.items())
    conn.commit()
    conn.close()
    metric(tmp_path, "7d", AGGREGATE)  # 168 periods: loaded in the background
    async with running(tmp_path, clock=lambda: now[0]) as d:
        d.scheduler.pause()
        d.history.may_run = lambda: False  # held back: the live runs wait meanwhile
        await d.history.pause()
        rt = d.slots["orders"].runtime
        asked = count_queries(rt)
        for k in range(3):  # three slots while warming up, an hour apart
            now[0] = first + k * HOUR + lead + 60.0
            report = await rt.run(rt.finish_for(d.slots["orders"].trigger.latest_at_or_before(now[0])))
            assert report.points == [] and rt.status.judging is False
        assert asked == []  # the source was not asked for the newest periods
        assert await d.store.watermark("orders") is None  # nothing committed
        d.history.may_run = lambda: True
        d.history.kick("orders")
        await d.history.settled()
        async with asyncio.timeout(10):  # the warm-up's end judges the newest period at once
            while rt.status.judging is not True:
                await asyncio.sleep(0.01)
        newest = first + 2 * HOUR
        assert [(w.start, w.finish) for w in asked] == [(newest - HOUR, newest)]  # the judging run
        assert await d.store.watermark("orders") == newest - HOUR
        stored = (await d.store.read_points("orders", None, newest - 200 * HOUR, newest))[""]
        periods = [p.period for p in stored]
        # the 168 periods of the window before the first run's, and those of the three runs
        assert periods == list(range(first - 169 * HOUR, newest, HOUR))
        assert all(p.value == value[p.period] for p in stored)
