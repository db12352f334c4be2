"""`auto`'s `fit_window` (200, the default since 2026-12-07; 0 is the whole window's fit): the
baseline that judges is picked by the fit of its newest residuals (about its window's centre)."""

from __future__ import annotations

import numpy as np

from detectkd.detectors import autofit
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from tests.support.detectors import auto_alarms

MINUTE, DAY = 60, 1440


def cpu(days: int, seed: int) -> np.ndarray:
    """A CPU percentage a minute: a daily wave from 35 to 60 (its climb 04:00-16:00) plus
    autocorrelated noise (an AR(1), phi 0.95, spread 3) and a little white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    wave = 35 + 25 * 0.5 * (1 - np.cos(2 * np.pi * ((t % DAY) / 60 - 4) / 24))
    ar = np.zeros(t.size)
    shocks = rng.normal(0, 3 * np.sqrt(1 - 0.95**2), t.size)
    for i in range(1, t.size):
        ar[i] = 0.95 * ar[i - 1] + shocks[i]
    return np.asarray(np.clip(wave + ar + rng.normal(0, 1, t.size), 0, 100))


def test_the_option_pages_less_on_a_clean_wave_and_a_real_step_still_alarms() -> None:
    """Eight days of the wave, no anomaly, eight seeds: at least a quarter fewer alarms in the
    last three days with the option (17 against 11 when written, 15 against 11 since; the seeds differ by 0-2
    each, so fewer seeds made a margin of one alarm); a step of +30 for fifteen minutes on the
    last day alarms with and without it. Without `trend` (on by default at one minute since
    2026-12-08), whose line is fitted by its forecast errors whatever `fit_window`; the step
    alarms with the defaults too."""
    off = on = 0
    for seed in range(8):
        values = cpu(8, seed)
        off += len([a for a in auto_alarms(values, MINUTE, fit_window=0, trend=False) if a >= 5 * DAY])
        on += len([a for a in auto_alarms(values, MINUTE, trend=False) if a >= 5 * DAY])  # the default: 200
        if seed < 2:
            values[7 * DAY + 600 : 7 * DAY + 615] += 30
            for params in ({"fit_window": 0, "trend": False}, {"trend": False}, {}):
                assert any(7 * DAY + 600 <= a < 7 * DAY + 615 for a in auto_alarms(values, MINUTE, **params))
    assert on <= off * 3 // 4


def test_a_baseline_without_recent_residuals_is_not_the_best_fit() -> None:
    """Review: the daily baseline's newest residuals all missing (an outage at that time on two
    of the three days before) gave it a fit of 0, a perfect one; it judged a quiet day with the
    noisy days' spread and a step of 8 of the day's spreads scored |z| under 2. Now it is not
    picked there, and the step stands out as it does without the option."""
    rng = np.random.default_rng(0)
    t = np.arange(4 * DAY)
    values = np.where(t < 3 * DAY, 100 + rng.normal(0, 10, t.size), 100 + rng.normal(0, 1, t.size))
    tod = t % DAY
    values[((t // DAY == 1) | (t // DAY == 2)) & (tod >= 480) & (tod < 696)] = np.nan  # 08:00-11:36
    times = (t * MINUTE).astype(np.int64)
    kept = np.isfinite(values)
    times, values = times[kept], values[kept]
    start = int(np.searchsorted(times, (3 * DAY + 696) * MINUTE))  # day 3, 11:36: a block's start
    idx = np.arange(start, start + 12)
    stepped = values.copy()
    stepped[idx] += 8
    for fit_window in (0, 200):
        det = AutoDetector(Params(fit_window=fit_window), MINUTE)
        fit = autofit.block_fit(det, times, values[None, :], np.array([start]))
        judged = autofit.apply(det, times, stepped[None, :], idx, np.zeros(12, np.int64), fit)
        assert (judged.basis == 0).all()  # the level: the daily one has no recent fit
        assert np.abs(judged.z[:4]).min() > 5
