"""`auto` over many series at once (issue 28): a many-series metric's first run rebuilds every
series' state in one set of array operations (`autorebuild`, `autofit`); the state and every
verdict after it are those of rebuilding one series at a time, bit for bit."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from detectkd.collectors.points import Point
from detectkd.detectors import autorebuild, autoweeklyfit
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo, ring_array
from detectkd.detectors.base import Current, History, Result
from detectkd.runtime.judge import judge
from detectkd.storage.base import StoredPoint
from detectkd.storage.window import rows_of
from tests.support.detectors import same_state
from tests.support.judging import STEP as JSTEP
from tests.support.judging import T0, setup
from tests.support.manyseries import fitted_rows, many

STEP = 60


def lazy(pairs: Iterable[tuple[str, History]]) -> Iterator[tuple[str, Callable[[], History]]]:
    """(series, history) as `prepare` takes them: the history when asked."""

    def held(h: History) -> Callable[[], History]:
        return lambda: h

    return ((s, held(h)) for s, h in pairs)


def judge_all(
    det: AutoDetector, t: np.ndarray, vs: list[np.ndarray], n: int, prepared: bool, rebuilt: bool = True
) -> list[object]:
    """A first run at `n` (a catch-up of 3 periods for some series), then live checks, as
    `runtime.judge` runs them: `prepare` over every series first when `prepared` (which
    rebuilds every series' state, unless not `rebuilt`)."""
    out: list[object] = []
    for end in range(n, t.size):
        histories = []
        for j, v in enumerate(vs):
            back = 3 if end == n and j % 5 == 2 else 1
            histories.append((f"s{j}", History(t[: end - back + 1], v[: end - back + 1], {}, revision=9)))
        if prepared:
            det.prepare(lazy(histories))
            assert end > n or not rebuilt or set(det.state_series()) == {s for s, _ in histories}
        for j, (series, h) in enumerate(histories):
            pts = [Current(int(t[k]), float(vs[j][k]), {}, series) for k in range(len(h), end + 1)]
            got: list[Result] = det.detect_many(h, pts)
            out.extend(got)
    for series in sorted(det.state_series()):
        exported = det.export_state(series)
        assert exported is not None
        out.append((series, exported[0].tobytes(), exported[1]))
    return out


@pytest.mark.parametrize(
    ("kind", "n", "params"),
    [
        ("counts", 120, Params()),  # the scale benchmark's first run: 120 stored points
        ("counts", 2600, Params()),  # more than `rebuild` points and range_min
        ("mixed", 700, Params()),
        ("gaps", 900, Params(sustain=24, risk=0.01)),
        ("gaps", 7500, Params()),  # range windows by time, beyond the history's start and gaps
        ("seasonal", 4400, Params()),  # three days: the daily baseline takes part
        ("floats", 300, Params(counts=False, range_window=0)),
        ("flat", 3500, Params(stuck=24)),  # five minutes: a week and a day before the run (`autostuck`)
        ("floats", 2600, Params(line_range=1000)),  # new extremes beyond the line (`autonovel`)
        ("floats", 2600, Params(line_range=1000, spike_jitter=0)),  # (the only mark: rebuilt)
        ("daily", 4400, Params()),  # `spike_jitter`: a job's spikes held where earlier days had one
        ("pairs", 4400, Params()),  # pairs held by the ring's |z| a day back (`pair_hour`)
        ("pairs", 4400, Params(pair_hour=0)),
        ("seasonal", 4400, Params(fit_window=100)),  # the baseline picked by its newest residuals
        ("seasonal", 4400, Params(trend=False)),  # the level as the window's median (`trend` is
        ("gaps", 7500, Params(trend=False)),  # the default at one minute: the line, above)
        # the weekly profile: sealed per series after the batch (P 0 while it fills), its P in
        # the fits together (`autorefit`)
        ("counts", 120, Params(weekly_profile=1)),
        ("mixed", 700, Params(weekly_profile=1)),
        ("gaps", 7500, Params(weekly_profile=1)),
        ("seasonal", 6700, Params(weekly_profile=1)),
        ("flip", 6700, Params(weekly_profile=1)),  # the profile's scale flips within the history
    ],
)
def test_a_many_series_rebuild_judges_as_one_series_at_a_time(kind: str, n: int, params: Params) -> None:
    step = 300 if kind == "flat" else STEP  # (a stuck run needs it; one-minute data reads 4.7 days)
    t, vs = many(kind, n, 9, seed=n, step=step)
    alone = judge_all(AutoDetector(params, step), t, vs, n, prepared=False)
    together = AutoDetector(params, step)
    got = judge_all(together, t, vs, n, prepared=True)
    assert got == alone
    assert sum(1 for r in alone if isinstance(r, Result) and r.anomaly) > 0  # the case alarms


def test_a_weekly_profile_over_a_long_history_is_rebuilt_one_series_at_a_time() -> None:
    """Ten days and more of one-minute history (`max_history` raised, the weekly cycle still out
    of reach): the profile's P can be other than 0 while it is sealed over the history, so the
    batch (which judges as if it were off) leaves the series to their own checks; the same
    verdicts and states as one at a time."""
    p = Params(weekly_profile=1, max_history=16000)
    t, vs = many("seasonal", 15000, 4, seed=3)
    det = AutoDetector(p, STEP)
    det.prepare(lazy((f"s{j}", History(t[:15000], v[:15000], {}, revision=9)) for j, v in enumerate(vs)))
    assert det.state_series() == []
    assert judge_all(AutoDetector(p, STEP), t, vs, 15000, True, rebuilt=False) == judge_all(
        AutoDetector(p, STEP), t, vs, 15000, False
    )


@pytest.mark.parametrize("minutes", [10 * 1440 - 62, 10 * 1440 - 31])
def test_a_weekly_batch_at_the_edge_of_plain_judges_as_one_series_at_a_time(minutes: int) -> None:
    """A history just shorter than `PLAIN` (batched: P is 0 throughout it) and one half an hour
    short of 10 days, its first point at :30 (one at a time: a first bucket with half its points
    gives P before the end; review: the bound of 10 days batched it, and the batch's verdicts
    and states differed), a pattern per hour of the week: the verdicts and states of one series
    at a time."""
    p = Params(weekly_profile=1)
    t, vs = many("weekly", minutes + 1, 8, seed=5, t0=1767571200 + 1800)
    plain = autoweeklyfit.plain(t[: minutes + 1])
    assert plain == (minutes * 60 < 10 * 86400 - 3600)
    together = judge_all(AutoDetector(p, STEP), t, vs, minutes + 1, True, rebuilt=plain)
    assert together == judge_all(AutoDetector(p, STEP), t, vs, minutes + 1, False)


def test_a_weekly_profile_over_windows_longer_than_plain_asks_for_no_history() -> None:
    """Windows that reach past `PLAIN` (three minutes, a long `reference`): the rebuild is one
    series at a time, so `prepare` asks for no history at all (review: it asked for and held
    every one, then rebuilt nothing)."""
    det = AutoDetector(Params(weekly_profile=1, reference=3000), 180)
    assert autoweeklyfit.on(det) and not autoweeklyfit.plain_reach(det)
    t, vs = many("floats", 300, 5, seed=2, step=180)
    asked: list[str] = []

    def history(series: str, v: np.ndarray) -> Callable[[], History]:
        def asked_for() -> History:
            asked.append(series)
            return History(t[:300], v[:300], {})

        return asked_for

    det.prepare([(f"s{j}", history(f"s{j}", v)) for j, v in enumerate(vs)])
    assert asked == [] and det.state_series() == []


def test_series_are_fitted_together_per_grid_and_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    """One fit for the series on one grid with the same gaps; the others apart (a series
    alone by its own first check)."""
    t, vs = many("floats", 200, 6, seed=1)
    det = AutoDetector(Params(), STEP)
    sizes = fitted_rows(monkeypatch)
    gappy = vs[5].copy()
    gappy[50] = np.nan
    histories = [(f"s{j}", History(t[:200], v[:200], {}, 1)) for j, v in enumerate(vs[:4])]
    histories += [
        ("shifted", History(t[1:201], vs[4][1:201], {}, 1)),
        ("gappy", History(t[:200], gappy[:200], {})),
    ]
    det.prepare(lazy(histories))
    assert sizes == [4]
    assert set(det.state_series()) == {"s0", "s1", "s2", "s3"}
    det.prepare(lazy(histories))  # state now: nothing rebuilt again
    assert sizes == [4]
    for end in range(200, 230):  # live checks: the rebuild's newest block's fit is reused
        sizes.clear()
        det.detect_many(History(t[:end], vs[0][:end], {}, 1), [Current(int(t[end]), 1.0, {}, "s0")])
        assert sizes == ([1] if t[end] // det.block != t[end - 1] // det.block else [])  # a new block


def test_a_batch_is_bounded_by_its_level_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    t, vs = many("floats", 300, 7, seed=2)
    det = AutoDetector(Params(), STEP)
    blocks = -(-(300 - 62) // 12)  # about: the blocks that can judge
    monkeypatch.setattr(autorebuild, "BATCH_VALUES", 3 * blocks * det.p.window)
    sizes = fitted_rows(monkeypatch)
    det.prepare(lazy((f"s{j}", History(t[:300], v[:300], {})) for j, v in enumerate(vs)))
    assert max(sizes) <= 3 and sum(sizes) >= 6  # the last one alone: left to its own check


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("size", [2000, 300])
def test_the_rebuilds_bulk_replay_leaves_the_loops_state(seed: int, size: int) -> None:
    """`autorebuild.replay` skips the points below the line whatever the line; the state
    (ring, surprise, run, rest period, level, side) is the per-point loop's: spikes, runs that
    fade, rests, pairs held or not by the rest on either side, range breaks, stuck runs,
    spikes seen on earlier days, `pair_hour` on and off (on these one-minute rings it meets no
    pair a day back: its rebuild is tested in test_auto_pair_hour.py), cold starts, a tail
    ending calm or mid-run."""
    rng = np.random.default_rng(seed)
    n = 1500
    az = np.abs(rng.standard_t(3 + seed, n))  # heavy tails: points beyond the line now and then
    az[rng.integers(0, n, 60)] = np.nan
    az[:70] = np.nan
    if seed % 2:
        az[-20:] = 9.0 + rng.random(20)  # ends in a run
    if seed == 4:
        az[900:1000] = 2.9999  # just under the bulk bound (3): the margin
    z = az * np.where(rng.random(n) < 0.5, -1.0, 1.0)  # signed: the rest reads the side
    breaks = (rng.random(n) < 0.01) + 2 * (rng.random(n) < 0.005).astype(np.int8)  # 2: stuck
    breaks += 4 * (rng.random(n) < 0.02)  # a spike seen on earlier days
    det = AutoDetector(Params(reference=size, rest=50 + 20 * seed, pair_hour=1 - seed % 2), STEP)
    levels = []
    for tail in (512, 40, 2000):
        cut = max(0, n - tail)
        want = Memo(size)
        want.recent = ring_array(az[max(0, cut - size) : cut])
        det._surprises(want, z[cut:], breaks[cut:])
        got = Memo(size)
        det._rebuild(got, z, breaks, tail)
        same_state(got, want)
        levels.append(want.level)
    assert max(levels) > 0  # the replayed points alarmed (the state is not the calm one)


AUTO_METRIC = """\
name: orders
schedule: {interval: 10m}
collector:
  type: sqlite
  params: {database: /nonexistent.db, query: "SELECT 1 AS value"}
  series_columns: [country]
detector: {type: auto}
alerters:
  - {type: log}
"""


def test_a_runs_series_are_rebuilt_together_with_the_same_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`runtime.judge` prepares a run's series at once before judging each (issue 28)."""
    rng = np.random.default_rng(4)
    keys = [f"country=c{j}" for j in range(5)]
    stored = {
        k: [StoredPoint(T0 + i * JSTEP, float(v), {}) for i, v in enumerate(rng.poisson(20, 300))]
        for k in keys
    }
    now = [Point(k, T0 + 300 * JSTEP, 20.0 + 40 * (j == 2)) for j, k in enumerate(keys)]
    sizes = fitted_rows(monkeypatch)
    outcomes = []
    for prepared in (True, False):
        if not prepared:
            monkeypatch.setattr(AutoDetector, "prepare", lambda self, histories, points=None: None)
        memory, ctx = setup(tmp_path / str(prepared), AUTO_METRIC)
        memory.load({k: rows_of(v) for k, v in stored.items()})
        out = judge(now, memory, {}, ctx.run(last=T0 + 300 * JSTEP, notify=True))
        outcomes.append([(r.point.series, r.results, r.verdict) for r in out.reports])
        if prepared:
            assert sizes and sizes[0] == 5 and all(s == 1 for s in sizes[1:])  # at once, then live fits
    assert outcomes[0] == outcomes[1]
    assert any(v.anomalous for _, _, v in outcomes[0])


def test_series_alone_on_their_mask_hold_no_history_past_their_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many series each with its own missing value (no batch to share): `prepare` keeps no
    history and builds no group for them while it asks for the next ones (before: each its
    own group, its history held until the end); a pair on one mask is still rebuilt together,
    the first one's history asked again, and judges as one series at a time."""
    t, vs = many("floats", 200, 32, seed=3)
    for j, v in enumerate(vs[:30]):
        v[20 + j] = np.nan  # a mask of its own
    vs[31][50] = vs[30][50] = np.nan  # the pair: one mask
    built: list[int] = []
    real = autorebuild._Group.__init__

    def counted(self: autorebuild._Group, det: AutoDetector, h: History) -> None:
        built.append(len(h))
        real(self, det, h)

    monkeypatch.setattr(autorebuild._Group, "__init__", counted)
    made: list[weakref.ref[History]] = []
    held: list[int] = []

    def history(v: np.ndarray) -> Callable[[], History]:
        def ask() -> History:
            held.append(sum(r() is not None for r in made))
            h = History(t[:200].copy(), v[:200].copy(), {}, 1)
            made.append(weakref.ref(h))
            return h

        return ask

    det = AutoDetector(Params(), STEP)
    det.prepare((f"s{j}", history(v)) for j, v in enumerate(vs))
    assert built == [200]  # the pair's group only
    assert max(held[:31]) <= 1  # the one being looked at: no other history held
    assert set(det.state_series()) == {"s30", "s31"}
    alone = AutoDetector(Params(), STEP)
    for s in ("s30", "s31"):
        v = vs[int(s[1:])]
        got = [
            det.detect_many(History(t[:e], v[:e], {}, 1), [Current(int(t[e]), float(v[e]), {}, s)])
            for e in (200, 201)
        ]
        want = [
            alone.detect_many(History(t[:e], v[:e], {}, 1), [Current(int(t[e]), float(v[e]), {}, s)])
            for e in (200, 201)
        ]
        assert got == want


def test_pairs_at_their_hour_are_held_in_a_many_series_rebuild_too() -> None:
    """The case above holds some of the job's pairs in the history the first run rebuilds (its
    state is not `pair_hour: 0`'s), and batched it judges as alone (above)."""
    t, vs = many("pairs", 4400, 9, seed=4400)
    on = judge_all(AutoDetector(Params(), STEP), t, vs, 4400, prepared=True)
    off = judge_all(AutoDetector(Params(pair_hour=0), STEP), t, vs, 4400, prepared=True)
    states = [[r for r in got if isinstance(r, tuple)] for got in (on, off)]
    assert len(states[0]) == 9 and sum(a != b for a, b in zip(*states, strict=True)) >= 3
