"""`weekly_profile` wired into `auto` (`autoweeklyfit`): at one minute the daily baseline D
becomes D + P, P the weekly profile of D's residuals. A weekend step (x 0.75 on Sat/Sun UTC)
pages at Saturday and Monday 00:xx without it and not with it; a live check (one point a
check, the state exported and imported), a replay (`detect_many`) and a rebuild from the
history give the same scores; off (0; on, 1, is the default), and where the weekly cycle is in reach
(five minutes), nothing changes, the state's format included."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo
from detectkd.detectors.autoweekly import SLOTS
from detectkd.detectors.autoweeklyfit import Weekly
from detectkd.detectors.base import Current, FloatArray, History, IntArray, Result
from detectkd.runtime.memory import SeriesMemory
from detectkd.storage.window import WindowRows
from detectkd.timegrid import Grid

STEP, DAY = 60, 86400
MONDAY = 1767571200  # 2026-01-05 00:00 UTC, as benchmarks/quiet_series.py
EMPTY = History(np.empty(0, np.int64), np.empty(0), {})
OFF = Params(weekly_profile=0)


def series(days: int, kind: str = "poisson", seed: int = 0, step: int = STEP) -> tuple[IntArray, FloatArray]:
    """quiet_series' `requests` (a raised cosine over the day, 80 to 320 a minute, x 0.75 on
    Sat/Sun UTC) from MONDAY: Poisson counts, or Gaussian noise (sd 8: not counts); "gaps":
    Poisson with a few missing values (NaN) and a missing hour."""
    t = MONDAY + step * np.arange(days * DAY // step, dtype=np.int64)
    d = 0.5 * (1.0 - np.cos(2.0 * np.pi * ((t % DAY) / 3600.0 - 4.0) / 24.0))
    weekend = (t - MONDAY) // DAY % 7 >= 5
    mean = 200.0 * (0.4 + 1.2 * d) * np.where(weekend, 0.75, 1.0) * step / STEP
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        return t, mean + rng.normal(0.0, 8.0, t.size)
    x = rng.poisson(mean).astype(np.float64)
    if kind == "gaps":
        x[rng.choice(t.size, t.size // 50, replace=False)] = np.nan
        x[(t - MONDAY >= 15 * DAY + 3 * 3600) & (t - MONDAY < 15 * DAY + 4 * 3600)] = np.nan
    return t, x


def points(t: IntArray, x: FloatArray) -> list[Current]:
    return [Current(int(a), None if b != b else float(b), {}, "s") for a, b in zip(t, x, strict=True)]


def replayed(p: Params, t: IntArray, x: FloatArray, step: int = STEP) -> list[Result]:
    return AutoDetector(p, step).detect_many(EMPTY, points(t, x))


def step_pages(results: list[Result], t: IntArray) -> list[tuple[int, int]]:
    """(day, minute) of the pages in the first hour of a Saturday or a Monday from the second
    week on (the first Monday has no week behind it)."""
    days, minutes = (t - MONDAY) // DAY, (t - MONDAY) % DAY // 60
    return [
        (int(days[i]), int(minutes[i]))
        for i, r in enumerate(results)
        if r.anomaly and days[i] >= 12 and days[i] % 7 in (0, 5) and minutes[i] < 60
    ]


def test_the_weekend_steps_page_without_the_profile_and_not_with_it() -> None:
    t, x = series(28)
    off, on = replayed(OFF, t, x), replayed(Params(), t, x)
    assert Params().weekly_profile == 1  # (the default)
    assert len(step_pages(off, t)) >= 4  # (Sat 12, Mon 14, Mon 21, Sat 26 ...)
    assert step_pages(on, t) == []
    # Saturday 00:05 of the third and fourth weeks: D (Friday's level) is 4/3 of the value; D + P is near it
    for day in (19, 26):
        i = int(np.searchsorted(t, MONDAY + day * DAY + 300))
        assert abs(on[i].expected - x[i]) < 0.5 * abs(off[i].expected - x[i])
        assert on[i].score < 0.7 * off[i].score


def test_a_series_without_a_weekly_term_is_hardly_corrected() -> None:
    """No weekend: the profile shrinks to about 0, and the expected values stay close."""
    t, x = series(21)
    flat = np.where(x == x, x, np.nan)
    weekend = (t - MONDAY) // DAY % 7 >= 5
    flat[weekend] = np.round(flat[weekend] / 0.75)  # the weekend's level back to the weekdays'
    off, on = replayed(OFF, t, flat), replayed(Params(weekly_profile=1), t, flat)
    late = slice(14 * 1440, None)
    e_off = np.array([r.expected for r in off[late]])
    e_on = np.array([r.expected for r in on[late]])
    assert np.nanmedian(np.abs(e_on - e_off)) < 0.02 * np.nanmedian(e_off)


@pytest.mark.parametrize("kind", ["poisson", "gauss", "gaps"])
def test_live_checks_a_replay_and_a_rebuild_give_the_same_scores(kind: str) -> None:
    """Replayed to Saturday 06:00 of the third week in one `detect_many`; live: replayed to
    Friday 18:00, then one point a check over the window a live check holds, the state
    exported and imported every 7th check (a kept fit between); rebuilt: a new detector's first
    check at Friday 20:00 with the whole history before it, then on. The same scores."""
    t, x = series(20, kind)
    p = Params(weekly_profile=1)
    end = int(np.searchsorted(t, MONDAY + 19 * DAY + 6 * 3600))
    t, x = t[:end], x[:end]
    pts = points(t, x)
    want = [r.score for r in AutoDetector(p, STEP).detect_many(EMPTY, pts)]

    start = int(np.searchsorted(t, MONDAY + 18 * DAY + 18 * 3600))
    live = AutoDetector(p, STEP)
    live.detect_many(EMPTY, pts[:start])
    span = live.window_seconds(STEP) + STEP
    got = []
    for i in range(start, end):
        if i % 7 == 0:
            state = live.export_state("s")
            assert state is not None
            live = AutoDetector(p, STEP)
            live.import_state("s", *state)
        lo = int(np.searchsorted(t, t[i] - span))
        got.append(live.detect(History(t[lo:i], x[lo:i], {}, revision=1), pts[i]).score)
    assert got == want[start:]
    memo = live._memo["s"]
    assert memo.weekly is not None and memo.weekly.newest == MONDAY + 19 * DAY + 4 * 3600  # sealed at 05:48

    at = int(np.searchsorted(t, MONDAY + 18 * DAY + 20 * 3600))
    rebuilt = AutoDetector(p, STEP)
    first = rebuilt.detect(History(t[:at], x[:at], {}), pts[at])
    rest = rebuilt.detect_many(History(t[: at + 1], x[: at + 1], {}), pts[at + 1 :])
    assert [first.score] + [r.score for r in rest] == want[at:]


def test_a_live_check_reads_p_at_its_fit_window_and_at_its_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each live check's `Weekly` (`autoweeklyfit.prepared`): P in its block's fit window (when
    the block is fitted) and at its point, each as `_corrections` gives it from the profile the
    check left (review: a window and points read in one pass, shifted by one or zeroed in the
    window, passed every other test)."""
    from detectkd.detectors import autoweeklyfit
    from detectkd.detectors.autoweekly import _corrections

    seen: list[tuple[bool, bool]] = []
    original = autoweeklyfit.prepared

    def checked(det: AutoDetector, memo: Memo | None, times: IntArray, values: FloatArray,
                blocks: IntArray, starts: IntArray, idx: IntArray, fitting: bool = True) -> Weekly | None:  # fmt: skip
        got = original(det, memo, times, values, blocks, starts, idx, fitting)
        if got is None or memo is None or memo.weekly is None or blocks.size != 1:
            return got
        prof, w, s = memo.weekly, det.p.window, int(starts[0])
        n, k = det.p.weekly_profile, det.p.weekly_shrink
        assert got.at.tolist() == _corrections(prof, times[idx], n, k).tolist()
        if fitting:
            a = max(0, s - w)
            assert got.fit[0, w - (s - a) :].tolist() == _corrections(prof, times[a:s], n, k).tolist()
            assert not got.fit[0, : w - (s - a)].any()
        seen.append((fitting, bool(got.at.any()) and (not fitting or bool(got.fit.any()))))
        return got

    monkeypatch.setattr(autoweeklyfit, "prepared", checked)  # (auto calls it through the module)
    t, x = series(20)
    start, end = (int(np.searchsorted(t, MONDAY + d * DAY)) for d in (19, 19.05))  # Saturday 00:00-01:12
    live = AutoDetector(Params(weekly_profile=1), STEP)
    pts = points(t, x)
    live.detect_many(EMPTY, pts[:start])
    for i in range(start, end):
        live.detect(History(t[:i], x[:i], {}, revision=1), pts[i])
    assert (True, True) in seen and (False, True) in seen  # (fitted and kept blocks, P not 0)


