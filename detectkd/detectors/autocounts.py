"""`auto`'s count model (`dispersion`, on by default): the surprise of a count under an
over-dispersed Poisson (negative binomial) law instead of a Gaussian on the square-root scale.

A count with mean mu and dispersion a (variance mu + a mu^2, a = 0: Poisson) has the
variance-stabilising transform T_a(x) = 2 asinh(sqrt(a x)) / sqrt(a) (2 sqrt(x) at a = 0):
T_a(x) has unit spread at every mu, so (T_a(x) - T_a(mu)) is, to first order, the normal
quantile of the count's tail probability, a |z| on the scale `auto` uses. Small a is the
square-root scale (Poisson noise), large a the log scale (bursts that scale with the level).

The dispersion comes from the series' own residuals: on the square-root scale a negative
binomial count has spread sqrt(1 + a mu) / 2, so the judging baseline's robust spread s over
a window of typical level mu_w (the window's median) gives a = (4 s^2 - 1) / mu_w (0 when the
residuals are no wider than Poisson noise). Then a deviation of the same size on the square-root
scale is more surprising where the level is below the window's typical level (a drop) and less
where it is above (a burst at the day's peak), and a burst grows its |z| like a ratio, not
like a difference. `floor` (in Poisson spreads: T_a's unit) keeps a sparse count (errors
per minute, mostly 0, whose median fits most points exactly) from judging 0 -> 3 as huge:
a count is at least as noisy as Poisson. It applies as far as the level window itself
varies like a random count (`poisson_like`: the index of dispersion of its noise, at most
1): whole numbers that vary less (a gauge: 120 ms +- 4, an eighth of Poisson's variance)
are not a random count, and a flat line has no noise at all.

Everything is per point from its block's fit (the index of dispersion is kept with it, once per
block): the same in a live check and in a replay."""

from __future__ import annotations

import math

import numpy as np

from detectkd.detectors.base import FloatArray

TINY = 1e-12  # a dispersion this small is Poisson's: T_a is 2 sqrt(x) to a relative 2e-13 x


def transform(x: FloatArray, a: FloatArray) -> FloatArray:
    """T_a(x) for counts x >= 0 (a per point; a below TINY is Poisson: T is 2 sqrt(x) there)."""
    root = np.sqrt(np.maximum(a, TINY))
    return np.asarray(2.0 * np.arcsinh(root * np.sqrt(np.maximum(x, 0.0))) / root)


def inverse(y: float, a: float) -> float:
    """The count whose T_a is y (0 below 0)."""
    if y <= 0:
        return 0.0
    a = max(a, TINY)
    return math.sinh(min(y * math.sqrt(a) / 2.0, 300.0)) ** 2 / a  # (capped: a bound, not news)


def values_of(y: FloatArray, a: FloatArray) -> FloatArray:
    """`bounds`' expected value for many points at once: the counts back from their judging
    scale, the square root where `a` is NaN (no count model), else T_a (0 below 0)."""
    y = np.maximum(y, 0.0)
    root = np.isnan(a)
    a = np.maximum(np.where(root, 1.0, a), TINY)
    counts = np.sinh(np.minimum(y * np.sqrt(a) / 2.0, 300.0)) ** 2 / a
    return np.asarray(np.where(root, y * y, counts))


def bounds(e: float, lo: float, hi: float, a: float) -> tuple[float, float, float]:
    """Expected value and bounds of a count back from its judging scale: the square root
    (`a` NaN: judged without the count model) or T_a."""
    if a != a:
        return e * e, max(lo, 0.0) ** 2, hi * hi if hi > 0 else 0.0
    return inverse(e, a), inverse(lo, a), inverse(hi, a)


def poisson_like(level: FloatArray, rows: np.ndarray) -> FloatArray:
    """Per row of `level` (the level windows, raw values) where `rows` (0 elsewhere): how far
    it varies like a random count, the index of dispersion of its noise (half the mean squared
    step between consecutive values, which a slow cycle hardly moves, over the mean value), at
    most 1. About 1 for a Poisson count at any level, more for a bursty one; 0.13 for a gauge
    of whole numbers (120 +- 4), 0 for a flat line."""
    out = np.zeros(level.shape[0])
    if not rows.any():
        return out
    level = level[rows]
    steps = np.diff(level, axis=1)
    steps *= steps
    finite = np.isfinite(level)
    noise = np.nansum(steps, axis=1) / np.maximum(np.isfinite(steps).sum(axis=1), 1) / 2.0
    mean = np.nansum(level, axis=1) / np.maximum(finite.sum(axis=1), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[rows] = np.where(mean > 0, np.minimum(noise / mean, 1.0), 0.0)
    return out


def judge(
    root_x: FloatArray, root_e: FloatArray, root_s: FloatArray, root_typical: FloatArray, floor: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """z of counts judged on the square-root scale (the point sqrt(x), the baseline's expected
    sqrt(mu) and robust spread s, the level window's median sqrt(mu_w)), under the negative
    binomial: (z, expected and spread on the T_a scale, a). `floor`: per point, the least
    spread in Poisson's (`poisson_floor` x `poisson_like`). A live check judges one point:
    few array operations, no branches."""
    typical = np.maximum(root_typical, 1.0)  # the window's median count, at least 1 (squared:)
    typical *= typical
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        a = np.maximum((4.0 * root_s * root_s - 1.0) / typical, TINY)
        root = np.sqrt(a)
        unit = 2.0 / root  # T_a(x) = unit * asinh(root * sqrt(x))
        at_e = np.arcsinh(root * np.maximum(root_e, 0.0))
        # (root_s > 0: `auto` floors every spread at 1e-9 of the level)
        spread = np.maximum(root_s * unit / np.sqrt(1.0 / a + typical), floor)
        z = (np.arcsinh(root * root_x) - at_e) * unit / spread
    return z, at_e * unit, spread, a


Four = tuple[FloatArray, FloatArray, FloatArray, FloatArray]


def where(mask: np.ndarray, new: Four, old: Four) -> Four:
    """`new` where `mask`, else `old` (a live check judges one point: no copies when all)."""
    if mask.all():
        return new
    z, e, s, a = (np.where(mask, n, o) for n, o in zip(new, old, strict=True))
    return z, e, s, a
