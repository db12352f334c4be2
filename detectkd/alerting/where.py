"""Where a total moved: the segments (or combinations of dimension values) that explain an
anomaly of a total, ranked. Pure numpy: no I/O, clock or logging.

Input: one row per leaf segment (a tuple of dimension values) with its value in the anomalous
period and its expected value (the median of the same segment in the baseline periods) and,
when known, its usual spread (the scaled MAD over those periods).

The method is our own, built from three published ideas:

- Squeeze's *generalized ripple effect* (Li et al., ISSRE 2019): when an element (say
  `region=eu AND device=ios`) is the cause, every leaf under it moves by the same proportion
  (value ≈ expected × v_E / f_E) and the leaves outside it stay at their expected values.
- HotSpot's *potential score* (Sun et al., 2018): how well that hypothesis fits the leaves.
  Here an element's **gain** is the L1 error it removes on its own leaves:
  Σ|v - f| - Σ|v - f·v_E/f_E|. A parent that holds the cause and unmoved leaves fits worse
  than the cause itself; a child of the cause removes less error than the cause. The gain of
  an element depends only on its own leaves, so every element of every cuboid (each subset of
  the dimensions) is scored at once with a few `bincount`s: O(cuboids × leaves).
- Adtributor's *explanatory power* and *surprise* (Bhagwan et al., NSDI 2014): the share of
  the total's change an element carries, and the Jensen-Shannon divergence of its share of
  the total before and after. Both are reported with each element.

Selection is greedy on the gain: the best element first, then elements disjoint from the
chosen ones (no common leaf) whose gain is at least `RELATIVE_GAIN` of the best one's, each
significant against the leaves' spread (|v_E - f_E| / sqrt(Σ s²) ≥ `MIN_Z`) and carrying at
least `MIN_SHARE` of the total's change; a further element of a single leaf must also stand
out `STAND_OUT` times above every leaf left unexplained (heavy-tailed noise makes lone
outliers). When the whole total (all leaves moving alike) fits
better than any element, the change is reported as spread evenly. The work is bounded: at
most `MAX_DIMENSIONS` dimensions, combinations of at most `MAX_LAYER` of them (all of them up
to four), so at most 41 cuboids; the greedy pick walks at most `MAX_CANDIDATES` elements;
the caller caps the number of leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAX_DIMENSIONS = 6
MAX_LAYER = 3  # combinations of at most this many dimensions (all when there are at most 4)
MIN_Z = 4.0  # an element's change against the spread of its leaves
MIN_SHARE = 0.05  # of the total's change (by absolute size)
MIN_Z_REST = 3.0  # a parent's other leaves moved alike (see `_climb`)
STAND_OUT = 2.0  # a further one-leaf element: this many times the most surprising unexplained leaf
RELATIVE_GAIN = 0.05  # a further element removes at least this share of the best one's error
TOP = 3
MAX_CANDIDATES = 2000  # the greedy pick walks at most this many elements, best gain first

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]


@dataclass(frozen=True)
class Found:
    """One element: its dimension values, value, expected value, share of the total's
    change (signed: 0.8 = it carries 80 % of it) and surprise (Jensen-Shannon, 0..ln 2)."""

    segment: tuple[tuple[str, str], ...]
    value: float
    expected: float
    share: float
    surprise: float

    @property
    def label(self) -> str:
        return ", ".join(f"{d}={v}" for d, v in self.segment)

    def as_dict(self) -> dict[str, Any]:
        return {
            "segment": dict(self.segment),
            "value": self.value,
            "expected": self.expected,
            "share": round(self.share, 4),
            "surprise": round(self.surprise, 6),
        }


@dataclass(frozen=True)
class Explanation:
    found: tuple[Found, ...]
    value: float  # the total of the leaves
    expected: float
    segments: int
    spread: bool = False  # the change is spread over all segments alike: no element stands out


@dataclass(frozen=True)
class Baseline:
    """Per segment: the expected value and its usual spread; and `common`, the relative spread
    of the total (what moves all segments at once, e.g. a busier day)."""

    expected: Floats
    spread: Floats
    common: float = 0.0


def baseline(history: Floats) -> Baseline:
    """From `history` (baseline periods × segments; NaN where a segment had no row): the
    median per segment, and 1.4826 × MAD floored at a Poisson sigma and at the pooled relative
    spread of all segments (their median weighted by size): seven periods make one MAD noisy.
    A segment absent from every baseline period is expected at 0."""
    h = np.asarray(history, dtype=np.float64)
    if h.ndim != 2 or h.size == 0:
        width = h.shape[1] if h.ndim == 2 else 0
        return Baseline(np.zeros(width), np.ones(width))
    filled = np.where(np.isnan(h), 0.0, h)  # a segment without a row in a period had none of it
    med = np.median(filled, axis=0)
    mad = 1.4826 * np.median(np.abs(filled - med), axis=0)
    size = np.abs(med)
    pooled = _weighted_median(mad[size > 0] / size[size > 0], size[size > 0]) if (size > 0).any() else 0.0
    spread = np.maximum.reduce([mad, np.sqrt(np.maximum(size, 1.0)), pooled * size])
    totals = filled.sum(axis=1)
    mid = float(np.median(totals))
    common = 1.4826 * float(np.median(np.abs(totals - mid))) / abs(mid) if mid else 0.0
    return Baseline(med, spread, common)


def _weighted_median(x: Floats, w: Floats) -> float:
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, cum[-1] / 2)])


def _js(p: float, q: float) -> float:
    """Adtributor's surprise: the Jensen-Shannon divergence of a share p (expected) vs q."""
    out = 0.0
    m = (p + q) / 2
    for x in (p, q):
        if x > 0 and m > 0:
            out += 0.5 * x * float(np.log(x / m))
    return out


