"""A cancellation that arrives just as the awaited thing completes still cancels: the
metric's run is cancelled when it is removed, by a reload or at shutdown, and must then
stop, not commit. Python 3.11's `asyncio.wait_for` returns the result instead (cpython
gh-86296); the awaits a run may be cancelled in use `asyncio.timeout`."""

from __future__ import annotations

import ast
import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from detectkd.alerting.state import SeriesState
from detectkd.collectors.postgres import _fetch
from detectkd.resources import Resources
from detectkd.specs.loader import load_metrics
from detectkd.storage.base import StoredDetection
from detectkd.storage.memory import MemoryStore
from tests.support.cancel import Arrival
from tests.support.files import REPO, write
from tests.support.runtimes import runtime

HOUR = 3600
NOW = 1_760_000_000 // HOUR * HOUR


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12's wait_for is asyncio.timeout")
async def test_the_arrival_loses_the_cancellation_under_wait_for() -> None:
    """The harness reproduces the bug: these tests can fail."""
    arrival = Arrival()
    task = asyncio.ensure_future(asyncio.wait_for(arrival.wait("done"), 10))
    await arrival.complete_and_cancel(task)
    assert await task == "done"


async def test_the_arrival_is_a_cancellation_under_timeout() -> None:
    arrival = Arrival()

    async def waited() -> Any:
        async with asyncio.timeout(10):
            return await arrival.wait("done")

    task = asyncio.ensure_future(waited())
    await arrival.complete_and_cancel(task)
    with pytest.raises(asyncio.CancelledError):
        await task


# -- the PostgreSQL collector's BEGIN and ROLLBACK ---------------------------------------


class Conn:
    """asyncpg's connection as `_fetch` uses it; `at` (begin | rollback) awaits `arrival`."""

    def __init__(self, at: str, arrival: Arrival) -> None:
        self.at, self.arrival = at, arrival
        self.said: list[str] = []
        self.terminated = False

    def transaction(self, readonly: bool) -> Conn:
        return self

    async def start(self) -> None:
        self.said.append("BEGIN")
        if self.at == "begin":
            await self.arrival.wait()

    async def rollback(self) -> None:
        self.said.append("ROLLBACK")
        if self.at == "rollback":
            await self.arrival.wait()

    async def cursor(self, sql: str, timeout: float) -> Conn:
        self.said.append(sql)
        return self

    async def fetch(self, size: int, timeout: float) -> list[dict[str, Any]]:
        return [{"value": 1}]

    def terminate(self) -> None:
        self.terminated = True


@pytest.mark.parametrize("at", ["begin", "rollback"])
async def test_a_postgres_read_cancelled_as_its_begin_or_rollback_completes_is_cancelled(at: str) -> None:
    arrival = Arrival()
    conn = Conn(at, arrival)
    task = asyncio.ensure_future(_fetch(conn, "SELECT 1", 10.0, None))
    await arrival.complete_and_cancel(task)
    with pytest.raises(asyncio.CancelledError):
        await task
    if at == "begin":  # the query is never sent; the transaction is ended
        assert conn.said == ["BEGIN", "ROLLBACK"] and not conn.terminated
    else:  # cancelled in its ROLLBACK: the connection's state is not known, it is not reused
        assert conn.said == ["BEGIN", "SELECT 1", "ROLLBACK"] and conn.terminated


async def test_a_postgres_rollback_past_its_time_terminates_the_connection_and_returns() -> None:
    """A ROLLBACK that does not answer is not waited for: the rows read are returned."""
    conn = Conn("rollback", Arrival())  # never completed
    assert await _fetch(conn, "SELECT 1", 0.2, 5) == [{"value": 1}]
    assert conn.terminated


# -- the explanation's store reads, between judging and the commit -----------------------


class GatedStore(MemoryStore):
    """A store whose `read` (read_detections | feedback_near) awaits `arrival` first."""

    def __init__(self, read: str, arrival: Arrival) -> None:
        super().__init__()
        self.read, self.arrival = read, arrival

    async def read_detections(self, metric: str, since: int, until: int) -> list[StoredDetection]:
        if self.read == "read_detections":
            await self.arrival.wait()
        return await super().read_detections(metric, since, until)

    async def feedback_near(self, metric: str, series: str, since: int, until: int, limit: int) -> list[str]:
        if self.read == "feedback_near":
            await self.arrival.wait()
        return await super().feedback_near(metric, series, since, until, limit)


@pytest.mark.parametrize("read", ["read_detections", "feedback_near"])
async def test_a_run_cancelled_as_its_explanation_read_completes_commits_nothing(
    tmp_path: Path, resources: Resources, read: str
) -> None:
    """The metric fires with a precedent: its explanation reads the stored scores (rarity)
    and the precedent's label. Cancelled as either read returns, the run commits nothing
    (it committed its FIRING before: a removed metric's run outlived its removal)."""
    write(
        tmp_path / "m" / "hot.yaml",
        """\
name: hot
schedule: {interval: 1h, delay: 0s}
collector:
  type: sqlite
  params: {database: "%s", query: "SELECT 10 AS value"}
detector:
  type: threshold
  params: {operator: greater_than, threshold: 5}
alerter:
  type: log
"""
        % (tmp_path / "src.db"),
    )
    sqlite3.connect(tmp_path / "src.db").close()
    spec = load_metrics([tmp_path / "m"], None, env={}).metrics["hot"]
    arrival = Arrival()
    store = GatedStore(read, arrival)
    before = {"": SeriesState(similar=(NOW - 20 * HOUR,))}  # an earlier episode above: a precedent
    rt = runtime(spec, store, resources, states=before)
    task = asyncio.ensure_future(rt.run(NOW))
    await arrival.complete_and_cancel(task)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.watermark("hot") is None and await store.outbox_pending() == []
    rt.states = before
    store.read = ""  # the next run reads as usual: it fires, with its precedent
    report = await rt.run(NOW)
    assert [a.status for a in report.alerts] == ["firing"]
    assert "precedent" in report.alerts[0].extra and len(await store.outbox_pending()) == 1


# -- where `wait_for` is left ------------------------------------------------------------

# Where a lost cancellation changes nothing: the awaited thing is the stop event itself (its
# completion ends the loop anyway), the shutdown's own steps (nothing cancels them), an HTTP
# answer nobody waits for any more, a private loop's top task.
WAIT_FOR_KEPT = {
    "detectkd/http/api.py": 1,  # /readyz's ping
    "detectkd/http/backtest.py": 1,  # the replay's private asyncio.run
    "detectkd/resources.py": 1,  # closing the pools at the end of a shutdown
    "detectkd/runtime/daemon.py": 2,  # the shutdown's last outbox flush; the health loop's stop event
    "detectkd/runtime/leader.py": 2,  # the election task, ended by the stop event
    "detectkd/runtime/snapshots.py": 1,  # the stop event
    "detectkd/sdnotify.py": 1,  # the stop event
    "detectkd/workers/supervisor.py": 3,  # the stop event
}


def test_wait_for_is_used_only_where_a_lost_cancellation_changes_nothing() -> None:
    """A new `asyncio.wait_for` in a run's path (a collector, a store, the runtime) would
    lose a reload's or a shutdown's cancellation: bound it with `asyncio.timeout`."""
    found: dict[str, int] = {}
    for path in sorted((REPO / "detectkd").rglob("*.py")):
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute)
            and node.attr == "wait_for"
            and isinstance(node.value, ast.Name)
            and node.value.id == "asyncio"
        ]
        if calls:
            found[str(path.relative_to(REPO))] = len(calls)
    assert found == WAIT_FOR_KEPT
