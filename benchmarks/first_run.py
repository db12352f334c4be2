"""The first runs of one many-series `auto` metric in this process (issue 28): `scale.py
--series N`'s metric and pre-loaded store (`--history`, 120 points a series, no restart snapshot), the
`Daemon` object with its scheduler paused, the metric's runs called one after another.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/first_run.py [--series 1000] [--runs 3]

Prints the process's CPU (every thread: the event loop, the judge, the store's) and the wall
time of each run: the first rebuilds each series' state from its window, the next ones are
live checks. Compare builds back to back: PYTHONPATH=<tree> (that tree's `detectkd/`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scale import DETECTORS, METRIC_SERIES, build_source, cpu, preload_store, write_daemon
from detectkd import logs
from detectkd.config.settings import load_settings
from detectkd.runtime.daemon import Daemon

STEP = 60


async def first_runs(series: int, runs: int, history: int) -> list[tuple[float, float]]:
    """(CPU seconds, wall seconds) of each run."""
    with tempfile.TemporaryDirectory(prefix="dtk-first-") as tmp:
        root = Path(tmp)
        now = int(time.time())
        build_source(root / "src.db", 1, STEP, now - 3 * 3600, now + 3600, STEP, series)
        text = METRIC_SERIES.format(i=0, interval=STEP, n=series, detector=DETECTORS["auto"])
        write_daemon(root, [text])
        await preload_store(root / "data" / "detectkd.db", 1, STEP, now, history, series=series)
        os.chdir(root)
        settings = load_settings(root / "detectkd.yaml")
        logs.configure(settings.log_format, "error")
        d = Daemon(settings)
        await d.start()
        d.scheduler.pause()  # the runs below, nothing else
        runtime = next(iter(d.slots.values())).runtime
        last = now - now % STEP - STEP
        out = []
        for k in range(runs):
            c0, t0 = cpu(), time.monotonic()
            await runtime.run(last + (k + 1) * STEP)
            out.append((cpu() - c0, time.monotonic() - t0))
        d.stop_event.set()
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--history", type=int, default=120, help="points stored per series (6800: a full `auto` one)"
    )
    args = ap.parse_args()
    got = asyncio.run(first_runs(args.series, args.runs, args.history))
    for k, (c, w) in enumerate(got, 1):
        print(f"run {k}: CPU {c:.3f} s, wall {w:.3f} s ({args.series} series)")
    if len(got) > 2:
        later = sorted(c for c, _ in got[1:])
        mid = later[len(later) // 2]
        print(f"later runs: median CPU {mid:.3f} s, {mid / args.series * 1e6:.0f} us a series")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
