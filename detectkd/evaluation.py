"""Scoring a detector against labelled anomaly windows, NAB style.

Implements the Numenta Anomaly Benchmark rules (NAB v1.1: `nab/sweeper.py`,
`nab/optimizer.py`, `nab/runner.py`, `config/profiles.json`), written from
their description, and checked against NAB's published results
(`benchmarks/nab_eval.py` prints the reproduction; tests/unit/test_evaluation.py
pins one published file):

- The first `min(floor(15 % of the rows), 750)` rows are probationary: not
  scored, neither as detections nor as window rows.
- A detection is a row whose score is at or above the threshold.
- Inside a window, only the first scored detection counts: it is worth
  `tp_weight * scaled_sigmoid(p) / scaled_sigmoid(-1)` with
  `p = -(end - i + 1) / length` (-1 at the window's first row, near 0 at its
  last), so earlier is worth more. A window without one costs `fn_weight`.
- A detection outside every window costs `fp_weight * scaled_sigmoid(p)` with
  `p = (i - end_prev) / (length_prev - 1)`, relative to the preceding window
  (a small cost right behind it, the full cost three window lengths later);
  before the first window, the full cost.
- Per profile one threshold is chosen for all files together: NAB sweeps every
  distinct score and keeps the best total (on ties, the highest threshold). The
  total is normalised so that a detector that never fires scores 0 and one that
  detects every window at its first row and fires nowhere else scores 100.

The sweep (`sweep`) evaluates every threshold at once: as the threshold falls,
each false-positive row adds its cost once, and each window's value steps
from `-fn_weight` to the value of its earliest detected row; the steps happen
at the window's "records" (rows scoring above every earlier row of the window).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Weights = tuple[float, float, float]  # (tp, fp, fn)
PROFILES: dict[str, Weights] = {
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}
NEVER = math.inf  # the threshold of a detector that never fires


def scaled_sigmoid(position: float) -> float:
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def _scaled_sigmoid(position: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = 2.0 / (1.0 + np.exp(5.0 * np.minimum(position, 3.0))) - 1.0
    out[position > 3.0] = -1.0
    return out


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
    tp: int  # windows with a detection
    fn: int  # windows without
    fp: int  # detected rows outside every window


@dataclass(frozen=True)
class _Rows:
    """A file's scored rows (after probation) with what each would be worth as a detection."""

    scores: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]  # the row's worth if detected (profile-weighted)
    window: npt.NDArray[np.int64]  # index into the file's windows, -1 outside
    n_windows: int  # windows with at least one scored row


def _rows(f: Labelled, weights: Weights) -> _Rows:
    tp_w, fp_w, _ = weights
    n = len(f.scores)
    idx = np.arange(n)
    window = np.full(n, -1, np.int64)
    value = np.full(n, -fp_w)  # before the first window: the full cost
    max_tp = scaled_sigmoid(-1.0)
    windows = sorted(f.windows)
    for k, (first, last) in enumerate(windows):
        length = last - first + 1
        inside = slice(first, last + 1)
        window[inside] = k
        value[inside] = tp_w * _scaled_sigmoid(-(last - idx[inside] + 1) / length) / max_tp
        following = windows[k + 1][0] if k + 1 < len(windows) else n
        behind = slice(last + 1, following)
        value[behind] = fp_w * _scaled_sigmoid((idx[behind] - last) / max(length - 1, 1))
    start = probation(n)
    scored_windows = {int(w) for w in np.unique(window[start:]) if w >= 0}
    return _Rows(f.scores[start:], value[start:], window[start:], len(scored_windows))


def score_file(f: Labelled, threshold: float, weights: Weights) -> FileResult:
    _, _, fn_w = weights
    r = _rows(f, weights)
    hit = r.scores >= threshold
    total = float(r.value[hit & (r.window < 0)].sum())
    fp = int((hit & (r.window < 0)).sum())
    tp = fn = 0
    for k in np.unique(r.window[r.window >= 0]):
        detected = np.flatnonzero(hit & (r.window == k))
        if detected.size:
            total += float(r.value[detected[0]])
            tp += 1
        else:
            total -= fn_w
            fn += 1
    return FileResult(total, tp, fn, fp)


def _normalise(raw: float, n_windows: int, weights: Weights) -> float:
    tp_w, _, fn_w = weights
    null, perfect = -fn_w * n_windows, tp_w * n_windows
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else math.nan