def cuboids(d: int) -> list[tuple[int, ...]]:
    """The subsets of the dimensions scored, coarsest first."""
    top = d if d <= 4 else min(d, MAX_LAYER)
    return [c for k in range(1, top + 1) for c in combinations(range(d), k)]


def explain(
    dimensions: Sequence[str],
    keys: Sequence[Sequence[Any]],
    actual: Sequence[float] | Floats,
    expected: Sequence[float] | Floats,
    spread: Sequence[float] | Floats | None = None,
    common: float = 0.0,
    top: int = TOP,
) -> Explanation:
    """Rank the elements that explain the change of the total of `actual` against `expected`.
    `keys[i]` are leaf i's values of `dimensions`; `spread` and `common` as `Baseline`'s."""
    dims = list(dimensions)
    if not 1 <= len(dims) <= MAX_DIMENSIONS:
        raise ValueError(f"explain needs 1 to {MAX_DIMENSIONS} dimensions, got {len(dims)}")
    v = np.asarray(actual, dtype=np.float64)
    f = np.asarray(expected, dtype=np.float64)
    n = len(v)
    if n == 0 or len(f) != n or len(keys) != n:
        return Explanation((), float(v.sum()), float(f.sum()), n)
    s = _spread(v, f, spread)
    codes, names = _encode(keys, len(dims))
    total_v, total_f = float(v.sum()), float(f.sum())
    change = total_v - total_f
    base = np.abs(v - f)
    # the whole total as one element: everything moved alike
    whole = _fit(v, f, np.zeros(n, dtype=np.int64), 1, base)[0][0]
    cubes = cuboids(len(dims))
    scored = [_score(v, f, s, common, base, codes[:, list(c)]) for c in cubes]
    scale = max(abs(change), float(base.sum()) * MIN_SHARE, 1e-12)
    chosen: list[tuple[int, int]] = []  # (cuboid, group)
    taken = np.zeros(n, dtype=bool)
    best_gain = 0.0
    ranked = _ranked(scored)
    if ranked and whole > 0 and whole >= ranked[0][0]:  # the whole total fits best: spread evenly
        return Explanation((), total_v, total_f, n, spread=True)
    for gain, ci, g in ranked:
        cand = scored[ci]
        if len(chosen) >= top or gain <= 0 or (chosen and gain < RELATIVE_GAIN * best_gain):
            break
        if cand.z[g] < MIN_Z or abs(cand.v[g] - cand.f[g]) < MIN_SHARE * scale:
            continue
        ci, g = _climb(scored, cubes, ci, g, common, taken)
        leaves = scored[ci].inverse == g
        if taken[leaves].any():
            continue
        if not chosen:
            if whole >= gain:  # the whole total fits at least as well: spread evenly
                return Explanation((), total_v, total_f, n, spread=True)
            best_gain = gain
        chosen.append((ci, g))
        taken |= leaves
    leaf_z = np.abs(v - f) / np.sqrt(s * s + (common * f) ** 2)
    rest = leaf_z[~taken].max(initial=0.0)  # the most surprising leaf nothing chosen explains
    chosen = chosen[:1] + [
        (ci, g) for ci, g in chosen[1:] if scored[ci].size[g] > 1 or scored[ci].z[g] >= STAND_OUT * rest
    ]
    found = []
    for ci, g in chosen:
        leaf = int(scored[ci].first[g])
        segment = tuple((dims[j], names[j][int(codes[leaf, j])]) for j in cubes[ci])
        found.append(_found(segment, scored[ci], g, total_v, total_f, change))
    found.sort(key=lambda x: -abs(x.value - x.expected))
    return Explanation(tuple(found), total_v, total_f, n)


@dataclass(frozen=True)
class _Scored:
    inverse: NDArray[np.int64]  # leaf -> group
    first: NDArray[np.int64]  # group -> one of its leaves
    gain: Floats
    z: Floats
    v: Floats
    f: Floats
    var: Floats  # Σ spread² of the group's leaves
    size: NDArray[np.int64]  # leaves in the group


def _spread(v: Floats, f: Floats, spread: Sequence[float] | Floats | None) -> Floats:
    if spread is not None:
        s = np.asarray(spread, dtype=np.float64)
        return np.where(np.isfinite(s) & (s > 0), s, 1e-9)
    # without a history: the leaves' typical relative deviation from their usual ratio (robust)
    ratio = v / np.maximum(np.abs(f), 1e-9)
    typical = float(np.median(np.abs(ratio - np.median(ratio)))) * 1.4826 if len(ratio) else 0.0
    return np.maximum(typical * np.abs(f), 0.5 * np.sqrt(np.abs(f)) + 1e-9)


