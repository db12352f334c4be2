"""A graceful restart of the real daemon keeps what the metrics remember: SIGTERM writes the
snapshot, the next start takes each metric's part when its config is unchanged (and only
then), and the metrics go on judging."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import Source, fill, sqlite_metric, webhook
from tests.support.process import DaemonProcess


def metric(name: str, db: Path, url: str, refresh: int) -> str:
    """Series `name` every 2 s, the auto detector re-choosing every `refresh` periods."""
    schedule = "{interval: 2s, delay: 0s, start_time: 300s}"
    detector = f"type: auto\nparams: {{refresh: {refresh}}}"
    return sqlite_metric(name, db, schedule=schedule, series=name, detector=detector, alerter=webhook(url))


def event(d: DaemonProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in d.log_events() if e.get("event") == name]


async def runs(d: DaemonProcess, names: tuple[str, ...], at_least: int) -> bool:
    api = {m["name"]: m for m in (await d.api())["metrics"]}
    return all(n in api and api[n]["runs"] >= at_least and "history" not in api[n] for n in names)


async def test_sigterm_keeps_memory_for_the_next_start_of_an_unchanged_metric(
    daemon: DaemonProcess, receiver: Receiver, tmp_path: Path
) -> None:
    src = Source(tmp_path / "src.db")
    now = int(time.time())
    for name in ("kept", "changed"):
        fill(src, name, now - 300, now + 600, 2)
        write(daemon.root / "metrics.d" / f"{name}.yaml", metric(name, src.path, receiver.url, 12))
    await daemon.start()
    await daemon.until(lambda: runs(daemon, ("kept", "changed"), 3), timeout=60, what="three runs each")
    assert await daemon.stop(signal.SIGTERM) == 0
    snap = daemon.root / "data" / "memory.snapshot"
    assert snap.exists()
    assert [e["metrics"] for e in event(daemon, "restart snapshot written")] == [2]

    # One metric's detector changes while the daemon is down: its saved state does not fit.
    write(daemon.root / "metrics.d" / "changed.yaml", metric("changed", src.path, receiver.url, 6))
    await daemon.start()
    assert snap.exists()  # kept: a crash before the next snapshot catches up from it
    taken = event(daemon, "restart snapshot taken")
    assert [(e["metrics"], e["offered"]) for e in taken] == [(1, 2)]
    before = {m["name"]: m["runs"] for m in (await daemon.api())["metrics"]}
    await daemon.until(
        lambda: runs(daemon, ("kept", "changed"), max(before.values()) + 2),
        timeout=30,
        what="runs after the restart",
    )
    api = {m["name"]: m for m in (await daemon.api())["metrics"]}
    assert all(api[n]["state"] in ("ok", "OK") and not api[n].get("last_error") for n in api), api
    assert await daemon.stop(signal.SIGTERM) == 0
    assert [e["metrics"] for e in event(daemon, "restart snapshot written")] == [2, 2]
