"""`auto`'s lone spikes judged against the series' own tail (`autospikes`, `spike_risk`). On a
series whose |z| tail is heavy, spikes of three lines are routine: with the gate a lone spike
also needs |z| beyond the GPD line of the ring; a real large spike still alarms, pairs, range
breaks and light tails are untouched, and a live check gives what a replay gives."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo, ring_array
from detectkd.detectors.base import Current, History
from detectkd.runtime.windows import SeriesWindow
from tests.support.detectors import live_and_batched

FIVE_MIN = 300
RISKS = (1e-4, 1e-5)


def held(
    ring: np.ndarray, tail: list[float], *, breaks: list[bool] | None = None, **params: object
) -> np.ndarray:
    """The surprises of `tail` judged after a ring of |z| `ring`."""
    det = AutoDetector(Params.model_validate(params), FIVE_MIN)
    memo = Memo(2000)
    memo.recent = ring_array(ring)
    az = np.asarray(tail)
    got = np.zeros(az.size, bool) if breaks is None else np.asarray(breaks)
    return det._surprises(memo, az, got)[0]


def heavy(seed: int) -> np.ndarray:
    """2,000 |z| with a heavy tail: normal, and 1.5 % of bursts of Pareto (tail index 1)
    heights over 3: the largest several times the 0.995 quantile."""
    rng = np.random.default_rng(seed)
    az = np.abs(rng.normal(0, 1, 2000))
    at = rng.choice(2000, 30, replace=False)
    az[at] = 3 / rng.uniform(0.02, 1, 30)
    return az


def line(ring: np.ndarray) -> float:
    """The alarm line of a ring: its 0.995 quantile, never below `min_z` (a normal ring's)."""
    return max(float(np.quantile(ring.astype(np.float32), 0.995)), Params().min_z)


@pytest.mark.parametrize("risk", RISKS)
def test_a_routine_spike_of_a_heavy_tail_is_held_a_far_larger_one_alarms(risk: float) -> None:
    for seed in range(3):
        ring = heavy(seed)
        routine = 0.9 * float(ring.max())  # beyond three lines, not beyond the ring's largest
        assert routine >= 3 * line(ring)
        spike = [0.5, routine, 0.5]
        assert held(ring, spike)[1] >= 1  # without a gate (and nothing seen on previous days): it alarms
        assert held(ring, spike, spike_risk=risk)[1] < 1
        assert held(ring, [0.5, 30 * float(ring.max()), 0.5], spike_risk=risk)[1] >= 1  # a real large spike


@pytest.mark.parametrize("risk", RISKS)
def test_light_tails_pairs_and_range_breaks_are_untouched(risk: float) -> None:
    light = np.abs(np.random.default_rng(7).normal(0, 1, 2000))
    spike = [0.5, 3.2 * line(light), 0.5]
    assert held(light, spike, spike_risk=risk)[1] >= 1  # on a normal tail the GPD line is far below
    ring = heavy(1)
    pair = [0.5, 1.5 * line(ring), 1.5 * line(ring), 0.5]
    assert np.array_equal(held(ring, pair, spike_risk=risk), held(ring, pair))
    routine = [0.5, 0.9 * float(ring.max()), 0.5]
    breaks = [False, True, False]
    assert held(ring, routine, breaks=breaks, spike_risk=risk)[1] >= 1  # a range break alarms alone as before


def spiky(n: int, seed: int) -> np.ndarray:
    """An anomaly-free CPU-like gauge: noise with bursts whose heights have a heavy tail."""
    rng = np.random.default_rng(seed)
    v = 40 + rng.normal(0, 1, n)
    at = rng.choice(np.arange(100, n), n // 60, replace=False)
    v[at] += np.minimum(np.abs(rng.standard_t(1.5, at.size)) * 4, 50)
    return v


def test_a_spiky_anomaly_free_series_pages_less_and_the_same_live() -> None:
    """Point by point through the runner's window and in batches: the same results with the
    gate; over a heavy-tailed anomaly-free series it alarms less than without."""
    n = 5000
    v = spiky(n, 3)
    t = np.arange(n, dtype=np.int64) * FIVE_MIN
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    params = Params(spike_risk=1e-4)
    live, window, cached = AutoDetector(params, FIVE_MIN), SeriesWindow(10**9, ()), []
    for pt in points:
        cached.append(live.detect(window.history(), pt))
        window.add(pt.time, pt.value, {})
    many = AutoDetector(params, FIVE_MIN)
    batched = many.detect_many(History.empty(), points[:2500])
    batched += many.detect_many(History(t[:2500], v[:2500], {}), points[2500:])
    assert batched == cached
    off = AutoDetector(Params(), FIVE_MIN).detect_many(History.empty(), points)
    assert sum(r.anomaly for r in batched) < sum(r.anomaly for r in off)
    v[4500] += 400  # a real large spike still alarms
    big = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    assert AutoDetector(params, FIVE_MIN).detect_many(History.empty(), big)[4500].anomaly


def daily_job(days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Five-minute points of a calm gauge with a daily job: a burst of 15 spreads at about
    02:00, its time jittering by up to 20 minutes from day to day (the seasonal median of the
    same time three days back misses it)."""
    rng = np.random.default_rng(seed)
    n = days * 288
    v = 40 + rng.normal(0, 1, n)
    for d in range(days):
        v[d * 288 + 24 + int(rng.integers(-4, 5))] += 15
    return np.arange(n, dtype=np.int64) * FIVE_MIN, v


def alarms(t: np.ndarray, v: np.ndarray, params: Params) -> list[bool]:
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    return [r.anomaly for r in AutoDetector(params, FIVE_MIN).detect_many(History.empty(), points)]


def test_a_daily_job_whose_time_jitters_is_routine_with_spike_jitter() -> None:
    """Without `spike_jitter` the job pages as a lone spike day after day; with it, a spike
    that one of the previous days had within 30 minutes of the same time is held."""
    for seed in range(2):
        t, v = daily_job(12, seed)
        off = alarms(t, v, Params(spike_jitter=0))
        on = alarms(t, v, Params())  # the default: 30 minutes
        late = slice(5 * 288, None)  # once three previous days hold the job
        assert sum(off[late]) >= 3
        assert sum(on[late]) < sum(off[late]) and sum(on[late]) <= 1


def test_a_new_spike_still_alarms_and_the_same_live() -> None:
    """A spike at a time no previous day had one alarms with `spike_jitter`; point by point
    through the runner's window and in batches, the same results."""
    t, v = daily_job(10, 4)
    v[9 * 288 + 150] += 15  # 12:30, never before
    cached, batched = live_and_batched(t, v, Params(spike_jitter=30), FIVE_MIN)
    assert cached[-138].anomaly
    assert batched == cached


def test_a_count_that_drops_is_not_excused_by_ordinary_previous_days() -> None:
    """A count's expected value is on its judging scale (T_a, 2 sqrt(x) for Poisson): `seen`
    took it for a square root and compared the previous days with four times the level, so
    every drop of a count looked routine (hourly orders of 100 dropping to 30 were held)."""
    hour = 3600
    t = np.arange(130 * 24, dtype=np.int64) * hour
    quiet = (t // 86400) % 7 == 5  # a quiet weekday at 30 (a shop's Sunday): no range broken
    v = np.where(quiet, 30.0, 100.0) + ((t // hour * 7919) % 11 - 5).astype(float)
    assert not quiet[-1]
    v[-1] = 30.0
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    for jitter in (0, 30):
        det = AutoDetector(Params(spike_jitter=jitter), hour)
        got = det.detect_many(History(t[:-1], v[:-1], {}), points[-1:])[0]
        assert got.anomaly and got.direction == "down", (jitter, got)


def test_seen_reads_only_what_a_live_check_holds() -> None:
    """One-minute data with `seasonal: false`: a live check holds `window_seconds` (about 40
    hours), less than three days back. A catch-up batch, holding more, found a spike two days
    earlier and held the point that the live check alarmed on."""
    minute = 60
    rng = np.random.default_rng(1)
    n = 5 * 1440
    t = np.arange(n, dtype=np.int64) * minute
    v = rng.normal(100, 1, n)
    for day in (1, 3):
        v[day * 1440 + 13 * 60] += 40  # 13:00 on days 1 and 3: two days apart
    v[2 * 1440 + 20 * 60] += 42  # and a higher one between: the day-3 spike breaks no range
    params = Params(seasonal=False)
    live = AutoDetector(params, minute)
    window = SeriesWindow(live.window_seconds(minute) + minute, ())
    start = 1300
    for a, b in zip(t[:start], v[:start], strict=True):
        window.add(int(a), float(b), {})
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    cached = []
    for pt in points[start:]:
        cached.append(live.detect(window.history(), pt))
        window.add(pt.time, pt.value, {})
    batched = AutoDetector(params, minute).detect_many(History(t[:start], v[:start], {}), points[start:])
    assert cached[3 * 1440 + 13 * 60 - start].anomaly  # the live check alarms on day 3
    assert batched == cached
