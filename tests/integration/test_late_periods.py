"""Late and incomplete periods (issue 31) with the daemon in-process on a SQLite source
whose newest hour first holds 70 % of its rows and then receives the rest: the gate holds
it back (`complete_when`, `settle`), `recheck` retracts a FIRING judged on the partial
hour and alerts an anomaly that arrived late; nothing is sent twice."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from detectkd.alerting.alert import Alert
from detectkd.alerting.message import default_text
from detectkd.alerting.revise import LATE, RETRACTED
from detectkd.alerting.state import Status
from detectkd.errors import StorageError
from detectkd.runtime.daemon import Daemon
from detectkd.runtime.status import MetricEntry
from tests.support.files import write
from tests.support.inprocess import make_settings, served

HOUR = 3600
T0 = 1_795_000_000 - 1_795_000_000 % HOUR
ROWS = 10  # rows per hour, each 10 (+ a little): an hour sums to about 100
MAD = "type: mad\nparams: {window_size: 100, n_sigma: 5, use_weighted: false, min_samples: 10}"


class Orders:
    """Rows of one table, ROWS per hour; `hour(k, share)` puts that share of hour k's rows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with sqlite3.connect(path) as c:
            c.execute("CREATE TABLE orders (ts TEXT, amount REAL)")
            c.execute("CREATE TABLE etl (hour TEXT)")
        self.put: dict[int, int] = {}

    def hour(self, k: int, share: float = 1.0, bump: float = 0.0) -> None:
        """Hour k's rows up to `share` of ROWS (those not put yet); `bump` is added to the last."""
        upto = round(ROWS * share)
        done = self.put.get(k, 0)
        rows = [
            (T0 + k * HOUR + i * 60, 10.0 + (k % 5) / ROWS + (bump if i == upto - 1 else 0.0))
            for i in range(done, upto)
        ]
        with sqlite3.connect(self.path) as c:
            c.executemany("INSERT INTO orders VALUES (datetime(?, 'unixepoch'), ?)", rows)
        self.put[k] = max(done, upto)

    def loaded(self, k: int) -> None:
        """The loader's log says hour k is complete."""
        with sqlite3.connect(self.path) as c:
            c.execute("INSERT INTO etl VALUES (datetime(?, 'unixepoch'))", (T0 + k * HOUR,))


def metric(db: Path, completeness: str) -> str:
    start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(T0))
    return f"""\
name: orders
schedule: {{interval: 1h, start_time: "{start}"}}
collector:
  type: sqlite
  params:
    database: {db}
    query: |
      SELECT sum(amount) AS value FROM orders
      WHERE ts >= '{{{{ period_start }}}}' AND ts < '{{{{ period_finish }}}}'
detector:
{"  " + MAD.replace(chr(10), chr(10) + "  ")}
alerter:
  type: log
completeness:
{completeness}
"""


@pytest.fixture
def orders(tmp_path: Path) -> Orders:
    o = Orders(tmp_path / "src.db")
    for k in range(30):
        o.hour(k)
    return o


async def daemon(tmp_path: Path, completeness: str) -> AsyncIterator[Daemon]:
    write(tmp_path / "metrics.d" / "orders.yaml", metric(tmp_path / "src.db", completeness))
    d = Daemon(make_settings(tmp_path))
    d.history.clock = lambda: T0 + 30 * HOUR + 60  # the loader's history ends where the test starts
    await d.start()
    d.scheduler.pause()  # the test drives runs itself, at explicit times
    try:
        # History up to hour 29 (a backfill: no alerts), judged live from hour 30 on.
        await d.run_metric("orders", at=T0 + 30 * HOUR + 60)
        await d.history.settled()
        yield d
    finally:
        d.scheduler.shutdown(wait=False)
        await d.close()


async def sent(d: Daemon) -> list[Alert]:
    return [Alert.from_json(i.payload) for i in await d.store.outbox_pending()]


def entry(d: Daemon) -> MetricEntry:
    return d.slots["orders"].runtime.api()


