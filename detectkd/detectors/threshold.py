"""Static thresholds with DetectK's operators (and its `percent` mode)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from detectkd.config.types import Frozen
from detectkd.detectors.base import Current, Direction, History, Result, skipped

Operator = Literal[
    "greater_than",
    "greater_equal",
    "less_than",
    "less_equal",
    "equals",
    "not_equals",
    "between",
    "outside",
]


class Params(Frozen):
    threshold: float
    operator: Operator = "greater_than"
    upper_threshold: float | None = None
    percent: bool = False
    baseline: float | None = None
    tolerance: float = 0.001

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if self.operator in ("between", "outside"):
            if self.upper_threshold is None:
                raise ValueError(f"operator {self.operator!r} needs `upper_threshold`")
            if self.upper_threshold < self.threshold:
                raise ValueError("`upper_threshold` must be >= `threshold`")
        if self.percent and not self.baseline:
            raise ValueError("`percent: true` needs a non-zero `baseline`")
        return self


def compare(op: Operator, x: float, lo: float, hi: float | None, tol: float) -> bool:
    if op == "greater_than":
        return x > lo
    if op == "greater_equal":
        return x >= lo
    if op == "less_than":
        return x < lo
    if op == "less_equal":
        return x <= lo
    if op == "equals":
        return abs(x - lo) <= tol
    if op == "not_equals":
        return abs(x - lo) > tol
    assert hi is not None
    if op == "between":
        return lo <= x <= hi
    return x < lo or x > hi  # outside


class ThresholdDetector:
    def __init__(self, params: Params, detector_id: str = "threshold") -> None:
        self.p = params
        self.id = detector_id

    def window_seconds(self, interval_seconds: int) -> int:
        return 0

    def feature_names(self) -> tuple[str, ...]:
        return ()

    def detect(self, history: History, point: Current) -> Result:
        p = self.p
        if point.value is None:
            return skipped(self.id, None, "missing value")
        x = point.value
        if p.percent:
            assert p.baseline
            x = (point.value - p.baseline) / abs(p.baseline) * 100.0
        anomaly = compare(p.operator, x, p.threshold, p.upper_threshold, p.tolerance)
        lower, upper = self._bounds()
        distance = self._distance(x)
        scale = max(abs(p.threshold), 1e-9)
        closeness = min(1.0, distance / scale)
        score = 0.5 + 0.5 * closeness if anomaly else 0.5 * (1.0 - closeness)
        return Result(
            detector=self.id,
            value=point.value,
            anomaly=anomaly,
            score=score,
            expected=None,
            lower=lower,
            upper=upper,
            direction=self._direction(x) if anomaly else None,
        )

    def _to_value(self, t: float) -> float:
        """A threshold back in value units (percent mode)."""
        if self.p.percent and self.p.baseline:
            return self.p.baseline + t / 100.0 * abs(self.p.baseline)
        return t

    def _bounds(self) -> tuple[float | None, float | None]:
        p = self.p
        lo, hi = (
            self._to_value(p.threshold),
            (self._to_value(p.upper_threshold) if p.upper_threshold is not None else None),
        )
        if p.operator in ("greater_than", "greater_equal"):
            return None, lo
        if p.operator in ("less_than", "less_equal"):
            return lo, None
        if p.operator == "outside":
            return lo, hi
        return None, None

    def _distance(self, x: float) -> float:
        p = self.p
        if p.operator in ("between", "outside"):
            assert p.upper_threshold is not None
            if x < p.threshold:
                return p.threshold - x
            if x > p.upper_threshold:
                return x - p.upper_threshold
            return min(x - p.threshold, p.upper_threshold - x)
        return abs(x - p.threshold)

    def _direction(self, x: float) -> Direction:
        p = self.p
        if p.operator in ("greater_than", "greater_equal"):
            return "up"
        if p.operator in ("less_than", "less_equal"):
            return "down"
        if p.operator == "outside":
            return "down" if x < p.threshold else "up"
        if p.operator == "not_equals":
            return "up" if x > p.threshold else "down"
        return None
