"""`kill -9` of the real daemon after a background memory snapshot and a few more runs: the
next start takes the snapshot, catches up the points stored after it (the log says how many)
instead of rebuilding, and from then on stores exactly the detections of a twin daemon that
never crashed (same config, same source, same clock); the spike after the restart is sent
once."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detectkd.runtime import snapshot
from detectkd.storage.sqlite import SqliteStore
from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import LOG, Source, fill, sqlite_metric, webhook
from tests.support.process import DaemonProcess

NAMES = ("orders", "visits")


def metric(name: str, db: Path, start: int, alerter: str) -> str:
    """Series `name` every 2 s from `start` on (the same history for both daemons), `auto`."""
    iso = datetime.fromtimestamp(start, UTC).isoformat()
    schedule = f"{{interval: 2s, delay: 0s, start_time: '{iso}'}}"
    return sqlite_metric(name, db, schedule=schedule, series=name, detector="type: auto\nparams: {refresh: 12}",
                         alerter=alerter)  # fmt: skip


def events(d: DaemonProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in d.log_events() if e.get("event") == name]


async def runs(d: DaemonProcess) -> dict[str, int]:
    return {m["name"]: m["runs"] for m in (await d.api())["metrics"]}


async def detections(root: Path, since: int, until: int) -> list[tuple[str, str, int, bool, float, Any]]:
    store = SqliteStore(root / "data" / "detectkd.db")
    await store.open()
    try:
        out = []
        for name in NAMES:
            for d in await store.read_detections(name, since, until):
                r = d.result
                out.append((name, d.series, d.period, r.anomaly, round(r.score, 12), r.upper))
        return out
    finally:
        await store.close()


async def test_kill_9_resumes_from_the_periodic_snapshot_and_judges_as_a_daemon_that_never_crashed(
    tmp_path: Path, receiver: Receiver
) -> None:
    src = Source(tmp_path / "src.db")
    now = int(time.time())
    start = now - now % 2 - 300
    for name in NAMES:
        fill(src, name, start, now + 900, 2)
    crashing, twin = DaemonProcess(tmp_path / "crashing"), DaemonProcess(tmp_path / "twin")
    try:
        for d, alerter in ((crashing, webhook(receiver.url)), (twin, LOG)):
            for name in NAMES:
                write(d.root / "metrics.d" / f"{name}.yaml", metric(name, src.path, start, alerter))
        await twin.start()
        await crashing.start(env={"DETECTK_SNAPSHOT_INTERVAL": "20s"})
        written = await crashing.until(lambda: events(crashing, "memory snapshot written"), timeout=60,
                                       what="a background snapshot")  # fmt: skip
        assert written[0]["metrics"] == 2 and written[0]["stall_ms"] < 1000
        after = await runs(crashing)  # two more runs, well before the next snapshot (20 s)
        await crashing.until(lambda: _ran(crashing, after, 2), timeout=30, what="two more runs")
        await crashing.stop(signal.SIGKILL)
        behind = await _behind(crashing.root)  # points stored after each metric's snapshot entry
        assert sum(behind.values()) >= 2 * 2

        await crashing.start(env={"DETECTK_SNAPSHOT_INTERVAL": "20s"})
        (resumed,) = await crashing.until(
            lambda: events(crashing, "restart snapshot resumed"), timeout=30, what="the resume report"
        )
        assert (resumed["metrics"], resumed["rebuilt"]) == (2, 0)
        assert resumed["caught_up_points"] == sum(behind.values())
        assert [e["metrics"] for e in events(crashing, "restart snapshot taken")] == [2]

        # A spike after the restart: both daemons judge it; the crashed one sends it once.
        spike = int(time.time()) // 2 * 2 + 6
        for name in NAMES:
            src.set(name, [spike], 5000.0)
        period = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(spike))  # as the webhook says it
        await receiver.wait_for(lambda b: b["status"] == "firing" and b["metric"] == "orders", 30)
        await crashing.until(lambda: _judged(crashing, spike + 8), timeout=30, what="past the spike")
        await twin.until(lambda: _judged(twin, spike + 8), timeout=30, what="the twin past the spike")
        assert await crashing.stop(signal.SIGTERM) == 0 and await twin.stop(signal.SIGTERM) == 0
    finally:
        await crashing.kill()
        await twin.kill()
    # Every period from before the crash on (the catch-up run after the restart included),
    # each detector result and score: the twin's.
    since = spike - 120
    got, want = (
        await detections(crashing.root, since, spike + 8),
        await detections(twin.root, since, spike + 8),
    )
    assert len(got) > 50 and got == want
    assert {(name, p) for name, _, p, anomaly, *_ in got if anomaly} == {(name, spike) for name in NAMES}
    sent = [(b["metric"], b["status"], b["period"]) for b in receiver.received]
    assert len(sent) == len(set(sent)) and {s for s in sent if s[1] == "firing"} == {
        (name, "firing", period) for name in NAMES
    }  # nothing sent twice


async def _behind(root: Path) -> dict[str, int]:
    """Per metric, the periods between its snapshot entry and its stored watermark."""
    parts = snapshot.load(root / "data" / snapshot.FILE)
    store = SqliteStore(root / "data" / "detectkd.db")
    await store.open()
    try:
        out = {}
        for name in NAMES:
            stored = await store.watermark(name)
            assert stored is not None
            out[name] = (stored - parts[name].watermark) // 2
        return out
    finally:
        await store.close()


async def _ran(d: DaemonProcess, before: dict[str, int], more: int) -> bool:
    now = await runs(d)
    return all(now.get(name, 0) >= before.get(name, 0) + more for name in NAMES)


async def _judged(d: DaemonProcess, period: int) -> bool:
    """Every metric's newest judged period is `period` or later."""
    want = datetime.fromtimestamp(period, UTC).isoformat()
    api = (await d.api())["metrics"]
    return len(api) == len(NAMES) and all(
        m["last_period"] is not None and m["last_period"] >= want for m in api
    )
