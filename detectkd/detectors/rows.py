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
    r = np.arange(rows.shape[0])  # (plain indexing: take_along_axis costs more than the sort here)
    a, b = ordered[r, lo], ordered[r, hi]
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
    """Per row of `x` (a row per series; a 1-D `x` is one row and gives 1-D answers) and e in
    `ends`: the max and min of the finite x[row, e - w : e] (-inf / +inf when none), in
    O(len(x) + w) for all ends at once (van Herk / Gil-Werman: prefix and suffix extremes of
    blocks of w; a window of w spans at most two blocks). Where every window reaches back to
    x's start (a short history: a first start's), the running extremes of x alone. Max and min
    are exact: a row's answers do not depend on the other rows."""
    rows = x if x.ndim == 2 else x[None, :]
    s = rows.shape[0]
    out = []
    if ends.size and int(ends.max()) <= w:  # x[max(0, e - w) : e] is x[:e] for every e
        for sign in (1.0, -1.0):
            y = np.empty((s, rows.shape[1] + 1))
            y[:, 0] = -np.inf
            y[:, 1:] = np.where(np.isfinite(rows), sign * rows, -np.inf)
            out.append(sign * np.maximum.accumulate(y, axis=1)[:, ends])
    else:
        n = rows.shape[1] + w
        m = -(-n // w) * w
        for sign in (1.0, -1.0):
            y = np.full((s, m), -np.inf)
            y[:, w:n] = np.where(np.isfinite(rows), sign * rows, -np.inf)
            blocks = y.reshape(s, -1, w)
            prefix = np.maximum.accumulate(blocks, axis=2).reshape(s, m)
            suffix = np.maximum.accumulate(blocks[:, :, ::-1], axis=2)[:, :, ::-1].reshape(s, m)
            out.append(sign * np.maximum(suffix[:, ends], prefix[:, ends + w - 1]))
    shape = (*x.shape[:-1], ends.size)
    return out[0].reshape(shape), out[1].reshape(shape)


def window_extremes(x: FloatArray, lo: IntArray, hi: IntArray) -> tuple[FloatArray, FloatArray]:
    """Per row of `x` (2-D) and window: the max and min of the finite x[row, lo : hi] (-inf /
    +inf when none), windows of any widths. A window is covered by its first and its last w
    values for any w of at least half its width, so the windows are taken in groups, each by
    `trailing_extremes` of one w (the group's narrowest) at both ends; windows of one width
    (a history without gaps) are one group and one pass, those from x's start another."""
    width = hi - lo
    top = np.full((x.shape[0], lo.size), -np.inf)
    bottom = np.full((x.shape[0], lo.size), np.inf)
    todo = width > 0
    first = np.flatnonzero(todo & (lo == 0))  # reaching back to x's start: its running extremes
    if first.size:
        top[:, first], bottom[:, first] = trailing_extremes(x, hi[first], int(hi[first].max()))
        todo[first] = False
    while todo.any():
        w = int(width[todo].min())
        k = np.flatnonzero(todo & (width <= 2 * w))
        todo[k] = False
        top[:, k], bottom[:, k] = trailing_extremes(x, hi[k], w)
        if (width[k] != w).any():  # the first w of each window too
            head_top, head_bottom = trailing_extremes(x, lo[k] + w, w)
            top[:, k] = np.maximum(top[:, k], head_top)
            bottom[:, k] = np.minimum(bottom[:, k], head_bottom)
    return top, bottom


def recent_range(
    v: FloatArray, starts: IntArray, since: IntArray, mid: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Per row of `v` (a row per series, all on one grid) and block start: the top and bottom
    of the values from `since` to the start, moved on by how far the mean of the recent ones
    (from `mid`) rose above (or fell below) the mean of the older ones: a series that trends
    or grows makes new highs by that much without news, while on a level series the two means
    differ only by noise. Rows in series order (series 0's blocks, then series 1's ...)."""
    first = int(since.min())
    seg = v[:, first:]
    ends, lo, mid = starts - first, since - first, mid - first
    if starts.size == 1 and ends[0] > lo[0]:  # a live check: one block, plain reductions
        part = seg[:, int(lo[0]) : int(ends[0])]
        top, bottom = part.max(axis=1)[:, None], part.min(axis=1)[:, None]
    else:
        top, bottom = window_extremes(seg, lo, ends)
    total = np.concatenate([np.zeros((seg.shape[0], 1)), np.cumsum(seg, axis=1)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        new = (total[:, ends] - total[:, mid]) / (ends - mid)
        old = (total[:, mid] - total[:, lo]) / (mid - lo)
        drift = np.where((mid > lo) & (ends > mid), new - old, 0.0)
    return (top + np.maximum(drift, 0.0)).ravel(), (bottom + np.minimum(drift, 0.0)).ravel()
