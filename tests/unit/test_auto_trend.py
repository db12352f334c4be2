"""`auto`'s `trend` (an option, off): the level baseline is a robust line through its window, drawn
from the block's start, instead of the window's median."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autofit import slopes
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History

STEP = 60


def test_the_slope_is_two_halves_medians_over_their_times() -> None:
    at = np.arange(400, dtype=np.float64)[None, :] * STEP
    rng = np.random.default_rng(2)
    rows = 10 + 0.002 * at + rng.normal(0, 0.3, at.shape)
    rows[0, 350] = 1e6  # a spike in the newer half: a median does not follow it
    got = slopes(rows, at, 25)
    assert got[0] == pytest.approx(0.002, rel=0.05)
    flat = slopes(np.full_like(at, 7.0), at, 25)
    assert flat[0] == 0.0


def test_a_half_with_too_few_values_has_no_slope() -> None:
    at = np.arange(400, dtype=np.float64)[None, :] * STEP
    rows = 0.01 * at
    rows[:, :190], at_padded = np.nan, at.copy()
    at_padded[:, :190] = np.nan  # a window padded before the history's start
    assert slopes(rows, at_padded, 25)[0] == 0.0  # 10 values in the older half
    assert slopes(rows, at_padded, 5)[0] == pytest.approx(0.01)


def judged(values: np.ndarray, trend: bool) -> list[float]:
    det = AutoDetector(Params(trend=trend, seasonal=False), STEP)
    t = np.arange(values.size, dtype=np.int64) * STEP
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, values, strict=True)]
    return [
        r.expected if r.expected is not None else np.nan for r in det.detect_many(History.empty(), points)
    ]


def test_on_a_ramp_the_level_stands_where_the_values_are() -> None:
    """A gauge rising 0.05 a point (noise 1): the window's median lags it by about half the
    window (10 units at 400 points); the line does not, and so does not page on it."""
    n = 3000
    rng = np.random.default_rng(5)
    truth = 0.05 * np.arange(n)
    values = truth + rng.normal(0, 1, n)
    late = slice(1000, n)
    median_lag = np.nanmean(truth[late] - np.asarray(judged(values, False))[late])
    line_lag = np.nanmean(truth[late] - np.asarray(judged(values, True))[late])
    assert median_lag > 8  # the median: about half its window behind
    assert abs(line_lag) < 0.15  # (the line drawn from the block's start, not the start alone: 0.22)
