"""The command-line tools as a user runs them: exit codes and printed output."""

from __future__ import annotations

import io
import time
from pathlib import Path

from detectkd import __version__
from tests.support.files import REPO, write
from tests.support.http import Receiver
from tests.support.metrics import Source, fill, metric_yaml
from tests.support.process import chromium, cli


def test_version_on_both_tools() -> None:
    assert cli("--version").stdout.strip() == f"detectkd {__version__}"
    assert __version__ in cli("dtk", "--version").stdout


def test_validate_exit_codes_and_messages(tmp_path: Path) -> None:
    ok = cli("validate", str(REPO / "etc" / "detectk" / "metrics.d"))
    assert ok.returncode == 0, ok.stdout
    assert "2 metric(s) valid" in ok.stdout
    write(
        tmp_path / "bad.yaml",
        "name: x\ncollector:\n  type: sqlite\n  params: {query: 'SELECT 1', databse: a}\n",
    )
    bad = cli("validate", str(tmp_path / "bad.yaml"))
    assert bad.returncode == 1
    assert f"{tmp_path / 'bad.yaml'}:4: collector.params.databse: unknown key 'databse'" in bad.stdout
    assert "did you mean database?" in bad.stdout
    dtk_bad = cli("dtk", "validate", str(tmp_path / "bad.yaml"))
    assert dtk_bad.returncode == 1 and "databse" in dtk_bad.stdout
    assert cli("validate", str(tmp_path / "nope")).returncode == 1


def test_validate_never_prints_secrets(tmp_path: Path) -> None:
    text = (
        "name: x\ncollector:\n  type: sqlite\n  params: {query: 'SELECT 1', database: a, pool_size: zero}\n"
        "alerter:\n  type: slack\n  params: {webhook_url: '${HOOK}', channel: 7}\n"
    )
    write(tmp_path / "m.yaml", text)
    out = cli("validate", str(tmp_path), env={"HOOK": "https://hooks.example/T0/SECRET123"})
    assert out.returncode == 1
    assert "SECRET123" not in out.stdout + out.stderr


def test_check_prints_collection_verdicts_and_decision(tmp_path: Path) -> None:
    src = Source(tmp_path / "src.db")
    now = int(time.time())
    fill(src, "orders", now - 600, now + 60, 2, {now - now % 2 - 2: 950.0})
    write(tmp_path / "m" / "orders.yaml", metric_yaml("orders", src.path, "http://127.0.0.1:9/hook"))
    env = {"DETECTK_DATA_DIR": str(tmp_path / "data"), "DETECTK_METRICS_DIR": str(tmp_path / "m")}
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - now % 2 - 2)) + "+00:00"
    out = cli("check", "orders", "--at", at, "--no-alert", "--show-query", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    end = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - now % 2))  # the period's end, as text
    assert "query     SELECT period_time, value FROM src" in out.stdout
    assert f"AND period_time < '{end}'" in out.stdout
    assert "collected 1 point(s)" in out.stdout
    assert "(sqlite, every 2s, tz UTC)" in out.stdout  # `2s`, not `0:00:02`
    assert "rule      a row belongs to the period that holds its timestamp, [t, t + 2s)" in out.stdout
    assert "value=950" in out.stdout
    # Nothing stored yet: the detectors' window is collected first, then the period judged.
    assert "earlier period(s) collected first" in out.stdout
    assert "ANOMALY up" in out.stdout and "skipped: cold start" not in out.stdout
    assert "notification: none" in out.stdout  # --no-alert
    write(tmp_path / "dead.yaml", metric_yaml("dead", tmp_path / "missing.db", "http://127.0.0.1:9/hook"))
    failing = cli("check", str(tmp_path / "dead.yaml"), "--no-alert", env=env)
    assert failing.returncode == 1
    assert "error     cannot open sqlite database" in failing.stdout


