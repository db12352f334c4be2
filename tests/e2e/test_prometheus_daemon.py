"""The real `detectkd run` reading a real Prometheus: history from backfilled blocks, live
values from Prometheus's scrapes of a local exporter, a spike of one region alerting through
the webhook with the series' Prometheus labels, and a series its exporter stops serving
(marked stale by Prometheus) going NO DATA."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.files import REPO, write
from tests.support.http import Receiver, http_server
from tests.support.process import DaemonProcess
from tests.support.prometheus_server import PrometheusServer, installed, remove, start_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not installed(), reason="Debian's prometheus package is not installed"),
]
STEP = 2
EXAMPLES = REPO / "etc" / "detectk" / "examples"


class Exporter:
    """What Prometheus scrapes: one gauge per region, values set by the test."""

    def __init__(self) -> None:
        self.values = {"eu": 100.0, "us": 200.0}

    async def handle(self, request: web.Request) -> web.Response:
        lines = ["# TYPE shop_orders gauge"]
        lines += [f'shop_orders{{region="{r}"}} {v}' for r, v in self.values.items()]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


@pytest.fixture
async def exporter() -> AsyncIterator[tuple[Exporter, str]]:
    exp = Exporter()
    async with http_server(exp.handle, method="GET") as url:
        yield exp, url.removeprefix("http://")


async def test_a_spike_alerts_with_its_labels_and_a_stale_series_goes_no_data(
    daemon: DaemonProcess, receiver: Receiver, exporter: tuple[Exporter, str], tmp_path: Path
) -> None:
    exp, target = exporter
    now = int(time.time())
    # Ten minutes of history, the same series Prometheus's scrapes will continue (same labels).
    lines = ["# TYPE shop_orders gauge"]
    for t in range(now - 600, now - 5, STEP):
        for region, level in (("eu", 100), ("us", 200)):
            labels = f'instance="{target}",job="shop",region="{region}"'
            lines.append(f"shop_orders{{{labels}}} {level + (t // STEP) % 5} {t}")
    prom = PrometheusServer(tmp_path / "prom")
    prom.root.mkdir()
    try:
        prom.backfill("\n".join([*lines, "# EOF", ""]))
        prom.start(scrape=target)
        write(
            daemon.root / "metrics.d" / "orders.yaml",
            f"""\
name: orders
schedule: {{interval: {STEP}s, delay: 0s, start_time: 300s}}
collector:
  type: prometheus
  params: {{url: "{prom.url}", query: "shop_orders"}}
detector:
  type: mad
  params: {{window_size: 100, n_sigma: 5, use_weighted: false, min_samples: 20}}
alerter:
  type: webhook
  params: {{url: "{receiver.url}"}}
""",
        )
        await daemon.start()

        async def judged() -> bool:
            m = await daemon.metric("orders")
            return bool(
                m and m.get("last_run") and m.get("last_value") is not None and not m.get("last_error")
            )

        await daemon.until(judged, timeout=60, what="a successful run")
        assert receiver.received == []  # the history and the live values are normal
        exp.values["eu"] = 5000.0
        fired = await receiver.wait_for(lambda b: b["status"] == "firing", timeout=60)
        assert fired["metric"] == "orders"
        assert fired["series"] == f"instance={target},job=shop,region=eu"
        assert fired["labels"]["region"] == "eu" and fired["labels"]["job"] == "shop"
        assert all(b["series"].endswith("region=eu") for b in receiver.received)
        # The exporter stops serving us: Prometheus marks the series stale at its next scrape
        # (no 5-minute lookback), so its periods are missing and it goes NO DATA.
        del exp.values["us"]
        stopped = time.monotonic()
        gone = await receiver.wait_for(lambda b: b["kind"] == "nodata", timeout=60)
        assert time.monotonic() - stopped < 60  # without staleness markers: 5 minutes of lookback
        assert gone["status"] == "firing" and gone["series"] == f"instance={target},job=shop,region=us"
    finally:
        remove(prom)


def test_the_shipped_example_checks_against_prometheus(tmp_path: Path) -> None:
    """etc/detectk/examples/prometheus_orders.yaml through `detectkd check`, on a counter."""
    hour = 3600
    base = int(time.time() - 4 * hour) // hour * hour
    lines = ["# TYPE shop_orders_total counter"]
    for m in range(181):  # a counter growing 3 (eu) and 7 (us) a minute
        for region, rate in (("eu", 3), ("us", 7)):
            lines.append(f'shop_orders_total{{region="{region}",instance="a"}} {rate * m} {base + 60 * m}')
    prom = start_server("\n".join([*lines, "# EOF", ""]))
    try:
        at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(base + 2 * hour))
        env = {
            "PROMETHEUS_URL": prom.url,
            "DETECTK_DATA_DIR": str(tmp_path / "data"),
            "DETECTK_METRICS_DIR": str(EXAMPLES),
            "DETECTK_PROFILES_FILE": str(EXAMPLES / "profiles.yaml"),
        }
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "detectkd",
                "check",
                "example_prometheus_orders",
                "--at",
                at,
                "--no-alert",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "DETECTK_CONFIG": "", **env},
        )
        assert out.returncode == 0, out.stdout + out.stderr
        # The period 02:00-02:10 is increase(...[10m]) at 02:10: 30 and 70 orders.
        assert "series=region=eu  value=30" in out.stdout, out.stdout
        assert "series=region=us  value=70" in out.stdout, out.stdout
        assert "rule      the period [t, t + 10m) gets the query's value at t + 10m, its end" in out.stdout
    finally:
        remove(prom)
