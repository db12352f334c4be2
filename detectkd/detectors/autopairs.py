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


def aftershock(memo: Memo, az: float, beyond: float, ago: int) -> bool:
    """Whether the run of |z| at or beyond `beyond` that `az` ends (the ring's newest ones and
    `az`) is no longer than the longest such run among the ring's |z| before the last alarm's
    own run (the one holding the ring's `ago`-th newest |z|, 0 the newest; the whole ring when
    that alarm has left it): a burst as long as the series' bursts before this episode
    (`rest_pairs` holds it soon after an alarm); a longer one is a sustained change, news
    whatever came before (as far as the rest period's `rest_margin` lets it). The episode's own
    first run is not its history: after a long alarm, a shorter, greater one still pages."""
    ring = memo.ring()
    with np.errstate(invalid="ignore"):
        over = np.r_[ring >= beyond, az >= beyond]
    newest = int(np.argmin(over[::-1])) if not over.all() else over.size
    before = over.size - newest  # the older |z|: up to the last alarm's run, if still in the ring
    at = ring.size - 1 - ago
    if 0 <= at < before:  # the alarm is older than the newest run: its own run starts it
        before = at
        while over[at] and before > 0 and over[before - 1]:
            before -= 1
    edges = np.diff(np.r_[0, over[:before].astype(np.int8), 0])
    longest = int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max(initial=0))
    return newest <= longest
