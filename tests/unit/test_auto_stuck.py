"""`auto`'s stuck value (`autostuck`): a series that stops moving for longer than it lately
ever did alarms once, early in the flat stretch; a series that often rests at one value (a
sparse count, a square wave) does not; live checks and replays agree."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from detectkd.detectors import autostuck
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History
from detectkd.runtime.windows import SeriesWindow
from tests.support.detectors import auto_alarms

FIVE_MIN, DAY = 300, 288


def alarms(values: np.ndarray, **params: object) -> list[int]:
    return auto_alarms(values, FIVE_MIN, **params)


def gauge(n: int, seed: int, daily: float = 10.0) -> np.ndarray:
    """A gauge read to one decimal (CPU %, temperature), `daily` its daily swing: it moves at
    every point."""
    i = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 2, n)
    return np.round(50 + daily * np.sin(2 * np.pi * i / DAY) + noise, 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_gauge_that_freezes_alarms_early_in_the_flat_stretch(seed: int) -> None:
    """Three weeks of a moving gauge, then its last value repeated for a day (a frozen sensor,
    a collector repeating itself) at an ordinary level: the baselines see nothing (the value
    is in its range, its |z| small), or only once a daily cycle has moved away from it; the
    run of equal values alarms at its `stuck`-th point."""
    for daily in (0.0, 10.0):
        values = gauge(DAY * 21, seed, daily)
        start = DAY * 19 + 100
        values[start : start + DAY] = round(50 + daily * np.sin(2 * np.pi * start / DAY), 1)  # as usual
        before = [a for a in alarms(values) if start <= a < start + DAY]
        assert not before or before[0] > start + 30  # without it: nothing, or late
        found = [a for a in alarms(values, stuck=24) if start <= a < start + DAY]
        assert found[0] == start + 24 - 1  # at its 24th point


@pytest.mark.parametrize("seed", [4, 5])
def test_series_that_often_rest_at_one_value_make_no_stuck_alarm(seed: int) -> None:
    """Errors per minute (a sparse count, most points 0: runs of zeros of every length), a
    square wave (a plateau every day) and a gauge: no alarm more with the stuck value on."""
    rng = np.random.default_rng(seed)
    n = DAY * 21
    sparse = rng.poisson(0.15, n).astype(float)
    square = np.where(np.arange(n) % DAY < 180, 20.0, 80.0) + np.round(rng.random(n) < 0.001)
    for values in (sparse, square, gauge(n, seed)):
        assert alarms(values, stuck=24, stuck_margin=2.0) == alarms(values)


def test_the_crossing_is_the_first_point_beyond_the_longest_recent_run() -> None:
    """The line is `stuck_margin` x the longest run among the window before the point (the run
    itself left out), never less than `stuck`; the flag is at the crossing only."""
    values = np.arange(400, dtype=float)
    values[100:130] = 7.0  # a run of 30
    values[300:380] = 9.0  # a run of 80
    idx = np.arange(400)
    flags = autostuck.crossings(idx, values, idx, 1000, 1, 12, 2.0, 50)
    assert np.flatnonzero(flags).tolist() == [100 + 11, 300 + 60]  # beyond 12, then 2 x 30
    flags = autostuck.crossings(idx, values, idx, 1000, 1, 12, 1.0, 150)  # the run of 30 is too early
    assert np.flatnonzero(flags).tolist() == [300 + 30]
    flags = autostuck.crossings(idx, values, idx, 150, 1, 12, 2.0, 50)  # the run of 30 is out of the window
    assert np.flatnonzero(flags).tolist() == [100 + 11, 300 + 11]


def test_stuck_runs_are_the_same_live_and_in_a_replay() -> None:
    """Point by point through the runner's window (block fits kept) and in batches: the same
    results through two frozen stretches and an outage (missing values)."""
    n = DAY * 24
    t = np.arange(n, dtype=np.int64) * FIVE_MIN
    v = gauge(n, 6)
    v[DAY * 15 : DAY * 16] = v[DAY * 15 - 1]
    v[DAY * 18 : DAY * 20] = v[DAY * 18 - 1]
    v[np.random.default_rng(6).random(n) < 0.02] = np.nan
    points = [Current(int(a), None if b != b else float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    p = Params(stuck=24, stuck_margin=1.0)
    live, window, cached = AutoDetector(p, FIVE_MIN), SeriesWindow(10**9, ()), []
    for q in points:
        cached.append(live.detect(window.history(), q))
        window.add(q.time, q.value, {})
    many = AutoDetector(p, FIVE_MIN)
    cut = DAY * 15 + 10
    batched = many.detect_many(History.empty(), points[:cut])
    batched += many.detect_many(History(t[:cut], v[:cut], {}), points[cut:])
    assert batched == cached
    up = [i for i, r in enumerate(batched) if r.anomaly and not batched[i - 1].anomaly]
    # 24 equal values (a few missing among them); the second stretch once it outlasts the first
    assert [a for a in up if DAY * 15 + 20 <= a < DAY * 15 + 30]
    assert [a for a in up if DAY * 19 - 10 <= a < DAY * 19 + 10]


def test_off_by_default_the_breaks_are_untouched() -> None:
    """`stuck: 0` (the default): no flag and no work, whatever the series does."""
    assert Params().stuck == 0
    values = gauge(DAY * 11, 7)
    values[DAY * 9 : DAY * 10] = 3.0  # (a week and a day of values before it, its first left out)
    det = AutoDetector(Params(spike_jitter=0), FIVE_MIN)  # (spikes seen on previous days: bit 4)
    judged = det._judge(np.arange(values.size) * FIVE_MIN, values, np.arange(values.size))
    assert judged.breaks.dtype == bool
    on = AutoDetector(Params(stuck=24, spike_jitter=0), FIVE_MIN)
    flagged = on._judge(np.arange(values.size) * FIVE_MIN, values, np.arange(values.size))
    assert (flagged.breaks == autostuck.STUCK).sum() == 1


def test_a_restart_after_the_crossing_rebuilds_its_alarm_and_rest() -> None:
    """A detector that starts on the stored history just after a stuck run's alarm (the restart
    without a snapshot: `rebuild`) judges the next point as the one that saw it live and rests
    as it does: the stuck flag survives the rebuild (its breaks are not cut down to yes / no)."""
    n = DAY * 18
    t = np.arange(n, dtype=np.int64) * FIVE_MIN
    v = gauge(n, 8, 0.0)
    v[DAY * 16 : DAY * 17] = 50.0
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    p = Params(stuck=24)
    whole = AutoDetector(p, FIVE_MIN).detect_many(History.empty(), points)
    crossing = DAY * 16 + 23
    assert whole[crossing].anomaly and not whole[crossing - 1].anomaly
    for cut in (crossing + 1, crossing + 5, crossing + 60):
        fresh, going = AutoDetector(p, FIVE_MIN), AutoDetector(p, FIVE_MIN)
        assert fresh.detect_many(History(t[:cut], v[:cut], {}), points[cut : cut + 1]) == whole[cut : cut + 1]
        going.detect_many(History.empty(), points[: cut + 1])
        now, then = fresh._memo["s"], going._memo["s"]
        assert (now.rest, now.level) == (then.rest, then.level)
        assert then.rest == 100 - (cut - crossing)  # resting after the stuck run's alarm


def test_with_missing_values_a_live_window_and_a_replay_read_the_same_runs() -> None:
    """The longest recent run is looked for among the values within `auto`'s window by time,
    not among as many values as it reads: a live check's history (`window_seconds` + one
    interval, by time) holds fewer values when some are missing, and a replay over the whole
    series must judge as it does. An earlier run of 100 lies in the replay's last 4,412 values
    but not in the live window's last 4,412 intervals (10 % of the values between missing): by
    count, live alarms at the 48th point of the later run and the replay only later. (Five-minute
    data and a longer level window: the channel needs a week and a day before the run.)"""
    step, n, start = 300, 9000, 5000
    p = Params(seasonal=False, stuck=48, window=2400)
    rng = np.random.default_rng(2)
    t = np.arange(n, dtype=np.int64) * step
    v = np.round(rng.normal(100, 5, n), 3)
    run = 7000
    v[run : run + 200] = 100.0
    v[run - 4480 - 100 : run - 4480] = 100.0
    v[run - 4480 : run - 150][rng.random(4330) < 0.1] = np.nan
    points = [Current(int(a), None if b != b else float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    det = AutoDetector(p, step)
    span = det.window_seconds(step) + step
    lo = int(np.searchsorted(t, t[start] - span + 1))
    replay = AutoDetector(p, step).detect_many(History(t[lo:start], v[lo:start], {}), points[start:])
    live = []
    for i in range(start, n):
        lo = int(np.searchsorted(t, t[i] - span + 1))  # the window: `span` back, by time
        live += det.detect_many(History(t[lo:i], v[lo:i], {}), points[i : i + 1])
    assert live == replay
    up = [start + k for k, r in enumerate(replay) if r.anomaly and (k == 0 or not replay[k - 1].anomaly)]
    assert run + 48 - 1 in up  # the earlier run is out of the window: the line is `stuck`


def orders(step: int, weeks: int, seed: int, rest: str, level: float = 0.0) -> np.ndarray:
    """Orders per `step` seconds (a count: busy by day, 3 a minute at night), `rest`: 'weekend'
    (exactly `level` from Saturday 00:00 to Monday 00:00) or 'night' (every night, 00:00-06:00)."""
    t = np.arange(weeks * 7 * 86400 // step) * step
    day = (t % 86400) / 86400
    per_minute = 3 + 17 * 0.5 * (1 - np.cos(2 * np.pi * day))
    values = np.random.default_rng(seed).poisson(per_minute * step / 60).astype(float)
    resting = (t // 86400) % 7 >= 5 if rest == "weekend" else t % 86400 < 6 * 3600
    values[resting] = level
    return values


@pytest.mark.parametrize("step", [60, 300, 3600])
@pytest.mark.parametrize("rest", ["weekend", "night"])
def test_a_series_that_rests_every_weekend_or_night_pages_no_more_with_stuck_on(step: int, rest: str) -> None:
    """Orders that stop every weekend (or every night), several weeks of them: each rest is as
    long as the last one, so it is no record — provided the last one lies in the window. One-minute
    data: `auto` reads 4.7 days, last weekend is not among them, and each Saturday's run of zeros
    was a new record (the 48th zero paged every weekend): the channel needs a week and a day
    before the run and is off where `auto` reads less. Five-minute and hourly data read last
    weekend. The same for a gauge that rests at 42 instead of 0."""
    weeks = 30 if step == 3600 else 5
    for level in (0.0, 42.0):
        values = orders(step, weeks, 1, rest, level)
        assert auto_alarms(values, step, stuck=48) == auto_alarms(values, step)


def test_a_count_that_rests_at_night_still_pages_a_freeze_that_outlasts_its_nights() -> None:
    """Five-minute orders at 0 every night (72 points): the collector repeats its last value
    from 10:00 one weekday for two days. The run alarms once it outlasts `stuck_margin` x the
    longest rest in the window (1.3 x 72 points); nothing changes elsewhere (the baselines' own
    alarms later in the same freeze join its run or are held by the rest period after it: one
    change, one page)."""
    values = orders(FIVE_MIN, 5, 2, "night")
    start = DAY * 30 + 120  # a Wednesday, 10:00
    values[start : start + 2 * DAY] = values[start - 1]
    stuck_at = start - 1 + 93  # its 94th point (1.3 x 72 = 93.6; from start - 1)
    # Without the rest margin (any greater surprise pages while resting) the baselines page
    # again as the freeze's |z| grows; with stuck on, every one of theirs after the stuck
    # alarm in the freeze, and only those, is gone: held by its rest period (a stuck alarm's
    # level is a spike's), and nothing but the stuck alarm is added.
    off = auto_alarms(values, FIVE_MIN, rest_margin=1.0)
    on = auto_alarms(values, FIVE_MIN, stuck=48, rest_margin=1.0)
    assert stuck_at in on and set(on) - set(off) <= {stuck_at}
    held = set(off) - set(on)
    assert held and held == {a for a in off if stuck_at < a < start + 2 * DAY}
    # With the default margin the baselines' later pages in the freeze, a little greater than
    # their first, are the same episode already; the stuck alarm still comes, once.
    off, on = auto_alarms(values, FIVE_MIN), auto_alarms(values, FIVE_MIN, stuck=48)
    assert sorted(set(on) - set(off)) == [stuck_at]
    assert len([a for a in off if start <= a < start + 2 * DAY]) == 1


def test_one_minute_data_with_the_weekly_cycle_in_reach_has_the_channel() -> None:
    """One-minute data: the channel is off where `auto` reads less than a week and a day
    (the default `max_history`), on where `max_history` takes the weekly cycle in; a frozen
    gauge then alarms at its 48th point."""
    n = 1440 * 10
    values = np.round(50 + np.random.default_rng(3).normal(0, 2, n), 1)
    start = 1440 * 9 + 600
    values[start : start + 300] = values[start - 1]
    assert AutoDetector(Params(stuck=48), 60).stuck_need == 0
    assert AutoDetector(Params(stuck=48), 180).stuck_need == 0  # a run of 48 does not fit beside
    assert AutoDetector(Params(stuck=48), 240).stuck_need == 2880  # from four minutes up
    assert AutoDetector(Params(stuck=48, max_history=30240), 60).stuck_need == 11520
    off = auto_alarms(values, 60)
    assert auto_alarms(values, 60, stuck=48) == off
    weekly = [a for a in auto_alarms(values, 60, stuck=48, max_history=30240) if a >= start]
    assert weekly[0] == start - 1 + 48 - 1  # (the run starts at the value it repeats)


def test_a_rest_cut_by_the_window_start_is_no_measure_so_no_record() -> None:
    """Five-minute data, 70 days (`auto` reads 29): an error count at 0 but for one error every
    20 days, and a gauge that changes its value every 20 days (replicas, a quota). The rest
    before the last change is cut by the window's start as the window moves on, and measured
    by what is left, each rest became a record 16.6 days in (a page every 20 days); a first run
    of the window at least `stuck` long is a rest of unknown length: no record."""
    n, gap = DAY * 70, DAY * 20
    errors = np.zeros(n)
    errors[np.arange(DAY * 2, n, gap)] = 1.0
    gauge = np.full(n, 3.0)
    for k, s in enumerate(range(DAY * 2, n, gap)):
        gauge[s:] = 4.0 + k % 2
    for values in (errors, gauge):
        assert auto_alarms(values, FIVE_MIN, stuck=48) == auto_alarms(values, FIVE_MIN)


def test_a_rest_longer_than_any_in_the_window_pages_once_calendar_or_not() -> None:
    """Why `stuck` is not the default: five-minute orders at 0 every weekend (576 points), and a
    Thursday and Friday holiday at 0 as well, joined to the weekend (four days). The run of zeros
    outlasts 1.3 x the longest rest in the window and pages, Saturday 14:24, whether or not a
    calendar judges the holiday like a Sunday (the baselines' business; the run knows nothing of
    it): one page a long holiday weekend, on every series that rests at weekends."""
    values = orders(FIVE_MIN, 6, 1, "weekend")
    holiday = DAY * (7 * 4 + 3)  # Thursday of the fifth week
    values[holiday : holiday + 2 * DAY] = 0.0
    crossing = holiday + int(1.3 * 2 * DAY)  # its 749th zero (1.3 x 576 = 748.8)
    for calendar in (False, True):
        off, on = AutoDetector(Params(), FIVE_MIN), AutoDetector(Params(stuck=48), FIVE_MIN)
        if calendar:  # Thursday and Friday judged like a Sunday (`like_shift`: seconds back to it)
            for det in (off, on):
                det.like_shift = like_sunday(holiday * FIVE_MIN, (holiday + 2 * DAY) * FIVE_MIN)
        flags = [
            np.array([r.anomaly for r in d.detect_many(History.empty(), series(values))]) for d in (off, on)
        ]
        starts = [set(np.flatnonzero(f & ~np.r_[False, f[:-1]]).tolist()) for f in flags]
        assert starts[1] - starts[0] == {crossing}


def series(values: np.ndarray) -> list[Current]:
    return [Current(i * FIVE_MIN, float(v), {}, "s") for i, v in enumerate(values.tolist())]


def like_sunday(begin: int, end: int) -> Callable[[np.ndarray], np.ndarray]:
    """A calendar's `like_shift` for a Thursday-Friday holiday judged like the Sunday before."""
    return lambda t: np.where((t >= begin) & (t < end), 4 * 86400, 0).astype(np.int64)


@pytest.mark.parametrize("step", [180, 240, 300, 600, 900, 3600])
def test_where_the_channel_is_on_a_long_flat_line_alarms(step: int) -> None:
    """On (a week and a day before the run) must mean able to alarm: at 180 s `auto` reads 3,852
    values, a week and a day is 3,840, and a run of 20 never fitted beside them (review)."""
    d = AutoDetector(Params(stuck=20), step)
    assert bool(d.stuck_need) == (step > 180)  # off at 3 minutes and under (default max_history)
    need = d.stuck_need or (86400 * 8) // step  # off: what it would need, to show it cannot alarm
    n = d.read + 200
    values = np.random.default_rng(0).normal(100, 5, n).round(3)
    values[-100:] = 42.0  # a 100-point flat line at the end
    times = np.arange(n, dtype=np.int64) * step + 1_700_000_000 // step * step
    idx = np.arange(n - 100, n)
    found = autostuck.crossings(times, values, idx, d.stuck_span, d.step, 20, d.p.stuck_margin, need)
    assert int(found.sum()) == (1 if d.stuck_need else 0)
