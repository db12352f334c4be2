"""iqr, change, flatline and missing_data on synthetic arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from detectkd.detectors import simple
from detectkd.detectors.base import Current, History
from tests.support.detectors import STEP, at_end, history, noisy


def build(kind: str, **params: Any) -> Any:
    from detectkd.detectors.registry import lookup

    dtype = lookup(kind)
    assert dtype is not None
    return dtype.build(dtype.params.model_validate(params), STEP, kind)


def test_iqr_fences_score_half_at_the_fence() -> None:
    h = history(noisy())
    d = build("iqr", window_size=1000, calibrated=False)  # Tukey's fences alone
    q1, q3 = np.percentile(h.values, [25, 75])
    fence = q3 + 1.5 * (q3 - q1)
    at_fence = d.detect(h, at_end(h, float(fence)))
    assert math.isclose(at_fence.score, 0.5, abs_tol=1e-9) and not at_fence.anomaly
    spike = d.detect(h, at_end(h, 200.0))
    assert spike.anomaly and spike.direction == "up" and spike.score > 0.9
    dip = d.detect(h, at_end(h, 0.0))
    assert dip.anomaly and dip.direction == "down"
    assert not d.detect(h, at_end(h, 101.0)).anomaly
    assert d.detect(history([1.0, 2.0]), Current(120, 1.0, {})).skipped  # cold start


def test_calibrated_iqr_fences_reach_the_windows_own_extremes() -> None:
    """Heavy tails put many points beyond Tukey's fences; calibrated (the default), a fence
    is at least the window's 0.05 % / 99.95 % quantile, and the score is 0.5 on it."""
    from detectkd.detectors.base import tails

    rng = np.random.default_rng(3)
    h = history(100 + rng.standard_t(2, 1500) * 3)
    plain, calibrated = build("iqr", window_size=1000, calibrated=False), build("iqr", window_size=1000)
    x = h.values[-1000:]
    hi = tails(np.sort(x))[1]
    assert math.isclose(hi, float(np.quantile(x, 0.9995)))
    r = calibrated.detect(h, at_end(h, hi))
    assert math.isclose(r.upper or 0.0, hi) and math.isclose(r.score, 0.5, abs_tol=1e-9)
    assert plain.detect(h, at_end(h, hi)).anomaly and not r.anomaly
    assert calibrated.detect(h, at_end(h, hi + 50)).anomaly


def test_iqr_on_constant_history_is_finite() -> None:
    h = history([5.0] * 50)
    r = build("iqr").detect(h, at_end(h, 6.0))
    assert r.anomaly and 0.5 < r.score <= 1.0 and math.isfinite(r.upper or 0)


def test_change_against_previous_and_last_week() -> None:
    h = history([100.0] * 20)
    d = build("change", max_increase=50, max_decrease=30)
    assert not d.detect(h, at_end(h, 140.0)).anomaly
    up = d.detect(h, at_end(h, 160.0))
    assert up.anomaly and up.direction == "up" and up.expected == 100.0 and up.upper == 150.0
    down = d.detect(h, at_end(h, 60.0))
    assert down.anomaly and down.direction == "down" and down.lower == 70.0
    assert math.isclose(d.detect(h, at_end(h, 150.0)).score, 0.5)
    only_up = build("change", max_increase=10, mode="absolute")
    assert not only_up.detect(h, at_end(h, 0.0)).anomaly  # decreases never alarm
    # A week back: 10,080 one-minute points; the reference is the value a week earlier.
    week = np.full(7 * 1440 + 5, 100.0)
    week[5] = 400.0  # a week before the judged point
    hw = history(week)
    wk = build("change", compare_to="last_week", max_decrease=50)
    r = wk.detect(hw, at_end(hw, 150.0))
    assert r.expected == 400.0 and r.anomaly and r.direction == "down"
    with pytest.raises(ValidationError, match="max_increase"):
        simple.ChangeParams()


def test_change_skips_without_a_reference() -> None:
    h = history([0.0] * 5)
    assert build("change", max_increase=10).detect(h, at_end(h, 3.0)).skipped  # percent of 0
    gap = History(np.array([0, STEP], np.int64), np.array([1.0, math.nan]), {})
    assert build("change", max_increase=10).detect(gap, Current(2 * STEP, 5.0, {})).skipped


