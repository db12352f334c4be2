"""How rare a deviation is for its series: each (series, detector)'s scores of the last 14
days, counted per UTC day in 48 bins, and the share of them below a new score.

The bins follow the score's distance to the alarm line (a score s is a distance of
s / (1 - s) limits): 8 equal bins below the line, then bins 20 % wider each, so a FIRING's
score is told apart from those a fifth smaller. A score shares its bin with those about as
large, and only the bins below it count as "below": the share is never overstated. A day's
counts are 256 bytes, a series' 14 days under 4 KB per detector.

Point-in-time: `rank(period)` counts only scores before `period` (those counted precede the
running batch, the batch's own are held apart and taken by period). The scores a run judges
are held apart (`pend`) and counted (`settle`) once the next run starts after them: a run
whose commit failed is redone from the same period, and its scores are then replaced, not
counted twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

DAYS = 14  # the span a rarity is said over
BINS = 64
LOW = 8  # bins below the alarm line (score < 0.5)
GROWTH = 1.2  # each bin above the line 20 % wider than the previous (the last starts at 27,000 limits)
DAY = 86400


def score_bin(score: float) -> int:
    """The bin of a score in [0, 1] (NaN: the lowest)."""
    if not score > 0:
        return 0
    if score < 0.5:
        return min(LOW - 1, int(score * 2 * LOW))
    if score >= 1:
        return BINS - 1
    r = score / (1 - score)
    return min(BINS - 1, LOW + int(math.log(max(r, 1.0)) / math.log(GROWTH)))


def score_bins(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """`score_bin` of many scores at once."""
    s = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.maximum(s / (1 - s), 1.0)
        high = LOW + np.floor(np.log(r) / math.log(GROWTH))
    out = np.where(s < 0.5, np.minimum(LOW - 1, np.floor(np.maximum(s, 0.0) * 2 * LOW)), high)
    out = np.where(s >= 1, BINS - 1, out)
    return np.minimum(BINS - 1, out).astype(np.int64)


@dataclass
class _Tally:
    first: int  # the oldest period counted
    last: int  # the newest period counted
    days: dict[int, npt.NDArray[np.int32]] = field(default_factory=dict)  # UTC day -> counts


@dataclass(frozen=True)
class Rank:
    below: int  # scores in lower bins
    total: int  # scores counted
    days: int  # whole days they span, at most DAYS


class ScoreBook:
    def __init__(self) -> None:
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._pending: dict[tuple[str, str], list[tuple[int, float]]] = {}

    def __len__(self) -> int:
        return len(self._tallies)

    def add(self, series: str, detector: str, period: int, score: float) -> None:
        """Count a score (each period once: an older or repeated period is ignored)."""
        key = (series, detector)
        t = self._tallies.get(key)
        if t is None:
            t = self._tallies[key] = _Tally(period, period - 1)
        if period <= t.last:
            return
        day = period // DAY
        counts = t.days.get(day)
        if counts is None:
            counts = t.days[day] = np.zeros(BINS, np.int32)
            for old in [d for d in t.days if d <= day - DAYS]:
                del t.days[old]
        counts[score_bin(score)] += 1
        t.last = period

    def pend(self, series: str, detector: str, period: int, score: float) -> None:
        """A score of the running batch: seen by `rank` of later periods, counted by `settle`."""
        self._pending.setdefault((series, detector), []).append((period, score))

    def settle(self, before: int) -> None:
        """The previous batch was committed as far as `before` (the next batch's first
        period): its scores before that are counted, the rest (a redone run's) dropped."""
        pending, self._pending = self._pending, {}
        for key, scores in pending.items():
            if len(scores) < 8:
                for period, score in scores:
                    if period < before:
                        self.add(key[0], key[1], period, score)
                continue
            self._many(key, scores, before)

    def _many(self, key: tuple[str, str], scores: list[tuple[int, float]], before: int) -> None:
        """`add` of a batch's scores of one key at once (ordered by period, as judged)."""
        periods = np.fromiter((p for p, _ in scores), np.int64, len(scores))
        values = np.fromiter((s for _, s in scores), np.float64, len(scores))
        t = self._tallies.get(key)
        last = t.last if t is not None else int(periods[0]) - 1
        keep = (periods < before) & (periods > last)
        keep &= np.concatenate(([True], np.diff(periods) > 0))  # each period once
        periods, values = periods[keep], values[keep]
        if periods.size == 0:
            return
        if t is None:
            t = self._tallies[key] = _Tally(int(periods[0]), last)
        days = periods // DAY
        bins = score_bins(values)
        for day in np.unique(days):
            d = int(day)
            counts = t.days.get(d)
            if counts is None:
                counts = t.days[d] = np.zeros(BINS, np.int32)
            counts += np.bincount(bins[days == day], minlength=BINS).astype(np.int32)
        newest = int(days[-1])
        for old in [d for d in t.days if d <= newest - DAYS]:
            del t.days[old]
        t.last = int(periods[-1])

    def forget(self, series: str) -> None:
        for key in [k for k in self._tallies if k[0] == series]:
            del self._tallies[key]
        for key in [k for k in self._pending if k[0] == series]:
            del self._pending[key]

    def rank(self, series: str, detector: str, period: int, score: float) -> Rank | None:
        """The scores of [period - 14 days, period) of this series and detector against
        `score`; whole UTC days are kept, so the oldest day may be partly left out."""
        key = (series, detector)
        t = self._tallies.get(key)
        pending = [(p, s) for p, s in self._pending.get(key, ()) if period - DAYS * DAY <= p < period]
        if t is None and not pending:
            return None
        b = score_bin(score)
        below = total = 0
        lo_day = -(-(period - DAYS * DAY) // DAY)  # the first whole day inside [period - 14 d, period)
        first = period
        if t is not None:
            for day, counts in t.days.items():
                if lo_day <= day and day * DAY < period:
                    below += int(counts[:b].sum())
                    total += int(counts.sum())
            first = min(first, t.first)
        for p, s in pending:
            below += score_bin(s) < b
            total += 1
            first = min(first, p)
        days = DAYS if first <= period - DAYS * DAY else (period - first) // DAY
        return Rank(below, total, int(days))
