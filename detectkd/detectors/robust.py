"""`zscore` and `mad`: distance from a (weighted, optionally seasonal) baseline.

Baseline and spread over the history window:
  zscore: weighted mean and weighted standard deviation;
  mad:    weighted median and 1.4826 x weighted median absolute deviation
          (falls back to 1.2533 x mean absolute deviation when more than half
          of the history is one value, so sparse counters are not all anomalies).
          Unweighted (`use_weighted: false`): numpy's median (the mean of the two
          middle values for an even count), kept incrementally in sorted windows per
          series and seasonal group (`detectkd.detectors.rolling`), same numbers.
Weights follow DetectK: w_i = exp(-exp_decay_factor * k_i), k_i = how many
samples newer than i in the selected history (0 for the newest); `half_life`
(points or a duration) sets the factor to ln 2 / half_life instead.
Anomaly: |x - expected| > n_sigma * spread. Score: z / (z + n_sigma).
"""

from __future__ import annotations

import functools
import math
from collections import deque
from datetime import timedelta
from typing import Any, Literal

import numpy as np
from pydantic import Field

from detectkd.config.types import Frozen, Window
from detectkd.detectors.base import (
    Current,
    FloatArray,
    History,
    IntArray,
    Result,
    calibrated_lines,
    skipped,
    tails,
    window_bounds,
    z_to_score,
)
from detectkd.detectors.rolling import SortedWindow

# A spread is never smaller than this share of the baseline's magnitude, so a
# perfectly constant history gives large but finite scores, not infinities.
_REL_FLOOR = 1e-9


class Feature(Frozen):
    name: str
    expression: str | None = None  # DetectK's SQL expression; detectkd reads the value from context


class Params(Frozen):
    window_size: Window = timedelta(days=30)
    n_sigma: float = Field(default=3.0, gt=0)
    use_weighted: bool = True
    exp_decay_factor: float = Field(default=0.1, ge=0)
    half_life: Window | None = None
    seasonal_features: list[str | Feature] = Field(default_factory=list)
    use_combined_seasonality: bool = False
    min_samples: int = Field(default=10, ge=2)
    # Also require the point to lie beyond the central 99.5 % of its (group's) window: the
    # score is calibrated to the series (DetectK's zscore and mad: off, as DetectK).
    calibrated: bool = False
    # Fit a straight line to the window and judge the point against the line's value at
    # its time (a steady trend is not an anomaly).
    detrend: bool = False

    def feature_names(self) -> tuple[str, ...]:
        return tuple(f if isinstance(f, str) else f.name for f in self.seasonal_features)


@functools.lru_cache(maxsize=256)
def weights_for(n: int, decay: float) -> FloatArray:
    """The weights of a window of `n` points, newest last (read-only: one array per (n,
    decay) is shared by every check, so a live check does not compute it again)."""
    if decay <= 0:
        w = np.full(n, 1.0 / n)
    else:
        w = np.exp(-decay * np.arange(n - 1, -1, -1, dtype=np.float64))
        w = w / float(w.sum())
    w.flags.writeable = False
    return w


def weighted_median(x: FloatArray, w: FloatArray) -> float:
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    idx = int(np.searchsorted(cum, 0.5 * cum[-1]))
    return float(x[order][min(idx, x.shape[0] - 1)])


def mad_baseline(x: FloatArray, w: FloatArray) -> tuple[float, float]:
    centre = weighted_median(x, w)
    dev = np.abs(x - centre)
    spread = 1.4826 * weighted_median(dev, w)
    if spread == 0.0:
        spread = 1.2533 * float(np.sum(w * dev) / np.sum(w))
    return centre, spread


def mad_uniform(x: FloatArray, w: FloatArray | None = None) -> tuple[float, float]:
    """Unweighted: the median, 1.4826 x the median of |x - median| (numpy's median: the mean
    of the two middle values for an even count)."""
    centre = float(np.median(x))
    dev = np.abs(x - centre)
    spread = 1.4826 * float(np.median(dev))
    if spread == 0.0:
        spread = 1.2533 * float(dev.mean())
    return centre, spread


