"""`auto`'s `long_margin` (an option, 1: off): the weekly baseline judges where its fit is within
this factor of the daily one's, so a weekend's first hours are expected as a weekend."""

from __future__ import annotations

import numpy as np

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History

DAY, WEEK = 86400, 7 * 86400
MONDAY = 1_764_547_200  # 2025-12-01 00:00 UTC, a Monday


def week_shaped(step: int, weeks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    t = MONDAY + np.arange(weeks * WEEK // step, dtype=np.int64) * step
    rng = np.random.default_rng(seed)
    weekend = ((t - MONDAY) % WEEK) >= 5 * DAY
    level = (100 + 30 * np.sin(2 * np.pi * (t % DAY) / DAY)) * np.where(weekend, 0.6, 1.0)
    return t, level + rng.normal(0, 2, t.size)


def expected(t: np.ndarray, v: np.ndarray, step: int, **kw: object) -> np.ndarray:
    det = AutoDetector(Params(**kw), step)  # type: ignore[arg-type]
    got = det.detect_many(
        History.empty(), [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    )
    return np.array([r.expected if r.expected is not None else np.nan for r in got])


def test_a_weekends_first_hours_are_expected_as_a_weekend() -> None:
    """Which of the two fits Friday a little better is chance (of these seeds' fifth Saturdays,
    the daily baseline judged at two); with the margin the weekly one judges every time."""
    step = 300
    for seed in (0, 4):
        t, v = week_shaped(step, 5, seed)
        saturday = (t >= MONDAY + 4 * WEEK + 5 * DAY) & (t < MONDAY + 4 * WEEK + 5 * DAY + 3 * 3600)
        off = np.abs(expected(t, v, step) - v)[saturday].mean()
        on = np.abs(expected(t, v, step, long_margin=1.25) - v)[saturday].mean()
        assert off > 10  # the daily baseline: a weekday's level, 40 % too high
        assert on < 3  # the noise's own (2 x 0.8)


def test_there_is_no_weekly_baseline_at_one_minute() -> None:
    """Why the option changes nothing at one minute (the weekly profile corrects the daily
    baseline there): three weeks of one-minute points are more than `auto` keeps, so its only
    seasonal baseline is the day's, and the margin acts on the week's (the third baseline)."""
    assert AutoDetector(Params(long_margin=1.25), 60).periods == [1440]
    assert AutoDetector(Params(long_margin=1.25), 300).periods == [288, 2016]


def test_long_step_keeps_the_margin_to_where_the_weekly_baseline_foresees_a_step() -> None:
    step = 300
    t, v = week_shaped(step, 5, 0)
    saturday = (t >= MONDAY + 4 * WEEK + 5 * DAY) & (t < MONDAY + 4 * WEEK + 5 * DAY + 3 * 3600)
    stepped = expected(t, v, step, long_margin=1.25, long_step=2)
    assert np.abs(stepped - v)[saturday].mean() < 3  # the weekend's step: 40 %, many spreads
    never = expected(t, v, step, long_margin=1.25, long_step=1e6)  # no step that large: best fit
    assert np.array_equal(never, expected(t, v, step), equal_nan=True)
    assert not np.array_equal(stepped, expected(t, v, step, long_margin=1.25), equal_nan=True)
