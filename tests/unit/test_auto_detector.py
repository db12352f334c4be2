"""The default `auto` detector: seasonal baselines, surprise relative to the series' own past."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector, Params
from detectkd.detectors.base import Current, History

STEP = 3600  # hourly: the day (24) and the week (168) are cycles


def daily(n: int, seed: int = 7, noise: float = 2.0) -> np.ndarray:
    i = np.arange(n)
    return 100 + 50 * np.sin(2 * np.pi * i / 24) + np.random.default_rng(seed).normal(0, noise, n)


def replay(values: np.ndarray, det: AutoDetector, series: str = "s") -> list[tuple[float, bool]]:
    """Stream points as the runner does: judge, then add the point to the history."""
    out = []
    times = np.arange(values.shape[0], dtype=np.int64) * STEP
    for i in range(values.shape[0]):
        h = History(times[:i], values[:i], {})
        r = det.detect(h, Current(int(times[i]), float(values[i]), {}, series))
        out.append((r.score, r.anomaly))
    return out


def test_a_daily_pattern_is_not_an_anomaly_but_a_break_in_it_is() -> None:
    values = daily(24 * 30)
    values[24 * 25 + 6] = 100.0  # the peak hour stays at the mean: unusual only for that hour
    results = replay(values, AutoDetector(Params(), STEP))
    flagged = [i for i, (_, a) in enumerate(results) if a and i > 24 * 10]
    assert flagged == [24 * 25 + 6]
    score, _ = results[24 * 25 + 6]
    assert 0.5 <= score <= 1.0


def test_seasonal_cycles_follow_the_interval_and_the_history_limit() -> None:
    assert AutoDetector(Params(), 3600).periods == [24, 168]
    assert AutoDetector(Params(), 60).periods == [1440]  # a week of minutes is beyond max_history
    assert AutoDetector(Params(seasonal=False), 3600).periods == []
    assert AutoDetector(Params(), 7 * 3600).periods == [24]  # 7 h does not divide a day


def test_surprise_is_relative_to_the_series_own_noise() -> None:
    rng = np.random.default_rng(1)
    calm = 100 + rng.normal(0, 1, 3000)
    wild = 100 + rng.standard_t(2, 3000) * 5  # heavy tails: big deviations are routine here
    jump = 115.0  # 15 sigma for the calm series
    for values, expect in ((calm, True), (wild, False)):
        v = values.copy()
        v[-1] = jump if expect else 100 + 4 * 5
        (score, anomaly) = replay(v, AutoDetector(Params(seasonal=False), STEP))[-1]
        assert anomaly is expect and (score >= 0.5) is expect


def test_restart_rebuilds_the_same_state_from_history() -> None:
    values = daily(24 * 20, seed=3)
    times = np.arange(values.shape[0], dtype=np.int64) * STEP
    live = AutoDetector(Params(rebuild=2000), STEP)
    replay(values[:-1], live)
    h = History(times[:-1], values[:-1], {})
    point = Current(int(times[-1]), float(values[-1]) + 40, {}, "s")
    fresh = AutoDetector(Params(rebuild=2000), STEP)  # no memory: rebuilds from the history
    a, b = live.detect(h, point), fresh.detect(h, point)
    assert math.isclose(a.score, b.score) and a.anomaly == b.anomaly and a.expected == b.expected


def test_constant_history_and_cold_start() -> None:
    det = AutoDetector(Params(seasonal=False), STEP)
    h = History(np.arange(100, dtype=np.int64) * STEP, np.full(100, 5.0), {})
    r = det.detect(h, Current(100 * STEP, 6.0, {}, "c"))
    assert r.anomaly and math.isfinite(r.upper or math.inf) and r.score <= 1.0
    assert not det.detect(h, Current(100 * STEP, 5.0, {}, "c2")).anomaly
    short = History(np.arange(10, dtype=np.int64) * STEP, np.full(10, 5.0), {})
    assert det.detect(short, Current(10 * STEP, 50.0, {}, "x")).skipped


def test_a_metric_without_detectors_gets_auto(tmp_path: object) -> None:
    from pathlib import Path

    from detectkd.config.loader import load_metrics
    from tests.conftest import write

    root = Path(str(tmp_path))
    write(
        root / "m.yaml", "name: m\ncollector: {type: sqlite, params: {database: x.db, query: 'SELECT 1'}}\n"
    )
    spec = load_metrics([root], None, env={}).metrics["m"]
    assert [(d.type, d.id) for d in spec.detectors] == [("auto", "auto")]


@pytest.mark.parametrize("n", [2500, 900], ids=["long history", "shorter than window + rebuild"])
def test_vectorised_rebuild_equals_the_point_by_point_fits(n: int) -> None:
    """A restart recomputes hundreds of |z| per series at once; they must be `_fit`'s."""
    m = math
    rng = np.random.default_rng(4)
    step = 300  # five minutes: a day is 288 points, so the daily baseline is in play
    t = np.arange(n, dtype=np.int64) * step
    v = 50 + 20 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 2, n)
    v[rng.random(n) < 0.05] = np.nan  # gaps
    v[n - 400 : n - 300] = 42.0  # a flat stretch: zero spread, the exact path's mean fallback
    rebuild = min(1500, n - 100)
    d = AutoDetector(Params(rebuild=rebuild, reference=1500), step)
    memo = d._memo_for("s", t, v)
    expected_z = []
    for i in range(n - rebuild, n):
        if not m.isfinite(v[i]):
            continue
        fit = d._fit(t[:i], v[:i], int(t[i]), float(v[i]))
        expected_z.append(abs(fit.z) if fit is not None else m.nan)
    assert len(memo.z) == len(expected_z) > 700
    for got, want in zip(memo.z, expected_z, strict=True):
        assert (m.isnan(got) and m.isnan(want)) or got == want, (got, want)
    assert d.detect(History(t, v, {}), Current(int(t[-1]) + step, 50.0, {}, "s")).skipped is None