def zscore_baseline(x: FloatArray, w: FloatArray) -> tuple[float, float]:
    """The weighted mean and standard deviation; the deviations scaled by the largest before they
    are squared (a value like 1e300 in the window: its square overflowed, with numpy's warning
    at every check, where the deviation itself is finite); the same up to rounding."""
    total = float(np.sum(w))
    centre = float(np.sum(w * x) / total)
    dev = np.abs(x - centre)
    scale = float(np.max(dev, where=w > 0, initial=0.0))  # (a point of weight 0 counts for nothing)
    if not 0.0 < scale < math.inf:  # all equal (0), an infinite deviation, or NaN (none weighed)
        return centre, scale if scale == scale and centre == centre else math.nan
    scaled = np.divide(dev, scale, out=np.zeros_like(dev), where=w > 0)
    var = float(np.sum(w * scaled**2) / total)
    return centre, scale * math.sqrt(max(var, 0.0))


def _detrended(values: FloatArray, times: IntArray, usable: np.ndarray, now: int) -> tuple[FloatArray, float]:
    """Residuals from a least-squares line over the usable points, and the line at `now`."""
    t = (times[usable] - now).astype(np.float64)
    y = values[usable]
    if t.shape[0] < 3 or float(np.ptp(t)) == 0.0:
        return values, 0.0
    slope, intercept = np.polyfit(t, y, 1)
    out = values - (intercept + slope * (times - now).astype(np.float64))
    return out, float(intercept)


