"""The offline probes of benchmarks/nab_probes.py, on synthetic series."""

from __future__ import annotations

import numpy as np

from benchmarks.nab_probes import REST, cusum_alarms, pages, spread_alarms


def noise(n: int, seed: int) -> np.ndarray:
    return 50.0 + np.random.default_rng(seed).normal(0.0, 1.0, n)


def test_a_spread_change_alarms_and_stationary_noise_does_not() -> None:
    quiet = noise(6000, 1)
    wider = quiet.copy()
    wider[5000:] = 50.0 + (wider[5000:] - 50.0) * 4.0  # the same level, four times the spread
    assert not pages(spread_alarms(quiet, 48, 1.5, "mad"))
    sent = pages(spread_alarms(wider, 48, 1.5, "mad"))
    assert sent and 5000 <= sent[0] < 5048  # within one statistic's window of the change


def test_a_small_persistent_shift_alarms_the_cusum() -> None:
    shifted = noise(6000, 5)
    shifted[5000:] += 1.5  # 1.5 spreads: no single point stands out
    assert [t for t in pages(cusum_alarms(shifted, 0.5, 1.25)) if 5000 <= t < 5100]


def test_the_cusums_records_page_on_stationary_noise_too() -> None:
    # Why the CUSUM probe was not built (docs/benchmarks.md): a CUSUM's maximum grows with the
    # time it is watched, so a new record against the last 2,000 points is routine on pure noise
    # (7 pages in 8 x 4,000 judged points, about 0.2 per 1,000), where the spread test is silent.
    cusum = sum(len(pages(cusum_alarms(noise(6000, seed), 0.5, 1.25))) for seed in range(8))
    spread = sum(len(pages(spread_alarms(noise(6000, seed), 48, 1.5, "mad"))) for seed in range(8))
    assert 4 <= cusum <= 12
    assert spread == 0


def test_pages_are_a_runs_first_point_then_a_rest_outside_probation() -> None:
    alarm = np.zeros(2000, bool)
    alarm[[10, 500, 501, 502, 550, 700]] = True  # 10: in probation (the first 15 %)
    assert pages(alarm) == [500, 700]  # 550 within REST of 500
    assert 550 - 500 < REST <= 700 - 500
