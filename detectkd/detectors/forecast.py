"""`forecast`: additive Holt-Winters (exponential smoothing) with residual bounds.

The window before the point is laid on the metric's time grid (gaps are NaN)
and smoothed, oldest first, with

    level_t  = alpha (y_t - s_{t-m}) + (1 - alpha) (level_{t-1} + phi trend_{t-1})
    trend_t  = beta (level_t - level_{t-1}) + (1 - beta) phi trend_{t-1}
    season_t = gamma (y_t - level_t) + (1 - gamma) s_{t-m}

m = `season` in points (0 or no season: Holt's linear method), phi = `damping`.
A missing y_t is replaced by its own one-step forecast, so a gap neither
moves the state nor produces a residual. Initial state: the level is the
mean of the first season, the seasonal terms are the first seasons' mean
deviation per slot, the trend starts at 0.

Expected value: the h-step forecast at the point's time (h = periods since
the last grid slot). Spread: 1.4826 x MAD of the one-step residuals after
the first season (the warm-up), floored like the other detectors. Anomaly
when |x - forecast| > n_sigma x spread; score = z / (z + n_sigma).

Cost: one pass over the window per judged point (a Python loop, about
0.5 us a step): a 7-day window of 5-minute data is ~2,000 steps, ~1 ms.
"""

from __future__ import annotations

import math
import warnings
from datetime import timedelta

import numpy as np
from pydantic import Field, field_validator

from detectkd.config.types import Frozen, Window
from detectkd.detectors.base import (
    Current,
    Direction,
    FloatArray,
    History,
    Result,
    calibrated_lines,
    skipped,
    tails,
    z_to_score,
)
from detectkd.detectors.robust import mad_uniform
from detectkd.detectors.simple import window_of, window_seconds

_REL_FLOOR = 1e-9


class Params(Frozen):
    window_size: Window = timedelta(days=7)
    # The seasonal cycle: a duration ("1d", "7d") or points; 0, none or null: no seasonality.
    season: Window | None = timedelta(days=1)
    alpha: float = Field(default=0.2, gt=0, le=1)
    beta: float = Field(default=0.01, ge=0, le=1)  # 0: no trend
    gamma: float = Field(default=0.1, ge=0, le=1)
    damping: float = Field(default=0.98, gt=0, le=1)
    n_sigma: float = Field(default=3.0, gt=0)
    min_samples: int = Field(default=20, ge=5)
    # Also require the error to lie beyond the central 99.5 % of the window's own one-step errors.
    calibrated: bool = True

    @field_validator("season", mode="before")
    @classmethod
    def _no_season(cls, value: object) -> object:
        if value in (0, False) or (isinstance(value, str) and value.strip().lower() in ("0", "none", "off")):
            return None
        return value


class ForecastDetector:
    def __init__(self, p: Params, interval_seconds: int, detector_id: str = "forecast") -> None:
        self.p, self.id = p, detector_id
        self.step = max(1, interval_seconds)
        season = p.season
        if season is None:
            self.m = 0
        elif isinstance(season, int):
            self.m = season
        else:
            self.m = int(season.total_seconds()) // self.step
        if self.m == 1:
            self.m = 0  # a one-point season is no season

    def window_seconds(self, interval_seconds: int) -> int:
        return window_seconds(self.p.window_size, interval_seconds)

    def feature_names(self) -> tuple[str, ...]:
        return ()

    def detect(self, history: History, point: Current) -> Result:
        if point.value is None:
            return skipped(self.id, None, "missing value")
        values, times = window_of(history, point.time, self.p.window_size)
        finite = np.isfinite(values)
        if int(finite.sum()) < self.p.min_samples:
            return skipped(self.id, point.value, f"cold start: fewer than {self.p.min_samples} points")
        grid = _on_grid(values[finite], times[finite], point.time, self.step)
        # Seasonality needs two seasons of history; until then, Holt's linear method.
        m = self.m if self.m and grid.shape[0] - 1 >= 2 * self.m else 0
        expected, residuals = smooth(grid, m, self.p)
        resid = residuals[np.isfinite(residuals)]
        if resid.shape[0] < max(5, self.p.min_samples // 2) or not math.isfinite(expected):
            return skipped(self.id, point.value, "cold start: too few residuals after warm-up")
        spread = max(mad_uniform(resid)[1], _REL_FLOOR * max(1.0, abs(expected)))
        n = self.p.n_sigma
        below, above = (n, n)
        if self.p.calibrated:
            lo, hi = tails(np.sort(resid))
            below, above = calibrated_lines(n, 0.0, spread, lo, hi)
        lower, upper = expected - below * spread, expected + above * spread
        v = point.value
        z = abs(v - expected) / spread
        anomaly = v > upper or v < lower
        direction: Direction = ("up" if v > upper else "down") if anomaly else None
        line = above if v >= expected else below
        return Result(self.id, v, anomaly, z_to_score(z, line), expected, lower, upper, direction)


def _on_grid(values: FloatArray, times: np.ndarray, now: int, step: int) -> FloatArray:
    """The window as a regular series ending at `now` (the last slot, NaN, is the point)."""
    first = int(times[0])
    n = (now - first) // step + 1
    grid = np.full(n, np.nan)
    idx = (times - first) // step
    grid[idx[idx < n - 1]] = values[idx < n - 1]
    return grid


def smooth(grid: FloatArray, m: int, p: Params) -> tuple[float, FloatArray]:
    """Run Holt-Winters over grid[:-1]; (forecast for grid[-1], one-step residuals after warm-up)."""
    y = grid[:-1].tolist()
    n = len(y)
    alpha, beta, gamma, phi = p.alpha, p.beta, p.gamma, p.damping
    season = [0.0] * m
    start = m if m else 1
    if m:
        head = np.asarray(y[: (n // m) * m]).reshape(-1, m)[: max(1, min(4, n // m - 1))]
        level = float(np.nanmean(head[0])) if np.isfinite(head[0]).any() else float(np.nanmean(y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slots become 0 below
            slot_dev = np.nanmean(head - np.nanmean(head, axis=1, keepdims=True), axis=0)
        season = [float(s) if math.isfinite(s) else 0.0 for s in slot_dev]
    else:
        first = next(v for v in y if math.isfinite(v))
        level = first
    trend = 0.0
    residuals = np.full(n, np.nan)
    for t in range(start, n):
        s_old = season[t % m] if m else 0.0
        forecast = level + phi * trend + s_old
        v = y[t]
        if not math.isfinite(v):
            v = forecast  # a gap: carry the state forward without a residual
        else:
            residuals[t] = v - forecast
        previous = level
        level = alpha * (v - s_old) + (1 - alpha) * (previous + phi * trend)
        trend = beta * (level - previous) + (1 - beta) * phi * trend
        if m:
            season[t % m] = gamma * (v - level) + (1 - gamma) * s_old
    # The point sits one slot after the last history slot.
    expected = level + phi * trend + (season[n % m] if m else 0.0)
    return expected, residuals[start:]


def build(p: Params, interval_seconds: int, detector_id: str | None) -> ForecastDetector:
    return ForecastDetector(p, interval_seconds, detector_id or "forecast")
