"""Row-wise robust statistics on numpy arrays (NaN-aware, one sort for all rows), shared by
the detectors that fit many windows at once."""

from __future__ import annotations

import numpy as np

from detectkd.detectors.base import FloatArray, IntArray


def robust_rows(rows: FloatArray, min_count: int) -> tuple[FloatArray, FloatArray, np.ndarray, FloatArray]:
    """Per row of finite values: the median, 1.4826 x MAD (1.2533 x the mean absolute
    deviation where the MAD is 0); ok where at least `min_count` values are finite; 1.2533 x
    the mean absolute deviation (a spread that does not collapse on ties)."""
    count = np.isfinite(rows).sum(axis=1)
    centre = row_quantile(rows, 0.5, 1)
    with np.errstate(invalid="ignore"):
        dev = np.abs(rows - centre[:, None])
    mad = row_quantile(dev, 0.5, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_dev = np.nansum(dev, axis=1) / np.maximum(count, 1)
    spread = np.where(mad > 0, 1.4826 * mad, 1.2533 * mean_dev)
    return centre, spread, count >= min_count, 1.2533 * mean_dev


def no_rows(n: int) -> tuple[FloatArray, FloatArray, np.ndarray, FloatArray]:
    """`robust_rows` of `n` rows without a finite value."""
    return np.full(n, np.nan), np.zeros(n), np.zeros(n, bool), np.zeros(n)


def row_quantile(rows: FloatArray, q: float, min_count: int) -> FloatArray:
    """np.quantile (linear) of each row's finite values, NaN for rows with fewer than
    `min_count`; one sort for all rows (NaN sorts last)."""
    if rows.shape[0] == 0:
        return np.empty(0)
    ordered = np.sort(rows, axis=1)
    count = np.isfinite(rows).sum(axis=1)
    pos = q * np.maximum(count - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
    a = np.take_along_axis(ordered, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(ordered, hi[:, None], axis=1)[:, 0]
    out = a + (b - a) * (pos - lo)
    return np.where(count >= max(min_count, 1), out, np.nan)


def cycle_median(times: IntArray, values: FloatArray, at: IntArray, lag: int, cycles: int) -> FloatArray:
    """Per time in `at`: the median of the values 1..cycles lags earlier (NaN: fewer than 2)."""
    if times.size == 0 or int(at.max(initial=times[0])) - lag < int(times[0]):  # none a lag back
        return np.full(at.size, np.nan)
    if at.size == 1:  # a live check: the same numbers without the row machinery
        want = int(at[0]) - lag * np.arange(1, cycles + 1)
        idx = np.clip(np.searchsorted(times, want), 0, times.size - 1)
        got = sorted(float(x) for x in values[idx[times[idx] == want]].tolist() if x == x)
        if len(got) < 2:
            return np.full(1, np.nan)
        pos = 0.5 * (len(got) - 1)
        lo = int(pos)
        a, b = got[lo], got[min(lo + 1, len(got) - 1)]
        return np.array([a + (b - a) * (pos - lo)])
    rows = []
    for d in range(1, cycles + 1):
        want = at - d * lag
        idx = np.clip(np.searchsorted(times, want), 0, times.size - 1)
        rows.append(np.where(times[idx] == want, values[idx], np.nan))
    stack = np.vstack(rows).T
    med = row_quantile(stack, 0.5, 2)
    return med


def trailing_extremes(x: FloatArray, ends: IntArray, w: int) -> tuple[FloatArray, FloatArray]:
    """Per e in `ends`: the max and min of the finite x[e - w : e] (-inf / +inf when none), in
    O(len(x) + w) for all ends at once (van Herk / Gil-Werman: prefix and suffix extremes of
    blocks of w; a window of w spans at most two blocks). Where every window reaches back to
    x's start (a short history: a first start's), the running extremes of x alone."""
    if ends.size and int(ends.max()) <= w:  # x[max(0, e - w) : e] is x[:e] for every e
        found = []
        for sign in (1.0, -1.0):
            y = np.empty(x.size + 1)
            y[0] = -np.inf
            y[1:] = np.where(np.isfinite(x), sign * x, -np.inf)
            found.append(sign * np.maximum.accumulate(y)[ends])
        return found[0], found[1]
    n = x.size + w
    m = -(-n // w) * w
    out = []
    for sign in (1.0, -1.0):
        y = np.full(m, -np.inf)
        y[w:n] = np.where(np.isfinite(x), sign * x, -np.inf)
        blocks = y.reshape(-1, w)
        prefix = np.maximum.accumulate(blocks, axis=1).ravel()
        suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
        out.append(sign * np.maximum(suffix[ends], prefix[ends + w - 1]))
    return out[0], out[1]


def recent_range(v: FloatArray, starts: IntArray, r: int) -> tuple[FloatArray, FloatArray]:
    """Per start: the top and bottom of the `r` values of `v` before it, moved on by how far
    the mean of those values' recent half rose above (or fell below) the mean of their older
    half: a series that trends or grows makes new highs by that much without news, while on
    a level series the two means differ only by noise."""
    half = r // 2
    first = max(0, int(starts.min()) - r)
    ends = starts - first
    seg = v[first:]
    if starts.size == 1 and ends[0] > 0:  # a live check: one block, plain reductions
        top, bottom = np.array([seg[: ends[0]].max()]), np.array([seg[: ends[0]].min()])
    else:
        top, bottom = trailing_extremes(seg, ends, r)
    total = np.concatenate([[0.0], np.cumsum(seg)])
    mid, begin = np.maximum(ends - half, 0), np.maximum(ends - r, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        new = (total[ends] - total[mid]) / (ends - mid)
        old = (total[mid] - total[begin]) / (mid - begin)
        drift = np.where(mid > begin, new - old, 0.0)
    return top + np.maximum(drift, 0.0), bottom + np.minimum(drift, 0.0)
