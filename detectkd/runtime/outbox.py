"""Delivery from the outbox: the only way an alert leaves the daemon.

Rows are written in the same transaction as the alert state that produced
them, then sent here. A row is deleted only after its channel accepted it;
failures are retried with exponential back-off and jitter until
`retry_for` has passed, then kept as a dead letter. Per (metric, series,
channel) only the oldest pending row may be sent, so a RESOLVED never
overtakes its FIRING.

Deliveries run per destination (a receiver's host, an SMTP server): each has
its own concurrency (`per_destination`), and the loop never waits for a
slow one, so a hanging receiver delays only its own rows.

Nothing is sent twice because of a crash or a store failure: a row the channel
accepted is at once written to the sent log (`sentlog`, microseconds) and kept in
memory as sent; its done-mark in the store follows and, when the store fails, is
retried with back-off without sending again, while the next row of its series
goes out as usual. A restarted daemon marks what its sent log holds as done and
ends its own previous leases (`recover`), so nothing waits for a lease to expire.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import structlog

from detectkd.alerting.alert import Alert
from detectkd.alerting.channels.base import Channel
from detectkd.errors import PermanentError, StorageError, TransientError, error_line
from detectkd.runtime.sentlog import LOG_FILE, SentEntry, SentLog, owner_id
from detectkd.storage.base import OutboxItem, OutboxStats, StateStore
from detectkd.telemetry import Telemetry

log = structlog.get_logger("detectkd.outbox")

ChannelLookup = Callable[[str, str], Channel | None]  # (metric, channel id)

BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0
FOREIGN_MAX = 100_000  # other shards' row ids remembered (each claimed and handed back once)
LEASE_S = 120.0  # a claimed row is retried by anyone after this (its sender died)
MARK_RETRY_CAP = 30.0  # a done-mark that failed is tried again within this


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before attempt `attempts + 1`: 2, 4, 8 ... capped at 5 min, +-20% jitter."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(attempts, 20))
    jitter: float = (rng or random).uniform(0.8, 1.2)
    return float(delay * jitter)


@dataclass
class _Unmarked:
    """A row its channel accepted whose done-mark is not stored yet."""

    item: OutboxItem
    failures: int = 0
    due: float = 0.0  # when to try the done-mark again
    busy: bool = True  # a done-mark is being written


class Dispatcher:
    def __init__(
        self,
        store: StateStore,
        channels: ChannelLookup,
        telemetry: Telemetry | None = None,
        retry_for: timedelta = timedelta(hours=24),
        per_destination: int = 4,
        only_metric: str | None = None,
        owner: str = "",
        sent_log: SentLog | None = None,
        doorbell: asyncio.Event | None = None,
    ) -> None:
        """`doorbell`: set when a row was committed (`wake`); given, it may be rung by whoever
        commits rows before this dispatcher exists."""
        self.only_metric = only_metric
        self.owner = owner  # recorded with every lease (the daemon's `sentlog.owner_id`)
        self.sent_log = sent_log
        self._unmarked: dict[int, _Unmarked] = {}  # row id -> delivered, done-mark not stored
        self._foreign: dict[int, None] = {}  # rows of other shards' metrics seen, oldest first
        # `--shard I/N` on a store shared by shards: whether a metric is this shard's.
        self.mine: Callable[[str], bool] = lambda _metric: True
        self.mark_failures = 0  # done-marks the store refused (each tried again, never re-sent)
        self.store = store
        self.channels = channels
        self.telemetry = telemetry
        self.retry_for = retry_for.total_seconds()
        self._wake = doorbell or asyncio.Event()
        self._per_destination = per_destination
        self._destinations: dict[str, asyncio.Semaphore] = {}
        self._inflight: dict[int, asyncio.Task[None]] = {}  # row id -> its delivery
        # HA: False on a standby. Checked before every send as well as when claiming, so a
        # leader stopped between its claim and its send does not send once it is deposed.
        self.may_send: Callable[[], bool] = lambda: True

    def wake(self) -> None:
        self._wake.set()

    @property
    def unmarked(self) -> int:
        """Rows delivered whose done-mark is not stored yet (they are not sent again)."""
        return len(self._unmarked)

    async def recover(self, data_dir: Path | None = None) -> None:
        """At start, before delivering: rows the previous process delivered (its sent log)
        are marked done, never sent again; its other leases end now, not in `LEASE_S`.
        `data_dir`: the daemon's, where its owner id and sent log are kept."""
        if data_dir is not None:
            self.owner = await asyncio.to_thread(owner_id, data_dir)
            self.sent_log = SentLog(data_dir / LOG_FILE)
        if self.sent_log is not None and (entries := self.sent_log.load()):
            pending = {i.id: i for i in await self.store.outbox_pending()}
            for e in entries:
                item = pending.get(e.id)
                if item is not None and (item.key, item.channel) == (e.key, e.channel):
                    self._unmarked[item.id] = _Unmarked(item)
            for row in list(self._unmarked.values()):
                await self._mark(row)
            if not self._unmarked:  # entries of rows already sent (or of another store)
                self.sent_log.clear()
            log.info(
                "sent log replayed", entries=len(entries), marked_done=len(entries) - len(self._unmarked)
            )
        released = await self.store.outbox_release(self.owner) if self.owner else 0
        if released:
            log.info("own outbox leases released", rows=released)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set. Never raises (but lets cancellation through)."""
        while not stop.is_set():
            try:
                next_due = await self.deliver_due(wait=False)
            except StorageError as exc:
                log.error("outbox read failed", error=str(exc))
                next_due = time.time() + 5
            except Exception as exc:  # never let the loop die: nothing would be delivered again
                log.error("outbox loop failed", error=error_line(exc))
                next_due = time.time() + 5
            wait = max(0.05, min(5.0, next_due - time.time()))
            self._wake.clear()
            stop_wait = asyncio.ensure_future(stop.wait())
            wake_wait = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({stop_wait, wake_wait}, timeout=wait, return_when="FIRST_COMPLETED")
            finally:
                stop_wait.cancel()
                wake_wait.cancel()

    async def deliver_due(self, wait: bool = True) -> float:
        """Claim every eligible row and start its delivery. `wait`: until every delivery in
        flight is done (one-shot use, shutdown); the loop does not wait, so a slow receiver
        never holds up the others. Returns when the next row falls due."""
        now = time.time()
        for row in list(self._unmarked.values()):
            if not row.busy and row.due <= now:
                await self._mark(row)
        gone = set(self._unmarked) | self._foreign.keys()
        items = (
            await self.store.outbox_claim(now, LEASE_S, 100, self.only_metric, self.owner, gone)
            if self.may_send()
            else []
        )
        items = await self._keep_mine(items)
        for item in items:
            if item.id not in self._inflight:  # a lease outlived by a slow delivery
                task = asyncio.ensure_future(self._deliver_logged(item))
                self._inflight[item.id] = task
                task.add_done_callback(functools.partial(self._finished, item.id))
        if wait and self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        if items:
            return time.time()  # the next row of a series may now be eligible
        stats = await self._update_gauges()
        due = stats.next_attempt_at if stats.next_attempt_at is not None else now + 5
        if due <= now:  # due but not claimable (delivered, leased elsewhere, a standby): poll
            due = now + 1.0
        return min([due, *(r.due for r in self._unmarked.values() if not r.busy)])

    async def _keep_mine(self, items: list[OutboxItem]) -> list[OutboxItem]:
        """Rows of another shard's metrics (several shards on one store) are handed back at
        once, not failed with an attempt and a back-off that would delay their own shard,
        and left out of this dispatcher's later claims."""
        foreign = [i.id for i in items if not self.mine(i.metric)]
        if not foreign:
            return items
        self._foreign.update(dict.fromkeys(foreign))
        while len(self._foreign) > FOREIGN_MAX:
            del self._foreign[next(iter(self._foreign))]
        await self.store.outbox_release(self.owner, foreign)
        return [i for i in items if i.id not in self._foreign]

    async def _deliver_logged(self, item: OutboxItem) -> None:
        try:
            await self._deliver(item)
        except StorageError as exc:  # the row stays leased, then is retried: nothing lost
            log.error("outbox update failed", metric=item.metric, key=item.key, error=str(exc))

    def _finished(self, item_id: int, _task: object = None) -> None:
        self._inflight.pop(item_id, None)
        self._wake.set()  # the next row of its series may be eligible now

    def _limit(self, channel: Channel | None) -> asyncio.Semaphore:
        key = str(getattr(channel, "destination", "") or getattr(channel, "kind", "unknown"))
        sem = self._destinations.get(key)
        if sem is None:
            sem = self._destinations[key] = asyncio.Semaphore(self._per_destination)
        return sem

    async def _deliver(self, item: OutboxItem) -> None:
        channel = self.channels(item.metric, item.channel)
        async with self._limit(channel):
            kind = channel.kind if channel is not None else "unknown"
            try:
                if channel is None:
                    raise TransientError("the metric or its alerter is no longer configured")
                if not self.may_send():
                    return  # deposed: the row's lease runs out and the leader sends it
                await channel.send(Alert.from_json(item.payload))
            except (TransientError, PermanentError) as exc:
                await self._failed(item, kind, str(exc), permanent=isinstance(exc, PermanentError))
                return
            except Exception as exc:  # a channel bug must not stop delivery of others
                await self._failed(item, kind, f"{type(exc).__name__}: {exc}", permanent=False)
                return
            # Accepted. No await before these two lines: a crash from here on finds the row
            # in the sent log, and a failing store finds it in memory; neither sends it again.
            if self.sent_log is not None:
                self.sent_log.add(SentEntry(item.id, item.key, item.channel))
            row = self._unmarked[item.id] = _Unmarked(item)
            if self.telemetry is not None:
                self.telemetry.alerts_sent.labels(kind, _status(item)).inc()
            log.info(
                "alert delivered",
                metric=item.metric,
                series=item.series,
                channel=kind,
                key=item.key,
                attempts=item.attempts + 1,
            )
        await self._mark(row)

    async def _mark(self, row: _Unmarked) -> None:
        """Store a delivered row's done-mark; on failure, try again later (never re-send)."""
        row.busy = True
        try:
            await self.store.outbox_done(row.item.id)
        except StorageError as exc:
            row.failures += 1
            self.mark_failures += 1
            row.due = time.time() + min(MARK_RETRY_CAP, backoff(row.failures - 1))
            log.warning(
                "delivered alert not yet marked sent",
                metric=row.item.metric,
                key=row.item.key,
                error=str(exc),
                retry_in=round(row.due - time.time(), 1),
            )
            return
        finally:
            row.busy = False
        self._unmarked.pop(row.item.id, None)
        if not self._unmarked and self.sent_log is not None:
            self.sent_log.clear()

    async def _failed(self, item: OutboxItem, kind: str, error: str, permanent: bool) -> None:
        now = time.time()
        expired = now - item.created_at >= self.retry_for
        dead = permanent or expired
        retry_at = now + backoff(item.attempts)
        await self.store.outbox_retry(item.id, error, retry_at, dead)
        if self.telemetry is not None:
            self.telemetry.alerts_failed.labels(kind).inc()
        log.warning(
            "alert delivery failed",
            metric=item.metric,
            series=item.series,
            channel=kind,
            key=item.key,
            attempt=item.attempts + 1,
            error=error,
            gave_up=dead,
            retry_in=None if dead else round(retry_at - now, 1),
        )

    async def _update_gauges(self) -> OutboxStats:
        stats = await self.store.outbox_stats()
        if self.telemetry is None:
            return stats
        self.telemetry.outbox_pending.set(stats.pending)
        self.telemetry.outbox_dead.set(stats.dead)
        age = 0.0 if stats.oldest_created_at is None else time.time() - stats.oldest_created_at
        self.telemetry.outbox_oldest.set(age)
        return stats


def _status(item: OutboxItem) -> str:
    return "resolved" if "|resolved|" in item.key or ":resolved|" in item.key else "firing"
