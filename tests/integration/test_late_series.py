"""A series that first appears in a many-series metric after its first start has its history
loaded from the source once and judges on the run after the load (issue 28; it used to count
its own points for hours). Real daemon in-process, real SQLite source and store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from detectkd.alerting.state import Status
from detectkd.errors import CollectError
from detectkd.runtime import collect, serieswarm
from detectkd.runtime.watch import WARMING
from detectkd.ui.pages import judging_note
from tests.support.inprocess import running
from tests.support.lateseries import HOUR, NOW, appears, metric, rows, stored


async def test_a_series_that_appears_later_is_loaded_once_and_judges_on_the_run_after(tmp_path: Path) -> None:
    rows(tmp_path, "a", list(range(-100, 3)))
    metric(tmp_path)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW)  # the first start: series a only
        a_before = stored(tmp_path, "s=a")
        rows(tmp_path, "new", list(range(-100, 0)) + [0, 1], spike=1)  # its history is in the source
        await rt.run(NOW + HOUR)  # judges NOW: s=new is seen, cold, its history asked for
        entry = d.metric_entry("orders")
        assert entry["judging"] is True
        assert entry["judging_series"] == {"judging": 1, "cold": 0, "no_data": 0, "warming": 1, "total": 2}
        assert entry["series_not_judging"]["s=new"].startswith(f"{WARMING}; cold start: fewer than 10 points")
        assert rt.fresh.loading == {"s=new"}
        why = entry["series_not_judging"]["s=new"]
        assert judging_note(entry) == ("judging 1 of 2 series", f"s=new: {why}")  # the overview
        await d.history.series.settled()
        assert d.history.series.loads == 1
        # Its 48 periods before the one the live run judged, from the source; that one, the live run's.
        assert stored(tmp_path, "s=new") == [NOW + h * HOUR for h in range(-48, 1)]
        assert stored(tmp_path, "s=a") == a_before + [NOW]  # the load stored no other series' points
        await rt.run(NOW + 2 * HOUR)  # judges NOW + 1h, the spike, with its history
        assert rt.states["s=new"].status is Status.FIRING
        entry = d.metric_entry("orders")
        assert entry["judging_series"] == {"judging": 2, "cold": 0, "no_data": 0, "warming": 0, "total": 2}
        assert rt.fresh.loading == set() and d.history.series.loads == 1  # once
        assert stored(tmp_path, "s=new") == [NOW + h * HOUR for h in range(-48, 2)]  # nothing lost
        assert 'detectk_metric_series_not_judging{metric="orders"} 0.0' in d.telemetry.exposition().decode()


async def test_a_query_that_answers_one_period_at_a_time_keeps_the_series_cold(tmp_path: Path) -> None:
    rows(tmp_path, "a", list(range(-100, 3)))
    metric(tmp_path, "\n  multi_period: false")
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await appears(tmp_path, rt, "new", list(range(-100, 0)) + [0, 1], spike=1)
        await d.history.series.settled()
        assert stored(tmp_path, "s=new") == [NOW]  # not asked period by period: the documented limit
        rows(tmp_path, "newer", list(range(-100, 3)))
        await rt.run(NOW + 2 * HOUR)
        assert rt.states["s=new"].status is Status.OK  # cold: it fills by its own runs
        entry = d.metric_entry("orders")
        assert entry["judging_series"]["cold"] == 2 and entry["judging_series"]["warming"] == 0
        await d.history.series.settled()
        assert d.history.series.loads == 1  # not tried again for the next new series


async def test_series_that_appear_while_a_load_runs_go_together_in_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows(tmp_path, "a", list(range(-100, 13)))
    metric(tmp_path)
    asked: list[tuple[int, int]] = []
    held, go_on = asyncio.Event(), asyncio.Event()
    collect_range = collect.collect_range

    async def gated(collector: Any, spec: Any, grid: Any, start: int, finish: int, many: Any) -> Any:
        asked.append((start, finish))
        if len(asked) == 1:  # the first load waits: the next runs' new series queue up
            held.set()
            await go_on.wait()
        return await collect_range(collector, spec, grid, start, finish, many)

    monkeypatch.setattr(serieswarm, "collect_range", gated)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await appears(tmp_path, rt, "b", list(range(-100, 13)))  # b: its load starts and waits
        await asyncio.wait_for(held.wait(), 30)
        rows(tmp_path, "c", list(range(-100, 13)))
        rows(tmp_path, "d", list(range(-100, 13)))
        for h in range(2, 12):  # c and d, seen at NOW + 1h, asked for at NOW + 10h (the spacing)
            await rt.run(NOW + h * HOUR)
        assert rt.fresh.loading == {"s=b", "s=c", "s=d"}
        go_on.set()
        await d.history.series.settled()
        assert asked == [
            (NOW - 48 * HOUR, NOW),
            (NOW + HOUR - 48 * HOUR, NOW + HOUR),
        ]  # one query for c and d
        assert stored(tmp_path, "s=c") == [NOW + h * HOUR for h in range(-47, 11)]
        await rt.run(NOW + 12 * HOUR)
        entry = d.metric_entry("orders")
        assert entry["judging_series"] == {"judging": 4, "cold": 0, "no_data": 0, "warming": 0, "total": 4}


async def test_a_failed_load_leaves_the_series_cold_and_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows(tmp_path, "a", list(range(-100, 3)))
    metric(tmp_path)

    async def down(*args: Any) -> Any:
        raise CollectError("source down")

    monkeypatch.setattr(serieswarm, "collect_range", down)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await appears(tmp_path, rt, "new", list(range(-100, 0)) + [0, 1])
        await d.history.series.settled()
        assert rt.fresh.loading == set()  # no longer shown as warming: cold, filling by its own runs
        await rt.run(NOW + 2 * HOUR)
        assert d.history.series.loads == 1  # not asked again
        entry = d.metric_entry("orders")
        assert entry["judging_series"] == {"judging": 1, "cold": 1, "no_data": 0, "warming": 0, "total": 2}
        assert entry["late_series"] == "off: the load failed: source down"


async def test_a_shadow_variant_judges_the_late_series_with_its_history_too(tmp_path: Path) -> None:
    rows(tmp_path, "a", list(range(-100, 3)))
    metric(tmp_path)
    path = tmp_path / "metrics.d" / "orders.yaml"
    variant = "shadow:\n  - name: tighter\n    detector: {type: mad, params: {window_size: 2d, n_sigma: 4, min_samples: 10}}\n"
    path.write_text(path.read_text() + variant)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await appears(tmp_path, rt, "new", list(range(-100, 0)) + [0, 1], spike=1)
        await d.history.series.settled()
        await rt.run(NOW + 2 * HOUR)
        (v,) = rt.shadows.variants
        assert v.memory.filled("s=new") == 50  # its window: 48 loaded, 2 judged live
        assert v.states["s=new"].status is Status.FIRING


async def test_a_load_above_max_rows_is_the_metrics_last_and_says_why(tmp_path: Path) -> None:
    rows(tmp_path, "a", list(range(-100, 16)))
    metric(tmp_path, "\n  multi_period: true\n  max_rows: 70")  # the warm-up's 48 rows fit, 2 series' not
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW)
        rows(tmp_path, "new", list(range(-100, 16)))
        with capture_logs() as logs:
            await rt.run(NOW + HOUR)
            await d.history.series.settled()
            rows(tmp_path, "newer", list(range(-100, 16)))
            for h in range(2, 14):  # past the spacing: another load would be asked
                await rt.run(NOW + h * HOUR)
                await d.history.series.settled()
        assert d.history.series.loads == 1  # not asked again at each spacing
        entry = d.metric_entry("orders")
        assert entry["late_series"] == "off: the range's answer is above collector.max_rows"
        assert rt.fresh.loading == set() and entry["judging_series"]["warming"] == 0
        said = [e for e in logs if e["event"].startswith("series history not loaded")]
        assert len(said) == 1 and said[0]["metric"] == "orders"


async def test_a_failed_load_is_the_metrics_last_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows(tmp_path, "a", list(range(-100, 16)))
    metric(tmp_path)

    async def down(*args: Any) -> Any:
        raise TimeoutError()

    monkeypatch.setattr(serieswarm, "collect_range", down)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await appears(tmp_path, rt, "new", list(range(-100, 16)))
        await d.history.series.settled()
        rows(tmp_path, "newer", list(range(-100, 16)))
        for h in range(2, 14):
            await rt.run(NOW + h * HOUR)
            await d.history.series.settled()
        assert d.history.series.loads == 1
        why = d.metric_entry("orders")["late_series"]
        assert why == "off: the load took longer than history.batch_timeout"


async def test_a_load_done_before_a_restart_is_read_from_the_store_after_it(tmp_path: Path) -> None:
    rows(tmp_path, "a", list(range(-100, 4)))
    metric(tmp_path)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await appears(tmp_path, rt, "new", list(range(-100, 2)) + [2, 3], spike=3)
        await d.history.series.settled()
        assert rt.fresh.stored == {"s=new"}  # loaded, not read back yet
        await d.snapshots.final()
    assert len(stored(tmp_path, "s=new")) == 49
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW + 2 * HOUR)  # judges NOW + 1h from the snapshot, its history from the store
        assert rt.memory.caught_up == 0  # the snapshot was taken (a's window not read again)
        assert rt.memory.filled("s=new") == 50
        await rt.run(NOW + 3 * HOUR)
        await rt.run(NOW + 4 * HOUR)  # NOW + 3h: the spike, judged with its history
        assert rt.states["s=new"].status is Status.FIRING


async def test_a_load_stored_before_a_crash_is_read_from_the_store_before_the_catch_up(
    tmp_path: Path,
) -> None:
    rows(tmp_path, "a", list(range(-100, 4)))
    metric(tmp_path)
    snap = tmp_path / "data" / "memory.snapshot"
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await appears(tmp_path, rt, "new", list(range(-100, 2)) + [2, 3], spike=3)
        await d.history.series.settled()
        await d.snapshots.final()  # the background snapshot: s=new loaded, not read back
        kept = snap.read_bytes()
        await rt.run(NOW + 2 * HOUR)  # committed after it: the watermark moves on
    snap.write_bytes(kept)  # a kill -9: the stop's snapshot never written
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW + 3 * HOUR)  # caught up from NOW + 1h, then judges NOW + 2h
        assert (rt.memory.caught_up or 0) > 0  # the snapshot was taken and caught up
        assert rt.memory.filled("s=new") == 48 + 1 + 1
        await rt.run(NOW + 4 * HOUR)  # NOW + 3h: the spike, judged with its history
        assert rt.states["s=new"].status is Status.FIRING


async def test_series_asked_for_while_a_load_fails_are_not_loaded_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows(tmp_path, "a", list(range(-100, 13)))
    metric(tmp_path)
    held, go_on = asyncio.Event(), asyncio.Event()
    asked: list[int] = []

    async def down(*args: Any) -> Any:
        asked.append(args[3])
        held.set()
        await go_on.wait()
        raise CollectError("source down")

    monkeypatch.setattr(serieswarm, "collect_range", down)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await appears(tmp_path, rt, "b", list(range(-100, 13)))  # b: its load starts and waits
        await asyncio.wait_for(held.wait(), 30)
        rows(tmp_path, "c", list(range(-100, 13)))
        for h in range(2, 12):  # c, asked for at NOW + 10h while b's load still runs
            await rt.run(NOW + h * HOUR)
        go_on.set()  # b's load fails: the metric's last
        await d.history.series.settled()
        assert len(asked) == 1 and d.history.series.loads == 1
        assert rt.fresh.loading == set()
        assert d.metric_entry("orders")["late_series"] == "off: the load failed: source down"