class RobustDetector:
    """Shared body of zscore and mad; `kind` picks the baseline."""

    def __init__(
        self,
        kind: Literal["zscore", "mad"],
        params: Params,
        interval_seconds: int,
        detector_id: str | None = None,
    ) -> None:
        self.kind = kind
        self.p = params
        self.id = detector_id or kind
        self._interval = interval_seconds
        self._features = params.feature_names()
        self._decay = self._decay_factor()
        self._baseline = zscore_baseline if kind == "zscore" else mad_baseline if self._decay else mad_uniform
        # Unweighted mad keeps sorted windows per series (exact, O(log n) per point).
        self._rolling = kind == "mad" and not self._decay and not params.detrend
        self._memo: dict[str, _Rolling] = {}

    def _decay_factor(self) -> float:
        p = self.p
        if p.half_life is not None:
            points = (
                p.half_life if isinstance(p.half_life, int) else p.half_life.total_seconds() / self._interval
            )
            return math.log(2) / max(points, 1e-9)
        return p.exp_decay_factor if p.use_weighted else 0.0

    def window_seconds(self, interval_seconds: int) -> int:
        w = self.p.window_size
        return w * interval_seconds if isinstance(w, int) else int(w.total_seconds())

    def feature_names(self) -> tuple[str, ...]:
        return self._features

    def forget(self, series: str) -> None:
        """Drop the sorted windows kept for a forgotten series."""
        self._memo.pop(series, None)

    def detect(self, history: History, point: Current) -> Result:
        if point.value is None:
            return skipped(self.id, None, "missing value")
        if self._rolling and history.revision:
            fast = self._detect_rolling(history, point, point.value)
            if fast is not None:
                return fast
        values, feats, times = self._window(history, point.time)
        usable = np.isfinite(values)
        if int(usable.sum()) < self.p.min_samples:
            return skipped(self.id, point.value, f"cold start: fewer than {self.p.min_samples} points")
        offset = 0.0
        if self.p.detrend:
            values, offset = _detrended(values, times, usable, point.time)
        if not self._features:
            return self._judge(values[usable], point.value, offset)
        groups = self._groups(feats, usable, point)
        if groups is None:
            return self._judge(values[usable], point.value, offset)
        results = [self._judge(values[mask], point.value, offset) for mask in groups]
        # Separate features: anomalous only if unusual for every feature's group.
        return min(results, key=lambda r: (r.anomaly, r.score))

    def _window(self, history: History, now: int) -> tuple[FloatArray, dict[str, FloatArray], IntArray]:
        start, end = window_bounds(history.times, now, self.p.window_size)
        feats = {n: history.features[n][start:end] for n in self._features if n in history.features}
        return history.values[start:end], feats, history.times[start:end]

    def _groups(
        self, feats: dict[str, FloatArray], usable: np.ndarray, point: Current
    ) -> list[np.ndarray] | None:
        """Masks of history in the point's seasonal group(s); None = use the global baseline."""
        masks: list[np.ndarray] = []
        for name in self._features:
            current = point.features.get(name)
            column = feats.get(name)
            if current is None or column is None or not math.isfinite(current):
                continue
            masks.append(usable & (column == current))
        if not masks:
            return None
        if self.p.use_combined_seasonality:
            combined = np.logical_and.reduce(masks)
            return [combined] if int(combined.sum()) >= self.p.min_samples else None
        enough = [m for m in masks if int(m.sum()) >= self.p.min_samples]
        return enough or None

    def _judge(self, x: FloatArray, value: float, offset: float = 0.0) -> Result:
        """`x`: history (detrended: residuals); `offset`: the trend's value at the point."""
        w = weights_for(x.shape[0], self._decay)
        centre, spread = self._baseline(x, w)
        edges = tails(np.sort(x)) if self.p.calibrated else None
        if edges is not None:
            edges = (edges[0] + offset, edges[1] + offset)
        return self._result(centre + offset, spread, value, edges)

    def _result(
        self, centre: float, spread: float, value: float, edges: tuple[float, float] | None = None
    ) -> Result:
        spread = max(spread, _REL_FLOOR * max(1.0, abs(centre)))
        n = self.p.n_sigma
        below, above = calibrated_lines(n, centre, spread, *edges) if edges is not None else (n, n)
        lower, upper = centre - below * spread, centre + above * spread
        z = abs(value - centre) / spread
        anomaly = value > upper or value < lower
        return Result(
            detector=self.id,
            value=value,
            anomaly=anomaly,
            score=z_to_score(z, above if value >= centre else below),
            expected=centre,
            lower=lower,
            upper=upper,
            direction=("up" if value > upper else "down") if anomaly else None,
        )

    # -- the incremental path (unweighted mad) --------------------------------------------

    def _detect_rolling(self, history: History, point: Current, value: float) -> Result | None:
        """Same result as the full path from sorted windows kept per series; None: use the
        full path for this point (a feature of the point is missing)."""
        names = self._features
        currents = [point.features.get(n) for n in names]
        if names and not all(
            c is not None and math.isfinite(c) and n in history.features
            for n, c in zip(names, currents, strict=True)
        ):
            return None
        memo = self._sync(history, point)
        w = self.p.window_size
        if isinstance(w, int):
            min_time, min_row = -(2**62), memo.rows - w
        else:
            min_time, min_row = point.time - int(w.total_seconds()), -(2**62)
        memo.evict(min_time, min_row)
        if memo.finite < self.p.min_samples:
            return skipped(self.id, value, f"cold start: fewer than {self.p.min_samples} points")
        need = self.p.min_samples
        chosen: list[SortedWindow] = []
        if names:
            keys = (
                [("c", tuple(currents))]
                if self.p.use_combined_seasonality
                else list(zip(names, currents, strict=True))
            )
            for key in keys:
                g = memo.groups.get(key)
                if g is not None:
                    g.evict(min_time, min_row)
                    if len(g) >= need:
                        chosen.append(g)
        if not chosen:
            chosen = [memo.whole_window(min_time, min_row)]
        else:
            memo.whole = None  # not needed now: rebuilt from the rows if it is needed again
        calibrated = self.p.calibrated
        results = [
            self._result(*_sorted_baseline(g), value, tails(g.sorted) if calibrated else None) for g in chosen
        ]
        return min(results, key=lambda r: (r.anomaly, r.score))

    def _sync(self, history: History, point: Current) -> _Rolling:
        """The series' sorted windows, brought up to the history just before the point."""
        times = history.times
        start, end = window_bounds(times, point.time, self.p.window_size)
        memo = self._memo.get(point.series)
        first = -1  # the first row to consume
        if memo is not None and memo.revision == history.revision and memo.last_time is not None:
            j = int(np.searchsorted(times, memo.last_time, side="left"))
            if j < end and int(times[j]) == memo.last_time:
                first = j + 1
        if first < 0:  # first use, restart, or the history changed under us: rebuild
            memo = self._memo[point.series] = _Rolling(
                history.revision, self._features, self.p.use_combined_seasonality
            )
            first = start
        assert memo is not None
        if first < end:
            memo.consume(history, first, end)
        return memo


