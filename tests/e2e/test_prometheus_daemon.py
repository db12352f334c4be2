"""The real `detectkd run` reading a real Prometheus: history from backfilled blocks, live
values from Prometheus's scrapes of a local exporter, and a spike of one region alerting
through the webhook with the series' Prometheus labels."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import Receiver, http_server, write
from tests.e2e.conftest import DaemonProcess
from tests.prometheus_server import PrometheusServer, installed, remove

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not installed(), reason="Debian's prometheus package is not installed"),
]
STEP = 2


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


async def test_a_spike_in_one_prometheus_series_alerts_with_its_labels(
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
    finally:
        remove(prom)
