"""`auto`'s extreme-value gates: SPOT's line for a run's first alarm (`risk`), and for lone
spikes alone (`spike_risk`). Both off by default.

A point alarms alone as a spike when its surprise is at least `spike` (3) lines: three times
the `quantile` (0.995) of the series' own last `reference` |z|. On a series whose |z| tail is
heavy (a CPU gauge with bursts: its 0.995 quantile says little about its 0.9999 one) spikes of
three lines come every few thousand points; on NAB they were most of AWS CloudWatch's false
pages. With `spike_risk` a *lone* spike — beyond `spike` lines, not a range break, the point
before it under the line (not a pair), the start of a run — also needs its |z| beyond SPOT's
line over the ring (`evt.tail_line`: the value a GPD fitted to the excesses over the ring's
`tail` quantile crosses with probability `spike_risk` per point); otherwise it is held below
the line (score at most 1/3), as `risk` holds. Pairs and range breaks are untouched; on a light
tail the GPD line is far below three lines and nothing changes. Not the default: on NAB it cut
AWS CloudWatch's false spikes from 30 rows to 6 but lost four windows whose first alarm was a
spike no more extreme for its series than the false ones (docs/benchmarks.md).

Functions of the ring `auto` keeps anyway (`ordered`: its sorted finite |z|), read only when a
run would start: no state, the same in a live check and a replay.
"""

from __future__ import annotations

from array import array

import numpy as np

from detectkd.detectors.autoparams import Params
from detectkd.detectors.autostate import DTYPE, Memo
from detectkd.detectors.evt import tail_line


def gated(memo: Memo, ordered: array[float], az: float, s: float, prev: float, h: float, p: Params) -> float:
    """The surprise `h` of a point that would start a run of alarms (not a range break), after
    the gates that are on: held at half the line when its |z| `az` (raw surprise `s`; the
    previous point's `prev`) is not extreme enough for the series."""
    thr = p.threshold
    hold = min(h, 0.5 * thr)
    if p.risk and not memo.extreme(ordered, az, s >= p.spike * thr, p):
        return hold
    if not (p.spike_risk and s >= p.spike * thr and prev < thr):  # not a lone spike (a pair)
        return h
    line = tail_line(np.frombuffer(ordered, DTYPE), p.spike_risk, p.tail, p.min_samples)
    return hold if az < line else h
