"""`auto`'s range break and rest period: a value beyond the recent range alarms at once; the
things that make new ranges without news (a trend, a weekly peak, a small count) do not; one
change pages once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History
from detectkd.detectors.rows import (
    cycle_median,
    no_rows,
    recent_range,
    robust_rows,
    trailing_extremes,
    window_extremes,
)
from detectkd.runtime import snapshot
from detectkd.runtime.memory import Saved
from detectkd.runtime.windows import SeriesWindow
from tests.support.detectors import auto_alarms

FIVE_MIN, DAY, WEEK = 300, 288, 2016  # points of a five-minute series


alarms = auto_alarms


def daily(n: int, seed: int) -> np.ndarray:
    i = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 0.02, n)
    return (1 + 0.3 * np.sin(2 * np.pi * i / DAY)) * (1 + noise)


def test_the_range_window_covers_a_week_and_a_day_when_the_history_holds_it() -> None:
    assert AutoDetector(Params(), FIVE_MIN).range_points == 4000  # the default: two weeks
    assert AutoDetector(Params(range_window=1000), FIVE_MIN).range_points == WEEK + DAY
    # a week of minutes is beyond what auto reads: what a live check holds before the block for
    # each of its points (what auto reads less a block)
    assert AutoDetector(Params(), 60).range_points == 400 + 1440 * 3 + 2000
    assert AutoDetector(Params(), 3600).range_points == 400 + 168 * 3 + 2000
    assert AutoDetector(Params(range_window=0), FIVE_MIN).range_points == 0


def test_a_growing_business_metric_that_sets_new_highs_every_day_does_not_page() -> None:
    """+2 % a day with a daily cycle: every day's peak is above every earlier value."""
    n = DAY * 35
    values = 1000 * 1.02 ** (np.arange(n) / DAY) * daily(n, seed=1)
    assert np.all(np.diff([values[d * DAY : (d + 1) * DAY].max() for d in range(20, 35)]) > 0)
    assert alarms(values, FIVE_MIN) == []


def test_a_weekly_peak_above_the_last_days_range_adds_no_page() -> None:
    """A weekly cycle: the peak days exceed the range of the days before them. The range break
    must add no page to what the baselines alone say (seeds: not one lucky series)."""
    n = DAY * 35
    week = 1 + 0.25 * np.sin(2 * np.pi * np.arange(n) / WEEK)
    for seed in (1, 2, 3):
        values = 1000 * week * daily(n, seed)
        with_range = alarms(values, FIVE_MIN)
        assert set(with_range) <= set(alarms(values, FIVE_MIN, range_window=0, rest=Params().rest))
        assert [i for i in with_range if i >= 3 * WEEK] == []  # once the weekly baseline holds


def test_a_small_count_making_a_new_high_by_one_is_not_a_range_break() -> None:
    """Errors per minute, mostly 0: a 4 after two days that never passed 3 is one more than
    the range, not news (sqrt scale: the margin is at least one count)."""
    rng = np.random.default_rng(4)
    values = np.minimum(rng.poisson(0.4, 1440 * 3), 3).astype(float)
    values[-1] = 4.0
    det = AutoDetector(Params(), 60)
    times = np.arange(values.size, dtype=np.int64) * 60
    judged = det._judge(times, values, np.arange(values.size - 50, values.size))
    assert not judged.breaks.any()
    values[-1] = 9.0  # far beyond: a break
    judged = det._judge(times, values, np.arange(values.size - 50, values.size))
    assert judged.breaks[-1] and not judged.breaks[:-1].any()


def test_a_level_shift_beyond_the_range_alarms_at_its_first_point_and_pages_once() -> None:
    """A calm daily series steps up by 200 at its daily peak (beyond its highest value, not far
    enough to be a spike): the range break alarms at the first point (the baselines alone wait
    for the second), and the rest period keeps the new level from paging again and again."""
    n = DAY * 20
    at = DAY * 18 + DAY // 4  # the daily peak
    for seed in (5, 7, 8):
        values = 1000 * daily(n, seed)
        values[at:] += 200

        def pages(values: np.ndarray = values, **params: object) -> list[int]:
            return [i for i in alarms(values, FIVE_MIN, **params) if i >= at - 12]  # from an hour before

        assert pages() == [at]
        assert pages(range_window=0) == [at + 1]
        assert len(pages(range_window=0, rest=0)) > 1


