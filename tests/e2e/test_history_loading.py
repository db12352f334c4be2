"""A first start's `start_time` history, loaded by the real daemon: beside the live runs, not
cut by the run timeout, resumed after `kill -9` with no gap and no notification."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from tests.support.files import write
from tests.support.http import Receiver
from tests.support.metrics import MAD, Source, fill, sqlite_metric, webhook
from tests.support.process import DaemonProcess

STEP = 600
DAYS = 30
# Each query spins ~0.3 s, so thirty one-day batches (9 s and more) take well over the 5 s run
# timeout. (It was 2 s: on the 2-core machine running the suite's six workers, a live run of
# `orders`, one spinning query beside the history's, once took more, 2026-12-08.)
SPIN = "(WITH RECURSIVE spin(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM spin WHERE n < 1000000) SELECT count(*) FROM spin)"


def metrics(d: DaemonProcess, src: Source, receiver: Receiver) -> None:
    orders = sqlite_metric(
        "orders",
        src.path,
        schedule=f"{{interval: 10m, delay: 0s, start_time: {DAYS}d, batch_load_days: 1}}",
        series="orders",
        where=f"{SPIN} > 0",
        collector="multi_period: true",
        detector=MAD.replace("window_size: 100", "window_size: 1d"),
        alerter=webhook(receiver.url),
    )
    write(d.root / "metrics.d" / "orders.yaml", orders)
    write(
        d.root / "metrics.d" / "fast.yaml",
        f"""\
name: fast
schedule: {{interval: 1s, delay: 0s}}
collector:
  type: sqlite
  params:
    database: {src.path}
    query: SELECT '{{{{ period_start }}}}' AS period_time, 1.0 AS value
""",
    )


async def test_history_loads_beside_live_runs_and_resumes_after_kill_9_without_a_gap(
    daemon: DaemonProcess, receiver: Receiver, tmp_path: Path
) -> None:
    now = int(time.time())
    end = now - now % STEP + STEP
    first = end - (DAYS + 1) * 86400
    src = Source(tmp_path / "src.db")
    fill(src, "orders", first, end, STEP, {end - 15 * 86400: 5000.0})  # a spike in the history
    metrics(daemon, src, receiver)
    env = {"DETECTK_RUN_TIMEOUT": "5s"}
    await daemon.start(env)

    async def orders() -> dict[str, object]:
        entry = await daemon.metric("orders")
        assert entry is not None
        return entry

    async def loading(at_least: float) -> dict[str, object] | None:
        history = (await orders()).get("history")
        return history if isinstance(history, dict) and history["progress"] >= at_least else None

    await daemon.until(lambda: loading(0.1), timeout=60, what="history progress >= 10 %")
    # Other metrics keep their schedule meanwhile (orders' own live run is up to 10 min away).
    fast_before = (await daemon.metric("fast") or {})["runs"]
    await daemon.until(
        lambda: _runs_of(daemon, "fast", fast_before + 3), timeout=10, what="fast keeps running"
    )
    assert await loading(0.0) is not None, "history finished too soon for this test to mean anything"

    daemon.send(signal.SIGKILL)
    await daemon.stop()
    store = tmp_path / "data" / "detectkd.db"
    with sqlite3.connect(store) as conn:
        (job,) = conn.execute("SELECT data FROM dtk_history WHERE metric = 'orders'").fetchone()
    assert '"start"' in job  # the progress survived the kill

    await daemon.start(env)
    await daemon.until(lambda: _done(daemon), timeout=90, what="history loaded after the restart")
    with sqlite3.connect(store) as conn:
        periods = [
            r[0]
            for r in conn.execute("SELECT period FROM dtk_datapoints WHERE metric = 'orders' ORDER BY period")
        ]
        # (`fast`, an `auto` metric, may still have its fill job: staged warm-ups, issue 28)
        jobs = conn.execute("SELECT count(*) FROM dtk_history WHERE metric = 'orders'").fetchone()[0]
        watermark = conn.execute("SELECT period FROM dtk_watermarks WHERE metric = 'orders'").fetchone()[0]
        spike = conn.execute(
            "SELECT anomaly FROM dtk_detections WHERE metric = 'orders' AND period = ?", (end - 15 * 86400,)
        ).fetchone()
    assert jobs == 0 and watermark == periods[-1]  # the live run catches up from there
    # Every period from start_time to the newest judged one, each once: nothing lost, no gap.
    assert periods == list(range(periods[0], periods[-1] + STEP, STEP))
    assert periods[0] <= now - DAYS * 86400 + STEP and periods[-1] >= end - 3 * STEP
    assert spike == (1,)  # judged in the history ...
    assert receiver.received == []  # ... and never notified
    events = daemon.log_events()
    assert any(e.get("event") == "history loaded" and e.get("metric") == "orders" for e in events)
    assert not any("run exceeded" in str(e.get("error", "")) for e in events if e.get("metric") == "orders")


async def _runs_of(d: DaemonProcess, name: str, at_least: int) -> bool:
    entry = await d.metric(name)
    return entry is not None and entry["runs"] >= at_least


async def _done(d: DaemonProcess) -> bool:
    entry = await d.metric("orders")
    return entry is not None and "history" not in entry
