"""`auto`'s sustained deviation: the median of the last `sustain` |z| (a run of moderate
deviations: a small shift of level, a spread that grew) against every such median among the
series' own previous `reference` |z|. News when beyond the largest of them by `margin`, and
beyond `floor` and a one-in-ten |z| of the same points: the typical deviation jumped to a
height the recent past never reached. (A median that creeps up point by point is not a jump.)

Everything here is a function of the ring of recent |z| that `auto` keeps anyway: the medians
of the windows of `sustain` consecutive |z| that lie inside the ring are cached (derived
state, recomputed from the ring after a restart), so a live check computes one median."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detectkd.detectors.base import FloatArray

# Half the window must deviate more than all but this share of the ring's |z|: on a sparse
# count (mostly zeros) the median jumps from 0 to a whole count, a record of no meaning.
TYPICAL = 0.9
NONE: FloatArray = np.empty(0)  # no medians (`sustain` off): shared, never written
NONE.flags.writeable = False


def medians(az: FloatArray, k: int) -> FloatArray:
    """The median of each window of `k` consecutive values (NaN where one is NaN: a cold start)."""
    if az.size < k:
        return np.empty(0)
    if az.size == k:
        return np.asarray([_median(az.tolist())])
    return np.median(sliding_window_view(az, k), axis=1)


def _median(xs: list[float]) -> float:
    if any(x != x for x in xs):
        return float("nan")
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def surprises(
    ring: FloatArray,
    cache: FloatArray,
    az: FloatArray,
    k: int,
    size: int,
    floor: float,
    margin: float,
    least: int,
) -> tuple[FloatArray, FloatArray]:
    """Per new |z| (`az`, after the `ring` of the last `size` |z|, oldest first, whose window
    medians are `cache`): its window's median over the novelty line (1 on it; 0 where there is
    no median or fewer than `least` before it), and the cache for the ring after them."""
    r, n = ring.size, az.size
    joined = np.concatenate([ring, az])
    fresh = medians(joined[max(0, r - k + 1) :], k)  # the windows that end at a new point
    lead = n - fresh.size  # new points with fewer than k |z| before and with them
    every = np.concatenate([cache, fresh])  # medians by window start: 0 .. r + n - k
    out = np.zeros(n)
    with np.errstate(invalid="ignore"):
        above = np.flatnonzero(fresh > margin * floor)  # rare: only these read their line
    for j in (lead + above).tolist():
        end = r + j - k  # the last window that ends before point j
        start = max(0, r + j - size)  # the first window inside the ring at point j
        before = every[start : end + 1]
        finite = np.isfinite(before)
        if end < 0 or finite.sum() < least:
            continue
        m = float(fresh[j - lead])
        line = margin * max(float(before[finite].max()), floor)
        if m <= line:  # the usual case on a series whose medians often pass the floor
            continue
        recent = joined[max(0, r + j - size) : r + j]  # the ring at point j
        typical = np.quantile(recent[np.isfinite(recent)], TYPICAL)  # a one-in-ten |z| (rare: only here)
        line = max(line, margin * float(typical))
        out[j] = m / line if m > line else 0.0
    keep = max(0, joined.size - size)  # windows inside the ring after these points
    return out, every[keep:] if keep <= every.size else np.empty(0)