async def test_recheck_retracts_a_firing_judged_on_a_partial_hour(tmp_path: Path, orders: Orders) -> None:
    async for d in daemon(tmp_path, "  recheck: 2h"):
        orders.hour(30, 0.7)  # 70 % of hour 30 arrived on time: it reads as a drop
        await d.run_metric("orders", at=T0 + 31 * HOUR + 60)
        assert d.slots["orders"].runtime.states[""].status is Status.FIRING
        assert [a.status for a in await sent(d)] == ["firing"]

        orders.hour(30)  # the rest of hour 30 arrives, then hour 31 in full
        orders.hour(31)
        await d.run_metric("orders", at=T0 + 32 * HOUR + 60)
        alerts = await sent(d)
        assert [(a.status, a.revised) for a in alerts] == [("firing", None), ("resolved", "retracted")]
        resolved = alerts[1]
        assert resolved.extra["reason"] == RETRACTED and resolved.started_at == T0 + 30 * HOUR
        assert resolved.value == pytest.approx(100.0, abs=1)  # the corrected value
        assert d.slots["orders"].runtime.states[""].status.value == "ok"
        assert entry(d)["revised_periods"] == 1
        points = await d.store.read_points("orders", None, T0 + 30 * HOUR, T0 + 31 * HOUR)
        assert points[""][0].value == pytest.approx(100.0, abs=1)  # the store holds the corrected value

        await d.run_metric("orders", at=T0 + 32 * HOUR + 120)  # read again: nothing new
        assert len(await sent(d)) == 2


async def test_recheck_alerts_an_anomaly_that_arrived_late_marked_late(
    tmp_path: Path, orders: Orders
) -> None:
    async for d in daemon(tmp_path, "  recheck: 2h"):
        orders.hour(30)  # hour 30 looks normal when judged
        await d.run_metric("orders", at=T0 + 31 * HOUR + 60)
        assert await sent(d) == []
        orders.put[30] = 0
        orders.hour(30, 0.1, bump=400.0)  # a late row: hour 30 really spiked
        orders.hour(31)
        await d.run_metric("orders", at=T0 + 32 * HOUR + 60)
        alerts = await sent(d)
        # Re-judged before hour 31 is: the late FIRING first; hour 31 is normal, so the
        # episode resolves at once, as any episode does at its first normal hour.
        assert [(a.status, a.revised) for a in alerts] == [("firing", "late"), ("resolved", None)]
        assert alerts[0].extra["reason"] == LATE and alerts[0].period == T0 + 30 * HOUR
        assert alerts[0].detector == "mad" and alerts[0].value == pytest.approx(510, abs=1)
        assert "Note: " + LATE in default_text(alerts[0])
        await d.run_metric("orders", at=T0 + 32 * HOUR + 120)  # read again: nothing new
        assert len(await sent(d)) == 2


async def test_complete_when_holds_the_hour_until_the_loader_says_so(tmp_path: Path, orders: Orders) -> None:
    gate = "  complete_when: \"SELECT count(*) FROM etl WHERE hour = '{{ period_start }}'\"\n  poll: 1h"
    async for d in daemon(tmp_path, gate):
        orders.hour(30, 0.7)
        await d.run_metric("orders", at=T0 + 31 * HOUR + 60)
        assert await sent(d) == []  # not judged: no FIRING on the partial hour
        assert await d.store.watermark("orders") == T0 + 29 * HOUR
        why = str(entry(d)["completeness"])
        assert why.startswith("waiting: ") and "complete_when returned 0" in why
        async with served(d) as (http, base), http.get(base + "/") as page:
            html = await page.text()  # the overview says so too, the reason in its title
        assert "waiting for complete data" in html and "complete_when returned 0" in html

        orders.hour(30)
        orders.loaded(30)
        await d.run_metric("orders", at=T0 + 31 * HOUR + 120)
        assert await d.store.watermark("orders") == T0 + 30 * HOUR
        assert await sent(d) == [] and entry(d)["completeness"] is None

        orders.hour(31, 0.7)  # never marked loaded: judged once max_wait (an interval) passed
        await d.run_metric("orders", at=T0 + 32 * HOUR + 60)
        assert await d.store.watermark("orders") == T0 + 30 * HOUR
        await d.run_metric("orders", at=T0 + 33 * HOUR + 30)
        assert (await d.store.watermark("orders") or 0) >= T0 + 31 * HOUR
        hour31 = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(T0 + 31 * HOUR))
        status = str(entry(d)["completeness"])  # and hour 32 waits (nothing of it arrived)
        assert status.startswith(f"judged incomplete: {hour31}: complete_when returned 0; waiting: ")


