"""A many-series metric's windows on one time grid share one times buffer (issue 28): a
full one-minute `auto` history is 6,734 points, 28 KiB of times a series. Sharing changes
no window's content: each holds exactly what a window of its own would."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from detectkd.detectors.base import Current, History, Result
from detectkd.runtime.gridtimes import TimesPool
from detectkd.runtime.memory import SeriesMemory
from detectkd.runtime.windows import EPOCH, SeriesWindow
from detectkd.storage.window import WindowRows
from detectkd.timegrid import Grid

T0 = 1_795_000_000 - 1_795_000_000 % 60


def rows(times: np.ndarray, seed: int) -> WindowRows:
    values = np.random.default_rng(seed).normal(100, 5, times.size)
    return WindowRows(times.astype(np.int64), values, None, float(times[-1]))


class Reach:
    """A detector that reads ten days of history (what the windows keep is all that counts)."""

    id = "reach"

    def detect(self, history: History, point: Current) -> Result:
        return Result(self.id, point.value, False, 0.0)

    def window_seconds(self, interval_seconds: int) -> int:
        return 10 * 86_400

    def feature_names(self) -> tuple[str, ...]:
        return ()


def memory() -> SeriesMemory:
    grid = Grid(timedelta(minutes=1))
    return SeriesMemory([Reach()], grid, grid.tz)


def test_series_on_one_grid_share_their_times_and_a_series_with_a_gap_gets_its_own() -> None:
    times = T0 + np.arange(6734, dtype=np.int64) * 60
    gap = np.delete(times, 5000)  # one missing period
    mem = memory()
    stored = {"a": rows(times, 1), "b": rows(times, 2), "gap": rows(gap, 3)}
    mem.load(stored)
    a, b, g = (mem.windows[s] for s in ("a", "b", "gap"))
    assert np.shares_memory(a.saved()[0], b.saved()[0])
    assert not np.shares_memory(a.saved()[0], g.saved()[0])
    assert not np.shares_memory(a.saved()[1], b.saved()[1])  # values stay per series
    for name, w in (("a", a), ("b", b), ("gap", g)):
        h = w.history()
        assert np.array_equal(h.times, stored[name].times) and np.array_equal(h.values, stored[name].values)
    # live runs: every series gets each period, past the point where the windows move (a
    # sixteenth of their length); the gap series stays apart, the others keep sharing
    for k in range(6734, 6734 + 1000):
        for w in (a, b, g):
            w.add(T0 + k * 60, float(k), {})
    assert np.shares_memory(a.saved()[0], b.saved()[0])
    assert not np.shares_memory(a.saved()[0], g.saved()[0])
    want = T0 + np.arange(6734 + 1000, dtype=np.int64) * 60
    assert np.array_equal(a.history().times, want) and np.array_equal(b.history().times, want)
    assert np.array_equal(g.history().times, np.delete(want, 5000))
    # a period missing in one series only, live: it parts from the shared buffer, correctly
    for w in (a, b):
        w.add(T0 + 7734 * 60, 1.0, {})
    b.add(T0 + 7735 * 60, 2.0, {})
    a.add(T0 + 7736 * 60, 3.0, {})  # a has no 7735
    assert a.history().times[-2:].tolist() == [T0 + 7734 * 60, T0 + 7736 * 60]
    assert b.history().times[-2:].tolist() == [T0 + 7734 * 60, T0 + 7735 * 60]
    assert a.history().values[-1] == 3.0 and b.history().values[-1] == 2.0


def test_windows_that_take_the_same_times_from_a_snapshot_keep_one_copy() -> None:
    pool = TimesPool()
    t = (T0 - EPOCH + np.arange(3000) * 60).astype(np.int32)
    one, two = SeriesWindow(10**9, (), pool=pool), SeriesWindow(10**9, (), pool=pool)
    one.take(t, np.ones(3000), {})
    two.take(t.copy(), np.full(3000, 2.0), {})
    assert one.saved()[0] is not None and np.shares_memory(one.saved()[0], two.saved()[0])
    assert two.history().values[0] == 2.0 and one.history().values[0] == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_shared_windows_hold_what_windows_of_their_own_hold(seed: int) -> None:
    """Random appends, missing periods, late points (inserts), bulk loads, trims and
    rollbacks on windows sharing a pool, each against a lone window given the same."""
    rng = np.random.default_rng(seed)
    pool, n, miss = TimesPool(), 5, 0.03 if seed % 2 else 0.0005
    span = 500 * 60  # trims: the windows move every so often
    shared = [SeriesWindow(span, ("f",), pool=pool) for _ in range(n)]
    lone = [SeriesWindow(span, ("f",)) for _ in range(n)]
    start = T0 + rng.integers(0, 100) * 60
    bulk = start + np.arange(300, dtype=np.int64) * 60
    for i in range(n):
        keep = bulk if i % 2 else np.delete(bulk, rng.integers(0, 300, i))
        vals = rng.normal(0, 1, keep.size)
        feats = {"f": vals * 2}
        shared[i].extend(keep, vals, feats)
        lone[i].extend(keep, vals, feats)
    assert np.shares_memory(shared[1].saved()[0], shared[3].saved()[0])  # the same times loaded
    t = int(bulk[-1])
    checkpoints: list[tuple[int, list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]] = []
    for _ in range(1500):
        t += 60
        op = rng.random()
        if op < 0.05 and checkpoints:  # a run rolled back
            since, cs, cl = checkpoints.pop()
            for w, c in zip(shared, cs, strict=True):
                w.restore(c, since)
            for w, c in zip(lone, cl, strict=True):
                w.restore(c, since)
            continue
        if op < 0.1:
            checkpoints = [(t, [w.checkpoint() for w in shared], [w.checkpoint() for w in lone])]
        for i in range(n):
            if rng.random() < miss:  # this series has no row for this period
                continue
            when = t - 60 * int(rng.integers(1, 50)) if rng.random() < 0.01 else t  # a late point
            v = float(rng.normal())
            shared[i].add(when, v, {"f": v})
            lone[i].add(when, v, {"f": v})
    for s, lw in zip(shared, lone, strict=True):
        a, b = s.history(), lw.history()
        assert np.array_equal(a.times, b.times)
        assert np.array_equal(a.values, b.values, equal_nan=True)
        assert np.array_equal(a.features["f"], b.features["f"], equal_nan=True)
