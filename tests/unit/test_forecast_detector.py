"""forecast (Holt-Winters) on synthetic seasonal, trending and gappy series."""

from __future__ import annotations

import math

import numpy as np

from detectkd.detectors.base import Current, History
from detectkd.detectors.forecast import ForecastDetector, Params
from tests.support.detectors import STEP, at_end, history

DAY = 1440  # one-minute points in a day


def detector(**params: object) -> ForecastDetector:
    return ForecastDetector(Params.model_validate(params), STEP)


def daily(days: int, seed: int = 3, noise: float = 2.0) -> np.ndarray:
    """A one-minute series with a daily cycle of amplitude 50 around 100."""
    n = days * DAY
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 100 + 50 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, noise, n)


def truth(i: int) -> float:
    return 100 + 50 * math.sin(2 * math.pi * i / DAY)


def test_seasonal_forecast_follows_the_cycle_and_flags_a_dip() -> None:
    values = daily(3)
    d = detector(window_size="3d", season="1d")
    h = history(values)
    i = values.shape[0]  # the judged point's index
    normal = d.detect(h, at_end(h, truth(i) + 1.0))
    assert normal.expected is not None and abs(normal.expected - truth(i)) < 5
    assert not normal.anomaly and normal.score < 0.5
    # 30 below the daily cycle: well inside the level's range, so zscore/mad would not see it.
    dip = d.detect(h, at_end(h, truth(i) - 30.0))
    assert dip.anomaly and dip.direction == "down" and dip.score > 0.5
    assert dip.lower is not None and dip.lower > float(values.min())


def test_few_false_alarms_on_a_clean_seasonal_series() -> None:
    values = daily(4, seed=5)
    d = detector(window_size="2d", season="1d")
    alarms = 0
    judged = 0
    for i in range(3 * DAY, 4 * DAY, 7):
        h = history(values[:i])
        r = d.detect(h, Current(i * STEP, float(values[i]), {}))
        judged += 1
        alarms += r.anomaly
    assert judged > 200 and alarms / judged < 0.02


def test_a_steady_trend_is_expected_without_a_season() -> None:
    values = 10 + 0.5 * np.arange(300) + np.random.default_rng(2).normal(0, 0.3, 300)
    d = detector(window_size=300, season=0, beta=0.2)
    h = history(values)
    on_trend = d.detect(h, at_end(h, 10 + 0.5 * 300))
    assert on_trend.expected is not None and abs(on_trend.expected - 160.0) < 2
    assert not on_trend.anomaly
    assert d.detect(h, at_end(h, 10 + 0.5 * 300 + 20)).anomaly


def test_gaps_are_carried_and_do_not_become_residuals() -> None:
    values = daily(3)
    values[DAY : DAY + 120] = np.nan  # two hours missing on day two
    times = np.arange(values.shape[0], dtype=np.int64) * STEP
    keep = np.isfinite(values) | (np.arange(values.shape[0]) % 2 == 0)  # some NaN rows, some absent
    h = History(times[keep], values[keep], {})
    i = values.shape[0]
    r = detector(window_size="3d", season="1d").detect(h, Current(i * STEP, truth(i), {}))
    assert not r.anomaly and r.expected is not None and abs(r.expected - truth(i)) < 5


def test_constant_history_gives_finite_bounds_and_cold_start_skips() -> None:
    h = history([7.0] * 100)
    d = detector(window_size=100, season=0)
    same = d.detect(h, at_end(h, 7.0))
    assert not same.anomaly and same.score < 1e-6
    moved = d.detect(h, at_end(h, 8.0))
    assert moved.anomaly and moved.upper is not None and math.isfinite(moved.upper) and moved.score <= 1.0
    short = history([1.0, 2.0, 3.0])
    assert d.detect(short, at_end(short, 2.0)).skipped
    assert d.detect(h, at_end(h, None)).skipped == "missing value"


def test_season_needs_two_cycles_before_it_is_used() -> None:
    values = daily(1)[: DAY + 100]  # one day and a bit: Holt's linear method until day two
    h = history(values)
    r = detector(window_size="3d", season="1d").detect(h, at_end(h, float(values[-1])))
    assert r.skipped is None and r.expected is not None


def test_registered_under_its_name() -> None:
    from detectkd.detectors.registry import lookup

    dtype = lookup("forecast")
    assert dtype is not None
    built = dtype.build(dtype.params.model_validate({"season": "1h"}), 300, "forecast")
    assert isinstance(built, ForecastDetector) and built.m == 12 and built.id == "forecast"
