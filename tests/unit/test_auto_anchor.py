"""`auto`'s `anchor` (an option, off): a seasonal baseline judged at its recent offset, its
spread and fit its errors as such forecasts through the window."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors.autofit import anchored
from detectkd.detectors.autoparams import Params


def test_the_centre_is_the_newest_residuals_median() -> None:
    rows = np.zeros((1, 400))
    rows[0, 340:] = 5.0  # an offset the last hour took
    centre, spread, ok, dev = anchored(rows, Params(anchor=6))
    assert centre[0] == 5.0  # the window's median (0) would miss it by the whole offset
    assert ok[0] and spread[0] < 0.2  # one block's errors, at the step (MAD 0: the mean's)
    assert 0 < dev[0] < 1  # the fit: the newest 192 errors, one block of them 5


def test_the_spread_is_that_of_block_forecasts_from_the_values_before_each() -> None:
    rng = np.random.default_rng(3)
    n, phi = 400, 0.99  # an excursion of hours
    ar = np.zeros(n)
    for i in range(1, n):
        ar[i] = phi * ar[i - 1] + rng.normal(0, 1)
    rows = ar[None, :]
    _, anchored_spread, _, _ = anchored(rows, Params(anchor=6))
    whole = 1.4826 * np.median(np.abs(ar - np.median(ar)))
    assert anchored_spread[0] < 0.8 * whole  # a slow excursion is followed, not measured as spread
    # by hand: the errors of the blocks that end at the window's end, each from the 6 before it
    errors = [ar[s : s + 12] - np.median(ar[s - 6 : s]) for s in range(400 - 12, 5, -12)]
    e = np.concatenate(errors)
    assert anchored_spread[0] == pytest.approx(1.4826 * np.median(np.abs(e - np.median(e))))


def test_missing_values_and_a_short_window() -> None:
    rows = np.full((2, 400), np.nan)
    rows[1, -2:] = 1.0  # too few newest values for the centre (6 // 2 needed)
    centre, _, ok, dev = anchored(rows, Params(anchor=6))
    assert not ok.any() and np.isnan(centre).all() and np.isinf(dev).all()
    short = anchored(np.zeros((1, 10)), Params(anchor=6))  # no block fits after 6
    assert not short[2].any()


def test_the_option_reaches_the_judged_points() -> None:
    """Through `detect_many`: a daily series whose residuals wander slowly judges differently with
    `anchor` (a seasonal baseline picked and centred at its recent offset), the same without."""
    from detectkd.detectors.auto import AutoDetector
    from detectkd.detectors.base import Current, History

    rng = np.random.default_rng(4)
    n, step = 5 * 1440, 60
    t = np.arange(n, dtype=np.int64) * step
    wander = np.cumsum(rng.normal(0, 0.3, n))
    wander -= np.convolve(wander, np.ones(720) / 720, mode="same")  # slow, but no trend over days
    values = 50 + 20 * np.sin(2 * np.pi * t / 86400) + wander + rng.normal(0, 0.5, n)
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, values, strict=True)]

    def expected(**kw: object) -> np.ndarray:
        det = AutoDetector(Params(**kw), step)  # type: ignore[arg-type]
        got = det.detect_many(History.empty(), points)[-1440:]
        return np.array([r.expected if r.expected is not None else np.nan for r in got])

    off, on, unchanged = expected(), expected(anchor=6), expected(anchor=0)
    assert np.array_equal(off, unchanged, equal_nan=True)
    assert np.nanmean(np.abs(on - off)) > 0.1
    too_long = expected(anchor=395)  # no block fits after it: the window's centre, as without
    assert np.array_equal(off, too_long, equal_nan=True)