def test_the_profile_goes_through_the_state_and_off_keeps_the_format() -> None:
    t, x = series(15)
    pts = points(t, x)
    on = AutoDetector(Params(weekly_profile=1), STEP)
    on.detect_many(EMPTY, pts[:-1])
    state = on.export_state("s")
    assert state is not None and state[0].size == 2000 + SLOTS and len(state[1]) == 9
    back = AutoDetector(Params(weekly_profile=1), STEP)
    back.import_state("s", *state)
    a, b = on._memo["s"].weekly, back._memo["s"].weekly
    assert a is not None and b is not None and a.newest == b.newest and a.newest is not None
    assert np.array_equal(a.means, b.means, equal_nan=True) and np.isfinite(a.means).sum() > 24
    assert back._memo["s"].weekly_sqrt == on._memo["s"].weekly_sqrt is True  # counts
    history = History(t[:-1], x[:-1], {})
    assert back.detect(history, pts[-1]) == on.detect(history, pts[-1])

    off = AutoDetector(OFF, STEP)
    off.detect_many(EMPTY, pts[:-1])
    plain = off.export_state("s")
    assert plain is not None and plain[0].size == 2000 and len(plain[1]) == 7
    assert off._memo["s"].weekly is None
    with pytest.raises(ValueError):
        AutoDetector(Params(weekly_profile=1), STEP).import_state("s", *plain)


