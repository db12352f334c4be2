"""History loading benchmark: a first start's 30 days of history, `kill -9` in the middle.

    .venv/bin/python benchmarks/history.py [--series 10] [--days 30] [--kill-at 0.3] [--live 200]

Builds a SQLite source with `--series` one-minute series over `--days` days and one metric
reading them all (`start_time: {days}d`, `batch_load_days: 1`), plus `--live` one-second
metrics that only run live. Starts the real daemon with the default settings, kills it with
SIGKILL once the history is `--kill-at` loaded, starts it again, and waits until the history
is done. Prints the time to load, the periods missing afterwards (the gap a crash left
before the loader resumed), and the scheduler lag of the live metrics while the history
loaded and for as long again afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.scale import delta, histogram, quantile, scrape, start  # noqa: E402
from tests.support.net import free_port  # noqa: E402

STEP = 60


def build(root: Path, series: int, days: int, live: int, port: int, now: int) -> None:
    conn = sqlite3.connect(root / "src.db")
    conn.execute("CREATE TABLE src (series TEXT, period_time TEXT, value REAL)")
    first = now - now % STEP - (days + 1) * 86400
    for t0 in range(first, now + 3600, 86400):  # a day at a time: bounded memory
        rows = [
            (f"s{i}", time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)), 100.0 + (i + t // STEP) % 7)
            for t in range(t0, min(t0 + 86400, now + 3600), STEP)
            for i in range(series)
        ]
        conn.executemany("INSERT INTO src VALUES (?,?,?)", rows)
    conn.execute("CREATE INDEX src_t ON src (period_time)")
    conn.commit()
    conn.close()
    (root / "metrics.d").mkdir()
    (root / "metrics.d" / "hist.yaml").write_text(f"""\
name: hist
schedule: {{interval: 1m, start_time: {days}d, batch_load_days: 1}}
collector:
  type: sqlite
  multi_period: true
  series_columns: [series]
  params:
    database: {root}/src.db
    query: >-
      SELECT series, period_time, value FROM src
      WHERE period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
detector:
  type: mad
  params: {{window_size: 1d, n_sigma: 5}}
alerter:
  type: log
""")
    for i in range(live):
        (root / "metrics.d" / f"live{i}.yaml").write_text(f"""\
name: live{i}
schedule: {{interval: 1s}}
collector:
  type: sqlite
  params:
    database: {root}/src.db
    query: SELECT '{{{{ period_start }}}}' AS period_time, 1.0 AS value
alerter:
  type: log
""")
    (root / "detectkd.yaml").write_text(
        f"metrics_dir: metrics.d\nprofiles_file: null\ndata_dir: data\n"
        f"listen: 127.0.0.1:{port}\nlog_format: json\n"
    )


def progress(text: str) -> float:
    m = re.search(r'^detectk_history_progress_ratio\{metric="hist"\} (\S+)$', text, re.M)
    return float(m[1]) if m else 0.0


def wait_progress(port: int, at_least: float, limit_s: float = 3600) -> str:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        text = scrape(port)
        if progress(text) >= at_least:
            return text
        time.sleep(0.5)
    raise SystemExit(f"history not {at_least:.0%} loaded after {limit_s:g}s")


def missing(root: Path, series: int, days: int, now: int) -> tuple[int, int]:
    """(periods expected, periods missing) over every series from start_time to the watermark."""
    with sqlite3.connect(root / "data" / "detectkd.db") as conn:
        (wm,) = conn.execute("SELECT period FROM dtk_watermarks WHERE metric = 'hist'").fetchone()
        (have,) = conn.execute(
            "SELECT count(*) FROM dtk_datapoints WHERE metric = 'hist' AND period >= ? AND period <= ?",
            (now - days * 86400 + STEP, wm),
        ).fetchone()
    expected = series * ((wm - (now - days * 86400 + STEP)) // STEP + 1)
    return expected, expected - have


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--kill-at", type=float, default=0.3)
    ap.add_argument("--live", type=int, default=200)
    args = ap.parse_args()
    print(
        f"machine: {os.cpu_count()} cpu, python {sys.version.split()[0]}; {args.series} one-minute "
        f"series x {args.days} days of history, {args.live} live 1 s metrics, "
        f"kill -9 at {args.kill_at:.0%}"
    )
    with tempfile.TemporaryDirectory(prefix="dtk-history-") as tmp:
        root, port, now = Path(tmp), free_port(), int(time.time())
        build(root, args.series, args.days, args.live, port, now)
        began = time.monotonic()
        proc = start(root, port)
        wait_progress(port, args.kill_at)
        killed_at = time.monotonic() - began
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        restarted = time.monotonic()
        proc = start(root, port)
        first = scrape(port)
        resumed_from = progress(first)
        last = wait_progress(port, 1.0)
        loading_s = time.monotonic() - restarted
        during = delta(
            histogram(first, "detectk_scheduler_lag_seconds"),
            histogram(last, "detectk_scheduler_lag_seconds"),
        )
        time.sleep(loading_s)
        after = delta(
            histogram(last, "detectk_scheduler_lag_seconds"),
            histogram(scrape(port), "detectk_scheduler_lag_seconds"),
        )
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        expected, gap = missing(root, args.series, args.days, now)
    print(f"killed at {killed_at:.1f}s; resumed from {resumed_from:.1%}; rest loaded in {loading_s:.1f}s")
    print(f"periods expected {expected:,}, missing {gap:,}")
    print(
        f"live lag while loading: p50 {quantile(during, 0.5):.3f}s p99 {quantile(during, 0.99):.3f}s; "
        f"afterwards: p50 {quantile(after, 0.5):.3f}s p99 {quantile(after, 0.99):.3f}s; "
        f"exit {code}"
    )
    return 0 if gap == 0 and code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
