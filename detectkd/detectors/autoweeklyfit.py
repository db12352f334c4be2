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
from detectkd.detectors.autoweekly import HOUR, MIN_PAIRS, WEEK_HOURS, WeeklyProfile, corrections, seal
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


def checkpoint(det: AutoDetector, series: str) -> tuple[WeeklyProfile, bool] | None:
    """A copy of the series' weekly profile and its scale (None: none), taken when a run first
    touches the series (`SeriesMemory.window`), for `restored`."""
    memo = det._memo.get(series)
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


@dataclass(slots=True)
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
        if self.sqrt.size == 1:  # (one block: all or nothing)
            return self.at if bool(self.sqrt[0]) == sqrt else np.zeros(self.at.size)
        return np.where(self.sqrt[inv] == sqrt, self.at, 0.0)


_SCALE = {False: np.zeros(1, bool), True: np.ones(1, bool)}  # one block's (read only)
for _a in _SCALE.values():
    _a.flags.writeable = False


def prepared(
    det: AutoDetector,
    memo: Memo | None,
    times: IntArray,
    values: FloatArray,
    blocks: IntArray,
    starts: IntArray,
    idx: IntArray,
    fitting: bool = True,
    scales: tuple[FloatArray, np.ndarray, np.ndarray] | None = None,
) -> Weekly | None:
    """Seal `memo`'s profile at each block of `times` after its newest judged point's (all of
    them for a new memo) and give P for the judged `blocks` (first values at `starts`) and
    their points `idx` (ascending), each from the profile as sealed at its block; P in the
    blocks' fit windows only when `fitting` (a live check whose block's fit is kept needs
    none: 0 there, unread). `times`, `values`: the points with values (`AutoDetector._judge`).
    `scales`: `autofit.scales` of `blocks`, where the caller has them (`autorefit`). None
    where the option is off."""
    if memo is None or not on(det) or blocks.size == 0:
        return None
    if memo.weekly is None:
        memo.weekly = WeeklyProfile(det.step)
    block, w = det.block, det.p.window
    done = None if memo.last is None else memo.last // block * block
    if memo.weekly_passed is not None and (done is None or memo.weekly_passed > done):
        done = memo.weekly_passed  # (a many-series fit passed the new block: `autorefit`)
    if done is not None and not fitting and blocks.size == 1 and int(times[-1]) < done + block:
        # the usual live check: a point in the block of the one before (nothing to seal, its fit kept)
        return _read(det, memo, times, int(starts[0]), times[idx], False, None)
    new = times[int(np.searchsorted(times, done + block)) :] if done is not None else times
    todo = np.unique(new // block * block)
    shared = None  # the scales of the judged blocks where they are those passed: the fit's too
    if todo.size and np.array_equal(todo, blocks):
        shared = scales if scales is not None else autofit.scales(det, values[None, :], starts)
    sealer = _Sealer(det, memo, times, values, todo, shared)
    if blocks.size == 1 and todo.size <= 1 and (todo.size == 0 or shared is not None):
        # one block, passed here or before (a live check's new block, a many-series fit's)
        if todo.size:
            sealer.passes(0, int(todo[0]))
        return _read(det, memo, times, int(starts[0]), times[idx], fitting, shared)
    order = np.union1d(todo, blocks)
    passing = {b: k for k, b in enumerate(todo.tolist())}
    judged = {b: k for k, b in enumerate(blocks.tolist())}
    ends = [*np.searchsorted(times[idx], blocks, side="left").tolist(), idx.size]
    fit, at, sqrt = np.zeros((blocks.size, w)), np.zeros(idx.size), np.zeros(blocks.size, bool)
    for upto in order.tolist():
        if upto in passing:
            sealer.passes(passing[upto], upto)
        j = judged.get(upto)
        if j is None:
            continue
        fit[j], at[ends[j] : ends[j + 1]] = _block(
            det, memo, times, int(starts[j]), times[idx[ends[j] : ends[j + 1]]], fitting
        )
        sqrt[j] = memo.weekly_sqrt
    return Weekly(fit, at, sqrt, shared)


def _read(
    det: AutoDetector,
    memo: Memo,
    times: IntArray,
    s: int,
    points: IntArray,
    fitting: bool,
    shared: tuple[FloatArray, np.ndarray, np.ndarray] | None,
) -> Weekly:
    """`prepared`'s `Weekly` for one judged block (its first value at `s`) and its `points`."""
    fit, at = _block(det, memo, times, s, points, fitting)
    return Weekly(fit[None, :], at, _SCALE[memo.weekly_sqrt], shared)


def _block(
    det: AutoDetector, memo: Memo, times: IntArray, s: int, points: IntArray, fitting: bool
) -> tuple[FloatArray, FloatArray]:
    """P of one judged block (its first value at `s`) from the profile as it is: in its fit
    window's `window` points (0 where padded, and all 0 unless `fitting`) and at its `points`
    (times), the two in one reading (the hours they share)."""
    prof, w, n, shrink = memo.weekly, det.p.window, det.p.weekly_profile, det.p.weekly_shrink
    assert prof is not None
    fit = np.zeros(w)
    if not fitting:
        return fit, corrections(prof, points, n, shrink)
    a = max(0, s - w)
    both = corrections(prof, np.concatenate([times[a:s], points]), n, shrink)
    fit[w - (s - a) :] = both[: s - a]
    return fit, both[s - a :]


def rebuilt(det: AutoDetector, memo: Memo, times: IntArray, values: FloatArray) -> None:
    """What `prepared` does to a new memo's profile over a history (`times`, `values`: its
    points with values), without P: every block of `times` passed in order. For a many-series
    rebuild (`autorebuild`), which judges as if the option were off: valid where `plain`."""
    memo.weekly, memo.weekly_sqrt, memo.weekly_passed = WeeklyProfile(det.step), False, None
    todo = np.unique(times // det.block * det.block)
    if todo.size:
        sealer = _Sealer(det, memo, times, values, todo, None)
        for k, upto in enumerate(todo.tolist()):
            sealer.passes(k, upto)


PLAIN = 2 * DAY - HOUR + (WEEK_HOURS + MIN_PAIRS) * HOUR  # (s) see `plain`


def plain(times: IntArray) -> bool:
    """Whether a new profile sealed over a history at `times` (ascending) gives P = 0 at every
    block of it, so that judging it as if the option were off is judging it with the option:
    D has a value where 2 days are behind it, a bucket a mean where half its points have one
    (so from 2 days less half an hour after the first point), and the noise estimate
    (`autoweekly.bucket_variance`) needs `MIN_PAIRS` buckets a week after one sealed: a history
    shorter than `PLAIN` (an hour of margin; review: 2 days exactly let P in at 10 days less
    half an hour) has none, and P is 0 without it. At one minute a window holds 4.7 days."""
    return times.size == 0 or int(times[-1]) - int(times[0]) < PLAIN


def plain_reach(det: AutoDetector) -> bool:
    """Whether every history `det` is given is `plain`: its window is shorter (a runtime's
    windows hold `window_seconds` and an interval)."""
    return det.window_seconds(det.step) + det.step < PLAIN


def flags(det: AutoDetector, values: FloatArray, starts: IntArray) -> tuple[np.ndarray, np.ndarray]:
    """`autofit.scales`' enough data and counts for one series (`values`, 1-D) at `starts`,
    without its level windows: from running counts of the finite values and of those that are
    no whole number at or above 0, in O(len(values)) (a rebuild passes every block)."""
    p, w = det.p, det.p.window
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        odd = finite & ~((values >= 0) & (values == np.round(values)))
    have, bad = (np.concatenate([[0], np.cumsum(m)]) for m in (finite, odd))
    lo = np.maximum(starts - w, 0)
    enough = have[starts] - have[lo] >= p.min_samples
    counts = (bad[starts] - bad[lo] == 0) & enough if p.counts else np.zeros(starts.size, bool)
    return enough, counts


class _Sealer:
    """The passes of one series' profile at the blocks `todo` (ascending, with their `scales`),
    in time order (`passes`): at each, a block with enough data judged on the other scale
    than the profile's starts it anew, and the buckets ended since the newest are sealed.
    Where the passes span hours (a rebuild, a long catch-up) D is computed once from the first
    seal on, else per seal: the same numbers (D at a time is a function of the points before it)."""

    def __init__(
        self,
        det: AutoDetector,
        memo: Memo,
        times: IntArray,
        values: FloatArray,
        todo: IntArray,
        scales: tuple[FloatArray, np.ndarray, np.ndarray] | None,
    ) -> None:
        self.det, self.memo, self.times, self.todo = det, memo, times, todo
        if scales is not None:
            self.enough, self.counts = scales[1], scales[2]
        elif todo.size:
            self.enough, self.counts = flags(det, values, np.searchsorted(times, todo))
        self.scaled = {False: values}  # (the square root: once a seal on that scale needs it)
        # D once for the times from the first seal on, where the passes span hours (a rebuild,
        # a long catch-up); else per seal (review: a two-block catch-up took D for 4.7 days)
        self.once = todo.size > 1 and int(todo[-1]) - int(todo[0]) >= 2 * HOUR
        self.daily: dict[bool, tuple[int, FloatArray]] = {}
        self.reach = (det.read - det.p.refresh) * det.step - det.p.cycles * DAY  # a check's, D's days aside

    def passes(self, k: int, upto: int) -> None:
        """The pass at `todo[k]`, `upto`."""
        memo, det = self.memo, self.det
        if self.enough[k] and bool(self.counts[k]) != memo.weekly_sqrt:  # another scale: anew
            memo.weekly, memo.weekly_sqrt = WeeklyProfile(det.step), bool(self.counts[k])
        memo.weekly_passed = upto
        prof = memo.weekly
        assert prof is not None
        if prof.newest is not None and upto < prof.newest + 2 * HOUR:
            return  # no bucket ended since the newest (the usual live check)
        sqrt = memo.weekly_sqrt
        if sqrt not in self.scaled:
            self.scaled[True] = np.sqrt(np.maximum(self.scaled[False], 0.0))
        v, times = self.scaled[sqrt], self.times
        since = -(-(upto - self.reach) // HOUR) * HOUR  # the first whole hour whose D's days a check holds
        if prof.newest is not None:
            since = max(since, prof.newest + HOUR)  # (the buckets between: NaN, out of the window)
        a, b = (int(i) for i in np.searchsorted(times, [since, upto], side="left"))
        if self.once:  # D from this seal's first time on (again if a new profile starts before it)
            if sqrt not in self.daily or a < self.daily[sqrt][0]:
                later = autofit.cycle_medians(times, v[None, :], times[a:], DAY, det.p.cycles)[0]
                self.daily[sqrt] = (a, later)
            first, known = self.daily[sqrt]
            daily = known[a - first : b - first]
        else:
            daily = autofit.cycle_medians(times, v[None, :], times[a:b], DAY, det.p.cycles)[0]
        seal(prof, times[a:b], v[a:b], daily, upto)
