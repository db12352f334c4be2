"""A late series' history load is one range query over the detectors' window for every series:
bounded per metric (one per 10 periods, at least 10 minutes; two per window of periods),
switched off by `schedule.late_series_warmup: false` apart from the first start's warm-up, and
read back from the store in one read when many series arrive at once. Real daemon in-process,
real SQLite source and store; the source's queries counted at the collector."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from detectkd.alerting.state import Status
from detectkd.collectors.sqlite import SqliteCollector
from detectkd.runtime import freshseries, offloop
from detectkd.runtime.freshseries import spacing
from detectkd.runtime.memory import SeriesMemory
from detectkd.runtime.watch import WARMING
from detectkd.storage.sqlite import SqliteStore
from detectkd.timegrid import fmt_local
from tests.support.inprocess import running
from tests.support.lateseries import HOUR, NOW, metric, rows, stored


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every query the SQLite sources get, as its window (start, finish)."""
    got: list[tuple[int, int]] = []
    ask = SqliteCollector._ask

    async def counted(self: SqliteCollector, ws: Sequence[Any]) -> Any:
        got.extend((w.start, w.finish) for w in ws)
        return await ask(self, ws)

    monkeypatch.setattr(SqliteCollector, "_ask", counted)
    return got


def ranges(windows: list[tuple[int, int]], after: int) -> list[tuple[int, int]]:
    """The queries of more than one period asked after the `after`-th query."""
    return [(s, f) for s, f in windows[after:] if f - s > HOUR]


def test_the_spacing_is_ten_periods_and_at_least_ten_minutes() -> None:
    assert spacing(3600) == 10 * 3600
    assert spacing(60) == 600
    assert spacing(10) == 600  # 60 periods
    assert spacing(7 * 60) == 70 * 60  # 10 periods


async def test_a_metric_whose_series_all_change_every_run_asks_at_most_two_loads_per_window(
    tmp_path: Path, windows: list[tuple[int, int]]
) -> None:
    rows(tmp_path, "a", list(range(-100, 102)))
    for h in range(102):  # per-request ids: a series of its own each hour
        rows(tmp_path, f"r{h}", [h])
    metric(tmp_path)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW)  # the first start: its warm-up is a range query, not counted
        first = len(windows)
        with capture_logs() as logs:
            for h in range(1, 101):  # 100 runs, each with a new series
                await rt.run(NOW + h * HOUR)
                await d.history.series.settled()
                if h == 30:
                    entry = d.metric_entry("orders")
                    assert entry["late_series"].startswith(f"off until {fmt_local(NOW + 48 * HOUR, rt.tz)}")
                    assert rt.fresh.loading == set()  # none shown as warming: they fill by their own runs
                    assert entry["judging_series"]["warming"] == 0 and entry["judging_series"]["judging"] >= 1
        # One at once (seen at NOW), then the series held back by the spacing at NOW + 10h (one
        # query from the oldest one's window to the newest one's first period); at NOW + 20h
        # the third in 48 h: the budget is spent until NOW + 48h, the series seen until then
        # start cold. Then again: 48h, 58h, and 96h.
        assert ranges(windows, first) == [
            (NOW - 48 * HOUR, NOW),
            (NOW + HOUR - 48 * HOUR, NOW + 10 * HOUR),
            (NOW, NOW + 48 * HOUR),
            (NOW + 49 * HOUR - 48 * HOUR, NOW + 58 * HOUR),
            (NOW + 48 * HOUR, NOW + 96 * HOUR),
        ]
        assert d.history.series.loads == 5
        spent = [e for e in logs if e["event"] == "late series not loaded: load budget spent"]
        assert [e["until"] for e in spent] == [fmt_local(NOW + h * HOUR, rt.tz) for h in (48, 96)]


async def test_a_series_held_back_by_the_spacing_judges_with_its_history_once_loaded(
    tmp_path: Path, windows: list[tuple[int, int]]
) -> None:
    rows(tmp_path, "a", list(range(-100, 13)))
    metric(tmp_path)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW)
        first = len(windows)
        rows(tmp_path, "b", list(range(-100, 13)))
        await rt.run(NOW + HOUR)  # b seen at NOW: loaded at once
        await d.history.series.settled()
        rows(tmp_path, "c", list(range(-100, 13)), spike=11)  # its history is in the source
        for h in range(2, 11):  # c seen at NOW + 1h: held back until NOW + 10h
            await rt.run(NOW + h * HOUR)
            await d.history.series.settled()
        assert ranges(windows, first) == [(NOW - 48 * HOUR, NOW)]
        entry = d.metric_entry("orders")
        assert entry["series_not_judging"]["s=c"].startswith(WARMING)  # waiting for its load
        assert "late_series" not in entry
        await rt.run(NOW + 11 * HOUR)  # judges NOW + 10h: the spacing allows c's load
        await d.history.series.settled()
        assert ranges(windows, first)[1:] == [(NOW + HOUR - 48 * HOUR, NOW + HOUR)]  # c's only
        assert stored(tmp_path, "s=c") == [NOW + h * HOUR for h in range(-47, 11)]
        await rt.run(NOW + 12 * HOUR)  # judges NOW + 11h, c's spike, with its history
        assert rt.memory.filled("s=c") == 39 + 10 + 1  # a full window: loaded, judged live, this one
        assert rt.states["s=c"].status is Status.FIRING
        assert d.history.series.loads == 2 and rt.fresh.loading == set()


