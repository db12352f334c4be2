"""`auto`'s line-and-range agreement (`line_range`, off by default): a point beyond its
series' line *and* beyond the range of the series' last `line_range` values alarms alone.

On NAB the largest family of missed windows is one moderate point at the labelled anomaly:
beyond the series' own line (the `quantile` of its last `reference` |z|) but not `spike`
(3) lines high, and alone (the point before it under the line: no pair), so no rule of
`auto` sends it. A range break would, but the range break asks for a value beyond the
range of at least a week and a day, by a margin. Two weak tests that agree are stronger than
either (Skyline's consensus of simple tests): a point the statistical line calls unusual and
that is also a new high (or low) of the last `line_range` values is treated as a range
break. A count must leave that range by more than one (a 4 after errors of 0-3 is not news),
and any value by `line_margin` of the range's width (a record of noise comes once in
`line_range` points anyway, and on a heavy tail it is beyond the line: news is a record by a
margin, as a range break's `range_tolerance`). With `line_log` a positive gauge (not a
count) is tested on the logarithms of its values: its records as tight as a normal sample's
where its noise is multiplicative (latency: log-normal), the margin a share of the ratio.

Only earlier values are read (no state), within `reach` seconds of the point (what a live
check's history holds), and only for points whose |z| can be beyond the line (`min_z` x
`threshold`^2): the same in a live check and a replay. Marked in `Judged.breaks` with
`NOVEL`; `auto` lets it alarm only where the point's surprise is at least the line and less
than a spike's (a spike alarms alone anyway, and its own gates — `spike_jitter` — still hold it).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from detectkd.detectors.autofit import Judged
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import FloatArray, IntArray

NOVEL = 8  # the bit of `breaks` (1 a range break, 2 a stuck run, 4 a spike seen) for a new extreme


def marked(j: Judged, times: IntArray, values: FloatArray, idx: IntArray, p: Params, reach: int) -> Judged:
    """`j` with `NOVEL` added to the breaks of the points at `idx` (positions in `times` and
    `values`, all finite) whose |z| can be beyond the line and whose value is beyond every
    value of the `line_range` before it (at least `range_min` of them, all less than `reach`
    seconds before the point) by more than `line_margin` of their range, on the side of its z."""
    if not p.line_range or idx.size == 0:
        return j
    bound = p.threshold * p.threshold * max(p.min_z, 1e-9)  # the least |z| beyond any line
    if idx.size == 1 and not abs(float(j.z[0])) >= bound:  # a live check (NaN too): no array work
        return j
    with np.errstate(invalid="ignore"):
        far = np.abs(j.z) >= bound
    if not far.any():
        return j
    flags = np.zeros(idx.size, np.int8)
    for k in np.flatnonzero(far).tolist():
        i = int(idx[k])
        start = max(i - p.line_range, int(np.searchsorted(times, int(times[i]) - reach, side="right")))
        if i - start < p.range_min:
            continue
        seg, x = values[start:i], float(values[i])
        if p.line_log and not j.counts[k] and x > 0 and float(seg.min()) > 0:
            seg, x = np.log(seg), math.log(x)  # a positive gauge: its ratios
        hi, lo = float(seg.max()), float(seg.min())
        margin = max(1.0 if j.counts[k] else 0.0, p.line_margin * (hi - lo))
        flags[k] = x > hi + margin if j.z[k] > 0 else x < lo - margin
    return dataclasses.replace(j, breaks=j.breaks.astype(np.int8) + NOVEL * flags)
