"""`auto` judging before its history is complete (a staged first start, issue 28): on the
level alone from `judge_seconds` of history, the seasonal baselines switching on as their
cycles come in, and, once everything is in, the judgements of a metric that had it all."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History, Result, judge_seconds
from detectkd.runtime.windows import SeriesWindow

STEP = 60
DAY = 86400
T0 = 1_700_000_000 // DAY * DAY


def series(n: int, seed: int = 1, daily: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = T0 + STEP * np.arange(n, dtype=np.int64)
    values = 100.0 + daily * np.sin(2 * math.pi * (times % DAY) / DAY) + rng.normal(0, 1.0, n)
    return times, values


def judge(det: AutoDetector, times: np.ndarray, values: np.ndarray, start: int, stop: int) -> list[Result]:
    """Points [start, stop) one by one (live checks), each against the history [start0, i)."""
    out = []
    for i in range(start, stop):
        h = History(times[:i], values[:i], {})
        out.append(det.detect_many(h, [Current(int(times[i]), float(values[i]), {})])[0])
    return out


def test_it_judges_on_the_level_alone_from_its_short_warm_up() -> None:
    det = AutoDetector(Params(), STEP)
    need = judge_seconds(det, STEP) // STEP
    assert need == 62  # min_samples 50 before the block + a block of 12
    times, values = series(need + 1)
    (r,) = judge(det, times, values, need, need + 1)
    assert r.skipped is None
    assert r.basis is not None and r.basis.startswith("the level of the last ")
    assert "seasonal baselines loading: 0 of 3 days" in r.basis
    assert "level window loading:" in r.basis
    # One point fewer than the level needs before its block: a cold start, as before.
    short = AutoDetector(Params(), STEP)
    block = int(times[need]) // (12 * STEP) * 12 * STEP
    first = int(np.searchsorted(times, block)) - 49
    (cold,) = judge(short, times[first:], values[first:], need - first, need - first + 1)
    assert cold.skipped is not None and cold.skipped.startswith("cold start")


def test_a_seasonal_baseline_switches_on_with_two_cycles_and_says_what_is_loading() -> None:
    det = AutoDetector(Params(), STEP)
    times, values = series(int(2.25 * DAY / STEP) + 1, daily=30.0)
    (r,) = judge(det, times, values, times.size - 1, times.size)
    assert r.skipped is None
    assert r.basis == "the same time of the last 2 days (seasonal baselines loading: 2 of 3 days)"
    # with one day only, the daily peak is judged by the level
    one = AutoDetector(Params(), STEP)
    t1, v1 = series(int(1.25 * DAY / STEP) + 1, daily=30.0)
    (r1,) = judge(one, t1, v1, t1.size - 1, t1.size)
    assert r1.basis == "the level of the last 400 points (seasonal baselines loading: 1 of 3 days)"


def test_after_the_fill_in_it_judges_as_a_metric_that_had_all_its_history() -> None:
    n = 7000  # more than auto reads at a minute (6,732)
    times, values = series(n + 120, daily=20.0)
    values[n + 60 : n + 70] += 25.0  # a step after the fill-in: the verdicts must agree on it
    full = AutoDetector(Params(), STEP)
    had_all = judge(full, times, values, n, n + 120)
    staged = AutoDetector(Params(), STEP)
    short = n - 62
    early = judge(staged, times[short:], values[short:], 62, 62 + 30)  # level only meanwhile
    assert all(r.basis is not None and r.basis.startswith("the level") for r in early if r.skipped is None)
    staged.forget("")  # the fill-in is done: the runtime re-reads its windows (`memory.reset`)
    after = judge(staged, times, values, n + 30, n + 120)
    assert after == had_all[30:]
    assert all(r.basis is None for r in after)
    assert any(r.anomaly for r in after)  # the step is judged, alike


def differences(got: list[Result], want: list[Result]) -> list[tuple[int, str, object, object]]:
    """Every field of every result that differs (basis, score, expected, bounds ...)."""
    assert len(got) == len(want)
    out = []
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        for f in dataclasses.fields(Result):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if x != y and not (
                isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
            ):
                out.append((i, f.name, x, y))
    return out


HOUR = 3600
CASES = {  # (interval, counts, share missing (-1: an outage), first point's offset in intervals, params)
    "points 400-407 of a fresh series": (STEP, False, 0.0, 0, {"seasonal": False}),
    "off the block grid": (STEP, False, 0.0, 7, {"seasonal": False}),
    "counts": (STEP, True, 0.0, 3, {"seasonal": False}),
    "missing values": (STEP, False, 0.05, 5, {"seasonal": False}),
    "an outage": (STEP, False, -1.0, 5, {"seasonal": False}),
    "a block a point": (STEP, False, 0.0, 0, {"seasonal": False, "refresh": 1}),
    "a short window": (
        STEP,
        False,
        0.0,
        5,
        {"seasonal": False, "window": 100, "min_samples": 20, "refresh": 7},
    ),
    "stuck, sustain, SPOT": (
        STEP,
        True,
        0.02,
        5,
        {"seasonal": False, "stuck": 24, "sustain": 24, "risk": 1e-3},
    ),
    "no cycle at a minute": (STEP, False, 0.0, 7, {}),  # a day is 1,440 points: never loaded here
    "days and weeks load": (HOUR, False, 0.02, 5, {}),  # 72 and 504 points: both load here
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_fresh_series_is_judged_alike_live_and_in_a_replay(case: str) -> None:
    """A first start judges on the level alone and says so (`basis`) until its window is in
    the history. Live, one check a point, and in a replay from empty history (one batch, or
    two) every field of every result must agree: `seasonal: false` skipped the per-point
    count of the level window when the points just before the check were all there, so live
    checks said nothing where the replay said "level window loading: 396 of 400 points"."""
    step, counts, gaps, offset, params = CASES[case]
    n = 640
    rng = np.random.default_rng(11)
    times = T0 + step * (offset + np.arange(n, dtype=np.int64))
    values = rng.poisson(4, n).astype(float) if counts else 100.0 + rng.normal(0, 1.0, n)
    values[rng.random(n) < gaps] = np.nan
    if gaps < 0:
        values[380:470] = np.nan  # an outage through the first full level window
    values[500] += 40.0  # a spike: a judgement that alarms among them
    points = [
        Current(int(t), None if v != v else float(v), {}, "s") for t, v in zip(times, values, strict=True)
    ]
    p = Params.model_validate(params)
    one = AutoDetector(p, step)
    single = [one.detect(History(times[:i], values[:i], {}), points[i]) for i in range(n)]
    live, window, cached = AutoDetector(p, step), SeriesWindow(10**9, ()), []
    for q in points:
        cached.append(live.detect(window.history(), q))
        window.add(q.time, q.value, {})
    whole = AutoDetector(p, step).detect_many(History.empty(), points)
    many, cut = AutoDetector(p, step), 300
    batched = many.detect_many(History.empty(), points[:cut])
    batched += many.detect_many(History(times[:cut], values[:cut], {}), points[cut:])
    assert differences(cached, single) == []
    assert differences(whole, single) == []
    assert differences(batched, single) == []
    said = [r.basis for r in single if r.skipped is None]
    assert any(b is not None and "loading" in b for b in said)  # the warm-up is in play
    assert said[-1] is None or (step == STEP and p.seasonal)  # over (a day's 3 cycles: 4,320 points)
    assert single[500].anomaly
