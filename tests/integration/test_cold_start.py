"""A new metric judges from its first run (issue 14): without `start_time`, its first start
loads the history its detectors read, and a metric still in cold start says why, once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from detectkd.alerting.state import Status
from detectkd.runtime import history, loading
from detectkd.ui.pages import judging_note
from tests.support.inprocess import firing_alerts, running
from tests.support.metrics import hourly_orders

HOUR = 3600
NOW = int(time.time()) // HOUR * HOUR  # the newest complete hour ends here
PERIOD_QUERY = """SELECT period_time, value FROM src
        WHERE period_time >= '{{ period_start }}' AND period_time < '{{ period_finish }}'"""
NOW_QUERY = "SELECT value FROM src ORDER BY period_time DESC LIMIT 1"


def metric(tmp_path: Path, window: str, query: str = PERIOD_QUERY) -> None:
    hourly_orders(tmp_path, window, query)


def source(tmp_path: Path, spike_at: int) -> None:
    """Ten days of hourly values, 4x at `spike_at`."""
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE src (period_time TEXT, value REAL)")
    rows = [
        (t, 400.0 if t == spike_at else 100.0 + t // HOUR % 3)
        for t in range(NOW - 10 * 86400, NOW + HOUR, HOUR)
    ]
    conn.executemany("INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?)", rows)
    conn.commit()
    conn.close()


def cold_lines(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if str(e.get("event", "")).startswith("cold start")]


async def test_a_short_window_is_loaded_by_the_first_run_which_judges_the_spike(tmp_path: Path) -> None:
    source(tmp_path, spike_at=NOW - HOUR)
    metric(tmp_path, "2d")  # 48 periods: within max_catch_up, loaded by the first run itself
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        with capture_logs() as logs:
            report = await d.slots["orders"].runtime.run(NOW)
        assert len(report.points) == 49  # the window, then the newest period
        assert d.slots["orders"].runtime.states[""].status is Status.FIRING
        assert len(await firing_alerts(d)) == 1  # only the newest period notifies
        assert cold_lines(logs) == []


@pytest.mark.parametrize("wall_ahead", [0, HOUR])
async def test_a_long_window_loads_in_the_background_then_judges_and_says_why_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wall_ahead: int
) -> None:
    # The daemon's clock decides, never the wall clock: CI ran this across an hour boundary
    # (NOW is taken when the module is collected), and the run that judges a loaded warm-up
    # judged one hour more.
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + wall_ahead)
    source(tmp_path, spike_at=NOW - HOUR)
    metric(tmp_path, "7d")  # 168 periods: a history job beside the live runs
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        with capture_logs() as logs:
            await rt.run(NOW - HOUR)  # the live run while the history loads
            await rt.run(NOW - HOUR)  # logged once, not per run
        lines = cold_lines(logs)
        assert len(lines) == 1 and "loading in the background" in str(lines[0]["why"])
        assert lines[0]["detector"] == "warming up"  # the run waits for it (issue 28)
        entry = d.metric_entry("orders")  # visible per metric: the API, the overview, /metrics
        assert entry["judging"] is False and "loading in the background" in (entry["not_judging"] or "")
        assert 'detectk_metric_judging{metric="orders"} 0' in d.telemetry.exposition().decode()
        await d.history.settled()
        await rt.run(NOW)
        assert rt.states[""].status is Status.FIRING
        assert len(await firing_alerts(d)) == 1
        entry = d.metric_entry("orders")
        assert entry["judging"] is True and entry["not_judging"] is None
        assert 'detectk_metric_judging{metric="orders"} 1' in d.telemetry.exposition().decode()


async def test_a_query_on_now_cannot_load_history_and_says_so(tmp_path: Path) -> None:
    source(tmp_path, spike_at=NOW - HOUR)
    metric(tmp_path, "2d", NOW_QUERY)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        assert not d.slots["orders"].spec.collector.period_aware
        with capture_logs() as logs:
            report = await d.slots["orders"].runtime.run(NOW)
        assert len(report.points) == 1  # nothing before it: its past cannot be asked for
        (line,) = cold_lines(logs)
        assert line["metric"] == "orders" and "does not select by period_start" in str(line["why"])
        assert "does not select by period_start" in (d.metric_entry("orders")["not_judging"] or "")


def rows(tmp_path: Path, hours_ago: list[int], series: str = "") -> None:
    """src: a value at each of `hours_ago` before NOW (`series`: in a column `s` as well)."""
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("CREATE TABLE IF NOT EXISTS src (period_time TEXT, s TEXT, value REAL)")
    conn.executemany(
        "INSERT INTO src VALUES (datetime(?, 'unixepoch'), ?, ?)",
        [(NOW - h * HOUR, series, 100.0 + h % 3) for h in hours_ago],
    )
    conn.commit()
    conn.close()


def judging_lines(exposition: bytes) -> list[str]:
    return [line for line in exposition.decode().splitlines() if line.startswith("detectk_metric_")]


@pytest.mark.parametrize(
    "hours_ago", [[], [5, 6, 7]], ids=["an empty table", "nothing in the newest periods"]
)
async def test_a_source_without_data_for_the_newest_period_is_not_judging(
    tmp_path: Path, hours_ago: list[int]
) -> None:
    """Issue 28, review: after its warm-up, a metric whose only newest point is a missing value
    said `judging: true` (an empty table or a broken filter looked watched)."""
    rows(tmp_path, hours_ago)
    metric(tmp_path, "7d")  # a warm-up in the background
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW - HOUR)
        waiting = d.metric_entry("orders")
        assert waiting["judging"] is False and "periods" in (waiting["not_judging"] or "")  # n of m
        await d.history.settled()
        await rt.run(NOW)
        entry = d.metric_entry("orders")
        assert entry["judging"] is False
        assert entry["not_judging"] == "no data in the source for the newest period"
        assert entry["judging_series"] == {"judging": 0, "cold": 0, "no_data": 1, "warming": 0, "total": 1}
        assert judging_note(entry) == ("not judging: no data in the source", entry["not_judging"])  # overview
        lines = judging_lines(d.telemetry.exposition())
        assert 'detectk_metric_judging{metric="orders"} 0.0' in lines
        assert not any("series_not_judging" in line for line in lines)  # one series: judging says it
        rows(tmp_path, [0])  # the source has the next period: judged (NODATA alerting aside)
        await rt.run(NOW + HOUR)
        entry = d.metric_entry("orders")
        assert entry["not_judging"] is not None and "cold start" in entry["not_judging"]  # too few


async def test_a_cold_series_leaves_a_many_series_metric_judging_and_is_named_with_its_until(
    tmp_path: Path,
) -> None:
    """Issue 28, review: one series new in the source (3 points) marked its whole metric as not
    judging, with a reason about the metric, while the per-series map said ok for it."""
    for s in ("a", "b", "c"):
        rows(tmp_path, list(range(1, 72)), f"{s}")
    rows(tmp_path, [1, 2, 3], "new")
    query = PERIOD_QUERY.replace("period_time, value", "period_time, s, value")
    hourly_orders(tmp_path, "2d", query, extra="\n  series_columns: [s]")
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        await d.slots["orders"].runtime.run(NOW)
        entry = d.metric_entry("orders")
        assert entry["judging"] is True and entry["not_judging"] is None
        assert entry["judging_series"] == {"judging": 3, "cold": 1, "no_data": 0, "warming": 0, "total": 4}
        (why,) = entry["series_not_judging"].values()
        assert list(entry["series_not_judging"]) == ["s=new"]
        assert why.startswith("cold start: fewer than 10 points (3 of 10 points stored, about 7 h more")
        assert entry["series"]["s=new"] == "ok"  # its alert state: it fires nothing while cold
        assert judging_note(entry) == ("judging 3 of 4 series", f"s=new: {why}")  # the overview
        lines = judging_lines(d.telemetry.exposition())
        assert 'detectk_metric_judging{metric="orders"} 1.0' in lines
        assert 'detectk_metric_series_not_judging{metric="orders"} 1.0' in lines


async def test_a_many_series_metric_warming_up_counts_its_series_as_not_judging_while_it_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28, left open: while a run waits for its warm-up, `detectk_metric_series_not_judging`
    was not set (absent, or the value of an earlier run), and `judging_series` was empty: now
    each series the warm-up has loaded counts as warming, named with the job's periods n of m."""
    for s in ("a", "b", "c"):
        rows(tmp_path, list(range(1, 200)), s)
    query = PERIOD_QUERY.replace("period_time, value", "period_time, s, value")
    hourly_orders(tmp_path, "7d", query, extra="\n  series_columns: [s]")  # 168 periods: a warm-up job
    path = tmp_path / "metrics.d" / "orders.yaml"
    path.write_text(path.read_text().replace("{interval: 1h}", "{interval: 1h, batch_load_days: 1}"))
    first, go_on = asyncio.Event(), asyncio.Event()
    store_points, batches = loading.store_points, []

    async def gated(rt: Any, start: int, finish: int, *rest: Any) -> Any:  # the warm-up stops after a batch
        batches.append(start)
        if len(batches) == 2:
            first.set()
            await go_on.wait()
        return await store_points(rt, start, finish, *rest)

    monkeypatch.setattr(history, "store_points", gated)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        d.telemetry.series_not_judging.labels("orders").set(7)  # an earlier runtime's value
        await rt.run(NOW)  # waits for its warm-up
        await asyncio.wait_for(first.wait(), 30)  # one day of its history is in
        lines = judging_lines(d.telemetry.exposition())
        assert 'detectk_metric_judging{metric="orders"} 0.0' in lines
        assert 'detectk_metric_series_not_judging{metric="orders"} 3.0' in lines
        entry = d.metric_entry("orders")
        assert entry["judging"] is False
        assert entry["judging_series"] == {"judging": 0, "cold": 0, "no_data": 0, "warming": 3, "total": 3}
        assert list(entry["series_not_judging"]) == ["s=a", "s=b", "s=c"]
        assert all(
            why.startswith("warming up: its history is loading in the background (24 of 168 periods")
            for why in entry["series_not_judging"].values()
        )
        assert judging_note(entry) == (  # the overview
            "not judging yet (24 of 168 periods of its history loaded)",
            entry["not_judging"],
        )
        go_on.set()
        await d.history.settled()
        await rt.run(NOW)
        entry = d.metric_entry("orders")
        assert entry["judging"] is True
        assert entry["judging_series"] == {"judging": 3, "cold": 0, "no_data": 0, "warming": 0, "total": 3}
        lines = judging_lines(d.telemetry.exposition())
        assert 'detectk_metric_series_not_judging{metric="orders"} 0.0' in lines
