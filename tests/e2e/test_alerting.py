"""Alert lifecycle scenarios against the real process and a real webhook receiver."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import Source, fill, metric_yaml
from tests.support.process import DaemonProcess

STEP = 2
HOLD = 4  # periods a spike lasts


def rename_table(db: Any, old: str, new: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute(f"ALTER TABLE {old} RENAME TO {new}")
    conn.commit()
    conn.close()


async def test_a_source_outage_for_20_metrics_is_one_grouped_alert_and_one_recovery(
    daemon: DaemonProcess, receiver: Receiver
) -> None:
    src = Source(daemon.root / "shop.db")
    now = int(time.time())
    names = [f"m{i:02d}" for i in range(20)]
    for name in names:
        fill(src, name, now - 400, now + 600, STEP)
        body = metric_yaml(name, src.path, receiver.url).replace(
            f"  type: sqlite\n  params:\n    database: {src.path}\n", "  profile: shop\n  params:\n"
        )
        write(daemon.root / "metrics.d" / f"{name}.yaml", body)
    write(daemon.root / "profiles.yaml", f"profiles:\n  shop:\n    type: sqlite\n    database: {src.path}\n")
    cfg = daemon.root / "detectkd.yaml"
    write(cfg, cfg.read_text() + "outages: {group_wait: 4s, min_metrics: 3}\n")
    await daemon.start()

    async def all_ran() -> bool:
        ms = (await daemon.api())["metrics"]
        return len(ms) == 20 and all(m["runs"] >= 1 and m["state"] == "ok" for m in ms)

    await daemon.until(all_ran, what="20 metrics ran")
    rename_table(src.path, "src", "src_gone")  # the source breaks for all of them at once

    down = await receiver.wait_for(lambda b: b.get("kind") == "source_down", timeout=60)
    assert down["status"] == "firing" and down["metric"] == "shop" and down["labels"] == {"source": "shop"}
    assert "no such table" in down["extra"]["error"]

    async def all_failing() -> dict[str, Any] | None:
        api = await daemon.api()
        shop = api["sources"].get("shop", {})
        return api if shop.get("failing") == 20 and shop.get("down_since") else None

    api = await daemon.until(all_failing, what="every metric of the source failing", timeout=30)
    assert all(m["state"] == "error" and m["source"] == "shop" for m in api["metrics"])
    rename_table(src.path, "src_gone", "src")  # back
    up = await receiver.wait_for(lambda b: b.get("kind") == "source_down" and b["status"] == "resolved", 60)
    assert up["key"] == down["key"].replace(":firing|", ":resolved|")

    async def all_ok() -> bool:
        ms = (await daemon.api())["metrics"]
        return all(m["state"] == "ok" for m in ms)

    await daemon.until(all_ok, what="every metric recovered", timeout=30)
    kinds = [(b["kind"], b["status"]) for b in receiver.received]
    # One alert for the outage and one for the recovery, nothing per metric; all 20
    # metrics' webhooks are the same channel, so it is delivered once.
    assert kinds == [("source_down", "firing"), ("source_down", "resolved")], kinds
    assert await daemon.stop() == 0


def cli(daemon: DaemonProcess, *args: str) -> str:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "detectkd", "silence", *args, "--config", str(daemon.root / "detectkd.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


async def test_a_silence_from_the_cli_holds_the_firing_until_it_is_expired_over_http(
    daemon: DaemonProcess, receiver: Receiver
) -> None:
    import aiohttp

    src = Source(daemon.root / "src.db")
    now = int(time.time())
    spike_from = now + 12 - (now + 12) % STEP
    fill(
        src, "spiky", now - 400, now + 600, STEP, {t: 900.0 for t in range(spike_from, spike_from + 60, STEP)}
    )
    write(daemon.root / "metrics.d" / "spiky.yaml", metric_yaml("spiky", src.path, receiver.url))
    cfg = daemon.root / "detectkd.yaml"
    write(cfg, cfg.read_text() + "silence_refresh: 1s\n")
    silence_id = cli(daemon, "add", "metric=spiky", "--for", "1h", "--comment", "deploy").strip()
    assert len(silence_id) == 12
    assert silence_id in cli(daemon, "list") and "metric=spiky" in cli(daemon, "list")
    await daemon.start()

    async def firing() -> dict[str, Any] | None:
        m = await daemon.metric("spiky")
        return m if m and m["state"] == "firing" else None

    m = await daemon.until(firing, what="the spike makes it FIRING", timeout=60)
    assert m["silenced_by"] == [silence_id]
    assert receiver.received == []  # held by the silence
    async with aiohttp.ClientSession(headers=daemon.auth) as s:
        async with s.get(daemon.base + "/api/v1/silences") as r:
            listed = (await r.json())["silences"]
        assert [(x["id"], x["active"]) for x in listed] == [(silence_id, True)]
        async with s.delete(f"{daemon.base}/api/v1/silences/{silence_id}") as r:
            assert r.status == 200
    fired = await receiver.wait_for(lambda b: b["status"] == "firing", timeout=30)
    assert fired["started_at"] < fired["period"]  # the episode began while silenced
    assert silence_id not in cli(daemon, "list")  # expired
    assert silence_id in cli(daemon, "list", "--all")
    assert await daemon.stop() == 0


async def test_the_second_spike_s_webhook_says_how_rare_it_is_and_names_the_labelled_first(
    daemon: DaemonProcess, receiver: Receiver
) -> None:
    """A day of 2-second history, then two live spikes: the first is labelled a real incident
    over the API, and the second's webhook JSON carries change, rarity and precedent."""
    import aiohttp

    src = Source(daemon.root / "src.db")
    now = int(time.time())
    fill(src, "spiky", now - 26 * 3600, now + 900, STEP)
    yaml = metric_yaml("spiky", src.path, receiver.url).replace("start_time: 120s", "start_time: 26h")
    write(daemon.root / "metrics.d" / "spiky.yaml", yaml)
    # Runs are not cut at the 2 s interval on a loaded machine: a cut run's periods are caught
    # up by the next one, which announces only its newest period (docs/runtime.md).
    with (daemon.root / "detectkd.yaml").open("a") as f:
        f.write("run_timeout: 30s\n")
    await daemon.start()

    async def loaded() -> dict[str, Any] | None:  # the day of history in, live runs judging
        m = await daemon.metric("spiky")
        return m if m and m.get("history") is None and m.get("judging") else None

    await daemon.until(loaded, what="the day of history loads", timeout=120)
    soon = int(time.time()) + 4  # the spikes go in ahead of their periods (a loaded machine
    first = soon - soon % STEP  # may take long over the history: they must be judged live)
    second = first + 30
    # Each spike lasts HOLD periods: a run that covers several periods (a slow machine) still
    # has a spiking newest period to announce.
    src.set("spiky", [t + i * STEP for t in (first, second) for i in range(HOLD)], 900.0)
    one = await receiver.wait_for(lambda b: b["status"] == "firing", timeout=60)
    assert one["extra"]["change"].startswith("value 900, ") and "precedent" not in one["extra"]
    label = {"metric": "spiky", "series": "", "period": one["started_at"], "label": "incident"}
    async with (
        aiohttp.ClientSession(headers=daemon.auth) as s,
        s.post(daemon.base + "/api/v1/feedback", json=label) as r,
    ):
        assert r.status == 201, await r.text()
    two = await receiver.wait_for(lambda b: b["status"] == "firing" and b["key"] != one["key"], timeout=90)
    spiking = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second + i * STEP)) for i in range(HOLD)]
    assert two["period"] in spiking and two["started_at"] == spiking[0], two
    extra = two["extra"]
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(first))  # the metric's timezone: UTC
    assert extra["precedent"] == f"last similar: {when}, marked real incident", extra
    assert extra["precedent_label"] == "incident" and extra["precedent_at"] == one["started_at"]
    # A day of scores (the first 20 periods warm MAD up); only the first spike's HOLD are as large.
    assert extra["rarity"] == "beyond 99.9 % of its deviations in the last day", extra
    assert extra["rarity_days"] == 1 and extra["rarity_percent"] == 99.9
    assert extra["change"].startswith("value 900, ") and "% above expected" in extra["change"]
    assert f"Why: {extra['change']}; {extra['rarity']}; {extra['precedent']}" in two["message"]
    assert await daemon.stop() == 0
