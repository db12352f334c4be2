"""`auto`'s weekly profile at one-minute-class data (design (a) of the weekly note; not wired yet).

At one minute `auto` keeps only the daily cycle: 3 weeks of points would cost about 400 KiB
a series. A weekly pattern (a weekend) then shows as residuals of the daily baseline D, and
every Saturday and Monday the first block after the step pages. Here each series keeps, per
hour bucket of the last 3 weeks, the mean of those residuals R_b (504 float32: 2 KiB a
scale), and the correction of D at time t is P(t): the median of the R of the same hour of
the week 1..3 weeks back, shrunk towards 0 by how noisy one bucket mean is. The judging
baseline would become D + P (step 3 of the plan).

Values and D are on the judging scale (square root for counts); a series that may be judged
on both scales keeps a profile per scale. Time is UTC epoch seconds; a bucket is an hour of
absolute time, `t // 3600`. The epoch (1970-01-01) was a Thursday, so the hour of the week
(the hour of the week) 0 is Thursday 00:00-01:00 UTC, 48 Saturday 00:00, 96 Monday 00:00 and
167 Wednesday 23:00. A local DST change moves the boundary bucket by an hour, as it already
moves the daily cycle.

Causality: the caller seals (`seal`) at a block's start `upto`, from the history before it,
and only buckets ending at or before `upto` are sealed; a correction (`correction`,
`corrections`) reads sealed buckets only. So a point's correction depends only on points
before its block, live and in a replay, when both seal at every block start. A bucket is
sealed once: its R is a function of the points in it and of D there, never revised."""

from __future__ import annotations

import math

import numpy as np

from detectkd.detectors.base import FloatArray, IntArray, StateArray
from detectkd.detectors.rows import row_quantile

HOUR, WEEK_HOURS, WEEKS = 3600, 168, 3
SLOTS = WEEKS * WEEK_HOURS  # 504 buckets: a ring indexed by the absolute hour mod 504
_F32 = float(np.finfo(np.float32).max)
MIN_PAIRS = 24  # week-to-week differences needed for the noise of a bucket mean: a day's
# The median of a chi-square with one degree of freedom (Phi^-1(3/4)^2). Without a weekly
# term (or with a stable one) the difference d of a bucket's mean and the mean a week before
# is normal with variance 2 sigma^2, so d^2 / (2 sigma^2) is chi-square(1) and
# median(d^2) / (2 x this) estimates sigma^2, the variance of one bucket mean, robustly: a
# changed week (an incident, a holiday) moves few of the 336 differences.
CHI2_MEDIAN = 0.45493642311957283


class WeeklyProfile:
    """One series' hourly residual means: `means[h % SLOTS]` is R of the absolute hour `h` for
    the 504 hours up to the newest passed bucket (`newest`: its start time; None before the
    first), NaN where the bucket had too few points. `step`: the series' interval (s)."""

    __slots__ = ("kept", "means", "newest", "noise", "step")

    def __init__(self, step: int) -> None:
        self.step = step
        # read-only: `seal` replaces it, so a copy (a run's checkpoint) shares it until then
        self.means = _EMPTY
        self.newest: int | None = None
        # `bucket_variance` as of `newest` (derived; `seal` moves `newest` whenever it seals)
        self.noise: tuple[int, float] | None = None
        # P by hour as of (`newest`, min_weeks, k) (`corrections`; derived, like `noise`): a live
        # check's point shares its hour with the 59 before it, a block's fit window its hours
        # with the block's before it; a seal moves `newest` and so starts it anew
        self.kept: tuple[tuple[int | None, int, float], dict[int, float]] | None = None

    def copy(self) -> WeeklyProfile:
        """Another profile with the same means and newest bucket (what is derived is derived
        again). The means are shared, never written in place (`seal` replaces them): a run's
        checkpoint of every series it touches costs no 2 KiB each."""
        other = WeeklyProfile(self.step)
        other.means, other.newest = self.means, self.newest
        return other

    def export(self) -> tuple[StateArray, tuple[float, ...]]:
        """The 504 means (single precision, in ring order) and the newest bucket's start (NaN: none)."""
        return self.means.copy(), (math.nan if self.newest is None else float(self.newest),)

    @classmethod
    def imported(cls, step: int, data: StateArray, scalars: tuple[float, ...]) -> WeeklyProfile:
        """The profile `export` described."""
        if data.shape != (SLOTS,) or len(scalars) != 1:
            raise ValueError(
                f"a weekly profile has {SLOTS} means and 1 number, not {data.shape} and {len(scalars)}"
            )
        p = cls(step)
        p.means = _frozen(np.array(data, np.float32))
        p.newest = None if scalars[0] != scalars[0] else int(scalars[0])
        return p