async def test_late_series_warmup_false_asks_no_range_query_but_the_first_start_warms_up(
    tmp_path: Path, windows: list[tuple[int, int]]
) -> None:
    rows(tmp_path, "a", list(range(-100, 3)))
    metric(tmp_path)
    path = tmp_path / "metrics.d" / "orders.yaml"
    path.write_text(path.read_text().replace("{interval: 1h}", "{interval: 1h, late_series_warmup: false}"))
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW)
        assert len(stored(tmp_path, "s=a")) == 49  # warmed up: 48 periods of history, then judged
        first = len(windows)
        rows(tmp_path, "new", list(range(-100, 3)))
        await rt.run(NOW + HOUR)
        await d.history.series.settled()
        await rt.run(NOW + 2 * HOUR)
        assert ranges(windows, first) == [] and d.history.series.loads == 0
        assert stored(tmp_path, "s=new") == [NOW, NOW + HOUR]  # its own runs only
        entry = d.metric_entry("orders")
        assert entry["late_series"] == "off: schedule.late_series_warmup is false"
        assert entry["judging_series"] == {"judging": 1, "cold": 1, "no_data": 0, "warming": 0, "total": 2}


async def test_many_late_series_at_once_are_read_back_from_the_store_in_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows(tmp_path, "a", list(range(-100, 3)))
    metric(tmp_path)
    reads: list[str | None] = []
    read_points, read_window = SqliteStore.read_points, SqliteStore.read_window

    async def points(self: SqliteStore, metric: str, series: str | None, since: int, until: int) -> Any:
        reads.append(series)
        return await read_points(self, metric, series, since, until)

    async def window(self: SqliteStore, metric: str, since: int, until: int) -> Any:
        reads.append(None)
        return await read_window(self, metric, since, until)

    monkeypatch.setattr(SqliteStore, "read_points", points)
    monkeypatch.setattr(SqliteStore, "read_window", window)
    gated: list[bool] = []  # the window loads' bound entered, as a first run's window load
    loads: list[bool] = []  # SeriesMemory.load on the event loop's thread?
    load = SeriesMemory.load

    @contextlib.asynccontextmanager
    async def counted(many: bool) -> AsyncIterator[None]:
        gated.append(many)
        async with offloop.window_load(many):
            yield

    def recorded(self: SeriesMemory, stored: Any) -> None:
        loads.append(threading.current_thread() is threading.main_thread())
        load(self, stored)

    monkeypatch.setattr(freshseries, "window_load", counted)
    monkeypatch.setattr(SeriesMemory, "load", recorded)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW)
        for i in range(40):
            rows(tmp_path, f"n{i:02}", list(range(-100, 3)))
        await rt.run(NOW + HOUR)
        await d.history.series.settled()
        assert len(rt.fresh.stored) == 40
        reads.clear()
        loads.clear()
        await rt.run(NOW + 2 * HOUR)
        assert reads == [None]  # one read of the metric's window, not one per series
        assert gated == [True]  # under the bound of many-series window loads
        assert loads == [False]  # 40 windows of 48 points loaded in one call, in a judge thread
        assert {rt.memory.filled(f"s=n{i:02}") for i in range(40)} == {48 + 2}
        assert rt.fresh.loading == set() and rt.fresh.stored == set()


async def test_a_new_series_after_every_spacing_gets_at_most_two_loads_per_window(
    tmp_path: Path, windows: list[tuple[int, int]]
) -> None:
    # Pod names: one new series just after each spacing (the old churn count never saw two in a
    # row), each load reading the whole 48 h window of every series.
    rows(tmp_path, "a", list(range(-100, 122)))
    arrivals = [11 * k + 1 for k in range(11)]  # NOW + 1h, 12h, 23h, ... 111h
    for h in arrivals:
        rows(tmp_path, f"p{h}", list(range(h, 122)))
    metric(tmp_path)
    async with running(tmp_path, clock=lambda: NOW + 60) as d:
        d.scheduler.pause()
        rt = d.slots["orders"].runtime
        await rt.run(NOW)
        first = len(windows)
        with capture_logs() as logs:
            for h in range(1, 121):
                await rt.run(NOW + h * HOUR)
                await d.history.series.settled()
                if h == 40:  # the budget spent by the loads at NOW + 1h and 12h, until 1h + 48h
                    entry = d.metric_entry("orders")
                    assert entry["late_series"].startswith(
                        f"off until {fmt_local(NOW + 49 * HOUR, rt.tz)}: 2 loads"
                    )
                    assert entry["series_not_judging"]["s=p34"].startswith("cold start")  # not warming
        asked = [f for _, f in ranges(windows, first)]
        # 1h and 12h; 23h spent the budget until 49h (34h, 45h cold); 56h and 67h; 78h spent it
        # until 104h (89h, 100h cold); 111h. It was 11: one per arrival.
        assert asked == [NOW + h * HOUR for h in (1, 12, 56, 67, 111)] and d.history.series.loads == 5
        assert all(sum(a - 48 * HOUR < b <= a for b in asked) <= 2 for a in asked)  # 2 in any 48 h
        spent = [e for e in logs if e["event"] == "late series not loaded: load budget spent"]
        assert len(spent) == 2  # once each time the budget ran out
        assert rt.fresh.loading == set()
