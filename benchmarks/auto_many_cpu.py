"""CPU of a many-series metric's runs with `auto` (one query, many one-minute series).

    flock /work/wt/bench.lock .venv/bin/python benchmarks/auto_many_cpu.py [--series 100] \\
        [--live 240] [--params 'weekly_profile: 0']

`--series` series on one time grid (a daily wave and noise), each window loaded with as much
history as `auto` reads (its first run rebuilds them, `autorebuild`), then `--live` runs of one
point a series, as `runtime.judge` runs a metric: `prepare` with the run's histories and points
(the new blocks fitted together, `autorefit`), then each series' check, the point appended to
its window. Prints the CPU of the first run and the CPU per series check of the live runs
(the median of three rounds)."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.auto_check_cpu import flow_params
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current
from detectkd.runtime.windows import SeriesWindow

STEP = 60


def one_round(params: Params, n_series: int, live: int) -> tuple[float, float]:
    det = AutoDetector(params, STEP)
    history = det.window_seconds(STEP) // STEP
    rng = np.random.default_rng(1)
    t = 1_795_000_020 // STEP * STEP + np.arange(history + live, dtype=np.int64) * STEP
    values = [50 + 10 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 1, t.size) for _ in range(n_series)]
    windows = [SeriesWindow(det.window_seconds(STEP) + STEP, ()) for _ in values]
    for w, v in zip(windows, values, strict=True):
        w.extend(t[:history], v[:history], {})

    def run(i: int) -> None:
        points = {f"s{j}": [Current(int(t[i]), float(v[i]), {}, f"s{j}")] for j, v in enumerate(values)}
        det.prepare([(f"s{j}", w.history) for j, w in enumerate(windows)], points)
        for j, w in enumerate(windows):
            det.detect_many(w.history(), points[f"s{j}"])
            w.add(int(t[i]), float(values[j][i]), {})

    start = time.process_time()
    run(history)
    first = time.process_time() - start
    start = time.process_time()
    for i in range(history + 1, history + live):
        run(i)
    return first, (time.process_time() - start) / ((live - 1) * n_series)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=100)
    ap.add_argument("--live", type=int, default=240, help="live runs after the first")
    ap.add_argument("--params", default="", help="flow-style auto params, e.g. 'weekly_profile: 0'")
    args = ap.parse_args()
    params = flow_params(args.params)
    rounds = [one_round(params, args.series, args.live) for _ in range(3)]
    first = statistics.median(r[0] for r in rounds)
    live = statistics.median(r[1] for r in rounds)
    print(f"auto {{{args.params}}}, {args.series} series: first run {first:.2f} s CPU, "
          f"live {1e6 * live:.0f} us CPU per series check")  # fmt: skip


if __name__ == "__main__":
    main()
