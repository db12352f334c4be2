"""`auto`: the default detector. How unusual is this point *for this series*?

1. Baseline. Level: the median of the last `window` points, spread 1.4826 x
   MAD. Seasonal, for each cycle the history covers (a day and a week, from
   the metric's interval): the median of the values one, two, ... `cycles`
   cycles ago, spread the robust spread of the recent residuals from that
   baseline. z is the distance in spreads from the seasonal baseline that
   explains the point best (the smallest), or from the level when no cycle
   is covered yet.
2. Surprise. |z| divided by the `quantile` (0.98) of the |z| of the series'
   own previous `reference` (2,000) points, floored at `min_z` (3): a noisy
   series must do something rarer than its usual noise; a calm one cannot
   alarm on a small wiggle.
3. Persistence. A point beyond the line alarms alone only when it is a spike
   (surprise >= `spike` x the line); otherwise the previous point must have
   been beyond the line too (its surprise counts: the smaller of the two).
4. Anomaly when that surprise >= `threshold` (1.0); score = surprise /
   (surprise + threshold), 0.5 on the line. Bounds: expected +/- the alarm
   line in value units.

The recent |z| values are derived state: kept per series in memory and
rebuilt from the stored history after a restart (the window covers it), so
results are the same live, in catch-up and in a backtest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from detectkd.config.types import Frozen
from detectkd.detectors.base import Current, Direction, FloatArray, History, IntArray, Result, skipped
from detectkd.detectors.robust import mad_uniform

DAY, WEEK = 86400, 7 * 86400


class Params(Frozen):
    window: int = Field(default=600, ge=20)  # points: level baseline and residual spread
    cycles: int = Field(default=3, ge=2)  # previous days / weeks in a seasonal baseline
    seasonal: bool = True
    reference: int = Field(default=2000, ge=50)  # points whose |z| define "unusual"
    quantile: float = Field(default=0.98, gt=0.5, lt=1.0)
    threshold: float = Field(default=1.0, gt=0)
    min_z: float = Field(default=3.0, ge=0)
    # One point alone alarms only this far beyond the line; otherwise it takes two in a row.
    spike: float = Field(default=2.0, ge=1.0)
    min_samples: int = Field(default=50, ge=10)
    # Cycles longer than this many points of history are left out (memory: 16 bytes a point).
    max_history: int = Field(default=8000, ge=100)
    # After a restart, the recent |z| are recomputed for at most this many stored points.
    rebuild: int = Field(default=500, ge=0)


@dataclass
class _Memo:
    times: list[int] = field(default_factory=list)
    z: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Fit:
    z: float  # signed
    expected: float
    spread: float


class AutoDetector:
    def __init__(self, p: Params, interval_seconds: int, detector_id: str = "auto") -> None:
        self.p, self.id = p, detector_id
        self.step = max(1, interval_seconds)
        cycles = (DAY, WEEK) if p.seasonal else ()
        self.periods = [
            c // self.step
            for c in cycles
            if c % self.step == 0 and c // self.step >= 2 and c // self.step * p.cycles <= p.max_history
        ]
        self._memo: dict[str, _Memo] = {}

    def window_seconds(self, interval_seconds: int) -> int:
        longest = max(self.periods, default=0) * self.p.cycles
        return (self.p.window + longest + self.p.reference) * interval_seconds

    def feature_names(self) -> tuple[str, ...]:
        return ()

    # -- the judgement -------------------------------------------------------------------

    def detect(self, history: History, point: Current) -> Result:
        if point.value is None:
            return skipped(self.id, None, "missing value")
        end = int(np.searchsorted(history.times, point.time, side="left"))
        times, values = history.times[:end], history.values[:end]
        memo = self._memo_for(point.series, times, values)
        fit = self._fit(times, values, point.time, point.value)
        previous = memo.z[-1] if memo.z else math.nan
        if point.time > (memo.times[-1] if memo.times else -1):
            memo.times.append(point.time)
            memo.z.append(abs(fit.z) if fit is not None else math.nan)
            if len(memo.z) > 2 * self.p.reference:
                del memo.times[: -self.p.reference], memo.z[: -self.p.reference]
        if fit is None:
            return skipped(self.id, point.value, f"cold start: fewer than {self.p.min_samples} points")
        past = np.asarray(memo.z[-self.p.reference - 1 : -1])
        past = past[np.isfinite(past)]
        ref = float(np.quantile(past, self.p.quantile)) if past.size >= self.p.min_samples else 0.0
        unusual = max(ref, self.p.min_z, 1e-9)  # |z| of the recent past's rare points
        line = unusual * self.p.threshold
        surprise = abs(fit.z) / unusual if math.isfinite(fit.z) else math.inf
        if surprise < self.p.spike * self.p.threshold:  # not a spike: it must persist
            before = previous / unusual if math.isfinite(previous) else 0.0
            surprise = min(surprise, before)
        anomaly = surprise >= self.p.threshold
        band = line * fit.spread
        direction: Direction = ("up" if fit.z > 0 else "down") if anomaly else None
        score = 1.0 if not math.isfinite(surprise) else surprise / (surprise + self.p.threshold)
        return Result(
            self.id,
            point.value,
            anomaly,
            score,
            fit.expected,
            fit.expected - band,
            fit.expected + band,
            direction,
        )

    def _fit(self, times: IntArray, values: FloatArray, now: int, value: float) -> _Fit | None:
        recent = values[-self.p.window :]
        recent = recent[np.isfinite(recent)]
        if recent.size < self.p.min_samples:
            return None
        best: _Fit | None = None
        for period in self.periods:
            fit = self._seasonal(times, values, now, value, period)
            if fit is not None and (best is None or abs(fit.z) < abs(best.z)):
                best = fit
        if best is not None:
            return best
        centre, spread = _robust(recent)
        return _Fit((value - centre) / spread, centre, spread)

    def _seasonal(
        self, times: IntArray, values: FloatArray, now: int, value: float, period: int
    ) -> _Fit | None:
        lag = period * self.step
        base_now = _cycle_median(times, values, np.asarray([now]), lag, self.p.cycles)[0]
        if not math.isfinite(base_now):
            return None
        t_recent = times[-self.p.window :]
        base = _cycle_median(times, values, t_recent, lag, self.p.cycles)
        resid = values[-self.p.window :] - base
        resid = resid[np.isfinite(resid)]
        if resid.size < self.p.min_samples:
            return None
        centre, spread = _robust(resid)
        expected = base_now + centre
        return _Fit((value - expected) / spread, expected, spread)

    # -- derived state ------------------------------------------------------------------

    def _memo_for(self, series: str, times: IntArray, values: FloatArray) -> _Memo:
        """The |z| of the previous points; rebuilt from history when it does not line up."""
        memo = self._memo.get(series)
        finite = np.flatnonzero(np.isfinite(values))
        last = int(times[finite[-1]]) if finite.size else None
        if memo is not None and (not memo.times or memo.times[-1] == last):
            return memo
        memo = self._memo[series] = _Memo()
        first = max(0, times.size - min(self.p.reference, self.p.rebuild))
        idx = first + np.flatnonzero(np.isfinite(values[first:]))
        z = self._z_many(times, values, idx)
        for i, zi in zip(idx.tolist(), z.tolist(), strict=True):
            if zi != zi:  # not vectorisable here (zero spread): the exact fit
                fit = self._fit(times[:i], values[:i], int(times[i]), float(values[i]))
                zi = abs(fit.z) if fit is not None else math.inf
            memo.times.append(int(times[i]))
            memo.z.append(zi if zi != math.inf else math.nan)
        return memo

    def _z_many(self, times: IntArray, values: FloatArray, idx: IntArray) -> FloatArray:
        """|z| of `_fit` for the points at `idx`, each against the history before it, all at
        once (a restart rebuilds hundreds per series). NaN where the exact path must decide
        (a zero spread, where `_robust` falls back to the mean deviation);
        inf where `_fit` gives no fit (cold start)."""
        w = self.p.window
        if idx.size == 0:
            return np.empty(0)
        at = idx
        pad = np.full(w, np.nan)  # a point with less than `w` points before it: NaN-padded
        padded = np.concatenate([pad, values])
        rows = np.lib.stride_tricks.sliding_window_view(padded, w)[at]  # values[i-w:i]
        finite = np.isfinite(rows)
        counts = finite.sum(axis=1)
        x = values[at]
        level_z, level_ok = _robust_z(rows, x, np.zeros(at.size))
        best = np.where(level_ok, level_z, np.nan)
        seasonal_best = np.full(at.size, np.nan)
        exact = ~level_ok
        for period in self.periods:
            lag = period * self.step
            lo = max(0, int(at.min()) - w)
            base = _cycle_median(times, values, times[lo : int(at.max()) + 1], lag, self.p.cycles)
            resid = np.concatenate([pad, values[lo : int(at.max()) + 1] - base])
            base_now = base[at - lo]
            windows = np.lib.stride_tricks.sliding_window_view(resid, w)[at - lo]
            enough = np.isfinite(windows).sum(axis=1) >= self.p.min_samples
            z, ok = _robust_z(windows, x, base_now)
            valid = np.isfinite(base_now) & enough
            exact |= valid & ~ok
            z = np.where(valid & ok, z, np.nan)
            better = np.isfinite(z) & (np.isnan(seasonal_best) | (np.abs(z) < np.abs(seasonal_best)))
            seasonal_best = np.where(better, z, seasonal_best)
        best = np.where(np.isfinite(seasonal_best), seasonal_best, best)
        result = np.abs(best)
        result[counts < self.p.min_samples] = np.inf  # `_fit` returns None: no fit
        result[exact & (counts >= self.p.min_samples)] = np.nan
        return result


def _robust(x: FloatArray) -> tuple[float, float]:
    """`mad_uniform`, floored like every detector's spread."""
    centre, spread = mad_uniform(x)
    return centre, max(spread, 1e-9 * max(1.0, abs(centre)))