def test_a_surprise_greater_than_the_alarm_pages_again_while_resting() -> None:
    n = DAY * 10
    values = 1000 * daily(n, seed=6)
    at = DAY * 8 + 10
    values[at] += 600  # a spike
    values[at + 20] += 600  # the same again: resting, no page
    values[at + 40] += 3000  # far greater: pages
    found = [i for i in alarms(values, FIVE_MIN) if i >= DAY * 2]
    assert found == [at, at + 40]
    assert [i for i in alarms(values, FIVE_MIN, rest=0) if i >= DAY * 2] == [at, at + 20, at + 40]


def test_a_restart_through_the_snapshot_file_judges_the_same_mid_rest(tmp_path: Path) -> None:
    """The rest period is state: saved in the restart snapshot (format 2), the restarted
    detector keeps resting exactly where the running one was; a format-1 file is refused."""
    n = DAY * 10
    values = 1000 * daily(n, seed=6)
    at = DAY * 8 + 10
    values[at] += 600
    values[at + 20] += 600  # resting: no page from either detector
    times = np.arange(n, dtype=np.int64) * FIVE_MIN
    points = [Current(int(t), float(v), {}, "s") for t, v in zip(times, values, strict=True)]
    running = AutoDetector(Params(), FIVE_MIN)
    cut = at + 5
    running.detect_many(History.empty(), points[:cut])
    assert running._memo["s"].rest > 0
    saved = Saved("fp", int(times[cut - 1]))
    state = running.export_state("s")
    assert state is not None
    saved.states = {"auto": {"s": state}}
    path = tmp_path / snapshot.FILE
    snapshot.save(path, {"m": saved})
    restarted = AutoDetector(Params(), FIVE_MIN)
    restarted.import_state("s", *snapshot.load(path)["m"].states["auto"]["s"])
    judged = []
    for i in range(cut, cut + 40):
        h = History(times[:i], values[:i], {}, revision=1)
        judged += restarted.detect_many(h, [points[i]])
        assert judged[-1] == running.detect_many(h, [points[i]])[0]
    assert not judged[at + 20 - cut].anomaly and judged[at + 20 - cut].score > 0.3  # resting
    snapshot.save(path, {"m": saved})
    path.write_bytes(path.read_bytes().replace(snapshot.MAGIC, b"DTKSNAP1"))
    assert snapshot.load(path) == {}


def test_trailing_extremes_and_the_recent_range_match_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    x[rng.integers(0, 300, 30)] = np.nan
    x[:5] = np.nan
    for w in (1, 7, 64, 299, 300, 6732):  # 300 and up: each window reaches back to x's start
        ends = np.arange(0, 301)
        top, bottom = trailing_extremes(x, ends, w)
        for e in ends.tolist():
            seg = x[max(0, e - w) : e]
            seg = seg[np.isfinite(seg)]
            assert top[e] == (seg.max() if seg.size else -np.inf)
            assert bottom[e] == (seg.min() if seg.size else np.inf)
    for _ in range(50):  # windows of any widths (values missing in a window by time)
        hi = np.sort(rng.integers(0, 301, 40))
        lo = np.maximum(hi - rng.integers(0, 120, 40), 0)
        lo[rng.random(40) < 0.3] = 0
        top, bottom = window_extremes(np.vstack([x, -x]), lo, hi)
        for j, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
            seg = x[a:b][np.isfinite(x[a:b])]
            assert top[:, j].tolist() == ([seg.max(), -seg.min()] if seg.size else [-np.inf, -np.inf])
            assert bottom[:, j].tolist() == ([seg.min(), -seg.max()] if seg.size else [np.inf, np.inf])
    ramp = np.arange(1000.0)[None, :]  # a trend: the edges move on by the drift of the halves' means
    starts = np.array([800, 900])
    top, bottom = recent_range(ramp, starts, starts - 400, starts - 200)
    assert top.tolist() == [799.0 + 200, 899.0 + 200] and bottom.tolist() == [400.0, 500.0]
    one = np.array([900])  # one block: the live path
    live_top, live_bottom = recent_range(ramp, one, one - 400, one - 200)
    assert (live_top[0], live_bottom[0]) == (top[1], bottom[1])


def test_a_sparse_count_is_judged_by_the_baseline_that_fits_it_not_by_a_collapsed_spread() -> None:
    """Errors per minute, 0, 1 or 2 at random, for three weeks: no pattern, so the level must
    judge. A daily median of 0, 0, 1 matches most zeros exactly; its MAD is 0 and its fallback
    spread was the smallest, so it judged and paged about 45 times a series. The fit is now
    the mean absolute deviation, which ties do not collapse: 8 pages in 90,720 points (the
    level's own, as many without the range break and the rest period)."""
    found = []
    for seed in (1, 2, 3):
        values = np.random.default_rng(seed).choice([0.0, 1.0, 2.0], 1440 * 21, p=[0.6, 0.3, 0.1])
        found += alarms(values, 60)
    assert len(found) <= 10


