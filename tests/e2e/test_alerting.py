"""Alert lifecycle scenarios against the real process and a real webhook receiver."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from tests.conftest import Receiver, write
from tests.e2e.conftest import DaemonProcess, Source, fill, metric_yaml

STEP = 2


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
