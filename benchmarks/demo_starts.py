"""Does the demo alert at every start? Its data through `auto`'s defaults at every alignment.

    .venv/bin/python benchmarks/demo_starts.py [--seed 7]

`scripts/demo`'s data is the same draws at every start (the demo's own clock), but where a
start falls on the 10-second periods and on `auto`'s 2-minute blocks (12 periods) is the wall
clock's: 120 alignments. For each, the feeder's rows (`detectkd.demo`, its history and its first
live cycle) are summed per period and region as `demo_orders` sums them and judged by
`auto` with its defaults, as the daemon would. It prints the alignments (the start's second
modulo 120) where the `eu` spike or the `us` dip raised no alarm, and their count.
"""

from __future__ import annotations

import argparse
import functools
import random
from collections import defaultdict

from detectkd import demo
from detectkd.detectors.auto import AutoDetector
from detectkd.detectors.autoparams import Params
from detectkd.detectors.base import Current, History

LIVE_S = 200  # the first cycle's `eu` spike (+35 s .. +60 s) and `us` dip (+165 s .. +195 s)
ANOMALIES = (("eu", 35, 60), ("us", 165, 195))
GRID = demo.PERIOD_S * Params().refresh  # auto's block at the demo's step: 120 s
BASE = 1_800_000_000 - 1_800_000_000 % GRID  # a start on the grid


@functools.cache
def feed(seed: int, t0: int) -> tuple[list[tuple[int, dict[str, int]]], int]:
    """Orders per second and region, history then live, as the feeder started at `t0` writes
    them: seconds and the anomalies' origin relative to `t0` (the same for every start in the
    same second of a period)."""
    rng = random.Random(seed)
    day0, origin = demo.day_start(t0), demo.anomaly_origin(t0)
    out: list[tuple[int, dict[str, int]]] = []
    for t in range(t0 - demo.HISTORY_S, t0 + LIVE_S):
        timeline = t0 + 10 * demo.CYCLE_S if t < t0 else origin  # history: no anomaly
        rows, _ = demo.second_rows(float(t), timeline, rng, day0)
        counts: dict[str, int] = defaultdict(int)
        for _, region, _ in rows:
            counts[region] += 1
        out.append((t - t0, counts))
    return out, int(origin) - t0


def missed(seed: int, t0: int) -> list[str]:
    seconds, since = feed(seed, BASE + t0 % demo.PERIOD_S)  # its second of a period
    origin = t0 + since
    found = []
    for region, start, end in ANOMALIES:
        per: dict[int, int] = defaultdict(int)
        for r, counts in seconds:
            t = t0 + r
            per[t - t % demo.PERIOD_S] += counts.get(region, 0)
        times = sorted(per)
        det = AutoDetector(Params(), demo.PERIOD_S)
        results = det.detect_many(History.empty(), [Current(t, float(per[t]), {}, "s") for t in times])
        hit = [r.anomaly for t, r in zip(times, results, strict=True) if origin + start <= t < origin + end]
        if not any(hit):
            found.append(region)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7, help="the feeder's --seed (its default: 7)")
    args = ap.parse_args()
    bad = 0
    for offset in range(GRID):
        regions = missed(args.seed, BASE + offset)
        if regions:
            bad += 1
            print(f"start at {offset:4d} s of the grid: no alarm on {', '.join(regions)}", flush=True)
    print(f"seed {args.seed}: {bad} of {GRID} alignments missed an anomaly", flush=True)


if __name__ == "__main__":
    main()