def _encode(keys: Sequence[Sequence[Any]], d: int) -> tuple[NDArray[np.int64], list[list[str]]]:
    codes = np.empty((len(keys), d), dtype=np.int64)
    names: list[list[str]] = []
    for j in range(d):
        col = ["" if k[j] is None else str(k[j]) for k in keys]
        uniq, inv = np.unique(np.asarray(col, dtype=object).astype(str), return_inverse=True)
        codes[:, j] = inv
        names.append([str(u) for u in uniq])
    return codes, names


def _groups(sub: NDArray[np.int64]) -> tuple[NDArray[np.int64], int]:
    if sub.shape[1] == 1:
        inv = sub[:, 0]
        return inv, int(inv.max()) + 1
    _, inv = np.unique(sub, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    return inv, int(inv.max()) + 1


def _sum(inv: NDArray[np.int64], weights: Floats, k: int) -> Floats:
    return np.bincount(inv, weights, k).astype(np.float64, copy=False)


def _fit(v: Floats, f: Floats, inv: NDArray[np.int64], k: int, base: Floats) -> tuple[Floats, Floats, Floats]:
    """(gain, v, f) per group under the ripple effect: leaves of a group scaled by v_g / f_g."""
    vg = _sum(inv, v, k)
    fg = _sum(inv, f, k)
    ratio = np.divide(vg, fg, out=np.zeros(k), where=fg > 0)
    pred = np.where(fg[inv] > 0, f * ratio[inv], v)  # nothing expected: the value is all change
    gain = _sum(inv, base - np.abs(v - pred), k)
    return gain, vg, fg


def _score(v: Floats, f: Floats, s: Floats, common: float, base: Floats, sub: NDArray[np.int64]) -> _Scored:
    inv, k = _groups(sub)
    gain, vg, fg = _fit(v, f, inv, k, base)
    var = _sum(inv, s * s, k)
    z = np.abs(vg - fg) / np.sqrt(var + (common * fg) ** 2)
    first = np.full(k, -1, dtype=np.int64)
    first[inv[::-1]] = np.arange(len(inv) - 1, -1, -1)
    return _Scored(inv, first, gain, z, vg, fg, var, np.bincount(inv, minlength=k))


def _climb(
    scored: list[_Scored],
    cubes: list[tuple[int, ...]],
    ci: int,
    g: int,
    common: float,
    taken: NDArray[np.bool_],
) -> tuple[int, int]:
    """The coarsest element that holds (ci, g) and moved alike: a parent (one dimension fewer)
    replaces it while the parent's other leaves moved significantly (`MIN_Z_REST`) and by a
    ratio nearer the element's than 1 (the ripple effect, seen from above: a noisy child of
    the cause can fit its few leaves better than the cause fits all of its own). A parent with
    leaves of an element already chosen is not climbed to: that element explains them."""
    index = {c: i for i, c in enumerate(cubes)}
    while len(cubes[ci]) > 1:
        c = scored[ci]
        leaf = int(c.first[g])
        ratio = c.v[g] / c.f[g] if c.f[g] > 0 else 0.0
        best: tuple[float, int, int] | None = None
        for j in cubes[ci]:
            pi = index[tuple(x for x in cubes[ci] if x != j)]
            p = scored[pi]
            pg = int(p.inverse[leaf])
            vr, fr = p.v[pg] - c.v[g], p.f[pg] - c.f[g]
            if fr <= 0 or vr <= 0 or ratio <= 0 or taken[p.inverse == pg].any():
                continue
            z = abs(vr - fr) / np.sqrt(max(p.var[pg] - c.var[g], 1e-18) + (common * fr) ** 2)
            rest = np.log(vr / fr)
            if z >= MIN_Z_REST and abs(rest - np.log(ratio)) < abs(rest) and (best is None or z > best[0]):
                best = (z, pi, pg)
        if best is None:
            break
        ci, g = best[1], best[2]
    return ci, g


def _ranked(scored: list[_Scored]) -> list[tuple[float, int, int]]:
    """(gain, cuboid, group), best first; ties go to the coarser cuboid (listed first)."""
    gains = np.concatenate([c.gain for c in scored])
    which = np.concatenate([np.full(len(c.gain), i) for i, c in enumerate(scored)])
    group = np.concatenate([np.arange(len(c.gain)) for c in scored])
    order = np.lexsort((which, -gains))
    return [(float(gains[i]), int(which[i]), int(group[i])) for i in order[:MAX_CANDIDATES]]


def _found(
    segment: tuple[tuple[str, str], ...], c: _Scored, g: int, total_v: float, total_f: float, change: float
) -> Found:
    v, f = float(c.v[g]), float(c.f[g])
    share = (v - f) / change if change else 0.0
    p = f / total_f if total_f > 0 else 0.0
    q = v / total_v if total_v > 0 else 0.0
    return Found(segment, v, f, share, _js(p, q))