def test_range_breaks_and_rests_are_the_same_live_and_in_a_replay() -> None:
    """Point by point through the runner's window (block fits kept) and in batches: the same
    results, through range breaks (a step up, then down) and the rests after them."""
    n = 1400
    rng = np.random.default_rng(8)
    t = np.arange(n, dtype=np.int64) * FIVE_MIN
    v = 50 + 20 * np.sin(2 * np.pi * np.arange(n) / DAY) + rng.normal(0, 1, n)
    v[rng.random(n) < 0.03] = np.nan
    v[900:] += 40  # beyond the top
    v[1100:] -= 120  # beyond the bottom
    points = [Current(int(a), None if b != b else float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    live, window, cached = AutoDetector(Params(), FIVE_MIN), SeriesWindow(10**9, ()), []
    for p in points:
        cached.append(live.detect(window.history(), p))
        window.add(p.time, p.value, {})
    many = AutoDetector(Params(), FIVE_MIN)
    batched = many.detect_many(History.empty(), points[:500])
    batched += many.detect_many(History(t[:500], v[:500], {}), points[500:])
    assert batched == cached
    times = t[np.isfinite(v)]
    judged = many._judge(times, v[np.isfinite(v)], np.arange(times.size))
    assert judged.breaks.sum() >= 2
    alarms_at = [i for i, r in enumerate(batched) if r.anomaly and not batched[i - 1].anomaly]
    # the drop comes while the line is still inflated by the step's |z|: the range break's gate
    # is in |z| (half of min_z), not in lines, so it alarms
    assert 900 in alarms_at and 1100 in alarms_at


def test_a_cycle_not_in_the_history_is_no_baseline_with_the_rows_of_no_values() -> None:
    """A first start's history is shorter than a day: the daily median finds nothing a cycle
    back, and its rows' fit is `no_rows` (`auto` skips fitting them), exactly what fitting
    rows without a value gives."""
    times = np.arange(100, dtype=np.int64) * 60
    values = np.arange(100.0)
    assert np.isnan(cycle_median(times, values, times[50:], 86400, 3)).all()
    assert cycle_median(times, values, times[:0], 86400, 3).size == 0
    # a lag the history covers: the short cut does not apply (the median of 10 and 5 back)
    assert cycle_median(times, values, times[60:62], 300, 2).tolist() == [52.5, 53.5]
    assert cycle_median(times, values, times[60:61], 300, 2).tolist() == [52.5]  # (the live path)
    got, want = no_rows(3), robust_rows(np.full((3, 400), np.nan), 50)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize(("missing", "back"), [(0.08, 7100), (0.0, 6734)])
def test_a_live_window_and_a_replay_read_the_same_range(missing: float, back: int) -> None:
    """The range is that of the values within the last `range_points` intervals by time before
    the block, not of the last `range_points` values: a live check's history (`window_seconds`
    back, by time) holds fewer values when some are missing, and a replay over the whole series
    must judge as it does. One-minute data with the defaults (the range as long as what `auto`
    reads): a 106.6 `back` minutes before a 106 lies among the replay's last 6,732 values but
    not in the live window, so by count the 106 broke the range live and not in the replay, at
    8 % of the values missing; and with none missing too, for a point six minutes into its
    block (the window a live check holds reaches six minutes less far before the block)."""
    step, n, event = 60, 16000, 15006  # the event six minutes into its block (refresh: 12)
    rng = np.random.default_rng(3)
    t = np.arange(n, dtype=np.int64) * step
    v = np.round(rng.normal(100, 1, n), 2)
    v[rng.random(n) < missing] = np.nan
    v[event], v[event - back] = 106.0, 106.6
    points = [Current(int(a), None if b != b else float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    # Without the weekly profile: it is state a live check keeps (and a snapshot restores), not
    # something a window of 4.7 days can rebuild, so a detector started on the window and a
    # replay of 11 days correct the daily baseline differently wherever it judges (with `trend`
    # since 2026-12-08 it judges some of these points).
    p = Params(weekly_profile=0)
    det = AutoDetector(p, step)
    span = det.window_seconds(step) + step
    replay = AutoDetector(p, step).detect_many(History.empty(), points)
    start, live = event - 60, []
    for i in range(start, event + 30):
        lo = int(np.searchsorted(t, t[i] - span + 1))  # the window: `span` back, by time
        live += det.detect_many(History(t[lo:i], v[lo:i], {}), points[i : i + 1])
    assert live == replay[start : event + 30]
    assert live[event - start].anomaly  # beyond the range of the last 6,720 minutes: a break
