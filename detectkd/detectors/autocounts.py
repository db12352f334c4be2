"""`auto`'s count model (`dispersion`, off by default): the surprise of a count under an
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
a count is at least as noisy as Poisson. Not where the level window never moved (a flat
line of whole numbers is a setting, not a random count: any change is news there).

Everything is per point from its block's fit: the same in a live check and in a replay."""

from __future__ import annotations

import math

import numpy as np

from detectkd.detectors.base import FloatArray, IntArray

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


def bounds(e: float, lo: float, hi: float, a: float) -> tuple[float, float, float]:
    """Expected value and bounds of a count back from its judging scale: the square root
    (`a` NaN: judged without the count model) or T_a."""
    if a != a:
        return e * e, max(lo, 0.0) ** 2, hi * hi if hi > 0 else 0.0
    return inverse(e, a), inverse(lo, a), inverse(hi, a)


def judge(
    root_x: FloatArray,
    root_e: FloatArray,
    root_s: FloatArray,
    level: tuple[FloatArray, FloatArray, np.ndarray, FloatArray],
    inv: IntArray,
    floor: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """z of counts judged on the square-root scale (the point sqrt(x), the baseline's expected
    sqrt(mu) and robust spread s; `level`: the level window's fit per block, `inv` each point's
    block), under the negative binomial: (z, expected and spread on the T_a scale, a). A live
    check judges one point: few array operations, no branches."""
    centre, _, _, deviation = level
    typical = np.maximum(centre[inv], 1.0) ** 2  # the window's median count, at least 1
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        a = np.maximum((4.0 * root_s * root_s - 1.0) / typical, TINY)
        root = np.sqrt(a)
        expected = 2.0 * np.arcsinh(root * np.maximum(root_e, 0.0)) / root
        spread = np.maximum(2.0 * root_s / np.sqrt(1.0 + a * typical), floor * (deviation[inv] > 0))
        spread = np.maximum(spread, 1e-9 * expected)
        z = (2.0 * np.arcsinh(root * root_x) / root - expected) / spread
    return z, expected, spread, a
