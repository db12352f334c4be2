"""The synthetic ops series of benchmarks/quiet_series.py and its count of pages."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.quiet_series import COUNTS, DAY, KINDS, START, at_step, count_pages, generate, times_at


@pytest.mark.parametrize("kind", KINDS)
def test_a_seed_gives_the_same_series_and_another_seed_another(kind: str) -> None:
    a, b, c = generate(kind, 7, weeks=1), generate(kind, 7, weeks=1), generate(kind, 8, weeks=1)
    assert a.size == 7 * DAY
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", KINDS)
def test_five_minutes_is_the_one_minute_series_aggregated(kind: str) -> None:
    minute = generate(kind, 1, weeks=1)
    five = at_step(kind, minute, 300)
    assert five.size == minute.size // 5
    blocks = minute.reshape(-1, 5)
    want = blocks.sum(axis=1) if kind in COUNTS else blocks.mean(axis=1)
    assert np.allclose(five, want)
    assert np.array_equal(at_step(kind, minute, 60), minute)


@pytest.mark.parametrize("kind", KINDS)
def test_values_are_finite_and_where_they_must_be_non_negative(kind: str) -> None:
    x = generate(kind, 2, weeks=2)
    assert np.isfinite(x).all()
    assert (x >= 0).all()
    if kind in COUNTS:
        assert np.array_equal(x, np.round(x))  # whole counts: `auto` judges them as counts
    if kind == "cpu":
        assert x.max() <= 100.0
    if kind == "latency":
        assert (x > 0).all()


def test_the_levels_are_those_documented() -> None:
    means = {k: float(generate(k, 0, weeks=1).mean()) for k in KINDS}
    assert 170 < means["requests"] < 210  # 200 a minute on weekdays, 0.75 of it at weekends
    assert 0.25 < means["errors"] < 0.35
    assert 18 < means["bursty"] < 22
    assert 40 < means["cpu"] < 55
    x = generate("requests", 0, weeks=1)
    peak = (np.arange(x.size) % DAY) // 60 == 16
    weekday, weekend = x[peak][: 5 * 60].mean(), x[peak][5 * 60 :].mean()
    assert weekend / weekday == pytest.approx(0.75, abs=0.05)  # Saturday and Sunday are lower


def test_times_start_on_a_monday_at_midnight() -> None:
    t = times_at(300, 3)
    assert list(t - START) == [0, 300, 600]
    assert (START // 86400 + 3) % 7 == 0  # 1970-01-01 was a Thursday: day 4 is a Monday


def test_pages_are_counted_over_the_scored_span_only() -> None:
    step, n = 3600, 24 * 10  # ten days of hourly points
    times = START + step * np.arange(n)
    notified = np.zeros(n)
    notified[[5, 30, 47]] = 1.0  # in the warm-up: not counted
    notified[[48, 100, 239]] = 1.0  # from day 2 on: counted, the last point too
    pages = count_pages(times, notified, START + 2 * 86400, int(times[-1]) + step)
    assert pages.notified == 3
    assert pages.scored == n - 48
    assert pages.days == 8.0
    assert pages.per_day == pytest.approx(3 / 8)
    assert pages.per_1000 == pytest.approx(1000 * 3 / 192)
