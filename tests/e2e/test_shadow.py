"""`shadow:` variants through the real process: a variant with a tighter threshold would
alert on a series the metric does not alert on; its would-be alert is in the API and on the
metric page (in Chromium) and never reaches the webhook, which gets the metric's own alert.
Through a `workers:` supervisor the comparison is proxied to the worker that runs the metric."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import shadow_metric
from tests.support.process import DaemonProcess, chromium


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium()
    yield driver
    driver.quit()


def setup(d: DaemonProcess, url: str) -> None:
    db = d.root / "src.db"
    sqlite3.connect(db).close()
    write(d.root / "metrics.d" / "m.yaml", shadow_metric(db, url, same=False))
    write(d.root / "profiles.yaml", "profiles: {}\n")


async def compared(d: DaemonProcess) -> dict[str, Any] | None:
    status, body = await d.get("/api/v1/metrics/m/shadow?range=1h")
    got: dict[str, Any] = json.loads(body)
    return got if status == 200 and got["variants"][0]["alerts"] == 2 else None


async def test_a_variant_s_would_be_alert_is_shown_and_never_sent(
    daemon: DaemonProcess, receiver: Receiver, browser: webdriver.Chrome
) -> None:
    setup(daemon, receiver.url)
    await daemon.start()
    got = await daemon.until(lambda: compared(daemon), what="the variant's would-be alerts")
    tight = got["variants"][0]
    assert (tight["name"], tight["agreed"], tight["only_variant"]) == ("tight", 1, 1)
    assert {(n["series"], n["status"], n["detector"]) for n in tight["listed"]} == {
        ("series=a", "firing", "tight"),
        ("series=b", "firing", "tight"),
    }
    await receiver.wait_for(lambda p: p.get("status") == "firing")
    # Three more runs: whatever the variant would send has had its chances to leak out.
    runs = int((await daemon.metric("m") or {})["runs"])

    async def ran() -> bool:
        return int(((await daemon.metric("m")) or {}).get("runs", 0)) >= runs + 3

    await daemon.until(ran, what="three more runs")
    assert [(p["status"], p["series"], p["detector"]) for p in receiver.received] == [
        ("firing", "series=b", "threshold")
    ]
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": daemon.auth})
    browser.get(f"{daemon.base}/ui/metrics/m?range=1h")
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#shadow tbody tr")]
    assert rows[0].startswith("(the metric as configured) 1") and rows[1].startswith("tight 2 1 1 0")
    shown = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#shadow-alerts tbody tr")]
    assert any("tight series=a anomaly firing 30" in r for r in shown), shown
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "charts").get_attribute("data-loaded"))
    drawn = browser.execute_script("return window.dtkData.shadow")  # the chart's teal strips
    assert {(s["variant"], s["series"], s["resolved_at"]) for s in drawn} == {
        ("tight", "series=a", None),
        ("tight", "series=b", None),
    }


async def test_a_workers_supervisor_proxies_the_comparison(tmp_path: Path, receiver: Receiver) -> None:
    d = DaemonProcess(tmp_path)
    setup(d, receiver.url)
    await d.start(env={"DETECTK_WORKERS": "2"})
    try:
        got = await d.until(lambda: compared(d), what="the variant's would-be alerts, proxied")
        assert got["variants"][0]["now"]["alerts"] == 2
        status, page = await d.get("/ui/metrics/m?range=1h")
        assert status == 200 and 'id="shadow"' in page and "tight" in page
    finally:
        await d.stop()