def seal(profile: WeeklyProfile, times: IntArray, values: FloatArray, daily: FloatArray, upto: int) -> int:
    """Seal every hour bucket ending at or before `upto` (the start of the block about to be
    judged) that is not sealed yet and is among the 504 hours before `upto`: R_b = the mean of
    values - daily over its points where both are finite, if there are at least half the
    points the bucket should hold (3,600 / step), else NaN; a bucket ending after `upto` is
    left for a later call. `times` ascending, `values` and `daily` (D at each time) aligned
    with them. Sealed once (a second call with the same `upto` changes nothing): the caller
    must pass points enough for each bucket and D there when it first passes its end. An
    `upto` before the newest sealed bucket's end seals nothing. Returns the count of buckets
    passed (NaN ones too)."""
    last = int(upto) // HOUR - 1  # the newest hour ending at or before `upto`
    if profile.newest is not None:
        first = profile.newest // HOUR + 1
    elif times.size:
        first = int(times[0]) // HOUR
    else:
        return 0
    first = max(first, last - SLOTS + 1)
    if first > last:
        return 0
    hours = np.arange(first, last + 1, dtype=np.int64)
    means = profile.means.copy()  # a new array: copies of the profile keep the old one
    lo = np.searchsorted(times, hours * HOUR, side="left")
    hi = np.searchsorted(times, (hours + 1) * HOUR, side="left")
    for h, a, b in zip(hours.tolist(), lo.tolist(), hi.tolist(), strict=True):
        r = values[a:b] - daily[a:b]
        r = r[np.isfinite(r)]  # (a mean of its own points only: the same bits however the window starts)
        enough = 2 * r.size * profile.step >= HOUR
        mean = float(np.mean(r)) if enough else math.nan
        means[h % SLOTS] = mean if abs(mean) <= _F32 else math.nan  # (no inf kept; NaN fails too)
    profile.means, profile.newest = _frozen(means), last * HOUR
    return last - first + 1


def _frozen(means: StateArray) -> StateArray:
    means.flags.writeable = False
    return means


_EMPTY = _frozen(np.full(SLOTS, np.nan, np.float32))  # every new profile's means, until its first seal


def bucket_variance(profile: WeeklyProfile) -> float:
    """sigma^2, the variance of one bucket mean: median(d^2) / (2 x `CHI2_MEDIAN`) over the
    differences d of each sealed bucket and the one a week before (up to 336 pairs); NaN with
    fewer than `MIN_PAIRS` or when it is 0 (no noise to go by: no correction is safer)."""
    if profile.newest is None:
        return math.nan
    if profile.noise is not None and profile.noise[0] == profile.newest:  # (a live check's: once a block)
        return profile.noise[1]
    newest = profile.newest // HOUR
    hours = np.arange(newest - SLOTS + 1 + WEEK_HOURS, newest + 1, dtype=np.int64)
    r = profile.means.astype(np.float64)
    d = r[hours % SLOTS] - r[(hours - WEEK_HOURS) % SLOTS]
    d = d[np.isfinite(d)]
    var = float(np.median(d * d)) / (2.0 * CHI2_MEDIAN) if d.size >= MIN_PAIRS else math.nan
    profile.noise = (profile.newest, var if var > 0.0 else math.nan)
    return profile.noise[1]


def corrections(profile: WeeklyProfile, times: IntArray, min_weeks: int = 2, k: float = 2.0) -> FloatArray:
    """P at each of `times`: the median of R at its hour of the week 1..3 weeks back (0 with
    fewer than `min_weeks` of them), times max(0, 1 - k sigma^2 / P^2) (`bucket_variance`; 0
    without it): a weekly pattern well above the noise of a bucket mean stays, noise shrinks to
    0. Reads sealed buckets only, each ended by the `upto` of the `seal` that sealed it."""
    key = (profile.newest, min_weeks, k)
    if profile.kept is None or profile.kept[0] != key or len(profile.kept[1]) > SLOTS:
        profile.kept = (key, {})
    kept = profile.kept[1]
    if times.size == 1:  # a live check's point
        h = int(times[0]) // HOUR
        if h not in kept:
            kept[h] = float(_corrections(profile, times, min_weeks, k)[0])
        return np.array([kept[h]])
    hours = times // HOUR
    if times.size == 0:
        return np.zeros(0)
    lo, hi = int(hours.min()), int(hours.max())
    if hi - lo < SLOTS:  # a block's fit window: a few hours, each read from what is kept
        span, at = list(range(lo, hi + 1)), hours - lo
    else:
        uniq, at = np.unique(hours, return_inverse=True)
        span = uniq.tolist()
    todo = [h for h in span if h not in kept]
    if todo:
        new = _corrections(profile, np.asarray(todo, np.int64) * HOUR, min_weeks, k)
        kept.update(zip(todo, new.tolist(), strict=True))
    return np.array([kept[h] for h in span])[at].reshape(times.shape)


def _corrections(profile: WeeklyProfile, times: IntArray, min_weeks: int, k: float) -> FloatArray:
    var = bucket_variance(profile)
    if profile.newest is None or var != var:
        return np.zeros(times.size)
    newest = profile.newest // HOUR
    hours = times // HOUR
    stack = np.full((times.size, WEEKS), np.nan)
    r = profile.means.astype(np.float64)
    for w in range(1, WEEKS + 1):
        h = hours - w * WEEK_HOURS
        inside = (h > newest - SLOTS) & (h <= newest)
        stack[inside, w - 1] = r[h[inside] % SLOTS]
    p = row_quantile(stack, 0.5, max(min_weeks, 1))
    return _shrunk(np.where(np.isfinite(p), p, 0.0), var, k)


def _shrunk(p: FloatArray, var: float, k: float) -> FloatArray:
    """p x max(0, 1 - k var / p^2); 0 where p is 0 (or so small that p^2 is)."""
    sq = p * p
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.maximum(0.0, 1.0 - k * var / sq)
    return np.where(sq > 0.0, p * factor, 0.0)
