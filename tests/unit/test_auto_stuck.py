"""`auto`'s stuck value (`autostuck`): a series that stops moving for longer than it lately
ever did alarms once, early in the flat stretch; a series that often rests at one value (a
sparse count, a square wave) does not; live checks and replays agree."""

from __future__ import annotations

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
    values = gauge(DAY * 10, 7)
    values[DAY * 8 : DAY * 9] = 3.0
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
    series must judge as it does. An earlier run of 100 lies in the replay's last 2,412 values
    but not in the live window's last 2,412 minutes (10 % of the values between missing): by
    count, live alarms at the 48th point of the later run and the replay only later."""
    step, n, start = 60, 9000, 5000
    p = Params(seasonal=False, stuck=48)
    rng = np.random.default_rng(2)
    t = np.arange(n, dtype=np.int64) * step
    v = np.round(rng.normal(100, 5, n), 3)
    run = 7000
    v[run : run + 200] = 100.0
    v[run - 2480 - 100 : run - 2480] = 100.0
    v[run - 2480 : run - 150][rng.random(2330) < 0.1] = np.nan
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
