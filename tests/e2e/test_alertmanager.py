"""detectkd and a real Alertmanager (Debian's `prometheus-alertmanager`, private port and
storage, no clustering): what Alertmanager itself notifies through its webhook receiver.
FIRING then RESOLVED; a daemon killed for good has its alert ended by Alertmanager within
4 x resend_delay; a restart re-sends the same alert (one alert, one notification); a
silence created in Alertmanager suppresses its notification; a metric removed by reload
resolves; per-target telemetry."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.alertmanager_server import AlertmanagerServer
from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import Source, fill, sqlite_metric
from tests.support.net import free_port
from tests.support.process import DaemonProcess

STEP = 1
RESEND = 2  # resend_delay: Alertmanager ends a silent alert 4 x 2 s after the last send


def metric(name: str, db: Path, urls: list[str], resend: int = RESEND) -> str:
    return sqlite_metric(
        name,
        db,
        schedule=f"{{interval: {STEP}s, delay: 0s, start_time: 120s}}",
        series=name,
        alerter=f"type: alertmanager\nparams: {{urls: {urls}, resend_delay: {resend}s, labels: {{team: data}}}}",
    )


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[AlertmanagerServer]:
    am = AlertmanagerServer(tmp_path / "am", receiver.url)
    am.start()
    yield am
    am.stop()


def alerts_of(body: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    return [a for a in body.get("alerts", []) if a["labels"].get("metric") == metric]


def notified(receiver: Receiver, metric: str, status: str) -> list[dict[str, Any]]:
    """Alertmanager's webhook notifications with an alert of `metric` in `status`."""
    return [b for b in receiver.received if any(a["status"] == status for a in alerts_of(b, metric))]


def persistent_spike(src: Source, name: str, at: int) -> None:
    """Normal until `at`, then far off for good: the alert stays FIRING."""
    fill(src, name, at - 300, at + 900, STEP, {t: 5000.0 for t in range(at, at + 900)})


async def wait_notified(receiver: Receiver, metric: str, status: str, timeout: float) -> dict[str, Any]:
    return await receiver.wait_for(
        lambda b: any(a["status"] == status for a in alerts_of(b, metric)), timeout
    )


async def test_firing_resends_and_a_daemon_killed_for_good_is_resolved_by_alertmanager(
    daemon: DaemonProcess, receiver: Receiver, alertmanager: AlertmanagerServer
) -> None:
    src = Source(daemon.root / "src.db")
    persistent_spike(src, "orders", int(time.time()) + 5)
    write(daemon.root / "metrics.d" / "orders.yaml", metric("orders", src.path, [alertmanager.url]))
    await daemon.start()
    fired = await wait_notified(receiver, "orders", "firing", 40)
    (alert,) = alerts_of(fired, "orders")
    assert alert["labels"] == {
        "alertname": "orders",
        "metric": "orders",
        "severity": "warning",
        "team": "data",
        "source": alert["labels"]["source"],
    }
    assert alert["labels"]["source"].startswith("sqlite:")
    # Re-sent while active: Alertmanager keeps one alert, its endsAt moving forward.
    first_end = (await daemon.until(lambda: _am_alert(alertmanager, "orders"), what="alert in AM"))["endsAt"]
    later = await daemon.until(
        lambda: _later(alertmanager, "orders", first_end), timeout=15, what="a re-send"
    )
    assert len([a for a in alertmanager.alerts() if a["labels"]["metric"] == "orders"]) == 1
    assert _ts(later["endsAt"]) - time.time() <= 4 * RESEND + 1
    _, text = await daemon.get("/metrics")
    target = f'target="127.0.0.1:{alertmanager.port}"'
    assert f"detectk_alertmanager_sent_total{{{target}}}" in text
    assert f"detectk_alertmanager_latency_seconds_count{{{target}}}" in text

    await daemon.kill()  # kill -9, never restarted
    killed = time.monotonic()
    await wait_notified(receiver, "orders", "resolved", 4 * RESEND + 10)
    assert time.monotonic() - killed <= 4 * RESEND + 3  # endsAt passed; AM notifies within group_interval
    assert len(notified(receiver, "orders", "firing")) == 1


