"""The default `auto` detector: seasonal baselines, surprise relative to the series' own past."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import BlockFit, Memo, line
from detectkd.detectors.base import Current, History
from detectkd.runtime.windows import SeriesWindow
from tests.support.detectors import same_state

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
    live = AutoDetector(Params(), STEP)
    replay(values[:-1], live)
    h = History(times[:-1], values[:-1], {})
    point = Current(int(times[-1]), float(values[-1]) + 40, {}, "s")
    fresh = AutoDetector(Params(), STEP)  # no memory: rebuilds from the history
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

    from detectkd.specs.loader import load_metrics
    from tests.support.files import write

    root = Path(str(tmp_path))
    write(
        root / "m.yaml", "name: m\ncollector: {type: sqlite, params: {database: x.db, query: 'SELECT 1'}}\n"
    )
    spec = load_metrics([root], None, env={}).metrics["m"]
    assert [(d.type, d.id) for d in spec.detectors] == [("auto", "auto")]


@pytest.mark.parametrize("n", [2500, 900], ids=["long history", "shorter than the window"])
def test_a_batch_is_judged_exactly_as_point_by_point(n: int) -> None:
    """Replays judge a whole batch with array operations; every result must be the one a
    live check of that point alone gives."""
    rng = np.random.default_rng(4)
    step = 300  # five minutes: a day is 288 points, so the daily baseline is in play
    t = np.arange(n, dtype=np.int64) * step
    v = 50 + 20 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 2, n)
    v[rng.random(n) < 0.05] = np.nan  # gaps
    v[n - 400 : n - 300] = 42.0  # a flat stretch: zero spread, the mean-deviation fallback
    v[n - 200] = 400.0  # a spike
    points = [
        Current(int(ti), None if math.isnan(vi) else float(vi), {}, "s") for ti, vi in zip(t, v, strict=True)
    ]
    one = AutoDetector(Params(), step)
    single = [one.detect(History(t[:i], v[:i], {}), points[i]) for i in range(n)]
    # Live, through the runner's window (a known revision): a block's baselines are fitted once
    # and kept for its later points; the results must not change.
    live, window = AutoDetector(Params(), step), SeriesWindow(10**9, ())
    cached = []
    for p in points:
        cached.append(live.detect(window.history(), p))
        window.add(p.time, p.value, {})
    assert cached == single and live._memo["s"].fit_key is not None
    many = AutoDetector(Params(), step)
    cut = n // 3  # two batches, as a replay splits history
    batched = many.detect_many(History.empty(), points[:cut])
    batched += many.detect_many(History(t[:cut], v[:cut], {}), points[cut:])
    assert batched == single
    assert any(r.anomaly for r in single) and sum(r.skipped is None for r in single) > n // 2


def test_counts_are_judged_on_the_square_root_scale() -> None:
    """A small Poisson count that drops to a tenth: the band must not reach below zero
    for the drop to be visible, and it must alarm (the demo's third anomaly) at its first
    point (below the range of its last points: a range break)."""
    rng = np.random.default_rng(2)
    n = 1500
    t = np.arange(n, dtype=np.int64) * 10
    v = rng.poisson(28, n).astype(float)
    v[-3:] = rng.poisson(2.8, 3)
    det = AutoDetector(Params(), 10)
    results = det.detect_many(
        History.empty(), [Current(int(a), float(b), {}, "us") for a, b in zip(t, v, strict=True)]
    )
    quiet = results[600:-3]
    assert all(r.lower is not None and r.lower >= 0 for r in quiet)
    assert sum(r.anomaly for r in quiet) <= 0.01 * len(quiet)
    assert (results[-3].anomaly, results[-3].direction) == (True, "down")


def test_the_score_contract() -> None:
    """Score in [0, 1], 0.5 exactly where `anomaly` starts, rarely above it on normal data,
    finite on constant data, and falling after a level shift as it becomes the baseline."""
    rng = np.random.default_rng(9)
    n = 4000
    t = np.arange(n, dtype=np.int64) * 300
    noise = 100 + rng.normal(0, 3, n)
    shifted = noise.copy()
    shifted[3000:] += 40  # a sustained change
    flat = np.full(n, 7.0)
    for values in (noise, shifted, flat):
        det = AutoDetector(Params(), 300)
        pts = [Current(int(a), float(b), {}, "s") for a, b in zip(t, values, strict=True)]
        res = det.detect_many(History.empty(), pts)
        scores = np.array([r.score for r in res])
        assert np.all((scores >= 0) & (scores <= 1)) and np.all(np.isfinite(scores))
        assert all((r.score >= 0.5) == r.anomaly for r in res if r.skipped is None)
        assert all(math.isfinite(b) for r in res for b in (r.lower, r.upper) if b is not None)
        if values is noise:
            assert np.mean(scores[600:] >= 0.5) < 0.01
        if values is flat:
            assert not any(r.anomaly for r in res)
        if values is shifted:
            assert res[3001].anomaly  # news at its start ...
            assert np.mean(scores[3300:] >= 0.5) < 0.01  # ... not for the rest of the day
            assert scores[3300:].max() < scores[3001]


def test_forget_drops_the_series_state() -> None:
    det = AutoDetector(Params(), 300)
    t = np.arange(200, dtype=np.int64) * 300
    det.detect_many(History.empty(), [Current(int(a), 1.0 + a % 7, {}, "gone") for a in t])
    assert "gone" in det._memo
    det.forget("gone")
    assert "gone" not in det._memo


@pytest.mark.parametrize(
    "tail", ["calm", "spike", "short run", "long run", "fading", "nan last", "break", "resting"]
)
@pytest.mark.parametrize("size", [2000, 300])
def test_the_restart_rebuild_equals_judging_point_by_point(tail: str, size: int) -> None:
    """The rebuild after a restart loops only over the last points; the state it leaves (ring,
    sorted |z|, surprise, run, rest period) must be the full loop's whatever those points did."""
    rng = np.random.default_rng(3)
    az = np.abs(rng.normal(0, 1, 900))
    az[rng.integers(0, 900, 40)] = np.nan  # cold-start points
    az[:60] = np.nan
    ends = {
        "calm": [],
        "spike": [40.0],
        "short run": [9.0, 12.0, 11.0],
        "long run": [8.0] * 100,  # fades below the line and counts on
        "fading": [8.0] * 4,  # faded below the line, still counting
        "break": [2.0, 1.0],
        "resting": [40.0] + [1.0] * 10,
    }
    az = np.concatenate([az, ends.get(tail, [7.0, 9.0, math.nan])])
    breaks = np.zeros(az.size, bool)
    if tail == "break":
        breaks[-2] = True  # beyond the range, surprising enough: alarms alone
    det = AutoDetector(Params(reference=size, sustain=24), STEP)
    looped, rebuilt = Memo(size), Memo(size)
    det._surprises(looped, az, breaks)
    det._rebuild(rebuilt, az, breaks)
    assert (rebuilt.surprise, rebuilt.run, rebuilt.rest, rebuilt.level, rebuilt.alarmed) == (
        looped.surprise,
        looped.run,
        looped.rest,
        looped.level,
        looped.alarmed,
    )

    def ring(m: Memo) -> np.ndarray:  # oldest first
        return np.array(list(m.recent[m.head :]) + list(m.recent[: m.head]))

    assert np.array_equal(ring(rebuilt), ring(looped), equal_nan=True)
    assert np.array_equal(rebuilt.medians, looped.medians, equal_nan=True)  # the sustained channel's
    if tail in ("short run", "long run"):
        assert looped.run > 0  # the case is what it says
    if tail == "fading":
        assert looped.run > 1  # (at reference 300 already faded below the line)
    if tail in ("break", "resting", "spike"):
        assert looped.rest > 0


@pytest.mark.parametrize("reference", [2000, 60])
def test_exported_state_judges_exactly_as_the_detector_that_exported_it(reference: int) -> None:
    """A graceful restart keeps `auto`'s state (runtime.snapshot): the detector that imports
    it must judge the next points as the one that kept running, whether its |z| ring has
    wrapped (60) or not (2000), through a run of alarms and the rest period after it."""
    values = daily(24 * 20, seed=5)
    values[24 * 18 : 24 * 18 + 5] = 400.0  # a run beyond the line straddles the restart
    times = np.arange(values.size, dtype=np.int64) * STEP
    cut = 24 * 18 + 1  # the first point of the run judged before the restart
    running = AutoDetector(Params(reference=reference), STEP)
    for i in range(cut):
        running.detect_many(
            History(times[:i], values[:i], {}), [Current(int(times[i]), float(values[i]), {}, "s")]
        )
    assert running.state_series() == ["s"]
    state = running.export_state("s")
    assert state is not None and running.export_state("other") is None
    restarted = AutoDetector(Params(reference=reference), STEP)
    restarted.import_state("s", *state)
    assert restarted._memo["s"].run == running._memo["s"].run > 0
    assert restarted._memo["s"].rest == running._memo["s"].rest > 0  # resting after the alarm
    assert restarted._memo["s"].level == running._memo["s"].level > 0
    for i in range(cut, values.size):
        h, p = History(times[:i], values[:i], {}), Current(int(times[i]), float(values[i]), {}, "s")
        assert restarted.detect_many(h, [p]) == running.detect_many(h, [p])
    assert np.array_equal(restarted._memo["s"].ring(), running._memo["s"].ring(), equal_nan=True)


def test_the_z_ring_is_single_precision_and_its_line_within_a_part_in_ten_million() -> None:
    """Issue 28: the ring holds 4-byte |z| (8 KB for 2,000, not 16) and no sorted copy between
    judgements (`sorted` builds it: 8 KB a series less); a sorted copy kept up to date
    through many pushes holds exactly the ring's values, so an evicted one is found; the line
    is within a part in ten million of the double-precision one; a double ring from an
    import is rounded, not refused."""
    rng = np.random.default_rng(3)
    az = np.abs(rng.standard_t(3, 5000)) * 1.0000001
    az[::101] = math.nan
    m = Memo(2000)
    ordered = m.sorted()
    for a in az.tolist():
        m.push(a, ordered)
    assert m.recent.itemsize == ordered.itemsize == 4 and len(m.recent) == 2000
    assert not [f for f in dataclasses.fields(Memo) if f.name == "ordered"]  # not kept per series
    ring = np.array(list(m.recent[m.head :]) + list(m.recent[: m.head]))
    assert np.array_equal(ring, az[-2000:].astype(np.float32), equal_nan=True)
    assert list(ordered) == list(m.sorted()) == sorted(x for x in ring.tolist() if x == x)
    exact = float(np.quantile(az[-2000:][np.isfinite(az[-2000:])], 0.995))
    assert line(m.sorted(), 0.995, 50) == pytest.approx(exact, rel=1e-7)
    data, scalars = m.export()
    assert data.dtype == np.float32
    again = Memo.imported(2000, data.astype(np.float64), scalars)  # a double ring: rounded
    assert list(again.sorted()) == list(ordered) and again.recent.itemsize == 4


def test_a_first_check_reuses_the_rebuilds_newest_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first start's first check rebuilds the series' |z| from its history, block by block;
    its point is in the history's newest block (11 times in 12), whose baselines that rebuild
    just fitted: fitted once, not twice (issue 28: 10,000 first checks after a warm-up), and
    the results are those of a detector that keeps no fit."""
    rng = np.random.default_rng(5)
    step, n = 60, 62  # a staged warm-up's history: `min_samples` + `refresh`
    t = 720 * 10**6 + np.arange(n + 14, dtype=np.int64) * step
    v = rng.normal(100, 5, t.size)
    v[n + 3] = 400.0
    points = [Current(int(ti), float(vi), {}, "s") for ti, vi in zip(t, v, strict=True)]
    plain = AutoDetector(Params(), step)
    expected = [plain.detect(History(t[:i], v[:i], {}), points[i]) for i in range(n, t.size)]
    live = AutoDetector(Params(), step)
    fits: list[int] = []
    real = live._block_fit

    def counted(times: np.ndarray, values: np.ndarray, starts: np.ndarray, weekly: None = None) -> BlockFit:
        fits.append(starts.size)
        return real(times, values, starts, weekly)

    monkeypatch.setattr(live, "_block_fit", counted)
    got = [live.detect(History(t[:i], v[:i], {}, revision=1), points[i]) for i in range(n, t.size)]
    assert got == expected and any(r.anomaly for r in got)
    # the rebuild (of its six blocks the one with `min_samples` points before it), then the
    # next block's (from the 11th check on)
    assert fits == [1, 1]


@pytest.mark.parametrize("n", [30, 61, 62, 63, 75, 130, 700])
def test_a_rebuild_fits_only_the_blocks_that_can_judge_and_leaves_the_full_judgements_state(n: int) -> None:
    """A first check's rebuild of the |z| ring judges only the points with `min_samples`
    values in their block's window (issue 28: a warm-up's 62 points are mostly in blocks
    without): the others' |z| are NaN whatever the fit, so the state it leaves is that of
    judging every point (gaps, counts, a spike and a range break among them)."""
    rng = np.random.default_rng(n)
    for case in range(8):
        step = 60
        t = (720 * 10**6 + case * 7 * step) + np.arange(n, dtype=np.int64) * step
        v = rng.normal(100, 5, n) if case % 2 else rng.poisson(3, n).astype(float)  # counts
        v[rng.integers(0, n, n // 10)] = np.nan  # gaps
        v[-3] = 400.0
        det = AutoDetector(Params(), step)
        idx = np.flatnonzero(np.isfinite(v))
        full = det._judge(t, v, idx)
        want = Memo(det.p.reference)
        det._rebuild(want, full.z, full.breaks)  # signed, as a rebuild reads them (the side)
        got = det._memo_for("s", t, v, revision=1)
        same_state(got, want)
        if n >= 75:
            assert np.isfinite(full.z).sum() > 0 and want.run + want.rest > 0  # judged, and alarmed
