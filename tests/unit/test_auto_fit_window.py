"""`auto`'s `fit_window` (off by default): the baseline that judges is picked by the fit of its
newest residuals (about its window's centre), not of the whole window's."""

from __future__ import annotations

import numpy as np

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
    """Eight days of the wave, no anomaly, three seeds: fewer alarms with the option; a step of
    +30 for fifteen minutes on the last day alarms with and without it."""
    off = on = 0
    for seed in range(3):
        values = cpu(8, seed)
        off += len([a for a in auto_alarms(values, MINUTE) if a >= 5 * DAY])
        on += len([a for a in auto_alarms(values, MINUTE, fit_window=200) if a >= 5 * DAY])
        values[7 * DAY + 600 : 7 * DAY + 615] += 30
        for params in ({}, {"fit_window": 200}):
            assert any(7 * DAY + 600 <= a < 7 * DAY + 615 for a in auto_alarms(values, MINUTE, **params))
    assert on < off
