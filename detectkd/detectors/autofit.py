"""`auto`'s baselines and z (`detectors.auto` steps 1-3) for one series or for many series
on one time grid at once (issue 28: a first run of a 1,000-series metric rebuilds every
series' state; one array operation for all of them instead of a thousand small ones).

Values come as a 2-D array, a row per series, all on the same `times` with the same
missing values; per-block results are rows in series order (series 0's blocks, then series
1's ...), per-point results likewise. Every statistic is computed row by row (a row's sort,
sum and quantile do not depend on the other rows), so a series judged among many gets the
same numbers, bit for bit, as judged alone (tests/unit/test_auto_many.py). One series
(one row) takes the one-series shortcuts of `rows` (a live check)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detectkd.detectors import autocounts
from detectkd.detectors.autostate import BlockFit
from detectkd.detectors.base import FloatArray, IntArray
from detectkd.detectors.rows import cycle_median, no_rows, recent_range, robust_rows, row_quantile

if TYPE_CHECKING:
    from detectkd.detectors.auto import AutoDetector
    from detectkd.detectors.autoparams import Params
    from detectkd.detectors.autoweeklyfit import Weekly

DAY, WEEK = 86400, 7 * 86400


@dataclass(frozen=True)
class Judged:
    z: FloatArray  # signed, NaN where no judgement (cold start)
    expected: FloatArray  # on the judging scale
    spread: FloatArray
    counts: np.ndarray  # bool: judged on the square-root scale
    breaks: np.ndarray  # bool (a range break); `auto` adds bits: 2 stuck, 4 spike seen, 8 novel
    basis: IntArray  # the baseline that judged: 0 the level, k the k-th seasonal one
    disp: FloatArray  # a count's dispersion under the count model (`autocounts`), else NaN


def windows(x: FloatArray, ends: IntArray, w: int) -> FloatArray:
    """Per row of `x` and e in `ends`: x[row, e - w : e] (NaN-padded before the start), rows
    in series order."""
    padded = np.concatenate([np.full((x.shape[0], w), np.nan), x], axis=1)
    return np.asarray(sliding_window_view(padded, w, axis=1)[:, ends].reshape(-1, w), np.float64)


def cycle_medians(times: IntArray, v: FloatArray, at: IntArray, lag: int, cycles: int) -> FloatArray:
    """`rows.cycle_median` of each row of `v` (one row: that function itself)."""
    if v.shape[0] == 1:
        return cycle_median(times, v[0], at, lag, cycles)[None, :]
    if times.size == 0 or int(at.max(initial=times[0])) - lag < int(times[0]):  # none a lag back
        return np.full((v.shape[0], at.size), np.nan)
    rows = []
    for d in range(1, cycles + 1):
        want = at - d * lag
        idx = np.clip(np.searchsorted(times, want), 0, times.size - 1)
        rows.append(np.where(times[idx] == want, v[:, idx], np.nan))
    stack = np.stack(rows, axis=-1)
    return row_quantile(stack.reshape(-1, cycles), 0.5, 2).reshape(v.shape[0], at.size)


def range_windows(det: AutoDetector, times: IntArray, starts: IntArray) -> tuple[IntArray, IntArray]:
    """Per block (its first value at `starts`): where its range window begins, and where the
    window's recent half begins. By time as well as by count: the values within the last
    `range_points` intervals before the block's start (at most that many), what a live
    check's history holds for every point of the block (`window_seconds` back, by time),
    however many values are missing; a replay reads no further back. The halves split the
    window by time (`range_points` // 2 intervals before the block)."""
    r, half = det.range_points, det.range_points // 2
    at = times[starts] // det.block * det.block  # the blocks' start times
    since = np.maximum(starts - r, np.searchsorted(times, at - r * det.step, side="left"))
    mid = np.maximum(starts - half, np.searchsorted(times, at - half * det.step, side="left"))
    return since, np.maximum(mid, since)


def fit_key(det: AutoDetector, times: IntArray, s0: int, block: int, revision: int) -> tuple[int, ...]:
    """What names the fit of the block starting at `s0` (of `times`, the points with values) in
    a history of this `revision`: the same key, the same `block_fit`, for the block's later
    checks. A live window drops its oldest point as it appends one once full (a full one-minute
    history: every check), which moves `s0` without touching what the fit reads: the values
    from its earliest read (`fit_reach`) to the block, the same points while the revision holds
    (appends and trims only). So the key is the block, how far back the fit reads from its
    start, and the times at both ends, not `s0` itself (issue 28: keyed by `s0`, every check
    of a full history fitted its block anew)."""
    return _named(revision, block, times, s0, s0 - fit_reach(det, times, s0))


def _named(revision: int, block: int, times: IntArray, s0: int, back: int) -> tuple[int, ...]:
    e = s0 - back
    return (revision, block, back, int(times[e]) if e < s0 else -1, int(times[s0 - 1]) if s0 else -1)


def holds(key: tuple[int, ...] | None, times: IntArray, s0: int, block: int, revision: int) -> bool:
    """Whether the fit `key` (`fit_key`) names is the fit of the block starting at `s0` of
    `times`: the same revision and block, and the points it read still there, as far back from
    the block's start (O(1): no `fit_reach` at each check). A fit that read the history's start
    (`fit_reach` 0) holds only while that start does."""
    if key is None or key[0] != revision or key[1] != block or s0 < key[2]:
        return False
    return _named(revision, block, times, s0, key[2]) == key


def fit_reach(det: AutoDetector, times: IntArray, s0: int) -> int:
    """The earliest point `block_fit` reads for a block starting at `s0`: the level window's
    first, the seasonal medians' earliest time of it, the range window's first. 0 where a read
    reaches the history's start (a window padded, a range cut by count): the fit then depends on
    where the history starts, and the key holds that start."""
    lo = s0 - det.p.window
    if lo <= 0 or (det.periods and det.like_shift is not None):  # (a `like` day's shift: not bounded here)
        return 0
    e = lo
    if det.periods:  # a seasonal median of a level-window time: `cycles` periods back at most
        earliest = int(times[lo]) - det.p.cycles * max(det.periods) * det.step
        e = min(e, int(np.searchsorted(times, earliest, side="left")))
    if det.range_points:  # (0 where cut by the history's start)
        e = min(e, int(range_windows(det, times, np.array([s0]))[0][0]))
    return e


def trending(det: AutoDetector) -> bool:
    """Whether the level is a line (`trend`): where its window spans at most half a day, the
    longest stretch over which a daily cycle's level can run one way; a line through a longer
    window of a cyclic level is no local approximation of it."""
    return det.p.trend and det.p.window * det.step <= DAY // 2


_SLOPE_ROWS = 256  # rows of `slopes`' padded halves at a time (each row: 4 halves of values and times)


def slopes(rows: FloatArray, at: FloatArray, min_count: int, spans: tuple[int, ...] = ()) -> list[FloatArray]:
    """`trend`'s slope per row of a level window (`at`: the values' times, NaN where padded),
    for each span (its first that many values; none: the whole window): the median of its
    newer half less that of its older half, over the same of their times (a robust line
    through two points: a spike or a few missing values barely move it); 0 where a half has
    fewer than `min_count` values. Every half of every span in one sort (NaN-padded in front)."""
    n = rows.shape[0]
    if n > _SLOPE_ROWS:  # a replay's thousands of blocks: a bounded number of rows at a time
        parts = [
            slopes(rows[i : i + _SLOPE_ROWS], at[i : i + _SLOPE_ROWS], min_count, spans)
            for i in range(0, n, _SLOPE_ROWS)
        ]
        return [np.concatenate(per_span) for per_span in zip(*parts, strict=True)]
    cuts = [(0, m // 2, m) for m in spans or (rows.shape[1],)]
    width = max(m - h for _, h, m in cuts)
    vs, ts = [], []
    for a, h, m in cuts:
        for lo, hi in ((a, h), (h, m)):
            front = np.full((n, width - (hi - lo)), np.nan)
            vs.append(np.concatenate([front, rows[:, lo:hi]], axis=1))
            ts.append(np.concatenate([front, at[:, lo:hi]], axis=1))
    med = row_quantile(np.concatenate(vs), 0.5, min_count).reshape(-1, 2, n)
    mid = ordered_median(np.concatenate(ts), min_count).reshape(-1, 2, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (med[:, 1] - med[:, 0]) / (mid[:, 1] - mid[:, 0])
    return list(np.where(np.isfinite(out), out, 0.0))


def ordered_median(at: FloatArray, min_count: int) -> FloatArray:
    """`row_quantile(at, 0.5, min_count)` of rows that ascend after a NaN prefix (a window's
    times, padded before the history's start): read at the middle, no sort."""
    n = np.isfinite(at).sum(axis=1)
    first = at.shape[1] - n
    lo = np.clip(first + (n - 1) // 2, 0, at.shape[1] - 1)
    hi = np.clip(first + n // 2, 0, at.shape[1] - 1)
    r = np.arange(at.shape[0])
    mid = 0.5 * (at[r, lo] + at[r, hi])
    return np.where(n >= max(min_count, 1), mid, np.nan)


def ahead(rows: FloatArray, slope: FloatArray, since: FloatArray, k: int) -> FloatArray:
    """`trend`'s errors as a forecast: per row, the line of its first `k` values (`slope`, theirs
    by `slopes`, and their median about it) extrapolated over the rest, less those values
    (`since`: each value's time from the block's start, where every line is drawn from)."""
    centre = row_quantile(rows[:, :k] - slope[:, None] * since[:, :k], 0.5, 1)
    return np.asarray(rows[:, k:] - (centre[:, None] + slope[:, None] * since[:, k:]))


def newest_fit(off: FloatArray, p: Params) -> FloatArray:
    """`mean_fit` of the newest `fit_window` absolute residuals (or errors) of each row; inf (never
    picked) where fewer than half of min(`min_samples`, `fit_window`) are finite (a seasonal lag
    whose days had an outage then; review: all NaN gave 0, a perfect fit, and it judged with its
    wide spread)."""
    n, fit = mean_fit(off)
    return np.where(n >= max(1, min(p.min_samples, p.fit_window) // 2), fit, np.inf)


def mean_fit(off: FloatArray) -> tuple[IntArray, FloatArray]:
    """Per row of absolute residuals: how many are finite, and 1.2533 x their mean (the fit the
    best-fit choice ranks baselines by: a spread from the mean absolute deviation)."""
    n = np.isfinite(off).sum(axis=1)
    return n, 1.2533 * np.nansum(off, axis=1) / np.maximum(n, 1)


def anchored(rows: FloatArray, p: Params) -> tuple[FloatArray, FloatArray, np.ndarray, FloatArray]:
    """`anchor`: a seasonal baseline's residuals (a row per block's window) judged at their recent
    offset: the centre is the median of the window's newest `anchor` (m); the spread and the fit are
    those of the errors of such forecasts through the window, a block's `refresh` points at a time,
    each from the median of the m before it (the fit: the errors within the newest
    `fit_window` points, as `fit_window` reads residuals). A block of points is judged as the
    window's blocks were predicted. (`fit_ahead` does not apply: these errors are forecasts.)"""
    w, m, run = rows.shape[1], p.anchor, p.refresh
    centre = row_quantile(rows[:, w - m :], 0.5, max(1, m // 2))
    starts = np.arange(w - run, m - 1, -run)[::-1]  # blocks of `run` ending at the window's end
    if starts.size == 0:
        return no_rows(rows.shape[0])
    before = sliding_window_view(rows, m, axis=1)[:, starts - m]  # (rows, blocks, m)
    anchors = row_quantile(before.reshape(-1, m), 0.5, max(1, m // 2)).reshape(rows.shape[0], -1)
    errors = (rows[:, starts[:, None] + np.arange(run)] - anchors[:, :, None]).reshape(rows.shape[0], -1)
    _, spread, ok, dev = robust_rows(errors, p.min_samples)
    if 0 < p.fit_window < w:
        dev = newest_fit(np.abs(errors[:, -max(run, p.fit_window // run * run) :]), p)
    return centre, spread, ok & np.isfinite(centre), dev


def bases(det: AutoDetector, times: IntArray, v: FloatArray, at: IntArray) -> list[FloatArray | None]:
    """The baselines at times `at` per row of `v`: the level (None: no offset) and each
    seasonal median (a row per series)."""
    out: list[FloatArray | None] = [None]
    shift = det.like_shift(at) if det.like_shift is not None else None
    for period in det.periods:
        base = cycle_medians(times, v, at, period * det.step, det.p.cycles)
        if shift is not None and (moved := shift > 0).any():  # a `like` day: that weekday's
            base[:, moved] = cycle_medians(times, v, at[moved] - shift[moved] + WEEK, WEEK, det.p.cycles)
        out.append(base)
    return out


def scales(
    det: AutoDetector, values: FloatArray, starts: IntArray
) -> tuple[FloatArray, np.ndarray, np.ndarray]:
    """Per series and block (its first value at `starts`): its level window (the `window`
    values before it, NaN-padded), whether it has enough data, whether it is judged as counts."""
    p, w = det.p, det.p.window
    lo = max(0, int(starts.min()) - w)
    level = windows(values[:, lo : int(starts.max())], starts - lo, w)
    finite = np.isfinite(level)
    enough = finite.sum(axis=1) >= p.min_samples
    is_count = np.zeros(level.shape[0], bool)
    if p.counts:
        with np.errstate(invalid="ignore"):
            whole = np.where(finite, (level >= 0) & (level == np.round(level)), True).all(axis=1)
        is_count = whole & enough
    return level, enough, is_count


def block_fit(
    det: AutoDetector, times: IntArray, values: FloatArray, starts: IntArray, weekly: Weekly | None = None
) -> BlockFit:
    """Per series and block: counts or not, enough data, and per scale and baseline the
    centre, spread and validity of the residuals in the `window` points before the block's
    start. `values`: a row per series, all finite (`AutoDetector._judge` drops the others).
    `weekly` (one series; `autoweeklyfit`): the daily baseline's corrections in those windows."""
    p, w = det.p, det.p.window
    n_series = values.shape[0]
    lo = max(0, int(starts.min()) - w)
    hi = int(starts.max())
    shared = weekly.scales if weekly is not None else None  # (the same blocks: computed there)
    level, enough, is_count = shared if shared is not None else scales(det, values, starts)
    fits: dict[bool, list[tuple[FloatArray, FloatArray, np.ndarray, FloatArray]]] = {}
    since, mid = range_windows(det, times, starts) if det.range_points else (starts, starts)
    ranges: dict[bool, tuple[FloatArray, FloatArray]] = {}
    sloped: dict[bool, FloatArray] = {}
    trend = trending(det)
    if trend:  # the level window's times, and each block's start: the line is drawn from there
        at = np.tile(windows(times[None, lo:hi].astype(np.float64), starts - lo, w), (n_series, 1))
        since_start = at - np.tile(times[starts] // det.block * det.block, n_series)[:, None]
        # and per block whether its window does span at most half a day (values missing: more)
        oldest = at[np.arange(at.shape[0]), np.argmax(np.isfinite(at), axis=1)]  # (a NaN prefix)
        with np.errstate(invalid="ignore"):
            lined = at[:, -1] - oldest <= DAY // 2
    for sqrt in [s for s in (False, True) if (is_count == s).any()]:  # the scales the blocks need
        v = np.sqrt(np.maximum(values, 0.0)) if sqrt else values
        models = []
        for b, base in enumerate(bases(det, times, v, times[lo:hi])):
            # a cycle not in the history yet (the same for every series: one grid, all finite)
            if base is not None and not np.isfinite(base).any():
                models.append(no_rows(level.shape[0]))
                continue
            resid = v[:, lo:hi] if base is None else v[:, lo:hi] - base
            rows = windows(resid, starts - lo, w)
            errors = None
            if base is None and trend:  # the level along its window's slope (`trend`)
                k = w - p.fit_window if 0 < p.fit_window < w else w // 2
                whole, older = slopes(rows, at, max(2, p.min_samples // 2), (w, k))
                whole, older = np.where(lined, whole, 0.0), np.where(lined, older, 0.0)  # else the median
                errors = np.where(lined[:, None], ahead(rows, older, since_start, k), np.nan)
                sloped[sqrt] = whole
                rows = rows - sloped[sqrt][:, None] * since_start
            if weekly is not None and b == 1:  # the daily baseline: D + P (P per block's window)
                rows = rows - weekly.rows(sqrt)
            if base is not None and 0 < p.anchor <= w - p.refresh:  # a seasonal baseline at the recent offset
                models.append(anchored(rows, p))
                continue
            centre, spread, ok, dev = robust_rows(rows, p.min_samples)
            if 0 < p.fit_window < w:  # the fit of the newest residuals, about the window's centre
                about = centre
                if p.fit_ahead:  # as a forecast: about the centre of the window's points before them
                    before = row_quantile(rows[:, : w - p.fit_window], 0.5, 1)
                    about = np.where(np.isfinite(before), before, centre)
                dev = newest_fit(np.abs(rows[:, w - p.fit_window :] - about[:, None]), p)
            if errors is not None:
                # A line is judged by its errors as a forecast (`trend`): its fit, and at least their
                # spread. Where the window's older part is too short to draw one (a new series' first
                # hours), as fitted (review: no fit left no baseline at all, and a line drawn from a
                # few start-up values widened the spread past a spike's).
                with np.errstate(invalid="ignore"):
                    off = np.abs(errors)
                    n, fit = mean_fit(off)
                    drawn = np.isfinite(rows[:, :k]).sum(axis=1)
                    known = (n >= max(1, p.min_samples // 2)) & (drawn >= max(2, p.min_samples // 2))
                    dev = np.where(known, fit, dev)
                    spread = np.where(known, np.fmax(spread, 1.4826 * row_quantile(off, 0.5, 1)), spread)
            models.append((centre, spread, ok, dev))
        fits[sqrt] = models
        if det.range_points:
            ranges[sqrt] = recent_range(v[:, :hi], starts, since, mid)
    poisson = autocounts.poisson_like(level, is_count & p.dispersion)  # 0 where not judged so
    filled = np.tile(starts - since, n_series)  # values in the range window: `range_min` counts them
    return BlockFit(is_count, enough, fits, ranges, filled, poisson, sloped)


def apply(
    det: AutoDetector,
    times: IntArray,
    values: FloatArray,
    idx: IntArray,
    inv: IntArray,
    fit: BlockFit,
    weekly: Weekly | None = None,
) -> Judged:
    """Per series and point at `idx` (its block: `inv`): z, expected and spread of the
    best-fitting baseline: the one whose residuals had the smallest mean absolute deviation
    (not the smallest MAD, which collapses on a sparse count: a seasonal median of 0, 0, 1
    "explains" most zeros); with `long_margin`, the weekly one where the daily one is that best
    and the weekly one's fit is within that factor of it (`long_step`: and it expects a step).
    Points in series order. `weekly`: as for `block_fit`."""
    n_series = values.shape[0]
    if n_series > 1:  # each series' points look up its own blocks' rows
        inv = (np.arange(n_series)[:, None] * fit.is_count.size // n_series + inv[None, :]).ravel()
    n = inv.size
    z, expected, spread = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    counts, breaks, which = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, np.int64)
    disp = np.full(n, np.nan)
    p = det.p
    if fit.slopes:  # `trend`: seconds since each point's block started
        since = times[idx] - times[idx] // det.block * det.block
        since = (since if n_series == 1 else np.tile(since, n_series)).astype(np.float64)
    for sqrt, models in fit.fits.items():
        mask = (fit.is_count[inv] == sqrt) & fit.enough[inv]
        if not mask.any():
            continue
        v = np.sqrt(np.maximum(values, 0.0)) if sqrt else values
        x = v[0, idx] if n_series == 1 else v[:, idx].ravel()
        best_s, best_f = np.full(n, np.inf), np.full(n, np.inf)
        found = zip(bases(det, times, v, times[idx]), models, strict=True)
        for b, (base, (centre, sp, ok, dev)) in enumerate(found):
            base_now = np.zeros(n) if base is None else base.ravel()
            if base is None and sqrt in fit.slopes:  # `trend`: the level's line at the point
                base_now = fit.slopes[sqrt][inv] * since
            if weekly is not None and b == 1:
                base_now = base_now + weekly.points(sqrt, inv)
            c, s = centre[inv], sp[inv]
            valid = mask & ok[inv] & np.isfinite(base_now)
            s = np.maximum(s, 1e-9 * np.maximum(1.0, np.abs(base_now + c)))
            f = dev[inv]  # the fit: the mean absolute deviation does not collapse on ties
            e = base_now + c
            better = valid & (f < best_f)
            if b >= 2 and p.long_margin > 1.0:  # a longer cycle where a shorter one fits about as well
                near = f < best_f * np.where(which >= 1, p.long_margin, 1.0)
                if p.long_step > 0:  # ... and foresees what the shorter one does not (a step)
                    with np.errstate(invalid="ignore"):
                        near &= np.abs(e - expected) > p.long_step * best_s
                better |= valid & near
            best_f = np.where(better, f, best_f)
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.where(better, (x - e) / s, z)
            expected = np.where(better, e, expected)
            best_s, which = np.where(better, s, best_s), np.where(better, b, which)
        spread = np.where(np.isfinite(best_s), best_s, spread)
        counts |= mask & sqrt
        if sqrt in fit.ranges:  # beyond the recent range by a margin: a range break
            top, bottom = (r[inv] for r in fit.ranges[sqrt])
            with np.errstate(invalid="ignore"):
                margin = np.maximum(p.range_tolerance * (top - bottom), p.range_spreads * best_s)
                high, low = top + margin, bottom - margin
                if sqrt:  # a count: one more (or less) than its range is not yet news
                    high = np.maximum(high, np.sqrt(top * top + 1.0))
                    low = np.minimum(low, np.sqrt(np.maximum(bottom * bottom - 1.0, 0.0)))
                beyond = (x > high) | (x < low)
            breaks |= mask & np.isfinite(best_s) & (fit.filled[inv] >= p.range_min) & beyond
        if sqrt and p.dispersion:  # counts judged by the negative binomial (`autocounts`)
            nb, floor_at = mask & np.isfinite(best_s), p.poisson_floor * fit.poisson[inv]
            with np.errstate(invalid="ignore"):  # other series' points (not counts): inf x 0, dropped
                got = autocounts.judge(x, expected, best_s, models[0][0][inv], floor_at)
            z, expected, spread, disp = autocounts.where(nb, got, (z, expected, spread, disp))
    return Judged(z, expected, spread, counts, breaks, which, disp)
