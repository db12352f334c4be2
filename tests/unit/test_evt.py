"""Extreme-value lines (SPOT) and `auto`'s gate on them: the fit against known generalised
Pareto quantiles, the line's calibration, causality, and what the gate holds back."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo
from detectkd.detectors.base import Current, History
from detectkd.detectors.evt import gpd_fit, gpd_quantile, tail_line
from detectkd.runtime.windows import SeriesWindow

FIVE_MIN, DAY = 300, 288
Draw = Callable[[np.random.Generator, int], np.ndarray]


def gpd_sample(gamma: float, sigma: float, n: int, seed: int) -> np.ndarray:
    """Inverse transform: X = sigma / gamma * (U^-gamma - 1) (sigma * -ln U at gamma 0)."""
    u = np.random.default_rng(seed).random(n)
    return -sigma * np.log(u) if gamma == 0 else sigma / gamma * (u**-gamma - 1.0)


@pytest.mark.parametrize(("gamma", "sigma"), [(0.0, 1.0), (0.25, 2.0), (-0.2, 0.5)])
def test_the_fit_recovers_a_generalised_pareto_distribution(gamma: float, sigma: float) -> None:
    g, s = gpd_fit(gpd_sample(gamma, sigma, 200_000, seed=1))
    assert g == pytest.approx(gamma, abs=0.02)
    assert s == pytest.approx(sigma, rel=0.02)


def test_the_quantile_is_the_inverted_survival_function() -> None:
    assert gpd_quantile(2.0, 0.0, 1.0, 1e-3) == pytest.approx(2.0 + math.log(1000))  # exponential
    assert gpd_quantile(0.0, 0.5, 1.0, 0.01) == pytest.approx((0.01**-0.5 - 1) / 0.5)  # = 18
    assert gpd_quantile(0.0, -0.5, 1.0, 1e-12) < 2.0  # a bounded tail: its end is sigma / -gamma
    assert gpd_quantile(3.0, 0.2, 1.0, 1.0) == 3.0  # probability 1: the threshold itself
    for gamma in (-0.3, 0.0, 0.4):  # exceeded by the stated share of a large sample
        x = gpd_sample(gamma, 1.0, 400_000, seed=2)
        assert np.mean(x >= gpd_quantile(0.0, gamma, 1.0, 1e-3)) == pytest.approx(1e-3, rel=0.15)


@pytest.mark.parametrize(
    ("name", "draw", "truth"),
    [
        # |N(0, 1)|: P(|Z| > 3.8906) = 1e-4; exponential: ln(1e4); Pareto (tail index 3): 1e4^(1/3)
        ("abs normal", lambda r, n: np.abs(r.normal(size=n)), 3.8906),
        ("exponential", lambda r, n: r.exponential(size=n), math.log(1e4)),
        ("pareto", lambda r, n: r.pareto(3.0, size=n) + 1.0, 1e4 ** (1 / 3)),
    ],
)
def test_the_line_extrapolates_a_rare_quantile_from_a_short_sample(
    name: str, draw: Draw, truth: float
) -> None:
    """From 2,000 values (the reference ring), the value crossed once in 10,000: within 15 %
    of the truth in the median of 50 samples; the empirical 0.9999 quantile of 2,000 values does
    not exist (it is the maximum)."""
    rng = np.random.default_rng(3)
    lines = [tail_line(np.sort(draw(rng, 2000)), 1e-4, 0.98, 50) for _ in range(50)]
    assert np.median(lines) == pytest.approx(truth, rel=0.15), name


def test_a_heavier_tail_gets_a_higher_line_at_the_same_risk() -> None:
    rng = np.random.default_rng(4)
    light = tail_line(np.sort(np.abs(rng.normal(size=2000))), 1e-4, 0.98, 50)
    heavy = tail_line(np.sort(np.abs(rng.standard_t(3, size=2000))), 1e-4, 0.98, 50)
    assert heavy > 1.5 * light


def test_edge_cases_of_the_line_and_the_fit() -> None:
    assert tail_line(np.arange(10.0), 1e-4, 0.98, 50) == 0.0  # too few values: no line
    assert tail_line(np.sort(np.arange(100.0)), 0.0, 0.98, 50) == 0.0  # risk 0: off
    ties = np.r_[np.zeros(1998), 5.0, 7.0]  # two excesses: the largest value seen
    assert tail_line(ties, 1e-4, 0.98, 50) == 7.0
    assert gpd_fit([0.0, 0.0, 0.0]) == (0.0, 0.0)  # no excess at all
    g, s = gpd_fit([1e9, 1.0, 1.0, 1.0, 1.0, 1.0])  # beyond the moments' range: clipped
    assert -0.5 <= g <= 0.9 and s > 0
    with pytest.raises(ValueError, match="at least 2 finite non-negative excesses"):
        gpd_fit([1.0])
    with pytest.raises(ValueError, match="finite non-negative"):
        gpd_fit([1.0, math.nan])


def test_the_gate_reads_only_the_ring_before_the_point() -> None:
    """Causality: the test of a point sees the |z| pushed before it, never its own or later."""
    m = Memo(2000)
    rng = np.random.default_rng(5)
    for x in np.abs(rng.normal(size=2000)):
        m.push(float(x), m.sorted())
    p = Params(risk=1e-4)
    assert m.extreme(m.sorted(), 5.0, True, p) and not m.extreme(m.sorted(), 3.0, True, p)
    before = m.extreme(m.sorted(), 4.2, True, p)
    m.push(50.0, m.sorted())  # a later extreme value does not change an earlier verdict (it was made)...
    m2 = Memo(2000)
    for x in np.abs(np.random.default_rng(5).normal(size=2000)):
        m2.push(float(x), m2.sorted())
    assert m2.extreme(m2.sorted(), 4.2, True, p) == before  # ... and the same ring gives the same verdict
    # two in a row: the smaller of the pair against the pairs' line (the newest |z| is the first)
    m3 = Memo(2000)
    ordered = m3.sorted()
    for x in np.abs(np.random.default_rng(6).normal(size=2000)):
        m3.push(float(x), ordered)
    m3.push(0.1, ordered)
    assert not m3.extreme(ordered, 9.0, False, p)  # the pair's smaller is 0.1


def spiky_series(n: int, seed: int) -> np.ndarray:
    """A quiet CPU-like series with a batch job: a spike once a day at the same hour, whose
    height varies by 0.2 / 3 (22 spreads of the noise): against the median of the previous days
    it is still a spike (3 x `min_z` 4 = 12 |z|) on about a third of them."""
    rng = np.random.default_rng(seed)
    v = 0.07 + rng.normal(0, 0.003, n)
    v[np.arange(n) % DAY == 100] = (
        1.4 + rng.normal(0, 0.2 / 3, n // DAY + 1)[: (np.arange(n) % DAY == 100).sum()]
    )
    return v


def pages(values: np.ndarray, **params: object) -> list[int]:
    det = AutoDetector(Params.model_validate(params), FIVE_MIN)
    times = np.arange(values.size, dtype=np.int64) * FIVE_MIN
    res = det.detect_many(
        History.empty(), [Current(int(t), float(v), {}, "s") for t, v in zip(times, values, strict=True)]
    )
    flags = np.array([r.anomaly for r in res])
    return np.flatnonzero(flags & ~np.r_[False, flags[:-1]]).tolist()


def test_a_routine_daily_spike_stops_paging_and_a_new_extreme_still_pages() -> None:
    n = DAY * 21
    v = spiky_series(n, seed=7)
    v[DAY * 18 + 200] = 6.0  # four times the routine spike: news
    routine = [i for i in pages(v, spike_jitter=0) if i % DAY == 100]
    gated = pages(v, risk=1e-4)
    assert len(routine) >= 5  # the line alone pages the job most days (`spike_jitter`: fewer)
    assert len([i for i in pages(v) if i % DAY == 100]) < len(routine)
    assert gated == [100, DAY * 18 + 200]  # the job's first day (no tail to fit yet) and the news
    assert pages(v, risk=0.0) == pages(v)  # off: exactly today's detector


def test_the_gate_is_the_same_live_and_in_a_replay() -> None:
    """Point by point through the runner's window and in two batches: the same results."""
    n = DAY * 9
    v = spiky_series(n, seed=8)
    v[DAY * 8 :] += 2.0  # a level shift beyond the range (a range break: not gated)
    t = np.arange(n, dtype=np.int64) * FIVE_MIN
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    p = Params(risk=1e-4)
    live, window, one_by_one = AutoDetector(p, FIVE_MIN), SeriesWindow(10**9, ()), []
    for q in points:
        one_by_one.append(live.detect(window.history(), q))
        window.add(q.time, q.value, {})
    many = AutoDetector(p, FIVE_MIN)
    batched = many.detect_many(History.empty(), points[:1000])
    batched += many.detect_many(History(t[:1000], v[:1000], {}), points[1000:])
    assert batched == one_by_one
    assert batched[DAY * 8].anomaly  # the shift pages at once
