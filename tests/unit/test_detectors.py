"""Detectors on synthetic arrays: spike, dip, level shift, NaNs, constant, cold start."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from detectkd.detectors.base import Current, History, Result
from detectkd.detectors.robust import Params as RobustParams
from detectkd.detectors.robust import RobustDetector, weighted_median, weights_for
from detectkd.detectors.threshold import Params as ThresholdParams
from detectkd.detectors.threshold import ThresholdDetector
from tests.support.detectors import STEP, at_end, history, noisy


def robust(kind: str, **params: Any) -> RobustDetector:
    base: dict[str, Any] = {"window_size": 1000, "use_weighted": False, "min_samples": 5}
    base.update(params)
    return RobustDetector(kind, RobustParams.model_validate(base), STEP)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["mad", "zscore"])
def test_spike_and_dip_are_anomalies_with_direction(kind: str) -> None:
    h = history(noisy())
    d = robust(kind)
    spike = d.detect(h, at_end(h, 200.0))
    dip = d.detect(h, at_end(h, 10.0))
    assert spike.anomaly and spike.direction == "up"
    assert dip.anomaly and dip.direction == "down"
    assert spike.score > 0.5 and dip.score > 0.5
    assert spike.expected is not None and 95 < spike.expected < 105


@pytest.mark.parametrize("kind", ["mad", "zscore"])
def test_normal_value_is_not_an_anomaly(kind: str) -> None:
    h = history(noisy())
    r = robust(kind).detect(h, at_end(h, 103.0))
    assert not r.anomaly
    assert r.direction is None
    assert 0.0 <= r.score < 0.5
    assert r.lower is not None and r.upper is not None and r.lower < 103.0 < r.upper


def test_score_is_half_exactly_at_the_alarm_line() -> None:
    h = history(noisy())
    d = robust("zscore", n_sigma=3)
    r = d.detect(h, at_end(h, 100.0))
    assert r.upper is not None
    on_line = d.detect(h, at_end(h, r.upper))
    assert on_line.score == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("kind", ["mad", "zscore"])
def test_nan_in_history_is_ignored(kind: str) -> None:
    vals = noisy()
    vals[::3] = np.nan
    h = history(vals)
    r = robust(kind).detect(h, at_end(h, 100.0))
    assert r.skipped is None and not r.anomaly
    assert r.expected is not None and math.isfinite(r.expected)


@pytest.mark.parametrize("kind", ["mad", "zscore"])
def test_constant_history_gives_finite_scores(kind: str) -> None:
    h = history([42.0] * 50)
    d = robust(kind)
    same = d.detect(h, at_end(h, 42.0))
    other = d.detect(h, at_end(h, 43.0))
    assert not same.anomaly and same.score < 1e-6
    assert other.anomaly and other.direction == "up"
    assert math.isfinite(other.score) and other.score <= 1.0


def test_mad_on_mostly_constant_counter_does_not_flag_every_blip() -> None:
    # 70% zeros, the rest small counts: MAD is 0, the mean-deviation fallback keeps it sane.
    rng = np.random.default_rng(3)
    vals = np.where(rng.random(300) < 0.7, 0.0, rng.integers(1, 4, 300).astype(float))
    h = history(vals)
    assert not robust("mad", n_sigma=3).detect(h, at_end(h, 2.0)).anomaly
    assert robust("mad", n_sigma=3).detect(h, at_end(h, 50.0)).anomaly


@pytest.mark.parametrize("kind", ["mad", "zscore"])
def test_too_little_history_is_a_cold_start(kind: str) -> None:
    h = history([1.0, 2.0, 3.0])
    r = robust(kind, min_samples=10).detect(h, at_end(h, 1000.0))
    assert not r.anomaly
    assert r.skipped is not None and "cold start" in r.skipped


@pytest.mark.parametrize("kind", ["mad", "zscore"])
def test_missing_value_is_skipped_not_judged(kind: str) -> None:
    h = history(noisy())
    r = robust(kind).detect(h, at_end(h, None))
    assert r.skipped == "missing value" and not r.anomaly


def test_level_shift_is_absorbed_once_the_window_holds_the_new_level() -> None:
    before = noisy(100)
    after = noisy(100, seed=2) + 50
    d = robust("mad", window_size=60)
    first = history(before)
    assert d.detect(first, at_end(first, float(after[0]))).anomaly
    settled = history(np.concatenate([before, after[:99]]))
    assert not d.detect(settled, at_end(settled, float(after[99]))).anomaly


def test_point_in_time_the_judged_point_is_never_in_its_own_history() -> None:
    vals = noisy()
    h = history(vals)
    d = robust("zscore")
    # Judging the last point of `h` at its own time must ignore that point.
    own = Current(int(h.times[-1]), 500.0, {})
    truncated = history(vals[:-1])
    assert d.detect(h, own) == d.detect(truncated, own)


def test_window_size_as_duration_limits_history() -> None:
    vals = np.concatenate([np.full(100, 1000.0), noisy(50)])
    h = history(vals)
    by_time = robust("mad", window_size=timedelta(seconds=40 * STEP))
    by_count = robust("mad", window_size=40)
    a = by_time.detect(h, at_end(h, 100.0))
    b = by_count.detect(h, at_end(h, 100.0))
    assert not a.anomaly and not b.anomaly
    assert a.expected == pytest.approx(b.expected)


def test_exponential_weighting_follows_recent_values() -> None:
    vals = np.concatenate([np.full(50, 10.0), np.full(10, 20.0)]) + np.tile([0.0, 0.5], 30)
    h = history(vals)
    plain = robust("zscore").detect(h, at_end(h, 20.0))
    weighted = robust("zscore", use_weighted=True, exp_decay_factor=0.5).detect(h, at_end(h, 20.0))
    half_life = robust("zscore", half_life=2).detect(h, at_end(h, 20.0))
    assert plain.expected is not None and weighted.expected is not None
    assert plain.expected < 13 and weighted.expected > 19
    assert half_life.expected is not None and half_life.expected > 19


def test_weighted_median_matches_numpy_for_equal_weights() -> None:
    x = np.array([5.0, 1.0, 9.0, 3.0, 7.0])
    assert weighted_median(x, np.full(5, 0.2)) == 5.0


def seasonal_history() -> tuple[History, np.ndarray]:
    # hour 0..23 repeating; night hours (0-5) are low, days are high.
    n = 24 * 20
    hours = np.arange(n) % 24
    rng = np.random.default_rng(5)
    vals = np.where(hours < 6, 10.0, 100.0) + rng.normal(0, 1, n)
    return history(vals, {"hour_of_day": hours.astype(float)}), hours


def test_seasonal_features_judge_against_the_same_hour() -> None:
    h, _ = seasonal_history()
    plain = robust("mad")
    seasonal = robust("mad", seasonal_features=["hour_of_day"])
    night_value = 100.0  # normal for the day, far too high for 3 am
    assert not plain.detect(h, at_end(h, night_value, {"hour_of_day": 3.0})).anomaly
    r = seasonal.detect(h, at_end(h, night_value, {"hour_of_day": 3.0}))
    assert r.anomaly and r.expected is not None and r.expected < 15


def test_combined_seasonality_intersects_separate_judges_each() -> None:
    n = 24 * 7 * 6
    hours = (np.arange(n) % 24).astype(float)
    dow = ((np.arange(n) // 24) % 7 + 1).astype(float)
    rng = np.random.default_rng(8)
    # Weekends (6, 7) at hour 12 are special: value 300 instead of 100.
    vals = np.where((dow >= 6) & (hours == 12), 300.0, 100.0) + rng.normal(0, 1, n)
    h = history(vals, {"hour_of_day": hours, "day_of_week": dow})
    feats = {"hour_of_day": 12.0, "day_of_week": 6.0}
    combined = robust("mad", seasonal_features=["hour_of_day", "day_of_week"], use_combined_seasonality=True)
    separate = robust("mad", seasonal_features=["hour_of_day", "day_of_week"])
    c = combined.detect(h, at_end(h, 300.0, feats))
    assert not c.anomaly and c.expected is not None and c.expected > 290
    # Separately, 300 is unusual both for hour 12 and for Saturdays: flagged.
    assert separate.detect(h, at_end(h, 300.0, feats)).anomaly


def test_separate_seasonality_flags_only_what_every_feature_finds_unusual() -> None:
    h, _ = seasonal_history()
    dow = (np.arange(len(h)) // 24 % 7 + 1).astype(float)
    h = History(h.times, h.values, {**h.features, "day_of_week": dow})
    d = robust("mad", seasonal_features=["hour_of_day", "day_of_week"])
    feats = {"hour_of_day": 3.0, "day_of_week": 2.0}
    # 100 at 3 am: unusual for the hour, ordinary for a Tuesday (mostly daytime values).
    assert not d.detect(h, at_end(h, 100.0, feats)).anomaly
    # 500 is unusual for both groups.
    assert d.detect(h, at_end(h, 500.0, feats)).anomaly


def test_seasonal_group_too_small_falls_back_to_global() -> None:
    h = history(noisy(100), {"hour_of_day": np.zeros(100)})
    d = robust("mad", seasonal_features=["hour_of_day"], min_samples=5)
    r = d.detect(h, at_end(h, 101.0, {"hour_of_day": 7.0}))  # nobody at hour 7
    assert r.skipped is None and not r.anomaly


def thr(**params: Any) -> ThresholdDetector:
    return ThresholdDetector(ThresholdParams.model_validate(params))


def judge(d: ThresholdDetector, value: float) -> Result:
    return d.detect(History.empty(), Current(0, value, {}))


@pytest.mark.parametrize(
    ("params", "value", "anomaly"),
    [
        ({"operator": "greater_than", "threshold": 10}, 11, True),
        ({"operator": "greater_than", "threshold": 10}, 10, False),
        ({"operator": "greater_equal", "threshold": 10}, 10, True),
        ({"operator": "less_than", "threshold": 10}, 9, True),
        ({"operator": "less_equal", "threshold": 10}, 10, True),
        ({"operator": "less_equal", "threshold": 10}, 10.5, False),
        ({"operator": "equals", "threshold": 10}, 10.0005, True),
        ({"operator": "not_equals", "threshold": 10}, 10.0005, False),
        ({"operator": "not_equals", "threshold": 10}, 12, True),
        ({"operator": "between", "threshold": 5, "upper_threshold": 10}, 7, True),
        ({"operator": "between", "threshold": 5, "upper_threshold": 10}, 11, False),
        ({"operator": "outside", "threshold": 5, "upper_threshold": 10}, 11, True),
        ({"operator": "outside", "threshold": 5, "upper_threshold": 10}, 7, False),
        ({"operator": "greater_than", "threshold": 10, "percent": True, "baseline": 1000}, 1150, True),
        ({"operator": "greater_than", "threshold": 10, "percent": True, "baseline": 1000}, 1050, False),
    ],
)
def test_threshold_operators(params: dict[str, Any], value: float, anomaly: bool) -> None:
    r = judge(thr(**params), value)
    assert r.anomaly is anomaly
    assert (r.score > 0.5) is anomaly or r.score == 0.5


def test_threshold_outside_reports_direction_and_bounds() -> None:
    d = thr(operator="outside", threshold=5, upper_threshold=10)
    low, high = judge(d, 1), judge(d, 20)
    assert (low.direction, high.direction) == ("down", "up")
    assert (low.lower, low.upper) == (5, 10)


def test_threshold_percent_bounds_are_in_value_units() -> None:
    r = judge(thr(operator="greater_than", threshold=10, percent=True, baseline=1000), 1200)
    assert r.upper == pytest.approx(1100)


@pytest.mark.parametrize(
    "params",
    [
        {"operator": "between", "threshold": 5},
        {"operator": "outside", "threshold": 10, "upper_threshold": 5},
        {"operator": "greater_than", "threshold": 10, "percent": True},
        {"operator": "bigger", "threshold": 1},
    ],
)
def test_threshold_rejects_inconsistent_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ThresholdParams.model_validate(params)


def test_window_weights_are_shared_read_only_and_as_computed_before() -> None:
    """`weights_for` is cached per (n, decay) (issue 28: a live check no longer recomputes
    it): the same values as the formula, one read-only array shared by every check."""
    w = weights_for(100, 0.1)
    raw = np.exp(-0.1 * np.arange(99, -1, -1, dtype=np.float64))
    assert np.array_equal(w, raw / float(raw.sum()))
    assert weights_for(100, 0.1) is w and not w.flags.writeable
    assert np.array_equal(weights_for(4, 0.0), np.full(4, 0.25))
