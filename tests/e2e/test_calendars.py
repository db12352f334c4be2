"""Calendars through the real `detectkd` process: `check` judges a public holiday like a
Sunday (and says so), the same metric without the calendar flags it, and `validate` names
a bad event's file, line and key."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import Source, fill, metric_yaml, sqlite_metric
from tests.support.process import DaemonProcess, chromium, cli

HOUR = 3600
THANKSGIVING = int(datetime(2025, 11, 27, tzinfo=UTC).timestamp())  # a Thursday
LEVEL = {5: 50.0, 6: 30.0}  # Saturday, Sunday; weekdays 100


def orders(src: Source) -> None:
    """130 days of hourly orders up to Thanksgiving's end; Thanksgiving is as quiet as a Sunday."""
    rows = []
    for t in range(THANKSGIVING - 130 * 86400, THANKSGIVING + 86400, HOUR):
        weekday = 6 if t >= THANKSGIVING else datetime.fromtimestamp(t, UTC).weekday()
        rows.append((t, "orders", LEVEL.get(weekday, 100.0) + (t // HOUR * 7919) % 11 - 5))
    src.put(rows)


def test_check_judges_a_holiday_like_sunday(tmp_path: Path) -> None:
    src = Source(tmp_path / "src.db")
    orders(src)
    schedule = "{interval: 1h, warmup: 125d}"  # auto reads about 120 days of hourly points
    for name, calendars in (("shop", "calendars:\n  - {holidays: US, like: sunday}\n"), ("plain", "")):
        text = sqlite_metric(name, src.path, schedule=schedule, collector="multi_period: true", detector=None)
        write(tmp_path / "m" / f"{name}.yaml", text + calendars)
    env = {"DETECTK_DATA_DIR": str(tmp_path / "data"), "DETECTK_METRICS_DIR": str(tmp_path / "m")}
    at = "2025-11-27 00:00:00+00:00"  # the holiday's first hour: a drop from the evening before
    shop = cli("check", "shop", "--at", at, "--no-alert", env=env)
    assert shop.returncode == 0, shop.stdout + shop.stderr
    assert "calendar     Thanksgiving Day (judged like a sunday)" in shop.stdout
    assert "ANOMALY" not in shop.stdout and "decision: normal" in shop.stdout
    plain = cli("check", "plain", "--at", at, "--no-alert", env=env)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "calendar" not in plain.stdout
    assert "ANOMALY down" in plain.stdout
    # The day before is an ordinary Wednesday for both.
    before = cli("check", "shop", "--at", "2025-11-26 00:00:00+00:00", "--no-alert", env=env)
    assert "calendar" not in before.stdout and "decision: normal" in before.stdout


def test_validate_names_a_bad_events_file_line_and_key(tmp_path: Path) -> None:
    write(
        tmp_path / "m" / "events.yaml",
        "- {name: Launch, date: 2025-11-03}\n- {name: Sale, date: 2025-11-31}\n",
    )
    text = sqlite_metric("shop", tmp_path / "src.db") + "calendars:\n  - {file: events.yaml, mode: exclude}\n"
    write(tmp_path / "m" / "shop.yaml", text)
    out = cli("validate", str(tmp_path / "m"))
    assert out.returncode == 1
    assert f"{tmp_path / 'm' / 'events.yaml'}:2: [1].date: not a date or time: '2025-11-31'" in out.stdout
    assert "calendars[0].file: the event file events.yaml is invalid" in out.stdout


HOSTILE = '<img src=x onerror="document.title=1">Launch'


async def test_the_metric_chart_shows_the_events_as_text_in_chromium(
    daemon: DaemonProcess, receiver: Receiver
) -> None:
    """An event named with markup is drawn behind the chart and listed as text: no element
    is made of it, no script runs."""
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    fill(src, "orders", now - 400, now + 300, 2, {})
    today = datetime.fromtimestamp(now, UTC).date()
    write(daemon.root / "events.yaml", f"- {{name: '{HOSTILE}', date: {today}}}\n")
    text = metric_yaml("orders", src.path, receiver.url) + "calendars:\n  - {file: ../events.yaml}\n"
    write(daemon.root / "metrics.d" / "orders.yaml", text)
    await daemon.start()
    await daemon.until(lambda: _ran(daemon), timeout=60, what="the metric ran")
    browser = chromium()
    try:
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": daemon.auth})
        browser.get(daemon.base + "/ui/metrics/orders?range=1h")
        WebDriverWait(browser, 20).until(
            lambda d: d.find_element(By.ID, "charts").get_attribute("data-loaded") == "true"
        )
        (event,) = browser.find_elements(By.CSS_SELECTOR, "#events .event")
        assert event.text.startswith(HOSTILE + " (") and "alerted as usual" in event.text
        assert browser.find_elements(By.CSS_SELECTOR, "#charts img") == []
        assert browser.title != "1"
        assert browser.execute_script("return window.dtkCharts.length") == 1
        if where := os.environ.get("DETECTKD_SCREENSHOTS"):  # docs/ui.md's screenshots
            browser.save_screenshot(str(Path(where) / "calendar.png"))
    finally:
        browser.quit()


async def _ran(d: DaemonProcess) -> bool:
    api = {m["name"]: m for m in (await d.api())["metrics"]}
    return api.get("orders", {}).get("runs", 0) >= 1 and "history" not in api.get("orders", {})


def test_validate_checks_the_daemons_calendars_for_the_metrics_that_use_them(tmp_path: Path) -> None:
    write(tmp_path / "etc" / "company.csv", "name,date\nOffsite,2025-06-31\n")
    write(tmp_path / "etc" / "detectkd.yaml", "profiles_file: null\ncalendars:\n  - {file: company.csv}\n")
    write(tmp_path / "m" / "shop.yaml", sqlite_metric("shop", tmp_path / "src.db"))  # the daemon's calendars
    write(tmp_path / "m" / "own.yaml", sqlite_metric("own", tmp_path / "src.db") + "calendars: []\n")
    out = cli("validate", str(tmp_path / "m"), "--config", str(tmp_path / "etc" / "detectkd.yaml"))
    assert out.returncode == 1
    assert f"{tmp_path / 'etc' / 'company.csv'}:2: date: not a date or time: '2025-06-31'" in out.stdout
    assert "the daemon's `calendars` setting" in out.stdout
    assert "1 metric(s) valid" in out.stdout  # `own` opted out


def test_the_backtest_report_draws_the_calendar_events(tmp_path: Path) -> None:
    """`detectkd backtest --report`: the events of the range are drawn as on the metric page;
    a name that tries to close the report's <script> stays text."""
    src = Source(tmp_path / "src.db")
    orders(src)
    name = "</script><script>document.title='pwned'</script>"
    write(tmp_path / "m" / "events.yaml", f'- {{name: "{name}", date: 2025-11-28, mode: exclude}}\n')
    text = sqlite_metric(
        "shop", src.path, schedule="{interval: 1h}", collector="multi_period: true", detector=None
    )
    write(
        tmp_path / "m" / "shop.yaml",
        text + "calendars:\n  - {holidays: US, like: sunday}\n  - {file: events.yaml}\n",
    )
    report = tmp_path / "report.html"
    env = {"DETECTK_DATA_DIR": str(tmp_path / "data"), "DETECTK_METRICS_DIR": str(tmp_path / "m")}
    out = cli(
        "backtest",
        "shop",
        "--from",
        "2025-11-20T00:00:00Z",
        "--to",
        "2025-11-29T00:00:00Z",
        "--report",
        str(report),
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "</script><script>" not in report.read_text()
    driver = chromium()
    try:
        driver.get(report.as_uri())
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "report-charts").get_attribute("data-loaded")
        )
        shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#events .event")]
        assert (
            len(shown) == 2 and shown[0].startswith("Thanksgiving Day (") and "judged like sunday" in shown[0]
        )
        assert shown[1].startswith(name + " (") and "excluded" in shown[1]
        assert driver.title != "pwned"
    finally:
        driver.quit()