def test_check_of_the_demo_from_the_repo_root_says_what_fixes_it_and_creates_nothing(
    tmp_path: Path,
) -> None:
    """Issue 14: `detectkd check demo_orders` right after `scripts/demo`, in a clean env."""
    env = {"DETECTK_DATA_DIR": str(tmp_path / "state" / "detectk"), "DETECTK_DEMO_DB": ""}
    env["DETECTK_METRICS_DIR"] = str(tmp_path / "none")
    bare = cli("check", "demo_orders", cwd=REPO, env=env)
    assert bare.returncode == 1
    assert "--config FILE (or DETECTK_CONFIG), or DETECTK_METRICS_DIR" in bare.stderr
    del env["DETECTK_METRICS_DIR"]
    env["DETECTK_DEMO_DB"] = str(tmp_path / "nowhere" / "shop.db")
    dead = cli("check", "demo_orders", "--config", "etc/detectk/detectkd.yaml", cwd=REPO, env=env)
    assert dead.returncode == 1 and "cannot open sqlite database" in dead.stdout
    assert "profile 'demo_shop' in" in dead.stdout and "it reads DETECTK_DEMO_DB" in dead.stdout
    assert not (tmp_path / "state").exists()  # the failed one-shot created no store, no directory


async def test_dtk_run_collects_detects_and_alerts_once(tmp_path: Path, receiver: Receiver) -> None:
    import asyncio

    src = Source(tmp_path / "src.db")
    now = int(time.time())
    fill(src, "orders", now - 600, now + 60, 60, {})
    text = metric_yaml("orders", src.path, receiver.url, interval=60).replace(
        "type: mad\n  params: {window_size: 100, n_sigma: 5, use_weighted: false, min_samples: 20}",
        "type: threshold\n  params: {operator: greater_than, threshold: 10}",
    )
    write(tmp_path / "orders.yaml", text)
    env = {"DETECTK_DATA_DIR": str(tmp_path / "data")}
    first = await asyncio.to_thread(cli, "dtk", "run", str(tmp_path / "orders.yaml"), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "alert     delivered" in first.stdout
    await receiver.wait_for(lambda b: b["status"] == "firing", timeout=10)
    second = await asyncio.to_thread(cli, "dtk", "run", str(tmp_path / "orders.yaml"), env=env)
    assert second.returncode == 0
    assert [b["status"] for b in receiver.received] == ["firing"]  # still firing: not sent again
    broken = await asyncio.to_thread(cli, "dtk", "run", str(tmp_path / "missing.yaml"), env=env)
    assert broken.returncode == 1


def write_load_metric(tmp_path: Path, receiver_url: str) -> Path:
    """Two hosts, hourly, twelve days; host b spikes for two hours on 2026-01-09 at 09:00 and 10:00."""
    import csv as csvlib
    import math

    start = 1_767_225_600  # 2026-01-01 00:00 UTC
    spike = start + 200 * 3600
    with (tmp_path / "load.csv").open("w", newline="") as fh:
        w = csvlib.writer(fh)
        w.writerow(["timestamp", "host", "value"])
        for i in range(300):
            t = start + i * 3600
            for host in ("a", "b"):
                base = 50 + 10 * math.sin(i / 24 * 2 * math.pi) + (i * 7 % 5)
                w.writerow([t, host, 400.0 if (host == "b" and t in (spike, spike + 3600)) else base])
    return write(
        tmp_path / "load.yaml",
        f"""\
name: load
schedule: {{interval: 1h, timezone: Europe/Berlin, batch_load_days: 3}}
collector:
  type: csv
  params: {{path: {tmp_path / "load.csv"}}}
  series_columns: [host]
detector:
  type: mad
  params: {{window_size: 7d, n_sigma: 6, min_samples: 48}}
alerter:
  type: webhook
  params: {{url: "{receiver_url}"}}
  conditions: {{consecutive_anomalies: 2}}
""",
    )


def test_backtest_replays_a_csv_through_the_alert_rules_and_sends_nothing(
    tmp_path: Path, receiver: Receiver
) -> None:
    import csv as csvlib

    write_load_metric(tmp_path, receiver.url)
    out = cli(
        "backtest",
        str(tmp_path / "load.yaml"),
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-13T12:00:00Z",
        "--output",
        str(tmp_path / "detections.csv"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "600 points in 2 series" in out.stdout and "1 alerts would have fired" in out.stdout
    assert "host=a: 300 points, 0 anomalous, 0 alerts" in out.stdout
    # Fires at the second anomalous hour (consecutive_anomalies: 2), local time, then resolves.
    assert "2026-01-09 10:00  FIRING    {host=b}  value 400" in out.stdout
    assert "2026-01-09 11:00  RESOLVED  {host=b}  (since 2026-01-09 09:00)" in out.stdout
    with (tmp_path / "detections.csv").open() as fh:
        rows = list(csvlib.DictReader(fh))
    assert len(rows) == 600 and set(rows[0]) == {
        "timestamp",
        "series",
        "detector",
        "value",
        "expected",
        "lower",
        "upper",
        "score",
        "anomaly",
        "state",
        "notified",
    }
    # `notified` marks the FIRING period; `state` the alert state after each period.
    assert [(r["series"], r["timestamp"][:16]) for r in rows if r["notified"] == "1"] == [
        ("host=b", "2026-01-09T10:00"),
    ]
    by_time = {(r["series"], r["timestamp"][:16]): r["state"] for r in rows}
    assert by_time[("host=b", "2026-01-09T09:00")] == "pending"
    assert by_time[("host=b", "2026-01-09T10:00")] == "firing"
    assert by_time[("host=b", "2026-01-09T11:00")] == "ok"
    flagged = [r for r in rows if r["anomaly"] == "1"]
    assert [(r["series"], r["timestamp"][:16]) for r in flagged] == [
        ("host=b", "2026-01-09T09:00"),
        ("host=b", "2026-01-09T10:00"),
    ]
    assert receiver.received == []  # a backtest never notifies
    bad = cli("backtest", str(tmp_path / "load.yaml"), "--from", "yesterday-ish")
    assert bad.returncode == 2 and "neither a time" in bad.stderr


def test_backtest_html_report_is_self_contained_and_renders_in_chromium(tmp_path: Path) -> None:
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    write_load_metric(tmp_path, "http://127.0.0.1:9/unused")
    report = tmp_path / "report.html"
    out = cli(
        "backtest",
        str(tmp_path / "load.yaml"),
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-13T12:00:00Z",
        "--report",
        str(report),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"report: {report}" in out.stdout
    page = report.read_text()
    assert (
        "src=" not in page and "@import" not in page and "http" not in page.split("<main>")[1]
    )  # nothing fetched
    assert "2026-01-09 10:00" in page and "host=b" in page  # the alert timeline, local time
    driver = chromium()
    try:
        driver.get(report.as_uri())
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "report-charts").get_attribute("data-loaded")
        )
        charts = driver.execute_script(
            "return window.dtkCharts.map(p => [p.data[0].length, p.data[5].filter(v => v !== null).length])"
        )
        assert charts == [
            [300, 0],
            [300, 2],
        ]  # one zoomable chart per host, all points; host=b's two anomalies
        spans = driver.execute_script(
            "return window.dtkData.alerts.map(e => [e.series, e.kind, e.resolved_at !== null])"
        )
        assert spans == [["host=b", "anomaly", True]]  # the alert episode, drawn behind host=b
        before = driver.execute_script("const s = window.dtkCharts[1].scales.x; return [s.min, s.max]")
        over = driver.find_elements(By.CSS_SELECTOR, ".u-over")[1]
        driver.execute_script("arguments[0].scrollIntoView()", over)
        width = over.size["width"]
        ActionChains(driver).move_to_element_with_offset(
            over, -width // 4, 0
        ).click_and_hold().move_by_offset(width // 3, 0).release().perform()
        WebDriverWait(driver, 10).until(
            lambda d: (
                d.execute_script("const s = window.dtkCharts[1].scales.x; return [s.min, s.max]") != before
            )
        )  # it zooms
        img = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    finally:
        driver.quit()
    colours: dict[tuple[int, ...], int] = {
        tuple(rgb): n for n, rgb in img.getcolors(maxcolors=1 << 24) or [] if isinstance(rgb, tuple)
    }

    def near(rgb: tuple[int, int, int], tol: int = 12) -> int:
        return sum(
            n for c, n in colours.items() if all(abs(a - b) <= tol for a, b in zip(c, rgb, strict=True))
        )

    assert near((0x2B, 0x6C, 0xB0)) > 300  # the value line was drawn
    assert near((0xD0, 0x31, 0x2D)) > 20  # anomaly markers


def test_validate_refuses_a_hostile_template_quickly(tmp_path: Path) -> None:
    """Issue 26, item 7: nested loops in a query template hung `validate` (10^10 iterations)."""
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    write(
        tmp_path / "hostile.yaml",
        f'name: x\ncollector:\n  type: sqlite\n  params:\n    database: a\n    query: "SELECT 1 {loops}"\n',
    )
    started = time.monotonic()
    out = cli("validate", str(tmp_path / "hostile.yaml"))
    assert out.returncode == 1 and time.monotonic() - started < 30
    assert (
        f"{tmp_path / 'hostile.yaml'}:6: collector.params.query: template render budget exceeded"
        in out.stdout
    )