def test_off_and_out_of_scope_change_nothing() -> None:
    """Off (`weekly_shrink` alone does nothing) at one minute, and on at five minutes (the
    weekly cycle is in reach there: the option does nothing): the results without it."""
    t, x = series(22)
    assert replayed(Params(weekly_profile=0, weekly_shrink=5.0), t, x) == replayed(OFF, t, x)
    assert replayed(Params(weekly_profile=1), t, x) != replayed(OFF, t, x)  # (on: it does something)
    t5, x5 = series(22, step=300)
    five = AutoDetector(Params(weekly_profile=1), 300)
    assert five.detect_many(EMPTY, points(t5, x5)) == replayed(OFF, t5, x5, 300)
    assert five._memo["s"].weekly is None


def test_a_series_without_a_value_yet_exports_a_state_its_import_reads() -> None:
    """A series whose first point has no value made no profile yet: its state still carries
    one, so a restart imports it (review: the import expected the profile's numbers and
    refused the state, and the metric retried the same snapshot)."""
    from detectkd.detectors.auto import AutoDetector
    from detectkd.detectors.autoparams import Params
    from detectkd.detectors.base import Current, History

    first = AutoDetector(Params(weekly_profile=1), 60)
    first.detect_many(History.empty(), [Current(1767571200, None, {}, "s")])
    state = first.export_state("s")
    assert state is not None
    again = AutoDetector(Params(weekly_profile=1), 60)
    again.import_state("s", *state)
    assert again._memo["s"].weekly is not None


@pytest.mark.parametrize("undo", ["rollback", "forget"])
def test_a_rolled_back_run_gets_back_the_profile_and_a_forgotten_series_loses_it(undo: str) -> None:
    """Three weeks judged through a metric's memory a day a run; the run of Monday 00:00-00:30
    of the fourth week (it seals Sunday 23:00) is rolled back (its commit failed) and redone:
    the profile is as it was before the run, and the redone run judges as the undone one did,
    not paging the weekend's end (review: a rollback forgot the profile, a week or more to
    refill; then kept the undone run's seals). A forgotten series (removed) loses it: its
    window reloaded, the same run pages the step as without the profile."""
    t, x = series(22)
    det = AutoDetector(Params(weekly_profile=1), STEP)
    grid = Grid(timedelta(minutes=1))
    mem = SeriesMemory([det], grid, grid.tz)
    monday = int(np.searchsorted(t, MONDAY + 21 * DAY))

    def run(lo: int, hi: int) -> list[Result]:
        mem.begin(int(t[lo]))
        w = mem.window("s")
        out = det.detect_many(w.history(), points(t[lo:hi], x[lo:hi]))
        for a, b in zip(t[lo:hi].tolist(), x[lo:hi].tolist(), strict=True):
            w.add(a, b, {})
        return out

    for lo in range(0, monday, 1440):
        run(lo, min(lo + 1440, monday))
        mem.commit()
    before = det._memo["s"].weekly
    assert before is not None and before.newest == MONDAY + 21 * DAY - 2 * 3600  # sealed at 23:48
    newest, means = before.newest, before.means.copy()
    first = run(monday, monday + 30)
    assert not any(r.anomaly for r in first)  # (judged with the profile: no page)
    sealed = det._memo["s"].weekly
    assert sealed is not None and sealed.newest == MONDAY + 21 * DAY - 3600  # the run sealed 23:00
    if undo == "rollback":
        mem.rollback()
        back = det._memo["s"].weekly
        assert back is not None and back.newest == newest
        assert np.array_equal(back.means, means, equal_nan=True)
    else:
        mem.commit()
        h = mem.window("s").history()
        before_run = h.times < t[monday]  # what the store holds before the run
        mem.forget("s")
        mem.load({"s": WindowRows(h.times[before_run], h.values[before_run], None, float(t[monday - 1]))})
    again = run(monday, monday + 30)
    mem.commit()
    if undo == "rollback":
        assert again == first
    else:
        assert any(r.anomaly for r in again)  # the weekend's end pages


