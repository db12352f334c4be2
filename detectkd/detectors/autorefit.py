"""`auto`'s block baselines refitted for many series at once (issue 28).

A live check keeps its block's fit (the baselines of the `refresh` periods it is in) for the
block's later checks; the first check of a new block fits it anew. Blocks lie on the absolute
interval grid, so every series of a many-series metric starts a new block at the same check:
one fit a series in a row, about 1 ms of small array operations each at a full one-minute
history (a 1,000-series metric's check every `refresh` intervals, seconds where the others
take a third of that). Here, before a run's series are judged one by one, the series whose
one new point opens a block their state has no fit for are fitted together, those on one time
grid with the same missing values in one set of array operations (`autofit.block_fit`, row by
row: the numbers of a series fitted alone, bit for bit), and each series' state keeps its row
under the key its own check computes (`autofit.fit_key`), which then finds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from detectkd.detectors import autofit, autoweeklyfit
from detectkd.detectors.autoweeklyfit import Weekly
from detectkd.detectors.base import Current, FloatArray, History, IntArray

if TYPE_CHECKING:
    from detectkd.detectors.auto import AutoDetector

MIN_GROUP = 2  # a series alone fits its block in its own check
BATCH_VALUES = 1 << 20  # series fitted together at most: their histories take at most this many values
MAX_GRIDS = 16  # grids (times, missing values) told apart in a run; the series on others fit alone


class _Grid:
    """Series on one time grid with the same missing values and new time: their values (views
    of their windows', held until the fit), revisions and new values."""

    def __init__(self, h: History, at: int) -> None:
        self.times, self.kept, self.at = h.times, np.isfinite(h.values), at
        self.series: list[str] = []
        self.values: list[FloatArray] = []
        self.revisions: list[int] = []
        self.new: list[float] = []

    def same(self, h: History) -> bool:
        return np.array_equal(h.times, self.times) and np.array_equal(np.isfinite(h.values), self.kept)


def refit(
    det: AutoDetector,
    histories: Iterable[tuple[str, Callable[[], History]]],
    points: Mapping[str, Sequence[Current]],
) -> None:
    """Fit, together, the new block of each series among `histories` whose run (`points`) is one
    point with a value in a block its state (lined up with the history) has no fit for."""
    if det.like_shift is not None:
        return
    grids: dict[tuple[int, ...], list[_Grid]] = {}
    count = 0
    for series, history in histories:
        new = points.get(series, ())
        memo = det._memo.get(series)
        if len(new) != 1 or new[0].value is None or memo is None:
            continue
        at = new[0].time
        if memo.fit_key is not None and memo.fit_key[1] == at // det.block * det.block:
            continue  # its fit is kept for this block (or its check finds it no longer holds and refits)
        h = history()
        lined, _ = det._lined_up(series, h.times, h.values)
        if lined is None or not h.revision or not len(h) or at <= int(h.times[-1]):
            continue  # rebuilt, or judged otherwise, by its own check
        key = (at, len(h), int(h.times[0]), int(h.times[-1]), int(np.count_nonzero(np.isnan(h.values))))
        known = grids.setdefault(key, [])
        grid = next((g for g in known if g.same(h)), None)
        if grid is None:
            if count >= MAX_GRIDS:
                continue
            grid, count = _Grid(h, at), count + 1
            known.append(grid)
        grid.series.append(series)
        grid.values.append(h.values)
        grid.revisions.append(h.revision)
        grid.new.append(float(new[0].value))
    for known in grids.values():
        for grid in known:
            if len(grid.series) >= MIN_GROUP:
                _fit(det, grid)


def _fit(det: AutoDetector, grid: _Grid) -> None:
    """The block fits of `grid`'s series, in batches of at most `BATCH_VALUES` values."""
    kept, at = grid.kept, grid.at
    whole = bool(kept.all())
    times = np.append(grid.times if whole else grid.times[kept], np.int64(at))  # as their checks have them
    block = at // det.block * det.block
    s0 = int(np.searchsorted(times, block, side="left"))
    tail = autofit.fit_key(det, times, s0, block, 0)[1:]
    starts = np.array([s0])
    limit = max(MIN_GROUP, BATCH_VALUES // max(times.size, 1))
    for lo in range(0, len(grid.series), limit):
        hi = min(lo + limit, len(grid.series))
        rows = np.empty((hi - lo, times.size))
        for k in range(lo, hi):
            rows[k - lo, :-1] = grid.values[k] if whole else grid.values[k][kept]
            rows[k - lo, -1] = grid.new[k]
        weekly = _weekly(det, grid, times, rows, lo, starts, block)
        fit = autofit.block_fit(det, times, rows, starts, weekly)
        for k in range(lo, hi):
            memo = det._memo[grid.series[k]]
            memo.fit_key, memo.fit = (grid.revisions[k], *tail), fit.row(k - lo)


def _weekly(
    det: AutoDetector, grid: _Grid, times: IntArray, rows: FloatArray, lo: int, starts: IntArray, block: int
) -> Weekly | None:
    """The weekly profiles' P (`autoweeklyfit`) in the new block's fit window of each series of
    `rows` (`grid`'s from `lo`), each profile passed that block (its seals: the check that
    follows does not pass it again), and the scales the fit reads."""
    if not autoweeklyfit.on(det):
        return None
    scales = autofit.scales(det, rows, starts)
    blocks, idx = np.array([block], np.int64), np.array([times.size - 1])
    fit, sqrt = np.zeros((rows.shape[0], det.p.window)), np.zeros(rows.shape[0], bool)
    for k in range(rows.shape[0]):
        memo = det._memo[grid.series[lo + k]]
        one = (scales[0][k : k + 1], scales[1][k : k + 1], scales[2][k : k + 1])
        got = autoweeklyfit.prepared(det, memo, times, rows[k], blocks, starts, idx, True, one)
        if got is not None:
            fit[k], sqrt[k] = got.fit[0], got.sqrt[0]
    return Weekly(fit, np.zeros(rows.shape[0]), sqrt, scales)