async def test_an_anomaly_that_ends_is_resolved_through_alertmanager(
    daemon: DaemonProcess, receiver: Receiver, alertmanager: AlertmanagerServer
) -> None:
    src = Source(daemon.root / "src.db")
    now = int(time.time())
    fill(src, "orders", now - 300, now + 900, STEP)
    write(
        daemon.root / "metrics.d" / "orders.yaml", metric("orders", src.path, [alertmanager.url], resend=30)
    )
    await daemon.start()
    # Three anomalous points just ahead of the running daemon, so it judges them live however
    # long it took to start (points it catches up on are history: they never notify).
    at = int(time.time()) + 2
    src.set("orders", range(at, at + 3), 5000.0)
    await wait_notified(receiver, "orders", "firing", 40)
    fired = time.monotonic()
    done = await wait_notified(receiver, "orders", "resolved", 30)
    assert time.monotonic() - fired < 4 * 30  # detectkd's RESOLVED, not endsAt running out
    (alert,) = alerts_of(done, "orders")
    assert alert["labels"]["metric"] == "orders" and alert["endsAt"] < time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1)
    )
    assert await daemon.stop(signal.SIGTERM) == 0


async def test_a_restart_re_sends_the_same_alert_and_a_removed_metric_resolves(
    daemon: DaemonProcess, receiver: Receiver, alertmanager: AlertmanagerServer
) -> None:
    src = Source(daemon.root / "src.db")
    persistent_spike(src, "orders", int(time.time()) + 5)
    write(
        daemon.root / "metrics.d" / "orders.yaml", metric("orders", src.path, [alertmanager.url], resend=30)
    )
    await daemon.start()
    await wait_notified(receiver, "orders", "firing", 40)
    before = await daemon.until(lambda: _am_alert(alertmanager, "orders"), what="alert in AM")
    await daemon.kill()
    await daemon.start()  # kill -9 and back: the alert is the same one to Alertmanager
    await daemon.until(lambda: _later(alertmanager, "orders", before["endsAt"]), timeout=40, what="a re-send")
    (after,) = [a for a in alertmanager.alerts() if a["labels"]["metric"] == "orders"]
    assert after["fingerprint"] == before["fingerprint"] and after["startsAt"] == before["startsAt"]
    assert len(notified(receiver, "orders", "firing")) == 1 and not notified(receiver, "orders", "resolved")

    (daemon.root / "metrics.d" / "orders.yaml").unlink()
    daemon.send(signal.SIGHUP)
    removed = time.monotonic()
    await wait_notified(receiver, "orders", "resolved", 20)
    assert time.monotonic() - removed < 4 * 30  # resolved by detectkd, not by endsAt running out
    assert not [a for a in alertmanager.alerts() if a["labels"]["metric"] == "orders"]
    assert await daemon.stop(signal.SIGTERM) == 0


async def test_an_alertmanager_silence_suppresses_the_notification_and_a_dead_target_counts(
    daemon: DaemonProcess, receiver: Receiver, alertmanager: AlertmanagerServer
) -> None:
    src = Source(daemon.root / "src.db")
    at = int(time.time()) + 5
    dead = f"http://127.0.0.1:{free_port()}"  # a second Alertmanager that is down
    for name in ("quiet", "loud"):
        persistent_spike(src, name, at)
    write(daemon.root / "metrics.d" / "quiet.yaml", metric("quiet", src.path, [alertmanager.url]))
    write(daemon.root / "metrics.d" / "loud.yaml", metric("loud", src.path, [alertmanager.url, dead]))
    alertmanager.silence({"metric": "quiet"})
    await daemon.start()
    await daemon.until(lambda: _am_alert(alertmanager, "quiet"), timeout=40, what="quiet in AM")
    await wait_notified(receiver, "loud", "firing", 40)  # Alertmanager has notified what it would
    quiet = _am_alert(alertmanager, "quiet")
    assert quiet is not None and quiet["status"]["state"] == "suppressed"
    assert not notified(receiver, "quiet", "firing")
    _, text = await daemon.get("/metrics")
    assert f'detectk_alertmanager_errors_total{{target="{dead.removeprefix("http://")}"}}' in text
    assert await daemon.stop(signal.SIGTERM) == 0


def _am_alert(am: AlertmanagerServer, metric: str) -> dict[str, Any] | None:
    found = [a for a in am.alerts() if a["labels"].get("metric") == metric]
    return found[0] if found else None


def _later(am: AlertmanagerServer, metric: str, ends: str) -> dict[str, Any] | None:
    a = _am_alert(am, metric)
    return a if a is not None and _ts(a["endsAt"]) > _ts(ends) else None


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_the_example_alertmanager_config_is_valid() -> None:
    import subprocess

    example = Path(__file__).resolve().parents[2] / "etc" / "alertmanager" / "alertmanager.yml"
    out = subprocess.run(["amtool", "check-config", str(example)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout and "2 inhibit rules" in out.stdout
