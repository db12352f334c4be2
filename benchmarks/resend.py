"""What re-sending active alerts to Alertmanager costs (issue 17).

    .venv/bin/python benchmarks/resend.py [--alerts 1000] [--interval 10] [--duration 60]

Starts a real Alertmanager (Debian's `prometheus-alertmanager`, private port and storage)
and the real daemon with `--alerts` metrics whose single series is over a threshold from
the first run, so every metric has one active alert. Measures the daemon for `--duration`
seconds once every alert fired, twice: with `resend_delay` equal to the interval (every run
re-sends) and with `resend_delay: 1h` (nothing is re-sent in the window). Prints the daemon's
CPU, the posts Alertmanager accepted (`detectk_alertmanager_sent_total`), the outbox depth
and the scheduler lag of each, and the difference per 1,000 active alerts.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.scale import (  # noqa: E402
    build_source,
    cpu_seconds,
    delta,
    histogram,
    quantile,
    scrape,
    start,
    write_daemon,
)
from tests.support.alertmanager_server import AlertmanagerServer  # noqa: E402
from tests.support.net import free_port  # noqa: E402

METRIC = """\
name: m{i}
schedule: {{interval: {interval}s, delay: 0s}}
collector:
  profile: src
  params:
    query: >-
      SELECT period_time, value FROM src WHERE m = {i}
      AND period_time >= '{{{{ period_start }}}}' AND period_time < '{{{{ period_finish }}}}'
detector:
  type: threshold
  params: {{threshold: 50}}
alerter:
  type: alertmanager
  params: {{url: "{am}", resend_delay: {delay}}}
"""


def total(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M))


def run(n: int, interval: int, duration: int, delay: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dtk-resend-") as tmp:
        root = Path(tmp)
        webhook_port = free_port()  # nothing listens: Alertmanager's own notifications fail, harmless
        am = AlertmanagerServer(root / "am", f"http://127.0.0.1:{webhook_port}/")
        am.start()
        try:
            now = int(time.time())
            build_source(root / "src.db", n, interval, now - 5 * interval, now + duration + 600)  # 100-106
            texts = (METRIC.format(i=i, interval=interval, am=am.url, delay=delay) for i in range(n))
            port = write_daemon(root, texts)
            proc = start(root, port)
            try:
                deadline = time.monotonic() + 600
                while total(scrape(port), "detectk_alertmanager_sent_total") < n:
                    if time.monotonic() > deadline:
                        raise SystemExit("not every alert fired within 10 minutes")
                    time.sleep(1.0)
                a = scrape(port)
                cpu_a, t_a = cpu_seconds(proc.pid), time.monotonic()
                time.sleep(duration)
                b = scrape(port)
                cpu_b, t_b = cpu_seconds(proc.pid), time.monotonic()
                in_am = len(am.alerts())
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            lag = delta(
                histogram(a, "detectk_scheduler_lag_seconds"), histogram(b, "detectk_scheduler_lag_seconds")
            )
            secs = t_b - t_a
            sent = "detectk_alertmanager_sent_total"
            return {
                "posts_per_s": (total(b, sent) - total(a, sent)) / secs,
                "cpu_per_s": (cpu_b - cpu_a) / secs,
                "outbox_pending": total(b, "detectk_outbox_pending"),
                "lag_p99_s": quantile(lag, 0.99),
                "alerts_in_alertmanager": float(in_am),
            }
        finally:
            am.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--duration", type=int, default=60)
    args = ap.parse_args()
    print(
        f"machine: {os.cpu_count()} cpu, python {sys.version.split()[0]}, {args.alerts} active alerts, "
        f"interval {args.interval}s, measured {args.duration}s"
    )
    results = {}
    for label, delay in (("re-sending", f"{args.interval}s"), ("not re-sending", "1h")):
        r = results[label] = run(args.alerts, args.interval, args.duration, delay)
        print(f"{label:>15}: " + "  ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
    on, off = results["re-sending"], results["not re-sending"]
    posts = on["posts_per_s"] - off["posts_per_s"]
    cpu = on["cpu_per_s"] - off["cpu_per_s"]
    scale = 1000 / args.alerts
    per = 1000 * cpu / max(posts, 1e-9)
    print(
        f"re-sends per second per 1,000 active alerts: {posts * scale:.1f}; daemon CPU for them: "
        f"{cpu * scale * 100:.1f} % of a core ({per:.2f} ms per re-send)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
