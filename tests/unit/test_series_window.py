"""A series window loaded in bulk holds exactly what point-by-point appends would hold."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.runtime.windows import EPOCH, SeriesWindow


@pytest.mark.parametrize("order", ["increasing", "shuffled", "after a point"])
def test_extend_equals_appending_point_by_point(order: str) -> None:
    rng = np.random.default_rng(1)
    times = np.arange(0, 5000 * 60, 60, dtype=np.int64)
    values = rng.normal(0, 1, times.size)
    values[::97] = np.nan
    feat = (times // 3600 % 24).astype(np.float64)
    span = 3000 * 60  # shorter than the points: the window trims its start
    if order == "shuffled":
        p = rng.permutation(times.size)
        times, values, feat = times[p], values[p], feat[p]
    bulk = SeriesWindow(span, ("hour",))
    if order == "after a point":
        bulk.add(-60, 5.0, {"hour": 23.0})
    bulk.extend(times, values, {"hour": feat})
    ref = SeriesWindow(span, ("hour",))
    if order == "after a point":
        ref.add(-60, 5.0, {"hour": 23.0})
    for t, v, f in zip(times.tolist(), values.tolist(), feat.tolist(), strict=True):
        ref.add(t, None if v != v else v, {"hour": f})
    a, b = bulk.history(), ref.history()
    assert len(bulk) == len(ref) > 0
    assert bool((np.diff(a.times) > 0).all())  # in order, each time once
    assert np.array_equal(a.times, b.times)
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert np.array_equal(a.features["hour"], b.features["hour"])
    assert bulk.negative == ref.negative is True


@pytest.mark.parametrize("size", [0, 1, 300])
def test_a_window_that_takes_arrays_then_grows_holds_what_appends_would(size: int) -> None:
    """A restart's snapshot hands a window its arrays without a copy; the points appended
    after it (the window grows, compacts, trims) must land as if each had been appended."""
    times = np.arange(size, dtype=np.int64) * 60
    values = np.where(np.arange(size) % 50 == 7, -1.0, 1.0 + np.arange(size) % 3)
    hour = (times // 3600 % 24).astype(np.float64)
    took, ref = SeriesWindow(200 * 60, ("hour",)), SeriesWindow(200 * 60, ("hour",))
    took.take(times - EPOCH, values.copy(), {"hour": hour.copy()})
    for t, v, f in zip(times.tolist(), values.tolist(), hour.tolist(), strict=True):
        ref.add(t, v, {"hour": f})
    for t in range(size, size + 400):
        took.add(t * 60, 2.0, {"hour": float(t % 24)})
        ref.add(t * 60, 2.0, {"hour": float(t % 24)})
    a, b = took.history(), ref.history()
    assert np.array_equal(a.times, b.times) and np.array_equal(a.values, b.values)
    assert np.array_equal(a.features["hour"], b.features["hour"]) and took.negative == ref.negative


@pytest.mark.parametrize("how", ["appended", "extended", "taken"])
def test_a_full_window_moves_to_a_sixteenth_more_room_not_twice(how: str) -> None:
    """Issue 28: 10,000 windows of 2,000 points held 4,000 slots each (doubling). A move
    leaves a sixteenth of the live points free: 2,000 points and a few appends hold 2,125
    slots; a window that trims its start keeps its size, moving every sixteenth of its
    length. Times take 4 bytes each (from 2038: 1970 to 2106)."""
    times = np.arange(2000, dtype=np.int64) * 60
    values = np.ones(2000)
    w = SeriesWindow(10**9, ())
    if how == "appended":
        for t in times.tolist():
            w.add(t, 1.0, {})
    elif how == "extended":
        w.extend(times, values, {})
    else:
        w.take(times - EPOCH, values.copy(), {})  # as a snapshot holds them
    for t in range(2000, 2005):  # the next live runs
        w.add(t * 60, 1.0, {})
    assert len(w) == 2005 and w._cap <= 2005 + 2005 // 16 + 16
    assert w._times.itemsize == 4
    got = w.history().times
    assert got.dtype == np.int64 and np.array_equal(got, np.arange(2005) * 60)
    trimming = SeriesWindow(2000 * 60 - 1, ())  # holds the last 2,000 points
    trimming.extend(times, values, {})
    caps = set()
    for t in range(2000, 12000):
        trimming.add(t * 60, 1.0, {})
        caps.add(trimming._cap)
    assert len(trimming) == 2000 and max(caps) <= 2000 + 125
    assert np.array_equal(trimming.history().times, np.arange(10000, 12000) * 60)


@pytest.mark.parametrize("far", [-(2**40), 2**33, 2**32 + 5])
def test_times_beyond_the_four_byte_range_are_kept_exactly(far: int) -> None:
    """A window with a time outside 1970..2106 keeps 8-byte times: nothing wraps around."""
    times = np.array([1_700_000_000, 1_700_000_060], np.int64)
    for how in ("add", "extend", "take", "insert"):
        w = SeriesWindow(10**15, ())
        if how == "insert":
            w.extend(times, np.ones(2), {})
            w.add(far, 2.0, {})
            want = sorted([*times.tolist(), far])
        else:
            both = np.sort(np.array([1_700_000_000, far], np.int64))
            if how == "add":
                for t in both.tolist():
                    w.add(t, 1.0, {})
            elif how == "extend":
                w.extend(both, np.ones(2), {})
            else:
                w.take(both - EPOCH, np.ones(2), {})
            want = both.tolist()
        assert w.history().times.tolist() == want, how
        assert w.last_time == want[-1]


@pytest.mark.parametrize("start", [1_735_689_600, EPOCH + 2**31 - 90 * 60, 2**33])
def test_appends_keep_exactly_the_points_within_the_span(start: int) -> None:
    """A full window loses one point per append (without a search) or, after a gap, all the
    points the gap pushed out: it holds exactly the times within `span` of the newest."""
    rng = np.random.default_rng(3)
    span = 120 * 60
    w = SeriesWindow(span, ())
    kept: list[int] = []
    t = start
    for _ in range(1500):
        t += 60 * int(rng.choice([1, 1, 1, 2, 45, 130]))
        w.add(t, 1.0, {})
        kept = [k for k in [*kept, t] if k >= t - span]
        assert w.history().times.tolist() == kept
