"""The cost of `export: true` on /metrics: N exported series (detectk_series_* x 5 families)
in one daemon's telemetry. Prints the time of one metric's update per run, of a scrape's
rendering (what /metrics adds, in its worker thread) and the memory the lines hold.

    .venv/bin/python -m benchmarks.series_export --series 10000 --per-metric 100
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from detectkd.telemetry import Telemetry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--per-metric", type=int, default=100, help="series per metric")
    args = ap.parse_args()
    metrics = max(1, args.series // args.per_metric)
    samples = {
        m: {
            f"region=r{i},shop=s{i % 7}": (
                {"region": f"r{i}", "shop": f"s{i % 7}"},
                (1234.5 + i, 1200.0, 1100.0, 1300.0, 0.12),
            )
            for i in range(args.per_metric)
        }
        for m in range(metrics)
    }
    tracemalloc.start()
    t = Telemetry(export_cap=args.series)
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    for m, s in samples.items():
        t.export_series(f"metric_{m}", s)
    first = time.perf_counter() - t0
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    t0 = time.perf_counter()
    rounds = 5
    for m, s in samples.items():
        for _ in range(rounds):
            t.export_series(f"metric_{m}", s)
    update = (time.perf_counter() - t0) / (metrics * rounds)
    t0 = time.perf_counter()
    body = b""
    for _ in range(rounds):
        body = t.exposition()
    scrape = (time.perf_counter() - t0) / rounds
    base = Telemetry()
    t0 = time.perf_counter()
    for _ in range(rounds):
        base.exposition()
    empty = (time.perf_counter() - t0) / rounds
    print(f"series exported: {t.series_export.count:,} ({metrics} metrics x {args.per_metric})")
    print(f"first export of all: {first * 1000:.0f} ms; one metric's update per run: {update * 1e6:.0f} us")
    mb, per = len(body) / 1e6, held / max(1, t.series_export.count)
    print(f"scrape: {scrape * 1000:.1f} ms for {mb:.1f} MB (without the series: {empty * 1000:.1f} ms)")
    print(f"memory held by the lines: {held / 2**20:.1f} MiB ({per:.0f} B per series)")


if __name__ == "__main__":
    main()
