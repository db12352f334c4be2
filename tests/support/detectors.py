"""Detector inputs built from plain lists: a history on a one-minute grid and the next point."""

from __future__ import annotations

from typing import Any

import numpy as np

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo
from detectkd.detectors.base import Current, History, Result
from detectkd.runtime.windows import SeriesWindow

STEP = 60


def history(values: list[float] | np.ndarray, features: dict[str, Any] | None = None) -> History:
    vals = np.asarray(values, dtype=np.float64)
    times = np.arange(len(vals), dtype=np.int64) * STEP
    feats = {k: np.asarray(v, dtype=np.float64) for k, v in (features or {}).items()}
    return History(times, vals, feats)


def at_end(h: History, value: float | None, features: dict[str, float] | None = None) -> Current:
    return Current(int(h.times[-1]) + STEP if len(h) else 0, value, features or {})


def noisy(n: int = 200, seed: int = 1) -> np.ndarray:
    """`n` values around 100 (sd 5), the same for the same seed."""
    return 100 + np.random.default_rng(seed).normal(0, 5, n)


def live_and_batched(
    t: np.ndarray, v: np.ndarray, params: Params, step: int
) -> tuple[list[Result], list[Result]]:
    """`auto`'s results for the last 600 points of `v` at times `t`: checked one at a time
    through the runner's window (live), and in two batches of 300 (a catch-up)."""
    points = [Current(int(a), float(b), {}, "s") for a, b in zip(t, v, strict=True)]
    live, window, cached = AutoDetector(params, step), SeriesWindow(10**9, ()), []
    for pt in points[:-600]:
        window.add(pt.time, pt.value, {})
    for pt in points[-600:]:
        cached.append(live.detect(window.history(), pt))
        window.add(pt.time, pt.value, {})
    many = AutoDetector(params, step)
    batched = many.detect_many(History(t[:-600], v[:-600], {}), points[-600:-300])
    batched += many.detect_many(History(t[:-300], v[:-300], {}), points[-300:])
    return cached, batched


def auto_alarms(values: np.ndarray, step: int, **params: object) -> list[int]:
    """The points where a run of `auto`'s anomalies starts (where a FIRING would be sent), for
    `values` on a grid of `step` seconds judged with `params` over the defaults."""
    det = AutoDetector(Params.model_validate(params), step)
    times = np.arange(values.size, dtype=np.int64) * step
    points = [Current(int(t), float(v), {}, "s") for t, v in zip(times, values, strict=True)]
    flags = np.array([r.anomaly for r in det.detect_many(History.empty(), points)])
    return np.flatnonzero(flags & ~np.r_[False, flags[:-1]]).tolist()


def same_state(got: Memo, want: Memo) -> None:
    """`auto`'s derived state of a series, field by field: the alarm line's ring, the run and
    the side of the last alarm (`rest_margin`)."""
    fields = ("surprise", "run", "rest", "level", "alarmed", "side")
    assert [getattr(got, f) for f in fields] == [getattr(want, f) for f in fields]
    assert np.array_equal(got.ring(), want.ring(), equal_nan=True)