def test_a_rolled_back_first_run_of_a_series_leaves_nothing() -> None:
    """A series new in the run that was undone: its window goes, and its state with it."""
    t, x = series(2)
    det = AutoDetector(Params(weekly_profile=1), STEP)
    grid = Grid(timedelta(minutes=1))
    mem = SeriesMemory([det], grid, grid.tz)
    mem.begin(int(t[0]))
    det.detect_many(mem.window("s").history(), points(t[:600], x[:600]))
    assert det.state_series() == ["s"]
    mem.rollback()
    assert mem.series() == set() and det.state_series() == []


def test_a_runs_new_blocks_are_fitted_together_with_each_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three series with a weekend, 19 days replayed each, then a many-series metric's live
    run across Saturday 00:00 (`prepare` with the run's points fits the series' new blocks
    together, `autorefit`, each with its own profile's P): every verdict and state is the one
    of each series checked alone, and the profile acts (the verdicts differ without it)."""
    from detectkd.runtime.windows import SeriesWindow
    from tests.support.manyseries import fitted_rows

    data = [series(20, kind, seed=j) for j, kind in enumerate(("poisson", "gauss", "gaps"))]
    t = data[0][0]
    start, end = (int(np.searchsorted(t, MONDAY + d * DAY)) for d in (19, 19.05))  # Sat 00:00-01:12
    sizes = fitted_rows(monkeypatch)
    runs: list[list[object]] = []
    on, off = Params(weekly_profile=1), Params(weekly_profile=0)
    for together, p in ((False, on), (True, on), (False, off)):
        det, out = AutoDetector(p, STEP), list[object]()
        windows = []
        for j, (_, x) in enumerate(data):
            det.detect_many(
                EMPTY, [Current(c.time, c.value, {}, f"s{j}") for c in points(t[:start], x[:start])]
            )
            w = SeriesWindow(det.window_seconds(STEP) + STEP, ())
            w.extend(t[:start], x[:start], {})
            windows.append(w)
        sizes.clear()
        for i in range(start, end):
            now = {f"s{j}": [Current(int(t[i]), None if x[i] != x[i] else float(x[i]), {}, f"s{j}")]
                   for j, (_, x) in enumerate(data)}  # fmt: skip
            if together:
                det.prepare([(f"s{j}", w.history) for j, w in enumerate(windows)], now)
            for j, w in enumerate(windows):
                out += det.detect_many(w.history(), now[f"s{j}"])
                w.add(now[f"s{j}"][0].time, now[f"s{j}"][0].value, {})
        for s in sorted(det.state_series()):
            state = det.export_state(s)
            assert state is not None
            out.append((s, state[0].tobytes(), state[1]))
        if together:
            assert sum(1 for k in sizes if k >= 2) >= 4  # the new blocks fitted together
        runs.append(out)
    assert runs[1] == runs[0]
    assert runs[2] != runs[0]  # (the profile acts on these checks)


@pytest.mark.parametrize("seed", range(6))
def test_the_passes_flags_are_the_fits_scales(seed: int) -> None:
    """`autoweeklyfit.flags` (running counts) gives `autofit.scales`' enough data and counts at
    any starts: values with NaN, negatives, fractions and whole numbers, windows cut by the
    series' start, `counts` on and off, `min_samples` reached or not."""
    from detectkd.detectors import autofit
    from detectkd.detectors.autoweeklyfit import flags

    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 900))
    v = rng.poisson(3, n).astype(np.float64)
    for kind, share in (("nan", 0.1), ("neg", 0.02), ("frac", 0.03)):
        hit = rng.random(n) < share * rng.random()
        if seed % 2 == 0 and kind != "nan":
            hit[: n // 2] = False  # (whole numbers in the first half: count windows there)
        v[hit] = {"nan": np.nan, "neg": -1.0, "frac": 2.5}[kind]
    starts = np.unique(rng.integers(0, n + 1, 40))
    for counts in (True, False):
        det = AutoDetector(Params(window=int(rng.integers(20, 120)), min_samples=20, counts=counts), STEP)
        _, enough, is_count = autofit.scales(det, v[None, :], starts)
        got = flags(det, v, starts)
        assert got[0].tolist() == enough.tolist() and got[1].tolist() == is_count.tolist()
        if counts and seed % 2 == 0:
            assert is_count.any() and not is_count.all()  # (both kinds compared)


def test_a_recheck_of_a_revised_point_keeps_the_profile() -> None:
    """A late-data re-check (`runtime.recheck`) re-judges a revised point against the history
    before it and drops the detectors' caches for the next run to rebuild: the weekly profile,
    which no window gives back, is kept as it was (review: it was dropped with the caches, and
    the weekend paged again for a week)."""
    from types import SimpleNamespace

    from detectkd.collectors.points import Point
    from detectkd.config.models import Conditions
    from detectkd.runtime.recheck import Recheck

    t, x = series(22)
    det = AutoDetector(Params(weekly_profile=1), STEP)
    grid = Grid(timedelta(minutes=1))
    mem = SeriesMemory([det], grid, grid.tz)
    monday = int(np.searchsorted(t, MONDAY + 21 * DAY))
    for lo in range(0, monday, 1440):
        mem.begin(int(t[lo]))
        w = mem.window("s")
        det.detect_many(w.history(), points(t[lo:monday][:1440], x[lo:monday][:1440]))
        for a, b in zip(t[lo:monday][:1440].tolist(), x[lo:monday][:1440].tolist(), strict=True):
            w.add(a, b, {})
        mem.commit()
    profile = det._memo["s"].weekly
    assert profile is not None and profile.newest is not None
    newest, means = profile.newest, profile.means.copy()
    spec = SimpleNamespace(conditions=Conditions(), config=SimpleNamespace(completeness=None))
    rt = SimpleNamespace(memory=mem, detectors=[det], spec=spec)
    judged = Recheck(rt)._judge("s", [Point("s", int(t[monday - 5]), float(x[monday - 5]) + 50.0, {})])  # type: ignore[arg-type]
    assert len(judged) == 1
    kept = det._memo["s"].weekly
    assert kept is not None and kept.newest == newest and np.array_equal(kept.means, means, equal_nan=True)


def test_a_rolled_back_run_of_a_series_whose_window_was_empty_keeps_its_profile() -> None:
    """A series adopted from a snapshot with every saved point before the start cut (its window
    empty, its state imported): a rolled-back first run gives the profile back (review: an
    empty window counted as new in the run, and the rollback dropped the state with it)."""
    from detectkd.runtime.memory import Saved
    from detectkd.runtime.windows import SeriesWindow

    t, x = series(22)
    monday = int(np.searchsorted(t, MONDAY + 21 * DAY))
    det = AutoDetector(Params(weekly_profile=1), STEP)
    det.detect_many(EMPTY, points(t[:monday], x[:monday]))
    state = det.export_state("s")
    assert state is not None
    grid = Grid(timedelta(minutes=1))
    fresh = AutoDetector(Params(weekly_profile=1), STEP)
    mem = SeriesMemory([fresh], grid, grid.tz)
    saved = Saved("fingerprint", int(t[monday - 1]))
    kept = SeriesWindow(det.window_seconds(STEP) + STEP, ())
    kept.extend(t[:monday], x[:monday], {})
    saved.windows = {"s": kept.saved()}
    saved.states = {"auto": {"s": state}}
    mem.adopt(saved, int(t[monday - 1]) + 10 * DAY)  # every saved point before `since`
    assert len(mem.windows["s"]) == 0
    before = fresh._memo["s"].weekly
    assert before is not None and before.newest is not None
    newest = before.newest
    mem.begin(int(t[monday]))
    fresh.detect_many(mem.window("s").history(), points(t[monday : monday + 30], x[monday : monday + 30]))
    mem.rollback()
    back = fresh._memo.get("s")
    assert back is not None and back.weekly is not None and back.weekly.newest == newest
