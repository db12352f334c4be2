"""`auto`'s `fit_ahead` (an option, off): the baseline that judges is picked by its newest
residuals about the centre of the window's points before them (a forecast's error), not about
the whole window's centre (a fit in sample)."""

from __future__ import annotations

import numpy as np

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params

STEP = 300


def level_fit(values: np.ndarray, ahead: bool) -> float:
    """The level's fit (the mean absolute deviation `block_fit` ranks baselines by) for the
    block that starts at the last point."""
    det = AutoDetector(Params(fit_ahead=ahead, counts=False), STEP)
    t = np.arange(values.size, dtype=np.int64) * STEP
    fit = det._block_fit(t, values, np.array([values.size - 1]))
    return float(fit.fits[False][0][3][0])


def test_a_level_on_a_slope_fits_its_window_better_than_it_predicts() -> None:
    rng = np.random.default_rng(4)
    ramp = 0.05 * np.arange(1200) + rng.normal(0, 1, 1200)
    in_sample, ahead = level_fit(ramp, False), level_fit(ramp, True)
    assert ahead > 1.5 * in_sample  # the newer half lies above the older half's median


def test_on_a_flat_series_the_two_agree() -> None:
    flat = 20 + np.random.default_rng(4).normal(0, 1, 1200)
    in_sample, ahead = level_fit(flat, False), level_fit(flat, True)
    assert abs(ahead - in_sample) < 0.1 * in_sample
