"""`auto` judging before its history is complete (a staged first start, issue 28).

A new metric's warm-up loads only `judge_seconds` of history (`min_samples` + `refresh`
periods): enough for the level baseline to judge. The rest (the level's full `window`, the
seasonal cycles, the reference) fills in later from a background history job. Meanwhile
auto judges with what it has: a seasonal baseline takes part once two of its cycles are in
the history (`rows.cycle_median`), exactly as with full history. So once the history is
complete the judgements are those of a metric that had it from the start.

What is still missing is said with each judgement (`Result.basis`), for the alert's
"Baseline:" line: "the level of the last 400 points (seasonal baselines loading: 2 of 3
days)". Nothing is said once the level window and every cycle are in the history.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from detectkd.detectors.base import FloatArray, IntArray, Result

if TYPE_CHECKING:
    from detectkd.detectors.auto import AutoDetector

DAY = 86400


def judgeable(det: AutoDetector, times: IntArray, values: FloatArray, idx: IntArray) -> np.ndarray:
    """Which points at `idx` have `min_samples` values in their block's window: the others
    are a cold start (|z| NaN) whatever the baselines, and a first start's history is mostly
    such points (its first check's rebuild fits only the blocks of the rest)."""
    before = np.concatenate([[0], np.cumsum(np.isfinite(values))])
    starts = np.searchsorted(times, times[idx] // det.block * det.block, side="left")
    found: np.ndarray = np.minimum(before[starts], det.p.window) >= det.p.min_samples
    return found


def staged_basis(
    det: AutoDetector,
    times: IntArray,
    values: FloatArray,
    first: int,
    idx: IntArray,
    which: IntArray,
    out: list[Result],
) -> list[Result]:
    """`out` (results of the points from `first` on, judged at `idx` of `times`/`values`)
    with `basis` set where the history did not cover every baseline yet; `which`: per judged
    point, the baseline that judged (0 the level, k the k-th seasonal one)."""
    if idx.size == 0:
        return out
    p, step = det.p, det.step
    finite = np.isfinite(values)
    head = int(idx[0])
    longest = max(det.periods, default=0) * p.cycles * step
    # The level window of the first point's block lies before the block's start, not before
    # the point (else the block's points before it pass for its window, and a live check says
    # nothing where a replay says what is loading); all of it, not the last `window` + `refresh`
    # points: with a few missing values those fell short and every check took the long way.
    start = int(np.searchsorted(times, int(times[head]) // det.block * det.block))
    level_full = int(np.count_nonzero(finite[:start])) >= p.window  # (then for every later block)
    if finite[0] and int(times[head]) - int(times[0]) >= longest and level_full:
        return out  # the usual case: everything is in the history
    if not finite.any():
        return out
    oldest = int(times[int(np.argmax(finite))])
    at = times[idx]
    before = np.searchsorted(times, at // det.block * det.block)  # the level: before the block
    level = np.minimum(np.concatenate([[0], np.cumsum(finite)])[before], p.window)
    cycles = [np.minimum((at - oldest) // (period * step), p.cycles) for period in det.periods]
    names = ["days" if period * step == DAY else "weeks" for period in det.periods]
    full = level >= p.window
    for have in cycles:
        full &= have >= p.cycles
    if full.all():
        return out
    for k in np.flatnonzero(~full).tolist():
        i = int(idx[k]) - first
        r = out[i]
        if r.skipped is not None:
            continue
        b = int(which[k])
        n = int(level[k])
        judged = f"the level of the last {n:,} points" if b == 0 else \
            f"the same time of the last {int(cycles[b - 1][k])} {names[b - 1]}"  # fmt: skip
        loading = [f"{int(c[k])} of {p.cycles} {name}" for c, name in zip(cycles, names, strict=True)
                   if c[k] < p.cycles]  # fmt: skip
        notes = [f"seasonal baselines loading: {', '.join(loading)}"] if loading else []
        if n < p.window:
            notes.append(f"level window loading: {n:,} of {p.window:,} points")
        out[i] = replace(r, basis=f"{judged} ({'; '.join(notes)})")
    return out
