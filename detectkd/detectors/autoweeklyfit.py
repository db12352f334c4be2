"""`auto`'s weekly profile (`autoweekly`) wired into its baselines (`weekly_profile`, off by default).

Where `auto` keeps the daily cycle alone (its `periods`: steps of 1-3 minutes at the default
`max_history`; elsewhere, and with a calendar's `like` days, this does nothing), each series
keeps an hourly profile of the daily baseline's residuals (`Memo.weekly`), and the daily
baseline D that fits and judges a block becomes D + P: P (`autoweekly.corrections`) at the
block's points and at its fit window's points, from the profile as sealed at that block.

Sealing: at each block (`AutoDetector.block`) with a point, in time order, before it is
judged, the hour buckets that ended by the block's start and are not sealed yet are sealed
(`autoweekly.seal`) with D on the block's judging scale (the square root for counts), from
the points a live check of any point of that block holds before it (`read - refresh`
intervals back, as `autofit.range_windows`). A bucket is sealed from its points and D there
only when D's `cycles` days before it are in that window too (else NaN, as a bucket with too
few points): its R is then a function of the stored points in [b - cycles days, b + 1 h),
whichever check, replay or rebuild seals it. A live check passes its own block once (the
blocks after the newest judged point's), a replay every block of its points, a rebuild (a
new memo) every block of its history: the same blocks, the same profile at each.

A block judged as counts seals a profile on the square-root scale: where a block with enough
data is judged on the other scale than the profile's, the profile starts anew (2 KiB, one
scale). A rebuild of the memo (a revised point, a re-check) keeps the profile, and a
rolled-back run gets back the profile as it was before the run (`checkpoint`, `restored`);
a forgotten series (removed: `runtime.memory`) or a start without a snapshot loses it and
seals anew from its window (about 1.7 days at one minute): until a week of it is sealed, P
is 0."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from detectkd.detectors import autofit
from detectkd.detectors.autostate import Memo
from detectkd.detectors.autoweekly import HOUR, WeeklyProfile, corrections, seal
from detectkd.detectors.base import FloatArray, IntArray, StateArray

if TYPE_CHECKING:
    from detectkd.detectors.auto import AutoDetector

DAY = 86400


def fresh(size: int, old: Memo | None) -> Memo:
    """A new memo (a rebuild's) with the profile of `old` (the series' memo that did not line up
    with its history: a re-check, a revised point): sealed buckets are never revised."""
    memo = Memo(size)
    if old is not None:
        memo.weekly, memo.weekly_sqrt = old.weekly, old.weekly_sqrt
    return memo


def checkpoint(memo: Memo | None) -> tuple[WeeklyProfile, bool] | None:
    """A copy of `memo`'s weekly profile and its scale (None: none), taken when a run first
    touches the series (`SeriesMemory.window`), for `restored`."""
    if memo is None or memo.weekly is None:
        return None
    return memo.weekly.copy(), memo.weekly_sqrt


def restored(det: AutoDetector, series: str, kept: object) -> None:
    """After a rolled-back run (the series' memo forgotten): a memo holding only the profile
    as it was before the run (`checkpoint`), which the next check's rebuild keeps (`fresh`:
    the memo does not line up). The buckets the undone run sealed are sealed again by the
    redone run from the points it reads."""
    if not isinstance(kept, tuple):
        return
    profile, sqrt = kept
    memo = det._memo[series] = Memo(det.p.reference)
    memo.weekly, memo.weekly_sqrt = profile.copy(), bool(sqrt)


def exported(det: AutoDetector, memo: Memo) -> tuple[StateArray, tuple[float, ...]]:
    """`memo.export()`, with an empty profile where the option is on and none was made yet (a
    series whose points so far had no value): its import expects one (review)."""
    if memo.weekly is None and on(det):
        memo.weekly = WeeklyProfile(det.step)
    return memo.export()


def on(det: AutoDetector) -> bool:
    """Whether the weekly profile corrects `det`'s daily baseline: the option on, the daily
    cycle the only one in reach, no `like` days."""
    return bool(det.p.weekly_profile) and det.periods == [DAY // det.step] and det.like_shift is None


@dataclass(frozen=True)
class Weekly:
    """P for one series' judged blocks: per block at its fit window's `window` points (0 where
    the window is padded) and per judged point; per block the scale the profile was on (P is
    0 on the other scale: that block's other fit does not judge)."""

    fit: FloatArray  # (blocks, window)
    at: FloatArray  # (points,)
    sqrt: np.ndarray  # (blocks,) bool
    # `autofit.scales` of the judged blocks where sealing needed them for the same blocks
    # (a live check's new block): `autofit.block_fit` reads them instead of computing them again
    scales: tuple[FloatArray, np.ndarray, np.ndarray] | None = None

    def rows(self, sqrt: bool) -> FloatArray:
        return np.where((self.sqrt == sqrt)[:, None], self.fit, 0.0)

    def points(self, sqrt: bool, inv: IntArray) -> FloatArray:
        return np.where(self.sqrt[inv] == sqrt, self.at, 0.0)


def prepared(
    det: AutoDetector,
    memo: Memo | None,
    times: IntArray,
    values: FloatArray,
    blocks: IntArray,
    starts: IntArray,
    idx: IntArray,
    fitting: bool = True,
) -> Weekly | None:
    """Seal `memo`'s profile at each block of `times` after its newest judged point's (all of
    them for a new memo) and give P for the judged `blocks` (first values at `starts`) and
    their points `idx` (ascending), each from the profile as sealed at its block; P in the
    blocks' fit windows only when `fitting` (a live check whose block's fit is kept needs
    none: 0 there, unread). `times`, `values`: the points with values (`AutoDetector._judge`).
    None where the option is off."""
    if memo is None or not on(det) or blocks.size == 0:
        return None
    if memo.weekly is None:
        memo.weekly = WeeklyProfile(det.step)
    block, step, w, p = det.block, det.step, det.p.window, det.p
    done = None if memo.last is None else memo.last // block * block
    if done is not None and not fitting and blocks.size == 1 and int(times[-1]) < done + block:
        # the usual live check: a point in the block of the one before (nothing to seal, its fit kept)
        at = corrections(memo.weekly, times[idx], p.weekly_profile, p.weekly_shrink)
        return Weekly(np.zeros((1, w)), at, np.array([memo.weekly_sqrt]))
    new = times[int(np.searchsorted(times, done + block)) :] if done is not None else times
    todo = np.unique(new // block * block)
    shared = None
    if todo.size:
        shared = autofit.scales(det, values[None, :], np.searchsorted(times, todo))
        _, enough, counts = shared
        shared = shared if np.array_equal(todo, blocks) else None
    order = np.union1d(todo, blocks)
    passing = set(todo.tolist())
    judged = {b: k for k, b in enumerate(blocks.tolist())}
    ends = [*np.searchsorted(times[idx], blocks, side="left").tolist(), idx.size]
    fit, at, sqrt = np.zeros((blocks.size, w)), np.zeros(idx.size), np.zeros(blocks.size, bool)
    scaled = {False: values}  # (the square root: once a seal on that scale needs it)
    reach = (det.read - p.refresh) * step - p.cycles * DAY  # what a check holds, D's days aside
    for upto in order.tolist():
        if upto in passing:
            k = int(np.searchsorted(todo, upto))
            if enough[k] and bool(counts[k]) != memo.weekly_sqrt:  # another scale: anew
                memo.weekly, memo.weekly_sqrt = WeeklyProfile(step), bool(counts[k])
            prof = memo.weekly
            if prof.newest is None or upto >= prof.newest + 2 * HOUR:  # a bucket ended since
                if memo.weekly_sqrt not in scaled:
                    scaled[True] = np.sqrt(np.maximum(values, 0.0))
                _seal(prof, times, scaled[memo.weekly_sqrt], upto, reach, p.cycles)
        j = judged.get(upto)
        if j is None:
            continue
        s, prof, n, shrink = int(starts[j]), memo.weekly, p.weekly_profile, p.weekly_shrink
        a, points = max(0, s - w), times[idx[ends[j] : ends[j + 1]]]
        if fitting:  # the window and the block's points in one reading (the hours they share)
            both = corrections(prof, np.concatenate([times[a:s], points]), n, shrink)
            fit[j, w - (s - a) :], at[ends[j] : ends[j + 1]] = both[: s - a], both[s - a :]
        else:
            at[ends[j] : ends[j + 1]] = corrections(prof, points, n, shrink)
        sqrt[j] = memo.weekly_sqrt
    return Weekly(fit, at, sqrt, shared)


def _seal(prof: WeeklyProfile, times: IntArray, v: FloatArray, upto: int, reach: int, cycles: int) -> None:
    """`autoweekly.seal` at the block starting at `upto`, a bucket having ended since the
    newest sealed one: the buckets from the first whole hour whose D's days a live check of the
    block holds (`reach` before `upto`, rounded up)."""
    since = -(-(upto - reach) // HOUR) * HOUR
    if prof.newest is not None:
        since = max(since, prof.newest + HOUR)  # (the buckets between: NaN, out of the window)
    a, b = (int(i) for i in np.searchsorted(times, [since, upto], side="left"))
    daily = autofit.cycle_medians(times, v[None, :], times[a:b], DAY, cycles)[0]
    seal(prof, times[a:b], v[a:b], daily, upto)
