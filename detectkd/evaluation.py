"""Scoring a detector against labelled anomaly windows, NAB style.

Implements the Numenta Anomaly Benchmark rules (NAB v1.1) as described in
shared/data/README.md and NAB's sweeper:

- The first `min(15 % of the file, 750)` rows are probationary: not scored.
- A detection is a row whose score is at or above the threshold.
- Inside a window, only the first detection counts: it is worth
  `tp_weight * scaled_sigmoid(p) / scaled_sigmoid(-1)` with
  `p = -(end - i + 1) / length` (the row's position, -1 at the window's first
  row, near 0 at its last), so earlier is worth more. A window without a
  detection costs `fn_weight`.
- A detection outside every window costs `fp_weight * scaled_sigmoid(p)` with
  `p = (i - end_prev) / (length_prev - 1)` relative to the preceding window
  (negative, tending to -1 the farther away it is); before the first
  window, the full -1.
- Per profile one threshold is chosen for all files (the best total), and
  the total is normalised: 0 = a detector that never fires (every window
  missed), 100 = a detection at the first row of every window and nowhere else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PROFILES: dict[str, tuple[float, float, float]] = {  # name: (tp, fp, fn) weights
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}


def scaled_sigmoid(position: float) -> float:
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation(n: int) -> int:
    return min(math.floor(0.15 * n), 750)


@dataclass(frozen=True)
class Labelled:
    """One file: per-row detector scores and anomaly windows as (first, last) row indexes."""

    name: str
    scores: npt.NDArray[np.float64]
    windows: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class FileResult:
    score: float
    tp: int
    fn: int
    fp: int


def score_file(f: Labelled, threshold: float, weights: tuple[float, float, float]) -> FileResult:
    tp_w, fp_w, fn_w = weights
    start = probation(len(f.scores))
    detections = np.flatnonzero(f.scores >= threshold)
    detections = detections[detections >= start]
    total, tp, fn, fp = 0.0, 0, 0, 0
    windows = sorted(f.windows)
    for first, last in windows:
        inside = detections[(detections >= first) & (detections <= last)]
        if inside.size:
            length = last - first + 1
            total += tp_w * scaled_sigmoid(-(last - int(inside[0]) + 1) / length) / scaled_sigmoid(-1.0)
            tp += 1
        else:
            total -= fn_w
            fn += 1
    for i in detections:
        if any(first <= i <= last for first, last in windows):
            continue
        prev = [(a, b) for a, b in windows if b < i]
        if prev:
            a, b = prev[-1]
            total += fp_w * scaled_sigmoid((int(i) - b) / max(b - a, 1))
        else:
            total -= fp_w
        fp += 1
    return FileResult(total, tp, fn, fp)


def normalised(files: Sequence[Labelled], threshold: float, weights: tuple[float, float, float]) -> float:
    raw = sum(score_file(f, threshold, weights).score for f in files)
    tp_w, _, fn_w = weights
    n_windows = sum(len(f.windows) for f in files)
    null = -fn_w * n_windows
    perfect = tp_w * n_windows
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0


def best_threshold(
    files: Sequence[Labelled], weights: tuple[float, float, float], candidates: Sequence[float] | None = None
) -> tuple[float, float]:
    """(threshold, normalised score) maximising the total over all files."""
    grid = candidates if candidates is not None else [round(x, 3) for x in np.linspace(0.3, 0.999, 100)]
    best = (1.01, normalised(files, 1.01, weights))  # never fires: 0
    for t in grid:
        s = normalised(files, t, weights)
        if s > best[1]:
            best = (t, s)
    return best


def window_recall_and_fp(files: Sequence[Labelled], threshold: float) -> tuple[float, float]:
    """Share of windows with a detection; detections outside windows per 1,000 scored rows."""
    windows = hit = fps = scored = 0
    for f in files:
        start = probation(len(f.scores))
        det = np.flatnonzero(f.scores >= threshold)
        det = det[det >= start]
        inside = np.zeros(len(f.scores), bool)
        for first, last in f.windows:
            windows += 1
            inside[first : last + 1] = True
            hit += bool(((det >= first) & (det <= last)).any())
        fps += int((~inside[det]).sum())
        scored += int((~inside[start:]).sum())
    recall = hit / windows if windows else 1.0
    return recall, 1000.0 * fps / max(scored, 1)
