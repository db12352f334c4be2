"""Web UI response times on a large daemon (issue 16).

    .venv/bin/python benchmarks/ui.py [--metrics 10000] [--history 1440] [--requests 20] [--warmup 120]

Starts the real daemon with `--metrics` `mad` metrics at 60 s (SQLite source and store,
`--history` stored points per metric: a day of minutes), waits until every metric ran,
waits `--warmup` seconds more (the first runs load every window from the store), then times
`--requests` rounds of sequential GETs of each page and JSON endpoint the UI uses and
prints the median and worst time and the size of each answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import scale  # noqa: E402


def timed(urls: dict[str, str], n: int) -> dict[str, tuple[float, float, int]]:
    """`n` rounds over every URL in turn (so each sees the same load), per URL: median,
    worst, size."""
    times: dict[str, list[float]] = {label: [] for label in urls}
    size: dict[str, int] = {}
    for _ in range(n):
        for label, url in urls.items():
            began = time.perf_counter()
            with urllib.request.urlopen(url, timeout=60) as r:
                size[label] = len(r.read())
            times[label].append(time.perf_counter() - began)
    return {k: (sorted(v)[len(v) // 2], max(v), size[k]) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", type=int, default=10000)
    ap.add_argument("--history", type=int, default=1440)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--warmup", type=float, default=120, help="seconds to wait after every metric ran")
    args = ap.parse_args()
    n, interval = args.metrics, 60
    print(
        f"machine: {os.cpu_count()} cpu, python {sys.version.split()[0]}, {n} mad metrics at {interval}s, "
        f"{args.history} stored points each, {args.requests} requests per URL"
    )
    with tempfile.TemporaryDirectory(prefix="dtk-ui-") as tmp:
        root = Path(tmp)
        now = int(time.time())
        scale.build_source(root / "src.db", n, interval, now - 2 * interval, now + 3600)
        asyncio.run(scale.preload_store(root / "data" / "detectkd.db", n, interval, now, args.history))
        port = scale.write_daemon(
            root,
            (scale.METRIC.format(i=i, interval=interval, detector=scale.DETECTORS["mad"]) for i in range(n)),
        )
        proc = scale.start(root, port)
        try:
            deadline = time.monotonic() + 600
            while scale.metrics_run(scale.scrape(port)) < n and time.monotonic() < deadline:
                time.sleep(2)
            time.sleep(args.warmup)  # the first runs load every window from the store: let them pass
            base = f"http://127.0.0.1:{port}"
            urls = {
                "overview, first page (100)": "/",
                "overview, filtered by name": "/?name=m123",
                "overview, page 50": "/?offset=5000",
                "metric page": "/ui/metrics/m1",
                "series, 1 day": "/api/v1/metrics/m1/series?range=1d",
                "alerts page": "/ui/alerts",
                "feedback of a metric": "/api/v1/metrics/m1/feedback",
                "API, first 100 metrics": "/api/v1/metrics?limit=100",
                "uPlot (static)": "/ui/static/uplot/uPlot.iife.min.js",
            }
            print(f"{'':30} {'median':>10} {'worst':>10} {'bytes':>10}")
            results = timed({k: base + v for k, v in urls.items()}, args.requests)
            for label, (p50, worst, size) in results.items():
                print(f"{label:30} {p50 * 1000:>8.1f}ms {worst * 1000:>8.1f}ms {size:>10}", flush=True)
        finally:
            proc.terminate()
            proc.wait(120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
