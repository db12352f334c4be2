"""Nothing sent twice when the done-mark fails (a locked store) or the sender dies (issue 26)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from detectkd.alerting.alert import Alert, AlertStatus
from detectkd.alerting.channels import webhook
from detectkd.resources import Resources
from detectkd.runtime.outbox import Dispatcher
from detectkd.runtime.sentlog import SentEntry, SentLog, owner_id
from detectkd.storage.base import NewOutboxItem, RunRecord, StateStore
from detectkd.storage.postgres import PostgresStore
from detectkd.storage.sqlite import SqliteStore
from tests.support.alerts import make_alert
from tests.support.databases import pg_database
from tests.support.http import http_server
from tests.support.tcp_proxy import TcpProxy


def alert(status: AlertStatus, series: str = "region=eu") -> Alert:
    return make_alert(series, status=status)


async def enqueue(store: StateStore, *alerts: Alert) -> None:
    rows = [NewOutboxItem(a.key, a.metric, a.series, "webhook:0", a.to_json()) for a in alerts]
    await store.commit(RunRecord("orders", outbox=rows))


class LockingReceiver:
    """A real HTTP receiver; on its first body it takes the store's write lock (another
    connection, `BEGIN IMMEDIATE`) before answering 200, so that delivery's done-mark fails."""

    def __init__(self, store_path: Path) -> None:
        self.got: list[tuple[str, float]] = []  # (status, arrival)
        self.locker = sqlite3.connect(store_path, isolation_level=None, check_same_thread=False)
        self.locked = asyncio.Event()
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.got.append((body["status"], time.monotonic()))
        if not self.locked.is_set():
            await asyncio.to_thread(self.locker.execute, "BEGIN IMMEDIATE")
            self.locked.set()
        self.arrived.set()
        return web.Response(text="ok")

    def unlock(self) -> None:
        self.locker.execute("COMMIT")


async def until(check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "dtk.db", busy_timeout_s=0.3)
    await s.open()
    yield s
    await s.close()


async def test_a_failed_done_mark_is_retried_not_resent_and_the_series_goes_on(
    store: SqliteStore, resources: Resources
) -> None:
    rec = LockingReceiver(store.path)
    async with http_server(rec.handle) as base:
        channel = webhook.build(webhook.Params(url=base + "/hook"), resources)
        d = Dispatcher(store, lambda m, i: channel, owner="a")
        await enqueue(store, alert("firing"), alert("resolved"))
        stop = asyncio.Event()
        loop = asyncio.create_task(d.run(stop))
        try:
            await rec.locked.wait()
            await until(lambda: d.mark_failures >= 1)  # the FIRING's done-mark failed (store locked)
            assert d.unmarked == 1
            assert await asyncio.to_thread(lambda: [s for s, _ in rec.got]) == ["firing"]
            rec.unlock()
            unlocked = time.monotonic()
            # The RESOLVED goes out at once (the FIRING counts as delivered), not after a lease.
            await until(lambda: len(rec.got) == 2)
            assert rec.got[1][1] - unlocked < 5.0
            await until(lambda: d.unmarked == 0)  # the FIRING's done-mark stored on a retry
        finally:
            stop.set()
            await loop
        assert [s for s, _ in rec.got] == ["firing", "resolved"]
        assert await store.outbox_pending() == []  # both sent: nothing left to send again
        assert [i.key for i in await store.outbox_pending("sent")] == [
            alert("firing").key,
            alert("resolved").key,
        ]
        rec.locker.close()


async def test_a_restart_marks_what_its_sent_log_holds_and_takes_its_leases_back(
    store: SqliteStore, resources: Resources, tmp_path: Path
) -> None:
    got: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(json.loads(await request.read())["key"])
        return web.Response(text="ok")

    a, b, c = alert("firing", "region=a"), alert("firing", "region=b"), alert("firing", "region=c")
    await enqueue(store, a, b, c)
    me, other = owner_id(tmp_path / "data"), owner_id(tmp_path / "other")
    assert owner_id(tmp_path / "data") == me != other  # stable across restarts, one per data_dir
    # The previous process claimed all three, delivered `a` (recorded in its sent log, not yet
    # marked), then was killed; `c` is leased by another live daemon.
    now = time.time()
    ia, ib, ic = await store.outbox_claim(now, 120, 3, owner=me)
    await store.outbox_release(me)
    await store.outbox_claim(now, 120, 2, owner=me)  # a and b
    assert await store.outbox_claim(now, 120, 3, owner=other) == [ic]
    log = SentLog(tmp_path / "data" / "outbox-sent.log")
    log.add(SentEntry(ia.id, ia.key, ia.channel))
    log.add(SentEntry(ib.id, "another store's row", ib.channel))  # not this row: ignored

    async with http_server(handle) as base:
        channel = webhook.build(webhook.Params(url=base + "/hook"), resources)
        d = Dispatcher(store, lambda m, i: channel, owner=me, sent_log=SentLog(log.path))
        await d.recover()
        await d.deliver_due()
    assert got == [b.key]  # at once, not after the lease; `a` not again, `c` left to its owner
    assert {i.key for i in await store.outbox_pending("sent")} == {a.key, b.key}
    assert [i.key for i in await store.outbox_pending()] == [c.key]
    assert log.path.read_text() == ""  # every entry's done-mark stored


async def test_postgres_cut_off_after_a_send_gets_each_alert_once_in_order(resources: Resources) -> None:
    """The store (PostgreSQL through a TCP proxy) goes away between the receiver's 200 and
    the done-mark, and comes back a second later."""
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    got: list[str] = []
    cut = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        got.append(json.loads(await request.read())["status"])
        if not cut.is_set():
            cut.set()
            await proxy.stop()  # every connection reset, new ones refused
        return web.Response(text="ok")

    async with pg_database("") as name, http_server(handle) as base:
        store = PostgresStore(host="127.0.0.1", port=proxy.port, user="postgres", database=name)
        await store.open()
        channel = webhook.build(webhook.Params(url=base + "/hook"), resources)
        d = Dispatcher(store, lambda m, i: channel, owner="a")
        await enqueue(store, alert("firing"), alert("resolved"), alert("firing", "region=us"))
        stop = asyncio.Event()
        loop = asyncio.create_task(d.run(stop))
        try:
            await until(lambda: d.mark_failures >= 1)
            assert "resolved" not in got and d.unmarked >= 1
            await proxy.start()
            await until(lambda: len(got) == 3 and d.unmarked == 0)
        finally:
            stop.set()
            await loop
        assert got == ["firing", "firing", "resolved"]  # the two series' FIRINGs, then eu's RESOLVED
        assert await store.outbox_pending() == []
        await store.close()
    await proxy.stop()
