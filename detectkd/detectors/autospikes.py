"""`auto`'s lone spikes held when routine, and its extreme-value gates.

A point alarms alone as a spike when its surprise is at least `spike` (3) lines: three times
the `quantile` (0.995) of the series' own last `reference` |z|. On NAB most of AWS
CloudWatch's false pages were such spikes, two CPU series' daily job (a burst at about the same
time every day, a few periods early or late, so the seasonal median of the same time three days
back misses it). A *lone* spike — beyond `spike` lines, not a range break, the point before it
under the line (not a pair), the start of a run — is therefore held below the line (score at
most 1/3) when:

- `spike_jitter` (30 minutes, the default): one of the `cycles` previous days had, within that
  many minutes of the same time of day, a value at least half as far from the point's expected
  value on the same side (`seen`, marked in `breaks` with `SEEN`; only for points whose |z| could
  make a spike, so a live check reads nothing more unless it sees one). Point in time: only
  earlier values are read. A daily job pages on its first day, not on every day after.
- `spike_risk` (off): its |z| is not beyond SPOT's line over the ring (`evt.tail_line`: the value
  a GPD fitted to the excesses over the ring's `tail` quantile crosses with probability
  `spike_risk` per point). On NAB it cut AWS's false spikes from 30 rows to 6 but lost four
  windows whose first alarm was a spike no more extreme for its series than the false ones.

`risk` (off) is SPOT's gate on every run's first alarm (`Memo.extreme`). Pairs and range breaks
are untouched by the spike rules. Functions of the values and the ring `auto` keeps anyway
(`ordered`: its sorted finite |z|): no state, the same in a live check and a replay
(docs/detectors.md, docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
from array import array

import numpy as np

from detectkd.detectors import autocounts
from detectkd.detectors.autofit import Judged
from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import DTYPE, Memo
from detectkd.detectors.base import FloatArray, IntArray
from detectkd.detectors.evt import tail_line

DAY = 86400
SEEN = 4  # the bit of `breaks` (a range break: 1, a stuck run: 2) for a spike seen on previous days
SHARE = 0.5  # a previous day's value at least half as far from the expected value matches


def gated(
    memo: Memo, ordered: array[float], az: float, s: float, prev: float, h: float, seen: int, p: Params
) -> float:
    """The surprise `h` of a point that would start a run of alarms (not a range break), after
    the gates that are on: held at half the line when its |z| `az` (raw surprise `s`; the
    previous point's `prev`) is not extreme enough for the series, or (`seen`) a lone spike
    the previous days had at about the same time."""
    thr = p.threshold
    hold = min(h, 0.5 * thr)
    if p.risk and not memo.extreme(ordered, az, s >= p.spike * thr, p):
        return hold
    if not (s >= p.spike * thr and prev < thr):  # not a lone spike (a pair)
        return h
    if seen:
        return hold
    if not p.spike_risk:
        return h
    line = tail_line(np.frombuffer(ordered, DTYPE), p.spike_risk, p.tail, p.min_samples)
    return hold if az < line else h


def seen(
    j: Judged,
    times: IntArray,
    values: FloatArray,
    idx: IntArray,
    step: int,
    cycles: int,
    p: Params,
    reach: int,
) -> Judged:
    """`j` with `SEEN` added to the breaks of the points at `idx` (positions in `values`, all
    finite) that could be lone spikes (|z| at least `spike` x `min_z` lines) and were matched
    on one of the `cycles` previous days, within `spike_jitter` minutes of the same time of
    day, by a value at least `SHARE` as far from the point's expected value (in the value's
    units: a count's back from its judging scale), on its side. Only values less than
    `reach` seconds before the point are read: what a live check's history holds."""
    jitter = p.spike_jitter * 60 // step  # in periods (hourly data: the same hour only)
    if not p.spike_jitter or idx.size == 0 or DAY % step or DAY // step <= 2 * jitter + 1:
        return j
    bound = p.spike * p.threshold * p.threshold * max(p.min_z, 1e-9)  # the least |z| of a spike
    if idx.size == 1 and not abs(float(j.z[0])) >= bound:  # a live check (NaN too): no array work
        return j
    with np.errstate(invalid="ignore"):
        far = np.abs(j.z) >= bound
    if not far.any():  # the usual case: nothing to read
        return j
    k = np.flatnonzero(far)
    e = np.where(j.counts[k], autocounts.values_of(j.expected[k], j.disp[k]), j.expected[k])
    side = np.sign(j.z[k])
    now = (values[idx[k]] - e) * side
    back = np.arange(1, cycles + 1)[:, None] * (DAY // step) + np.arange(-jitter, jitter + 1)[None, :]
    target = times[idx[k]][:, None] - back.ravel()[None, :] * step  # all before the point
    pos = np.minimum(np.searchsorted(times, target), times.size - 1)
    there = (times[pos] == target) & (target > times[idx[k]][:, None] - reach)
    dev = np.where(there, (values[pos] - e[:, None]) * side[:, None], -np.inf)
    flags = np.zeros(idx.size, np.int8)
    flags[k] = (now > 0) & (dev.max(axis=1) >= SHARE * now)
    return dataclasses.replace(j, breaks=j.breaks.astype(np.int8) + SEEN * flags)
