"""The web UI in a real headless Chromium (Debian's chromium + chromium-driver, Selenium)
against the real daemon: the overview lists and filters the metrics, a metric page draws
its stored series with uPlot and zooms when dragged; without credentials nothing is shown.

`DETECTKD_SCREENSHOTS=docs/ui` also saves the pages' screenshots there (docs/ui.md)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from detectkd.alerting.alert import Alert
from detectkd.storage.base import NewOutboxItem, RunRecord
from detectkd.storage.sqlite import SqliteStore
from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import Source, fill, metric_yaml
from tests.support.process import USER, DaemonProcess, chromium

STEP = 2


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver = chromium()
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
    """Poll `check` until it answers; a page that reloads meanwhile (every write reloads it)
    leaves elements of the old document behind: those polls are retried, not failures."""
    retried = (StaleElementReferenceException, NoSuchElementException)

    def polled(d: webdriver.Chrome) -> Any:
        try:
            return check(d)
        except WebDriverException as exc:  # the same race, as Chromium 156 sometimes words it
            if "does not belong to the document" in str(exc):
                return None
            raise

    return WebDriverWait(driver, timeout, ignored_exceptions=retried).until(polled)


async def test_overview_filters_and_a_metric_chart_zooms_in_chromium(
    daemon: DaemonProcess, receiver: Receiver, browser: webdriver.Chrome
) -> None:
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    spike = now - now % STEP + 8 * STEP  # judged live, or in `start_time`'s catch-up on a slow start
    for name in ("orders", "signups"):
        fill(src, name, now - 400, now + 300, STEP, {spike: 900.0} if name == "orders" else {})
        write(daemon.root / "metrics.d" / f"{name}.yaml", metric_yaml(name, src.path, receiver.url))
    await daemon.start()
    await daemon.until(lambda: _all_ran(daemon), timeout=60, what="both metrics ran")
    await daemon.until(lambda: _anomaly_at(daemon, "orders", spike), timeout=90, what="the spike judged")

    async with aiohttp.ClientSession() as s, s.get(daemon.base + "/") as r:
        assert r.status == 401  # the pages are behind the web config's users, like the API
    authorize(browser, daemon.auth)
    browser.get(daemon.base + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == ["orders", "signups"]
    assert "2 metrics running" in browser.find_element(By.ID, "running").text
    assert re.fullmatch(r"scheduler lag: \d+\.\d\d s", browser.find_element(By.ID, "lag").text)
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

    # Feedback: the spike is a false alarm. Refused without credentials; with them, stored.
    label = {"metric": "orders", "series": "", "period": spike, "label": "false_alarm"}
    async with aiohttp.ClientSession() as s, s.post(daemon.base + "/api/v1/feedback", json=label) as r:
        assert r.status == 401
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#detections tbody tr[data-t]")
    assert row.get_attribute("data-t") == str(spike) and "900" in row.text
    why = row.find_elements(By.TAG_NAME, "td")[7].text  # the change, in words (alerting.why)
    assert re.fullmatch(r"value 900, \d+ % above expected 10\d(\.\d+)?", why), why
    row.find_element(By.CSS_SELECTOR, "button.label.false_alarm").click()
    cell = wait(browser, lambda d: _label_cell(d, "false alarm"))
    assert f"({USER})" in cell.text
    false_alarms = browser.execute_script("return window.dtkCharts[0].data[7].filter(v => v !== null)")
    assert false_alarms == [900.0]  # drawn on the chart too
    shot(browser, "feedback")
    _, body = await daemon.get("/api/v1/metrics/orders/feedback")
    (stored,) = json.loads(body)["feedback"]
    assert (stored["period"], stored["label"], stored["by"]) == (spike, "false_alarm", USER)

    # "Backtest this config" over the last hour: the replay's anomalies on the same chart,
    # scored on the label.
    browser.get(daemon.base + "/ui/metrics/orders?range=1h")
    wait(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-loaded") == "true")
    browser.find_element(By.ID, "backtest").click()
    summary = wait(browser, lambda d: _done(d.find_element(By.ID, "backtest-summary")), timeout=60)
    assert "0 of 0 real incidents caught, 1 of 1 false alarms raised" in summary.text, summary.text
    replayed = browser.execute_script("return window.dtkCharts[0].data[8].filter(v => v !== null)")
    assert replayed == [900.0]  # the config as loaded flags the spike again
    shot(browser, "backtest")
    assert await daemon.stop() == 0
    # It is in the state store: a new process shows it.
    await daemon.start()
    await daemon.until(lambda: _all_ran(daemon), timeout=60, what="both metrics ran again")
    browser.get(daemon.base + "/ui/metrics/orders")
    wait(browser, lambda d: _label_cell(d, "false alarm"))
    browser.find_element(By.CSS_SELECTOR, "#detections button.unlabel").click()
    wait(
        browser,
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#charts").get_attribute("data-loaded") == "true"
            and d.find_element(By.CSS_SELECTOR, "#detections td.feedback").text == ""
        ),
    )
    _, body = await daemon.get("/api/v1/metrics/orders/feedback")
    assert json.loads(body)["feedback"] == []
    assert await daemon.stop() == 0


def _done(summary: Any) -> Any:
    return summary if summary.get_attribute("data-done") == "true" else None


def _label_cell(driver: webdriver.Chrome, text: str, table: str = "#detections") -> Any:
    if driver.find_element(By.ID, "charts").get_attribute("data-loaded") != "true":
        return None
    cells = driver.find_elements(By.CSS_SELECTOR, f"{table} td.feedback")
    return next((c for c in cells if c.text.startswith(text)), None)


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

    # The metric page: the alert episode and the silence behind the chart, the episode in the
    # history table, and labelled a real incident over its whole span from there.
    browser.get(daemon.base + "/ui/metrics/orders")
    wait(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-loaded") == "true")
    (episode,) = browser.find_elements(By.CSS_SELECTOR, "#episodes tbody tr[data-t]")
    assert "FIRING" in episode.text and "open" in episode.text and "sent" in episode.text
    drawn = browser.execute_script("return window.dtkData")
    assert [e["kind"] for e in drawn["alerts"]] == ["anomaly"] and drawn["alerts"][0]["resolved_at"] is None
    (hush,) = drawn["silences"]
    assert hush["id"] == stored["id"] and hush["to"] > hush["from"]
    browser.execute_script("window.scrollTo(0, document.getElementById('episodes').offsetTop - 160)")
    shot(browser, "history")
    episode.find_element(By.CSS_SELECTOR, "button.label.incident").click()
    wait(browser, lambda d: _label_cell(d, "real incident", "#episodes"))
    _, body = await daemon.get("/api/v1/metrics/orders/feedback")
    (label,) = json.loads(body)["feedback"]
    assert (
        label["label"] == "incident" and label["period"] == drawn["alerts"][0]["started_at"] < label["until"]
    )

    browser.get(daemon.base + "/ui/silences")
    (srow,) = browser.find_elements(By.CSS_SELECTOR, "#silences tbody tr[data-id]")
    srow.find_element(By.CSS_SELECTOR, "button.expire").click()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#silences tbody tr").text.count("active") == 0)
    _, body = await daemon.get("/api/v1/silences")
    assert json.loads(body)["silences"] == []  # expired: no longer current
    browser.get(daemon.base + "/ui/outbox")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Outbox"
    shot(browser, "outbox")
    assert await daemon.stop() == 0


async def _state(d: DaemonProcess, state: str) -> bool:
    m = await d.metric("orders")
    return m is not None and m["state"] == state


async def test_the_ui_through_a_workers_supervisor(
    daemon: DaemonProcess, receiver: Receiver, browser: webdriver.Chrome
) -> None:
    """`workers: 2`: the overview merges both workers; a metric's page, its chart and its
    feedback are answered by the worker that runs it (who labelled is the supervisor's user);
    a silence is kept by every worker under one id and expired everywhere."""
    from detectkd.shard import name_hash

    names = [f"m{i}" for i in range(12)]
    on = {w: [n for n in names if name_hash(n) % 2 == w] for w in (0, 1)}
    assert on[0] and on[1]
    spiky = on[1][0]
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    spike = now - now % STEP + 8 * STEP  # judged live, or in `start_time`'s catch-up on a slow start
    for name in (on[0][0], spiky):
        fill(src, name, now - 400, now + 300, STEP, {spike: 900.0} if name == spiky else {})
        write(daemon.root / "metrics.d" / f"{name}.yaml", metric_yaml(name, src.path, receiver.url))
    await daemon.start(env={"DETECTK_WORKERS": "2"})
    await daemon.until(lambda: _ran(daemon, [on[0][0], spiky]), timeout=60, what="both workers' metrics ran")
    await daemon.until(lambda: _anomaly_at(daemon, spiky, spike), timeout=90, what="the spike judged")

    authorize(browser, daemon.auth)
    browser.get(daemon.base + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == sorted([on[0][0], spiky])
    assert {r.find_elements(By.TAG_NAME, "td")[-1].text for r in rows} == {"0/2", "1/2"}
    assert "2 metrics running" in browser.find_element(By.ID, "running").text
    browser.get(daemon.base + f"/ui/metrics/{spiky}")
    wait(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-loaded") == "true")
    assert browser.execute_script("return window.dtkCharts[0].data[5].filter(v => v !== null)") == [900.0]
    browser.find_element(By.CSS_SELECTOR, "#detections button.label.false_alarm").click()
    wait(browser, lambda d: _label_cell(d, "false alarm"))
    _, body = await daemon.get(f"/api/v1/metrics/{spiky}/feedback")
    (label,) = json.loads(body)["feedback"]
    assert (label["period"], label["by"]) == (spike, USER)  # the person, not the supervisor

    async with aiohttp.ClientSession(headers=daemon.auth) as s:
        new = {"matchers": ["tag=shop"], "duration": "1h", "comment": "both workers"}
        async with s.post(daemon.base + "/api/v1/silences", json=new) as r:
            assert r.status == 201
            made = (await r.json())["id"]
    _, body = await daemon.get("/api/v1/silences")
    assert [x["id"] for x in json.loads(body)["silences"]] == [made]  # one silence, kept by both
    browser.get(daemon.base + "/ui/silences")
    (srow,) = browser.find_elements(By.CSS_SELECTOR, "#silences tbody tr[data-id]")
    srow.find_element(By.CSS_SELECTOR, "button.expire").click()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#silences tbody tr").text.count("active") == 0)
    for w in (0, 1):  # expired in each worker's own store
        db = daemon.root / "data" / f"worker-{w}" / "detectkd.db"
        with sqlite3.connect(db) as conn:
            (data,) = conn.execute("SELECT data FROM dtk_silences WHERE id = ?", (made,)).fetchone()
        assert json.loads(data)["expired_at"] is not None
    for page, title in (("/ui/alerts", "Alerts"), ("/ui/outbox", "Outbox")):
        browser.get(daemon.base + page)
        assert browser.find_element(By.TAG_NAME, "h1").text == title
    assert await daemon.stop() == 0


async def _anomaly_at(d: DaemonProcess, name: str, period: int) -> bool:
    """Whether the metric's stored detections hold an anomaly at `period` (the chart's source)."""
    status, body = await d.get(f"/api/v1/metrics/{name}/series?range=1h")
    assert status == 200, body
    return any(a["t"] == period for cols in json.loads(body)["series"].values() for a in cols["anomalies"])


async def _ran(d: DaemonProcess, names: list[str]) -> bool:
    api = {m["name"]: m for m in (await d.api())["metrics"]}
    return all(api.get(n, {}).get("runs", 0) >= 2 and "history" not in api.get(n, {}) for n in names)


async def test_an_explanation_from_the_store_is_shown_as_text_whatever_it_holds(
    daemon: DaemonProcess, receiver: Receiver, browser: webdriver.Chrome
) -> None:
    """The Anomalies table's "why" comes from the stored FIRING payload: markup in it (a
    store written by someone else) stays text on the page and runs nothing."""
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    spike = now - now % STEP - 20 * STEP
    fill(src, "orders", now - 400, now + 300, STEP, {spike: 900.0})
    write(daemon.root / "metrics.d" / "orders.yaml", metric_yaml("orders", src.path, receiver.url))
    hostile = {
        "change": '<img src=x onerror="window.pwned=1">',
        "rarity": "<script>window.pwned=2</script>",
        "precedent": "&lt;b&gt;bold&lt;/b&gt;",
    }
    forged = Alert(
        "orders",
        "",
        {},
        "firing",
        spike,
        spike,
        900.0,
        100.0,
        None,
        None,
        0.9,
        "up",
        "mad",
        STEP,
        extra=hostile,
    )
    store = SqliteStore(daemon.root / "data" / "detectkd.db")
    await store.open()
    row = NewOutboxItem(forged.key, "orders", "", "forged", forged.to_json())
    await store.commit(RunRecord("orders", save_points=False, outbox=[row]))
    await store.close()
    await daemon.start()

    async def ran() -> bool:
        m = await daemon.metric("orders") or {}
        return m.get("runs", 0) >= 2 and "history" not in m

    await daemon.until(ran, timeout=60, what="orders ran")
    authorize(browser, daemon.auth)
    browser.get(daemon.base + "/ui/metrics/orders")
    wait(browser, lambda d: d.find_element(By.ID, "charts").get_attribute("data-loaded") == "true")
    (row_el,) = browser.find_elements(By.CSS_SELECTOR, f"#detections tbody tr[data-t='{spike}']")
    why = row_el.find_elements(By.TAG_NAME, "td")[7]
    assert why.text == "; ".join(hostile.values())
    assert why.find_elements(By.CSS_SELECTOR, "*") == []  # no element made of it
    assert browser.execute_script("return window.pwned === undefined") is True
    assert await daemon.stop() == 0
