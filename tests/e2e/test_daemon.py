"""The real detectkd process: alerts to a webhook, endpoints, reload, signals, crash safety."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import aiohttp

from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import Source, fill, metric_yaml
from tests.support.process import DaemonProcess

STEP = 2


def soon(seconds: int) -> int:
    t = int(time.time()) + seconds
    return t - t % STEP


def firing(body: dict[str, Any]) -> bool:
    return bool(body["status"] == "firing")


def resolved(body: dict[str, Any]) -> bool:
    return bool(body["status"] == "resolved")


async def test_spike_fires_then_resolves_and_every_endpoint_answers(
    daemon: DaemonProcess, receiver: Receiver
) -> None:
    src = Source(daemon.root / "src.db")
    now = soon(0)
    fill(src, "orders", now - 400, now + 300, STEP)
    write(daemon.root / "metrics.d" / "orders.yaml", metric_yaml("orders", src.path, receiver.url))
    await daemon.start()
    spike = soon(2 * STEP)  # ahead of the running daemon: judged live however long it took to start
    src.set("orders", [spike], 900.0)

    fired = await receiver.wait_for(firing, timeout=40)
    assert fired["metric"] == "orders" and fired["value"] == 900.0
    assert fired["period"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(spike)))
    assert fired["lower"] < 100 and 104 < fired["upper"] < 900
    done = await receiver.wait_for(resolved, timeout=20)
    assert done["key"] == fired["key"].replace("firing", "resolved")
    assert [b["status"] for b in receiver.received] == ["firing", "resolved"]

    status, health = await daemon.get("/healthz")
    assert status == 200 and json.loads(health)["status"] == "ok"
    status, _ = await daemon.get("/readyz")
    assert status == 200
    status, text = await daemon.get("/metrics")
    assert status == 200
    assert 'detectk_checks_total{metric="orders",result="ok"}' in text
    assert 'detectk_anomalies_total{metric="orders"}' in text
    assert "detectk_config_last_reload_successful 1.0" in text
    assert 'detectk_alerts_sent_total{channel="webhook",status="firing"} 1.0' in text
    assert "detectk_check_duration_seconds_bucket" in text and "detectk_scheduler_lag_seconds_count" in text
    assert "detectk_build_info{version=" in text
    m = await daemon.metric("orders")
    assert m is not None and m["state"] == "ok" and m["last_error"] is None
    assert m["last_value"] is not None and m["next_run"] and m["last_run"]
    status, body = await daemon.get("/api/v1/outbox")
    outbox = json.loads(body)
    assert status == 200 and (outbox["pending"], outbox["dead"], outbox["items"]) == (0, 0, [])

    assert await daemon.stop(signal.SIGTERM) == 0


async def test_sighup_adds_changes_removes_and_keeps_broken_files(
    daemon: DaemonProcess, receiver: Receiver
) -> None:
    src = Source(daemon.root / "src.db")
    now = soon(0)
    d = daemon.root / "metrics.d"
    for name in ("a", "b", "c"):
        fill(src, name, now - 400, now + 300, STEP)
        write(d / f"{name}.yaml", metric_yaml(name, src.path, receiver.url))
    await daemon.start()
    assert {m["name"] for m in (await daemon.api())["metrics"]} == {"a", "b", "c"}

    fill(src, "e", now - 400, now + 300, STEP)
    write(d / "e.yaml", metric_yaml("e", src.path, receiver.url))  # added
    write(
        d / "a.yaml", metric_yaml("a", src.path, receiver.url).replace("n_sigma: 5", "n_sigma: 6")
    )  # changed
    (d / "c.yaml").unlink()  # removed
    write(d / "b.yaml", "name: b\ncollector:\n  type: sqlite\n  params: [oops\n")  # broken
    runs_before = (await daemon.metric("b") or {})["runs"]
    daemon.send(signal.SIGHUP)

    async def reloaded() -> dict[str, Any] | None:
        cfg: dict[str, Any] = (await daemon.api())["config"]
        return cfg if cfg.get("added") == 1 else None

    cfg = await daemon.until(reloaded, what="reload applied")
    assert (cfg["added"], cfg["removed"], cfg["changed"], cfg["kept_previous"]) == (1, 1, 1, 1)
    assert cfg["successful"] is False
    assert any("b.yaml:4" in e and "YAML syntax error" in e for e in cfg["errors"])
    names = {m["name"] for m in (await daemon.api())["metrics"]}
    assert names == {"a", "b", "e"}
    _, text = await daemon.get("/metrics")
    assert "detectk_config_last_reload_successful 0.0" in text
    assert 'metric="c"' not in text  # no ghosts of removed metrics

    async def b_still_runs() -> bool:
        b = await daemon.metric("b")
        return b is not None and b["runs"] > runs_before

    await daemon.until(b_still_runs, what="broken file's previous version keeps running")

    # Fix it and reload over HTTP (lifecycle API enabled in this config).
    write(d / "b.yaml", metric_yaml("b", src.path, receiver.url))
    async with aiohttp.ClientSession(headers=daemon.auth) as s, s.post(daemon.base + "/-/reload") as r:
        assert r.status == 200
        body = await r.json()
    assert body["successful"] is True and body["errors"] == []
    _, text = await daemon.get("/metrics")
    assert "detectk_config_last_reload_successful 1.0" in text
    assert await daemon.stop() == 0


async def test_kill_9_loses_no_alert_and_sends_none_twice(daemon: DaemonProcess, receiver: Receiver) -> None:
    src = Source(daemon.root / "src.db")
    now = soon(0)
    fill(src, "orders", now - 400, now + 300, STEP)
    write(daemon.root / "metrics.d" / "orders.yaml", metric_yaml("orders", src.path, receiver.url))
    receiver.fail_with = 503  # the receiver is down: the FIRING waits in the outbox
    await daemon.start()
    spike = soon(2 * STEP)  # ahead of the running daemon: judged live however long it took to start
    src.set("orders", [spike + i * STEP for i in range(10)], 900.0)  # 20 s of anomaly

    def delivery_failed() -> bool:
        return any(e.get("event") == "alert delivery failed" for e in daemon.log_events())

    await daemon.until(delivery_failed, timeout=40, what="a failed delivery attempt")
    assert await daemon.stop(signal.SIGKILL) == -signal.SIGKILL

    receiver.fail_with = None
    await daemon.start()
    fired = await receiver.wait_for(firing, timeout=30)

    def delivery_recorded() -> bool:
        return any(
            e.get("event") == "alert delivered" and e.get("key") == fired["key"] for e in daemon.log_events()
        )

    # Crash again while the series is still FIRING, after the delivery was recorded
    # (between the receiver's 200 and that record the guarantee is at-least-once,
    # with the Idempotency-Key header for receivers): the restart must not re-send it.
    await daemon.until(delivery_recorded, what="delivery recorded")
    assert await daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    await daemon.start()
    done = await receiver.wait_for(resolved, timeout=60)
    statuses = [b["status"] for b in receiver.received]
    assert statuses == ["firing", "resolved"], statuses
    assert done["key"] == fired["key"].replace("firing", "resolved")
    assert await daemon.stop() == 0


async def test_a_dead_source_shows_error_and_does_not_stop_others(
    daemon: DaemonProcess, receiver: Receiver
) -> None:
    src = Source(daemon.root / "src.db")
    now = soon(0)
    fill(src, "good", now - 400, now + 300, STEP)
    d = daemon.root / "metrics.d"
    write(d / "good.yaml", metric_yaml("good", src.path, receiver.url))
    write(d / "dead.yaml", metric_yaml("dead", daemon.root / "missing.db", receiver.url))
    await daemon.start()

    async def states() -> tuple[Any, Any] | None:
        good, dead = await daemon.metric("good"), await daemon.metric("dead")
        if good and dead and good["runs"] >= 3 and dead["runs"] >= 2:
            return good, dead
        return None

    good, dead = await daemon.until(states, what="both metrics ran")
    assert good["state"] == "ok" and good["last_error"] is None
    assert dead["state"] == "error" and "missing.db" in dead["last_error"]
    failures = [e for e in daemon.log_events() if e.get("event") == "check failed"]
    assert failures and all(e["metric"] == "dead" for e in failures)
    _, text = await daemon.get("/metrics")
    assert 'detectk_metric_up{metric="dead"} 0.0' in text
    assert 'detectk_metric_up{metric="good"} 1.0' in text
    assert await daemon.stop(signal.SIGINT) == 0
