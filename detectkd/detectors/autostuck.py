"""`auto`'s stuck value: a series that stops moving for longer than it lately ever did.

A run of equal values (a flat line: a sensor that froze, a counter stuck at 0, a collector that
repeats its last value) is news when it reaches `stuck` points and outlasts, by `stuck_margin`,
the longest run of equal values among the values `auto` reads before it (by time: those within
`read` - 1 intervals before the point, what a live check's window holds, values missing or not;
the current run left out, and the window's first run too: it may have begun before the window,
so how long it is is unknown), provided at least a week and a day of values lie between that
first run and the current one: the run-length counterpart of the range break. A series that
often rests at one value (a count at 0 at night or every weekend, a square wave) has long runs
in its recent past and must outlast them; a series that always moves alarms after `stuck`
points. It alarms once, at the point where the run crosses that line (alone, like a range
break; persistence, fading and the rest period apply as to any alarm). Where `auto` reads less
than a week and a day (one-minute data: 4.7 days), last weekend's rest is out of reach and each
weekend's would be a record: the channel does nothing there. A rest longer than any in the
window (a holiday joined to a weekend) is a record: it pages, calendar or not (a reason the
channel is an option, not the default).

Point in time: a point's flag depends only on the values up to it (its run, and the window
before it), so a live check (one point) and a replay (`detect_many`) agree; a live check
does no work unless its last `stuck` values are equal. No state.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from detectkd.detectors.autofit import Judged
from detectkd.detectors.base import FloatArray, IntArray

STUCK = 2  # the flag `auto` reads in its breaks: a stuck run, with no gate in |z|


class Knobs(Protocol):
    stuck: int
    stuck_margin: float


def marked(
    judged: Judged,
    times: IntArray,
    values: FloatArray,
    idx: IntArray,
    span: int,
    step: int,
    need: int,
    p: Knobs,
) -> Judged:
    """`judged` with `STUCK` added to the breaks of the points at `idx` (positions in `times` and
    `values`, all finite, oldest first) where a run of equal values crosses its line; `span`:
    the seconds before a point that its window reads (`crossings`), `step` the interval."""
    if not p.stuck or not need or idx.size == 0:  # need 0: the window cannot hold a week and a day
        return judged
    flags = crossings(times, values, idx, span, step, p.stuck, p.stuck_margin, need)
    if not flags.any():
        return judged
    return dataclasses.replace(judged, breaks=judged.breaks.astype(np.int8) + STUCK * flags.astype(np.int8))


def crossings(
    times: IntArray,
    values: FloatArray,
    idx: IntArray,
    span: int,
    step: int,
    least: int,
    margin: float,
    need: int,
) -> np.ndarray:
    """Per position in `idx`: whether the run of equal values ending there is beyond its line
    (at least `least` long, longer than `margin` x the longest run among the values before it
    within `span` seconds, the run itself left out, of which at least `need` lie before the
    run) while the run one point shorter, against the values within `span` seconds before the
    interval (`step`) before the point, was not. By time, not by count: a live check's window
    holds what lies within `span` + `step` seconds before the point, fewer values when some are
    missing, and a replay reads those same ones."""
    out = np.zeros(idx.size, bool)
    if idx.size == 1:  # a live check: nothing to do unless the last `least` values are equal
        i = int(idx[0])
        if i + 1 < least or values[i] != values[i - 1] or (values[i - least + 1 : i] != values[i]).any():
            return out
    lo = int(np.searchsorted(times, times[int(idx.min())] - step - span, side="left"))
    seg, ts = values[lo : int(idx.max()) + 1], times[lo : int(idx.max()) + 1]
    new = np.ones(seg.size, bool)
    new[1:] = seg[1:] != seg[:-1]
    first = np.maximum.accumulate(np.where(new, np.arange(seg.size), 0))  # each point's run start
    at = idx - lo
    run = at - first[at] + 1
    for k in np.flatnonzero(run >= least).tolist():
        i = int(at[k])
        since, before = np.searchsorted(ts, [ts[i] - span, ts[i] - step - span], side="left").tolist()
        out[k] = _beyond(seg, i, int(first[i]), since, least, margin, need) and not _beyond(
            seg, i - 1, int(first[i]), before, least, margin, need
        )
    return out


def _beyond(seg: FloatArray, i: int, start: int, since: int, least: int, margin: float, need: int) -> bool:
    """The run from `start` to `i` (counted from `since`, the first value of its window) against
    the runs among the values from `since` to the run, the window's first run left out: it may
    have begun before the window, so its length is unknown (an error count at 0 but for one
    error a month: its month-long rest, cut by the window's start, would make each rest a record
    half a month in). `need` values must lie between that run and this one. As the window moves
    on, the runs it measures only leave it: the line only falls, and a run crosses it once."""
    start = max(start, since)
    if i - start + 1 < least:
        return False
    ref = seg[since:start]  # the window before the point, the run left out
    if ref.size <= need:
        return False
    cut = np.flatnonzero(ref[1:] != ref[:-1])
    if cut.size == 0 or ref.size - 1 - cut[0] < need:  # after the first run: fewer than `need`
        return False
    longest = max(int(np.diff(cut).max(initial=0)), ref.size - 1 - int(cut[-1]))  # the first left out
    return i - start + 1 > margin * longest
