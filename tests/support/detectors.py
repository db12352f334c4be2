"""Detector inputs built from plain lists: a history on a one-minute grid and the next point."""

from __future__ import annotations

from typing import Any

import numpy as np

from detectkd.detectors.base import Current, History

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
