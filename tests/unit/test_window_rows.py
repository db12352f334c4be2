"""A first run's window load from arrays (`storage.window`, issue 28): SQLite's `read_window` reads
what `read_points` reads, and a window loaded from it holds what appending the points held."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from detectkd.collectors.points import Point
from detectkd.storage.base import RunRecord, StoredPoint
from detectkd.storage.memory import MemoryStore
from detectkd.storage.sqlite import SqliteStore
from detectkd.storage.window import WindowRows, read_window, rows_of
from tests.support.judging import STEP, T0, setup

FEATURED = """\
name: orders
schedule: {interval: 10m}
collector:
  type: sqlite
  context_columns: [load]
  params: {database: /nonexistent.db, query: "SELECT 1 AS value"}
detector:
  type: mad
  params: {window_size: 100, n_sigma: 4, min_samples: 20, seasonal_features: [hour_of_day, load]}
alerter: {type: log}
"""


def points() -> list[Point]:
    out = []
    for k in range(30):
        value = None if k % 7 == 3 else 100.0 + k
        context = {"load": float(k % 4)} if k % 2 else {}
        out += [Point("s=a", T0 + k * STEP, value, context), Point("s=b", T0 + k * STEP, 5.0 * k)]
    out.append(Point("s=a", T0 + 30 * STEP + 60, 1.0))  # off the grid (another interval's)
    out.append(Point("s=c", T0, None))  # a series without a value
    return out


def same(a: WindowRows, b: WindowRows) -> bool:
    return (
        a.times.dtype == b.times.dtype == np.int64
        and a.times.tolist() == b.times.tolist()
        and a.values.tobytes() == b.values.tobytes()
        and a.contexts == b.contexts
        and a.last == b.last
    )


async def test_sqlite_reads_a_window_as_its_points_read(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        await store.commit(RunRecord("orders", points=points(), watermark=T0))
        since, until = T0 + 2 * STEP, T0 + 40 * STEP
        got = await store.read_window("orders", since, until)
        want = {s: rows_of(p) for s, p in (await store.read_points("orders", None, since, until)).items()}
    finally:
        await store.close()
    assert sorted(got) == sorted(want) == ["s=a", "s=b"]
    assert all(same(got[s], want[s]) for s in got)
    a = got["s=a"]
    assert a.contexts is not None and a.contexts[1] == {"load": 3.0} and got["s=b"].contexts is None
    assert math.isnan(a.values[1]) and a.last == T0 + 30 * STEP + 60


async def test_a_store_without_read_window_is_read_through_its_points() -> None:
    store = MemoryStore()
    await store.open()
    await store.commit(RunRecord("orders", points=points(), watermark=T0))
    got = await read_window(store, "orders", T0, T0 + 40 * STEP)
    assert got["s=c"].last == -math.inf and len(got["s=c"]) == 1
    assert got["s=a"].times.tolist()[:3] == [T0, T0 + STEP, T0 + 2 * STEP]


def test_a_window_loaded_from_rows_holds_what_appending_the_points_held(tmp_path: Path) -> None:
    memory, _ = setup(tmp_path, FEATURED)
    stored: dict[str, list[StoredPoint]] = {}
    for p in points():
        stored.setdefault(p.series, []).append(StoredPoint(p.period, p.value, p.context))
    memory.load({s: rows_of(pts) for s, pts in stored.items()})
    other, _ = setup(tmp_path / "o", FEATURED)
    for s, pts in stored.items():
        for sp in pts:
            if sp.period % STEP == 0:  # what a load keeps: the points on the grid
                other.window(s).add(sp.period, sp.value, other.features_at(sp.period, sp.context))
    assert memory.features == ("hour_of_day", "load")
    for s in stored:
        h, want = memory.windows[s].history(), other.windows[s].history()
        assert h.times.tolist() == want.times.tolist() and h.values.tobytes() == want.values.tobytes()
        assert {f: c.tobytes() for f, c in h.features.items()} == {
            f: c.tobytes() for f, c in want.features.items()
        }
    assert len(memory.windows["s=a"]) == 30 and memory.loaded


async def test_a_read_gives_the_series_on_one_grid_one_times_array(tmp_path: Path) -> None:
    """Issue 28: a 1,000-series metric's window load held a times array a series while it waited
    (54 KiB each at a full one-minute `auto` history); the series with the same times share one,
    a series with a missing period has its own, in SQLite's read and through `read_points`."""
    pts = [Point(s, T0 + k * STEP, float(k)) for s in ("s=a", "s=b", "s=gap") for k in range(50)]
    pts = [p for p in pts if not (p.series == "s=gap" and p.period == T0 + 20 * STEP)]
    sqlite, memory = SqliteStore(tmp_path / "s.db"), MemoryStore()
    for store in (sqlite, memory):
        await store.open()
        await store.commit(RunRecord("m", points=pts, watermark=T0))
    try:
        for got in (
            await sqlite.read_window("m", T0, T0 + 60 * STEP),
            await read_window(memory, "m", T0, T0 + 60 * STEP),
        ):
            assert np.shares_memory(got["s=a"].times, got["s=b"].times)
            assert not np.shares_memory(got["s=a"].times, got["s=gap"].times)
            assert got["s=b"].times.tolist() == [T0 + k * STEP for k in range(50)]
            assert got["s=gap"].times.tolist() == [T0 + k * STEP for k in range(50) if k != 20]
    finally:
        await sqlite.close()
