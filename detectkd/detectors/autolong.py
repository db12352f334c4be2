"""`auto`'s long memory of |z| (`long_days`, off by default; issue 27).

The alarm line is the `quantile` of the series' last `reference` |z|: about a week at
five-minute data. A bursty series (a count whose bursts come every week or two) forgets its
last burst and pages on the next one of the same height. Here each series keeps a fixed
histogram of its judged |z| on a log scale (`BINS` bins of ratio `RATIO` from `LOW`, single
precision: 512 bytes) in which a point's weight halves every `long_days` days of judged
points (by point count: a live check and a replay judge the same points). The long line is
the upper edge of the highest bin whose weight and that of every bin above it reach one half:
the largest |z| of about the last `long_days` days (one such point counts for `long_days`
days, two for twice that, four for three times). `auto`'s line is the larger of its own and
this one: a burst no higher than the last one within that time is held; a larger one (by
more than one bin, 6 %) still pages. O(1) a point to add (weights grow with the count
instead of every bin decaying; rescaled now and then), one cumulative sum of 128 bins to
read. Causal: a point's |z| enters after it is judged."""

from __future__ import annotations

import math

import numpy as np

LOW, RATIO, BINS = 2.0, 1.06, 128  # |z| from 2 to about 3,400 (higher ones: the last bin)
HALF = 0.5  # the weight above the line: one point within a half-life
_RESCALE = 32.0  # half-lives between rescalings (float32 holds 2^127)
_LOG_LOW, _LOG_RATIO = math.log(LOW), math.log(RATIO)
EDGES = LOW * RATIO ** np.arange(1, BINS + 1)  # the upper edge of each bin


class LongTail:
    """The decayed histogram of one series' |z|: `bins` weighted by 2^((n - origin) / half),
    `n` the judged points counted so far."""

    __slots__ = ("bins", "count", "half", "n", "origin")

    def __init__(self, half: float, count: float = HALF) -> None:
        self.half = max(float(half), 1.0)  # points in a half-life
        self.count = count  # the weight above the line (`long_count`)
        self.bins = np.zeros(BINS, np.float32)
        self.n = 0
        self.origin = 0

    def _scale(self) -> float:
        return float(2.0 ** ((self.n - self.origin) / self.half))

    def _rescale(self) -> None:
        if (self.n - self.origin) / self.half > _RESCALE:
            self.bins *= np.float32(1.0 / self._scale())
            self.origin = self.n

    def add(self, az: float) -> None:
        """One judged point's |z| (NaN, a cold start, and |z| below `LOW` only count as a point)."""
        self.n += 1
        self._rescale()
        if az >= LOW:
            k = min(int((math.log(az) - _LOG_LOW) / _LOG_RATIO), BINS - 1)
            self.bins[k] += np.float32(self._scale())

    def extend(self, az: np.ndarray) -> None:
        """`add` for many points at once (a rebuild): the same weights, summed in another order."""
        n = az.size
        if not n:
            return
        index = self.n + 1 + np.arange(n)
        self.n += n
        self._rescale()
        with np.errstate(invalid="ignore", divide="ignore"):
            high = np.flatnonzero(az >= LOW)
            k = np.minimum(((np.log(az[high]) - _LOG_LOW) / _LOG_RATIO).astype(np.int64), BINS - 1)
        w = 2.0 ** ((index[high] - self.origin) / self.half)
        np.add.at(self.bins, k, w.astype(np.float32))

    def line(self) -> float:
        """The upper edge of the highest bin whose weight with the bins above it is at least
        `count` (one half: the largest |z| of about a half-life; 0 when none is)."""
        above = np.cumsum(self.bins[::-1], dtype=np.float64)[::-1] / self._scale()
        hit = np.flatnonzero(above >= self.count)
        return float(EDGES[hit[-1]]) if hit.size else 0.0

    def export(self) -> tuple[float, ...]:
        """The count, the origin and the bins (as scalars of the state)."""
        return (float(self.n), float(self.origin), *self.bins.astype(np.float64).tolist())

    @classmethod
    def imported(cls, half: float, scalars: tuple[float, ...], count: float = HALF) -> LongTail:
        if len(scalars) != 2 + BINS:
            raise ValueError(f"auto's long memory has {2 + BINS} numbers, not {len(scalars)}")
        t = cls(half, count)
        t.n, t.origin = int(scalars[0]), int(scalars[1])
        t.bins = np.asarray(scalars[2:], np.float32)
        return t

    @staticmethod
    def nbytes() -> int:
        """Its bins' bytes (the two counters and the object aside)."""
        return BINS * 4
