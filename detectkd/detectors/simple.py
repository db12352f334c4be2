"""`iqr`, `change`, `flatline` and `missing_data`: small, explainable detectors.

Every score is in [0, 1] with 0.5 exactly at the detector's alarm line:
score = d / (d + limit) for a distance d and its limit.

iqr:       Tukey fences. q1, q3 of the window; anomaly when x < q1 - k*IQR or
           x > q3 + k*IQR; d = distance beyond the nearer quartile in IQRs,
           limit = k (`multiplier`, 1.5). Expected: the median.
change:    x against a reference: the previous value (`compare_to:
           previous`), the same period a week ago (`last_week`) or any lag
           (`1d`, `2h`). `mode: percent` (change / |reference| * 100) or
           `absolute`; limits `max_increase` / `max_decrease` (either may be
           left out: that direction never alarms).
flatline:  a stuck sensor. The run of values equal to the current one (within
           `tolerance`) including it; anomaly at `min_points` (score 0.5
           there: run / (run + min_points)). Also `max_zero_share` and
           `max_missing_share` over the window (score share / (share + max)).
missing_data: no value for `max_missing_periods` periods in a row, counted
           from the stored history (NULL points), so it survives restarts.
           With `max_age` the value is read as the epoch seconds of the newest
           source row (freshness) and the anomaly is data older than that.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal

import numpy as np
from pydantic import AliasChoices, Field, model_validator

from detectkd.config.types import Duration, Frozen, Window
from detectkd.detectors.base import (
    Current,
    Direction,
    FloatArray,
    History,
    Result,
    skipped,
    tails,
    window_bounds,
)

WEEK = 7 * 86400


def window_of(history: History, now: int, size: int | timedelta) -> tuple[FloatArray, np.ndarray]:
    """(values, times) of the history strictly before `now`, the last `size` points or seconds."""
    start, end = window_bounds(history.times, now, size)
    return history.values[start:end], history.times[start:end]


def window_seconds(size: int | timedelta, interval_seconds: int) -> int:
    return size * interval_seconds if isinstance(size, int) else int(size.total_seconds())


def ratio_score(d: float, limit: float) -> float:
    if not math.isfinite(d):
        return 1.0
    d = max(d, 0.0)
    return d / (d + limit) if limit > 0 else 1.0


# -- iqr ---------------------------------------------------------------------------------


class IqrParams(Frozen):
    window_size: Window = timedelta(days=7)
    multiplier: float = Field(default=1.5, gt=0)
    min_samples: int = Field(default=10, ge=4)
    # Also require the point to lie beyond the central 99.5 % of the window's values.
    calibrated: bool = True


class IqrDetector:
    def __init__(self, p: IqrParams, detector_id: str = "iqr") -> None:
        self.p, self.id = p, detector_id

    def window_seconds(self, interval_seconds: int) -> int:
        return window_seconds(self.p.window_size, interval_seconds)

    def feature_names(self) -> tuple[str, ...]:
        return ()

    def detect(self, history: History, point: Current) -> Result:
        if point.value is None:
            return skipped(self.id, None, "missing value")
        values, _ = window_of(history, point.time, self.p.window_size)
        x = values[np.isfinite(values)]
        if x.shape[0] < self.p.min_samples:
            return skipped(self.id, point.value, f"cold start: fewer than {self.p.min_samples} points")
        q1, median, q3 = (float(v) for v in np.percentile(x, [25, 50, 75]))
        iqr = max(q3 - q1, 1e-9 * max(1.0, abs(median)))
        k = k_lo = k_hi = self.p.multiplier
        if self.p.calibrated:  # fences at least at the window's own routine extremes
            lo, hi = tails(np.sort(x))
            k_lo, k_hi = max(k, (q1 - lo) / iqr), max(k, (hi - q3) / iqr)
        lower, upper = q1 - k_lo * iqr, q3 + k_hi * iqr
        v = point.value
        d = max(q1 - v, v - q3, 0.0) / iqr
        anomaly = v < lower or v > upper
        direction: Direction = ("up" if v > upper else "down") if anomaly else None
        k = k_hi if v > q3 else k_lo if v < q1 else k
        return Result(self.id, v, anomaly, ratio_score(d, k), median, lower, upper, direction)


# -- change ------------------------------------------------------------------------------


class ChangeParams(Frozen):
    compare_to: Literal["previous", "last_week"] | Duration = "previous"
    mode: Literal["percent", "absolute"] = "percent"
    max_increase: float | None = Field(default=None, gt=0)
    max_decrease: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some_limit(self) -> ChangeParams:
        if self.max_increase is None and self.max_decrease is None:
            raise ValueError("change needs `max_increase`, `max_decrease` or both")
        return self

    def lag_seconds(self, interval_seconds: int) -> int:
        if self.compare_to == "previous":
            return interval_seconds
        if self.compare_to == "last_week":
            return WEEK
        assert isinstance(self.compare_to, timedelta)
        return int(self.compare_to.total_seconds())


class ChangeDetector:
    def __init__(self, p: ChangeParams, interval_seconds: int, detector_id: str = "change") -> None:
        self.p, self.id = p, detector_id
        self._lag = p.lag_seconds(interval_seconds)

    def window_seconds(self, interval_seconds: int) -> int:
        return self._lag + interval_seconds

    def feature_names(self) -> tuple[str, ...]:
        return ()

    def detect(self, history: History, point: Current) -> Result:
        if point.value is None:
            return skipped(self.id, None, "missing value")
        target = point.time - self._lag
        i = int(np.searchsorted(history.times, target, side="left"))
        if i >= len(history) or int(history.times[i]) != target or not math.isfinite(history.values[i]):
            return skipped(self.id, point.value, "no reference value")
        ref, v = float(history.values[i]), point.value
        if self.p.mode == "percent":
            if ref == 0:
                return skipped(self.id, v, "reference value is 0: percent change undefined")
            change = (v - ref) / abs(ref) * 100.0
            scale = abs(ref) / 100.0
        else:
            change, scale = v - ref, 1.0
        up, down = self.p.max_increase, self.p.max_decrease
        upper = ref + up * scale if up is not None else None
        lower = ref - down * scale if down is not None else None
        limit = up if change >= 0 else down
        if limit is None:
            return Result(self.id, v, False, 0.0, ref, lower, upper)
        anomaly = abs(change) > limit
        direction: Direction = ("up" if change > 0 else "down") if anomaly else None
        return Result(self.id, v, anomaly, ratio_score(abs(change), limit), ref, lower, upper, direction)


# -- flatline ----------------------------------------------------------------------------


class FlatlineParams(Frozen):
    min_points: int = Field(default=10, ge=2)  # this many equal values in a row (with the current)
    tolerance: float = Field(default=0.0, ge=0)
    window_size: Window = 100
    max_zero_share: float | None = Field(default=None, gt=0, le=1)
    max_missing_share: float | None = Field(default=None, gt=0, le=1)


class FlatlineDetector:
    def __init__(self, p: FlatlineParams, detector_id: str = "flatline") -> None:
        self.p, self.id = p, detector_id

    def window_seconds(self, interval_seconds: int) -> int:
        return max(window_seconds(self.p.window_size, interval_seconds), self.p.min_points * interval_seconds)

    def feature_names(self) -> tuple[str, ...]:
        return ()

    def detect(self, history: History, point: Current) -> Result:
        if point.value is None:
            return skipped(self.id, None, "missing value")
        p, v = self.p, point.value
        values, _ = window_of(history, point.time, p.window_size)
        if values.shape[0] < p.min_points - 1:
            return skipped(self.id, v, f"cold start: fewer than {p.min_points} points")
        run = 1
        for x in values[::-1]:
            if not math.isfinite(x) or abs(x - v) > p.tolerance:
                break
            run += 1
        scores = [(ratio_score(run, p.min_points), run >= p.min_points)]
        with_current = np.append(values, v)
        if p.max_zero_share is not None:
            known = with_current[np.isfinite(with_current)]
            share = float(np.mean(known == 0)) if known.shape[0] else 0.0
            scores.append((ratio_score(share, p.max_zero_share), share > p.max_zero_share))
        if p.max_missing_share is not None:
            share = float(np.mean(~np.isfinite(with_current)))
            scores.append((ratio_score(share, p.max_missing_share), share > p.max_missing_share))
        score, anomaly = max(scores)
        return Result(self.id, v, anomaly, score, v if anomaly else None, direction=None)


# -- missing data / freshness --------------------------------------------------------------


STALENESS_COLUMNS = ("last_event_time", "last_known_timestamp")  # DetectK's, read from the rows


class MissingParams(Frozen):
    # Periods in a row without a value that make an anomaly (DetectK: `consecutive_missing`).
    max_missing_periods: int = Field(
        default=3, ge=1, validation_alias=AliasChoices("max_missing_periods", "consecutive_missing")
    )
    max_age: Duration | None = None  # freshness: the value is the newest row's epoch seconds
    treat_zero_as_missing: bool = False  # a 0 counts as a missing value (DetectK)
    # DetectK: anomalous when the row's `last_event_time` (or `last_known_timestamp`) column is
    # older than this at the end of the period. The column is collected automatically.
    max_staleness_minutes: float | None = Field(default=None, gt=0)


class MissingDataDetector:
    """Judges missing points too: `judges_missing` tells the runner not to skip them."""

    judges_missing = True

    def __init__(self, p: MissingParams, interval_seconds: int, detector_id: str = "missing_data") -> None:
        self.p, self.id = p, detector_id
        self._step = interval_seconds

    def window_seconds(self, interval_seconds: int) -> int:
        return (self.p.max_missing_periods + 1) * interval_seconds

    def _staleness(self, point: Current) -> Result | None:
        """`max_staleness_minutes` against the row's `last_event_time` (or
        `last_known_timestamp`); None without one. An empty aggregate's time (ClickHouse's
        `max()` of no rows is 1970-01-01) is as stale as it gets, which is what it means."""
        if self.p.max_staleness_minutes is None:
            return None
        last = next(
            (t for c in STALENESS_COLUMNS if math.isfinite(t := point.features.get(f"epoch:{c}", math.nan))),
            None,
        )
        if last is None:
            return None
        age, limit = point.time + self._step - last, self.p.max_staleness_minutes * 60
        anomaly = age > limit
        return Result(
            self.id, point.value, anomaly, ratio_score(age, limit), direction="down" if anomaly else None
        )

    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"epoch:{c}" for c in STALENESS_COLUMNS) if self.p.max_staleness_minutes else ()

    def detect(self, history: History, point: Current) -> Result:
        p = self.p
        stale = self._staleness(point)
        if stale is not None and stale.anomaly:  # DetectK: stale data alerts whatever the value
            return stale
        if p.treat_zero_as_missing and point.value == 0:
            point = Current(point.time, None, point.features, point.series)
        if stale is not None and point.value is not None:
            return stale
        if point.value is not None and p.max_age is not None:
            age = point.time + self._step - point.value  # at the end of the period
            limit = p.max_age.total_seconds()
            anomaly = age > limit
            score = ratio_score(age, limit)
            return Result(self.id, point.value, anomaly, score, direction="down" if anomaly else None)
        if point.value is not None:
            return Result(self.id, point.value, False, 0.0)
        # Periods in a row without a value, this one included, read from the stored history:
        # a NULL point and a period with no stored row at all both count.
        values, times = window_of(history, point.time, (p.max_missing_periods + 1) * self._step)
        zero_missing = p.treat_zero_as_missing
        have = {
            int(t)
            for t, x in zip(times, values, strict=True)
            if math.isfinite(x) and not (zero_missing and x == 0)
        }
        if p.max_missing_periods > 1 and int(np.searchsorted(history.times, point.time, side="left")) == 0:
            return skipped(self.id, None, "no history yet")  # the periods before: unknown yet
        run = 1
        while run < p.max_missing_periods and point.time - run * self._step not in have:
            run += 1
        anomaly = run >= p.max_missing_periods
        return Result(
            self.id,
            None,
            anomaly,
            ratio_score(run, p.max_missing_periods),
            direction="down" if anomaly else None,
        )
