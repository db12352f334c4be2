"""Extreme-value alarm lines: SPOT (Siffer et al., "Anomaly Detection in Streams with Extreme
Value Theory", KDD 2017), written from the paper.

Above a high initial threshold `t` (a quantile of a series' own recent values), the excesses
of any continuous distribution are close to a generalised Pareto distribution (Pickands-
Balkema-de Haan). Fitted to the `N_t` excesses among `n` values, its tail gives the value
exceeded with probability `risk` per point:

    z_q = t + sigma / gamma * ((risk * n / N_t) ** -gamma - 1)     (t - sigma * ln(...) at 0)

A line at z_q pages about `risk` times per point on data like the recent past, whatever the
series' tail: a fixed line pages in proportion to the heaviness of the tail instead.

The fit is by probability-weighted moments (Hosking & Wallis 1987), not the paper's maximum
likelihood (Grimshaw's root search): closed form, no iteration, and steadier on the few dozen
excesses a ring of recent points holds. Pure numpy, no state: the caller keeps the values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from detectkd.detectors.base import FloatArray, sorted_quantile

# The shape is kept in [-0.5, 0.9]: beyond 1 the excesses have no mean and the moments no fit;
# below -0.5 a handful of equal excesses would claim a hard upper end.
SHAPES = (-0.5, 0.9)


def gpd_fit(excess: Sequence[float] | FloatArray) -> tuple[float, float]:
    """(shape gamma, scale sigma) of a generalised Pareto distribution fitted to positive
    excesses by probability-weighted moments: a0 = E[Y] = sigma / (1 - gamma),
    a1 = E[Y (1 - F(Y))] = sigma / (2 (2 - gamma))."""
    y = np.sort(np.asarray(excess, np.float64))
    n = y.size
    if n < 2 or not np.isfinite(y).all() or y[0] < 0:
        raise ValueError(f"gpd_fit needs at least 2 finite non-negative excesses, not {n}")
    a0 = float(y.mean())
    if a0 <= 0:
        return 0.0, 0.0
    survival = 1.0 - (np.arange(1, n + 1) - 0.35) / n  # plotting positions
    a1 = float(np.mean(y * survival))
    d = a0 - 2.0 * a1
    gamma = 2.0 - a0 / d if d > 0 else SHAPES[1]
    if SHAPES[0] <= gamma <= SHAPES[1]:
        return gamma, 2.0 * a0 * a1 / d
    gamma = min(max(gamma, SHAPES[0]), SHAPES[1])
    return gamma, a0 * (1.0 - gamma)  # the scale that keeps the mean excess


def gpd_quantile(t: float, gamma: float, sigma: float, p: float) -> float:
    """The value exceeded with probability `p` by an excess over `t` (GPD survival function
    inverted)."""
    if p >= 1.0:
        return t
    if abs(gamma) < 1e-9:
        return t - sigma * math.log(p)
    return t + sigma / gamma * (float(p**-gamma) - 1.0)


def tail_line(ordered: Sequence[float] | FloatArray, risk: float, level: float, min_count: int) -> float:
    """SPOT's line over sorted values: exceeded with probability `risk` per value, from a GPD
    fitted to the excesses over their `level` quantile. 0 (no line) with fewer than
    `min_count` values; with fewer than 3 excesses (a tail of ties) the largest value seen."""
    n = len(ordered)
    if n < max(min_count, 1) or risk <= 0:
        return 0.0
    values = np.asarray(ordered, np.float64)
    t = sorted_quantile(values, level)
    peaks = values[int(np.searchsorted(values, t, side="right")) :] - t
    if peaks.size < 3:
        return float(values[-1])
    gamma, sigma = gpd_fit(peaks)
    return gpd_quantile(t, gamma, sigma, risk * n / peaks.size)
