"""Where: how often `detectkd.alerting.where.explain` names the segments that moved a total.

    python -m benchmarks.rca [--seed 1] [--cases 300] [--family a|b]

Generated cubes: 3 or 4 dimensions (cardinalities 2-15, a fifth of the leaves absent), 100
to 5,000 leaf segments with Zipf-like sizes and 5 to 500 counts per leaf on average; values
at the anomalous hour and the same hour of the 7 days before, with daily seasonality (a
phase per leaf), a day-wide factor (±3 %), Poisson counts and a multiplicative noise (family
a: σ 5 %; family b: 10 % and heavier-tailed, Student t with 3 degrees of freedom, clipped at ±20). One to
three disjoint causes per case: an element of a random cuboid of 1 to 3 dimensions
(sometimes a single leaf), each at least 2 % of the total's expected value, scaled by a
factor in 0.1-0.8 (a drop) or 1.3-3 (a rise); a case is kept only if its total moved at
least 4 % (less would not fire) and the causes moved it at least that much, each cause at
least a tenth of that. Expected values and spreads come from the 7 baseline days (median,
MAD), as the daemon does. Prints the top-1 accuracy on single-cause cases, the set F1 over
all, and the time per explanation at 5,000 segments, for detectkd's method and a plain
Adtributor (one dimension: values by surprise while each explains > 10 % until 67 % is
explained).

The method's thresholds were chosen on seed 0 of family a; report other seeds.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from detectkd.alerting.where import baseline, explain

Segment = frozenset[tuple[str, str]]


@dataclass
class Case:
    dims: list[str]
    keys: list[tuple[str, ...]]
    actual: np.ndarray
    history: np.ndarray  # baseline days x leaves
    truth: set[Segment]


def cube(rng: np.random.Generator, family: str) -> Case | None:
    d = int(rng.choice([3, 4]))
    target = int(np.exp(rng.uniform(np.log(100), np.log(5000))))
    cards = np.clip(np.round((target / 0.8) ** (1 / d) * rng.uniform(0.6, 1.4, d)), 2, 15).astype(int)
    dims = ["region", "device", "channel", "plan"][:d]
    names = [[f"{dim[0]}{i}" for i in range(c)] for dim, c in zip(dims, cards, strict=True)]
    keys = [k for k in itertools.product(*names) if rng.random() > 0.2][:5000]
    if len(keys) < 100:
        return None
    weights = [
        dict(zip(n, rng.zipf(1.6, len(n)).clip(1, 50) * rng.uniform(0.5, 1.5, len(n)), strict=True))
        for n in names
    ]
    level = np.array([np.prod([w[v] for w, v in zip(weights, k, strict=True)]) for k in keys])
    level = level * rng.lognormal(0, 0.5, len(keys))
    level = level / level.sum() * len(keys) * float(np.exp(rng.uniform(np.log(5), np.log(500))))
    hour, phase = int(rng.integers(24)), rng.uniform(-2, 2, len(keys))
    season = 1 + 0.5 * np.sin(2 * np.pi * (hour - 14 + phase) / 24)
    sigma = 0.05 if family == "a" else 0.10
    days = []
    for _ in range(8):
        noise = (
            rng.lognormal(0, sigma, len(keys))
            if family == "a"
            else np.exp(sigma * np.clip(rng.standard_t(3, len(keys)), -20, 20))
        )
        days.append(rng.poisson(level * season * noise * (1 + rng.normal(0, 0.03))).astype(float))
    history, actual = np.array(days[:7]), days[7]
    expected = np.median(history, axis=0)
    truth: set[Segment] = set()
    before, changes = actual, []
    taken = np.zeros(len(keys), dtype=bool)
    for _ in range(int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))):
        for _attempt in range(30):
            if rng.random() < 0.1:  # a single leaf
                cols = list(range(d))
            else:
                cols = sorted(
                    rng.choice(d, size=int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2])), replace=False)
                )
            leaf = keys[int(rng.integers(len(keys)))]
            mask = np.array([all(k[j] == leaf[j] for j in cols) for k in keys])
            if taken[mask].any() or expected[mask].sum() < 0.02 * expected.sum():
                continue
            factor = rng.uniform(0.1, 0.8) if rng.random() < 0.6 else rng.uniform(1.3, 3.0)
            actual = actual.copy()
            actual[mask] = rng.poisson(actual[mask] * factor).astype(float)
            changes.append(abs(actual[mask].sum() - before[mask].sum()))
            taken |= mask
            truth.add(frozenset((dims[j], leaf[j]) for j in cols))
            break
    moved = np.abs(actual - before).sum()  # the causes moved the total, not the noise
    if not truth or min(moved, abs(actual.sum() - expected.sum())) < 0.04 * expected.sum():
        return None
    if min(changes) < 0.1 * sum(changes):  # a cause this small did not move the total
        return None
    return Case(dims, keys, actual, history, truth)


def ours(c: Case) -> list[Segment]:
    b = baseline(c.history)
    e = explain(c.dims, c.keys, c.actual, b.expected, b.spread, b.common)
    return [frozenset(f.segment) for f in e.found]


def adtributor(c: Case, t_ep: float = 0.1, t_eep: float = 0.67) -> list[Segment]:
    """Bhagwan et al. 2014, plain: per dimension, values by surprise while each explains more
    than t_ep of the change, until t_eep is explained; the dimension with the most surprise."""
    f = np.median(c.history, axis=0)
    v = c.actual
    big_v, big_f = v.sum(), f.sum()
    change = big_v - big_f
    best: tuple[float, list[Segment]] = (-1.0, [])
    for j, dim in enumerate(c.dims):
        vals: dict[str, list[float]] = {}
        for k, a, e in zip(c.keys, v, f, strict=True):
            x = vals.setdefault(k[j], [0.0, 0.0])
            x[0] += a
            x[1] += e
        scored = []
        for val, (a, e) in vals.items():
            p, q = e / big_f, a / big_v
            m = (p + q) / 2
            s = sum(0.5 * x * np.log(x / m) for x in (p, q) if x > 0)
            scored.append((s, (a - e) / change if change else 0.0, val))
        scored.sort(reverse=True)
        chosen, explained, surprise = [], 0.0, 0.0
        for s, ep, val in scored:
            if ep > t_ep:
                chosen.append(frozenset({(dim, val)}))
                explained += ep
                surprise += s
            if explained > t_eep:
                break
        if explained > t_eep and surprise > best[0]:
            best = (surprise, chosen[:3])
    return best[1]


def score(
    cases: list[Case], method: Callable[[Case], list[Segment]]
) -> tuple[float, float, tuple[float, float], int]:
    """(top-1 on single causes, mean F1, (mean, max) seconds at >= 4,500 leaves, single cases)."""
    top1, singles, f1s, times = 0, 0, [], []
    for c in cases:
        t = time.perf_counter()
        got = method(c)
        dt = time.perf_counter() - t
        if len(c.keys) >= 4500:
            times.append(dt)
        if len(c.truth) == 1:
            singles += 1
            top1 += bool(got) and got[0] in c.truth
        hit = len(set(got) & c.truth)
        f1s.append(2 * hit / (len(got) + len(c.truth)) if got or c.truth else 1.0)
    return (
        top1 / max(singles, 1),
        statistics.fmean(f1s),
        (statistics.fmean(times), max(times)) if times else (float("nan"), float("nan")),
        singles,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--family", choices=["a", "b"], default="a")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cases: list[Case] = []
    while len(cases) < args.cases:
        c = cube(rng, args.family)
        if c is not None:
            cases.append(c)
    big = max(len(c.keys) for c in cases)
    print(f"seed {args.seed}, family {args.family}: {len(cases)} cases, {big:,} leaves at most")
    for name, method in (("detectkd", ours), ("adtributor", adtributor)):
        top1, f1, secs, singles = score(cases, method)
        print(
            f"{name:>10}: top-1 {top1:.1%} ({singles} single-cause cases), set F1 {f1:.3f}, "
            f"{secs[0] * 1000:.0f} ms per explanation at >= 4,500 leaves "
            f"(max {secs[1] * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    main()
