"""Late rows through the real process (issue 31): a period judged on 70 % of its rows fires,
the rest arrive, `recheck` retracts it: the webhook and a real Alertmanager both receive the
RESOLVED with the reason, and nothing is sent twice."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detectkd.alerting.revise import RETRACTED
from tests.support.alertmanager_server import AlertmanagerServer
from tests.support.files import write
from tests.support.http import Receiver, receiving
from tests.support.process import DaemonProcess

STEP = 2  # seconds a period
ROWS = 10  # rows a period, 10 each: a period sums to 100


def put(db: Path, rows: list[tuple[int, float]]) -> None:
    with sqlite3.connect(db, timeout=10) as c:
        c.executemany("INSERT INTO orders VALUES (datetime(?, 'unixepoch'), ?)", rows)


def period_rows(start: int, k: range) -> list[tuple[int, float]]:
    """Rows k of the period starting at `start` (each 10, spread over its seconds)."""
    return [(start + (i * STEP) // ROWS, 10.0 + (start // STEP) % 3 * 0.1) for i in k]


def metric(db: Path, hook: str, am: str) -> str:
    return f"""\
name: orders
schedule: {{interval: {STEP}s, delay: 0s, start_time: 240s}}
collector:
  type: sqlite
  params:
    database: {db}
    query: "SELECT sum(amount) AS value FROM orders WHERE ts >= '{{{{ period_start }}}}' AND ts < '{{{{ period_finish }}}}'"
detector:
  type: mad
  params: {{window_size: 100, n_sigma: 5, use_weighted: false, min_samples: 20}}
alerters:
  - type: webhook
    params: {{url: "{hook}"}}
    conditions: {{clear_consecutive: 30}}  # resolved by the retraction, not by normal periods
  - type: alertmanager
    params: {{urls: ["{am}"], resend_delay: 30s}}
    conditions: {{clear_consecutive: 30}}
completeness:
  recheck: 60s
"""


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[AlertmanagerServer]:
    am = AlertmanagerServer(tmp_path / "am", receiver.url)
    am.start()
    yield am
    am.stop()


def am_alerts(body: dict[str, Any], status: str) -> list[dict[str, Any]]:
    return [
        a for a in body.get("alerts", []) if a["labels"].get("metric") == "orders" and a["status"] == status
    ]


async def test_a_retracted_firing_reaches_the_webhook_and_alertmanager_as_resolved(
    daemon: DaemonProcess, receiver: Receiver, alertmanager: AlertmanagerServer
) -> None:
    db = daemon.root / "src.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE orders (ts TEXT, amount REAL)")
    now = int(time.time()) // STEP * STEP
    put(db, [r for p in range(now - 300, now + 10, STEP) for r in period_rows(p, range(ROWS))])
    async with receiving() as hook:
        write(daemon.root / "metrics.d" / "orders.yaml", metric(db, hook.url, alertmanager.url))
        await daemon.start()
        # A period just ahead of the running daemon gets 70 % of its rows on time: it reads
        # as a drop when judged live. Later periods are complete.
        at = max(now + 10, (int(time.time()) // STEP + 2) * STEP)
        put(db, [r for p in range(now + 10, at, STEP) for r in period_rows(p, range(ROWS))])
        put(db, period_rows(at, range(7)))
        put(db, [r for p in range(at + STEP, at + 900, STEP) for r in period_rows(p, range(ROWS))])
        fired = await hook.wait_for(lambda b: b["status"] == "firing", 60)
        assert fired["revised"] is None and "Note:" not in fired["message"]
        await receiver.wait_for(lambda b: bool(am_alerts(b, "firing")), 60)

        put(db, period_rows(at, range(7, ROWS)))  # the late 30 % arrive
        resolved = await hook.wait_for(lambda b: b["status"] == "resolved", 60)
        assert resolved["revised"] == "retracted" and resolved["extra"]["reason"] == RETRACTED
        whole = sum(v for _, v in period_rows(at, range(ROWS)))  # 100, 101 or 102 by the period
        assert resolved["started_at"] == fired["started_at"] and resolved["value"] == pytest.approx(whole)
        assert "Note: " + RETRACTED in resolved["message"]
        body = await receiver.wait_for(lambda b: bool(am_alerts(b, "resolved")), 60)
        (am,) = am_alerts(body, "resolved")
        assert am["annotations"]["reason"] == RETRACTED and am["annotations"]["revised"] == "retracted"

        # A few more periods judged: nothing is sent again.
        await daemon.until(lambda: _judged_past(daemon, at + 5 * STEP), what="5 more periods")
        assert [b["status"] for b in hook.received] == ["firing", "resolved"]
    assert len([b for b in receiver.received if am_alerts(b, "firing")]) == 1


async def _judged_past(daemon: DaemonProcess, period: int) -> bool:
    entry = await daemon.metric("orders")
    last = entry["last_period"] if entry is not None else None
    return last is not None and last >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(period))