def test_flatline_finds_a_stuck_sensor() -> None:
    values = list(noisy(50)) + [42.0] * 8
    h = history(values)
    d = build("flatline", min_points=10)
    r = d.detect(h, at_end(h, 42.0))  # 9 equal values with the current one
    assert not r.anomaly and math.isclose(r.score, 9 / 19)
    h2 = history([*values, 42.0])
    stuck = d.detect(h2, at_end(h2, 42.0))
    assert stuck.anomaly and math.isclose(stuck.score, 0.5)
    assert not d.detect(h2, at_end(h2, 43.0)).anomaly
    zeros = history([0.0, 5.0] * 20)
    z = build("flatline", min_points=10, max_zero_share=0.3)
    assert z.detect(zeros, at_end(zeros, 0.0)).anomaly
    assert not build("flatline", min_points=10, max_zero_share=0.6).detect(zeros, at_end(zeros, 0.0)).anomaly


def test_missing_data_counts_null_and_absent_periods_from_history() -> None:
    d = build("missing_data", max_missing_periods=3)
    base = list(noisy(10))
    h = history([*base, math.nan])  # one stored NULL before the current missing point
    r = d.detect(h, at_end(h, None))
    assert not r.anomaly and math.isclose(r.score, 2 / 5)
    h2 = history([*base, math.nan, math.nan])
    assert d.detect(h2, at_end(h2, None)).anomaly
    # Periods with no stored row at all count too (a series that stopped reporting).
    gap = History(np.arange(10, dtype=np.int64) * STEP, np.asarray(base), {})
    r3 = d.detect(gap, Current(12 * STEP, None, {}))
    assert r3.anomaly and r3.direction == "down"
    assert not d.detect(h, at_end(h, 5.0)).anomaly
    assert d.detect(History.empty(), Current(0, None, {})).skipped == "no history yet"


def test_freshness_reads_the_value_as_the_newest_rows_time() -> None:
    d = build("missing_data", max_age="10m")
    h = history([0.0] * 3)
    now = int(h.times[-1]) + STEP
    fresh = d.detect(h, Current(now, float(now - 300), {}))
    stale = d.detect(h, Current(now, float(now - 3600), {}))
    assert not fresh.anomaly and stale.anomaly and stale.score > 0.5


def test_detrend_judges_against_the_trend_line() -> None:
    rng = np.random.default_rng(3)
    ramp = 10.0 * np.arange(200) + rng.normal(0, 1, 200)
    h = history(ramp)
    on_trend = 10.0 * 200
    plain = build("mad", window_size=200, n_sigma=4, use_weighted=False)
    trended = build("mad", window_size=200, n_sigma=4, use_weighted=False, detrend=True)
    r = trended.detect(h, at_end(h, on_trend))
    assert not r.anomaly and r.expected is not None and abs(r.expected - on_trend) < 2
    off = trended.detect(h, at_end(h, on_trend + 25))  # 25 sigma above the line
    assert off.anomaly and off.direction == "up"
    assert not plain.detect(h, at_end(h, on_trend + 25)).anomaly  # lost in the ramp's spread


def test_seasonal_baseline_per_hour_with_global_fallback() -> None:
    from detectkd.detectors.features import feature_value

    hours = np.arange(14 * 24)
    rng = np.random.default_rng(5)
    values = 100 + 80 * (hours % 24 >= 12) + rng.normal(0, 2, hours.shape[0])  # low nights, high days
    times = hours * 3600
    utc = __import__("zoneinfo").ZoneInfo("UTC")
    feats = {"hour_of_day": np.asarray([feature_value("hour_of_day", int(t), {}, utc) for t in times])}
    h = History(times.astype(np.int64), values, feats)
    now = int(times[-1]) + 3600  # hour 0: a night hour
    night = {"hour_of_day": 0.0}
    seasonal = build("seasonal", season="hour_of_day", n_sigma=4, min_samples=5)
    r = seasonal.detect(h, Current(now, 160.0, night))  # near the day-time level, at night
    assert r.anomaly and r.direction == "up" and abs((r.expected or 0) - 100) < 3
    assert not seasonal.detect(h, Current(now, 101.0, night)).anomaly
    plain = build("mad", window_size="14d", n_sigma=4, use_weighted=False)
    assert not plain.detect(h, Current(now, 160.0, night)).anomaly  # normal for the whole window
    # Two days of history: 2 points per hour < min_samples 5 -> the whole window is the baseline.
    short = History(h.times[-48:], h.values[-48:], {k: v[-48:] for k, v in h.features.items()})
    fallback = seasonal.detect(short, Current(now, 160.0, night))
    assert not fallback.anomaly and fallback.skipped is None
