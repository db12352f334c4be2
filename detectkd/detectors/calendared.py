"""A detector under a metric's calendar (`detectkd.config.calendars`).

`calendared(detector, calendar)` is what the runtime builds:

- `like` days: a detector that looks seasonal history up by time (`auto`: the value one,
  two, ... weeks ago) is given the calendar's `like_shift`, so it looks that weekday's
  history up instead; detectors that group by weekday features get the named weekday's
  features from `SeriesMemory.features_at` (nothing to do here).
- `exclude` periods: the detector sees the period without a value (as its window does,
  `SeriesWindow`'s mask), so no baseline, reference or derived state learns from it, and
  the result is skipped with the event named: the period is neither alerted nor resolved.

Without calendars (or without those modes) the detector is returned as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from detectkd.config.calendars import EXCLUDED, Calendar
from detectkd.detectors.base import BatchDetector, Current, Detector, History, IntArray, Result, skipped


@runtime_checkable
class LikeAware(Protocol):
    """A detector whose seasonal baselines look history up by time (not by features)."""

    like_shift: Any  # Callable[[IntArray], IntArray] | None: seconds back to the named weekday


def calendared(detector: Detector, calendar: Calendar | None) -> Detector:
    if calendar is None:
        return detector
    if "like" in calendar.modes and isinstance(detector, LikeAware):
        detector.like_shift = calendar.like_shift
    if "exclude" not in calendar.modes:
        return detector
    if isinstance(detector, BatchDetector):
        return ExcludingBatch(detector, calendar)
    return Excluding(detector, calendar)


class Excluding:
    """Periods in an `exclude` event: judged without their value, the result skipped."""

    def __init__(self, inner: Detector, calendar: Calendar) -> None:
        self.inner, self.calendar, self.id = inner, calendar, inner.id

    def __getattr__(self, name: str) -> Any:  # forget, state_series, ... (not detect_many)
        if name == "detect_many" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def window_seconds(self, interval_seconds: int) -> int:
        return self.inner.window_seconds(interval_seconds)

    def feature_names(self) -> tuple[str, ...]:
        return self.inner.feature_names()

    def detect(self, history: History, point: Current) -> Result:
        why = self._why(point.time)
        if why is None:
            return self.inner.detect(history, point)
        self.inner.detect(history, replace(point, value=None))
        return skipped(self.id, point.value, why)

    def _why(self, ts: int) -> str | None:
        hit = self.calendar.at(ts)
        return EXCLUDED + hit.during if hit is not None and hit.mode == "exclude" else None


class ExcludingBatch(Excluding):
    def __init__(self, inner: Detector, calendar: Calendar) -> None:
        super().__init__(inner, calendar)
        assert isinstance(inner, BatchDetector)
        self.batch: BatchDetector = inner

    def detect_many(self, history: History, points: Sequence[Current]) -> list[Result]:
        times: IntArray = np.fromiter((p.time for p in points), np.int64, len(points))
        out = self.calendar.excluded(times)
        if not out.any():
            return self.batch.detect_many(history, points)
        seen = [replace(p, value=None) if o else p for p, o in zip(points, out.tolist(), strict=True)]
        results = self.batch.detect_many(history, seen)
        return [
            skipped(self.id, p.value, self._why(p.time) or EXCLUDED + "calendar") if o else r
            for p, o, r in zip(points, out.tolist(), results, strict=True)
        ]

    def forget(self, series: str) -> None:
        self.batch.forget(series)
