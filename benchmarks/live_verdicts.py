"""Every result of a many-series metric's live checks with `auto`, to compare two builds (issue 28).

    PYTHONPATH=<tree A> .venv/bin/python benchmarks/live_verdicts.py --out a.pkl
    PYTHONPATH=<tree B> .venv/bin/python benchmarks/live_verdicts.py --out b.pkl
    .venv/bin/python benchmarks/live_verdicts.py --compare a.pkl b.pkl

A generated metric of `--series` one-minute series on one grid (counts and gauges, a daily
cycle, steps, spikes, a flat stretch; a few periods missing in every series, some series with
gaps of their own and some new values missing), each in the runner's window (full: `auto`'s
whole read, trimmed at each append, the series' times shared), judged as a run does: the
detector's `prepare` for all series (with the run's points where the build takes them), then
each series' `detect_many`, then the point appended. `--compare` prints how many of the
results differ (every field, floats exactly) and how many alarm.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH's tree: it wins

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current
from detectkd.runtime.gridtimes import TimesPool
from detectkd.runtime.windows import SeriesWindow

STEP = 60


def generate(series: int, n: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    t = 1_795_000_020 // STEP * STEP + np.arange(n, dtype=np.int64) * STEP
    day = np.sin(2 * np.pi * t / 86400)
    out = []
    for j in range(series):
        kind = j % 5
        if kind == 0:  # a small count
            v = rng.poisson(2 + j % 7, n).astype(float)
        elif kind == 1:  # a busy count with a daily cycle
            v = rng.poisson(200 + 80 * day).astype(float)
        elif kind == 2:  # a gauge with a daily cycle
            v = 50 + 10 * day + rng.normal(0, 1, n)
        elif kind == 3:  # a gauge that steps up
            v = rng.normal(100, 5, n)
            v[n - 300 - j % 200 :] += 30.0
        else:  # a gauge with a flat stretch
            v = rng.normal(20, 2, n)
            v[n - 900 : n - 700] = v[n - 900]
        if j % 4 == 1:
            v[n - 1 - rng.integers(0, 120)] += 25 * (1 + np.std(v))  # a spike among the live points
        if j % 17 == 0:
            v[rng.integers(n // 2, n - 200, 3)] = np.nan  # gaps of its own
        if j % 23 == 0:
            v[n - 60 : n - 50] = np.nan  # new values missing
        out.append(v)
    holes = rng.integers(0, n - 200, 8)  # missing in every series
    for v in out:
        v[holes] = np.nan
    return t, out


def run(series: int, history: int, checks: int, seed: int) -> tuple[list[tuple[object, ...]], float]:
    det = AutoDetector(Params(), STEP)
    t, vs = generate(series, history + checks, seed)
    pool = TimesPool()
    windows = [SeriesWindow(det.window_seconds(STEP) + STEP, (), pool=pool) for _ in vs]
    for w, v in zip(windows, vs, strict=True):
        w.extend(t[:history], v[:history], {})
    with_points = "points" in inspect.signature(det.prepare).parameters
    names = [f"s{j}" for j in range(series)]
    out: list[tuple[object, ...]] = []
    cpu = 0.0
    for i in range(history, history + checks):
        start = time.process_time()
        points = {
            s: [Current(int(t[i]), None if np.isnan(v[i]) else float(v[i]), {}, s)]
            for s, v in zip(names, vs, strict=True)
        }
        pairs = [(s, w.history) for s, w in zip(names, windows, strict=True)]
        if with_points:
            det.prepare(pairs, points)
        else:  # a build before `autorefit`
            det.prepare(pairs)
        for s, w in zip(names, windows, strict=True):
            (r,) = det.detect_many(w.history(), points[s])
            w.add(points[s][0].time, points[s][0].value, {})
            out.append((s, int(t[i]), *dataclasses.astuple(r)))
        if i > history:  # the first: the rebuild
            cpu += time.process_time() - start
    return out, cpu / max(1, (checks - 1) * series)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--history", type=int, default=6800)
    ap.add_argument("--checks", type=int, default=61, help="live checks (the first rebuilds)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", default="")
    ap.add_argument("--compare", nargs=2, default=None)
    args = ap.parse_args()
    if args.compare:
        a, b = (pickle.loads(Path(f).read_bytes()) for f in args.compare)
        differ = sum(1 for x, y in zip(a, b, strict=True) if x != y)
        alarms = sum(1 for x in a if x[4])
        print(f"{len(a)} results, {differ} differ; {alarms} alarm in the first")
        return 1 if differ or len(a) != len(b) else 0
    got, cpu = run(args.series, args.history, args.checks, args.seed)
    if args.out:
        Path(args.out).write_bytes(pickle.dumps(got))
    print(f"{len(got)} results, {sum(1 for x in got if x[4])} alarm; {cpu * 1e6:.0f} us CPU a series-check")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
