"""CPU per check of fresh `mad` metrics after their warm-up, in this process (issue 28):
`scale.py --fresh`'s metrics and source, the `Daemon` object with its scheduler running (no
HTTP, no subprocess), measured for `--duration` seconds one interval after every metric judges.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/steady_check.py --metrics 5000 [--grain 0]

`--grain S`: the scheduler's wake-up grain (`runtime.scheduler.GroupedScheduler`; 0: one
wake-up per run, as APScheduler's own timer). `--gap-demo`: instead, the CPU of the same piece
of Python work run back to back and after a sleep of 0.5, 2, 6 and 20 ms (why the grain saves
CPU on this machine). Compare builds back to back: PYTHONPATH=<tree> (that tree's `detectkd/`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scale import DETECTORS, FRESH_ROW_S, METRIC, build_source, cpu, write_daemon
from detectkd import logs
from detectkd.config.settings import load_settings
from detectkd.runtime.daemon import Daemon

STEP = 60


async def steady(n: int, duration: float, grain: float | None) -> tuple[float, int]:
    """(CPU milliseconds per check, checks) of every thread of the process."""
    with tempfile.TemporaryDirectory(prefix="dtk-steady-") as tmp:
        root = Path(tmp)
        now = int(time.time())
        build_source(root / "src.db", n, STEP, now - 1800, now + 1800, FRESH_ROW_S)
        write_daemon(root, (METRIC.format(i=i, interval=STEP, detector=DETECTORS["fresh"]) for i in range(n)))
        os.chdir(root)
        settings = load_settings(root / "detectkd.yaml")
        logs.configure(settings.log_format, "error")
        d = Daemon(settings)
        if grain is not None:
            d.scheduler.grain = grain
        await d.start()
        serve = asyncio.create_task(d.serve())
        while sum(1 for s in d.slots.values() if s.runtime.status.judging is True) < n:  # noqa: ASYNC110
            await asyncio.sleep(1.0)
        await asyncio.sleep(STEP)
        runs0, cpu0 = sum(s.runtime.status.runs for s in d.slots.values()), cpu()
        await asyncio.sleep(duration)
        runs, used = sum(s.runtime.status.runs for s in d.slots.values()) - runs0, cpu() - cpu0
        d.stop_event.set()
        await serve
    return 1000 * used / max(runs, 1), runs


def gap_demo() -> None:
    data = [{"a": i, "b": str(i), "c": [i, i + 1]} for i in range(300)]
    for gap in (0.0, 0.0005, 0.002, 0.006, 0.02):
        spent = 0.0
        for _ in range(200):
            t0 = time.thread_time()
            json.loads(json.dumps(data))
            spent += time.thread_time() - t0
            if gap:
                time.sleep(gap)
        print(f"after a sleep of {gap * 1000:4.1f} ms: {spent / 200 * 1e6:6.1f} µs of CPU")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", type=int, default=5000)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--grain", type=float, default=None, help="wake-up grain, s (default: the daemon's)")
    ap.add_argument("--gap-demo", action="store_true")
    args = ap.parse_args()
    if args.gap_demo:
        gap_demo()
        return 0
    ms, runs = asyncio.run(steady(args.metrics, args.duration, args.grain))
    grain = "default" if args.grain is None else f"{args.grain:g} s"
    print(f"metrics {args.metrics}, grain {grain}: {ms:.3f} ms CPU per check ({runs} checks), "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
