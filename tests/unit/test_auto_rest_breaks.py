"""`auto`'s `rest_breaks`: a range break's run rests at its own surprise, not at the spike
level every break alarms at (found by the demo: a slight dip that broke the range held a
spike of three times the level four minutes later)."""

from __future__ import annotations

import numpy as np

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History

STEP = 60


def scores(values: np.ndarray, **params: object) -> list[float]:
    det = AutoDetector(Params(seasonal=False, **params), STEP)  # type: ignore[arg-type]
    t = np.arange(values.size, dtype=np.int64) * STEP
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, values, strict=True)]
    return [r.score if r.score is not None else np.nan for r in det.detect_many(History.empty(), points)]


def gauge() -> np.ndarray:
    rng = np.random.default_rng(11)
    return 100 + rng.normal(0, 1, 3000)


def test_a_greater_break_in_the_rest_of_a_slight_one_alarms() -> None:
    values = gauge()
    low, high = values[:2500].min(), values[:2500].max()
    values[2500] = low - 0.6 * (high - low) / 10 - 1.2  # just past the range: |z| below the line
    values[2530] = high + 4.0  # thirty points later, far past it
    off, on = scores(values), scores(values, rest_breaks=True)
    assert off[2500] >= 0.5 and on[2500] >= 0.5  # the slight break alarms alone either way
    assert off[2530] < 0.5  # held: "no greater" than the first break's spike level
    assert on[2530] >= 0.5


def test_a_lesser_break_in_the_rest_of_a_greater_one_is_still_held() -> None:
    values = gauge()
    low, high = values[:2500].min(), values[:2500].max()
    values[2500] = high + 4.0
    values[2530] = low - 0.6 * (high - low) / 10 - 1.2
    on = scores(values, rest_breaks=True)
    assert on[2500] >= 0.5 and on[2530] < 0.5
