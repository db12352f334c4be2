"""`auto`'s short mean for persistence: two in a row judged against the series' own runs.

The persistence rule (two judged points in a row beyond the line alarm, the smaller surprise
counts) assumes that two in a row are much rarer than one: for independent |z| beyond their
`quantile` (0.995) line, one point in 40,000. A series whose |z| linger (an autocorrelated
gauge, a count whose bursts last a few periods) crosses its single-point line twice in a row
almost as often as once, and on NAB most of `auto`'s false pages were such pairs, barely beyond
the line. So a pair that would start a run of alarms also needs the mean of the last
`pair_mean` (3) |z| — the pair and the point before it — beyond the same `quantile` of every
such mean among the ring's |z|: a short average judged against its own history, the idea of
Numenta's anomaly likelihood, so that a run of that length is as rare for this series as the
line says, whatever its autocorrelation. A pair that follows a calm point and is no higher
than the series' usual short runs is held below the line (its surprise is that mean's); a
step's pair, or the point after it, still alarms.

A function of the ring `auto` keeps anyway (no new state, no bytes per series), read only when
a pair would start a run (rare): the same in a live check and a replay.
"""

from __future__ import annotations

import math

import numpy as np

from detectkd.detectors.autostate import Memo


def line(ring: np.ndarray, k: int, q: float, min_count: int) -> float:
    """The `q` quantile (linear) of the means of `k` consecutive |z| of `ring` (oldest first;
    a mean over a cold start's NaN is left out); NaN with fewer than `min_count` means."""
    means = np.convolve(ring, np.full(k, 1.0 / k), mode="valid") if ring.size >= k else ring[:0]
    means = means[np.isfinite(means)]
    return float(np.quantile(means, q)) if means.size >= max(min_count, 1) else math.nan


def surprise(memo: Memo, az: float, k: int, q: float, min_count: int) -> float:
    """The mean of `az` and the `k` - 1 newest |z| of the ring over the line of such means (in
    lines: 1 on it); infinite (no gate) while the ring holds too few of them."""
    ring = memo.ring()
    mean = (az + float(ring[ring.size - k + 1 :].sum())) / k if k > 1 else az
    over = line(ring, k, q, min_count)
    if not over > 0:  # too few means yet (NaN), or all 0: persistence as before
        return math.inf
    return mean / over