def _robust_z(rows: FloatArray, x: FloatArray, offset: FloatArray) -> tuple[FloatArray, np.ndarray]:
    """Row-wise `_robust` of the finite values (median, 1.4826 x MAD, floored) and the z of
    `x` against offset + median; ok = False where the MAD is 0 (`_robust`'s mean fallback is
    left to the exact path) or a row has no finite value."""
    rows = np.where(np.isfinite(rows), rows, np.nan)
    centre = _row_median(rows)
    with np.errstate(invalid="ignore"):
        mad = _row_median(np.abs(rows - centre[:, None]))
    spread = 1.4826 * mad
    ok = np.isfinite(spread) & (spread > 0)
    spread = np.maximum(spread, 1e-9 * np.maximum(1.0, np.abs(centre)))
    with np.errstate(all="ignore"):
        z = (x - (offset + centre)) / spread
    return z, ok


def _row_median(rows: FloatArray) -> FloatArray:
    """np.median of each row's non-NaN values (NaN for an empty row), without a Python loop:
    sort (NaN last), then the middle one or the mean of the middle two, as numpy computes it."""
    ordered = np.sort(rows, axis=1)
    count = np.sum(~np.isnan(rows), axis=1)
    last = rows.shape[1] - 1
    lo = np.clip((count - 1) // 2, 0, last)[:, None]
    hi = np.clip(count // 2, 0, last)[:, None]
    a = np.take_along_axis(ordered, lo, axis=1)[:, 0]
    b = np.take_along_axis(ordered, hi, axis=1)[:, 0]
    return np.where(count > 0, (a + b) / 2, np.nan)


def _cycle_median(times: IntArray, values: FloatArray, at: IntArray, lag: int, cycles: int) -> FloatArray:
    """Per time in `at`: the median of the values 1..cycles lags earlier (NaN: fewer than 2)."""
    rows = []
    for d in range(1, cycles + 1):
        want = at - d * lag
        idx = np.clip(np.searchsorted(times, want), 0, max(times.size - 1, 0))
        hit = (times.size > 0) & (times[idx] == want) if times.size else np.zeros(at.size, bool)
        rows.append(np.where(hit, values[idx] if times.size else np.nan, np.nan))
    stack = np.vstack(rows)
    enough = np.isfinite(stack).sum(axis=0) >= 2
    with np.errstate(all="ignore"):
        med = np.nanmedian(np.where(enough, stack, 0.0), axis=0) if stack.size else np.empty(0)
    return np.where(enough, med, np.nan)


def build(p: Params, interval_seconds: int, detector_id: str | None) -> AutoDetector:
    return AutoDetector(p, interval_seconds, detector_id or "auto")
