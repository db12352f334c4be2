"""`auto`'s `trend` (an option, off): the level baseline is a robust line through its window, drawn
from the block's start, instead of the window's median."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors import autofit
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autofit import ahead, slopes, trending
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History

STEP = 60


def test_the_slope_is_two_halves_medians_over_their_times() -> None:
    at = np.arange(400, dtype=np.float64)[None, :] * STEP
    rng = np.random.default_rng(2)
    rows = 10 + 0.002 * at + rng.normal(0, 0.3, at.shape)
    rows[0, 350] = 1e6  # a spike in the newer half: a median does not follow it
    got = slopes(rows, at, 25)[0]
    assert got[0] == pytest.approx(0.002, rel=0.05)
    flat = slopes(np.full_like(at, 7.0), at, 25)[0]
    assert flat[0] == 0.0


def test_a_half_with_too_few_values_has_no_slope() -> None:
    at = np.arange(400, dtype=np.float64)[None, :] * STEP
    rows = 0.01 * at
    rows[:, :190], at_padded = np.nan, at.copy()
    at_padded[:, :190] = np.nan  # a window padded before the history's start
    assert slopes(rows, at_padded, 25)[0][0] == 0.0  # 10 values in the older half
    assert slopes(rows, at_padded, 5)[0][0] == pytest.approx(0.01)


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


def test_the_line_acts_where_the_level_window_spans_at_most_half_a_day() -> None:
    assert trending(AutoDetector(Params(), 60))  # 400 minutes
    assert trending(AutoDetector(Params(), 108))  # 12 hours exactly
    assert not trending(AutoDetector(Params(), 109))
    assert not trending(AutoDetector(Params(), 300))  # 33 hours: the median
    assert not trending(AutoDetector(Params(window=800), 60))
    assert trending(AutoDetector(Params(window=100), 300))
    assert not trending(AutoDetector(Params(trend=False), 60))


def test_at_five_minutes_the_option_changes_nothing() -> None:
    rng = np.random.default_rng(8)
    n = 3000
    t = np.arange(n, dtype=np.int64) * 300
    values = 50 + 20 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 2, n)
    values[2500] += 40
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, values, strict=True)]
    got = [AutoDetector(Params(trend=on), 300).detect_many(History.empty(), points) for on in (True, False)]
    assert got[0] == got[1] and any(r.anomaly for r in got[0])


def test_the_line_s_spread_is_at_least_its_errors_as_a_forecast() -> None:
    """An autocorrelated gauge (AR(1), phi 0.99): a line through the window fits its wander
    closely, but the line of the older values misses the newer ones by more; the level judges
    with at least that miss's spread, and its fit (the best-fit choice) is the miss itself."""
    rng = np.random.default_rng(4)
    n, ar = 2000, np.zeros(2000)
    for i in range(1, n):
        ar[i] = 0.99 * ar[i - 1] + rng.normal(0, 1)
    t = np.arange(n, dtype=np.int64) * STEP
    det = AutoDetector(Params(seasonal=False, counts=False), STEP)
    start = np.array([n - n % 12])
    _, spread, _, dev = det._block_fit(t, ar, start).fits[False][0]
    w, k = 400, 200
    rows = ar[start[0] - w : start[0]][None, :]
    at = t[start[0] - w : start[0]].astype(np.float64)[None, :]
    since = at - float(t[start[0]])
    older = slopes(rows, at, 25, (k,))[0]
    errors = ahead(rows, older, since, k)
    assert spread[0] >= 1.4826 * np.median(np.abs(errors)) - 1e-9
    assert dev[0] == pytest.approx(1.2533 * np.mean(np.abs(errors)))
    line = slopes(rows, at, 25)[0]
    in_window = 1.4826 * np.median(
        np.abs(rows - line[:, None] * since - np.median(rows - line[:, None] * since))
    )
    assert spread[0] > in_window  # the floor acted: the wander's line misses more than it fits


def test_a_new_series_judges_with_the_line_before_its_window_has_an_older_part() -> None:
    """Review: 200 points of a new one-minute metric (none in the window's older 200): the
    line's forecast had nothing to be drawn from, its fit was none, no baseline judged and a
    spike of a cold start's kind went unseen; the level judges as fitted until the older part
    is there."""
    rng = np.random.default_rng(6)
    values = rng.poisson(4, 201).astype(np.float64)
    values[-1] = 90.0
    t = np.arange(values.size, dtype=np.int64) * STEP
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, values, strict=True)]
    for trend in (True, False):
        last = AutoDetector(Params(trend=trend), STEP).detect_many(History.empty(), points)[-1]
        assert last.skipped is None and last.anomaly


def test_a_line_is_not_drawn_from_a_few_start_up_values() -> None:
    """Review: 215 points of a new one-minute gauge whose first three are 0 (a start-up): the
    window's older part held just those three, the line drawn from them missed every newer value
    by 50, and the spread that floor gave hid a spike of 10 spreads; now the older part must
    hold as many values as a half-window's median needs before the line is judged by it."""
    rng = np.random.default_rng(1)
    values = rng.normal(50, 1, 215)
    values[:3], values[-1] = 0.0, 60.0
    t = np.arange(values.size, dtype=np.int64) * STEP
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, values, strict=True)]
    for trend in (True, False):
        assert AutoDetector(Params(trend=trend), STEP).detect_many(History.empty(), points)[-1].anomaly


def test_a_window_that_spans_more_than_half_a_day_keeps_the_median() -> None:
    """Review: the gate read the schedule's step; a one-minute series with most values missing
    has 400 values spread over more than half a day, where a line through a daily level is no
    local approximation of it. Such a block keeps the median (slope 0), judged as fitted: the
    same expected values as `trend: false` once the windows span that long; with every value
    there the line acts."""
    rng = np.random.default_rng(12)
    n = 6000
    t = np.arange(n, dtype=np.int64) * STEP
    values = 50 + 20 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 1, n)
    values[rng.random(n) < 0.6] = np.nan  # 400 values span about 17 hours
    values[-1] = 95.0
    points = [Current(int(a), None if b != b else float(b), {}, "s") for a, b in zip(t, values, strict=True)]
    sparse = [
        AutoDetector(Params(trend=on), STEP).detect_many(History.empty(), points) for on in (True, False)
    ]
    late = [[r.expected for r in got[3000:]] for got in sparse]  # (early windows span less: a line)
    assert late[0] == late[1] and sparse[0][-1].anomaly and sparse[1][-1].anomaly
    det = AutoDetector(Params(), STEP)
    kept = np.isfinite(values)
    fit = det._block_fit(t[kept], values[kept], np.array([int(kept.sum()) - 1]))
    assert not fit.slopes[False].any()
    full = 50 + 20 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 1, n)
    assert AutoDetector(Params(), STEP)._block_fit(t, full, np.array([n - 12])).slopes[False].any()


def test_many_blocks_slopes_are_taken_a_bounded_number_at_a_time_with_the_same_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(1)
    rows = rng.normal(0, 1, (700, 40))
    at = np.sort(rng.integers(0, 10**9, (700, 40)).astype(np.float64), axis=1)
    rows[:30, :25] = at[:30, :25] = np.nan  # windows padded before a history's start
    chunked = slopes(rows, at, 5, (40, 20))
    monkeypatch.setattr(autofit, "_SLOPE_ROWS", 10**9)
    whole = slopes(rows, at, 5, (40, 20))
    assert all(np.array_equal(a, b) for a, b in zip(chunked, whole, strict=True))
    assert autofit._SLOPE_ROWS == 10**9 and len(chunked) == 2 and chunked[0].shape == (700,)
