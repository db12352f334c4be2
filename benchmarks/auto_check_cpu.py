"""CPU of one live check of `auto` (one series, a full window, one point per call).

    flock /work/wt/bench.lock .venv/bin/python benchmarks/auto_check_cpu.py [--checks 3000] \\
        [--params 'dispersion: true'] [--count] [--no-trim] [--warm-days 8] [--against 'k: v']

A one-minute series with a daily cycle (`--count`: whole numbers, a Poisson count, so the
count path runs) is loaded into the runner's window with as much history as `auto` reads;
then `--checks` new points are judged one at a time as the runner does (detect, then add the
point to the window). Prints the process CPU per check (the median of five rounds). The window
keeps what the daemon's does (`window_seconds` + an interval: full, it drops its oldest point
at each append); `--warm-days N` replays N days (untimed, a day per call) before the timed
checks, so that a `weekly_profile` is full (8: a week and a day) as it is in a long-running
daemon; `--against 'k: v'` checks a second detector with those params on the same series in
turn with the first, check by check (which goes first alternating), and prints both
per-check medians and means of thread CPU (the machine's speed drifts between rounds by
more than a small difference: 0.24-0.32 ms for one build within 20 minutes on 2026-12-07);
`--no-trim`: a window that never drops one (this benchmark before 2026-12-07,
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


Loaded = tuple[AutoDetector, SeriesWindow, np.ndarray, int]


def loaded(params: Params, checks: int, count: bool, trim: bool = True, warm_days: int = 0) -> Loaded:
    """A detector whose window holds as much history as it reads (its state rebuilt), `warm_days`
    replayed after it; the series and the index of the first point to check."""
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
    return det, window, v, first


def check(state: Loaded, k: int) -> None:
    """The live check of the `k`-th point after the first, then its append (as the runner)."""
    det, window, v, first = state
    i = first + k
    det.detect(window.history(), Current(i * STEP, float(v[i]), {}, "s"))
    window.add(i * STEP, float(v[i]), {})


def one_round(params: Params, checks: int, count: bool, trim: bool = True, warm_days: int = 0) -> float:
    state = loaded(params, checks, count, trim, warm_days)
    start = time.process_time()
    for k in range(checks - 1):
        check(state, k)
    return (time.process_time() - start) / (checks - 1)


def interleaved(a: Params, b: Params, checks: int, count: bool, warm: int) -> tuple[list[int], list[int]]:
    """Two detectors on the same series, checked in turn (check k of each, which goes first
    alternating): the thread CPU (ns) of each check, the machine's speed the same for both."""
    states = [loaded(p, checks, count, True, warm) for p in (a, b)]
    spent: tuple[list[int], list[int]] = ([], [])
    for k in range(checks - 1):
        for j in (0, 1) if k % 2 == 0 else (1, 0):
            start = time.thread_time_ns()
            check(states[j], k)
            spent[j].append(time.thread_time_ns() - start)
    return spent


def flow_params(text: str) -> Params:
    """`auto`'s params from flow-style YAML without its braces ('k: v, ...'; '' the defaults)."""
    return Params.model_validate(YAML(typ="safe").load("{" + text + "}") or {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=3000)
    ap.add_argument("--params", default="", help="flow-style auto params, e.g. 'dispersion: true'")
    ap.add_argument("--count", action="store_true", help="a count series (the count path)")
    ap.add_argument("--no-trim", action="store_true", help="a window that never drops a point")
    ap.add_argument("--warm-days", type=int, default=0,
                    help="days replayed, untimed, before the checks (8 fills a weekly profile)")  # fmt: skip
    ap.add_argument("--against", default=None,
                    help="flow-style params of a second detector checked in turn with the first")  # fmt: skip
    args = ap.parse_args()
    params = flow_params(args.params)
    if args.against is not None:
        other = flow_params(args.against)
        spent = interleaved(params, other, args.checks, args.count, args.warm_days)
        for name, ns in zip((args.params, args.against), spent, strict=True):
            print(f"auto {{{name}}}: median {statistics.median(ns) / 1000:.1f} us, "
                  f"mean {statistics.fmean(ns) / 1000:.1f} us CPU per check (checked in turn)")  # fmt: skip
        return
    rounds = [one_round(params, args.checks, args.count, not args.no_trim, args.warm_days) for _ in range(5)]
    warm = f" after {args.warm_days} days" if args.warm_days else ""
    print(f"auto {{{args.params}}} {'count' if args.count else 'float'}{warm}: "
          f"{1000 * statistics.median(rounds):.3f} ms CPU per check (rounds: "
          + ", ".join(f"{1000 * r:.3f}" for r in rounds) + ")")  # fmt: skip


if __name__ == "__main__":
    main()
