"""Many series on one time grid for `auto`'s many-series tests (issue 28): generated series,
and a count of the block fits made."""

from __future__ import annotations

import numpy as np
import pytest

from detectkd.detectors import autofit
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autostate import BlockFit

STEP = 60
HOW = np.random.default_rng(168).normal(0, 30, 168)  # "weekly": the hours of the week's levels


def many(
    kind: str, n: int, count: int, seed: int, step: int = STEP, t0: int = 1_795_000_020
) -> tuple[np.ndarray, list[np.ndarray]]:
    """`count` series on one grid of `n + 30` intervals (minutes) from about `t0`: the history
    and 30 more points."""
    rng = np.random.default_rng(seed)
    t = t0 // step * step + np.arange(n + 30, dtype=np.int64) * step
    out = []
    for j in range(count):
        if kind == "counts":
            v = rng.poisson(2 + j % 30, t.size).astype(float)
        elif kind == "mixed":  # counts and gauges on one grid: both scales in one batch
            v = rng.poisson(5, t.size).astype(float) if j % 2 else rng.normal(50, 4, t.size)
        elif kind == "seasonal":  # a day's cycle in the history: the seasonal baseline judges
            v = 50 + 10 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 1, t.size)
        else:
            v = rng.normal(100, 5, t.size)
        if kind in ("daily", "pairs"):  # a daily job whose time jitters: seen on earlier days
            days, at = (t - t[n - 40]) // 86400, t[n - 40] % 86400  # the last one 40 points back
            job = np.flatnonzero((t % 86400 == at - 60 * ((days * 7 + j) % 11)) & (t < t[n - 30]))
            if kind == "daily":  # a spike
                v[job] += 90.0
            else:  # a pair
                v[job] += 35.0
                v[job + 1] += 35.0
        if kind == "flip":  # whole numbers, then fractions from a third on, whole again from two
            v = rng.poisson(20 + j % 7, t.size).astype(float)  # thirds (the weekly profile's scale)
            v[n // 3 : 2 * n // 3] += 0.5
        if kind == "weekly":  # a pattern per hour of the week (hour 0: Thursday 00:00 UTC)
            v = 100 + 10 * np.sin(2 * np.pi * t / 86400) + HOW[(t // 3600) % 168] + rng.normal(0, 1, t.size)
        if kind == "flat" and j % 2 == 0:
            v[n - 60 :] = v[n - 60]  # stuck since before the first run: its alarm in the rebuild
        if j % 3 == 0:
            v[n // 2 :] += 25.0  # a step in the history: runs, rests, range breaks
        if j % 4 == 1:
            v[n + rng.integers(0, 30)] += 80.0  # a spike among the live points
        out.append(v)
    if kind == "gaps":  # the same missing periods in every series (one grid, one mask)
        holes = rng.integers(0, n, n // 15)
        for v in out:
            v[holes] = np.nan
    return t, out


def fitted_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows (series) of every block fit from now on, in order."""
    sizes: list[int] = []
    real = autofit.block_fit

    def counted(
        d: AutoDetector, times: np.ndarray, values: np.ndarray, starts: np.ndarray, weekly: None = None
    ) -> BlockFit:
        sizes.append(values.shape[0])
        return real(d, times, values, starts, weekly)

    monkeypatch.setattr(autofit, "block_fit", counted)
    return sizes
