"""The web UI in a real headless Chromium (Debian's chromium + chromium-driver, Selenium)
against the real daemon: the overview lists and filters the metrics, a metric page draws
its stored series with uPlot and zooms when dragged; without credentials nothing is shown.

`DETECTKD_SCREENSHOTS=docs/ui` also saves the pages' screenshots there (docs/ui.md)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Receiver, write
from tests.e2e.conftest import DaemonProcess, Source, fill, metric_yaml

STEP = 2


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    exe = shutil.which("chromium")
    driver_exe = shutil.which("chromedriver")
    assert exe and driver_exe, "scripts/test installs Debian's chromium and chromium-driver"
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_exe), options=opts)
    yield driver
    driver.quit()


def authorize(driver: webdriver.Chrome, headers: dict[str, str]) -> None:
    """Basic auth for every request of the page (the daemon's web config has a user)."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})


def shot(driver: webdriver.Chrome, name: str) -> None:
    where = os.environ.get("DETECTKD_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(where) / f"{name}.png"))


def wait(driver: webdriver.Chrome, check: Any, timeout: float = 20) -> Any:
    return WebDriverWait(driver, timeout).until(lambda d: check(d))


async def test_overview_filters_and_a_metric_chart_zooms_in_chromium(
    daemon: DaemonProcess, receiver: Receiver, browser: webdriver.Chrome
) -> None:
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    spike = now - now % STEP - 20 * STEP
    for name in ("orders", "signups"):
        fill(src, name, now - 400, now + 300, STEP, {spike: 900.0} if name == "orders" else {})
        write(daemon.root / "metrics.d" / f"{name}.yaml", metric_yaml(name, src.path, receiver.url))
    await daemon.start()
    await daemon.until(lambda: _all_ran(daemon), timeout=60, what="both metrics ran")

    async with aiohttp.ClientSession() as s, s.get(daemon.base + "/") as r:
        assert r.status == 401  # the pages are behind the web config's users, like the API
    authorize(browser, daemon.auth)
    browser.get(daemon.base + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ["orders", "signups"]
    assert "2 metrics running" in browser.find_element(By.ID, "running").text
    shot(browser, "overview")
    browser.find_element(By.ID, "filter-name").send_keys("ord")
    browser.find_element(By.ID, "filter-apply").click()
    wait(browser, lambda d: "name=ord" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ["orders"]

    rows[0].find_element(By.TAG_NAME, "a").click()
    wait(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-loaded") == "true")
    assert browser.execute_script("return window.dtkCharts.length") == 1
    values = browser.execute_script("return window.dtkCharts[0].data[1].filter(v => v !== null).length")
    assert values >= 50  # the stored history (start_time: 120s) and the live runs
    anomalies = browser.execute_script("return window.dtkCharts[0].data[5].filter(v => v !== null)")
    assert anomalies == [900.0]  # the spike, from the stored detections
    assert '"name": "orders"' in browser.find_element(By.ID, "config").text
    shot(browser, "metric")
    before = browser.execute_script("const s = window.dtkCharts[0].scales.x; return [s.min, s.max]")
    over = browser.find_element(By.CSS_SELECTOR, ".u-over")
    width = over.size["width"]
    ActionChains(browser).move_to_element_with_offset(over, -width // 4, 0).click_and_hold().move_by_offset(
        width // 3, 0
    ).release().perform()  # drag across a third of the plot: zoom to it
    after = wait(browser, lambda d: _zoomed(d, before))
    assert before[0] < after[0] < after[1] < before[1]
    assert await daemon.stop() == 0


async def _all_ran(d: DaemonProcess) -> bool:
    api = {m["name"]: m for m in (await d.api())["metrics"]}
    return all(
        api.get(n, {}).get("runs", 0) >= 2 and "history" not in api.get(n, {}) for n in ("orders", "signups")
    )


def _zoomed(driver: webdriver.Chrome, before: list[float]) -> list[float] | None:
    now: list[float] = driver.execute_script("const s = window.dtkCharts[0].scales.x; return [s.min, s.max]")
    return now if now != before else None


async def test_an_alert_is_silenced_in_two_clicks_and_the_silence_expired(
    daemon: DaemonProcess, receiver: Receiver, browser: webdriver.Chrome
) -> None:
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    fill(
        src,
        "orders",
        now - 400,
        now + 300,
        STEP,
        {t: 900.0 for t in range(now + 4 - now % STEP, now + 300, STEP)},
    )
    write(daemon.root / "metrics.d" / "orders.yaml", metric_yaml("orders", src.path, receiver.url))
    await daemon.start()
    await daemon.until(lambda: _state(daemon, "firing"), timeout=60, what="orders FIRING")

    async with aiohttp.ClientSession() as s:  # without credentials: no page, no write
        async with s.get(daemon.base + "/ui/alerts") as r:
            assert r.status == 401
        async with s.post(daemon.base + "/api/v1/silences", json={"matchers": ["metric=orders"]}) as r:
            assert r.status == 401
    authorize(browser, daemon.auth)
    browser.get(daemon.base + "/ui/alerts")
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#alerts tbody tr")
    assert "FIRING" in row.text and "orders" in row.text
    shot(browser, "alerts")
    row.find_element(By.CSS_SELECTOR, "button.silence").click()  # the second click: the first opened the page
    wait(browser, lambda d: d.current_url.endswith("/ui/silences"))
    (srow,) = browser.find_elements(By.CSS_SELECTOR, "#silences tbody tr[data-id]")
    assert "metric=orders" in srow.text and srow.find_element(By.CLASS_NAME, "silence-state").text == "active"
    _, body = await daemon.get("/api/v1/silences")
    (stored,) = json.loads(body)["silences"]
    assert stored["comment"] == "from the alerts page" and stored["active"]
    shot(browser, "silences")
    srow.find_element(By.CSS_SELECTOR, "button.expire").click()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#silences tbody tr").text.count("active") == 0)
    _, body = await daemon.get("/api/v1/silences")
    assert json.loads(body)["silences"] == []  # expired: no longer current
    browser.get(daemon.base + "/ui/outbox")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Outbox"
    assert await daemon.stop() == 0


async def _state(d: DaemonProcess, state: str) -> bool:
    m = await d.metric("orders")
    return m is not None and m["state"] == state
