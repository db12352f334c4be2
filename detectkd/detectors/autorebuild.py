"""`auto`'s state rebuilt for many series at once (issue 28).

A first run after a start without a restart snapshot rebuilds every series' recent |z| from
its stored window (`AutoDetector._memo_for`): the baselines of each block that can judge,
the z of its points, then the per-point loop of the alarm line. One series at a time that
is a few hundred small array operations a series, about 1 ms; a 1,000-series metric's first
run spent most of its CPU there. The series of a one-query metric share their time grid,
so here the blocks of all the series on one grid (with the same missing values) are fitted
and judged in one set of array operations (`autofit`, row by row: the same numbers, bit
for bit, as one series at a time); only the per-point loop stays per series.

The state is the one `_memo_for` builds, the newest block's fit kept for the live check
included, so the series' next `detect_many` finds it lined up and judges as it would have
(tests/unit/test_auto_many.py)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from detectkd.detectors import autofit, autonovel, autospikes, autostuck, autoweeklyfit
from detectkd.detectors.autostage import judgeable
from detectkd.detectors.autostate import Memo, kept, ring_array
from detectkd.detectors.base import FloatArray, History, IntArray

if TYPE_CHECKING:
    from detectkd.detectors.auto import AutoDetector

MIN_GROUP = 2  # a series alone is rebuilt by its own detect_many
# Series judged together at most: their level windows (blocks x `window` values a series)
# take at most this many values (4 MiB; with the sorts and residuals a few times that).
BATCH_VALUES = 1 << 19

Member = tuple[str, History, int | None]  # series, its history, its newest time with a value


def prepare(det: AutoDetector, histories: Iterable[tuple[str, Callable[[], History]]]) -> None:
    """Rebuild the state of the series among `histories` (series, its history when asked)
    that have none (a first run, a new series), those on one time grid with the same missing
    values together (a batch at most `BATCH_VALUES` of level windows: a history is held only
    until its batch). A series with state is left to its own check, which rebuilds it if it
    does not line up with the history (a revised point): a steady run asks for no history.
    A grid and mask seen once so far keep only a digest of them and the series' name, newest
    time and history to ask again (`Alone`): a series alone is rebuilt by its own check, and
    many series each with its own missing values hold no history, no group, past their turn."""
    if det.like_shift is not None or (autoweeklyfit.on(det) and not autoweeklyfit.plain_reach(det)):
        return  # `like` days shift per point, a weekly profile's P acts within a long window: one at a time
    groups: dict[bytes, _Group] = {}
    alone: dict[bytes, Alone] = {}
    for series, history in histories:
        if series in det._memo:
            continue
        h = history()
        memo, last = det._lined_up(series, h.times, h.values)
        if memo is not None or not len(h):
            continue
        key = _digest(h)
        group = groups.get(key)
        if group is None:
            first = alone.pop(key, None)
            if first is None:  # the first on its grid and mask: its name, not its history
                alone[key] = (series, history, last)
                continue
            group = groups[key] = _Group(det, h)
            if group.at.size == 0:  # nothing a batch judges: each series by its own check
                continue
            again = first[1]()  # the first one's history, asked again
            if group.same(again):  # (a digest's collision: the first is left to its own check)
                group.members.append((first[0], again, first[2]))
        elif group.at.size == 0 or not group.same(h):
            continue  # (a digest's collision: left to its own check)
        group.members.append((series, h, last))
        if len(group.members) >= group.limit:
            group.rebuild(det)
    for group in groups.values():
        if len(group.members) >= MIN_GROUP:
            group.rebuild(det)


Alone = tuple[str, Callable[[], History], int | None]  # series, its history when asked, its last


def _digest(h: History) -> bytes:
    """The time grid and missing values of a history, in 16 bytes."""
    d = hashlib.blake2b(digest_size=16)
    d.update(np.ascontiguousarray(h.times, np.int64).data)
    d.update(np.isfinite(h.values).data)
    return d.digest()


class _Group:
    """Series on one time grid with the same missing values: what their rebuild judges."""

    def __init__(self, det: AutoDetector, h: History) -> None:
        self.members: list[Member] = []
        times, values = h.times, h.values
        first = max(0, times.size - det.rebuild_points)
        self.kept = kept = np.isfinite(values)
        self.idx = first + np.flatnonzero(kept[first:])
        self.some = judgeable(det, times, values, self.idx)  # the others are a cold start: NaN
        at = self.idx[self.some]
        if not kept.all():  # as `AutoDetector._judge`: the points with values, on their positions
            times, at = times[kept], (np.cumsum(kept) - 1)[at]
        self.times, self.at = times, at
        self.blocks, self.inv = np.unique(times[at] // det.block * det.block, return_inverse=True)
        self.starts = np.searchsorted(times, self.blocks, side="left")
        per_series = max(1, self.blocks.size * det.p.window)
        self.limit = max(MIN_GROUP, BATCH_VALUES // per_series) if at.size else 1 << 62
        # a weekly profile (`autoweeklyfit`) is sealed per series after the batch, which judges
        # as if it were off: where its P is 0 throughout (else one at a time: nothing here)
        self.weekly = autoweeklyfit.on(det)
        if self.weekly and not autoweeklyfit.plain(times):
            self.at, self.limit = self.at[:0], 1 << 62
        self.grid = h.times

    def same(self, h: History) -> bool:
        """Whether `h` is on this group's time grid with the same missing values."""
        return np.array_equal(h.times, self.grid) and np.array_equal(np.isfinite(h.values), self.kept)

    def rebuild(self, det: AutoDetector) -> None:
        group, self.members = self.members, []
        if self.at.size == 0:
            return  # nothing to judge (or a long history's weekly profile): one series at a time
        stacked = np.vstack([h.values for _, h, _ in group])
        if not self.kept.all():
            stacked = stacked[:, self.kept]
        times, at, blocks, starts = self.times, self.at, self.blocks, self.starts
        fit = autofit.block_fit(det, times, stacked, starts)
        judged = autofit.apply(det, times, stacked, at, self.inv, fit)
        z = judged.z.reshape(len(group), at.size)  # signed: `rest_margin` reads the side
        breaks = _marked(det, judged, times, stacked, at)
        key = autofit.fit_key(det, times, int(starts[-1]), int(blocks[-1]), 0)[1:]
        for k, (series, h, last) in enumerate(group):
            memo = det._memo[series] = Memo(det.p.reference)
            if h.revision:  # the newest block's fit, for the live check of that block
                memo.fit_key = (h.revision, *key)
                memo.fit = fit.row((k + 1) * blocks.size - 1)
            zk, brk = np.full(self.idx.size, np.nan), np.zeros(self.idx.size, np.int8)
            zk[self.some], brk[self.some] = z[k], breaks[k]
            det._rebuild(memo, zk, brk)
            memo.last = last
            if self.weekly:
                autoweeklyfit.rebuilt(det, memo, times, stacked[k])


