"""The detector contract.

`detect(history, point)` judges one point against history that never
contains the point itself (point-in-time: the same answer live, in catch-up
and in backtest). Every result carries value, expected, bounds, a direction
and a score in [0, 1] where 0.5 is the detector's own alarm line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Direction = Literal["up", "down"] | None
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
StateArray = npt.NDArray[np.float64] | npt.NDArray[np.float32]  # kept state: double or single


@dataclass(frozen=True)
class History:
    """Past points of one series, oldest first. Values are NaN where missing."""

    times: IntArray
    values: FloatArray
    features: dict[str, FloatArray]
    # Identifies this history's content up to appends: a daemon window changes it whenever a
    # point is inserted or replaced (not appended). Detectors may keep derived state per
    # series while it stays the same; 0 = unknown, derive nothing.
    revision: int = 0

    def __len__(self) -> int:
        return int(self.times.shape[0])

    @staticmethod
    def empty(feature_names: tuple[str, ...] = ()) -> History:
        return History(
            np.empty(0, np.int64),
            np.empty(0, np.float64),
            {n: np.empty(0, np.float64) for n in feature_names},
        )

    def appended(self, p: Current) -> History:
        """This history with `p` after it (features left out)."""
        v = math.nan if p.value is None else p.value
        return History(np.append(self.times, p.time), np.append(self.values, v), {})


@dataclass(frozen=True)
class Current:
    time: int
    value: float | None
    features: dict[str, float]
    series: str = ""  # lets a detector keep derived, rebuildable state per series


@dataclass(frozen=True, slots=True)
class Result:
    detector: str
    value: float | None
    anomaly: bool
    score: float
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    direction: Direction = None
    skipped: str | None = None  # why no judgement was made (missing value, cold start)
    # The baseline that judged, when not the detector's usual one (a staged first start:
    # "the level of the last 400 points (seasonal baselines loading: 2 of 3 days)").
    basis: str | None = None

    @property
    def deviation_percent(self) -> float | None:
        if self.value is None or self.expected is None or self.expected == 0:
            return None
        return (self.value - self.expected) / abs(self.expected) * 100.0


class Detector(Protocol):
    id: str

    def detect(self, history: History, point: Current) -> Result: ...

    def window_seconds(self, interval_seconds: int) -> int:
        """How much history this detector reads, in seconds (0 = none)."""
        ...

    def feature_names(self) -> tuple[str, ...]: ...


@runtime_checkable
class BatchDetector(Protocol):
    """A detector that judges a run of consecutive points of one series at once.

    `detect_many(history, points)` must return exactly what `detect` would, called
    point by point with each point appended to the history after it was judged
    (replays and catch-up use it; live checks pass one point). `forget(series)` drops
    derived per-series state when the series is forgotten."""

    def detect_many(self, history: History, points: Sequence[Current]) -> list[Result]: ...

    def forget(self, series: str) -> None: ...


@runtime_checkable
class RollbackDetector(Protocol):
    """A detector with per-series state its window cannot give back (`auto`'s weekly profile):
    `checkpoint(series)` when a run first touches the series (None: nothing to keep), and
    `rolled_back(series, checkpoint)` after the run was undone and the series' caches were
    forgotten (`runtime.memory.SeriesMemory.rollback`): the state as it was before the run."""

    def checkpoint(self, series: str) -> object | None: ...

    def rolled_back(self, series: str, checkpoint: object) -> None: ...


@runtime_checkable
class ManySeriesDetector(Protocol):
    """A batch detector that derives the per-series state of many series at once before
    their points are judged series by series (a many-series metric's run): `prepare(pairs
    of series and history, and the run's points per series)` must leave the detector judging
    exactly as it would have without it (it saves array operations, not judgements)."""

    def prepare(
        self,
        histories: Iterable[tuple[str, Callable[[], History]]],
        points: Mapping[str, Sequence[Current]] | None = None,
    ) -> None: ...


@runtime_checkable
class StatefulDetector(Protocol):
    """A detector whose derived per-series state is costly to rebuild from the window: a
    graceful restart keeps it (`detectkd.runtime.snapshot`). The state is one float array
    (double or single precision) and a few numbers per series; `import_state` must leave
    the detector judging exactly as it would have with the state it exported. `STATE_VERSION`
    names what the state means: bumped with any change of it, so a snapshot written before
    is not adopted."""

    STATE_VERSION: int

    def state_series(self) -> list[str]: ...

    def export_state(self, series: str) -> tuple[StateArray, tuple[float, ...]] | None: ...

    def import_state(self, series: str, data: StateArray, scalars: tuple[float, ...]) -> None: ...


def window_bounds(times: IntArray, now: int, size: int | timedelta) -> tuple[int, int]:
    """[start, end) of the history strictly before `now`: the last `size` points or seconds."""
    end = int(np.searchsorted(times, now, side="left"))
    if isinstance(size, int):
        return max(0, end - size), end
    return int(np.searchsorted(times, now - int(size.total_seconds()), side="left")), end


def skipped(detector: str, value: float | None, reason: str) -> Result:
    return Result(detector=detector, value=value, anomaly=False, score=0.0, skipped=reason)


def z_to_score(z: float, n_sigma: float) -> float:
    """Map a distance in sigmas to [0, 1): z / (z + n_sigma); 0.5 exactly at the alarm line."""
    if not np.isfinite(z):
        return 1.0
    z = abs(z)
    return float(z / (z + n_sigma)) if n_sigma > 0 else 1.0


# Calibrated detectors also want a point beyond what their own window routinely shows:
# outside the central CALIBRATION share of the window (0.05 % in each tail).
CALIBRATION = 0.999


def sorted_quantile(sorted_values: Sequence[float] | FloatArray, q: float) -> float:
    """The `q` quantile (linear, as numpy) of already sorted, non-empty values."""
    n = len(sorted_values)
    pos = q * (n - 1)
    lo = int(pos)
    a, b = float(sorted_values[lo]), float(sorted_values[min(lo + 1, n - 1)])
    return a + (b - a) * (pos - lo)


def tails(sorted_values: Sequence[float] | FloatArray) -> tuple[float, float]:
    """The (1 - CALIBRATION) / 2 and (1 + CALIBRATION) / 2 quantiles of sorted values."""
    return (
        sorted_quantile(sorted_values, (1 - CALIBRATION) / 2),
        sorted_quantile(sorted_values, (1 + CALIBRATION) / 2),
    )


def calibrated_lines(
    n_sigma: float, centre: float, spread: float, lo: float, hi: float
) -> tuple[float, float]:
    """Alarm lines below and above `centre`, in spreads: at least `n_sigma`, and beyond the
    window's own routine extremes `lo` / `hi` (values at the calibration tails)."""
    return max(n_sigma, (centre - lo) / spread), max(n_sigma, (hi - centre) / spread)


def judge_seconds(d: Detector, interval_seconds: int) -> int:
    """How much history detector `d` judges from (its `judge_seconds` when it has one, as
    `auto`'s level baseline: the rest of its window may load later); else its window."""
    staged = getattr(d, "judge_seconds", None)
    return int(staged(interval_seconds)) if staged is not None else d.window_seconds(interval_seconds)
