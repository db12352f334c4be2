"""Backtest speed: a year of 1-minute data through the daemon's own replay path.

    .venv/bin/python benchmarks/backtest_speed.py [--days 365] [--detector mad_hourly]

Writes a CSV (daily cycle, noise, a few incidents), then runs
`detectkd.commands.backtest.backtest` on it exactly as `detectkd backtest` does:
the csv collector in `batch_load_days` batches, the detector, the alert state
machine, the per-series summary. Prints wall time, points per second and the
peak RSS. Detector configurations:

  threshold:   the replay path itself (collect, windows, state machine, summary)
  auto, zscore, mad, seasonal, forecast, iqr: the detector with its default parameters
  mad_hourly:  mad, 30-day window, seasonal_features [hour_of_day], unweighted
  mad_weighted: mad, 30-day window, hour_of_day, DetectK's default exp_decay_factor 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectkd.commands.backtest import backtest  # noqa: E402
from detectkd.specs.loader import load_metrics  # noqa: E402

START = 1_735_689_600  # 2025-01-01 00:00 UTC

DETECTORS = {
    "threshold": "type: threshold\n  params: {operator: greater_than, threshold: 1000}",
    "auto": "type: auto",
    "auto_median": "type: auto\n  params: {trend: false}",  # the level as the window's median
    "zscore": "type: zscore",
    "mad": "type: mad",
    "seasonal": "type: seasonal",
    "forecast": "type: forecast",
    "iqr": "type: iqr",
    "mad_hourly": (
        "type: mad\n  params: {window_size: 30d, n_sigma: 5, use_weighted: false, min_samples: 30,\n"
        "           seasonal_features: [hour_of_day]}"
    ),
    "mad_weighted": (
        "type: mad\n  params: {window_size: 30d, n_sigma: 5, min_samples: 30,\n"
        "           seasonal_features: [hour_of_day]}"
    ),
}


def write_csv(path: Path, days: int) -> int:
    n = days * 1440
    rng = np.random.default_rng(1)
    t = np.arange(n)
    values = 200 + 80 * np.sin(2 * math.pi * (t % 1440) / 1440) + rng.normal(0, 8, n)
    for start in rng.integers(min(1440 * 31, n // 2), n - 120, size=max(1, days // 30)):  # incidents
        values[start : start + 60] *= 0.3
    times = START + t * 60
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        np.savetxt(fh, np.column_stack([times, values]), fmt=["%d", "%.3f"], delimiter=",")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--detector", choices=list(DETECTORS), nargs="+", default=["threshold", "mad_hourly"])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dtk-backtest-"))
    t0 = time.perf_counter()
    n = write_csv(tmp / "series.csv", args.days)
    print(f"{n:,} one-minute points ({args.days} days), CSV written in {time.perf_counter() - t0:.1f} s")
    for name in args.detector:
        (tmp / "m").mkdir(exist_ok=True)
        (tmp / "m" / "series.yaml").write_text(
            "name: series\nschedule: {interval: 1m, batch_load_days: 30}\n"
            f"collector:\n  type: csv\n  params: {{path: {tmp / 'series.csv'}}}\n"
            f"detector:\n  {DETECTORS[name]}\n"
            "alerter:\n  type: log\n  conditions: {consecutive_anomalies: 3}\n"
        )
        result = load_metrics([tmp / "m"], None, env={})
        assert result.ok, result.all_errors()
        spec = result.metrics["series"]
        out = io.StringIO()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        code = asyncio.run(backtest(spec, START, START + n * 60, None, out=out))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        assert code == 0, out.getvalue()
        summary = out.getvalue().splitlines()[1].strip()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{name:<13} {wall:7.1f} s wall, {cpu:7.1f} s CPU, {n / wall:>9,.0f} points/s, "
            f"peak RSS {rss:,.0f} MiB  | {summary}"
        )


if __name__ == "__main__":
    main()
