"""The sorted-window path of unweighted `mad` gives exactly the full computation's results."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import numpy as np
import pytest

from detectkd.detectors.base import Current
from detectkd.detectors.robust import Params, RobustDetector
from detectkd.detectors.rolling import SortedWindow, kth_of_two, kth_pair
from detectkd.runtime.windows import SeriesWindow

STEP = 60


def test_kth_of_two_against_sorting() -> None:
    rng = random.Random(3)
    for _ in range(500):
        a = sorted(rng.choice([rng.random(), 0.5, 1.0]) for _ in range(rng.randint(0, 12)))
        b = sorted(rng.choice([rng.random(), 0.5, 1.0]) for _ in range(rng.randint(0, 12)))
        merged = sorted(a + b)
        for k in range(len(merged)):
            assert kth_of_two(a.__getitem__, len(a), b.__getitem__, len(b), k) == merged[k]
            following = kth_pair(a.__getitem__, len(a), b.__getitem__, len(b), k)[1]
            assert following == (merged[k + 1] if k + 1 < len(merged) else float("inf"))


def test_sorted_window_median_mad_and_eviction() -> None:
    w = SortedWindow()
    values = [5.0, 1.0, 9.0, 5.0, 2.0, 8.0, 5.0]
    for i, v in enumerate(values):
        w.add(i * STEP, i, v)
    x = np.array(values)
    centre = float(np.median(x))
    assert w.median() == centre
    assert w.mad(centre) == float(np.median(np.abs(x - centre)))
    w.evict(3 * STEP, 0)  # drop the first three: an even count
    assert w.values() == values[3:] and w.sorted == sorted(values[3:])
    x = np.array(values[3:])
    assert w.median() == float(np.median(x)) and w.mad(3.3) == float(np.median(np.abs(x - 3.3)))


def series(n: int, seed: int) -> tuple[list[int], list[float | None], list[float]]:
    rng = np.random.default_rng(seed)
    times = [i * STEP for i in range(n)]
    hours = [float((t // 3600) % 24) for t in times]
    values: list[float | None] = []
    for i in range(n):
        r = rng.random()
        if r < 0.03:
            values.append(None)  # missing
        elif 300 <= i < 420:
            values.append(7.0)  # a constant stretch: MAD 0, the mean-deviation fallback
        else:
            values.append(float(np.round(100 + 10 * np.sin(i / 90) + rng.normal(0, 3), 1)))
    return times, values, hours


CASES: list[dict[str, Any]] = [
    {"window_size": 200},
    {"window_size": "3h", "min_samples": 15},
    {"window_size": 500, "seasonal_features": ["hour_of_day"], "min_samples": 20},
    {"window_size": "1d", "seasonal_features": ["hour_of_day", "odd"], "min_samples": 10},
    {"window_size": "1d", "seasonal_features": ["hour_of_day", "odd"], "use_combined_seasonality": True},
]


@pytest.mark.parametrize("params", CASES, ids=[str(c) for c in CASES])
def test_rolling_mad_equals_the_full_computation(params: dict[str, Any]) -> None:
    p = Params.model_validate({"use_weighted": False, "n_sigma": 3, **params})
    fast, full = RobustDetector("mad", p, STEP), RobustDetector("mad", p, STEP)
    assert fast._rolling
    names = p.feature_names()
    times, values, hours = series(3000, seed=len(str(params)))
    window = SeriesWindow(fast.window_seconds(STEP) + STEP, names)
    compared = 0
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        feats = {"hour_of_day": hours[i], "odd": float((t // 600) % 2)}
        feats = {n: feats[n] for n in names}
        if i == 1500:  # a late point replaces an old value: the window's revision changes
            window.add(times[i - 40], 555.0, {n: 0.0 for n in names})
        h = window.history()
        cur = Current(t, v, feats, "s")
        a = fast.detect(h, cur)
        b = full.detect(dataclasses.replace(h, revision=0), cur)
        assert a == b, (i, a, b)
        compared += a.skipped is None
        window.add(t, v, feats)
    assert compared > 2000
    assert "s" in fast._memo and not full._memo


def test_weighted_and_detrended_mad_use_the_full_path() -> None:
    weighted = RobustDetector("mad", Params(), STEP)
    detrended = RobustDetector("mad", Params(use_weighted=False, detrend=True), STEP)
    assert not weighted._rolling and not detrended._rolling