async def test_settle_judges_once_two_reads_agree(tmp_path: Path, orders: Orders) -> None:
    async for d in daemon(tmp_path, "  settle: 5m"):
        orders.hour(30, 0.7)
        await d.run_metric("orders", at=T0 + 31 * HOUR + 60)  # first read: 70
        assert await d.store.watermark("orders") == T0 + 29 * HOUR
        orders.hour(30)
        await d.run_metric("orders", at=T0 + 31 * HOUR + 360)  # 100: changed, read again later
        assert await d.store.watermark("orders") == T0 + 29 * HOUR
        assert "settle" in str(entry(d)["completeness"])
        await d.run_metric("orders", at=T0 + 31 * HOUR + 420)  # agrees, but not 5 min apart yet
        assert await d.store.watermark("orders") == T0 + 29 * HOUR
        await d.run_metric("orders", at=T0 + 31 * HOUR + 660)  # agrees 5 min apart: judged
        assert await d.store.watermark("orders") == T0 + 30 * HOUR
        assert await sent(d) == []


async def test_a_complete_when_answer_beyond_its_row_cap_is_refused_attack(
    tmp_path: Path, orders: Orders
) -> None:
    """A query that returns a huge answer is cut at 1,000 rows: the period waits, the status
    names the refusal, and the run still judges once `max_wait` is over."""
    huge = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1000000) SELECT x FROM c"
    async for d in daemon(tmp_path, f'  complete_when: "{huge}"\n  max_wait: 10m'):
        orders.hour(30)
        await d.run_metric("orders", at=T0 + 31 * HOUR + 60)
        assert await d.store.watermark("orders") == T0 + 29 * HOUR
        status = str(entry(d)["completeness"])
        assert status.startswith("waiting: ") and "complete_when returned more than 1,000 rows" in status
        await d.run_metric("orders", at=T0 + 31 * HOUR + 660)
        assert await d.store.watermark("orders") == T0 + 30 * HOUR
        assert str(entry(d)["completeness"]).startswith("judged incomplete: ")


async def test_a_failed_recheck_commit_changes_nothing_and_the_redo_retracts_once(
    tmp_path: Path, orders: Orders
) -> None:
    async for d in daemon(tmp_path, "  recheck: 2h"):
        orders.hour(30, 0.7)
        await d.run_metric("orders", at=T0 + 31 * HOUR + 60)
        rt = d.slots["orders"].runtime
        before = rt.memory.windows[""].history().values.tolist()
        orders.hour(30)
        orders.hour(31)
        commit = d.store.commit

        async def failing(record: object) -> None:
            raise StorageError("disk full")

        d.store.commit = failing  # type: ignore[method-assign,assignment]
        await d.run_metric("orders", at=T0 + 32 * HOUR + 60)  # the run fails: counted, nothing kept
        assert rt.status.failures == 1 and "disk full" in str(rt.status.last_error)
        assert rt.states[""].status.value == "firing"
        assert rt.memory.windows[""].history().values.tolist() == before
        assert [a.status for a in await sent(d)] == ["firing"]
        d.store.commit = commit  # type: ignore[method-assign]
        await d.run_metric("orders", at=T0 + 32 * HOUR + 120)
        await d.run_metric("orders", at=T0 + 32 * HOUR + 180)
        assert [(a.status, a.revised) for a in await sent(d)] == [("firing", None), ("resolved", "retracted")]
