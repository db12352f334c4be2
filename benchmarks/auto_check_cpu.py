"""CPU of one live check of `auto` (one series, a full window, one point per call).

    flock /work/wt/bench.lock .venv/bin/python benchmarks/auto_check_cpu.py [--checks 3000] \\
        [--params 'dispersion: true'] [--count] [--no-trim] [--warm-days 8]

A one-minute series with a daily cycle (`--count`: whole numbers, a Poisson count, so the
count path runs) is loaded into the runner's window with as much history as `auto` reads;
then `--checks` new points are judged one at a time as the runner does (detect, then add the
point to the window). Prints the process CPU per check (the median of five rounds). The window
keeps what the daemon's does (`window_seconds` + an interval: full, it drops its oldest point
at each append); `--warm-days N` replays N days (untimed, a day per call) before the timed
checks, so that a `weekly_profile` is full (8: a week and a day) as it is in a long-running
daemon; `--no-trim`: a window that never drops one (this benchmark before 2026-12-07,
which so never saw a full window's checks fit their block anew: issue 28).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current
from detectkd.runtime.windows import SeriesWindow

STEP = 60
DAY = 1440  # points


def series(n: int, count: bool, seed: int = 1) -> np.ndarray:
    i = np.arange(n)
    mu = 40 + 30 * np.sin(2 * np.pi * i / 1440)
    rng = np.random.default_rng(seed)
    return rng.poisson(mu).astype(float) if count else mu + rng.normal(0, 2, n)


def one_round(params: Params, checks: int, count: bool, trim: bool = True, warm_days: int = 0) -> float:
    det = AutoDetector(params, STEP)
    history = det.window_seconds(STEP) // STEP
    v = series(history + warm_days * DAY + checks, count)
    window = SeriesWindow(det.window_seconds(STEP) + STEP if trim else 10**9, ())
    for k in range(history):
        window.add(k * STEP, float(v[k]), {})
    det.detect(window.history(), Current(history * STEP, float(v[history]), {}, "s"))  # the rebuild
    window.add(history * STEP, float(v[history]), {})
    first = history + 1
    for _ in range(warm_days):  # replayed a day at a time (a weekly profile fills), untimed
        points = [Current(k * STEP, float(v[k]), {}, "s") for k in range(first, first + DAY)]
        det.detect_many(window.history(), points)
        for c in points:
            window.add(c.time, c.value, {})
        first += DAY
    start = time.process_time()
    for k in range(first, first + checks - 1):
        det.detect(window.history(), Current(k * STEP, float(v[k]), {}, "s"))
        window.add(k * STEP, float(v[k]), {})
    return (time.process_time() - start) / (checks - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=3000)
    ap.add_argument("--params", default="", help="flow-style auto params, e.g. 'dispersion: true'")
    ap.add_argument("--count", action="store_true", help="a count series (the count path)")
    ap.add_argument("--no-trim", action="store_true", help="a window that never drops a point")
    ap.add_argument("--warm-days", type=int, default=0,
                    help="days replayed, untimed, before the checks (8 fills a weekly profile)")  # fmt: skip
    args = ap.parse_args()
    params = Params.model_validate(YAML(typ="safe").load("{" + args.params + "}") or {})
    rounds = [one_round(params, args.checks, args.count, not args.no_trim, args.warm_days) for _ in range(5)]
    warm = f" after {args.warm_days} days" if args.warm_days else ""
    print(f"auto {{{args.params}}} {'count' if args.count else 'float'}{warm}: "
          f"{1000 * statistics.median(rounds):.3f} ms CPU per check (rounds: "
          + ", ".join(f"{1000 * r:.3f}" for r in rounds) + ")")  # fmt: skip


if __name__ == "__main__":
    main()
