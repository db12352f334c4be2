"""`auto`'s kept block fit in a full live window (issue 28): once a window holds all `auto`
reads, each append drops its oldest point, which moves the block's start index without
touching what the block's fit reads. The fit is kept across those checks (one fit a block,
not one a check) and every verdict and score is the one a fit made anew at each check gives,
bit for bit, on a generated many-series metric."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors import autofit
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History, Result
from detectkd.runtime.windows import SeriesWindow
from tests.support.manyseries import fitted_rows, many

STEP = 3600  # hourly: a day of 24 points and a week of 168, both seasonal cycles in a short read
LIVE = 40  # live checks after the history: more than three blocks of `refresh`


def live_checks(det: AutoDetector, t: np.ndarray, vs: list[np.ndarray], n: int, kept: bool) -> list[Result]:
    """Each series' window loaded with its first `n` points (a full `auto` read: it trims), then
    `LIVE` live checks of one point, appended after each as the runner does. `kept` False: the
    history's revision hidden (0), so the detector fits each check's block anew."""
    out: list[Result] = []
    for j, v in enumerate(vs):
        window = SeriesWindow(det.window_seconds(STEP), ())
        window.extend(t[:n], v[:n], {})
        for i in range(n, n + LIVE):
            h = window.history()
            if not kept:
                h = History(h.times, h.values, {}, 0)
            value = None if np.isnan(v[i]) else float(v[i])
            out += det.detect_many(h, [Current(int(t[i]), value, {}, f"s{j}")])
            window.add(int(t[i]), value, {})
    return out


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("seasonal", Params(window=60, reference=200, refresh=5)),  # a day and a week, range to the start
        ("seasonal", Params(window=60, reference=200, refresh=5, fit_window=20)),  # picked by the newest
        ("counts", Params(window=60, reference=200, refresh=5)),  # the square-root scale, dispersion
        ("gaps", Params(window=60, reference=200, refresh=5)),  # missing periods: reads by time
        ("mixed", Params(window=60, reference=200, refresh=5, range_window=300)),  # a range short of it
        ("floats", Params(window=60, reference=200, refresh=5, seasonal=False)),  # the level alone
        ("floats", Params(window=60, reference=200, refresh=5, range_window=0, line_range=100)),
        ("floats", Params(window=40, reference=50, refresh=7, min_samples=20, max_history=400)),  # a day
    ],
)
def test_a_full_windows_block_fit_is_kept_with_the_same_verdicts(
    kind: str, params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    det = AutoDetector(params, STEP)
    n = det.read + 30  # a full window from the start: each append trims
    t, vs = many(kind, n + LIVE - 30, 6, seed=7, step=STEP)  # (`many` adds 30 points)
    anew = live_checks(AutoDetector(params, STEP), t, vs, n, kept=False)
    sizes = fitted_rows(monkeypatch)
    got = live_checks(det, t, vs, n, kept=True)
    assert got == anew
    blocks = len({int(x) // det.block for x in t[n : n + LIVE]})
    assert len(sizes) <= len(vs) * (blocks + 1)  # one fit a block (and a first check's), not one a check
    assert len(sizes) < len(vs) * LIVE // 2
    assert any(r.anomaly for r in anew) and sum(r.skipped is None for r in anew) > len(anew) // 2


def test_a_fit_that_reads_the_windows_start_is_not_kept_past_a_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    """A window shorter than its block's fit reads (the level window padded, the range cut by
    the history's start) fits anew once its start moves: the key holds that start."""
    params = Params(window=60, reference=200, refresh=5)
    det = AutoDetector(params, STEP)
    t, vs = many("floats", 200, 1, seed=3, step=STEP)
    window = SeriesWindow(60 * STEP, ())  # holds 61 points: the level window reaches its start
    window.extend(t[:100], vs[0][:100], {})
    h = window.history()
    s0 = int(np.searchsorted(h.times, int(t[100]) // det.block * det.block))
    assert autofit.fit_reach(det, h.times, s0) == 0
    fresh, anew, got = AutoDetector(params, STEP), [], []
    sizes = fitted_rows(monkeypatch)
    for i in range(100, 130):
        h = window.history()
        point = Current(int(t[i]), float(vs[0][i]), {}, "s")
        got += det.detect_many(h, [point])
        anew += fresh.detect_many(History(h.times, h.values, {}, 0), [point])
        window.add(int(t[i]), float(vs[0][i]), {})
    assert got == anew
    assert len(sizes) >= 2 * 30  # both anew at every check


@pytest.mark.parametrize("kind", ["mixed", "gaps", "seasonal"])
def test_a_runs_new_blocks_are_fitted_together_with_the_same_verdicts(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prepare` with the run's points fits the new block of the series whose one point opens
    it together, per grid and mask (`autorefit`); every verdict is the one of each series fitting
    its own block, bit for bit, a series with a gap of its own and missing new values among them."""
    params = Params(window=60, reference=200, refresh=5)
    n = AutoDetector(params, STEP).read + 30
    t, vs = many(kind, n + LIVE - 30, 7, seed=11, step=STEP)
    vs[5][n - 100] = np.nan  # a gap of its own: another mask, fitted apart (alone: in its check)
    vs[6][n + 3 : n + 12] = np.nan  # no value in some checks
    results: list[list[Result]] = []
    sizes = fitted_rows(monkeypatch)
    for together in (False, True):
        det, out = AutoDetector(params, STEP), []
        windows = [SeriesWindow(det.window_seconds(STEP), ()) for _ in vs]
        for w, v in zip(windows, vs, strict=True):
            w.extend(t[:n], v[:n], {})
        sizes.clear()
        for i in range(n, n + LIVE):
            points = {
                f"s{j}": [Current(int(t[i]), None if np.isnan(v[i]) else float(v[i]), {}, f"s{j}")]
                for j, v in enumerate(vs)
            }
            if together:
                det.prepare([(f"s{j}", w.history) for j, w in enumerate(windows)], points)
            for j, w in enumerate(windows):
                out += det.detect_many(w.history(), points[f"s{j}"])
                current = points[f"s{j}"][0]
                w.add(current.time, current.value, {})
        results.append(out)
        if together:
            blocks = len({int(x) // det.block for x in t[n : n + LIVE]})
            assert sum(1 for k in sizes if k >= 5) >= blocks - 1  # a grid's series in one fit a block
    assert results[1] == results[0]
    assert any(r.anomaly for r in results[0])