def _marked(
    det: AutoDetector, judged: autofit.Judged, times: IntArray, rows: FloatArray, at: IntArray
) -> np.ndarray:
    """Per series (a row), the breaks `AutoDetector._judge` gives one series: the range breaks,
    then its own stuck run (`autostuck`), new extremes (`autonovel`) and lone spikes seen on
    earlier days (`autospikes`)."""
    n = rows.shape[0]
    breaks = judged.breaks.reshape(n, at.size).astype(np.int8)
    if not (det.p.stuck or det.p.spike_jitter or det.p.line_range):
        return breaks
    for k in range(n):
        one = autofit.Judged(
            *(f.reshape(n, at.size)[k] for f in (getattr(judged, d.name) for d in dataclasses.fields(judged)))
        )
        one = autostuck.marked(one, times, rows[k], at, det.stuck_span, det.step, det.stuck_need, det.p)
        one = autonovel.marked(one, times, rows[k], at, det.p, det.reach)
        breaks[k] = autospikes.seen(one, times, rows[k], at, det.step, det.p.cycles, det.p, det.reach).breaks
    return breaks


def replay(det: AutoDetector, memo: Memo, z: FloatArray, breaks: np.ndarray) -> None:
    """`AutoDetector._surprises` over a fresh `memo` whose ring is the |z| before the last
    `breaks.size` of `z` (signed; the points replayed): the same state bit for bit, the per-point
    loop only where a point can alarm. A point whose |z| is below `min_z` x `threshold`^2
    (with a margin) and that is no range break is below the line whatever the line: all it
    does to the state is end a run and count down a rest period, so a stretch of such points
    is skipped at once. Its surprise, which the next point's persistence test reads, is below
    the line too, so that test fails with it as with 0. The last point is always looped over
    (its surprise is the memo's). Without `sustain` and `risk` (their state reads every point)."""
    p = det.p
    floor = max(p.min_z, 1e-9)
    az = np.abs(z)
    n, cut = breaks.size, az.size - breaks.size
    tail = az[cut:]
    with np.errstate(invalid="ignore"):  # NaN (a cold start): surprise 0, calm
        exact = tail >= 0.999 * floor * p.threshold * p.threshold
        exact |= ((breaks & 2) > 0) | (((breaks & 1) > 0) & (tail >= p.range_gate * floor))  # 2: stuck
    if n:
        exact[-1] = True
    edges = [0, *(np.flatnonzero(exact[1:] != exact[:-1]) + 1).tolist(), n] if n else []
    rest, level = 0, 0.0
    memo.recent = ring_array(az[:cut])
    for a, b in pairwise(edges):
        if not exact[a]:  # below the line throughout: no run, the rest period counts down
            rest = max(0, rest - (b - a))
            if memo.long is not None:  # the points that enter it meanwhile (`long_lag` back)
                lag = det.long_lag
                entered = az[max(0, cut + a - lag) : max(0, cut + b - lag)]
                memo.long.extend(kept(entered))  # as the ring keeps them
            continue
        memo.recent, memo.head = ring_array(az[max(0, cut + a - memo.size) : cut + a]), 0
        memo.surprise, memo.run, memo.rest, memo.level, memo.alarmed = 0.0, 0, rest, level, False
        det._surprises(memo, z[cut + a : cut + b], breaks[a:b])
        rest, level = memo.rest, memo.level
