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

A pair is also held (`pair_hour`, 1.0 by default) where the series' residuals run as large
at that hour: one of the ring's |z| a whole number of days back (as far as the ring reaches:
three days at five minutes, one at one minute), within half an hour of that, at least as
large as the pair's. A gauge whose baselines lag on the steep part of its daily wave, or a
count whose bursts come at the same hours, crosses its single line there every day; a pair
at an hour where that never happened still pages. Ring positions are judged points, not
times: missing values shift the match by as many points.

Functions of the ring `auto` keeps anyway (no new state, no bytes per series), read only when
a pair would start a run (rare): the same in a live check and a replay.
"""

from __future__ import annotations

import math

import numpy as np

from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import Memo

DAY = 86400
HOUR_JITTER = 1800  # `pair_hour` reads this many seconds either side of a day back (`spike_jitter`'s 30 min)


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


def hour_window(step: int, p: Params) -> tuple[int, int, int] | None:
    """For `pair_hour`: judged points a day, `HOUR_JITTER` in points, and the days back the
    ring reaches (at most `cycles`; the last one's window in part: beyond the ring nothing
    matches); None where a day is no whole number of steps, the window spans a day, or the
    ring reaches no day back."""
    day, jitter = DAY // step, HOUR_JITTER // step
    days = min(p.cycles, (p.reference + jitter) // max(day, 1))  # a day whose window the ring reaches
    if not p.pair_hour or DAY % step or day <= 2 * jitter + 1 or days < 1:
        return None
    return day, jitter, days


def at_hour(memo: Memo, az: float, h: float, hour: tuple[int, int, int], p: Params) -> float:
    """The surprise `h` of a pair (|z| `az`) that would start a run, held at half the line
    (`pair_hour`) when one of the ring's |z| a whole number of days back (`hour_window`: `day`
    judged points a day, `jitter` either side, `days` of them; counted from the point being
    judged, the ring's newest one back) reached `pair_hour` x `az`: the series' residuals ran
    that large at about this hour before. NaN (a cold start) never matches."""
    day, jitter, days = hour
    want = p.pair_hour * az
    for d in range(1, days + 1):
        for back in range(d * day - jitter, d * day + jitter + 1):
            if memo.back(back - 1) >= want:
                return min(h, 0.5 * p.threshold)
    return h