def _sorted_baseline(g: SortedWindow) -> tuple[float, float]:
    """`mad_uniform` of the window's values, from the sorted list."""
    centre = g.median()
    spread = 1.4826 * g.mad(centre)
    if spread == 0.0:
        spread = 1.2533 * float(np.abs(np.asarray(g.values()) - centre).mean())
    return centre, spread


class _Rolling:
    """Per series: every row of the window, and sorted windows per seasonal group."""

    def __init__(self, revision: int, features: tuple[str, ...], combined: bool) -> None:
        self.revision = revision
        self.features, self.combined = features, combined
        self.last_time: int | None = None
        self.rows = 0  # rows consumed so far (the next row's number)
        self.finite = 0  # finite values among the rows still in the window
        self.all: deque[tuple[int, int, float]] = deque()
        self.groups: dict[tuple[Any, ...], SortedWindow] = {}
        self.whole: SortedWindow | None = None

    def consume(self, history: History, first: int, end: int) -> None:
        if end - first == 1:  # the usual case: the point judged just before
            times, values = [int(history.times[first])], [float(history.values[first])]
            feats = [[float(history.features[n][first])] for n in self.features]
        else:
            times = history.times[first:end].tolist()
            values = history.values[first:end].tolist()
            feats = [history.features[n][first:end].tolist() for n in self.features]
        groups, whole = self.groups, self.whole
        for i, (t, v) in enumerate(zip(times, values, strict=True)):
            row = self.rows
            self.rows += 1
            self.all.append((t, row, v))
            if not math.isfinite(v):
                continue
            self.finite += 1
            if whole is not None:
                whole.add(t, row, v)
            if self.combined:
                key_values = tuple(column[i] for column in feats)
                if all(math.isfinite(k) for k in key_values):
                    _group(groups, ("c", key_values)).add(t, row, v)
            else:
                for name, column in zip(self.features, feats, strict=True):
                    if math.isfinite(column[i]):
                        _group(groups, (name, column[i])).add(t, row, v)
        self.last_time = int(times[-1])

    def evict(self, min_time: int, min_row: int) -> None:
        rows = self.all
        while rows and (rows[0][0] < min_time or rows[0][1] < min_row):
            _, _, v = rows.popleft()
            if math.isfinite(v):
                self.finite -= 1

    def whole_window(self, min_time: int, min_row: int) -> SortedWindow:
        if self.whole is None:
            kept = [(t, r, v) for t, r, v in self.all if math.isfinite(v)]
            self.whole = SortedWindow.of(
                [t for t, _, _ in kept], [r for _, r, _ in kept], [v for _, _, v in kept]
            )
        else:
            self.whole.evict(min_time, min_row)
        return self.whole


def _group(groups: dict[tuple[Any, ...], SortedWindow], key: tuple[Any, ...]) -> SortedWindow:
    g = groups.get(key)
    if g is None:
        g = groups[key] = SortedWindow()
    return g


class SeasonalParams(Params):
    """`seasonal`: a robust baseline per seasonal bucket, falling back to the whole window."""

    # hour_of_day, day_of_week, hour_of_week, or context columns. The default: hour of the day
    # (28 days give 28 points per bucket even for hourly data; hour_of_week wants 8+ weeks).
    season: str | list[str] = "hour_of_day"
    method: Literal["mad", "zscore"] = "mad"
    window_size: Window = timedelta(days=28)
    use_weighted: bool = False
    # A bucket judges alone from this many points on (a calibrated tail needs them); until
    # then the point is judged against the whole window.
    min_samples: int = Field(default=30, ge=2)
    calibrated: bool = True

    def robust(self) -> Params:
        names = [self.season] if isinstance(self.season, str) else list(self.season)
        data = self.model_dump(exclude={"season", "method", "seasonal_features", "use_combined_seasonality"})
        return Params.model_validate({**data, "seasonal_features": names, "use_combined_seasonality": True})


def build_seasonal(p: SeasonalParams, interval_seconds: int, detector_id: str | None) -> RobustDetector:
    return RobustDetector(p.method, p.robust(), interval_seconds, detector_id or "seasonal")