def windows_in(files: Sequence[Labelled]) -> int:
    return sum(len(f.windows) for f in files)


def raw_total(files: Sequence[Labelled], threshold: float, weights: Weights) -> float:
    return sum(score_file(f, threshold, weights).score for f in files)


def normalised(files: Sequence[Labelled], threshold: float, weights: Weights) -> float:
    """NaN when the files hold no window (nothing to normalise against)."""
    return _normalise(raw_total(files, threshold, weights), windows_in(files), weights)


Floats = npt.NDArray[np.float64]


def sweep(files: Sequence[Labelled], weights: Weights) -> tuple[Floats, Floats]:
    """Every threshold where the total changes, highest first (`NEVER` first), and the raw
    total (unnormalised) at each: the total at threshold t is the entry of the smallest
    listed threshold >= t."""
    _, _, fn_w = weights
    at: list[npt.NDArray[np.float64]] = []
    delta: list[npt.NDArray[np.float64]] = []
    base = 0.0
    for f in files:
        r = _rows(f, weights)
        outside = r.window < 0
        at.append(r.scores[outside])
        delta.append(r.value[outside])
        base -= fn_w * r.n_windows
        for k in np.unique(r.window[~outside]):
            s, v = r.scores[r.window == k], r.value[r.window == k]
            before = np.concatenate(([-np.inf], np.maximum.accumulate(s)[:-1]))
            record = s > before  # detected first at any threshold in (before, s]
            rs, rv = s[record], v[record]
            at.append(rs)  # as the threshold falls past rs[j], the window's worth becomes rv[j]
            delta.append(rv - np.append(rv[1:], -fn_w))
    scores = np.concatenate(at) if at else np.empty(0)
    steps = np.concatenate(delta) if delta else np.empty(0)
    order = np.argsort(-scores, kind="stable")
    scores, totals = scores[order], base + np.cumsum(steps[order])
    last_of_each = np.append(scores[1:] != scores[:-1], True) if scores.size else np.empty(0, bool)
    return np.append(NEVER, scores[last_of_each]), np.append(base, totals[last_of_each])


def best_threshold(
    files: Sequence[Labelled], weights: Weights, candidates: Sequence[float] | None = None
) -> tuple[float, float]:
    """(threshold, normalised score) maximising the total over all files, as NAB's optimiser
    does (every distinct score is a candidate; ties go to the highest threshold). With
    `candidates`, only those (and never firing) are tried."""
    thresholds, totals = sweep(files, weights)
    if candidates is not None:
        # total at t: the entry of the smallest listed threshold >= t (thresholds fall)
        pos = np.searchsorted(-thresholds, -np.asarray(candidates, float), side="right") - 1
        thresholds = np.append(NEVER, np.asarray(candidates, float))
        totals = np.append(totals[0], totals[pos])
    best = int(np.argmax(totals))  # the first maximum: the highest threshold among ties
    return float(thresholds[best]), _normalise(float(totals[best]), windows_in(files), weights)


@dataclass(frozen=True)
class HeldOut:
    """A group of files scored at the threshold chosen on all the other groups."""

    threshold: float
    score: float  # normalised over the group's windows; NaN for a group without windows
    raw: float
    windows: int
    detections: int  # scored rows at or above the threshold


def leave_one_group_out(groups: Mapping[str, Sequence[Labelled]], weights: Weights) -> dict[str, HeldOut]:
    """For each group: choose the threshold on every other group (NAB's optimiser), then
    score this one with it. The honest estimate of a detector whose threshold is a choice."""
    out = {}
    for name, held in groups.items():
        rest = [f for other, fs in groups.items() if other != name for f in fs]
        threshold, _ = best_threshold(rest, weights)
        raw = raw_total(held, threshold, weights)
        detections = sum(int((f.scores[probation(len(f.scores)) :] >= threshold).sum()) for f in held)
        n = windows_in(held)
        out[name] = HeldOut(threshold, _normalise(raw, n, weights), raw, n, detections)
    return out


def pooled(held: Mapping[str, HeldOut], weights: Weights) -> float:
    """The held-out raw totals of every group, normalised together: comparable with the
    full-corpus figure, which differs only in where the threshold was chosen."""
    return _normalise(sum(h.raw for h in held.values()), sum(h.windows for h in held.values()), weights)


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
