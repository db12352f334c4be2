"""A first start of fresh `auto` metrics in this process (issue 28): `scale.py --fresh
--detector auto`'s metrics and source, the `Daemon` object without HTTP or a subprocess.
`--detector mad`: `scale.py --fresh`'s instead (a `mad` detector with a 100-point window, 30
minutes of 10-second rows in the source).

    .venv/bin/python benchmarks/fresh_inprocess.py --metrics 2000 [--source-qps 20000] [--first-checks 2000]

Prints the seconds from ready until every metric judges and the process's CPU meanwhile (every
thread: the event loop, the source's and the store's), per metric. Faster to iterate on than
the daemon (a 2,000-metric run takes about 30 s), and the same code path from the loader's
warm-ups to each metric's first check; compare builds back to back. This script puts its own
tree first on `sys.path`, so PYTHONPATH does not choose the build: run a copy of it inside the
tree compared (`benchmarks/` and `tests/support/` beside that tree's `detectkd/`).
`--first-checks N` times `auto`'s first check alone instead: N fresh detectors, each judging
a point after a warm-up's 62-point history (the |z| rebuild), the thread's CPU per check.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.scale import (  # noqa: E402
    DETECTORS,
    FRESH_ROW_S,
    METRIC,
    METRIC_PER_PERIOD,
    build_source,
    cpu,
    write_daemon,
)
from detectkd import logs  # noqa: E402
from detectkd.config.settings import load_settings  # noqa: E402
from detectkd.detectors.auto import AutoDetector  # noqa: E402
from detectkd.detectors.autoparams import Params  # noqa: E402
from detectkd.detectors.base import Current, History  # noqa: E402
from detectkd.runtime.daemon import Daemon  # noqa: E402

STEP = 60


async def fresh(n: int, qps: float, detector: str = "auto") -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dtk-fresh-") as tmp:
        root = Path(tmp)
        now = int(time.time())
        if detector == "mad":  # `scale.py --fresh`'s: a 100-point window, 30 minutes of 10-second rows
            build_source(root / "src.db", n, STEP, now - 1800, now + 3600, FRESH_ROW_S)
            fmt = {"detector": DETECTORS["fresh"]}
            texts = (METRIC.format(i=i, interval=STEP, **fmt) for i in range(n))
        else:
            build_source(root / "src.db", n, STEP, now - 8 * 3600, now + 3600, STEP)
            texts = (METRIC_PER_PERIOD.format(i=i, interval=STEP) for i in range(n))
        write_daemon(root, texts, f"history:\n  source_qps: {qps:g}\n")
        os.chdir(root)
        settings = load_settings(root / "detectkd.yaml")
        logs.configure(settings.log_format, "error")
        d = Daemon(settings)
        t0 = time.monotonic()
        await d.start()
        serve = asyncio.create_task(d.serve())
        t1, c1 = time.monotonic(), cpu()
        while sum(1 for s in d.slots.values() if s.runtime.status.judging is True) < n:  # noqa: ASYNC110
            await asyncio.sleep(1.0)  # polled (each poll reads every metric), as scale.py polls /metrics
        t2, c2 = time.monotonic(), cpu()
        d.stop_event.set()
        await serve
    return {
        "ready_s": t1 - t0,
        "judging_s": t2 - t1,
        "cpu_s": c2 - c1,
        "cpu_ms_per_metric": (c2 - c1) / n * 1e3,
    }


def first_checks(n: int) -> float:
    """The thread's CPU per first check of a fresh detector on a 62-point history (ms)."""
    rng = np.random.default_rng(0)
    end = 1_796_000_000 // STEP * STEP
    cases = []
    for i in range(n):
        t = np.arange(end - 62 * STEP, end, STEP, dtype=np.int64) - (i % 12) * STEP  # every block phase
        v = 100.0 + (i + t // STEP) % 7 if i % 2 else rng.normal(100, 5, t.size)  # counts or not
        point = Current(int(t[-1]) + STEP, float(v[-1]), {}, "")
        cases.append((AutoDetector(Params(), STEP), History(t, v.astype(np.float64), {}, 1 + i), point))
    started = time.thread_time()
    for det, history, point in cases:
        det.detect(history, point)
    return (time.thread_time() - started) / n * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", type=int, default=2000)
    ap.add_argument("--source-qps", type=float, default=20000.0)
    ap.add_argument("--first-checks", type=int, default=0)
    ap.add_argument("--detector", choices=["auto", "mad"], default="auto", help="mad: scale.py --fresh's")
    args = ap.parse_args()
    if args.first_checks:
        print(f"first check: {first_checks(args.first_checks):.3f} ms of CPU")
        return 0
    got = asyncio.run(fresh(args.metrics, args.source_qps, args.detector))
    print(
        f"metrics {args.metrics}, source_qps {args.source_qps:g}: "
        + ", ".join(f"{k} {v:.2f}" for k, v in got.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
